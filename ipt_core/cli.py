"""Command line: argument parsing only; the work is done by ``experiments`` and friends.

    python -m ipt_core tasks --suite demo [--json]
    python -m ipt_core tune  --suite demo --tasks movie_sentiment,sms_spam --seeds 2 --steps 100 [--json]
    python -m ipt_core probe --suite demo [--json]
    python -m ipt_core export --suite demo --task sms_spam --seed 0 --out DIR [--format peft|safetensors]

With ``--json`` the last line of stdout is one JSON object. Bad input prints one clear message
(no traceback) and exits 2; a cancelled run (SIGTERM/SIGINT) exits 130.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from dataclasses import fields

from .backbones import DEFAULT_BACKBONE, BackboneError
from .progress import CancelFlag, Reporter

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(value: str) -> list[int]:
    try:
        return [int(v) for v in _csv(value)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {value!r}") from exc


def _common(p: argparse.ArgumentParser, *, suite: bool = True) -> None:
    if suite:
        p.add_argument("--suite", default="demo", help="demo, a folder of task folders, a CrossFit folder, a CSV/TSV file, or hf:NAME")
        p.add_argument("--k", type=int, default=None, help="resample k examples per label for train and dev")
        p.add_argument("--data-seed", type=int, default=0, help="seed of the few-shot resample (with --k)")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="encoder-sim | encoder-mlm:MODEL | seq2seq:MODEL | causal:MODEL")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--cache", default=None, help="result store folder (default $IPT_CACHE or ./cache)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def _pt_args(p: argparse.ArgumentParser) -> None:
    from .methods.pt import PTConfig

    d = PTConfig()
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--prompt-len", type=int, default=d.n_tokens)
    p.add_argument("--prompt-kind", choices=["shallow", "deep"], default=d.kind)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--eval-every", type=int, default=d.eval_every)
    p.add_argument("--patience", type=int, default=d.patience)
    p.add_argument("--init", choices=["random", "vocab", "text"], default=d.init)
    p.add_argument("--init-text", default=None, help="with --init text (default: the task's description)")
    p.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm, help="per-run gradient clipping norm")


def _ipt_args(p: argparse.ArgumentParser) -> None:
    from .methods.ipt import ISTConfig, MSFConfig

    _pt_args(p)
    m, i = MSFConfig(), ISTConfig()
    p.add_argument("--msf-steps", type=int, default=m.steps)
    p.add_argument("--msf-lr", type=float, default=m.lr)
    p.add_argument("--alpha", type=float, default=m.alpha, help="weight of the reconstruction MSE in MSF")
    p.add_argument("--hidden", type=int, default=m.hidden, help="hidden width of Proj_b")
    p.add_argument("--norm", choices=["layer", "global"], default=m.norm, help="prompt normalisation before the auto-encoder")
    p.add_argument("--ist-steps", type=int, default=i.steps)
    p.add_argument("--ist-lr", type=float, default=i.lr)
    p.add_argument("--no-random-control", action="store_true")
    p.add_argument("--require-prompts", action="store_true",
                   help="use only PT prompts already in the store; a task without one is an error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ipt_core", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tasks", help="list a suite's tasks")
    p.add_argument("--suite", default="demo")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("tune", help="prompt tuning for tasks x seeds, in one bank")
    _common(p)
    p.add_argument("--tasks", type=_csv, default=None, help="comma-separated task names (default: all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seeds", type=int, default=1, help="number of seeds: 0..N-1")
    g.add_argument("--seed-list", type=_ints, default=None, help="explicit seeds, e.g. 3,7")
    p.add_argument("--no-baselines", action="store_true", help="skip the zero-shot reference row")
    p.add_argument("--checkpoint-every", type=int, default=50,
                   help="save the bank's state every N steps (0: never); the same command resumes after a crash")
    _pt_args(p)

    p = sub.add_parser("probe", help="zero-shot and linear-probe reference rows")
    _common(p)
    p.add_argument("--tasks", type=_csv, default=None)

    p = sub.add_parser("ipt", help="subspace finding + intrinsic tuning: recovery versus d_I")
    _common(p)
    p.add_argument("--train-tasks", type=_csv, default=None, help="tasks the subspace is found on (default: a family-stratified 3/4)")
    p.add_argument("--test-tasks", type=_csv, default=None, help="unseen tasks (default: the rest)")
    p.add_argument("--dims", type=_ints, default=[4, 16, 64], help="intrinsic dimensions, e.g. 1,4,16,64")
    p.add_argument("--seeds", type=int, default=1)
    _ipt_args(p)

    p = sub.add_parser("stability", help="PT from random init vs PT initialised from the IST solution")
    _common(p)
    p.add_argument("--tasks", type=_csv, required=True)
    p.add_argument("--train-tasks", type=_csv, default=None, help="subspace tasks (default: every other task)")
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--curve-every", type=int, default=10, help="dev evaluation interval of the curves")
    _ipt_args(p)

    p = sub.add_parser("ist", help="intrinsic tuning of tasks in an existing subspace (only z trains)")
    _common(p)
    p.add_argument("--tasks", type=_csv, required=True)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--subspace", choices=["found", "random"], default="found")
    p.add_argument("--decoder", default=None, help="store key of the msf entry (default: newest of this d for the suite)")
    p.add_argument("--prompt-kind", choices=["shallow", "deep"], default="deep")
    from .methods.ipt import ISTConfig

    p.add_argument("--ist-steps", type=int, default=ISTConfig().steps)
    p.add_argument("--ist-lr", type=float, default=ISTConfig().lr)

    p = sub.add_parser("pipeline", help="everything the app shows for a suite, with defaults for the suite and machine")
    _common(p)
    p.add_argument("--budget", choices=["quick", "full"], default=None, help="quick on CPU, full on GPU (default: by device)")

    p = sub.add_parser("export", help="write a learned prompt as a PEFT adapter or plain safetensors")
    _common(p)
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=["peft", "safetensors"], default=None,
                   help="default: peft for shallow prompts, safetensors for deep ones (PEFT has no per-layer prompt tuning)")
    _pt_args(p)

    from .compare import add_compare_parser

    add_compare_parser(sub)
    from .analysis_cli import register as register_analysis

    register_analysis(sub)  # map-quality, transfer (their own module; dispatched through args.func)
    return parser


def _store(args):
    from .distributed import shared_store
    from .store import Store

    return shared_store(Store(args.cache))  # under torchrun: rank 0 reads and writes for all


def _suite(args):
    from .experiments import load_and_resample

    return load_and_resample(args.suite, args.k, args.data_seed if args.k is not None else None)


def _pt_config(args):
    from .methods.pt import PTConfig

    return PTConfig(
        n_tokens=args.prompt_len, kind=args.prompt_kind, lr=args.lr, steps=args.steps, batch_size=args.batch_size,
        eval_every=args.eval_every, patience=args.patience, init=args.init, init_text=args.init_text,
        max_grad_norm=args.max_grad_norm,
    )


def _emit(args, payload: dict, text: str) -> None:
    from .distributed import is_main

    if not is_main():  # under torchrun every rank has the result; rank 0 prints it
        return
    if args.json:
        print(text, file=sys.stderr) if text else None
        print(json.dumps(payload))
    else:
        print(text)


def cmd_tasks(args) -> int:
    from .tasks import format_tasks_table, load_suite, tasks_report

    suite = load_suite(args.suite)
    _emit(args, tasks_report(suite), format_tasks_table(suite) if not args.json else "")
    return 0


def _format_rows(rows: list[dict], cols: list[str]) -> str:
    out = ["  ".join(f"{c:>18}" for c in cols)]
    for r in rows:
        out.append("  ".join(f"{r[c]:>18.4f}" if isinstance(r[c], float) else f"{str(r[c]):>18}" for c in cols))
    return "\n".join(out)


def cmd_tune(args) -> int:
    from .experiments import tune

    suite = _suite(args)
    seeds = args.seed_list if args.seed_list is not None else list(range(args.seeds))
    cfg = _pt_config(args)
    from .experiments import tune_command

    command = tune_command(args.suite, args.tasks or [], seeds, cfg, args.backbone, args.k, args.data_seed)
    reporter = Reporter("prompt tuning")
    report = tune(
        _store(args), suite, args.tasks, seeds, cfg, backbone=args.backbone, device=args.device,
        progress=reporter, should_cancel=CancelFlag(), command=command, with_baselines=not args.no_baselines,
        checkpoint_every=args.checkpoint_every,
    )
    reporter.close()
    cols = ["task", "seed", "dev_acc", "test_acc", "test_f1"] + ([] if args.no_baselines else ["zero_shot_test_acc"])
    text = _format_rows(report.runs, cols) + f"\n{len(report.runs)} runs in {report.seconds:.1f} s" + (" (from the store)" if report.from_cache else "")
    _emit(args, report.to_json(), text)
    return 0


def cmd_probe(args) -> int:
    from .experiments import probe_all

    rows = probe_all(_store(args), _suite(args), args.tasks, backbone=args.backbone, device=args.device,
                     command="python -m ipt_core probe --suite " + shlex.quote(args.suite))
    text = _format_rows(rows, ["task", "family", "zero_shot_test_acc", "probe_test_acc"])
    _emit(args, {"tasks": rows}, text)
    return 0


def cmd_export(args) -> int:
    from .export import export_prompt

    if args.format is None:
        args.format = "peft" if args.prompt_kind == "shallow" else "safetensors"
    out = export_prompt(
        _store(args), _suite(args), args.task, args.seed, _pt_config(args), args.out, fmt=args.format,
        backbone=args.backbone, device=args.device,
    )
    _emit(args, {"out": str(out), "format": args.format}, f"wrote {args.format} prompt to {out}")
    return 0


def _ipt_settings(args):
    from .ipt_experiments import IPTSettings
    from .methods.ipt import ISTConfig, MSFConfig

    return IPTSettings(
        pt=_pt_config(args),
        msf=MSFConfig(hidden=args.hidden, alpha=args.alpha, lr=args.msf_lr, steps=args.msf_steps, norm=args.norm),
        ist=ISTConfig(lr=args.ist_lr, steps=args.ist_steps),
        random_control=not args.no_random_control,
    )


def _context(args, reporter):
    from .ipt_experiments import Context

    return Context.create(_store(args), args.backbone, args.device, progress=reporter, should_cancel=CancelFlag(),
                          command=_command_line(args), train_missing_prompts=not getattr(args, "require_prompts", False))


def _command_line(args) -> str:
    from .analysis import reproducible_command

    return reproducible_command("python -m ipt_core", args._argv)  # without --cache DIR: runs on any machine


def cmd_ipt(args) -> int:
    from .ipt_experiments import recovery_experiment, summary_json
    from .pipeline import default_split

    suite = _suite(args)
    train, test = args.train_tasks, args.test_tasks
    if train is None:
        train, test_default = default_split(suite)
        test = test if test is not None else test_default
    elif test is None:
        test = [n for n in suite.names() if n not in train]
    reporter = Reporter("ipt")
    entry = recovery_experiment(_context(args, reporter), suite, train, test, args.dims, list(range(args.seeds)), _ipt_settings(args))
    reporter.close()
    out = summary_json(entry)
    lines = [f"train tasks: {len(train)}, unseen tasks: {len(test)}; recovery (gain recovery)"]
    for d in out["dims"]:
        cell = lambda b: "n/a" if str(d) not in b else f"{b[str(d)]['recovery']:.3f} ({b[str(d)]['gain_recovery'] if b[str(d)]['gain_recovery'] is None else round(b[str(d)]['gain_recovery'], 3)})"
        lines.append(f"d_I={d:>4}  seen {cell(out['seen'])}  unseen {cell(out['unseen'])}  "
                     f"random seen {cell(out['random_subspace']['seen'])}  random unseen {cell(out['random_subspace']['unseen'])}")
    _emit(args, out, "\n".join(lines) + f"\nstored as {entry.key}")
    return 0


def cmd_stability(args) -> int:
    from .ipt_experiments import stability_experiment

    suite = _suite(args)
    train = args.train_tasks or [n for n in suite.names() if n not in args.tasks]
    reporter = Reporter("stability")
    entry = stability_experiment(_context(args, reporter), suite, args.tasks, train, args.d, list(range(args.seeds)),
                                 _ipt_settings(args), eval_every=args.curve_every)
    reporter.close()
    final = entry.meta["final"]
    text = "\n".join(f"{f['task']:>24} {f['init']:>7}: final dev {f['mean']:.3f} ± {f['std']:.3f}" for f in final)
    _emit(args, {"final": final, "key": entry.key}, text + f"\nstored as {entry.key}")
    return 0


def cmd_ist(args) -> int:
    from .experiments import get_baseline
    from .ipt_experiments import tune_in_subspace
    from .methods.ipt import ISTConfig

    suite = _suite(args)
    reporter = Reporter("intrinsic tuning")
    ctx = _context(args, reporter)
    entries = tune_in_subspace(ctx, suite, args.tasks, args.d, list(range(args.seeds)),
                               ISTConfig(steps=args.ist_steps, lr=args.ist_lr), prompt_kind=args.prompt_kind,
                               subspace=args.subspace, decoder_key=args.decoder)
    reporter.close()
    rows = []
    for e in entries:
        zs = get_baseline(ctx.store, "zero_shot", ctx.backbone, suite.task(e.meta["task"]), device=ctx.device).meta
        rows.append({"task": e.meta["task"], "seed": e.meta["seed"], "d": e.meta["d"], "subspace": e.meta["subspace"],
                     "setting": e.meta["setting"], "dev_acc": e.meta["dev_acc"], "test_acc": e.meta["test_acc"],
                     "test_f1": e.meta["test_f1"], "zero_shot_test_acc": zs["test_acc"], "key": e.key})
    text = _format_rows(rows, ["task", "seed", "d", "subspace", "test_acc", "zero_shot_test_acc"])
    _emit(args, {"runs": rows, "decoder": entries[0].spec["decoder"]}, text)
    return 0


def cmd_pipeline(args) -> int:
    from .pipeline import run_pipeline

    reporter = Reporter("pipeline")
    report = run_pipeline(_context(args, reporter), _suite(args), budget=args.budget)
    reporter.close()
    text = "\n".join(f"{r['kind']:>20}  {r['key']}  {r.get('summary', '')}" for r in report["results"])
    _emit(args, report, text + f"\nstore: {report['store']}  ({report['seconds']:.0f} s)")
    return 0


def cmd_compare(args) -> int:
    from .compare import cmd_compare as run

    return run(args)


COMMANDS = {"tasks": cmd_tasks, "tune": cmd_tune, "probe": cmd_probe, "export": cmd_export, "ipt": cmd_ipt,
            "stability": cmd_stability, "pipeline": cmd_pipeline, "ist": cmd_ist,
            "compare": cmd_compare}


def main(argv: list[str] | None = None) -> int:
    from .bank import Cancelled
    from .store import StoreError
    from .tasks import TaskDataError

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = build_parser().parse_args(argv)
    args._argv = list(argv) if argv is not None else sys.argv[1:]
    from . import distributed

    started_group = False
    if distributed.env_world_size() > 1 and not distributed.is_distributed():
        # under torchrun: one process per GPU (or CPU share); see ipt_core.distributed
        started_group = distributed.init_from_env(getattr(args, "device", None))
    if not distributed.is_main():
        os.environ.pop("IPT_PROGRESS_FILE", None)  # progress from rank 0 only
    try:
        return (COMMANDS.get(args.command) or args.func)(args)
    except (TaskDataError, BackboneError, StoreError, KeyError, ValueError) as exc:  # IPTInputError is a ValueError
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Cancelled as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        if started_group:
            distributed.shutdown()
