"""Where the wall time of a CLI workflow goes: cProfile over one run, summarised by phase.

Runs one ``python -m ipt_core`` command line in this process on a fresh store (a temporary folder
unless ``--cache`` is given), with cProfile on, and counts the rows every backbone forward sees
(training rows with gradients, evaluation rows without). Prints a table of phases (model loading,
reference rows, training steps, dev and test evaluation, tokenisation, collation, UMAP, store I/O)
and appends it to ``--out``.

    python bench/profile_pipeline.py -- pipeline --suite demo
    python bench/profile_pipeline.py --label after -- compare --suite demo --tasks sms_spam,nli
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

T_IMPORT0 = time.perf_counter()
import torch  # noqa: E402

from ipt_core.backbones.base import Backbone  # noqa: E402
from ipt_core.cli import main as cli  # noqa: E402
from ipt_core.experiments.context import Context  # noqa: E402

IMPORT_S = time.perf_counter() - T_IMPORT0

# phase -> (file suffix, function name); the top-level phases are disjoint, the nested ones are
# parts of them (tokenisation happens inside training, evaluation and reference rows)
TOP = [
    ("model loading", "backbones/loading.py", "load_backbone"),
    ("reference rows (zero-shot, probe)", "experiments.py", "probe_all"),
    ("training steps", "bank.py", "_train_step"),
    ("dev evaluation", "loop/evaluation.py", "_score"),
    ("test evaluation", "bank.py", "_results"),
    ("task map (UMAP)", "ipt_experiments.py", "task_map_experiment"),
    ("store writes", "store.py", "put"),
]
NESTED = [
    ("tokenisation", "backbones/base.py", "_tokenize"),
    ("collation", "backbones/base.py", "collate"),
    ("checkpoint writes", "loop/checkpointing.py", "on_step_end"),
    ("projections (PCA, UMAP)", "maps.py", "project"),
]


def _cumulative(stats: pstats.Stats, suffix: str, name: str) -> tuple[float, int]:
    total, calls = 0.0, 0
    for (file, _line, func), (_cc, nc, _tt, ct, callers) in stats.stats.items():
        if func == name and file.replace(os.sep, "/").endswith(suffix):
            # only the outermost calls: recursive or nested calls of the same function are inside ct already
            outer = {k: v for k, v in callers.items() if not (k[2] == name and k[0] == file)}
            total += sum(v[3] for v in outer.values()) if outer else ct
            calls += nc
    return total, calls


class RowCounter:
    """Counts rows through ``Backbone.logits``: with gradients (training) and without (evaluation)."""

    def __init__(self):
        self.train = self.eval = 0
        self.original = Backbone.logits

    def __enter__(self):
        counter = self

        def logits(bb, enc, *a, **k):
            if torch.is_grad_enabled():
                counter.train += enc.input_ids.shape[0]
            else:
                counter.eval += enc.input_ids.shape[0]
            return counter.original(bb, enc, *a, **k)

        Backbone.logits = logits
        return self

    def __exit__(self, *exc):
        Backbone.logits = self.original


class StageClock:
    """Wall seconds and rows per named stage (``Context.stage``): which experiment the time goes to."""

    def __init__(self, rows: RowCounter):
        self.rows, self.original = rows, Context.stage
        self.order: list[str] = []
        self.table: dict[str, list[float]] = {}  # name -> [seconds, train rows, eval rows]
        self.current, self.since, self.mark = None, 0.0, (0, 0)

    def _close(self) -> None:
        if self.current is not None:
            rec = self.table.setdefault(self.current, [0.0, 0, 0])
            rec[0] += time.perf_counter() - self.since
            rec[1] += self.rows.train - self.mark[0]
            rec[2] += self.rows.eval - self.mark[1]

    def __enter__(self):
        clock = self

        def stage(ctx, name):
            clock._close()
            # a stage's name without its counts: "intrinsic subspace tuning (40 runs)" -> one line per call
            clock.current = f"{len(clock.order) + 1:02d}. {name}"
            clock.order.append(clock.current)
            clock.since, clock.mark = time.perf_counter(), (clock.rows.train, clock.rows.eval)
            return clock.original(ctx, name)

        Context.stage = stage
        return self

    def __exit__(self, *exc):
        self._close()
        Context.stage = self.original

    def lines(self) -> list[str]:
        out = ["", "| stage (in order) | seconds | training rows | evaluation rows |", "|---|---|---|---|"]
        for name in self.order:
            sec, tr, ev = self.table[name]
            if sec >= 0.5 or tr or ev:
                out.append(f"| {name} | {sec:.1f} | {tr:,} | {ev:,} |")
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="", help="a name for this profile in the table (e.g. before/after)")
    ap.add_argument("--cache", default=None, help="store folder (default: a fresh temporary one)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "PROFILE.md"))
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the ipt_core command line")
    args = ap.parse_args()
    argv = [a for a in args.argv if a != "--"]
    if not argv:
        ap.error("give the ipt_core command line after --")
    cache = args.cache or tempfile.mkdtemp(prefix="ipt-profile-")
    load0 = os.getloadavg()
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    with RowCounter() as rows, StageClock(rows) as stages:
        prof.enable()
        rc = cli.main(argv + ["--cache", cache])
        prof.disable()
    wall = time.perf_counter() - t0
    load1 = os.getloadavg()
    stats = pstats.Stats(prof)
    lines = [f"## `python -m ipt_core {' '.join(argv)}`" + (f" ({args.label})" if args.label else ""), "",
             f"{time.strftime('%Y-%m-%d %H:%M')}, exit {rc}; wall {wall:.0f} s (+ {IMPORT_S:.1f} s importing torch and "
             f"the CLI); load average {load0[0]:.2f} before, {load1[0]:.2f} after; torch threads "
             f"{torch.get_num_threads()}; rows through the backbone: {rows.train:,} training, {rows.eval:,} evaluation.", "",
             "| phase | seconds | share of wall | calls |", "|---|---|---|---|"]
    accounted = 0.0
    for label, suffix, name in TOP:
        s, n = _cumulative(stats, suffix, name)
        accounted += s
        lines.append(f"| {label} | {s:.1f} | {s / wall:.1%} | {n:,} |")
    lines.append(f"| everything else | {wall - accounted:.1f} | {(wall - accounted) / wall:.1%} | |")
    for label, suffix, name in NESTED:
        s, n = _cumulative(stats, suffix, name)
        lines.append(f"| *of which* {label} | {s:.1f} | {s / wall:.1%} | {n:,} |")
    lines += stages.lines()
    lines.append("")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    if not out.exists():
        out.write_text("# Where the time goes\n\nMade by `bench/profile_pipeline.py` (cProfile over one CLI run on a "
                       "fresh store). The top-level phases are disjoint; the *of which* rows are parts of them.\n\n")
    with out.open("a") as f:
        f.write(text + "\n")


if __name__ == "__main__":
    main()
