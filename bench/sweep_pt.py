"""Sweep of prompt-tuning settings on real tasks, beside the zero-shot and linear-probe rows.

Every configuration trains all chosen tasks in one bank; results go to the store, so an
interrupted sweep resumes where it stopped and the app can browse every run. The table (mean test
accuracy over tasks, and per task) is written to ``bench/SWEEP.md``.

    python bench/sweep_pt.py --suite ../shared/tasks-real --tasks-per-family 1 --steps 150
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ipt_core.config.pt import PTConfig  # noqa: E402
from ipt_core.experiments.context import cached_backbone
from ipt_core.experiments.tune import probe_all, tune  # noqa: E402
from ipt_core.store import Store  # noqa: E402
from ipt_core.tasks import load_suite  # noqa: E402

GRID = [
    {"kind": "shallow", "n_tokens": 8, "lr": 0.03},
    {"kind": "shallow", "n_tokens": 16, "lr": 0.1},
    {"kind": "deep", "n_tokens": 8, "lr": 0.01},
    {"kind": "deep", "n_tokens": 16, "lr": 0.01},
    {"kind": "deep", "n_tokens": 8, "lr": 0.003},
]


def pick_tasks(suite, per_family: int | None) -> list[str]:
    if not per_family:
        return suite.names()
    out = []
    for fam, names in sorted(suite.families().items()):
        out += sorted(names)[:per_family]
    return [n for n in suite.names() if n in out]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=str(ROOT.parent / "shared" / "tasks-real"))
    ap.add_argument("--tasks-per-family", type=int, default=1, help="0: every task")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--cache", default=None)
    ap.add_argument("--configs", default=None, help="indices into the grid, e.g. 0,2")
    ap.add_argument("--out", default=str(ROOT / "bench" / "SWEEP.md"))
    args = ap.parse_args()

    suite = load_suite(args.suite)
    names = pick_tasks(suite, args.tasks_per_family)
    store = Store(args.cache)
    import torch

    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else ("cpu" if args.device == "auto" else args.device)
    bb = cached_backbone("encoder-sim", device)
    t0 = time.time()
    ref = {r["task"]: r for r in probe_all(store, suite, names, backbone=bb, device=device)}
    grid = GRID if args.configs is None else [GRID[int(i)] for i in args.configs.split(",")]
    rows = []
    for g in grid:
        cfg = PTConfig(steps=args.steps, batch_size=args.batch_size, eval_every=max(10, args.steps // 6), **g)
        t1 = time.time()
        rep = tune(store, suite, names, list(range(args.seeds)), cfg, backbone=bb, device=device, with_baselines=False)
        accs = {}
        for r in rep.runs:
            accs.setdefault(r["task"], []).append(r["test_acc"])
        rows.append({"config": g, "steps": args.steps, "batch_size": args.batch_size, "seconds": time.time() - t1,
                     "from_cache": rep.from_cache, "per_task": {k: float(np.mean(v)) for k, v in accs.items()},
                     "mean": float(np.mean([np.mean(v) for v in accs.values()]))})
        print(json.dumps({"config": g, "mean": rows[-1]["mean"], "seconds": rows[-1]["seconds"]}), flush=True)

    zs = float(np.mean([ref[n]["zero_shot_test_acc"] for n in names]))
    lp = float(np.mean([ref[n]["probe_test_acc"] for n in names]))
    lines = [
        "# Prompt-tuning sweep on real tasks",
        "",
        f"Command: `python bench/sweep_pt.py --suite {args.suite} --tasks-per-family {args.tasks_per_family} "
        f"--steps {args.steps} --batch-size {args.batch_size} --seeds {args.seeds}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, device {device}; "
        f"{time.strftime('%Y-%m-%d')}; total {time.time() - t0:.0f} s.  ",
        f"Tasks ({len(names)}): {', '.join(names)}.  ",
        "Backbone: encoder-sim (packaged all-MiniLM-L6-v2). Test accuracy, mean over tasks"
        + (f" and {args.seeds} seeds" if args.seeds > 1 else " (seed 0)") + "; best-dev checkpoint.",
        "",
        "| setting | mean test acc | seconds |",
        "|---|---|---|",
        f"| zero-shot (no prompt) | {zs:.3f} | |",
        f"| linear probe on frozen features | {lp:.3f} | |",
    ]
    for r in rows:
        g = r["config"]
        lines.append(f"| PT {g['kind']}, {g['n_tokens']} vectors, lr {g['lr']} | {r['mean']:.3f} | {r['seconds']:.0f}"
                     + (" (cached)" if r["from_cache"] else "") + " |")
    lines += ["", "Per task:", "", "| task | zero-shot | probe | " + " | ".join(f"{g['config']['kind']}-{g['config']['n_tokens']}-{g['config']['lr']}" for g in rows) + " |",
              "|---|---|---|" + "---|" * len(rows)]
    for n in names:
        lines.append(f"| {n} | {ref[n]['zero_shot_test_acc']:.3f} | {ref[n]['probe_test_acc']:.3f} | "
                     + " | ".join(f"{r['per_task'][n]:.3f}" for r in rows) + " |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
