"""Scores of predictions, and the IPT paper's recovery ratios."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.metrics import f1_score


def accuracy(pred: Sequence[int], gold: Sequence[int]) -> float:
    """Fraction of rows whose prediction equals the gold label."""
    pred, gold = np.asarray(pred), np.asarray(gold)
    if len(gold) == 0:
        raise ValueError("accuracy of an empty split")
    return float((pred == gold).mean())


def macro_f1(pred: Sequence[int], gold: Sequence[int], n_labels: int) -> float:
    """Macro-averaged F1 over all of a task's labels (a label never predicted nor present scores 0)."""
    return float(f1_score(gold, pred, labels=list(range(n_labels)), average="macro", zero_division=0))


def recovery(method: float, reference: float) -> float:
    """The IPT paper's ratio score(IST) / score(PT)."""
    return float(method / reference) if reference else float("nan")


def gain_recovery(method: float, reference: float, zero_shot: float) -> float:
    """(IST - zero-shot) / (PT - zero-shot): honest where zero-shot is already high. NaN where PT gains nothing."""
    gain = reference - zero_shot
    return float((method - zero_shot) / gain) if gain > 1e-9 else float("nan")
