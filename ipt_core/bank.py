"""The batched many-run training loop over one frozen backbone.

R independent runs (task x seed x config) train in one loop: every step each active run draws its
own mini-batch from its own data with its own random generator, the rows of all runs go through
the frozen model as one batch, and each row's prompt is gathered from the method's parameters by
the row's run index. The loss is the sum over runs of each run's mean row loss, so a run's
gradient is exactly the one it would get alone. Everything else stays per run: an optimiser
parameter group (its own learning rate and Adam state), gradient clipping, dev evaluation,
best-dev checkpoint, early stopping and divergence detection.

A method (``ipt_core.methods``) owns the parameters and says how a row's prompt is made; the
bank owns the loop.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint
from . import distributed
from .backbones import Backbone, Encoded
from .metrics import accuracy, macro_f1
from .tasks import Example, Task


class Cancelled(RuntimeError):
    """Raised inside the loop when the caller's cancel callback says stop."""


@dataclass(frozen=True)
class RunConfig:
    """One run of a bank. ``tasks`` has one name for single-task methods, several for MSF."""

    tasks: tuple[str, ...]
    seed: int = 0
    lr: float = 0.01
    steps: int = 300
    batch_size: int = 16
    eval_every: int = 50
    patience: int | None = None  # in evaluations without improvement; None: never stop early
    max_grad_norm: float = 1.0
    weight_decay: float = 0.0

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("a run needs at least one task")
        if not (math.isfinite(self.lr) and 0 < self.lr < 1e30):
            raise ValueError(f"lr must be a positive finite number below 1e30, got {self.lr}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive, got {self.max_grad_norm}")
        for name in ("steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or at least 1, got {self.patience}")

    def to_json(self) -> dict:
        return asdict(self) | {"tasks": list(self.tasks)}


@dataclass
class RunResult:
    """What one run produced: scores at its best dev checkpoint, curves and the checkpoint itself."""

    config: RunConfig
    status: str  # "done", "early_stopped", "diverged"
    best_step: int
    dev_acc: float
    dev_f1: float
    test_acc: float
    test_f1: float
    per_task: dict[str, dict[str, float]]
    dev_curve: list[tuple[int, float]]
    loss_curve: list[tuple[int, float]]
    state: dict[str, torch.Tensor]
    seconds: float = 0.0
    test_pred: dict[str, list[int]] = field(default_factory=dict)


def pick_device(device: str | None = None) -> torch.device:
    """``"auto"``/None: CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; fp32 (no autocast) on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


class _Sampler:
    """Epoch-wise shuffling over a run's pooled training rows, driven by the run's own generator."""

    def __init__(self, n_rows: int, seed: int):
        self.n = n_rows
        self.gen = torch.Generator().manual_seed(seed)
        self.order: list[int] = []

    def take(self, k: int) -> list[int]:
        out: list[int] = []
        while len(out) < k:
            if not self.order:
                self.order = torch.randperm(self.n, generator=self.gen).tolist()
            need = k - len(out)
            out += self.order[:need]
            self.order = self.order[need:]
        return out


def evaluate_rows(
    backbone: Backbone,
    method,
    rows: Sequence[tuple[int, int, Example]],
    task_index: dict[str, int],
    label_table,
    *,
    batch_size: int = 128,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and per-row losses for ``(run, task, example)`` rows, in order."""
    par = distributed.row_parallel()  # None unless a row-parallel distributed bank is running
    if par is not None:  # each rank evaluates every W-th row, then all ranks gather all of them
        return par.evaluate(lambda part: evaluate_rows(backbone, method, part, task_index, label_table,
                                                       batch_size=batch_size, device=device), rows)
    # rows sorted by length so each chunk pads little; results are put back in the caller's order
    order = sorted(range(len(rows)), key=lambda i: len(backbone.token_ids(rows[i][2])))
    preds, losses = [], []
    with torch.no_grad(), autocast_for(device):
        for i in range(0, len(rows), batch_size):
            chunk = [rows[j] for j in order[i : i + batch_size]]
            enc = backbone.collate([r[2] for r in chunk]).to(device)
            run_ids = torch.tensor([r[0] for r in chunk], device=device)
            task_ids = torch.tensor([r[1] for r in chunk], device=device)
            gold = torch.tensor([r[2].label for r in chunk], device=device)
            prompt = method.prompts(run_ids, task_ids, enc) if method is not None else None
            kind = method.prompt_kind if method is not None else "shallow"
            logits = backbone.logits(enc, task_ids, label_table, prompt, kind).float()
            preds.append(logits.argmax(-1).cpu().numpy())
            losses.append(F.cross_entropy(logits, gold, reduction="none").cpu().numpy())
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    inverse = np.empty(len(rows), dtype=np.int64)
    inverse[np.asarray(order)] = np.arange(len(rows))
    return np.concatenate(preds)[inverse], np.concatenate(losses)[inverse]


def _score_runs(rows, preds, losses, tasks_by_index: list[Task]):
    """Per (run, task): accuracy, macro-F1, mean loss."""
    by: dict[tuple[int, int], tuple[list[int], list[int], list[float]]] = {}
    for (r, t, ex), p, l in zip(rows, preds, losses):
        g = by.setdefault((r, t), ([], [], []))
        g[0].append(int(p))
        g[1].append(ex.label)
        g[2].append(float(l))
    out: dict[tuple[int, int], dict] = {}
    for (r, t), (p, g, l) in by.items():
        out[(r, t)] = {
            "acc": accuracy(p, g),
            "f1": macro_f1(p, g, len(tasks_by_index[t].labels)),
            "loss": float(np.mean(l)),
            "pred": p,
        }
    return out


@distributed.bank_entry  # under torchrun: runs sharded or rows data-parallel across ranks
def train_bank(
    backbone: Backbone,
    tasks: Sequence[Task],
    method,
    runs: Sequence[RunConfig],
    *,
    device: str | torch.device | None = None,
    eval_batch_size: int = 128,
    max_rows: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 50,
) -> list[RunResult]:
    """Train ``runs`` together and return one ``RunResult`` per run, in order.

    ``tasks`` holds every task any run names; ``method`` holds the parameters of all runs (its
    ``run_parameters(r)``, ``shared_parameters()``, ``prompts(run_ids, task_ids, enc)``,
    ``run_state(r)``/``load_run_state(r, state)``, ``prompt_kind``; optionally
    ``extra_loss(run_ids, task_ids, counts) -> [R]``: called after ``prompts`` for every
    micro-batch with that chunk's rows and each run's row count in the whole step; it returns the
    chunk's share of each run's extra loss, so the shares add up to the step's extra loss).
    ``progress(step, total, message)`` is called after every step; ``should_cancel()`` is polled
    every step and raises ``Cancelled``. ``max_rows`` caps the rows of one forward/backward
    (gradients accumulate over micro-batches): 64 on CPU, 2048 on CUDA unless given.
    With ``checkpoint_dir``, the loop's complete state is saved there every ``checkpoint_every``
    steps (``ipt_core.checkpoint``), and a checkpoint of this same bank found there is resumed:
    the results are the same as those of an uninterrupted run.

    Example::

        tasks = [suite.task("cr"), suite.task("mr")]
        method = PromptTuning(backbone, [tasks[0], tasks[1]], seeds=[0, 0], n_tokens=8, kind="deep")
        results = train_bank(backbone, tasks, method, [RunConfig(("cr",)), RunConfig(("mr",))])
    """
    if not runs:
        raise ValueError("train_bank needs at least one run")
    if checkpoint_dir is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    device = pick_device(device) if not isinstance(device, torch.device) else device
    backbone.to(device)
    method.to(device)
    max_rows = max_rows or (2048 if device.type == "cuda" else 64)
    task_index = {t.name: i for i, t in enumerate(tasks)}
    for cfg in runs:
        for name in cfg.tasks:
            if name not in task_index:
                raise KeyError(f"run names task {name!r}, which is not among the bank's tasks")
    label_table = backbone.label_table(list(tasks))
    par = distributed.row_parallel()  # None in one process (and when runs are sharded)
    R = len(runs)

    # per-run pooled training rows: (task index, example)
    pools = [[(task_index[n], ex) for n in cfg.tasks for ex in tasks[task_index[n]].train] for cfg in runs]
    samplers = [_Sampler(len(p), cfg.seed) for p, cfg in zip(pools, runs)]
    dev_rows = [(r, task_index[n], ex) for r, cfg in enumerate(runs) for n in cfg.tasks for ex in tasks[task_index[n]].dev]

    groups, group_of_run = [], []
    for r, cfg in enumerate(runs):
        params = list(method.run_parameters(r))
        group_of_run.append(len(groups) if params else None)
        if params:
            groups.append({"params": params, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
    shared = list(method.shared_parameters())
    if shared:
        groups.append({"params": shared, "lr": getattr(method, "shared_lr", runs[0].lr), "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups) if groups else None
    run_groups = [optimizer.param_groups[g] if g is not None else None for g in group_of_run]
    shared_clip = getattr(method, "shared_max_grad_norm", max(cfg.max_grad_norm for cfg in runs))

    active = [True] * R
    status = ["done"] * R
    best = [{"acc": -1.0, "loss": math.inf, "step": 0, "state": method.run_state(r)} for r in range(R)]
    since_best = [0] * R
    dev_curves: list[list[tuple[int, float]]] = [[] for _ in range(R)]
    loss_curves: list[list[tuple[int, float]]] = [[] for _ in range(R)]
    started = time.time()
    total_steps = max(cfg.steps for cfg in runs)
    tasks_list = list(tasks)

    def stop(r: int, why: str) -> None:
        # lr 0 at once: Adam's momentum must not move a stopped run at the next step
        active[r] = False
        status[r] = why
        if run_groups[r] is not None:
            run_groups[r]["lr"] = 0.0

    def run_dev_eval(step: int, which: list[int]):
        rows = [row for row in dev_rows if row[0] in set(which)]
        if not rows:
            return
        preds, losses = evaluate_rows(
            backbone, method, rows, task_index, label_table, batch_size=eval_batch_size, device=device
        )
        scores = _score_runs(rows, preds, losses, tasks_list)
        for r in which:
            accs = [s["acc"] for (rr, _), s in scores.items() if rr == r]
            ls = [s["loss"] for (rr, _), s in scores.items() if rr == r]
            acc, loss = float(np.mean(accs)), float(np.mean(ls))
            dev_curves[r].append((step, acc))
            if acc > best[r]["acc"] or (acc == best[r]["acc"] and loss < best[r]["loss"]):
                per_task_dev = {tasks_list[t].name: s for (rr, t), s in scores.items() if rr == r}
                best[r] = {"acc": acc, "loss": loss, "step": step, "state": method.run_state(r), "dev": per_task_dev}
                since_best[r] = 0
            else:
                since_best[r] += 1
                if runs[r].patience is not None and since_best[r] >= runs[r].patience and active[r]:
                    stop(r, "early_stopped")

    fp = checkpoint.fingerprint(runs, tasks_list, method, device_type=device.type, max_rows=max_rows) \
        if checkpoint_dir is not None else None
    resumed = checkpoint.load(checkpoint_dir, fp, method=method, optimizer=optimizer, samplers=samplers,
                              device=device) if checkpoint_dir is not None else None
    if resumed is not None:
        # in place: stop() and run_dev_eval() hold these lists
        active[:], status[:], best[:], since_best[:] = resumed.active, resumed.status, resumed.best, resumed.since_best
        dev_curves[:], loss_curves[:] = resumed.dev_curves, resumed.loss_curves
        started -= resumed.elapsed
    else:
        method.eval()
        run_dev_eval(0, list(range(R)))
    method.train()
    for step in range((resumed.step if resumed is not None else 0) + 1, total_steps + 1):
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled at step {step} of {total_steps}")
        for r, cfg in enumerate(runs):
            if active[r] and step > cfg.steps:
                stop(r, status[r])
        live = [r for r in range(R) if active[r]]
        if not live:
            break
        batch: list[tuple[int, int, Example]] = []
        for r in live:
            for i in samplers[r].take(runs[r].batch_size):
                t, ex = pools[r][i]
                batch.append((r, t, ex))
        counts = torch.zeros(R, device=device)
        counts.index_add_(0, torch.tensor([b[0] for b in batch], device=device), torch.ones(len(batch), device=device))
        counts = counts.clamp_min(1)
        # micro-batches bound activation memory; each row's loss is divided by its run's full row
        # count, so the accumulated gradient equals the one-batch gradient
        batch.sort(key=lambda b: len(backbone.token_ids(b[2])))
        if par is not None:  # data parallel: this rank's slice; counts stay global
            batch = par.local_rows(batch)
        run_loss_sum = torch.zeros(R, device=device)
        if optimizer is not None:
            optimizer.zero_grad(set_to_none=True)
        for c in range(0, len(batch), max_rows):
            chunk = batch[c : c + max_rows]
            enc = backbone.collate([b[2] for b in chunk]).to(device)
            run_ids = torch.tensor([b[0] for b in chunk], device=device)
            task_ids = torch.tensor([b[1] for b in chunk], device=device)
            gold = torch.tensor([b[2].label for b in chunk], device=device)
            with autocast_for(device):
                prompt = method.prompts(run_ids, task_ids, enc)
                logits = backbone.logits(enc, task_ids, label_table, prompt, method.prompt_kind).float()
            row_loss = F.cross_entropy(logits, gold, reduction="none")
            per_run = torch.zeros(R, device=device).index_add_(0, run_ids, row_loss) / counts
            if hasattr(method, "extra_loss"):
                extra = method.extra_loss(run_ids, task_ids, counts)
                if extra is not None:
                    per_run = per_run + extra
            run_loss_sum += per_run.detach()
            # a diverged run stops; its NaN must not reach the other runs' gradients
            safe = torch.where(torch.isfinite(per_run), per_run, torch.zeros_like(per_run))
            if optimizer is not None and safe.requires_grad:
                safe.sum().backward()
        if par is not None:  # sum run losses and gradients over ranks, before clipping
            par.reduce_step(run_loss_sum, [p for g in optimizer.param_groups for p in g["params"]] if optimizer else [])
        run_losses = run_loss_sum.cpu().tolist()
        diverged = [r for r in live if not math.isfinite(run_losses[r])]
        if optimizer is not None:
            for r in live:
                grp = run_groups[r]
                if grp is None:
                    continue
                if r in diverged:
                    for p in grp["params"]:
                        p.grad = None
                    continue
                torch.nn.utils.clip_grad_norm_(grp["params"], runs[r].max_grad_norm)
            if shared:
                torch.nn.utils.clip_grad_norm_(shared, shared_clip)
            optimizer.step()
        for r in diverged:
            stop(r, "diverged")
        for r in live:
            # JSON has no NaN: a non-finite loss is recorded as None (the run is marked diverged)
            loss_curves[r].append((step, run_losses[r] if math.isfinite(run_losses[r]) else None))
        for r in live:
            if active[r] and step >= runs[r].steps:
                stop(r, status[r])
        due = [r for r in live if r not in diverged and (step % runs[r].eval_every == 0 or step == runs[r].steps)]
        if due:
            method.eval()
            run_dev_eval(step, due)
            method.train()
        if checkpoint_dir is not None and step % checkpoint_every == 0 and step < total_steps:
            checkpoint.save(checkpoint_dir, fp, checkpoint.LoopState(
                step, time.time() - started, active, status, best, since_best, dev_curves, loss_curves),
                method=method, optimizer=optimizer, samplers=samplers, device=device)
        if progress is not None:
            progress(step, total_steps, f"{len([r for r in range(R) if active[r]])}/{R} runs active")

    # test with each run's best checkpoint
    method.eval()
    for r in range(R):
        method.load_run_state(r, best[r]["state"])
    test_rows = [(r, task_index[n], ex) for r, cfg in enumerate(runs) for n in cfg.tasks for ex in tasks[task_index[n]].test]
    preds, losses = evaluate_rows(backbone, method, test_rows, task_index, label_table, batch_size=eval_batch_size, device=device)
    test_scores = _score_runs(test_rows, preds, losses, tasks_list)
    elapsed = time.time() - started

    results = []
    for r, cfg in enumerate(runs):
        per_task = {}
        for n in cfg.tasks:
            t = task_index[n]
            per_task[n] = {
                "dev_acc": best[r]["dev"][n]["acc"],
                "dev_f1": best[r]["dev"][n]["f1"],
                "test_acc": test_scores[(r, t)]["acc"],
                "test_f1": test_scores[(r, t)]["f1"],
            }
        results.append(
            RunResult(
                config=cfg,
                status=status[r],
                best_step=best[r]["step"],
                dev_acc=float(np.mean([v["dev_acc"] for v in per_task.values()])),
                dev_f1=float(np.mean([v["dev_f1"] for v in per_task.values()])),
                test_acc=float(np.mean([v["test_acc"] for v in per_task.values()])),
                test_f1=float(np.mean([v["test_f1"] for v in per_task.values()])),
                per_task=per_task,
                dev_curve=dev_curves[r],
                loss_curve=loss_curves[r],
                state={k: v.detach().cpu().clone() for k, v in best[r]["state"].items()},
                seconds=elapsed,
                test_pred={n: test_scores[(r, task_index[n])]["pred"] for n in cfg.tasks},
            )
        )
    return results
