"""The data model: :class:`Example`, :class:`Task` (validated on construction) and :class:`Suite`.

Example:
    >>> ex = (Example("good", 1), Example("bad", 0))
    >>> t = Task("toy", "sentiment", ("negative", "positive"), ("text",), "", train=ex, dev=ex, test=ex)
    >>> Suite("s", "", (t,)).names()
    ['toy']
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from ipt_core.errors import UnknownNameError
from ipt_core.tasks.errors import TaskDataError
from ipt_core.tasks.resample import resample
from ipt_core.tasks.validation import (
    INPUT_FORMS,
    bad_labels,
    bad_task_name,
    bad_text,
    type_name,
)

__all__ = ["SPLITS", "Example", "Task", "Suite"]


SPLITS: tuple[str, str, str] = ("train", "dev", "test")
"""The three splits every task has, in this order."""


@dataclass(frozen=True)
class Example:
    """One labelled example. ``label`` is an index into the task's ``labels``.

    Example:
        >>> Example("great film", 1)
        Example(text='great film', label=1, text_pair=None)
    """

    text: str
    label: int
    text_pair: str | None = None


@dataclass(frozen=True)
class Task:
    """A few-shot classification task, validated on construction.

    Example:
        >>> ex = (Example("good", 1), Example("bad", 0))
        >>> t = Task("toy", "sentiment", ("negative", "positive"), ("text",), "toy task",
        ...          train=ex, dev=ex, test=ex)
        >>> t.sizes(), t.is_pair
        ({'train': 2, 'dev': 2, 'test': 2}, False)
    """

    name: str
    type: str
    labels: tuple[str, ...]
    input_fields: tuple[str, ...]
    description: str
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    source: str = ""
    data_seed: int | None = None
    k: int | None = None

    def __post_init__(self) -> None:
        for name in ("labels", "input_fields", *SPLITS):  # accept lists, store tuples
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        src = self.source or None

        def fail(field: str, message: str) -> None:
            raise TaskDataError(src, None, field, f"task {self.name!r}: {message}")

        why = bad_task_name(self.name)
        if why:
            raise TaskDataError(src, None, "name", f"task name {why}")
        if not isinstance(self.type, str) or not self.type.strip():
            fail("type", f"type must be a non-empty string, got {self.type!r:.60}")
        why = bad_labels(self.labels)
        if why:
            fail("labels", f"labels {why}")
        if self.input_fields not in INPUT_FORMS:
            fail("input_fields", f"input_fields must be ['text'] or ['text', 'text_pair'], "
                                 f"got {self.input_fields!r:.80}")
        if not isinstance(self.description, str):
            fail("description", f"description must be a string, got {type_name(self.description)}")
        pair = len(self.input_fields) == 2
        n_labels = len(self.labels)
        for split in SPLITS:
            examples = getattr(self, split)
            if not isinstance(examples, tuple):
                fail(split, f"{split} must be a tuple of Example, got {type_name(examples)}")
            if not examples:
                fail(split, f"the {split} split is empty")
            for i, ex in enumerate(examples):
                if not isinstance(ex, Example):
                    fail(split, f"{split}[{i}] is a {type_name(ex)}, not an Example")
                why = bad_text(ex.text)
                if why:
                    fail("text", f"{split}[{i}] text {why}")
                if pair:
                    why = bad_text(ex.text_pair)
                    if why:
                        fail("text_pair", f"{split}[{i}] text_pair {why}")
                elif ex.text_pair is not None:
                    fail("text_pair", f"{split}[{i}] has a text_pair but the task's input_fields "
                                      "are ['text']")
                lab = ex.label
                if isinstance(lab, bool) or not isinstance(lab, (int, np.integer)) \
                        or not 0 <= lab < n_labels:
                    fail("label", f"{split}[{i}] label {lab!r} is not an index into "
                                  f"{n_labels} labels")
        for name in ("data_seed", "k"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                fail(name, f"{name} must be an int or None, got {type_name(value)}")

    def split(self, name: str) -> tuple[Example, ...]:
        """The examples of split ``name`` ("train", "dev" or "test").

        Example:
            >>> task.split("dev")[0].text  # doctest: +SKIP
            'a fine film'
        """
        if name not in SPLITS:
            raise KeyError(f"unknown split {name!r}; splits are {list(SPLITS)}")
        return getattr(self, name)

    @property
    def is_pair(self) -> bool:
        """True when examples have two texts (``text`` and ``text_pair``)."""
        return len(self.input_fields) == 2

    def sizes(self) -> dict[str, int]:
        """Number of examples per split, e.g. ``{"train": 32, "dev": 32, "test": 200}``."""
        return {s: len(getattr(self, s)) for s in SPLITS}

    def label_counts(self, split: str) -> dict[str, int]:
        """Examples per label name in one split (every label listed, zeros included).

        Example:
            >>> task.label_counts("train")  # doctest: +SKIP
            {'negative': 16, 'positive': 16}
        """
        counts = dict.fromkeys(self.labels, 0)
        for ex in self.split(split):
            counts[self.labels[ex.label]] += 1
        return counts

    def data_hash(self) -> str:
        """sha256 hex of a canonical JSON of name, type, labels, input_fields and all examples.

        The description, source, data_seed and k are not part of it.

        Example:
            >>> len(task.data_hash())  # doctest: +SKIP
            64
        """
        cached = self.__dict__.get("_data_hash")
        if cached is None:
            doc = {
                "name": self.name,
                "type": self.type,
                "labels": list(self.labels),
                "input_fields": list(self.input_fields),
                **{s: [[ex.text, ex.text_pair, int(ex.label)] for ex in getattr(self, s)]
                   for s in SPLITS},
            }
            blob = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            cached = hashlib.sha256(blob.encode("utf-8")).hexdigest()
            self.__dict__["_data_hash"] = cached  # memo; not a field, so eq/hash ignore it
        return cached

    def resample(self, k: int, seed: int) -> Task:
        """Draw ``k`` examples per label for train and ``k`` for dev from train + dev.

        Deterministic by ``seed`` (``numpy.random.default_rng(seed)``); test is unchanged;
        the new task keeps its name and records ``data_seed`` and ``k``. This is IPT's
        "same task, different data" setting. Raises TaskDataError (field "label") when a
        label has fewer than ``2 * k`` examples in the pool.

        Example:
            >>> t2 = task.resample(k=8, seed=1)           # doctest: +SKIP
            >>> t2.sizes()["train"] == 8 * len(t2.labels)  # doctest: +SKIP
            True
        """
        return resample(self, k, seed)


@dataclass(frozen=True)
class Suite:
    """An ordered set of tasks with unique names, and where they came from.

    Example:
        >>> suite = load_suite("demo")          # doctest: +SKIP
        >>> suite.subset(["nli", "sms_spam"]).names()  # doctest: +SKIP
        ['nli', 'sms_spam']
    """

    name: str
    source: str
    tasks: tuple[Task, ...]

    def __post_init__(self) -> None:
        if isinstance(self.tasks, list):
            object.__setattr__(self, "tasks", tuple(self.tasks))
        if not isinstance(self.tasks, tuple) or not self.tasks:
            raise TaskDataError(self.source or None, None, "tasks", "a suite needs at least one task")
        seen: dict[str, Task] = {}
        for t in self.tasks:
            if not isinstance(t, Task):
                raise TaskDataError(self.source or None, None, "tasks",
                                    f"suite holds a {type_name(t)}, not a Task")
            if t.name in seen:
                where = [x for x in (seen[t.name].source, t.source) if x]
                raise TaskDataError(self.source or None, None, "name",
                                    f"duplicate task name {t.name!r}"
                                    + (f" (in {' and '.join(where)})" if where else ""))
            seen[t.name] = t

    def task(self, name: str) -> Task:
        """The task called ``name``; KeyError naming the available tasks otherwise."""
        for t in self.tasks:
            if t.name == name:
                return t
        raise UnknownNameError(f"no task {name!r} in suite {self.name!r}; available: {self.names()}")

    def names(self) -> list[str]:
        """Task names in suite order."""
        return [t.name for t in self.tasks]

    def families(self) -> dict[str, list[str]]:
        """Task type (family) -> task names, in order of first appearance.

        Example:
            >>> load_suite("demo").families()["spam"]  # doctest: +SKIP
            ['email_spam', 'sms_spam']
        """
        out: dict[str, list[str]] = {}
        for t in self.tasks:
            out.setdefault(t.type, []).append(t.name)
        return out

    def subset(self, names: Iterable[str]) -> Suite:
        """A suite of the named tasks, in the order of ``names``.

        Unknown or repeated names raise TaskDataError (field "tasks").
        """
        if isinstance(names, str):
            names = [names]
        wanted = list(names)
        have = {t.name: t for t in self.tasks}
        unknown = [n for n in wanted if n not in have]
        if unknown:
            raise TaskDataError(self.source or None, None, "tasks",
                                f"unknown task(s) {unknown}; available: {self.names()}")
        dups = sorted({n for n in wanted if wanted.count(n) > 1})
        if dups:
            raise TaskDataError(self.source or None, None, "tasks", f"task(s) named twice: {dups}")
        if not wanted:
            raise TaskDataError(self.source or None, None, "tasks", "no tasks selected")
        return Suite(name=self.name, source=self.source, tasks=tuple(have[n] for n in wanted))

    def data_hash(self) -> str:
        """sha256 hex over the ordered tasks' data hashes (name and source excluded)."""
        blob = json.dumps([t.data_hash() for t in self.tasks], separators=(",", ":"))
        return hashlib.sha256(blob.encode("ascii")).hexdigest()
