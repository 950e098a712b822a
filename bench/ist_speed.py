"""IST's speed targets, today's schedule against the converged one, side by side in one run.

1. **One real task**: each of ``--tasks`` (real-suite tasks: one small, one large by default) tuned
   alone in the found subspace (d_I ``--d``) that ``bench/ipt_real.py`` stored, once per schedule, each
   in a fresh scratch store (so nothing is served from a cache): wall time, training rows, dev
   evaluations, whether dev had stopped rising, and dev accuracy kept. Target: at most 60 s.
2. **The app's single-task intrinsic-tuning form**: the command the form queues,
   ``python -m ipt_core ist --suite demo --tasks T --d 16`` (the demo suite, the shipped subspace),
   run as a subprocess per schedule, model load included. Target: at most 30 s.

The rows go to ``bench/ist_speed.json``; ``--report`` prints the Markdown table bench/SPEED.md quotes.

    python bench/ist_speed.py --cache cache/ipt-real --prompt-kind deep
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ipt_real import SUITE, real_split, settings_for  # noqa: E402
from ipt_core.config.ipt import ISTConfig  # noqa: E402

OUT = ROOT / "bench" / "ist_speed.json"
SCHEDULES = {"today": ISTConfig(steps=40, batch_size=8, eval_every=20, lr=0.05, coords="raw"), "converged": ISTConfig()}
# the CLI flags of each schedule for the form's command (the converged one is ISTConfig's defaults: no flag)
FORM_FLAGS = {"today": ["--ist-steps", "40", "--ist-lr", "0.05", "--ist-coords", "raw"], "converged": []}


def one_task(args) -> list[dict]:
    import torch

    from ipt_core.analysis.convergence import run_finished
    from ipt_core.experiments.context import Context
    from ipt_core.experiments.ipt_stages import ISTRun, find_subspaces, intrinsic_tuning, pt_prompts, subspaces_of
    from ipt_core.store import Store
    from ipt_core.tasks import load_suite

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    suite = load_suite(args.suite)
    train, _, _, _ = real_split(suite)
    base = settings_for(args.prompt_kind, "cpu")
    main = Context.create(Store(args.cache), args.backbone, device="cpu", train_missing_prompts=False)
    tasks = [suite.task(n) for n in train]
    prompts, entries = pt_prompts(main, suite, tasks, 0, base.pt)
    found = find_subspaces(main, tasks, prompts, entries, [args.d], 0, base.msf, base.pt.kind)[args.d]
    space = subspaces_of(found, ["found"])["found"]
    out = []
    for name in args.tasks.split(","):
        for sched, cfg in SCHEDULES.items():
            with tempfile.TemporaryDirectory() as tmp:
                ctx = Context.create(Store(tmp), main.backbone, device="cpu")
                load0, t0 = os.getloadavg()[0], time.time()
                e = intrinsic_tuning(ctx, [ISTRun(suite.task(name), "unseen", "found", args.d, 0, found.key)],
                                     {(found.key, "found"): space}, cfg, base.pt.kind)[0]
                wall = time.time() - t0
            t = suite.task(name)
            out.append({"what": "one real task", "task": name, "train_rows": len(t.train), "dev_rows": len(t.dev),
                        "schedule": sched, "wall_s": round(wall, 1), "rows": cfg.steps * cfg.batch_size,
                        "evals": len(e.meta["dev_curve"]), "finished": run_finished(e.meta),
                        "dev_start": e.meta["dev_curve"][0][1], "dev_kept": e.meta["dev_acc"],
                        "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)})
            print(json.dumps(out[-1]), flush=True)
    return out


def form(args) -> list[dict]:
    out = []
    for sched in SCHEDULES:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "ipt_core", "ist", "--suite", "demo", "--tasks", args.form_task, "--d", "16",
                   "--device", "cpu", "--cache", tmp, "--json"] + FORM_FLAGS[sched]
            load0, t0 = os.getloadavg()[0], time.time()
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            wall = time.time() - t0
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        out.append({"what": "app form (ist command)", "task": args.form_task, "schedule": sched, "wall_s": round(wall, 1),
                    "command": "python -m ipt_core ist --suite demo --tasks " + args.form_task + " --d 16 " + " ".join(FORM_FLAGS[sched]),
                    "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2)})
        print(json.dumps(out[-1]), flush=True)
    return out


def report() -> str:
    rows = json.loads(OUT.read_text())
    lines = ["| target | task | schedule | wall | rows trained | dev evaluations | finished | dev start → kept | load before → after |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["what"] == "one real task":
            lines.append(f"| one real task, ≤ 60 s | {r['task']} ({r['train_rows']} train / {r['dev_rows']} dev rows) | "
                         f"{r['schedule']} | {r['wall_s']:.1f} s | {r['rows']} | {r['evals']} | {'yes' if r['finished'] else 'no'} | "
                         f"{r['dev_start']:.3f} → {r['dev_kept']:.3f} | {r['load_before']} → {r['load_after']} |")
        else:
            lines.append(f"| app form, ≤ 30 s | {r['task']} (demo; `{r['command'].strip()}`) | {r['schedule']} | {r['wall_s']:.1f} s "
                         f"| | | | | {r['load_before']} → {r['load_after']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=str(SUITE))
    ap.add_argument("--cache", help="the store bench/ipt_real.py filled (PT prompts, auto-encoders)")
    ap.add_argument("--prompt-kind", choices=["shallow", "deep"], default="deep")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--tasks", default="poem_sentiment,clinc_kitchen_and_dining", help="real tasks, tuned alone")
    ap.add_argument("--form-task", default="movie_sentiment", help="the demo task the form's command tunes")
    ap.add_argument("--backbone", default="encoder-sim")
    ap.add_argument("--report", action="store_true", help="print the table from bench/ist_speed.json")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:
        print(report())
        return
    rows = one_task(args) + form(args)
    OUT.write_text(json.dumps(rows, indent=1) + "\n")
    print(report())


if __name__ == "__main__":
    main()
