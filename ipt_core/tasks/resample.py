"""Few-shot resampling: "same task, different data" (IPT's seen-task setting).

Example:
    >>> t2 = resample(task, k=8, seed=1)             # doctest: +SKIP
    >>> t2.sizes()["train"] == 8 * len(t2.labels)   # doctest: +SKIP
    True
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import numpy as np

from ipt_core.errors import InputError
from ipt_core.tasks.errors import TaskDataError

TaskT = TypeVar("TaskT")  # a Task (not imported: the model imports this module)

__all__ = ["resample"]


def resample(task: TaskT, k: int, seed: int) -> TaskT:
    """Draw ``k`` examples per label for train and ``k`` for dev from the task's train + dev.

    Deterministic by ``seed`` (``numpy.random.default_rng(seed)``); test is unchanged; the new task
    keeps its name and records ``data_seed`` and ``k``. Raises TaskDataError (field "label") when a
    label has fewer than ``2 * k`` examples in the pool. :meth:`Task.resample` calls this.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive int, got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative int, got {seed!r}")
    k, seed = int(k), int(seed)
    pool = task.train + task.dev
    by_label: list[list[int]] = [[] for _ in task.labels]
    for i, ex in enumerate(pool):
        by_label[ex.label].append(i)
    short = [(task.labels[j], len(idx)) for j, idx in enumerate(by_label) if len(idx) < 2 * k]
    if short:
        desc = ", ".join(f"{lab!r} has {n}" for lab, n in short)
        raise TaskDataError(task.source or None, None, "label",
                            f"task {task.name!r}: cannot resample k={k}: needs {2 * k} "
                            f"examples per label in train+dev, but {desc}")
    rng = np.random.default_rng(seed)
    train_idx: list[int] = []
    dev_idx: list[int] = []
    for idx in by_label:
        chosen = rng.permutation(np.asarray(idx))[: 2 * k]
        train_idx.extend(int(i) for i in chosen[:k])
        dev_idx.extend(int(i) for i in chosen[k:])
    return replace(task, train=tuple(pool[i] for i in sorted(train_idx)),
                   dev=tuple(pool[i] for i in sorted(dev_idx)), data_seed=seed, k=k)
