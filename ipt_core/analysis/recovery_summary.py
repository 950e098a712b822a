"""The summary of an IPT sweep's rows (``ipt_dims`` and its kin): per subspace, setting and d_I, and the d50/d90 summary.

Torch-free, so that the app's pages can summarise an entry stored before a field was recorded.
A row is one IST run compared with its task's PT and zero-shot scores (``ipt_core.experiments.ipt``).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ipt_core.analysis.metrics import dimension_thresholds, pooled_gain_recovery


def summarise(rows: list[dict]) -> dict:
    """Mean over tasks per seed, then mean and std over seeds, per subspace/setting/d (``summary[sub][setting][str(d)]``)."""
    out: dict = {}
    keyset = sorted({(r["subspace"], r["setting"], r["d"]) for r in rows})
    for sub, setting, d in keyset:
        sel = [r for r in rows if (r["subspace"], r["setting"], r["d"]) == (sub, setting, d)]
        seeds = sorted({r["seed"] for r in sel})
        rec = [np.nanmean([r["recovery"] for r in sel if r["seed"] == s]) for s in seeds]
        gains = [[r["gain_recovery"] for r in sel if r["seed"] == s and r["gain_recovery"] is not None] for s in seeds]
        gain = [float(np.mean(g)) for g in gains if g]
        dev_gains = [[r["dev_gain_recovery"] for r in sel if r["seed"] == s and r.get("dev_gain_recovery") is not None]
                     for s in seeds]
        dev_gain = [float(np.mean(g)) for g in dev_gains if g]
        pooled = [pooled_gain_recovery([r for r in sel if r["seed"] == s]) for s in seeds]
        dev_pooled = [pooled_gain_recovery([r for r in sel if r["seed"] == s], "dev") for s in seeds]
        flags = [r["finished"] for r in sel if r.get("finished") is not None]
        out.setdefault(sub, {}).setdefault(setting, {})[str(d)] = {
            "recovery": float(np.mean(rec)), "recovery_std": float(np.std(rec)),
            "gain_recovery": float(np.mean(gain)) if gain else None, "gain_recovery_std": float(np.std(gain)) if gain else None,
            "dev_gain_recovery": float(np.mean(dev_gain)) if dev_gain else None,
            "ist_test_acc": float(np.mean([r["ist_test_acc"] for r in sel])),
            "pt_test_acc": float(np.mean([r["pt_test_acc"] for r in sel])),
            "n_tasks": len({r["task"] for r in sel}),
            "pooled_gain_recovery": _mean_finite(pooled), "pooled_gain_recovery_std": _std_finite(pooled),
            "dev_pooled_gain_recovery": _mean_finite(dev_pooled),
            # the share of IST runs whose dev curve had stopped rising (analysis.convergence); None: not recorded
            "finished_share": float(np.mean(flags)) if flags else None, "n_runs": len(sel),
        }
    return out


def _mean_finite(vals: Sequence[float]) -> float | None:
    v = [x for x in vals if not math.isnan(x)]
    return float(np.mean(v)) if v else None


def _std_finite(vals: Sequence[float]) -> float | None:
    v = [x for x in vals if not math.isnan(x)]
    return float(np.std(v)) if v else None


def dim_summary(summary: dict, split: str = "test") -> dict:
    """The smallest d_I that recovers 50% and 90% of PT's gain, pooled, per subspace and setting.

    ``{"found": {"unseen": {"d50": 16, "d90": None, "max_d": 64}, ...}, ...}`` (None: none up to
    ``max_d``), from an ``ipt_dims`` summary; ``split`` "dev" reads the dev split's pooled gain.
    """
    field = "pooled_gain_recovery" if split == "test" else "dev_pooled_gain_recovery"
    out: dict = {}
    for sub, by_setting in summary.items():
        for setting, by_d in by_setting.items():
            scores = {int(d): v.get(field) for d, v in by_d.items()}
            out.setdefault(sub, {})[setting] = dimension_thresholds(scores) | {"max_d": max(scores)}
    return out
