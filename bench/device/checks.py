"""The GPU check's Python steps (``bench/device/gpu_check.sh`` calls them; each one also runs alone).

    python bench/device/checks.py env     --backbone encoder-sim:.device/minilm --device cuda
    python bench/device/checks.py forward --backbone encoder-sim:.device/minilm --suite .device/tasks-real \\
        --tasks sms_spam,cr,trec --a cpu --b cuda --out forward.json
    python bench/device/checks.py runs    --a DIR_CPU --b DIR_CUDA --forward forward.json \\
        --out agreement.json --md agreement.md
    python bench/device/checks.py export  --store /tmp/ipt-store --out ipt-real.json --tar store.tar.gz

- ``env``: versions, the GPU, the imports of the training path (none of plotly/streamlit/umap may be
  loaded) and the kit's model loading as float32 on the device.
- ``forward``: the same rows, prompts and loss on two devices: ``cpu`` (fp32), ``cuda`` (bf16
  autocast, as the bank trains) or ``cpu-bf16`` (bf16 autocast on the CPU, to rehearse the check
  without a GPU). Per task and prompt kind (none, shallow, deep): largest and mean absolute logit
  difference, argmax agreement, relative loss difference, cosine of the prompt's gradients.
- ``runs``: the CLI's ``--json`` outputs of the same commands run with ``--device cpu`` and
  ``--device cuda`` (files of the same name in two folders), compared score by score.
- ``export``: the store's ``ipt_dims`` results (per-task rows, summaries, wall time, command) as one
  JSON file, and the store's entries of at most ``--max-entry-mib`` as a tar.gz (to browse in the
  app, or to carry back in as ``.device/store-in.tar.gz`` so a rerun resumes).

Tolerances (``TOL``): forward only, argmax agreement >= 0.95, loss within 2 %, gradient cosine >=
0.98; of the CLI runs, scores that involve no training (zero-shot, probe) within 0.02, trained scores
within 0.05 (10 of 200 test rows) each and 0.02 on average, recovery within 0.1; standard deviations
and gain recovery (a ratio of small differences) are shown, not judged.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import tarfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TOL = {"argmax_agree": 0.95, "loss_rel": 0.02, "grad_cos": 0.98,
       "untrained": 0.02, "trained": 0.05, "trained_mean": 0.02, "recovery": 0.10}
ID_KEYS = ("method", "task", "seed", "d", "setting", "subspace")
SCORE_FIELDS = {"dev_acc", "test_acc", "test_f1", "test_acc_mean", "test_f1_mean", "ist_test_acc", "pt_test_acc",
                "zero_shot_test_acc", "recovery"}
UNWANTED = ("plotly", "streamlit", "umap")


# ------------------------------------------------------------------------------------------- env


def cmd_env(args) -> int:
    import importlib
    import platform

    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cuda_available": torch.cuda.is_available()}
    for pkg in ("transformers", "peft", "safetensors", "numpy", "pandas", "sklearn", "scipy", "tqdm"):
        try:
            info[pkg] = importlib.import_module(pkg).__version__
        except Exception as e:  # noqa: BLE001 - report whatever is wrong, keep going
            info[pkg] = f"MISSING ({type(e).__name__})"
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
    for m in ("ipt_core.cli.main", "ipt_core.experiments.compare", "ipt_core.experiments.context", "ipt_core.experiments.ipt", "bench.throughput"):
        importlib.import_module(m)
    import ipt_core.cli.main

    ipt_core.cli.main.build_parser()
    info["unwanted_imported"] = [n for n in UNWANTED if n in sys.modules]
    from ipt_core.backbones import load_backbone

    t0 = time.time()
    bb = load_backbone(args.backbone, device=args.device)
    info["backbone"] = {"spec": args.backbone, "device": str(bb.device), "load_s": round(time.time() - t0, 2),
                        "param_dtypes": sorted({str(p.dtype) for p in bb.model.parameters()}),
                        "weights_hash": bb.weights_hash()[:16], "layers": bb.num_layers, "hidden": bb.hidden_size}
    print(json.dumps(info, indent=1))
    ok = not info["unwanted_imported"] and info["backbone"]["param_dtypes"] == ["torch.float32"]
    if args.device.startswith("cuda") and not info["cuda_available"]:
        ok = False
    print("env: OK" if ok else "env: PROBLEM (see above)", file=sys.stderr)
    return 0 if ok else 1


# --------------------------------------------------------------------------------------- forward


def _side(tag: str):
    """``cpu`` -> fp32 on the CPU; ``cuda[:N]`` -> bf16 autocast (as ``bank.autocast_for``); ``cpu-bf16``."""
    import torch

    if tag == "cpu-bf16":
        return "cpu", lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    if tag.startswith("cuda"):
        return tag, lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return tag, nullcontext


def forward_side(spec: str, tag: str, tasks, prompts: dict, rows: int) -> dict:
    """Logits, loss and prompt gradient of every (task, prompt kind) on one side; all on the CPU."""
    import torch
    import torch.nn.functional as F

    from ipt_core.backbones import load_backbone

    device, amp = _side(tag)
    bb = load_backbone(spec, device=device)
    out = {}
    for task in tasks:
        exs = list(task.test[:rows])
        enc = bb.collate(exs).to(bb.device)
        gold = torch.tensor([e.label for e in exs], device=bb.device)
        ids = torch.zeros(len(exs), dtype=torch.long, device=bb.device)
        table = bb.label_table([task])
        for kind, p0 in prompts.items():
            p = None
            if p0 is not None:
                p = p0.to(bb.device).clone().requires_grad_(True)
            with amp():
                full = None if p is None else p.unsqueeze(0).expand(len(exs), *p.shape)
                logits = bb.logits(enc, ids, table, full, "shallow" if kind == "none" else kind).float()
            loss = F.cross_entropy(logits, gold)
            if p is not None:
                loss.backward()
            out[(task.name, kind)] = {"logits": logits.detach().cpu(), "loss": float(loss.detach()),
                                      "grad": None if p is None else p.grad.detach().float().cpu().flatten(),
                                      "acc": float((logits.argmax(1) == gold).float().mean())}
    return out


def cmd_forward(args) -> int:
    import torch

    from ipt_core.backbones import load_backbone
    from ipt_core.methods.pt import init_prompt
    from ipt_core.tasks import load_suite

    suite = load_suite(args.suite)
    tasks = [suite.task(n) for n in args.tasks.split(",")]
    ref = load_backbone(args.backbone, device="cpu")  # the prompts are made once, on the CPU, for both sides
    prompts = {"none": None,
               "shallow": init_prompt(ref, args.prompt_len, "shallow", "vocab", seed=0),
               "deep": init_prompt(ref, args.prompt_len, "deep", "vocab", seed=0)}
    del ref
    t0 = time.time()
    a = forward_side(args.backbone, args.a, tasks, prompts, args.rows)
    b = forward_side(args.backbone, args.b, tasks, prompts, args.rows)
    checks = []
    for key in a:
        x, y = a[key], b[key]
        diff = (x["logits"] - y["logits"]).abs()
        finite = torch.isfinite(x["logits"]) & torch.isfinite(y["logits"])  # -inf where a task has fewer labels
        row = {"task": key[0], "prompt": key[1], "rows": int(x["logits"].shape[0]),
               "max_abs_logit_diff": float(diff[finite].max()), "mean_abs_logit_diff": float(diff[finite].mean()),
               "argmax_agree": float((x["logits"].argmax(1) == y["logits"].argmax(1)).float().mean()),
               "acc_a": x["acc"], "acc_b": y["acc"], "loss_a": x["loss"], "loss_b": y["loss"],
               "loss_rel": abs(x["loss"] - y["loss"]) / max(abs(x["loss"]), 1e-8)}
        if x["grad"] is not None:
            row["grad_cos"] = float(torch.nn.functional.cosine_similarity(x["grad"], y["grad"], dim=0))
            row["grad_norm_ratio"] = float(y["grad"].norm() / x["grad"].norm().clamp_min(1e-30))
        row["ok"] = (row["argmax_agree"] >= TOL["argmax_agree"] and row["loss_rel"] <= TOL["loss_rel"]
                     and row.get("grad_cos", 1.0) >= TOL["grad_cos"])
        checks.append(row)
    res = {"a": args.a, "b": args.b, "backbone": args.backbone, "suite": args.suite, "tasks": args.tasks.split(","),
           "rows_per_task": args.rows, "prompt_len": args.prompt_len, "tolerances": TOL,
           "seconds": round(time.time() - t0, 1), "checks": checks, "ok": all(c["ok"] for c in checks)}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    for c in checks:
        print(f"{c['task']:>16} {c['prompt']:>8}: max|dlogit| {c['max_abs_logit_diff']:.4f} argmax agree "
              f"{c['argmax_agree']:.3f} loss rel {c['loss_rel']:.2e} grad cos {c.get('grad_cos', float('nan')):.5f}"
              f"{'' if c['ok'] else '  <-- outside tolerance'}", file=sys.stderr)
    print(f"forward {args.a} vs {args.b}: {'agree' if res['ok'] else 'DISAGREE'} ({res['seconds']} s)", file=sys.stderr)
    return 0 if res["ok"] else 1


# ------------------------------------------------------------------------------------------ runs


def last_json(path: Path):
    """The last line of a file that parses as a JSON object (the CLI's ``--json`` contract), or None."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def flatten(obj, prefix: str = "") -> dict[str, float]:
    """Numeric leaves by path; list items are named by their identifying fields (task, seed, ...)."""
    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if "seconds" in k or k in ("key", "trainable_params"):
                continue
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(obj, list):
        for i, item in enumerate(obj):
            ident = ",".join(f"{k}={item[k]}" for k in ID_KEYS if isinstance(item, dict) and k in item) or str(i)
            out.update(flatten(item, f"{prefix}[{ident}]"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool) and math.isfinite(obj):
        out[prefix] = float(obj)
    return out


def judge(path: str) -> tuple[str, float | None]:
    """(class, tolerance) of a flattened score: untrained, trained, recovery, or shown (None)."""
    field = path.rsplit(".", 1)[-1]
    if field.endswith("_std") or field == "gain_recovery" or field not in SCORE_FIELDS:
        return "shown", None
    if field == "recovery":
        return "recovery", TOL["recovery"]
    if field == "zero_shot_test_acc" or "method=zero-shot" in path or "method=probe" in path:
        return "untrained", TOL["untrained"]
    return "trained", TOL["trained"]


def compare_outputs(a: dict, b: dict) -> dict:
    fa, fb = flatten(a), flatten(b)
    rows = []
    for path in sorted(set(fa) | set(fb)):
        cls, tol = judge(path)
        va, vb = fa.get(path), fb.get(path)
        d = None if va is None or vb is None else abs(va - vb)
        rows.append({"field": path, "a": va, "b": vb, "abs_diff": d, "class": cls, "tol": tol,
                     "ok": True if tol is None else (d is not None and d <= tol)})
    trained = [r["abs_diff"] for r in rows if r["class"] == "trained" and r["abs_diff"] is not None]
    mean_trained = sum(trained) / len(trained) if trained else 0.0
    judged = [r for r in rows if r["tol"] is not None]
    return {"fields": rows, "judged": len(judged), "failed": [r["field"] for r in judged if not r["ok"]],
            "max_abs_diff": max((r["abs_diff"] for r in judged if r["abs_diff"] is not None), default=0.0),
            "mean_abs_diff_trained": mean_trained,
            "ok": all(r["ok"] for r in judged) and mean_trained <= TOL["trained_mean"] and bool(judged)}


def cmd_runs(args) -> int:
    da, db = Path(args.a), Path(args.b)
    na, nb = {p.name for p in da.glob("*.json")}, {p.name for p in db.glob("*.json")}
    names = sorted(na & nb if args.only_common else na | nb)
    commands = {}
    for name in names:
        ja, jb = last_json(da / name), last_json(db / name)
        if ja is None or jb is None:
            commands[name] = {"ok": False, "error": f"no JSON from {'cpu' if ja is None else 'cuda'} side",
                              "fields": [], "judged": 0, "failed": [], "max_abs_diff": None, "mean_abs_diff_trained": None}
            continue
        commands[name] = compare_outputs(ja, jb) | {"raw": {"a": ja, "b": jb}}
    forward = json.loads(Path(args.forward).read_text()) if args.forward and Path(args.forward).is_file() else None
    res = {"a": args.label_a, "b": args.label_b, "tolerances": TOL, "commands": commands, "forward": forward,
           "ok": bool(commands) and all(c["ok"] for c in commands.values()) and (forward is None or forward["ok"])}
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    if args.md:
        Path(args.md).write_text(md)
    print(md, file=sys.stderr)
    return 0 if res["ok"] else 1


def markdown(res: dict) -> str:
    a, b = res["a"], res["b"]
    lines = [f"## CPU / CUDA agreement ({a} vs {b})", ""]
    fw = res.get("forward")
    if fw:
        lines += [f"Forward and backward on the same rows and prompts ({fw['rows_per_task']} test rows per task, "
                  f"prompts of {fw['prompt_len']} vectors, vocab init, seed 0; {fw['a']} vs {fw['b']}):", "",
                  "| task | prompt | max abs logit diff | mean abs logit diff | argmax agreement | loss rel. diff | "
                  "gradient cosine | ok |", "|---|---|---|---|---|---|---|---|"]
        for c in fw["checks"]:
            g = c.get("grad_cos")
            lines.append(f"| {c['task']} | {c['prompt']} | {c['max_abs_logit_diff']:.4f} | {c['mean_abs_logit_diff']:.4f} | "
                         f"{c['argmax_agree']:.3f} | {c['loss_rel']:.1e} | {'-' if g is None else f'{g:.5f}'} | "
                         f"{'yes' if c['ok'] else 'NO'} |")
        lines.append("")
    lines += ["The same CLI commands with `--device cpu` and `--device cuda` (separate stores, same seeds); "
              "scores compared field by field:", "",
              "| command | scores judged | largest abs diff | mean abs diff (trained) | outside tolerance | ok |",
              "|---|---|---|---|---|---|"]
    for name, c in res["commands"].items():
        if "error" in c:
            lines.append(f"| {name} | 0 | | | {c['error']} | NO |")
            continue
        lines.append(f"| {name} | {c['judged']} | {c['max_abs_diff']:.3f} | {c['mean_abs_diff_trained']:.3f} | "
                     f"{', '.join(c['failed'][:4]) + (' ...' if len(c['failed']) > 4 else '') or 'none'} | "
                     f"{'yes' if c['ok'] else 'NO'} |")
    t = res["tolerances"]
    lines += ["", f"Tolerances: argmax agreement >= {t['argmax_agree']}, loss within {t['loss_rel']:.0%}, gradient "
              f"cosine >= {t['grad_cos']}; untrained scores within {t['untrained']}, trained scores within "
              f"{t['trained']} each and {t['trained_mean']} on average, recovery within {t['recovery']}. "
              f"Verdict: **{'agree' if res['ok'] else 'DISAGREE'}**.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- export


def cmd_export(args) -> int:
    from ipt_core.store import Store

    store = Store(args.store)
    results = []
    for e in store.query("ipt_dims"):
        results.append({"key": e.key, "command": e.command, "created": e.created,
                        "settings": e.spec.get("settings"), "meta": e.meta})
    Path(args.out).write_text(json.dumps({"store": str(args.store), "ipt_dims": results}, indent=1) + "\n")
    print(f"export: {len(results)} ipt_dims result(s) -> {args.out}", file=sys.stderr)
    if not args.tar:
        return 0
    objects = Path(args.store) / "objects"
    limit, skipped, kept, size = args.max_entry_mib * 2**20, [], 0, 0
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for entry_dir in sorted(p for p in objects.glob("*/*") if p.is_dir()) if objects.is_dir() else []:
            files = [f for f in entry_dir.iterdir() if f.is_file()]
            nbytes = sum(f.stat().st_size for f in files)
            if nbytes > limit:
                skipped.append(entry_dir.name)
                continue
            for f in files:
                tar.add(f, arcname=str(f.relative_to(args.store)))
            kept, size = kept + 1, size + nbytes
    data = buf.getvalue()
    if len(data) > args.max_tar_mib * 2**20:
        print(f"export: the tar would be {len(data) / 2**20:.1f} MiB (> {args.max_tar_mib}); not written", file=sys.stderr)
        return 1
    Path(args.tar).write_bytes(data)
    print(f"export: {kept} entries ({size / 2**20:.1f} MiB) -> {args.tar} ({len(data) / 2**20:.1f} MiB); "
          f"{len(skipped)} larger than {args.max_entry_mib} MiB left out (subspace decoders: recomputed on resume)",
          file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("env")
    p.add_argument("--backbone", default="encoder-sim:.device/minilm")
    p.add_argument("--device", default="cuda")
    p = sub.add_parser("forward")
    p.add_argument("--backbone", default="encoder-sim:.device/minilm")
    p.add_argument("--suite", default=".device/tasks-real")
    p.add_argument("--tasks", default="sms_spam,cr,trec")
    p.add_argument("--a", default="cpu")
    p.add_argument("--b", default="cuda")
    p.add_argument("--rows", type=int, default=64)
    p.add_argument("--prompt-len", type=int, default=8)
    p.add_argument("--out", required=True)
    p = sub.add_parser("runs")
    p.add_argument("--a", required=True, help="folder of the --device cpu outputs")
    p.add_argument("--b", required=True, help="folder of the --device cuda outputs (same file names)")
    p.add_argument("--label-a", default="cpu")
    p.add_argument("--label-b", default="cuda")
    p.add_argument("--forward", default=None, help="the forward check's JSON, included in the report")
    p.add_argument("--only-common", action="store_true", help="compare only outputs both folders hold (rehearsal)")
    p.add_argument("--out", required=True)
    p.add_argument("--md", default=None)
    p = sub.add_parser("export")
    p.add_argument("--store", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tar", default=None)
    p.add_argument("--max-entry-mib", type=float, default=2.0)
    p.add_argument("--max-tar-mib", type=float, default=15.0)
    args = ap.parse_args(argv)
    return {"env": cmd_env, "forward": cmd_forward, "runs": cmd_runs, "export": cmd_export}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
