"""Fault injection: kill -9 and resume, corrupted store entries, concurrent job submissions.

    python -m bench.faults --kills 4 --corruptions 20 --checkpoint-damages 300 --jobs 24   # -> bench/FAULTS.md

Everything runs on CPU with a tiny random-weight BERT (hidden 32, 2 layers, saved to a temp
folder with the packaged MiniLM's tokenizer) and a tiny task suite, so that a cycle takes seconds:

- **kill and resume**: ``python -m ipt_core tune`` (4 runs in one bank) is started, killed with
  SIGKILL once a random checkpoint step is reached (1-3 times per cycle), and started again until it
  finishes; its JSON scores and stored prompts must equal those of a run never killed, bit for bit.
  Before each cycle one run of the request is already in the store: it must be neither lost nor
  recomputed (same key, same creation time).
- **corruption**: a random stored entry is damaged at random (truncated or flipped tensor bytes,
  edited or garbage metadata, a deleted file, appended bytes); the same request must never show a
  different number: the damaged entry is detected (quarantined, recomputed to the same scores) or
  the damage was harmless (bytes that do not change any value).
- **checkpoint damage**: random bytes of a checkpoint's files are flipped, zeroed, cut or appended;
  loading it must refuse it (checksums, fingerprint) and change nothing, never resume from it.
- **concurrency**: several processes submit jobs to one queue at once while two workers run them;
  every job must run exactly once, the "gpu" ones one at a time.

The figures go to ``--out`` (Markdown). Nothing here is timed for its own sake.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# every word is one WordPiece token of the BERT vocabulary
_FILLER = ("the", "a", "film", "day", "it", "was", "very", "and", "this", "one", "of", "my", "that", "we")
_KEYWORDS = {"sentiment": (("great", "positive"), ("awful", "negative")),
             "colour": (("sky", "blue"), ("grass", "green"), ("fire", "red"))}


# --------------------------------------------------------------------------------------------------
# a tiny model and suite on disk (the CLI loads them like any local model / task folder)


def make_tiny_model(path: Path, seed: int = 0) -> Path:
    """A random-weight BERT (hidden 32, 2 layers) with the packaged tokenizer, saved to ``path``."""
    import torch
    import transformers as tf

    from ipt_core.backbones import packaged_model_path

    tok = tf.AutoTokenizer.from_pretrained(str(packaged_model_path()), local_files_only=True)
    cfg = tf.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, initializer_range=0.2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        # with its pooler: a weight missing from the folder would be drawn afresh at every load, and
        # the backbone's weights hash (part of every result key) would differ between processes
        model = tf.BertModel(cfg)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    return path


def make_tiny_suite(path: Path, n: dict | None = None) -> Path:
    """A folder suite of two small keyword tasks (train/dev/test rows per label from ``n``)."""
    n = n or {"train": 8, "dev": 4, "test": 4}
    rng = random.Random(0)
    for name, pairs in _KEYWORDS.items():
        d = path / name
        d.mkdir(parents=True)
        labels = [lab for _, lab in pairs]
        doc = {"name": name, "type": name, "labels": labels, "input_fields": ["text"],
               "description": f"tiny {name} task", "license": "CC0",
               "sizes": {s: k * len(labels) for s, k in n.items()}, "notes": []}
        (d / "task.json").write_text(json.dumps(doc, indent=1))
        for split, k in n.items():
            rows = []
            for i in range(k):
                for word, lab in pairs:
                    words = [rng.choice(_FILLER) for _ in range(rng.randint(1, 8))]
                    words.insert(rng.randint(0, len(words)), word)
                    rows.append(json.dumps({"text": " ".join(words), "label": lab}))
            (d / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    return path


def tune_argv(suite: Path, model: Path, store: Path, *, seeds: str = "0,1", steps: int = 300,
              checkpoint_every: int = 3) -> list[str]:
    """``python -m ipt_core tune`` on the tiny suite and model: 2 tasks x the seeds, one bank."""
    return [sys.executable, "-m", "ipt_core", "tune", "--suite", str(suite), "--backbone", f"encoder-sim:{model}",
            "--device", "cpu", "--seed-list", seeds, "--steps", str(steps), "--eval-every", "50", "--batch-size", "4",
            "--prompt-len", "4", "--prompt-kind", "shallow", "--lr", "0.05", "--no-baselines", "--json",
            "--cache", str(store), "--checkpoint-every", str(checkpoint_every)]


def child_env() -> dict[str, str]:
    # one thread: the same float results in every process, and a fair share of a busy machine
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")


def checkpoint_steps(store: Path) -> list[int]:
    """Steps of the checkpoints now under ``store`` (a JSON appears only once its tensors are complete)."""
    out = []
    for p in (store / "checkpoints").glob("*/step-*.json"):
        try:
            out.append(int(p.stem.split("-")[1]))
        except ValueError:
            pass
    return out


def resumed_step(stderr: str) -> int | None:
    """The step a run said it resumed from (``ipt_core.train.checkpoint`` logs it on stderr), or None."""
    m = re.search(r"resuming bank from checkpoint .* \(step (\d+)\)", stderr)
    return int(m.group(1)) if m else None


def run_to_end(argv: list[str], timeout: float = 300) -> tuple[dict, str]:
    """Run the command to its end; its JSON (last stdout line) and its stderr."""
    p = subprocess.run(argv, env=child_env(), capture_output=True, text=True, timeout=timeout, cwd=REPO)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:5])}... exited {p.returncode}: {p.stderr[-2000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1]), p.stderr


def run_and_kill(argv: list[str], store: Path, at_step: int, timeout: float = 300) -> tuple[int | None, str]:
    """Start the command and SIGKILL it once a checkpoint of step >= ``at_step`` exists.

    Returns the newest checkpoint step seen at the kill (None when the run ended first) and the
    process's stderr.
    """
    with tempfile.TemporaryFile("w+") as err:
        p = subprocess.Popen(argv, env=child_env(), stdout=subprocess.DEVNULL, stderr=err, cwd=REPO)
        end = time.time() + timeout
        try:
            while time.time() < end:
                steps = checkpoint_steps(store)
                if steps and max(steps) >= at_step:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
                    break
                if p.poll() is not None:
                    steps = None
                    break
                time.sleep(0.005)
            else:
                raise TimeoutError(f"no checkpoint of step {at_step} within {timeout} s")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err.seek(0)
        return (max(steps) if steps else None), err.read()


def stored_runs(store: Path) -> dict[str, tuple[float, bytes]]:
    """key -> (created, prompt bytes) of every pt_run entry."""
    from ipt_core.store import Store

    out = {}
    for e in Store(store).query("pt_run"):
        out[e.key] = (e.created, e.tensor("prompt").numpy().tobytes())
    return out


def scores(report: dict) -> list[tuple]:
    return [(r["task"], r["seed"], r["key"], r["dev_acc"], r["test_acc"], r["test_f1"], r["status"])
            for r in report["runs"]]


# --------------------------------------------------------------------------------------------------
# the three experiments


def kill_cycles(work: Path, suite: Path, model: Path, n: int, rng: random.Random, steps: int = 300) -> dict:
    ref = work / "ref"
    run_to_end(tune_argv(suite, model, ref, seeds="0", steps=steps, checkpoint_every=0))
    want = scores(run_to_end(tune_argv(suite, model, ref, seeds="0,1", steps=steps, checkpoint_every=0))[0])
    want_prompts = {k: v[1] for k, v in stored_runs(ref).items()}
    out = {"cycles": n, "kills": 0, "kills_survived": 0, "resumes": 0, "runs_ended_before_kill": 0,
           "kill_steps": [], "identical_results": 0, "finished_runs_kept": 0, "checkpoints_left": 0}
    for c in range(n):
        store = work / f"kill{c}"
        run_to_end(tune_argv(suite, model, store, seeds="0", steps=steps))  # a finished run of the bank
        before = stored_runs(store)
        argv = tune_argv(suite, model, store, seeds="0,1", steps=steps)
        targets = sorted(rng.sample(range(3, steps - 30, 3), rng.randint(1, 3)))
        killed_at, resumed_from = [], []
        for t in targets:
            # the killed run's checkpoint is still there: wait for a newer one, written after the resume
            got, err = run_and_kill(argv, store, max(t, killed_at[-1] + 1) if killed_at else t)
            if killed_at:
                resumed_from.append(resumed_step(err))
            if got is None:
                out["runs_ended_before_kill"] += 1
                break
            killed_at.append(got)
        report, err = run_to_end(argv)
        resumed_from.append(resumed_step(err))
        # each restart must have resumed from the checkpoint its killed predecessor left
        resumed_ok = resumed_from[: len(killed_at)] == killed_at
        same = scores(report) == want and {k: v[1] for k, v in stored_runs(store).items()} == want_prompts
        kept = all(stored_runs(store).get(k) == v for k, v in before.items())
        out["kills"] += len(killed_at)
        out["resumes"] += sum(1 for k, r in zip(killed_at, resumed_from) if k == r)
        out["kills_survived"] += len(killed_at) if same and resumed_ok else 0
        out["identical_results"] += int(same)
        out["finished_runs_kept"] += int(kept)
        out["checkpoints_left"] += len(checkpoint_steps(store))
        out["kill_steps"].append(killed_at)
        print(f"kill cycle {c}: killed at checkpoint steps {killed_at}, resumed from {resumed_from}, "
              f"identical={same}, finished run kept={kept}", flush=True)
    return out


def _damage(entry_dir: Path, rng: random.Random) -> str:
    tensors, meta = entry_dir / "tensors.safetensors", entry_dir / "entry.json"
    kind = rng.choice(["truncate_tensors", "flip_tensor_byte", "flip_json_byte", "edit_number", "garbage_json",
                       "delete_tensors", "append_bytes"])
    if kind == "truncate_tensors":
        data = tensors.read_bytes()
        tensors.write_bytes(data[: rng.randrange(len(data))])
    elif kind == "flip_tensor_byte":
        data = bytearray(tensors.read_bytes())
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
        tensors.write_bytes(bytes(data))
    elif kind == "flip_json_byte":
        data = bytearray(meta.read_bytes())
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
        meta.write_bytes(bytes(data))
    elif kind == "edit_number":
        doc = json.loads(meta.read_text())
        doc["meta"]["test_acc"] = round(rng.random(), 3)
        meta.write_text(json.dumps(doc, indent=1))
    elif kind == "garbage_json":
        meta.write_bytes(os.urandom(rng.randrange(1, 200)))
    elif kind == "delete_tensors":
        tensors.unlink()
    else:
        with open(rng.choice([tensors, meta]), "ab") as f:
            f.write(os.urandom(rng.randrange(1, 64)))
    return kind


def corruptions(work: Path, suite: Path, model: Path, m: int, rng: random.Random) -> dict:
    """In-process: one tiny backbone, short runs; each trial damages one entry and asks again."""
    import torch

    from ipt_core.backbones import load_backbone
    from ipt_core.config.pt import PTConfig
    from ipt_core.experiments.tune import tune
    from ipt_core.store import Store
    from ipt_core.tasks import load_suite

    torch.set_num_threads(1)
    bb = load_backbone(f"encoder-sim:{model}")
    st = load_suite(str(suite))
    cfg = PTConfig(n_tokens=4, kind="shallow", steps=12, eval_every=6, batch_size=4, lr=0.05)
    store = Store(work / "corrupt")
    request = dict(seeds=[0, 1, 2], cfg=cfg, backbone=bb, device="cpu", with_baselines=False)
    pristine = tune(store, st, None, **request).runs
    out = {"trials": m, "detected": 0, "harmless": 0, "wrong_number_shown": 0, "recomputed_identical": 0,
           "kinds": {}}
    for _ in range(m):
        entries = store.query("pt_run")
        victim = rng.choice(entries)
        kind = _damage(victim.path, rng)
        detected = store.get(victim.key) is None  # verifies checksums; quarantines what fails
        rows = tune(store, st, None, **request).runs  # recomputes what is missing
        if rows != [dict(r) for r in pristine]:
            out["wrong_number_shown"] += 1
        elif detected:
            out["detected"] += 1
            out["recomputed_identical"] += 1
        else:
            out["harmless"] += 1
        out["kinds"][kind] = out["kinds"].get(kind, 0) + 1
    out["quarantined"] = len(list((store.root / "corrupt").iterdir())) if (store.root / "corrupt").exists() else 0
    out["store_verify"] = store.verify()
    print(f"corruptions: {out}", flush=True)
    return out


def checkpoint_damage(work: Path, trials: int, rng: random.Random) -> dict:
    """Random byte damage of a checkpoint's files: a bank must never resume from a damaged one."""
    import torch

    from ipt_core.methods.pt import PromptTuning
    from ipt_core.train import checkpoint
    from ipt_core.train.bank import _Sampler

    def bank(seed):
        g = torch.Generator().manual_seed(seed)
        m = PromptTuning([torch.randn(4, 32, generator=g) for _ in range(3)], "shallow")
        opt = torch.optim.Adam([{"params": [p], "lr": 0.1} for p in m.params])
        return m, opt, [_Sampler(12, r) for r in range(3)]

    m, opt, samplers = bank(0)
    m.prompts(torch.tensor([0, 1, 2]), None, None).pow(2).sum().backward()
    opt.step()
    state = checkpoint.LoopState(6, 1.0, [True] * 3, ["done"] * 3,
                                 [{"acc": 0.5, "loss": 0.7, "step": 3, "state": m.run_state(r)} for r in range(3)],
                                 [0] * 3, [[(0, 0.5)]] * 3, [[(1, 0.9)]] * 3)
    src = work / "ck-src"
    checkpoint.save(src, "f" * 64, state, method=m, optimizer=opt, samplers=samplers, device=torch.device("cpu"))
    out = {"trials": trials, "refused": 0, "unchanged_bytes": 0, "resumed_from_damaged": 0}
    logging.getLogger("ipt_core.train.checkpoint").setLevel(logging.ERROR)  # each refusal is a warning
    for i in range(trials):
        d = work / f"ck-{i}"
        shutil.copytree(src, d)
        f = rng.choice(sorted(d.iterdir()))
        data = bytearray(f.read_bytes())
        before = bytes(data)
        for _ in range(rng.randint(1, 3)):
            op = rng.choice(["flip", "truncate", "append", "zero"])
            j = rng.randrange(len(data)) if data else 0
            if op == "flip" and data:
                data[j] ^= 1 << rng.randrange(8)
            elif op == "truncate":
                del data[j:]
            elif op == "append":
                data += os.urandom(rng.randint(1, 8))
            elif data:
                data[j] = 0
        f.write_bytes(bytes(data))
        m2, opt2, s2 = bank(1)
        got = checkpoint.load(d, "f" * 64, method=m2, optimizer=opt2, samplers=s2, device=torch.device("cpu"))
        if bytes(data) == before:
            out["unchanged_bytes"] += 1
        elif got is None:
            out["refused"] += 1
        else:
            out["resumed_from_damaged"] += 1
        shutil.rmtree(d)
    print(f"checkpoint damage: {out}", flush=True)
    return out


def concurrent_jobs(work: Path, suite: Path, k: int, submitters: int = 4) -> dict:
    from ipt_core import jobs

    root = work / "jobs"
    root.mkdir()
    per = max(1, k // submitters)
    code = ("import sys; from ipt_core import jobs; "
            "[jobs.submit(sys.argv[1], ['tasks', '--suite', sys.argv[3]], label=f'p{sys.argv[2]}-{i}', "
            "resource='gpu' if i % 3 == 0 else 'cpu') for i in range(int(sys.argv[4]))]")
    env = child_env()
    subs = [subprocess.Popen([sys.executable, "-c", code, str(root), str(s), str(suite), str(per)], env=env)
            for s in range(submitters)]
    workers = [subprocess.Popen([sys.executable, "-m", "ipt_core.jobs", "worker", "--cache", str(root), "--poll", "0.1",
                                 "--idle-exit", "20", "--cpu-slots", "2"], env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True) for _ in range(2)]
    try:
        ok_submit = all(p.wait(timeout=120) == 0 for p in subs)
        end = time.time() + 600
        while time.time() < end:
            js = jobs.list_jobs(root)
            if len(js) == per * submitters and all(j.finished for j in js):
                break
            time.sleep(0.2)
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
        for w in workers:
            try:
                w.wait(timeout=30)
            except subprocess.TimeoutExpired:
                w.kill()
    js = jobs.list_jobs(root)
    ran_once = sum(1 for j in js if (j.dir / "log.txt").exists()
                   and (j.dir / "log.txt").read_text().count("started by worker") == 1)
    gpu = sorted((j.started, j.ended) for j in js if j.resource == "gpu" and j.started and j.ended)
    overlaps = sum(1 for (s1, e1), (s2, e2) in zip(gpu, gpu[1:]) if e1 > s2)
    out = {"submitted": per * submitters, "submitters": submitters, "queued_seen": len(js),
           "done": sum(j.status == "done" for j in js), "ran_exactly_once": ran_once,
           "gpu_jobs": len(gpu), "gpu_overlaps": overlaps, "submitters_ok": ok_submit,
           "labels_unique": len({j.label for j in js}) == len(js)}
    print(f"concurrent jobs: {out}", flush=True)
    return out


# --------------------------------------------------------------------------------------------------


def write_report(path: Path, args, kills: dict, corr: dict, ckd: dict, conc: dict, seconds: float) -> None:
    lost = (kills["cycles"] - kills["finished_runs_kept"]) + corr["wrong_number_shown"] + \
        (conc["submitted"] - conc["done"])
    cmd = (f"python -m bench.faults --kills {args.kills} --corruptions {args.corruptions} "
           f"--checkpoint-damages {args.checkpoint_damages} --jobs {args.jobs} --seed {args.seed}")
    lines = [
        "# Fault injection",
        "",
        f"Command: `{cmd}` (CPU, tiny random-weight BERT, {time.strftime('%Y-%m-%d', time.gmtime())}, "
        f"{seconds / 60:.1f} min). Written by `bench/faults.py`; its docstring says what each part does.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| kill-and-resume cycles | {kills['cycles']} |",
        f"| `kill -9` mid-run | {kills['kills']} (at checkpoint steps {kills['kill_steps']}) |",
        f"| restarts that resumed from the killed run's last checkpoint | {kills['resumes']} / {kills['kills']} |",
        f"| kills survived (resumed, and the final result bit-identical to an uninterrupted run: JSON scores "
        f"and stored prompts) | {kills['kills_survived']} / {kills['kills']} |",
        f"| cycles with identical final results | {kills['identical_results']} / {kills['cycles']} |",
        f"| finished runs of the bank kept (same key and creation time, not recomputed) | "
        f"{kills['finished_runs_kept']} / {kills['cycles']} |",
        f"| checkpoints left behind after the runs finished | {kills['checkpoints_left']} |",
        f"| random corruptions of stored entries | {corr['trials']} ({', '.join(f'{k} {v}' for k, v in sorted(corr['kinds'].items()))}) |",
        f"| detected by checksum, quarantined and recomputed to identical scores | {corr['detected']} |",
        f"| harmless (no value changed, e.g. a flipped bit in JSON whitespace) | {corr['harmless']} |",
        f"| wrong number shown | {corr['wrong_number_shown']} |",
        f"| store.verify() afterwards | {corr['store_verify']['ok']} valid, {len(corr['store_verify']['corrupt'])} corrupt |",
        f"| random damages of a checkpoint's files | {ckd['trials']} |",
        f"| refused (checksum, format or fingerprint) / resumed from a damaged checkpoint | "
        f"{ckd['refused']} / {ckd['resumed_from_damaged']} (and {ckd['unchanged_bytes']} left the bytes unchanged) |",
        f"| jobs submitted at once ({conc['submitters']} processes, 2 workers) | {conc['submitted']} |",
        f"| jobs run exactly once / done | {conc['ran_exactly_once']} / {conc['done']} |",
        f"| \"gpu\" jobs overlapping in time | {conc['gpu_overlaps']} (of {conc['gpu_jobs']}) |",
        f"| damaged inputs tried (entries + checkpoints) | {corr['trials'] + ckd['trials']} |",
        f"| **results lost** | **{lost}** |",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=6, help="kill-and-resume cycles (1-3 kills each)")
    ap.add_argument("--corruptions", type=int, default=24)
    ap.add_argument("--checkpoint-damages", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "bench" / "FAULTS.md"))
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    t0 = time.time()
    work = Path(tempfile.mkdtemp(prefix="ipt-faults-"))
    try:
        model = make_tiny_model(work / "model")
        suite = make_tiny_suite(work / "suite")
        kills = kill_cycles(work, suite, model, args.kills, rng)
        corr = corruptions(work, suite, model, args.corruptions, rng)
        ckd = checkpoint_damage(work, args.checkpoint_damages, rng)
        conc = concurrent_jobs(work, suite, args.jobs)
        write_report(Path(args.out), args, kills, corr, ckd, conc, time.time() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(Path(args.out).read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
