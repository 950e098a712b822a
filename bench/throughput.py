"""Training throughput of the prompt bank against a one-prompt loop and against PEFT, side by side.

    python bench/throughput.py                      # CPU, plus CUDA (bf16) when a GPU is present
    python bench/throughput.py --device cuda        # the GPU only
    python bench/throughput.py --quick --out /tmp/r.md   # smoke test: tiny counts

What is compared, on the same frozen model (default: the packaged all-MiniLM-L6-v2), with the
same synthetic rows (exactly 32 text tokens, [CLS] and [SEP] included) and 8 shallow prompt
vectors, all trained with Adam on the prompt only and a cosine / cross-entropy label head:

- ``peft``: the reference. ``get_peft_model(AutoModel, PromptTuningConfig(FEATURE_EXTRACTION,
  num_virtual_tokens=8))``, batch 32, fp32; its own forward, then mean pool -> cosine with the
  label embeddings / T -> CE. Pre-tokenised batches (already on the device), so PEFT pays no data
  cost at all: the comparison is conservative for us. On CUDA a bf16-autocast PEFT row is added.
- ``single``: our backbone (``Backbone.logits``) with one prompt, batch 32, the same pre-tokenised
  batches: the engine against PEFT's, one prompt at a time.
- ``bank``: ``ipt_core.train.bank.train_bank`` itself with R independent ``PromptTuning`` runs (R
  synthetic tasks), each step R x rows-per-run rows in one forward/backward, per-run clipping,
  one Adam: what ``python -m ipt_core tune`` pays, Python collation of the rows included.

Every configuration runs in a fresh subprocess, so its peak memory is its own: on CPU the peak
resident set (``ru_maxrss``) and its rise over the set-up (model and data loaded); on CUDA
``torch.cuda.max_memory_allocated``. Throughput = rows trained per second over a fixed number of
timed steps after warm-up steps (the counts are in the table). Ratios are against the PEFT fp32
loop measured in the same run on the same device. The table goes to ``--out`` (bench/RESULTS.md).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere: the package lives one folder up
    sys.path.insert(0, str(ROOT))

PROMPT_TOKENS = 8
TEXT_TOKENS = 32  # [CLS] + 30 word pieces + [SEP]
PEFT_BATCH = 32
LR = 0.01
TEMPERATURE = 0.05
DEFAULT_RUNS = (1, 8, 32, 100)
POOL = 256  # distinct synthetic texts


# ------------------------------------------------------------------------------- plan (parent)


def rows_per_run(R: int, device: str, quick: bool) -> int:
    """Rows each run gets per bank step.

    CUDA: 32, the batch PEFT's per-task loop uses, so R=100 is a 3200-row step. CPU: the point is
    rows/s, and a 2-core CPU is saturated by a few dozen rows, so R runs share about 32 rows per
    step (at least 2 per run): R=100 is a 200-row step.
    """
    if quick:
        return 1 if R > 1 else 4
    if device == "cuda":
        return PEFT_BATCH
    return max(2, math.ceil(PEFT_BATCH / R))


def plan(devices: list[str], runs: list[int], quick: bool, backbone: str, rows_override: int | None) -> list[dict]:
    """The configurations of one benchmark run, in table order."""
    out = []
    for dev in devices:
        prec = "bf16" if dev == "cuda" else "fp32"
        if quick:
            warm, target, min_steps = 1, 1, 1
        elif dev == "cuda":
            warm, target, min_steps = 5, 64_000, 20
        else:
            warm, target, min_steps = 2, 384, 3

        def steps(rows: int) -> int:
            return max(min_steps, math.ceil(target / rows)) if not quick else 1

        batch = 4 if quick else PEFT_BATCH
        base = {"device": dev, "backbone": backbone, "warmup": warm}
        out.append(base | {"loop": "peft", "runs": 1, "rows_per_run": batch, "precision": "fp32", "steps": steps(batch)})
        if dev == "cuda":
            out.append(base | {"loop": "peft", "runs": 1, "rows_per_run": batch, "precision": "bf16", "steps": steps(batch)})
        out.append(base | {"loop": "single", "runs": 1, "rows_per_run": batch, "precision": prec, "steps": steps(batch)})
        for R in runs:
            r = rows_override or rows_per_run(R, dev, quick)
            out.append(base | {"loop": "bank", "runs": R, "rows_per_run": r, "precision": prec, "steps": steps(R * r)})
    return out


def run_worker(cfg: dict, timeout: float) -> dict:
    """One configuration in a fresh Python process; its last stdout line is the result JSON."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    env = dict(os.environ, TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
               TOKENIZERS_PARALLELISM="false")
    return run_json(cmd, env, cfg, timeout)


def run_json(cmd: list[str], env: dict, cfg: dict, timeout: float) -> dict:
    """Run ``cmd``; ``cfg`` updated with its last JSON stdout line, or with an ``error`` saying why none came."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return cfg | {"error": f"timed out after {timeout:.0f} s"}
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return cfg | {"error": f"exit {proc.returncode}: " + " | ".join(tail)[-300:]}
    return cfg | json.loads(lines[-1])


# ------------------------------------------------------------------------------ worker (child)


def _rss_mib() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 2**20 if sys.platform == "darwin" else kib / 1024  # bytes on macOS, KiB on Linux


def synthetic_texts(tokenizer, n: int, seed: int = 0) -> list[str]:
    """``n`` texts of exactly ``TEXT_TOKENS`` token ids each (special tokens included)."""
    import random

    rng = random.Random(seed)
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    candidates = sorted((i, w) for w, i in vocab.items() if w.isalpha() and w.isascii() and len(w) > 2 and i not in special)
    words = [w for _, w in candidates[:3000] if len(tokenizer(w, add_special_tokens=False)["input_ids"]) == 1]
    body = TEXT_TOKENS - len(tokenizer("x")["input_ids"]) + 1  # room left by the special tokens
    texts = []
    for _ in range(n):
        text = " ".join(rng.choice(words) for _ in range(body))
        assert len(tokenizer(text)["input_ids"]) == TEXT_TOKENS, text
        texts.append(text)
    return texts


LABEL_SETS = [("negative", "positive"), ("ham", "spam"), ("false", "true"), ("formal", "casual"),
              ("sad", "happy"), ("no", "yes"), ("sports", "politics"), ("question", "statement")]


class _Clock:
    """Times steps ``warmup+1 .. warmup+steps`` (synchronising CUDA at both ends)."""

    def __init__(self, device, warmup: int, steps: int):
        import torch

        self.sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        self.warmup, self.steps = warmup, steps
        self.t0 = self.t1 = None

    def after_step(self, step: int) -> None:  # step counts from 1
        if step == self.warmup:
            self.sync()
            self.t0 = time.perf_counter()
        elif step == self.warmup + self.steps:
            self.sync()
            self.t1 = time.perf_counter()

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


def worker(cfg: dict) -> dict:
    """Train one configuration and measure it; returns the numbers for the table."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    if cfg.get("threads"):
        torch.set_num_threads(cfg["threads"])
    load_before = os.getloadavg()[0]  # other processes on the machine skew timings: the table shows it
    device = torch.device(cfg["device"])
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 for the PEFT reference
    loop, R, r = cfg["loop"], cfg["runs"], cfg["rows_per_run"]
    warmup, steps = cfg["warmup"], cfg["steps"]
    total = warmup + steps
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if cfg["precision"] == "bf16"
                else torch.autocast(device.type, enabled=False))

    from ipt_core.backbones import packaged_model_path
    from ipt_core.config.backbone import parse_spec

    _, ref = parse_spec(cfg["backbone"])
    model_dir = ref or str(packaged_model_path())
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = synthetic_texts(tokenizer, POOL)
    gen = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 2, (POOL,), generator=gen)
    clock = _Clock(device, warmup, steps)
    losses: list[float] = []

    if loop in ("peft", "single"):
        enc = tokenizer(texts, return_tensors="pt")
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        gold_all = labels.to(device)
        order = torch.randperm(POOL * (total * r // POOL + 1), generator=gen) % POOL
        batches = [order[i * r:(i + 1) * r].to(device) for i in range(total)]

    if loop == "peft":
        from peft import PromptTuningConfig, TaskType, get_peft_model
        from transformers import AutoModel

        # .float(): fp32 weights as load_backbone gives ours, also from an fp16 checkpoint (bench/device's kit)
        model = get_peft_model(AutoModel.from_pretrained(model_dir).float(),
                               PromptTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=PROMPT_TOKENS))
        # eval mode, as our backbone's frozen model: no dropout, the same arithmetic; the prompt still trains
        model.to(device).eval()
        with torch.no_grad():
            base = model.get_base_model()
            lab = tokenizer(list(LABEL_SETS[0]), padding=True, return_tensors="pt").to(device)
            h = base(**lab).last_hidden_state
            m = lab["attention_mask"].unsqueeze(-1).to(h.dtype)
            label_emb = F.normalize((h * m).sum(1) / m.sum(1), dim=-1)  # [2, d]
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=LR)
        ones = torch.ones((r, PROMPT_TOKENS), dtype=mask.dtype, device=device)
        setup_rss = _rss_mib()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for step in range(1, total + 1):
            b = batches[step - 1]
            with autocast:
                hidden = model(input_ids=ids[b], attention_mask=mask[b]).last_hidden_state  # [r, 8+32, d]
                full = torch.cat([ones, mask[b]], 1).unsqueeze(-1).to(hidden.dtype)
                feats = F.normalize(((hidden * full).sum(1) / full.sum(1)).float(), dim=-1)
                logits = feats @ label_emb.float().T / TEMPERATURE
            loss = F.cross_entropy(logits, gold_all[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
            clock.after_step(step)

    elif loop == "single":
        from ipt_core.backbones import Encoded, load_backbone
        from ipt_core.methods.pt import init_prompt
        from ipt_core.tasks import Example, Task

        bb = load_backbone(cfg["backbone"], device=device)
        exs = tuple(Example(t, int(l)) for t, l in zip(texts[:4], labels[:4]))
        task = Task("synth", "synthetic", LABEL_SETS[0], ("text",), "", exs, exs, exs)
        table = bb.label_table([task])
        prompt = torch.nn.Parameter(init_prompt(bb, PROMPT_TOKENS, "shallow", "vocab", seed=0).to(device))
        opt = torch.optim.Adam([prompt], lr=LR)
        task_ids = torch.zeros(r, dtype=torch.long, device=device)
        tti = torch.zeros((r, TEXT_TOKENS), dtype=torch.long, device=device)
        setup_rss = _rss_mib()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for step in range(1, total + 1):
            b = batches[step - 1]
            enc = Encoded(ids[b], mask[b], tti)
            with autocast:
                logits = bb.logits(enc, task_ids, table, prompt.unsqueeze(0).expand(r, -1, -1), "shallow").float()
            loss = F.cross_entropy(logits, gold_all[b])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([prompt], 1.0)  # as the bank does per run
            opt.step()
            losses.append(loss.item())
            clock.after_step(step)

    elif loop == "bank":
        from ipt_core.backbones import load_backbone
        from ipt_core.methods.pt import PromptTuning, init_prompt
        from ipt_core.tasks import Example, Task
        from ipt_core.train.bank import RunConfig, train_bank

        bb = load_backbone(cfg["backbone"], device=device)
        tasks = []
        for t in range(R):
            lab = torch.randint(0, 2, (POOL,), generator=gen).tolist()
            exs = tuple(Example(x, y) for x, y in zip(texts, lab))
            tasks.append(Task(f"synth_{t:03d}", "synthetic", LABEL_SETS[t % len(LABEL_SETS)], ("text",), "",
                              exs, exs[:1], exs[:1]))
        for ex in tasks[0].train:  # tokenise once, as the cache does after a run's first epoch
            bb.token_ids(ex)
        method = PromptTuning([init_prompt(bb, PROMPT_TOKENS, "shallow", "vocab", seed=t) for t in range(R)], "shallow")
        runs = [RunConfig((t.name,), seed=i, lr=LR, steps=total + 1, batch_size=r, eval_every=10**9)
                for i, t in enumerate(tasks)]
        bb.label_table(tasks)  # frozen label embeddings: computed before timing, as train_bank caches them
        setup_rss = _rss_mib()
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        # step total+1 is left out of the timing: train_bank evaluates dev at a run's last step
        results = train_bank(bb, tasks, method, runs, device=device, progress=lambda s, n, m: clock.after_step(s))
        losses = [float(sum(res.loss_curve[i][1] for res in results) / R) for i in range(total)]
    else:
        raise ValueError(f"unknown loop {loop!r}")

    rows = steps * R * r
    out = {
        "rows_per_s": rows / clock.seconds,
        "step_ms": 1000 * clock.seconds / steps,
        "timed_rows": rows,
        "loss_first": losses[0],
        "loss_last": losses[total - 1],
        "load": max(load_before, os.getloadavg()[0]),
    }
    if device.type == "cuda":
        out["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu"] = torch.cuda.get_device_name()
    else:
        out["peak_mib"] = _peak_rss_mib()
        out["setup_mib"] = setup_rss
    return out


# ------------------------------------------------------------------------------------- report


def machine() -> dict:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": f"{cpu}, {os.cpu_count()} cores", "torch threads": str(torch.get_num_threads()),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none",
            "python": platform.python_version(), "torch": torch.__version__}
    for pkg in ("transformers", "peft"):
        try:
            info[pkg] = __import__(pkg).__version__
        except ImportError:
            info[pkg] = "not installed"
    return info


def _loop_name(res: dict) -> str:
    if res["loop"] == "peft":
        return "PEFT PromptTuning, one task at a time"
    if res["loop"] == "single":
        return "ours, one prompt at a time"
    return f"bank (train_bank), R={res['runs']}"


def format_table(results: list[dict], device: str) -> str:
    rows = [r for r in results if r["device"] == device]
    ref = next((r for r in rows if r["loop"] == "peft" and r["precision"] == "fp32" and "error" not in r), None)
    mem_col = "peak GPU memory allocated (MiB)" if device == "cuda" else "peak RSS (MiB) [rise over set-up]"
    head = ["loop", "runs R", "rows/step (per run)", "precision", "warm-up + timed steps", "rows/s",
            "x PEFT loop", mem_col, "loss first -> last", "load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        per_step = r["runs"] * r["rows_per_run"]
        cells = [_loop_name(r), str(r["runs"]), f"{per_step} ({r['rows_per_run']})", r["precision"],
                 f"{r['warmup']} + {r['steps']}"]
        if "error" in r:
            cells += ["failed: " + r["error"].replace("|", "/"), "", "", "", ""]
        else:
            ratio = f"{r['rows_per_s'] / ref['rows_per_s']:.2f}x" if ref else "n/a"
            if device == "cuda":
                mem = f"{r['peak_mib']:.0f}"
            else:
                mem = f"{r['peak_mib']:.0f} [+{max(0.0, r['peak_mib'] - r['setup_mib']):.0f}]"
            cells += [f"{r['rows_per_s']:.1f}", ratio, mem, f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}",
                      f"{r['load']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


GPU_COMMAND = "python bench/throughput.py --device cuda --out bench/RESULTS-gpu.md"


def write_report(path: Path, results: list[dict], devices: list[str], command: str, quick: bool,
                 info: dict, seconds: float) -> None:
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Training throughput: prompt bank vs one prompt at a time vs PEFT",
        "",
        f"- date: {now}" + (" (QUICK smoke run: tiny counts, the numbers mean nothing)" if quick else ""),
        f"- command: `{command}` ({seconds:.0f} s in all)",
        "- machine: " + "; ".join(f"{k} {v}" for k, v in info.items()),
        f"- workload: backbone `{results[0]['backbone'] if results else '?'}`, synthetic rows of exactly "
        f"{TEXT_TOKENS} text tokens ([CLS] and [SEP] included), {PROMPT_TOKENS} shallow prompt vectors "
        f"(sequence {TEXT_TOKENS + PROMPT_TOKENS}), 2 labels per task, cosine/CE head (T={TEMPERATURE}), "
        f"Adam lr {LR} on the prompt only",
        "- each configuration runs in a fresh process; rows/s = rows trained in the timed steps / their "
        "wall time, after the warm-up steps; `x PEFT loop` divides by the PEFT fp32 row on the same device; "
        "`load avg` is the machine's 1-minute load average during the configuration (the highest seen at its "
        "start and end): above the core count, other processes shared the CPU and the timings are skewed",
        "- PEFT and `ours, one prompt` read pre-tokenised batches already on the device; the bank is "
        "`ipt_core.train.bank.train_bank` itself (R runs on R synthetic tasks, per-run sampling, Python "
        "collation, per-run gradient clipping, one Adam), i.e. what `python -m ipt_core tune` pays",
        "",
    ]
    titles = {"cpu": "## CPU (fp32)", "cuda": "## GPU (CUDA, bf16 autocast for ours; PEFT in fp32 and bf16)"}
    for dev in devices:
        parts += [titles[dev], "", format_table(results, dev), ""]
        if dev == "cpu":
            parts += ["CPU bank steps use few rows per run (about 32 rows per step shared by the runs, at least 2 "
                      "per run): a 2-core CPU is saturated by a few dozen rows, so rows/s, not the batch, is "
                      "the quantity compared. Peak RSS includes Python, torch and the model; the bracket is "
                      "the rise over the process's memory once model and data were loaded.", ""]
    if "cuda" not in devices:
        parts += [
            "## GPU",
            "",
            "Not measured yet: no GPU was available to this run. The figure to beat on an H100: a 100-run "
            "bank >= 20x PEFT's per-task loop (PEFT, batch 32, fp32, 8 prompt tokens, 32 text tokens). "
            "On a GPU machine run:",
            "",
            f"    {GPU_COMMAND}",
            "",
            "(bank rows per run on CUDA default to 32, so R=100 trains 3200 rows per step; "
            "`--rows-per-run N` changes it.)",
            "",
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                        help="auto: CPU, plus CUDA when a GPU is present")
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny counts, numbers meaningless")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--backbone", default="encoder-sim", help="an encoder-sim spec (default: the packaged model)")
    parser.add_argument("--runs", default=",".join(map(str, DEFAULT_RUNS)), help="bank sizes R, comma-separated")
    parser.add_argument("--rows-per-run", type=int, default=None, help="rows per run per bank step (default: see table)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads per worker (default: torch's)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per configuration")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker is not None:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    import torch

    if not args.backbone.startswith("encoder-sim"):
        parser.error("the benchmark compares against PEFT's FEATURE_EXTRACTION prompt tuning: use an encoder-sim backbone")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no GPU is available")
    devices = ["cpu"] if args.device == "cpu" else ["cuda"] if args.device == "cuda" else (
        ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    runs = [int(x) for x in args.runs.split(",") if x.strip()]
    command = shlex.join(["python", "bench/throughput.py", *(argv if argv is not None else sys.argv[1:])])
    started = time.time()
    results = []
    for cfg in plan(devices, runs, args.quick, args.backbone, args.rows_per_run):
        if args.threads:
            cfg["threads"] = args.threads
        res = run_worker(cfg, args.timeout)
        results.append(res)
        shown = f"{res['rows_per_s']:.1f} rows/s" if "error" not in res else res["error"]
        print(f"{cfg['device']:>4} {cfg['loop']:>6} R={cfg['runs']:<3} {cfg['precision']}: {shown}", file=sys.stderr, flush=True)
    write_report(Path(args.out), results, devices, command, args.quick, machine(), time.time() - started)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
