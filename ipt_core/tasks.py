"""Task suites: the data layer of ``ipt_core``.

A *task* is a few-shot text classification problem (label names, one or two text fields,
train/dev/test examples); a *suite* is an ordered set of tasks plus where they came from.
Every suite is fully validated when it is loaded: :func:`load_suite` returns a complete
:class:`Suite` or raises one :class:`TaskDataError` naming the file, line and field.

Sources, chosen by one string ``spec`` (see :func:`load_suite`):

* a folder of task folders (``task.json`` + ``train/dev/test.jsonl``), or one task folder;
* a CrossFit-style folder (``{task}_{k}_{seed}_{train|dev|test}.tsv``, ``input<TAB>output``);
* one ``.csv`` / ``.tsv`` file with a header (``text[, text_pair], label[, split][, task][, type]``);
* a Hugging Face dataset, ``hf:<name or path>[:<config>]`` (needs the optional ``datasets``);
* ``demo``: the built-in suite shipped in ``ipt_core/suites/demo``.

Example:
    >>> suite = load_suite("demo")                      # doctest: +SKIP
    >>> task = suite.task("sms_spam")                   # doctest: +SKIP
    >>> task.sizes()                                    # doctest: +SKIP
    {'train': 32, 'dev': 32, 'test': 80}
    >>> task.resample(k=8, seed=1).sizes()["train"]     # doctest: +SKIP
    16
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "TaskDataError",
    "SuiteSourceError",
    "Example",
    "Task",
    "Suite",
    "SPLITS",
    "CSV_SPLIT_SEED",
    "load_suite",
    "load_task_folder",
    "demo_suite_path",
    "tasks_report",
    "format_tasks_table",
]

SPLITS: tuple[str, str, str] = ("train", "dev", "test")
"""The three splits every task has, in this order."""

CSV_SPLIT_SEED = 13
"""Seed of the deterministic per-label split of CSV/TSV/HF rows that have no split column."""

_SPLIT_PER_LABEL = 16  # up to this many rows per label go to train, and as many to dev
_INPUT_FORMS: tuple[tuple[str, ...], ...] = (("text",), ("text", "text_pair"))
_CROSSFIT_RE = re.compile(r"^(?P<task>.+)_(?P<k>\d+)_(?P<seed>\d+)_(?P<split>train|dev|test)\.tsv$")
_CROSSFIT_SEP = " [SEP] "
_JSON_WS = " \t\r\n"


# --------------------------------------------------------------------------------------
# Errors


class TaskDataError(ValueError):
    """Bad task data: names the file, the line (1-based, or None) and the field (or None).

    Example:
        >>> err = TaskDataError("t/train.jsonl", 7, "label", "not one of the labels")
        >>> print(err)
        t/train.jsonl, line 7, field "label": not one of the labels
        >>> (err.file, err.line, err.field)
        ('t/train.jsonl', 7, 'label')
    """

    def __init__(self, file: str | os.PathLike[str] | None, line: int | None,
                 field: str | None, message: str) -> None:
        file_s = None if file is None else str(file)
        super().__init__(file_s, line, field, message)
        self.file: str | None = file_s
        self.line: int | None = line
        self.field: str | None = field
        self.message: str = message

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.field is not None:
            parts.append(f'field "{self.field}"')
        return f"{', '.join(parts)}: {self.message}" if parts else self.message


class SuiteSourceError(TaskDataError):
    """The source itself is unusable: a missing optional package or data that cannot be reached.

    Example:
        >>> raise SuiteSourceError("hf:imdb", None, None, "datasets is not installed")  # doctest: +SKIP
    """


# --------------------------------------------------------------------------------------
# Data model


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


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _bad_text(value: object) -> str | None:
    """Why ``value`` is not a usable text (None when it is)."""
    if not isinstance(value, str):
        return f"must be a string, got {_type_name(value)} {value!r:.60}"
    if not value.strip():
        return "is empty"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not encodable as UTF-8)"
    return None


def _bad_task_name(name: object) -> str | None:
    if not isinstance(name, str):
        return f"must be a string, got {_type_name(name)}"
    if not name.strip():
        return "is empty"
    if name != name.strip():
        return f"{name!r} has leading or trailing whitespace"
    if any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
        return f"{name!r} contains a path separator or control character"
    return None


def _bad_labels(labels: object) -> str | None:
    if not isinstance(labels, (list, tuple)):
        return f"must be a list of label names, got {_type_name(labels)}"
    for lab in labels:
        if not isinstance(lab, str):
            return f"must be a list of strings, got {_type_name(lab)} {lab!r:.60}"
        if not lab.strip():
            return "contains an empty label name"
        try:
            lab.encode("utf-8")
        except UnicodeEncodeError:
            return f"label {lab!r} contains an unpaired surrogate"
    if len(set(labels)) != len(labels):
        dups = sorted({lab for lab in labels if labels.count(lab) > 1})
        return f"has duplicate label names {dups}"
    if len(labels) < 2:
        return f"needs at least 2 labels, got {list(labels)}"
    return None


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

        why = _bad_task_name(self.name)
        if why:
            raise TaskDataError(src, None, "name", f"task name {why}")
        if not isinstance(self.type, str) or not self.type.strip():
            fail("type", f"type must be a non-empty string, got {self.type!r:.60}")
        why = _bad_labels(self.labels)
        if why:
            fail("labels", f"labels {why}")
        if self.input_fields not in _INPUT_FORMS:
            fail("input_fields", f"input_fields must be ['text'] or ['text', 'text_pair'], "
                                 f"got {self.input_fields!r:.80}")
        if not isinstance(self.description, str):
            fail("description", f"description must be a string, got {_type_name(self.description)}")
        pair = len(self.input_fields) == 2
        n_labels = len(self.labels)
        for split in SPLITS:
            examples = getattr(self, split)
            if not isinstance(examples, tuple):
                fail(split, f"{split} must be a tuple of Example, got {_type_name(examples)}")
            if not examples:
                fail(split, f"the {split} split is empty")
            for i, ex in enumerate(examples):
                if not isinstance(ex, Example):
                    fail(split, f"{split}[{i}] is a {_type_name(ex)}, not an Example")
                why = _bad_text(ex.text)
                if why:
                    fail("text", f"{split}[{i}] text {why}")
                if pair:
                    why = _bad_text(ex.text_pair)
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
                fail(name, f"{name} must be an int or None, got {_type_name(value)}")

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
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive int, got {k!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        k, seed = int(k), int(seed)
        pool = self.train + self.dev
        by_label: list[list[int]] = [[] for _ in self.labels]
        for i, ex in enumerate(pool):
            by_label[ex.label].append(i)
        short = [(self.labels[j], len(idx)) for j, idx in enumerate(by_label) if len(idx) < 2 * k]
        if short:
            desc = ", ".join(f"{lab!r} has {n}" for lab, n in short)
            raise TaskDataError(self.source or None, None, "label",
                                f"task {self.name!r}: cannot resample k={k}: needs {2 * k} "
                                f"examples per label in train+dev, but {desc}")
        rng = np.random.default_rng(seed)
        train_idx: list[int] = []
        dev_idx: list[int] = []
        for idx in by_label:
            chosen = rng.permutation(np.asarray(idx))[: 2 * k]
            train_idx.extend(int(i) for i in chosen[:k])
            dev_idx.extend(int(i) for i in chosen[k:])
        return Task(
            name=self.name, type=self.type, labels=self.labels, input_fields=self.input_fields,
            description=self.description,
            train=tuple(pool[i] for i in sorted(train_idx)),
            dev=tuple(pool[i] for i in sorted(dev_idx)),
            test=self.test, source=self.source, data_seed=seed, k=k,
        )


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
                                    f"suite holds a {_type_name(t)}, not a Task")
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
        raise KeyError(f"no task {name!r} in suite {self.name!r}; available: {self.names()}")

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


# --------------------------------------------------------------------------------------
# Reading files


def _read_text(path: Path) -> str:
    """UTF-8 text of ``path`` (a leading BOM dropped); TaskDataError naming the bad line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TaskDataError(path, None, None, "file not found") from None
    except IsADirectoryError:
        raise TaskDataError(path, None, None, "expected a file, found a folder") from None
    except OSError as e:
        raise TaskDataError(path, None, None, f"cannot read file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise TaskDataError(path, line, None,
                            f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {col})") from None
    return text[1:] if text.startswith("\ufeff") else text


def _json_loads(text: str, path: Path, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = line if line is not None else e.lineno
        col = e.colno
        raise TaskDataError(path, at, None, f"malformed JSON: {e.msg} (column {col})") from None
    except (ValueError, RecursionError) as e:  # e.g. huge integers, absurd nesting
        raise TaskDataError(path, line, None, f"malformed JSON: {e}") from None


def _key_line(text: str, key: str) -> int | None:
    """1-based line of the first ``"key":`` in a JSON text (a best effort for messages)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return None if m is None else text.count("\n", 0, m.start()) + 1


def _is_listed(p: Path) -> bool:
    """Folder entries that loaders look at: not hidden, not ``_private``/``__pycache__``."""
    return not p.name.startswith((".", "_"))


def _list_dir(path: Path) -> list[Path]:
    try:
        return sorted((p for p in path.iterdir() if _is_listed(p)), key=lambda p: p.name)
    except OSError as e:
        raise TaskDataError(path, None, None, f"cannot list folder: {e.strerror or e}") from None


# --------------------------------------------------------------------------------------
# Folder of task folders


def _parse_task_json(path: Path, folder_name: str) -> dict[str, Any]:
    text = _read_text(path)
    doc = _json_loads(text, path, None)
    if not isinstance(doc, dict):
        raise TaskDataError(path, 1, None, f"task.json must hold a JSON object, got {_type_name(doc)}")

    def fail(key: str, message: str) -> None:
        raise TaskDataError(path, _key_line(text, key), key, message)

    for key in ("name", "type", "labels", "input_fields"):
        if key not in doc:
            raise TaskDataError(path, None, key, f'missing required field "{key}"')
    why = _bad_task_name(doc["name"])
    if why:
        fail("name", f"name {why}")
    if doc["name"] != folder_name:
        fail("name", f"name {doc['name']!r} does not match its folder name {folder_name!r}")
    if not isinstance(doc["type"], str) or not doc["type"].strip():
        fail("type", f"must be a non-empty string, got {_type_name(doc['type'])} {doc['type']!r:.60}")
    why = _bad_labels(doc["labels"])
    if why:
        fail("labels", why)
    fields = doc["input_fields"]
    if not isinstance(fields, list) or tuple(fields) not in _INPUT_FORMS:
        fail("input_fields", f"must be [\"text\"] or [\"text\", \"text_pair\"], got {fields!r:.80}")
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        fail("description", f"must be a string, got {_type_name(desc)}")
    sizes = doc.get("sizes")
    if sizes is not None:
        if not isinstance(sizes, dict):
            fail("sizes", f"must be an object like {{\"train\": 32, ...}}, got {_type_name(sizes)}")
        for s in SPLITS:
            n = sizes.get(s)
            if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
                fail("sizes", f"sizes.{s} must be an integer, got {_type_name(n)} {n!r:.40}")
    return doc


def _parse_jsonl(path: Path, labels: tuple[str, ...], pair: bool) -> tuple[Example, ...]:
    text = _read_text(path)
    index = {lab: i for i, lab in enumerate(labels)}
    out: list[Example] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip(_JSON_WS):
            continue
        obj = _json_loads(line, path, lineno)
        if not isinstance(obj, dict):
            raise TaskDataError(path, lineno, None,
                                f"expected a JSON object, got {_type_name(obj)}")
        for f in ("text", "text_pair") if pair else ("text",):
            if f not in obj:
                raise TaskDataError(path, lineno, f, f'missing field "{f}"')
            why = _bad_text(obj[f])
            if why:
                raise TaskDataError(path, lineno, f, why)
        if not pair and obj.get("text_pair") is not None:
            raise TaskDataError(path, lineno, "text_pair",
                                "the task's input_fields are [\"text\"] but the line has a text_pair")
        if "label" not in obj:
            raise TaskDataError(path, lineno, "label", 'missing field "label"')
        lab = obj["label"]
        if not isinstance(lab, str):
            raise TaskDataError(path, lineno, "label",
                                f"must be a label name (string), got {_type_name(lab)} {lab!r:.60}")
        j = index.get(lab)
        if j is None:
            raise TaskDataError(path, lineno, "label",
                                f"{lab!r:.80} is not one of the task's labels {list(labels)}")
        out.append(Example(obj["text"], j, obj["text_pair"] if pair else None))
    if not out:
        raise TaskDataError(path, None, None, "the split is empty (no examples)")
    return tuple(out)


def load_task_folder(path: Path) -> Task:
    """Load one task folder: ``task.json`` + ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``.

    The folder name must equal task.json's ``name``; ``sizes`` (when present) must match.

    Example:
        >>> t = load_task_folder(Path("../shared/tasks-real/mrpc"))  # doctest: +SKIP
        >>> t.name, t.is_pair, t.sizes()                              # doctest: +SKIP
        ('mrpc', True, {'train': 32, 'dev': 32, 'test': 200})
    """
    path = Path(path)
    if not path.is_dir():
        what = "no such folder" if not path.exists() else "expected a task folder, found a file"
        raise TaskDataError(path, None, None, what)
    tj = path / "task.json"
    if not tj.is_file():
        raise TaskDataError(tj, None, None,
                            "missing task.json (a task folder holds task.json and "
                            "train/dev/test.jsonl)")
    doc = _parse_task_json(tj, path.name)
    labels = tuple(doc["labels"])
    fields = tuple(doc["input_fields"])
    pair = len(fields) == 2
    splits: dict[str, tuple[Example, ...]] = {}
    for s in SPLITS:
        f = path / f"{s}.jsonl"
        if not f.exists():
            raise TaskDataError(f, None, None, f"missing split file {s}.jsonl")
        splits[s] = _parse_jsonl(f, labels, pair)
    sizes = doc.get("sizes")
    if isinstance(sizes, dict):
        for s in SPLITS:
            if s in sizes and sizes[s] != len(splits[s]):
                raise TaskDataError(tj, _key_line(_read_text(tj), "sizes"), "sizes",
                                    f"sizes.{s} is {sizes[s]} but {s}.jsonl has "
                                    f"{len(splits[s])} examples")
    return Task(name=doc["name"], type=doc["type"], labels=labels, input_fields=fields,
                description=doc.get("description", ""), train=splits["train"],
                dev=splits["dev"], test=splits["test"], source=str(path))


def _load_task_folders(path: Path, folders: Sequence[Path], name: str, source: str) -> Suite:
    tasks = []
    for d in folders:
        if not d.is_dir():
            continue
        tasks.append(load_task_folder(d))
    return Suite(name=name, source=source, tasks=tuple(tasks))


# --------------------------------------------------------------------------------------
# CrossFit-style folder


def _crossfit_files(path: Path, entries: Sequence[Path]) -> dict[tuple[str, int, int, str], Path]:
    """(task, k, seed, split) -> file, from ``path`` and its task subfolders (CrossFit layout)."""
    candidates = [p for p in entries if p.is_file()]
    for d in entries:
        if d.is_dir():
            candidates.extend(p for p in _list_dir(d) if p.is_file())
    found: dict[tuple[str, int, int, str], Path] = {}
    for p in candidates:
        m = _CROSSFIT_RE.match(p.name)
        if m is None:
            continue
        key = (m["task"], int(m["k"]), int(m["seed"]), m["split"])
        if key in found:
            raise TaskDataError(p, None, None, f"the same CrossFit file is also at {found[key]}")
        found[key] = p
    return found


def _read_ontology(path: Path) -> dict[str, str]:
    f = path / "ontology.json"
    if not f.exists():
        return {}
    text = _read_text(f)
    doc = _json_loads(text, f, None)
    if not isinstance(doc, dict):
        raise TaskDataError(f, 1, None,
                            f"ontology.json must map task name -> family, got {_type_name(doc)}")
    for key, value in doc.items():
        if not isinstance(value, str) or not value.strip():
            raise TaskDataError(f, _key_line(text, key), key,
                                f"family must be a non-empty string, got {_type_name(value)}")
    return doc


def _parse_crossfit_tsv(path: Path) -> list[tuple[int, str, str]]:
    """(line, input, output) rows of a CrossFit ``input<TAB>output`` file."""
    rows = []
    for lineno, line in enumerate(_read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) == 1:
            raise TaskDataError(path, lineno, "output", "missing output (expected input<TAB>output)")
        if len(parts) > 2:
            raise TaskDataError(path, lineno, None,
                                f"expected input<TAB>output, found {len(parts)} tab-separated fields")
        inp, out = parts[0].strip(), parts[1].strip()
        if not inp:
            raise TaskDataError(path, lineno, "input", "is empty")
        if not out:
            raise TaskDataError(path, lineno, "output", "is empty")
        rows.append((lineno, inp, out))
    if not rows:
        raise TaskDataError(path, None, None, "the split is empty (no lines)")
    return rows


def _load_crossfit(path: Path, files: dict[tuple[str, int, int, str], Path], name: str,
                   source: str, seed: int | None) -> Suite:
    ontology = _read_ontology(path)
    variants: dict[str, set[tuple[int, int]]] = {}
    for task, k, s, _split in files:
        variants.setdefault(task, set()).add((s, k))
    tasks = []
    for task in sorted(variants):
        options = sorted(variants[task])
        if seed is None:
            s, k = options[0]
        else:
            picked = [o for o in options if o[0] == seed]
            if not picked:
                raise TaskDataError(path, None, "crossfit_seed",
                                    f"task {task!r} has no files for seed {seed}; "
                                    f"seeds available: {sorted({o[0] for o in options})}")
            s, k = picked[0]
        split_files = {}
        for split in SPLITS:
            f = files.get((task, k, s, split))
            if f is None:
                raise TaskDataError(path / f"{task}_{k}_{s}_{split}.tsv", None, None,
                                    f"missing split file for task {task!r} (k={k}, seed={s})")
            split_files[split] = f
        why = _bad_task_name(task)
        if why:
            raise TaskDataError(split_files["train"], None, "task", f"task name {why}")
        rows = {sp: _parse_crossfit_tsv(f) for sp, f in split_files.items()}
        labels = tuple(sorted({out for _, _, out in rows["train"]}))
        if len(labels) < 2:
            raise TaskDataError(split_files["train"], None, "output",
                                f"task {task!r} needs at least 2 distinct outputs in train, "
                                f"found {list(labels)}")
        pair = all(_CROSSFIT_SEP in inp for sp in SPLITS for _, inp, _ in rows[sp])
        index = {lab: i for i, lab in enumerate(labels)}
        splits: dict[str, tuple[Example, ...]] = {}
        for sp in SPLITS:
            exs = []
            for lineno, inp, out in rows[sp]:
                j = index.get(out)
                if j is None:
                    raise TaskDataError(split_files[sp], lineno, "output",
                                        f"{out!r:.80} is not one of the task's labels {list(labels)} "
                                        "(the outputs seen in train)")
                if pair:
                    a, _, b = inp.partition(_CROSSFIT_SEP)
                    if not a.strip():
                        raise TaskDataError(split_files[sp], lineno, "text",
                                            f"the text before {_CROSSFIT_SEP.strip()} is empty")
                    if not b.strip():
                        raise TaskDataError(split_files[sp], lineno, "text_pair",
                                            f"the text after {_CROSSFIT_SEP.strip()} is empty")
                    exs.append(Example(a, j, b))
                else:
                    exs.append(Example(inp, j))
            splits[sp] = tuple(exs)
        tasks.append(Task(
            name=task, type=ontology.get(task, "unknown"), labels=labels,
            input_fields=_INPUT_FORMS[1] if pair else _INPUT_FORMS[0],
            description=f"CrossFit task {task} (k={k}, seed={s})",
            train=splits["train"], dev=splits["dev"], test=splits["test"],
            source=str(split_files["train"].parent),
        ))
    return Suite(name=name, source=source, tasks=tuple(tasks))


# --------------------------------------------------------------------------------------
# Rows (CSV/TSV files, Hugging Face datasets) -> tasks

_SPLIT_ALIASES = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev",
                  "val": "dev", "test": "test"}


@dataclass
class _Row:
    where: tuple[str, int | None, str]  # (file, line, row description prefix for messages)
    task: str
    type: str | None
    split: str | None
    text: str
    text_pair: str | None
    label: str


def _row_error(row: _Row, field: str | None, message: str) -> TaskDataError:
    file, line, prefix = row.where
    return TaskDataError(file, line, field, prefix + message)


def _deterministic_split(rows: list[_Row], labels: tuple[str, ...], task: str,
                         file: str) -> dict[str, list[_Row]]:
    """Per label, up to 16 rows to train, as many to dev, the rest to test (seeded)."""
    rng = np.random.default_rng(CSV_SPLIT_SEED)
    chosen: dict[str, list[int]] = {s: [] for s in SPLITS}
    for lab in labels:
        idx = [i for i, r in enumerate(rows) if r.label == lab]
        if len(idx) < 3:
            raise TaskDataError(file, None, "label",
                                f"task {task!r}: label {lab!r} has {len(idx)} row(s); at least 3 "
                                "are needed to split into train/dev/test (or add a split column)")
        n = min(_SPLIT_PER_LABEL, (len(idx) - 1) // 2)
        perm = [idx[int(i)] for i in rng.permutation(len(idx))]
        chosen["train"] += perm[:n]
        chosen["dev"] += perm[n:2 * n]
        chosen["test"] += perm[2 * n:]
    return {s: [rows[i] for i in sorted(ix)] for s, ix in chosen.items()}


def _tasks_from_rows(rows: list[_Row], file: str, has_split: bool,
                     label_order: Sequence[str] | None = None) -> tuple[Task, ...]:
    if not rows:
        raise TaskDataError(file, None, None, "no data rows")
    by_task: dict[str, list[_Row]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r)
    tasks = []
    for name, trows in by_task.items():
        why = _bad_task_name(name)
        if why:
            raise _row_error(trows[0], "task", f"task name {why}")
        family = None
        for r in trows:
            if r.type:
                if family is None:
                    family = r.type
                elif r.type != family:
                    raise _row_error(r, "type", f"task {name!r} has type {family!r} on an earlier "
                                                f"row but {r.type!r} here")
        pair = any(r.text_pair for r in trows)
        for r in trows:
            why = _bad_text(r.text)
            if why:
                raise _row_error(r, "text", why)
            if pair:
                why = _bad_text(r.text_pair)
                if why:
                    raise _row_error(r, "text_pair", why + f" (task {name!r} has text pairs "
                                                          "on other rows)")
        used = {r.label for r in trows}
        if label_order is not None:
            labels = tuple(lab for lab in label_order if lab in used)
        else:
            labels = tuple(sorted(used))
        if len(labels) < 2:
            raise TaskDataError(file, None, "label",
                                f"task {name!r} needs at least 2 distinct labels, found {list(labels)}")
        why = _bad_labels(labels)
        if why:
            raise TaskDataError(file, None, "label", f"task {name!r}: labels {why}")
        if has_split:
            parts: dict[str, list[_Row]] = {s: [] for s in SPLITS}
            for r in trows:
                parts[r.split or ""].append(r)
            for s in SPLITS:
                if not parts[s]:
                    raise TaskDataError(file, None, "split", f"task {name!r} has no {s} rows")
        else:
            parts = _deterministic_split(trows, labels, name, file)
        index = {lab: i for i, lab in enumerate(labels)}
        splits = {s: tuple(Example(r.text, index[r.label], r.text_pair if pair else None)
                           for r in parts[s]) for s in SPLITS}
        tasks.append(Task(name=name, type=family or "unknown", labels=labels,
                          input_fields=_INPUT_FORMS[1] if pair else _INPUT_FORMS[0],
                          description="", train=splits["train"], dev=splits["dev"],
                          test=splits["test"], source=file))
    return tuple(tasks)


def _load_table(path: Path, source: str) -> Suite:
    """One CSV (comma) or TSV (tab) file with a header row."""
    text = _read_text(path)
    tsv = path.suffix.lower() == ".tsv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=True)
    file = str(path)
    header: list[str] | None = None
    rows: list[_Row] = []
    col: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not any(v.strip() for v in record):
                continue
            if header is None:
                header = [h.strip().lower() for h in record]
                for i, h in enumerate(header):
                    if h in col:
                        raise TaskDataError(path, line, h, "column appears twice in the header")
                    col[h] = i
                for need in ("text", "label"):
                    if need not in col:
                        raise TaskDataError(path, line, need,
                                            f'missing column "{need}"; the header is {header} '
                                            "(expected text[, text_pair], label[, split][, task]"
                                            "[, type])")
                continue
            if len(record) != len(header):
                raise TaskDataError(path, line, None,
                                    f"expected {len(header)} columns like the header, "
                                    f"found {len(record)}")

            def get(name: str) -> str | None:
                return record[col[name]] if name in col else None

            label = record[col["label"]].strip()
            if not label:
                raise TaskDataError(path, line, "label", "is empty")
            split = get("split")
            if split is not None:
                split_key = _SPLIT_ALIASES.get(split.strip().lower())
                if split_key is None:
                    raise TaskDataError(path, line, "split",
                                        f"{split!r:.40} is not train, dev (or validation) or test")
                split = split_key
            task = get("task")
            if task is not None:
                task = task.strip()
                if not task:
                    raise TaskDataError(path, line, "task", "is empty")
            type_ = get("type")
            pair = get("text_pair")
            rows.append(_Row((file, line, ""), task if task is not None else path.stem,
                             type_.strip() if type_ is not None else None, split,
                             record[col["text"]], pair if pair else None, label))
    except csv.Error as e:
        raise TaskDataError(path, reader.line_num or None, None, f"malformed CSV: {e}") from None
    if header is None:
        raise TaskDataError(path, None, None, "the file is empty (no header row)")
    tasks = _tasks_from_rows(rows, file, has_split="split" in col)
    return Suite(name=path.stem, source=source, tasks=tasks)


# --------------------------------------------------------------------------------------
# Hugging Face datasets


def _split_hf_spec(spec: str) -> tuple[str, str | None]:
    rest = spec[3:]
    if not rest:
        raise TaskDataError(spec, None, None, "expected hf:<name or path>[:<config>]")
    if ":" in rest and not Path(rest).exists():
        name, config = rest.rsplit(":", 1)
        return name, (config or None)
    return rest, None


def _load_hf(spec: str) -> Suite:
    name, config = _split_hf_spec(spec)
    try:
        import datasets  # optional dependency, imported only here
    except ImportError:
        raise SuiteSourceError(spec, None, None,
                               "loading a Hugging Face dataset needs the optional package "
                               "`datasets` (pip install datasets)") from None
    local = Path(name).expanduser()
    saved = local.is_dir() and any((local / f).exists() for f in
                                   ("dataset_dict.json", "state.json", "dataset_info.json"))
    try:
        if saved:
            ds = datasets.load_from_disk(str(local))
        else:
            ds = datasets.load_dataset(name, config)  # honours HF_DATASETS_OFFLINE / HF_HUB_OFFLINE
    except Exception as e:  # the library raises many types (network, not found, format)
        raise SuiteSourceError(spec, None, None,
                               f"could not load the dataset: {type(e).__name__}: {e}") from None
    if isinstance(ds, datasets.DatasetDict):
        found = list(ds.keys())
        dev_name = next((s for s in ("validation", "dev") if s in ds), None)
        if "train" not in ds or "test" not in ds or dev_name is None:
            raise TaskDataError(spec, None, "splits",
                                f"needs splits train, validation (or dev) and test; found {found}")
        parts = [("train", ds["train"]), ("dev", ds[dev_name]), ("test", ds["test"])]
        has_split = True
    elif isinstance(ds, datasets.Dataset):
        parts = [(None, ds)]
        has_split = "split" in ds.column_names
    else:
        raise TaskDataError(spec, None, None, f"expected a Dataset or DatasetDict, got "
                                              f"{type(ds).__name__}")
    stem = local.name if saved or local.exists() else name.rstrip("/").split("/")[-1]
    default_task = f"{stem}_{config}" if config else stem
    rows: list[_Row] = []
    label_order: list[str] | None = None
    for split, d in parts:
        cols = list(d.column_names)
        where_file = f"{spec}[{split or 'data'}]"
        for need in ("text", "label"):
            if need not in cols:
                raise TaskDataError(where_file, None, need,
                                    f'missing column "{need}"; columns are {cols}')
        feat = d.features["label"]
        names = list(feat.names) if isinstance(feat, datasets.ClassLabel) else None
        if names is not None:
            if label_order is None:
                label_order = names
            elif names != label_order:
                raise TaskDataError(where_file, None, "label",
                                    f"ClassLabel names {names} differ from another split's "
                                    f"{label_order}")
        data = d.to_dict()
        n = len(data["label"])
        for i in range(n):
            where = (where_file, None, f"row {i}: ")
            lab = data["label"][i]
            if names is not None:
                if isinstance(lab, bool) or not isinstance(lab, int) or not 0 <= lab < len(names):
                    raise TaskDataError(where_file, None, "label",
                                        f"row {i}: {lab!r} is not a class index into {names}")
                lab = names[lab]
            elif not isinstance(lab, str):
                raise TaskDataError(where_file, None, "label",
                                    f"row {i}: labels must be strings or ClassLabel indices, got "
                                    f"{_type_name(lab)} {lab!r:.40} (cast the column to "
                                    "datasets.ClassLabel(names=[...]))")
            lab = lab.strip()
            if not lab:
                raise TaskDataError(where_file, None, "label", f"row {i}: is empty")
            row_split = split
            if split is None and has_split:
                value = data["split"][i]
                row_split = _SPLIT_ALIASES.get(str(value).strip().lower())
                if row_split is None:
                    raise TaskDataError(where_file, None, "split",
                                        f"row {i}: {value!r:.40} is not train, dev or test")
            task = default_task
            if "task" in data:
                task = data["task"][i]
                if not isinstance(task, str) or not task.strip():
                    raise TaskDataError(where_file, None, "task",
                                        f"row {i}: must be a non-empty string, got {task!r:.40}")
                task = task.strip()
            type_ = data["type"][i] if "type" in data else None
            if type_ is not None and not isinstance(type_, str):
                raise TaskDataError(where_file, None, "type",
                                    f"row {i}: must be a string, got {_type_name(type_)}")
            text = data["text"][i]
            why = _bad_text(text)
            if why:
                raise TaskDataError(where_file, None, "text", f"row {i}: {why}")
            pair = data["text_pair"][i] if "text_pair" in data else None
            if pair is not None and not isinstance(pair, str):
                raise TaskDataError(where_file, None, "text_pair",
                                    f"row {i}: must be a string, got {_type_name(pair)}")
            rows.append(_Row(where, task, type_.strip() if type_ else None, row_split,
                             text, pair or None, lab))
    tasks = _tasks_from_rows(rows, spec, has_split=has_split, label_order=label_order)
    return Suite(name=default_task, source=spec, tasks=tasks)


# --------------------------------------------------------------------------------------
# Entry points


def demo_suite_path() -> Path:
    """The folder of the built-in ``demo`` suite (``ipt_core/suites/demo``).

    Example:
        >>> demo_suite_path().name
        'demo'
    """
    return Path(str(resources.files("ipt_core") / "suites" / "demo"))


def _load_folder(path: Path, name: str, source: str, crossfit_seed: int | None) -> Suite:
    if (path / "task.json").exists():
        _no_seed(source, crossfit_seed)
        return Suite(name=path.name, source=source, tasks=(load_task_folder(path),))
    entries = _list_dir(path)
    subdirs = [p for p in entries if p.is_dir()]
    task_dirs = [d for d in subdirs if (d / "task.json").exists()]
    if task_dirs:
        _no_seed(source, crossfit_seed)
        for d in subdirs:
            if d not in task_dirs:
                raise TaskDataError(d / "task.json", None, None,
                                    f"folder {d.name!r} in a suite of task folders has no "
                                    "task.json (every sub-folder must be a task folder)")
        return _load_task_folders(path, subdirs, name, source)
    files = _crossfit_files(path, entries)
    if files:
        return _load_crossfit(path, files, name, source, crossfit_seed)
    raise TaskDataError(path, None, None,
                        "found no tasks: expected task folders (task.json + train/dev/test.jsonl), "
                        "a task folder, or CrossFit files {task}_{k}_{seed}_{train|dev|test}.tsv")


def _no_seed(source: str, crossfit_seed: int | None) -> None:
    if crossfit_seed is not None:
        raise TaskDataError(source, None, "crossfit_seed",
                            "crossfit_seed only applies to CrossFit-style folders")


def load_suite(spec: str, *, crossfit_seed: int | None = None) -> Suite:
    """Load and validate a task suite from ``spec`` (all or nothing).

    ``spec`` is ``"demo"``; ``"hf:<name or path>[:<config>]"``; a ``.csv``/``.tsv`` file;
    a folder of task folders; one task folder; or a CrossFit-style folder, where
    ``crossfit_seed`` picks the data seed (default: the smallest seed of each task).
    Bad data raises :class:`TaskDataError`; an unusable source :class:`SuiteSourceError`.

    Example:
        >>> load_suite("demo").names()[:2]                     # doctest: +SKIP
        ['chat_toxicity', 'comment_toxicity']
        >>> load_suite("data/crossfit", crossfit_seed=21)       # doctest: +SKIP
        >>> load_suite("hf:/tmp/my_saved_dataset")              # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TaskDataError(None, None, "spec", f"expected a suite spec string, got {spec!r:.60}")
    if crossfit_seed is not None and (isinstance(crossfit_seed, bool)
                                      or not isinstance(crossfit_seed, int)):
        raise TaskDataError(spec, None, "crossfit_seed",
                            f"must be an int or None, got {_type_name(crossfit_seed)}")
    if spec == "demo":
        _no_seed(spec, crossfit_seed)
        path = demo_suite_path()
        if not path.is_dir():
            raise SuiteSourceError(path, None, None, "the built-in demo suite is missing")
        return _load_folder(path, "demo", "demo", None)
    if spec.startswith("hf:"):
        _no_seed(spec, crossfit_seed)
        return _load_hf(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise TaskDataError(path, None, None, "no such file or folder")
    if path.is_file():
        _no_seed(spec, crossfit_seed)
        if path.suffix.lower() in (".csv", ".tsv"):
            return _load_table(path, spec)
        if path.name == "task.json":
            return Suite(name=path.parent.name, source=spec,
                         tasks=(load_task_folder(path.parent),))
        raise TaskDataError(path, None, None,
                            "unsupported file: expected a .csv or .tsv file, a folder, "
                            "'demo' or 'hf:<dataset>'")
    stem = path.resolve().name or str(path)
    return _load_folder(path, stem, spec, crossfit_seed)


# --------------------------------------------------------------------------------------
# Reports (the CLI's `tasks` subcommand)


def tasks_report(suite: Suite) -> dict[str, Any]:
    """A JSON-able summary of a suite: name, type, labels and split sizes per task.

    Example:
        >>> tasks_report(load_suite("demo"))["tasks"][0]["sizes"]  # doctest: +SKIP
        {'train': 32, 'dev': 32, 'test': 80}
    """
    return {"tasks": [{"name": t.name, "type": t.type, "labels": list(t.labels),
                       "sizes": t.sizes()} for t in suite.tasks]}


def format_tasks_table(suite: Suite) -> str:
    """A plain-text table: name, type, number of labels, train/dev/test sizes.

    Example:
        >>> print(format_tasks_table(load_suite("demo")))  # doctest: +SKIP
        name           type      labels  train  dev  test
        chat_toxicity  toxicity       2     32   32    80
        ...
    """
    header = ["name", "type", "labels", "train", "dev", "test"]
    rows = [[t.name, t.type, str(len(t.labels)), *(str(n) for n in t.sizes().values())]
            for t in suite.tasks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])
