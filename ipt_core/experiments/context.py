"""The experiments as functions: inputs -> results in the store.

Every result is keyed by everything that decides it (method and hyper-parameters, backbone id
and weights hash, the task's data hash, seed, code version), so a second identical request is
served from the store without training, and the CLI on a GPU server and the app on a laptop
share results through one store folder.

Two helpers carry every experiment: ``store.memo(kind, spec, compute)`` (one result: read it, or
compute and store it) and :func:`cached_bank` (many runs: read the stored ones, train the rest in
ONE bank, store each, resumable from a checkpoint). :class:`Context` is what they need from the
caller.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import torch

from ipt_core.backbones import Backbone, load_backbone
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.errors import InputError
from ipt_core.methods.base import BankMethod
from ipt_core.store import Store
from ipt_core.store.entry import Entry
from ipt_core.tasks import Suite, Task, load_suite
from ipt_core.train import checkpoint
from ipt_core.train.bank import RunConfig, RunResult, pick_device
from ipt_core.train.distributed import train_bank_on_ranks

Progress = Callable[[int, int, str], None]


@lru_cache(maxsize=4)
def cached_backbone(spec: str = DEFAULT_BACKBONE, device: str = "cpu") -> Backbone:
    """One loaded backbone per (spec, device) per process: the model is frozen, so it is shared."""
    return load_backbone(spec, device=device)


@dataclass
class Context:
    """What every experiment needs: the store, the backbone, the device, progress and cancel hooks."""

    store: Store
    backbone: Backbone
    device: torch.device
    progress: object | None = None  # a progress.Reporter (has set_stage) or a plain callable
    should_cancel: Callable[[], bool] | None = None
    command: str | None = None
    train_missing_prompts: bool = True  # False: a task without a stored PT prompt is an error

    def stage(self, name: str) -> None:
        if self.progress is not None and hasattr(self.progress, "set_stage"):
            self.progress.set_stage(name)

    @classmethod
    def create(cls, store: Store, backbone: str | Backbone = DEFAULT_BACKBONE, device: str | None = None, **kw) -> "Context":
        dev = pick_device(device)
        bb = backbone if isinstance(backbone, Backbone) else cached_backbone(backbone, str(dev))
        return cls(store, bb, dev, **kw)


@dataclass
class Bank:
    """What :func:`cached_bank` trains: a method holding the runs, the bank's tasks, one RunConfig per run."""

    method: BankMethod
    tasks: list[Task]
    runs: list[RunConfig]


def cached_bank(ctx: Context, kind: str, specs: Sequence[dict], build: Callable[[list[int]], Bank],
                record: Callable[[Bank, int, int, RunResult], tuple[dict, dict | None]], *,
                checkpoint_every: int = 50) -> list[Entry]:
    """The store entries of ``specs`` (kind ``kind``): the stored ones read, the missing ones trained in ONE bank.

    ``build(todo)`` makes the bank for the indices ``todo`` of the missing specs (run ``j`` of the
    bank computes ``specs[todo[j]]``); after training, ``record(bank, j, i, result)`` gives the
    ``(meta, tensors)`` stored for ``specs[i]``, with every run's best state loaded in
    ``bank.method``. The bank checkpoints every ``checkpoint_every`` steps (0: never) under a key
    of the specs it computes, so the same request after a crash resumes; the checkpoint is removed
    once every entry is stored.

    Example::

        entries = cached_bank(ctx, "pt_run", specs, build=lambda todo: Bank(method, tasks, runs),
                              record=lambda bank, j, i, res: ({"test_acc": res.test_acc}, res.state))
    """
    if checkpoint_every < 0:
        raise InputError(f"checkpoint_every must be 0 (never) or positive, got {checkpoint_every}")
    entries: list[Entry | None] = [ctx.store.get(sp) for sp in specs]
    todo = [i for i, e in enumerate(entries) if e is None]
    if not todo:
        return entries
    ctx.store.require_writable(kind, specs[todo[0]])  # a replay stops here, before it trains
    bank = build(todo)
    ckpt = checkpoint.bank_dir(ctx.store if checkpoint_every else None, [specs[i] for i in todo])
    results = train_bank_on_ranks(ctx.backbone, bank.tasks, bank.method, bank.runs, device=ctx.device,
                                  progress=ctx.progress, should_cancel=ctx.should_cancel, checkpoint_dir=ckpt,
                                  checkpoint_every=checkpoint_every or 1)
    for j, (i, res) in enumerate(zip(todo, results)):
        meta, tensors = record(bank, j, i, res)
        entries[i] = ctx.store.put(kind, specs[i], meta, tensors, command=ctx.command)
    checkpoint.discard(ckpt)  # only now: until every entry is stored, a crash must still resume
    return entries


def select_tasks(suite: Suite, names: Sequence[str] | None) -> list[Task]:
    """The named tasks of a suite, in the given order (all when ``names`` is empty)."""
    return list(suite.subset(names).tasks) if names else list(suite.tasks)


def load_and_resample(spec: str, k: int | None = None, data_seed: int | None = None) -> Suite:
    """Load a suite; with ``k``, draw a new few-shot sample of every task (IPT's "different data")."""
    suite = load_suite(spec)
    if k is None:
        return suite
    return Suite(suite.name, suite.source, tuple(t.resample(k, data_seed or 0) for t in suite.tasks))
