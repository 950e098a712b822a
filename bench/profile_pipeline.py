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

from ipt_core import cli  # noqa: E402
from ipt_core.backbones.base import Backbone  # noqa: E402

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
    with RowCounter() as rows:
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
