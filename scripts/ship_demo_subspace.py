"""Add the demo subspace (the ``msf`` entry) that the shipped recovery sweep was built on to
``ipt_core/shipped_results``, so the app's intrinsic-tuning form works on a fresh clone.

The shipped results came from ``python -m ipt_core pipeline --suite demo`` (quick budget). That
run's subspaces are not in the shipped store (one is ~20 MB: the decoder's 256 x 18,432 output
layer), so this script recomputes the one at ``--dims`` (default 8, the dimension the task map,
the stability run and the held-out-family run use) from the shipped PT prompts, with the same
spec, so it gets the same store key the pipeline would give it and the entry records the
pipeline's command::

    PYTHONPATH=. nice -n 5 python scripts/ship_demo_subspace.py --dims 8

Only MSF trains (60 steps, batch 32: the quick budget); the PT prompts must be in the shipped store.
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from ipt_core.config.ipt import MSFConfig
from ipt_core.config.pt import PTConfig
from ipt_core.experiments.context import Context
from ipt_core.experiments.ipt import shipped_store
from ipt_core.experiments.ipt_stages import find_subspaces, pt_prompts
from ipt_core.store import Store
from ipt_core.tasks import load_suite


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dims", default="8", help="comma-separated d_I values")
    ap.add_argument("--dry-run", action="store_true", help="train, but do not copy into shipped_results")
    args = ap.parse_args()
    dims = sorted({int(d) for d in args.dims.split(",")})
    shipped = shipped_store()
    assert shipped is not None, "ipt_core/shipped_results is missing"
    sweep = max(shipped.query("ipt_dims"), key=lambda e: (len(e.meta["dims"]), len(e.meta["train_tasks"])))
    settings = sweep.spec["settings"]
    suite = load_suite("demo")
    work = Path(tempfile.mkdtemp(prefix="ship_msf_"))
    shutil.copytree(shipped.root / "objects", work / "objects")  # PT prompts read from a copy, nothing else written there
    ctx = Context.create(Store(work), "encoder-sim", "cpu", command=sweep.command, train_missing_prompts=False)
    train = [suite.task(n) for n in sweep.meta["train_tasks"]]
    prompts, entries = pt_prompts(ctx, suite, train, 0, PTConfig(**settings["pt"]))
    t0 = time.time()
    found = find_subspaces(ctx, train, prompts, entries, dims, 0, MSFConfig(**settings["msf"]), settings["pt"]["kind"])
    print(f"MSF for d_I {dims} on {len(train)} tasks: {time.time() - t0:.1f} s")
    for d, e in found.items():
        src = work / "objects" / e.key[:2] / e.key
        dst = shipped.root / "objects" / e.key[:2] / e.key
        size = sum(f.stat().st_size for f in src.rglob("*") if f.is_file())
        print(f"d_I={d}: {e.key} ({size / 2**20:.1f} MiB) dev_acc {e.meta['dev_acc']:.3f} recon_mse {e.meta['recon_mse']:.4f}"
              + ("" if dst.exists() else " (new)"))
        if not args.dry_run and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, dst)
    shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
