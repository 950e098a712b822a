"""The app's time estimates against the time the jobs really take (issue 31).

For ten launch forms, the command each form queues with its defaults (built by the forms' own
functions: ``ipt_app.forms.tune_form_config``, ``ipt_app.forms_ipt.compare_form_config``,
``ipt_run_argv``, ``ist_form_config``, ``cli_default``, ``ipt_core.cli.args.*_argv``; never retyped),
made short where a default would take more than a few minutes on a 2-core CPU (with the form's own
widgets: fewer tasks or steps; the ``note`` column says what changed), is run as the real CLI
subprocess ``python -m ipt_core ... --cache TMP`` into a fresh temporary store: nothing is cached, and
the rate comes from the shipped demo results' banks, as on a fresh clone. Just before each run the
estimate the form would show is made (:func:`ipt_app.cost.machine_speed` of the fresh store and the
shipped results, :func:`ipt_app.cost.estimate`); the table gives its range and point, the actual
wall time, actual / point, whether the actual time fell in the range, the CPU time of the run and
the 1-min load average before and after.

    python bench/estimates.py --dry-run                 # the commands and their estimates only
    python bench/estimates.py                           # idle -> bench/ESTIMATES.md (about 15 min on 2 cores)
    python bench/estimates.py --load 4 --append         # 4 busy loops: rows added to the table
    python bench/estimates.py --forms tune-1 --steps 2 --out /tmp/e.md   # one tiny form (plumbing)
    python bench/estimates.py --overhead 3              # start-up and tail of a tiny job (cost.DEFAULT_STARTUP_S)

``--load N`` starts N busy-loop processes, waits until the load average has risen (at most 90 s),
measures, and stops them. ``--steps N`` overrides every trained stage's steps (a smoke test).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
OUT = ROOT / "bench" / "ESTIMATES.md"
SUITE = "demo"
HEADER = ("| form | command | estimate | point | actual | actual / point | in range | CPU s | load before | "
          "load after | machine | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")


@dataclass
class Form:
    name: str
    argv: list[str]
    note: str = ""
    est: dict = field(default_factory=dict)


def forms(budget: str) -> list[Form]:
    """The ten forms' commands, as the forms build them with their defaults (see the module doc)."""
    import logging

    import streamlit  # noqa: F401 - its loggers first, then quiet: the forms' modules outside the app say "no runtime"

    for name in ("streamlit.runtime.caching.cache_data_api", "streamlit.runtime.caching.cache_resource_api"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from ipt_app.forms import cli_default, common_flags, tune_form_config
    from ipt_app.forms_ipt import compare_form_config, default_split, ipt_run_argv, ist_form_config
    from ipt_core.cli.args import compare_argv, config_of, ist_argv, pt_argv
    from ipt_core.config.backbone import DEFAULT_BACKBONE
    from ipt_core.config.registry import DEFAULT_COMPARE_METHODS
    from ipt_core.tasks import load_suite

    names = list(load_suite(SUITE).names())
    flags = common_flags({"backbone": DEFAULT_BACKBONE}, "auto")  # the form's default model and device: no flags

    def tune(tasks: list[str], budget: str = budget, seeds: int | None = None, **changed) -> list[str]:
        """``tune_form``'s command: its widgets start at ``config_of("tune", budget)``; ``changed`` ones moved."""
        base = config_of("tune", budget)
        widgets = dict(steps=base.steps, eval_every=base.eval_every, kind=base.kind, n_tokens=base.n_tokens,
                       lr=base.lr, batch_size=base.batch_size) | changed
        cfg = tune_form_config(budget, **widgets)
        seeds = cli_default("tune", "seeds") if seeds is None else seeds
        argv = ["tune", "--suite", SUITE, "--seeds", str(int(seeds))] + pt_argv(cfg, budget) + flags
        return argv + (["--tasks", ",".join(tasks)] if tasks else [])

    def compare(tasks: list[str], methods) -> list[str]:
        cfg = compare_form_config(budget, steps=config_of("compare", budget).pt.steps)
        return (["compare", "--suite", SUITE, "--tasks", ",".join(tasks), "--methods", ",".join(methods),
                 "--seeds", str(int(cli_default("compare", "seeds")))] + compare_argv(cfg, budget) + flags)

    out = [
        Form("tune-1", tune(names[:1]), "1 task (the form: none = all)"),
        Form("tune-all", tune([]), "the form's defaults"),
        Form("tune-2x20", tune(names[:2], steps=20), "2 tasks, 20 steps (the issue's job)"),
        Form("tune-paper", tune(names[:1], budget="paper"), "1 task, the paper budget (a GPU's defaults)"),
        Form("probe", ["probe", "--suite", SUITE] + flags, "the button"),
    ]
    ist = _ist_subspace(names, cli_default("ist", "d"))
    if ist is not None:
        cfg = ist_form_config(budget, steps=config_of("ist", budget).steps)
        out.append(Form("ist", ["ist", "--suite", SUITE, "--tasks", names[0], "--d", str(ist["d"]), "--subspace", "found"]
                        + ist_argv(cfg, budget) + ["--prompt-kind", ist["kind"], "--decoder", ist["key"]] + flags,
                        "the shipped subspace, the form's first task"))
    train, test = default_split(names[:4])  # the forms' split, of 4 tasks (all 24, d_I 4/16/64: about an hour)
    out.append(Form("ipt", ["ipt", "--suite", SUITE, "--train-tasks", ",".join(train), "--test-tasks", ",".join(test),
                            "--dims", str(int(cli_default("ist", "d"))), "--seeds", str(int(cli_default("ipt", "seeds")))]
                    + ipt_run_argv("ipt", budget) + flags, "the find-a-subspace button's command, on 4 of the 24 tasks"))
    out.append(Form("stability", ["stability", "--suite", SUITE, "--tasks", names[0], "--seeds",
                                  str(int(cli_default("stability", "seeds"))), "--d", str(int(cli_default("stability", "d")))]
                    + ipt_run_argv("stability", budget) + ["--train-tasks", ",".join(names[1:3])] + flags,
                    "subspace of 2 tasks (the CLI's --train-tasks; the form: all 23 others)"))
    out.append(Form("compare-2", compare(names[:2], DEFAULT_COMPARE_METHODS), "2 tasks, the form's methods"))
    out.append(Form("compare-pt", compare(names[:2], ["zero-shot", "probe", "pt"]), "2 tasks, no source prompts"))
    return out


def _ist_subspace(names: list[str], d: int) -> dict | None:
    """The subspace the intrinsic-tuning form opens on in a fresh store: a shipped one of ``d`` (as ``subspaces``)."""
    from ipt_core.paths import SHIPPED_RESULTS
    from ipt_core.store import Store

    if not SHIPPED_RESULTS.is_dir():
        return None
    found = []
    for e in Store(SHIPPED_RESULTS).query("msf"):
        m = e.meta
        train, shape = m.get("train_tasks") or [], m.get("prompt_shape") or []
        if train and set(train) <= set(names) and isinstance(m.get("d"), int):
            found.append({"key": e.key, "d": m["d"], "kind": "deep" if len(shape) == 3 else "shallow", "created": e.created})
    found.sort(key=lambda s: -s["created"])
    return next((s for s in found if s["d"] == d), found[0] if found else None)


def with_steps(argv: list[str], steps: int) -> list[str]:
    """``argv`` with every trained stage at ``steps`` steps (a smoke test of the plumbing)."""
    from ipt_core.cli.main import build_parser

    sub = next(a for a in build_parser(only=argv[0])._actions if a.dest == "command").choices[argv[0]]
    have = {o for a in sub._actions for o in a.option_strings}
    out = list(argv)
    for flag in ("--steps", "--msf-steps", "--ist-steps"):
        if flag in have:
            if flag in out:
                out[out.index(flag) + 1] = str(steps)
            else:
                out += [flag, str(steps)]
    return out


def estimate_of(argv: list[str], store: Path) -> dict:
    """The estimate the form shows for ``argv`` on a fresh store (the shipped results' banks): made now."""
    from ipt_app import cost
    from ipt_core.paths import SHIPPED_RESULTS
    from ipt_core.store import Store
    from ipt_core.tasks import load_suite

    cost._OVERHEAD_CACHE.clear()
    suite = load_suite(SUITE)
    names = list(suite.names())
    examples = sum(sum(suite.task(n).sizes.values()) if isinstance(suite.task(n).sizes, dict) else 0 for n in names)
    speed = cost.machine_speed([Store(store), Store(SHIPPED_RESULTS)], "cpu")
    e = cost.estimate(argv, n_suite_tasks=len(names), rate=speed, example_rows=examples)
    return {"low": e.seconds_low, "point": e.seconds, "high": e.seconds_high, "rows": e.rows, "load": speed.load,
            "rate": speed.rate, "source": speed.source, "overhead": e.overhead_s}


def run(argv: list[str], store: Path, timeout: float) -> dict:
    """``python -m ipt_core <argv> --cache store`` to the end: wall and CPU seconds, the 1-min load around it."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1")
    env.pop("IPT_PROGRESS_FILE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0, t0 = os.getloadavg()[0], time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "ipt_core", *argv, "--json", "--cache", str(store)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=timeout)
    wall, load1 = time.perf_counter() - t0, os.getloadavg()[0]
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"rc": p.returncode, "wall": wall, "cpu": cpu, "load_before": load0, "load_after": load1,
            "error": p.stderr.strip().splitlines()[-1][:200] if p.returncode and p.stderr.strip() else ""}


def busy_loops(n: int) -> list[subprocess.Popen]:
    """``n`` processes spinning on a core each (their own process group, stopped by :func:`stop`)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(n)]


def stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    for p in procs:
        p.wait(timeout=10)


def wait_for_load(n: int, at_most: float = 90.0) -> float:
    """Wait until the 1-min load average has risen to about ``n`` (it follows in about a minute)."""
    t0 = time.time()
    while time.time() - t0 < at_most and os.getloadavg()[0] < 0.8 * n:
        time.sleep(2)
    return os.getloadavg()[0]


def fmt(s: float) -> str:
    from ipt_app.cost import fmt_seconds

    return fmt_seconds(s)


def row(f: Form, got: dict, machine: str | None) -> str:
    from ipt_app.cost import fmt_range

    e = f.est
    cmd = shlex.join(["python", "-m", "ipt_core", *f.argv])
    inside = "yes" if e["low"] <= got["wall"] <= e["high"] else ("longer" if got["wall"] > e["high"] else "shorter")
    actual = f"{got['wall']:.0f} s" + ("" if got["rc"] == 0 else f" (exit {got['rc']}: {got['error']})")
    rng, exact = fmt_range(e["low"], e["high"]), f"{e['low']:.0f}–{e['high']:.0f} s"
    if machine is None:  # no busy loops of ours and no --machine: the 1-min load average is all we know
        machine = "idle" if got["load_before"] < 0.5 * (os.cpu_count() or 1) else "busy (other work)"
    return (f"| {f.name} | `{cmd}` | {exact if rng == exact else f'{rng} ({exact})'} | {e['point']:.0f} s "
            f"| {actual} | {got['wall'] / e['point']:.2f} | {inside} | {got['cpu']:.0f} | {got['load_before']:.2f} "
            f"| {got['load_after']:.2f} | {machine} | {f.note} |\n")


def overhead(repeats: int) -> None:
    """Start-up (process start to the first progress report) and tail (last report to exit) of a tiny
    ``tune``: the figures behind ``ipt_app.cost.DEFAULT_STARTUP_S`` and ``DEFAULT_TAIL_S``."""
    argv = ["tune", "--suite", SUITE, "--tasks", "sms_spam", "--steps", "2", "--budget", "quick", "--json"]
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="ipt-overhead-") as tmp:
            pf = Path(tmp) / "progress.json"
            env = dict(os.environ, PYTHONPATH=str(ROOT), IPT_PROGRESS_FILE=str(pf))
            load0, t0 = os.getloadavg()[0], time.time()
            p = subprocess.Popen([sys.executable, "-m", "ipt_core", *argv, "--cache", str(Path(tmp) / "store")], cwd=ROOT,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            first = None
            while p.poll() is None:
                if first is None and pf.exists():
                    try:
                        first = json.loads(pf.read_text())["time"]
                    except (ValueError, KeyError):
                        pass
                time.sleep(0.05)
            end = time.time()
            last = json.loads(pf.read_text())["time"] if pf.exists() else None
            print(f"start-up {first - t0:.1f} s, tail {end - last:.1f} s, all {end - t0:.1f} s "
                  f"(exit {p.returncode}; load {load0:.2f} -> {os.getloadavg()[0]:.2f})" if first and last
                  else f"no progress report (exit {p.returncode})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--forms", default=None, help="comma-separated subset of: tune-1, tune-all, tune-2x20, tune-paper, "
                                                  "probe, ist, ipt, stability, compare-2, compare-pt")
    ap.add_argument("--budget", default="quick", help="the forms' budget (quick: a CPU's)")
    ap.add_argument("--load", type=int, default=0, help="run N busy loops for the duration (a loaded machine)")
    ap.add_argument("--machine", default=None, help="the machine column, e.g. 'idle' (the 1-min load average "
                    "after the previous form's job says 'busy' for a minute) or 'loaded (the test suite beside it)'")
    ap.add_argument("--append", action="store_true", help="add the rows to the table in --out instead of writing it anew")
    ap.add_argument("--dry-run", action="store_true", help="print the commands and their estimates only")
    ap.add_argument("--steps", type=int, default=None, help="every trained stage at this many steps (a smoke test)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--overhead", type=int, default=0, metavar="N", help="only time a tiny job's start-up and tail, N times")
    args = ap.parse_args(argv)
    if args.overhead:
        overhead(args.overhead)
        return 0
    todo = forms(args.budget)
    if args.forms:
        want = [s.strip() for s in args.forms.split(",") if s.strip()]
        unknown = sorted(set(want) - {f.name for f in todo})
        if unknown:
            ap.error(f"unknown forms {unknown}; known: {[f.name for f in todo]}")
        todo = [f for f in todo if f.name in want]
    if args.steps:
        for f in todo:
            f.argv, f.note = with_steps(f.argv, args.steps), (f.note + f"; --steps {args.steps}").lstrip("; ")
    loops = busy_loops(args.load) if args.load and not args.dry_run else []
    machine = args.machine or (f"loaded ({args.load} busy loops)" if args.load else None)
    rows = []
    try:
        if loops:
            print(f"{args.load} busy loops: load {wait_for_load(args.load):.2f}", flush=True)
        for f in todo:
            with tempfile.TemporaryDirectory(prefix="ipt-estimates-") as tmp:
                store = Path(tmp) / "store"
                f.est = estimate_of(f.argv, store)
                e = f.est
                print(f"{f.name}: python -m ipt_core {shlex.join(f.argv)}\n  estimate {fmt(e['low'])} .. {fmt(e['point'])} .. "
                      f"{fmt(e['high'])} ({e['rows']:,} rows at {e['rate']:.0f} rows/s idle, {e['overhead']:.0f} s overhead, "
                      f"load {e['load']:.2f}; {e['source']})", flush=True)
                if args.dry_run:
                    continue
                got = run(f.argv, store, args.timeout)
                print(f"  actual {got['wall']:.1f} s (exit {got['rc']}, CPU {got['cpu']:.0f} s, "
                      f"load {got['load_before']:.2f} -> {got['load_after']:.2f}) {got['error']}", flush=True)
                rows.append(row(f, got, machine))
    finally:
        stop(loops)
    if args.dry_run or not rows:
        return 0
    if args.append and args.out.exists():
        with open(args.out, "a") as fh:
            fh.writelines(rows)
    else:
        args.out.write_text(
            "# Estimates against actual run times\n\n"
            f"`python bench/estimates.py` on {os.cpu_count()} cores, {time.strftime('%Y-%m-%d %H:%M')}: each form's "
            "command run as `python -m ipt_core ... --cache TMP` into a fresh store (nothing cached; the rate from the "
            "shipped demo results' banks). *estimate*: the range the form shows (low: idle, fast end of the banks' spread; "
            "high: the load when estimated, slow end), *point*: the median rate at that load; *load*: the 1-min load "
            "average before and after the run. Rows measured with `--load N` are marked loaded.\n\n" + HEADER + "".join(rows))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
