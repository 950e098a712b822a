"""Distributed scaling of the prompt bank: rows/s and wall time versus the number of processes.

    python bench/distributed.py                         # CPU: 1, 2, 4 processes -> a section of bench/RESULTS.md
    python bench/distributed.py --nprocs 1,2 --steps 3  # shorter
    python bench/distributed.py --device cuda --nprocs 1,2,4,8 --runs 64 --rows-per-run 32   # on a GPU box

One fixed bank of R independent ``PromptTuning`` runs (default R = 8, shallow prompts of 8
vectors, synthetic rows of exactly 32 text tokens as in ``bench/throughput.py``, on the packaged
all-MiniLM-L6-v2) is trained by ``ipt_core.train.distributed.train_bank_on_ranks`` under
``python -m torch.distributed.run --standalone --nproc-per-node N`` for each N, in a fresh set of
processes each time, in two modes (``IPT_DIST_MODE``):

- ``runs``: what ``train_bank_on_ranks`` does with independent runs: rank k trains runs k, k+N, ... (no
  gradient traffic), results broadcast at the end;
- ``rows``: the data-parallel path used for shared parameters (MSF, multi-task ATTEMPT), forced on
  the same PT bank: every rank computes 1/N of each step's rows, gradients all-reduced every step.

Timing: a 2-step warm-up bank first (lazy initialisation, allocator, gloo connections), then the
timed bank between two barriers: wall time of the whole ``train_bank_on_ranks`` call (the runs' dev and
test sets are one row each, so it is training). rows/s = R x rows-per-run x steps / wall.
Speed-up = rows/s over the 1-process rows/s of the same mode; scaling efficiency = speed-up / N.

Threads: on CPU each process gets ``max(1, cores // N)`` torch threads (``torch.set_num_threads``
and ``OMP_NUM_THREADS``), so N processes never ask for more threads than there are cores, except
when N exceeds the cores (then 1 thread each, oversubscribed). On CUDA, 1 thread per process and
every process on ``cuda:LOCAL_RANK`` (several processes share a GPU when N exceeds the GPUs).

The section also holds a paper estimate of a 1,000-task x 5-seed x 8-dimension IPT sweep on 8 GPUs
(:func:`sweep_estimate`), from an explicitly stated per-GPU rate.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SECTION = "## Distributed scaling (bench/distributed.py)"
PROMPT_TOKENS = 8
LR = 0.01
# per-GPU rate for the paper estimate when none is measured: DESIGN.md's prototype figure (H100,
# default model, one bank of 100 prompts, batch 4096, bf16, eager); NOT measured by this script
ASSUMED_GPU_ROWS_PER_S = 60_000.0
ASSUMED_GPU_SOURCE = ("assumed: DESIGN.md's prototype measurement on an H100 (default model, a bank of 100 prompts, "
                      "batch 4096, bf16, eager: ~60k rows/s); not measured by this benchmark, no GPU was available")


# ------------------------------------------------------------------------------ worker (each rank)


def worker(cfg: dict) -> None:
    import torch

    from bench.throughput import LABEL_SETS, POOL, synthetic_texts
    from ipt_core.backbones import load_backbone
    from ipt_core.methods.pt import PromptTuning, init_prompt
    from ipt_core.tasks import Example, Task
    from ipt_core.train import dist_comm
    from ipt_core.train.bank import RunConfig
    from ipt_core.train.distributed import train_bank_on_ranks

    torch.set_num_threads(cfg["threads"])
    dist_comm.init_from_env(cfg["device"])
    k, W = dist_comm.rank(), dist_comm.world()
    device = torch.device("cuda", torch.cuda.current_device()) if cfg["device"] == "cuda" else torch.device("cpu")
    bb = load_backbone(cfg["backbone"], device=device)
    texts = synthetic_texts(bb.tokenizer, POOL)
    gen = torch.Generator().manual_seed(0)
    R, r = cfg["runs"], cfg["rows_per_run"]
    tasks = []
    for t in range(R):
        lab = torch.randint(0, 2, (POOL,), generator=gen).tolist()
        exs = tuple(Example(x, y) for x, y in zip(texts, lab))
        tasks.append(Task(f"synth_{t:03d}", "synthetic", LABEL_SETS[t % len(LABEL_SETS)], ("text",), "", exs, exs[:1], exs[:1]))
    for ex in tasks[0].train:  # tokenise once (every task has the same texts)
        bb.token_ids(ex)
    bb.label_table(tasks)

    def bank(steps: int):
        method = PromptTuning([init_prompt(bb, PROMPT_TOKENS, "shallow", "vocab", seed=t) for t in range(R)], "shallow")
        runs = [RunConfig((t.name,), seed=i, lr=LR, steps=steps, batch_size=r, eval_every=10**9) for i, t in enumerate(tasks)]
        return train_bank_on_ranks(bb, tasks, method, runs, device=device)

    bank(2)  # warm-up
    dist_comm.barrier()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    results = bank(cfg["steps"])
    if device.type == "cuda":
        torch.cuda.synchronize()
    dist_comm.barrier()
    wall = time.perf_counter() - t0
    loss = sum(res.loss_curve[-1][1] for res in results) / R
    if dist_comm.is_main():
        print(json.dumps({"wall_s": wall, "rows": R * r * cfg["steps"], "rows_per_s": R * r * cfg["steps"] / wall,
                          "world": W, "threads": torch.get_num_threads(), "loss_last": loss,
                          "load": os.getloadavg()[0]}))
    dist_comm.shutdown()


# ------------------------------------------------------------------------------ parent


def run_config(cfg: dict, timeout: float) -> dict:
    """One (mode, N) configuration: N fresh processes under torchrun; rank 0's last JSON line."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(cfg["nproc"]),
           str(Path(__file__).resolve()), "--worker", json.dumps(cfg)]
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg["threads"]), IPT_DIST_MODE=cfg["mode"],
               TRANSFORMERS_VERBOSITY="error", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    load_before = os.getloadavg()[0]
    t0 = time.time()
    from bench.throughput import run_json

    out = run_json(cmd, env, cfg, timeout)
    if "error" in out:
        return out
    out["load"] = max(load_before, out["load"], os.getloadavg()[0])
    out["process_s"] = time.time() - t0
    return out


def sweep_estimate(rows_per_s_per_gpu: float, gpus: int = 8, efficiency: float = 0.9, *, tasks: int = 1000,
                   seeds: int = 5, dims: int = 8, pt_steps: int = 300, ist_steps: int = 200, msf_steps: int = 300,
                   batch: int = 16, msf_batch: int = 32, eval_overhead: float = 0.05) -> dict:
    """Rows and hours of an IPT sweep (PT for every task x seed; MSF per dim x seed; IST found + random
    per task x seed x dim) at ``gpus x rows_per_s_per_gpu x efficiency`` rows/s.

    Defaults are the project's (PTConfig, MSFConfig, ISTConfig: 300 / 300 / 200 steps, batch 16 / 32
    / 16); ``eval_overhead`` adds dev/test forward passes (about a third of a training row each,
    ~7 dev evaluations of ~50 rows per run: a few percent).

    Example::

        sweep_estimate(60_000)["hours"]   # ~0.2
    """
    pt = tasks * seeds * pt_steps * batch
    msf = dims * seeds * msf_steps * msf_batch
    ist = 2 * tasks * seeds * dims * ist_steps * batch  # found subspace + random control
    total = (pt + msf + ist) * (1 + eval_overhead)
    rate = gpus * rows_per_s_per_gpu * efficiency
    return {"pt_rows": pt, "msf_rows": msf, "ist_rows": ist, "total_rows": total, "rate": rate,
            "seconds": total / rate, "hours": total / rate / 3600, "runs": tasks * seeds * (1 + 2 * dims) + dims * seeds}


def format_section(results: list[dict], meta: dict) -> str:
    ok = [r for r in results if "error" not in r]
    loads = [r["load"] for r in ok]
    lines = [SECTION, "",
             f"- date: {meta['date']}",
             f"- command: `{meta['command']}` ({meta['seconds']:.0f} s in all)",
             f"- machine: {meta['machine']}",
             f"- load average (1 min) during the measurements: {min(loads, default=0):.1f} to {max(loads, default=0):.1f} "
             f"on {os.cpu_count()} cores (column `load avg`, the highest 1-minute load seen at the start and end of "
             "the configuration; it includes the benchmark's own processes). This machine has only "
             f"{os.cpu_count()} cores and another long job was running beside the benchmark, so absolute rows/s are "
             "low and noisy; above the core count the processes shared the CPU with other work",
             f"- workload: one bank of R={meta['runs']} independent PT runs (shallow prompts of {PROMPT_TOKENS} vectors, "
             f"synthetic rows of 32 text tokens, {meta['rows_per_run']} rows per run per step, so "
             f"{meta['runs'] * meta['rows_per_run']} rows per step), backbone `{meta['backbone']}`, device {meta['device']}, "
             f"fp32 on CPU, {meta['steps']} timed steps after a 2-step warm-up bank; gloo on CPU, nccl on CUDA",
             f"- threads: {meta['threads_rule']}",
             "- `runs`: runs sharded over the processes (no gradient traffic); `rows`: the data-parallel path "
             "(every process 1/N of each step's rows, gradients all-reduced), forced on the same bank",
             "- speed-up = rows/s / rows/s of the faster 1-process configuration (with as many threads as cores, "
             "or with 1 thread); efficiency = speed-up / N",
             "",
             "| mode | processes N | torch threads / process | wall (s) | rows | rows/s | speed-up | scaling efficiency | load avg |",
             "|---|---|---|---|---|---|---|---|---|"]
    base = {}
    for r in ok:  # the faster 1-process configuration (of its thread counts) is the reference
        if r["nproc"] == 1 and (r["mode"] not in base or r["rows_per_s"] > base[r["mode"]]["rows_per_s"]):
            base[r["mode"]] = r
    for r in results:
        cells = [r["mode"], str(r["nproc"]), str(r["threads"])]
        if "error" in r:
            cells += ["failed: " + r["error"].replace("|", "/"), "", "", "", "", ""]
        else:
            b = base.get(r["mode"]) or base.get("runs")
            sp = r["rows_per_s"] / b["rows_per_s"] if b else float("nan")
            cells += [f"{r['wall_s']:.1f}", str(r["rows"]), f"{r['rows_per_s']:.1f}", f"{sp:.2f}x",
                      f"{sp / r['nproc']:.2f}", f"{r['load']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "(`rows` has no 1-process row: with one process nothing is distributed and it is the `runs` loop; "
              "its speed-up is against the `runs` reference.)", ""]
    one = base.get("runs")
    est = sweep_estimate(ASSUMED_GPU_ROWS_PER_S)
    lo = sweep_estimate(ASSUMED_GPU_ROWS_PER_S / 2, efficiency=0.75)
    lines += ["### Paper estimate: a 1,000-task x 5-seed x 8-dimension IPT sweep on 8 GPUs", "",
              f"Per-GPU rate used: **{ASSUMED_GPU_ROWS_PER_S:,.0f} rows/s** ({ASSUMED_GPU_SOURCE}). "
              "The CPU table above measures scaling, not GPU speed; no number in this estimate was measured on a GPU.",
              "",
              "Work (project defaults: PT 300 steps x 16 rows, MSF 300 x 32, IST 200 x 16; IST for the found subspace "
              "and the random control; +5% for dev/test forward passes):",
              "",
              f"- PT: 1,000 tasks x 5 seeds = 5,000 runs, {est['pt_rows'] / 1e6:.0f} M rows",
              f"- MSF: 8 dims x 5 seeds = 40 auto-encoders, {est['msf_rows'] / 1e6:.2f} M rows (negligible)",
              f"- IST: 1,000 x 5 x 8 x 2 (found + random) = 80,000 runs, {est['ist_rows'] / 1e6:.0f} M rows",
              f"- total: {est['total_rows'] / 1e6:.0f} M training-row equivalents in {est['runs']:,} runs",
              "",
              f"At 8 GPUs x {ASSUMED_GPU_ROWS_PER_S:,.0f} rows/s x 0.9 efficiency (runs mode: independent runs, no "
              f"gradient traffic; the loss is load imbalance, per-rank evaluation and start-up) = {est['rate']:,.0f} rows/s: "
              f"**{est['seconds'] / 60:.0f} min** of training. A pessimistic case (half the rate, e.g. deep prompts or "
              f"longer inputs, and 0.75 efficiency): {lo['seconds'] / 60:.0f} min. Model loading and tokenisation "
              "(once per process and stage) add minutes, not hours.",
              ]
    if one is not None:
        cpu = sweep_estimate(one["rows_per_s"], gpus=1, efficiency=1.0)
        lines += ["", f"For scale, at this table's measured 1-process CPU rate ({one['rows_per_s']:.1f} rows/s, loaded "
                  f"2-core machine) the same sweep would take {cpu['hours'] / 24:,.0f} days on one CPU box."]
    lines += ["", f"To measure the per-GPU rate and GPU scaling on a GPU box: `{GPU_COMMAND}` (several processes "
              "share one GPU when N exceeds the GPUs).", ""]
    return "\n".join(lines)


GPU_COMMAND = "python bench/distributed.py --device cuda --nprocs 1,2,4,8 --runs 64 --rows-per-run 32 --steps 20"


def write_section(path: Path, section: str) -> None:
    """Replace this script's section of ``path`` (from its heading to the next ``## `` heading), or append it."""
    text = path.read_text() if path.exists() else ""
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + ("\n" + text[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(text.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nprocs", default="1,2,4", help="process counts, e.g. 1,2,4")
    p.add_argument("--modes", default="runs,rows", help="runs, rows or both")
    p.add_argument("--runs", type=int, default=8, help="PT runs in the bank")
    p.add_argument("--rows-per-run", type=int, default=4)
    p.add_argument("--steps", type=int, default=10, help="timed steps")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--backbone", default="encoder-sim")
    p.add_argument("--timeout", type=float, default=600.0, help="per configuration, seconds")
    p.add_argument("--out", default=str(HERE / "RESULTS.md"))
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(json.loads(args.worker))
        return 0
    from bench.throughput import machine

    t0 = time.time()
    cores = os.cpu_count() or 1
    results = []
    for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
        for n in [int(x) for x in args.nprocs.split(",")]:
            if mode == "rows" and n == 1:
                continue  # the same loop as runs with one process
            threads = [1] if args.device == "cuda" else [max(1, cores // n)]
            if n == 1 and threads != [1]:
                threads.append(1)  # one process with one thread too: the per-process reference
            for th in threads:
                cfg = {"mode": mode, "nproc": n, "threads": th, "runs": args.runs, "rows_per_run": args.rows_per_run,
                       "steps": args.steps, "device": args.device, "backbone": args.backbone}
                res = run_config(cfg, args.timeout)
                print(json.dumps(res), flush=True)
                results.append(res)
    info = machine()
    info.pop("torch threads", None)
    meta = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "command": shlex.join(["python", "bench/distributed.py", *(argv if argv is not None else sys.argv[1:])]),
            "seconds": time.time() - t0, "machine": "; ".join(f"{k} {v}" for k, v in info.items()),
            "runs": args.runs, "rows_per_run": args.rows_per_run, "steps": args.steps, "backbone": args.backbone,
            "device": args.device,
            "threads_rule": (f"max(1, cores // N) torch threads per process ({cores} cores): set with torch.set_num_threads "
                             "and OMP_NUM_THREADS" if args.device == "cpu" else "1 per process")}
    section = format_section(results, meta)
    write_section(Path(args.out), section)
    print(section)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
