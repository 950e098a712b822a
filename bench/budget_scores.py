"""What ``--budget quick`` costs in accuracy: PT and IST test accuracy, quick against paper, with the seeds' spread.

For each task, three seeds of ``tune`` (PT) and of ``ist`` (intrinsic tuning in the d_I = 16
subspace the pipeline found) under each budget, on one store; the table gives mean ± std over
seeds, the difference, and whether the difference lies within the seeds' spread (|quick − paper|
at most std(quick) + std(paper)). The subspace is the dimension sweep's (found on the pipeline's
training tasks), so the tasks should be the pipeline's unseen ones (``pipeline.default_split``).

    python bench/profile_pipeline.py --cache STORE -- pipeline --suite demo   # first: the subspace
    python bench/budget_scores.py --store STORE --out bench/SPEED.md
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ipt_core.cli import main as cli  # noqa: E402
from ipt_core.experiments.pipeline import default_split  # noqa: E402
from ipt_core.store import Store  # noqa: E402
from ipt_core.tasks import load_suite  # noqa: E402

BUDGETS = ("quick", "paper")


def _run(argv: list[str]) -> tuple[dict, float]:
    """One CLI command in this process; its ``--json`` object and its wall seconds."""
    out = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out):
        rc = cli.main(argv + ["--json"])
    if rc != 0:
        raise SystemExit(f"{' '.join(argv)} exited {rc}:\n{out.getvalue()[-2000:]}")
    return json.loads(out.getvalue().strip().splitlines()[-1]), time.perf_counter() - t0


def sweep_decoder(store: Store, d: int) -> str:
    """The ``msf`` key of the dimension sweep's subspace at ``d`` (the sweep with the most training tasks)."""
    sweeps = [e for e in store.query("ipt_dims") if d in e.meta["dims"]]
    if not sweeps:
        raise SystemExit(f"no ipt_dims entry with d_I = {d} in {store.root}; run the pipeline on this store first")
    sweep = max(sweeps, key=lambda e: (len(e.meta["train_tasks"]), e.created))
    row = next(r for r in sweep.meta["rows"] if r["d"] == d and r["subspace"] == "found")
    return store.get(row["ist_key"]).spec["decoder"]


def _cell(v: list[float]) -> str:
    return f"{np.mean(v):.3f} ± {np.std(v):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="a store the demo pipeline ran on (it holds the subspace)")
    ap.add_argument("--tasks", default=None, help="comma-separated (default: the first two unseen tasks of the split)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--d", type=int, default=16)
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    args = ap.parse_args()
    suite = load_suite("demo")
    tasks = args.tasks.split(",") if args.tasks else default_split(suite)[1][:2]
    store = Store(args.store)
    decoder = sweep_decoder(store, args.d)
    load0 = os.getloadavg()
    acc: dict = {}
    secs: dict = {}
    base = ["--suite", "demo", "--cache", args.store, "--tasks", ",".join(tasks)]
    # PT seeds 1..N: the pipeline stored seed 0 of the quick schedule, and a run served from the store is no timing
    pt_seeds = ",".join(str(s) for s in range(1, args.seeds + 1))
    for b in BUDGETS:
        res, secs[("pt", b)] = _run(["tune", *base, "--seed-list", pt_seeds, "--budget", b, "--no-baselines"])
        for r in res["runs"]:
            acc.setdefault(("pt", b, r["task"]), []).append(r["test_acc"])
        res, secs[("ist", b)] = _run(["ist", *base, "--seeds", str(args.seeds), "--d", str(args.d), "--decoder", decoder, "--budget", b])
        for r in res["runs"]:
            acc.setdefault(("ist", b, r["task"]), []).append(r["test_acc"])
    load1 = os.getloadavg()
    lines = [f"### Quick against paper budget: test accuracy over {args.seeds} seeds",
             "", f"`python bench/budget_scores.py --store STORE` ({time.strftime('%Y-%m-%d %H:%M')}; load average "
             f"{load0[0]:.2f} before, {load1[0]:.2f} after; IST in the pipeline's d_I = {args.d} subspace `{decoder}`). "
             "Within spread: |quick − paper| ≤ std(quick) + std(paper).", "",
             "| method | task | quick | paper | quick − paper | within spread |", "|---|---|---|---|---|---|"]
    n_within = n_all = 0
    for m in ("pt", "ist"):
        for t in tasks:
            q, p = acc[(m, "quick", t)], acc[(m, "paper", t)]
            diff = float(np.mean(q) - np.mean(p))
            ok = abs(diff) <= float(np.std(q) + np.std(p))
            n_within += ok
            n_all += 1
            lines.append(f"| {m.upper()} | {t} | {_cell(q)} | {_cell(p)} | {diff:+.3f} | {'yes' if ok else 'no'} |")
    lines += ["", "| wall seconds | quick | paper | ratio |", "|---|---|---|---|"]
    for m in ("pt", "ist"):
        lines.append(f"| {m.upper()} ({len(tasks)} tasks x {args.seeds} seeds) | {secs[(m, 'quick')]:.0f} | "
                     f"{secs[(m, 'paper')]:.0f} | {secs[(m, 'paper')] / secs[(m, 'quick')]:.1f}x |")
    lines += ["", f"{n_within} of {n_all} cells within the seeds' spread.", ""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as f:
            f.write("\n" + text + "\n")


if __name__ == "__main__":
    main()
