"""Reference rows on the same splits as the prompt methods: zero-shot and a linear probe."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from .backbones import Backbone
from .bank import evaluate_rows, pick_device
from .metrics import accuracy, macro_f1
from .tasks import Task

PROBE_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
CODE_VERSION = "baselines-1"


def zero_shot(backbone: Backbone, task: Task, *, device=None, batch_size: int = 128) -> dict:
    """The frozen model with no prompt: accuracy and macro-F1 on dev and test.

    Example::

        zero_shot(load_backbone(), suite.task("cr"))   # {"dev_acc": ..., "test_acc": ..., ...}
    """
    device = pick_device(device)
    backbone.to(device)
    table = backbone.label_table([task])
    out = {}
    for split in ("dev", "test"):
        rows = [(0, 0, ex) for ex in task.split(split)]
        pred, _ = evaluate_rows(backbone, None, rows, {task.name: 0}, table, batch_size=batch_size, device=device)
        gold = [ex.label for ex in task.split(split)]
        out[f"{split}_acc"] = accuracy(pred, gold)
        out[f"{split}_f1"] = macro_f1(pred, gold, len(task.labels))
    return out


def frozen_features(backbone: Backbone, examples, *, device=None, batch_size: int = 128) -> np.ndarray:
    """Pooled frozen features of the unprompted inputs: ``[N, d]`` float32."""
    device = pick_device(device)
    feats = []
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            enc = backbone.collate(examples[i : i + batch_size]).to(device)
            feats.append(backbone.features(enc).float().cpu().numpy())
    return np.concatenate(feats)


def linear_probe(backbone: Backbone, task: Task, *, device=None, seed: int = 0) -> dict:
    """Logistic regression on frozen features, C chosen on dev from ``PROBE_CS``.

    The fit uses scikit-learn's LogisticRegression (lbfgs, multinomial); ``seed`` fixes its state.
    """
    xs = {s: frozen_features(backbone, list(task.split(s)), device=device) for s in ("train", "dev", "test")}
    ys = {s: np.array([ex.label for ex in task.split(s)]) for s in ("train", "dev", "test")}
    best = None
    for c in PROBE_CS:
        clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
        clf.fit(xs["train"], ys["train"])
        dev_acc = accuracy(clf.predict(xs["dev"]), ys["dev"])
        if best is None or dev_acc > best[0]:
            best = (dev_acc, c, clf)
    dev_acc, c, clf = best
    pred = clf.predict(xs["test"])
    return {
        "C": c,
        "dev_acc": dev_acc,
        "dev_f1": macro_f1(clf.predict(xs["dev"]), ys["dev"], len(task.labels)),
        "test_acc": accuracy(pred, ys["test"]),
        "test_f1": macro_f1(pred, ys["test"], len(task.labels)),
    }
