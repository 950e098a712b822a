"""The scores two ``pipeline`` stores hold, side by side: did a cheaper budget keep the answer?

For each store: mean PT test accuracy over the suite's tasks (the pipeline's PT config), the
zero-shot and probe means, recovery and gain recovery per d_I (seen/unseen, found/random), the
held-out family, and the stability run's seed spread of PT test accuracy (the yardstick: a
difference smaller than the seeds' spread is noise). Writes a markdown table to stdout.

    python bench/pipeline_scores.py BEFORE_STORE AFTER_STORE
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ipt_core.store import Store  # noqa: E402
from ipt_core.tasks import load_suite  # noqa: E402


def scores(root: str) -> dict:
    st = Store(root)
    dims = max(st.query("ipt_dims"), key=lambda e: (len(e.meta["dims"]), len(e.meta["train_tasks"])))  # the sweep
    train = set(dims.meta["train_tasks"]) | set(dims.meta["test_tasks"])
    original = {t.name: t.data_hash() for t in load_suite(dims.meta["suite"]).tasks}  # not the resampled seen tasks
    pt = [e.meta["test_acc"] for e in st.query("pt_run")
          if e.meta.get("task") in train and e.spec.get("task_data") == original.get(e.meta.get("task"))]
    out = {"PT test acc (mean over tasks)": float(np.mean(pt)),
           "zero-shot test acc": float(np.mean([e.meta["test_acc"] for e in st.query("zero_shot")])),
           "probe test acc": float(np.mean([e.meta["test_acc"] for e in st.query("probe")]))}
    for sub, block in dims.meta["summary"].items():
        for setting, per_d in block.items():
            for d, v in per_d.items():
                out[f"d_I={d} {setting} {sub}: recovery"] = v["recovery"]
                if v["gain_recovery"] is not None:
                    out[f"d_I={d} {setting} {sub}: gain recovery"] = v["gain_recovery"]
    for e in st.query("ipt_heldout_family"):
        for sub, block in e.meta["summary"].items():
            for d, v in block.get("unseen", {}).items():
                out[f"held-out family ({e.meta['heldout_family']}), {sub}: recovery"] = v["recovery"]
    stab = st.query("ipt_stability")
    if stab:
        fin = [f for f in stab[0].meta["final"] if f["init"] == "random"]
        out["stability: seeds' std of PT test acc"] = float(np.mean([f["test_std"] for f in fin]))
        out["stability: PT test acc, random init"] = float(np.mean([f["test_mean"] for f in fin]))
        out["stability: PT test acc, IST init"] = float(np.mean([f["test_mean"] for f in stab[0].meta["final"]
                                                                 if f["init"] == "ist"]))
    return out


def main() -> None:
    a, b = scores(sys.argv[1]), scores(sys.argv[2])
    print("| score | before | after |\n|---|---|---|")
    for k in list(dict.fromkeys(list(a) + list(b))):
        fmt = lambda d: f"{d[k]:.3f}" if k in d else "—"  # noqa: E731
        print(f"| {k} | {fmt(a)} | {fmt(b)} |")


if __name__ == "__main__":
    main()
