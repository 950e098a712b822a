"""How close are two runs of the same ``tune`` command, and a killed-and-resumed one, on this machine?

Measures what the README's resume guarantee states: on the tiny random-weight BERT and suite of
``bench/faults.py`` (2 tasks, one bank), the largest absolute difference between the stored prompts of

- two uninterrupted runs, with torch's default thread count and with one thread (``OMP_NUM_THREADS=1``);
- two uninterrupted runs with one thread and ``torch.use_deterministic_algorithms(True)``;
- an uninterrupted run and one killed with SIGKILL after a checkpoint and rerun (resumed), both ways;

and whether their scores (dev/test accuracy, F1, status, best step: the JSON rows) are equal.

    python -m bench.resume_diff [--steps 60] [--out bench/RESUME.md]
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

from bench.faults import (
    REPO,
    checkpoint_steps,
    make_tiny_model,
    make_tiny_suite,
    run_and_kill,
)

_DETERMINISTIC = ("import sys, torch; torch.use_deterministic_algorithms(True); "
                  "from ipt_core.cli.main import main; sys.exit(main(sys.argv[1:]))")


def _env(threads: int | None) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(k, None)
        if threads is not None:
            env[k] = str(threads)
    return env


def _run(argv: list[str], threads: int | None, deterministic: bool = False) -> dict:
    if deterministic:
        argv = [sys.executable, "-c", _DETERMINISTIC] + argv[3:]  # drop "python -m ipt_core"
    p = subprocess.run(argv, env=_env(threads), capture_output=True, text=True, timeout=900, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _prompts(store: Path) -> dict:
    from ipt_core.store import Store

    return {e.key: e.tensor("prompt") for e in Store(store).query("pt_run")}


def _compare(a: Path, ra: dict, b: Path, rb: dict) -> tuple[float, bool]:
    pa, pb = _prompts(a), _prompts(b)
    assert pa.keys() == pb.keys() and pa
    diff = max(float((pa[k].double() - pb[k].double()).abs().max()) for k in pa)
    return diff, ra["runs"] == rb["runs"]


def _killed_then_resumed(argv: list[str], store: Path, threads: int | None, at_step: int) -> dict:
    import bench.faults as faults

    old = faults.child_env
    faults.child_env = lambda: _env(threads)  # run_and_kill starts the child with this environment
    try:
        got, _ = run_and_kill(argv, store, at_step)
    finally:
        faults.child_env = old
    assert got is not None and checkpoint_steps(store), "the run ended before the kill"
    return _run(argv, threads) | {"killed_at": got}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--kill-at", type=int, default=12)
    ap.add_argument("--out", default=None)
    ap.add_argument("--real", action="store_true",
                    help="the packaged MiniLM on the demo suite's sms_spam and movie_sentiment (deep prompts, batch 16) "
                         "instead of the tiny random BERT")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="resume-diff-"))
    if a.real:
        global tune_argv

        def tune_argv(suite, model, store, *, seeds="0,1", steps=300, checkpoint_every=3):  # noqa: F811
            return [sys.executable, "-m", "ipt_core", "tune", "--suite", "demo", "--tasks", "sms_spam,movie_sentiment",
                    "--device", "cpu", "--seed-list", seeds, "--steps", str(steps), "--eval-every", "50",
                    "--batch-size", "16", "--no-baselines", "--json", "--cache", str(store),
                    "--checkpoint-every", str(checkpoint_every)]
        model = suite = None
    else:
        model, suite = make_tiny_model(work / "model"), make_tiny_suite(work / "suite")
    rows = []
    t0 = time.time()
    for label, threads, det in (("default threads", None, False), ("1 thread", 1, False),
                                ("1 thread, deterministic algorithms", 1, True)):
        stores = [work / f"{label}-{i}".replace(" ", "_").replace(",", "") for i in range(2)]
        reps = [_run(tune_argv(suite, model, s, seeds="0,1", steps=a.steps, checkpoint_every=0), threads, det)
                for s in stores]
        diff, same = _compare(stores[0], reps[0], stores[1], reps[1])
        rows.append((f"two uninterrupted runs, {label}", diff, same))
        print(rows[-1], flush=True)
        if not det:
            ks = work / f"killed-{threads}"
            rep = _killed_then_resumed(tune_argv(suite, model, ks, seeds="0,1", steps=a.steps, checkpoint_every=3),
                                       ks, threads, a.kill_at)
            diff, same = _compare(stores[0], reps[0], ks, rep)
            rows.append((f"killed at step {rep['killed_at']} and resumed vs uninterrupted, {label}", diff, same))
            print(rows[-1], flush=True)
    import torch

    lines = [f"`python -m bench.resume_diff --steps {a.steps} --kill-at {a.kill_at}{' --real' if a.real else ''}` "
             f"({'packaged MiniLM, demo sms_spam + movie_sentiment' if a.real else 'tiny random BERT, 2 tasks'} "
             f"x seeds 0,1, one bank; torch {torch.__version__}, "
             f"{os.cpu_count()} CPUs, default threads {torch.get_num_threads()}; {time.time() - t0:.0f} s)", "",
             "| comparison | max abs diff of the stored prompts | scores (JSON rows) equal |", "|---|---|---|"]
    lines += [f"| {name} | {diff:.3g} | {'yes' if same else 'no'} |" for name, diff, same in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
