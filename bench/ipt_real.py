"""The IPT reproduction on the real suite: every task of ``../shared/tasks-real``, a family-stratified
split with one whole family held out, recovery versus d_I (found against a random subspace), the
ablations that explain it, and recovery versus the number of training tasks.

Each invocation is one command whose results land in the store (``ipt_dims`` sweeps and an
``ipt_task_count`` curve, so the app's Recovery page shows them) and whose wall time is logged in
``bench/ipt_real_runs.json``; ``--report`` writes bench/IPT_REAL.md from the store and that log.
PT prompts, subspaces and IST runs are cached one by one, so every ablation reuses the main run's
PT prompts (and the runs it shares with it).

    python bench/ipt_real.py --cache STORE --prompt-kind shallow            # the main table, seed 0
    python bench/ipt_real.py --cache STORE --prompt-kind shallow --ablation norm
    python bench/ipt_real.py --cache STORE --prompt-kind shallow --ablation task-count
    python bench/ipt_real.py --cache STORE --report                         # bench/IPT_REAL.md

Ablations (at ``--ablation-d``, default 16, same split, seeds and PT prompts): ``norm`` (MSF's
prompt normalisation: none / global / per layer), ``alpha`` (the reconstruction weight: 0.1, 10),
``task-loss`` (MSF without its task loss: a plain auto-encoder of the prompts), ``task-count``
(MSF on 25/50/75/100% of the training tasks, on the same seen and unseen tasks). The prompt kind is
the ``--prompt-kind`` of the main run. Settings are compared on the dev split (``dev_gain_recovery``
in every row); test scores are reported, never used to choose.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ipt_core.config.ipt import IPTSettings, ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig  # noqa: E402
from ipt_core.experiments.pipeline import seen_subset  # noqa: E402
from ipt_core.store import Store  # noqa: E402
from ipt_core.tasks import Suite, load_suite  # noqa: E402

SUITE = ROOT.parent / "shared" / "tasks-real"
RUNS_LOG = ROOT / "bench" / "ipt_real_runs.json"
ABLATIONS = ("norm", "alpha", "task-loss", "task-count", "msf-schedule", "pt-schedule")
IST_SCHEDULES = ("converged", "today")  # ISTConfig's defaults (bench/IST_SCHEDULE.md), or the CPU schedule before them
N_TOKENS = {"shallow": 16, "deep": 8}  # shallow: the prototype's 16 vectors; deep: PT's default 8 per layer


def real_split(suite: Suite, heldout_family: str | None = None, test_fraction: float = 0.25,
               seed: int = 0) -> tuple[list[str], list[str], str, list[str]]:
    """``(train, unseen, held-out family, its tasks)``: one family of at least two tasks is held out whole
    (the smallest such family; ties by a seeded draw, unless named); of every other family of two or more
    tasks, ``test_fraction`` (at least one) is unseen with its relatives in training; single-task families
    train. ``unseen`` includes the held-out family's tasks."""
    fams = {f: sorted(n) for f, n in sorted(suite.families().items())}
    multi = [f for f, n in fams.items() if len(n) >= 2]
    if not multi:
        raise SystemExit(f"{suite.name}: no family has two tasks; a stratified split needs relatives")
    rng = np.random.default_rng(seed)
    if heldout_family is None:
        smallest = min(len(fams[f]) for f in multi)
        ties = [f for f in multi if len(fams[f]) == smallest]
        heldout_family = ties[int(rng.integers(len(ties)))]
    elif heldout_family not in fams:
        raise SystemExit(f"--heldout-family {heldout_family!r}: families are {', '.join(fams)}")
    train, unseen = [], list(fams[heldout_family])
    for f, names in fams.items():
        if f == heldout_family:
            continue
        k = max(1, int(len(names) * test_fraction)) if len(names) >= 2 else 0
        order = [names[i] for i in rng.permutation(len(names))]
        unseen += order[:k]
        train += order[k:]
    keep = suite.names()
    return ([n for n in keep if n in train], [n for n in keep if n in unseen], heldout_family,
            list(fams[heldout_family]))


def settings_for(kind: str, budget: str, ist: str = "converged") -> IPTSettings:
    """``cpu``: a schedule that fits one prompt kind and one seed of the 30-task run in an hour on 2 cores;
    ``paper``: the methods' own defaults (a GPU). ``ist``: ``converged`` (ISTConfig's defaults, chosen on
    dev in bench/IST_SCHEDULE.md) or ``today`` (the CPU schedule before that: z itself, 40 steps x 8 rows)."""
    if budget == "paper":
        return IPTSettings(pt=PTConfig(kind=kind, n_tokens=N_TOKENS[kind]))
    if budget == "smoke":  # the script's own test: every stage, two steps each
        return IPTSettings(pt=PTConfig(kind=kind, n_tokens=2, steps=2, batch_size=4, eval_every=2),
                           msf=MSFConfig(steps=2, batch_size=4, eval_every=2, hidden=8),
                           ist=ISTConfig(steps=2, batch_size=4, eval_every=2))
    ist_cfg = ISTConfig() if ist == "converged" else ISTConfig(steps=40, batch_size=8, eval_every=20, lr=0.05, coords="raw")
    return IPTSettings(pt=PTConfig(kind=kind, n_tokens=N_TOKENS[kind], steps=80, batch_size=16, eval_every=20),
                       msf=MSFConfig(steps=100, batch_size=32, eval_every=100), ist=ist_cfg)


def ablation_settings(base: IPTSettings, ablation: str) -> list[tuple[str, IPTSettings]]:
    msf = base.msf
    if ablation == "norm":
        return [(f"norm {n}", replace(base, msf=replace(msf, norm=n))) for n in ("none", "global", "layer")
                if not (n == "global" and base.pt.kind == "shallow")]  # shallow: one layer, global is per-layer
    if ablation == "alpha":
        return [(f"alpha {a:g}", replace(base, msf=replace(msf, alpha=a))) for a in (0.1, 1.0, 10.0)]
    if ablation == "task-loss":
        return [("MSF task loss on", base), ("MSF task loss off", replace(base, msf=replace(msf, task_loss=False)))]
    if ablation == "msf-schedule":  # does subspace finding limit unseen recovery? longer, and wider
        return [(f"MSF {msf.steps} steps, hidden {msf.hidden}", base),
                (f"MSF {msf.steps * 3} steps, hidden {msf.hidden}", replace(base, msf=replace(msf, steps=msf.steps * 3))),
                (f"MSF {msf.steps} steps, hidden 384", replace(base, msf=replace(msf, hidden=384)))]
    if ablation == "pt-schedule":  # does prompt tuning limit it? PT (sources and references) twice as long
        pt = base.pt
        return [(f"PT {pt.steps} steps", base),
                (f"PT {pt.steps * 2} steps", replace(base, pt=replace(pt, steps=pt.steps * 2)))]
    raise SystemExit(f"unknown ablation {ablation!r}; one of {', '.join(ABLATIONS)}")


def _log_run(path: Path, record: dict) -> None:
    runs = json.loads(path.read_text()) if path.exists() else []
    runs = [r for r in runs if r["command"] != record["command"]] + [record]
    path.write_text(json.dumps(runs, indent=1) + "\n")


def run(args) -> None:
    from ipt_core.experiments.context import Context
    from ipt_core.experiments.ipt import recovery_experiment, task_count_experiment
    from ipt_core.train.progress import Reporter

    suite = load_suite(args.suite)
    train, unseen, held, _ = real_split(suite, args.heldout_family)
    seen = seen_subset(suite, train, args.max_seen)
    base = replace(settings_for(args.prompt_kind, args.budget, args.ist), subspaces=tuple(args.subspaces.split(",")))
    if args.alpha is not None:
        base = replace(base, msf=replace(base.msf, alpha=args.alpha))
    seeds = list(range(args.seeds))
    dims = [int(d) for d in args.dims.split(",")]
    command = "python bench/ipt_real.py " + " ".join(shlex.quote(a) for a in args.argv if a)
    load0, t0 = os.getloadavg()[0], time.time()
    ctx = Context.create(Store(args.cache), args.backbone, device=args.device, command=command,
                         progress=Reporter("ipt_real"))
    keys = []
    if args.ablation is None:
        keys.append(("main", recovery_experiment(ctx, suite, train, unseen, dims, seeds, base, seen_names=seen).key))
    elif args.ablation == "task-count":
        e = task_count_experiment(ctx, suite, train, unseen, args.ablation_d, (0.25, 0.5, 0.75, 1.0), seeds, base,
                                  max_seen=len(seen), seen_first=seen, controls_partial=False)
        keys.append(("task-count", e.key))
    else:
        for label, s in ablation_settings(base, args.ablation):
            keys.append((label, recovery_experiment(ctx, suite, train, unseen, [args.ablation_d], seeds, s,
                                                    seen_names=seen).key))
    _log_run(Path(args.runs_log), {"command": command, "prompt_kind": args.prompt_kind, "ablation": args.ablation or "main",
              "seconds": round(time.time() - t0, 1), "load_before": round(load0, 2),
              "load_after": round(os.getloadavg()[0], 2), "device": str(ctx.device), "date": time.strftime("%Y-%m-%d %H:%M"),
              "split": {"train": train, "unseen": unseen, "seen": seen, "heldout_family": held}, "entries": keys})
    print(json.dumps({"seconds": round(time.time() - t0, 1), "entries": keys}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", default=str(SUITE))
    ap.add_argument("--cache", default=None)
    ap.add_argument("--prompt-kind", choices=["shallow", "deep"], default="shallow")
    ap.add_argument("--budget", choices=["cpu", "paper", "smoke"], default="cpu")
    ap.add_argument("--dims", default="4,16,64")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--max-seen", type=int, default=6, help="training tasks re-tuned on new data as the seen set")
    ap.add_argument("--heldout-family", default=None)
    ap.add_argument("--ablation", choices=ABLATIONS, default=None)
    ap.add_argument("--ablation-d", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=None, help="MSF's reconstruction weight (default: MSFConfig's)")
    ap.add_argument("--ist", choices=IST_SCHEDULES, default="converged",
                    help="IST's schedule: converged (ISTConfig's defaults) or today (the CPU schedule before them)")
    ap.add_argument("--subspaces", default="found,linear,random", help="where IST tunes (found always)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backbone", default="encoder-sim", help="as the CLI's (e.g. encoder-sim:.device/minilm on the GPU)")
    ap.add_argument("--runs-log", default=str(RUNS_LOG), help="where each run's command, wall time and entries are logged")
    ap.add_argument("--report", action="store_true", help="write --out from the store and the runs' log; train nothing")
    ap.add_argument("--out", default=str(ROOT / "bench" / "IPT_REAL.md"))
    argv = sys.argv[1:] if argv is None else argv
    args = ap.parse_args(argv)
    args.argv = [a for a in argv]
    if "--cache" in args.argv:  # the command names no machine's folder
        i = args.argv.index("--cache")
        del args.argv[i:i + 2]
    if not Path(args.suite).is_dir():
        raise SystemExit(f"{args.suite}: the real suite is not here (see ../shared/tasks-real/README.md)")
    if args.report:
        from bench.ipt_real_report import write_report

        write_report(Store(args.cache), Path(args.runs_log), Path(args.out))
    else:
        run(args)


if __name__ == "__main__":
    main()
