"""The ``map-quality``, ``transfer`` and ``umap`` commands (cli.py calls :func:`register`): parsing and printing only.

The work is done by :mod:`ipt_core.experiments.task_spaces` (map quality, text baselines),
:mod:`ipt_core.experiments.transfer` (the transfer bank and its correlations) and :mod:`ipt_core.analysis.maps` (UMAP
coordinates of a task map, run as a job by the app because UMAP's first fit compiles for ~20 s).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

from ipt_core.cli.command_line import reproducible_command
from ipt_core.config import limits
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.errors import InputError, UnknownNameError
from ipt_core.experiments.task_spaces import format_report, map_quality_report
from ipt_core.experiments.transfer import DEFAULT_SOURCE, transfer_report
from ipt_core.store import Store
from ipt_core.tasks import load_suite


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", default="demo", help="demo, a folder of task folders, a CrossFit folder, a CSV/TSV file")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE)
    p.add_argument("--device", default="auto")
    p.add_argument("--cache", default=None, help="result store folder (default $IPT_CACHE or ./cache)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def _stores(args) -> list[Store]:
    from ipt_core.experiments.ipt import shipped_store

    main = Store(args.cache)
    shipped = shipped_store()
    return [main] + ([shipped] if shipped is not None and shipped.root != main.root else [])


def cmd_map_quality(args) -> int:
    suite = load_suite(args.suite)
    argv = getattr(args, "_argv", None) or ["map-quality", "--suite", args.suite]
    report = map_quality_report(_stores(args), suite, backbone=args.backbone, device=args.device,
                                compute=not args.no_compute, centre=not args.uncentred,
                                layer_norm=not args.no_layer_norm,
                                command=reproducible_command("python -m ipt_core", argv))
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def register(sub) -> None:
    """Add ``map-quality`` and ``transfer`` to the CLI's subparsers (sets ``func`` on each)."""
    p = sub.add_parser("map-quality", help="neighbour-family agreement of every task space vs chance and baselines")
    _add_common(p)
    p.add_argument("--uncentred", action="store_true", help="plain cosine of the raw vectors (no centring)")
    p.add_argument("--no-layer-norm", action="store_true", help="no per-layer normalisation of deep prompts")
    p.add_argument("--no-compute", action="store_true", help="only baselines already in the store (no model load)")
    p.set_defaults(func=cmd_map_quality)
    add_transfer_parser(sub, _add_common)
    add_umap_parser(sub)


# --------------------------------------------------------------------------------------------------
# umap


def add_umap_parser(sub) -> None:
    u = sub.add_parser("umap", help="UMAP coordinates of a task map, stored as a task_map_umap entry")
    u.add_argument("--cache", default=None, help="result store folder (default $IPT_CACHE or ./cache)")
    u.add_argument("--extra-store", action="append", default=[], help="read-only store to read entries from")
    u.add_argument("--entry", default=None, help="key of a task_map entry")
    u.add_argument("--space", choices=["prompt", "intrinsic", "ist"], default="prompt",
                   help="tensor of the task_map entry")
    u.add_argument("--suite", default=None, help="with --pt-config: the prompt space of a suite's pt_run entries")
    u.add_argument("--pt-config", default=None, help="pt_config_id of the pt_run entries")
    u.add_argument("--seed", type=limits.argtype("seed"), default=0, help="UMAP's random_state")
    u.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")
    u.set_defaults(func=cmd_umap)


def cmd_umap(args) -> int:
    """``umap (--entry KEY --space S | --suite S --pt-config ID)``: fit UMAP, store the coordinates."""
    from pathlib import Path

    import numpy as np

    from ipt_core.analysis.maps import compute_umap_entry, prompt_space, pt_config_id

    store = Store(args.cache)
    stores = [store] + [Store(Path(s)) for s in args.extra_store]
    argv = getattr(args, "_argv", None) or ["umap"]
    command = reproducible_command("python -m ipt_core", argv)
    if args.entry:
        entry = next((e for s in stores if (e := s.get(args.entry)) is not None), None)
        if entry is None:
            raise UnknownNameError(f"no entry {args.entry} in {[str(s.root) for s in stores]}")
        names = list(entry.meta["tasks"])
        x = entry.tensor(args.space).float().numpy().reshape(len(names), -1)
        keep = np.isfinite(x).all(axis=1)  # tasks without a vector in this space (NaN rows) are left out, as on the page
        names, x = [n for n, k in zip(names, keep) if k], x[keep]
        suite = entry.meta.get("suite", "")
    elif args.suite and args.pt_config:
        wanted = load_suite(args.suite).names()
        seen: set[str] = set()
        runs = []
        for s in stores:
            for e in s.query("pt_run", task=lambda t: t in wanted):
                if e.key not in seen and pt_config_id(e.spec, e.meta) == args.pt_config:
                    seen.add(e.key)
                    runs.append(e)
        names, _, x = prompt_space(runs, wanted)
        suite = args.suite
    else:
        raise InputError("give --entry KEY, or --suite S with --pt-config ID")
    if not names:
        raise InputError("no task vectors found")
    e = compute_umap_entry(store, x, names, space=args.space, suite=suite, random_state=args.seed,
                           command=command)
    out = {"key": e.key, "tasks": e.meta["tasks"], "vectors": e.spec["vectors"]}
    print(json.dumps(out) if args.json else f"stored UMAP coordinates of {len(names)} tasks as {e.key}")
    return 0




# --------------------------------------------------------------------------------------------------
# transfer


def add_transfer_parser(sub, add_common) -> None:
    d = DEFAULT_SOURCE
    p = sub.add_parser("transfer", help="which source prompt helps a target, and which similarity measure ranks them best")
    add_common(p)
    p.add_argument("--targets", default=None,
                   help="comma-separated target tasks (default: those of the suite's stored matrix at these settings)")
    p.add_argument("--sources", default=None, help="comma-separated source tasks (default: every other task)")
    p.add_argument("--steps", type=limits.argtype("steps"), default=20, help="steps of every transfer run (default 20)")
    p.add_argument("--eval-every", type=limits.argtype("eval_every"), default=None, help="dev evaluation interval (default: --steps)")
    p.add_argument("--lr", type=limits.argtype("lr"), default=d.lr)
    p.add_argument("--batch-size", type=limits.argtype("batch_size"), default=d.batch_size)
    p.add_argument("--prompt-len", type=limits.argtype("n_tokens"), default=d.n_tokens)
    p.add_argument("--prompt-kind", choices=["shallow", "deep"], default=d.kind)
    p.add_argument("--source-steps", type=limits.argtype("source_steps"), default=d.steps, help="steps of the source PT prompts (default 60)")
    p.add_argument("--seeds", type=limits.argtype("seeds"), default=None,
                   help="number of seeds 0..N-1, each a full replicate: source prompts and runs (default 1, or the "
                        "stored matrix's when --targets is not given)")
    p.set_defaults(func=cmd_transfer)


def _csv(v: str | None) -> list[str] | None:
    return [x.strip() for x in v.split(",") if x.strip()] if v else None


def cmd_transfer(args) -> int:
    from ipt_core.experiments.context import cached_backbone
    from ipt_core.experiments.transfer import stored_request
    from ipt_core.train.bank import pick_device
    from ipt_core.train.progress import CancelFlag, Reporter

    suite = load_suite(args.suite)
    source_cfg = replace(DEFAULT_SOURCE, n_tokens=args.prompt_len, kind=args.prompt_kind, steps=args.source_steps,
                         batch_size=args.batch_size, lr=args.lr, eval_every=min(DEFAULT_SOURCE.eval_every, args.source_steps))
    cfg = replace(source_cfg, steps=args.steps, eval_every=args.eval_every or args.steps)
    stores = _stores(args)
    targets, sources, n_seeds = _csv(args.targets), _csv(args.sources), args.seeds
    if args.targets is None:  # the suite's stored matrix at these settings: read, not trained
        stored = stored_request(stores, suite.name, cfg, source_cfg)
        if stored is None:
            raise InputError(f"no stored transfer matrix of suite {suite.name!r} at these settings: name --targets")
        targets, sources = stored["targets"], sources or stored["sources"]
        n_seeds = n_seeds or len(stored["seeds"])
    if not targets:
        raise InputError("--targets names no task")
    dev = pick_device(args.device)
    bb = cached_backbone(args.backbone, str(dev))
    argv = getattr(args, "_argv", None) or ["transfer", "--suite", args.suite, "--targets", ",".join(targets)]
    reporter = Reporter("transfer")
    try:
        report = transfer_report(stores, bb, suite, targets, sources, cfg, source_cfg, range(n_seeds or 1),
                                 device=str(dev), progress=reporter, should_cancel=CancelFlag(),
                                 command=reproducible_command("python -m ipt_core", argv))
    finally:
        reporter.close()
    if args.json:
        print(json.dumps(report))
        return 0
    fmt = lambda v, f: "n/a" if v is None else format(v, f)  # noqa: E731
    ranking = report["ranking"]
    agree = report.get("seed_agreement")
    lines = [f"{len(report['targets'])} targets x {len(report['sources'])} sources, seeds {report['seeds']}: "
             f"{len(report['pairs'])} (target, source) pairs; mean gain over the default init {report['mean_gain']:+.3f}",
             f"{'measure':>20} {'spearman':>9} {'p':>7} {'per-target':>10} {'signif.':>8} {'NDCG@3':>7} "
             f"{'regret@3':>9} {'share@3':>8}"]
    chance = next((r["chance"]["pooled"] for r in ranking.values() if "chance" in r), {})
    n_targets = next((r["n_targets"] for r in ranking.values()), 0)
    for name in report.get("measure_order") or report["spaces"]:  # the store keeps JSON keys sorted: the registry's order
        c = report["spaces"][name]
        pooled = ranking.get(name, {}).get("pooled", {})
        pick = lambda key: (pooled.get(key) or {}).get("mean")  # noqa: E731
        sig = f"{ranking.get(name, {}).get('n_significant', 0)}/{n_targets}"
        lines.append(f"{name:>20} {fmt(c['spearman'], '+.3f'):>9} {fmt(c['p_value'], '.3f'):>7} "
                     f"{fmt(c['per_target_mean'], '+.3f'):>10} {sig:>8} {fmt(pick('ndcg@3'), '.3f'):>7} "
                     f"{fmt(pick('regret_abs@3'), '+.3f'):>9} {fmt(pick('share@3'), '.2f'):>8}")
    cpick = lambda key: (chance.get(key) or {}).get("mean")  # noqa: E731
    lines.append(f"{'random order':>20} {'':>9} {'':>7} {'':>10} {'':>8} {fmt(cpick('ndcg@3'), '.3f'):>7} "
                 f"{fmt(cpick('regret_abs@3'), '+.3f'):>9} {fmt(cpick('share@3'), '.2f'):>8}")
    if agree:
        lines.append(f"seed agreement (the ceiling for any measure): Spearman of one seed's gains against another's "
                     f"{fmt(agree['spearman_pooled'], '+.3f')} pooled, {fmt(agree['mean_per_target'], '+.3f')} per target")
    for name, why in report.get("measures_missing", {}).items():
        lines.append(f"{name}: not computed ({why})")
    lines.append("signif.: targets whose Spearman has p < 0.05; NDCG@3: the top 3 sources by similarity against the 3 "
                 "best by gain (1 = the right order); regret@3: the best gain among them short of the best of all "
                 "(accuracy); share@3: of the best source's gain; --json: every metric per target, with bootstrap "
                 "intervals and the top-k curve")
    print("\n".join(lines))
    return 0
