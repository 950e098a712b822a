"""Which source task's prompt helps a target? The transfer matrix, and how well similarity predicts it.

    python -m ipt_core transfer --suite demo --targets hotel_sentiment,smart_home_intent,chat_toxicity \\
        [--sources a,b,...] [--steps 20] [--seeds 2] [--json]
    python -m ipt_core transfer --suite demo --json        # the suite's stored matrix, read, nothing trained

For each target task and seed, prompt tuning starts from every source task's PT prompt (one bank of
targets x sources runs, few steps) and once from the default initialisation, all at the same budget;
the *gain* of a source is its run's test accuracy minus the default run's (SPoT, Vu et al. 2022).
Every (target, source) pair is scored by every similarity measure of
:mod:`ipt_core.analysis.transfer_measures` (prompt cosine, token-level max-pairwise cosine, the
activated-neuron overlap ON, the intrinsic and IST spaces of the suite's task map when there is
one, and the model-only text and zero-shot-profile baselines), and each measure's ranking of a
target's sources is scored against the gains (:mod:`ipt_core.analysis.transfer_ranking`: Spearman,
NDCG@k, Regret@k, the top-k share of the oracle's gain, beside random order), gains and scores
averaged over seeds. The seeds' agreement with each other is the ceiling a measure can reach.

Source prompts are the suite's PT prompts of ``--source-steps`` steps (the shipped demo prompts
when the flags match the demo pipeline's: deep, 8 vectors, 60 steps, batch 8), from the store or
trained where missing, one set per seed. Each (target, seed)'s runs are one ``transfer`` entry
(resumable: a bank checkpoints), the report one ``transfer_report`` entry; a repeated request is read.
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

TRANSFER_VERSION = "transfer-1"  # the runs (bumping it retrains every stored transfer run)
REPORT_VERSION = "transfer-report-3"  # the report: measures, seeds, ranking metrics (3: shares pooled as SPoT does)
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


def stored_request(stores: Sequence[Store], suite: str, cfg: PTConfig, source_cfg: PTConfig) -> dict | None:
    """The largest stored ``transfer_report`` of ``suite`` at these settings (most seeds, then most pairs,
    then newest): what ``transfer`` with no ``--targets`` reads (its ``targets``, ``sources``, ``seeds``), or None."""
    found = [e for s in stores for e in s.query("transfer_report")
             if e.meta.get("suite") == suite and e.meta.get("config") == cfg.to_json()
             and e.meta.get("source_config") == source_cfg.to_json() and e.meta.get("seeds")]
    return max(found, key=lambda e: (len(e.meta["seeds"]), len(e.meta.get("pairs") or []), e.created)).meta \
        if found else None


def _seed_means(rows: list[dict], names: Sequence[str]) -> list[dict]:
    """One row per (target, source): gain, dev_gain and every ``sim_<name>`` averaged over seeds, with
    the per-seed gains in ``gain_seeds`` (in seed order)."""
    cells: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        cells.setdefault((r["target"], r["source"]), []).append(r)
    out = []
    for (t, s), rs in cells.items():
        rs = sorted(rs, key=lambda r: r["seed"])
        row = {"target": t, "source": s, "same_family": rs[0]["same_family"],
               "gain": float(np.mean([r["gain"] for r in rs])), "dev_gain": float(np.mean([r["dev_gain"] for r in rs])),
               "gain_seeds": [r["gain"] for r in rs], "seeds": [r["seed"] for r in rs]}
        for n in names:
            vals = [r[f"sim_{n}"] for r in rs if r.get(f"sim_{n}") is not None]
            row[f"sim_{n}"] = float(np.mean(vals)) if vals else None
        out.append(row)
    return out


def seed_agreement(rows: Sequence[dict]) -> dict | None:
    """How far one seed's gains predict another's (Spearman over the sources of a target, and pooled
    over all pairs; averaged over seed pairs): the ceiling any similarity measure's ranking can reach
    when gains are this noisy. None with one seed."""
    from itertools import combinations

    from scipy.stats import spearmanr

    seeds = sorted({r["seed"] for r in rows})
    if len(seeds) < 2:
        return None
    def rho(pts: list[tuple[float, float]]) -> float | None:  # None: too few points, or one side constant
        x, y = [p[0] for p in pts], [p[1] for p in pts]
        return float(spearmanr(x, y).statistic) if len(pts) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0 else None

    gain = {(r["target"], r["source"], r["seed"]): r["gain"] for r in rows}
    targets = list(dict.fromkeys(r["target"] for r in rows))
    pooled, per = [], {t: [] for t in targets}
    for a, b in combinations(seeds, 2):
        both = [(t, gain[(t, s, a)], gain[(t, s, b)]) for (t, s, x) in gain if x == a and (t, s, b) in gain]
        pooled.append(rho([(ga, gb) for _, ga, gb in both]))
        for t in targets:
            per[t].append(rho([(ga, gb) for tt, ga, gb in both if tt == t]))
    pooled = [v for v in pooled if v is not None]
    per = {t: [v for v in vs if v is not None] for t, vs in per.items()}
    per_mean = {t: (float(np.mean(v)) if v else None) for t, v in per.items()}
    vals = [v for v in per_mean.values() if v is not None]
    return {"seeds": seeds, "spearman_pooled": float(np.mean(pooled)) if pooled else None, "per_target": per_mean,
            "mean_per_target": float(np.mean(vals)) if vals else None}


def _activations(backbone, prompts: torch.Tensor, kind: str) -> tuple[np.ndarray | None, str | None]:
    from ipt_core.backbones.activations import ffn_activation_states
    from ipt_core.config.backbone import BackboneError

    try:
        return ffn_activation_states(backbone, prompts, kind).flatten(1).numpy(), None
    except BackboneError as exc:  # a model family whose feed-forward activation is not a module: the rest still rank
        return None, str(exc)


def transfer_report(stores: Sequence[Store], backbone, suite: Suite, targets: Sequence[str],
                    sources: Sequence[str] | None, cfg: PTConfig, source_cfg: PTConfig, seeds: Sequence[int] = (0,), *,
                    device=None, progress=None, should_cancel=None, command: str | None = None) -> dict:
    """Train (or read) the transfer runs of every seed, score every (target, source) pair with every
    similarity measure of :mod:`ipt_core.analysis.transfer_measures`, and rank: Spearman per measure,
    and the ranking metrics of :mod:`ipt_core.analysis.transfer_ranking` (gains and similarities
    averaged over seeds first, bootstrap over targets), beside random order and the seeds' agreement."""
    from ipt_core.analysis.maps import vectors_fingerprint
    from ipt_core.analysis.transfer_measures import MEASURES, MeasureInputs, similarity_matrices
    from ipt_core.analysis.transfer_ranking import ranking_report
    from ipt_core.experiments.task_spaces import collect_spaces, text_embeddings

    t0 = time.time()
    seeds = list(dict.fromkeys(int(x) for x in seeds))
    if not seeds:
        raise InputError("transfer needs at least one seed")
    runs: dict[int, list[Entry]] = {}
    for seed in seeds:
        runs[seed] = transfer_runs(stores[0], stores[1:], backbone, suite, targets, sources, cfg, source_cfg, seed,
                                   device=device, progress=progress, should_cancel=should_cancel, command=command)
    entries = [e for seed in seeds for e in runs[seed]]
    involved = list(dict.fromkeys([e.meta["target"] for e in entries] + [r["source"] for e in entries for r in e.meta["runs"]]))
    tm_spaces, fams, _, _ = collect_spaces(stores, suite)
    tasks = [suite.task(n) for n in involved]
    text_embeddings(stores[0], backbone, tasks, device=device, read_only=stores[1:], command=command)
    vectors = {k: tm_spaces[k] for k in ("intrinsic", "ist") if k in tm_spaces}
    vectors.update(mq.stored_baselines(stores, tasks, backbone.spec))
    # the page and `transfer` with no flag read this entry; keyed by the runs (and so the prompts, the
    # backbone and the seeds), the other spaces' vectors and the registry: a stored one is read before any
    # forward pass or bootstrap
    spec = {"method": "transfer_report", "code_version": REPORT_VERSION, "transfers": [e.key for e in entries],
            "spaces": {k: vectors_fingerprint(x, n) for k, (x, n) in sorted(vectors.items())},
            "measures": list(MEASURES)}
    stored = next((e for s in stores if (e := s.get(spec)) is not None), None)
    if stored is not None:
        return dict(stored.meta, key=stored.key)
    stores[0].require_writable("transfer_report", spec)  # a replay stops here, before it computes
    rows, missing, longer = [], {}, {}
    for seed in seeds:
        src = source_prompts(stores[0], stores[1:], backbone, suite, involved, source_cfg, seed, device=device)
        prompts = torch.stack([src[n].tensor("prompt").float() for n in involved])
        acts, why = _activations(backbone, prompts, cfg.kind)
        if why:
            missing["activation_overlap"] = why
        mats = similarity_matrices(MeasureInputs(prompts.double().numpy(), involved, acts, vectors))
        for r in mq.pair_rows([e.meta for e in runs[seed]], mats, fams):
            rows.append(dict(r, seed=seed))
        for e in runs[seed]:  # is the default-init run at its plateau? its dev accuracy against the longer PT's
            t = e.meta["target"]
            longer.setdefault(t, []).append((e.meta["default"]["dev_acc"], src[t].meta.get("dev_acc")))
    names = [n for n in MEASURES if any(r.get(f"sim_{n}") is not None for r in rows)]
    pairs = _seed_means(rows, names)
    ranking = {}
    for n in names:
        ranking[n] = ranking_report(rows, f"sim_{n}")
        ranking[n]["by_seed"] = {str(seed): {k: v["mean"] for k, v in ranking_report(
            [r for r in rows if r["seed"] == seed], f"sim_{n}", n_boot=0)["pooled"].items()} for seed in seeds}
    default = {}
    for e in entries:
        default.setdefault(e.meta["target"], []).append(e.meta["default"])
    report = {"suite": suite.name, "targets": list(targets), "sources": sorted({p["source"] for p in pairs}),
              "seeds": seeds, "seed": seeds[0], "config": cfg.to_json(), "source_config": source_cfg.to_json(),
              "keys": [e.key for e in entries],
              "default": {t: {k: float(np.mean([d[k] for d in ds])) for k in ("dev_acc", "test_acc")}
                          for t, ds in default.items()},
              "default_vs_source_steps": {t: {"default_dev": float(np.mean([a for a, _ in v])),
                                              "source_dev": float(np.mean([b for _, b in v if b is not None]))
                                              if any(b is not None for _, b in v) else None,
                                              "steps": cfg.steps, "source_steps": source_cfg.steps}
                                          for t, v in longer.items()},
              "mean_gain": float(np.mean([p["gain"] for p in pairs])) if pairs else None,
              "measures": {n: {"label": MEASURES[n].label, "description": MEASURES[n].description} for n in names},
              "measure_order": names, "measures_missing": missing,
              "spaces": mq.correlate(pairs, names),
              "spaces_dev_gain": {k: {"spearman": v["spearman"], "n_pairs": v["n_pairs"]}
                                  for k, v in mq.correlate(pairs, names, metric="dev_gain").items()},
              "ranking": ranking, "seed_agreement": seed_agreement(rows),
              "pairs": pairs, "pairs_by_seed": rows, "seconds": time.time() - t0,
              "bank_seconds": sum(e.meta["bank_seconds"] / e.meta["bank_size"] * (len(e.meta["runs"]) + 1) for e in entries)}
    stored = stores[0].put("transfer_report", spec, report, command=command)
    return dict(report, key=stored.key)
