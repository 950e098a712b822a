"""Reference rows on the same splits as the prompt methods: zero-shot and a linear probe."""
from __future__ import annotations

import weakref

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ipt_core.analysis.metrics import accuracy, macro_f1
from ipt_core.backbones import Backbone
from ipt_core.tasks import Task
from ipt_core.train.bank import pick_device
from ipt_core.train.loop.evaluation import evaluate_rows

PROBE_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
CODE_VERSION = "baselines-1"


def _batch(device: torch.device, batch_size: int | None) -> int:
    return batch_size or (128 if device.type == "cuda" else 64)  # the bank's evaluation sizes (bench/SPEED.md)


def zero_shot(backbone: Backbone, task: Task, *, device=None, batch_size: int | None = None) -> dict:
    """The frozen model with no prompt: accuracy and macro-F1 on dev and test.

    A backbone that scores labels from the pooled features (encoder-sim) is scored from
    :func:`frozen_features`, whose rows the linear probe of the same task then reuses.

    Example::

        zero_shot(load_backbone(), suite.task("cr"))   # {"dev_acc": ..., "test_acc": ..., ...}
    """
    device = pick_device(device)
    backbone.to(device)
    table = backbone.label_table([task])
    out = {}
    for split in ("dev", "test"):
        examples = list(task.split(split))
        scores = backbone.logits_from_features(
            torch.from_numpy(frozen_features(backbone, examples, device=device, batch_size=batch_size)).to(device),
            torch.zeros(len(examples), dtype=torch.long, device=device), table) if examples else None
        if scores is not None:
            pred = scores.argmax(-1).cpu().numpy()
        else:
            rows = [(0, 0, ex) for ex in examples]
            pred, _ = evaluate_rows(backbone, None, rows, {task.name: 0}, table, batch_size=_batch(device, batch_size),
                                    device=device)
        gold = [ex.label for ex in examples]
        out[f"{split}_acc"] = accuracy(pred, gold)
        out[f"{split}_f1"] = macro_f1(pred, gold, len(task.labels))
    return out


# unprompted features per backbone and input (token ids): zero-shot and the probe read the same rows
_FEATURES: "weakref.WeakKeyDictionary[Backbone, dict[tuple, np.ndarray]]" = weakref.WeakKeyDictionary()


def frozen_features(backbone: Backbone, examples, *, device=None, batch_size: int | None = None) -> np.ndarray:
    """Pooled frozen features of the unprompted inputs: ``[N, d]`` float32 (each input computed once per process)."""
    device = pick_device(device)
    if not examples:
        return np.zeros((0, backbone.hidden_size), dtype=np.float32)
    memo = _FEATURES.setdefault(backbone, {})
    keys = [(str(device), tuple(backbone.token_ids(ex)), ex.text_pair is not None) for ex in examples]
    missing = list(dict.fromkeys(k for k in keys if k not in memo))
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    # length-sorted chunks pad little
    order = sorted(missing, key=lambda k: len(k[1]))
    size = _batch(device, batch_size)
    with torch.no_grad():
        for i in range(0, len(order), size):
            chunk = order[i : i + size]
            enc = backbone.collate([examples[first[k]] for k in chunk]).to(device)
            for k, f in zip(chunk, backbone.features(enc).float().cpu().numpy()):
                memo[k] = f
    return np.stack([memo[k] for k in keys])


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
