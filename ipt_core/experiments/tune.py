"""Prompt tuning of a suite's tasks and its baselines (zero-shot, linear probe), cached in the store."""
from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from ipt_core.backbones import Backbone
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.config.pt import PTConfig
from ipt_core.experiments import baselines
from ipt_core.experiments.context import (
    Bank,
    Context,
    Progress,
    cached_backbone,
    cached_bank,
    select_tasks,
)
from ipt_core.methods.pt import CODE_VERSION as PT_VERSION
from ipt_core.methods.pt import PromptTuning, init_prompt
from ipt_core.store import Store
from ipt_core.store.entry import Entry
from ipt_core.tasks import Suite, Task
from ipt_core.train.bank import RunConfig, RunResult, pick_device


def pt_spec(backbone: Backbone, task: Task, seed: int, cfg: PTConfig) -> dict:
    """Everything that decides one prompt-tuning run's result."""
    return {
        "method": "pt",
        "code_version": PT_VERSION,
        "backbone": backbone.identity(),
        "task": task.name,
        "task_data": task.data_hash(),
        "seed": seed,
        "config": cfg.to_json(),
    }


def baseline_spec(kind: str, backbone: Backbone, task: Task) -> dict:
    return {
        "method": kind,
        "code_version": baselines.CODE_VERSION,
        "backbone": backbone.identity(),
        "task": task.name,
        "task_data": task.data_hash(),
    }


def _task_meta(task: Task) -> dict:
    return {"task": task.name, "family": task.type, "labels": list(task.labels), "data_seed": task.data_seed, "k": task.k}


def get_baseline(
    store: Store, kind: str, backbone: Backbone, task: Task, *, device=None, command: str | None = None
) -> Entry:
    """The zero-shot or linear-probe row of a task, computed once and then served from the store."""

    def compute() -> dict:
        fn = baselines.zero_shot if kind == "zero_shot" else baselines.linear_probe
        t0 = time.time()
        scores = fn(backbone, task, device=device)
        return _task_meta(task) | scores | {"seconds": time.time() - t0}

    return store.memo(kind, baseline_spec(kind, backbone, task), compute, command=command)


@dataclass
class TuneReport:
    """Per-run rows of a ``tune`` request, in (task, seed) order, and where they came from."""

    runs: list[dict]
    seconds: float
    from_cache: bool
    keys: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"runs": self.runs, "seconds": self.seconds, "from_cache": self.from_cache}


def tune_command(suite: str, tasks: Sequence[str], seeds: Sequence[int], cfg: PTConfig, backbone: str, k=None, data_seed=None) -> str:
    """The CLI command that reproduces a tune request."""
    parts = ["python", "-m", "ipt_core", "tune", "--suite", suite]
    if tasks:
        parts += ["--tasks", ",".join(tasks)]
    parts += ["--seed-list", ",".join(str(s) for s in seeds)]
    d = PTConfig()
    for name, flag in [("steps", "--steps"), ("lr", "--lr"), ("n_tokens", "--prompt-len"), ("kind", "--prompt-kind"),
                       ("batch_size", "--batch-size"), ("init", "--init"), ("init_text", "--init-text"),
                       ("eval_every", "--eval-every"), ("patience", "--patience"), ("max_grad_norm", "--max-grad-norm")]:
        v = getattr(cfg, name)
        if v != getattr(d, name):
            text = "none" if v is None else str(v)
            parts += [f"{flag}={text}"] if text.startswith("-") else [flag, text]  # "-x" would read as a flag
    if backbone != DEFAULT_BACKBONE:
        parts += ["--backbone", backbone]
    if k is not None:
        parts += ["--k", str(k), "--data-seed", str(data_seed or 0)]
    return shlex.join(parts)


def tune(
    store: Store,
    suite: Suite,
    task_names: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    cfg: PTConfig = PTConfig(),
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    device: str | None = None,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
    command: str | None = None,
    with_baselines: bool = True,
    checkpoint_every: int = 50,
) -> TuneReport:
    """Prompt tuning for every (task, seed): cached runs are read, the rest train in ONE bank.

    The bank checkpoints every ``checkpoint_every`` steps (0: never) under a key of the specs it
    computes, so the same request after a crash resumes where the dead process left off.

    Example::

        report = tune(Store(), load_suite("demo"), ["movie_sentiment", "sms_spam"], seeds=[0, 1],
                      cfg=PTConfig(steps=20))
        report.runs[0]   # {"task": ..., "seed": 0, "dev_acc": ..., "test_acc": ..., ...}
    """
    t0 = time.time()
    dev = pick_device(device)
    bb = backbone if isinstance(backbone, Backbone) else cached_backbone(backbone, str(dev))
    ctx = Context(store, bb, dev, progress, should_cancel, command)
    tasks = select_tasks(suite, task_names)
    wanted = [(t, s) for t in tasks for s in seeds]
    trained: list[int] = []

    def build(todo: list[int]) -> Bank:
        trained.extend(todo)
        init = [init_prompt(bb, cfg.n_tokens, cfg.kind, cfg.init, seed=wanted[i][1],
                            text=cfg.init_text or wanted[i][0].description) for i in todo]
        return Bank(PromptTuning(init, cfg.kind), list({wanted[i][0].name: wanted[i][0] for i in todo}.values()),
                    [RunConfig.of((wanted[i][0].name,), wanted[i][1], cfg) for i in todo])

    def record(bank: Bank, j: int, i: int, res: RunResult):
        task, seed = wanted[i]
        meta = _task_meta(task) | {
            "seed": seed, "status": res.status, "best_step": res.best_step, "dev_acc": res.dev_acc, "dev_f1": res.dev_f1,
            "test_acc": res.test_acc, "test_f1": res.test_f1, "dev_curve": res.dev_curve, "loss_curve": res.loss_curve,
            "bank_seconds": res.seconds, "bank_cpu_seconds": res.cpu_seconds, "bank_size": len(bank.runs),
            "device": str(dev), "torch_threads": torch.get_num_threads(),
            "test_pred": res.test_pred[task.name],
        }
        return meta, {"prompt": res.state["prompt"]}

    specs = [pt_spec(bb, t, s, cfg) for t, s in wanted]
    entries = cached_bank(ctx, "pt_run", specs, build, record, checkpoint_every=checkpoint_every)
    zs = {}
    if with_baselines:
        for t in tasks:
            zs[t.name] = get_baseline(store, "zero_shot", bb, t, device=dev, command=command).meta
    rows = []
    for (task, seed), e in zip(wanted, entries):
        m = e.meta
        row = {
            "task": task.name,
            "seed": seed,
            "dev_acc": m["dev_acc"],
            "test_acc": m["test_acc"],
            "test_f1": m["test_f1"],
            "status": m["status"],
            "key": e.key,
        }
        if with_baselines:
            row["zero_shot_test_acc"] = zs[task.name]["test_acc"]
        rows.append(row)
    return TuneReport(rows, time.time() - t0, from_cache=not trained, keys=[e.key for e in entries])


def probe_all(store: Store, suite: Suite, task_names=None, *, backbone=DEFAULT_BACKBONE, device=None, command=None) -> list[dict]:
    """Zero-shot and linear-probe rows for every task (cached)."""
    dev = pick_device(device)
    bb = backbone if isinstance(backbone, Backbone) else cached_backbone(backbone, str(dev))
    out = []
    for t in select_tasks(suite, task_names):
        zs = get_baseline(store, "zero_shot", bb, t, device=dev, command=command).meta
        lp = get_baseline(store, "probe", bb, t, device=dev, command=command).meta
        out.append({"task": t.name, "family": t.type, "zero_shot_test_acc": zs["test_acc"], "probe_test_acc": lp["test_acc"],
                    "zero_shot_test_f1": zs["test_f1"], "probe_test_f1": lp["test_f1"]})
    return out
