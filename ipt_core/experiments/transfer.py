"""Does task similarity predict prompt transfer? (SPoT, Vu et al. 2022, found that it does.)

    python -m ipt_core transfer --suite demo --targets hotel_sentiment,smart_home_intent,chat_toxicity \\
        [--sources a,b,...] [--steps 20] [--json]

For each target task, prompt tuning starts from every source task's PT prompt (a bank of
targets x sources runs, few steps) and once from the default initialisation, all at the same
budget; the *gain* of a source is its run's test accuracy minus the default run's. The Spearman
rank correlation between the gain and the similarity of source and target is reported per space:
the raw prompt space (centred, per-layer normalised, as the task map), the intrinsic and IST spaces
of the suite's task map when there is one, and the two model-only baselines of ``map-quality``
(mean text embedding, zero-shot-score profile). Pooled over all (target, source) pairs, and as
the mean of the per-target correlations.

Source prompts are the suite's PT prompts of ``--source-steps`` steps (the shipped demo prompts
when the flags match the demo pipeline's: deep, 8 vectors, 60 steps, batch 8), from the store or
trained where missing. Each target's runs are one ``transfer`` entry; a repeated request is read.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from ipt_core.analysis import map_quality as mq
from ipt_core.config.pt import PTConfig
from ipt_core.errors import InputError
from ipt_core.methods.pt import CODE_VERSION as PT_VERSION
from ipt_core.methods.pt import PromptTuning, init_prompt
from ipt_core.store import Store
from ipt_core.store.entry import Entry
from ipt_core.tasks import Suite

TRANSFER_VERSION = "transfer-1"
DEFAULT_SOURCE = PTConfig(steps=60, batch_size=8, eval_every=20)  # the demo pipeline's quick PT prompts


def transfer_spec(backbone, target, sources: Sequence[tuple[str, str]], cfg: PTConfig, seed: int) -> dict:
    """Everything that decides one target's transfer runs: target (name, data hash), sources (name, PT key)."""
    return {"method": "transfer", "code_version": TRANSFER_VERSION, "pt_code_version": PT_VERSION,
            "backbone": backbone.identity(), "target": [target.name, target.data_hash()],
            "sources": [list(s) for s in sources], "config": cfg.to_json(), "seed": seed}


def source_prompts(store: Store, read_only: Sequence[Store], backbone, suite: Suite, names: Sequence[str],
                   cfg: PTConfig, seed: int, *, device=None, progress=None, should_cancel=None,
                   command: str | None = None) -> dict[str, Entry]:
    """The ``pt_run`` entry of every named task at ``cfg`` and ``seed``: from any store, else trained
    (in one bank, into ``store``)."""
    from ipt_core.experiments.tune import pt_spec, tune

    found: dict[str, Entry] = {}
    for n in names:
        spec = pt_spec(backbone, suite.task(n), seed, cfg)
        e = next((e for s in [store, *read_only] if (e := s.get(spec)) is not None), None)
        if e is not None:
            found[n] = e
    missing = [n for n in names if n not in found]
    if missing:
        report = tune(store, suite, missing, [seed], cfg, backbone=backbone, device=device, progress=progress,
                      should_cancel=should_cancel, command=command, with_baselines=False)
        for n, key in zip(missing, report.keys):
            found[n] = store.get(key)
    return found


def transfer_runs(store: Store, read_only: Sequence[Store], backbone, suite: Suite, targets: Sequence[str],
                  sources: Sequence[str] | None, cfg: PTConfig, source_cfg: PTConfig, seed: int = 0, *, device=None,
                  progress=None, should_cancel=None, command: str | None = None) -> list[Entry]:
    """One ``transfer`` entry per target (missing ones trained together in one bank).

    Meta: ``target``, ``default`` (scores of the default-init run), ``runs`` (per source:
    ``source, dev_acc, test_acc, gain, dev_gain, status``).
    """
    from ipt_core.train import checkpoint
    from ipt_core.train.bank import RunConfig, pick_device, train_bank

    dev = pick_device(device)
    if source_cfg.kind != cfg.kind or source_cfg.n_tokens != cfg.n_tokens:
        raise InputError("source prompts and transfer runs need the same prompt kind and length")
    names = suite.names()
    for t in targets:
        suite.task(t)
    pool = list(sources) if sources else names
    everyone = list(dict.fromkeys(list(targets) + pool))
    src = source_prompts(store, read_only, backbone, suite, everyone, source_cfg, seed, device=str(dev),
                         progress=progress, should_cancel=should_cancel, command=command)
    plan = {t: [s for s in pool if s != t] for t in targets}
    if any(not v for v in plan.values()):
        raise InputError("every target needs at least one source task other than itself")
    specs = {t: transfer_spec(backbone, suite.task(t), [(s, src[s].key) for s in plan[t]], cfg, seed) for t in targets}
    entries = {t: next((e for st in [store, *read_only] if (e := st.get(specs[t])) is not None), None) for t in targets}
    todo = [t for t in targets if entries[t] is None]
    if todo:
        store.require_writable("transfer", specs[todo[0]])  # a replay stops here, before it trains
        runs, inits, labels = [], [], []
        for t in todo:
            task = suite.task(t)
            inits.append(init_prompt(backbone, cfg.n_tokens, cfg.kind, cfg.init, seed=seed,
                                     text=cfg.init_text or task.description))
            labels.append((t, None))
            for s in plan[t]:
                inits.append(src[s].tensor("prompt").float())
                labels.append((t, s))
        for t, _ in labels:
            runs.append(RunConfig(tasks=(t,), seed=seed, lr=cfg.lr, steps=cfg.steps, batch_size=cfg.batch_size,
                                  eval_every=cfg.eval_every, patience=cfg.patience, max_grad_norm=cfg.max_grad_norm))
        t0 = time.time()
        ckpt = checkpoint.bank_dir(store, [specs[t] for t in todo])
        results = train_bank(backbone, [suite.task(t) for t in todo], PromptTuning(inits, cfg.kind), runs, device=dev,
                             progress=progress, should_cancel=should_cancel, checkpoint_dir=ckpt)
        seconds = time.time() - t0
        by_target: dict[str, dict] = {t: {"default": None, "runs": []} for t in todo}
        for (t, s), res in zip(labels, results):
            row = {"dev_acc": res.dev_acc, "test_acc": res.test_acc, "test_f1": res.test_f1, "status": res.status,
                   "best_step": res.best_step}
            if s is None:
                by_target[t]["default"] = row
            else:
                by_target[t]["runs"].append({"source": s, **row})
        for t in todo:
            d = by_target[t]["default"]
            for r in by_target[t]["runs"]:
                r["gain"] = r["test_acc"] - d["test_acc"]
                r["dev_gain"] = r["dev_acc"] - d["dev_acc"]
            meta = {"suite": suite.name, "target": t, "family": suite.task(t).type, "seed": seed,
                    "default": d, "runs": by_target[t]["runs"], "bank_seconds": seconds, "bank_size": len(results),
                    "device": str(dev)}
            entries[t] = store.put("transfer", specs[t], meta, command=command)
        checkpoint.discard(ckpt)
    return [entries[t] for t in targets]


def transfer_report(stores: Sequence[Store], backbone, suite: Suite, targets: Sequence[str],
                    sources: Sequence[str] | None, cfg: PTConfig, source_cfg: PTConfig, seed: int = 0, *,
                    device=None, progress=None, should_cancel=None, command: str | None = None) -> dict:
    """Train (or read) the transfer runs and correlate their gains with similarity in every space."""
    from ipt_core.experiments.task_spaces import collect_spaces, text_embeddings

    t0 = time.time()
    entries = transfer_runs(stores[0], stores[1:], backbone, suite, targets, sources, cfg, source_cfg, seed,
                            device=device, progress=progress, should_cancel=should_cancel, command=command)
    involved = list(dict.fromkeys([e.meta["target"] for e in entries] + [r["source"] for e in entries for r in e.meta["runs"]]))
    src = source_prompts(stores[0], stores[1:], backbone, suite, involved, source_cfg, seed, device=device)
    prompts = torch.stack([src[n].tensor("prompt").float() for n in involved])
    spaces = {"prompt": (prompts.flatten(1).double().numpy(), involved)}
    layers = {"prompt": int(prompts.shape[1]) if prompts.dim() == 4 else None}
    tm_spaces, fams, _, _ = collect_spaces(stores, suite)
    for name in ("intrinsic", "ist", "attention"):
        if name in tm_spaces:
            spaces[name] = tm_spaces[name]
    tasks = [suite.task(n) for n in involved]
    text_embeddings(stores[0], backbone, tasks, device=device, read_only=stores[1:], command=command)
    spaces.update(mq.stored_baselines(stores, tasks, backbone.spec))
    runs = [dict(e.meta) for e in entries]
    corr, pairs = mq.correlations(runs, spaces, fams, layers)
    dev_corr, _ = mq.correlations(runs, spaces, fams, layers, metric="dev_gain")
    report = {"suite": suite.name, "targets": list(targets), "seed": seed, "config": cfg.to_json(),
            "source_config": source_cfg.to_json(), "keys": [e.key for e in entries],
            "default": {e.meta["target"]: e.meta["default"] for e in entries},
            "mean_gain": float(np.mean([p["gain"] for p in pairs])) if pairs else None,
            "spaces": corr, "spaces_dev_gain": {k: {"spearman": v["spearman"], "n_pairs": v["n_pairs"]} for k, v in dev_corr.items()},
            "pairs": pairs, "seconds": time.time() - t0,
            "bank_seconds": sum(e.meta["bank_seconds"] / e.meta["bank_size"] * (len(e.meta["runs"]) + 1) for e in entries)}
    # the page reads this entry (it does not recompute similarities); keyed by the runs and the spaces' vectors
    from ipt_core.analysis.maps import vectors_fingerprint

    spec = {"method": "transfer_report", "code_version": TRANSFER_VERSION, "transfers": report["keys"],
            "spaces": {k: vectors_fingerprint(x, names) for k, (x, names) in sorted(spaces.items())},
            "layers": layers}
    stored = stores[0].get(spec) or stores[0].put("transfer_report", spec, report, command=command)
    return dict(report, key=stored.key)
