"""Scores of predictions, and the IPT paper's recovery ratios."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Fraction of rows whose prediction equals the gold label."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    if len(gold) == 0:
        raise ValueError("accuracy of an empty split")
    return float((pred == gold).mean())


def macro_f1(pred: Sequence[int], gold: Sequence[int], n_labels: int) -> float:
    """Macro-averaged F1 over all of a task's labels (a label never predicted nor present scores 0)."""
    from sklearn.metrics import (
        f1_score,  # here: the app's pages import this module, and scikit-learn costs its first paint
    )
    return float(f1_score(gold, pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def recovery(method: float, reference: float) -> float:
    """The IPT paper's ratio score(IST) / score(PT)."""
    return float(method / reference) if reference else float("nan")


def gain_recovery(method: float, reference: float, zero_shot: float) -> float:
    """(IST - zero-shot) / (PT - zero-shot): honest where zero-shot is already high. NaN where PT gains nothing."""
    gain = reference - zero_shot
    return float((method - zero_shot) / gain) if gain > 1e-9 else float("nan")


_SPLIT_FIELDS = {"test": ("ist_test_acc", "pt_test_acc", "zero_shot_test_acc"),
                 "dev": ("ist_dev_acc", "pt_dev_acc", "zero_shot_dev_acc")}


def pooled_gain_recovery(rows: Sequence[dict], split: str = "test") -> float:
    """Σ(IST − zero-shot) / Σ(PT − zero-shot) over the rows (tasks of one seed): gain recovery pooled.

    The mean of per-task ratios is ruled by a task whose PT barely beats zero-shot (a gap of 0.01
    gives one task a ratio of −11); pooling weighs each task by the gain PT found on it. Rows are an
    IPT entry's ``meta["rows"]``; those missing a score of ``split`` are left out. NaN where PT
    gains nothing over zero-shot in total.

    Example:
        >>> rows = [{"ist_test_acc": .6, "pt_test_acc": .7, "zero_shot_test_acc": .5},
        ...         {"ist_test_acc": .49, "pt_test_acc": .51, "zero_shot_test_acc": .5}]
        >>> round(pooled_gain_recovery(rows), 3)  # (0.1 - 0.01) / (0.2 + 0.01); the per-task mean is -0.25
        0.429
    """
    if split not in _SPLIT_FIELDS:
        raise ValueError(f"split {split!r}: one of {', '.join(_SPLIT_FIELDS)}")
    ist, pt, zs = _SPLIT_FIELDS[split]
    sel = [r for r in rows if all(r.get(k) is not None and not np.isnan(r.get(k)) for k in (ist, pt, zs))]
    gap = sum(r[pt] - r[zs] for r in sel)
    return float(sum(r[ist] - r[zs] for r in sel) / gap) if sel and gap > 1e-9 else float("nan")


def dimension_thresholds(by_dim: dict[int, float], levels: Sequence[float] = (0.5, 0.9)) -> dict[str, int | None]:
    """The smallest d_I whose score reaches each level: ``{"d50": 16, "d90": None}`` (None: no d_I measured does).

    ``by_dim``: a gain recovery per d_I (pooled, one subspace and setting). In the spirit of the
    intrinsic-dimension literature's d90 (Li et al. 2018; Aghajanyan et al. 2021), with PT's gain as 100%;
    only the dimensions measured are candidates, so "d90 = 64" means "between the next smaller
    measured d_I and 64". NaN scores never reach a level.

    Example:
        >>> dimension_thresholds({4: 0.2, 16: 0.6, 64: 0.8})
        {'d50': 16, 'd90': None}
    """
    out: dict[str, int | None] = {}
    for level in levels:
        hit = [d for d, v in sorted(by_dim.items()) if v is not None and not np.isnan(v) and v >= level]
        out[f"d{round(level * 100)}"] = int(hit[0]) if hit else None
    return out
