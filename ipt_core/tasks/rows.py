"""Rows -> tasks, shared by the CSV/TSV and Hugging Face sources: grouping by task, label lists, and
the deterministic per-label train/dev/test split of rows that have no split column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ipt_core.tasks.errors import TaskDataError
from ipt_core.tasks.model import SPLITS, Example, Task
from ipt_core.tasks.validation import INPUT_FORMS, bad_labels, bad_task_name, bad_text

__all__ = ["CSV_SPLIT_SEED", "SPLIT_PER_LABEL", "SPLIT_ALIASES", "Row", "row_error", "deterministic_split", "tasks_from_rows"]


CSV_SPLIT_SEED = 13
"""Seed of the deterministic per-label split of CSV/TSV/HF rows that have no split column."""

SPLIT_PER_LABEL = 16  # up to this many rows per label go to train, and as many to dev
SPLIT_ALIASES = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev",
                  "val": "dev", "test": "test"}


@dataclass
class Row:
    where: tuple[str, int | None, str]  # (file, line, row description prefix for messages)
    task: str
    type: str | None
    split: str | None
    text: str
    text_pair: str | None
    label: str


def row_error(row: Row, field: str | None, message: str) -> TaskDataError:
    file, line, prefix = row.where
    return TaskDataError(file, line, field, prefix + message)


def deterministic_split(rows: list[Row], labels: tuple[str, ...], task: str,
                         file: str) -> dict[str, list[Row]]:
    """Per label, up to 16 rows to train, as many to dev, the rest to test (seeded)."""
    rng = np.random.default_rng(CSV_SPLIT_SEED)
    chosen: dict[str, list[int]] = {s: [] for s in SPLITS}
    for lab in labels:
        idx = [i for i, r in enumerate(rows) if r.label == lab]
        if len(idx) < 3:
            raise TaskDataError(file, None, "label",
                                f"task {task!r}: label {lab!r} has {len(idx)} row(s); at least 3 "
                                "are needed to split into train/dev/test (or add a split column)")
        n = min(SPLIT_PER_LABEL, (len(idx) - 1) // 2)
        perm = [idx[int(i)] for i in rng.permutation(len(idx))]
        chosen["train"] += perm[:n]
        chosen["dev"] += perm[n:2 * n]
        chosen["test"] += perm[2 * n:]
    return {s: [rows[i] for i in sorted(ix)] for s, ix in chosen.items()}


def tasks_from_rows(rows: list[Row], file: str, has_split: bool,
                     label_order: Sequence[str] | None = None) -> tuple[Task, ...]:
    if not rows:
        raise TaskDataError(file, None, None, "no data rows")
    by_task: dict[str, list[Row]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r)
    tasks = []
    for name, trows in by_task.items():
        why = bad_task_name(name)
        if why:
            raise row_error(trows[0], "task", f"task name {why}")
        family = None
        for r in trows:
            if r.type:
                if family is None:
                    family = r.type
                elif r.type != family:
                    raise row_error(r, "type", f"task {name!r} has type {family!r} on an earlier "
                                                f"row but {r.type!r} here")
        pair = any(r.text_pair for r in trows)
        for r in trows:
            why = bad_text(r.text)
            if why:
                raise row_error(r, "text", why)
            if pair:
                why = bad_text(r.text_pair)
                if why:
                    raise row_error(r, "text_pair", why + f" (task {name!r} has text pairs "
                                                          "on other rows)")
        used = {r.label for r in trows}
        if label_order is not None:
            labels = tuple(lab for lab in label_order if lab in used)
        else:
            labels = tuple(sorted(used))
        if len(labels) < 2:
            raise TaskDataError(file, None, "label",
                                f"task {name!r} needs at least 2 distinct labels, found {list(labels)}")
        why = bad_labels(labels)
        if why:
            raise TaskDataError(file, None, "label", f"task {name!r}: labels {why}")
        if has_split:
            parts: dict[str, list[Row]] = {s: [] for s in SPLITS}
            for r in trows:
                parts[r.split or ""].append(r)
            for s in SPLITS:
                if not parts[s]:
                    raise TaskDataError(file, None, "split", f"task {name!r} has no {s} rows")
        else:
            parts = deterministic_split(trows, labels, name, file)
        index = {lab: i for i, lab in enumerate(labels)}
        splits = {s: tuple(Example(r.text, index[r.label], r.text_pair if pair else None)
                           for r in parts[s]) for s in SPLITS}
        tasks.append(Task(name=name, type=family or "unknown", labels=labels,
                          input_fields=INPUT_FORMS[1] if pair else INPUT_FORMS[0],
                          description="", train=splits["train"], dev=splits["dev"],
                          test=splits["test"], source=file))
    return tuple(tasks)
