"""Make ``ipt_core/shipped_results``: the demo results the app opens on, made by the real commands at
today's defaults, so that ``python -m ipt_core verify --replay --cache ipt_core/shipped_results``
passes (``tests/test_shipped_results.py`` asserts it).

    PYTHONPATH=. python scripts/ship_results.py --store /tmp/ship      # run, then ship
    PYTHONPATH=. python scripts/ship_results.py --store /tmp/ship --dry-run

1. The work store is seeded with the shipped results (only what is missing is copied), so a result
   whose key today's code still computes is read, not trained again (the transfer runs: 2 x 72 prompt
   tunings of 20 steps and 23 source prompts of seed 1).
2. :data:`COMMANDS` run into it, each as ``python -m ipt_core ...`` (what is stored is skipped). The
   pipeline and the comparison take about 10 and 5 minutes on an idle 2-core CPU.
3. They are replayed read-only (:mod:`ipt_core.cli.replay`); what the replays reach is shipped, but
   of the subspaces only the one the task map is drawn from (the main sweep's, at the map's d_I:
   each subspace carries a ~19 MB decoder; the app's intrinsic-tuning form needs one). The old
   shipped folder is replaced by a rename.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ipt_core.cli.args import compare_argv, config_of
from ipt_core.cli.replay import PREFIX, format_report, replay_store
from ipt_core.config.registry import DEFAULT_COMPARE_METHODS
from ipt_core.experiments.context import Context
from ipt_core.experiments.ipt import recovery_stage_keys
from ipt_core.paths import SHIPPED_RESULTS
from ipt_core.store import Store
from ipt_core.tasks import load_suite

SUITE = "demo"


def commands() -> list[str]:
    """What ships: the pipeline (every page but Methods and transfer), the comparison the Methods
    page's form queues by default on a CPU, the text-embedding baselines of the task map, and the
    transfer matrix of three targets over two seeds that the tour and "Which task helps which" show."""
    names = load_suite(SUITE).names()
    budget = "quick"
    compare = (["compare", "--suite", SUITE, "--tasks", ",".join(names[:2]), "--methods", ",".join(DEFAULT_COMPARE_METHODS),
                "--seeds", "1"] + compare_argv(config_of("compare", budget, steps=config_of("compare", budget).pt.steps), budget))
    return [f"{PREFIX} pipeline --suite {SUITE}",
            f"{PREFIX} " + " ".join(compare),
            f"{PREFIX} map-quality --suite {SUITE}",
            # seed 0's runs were made by this one-seed command, which their entries record: the replay runs it
            f"{PREFIX} transfer --suite {SUITE} --targets hotel_sentiment,smart_home_intent,chat_toxicity --steps 20",
            f"{PREFIX} transfer --suite {SUITE} --targets hotel_sentiment,smart_home_intent,chat_toxicity --steps 20 "
            "--seeds 2"]


def _copy_entry(src: Store, dst_root: Path, key: str) -> int:
    s, d = src.objects_dir / key[:2] / key, dst_root / "objects" / key[:2] / key
    if not d.exists():
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(s, d)
    return sum(f.stat().st_size for f in d.rglob("*") if f.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store", required=True, type=Path, help="work store (kept: a second run reads what the first made)")
    ap.add_argument("--dry-run", action="store_true", help="run and replay, but do not replace the shipped folder")
    args = ap.parse_args()
    work = Store(args.store)
    old = Store(SHIPPED_RESULTS, read_only=True)
    missing = [e.key for e in old.query() if work.get(e.key) is None]
    for key in missing:
        _copy_entry(old, work.root, key)
    print(f"seeded {work.root} with {len(missing)} shipped entries", flush=True)
    cmds = commands()
    env = {**os.environ, "IPT_CACHE": str(work.root)}
    for c in cmds:
        t0, load = time.time(), os.getloadavg()[0]
        out = subprocess.run([sys.executable, "-m", "ipt_core", *shlex.split(c)[3:], "--cache", str(work.root), "--json"],
                             env=env, capture_output=True, text=True)
        print(f"{time.time() - t0:7.0f} s (load {load:.1f} -> {os.getloadavg()[0]:.1f}) exit {out.returncode}: {c}", flush=True)
        if out.returncode != 0:
            print(out.stderr[-3000:], file=sys.stderr)
            return 1
    rep = replay_store(work.root, cmds)
    print(format_report(rep).split("\n  stale")[0])  # the work store keeps older entries: stale there is expected
    if any(c.returncode for c in rep.commands):
        return 1
    [tmap] = [e for k in rep.reached if (e := work.get(k)) is not None and e.kind == "task_map"]
    sweep = work.get(tmap.spec["source"])
    ctx = Context.create(work, sweep.spec["backbone"]["spec"], "cpu")
    [subspace] = [k for k in recovery_stage_keys(ctx, load_suite(SUITE), sweep)["msf"]
                  if (e := work.get(k)) is not None and e.meta["d"] == tmap.meta["d"]]
    keep = [e for k in sorted(rep.reached) if (e := work.get(k)) is not None and (e.kind != "msf" or k == subspace)]
    new = SHIPPED_RESULTS.with_name(SHIPPED_RESULTS.name + ".new")
    shutil.rmtree(new, ignore_errors=True)
    size = sum(_copy_entry(work, new, e.key) for e in keep)
    kinds: dict[str, int] = {}
    for e in keep:
        kinds[e.kind] = kinds.get(e.kind, 0) + 1
    print(f"shipping {len(keep)} entries, {size / 2**20:.1f} MiB: {dict(sorted(kinds.items()))}")
    if args.dry_run:
        shutil.rmtree(new)
        return 0
    gone = SHIPPED_RESULTS.with_name(SHIPPED_RESULTS.name + ".old")
    shutil.rmtree(gone, ignore_errors=True)
    os.rename(SHIPPED_RESULTS, gone)
    os.rename(new, SHIPPED_RESULTS)
    shutil.rmtree(gone)
    final = replay_store(SHIPPED_RESULTS)
    print(format_report(final))
    return 0 if final.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
