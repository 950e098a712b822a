"""``pipeline``: everything the app shows for a suite, with defaults that fit the suite and machine.

Two budgets. ``quick`` (the default on CPU) keeps a demo suite under ten minutes on a 2-core
laptop: short PT/MSF/IST schedules (``ipt_core.config.budgets``' quick ones; MSF dev-scored once, at
its end), two dimensions, three seen tasks, one seed, one stability task, a
task-count curve whose partial sizes skip the random control (it does not depend on the number
of training tasks; the full size has it), a held-out family measured on its own tasks only (the
seen tasks' recovery is the dimension sweep's), and no UMAP (its first fit compiles for ~25 s;
the map page shows PCA and computes UMAP as a job on request).
``paper`` (the default on a GPU; ``full`` is its old name) uses the methods' own defaults and
three seeds. Both run the same experiments, in order: reference rows, recovery versus d_I,
recovery versus the number of training tasks, a held-out family, stability, and the task map.
Every experiment re-tunes the same seen tasks (those of the dimension sweep that it may use), so
their PT references and IST runs are computed once. Where the time goes: bench/PROFILE.md.
"""
from __future__ import annotations

import time

import numpy as np

from ipt_core.config.budgets import BUDGETS, Budget
from ipt_core.experiments.context import Context
from ipt_core.experiments.ipt import (
    heldout_family_experiment,
    recovery_experiment,
    stability_experiment,
    summary_json,
    task_count_experiment,
    task_map_experiment,
)
from ipt_core.experiments.tune import probe_all
from ipt_core.tasks import Suite


def default_split(suite: Suite, test_fraction: float = 0.25, seed: int = 0) -> tuple[list[str], list[str]]:
    """A family-stratified split: ``test_fraction`` of each family's tasks (at least one) become
    unseen; families of one task stay in training, so every unseen task has relatives in training."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for fam, names in sorted(suite.families().items()):
        names = sorted(names)
        n_test = max(1, int(len(names) * test_fraction)) if len(names) > 1 else 0
        order = [names[i] for i in rng.permutation(len(names))]
        test += order[:n_test]
        train += order[n_test:]
    if not test and len(train) > 1:
        test.append(train.pop())
    keep = suite.names()
    return [n for n in keep if n in train], [n for n in keep if n in test]


def seen_subset(suite: Suite, train: list[str], k: int) -> list[str]:
    """Up to ``k`` training tasks, one family after another, so every family is represented first."""
    by_fam: dict[str, list[str]] = {}
    for n in train:
        by_fam.setdefault(suite.task(n).type, []).append(n)
    out: list[str] = []
    while len(out) < min(k, len(train)):
        for fam in sorted(by_fam):
            if by_fam[fam] and len(out) < k:
                out.append(by_fam[fam].pop(0))
    return [n for n in train if n in out]


def run_pipeline(ctx: Context, suite: Suite, budget: str | Budget | None = None, *, umap: bool = True) -> dict:
    """Run every experiment the app shows; return where each result is stored.

    Example::

        report = run_pipeline(Context.create(Store()), load_suite("demo"))
        report["results"]   # [{"kind": "ipt_dims", "key": ..., "summary": ...}, ...]
    """
    t0 = time.time()
    if isinstance(budget, Budget):
        name, b = "custom", budget
    else:
        name = budget or ("paper" if ctx.device.type == "cuda" else "quick")
        b = BUDGETS[name]
    dim_cap = int(np.prod(ctx.backbone.prompt_shape(b.settings.pt.n_tokens, b.settings.pt.kind)))
    dims = [d for d in b.dims if d <= dim_cap]
    train, test = default_split(suite)
    seen = seen_subset(suite, train, b.max_seen)
    results = []

    ctx.stage("reference rows (zero-shot, linear probe)")
    probe_all(ctx.store, suite, backbone=ctx.backbone, device=ctx.device, command=ctx.command)
    results.append({"kind": "zero_shot+probe", "key": "per task", "summary": f"{len(suite.tasks)} tasks"})

    dims_entry = recovery_experiment(ctx, suite, train, test, dims, b.seeds, b.settings, seen_names=seen)
    s = summary_json(dims_entry)
    results.append({"kind": "ipt_dims", "key": dims_entry.key,
                    "summary": {d: (s["subspaces"]["found"].get("seen", {}).get(str(d)),
                                    s["subspaces"]["found"].get("unseen", {}).get(str(d))) for d in dims}})

    mid = dims[len(dims) // 2]
    if len(train) >= 4:
        count_entry = task_count_experiment(ctx, suite, train, test, mid, b.count_fractions, b.seeds, b.settings,
                                            max_seen=b.max_seen, seen_first=seen,
                                            controls_partial=b.count_controls)
        results.append({"kind": "ipt_task_count", "key": count_entry.key, "summary": f"sizes {count_entry.meta['sizes']} at d_I={mid}"})

    fams = {f: n for f, n in suite.families().items() if len(n) >= 2}
    if fams and len(suite.families()) >= 3:
        family = max(sorted(fams), key=lambda f: len(fams[f]))
        held = heldout_family_experiment(ctx, suite, family, mid, b.seeds, b.settings, seen_first=seen,
                                         max_seen=b.max_seen if b.heldout_seen is None else b.heldout_seen)
        results.append({"kind": "ipt_heldout_family", "key": held.key, "summary": f"held out {family}"})

    stab_tasks = test[: b.stability_tasks] or train[: b.stability_tasks]
    stab = stability_experiment(ctx, suite, stab_tasks, train, mid, b.stability_seeds, b.settings, eval_every=b.curve_every)
    results.append({"kind": "ipt_stability", "key": stab.key, "summary": f"{len(stab_tasks)} tasks x {len(b.stability_seeds)} seeds"})

    ctx.stage("task map (UMAP)")
    tmap = task_map_experiment(ctx, suite, dims_entry, d=mid, with_umap=umap and b.umap)
    results.append({"kind": "task_map", "key": tmap.key, "summary": f"{len(tmap.meta['tasks'])} tasks"})
    return {"suite": suite.name, "budget": name, "store": str(ctx.store.root), "train_tasks": train, "test_tasks": test,
            "dims": dims, "results": results, "seconds": time.time() - t0}
