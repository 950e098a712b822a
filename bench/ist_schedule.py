"""Which IST optimiser reaches its plateau in the fewest model passes? Schedules side by side on the real suite.

Every schedule tunes the same tasks (the real suite's seen and unseen tasks of ``bench/ipt_real.py``'s
split) in the same subspaces (the PT prompts and auto-encoders that ``bench/ipt_real.py`` stored, found
again from the store, never retrained), one after another in one process, each an ``ipt_dims`` sweep in
the store. For each: wall time and load average, training rows per run, dev-curve evaluations, the
share of runs whose dev accuracy had stopped rising (``ipt_core.analysis.convergence.finished``), the
rows at which dev first came within 0.01 of its best, and pooled gain recovery on dev (what a default
is chosen on) and test. ``--report`` writes the table (bench/IST_SCHEDULE.md) and the mean dev curves
(bench/ist_schedule_curves.json) from the store and the log, training nothing.

    python bench/ist_schedule.py --cache cache/ipt-real --prompt-kind deep          # after ipt_real.py stored PT and MSF
    python bench/ist_schedule.py --cache cache/ipt-real --prompt-kind deep --report
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ipt_real import SUITE, real_split, settings_for  # noqa: E402
from ipt_core.analysis.convergence import plateau_step  # noqa: E402
from ipt_core.analysis.metrics import pooled_gain_recovery  # noqa: E402
from ipt_core.config.ipt import ISTConfig  # noqa: E402
from ipt_core.experiments.pipeline import seen_subset  # noqa: E402
from ipt_core.store import Store  # noqa: E402
from ipt_core.tasks import load_suite  # noqa: E402

LOG = ROOT / "bench" / "ist_schedule_runs.json"
OUT = ROOT / "bench" / "IST_SCHEDULE.md"
CURVES = ROOT / "bench" / "ist_schedule_curves.json"

# name -> (what it is, the config); "today": bench/ipt_real.py's CPU schedule before this comparison (320 rows a run)
SCHEDULES = {
    "today": ("z itself from ~0 (the paper's IST), 40 steps x 8 rows, lr 0.05 constant",
              ISTConfig(steps=40, batch_size=8, eval_every=20, lr=0.05, coords="raw")),
    "today-x10": ("the same, ten times as long: 400 steps x 8 rows",
                  ISTConfig(steps=400, batch_size=8, eval_every=40, lr=0.05, coords="raw")),
    "spread-0.3": ("coordinates in units of the training tasks' spread from their centroid, 20 steps x 16 rows, "
                   "lr 0.3 cosine", ISTConfig(steps=20, batch_size=16, eval_every=4, lr=0.3, coords="spread",
                                              lr_schedule="cosine")),
    "spread-0.1": ("the same at lr 0.1", ISTConfig(steps=20, batch_size=16, eval_every=4, lr=0.1, coords="spread",
                                                   lr_schedule="cosine")),
    "spread-1": ("the same at lr 1", ISTConfig(steps=20, batch_size=16, eval_every=4, lr=1.0, coords="spread",
                                               lr_schedule="cosine")),
    "spread-0.3-x2": ("lr 0.3, twice as long: 40 steps x 16 rows",
                      ISTConfig(steps=40, batch_size=16, eval_every=8, lr=0.3, coords="spread", lr_schedule="cosine")),
    # the plateau check: is the default's end a plateau, or only where its cosine decay stops it?
    "spread-0.3-x10": ("lr 0.3, ten times as long: 200 steps x 16 rows (cosine over the 200)",
                       ISTConfig(steps=200, batch_size=16, eval_every=20, lr=0.3, coords="spread", lr_schedule="cosine")),
}


def _log(record: dict) -> None:
    runs = json.loads(LOG.read_text()) if LOG.exists() else []
    runs = [r for r in runs if r["schedule"] != record["schedule"] or r["prompt_kind"] != record["prompt_kind"]] + [record]
    LOG.write_text(json.dumps(runs, indent=1) + "\n")


def run(args) -> None:
    from ipt_core.experiments.context import Context
    from ipt_core.experiments.ipt import recovery_experiment
    from ipt_core.train.progress import Reporter

    suite = load_suite(args.suite)
    train, unseen, _, _ = real_split(suite)
    seen = seen_subset(suite, train, 6)
    base = settings_for(args.prompt_kind, "cpu")
    dims = [int(d) for d in args.dims.split(",")]
    subspaces = tuple(args.subspaces.split(","))
    for name in args.schedules.split(","):
        cfg = SCHEDULES[name][1]
        settings = replace(base, ist=cfg, subspaces=subspaces)
        command = (f"python bench/ist_schedule.py --prompt-kind {args.prompt_kind} --dims {args.dims} "
                   f"--subspaces {args.subspaces} --schedules {name}")
        ctx = Context.create(Store(args.cache), args.backbone, device=args.device, command=command,
                             progress=Reporter(f"ist {name}"), train_missing_prompts=False)
        load0, t0 = os.getloadavg()[0], time.time()
        e = recovery_experiment(ctx, suite, train, unseen, dims, [0], settings, seen_names=seen)
        _log({"schedule": name, "prompt_kind": args.prompt_kind, "key": e.key, "command": command,
              "seconds": round(time.time() - t0, 1), "load_before": round(load0, 2),
              "load_after": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M")})
        print(json.dumps({"schedule": name, "seconds": round(time.time() - t0, 1), "key": e.key}), flush=True)


def _f(v, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _long_curves(by_schedule: dict) -> list[str]:
    """The mean dev curve of every schedule evaluated at least 8 times, against training rows: whether dev was still
    rising where the default stops (its rows per run), or had reached its plateau."""
    default_rows = ISTConfig().steps * ISTConfig().batch_size
    out = []
    for name, cells in by_schedule.items():
        for cell, c in cells.items():
            if len(c["rows"]) < 8:
                continue
            if not out:
                out = ["Mean dev accuracy against training rows, for the schedules long enough to show the curve past "
                       f"the default's {default_rows} rows (rows, then dev accuracy):", "",
                       "| schedule | cell | " + " | ".join(f"{r}" for r in c["rows"]) + " |",
                       "|---|---|" + "---|" * len(c["rows"])]
            out.append(f"| {name} | {cell} | " + " | ".join(f"{a:.3f}" for a in c["dev_acc"]) + " |")
    return out + [""] if out else []


def report(args) -> None:
    store = Store(args.cache)
    runs = json.loads(LOG.read_text()) if LOG.exists() else []
    lines = ["# IST schedules side by side (real suite)", "",
             f"Written by `python bench/ist_schedule.py --report` from the store and `{LOG.relative_to(ROOT)}`. Each "
             "schedule tuned the same seen and unseen tasks of the real suite (bench/IPT_REAL.md's split, seed 0) in the "
             "same subspaces (PT prompts and auto-encoders of `bench/ipt_real.py`, read from the store), one schedule after "
             "another on the 2-core CPU; *wall* is the IST bank alone (PT, MSF and zero-shot came from the store), and it "
             "is only comparable at equal load: the load average is in the table (bench/SPEED.md times the two schedules "
             "side by side on one task). **Bold**: ISTConfig's default. "
             "*Rows/run*: training rows through the frozen model per run; *evals*: dev evaluations per run (each one pass "
             "over the task's dev split). *Finished*: the share of runs whose dev accuracy no longer rose over the last "
             "fifth of the run (`ipt_core/analysis/convergence.py`). *Rows to plateau*: median over runs of the training "
             "rows at which dev first came within 0.01 of the run's best. Gain recovery is pooled: Σ(IST − zero-shot) / "
             "Σ(PT − zero-shot) over tasks; dev is what a default is chosen on.", ""]
    curves = {}
    for kind in sorted({r["prompt_kind"] for r in runs}):
        lines += [f"## {kind} prompts", "",
                  "| schedule | what | wall | load before → after | rows/run | evals/run | subspace | d_I | setting | finished | "
                  "rows to plateau | dev at start → kept | pooled gain (dev) | pooled gain (test) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in [r for r in runs if r["prompt_kind"] == kind]:
            e = store.get(r["key"])
            if e is None:
                lines.append(f"| {r['schedule']} | not in this store | | | | | | | | | | | | |")
                continue
            what, cfg = SCHEDULES[r["schedule"]]
            name = f"**{r['schedule']}** (default)" if cfg == ISTConfig() else r["schedule"]
            rows = e.meta["rows"]
            ist = {row["ist_key"]: store.get(row["ist_key"]) for row in rows}
            first = True
            for sub in ("found", "linear", "random"):
                for d in e.meta["dims"]:
                    for setting in ("seen", "unseen"):
                        sel = [row for row in rows if (row["subspace"], row["d"], row["setting"]) == (sub, d, setting)]
                        if not sel:
                            continue
                        metas = [ist[row["ist_key"]].meta for row in sel]
                        per_step = [m.get("rows_per_step", cfg.batch_size) for m in metas]
                        plateau = [plateau_step(m["dev_curve"]) * k for m, k in zip(metas, per_step)]
                        start = np.mean([m["dev_curve"][0][1] for m in metas])
                        kept = np.mean([row["ist_dev_acc"] for row in sel])
                        fin = np.mean([bool(row["finished"]) for row in sel])
                        head = (f"| {name} | {what} | {r['seconds']:.0f} s | {r['load_before']} → {r['load_after']} | "
                                f"{cfg.steps * cfg.batch_size} | {len(metas[0]['dev_curve'])} |") if first else "| | | | | | |"
                        first = False
                        lines.append(head + f" {sub} | {d} | {setting} | {fin:.0%} | {int(np.median(plateau))} | "
                                     f"{start:.3f} → {kept:.3f} | {_f(pooled_gain_recovery(sel, 'dev'))} | "
                                     f"{_f(pooled_gain_recovery(sel))} |")
                        # the mean dev curve over the runs, against training rows
                        steps = [s for s, _ in metas[0]["dev_curve"]]
                        acc = np.mean([[a for _, a in m["dev_curve"]] for m in metas
                                       if len(m["dev_curve"]) == len(steps)], axis=0)
                        curves.setdefault(kind, {}).setdefault(r["schedule"], {})[f"{sub} d{d} {setting}"] = {
                            "rows": [s * per_step[0] for s in steps], "dev_acc": [round(float(a), 4) for a in acc]}
        lines.append("")
        lines += _long_curves(curves.get(kind, {}))
    lines += ["Commands (each trained only its IST runs; the store held the rest):", ""]
    lines += [f"- `{r['command']}` ({r['date']})" for r in runs]
    OUT.write_text("\n".join(lines) + "\n")
    CURVES.write_text(json.dumps(curves, indent=1) + "\n")
    print(f"wrote {OUT} and {CURVES}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=str(SUITE))
    ap.add_argument("--cache", required=True, help="the store bench/ipt_real.py filled (PT prompts, auto-encoders)")
    ap.add_argument("--prompt-kind", choices=["shallow", "deep"], default="deep")
    ap.add_argument("--dims", default="16,64")
    ap.add_argument("--subspaces", default="found,random")
    ap.add_argument("--schedules", default="spread-0.3,spread-1,today")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backbone", default="encoder-sim")
    ap.add_argument("--report", action="store_true")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    unknown = [s for s in args.schedules.split(",") if s not in SCHEDULES]
    if unknown:
        raise SystemExit(f"--schedules: unknown {unknown}; known: {', '.join(SCHEDULES)}")
    if not Path(args.suite).is_dir():
        raise SystemExit(f"{args.suite}: the real suite is not here (see ../shared/tasks-real/README.md)")
    report(args) if args.report else run(args)


if __name__ == "__main__":
    main()
