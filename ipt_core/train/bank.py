"""The batched many-run training loop over one frozen backbone.

R independent runs (task x seed x config) train in one loop: every step each active run draws its
own mini-batch from its own data with its own random generator, the rows of all runs go through
the frozen model as one batch, and each row's prompt is gathered from the method's parameters by
the row's run index. The loss is the sum over runs of each run's mean row loss, so a run's
gradient is exactly the one it would get alone. Everything else stays per run: an optimiser
parameter group (its own learning rate and Adam state), gradient clipping, dev evaluation,
best-dev checkpoint, early stopping and divergence detection.

A method (a ``ipt_core.methods.base.BankMethod``) owns the parameters and says how a row's prompt
is made; the bank owns the training step. Evaluation, checkpointing, progress and cancellation are
callbacks (``ipt_core.train.loop``), and where the rows are computed is a row strategy
(``ipt_core.train.loop.rows``): ``ipt_core.train.distributed`` plugs in there and wraps this function, which
never imports it.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ipt_core.backbones import Backbone
from ipt_core.config.train import TrainConfig
from ipt_core.tasks import Example, Task
from ipt_core.train import checkpoint
from ipt_core.train.loop.checkpointing import Checkpointing
from ipt_core.train.loop.evaluation import (
    DevEvaluation,
    autocast_for,
    evaluate_rows,
    score_runs,
)
from ipt_core.train.loop.reporting import Cancellation, ProgressReport
from ipt_core.train.loop.rows import LocalRows
from ipt_core.train.loop.schedule import LRSchedule
from ipt_core.train.loop.state import BankState, Callback, CallbackList, Cancelled

__all__ = ["RunConfig", "RunResult", "Cancelled", "Callback", "BankState", "train_bank", "evaluate_rows",
           "pick_device", "autocast_for"]


@dataclass(frozen=True)
class RunConfig(TrainConfig):
    """One run of a bank: its tasks (one name for single-task methods, several for MSF), seed and budget."""

    tasks: tuple[str, ...]
    seed: int = 0
    weight_decay: float = 0.0

    def __post_init__(self):
        if not self.tasks:
            raise ValueError("a run needs at least one task")
        self.check_train()

    @classmethod
    def of(cls, tasks: Sequence[str], seed: int, cfg: TrainConfig) -> "RunConfig":
        """The run of ``tasks`` and ``seed`` under a method config's training budget (``cfg.train``)."""
        return cls(tuple(tasks), seed=seed, **asdict(cfg.train))

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
    test_acc: float | None  # None: the method is not scored on test (MSF: see ``BankMethod.score_test``)
    test_f1: float | None
    per_task: dict[str, dict[str, float]]
    dev_curve: list[tuple[int, float]]
    loss_curve: list[tuple[int, float]]
    state: dict[str, torch.Tensor]
    seconds: float = 0.0
    cpu_seconds: float | None = None  # the bank process's CPU time (all threads); None after a resume
    test_pred: dict[str, list[int]] = field(default_factory=dict)


def pick_device(device: str | None = None) -> torch.device:
    """``"auto"``/None: CUDA when present, else CPU."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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


def train_bank(
    backbone: Backbone,
    tasks: Sequence[Task],
    method,
    runs: Sequence[RunConfig],
    *,
    device: str | torch.device | None = None,
    eval_batch_size: int | None = None,
    max_rows: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 50,
    rows: LocalRows | None = None,
    callbacks: Sequence[Callback] = (),
) -> list[RunResult]:
    """Train ``runs`` together and return one ``RunResult`` per run, in order.

    ``tasks`` holds every task any run names; ``method`` (a ``BankMethod``) holds the parameters of
    all runs. ``progress(step, total, message)`` is called after every step; ``should_cancel()``
    is polled before every step and raises ``Cancelled``. ``max_rows`` caps the rows of one
    forward/backward (gradients accumulate over micro-batches): 16 on CPU, 2048 on CUDA unless
    given; ``eval_batch_size`` the rows of one evaluation forward: 64 on CPU, 128 on CUDA. (On a
    2-core CPU, training chunks of 16 ran 1.04x the rows per second of 32 and 1.3x those of 64;
    evaluation chunks of 16-64 ran alike, 1.15-1.25x those of 128: bench/SPEED.md.) With ``checkpoint_dir``, the loop's complete state is saved there every
    ``checkpoint_every`` steps (``ipt_core.train.checkpoint``), and a checkpoint of this same bank found
    there is resumed: the results are the same as those of an uninterrupted run. ``rows`` is the
    row strategy (``ipt_core.train.loop.rows``; default: all rows here); ``callbacks`` run after the
    built-in ones (checkpointing, evaluation, cancellation, progress). This function trains in
    one process; ``ipt_core.train.distributed.train_bank_on_ranks`` is the same call across torchrun's ranks.

    Example::

        tasks = [suite.task("cr"), suite.task("mr")]
        method = PromptTuning([init_prompt(bb, 8, "deep", seed=0)] * 2, kind="deep")
        results = train_bank(backbone, tasks, method, [RunConfig(("cr",)), RunConfig(("mr",))])
    """
    if not runs:
        raise ValueError("train_bank needs at least one run")
    if checkpoint_dir is not None and checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be at least 1, got {checkpoint_every}")
    device = pick_device(device) if not isinstance(device, torch.device) else device
    backbone.to(device)
    method.to(device)
    max_rows = max_rows or (2048 if device.type == "cuda" else 16)
    eval_batch_size = eval_batch_size or (128 if device.type == "cuda" else 64)
    rows = rows if rows is not None else LocalRows()
    tasks = list(tasks)
    task_index = {t.name: i for i, t in enumerate(tasks)}
    for cfg in runs:
        for name in cfg.tasks:
            if name not in task_index:
                raise KeyError(f"run names task {name!r}, which is not among the bank's tasks")
    label_table = backbone.label_table(tasks)
    split = lambda part: [(r, task_index[n], ex) for r, cfg in enumerate(runs) for n in cfg.tasks
                          for ex in getattr(tasks[task_index[n]], part)]
    pools = [[(task_index[n], ex) for n in cfg.tasks for ex in tasks[task_index[n]].train] for cfg in runs]
    bank = BankState(runs, method, *_optimizer(method, runs), [_Sampler(len(p), cfg.seed) for p, cfg in zip(pools, runs)],
                     device, total_steps=max(cfg.steps for cfg in runs))
    evaluate = lambda part: rows.evaluate(lambda mine: evaluate_rows(
        backbone, method, mine, task_index, label_table, batch_size=eval_batch_size, device=device), part)
    # in this order: a step's checkpoint holds its evaluation; progress comes once the checkpoint is written
    hooks = CallbackList(
        [LRSchedule(), DevEvaluation(evaluate, split("dev"), tasks)]
        + ([Checkpointing(checkpoint_dir, checkpoint_every, checkpoint.fingerprint(
            runs, tasks, method, device_type=device.type, max_rows=max_rows))] if checkpoint_dir is not None else [])
        + ([Cancellation(should_cancel)] if should_cancel is not None else [])
        + ([ProgressReport(progress)] if progress is not None else []) + list(callbacks))
    hooks.on_init(bank)
    hooks.on_train_begin(bank)
    method.train()
    for step in range(bank.step + 1, bank.total_steps + 1):
        hooks.on_step_begin(bank, step)
        for r in bank.live():
            if step > runs[r].steps:
                bank.stop(r, bank.status[r])
        if not bank.live():
            break
        _train_step(bank, step, backbone, pools, label_table, max_rows, rows)
        for r in bank.live():
            if step >= runs[r].steps:
                bank.stop(r, bank.status[r])
        bank.step = step
        hooks.on_step_end(bank, step)
    hooks.on_train_end(bank)
    return _results(bank, tasks, split("test"), evaluate)


def _optimizer(method, runs: Sequence[RunConfig]):
    """Adam with one parameter group per run (its own lr) and one for the shared parameters; each run's group."""
    groups, group_of_run = [], []
    for r, cfg in enumerate(runs):
        params = list(method.run_parameters(r))
        group_of_run.append(len(groups) if params else None)
        if params:
            groups.append({"params": params, "lr": cfg.lr, "weight_decay": cfg.weight_decay})
    shared = list(method.shared_parameters())
    if shared:
        lr = method.shared_lr if method.shared_lr is not None else runs[0].lr
        groups.append({"params": shared, "lr": lr, "weight_decay": 0.0})
    optimizer = torch.optim.Adam(groups) if groups else None
    return optimizer, [optimizer.param_groups[g] if g is not None else None for g in group_of_run]


def _train_step(bank: BankState, step: int, backbone: Backbone, pools, label_table, max_rows: int, rows) -> None:
    """One optimiser step of every active run; records each run's loss, stops the runs that diverged."""
    method, optimizer, device, R = bank.method, bank.optimizer, bank.device, bank.n_runs
    live = bank.live()
    batch: list[tuple[int, int, Example]] = []
    for r in live:
        # full batch: every training row once a step (the sampler's order; the sum does not depend on it)
        for i in bank.samplers[r].take(len(pools[r]) if bank.runs[r].full_batch else bank.runs[r].batch_size):
            t, ex = pools[r][i]
            batch.append((r, t, ex))
    counts = torch.zeros(R, device=device)
    counts.index_add_(0, torch.tensor([b[0] for b in batch], device=device), torch.ones(len(batch), device=device))
    counts = counts.clamp_min(1)
    # micro-batches bound activation memory; each row's loss is divided by its run's full row
    # count, so the accumulated gradient equals the one-batch gradient
    batch.sort(key=lambda b: len(backbone.token_ids(b[2])))
    batch = rows.local_rows(batch)  # data parallel: this rank's slice; counts stay global
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
            # weight 0: only the method's own loss trains, and the frozen model is not run
            logits = backbone.logits(enc, task_ids, label_table, prompt, method.prompt_kind).float() \
                if method.task_loss_weight else None
        row_loss = torch.zeros(len(chunk), device=device) if logits is None \
            else F.cross_entropy(logits, gold, reduction="none") * method.task_loss_weight
        per_run = torch.zeros(R, device=device).index_add_(0, run_ids, row_loss) / counts
        extra = method.extra_loss(run_ids, task_ids, counts)
        if extra is not None:
            per_run = per_run + extra
        run_loss_sum += per_run.detach()
        # a diverged run stops; its NaN must not reach the other runs' gradients
        safe = torch.where(torch.isfinite(per_run), per_run, torch.zeros_like(per_run))
        if optimizer is not None and safe.requires_grad:
            safe.sum().backward()
    # sum run losses and gradients over ranks (data parallel), before clipping
    rows.reduce_step(run_loss_sum, [p for g in optimizer.param_groups for p in g["params"]] if optimizer else [])
    run_losses = run_loss_sum.cpu().tolist()
    diverged = [r for r in live if not math.isfinite(run_losses[r])]
    if optimizer is not None:
        _clip(bank, live, diverged)
        optimizer.step()
    for r in diverged:
        bank.stop(r, "diverged")
    for r in live:
        # JSON has no NaN: a non-finite loss is recorded as None (the run is marked diverged)
        bank.loss_curves[r].append((step, run_losses[r] if math.isfinite(run_losses[r]) else None))
    bank.stepped, bank.diverged = live, diverged


def _clip(bank: BankState, live: list[int], diverged: list[int]) -> None:
    """Per-run gradient clipping (a diverged run's gradient is dropped), then the shared parameters'."""
    for r in live:
        grp = bank.run_groups[r]
        if grp is None:
            continue
        if r in diverged:
            for p in grp["params"]:
                p.grad = None
            continue
        torch.nn.utils.clip_grad_norm_(grp["params"], bank.runs[r].max_grad_norm)
    shared = list(bank.method.shared_parameters())
    if shared:
        m = bank.method
        clip = m.shared_max_grad_norm if m.shared_max_grad_norm is not None else max(c.max_grad_norm for c in bank.runs)
        torch.nn.utils.clip_grad_norm_(shared, clip)


def _results(bank: BankState, tasks: list[Task], test_rows, evaluate) -> list[RunResult]:
    """Each run scored on its tasks' test rows with its best dev checkpoint (left loaded in the method)."""
    method = bank.method
    method.eval()
    for r in range(bank.n_runs):
        method.load_run_state(r, bank.best[r]["state"])
    scored = getattr(method, "score_test", True)  # False: test_acc/test_f1 None, no test rows computed
    test_rows = test_rows if scored else []
    preds, losses = evaluate(test_rows)
    test_scores = score_runs(test_rows, preds, losses, tasks)
    elapsed = time.time() - bank.started
    cpu = None if bank.cpu_started is None else time.process_time() - bank.cpu_started
    index = {t.name: i for i, t in enumerate(tasks)}
    results = []
    for r, cfg in enumerate(bank.runs):
        best = bank.best[r]
        per_task = {n: {"dev_acc": best["dev"][n]["acc"], "dev_f1": best["dev"][n]["f1"]}
                    | ({"test_acc": test_scores[(r, index[n])]["acc"], "test_f1": test_scores[(r, index[n])]["f1"]}
                       if scored else {}) for n in cfg.tasks}
        mean = lambda key: float(np.mean([v[key] for v in per_task.values()])) if scored or key.startswith("dev") else None
        results.append(RunResult(
            config=cfg, status=bank.status[r], best_step=best["step"], dev_acc=mean("dev_acc"), dev_f1=mean("dev_f1"),
            test_acc=mean("test_acc"), test_f1=mean("test_f1"), per_task=per_task, dev_curve=bank.dev_curves[r],
            loss_curve=bank.loss_curves[r], state={k: v.detach().cpu().clone() for k, v in best["state"].items()},
            seconds=elapsed, cpu_seconds=cpu, test_pred={n: test_scores[(r, index[n])]["pred"] for n in cfg.tasks} if scored else {}))
    return results
