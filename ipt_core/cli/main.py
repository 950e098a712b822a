"""Command line: argument parsing and dispatch only; the work is done by ``experiments`` and friends.

    python -m ipt_core tasks --suite demo [--json]
    python -m ipt_core tune  --suite demo --tasks movie_sentiment,sms_spam --seeds 2 --steps 100 [--json]
    python -m ipt_core probe --suite demo [--json]
    python -m ipt_core export --suite demo --task sms_spam --seed 0 --out DIR [--format peft|safetensors]
    python -m ipt_core verify [--repair] [--json] [--cache DIR]   (exit 1: corrupt entries left in place)

With ``--json`` the last line of stdout is one JSON object. Bad input prints one clear message
(no traceback) and exits 2: a flag out of its range (``ipt_core.config.limits``), a device that is not
present, a prompt longer than the model's positions allow, bad task data, a missing stored result,
an out-of-memory error (the message names the batch size flag). A cancelled run (SIGTERM/SIGINT)
exits 130. The flags and their translation into configs live in ``cli_args``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from ipt_core.cli import args as cli_args
from ipt_core.cli.app_command import cmd_app
from ipt_core.cli.args import (
    add_common,
    add_ipt_args,
    add_pt_args,
    add_seeds,
    csv_names,
)
from ipt_core.config import limits
from ipt_core.config.ipt import SUBSPACES
from ipt_core.errors import InputError
from ipt_core.train import progress
from ipt_core.train.progress import CancelFlag, Reporter

EXIT_BAD_INPUT = 2
EXIT_CANCELLED = 130

class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (no usage dump): ``PROG: error: argument --lr: ...``, exit 2."""

    def error(self, message: str):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {' '.join(message.split())} (see {self.prog} --help)\n")


class _OnlySubparsers:
    """Subparsers that register one command: the others get a throwaway parser, never attached."""

    def __init__(self, sub, only: str):
        self._sub, self._only = sub, only

    def add_parser(self, name: str, **kw):
        return self._sub.add_parser(name, **kw) if name == self._only else argparse.ArgumentParser(add_help=False)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; ``only``: register just that command (the app's cost estimate parses one
    command, and ``compare``'s flags read the ATTEMPT and VIP configs, whose modules load torch)."""
    parser = _Parser(prog="python -m ipt_core", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    if only is not None:
        sub = _OnlySubparsers(sub, only)

    p = sub.add_parser("tasks", help="list a suite's tasks")
    p.add_argument("--suite", default="demo")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("tune", help="prompt tuning for tasks x seeds, in one bank")
    add_common(p)
    p.add_argument("--tasks", type=csv_names, default=None, help="comma-separated task names (default: all)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--seeds", type=limits.argtype("seeds"), default=1, help="number of seeds: 0..N-1")
    g.add_argument("--seed-list", type=cli_args.limits.list_argtype("seed_list", cli_args.limits.MAX_SEED_LIST),
                   default=None, help="explicit seeds, e.g. 3,7")
    p.add_argument("--no-baselines", action="store_true", help="skip the zero-shot reference row")
    p.add_argument("--checkpoint-every", type=limits.argtype("checkpoint_every"), default=50,
                   help="save the bank's state every N steps (0: never); the same command resumes after a crash")
    add_pt_args(p)

    p = sub.add_parser("probe", help="zero-shot and linear-probe reference rows")
    add_common(p)
    p.add_argument("--tasks", type=csv_names, default=None)

    p = sub.add_parser("ipt", help="subspace finding + intrinsic tuning: recovery versus d_I")
    add_common(p)
    p.add_argument("--train-tasks", type=csv_names, default=None, help="tasks the subspace is found on (default: a family-stratified 3/4)")
    p.add_argument("--test-tasks", type=csv_names, default=None, help="unseen tasks (default: the rest)")
    p.add_argument("--dims", type=cli_args.limits.list_argtype("dims", cli_args.limits.MAX_DIMS), default=[4, 16, 64],
                   help="intrinsic dimensions, e.g. 1,4,16,64")
    p.add_argument("--max-seen", type=limits.argtype("max_seen"), default=None,
                   help="seen tasks: this many training tasks, one family after another, re-tuned on new data "
                        "(default: every training task)")
    add_seeds(p)
    add_ipt_args(p)

    p = sub.add_parser("stability", help="PT from random init vs PT initialised from the IST solution")
    add_common(p)
    p.add_argument("--tasks", type=csv_names, required=True)
    p.add_argument("--train-tasks", type=csv_names, default=None, help="subspace tasks (default: every other task)")
    p.add_argument("--d", type=limits.argtype("d_intrinsic"), default=16)
    add_seeds(p, 3)
    p.add_argument("--curve-every", type=limits.argtype("curve_every"), default=10, help="dev evaluation interval of the curves")
    add_ipt_args(p)

    p = sub.add_parser("ist", help="intrinsic tuning of tasks in an existing subspace (only z trains)")
    add_common(p)
    p.add_argument("--tasks", type=csv_names, required=True)
    p.add_argument("--d", type=limits.argtype("d_intrinsic"), default=8)
    add_seeds(p)
    p.add_argument("--subspace", choices=list(SUBSPACES), default="found",
                   help="found: the auto-encoder's; linear: the principal directions of its training prompts; random: its decoder untrained")
    p.add_argument("--decoder", default=None, help="store key of the msf entry (default: newest of this d for the suite)")
    p.add_argument("--prompt-kind", choices=["shallow", "deep"], default="deep")
    cli_args.add_ist_args(p)  # --budget, --ist-steps, --ist-lr

    p = sub.add_parser("pipeline", help="everything the app shows for a suite, with defaults for the suite and machine")
    add_common(p)
    p.add_argument("--budget", choices=["quick", "paper", "full"], default=None,
                   help="quick on CPU, paper on GPU (default: by device); full is paper's old name")

    p = sub.add_parser("export", help="write a learned prompt as a PEFT adapter or plain safetensors")
    add_common(p)
    p.add_argument("--task", required=True)
    p.add_argument("--seed", type=limits.argtype("seed"), default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=["peft", "safetensors"], default=None,
                   help="default: peft for shallow prompts, safetensors for deep ones (PEFT has no per-layer prompt tuning)")
    add_pt_args(p)

    if only in (None, "compare"):
        cli_args.add_compare_parser(sub)
    if only in (None, "map-quality", "transfer", "umap"):
        from ipt_core.cli.analysis import register as register_analysis

        register_analysis(sub)  # map-quality, transfer, umap (their own module; dispatched through args.func)
    if only in (None, "verify"):
        from ipt_core.cli.verify import register as register_verify

        register_verify(sub)  # verify: check (and --repair) the result store; exit 1 when corrupt entries remain
    if only in (None, "app"):
        from ipt_core.cli.app_command import register as register_app

        register_app(sub)  # app: streamlit run on the app, in a child process (cli/app_command.py)
    return parser


# every command's name: ``parse`` registers only the command named first (the others' flags load torch)
COMMAND_NAMES = ("tasks", "tune", "probe", "ipt", "stability", "ist", "pipeline", "export", "compare",
                 "map-quality", "transfer", "umap", "verify", "app")
LIGHT_COMMANDS = {"tasks", "app"}  # commands that never import torch (nor transformers)


def parse(argv: list[str] | None = None, *, announce: bool = False) -> argparse.Namespace:
    """Parse and check ``argv`` at the boundary, loading no model: the arguments, or ``SystemExit(2)`` with one line.

    ``SystemExit(0)`` for ``--help``. Every flag's range, the device, the prompt length against the
    model's positions and the intrinsic dimensions against the prompt size are checked here.
    ``announce``: once the flags parse, print the command's one status line on a terminal (see :func:`_announce`).
    """
    argv_list = list(argv) if argv is not None else sys.argv[1:]
    # the parser of the named command alone (same flags, same messages); the full one for --help or a typo
    parser = build_parser(only=argv_list[0] if argv_list and argv_list[0] in COMMAND_NAMES else None)
    args = parser.parse_args(argv_list)
    args._argv = argv_list
    if announce:
        _announce(args)
    if args.command != "pipeline":  # the pipeline's budget names its own presets (ipt_core.experiments.pipeline)
        from ipt_core.config.budgets import apply

        apply(args, args.command)
    try:
        cli_args.validate(args, args.command)
    except cli_args.ArgError as exc:
        parser.exit(EXIT_BAD_INPUT, f"{parser.prog} {args.command}: error: {' '.join(str(exc).split())} "
                                    f"(see {parser.prog} {args.command} --help)\n")
    except InputError as exc:  # the suite the prompt-length check read: TaskDataError, an unknown task
        parser.exit(EXIT_BAD_INPUT, f"error: {' '.join(str(exc).split())}\n")
    return args


def refusal(argv: list[str]) -> str | None:
    """The one line the CLI would refuse ``argv`` with (exit 2), or None when it passes every boundary check.

    For callers that build a command for later (the app's forms, before they queue a job): nothing is
    printed and no model is loaded. ``--help`` counts as a refusal.

    Example::

        refusal(["tune", "--lr", "nan"])   # "python -m ipt_core tune: error: argument --lr: must be ..."
    """
    import contextlib
    import io

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parse(list(argv))
    except SystemExit as exc:
        return err.getvalue().strip() or f"exit {exc.code}"
    return None


def _announce(args) -> None:
    """The first line, right after the flags parse (before the device and model checks import torch):
    on a terminal and without --json, what the command is about to load. ``tasks`` prints none."""
    if args.command in LIGHT_COMMANDS or getattr(args, "json", False):
        return
    backbone = getattr(args, "backbone", None)
    progress.status(f"{args.command}: starting" + (f", loading {backbone} ..." if backbone else " ..."))


def _store(args):
    from ipt_core.store import Store
    from ipt_core.train.distributed import shared_store

    return shared_store(Store(args.cache))  # under torchrun: rank 0 reads and writes for all


def _suite(args):
    from ipt_core.experiments.context import load_and_resample

    return load_and_resample(args.suite, args.k, args.data_seed if args.k is not None else None)


def _is_main() -> bool:
    """Rank 0, or not distributed (no process group exists unless ``ipt_core.train.dist_comm`` was imported)."""
    comm = sys.modules.get("ipt_core.train.dist_comm")
    return True if comm is None else comm.is_main()


def _emit(args, payload: dict, text: str) -> None:
    if not _is_main():  # under torchrun every rank has the result; rank 0 prints it
        return
    if args.json:
        print(text, file=sys.stderr) if text else None
        print(json.dumps(payload))
    else:
        print(text)


def cmd_tasks(args) -> int:
    from ipt_core.tasks import format_tasks_table, load_suite, tasks_report

    suite = load_suite(args.suite)
    _emit(args, tasks_report(suite), format_tasks_table(suite) if not args.json else "")
    return 0


def _format_rows(rows: list[dict], cols: list[str]) -> str:
    out = ["  ".join(f"{c:>18}" for c in cols)]
    for r in rows:
        out.append("  ".join(f"{r[c]:>18.4f}" if isinstance(r[c], float) else f"{str(r[c]):>18}" for c in cols))
    return "\n".join(out)


def cmd_tune(args) -> int:
    from ipt_core.experiments.tune import tune

    suite = _suite(args)
    seeds = args.seed_list if args.seed_list is not None else list(range(args.seeds))
    cfg = cli_args.pt_config(args)
    from ipt_core.experiments.tune import tune_command

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
    from ipt_core.experiments.tune import probe_all

    rows = probe_all(_store(args), _suite(args), args.tasks, backbone=args.backbone, device=args.device,
                     command="python -m ipt_core probe --suite " + shlex.quote(args.suite))
    text = _format_rows(rows, ["task", "family", "zero_shot_test_acc", "probe_test_acc"])
    _emit(args, {"tasks": rows}, text)
    return 0


def cmd_export(args) -> int:
    from ipt_core.experiments.export import export_prompt

    if args.format is None:
        args.format = "peft" if args.prompt_kind == "shallow" else "safetensors"
    out = export_prompt(
        _store(args), _suite(args), args.task, args.seed, cli_args.pt_config(args), args.out, fmt=args.format,
        backbone=args.backbone, device=args.device,
    )
    _emit(args, {"out": str(out), "format": args.format}, f"wrote {args.format} prompt to {out}")
    return 0


def _context(args, reporter):
    from ipt_core.experiments.context import Context

    return Context.create(_store(args), args.backbone, args.device, progress=reporter, should_cancel=CancelFlag(),
                          command=_command_line(args), train_missing_prompts=not getattr(args, "require_prompts", False))


def _command_line(args) -> str:
    from ipt_core.cli.command_line import reproducible_command

    return reproducible_command("python -m ipt_core", args._argv)  # without --cache DIR: runs on any machine


def cmd_ipt(args) -> int:
    from ipt_core.experiments.ipt import recovery_experiment, summary_json
    from ipt_core.experiments.pipeline import default_split, seen_subset

    suite = _suite(args)
    train, test = args.train_tasks, args.test_tasks
    if train is None:
        train, test_default = default_split(suite)
        test = test if test is not None else test_default
    elif test is None:
        test = [n for n in suite.names() if n not in train]
    reporter = Reporter("ipt")
    seen = None if args.max_seen is None else seen_subset(suite, list(train), args.max_seen)
    entry = recovery_experiment(_context(args, reporter), suite, train, test, args.dims, list(range(args.seeds)),
                                cli_args.ipt_settings(args), seen_names=seen)
    reporter.close()
    out = summary_json(entry)
    _emit(args, out, ipt_summary_text(out, len(train), len(test)) + f"\nstored as {entry.key}")
    return 0


def ipt_summary_text(out: dict, n_train: int, n_test: int) -> str:
    """``ipt``'s text: pooled gain recovery per d_I, subspace and setting, with the share of IST runs that
    finished, then the smallest d_I recovering 50% and 90% of PT's gain."""
    fmt = lambda v: "  n/a" if v is None else f"{v:5.2f}"
    lines = [f"train tasks: {n_train}, unseen tasks: {n_test}; pooled gain recovery (0 = zero-shot, 1 = PT) "
             "[share of IST runs finished]"]
    for sub, block in out["subspaces"].items():
        for setting in ("seen", "unseen"):
            cells = []
            for d in out["dims"]:
                c = block.get(setting, {}).get(str(d))
                if c is not None:
                    fin = c.get("finished_share")
                    cells.append(f"d_I={d}: {fmt(c.get('pooled_gain_recovery'))} [{'?' if fin is None else f'{fin:.0%}'}]")
            if cells:
                lines.append(f"{sub:>6} {setting:>6}  " + "  ".join(cells))
    for sub, block in out["dimension_summary"].items():
        for setting, t in block.items():
            show = lambda d: f"d_I {d}" if d is not None else f"none up to {t['max_d']}"
            lines.append(f"{sub:>6} {setting:>6}  50% of PT's gain: {show(t['d50'])}; 90%: {show(t['d90'])}")
    return "\n".join(lines)


def cmd_stability(args) -> int:
    from ipt_core.experiments.ipt import stability_experiment

    suite = _suite(args)
    train = args.train_tasks or [n for n in suite.names() if n not in args.tasks]
    reporter = Reporter("stability")
    entry = stability_experiment(_context(args, reporter), suite, args.tasks, train, args.d, list(range(args.seeds)),
                                 cli_args.ipt_settings(args), eval_every=args.curve_every)
    reporter.close()
    final = entry.meta["final"]
    text = "\n".join(f"{f['task']:>24} {f['init']:>7}: final dev {f['mean']:.3f} ± {f['std']:.3f}" for f in final)
    _emit(args, {"final": final, "key": entry.key}, text + f"\nstored as {entry.key}")
    return 0


def cmd_ist(args) -> int:
    from ipt_core.analysis.convergence import run_finished
    from ipt_core.experiments.ipt import tune_in_subspace
    from ipt_core.experiments.tune import get_baseline

    suite = _suite(args)
    reporter = Reporter("intrinsic tuning")
    ctx = _context(args, reporter)
    entries = tune_in_subspace(ctx, suite, args.tasks, args.d, list(range(args.seeds)),
                               cli_args.ist_config(args), prompt_kind=args.prompt_kind,
                               subspace=args.subspace, decoder_key=args.decoder)
    reporter.close()
    rows = []
    for e in entries:
        zs = get_baseline(ctx.store, "zero_shot", ctx.backbone, suite.task(e.meta["task"]), device=ctx.device).meta
        rows.append({"task": e.meta["task"], "seed": e.meta["seed"], "d": e.meta["d"], "subspace": e.meta["subspace"],
                     "setting": e.meta["setting"], "dev_acc": e.meta["dev_acc"], "test_acc": e.meta["test_acc"],
                     "test_f1": e.meta["test_f1"], "zero_shot_test_acc": zs["test_acc"],
                     "finished": run_finished(e.meta), "key": e.key})
    text = _format_rows(rows, ["task", "seed", "d", "subspace", "test_acc", "zero_shot_test_acc", "finished"])
    _emit(args, {"runs": rows, "decoder": entries[0].spec["decoder"]}, text)
    return 0


def cmd_pipeline(args) -> int:
    from ipt_core.experiments.pipeline import run_pipeline

    reporter = Reporter("pipeline")
    report = run_pipeline(_context(args, reporter), _suite(args), budget=args.budget)
    reporter.close()
    text = "\n".join(f"{r['kind']:>20}  {r['key']}  {r.get('summary', '')}" for r in report["results"])
    _emit(args, report, text + f"\nstore: {report['store']}  ({report['seconds']:.0f} s)")
    return 0


def cmd_compare(args) -> int:
    """``python -m ipt_core compare ...``: run (or read) the comparison and print it."""
    from ipt_core.experiments.compare import compare, compare_json, format_summary

    settings = cli_args.compare_settings(args)
    suite = _suite(args)
    if not hasattr(args, "_argv"):
        args._argv = ["compare", "--suite", args.suite]
    reporter = Reporter("compare")
    try:
        entry = compare(_context(args, reporter), suite, args.tasks, args.methods, list(range(args.seeds)), settings)
    finally:
        reporter.close()
    text = format_summary(entry.meta["summary"]) + f"\nstored as {entry.key}"
    _emit(args, compare_json(entry), text)
    return 0


COMMANDS = {"tasks": cmd_tasks, "tune": cmd_tune, "probe": cmd_probe, "export": cmd_export, "ipt": cmd_ipt,
            "stability": cmd_stability, "pipeline": cmd_pipeline, "ist": cmd_ist,
            "compare": cmd_compare, "app": cmd_app}


def _out_of_memory(args, exc: BaseException) -> str:
    flag = f"--batch-size (now {args.batch_size})" if hasattr(args, "batch_size") else "the batch size"
    first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
    return (f"out of memory while running {args.command!r} ({first[:160]}); lower {flag} and run the same command "
            "again: results already stored are kept, the bank that ran out stored nothing")


def _env_world_size() -> int:
    """``WORLD_SIZE`` (torchrun sets it), 1 when absent: read here so that ``tasks`` need not import torch."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _out_of_memory_errors() -> tuple:
    """MemoryError, plus CUDA's out-of-memory error once torch is loaded (``tasks`` never loads it)."""
    torch = sys.modules.get("torch")
    cuda_oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return (MemoryError,) + ((cuda_oom,) if cuda_oom is not None else ())


def _cancelled_error() -> type:
    """The loop's ``Cancelled``, when the loop (and so torch) is loaded; only it raises it."""
    state = sys.modules.get("ipt_core.train.loop.state")
    return state.Cancelled if state is not None else _NeverRaised


class _NeverRaised(Exception):
    pass


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 done, 2 bad input (one line on stderr, no traceback), 130 cancelled.

    Bad input is an :class:`~ipt_core.errors.InputError` (or a store that cannot be written, or memory
    that ran out); any other exception is a bug and propagates with its traceback (exit 1).

    torch is imported by the commands that need it, never by ``tasks`` nor by a refused flag. On a
    terminal (and without --json) the first line says what is loading, and each stage draws a bar.
    """
    from ipt_core.store.entry import StoreError

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    args = parse(argv, announce=True)
    bars_before = progress.bars(not getattr(args, "json", False))  # --json: no bar, the progress file alone
    started_group = False
    dist_comm = None
    if _env_world_size() > 1 or "ipt_core.train.distributed" in sys.modules:
        from ipt_core.train import dist_comm

        if _env_world_size() > 1 and not dist_comm.is_distributed():
            # under torchrun: one process per GPU (or CPU share); see ipt_core.train.distributed
            started_group = dist_comm.init_from_env(getattr(args, "device", None))
        if not dist_comm.is_main():
            os.environ.pop("IPT_PROGRESS_FILE", None)  # progress from rank 0 only
    try:
        return (COMMANDS.get(args.command) or args.func)(args)
    except (InputError, StoreError) as exc:  # the user's input, or a store that cannot be written: one line
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _out_of_memory_errors() as exc:  # per bank: nothing of the bank was stored
        print(f"error: {_out_of_memory(args, exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except _cancelled_error() as exc:
        print(f"cancelled: {exc}", file=sys.stderr)
        return EXIT_CANCELLED
    finally:
        progress.bars(bars_before)
        if started_group:
            dist_comm.shutdown()
