"""The IPT stages, each cached on its own: PT prompts of a task set, subspace finding (MSF), intrinsic tuning (IST).

- :func:`pt_prompts`: the PT prompts of tasks for one seed (``pt_run`` entries, trained where
  missing, or an error naming the command that trains them);
- :func:`find_subspaces`: one auto-encoder per d_I over those prompts, in one bank (``msf``);
- :func:`load_decoder`: a frozen decoder from an ``msf`` entry, or the random-subspace control;
- :func:`subspaces_of`: the found, linear and random subspaces IST tunes in, beside one ``msf`` entry;
- :func:`intrinsic_tuning`: IST runs (``ist_run``), all missing ones in one bank.

``ipt_core.experiments.ipt`` composes them into the paper's experiments (and re-exports them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ipt_core.analysis.convergence import finished
from ipt_core.config.ipt import SUBSPACES, ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig
from ipt_core.errors import InputError
from ipt_core.experiments.context import Bank, Context, cached_bank
from ipt_core.experiments.tune import pt_spec, tune, tune_command
from ipt_core.methods.ipt import CODE_VERSION as IPT_VERSION
from ipt_core.methods.ipt import (
    IntrinsicTuning,
    LinearSubspace,
    PromptNormaliser,
    Subspace,
    SubspaceAutoencoder,
    SubspaceFinding,
    spread_of,
)
from ipt_core.store.entry import Entry
from ipt_core.tasks import Suite, Task
from ipt_core.train.bank import RunConfig, RunResult


class IPTInputError(InputError):
    """Bad experiment input: a training task without a prompt, a dimension above the prompt size..."""


def resample_suite(suite: Suite, names: Sequence[str], data_seed: int) -> list[Task]:
    """The named tasks with a new few-shot sample (same k per label as their train split)."""
    out = []
    for name in names:
        t = suite.task(name)
        k = min(t.label_counts("train").values())
        out.append(t.resample(k, data_seed))
    return out


def _suite_of(tasks: Sequence[Task], like: Suite) -> Suite:
    return Suite(like.name, like.source, tuple(tasks))


def pt_prompts(ctx: Context, suite: Suite, tasks: Sequence[Task], seed: int, cfg: PTConfig) -> tuple[torch.Tensor, list[Entry]]:
    """PT prompts of ``tasks`` for one seed (trained in one bank where missing): ``[T, *shape]``."""
    if not tasks:
        raise IPTInputError("no tasks given")
    sub = _suite_of(tasks, suite)
    if not ctx.train_missing_prompts:
        missing = [t.name for t in tasks if ctx.store.get(pt_spec(ctx.backbone, t, seed, cfg)) is None]
        if missing:
            # the official code silently substitutes a random prompt here; we refuse
            raise IPTInputError(
                f"no PT prompt in the store for task(s) {', '.join(missing)} (seed {seed}); train them first with: "
                + tune_command(suite.source or suite.name, missing, [seed], cfg, ctx.backbone.spec)
            )
    report = tune(ctx.store, sub, [t.name for t in tasks], [seed], cfg, backbone=ctx.backbone, device=str(ctx.device),
                  progress=ctx.progress, should_cancel=ctx.should_cancel, command=ctx.command, with_baselines=False)
    entries = []
    for t, key in zip(tasks, report.keys):
        e = ctx.store.get(key)
        if e is None or "prompt" not in e.tensor_names:
            # the official code silently substitutes a random prompt here; we refuse
            raise IPTInputError(f"training task {t.name!r} has no PT prompt in the store (key {key})")
        entries.append(e)
    return torch.stack([e.tensor("prompt").float() for e in entries]), entries


def msf_spec(ctx: Context, train_keys: Sequence[str], d: int, seed: int, cfg: MSFConfig) -> dict:
    """The key of an auto-encoder: the store keys of the PT prompts it is trained on, d_I, seed and config."""
    return {
        "method": "msf",
        "code_version": IPT_VERSION,
        "backbone": ctx.backbone.identity(),
        "train_prompts": list(train_keys),
        "d": d,
        "seed": seed,
        "config": cfg.to_json(),
    }


def find_subspaces(
    ctx: Context, train_tasks: Sequence[Task], train_prompts: torch.Tensor, train_entries: Sequence[Entry],
    dims: Sequence[int], seed: int, cfg: MSFConfig, kind: str,
) -> dict[int, Entry]:
    """MSF: one auto-encoder per d_I, trained together in one bank where missing."""
    dim = int(np.prod(train_prompts.shape[1:]))
    for d in dims:
        if d < 1 or d > dim:
            raise IPTInputError(f"d_I = {d} is outside 1..{dim} (the flattened prompt size n x d)")
    dims = list(dict.fromkeys(dims))
    names = tuple(t.name for t in train_tasks)

    def build(todo: list[int]) -> Bank:
        ds = [dims[i] for i in todo]
        ctx.stage(f"subspace finding (d_I = {', '.join(map(str, ds))})")
        method = SubspaceFinding(train_prompts, ds, [seed * 1000 + d for d in ds], cfg, kind)
        return Bank(method, list(train_tasks), [RunConfig.of(names, seed * 1000 + d, cfg) for d in ds])

    def record(bank: Bank, j: int, i: int, res: RunResult):
        method = bank.method  # every auto-encoder holds its best state
        with torch.no_grad():
            norm_state = {f"norm.{k}": v.detach().cpu() for k, v in method.normaliser.state_dict().items()}
            recon = method.aes[j](method.targets)
            mse = float((recon - method.targets).pow(2).mean())
            z = method.aes[j].encode(method.targets).cpu()
        tensors = {f"ae.{k}": v for k, v in res.state.items()} | norm_state | {"train_z": z}
        meta = {
            "d": dims[i], "seed": seed, "train_tasks": list(names), "dev_acc": res.dev_acc, "test_acc": res.test_acc,
            "per_task": res.per_task, "recon_mse": mse, "dev_curve": res.dev_curve, "loss_curve": res.loss_curve,
            "status": res.status, "prompt_shape": list(train_prompts.shape[1:]), "hidden": cfg.hidden,
        }
        return meta, tensors

    specs = [msf_spec(ctx, [e.key for e in train_entries], d, seed, cfg) for d in dims]
    return dict(zip(dims, cached_bank(ctx, "msf", specs, build, record)))


def load_decoder(entry: Entry | None, *, d: int, seed: int, prompt_shape, hidden: int,
                 train_prompts: torch.Tensor | None = None, norm: str = "layer") -> tuple[SubspaceAutoencoder, PromptNormaliser]:
    """A frozen decoder: the trained one from an ``msf`` entry, or (entry None) the random control.

    The random control uses the same normaliser as the found subspace (from ``train_prompts``), so
    the two differ only in whether ``Proj_b`` was trained.
    """
    dim = int(np.prod(prompt_shape))
    ae = SubspaceAutoencoder(dim, d, hidden, seed=seed * 1000 + d)
    if entry is not None:
        t = entry.tensors()
        ae.load_state_dict({k[3:]: v for k, v in t.items() if k.startswith("ae.")})
        nm = PromptNormaliser(torch.zeros((2, *prompt_shape)), norm)
        nm.load_state_dict({k[5:]: v for k, v in t.items() if k.startswith("norm.")})
    else:
        nm = PromptNormaliser(train_prompts.float(), norm)
    ae.eval()
    return ae, nm


def subspaces_of(found: Entry, kinds: Sequence[str], *, train_prompts: torch.Tensor | None = None,
                 norm: str = "layer") -> dict[str, Subspace]:
    """The subspaces of ``kinds`` (from found / linear / random) beside one ``msf`` entry, as IST tunes in them.

    All three share the found subspace's normaliser and d_I, and one rule for their coordinates: the
    spread of the training prompts as the subspace's own encoder sees them. *found*: the trained
    auto-encoder (its stored ``train_z``); *random*: the same architecture never trained (its random
    encoder's view: its decoder works in the range its own initialisation expects, not in a range where
    tanh saturates and no gradient passes); *linear*: the top-d_I principal directions of the normalised
    training prompts (their projections). *linear* and *random* need ``train_prompts``.
    """
    unknown = [k for k in kinds if k not in SUBSPACES]
    if unknown:
        raise IPTInputError(f"unknown subspace(s) {unknown}; choose from {', '.join(SUBSPACES)}")
    m = found.meta
    d, shape = m["d"], tuple(m["prompt_shape"])
    ae, nm = load_decoder(found, d=d, seed=m["seed"], prompt_shape=shape, hidden=m["hidden"])
    offset, scale = spread_of(found.tensor("train_z"))
    out: dict[str, Subspace] = {}
    if train_prompts is None and any(k != "found" for k in kinds):
        raise IPTInputError("the linear and random subspaces need the training prompts the found one was found on")
    with torch.no_grad():
        x = nm(train_prompts.float()) if train_prompts is not None else None
    for k in kinds:
        if k == "found":
            out[k] = Subspace(ae, nm, offset, scale)
            continue
        with torch.no_grad():
            if k == "random":
                dec, _ = load_decoder(None, d=d, seed=m["seed"], prompt_shape=shape, hidden=m["hidden"],
                                      train_prompts=torch.zeros((2, *shape)), norm=norm)
            else:
                dec = LinearSubspace(x, d)
            out[k] = Subspace(dec, nm, *spread_of(dec.encode(x)))
    return out


@dataclass(frozen=True)
class ISTRun:
    task: Task
    setting: str  # "seen" | "unseen"
    subspace: str  # "found" | "linear" | "random"
    d: int
    seed: int
    decoder_key: str  # msf entry key (the linear and random subspaces name the found one they sit beside)


def ist_spec(ctx: Context, run: ISTRun, cfg: ISTConfig) -> dict:
    return {
        "method": "ist",
        "code_version": IPT_VERSION,
        "backbone": ctx.backbone.identity(),
        "decoder": run.decoder_key,
        "subspace": run.subspace,
        "d": run.d,
        "task": run.task.name,
        "task_data": run.task.data_hash(),
        "seed": run.seed,
        "config": cfg.to_json(),
    }


def intrinsic_tuning(ctx: Context, runs: Sequence[ISTRun], subspaces: dict[tuple[str, str], Subspace], cfg: ISTConfig,
                     kind: str) -> list[Entry]:
    """IST for every run (its coordinates trained, its subspace frozen), all missing runs in one bank.

    ``subspaces[(decoder_key, subspace)]``: a :class:`~ipt_core.methods.ipt.Subspace`; with
    ``cfg.coords == "raw"`` its offset and scale are set aside (``z`` itself is tuned, the paper's IST).
    Each run's stored ``z`` is its intrinsic vector, ``u`` the coordinates it tuned.
    """
    def build(todo: list[int]) -> Bank:
        ctx.stage(f"intrinsic subspace tuning ({len(todo)} runs)")
        group_keys = sorted({(runs[i].decoder_key, runs[i].subspace) for i in todo})
        chosen = [subspaces[g] for g in group_keys]
        if cfg.coords == "raw":
            chosen = [Subspace(s.decoder, s.normaliser) for s in chosen]
        method = IntrinsicTuning(chosen, [group_keys.index((runs[i].decoder_key, runs[i].subspace)) for i in todo],
                                 [runs[i].seed for i in todo], kind, init_std=cfg.init_std)
        bank_tasks = list({runs[i].task.name + "\x00" + runs[i].task.data_hash(): runs[i].task for i in todo}.values())
        # tasks with the same name but different data (seen: resampled) must not collide in one bank
        names = [t.name for t in bank_tasks]
        if len(set(names)) != len(names):
            raise IPTInputError("one IST bank got two versions of the same task")
        return Bank(method, bank_tasks, [RunConfig.of((runs[i].task.name,), runs[i].seed, cfg) for i in todo])

    def record(bank: Bank, j: int, i: int, res: RunResult):
        with torch.no_grad():
            prompt = bank.method.run_prompts([j])[0].cpu()  # from run j's best coordinates
            z = bank.method.run_intrinsic(j).detach().cpu()
        r = runs[i]
        n_train = len(r.task.train)
        meta = {"task": r.task.name, "family": r.task.type, "setting": r.setting, "subspace": r.subspace, "d": r.d,
                "seed": r.seed, "dev_acc": res.dev_acc, "test_acc": res.test_acc, "test_f1": res.test_f1,
                "dev_curve": res.dev_curve, "loss_curve": res.loss_curve, "best_step": res.best_step,
                "status": res.status, "train_rows": n_train, "rows_per_step": n_train if cfg.full_batch else cfg.batch_size,
                "bank_seconds": res.seconds, "finished": finished(res.dev_curve)}
        return meta, {"z": z, "u": res.state["z"], "prompt": prompt}

    return cached_bank(ctx, "ist_run", [ist_spec(ctx, r, cfg) for r in runs], build, record)
