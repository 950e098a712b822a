"""The IPT paper's experiments as functions whose results land in the store.

- ``recovery_vs_dims``: MSF on the training tasks' PT prompts, then IST on seen tasks (same tasks,
  a different few-shot sample) and unseen tasks, for each d_I, in the found subspace and in a
  random one (the control). Writes an ``ipt_dims`` entry.
- ``recovery_vs_task_count`` and ``heldout_family``: the same with fewer training tasks, or with a
  whole family held out (``ipt_task_count`` / ``ipt_heldout_family`` entries).
- ``stability``: N seeds of PT from its usual random initialisation against PT initialised from
  the IST solution; dev accuracy per step (``ipt_stability``).
- ``task_map``: raw prompts, their intrinsic vectors and IST solutions of every task, with UMAP
  coordinates precomputed for the app (``task_map``).

Every stage is cached (``ipt_core.experiments.ipt_stages``): PT runs (``pt_run``), auto-encoders (``msf``) and
IST runs (``ist_run``), so a sweep extended by one dimension trains only what is new; every
experiment's own entry is ``store.memo``'s.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Callable, Sequence

import numpy as np
import torch

from ipt_core.analysis.convergence import plateau_step, run_finished
from ipt_core.analysis.metrics import gain_recovery, recovery
from ipt_core.analysis.recovery_summary import dim_summary, summarise
from ipt_core.backbones import Backbone
from ipt_core.config.ipt import IPTSettings, ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig
from ipt_core.experiments.context import Context
from ipt_core.experiments.ipt_stages import (
    IPTInputError,
    ISTRun,
    find_subspaces,
    intrinsic_tuning,
    load_decoder,
    msf_spec,
    pt_prompts,
    resample_suite,
    subspaces_of,
)
from ipt_core.experiments.tune import get_baseline, pt_spec
from ipt_core.methods.ipt import CODE_VERSION as IPT_VERSION
from ipt_core.methods.pt import PromptTuning
from ipt_core.store import Store
from ipt_core.store.keys import spec_key
from ipt_core.store.entry import Entry
from ipt_core.tasks import Suite, Task
from ipt_core.train import checkpoint
from ipt_core.train.bank import RunConfig
from ipt_core.train.distributed import train_bank_on_ranks

Progress = Callable[[int, int, str], None]


def _rows_to_plateau(meta: dict, cfg: ISTConfig) -> int | None:
    """Training rows an IST run had passed through the model when its dev curve first came within
    the plateau's tolerance of its best (``analysis.convergence.plateau_step``)."""
    step = plateau_step(meta.get("dev_curve") or [])
    if step is None:
        return None
    return int(step * meta.get("rows_per_step", cfg.batch_size))


def recovery_experiment(
    ctx: Context, suite: Suite, train_names: Sequence[str], test_names: Sequence[str], dims: Sequence[int],
    seeds: Sequence[int], settings: IPTSettings = IPTSettings(), *, kind: str = "ipt_dims", extra: dict | None = None,
    seen_names: Sequence[str] | None = None,
) -> Entry:
    """Recovery and gain recovery versus d_I, seen and unseen, found and random subspace.

    Returns the stored summary entry (kind ``ipt_dims`` unless told otherwise); it is served from
    the store when the same request was made before.
    """
    train_names, test_names = list(train_names), list(test_names)
    seen_names = list(train_names if seen_names is None else seen_names)
    if not train_names:
        raise IPTInputError("no training tasks")
    overlap = set(train_names) & set(test_names)
    if overlap:
        raise IPTInputError(f"tasks both in training and test: {sorted(overlap)}")
    for n in train_names + test_names:
        suite.task(n)
    dims = sorted(set(int(d) for d in dims))
    exp_spec = {
        "method": kind, "code_version": IPT_VERSION, "backbone": ctx.backbone.identity(),
        "train": [(n, suite.task(n).data_hash()) for n in train_names],
        "test": [(n, suite.task(n).data_hash()) for n in test_names], "seen": seen_names,
        "dims": dims, "seeds": list(seeds), "settings": settings.to_json(), "extra": extra or {},
    }
    return ctx.store.memo(kind, exp_spec, lambda: _recovery_meta(ctx, suite, train_names, test_names, seen_names, dims,
                                                                  seeds, settings, extra), command=ctx.command)


def _recovery_meta(ctx: Context, suite: Suite, train_names: list[str], test_names: list[str], seen_names: list[str],
                   dims: list[int], seeds: Sequence[int], settings: IPTSettings, extra: dict | None) -> dict:
    """The ``ipt_dims`` entry's meta: PT prompts, subspaces and IST runs per seed (each cached on its own)."""
    pt_cfg = settings.pt
    t0 = time.time()
    train_tasks = [suite.task(n) for n in train_names]
    test_tasks = [suite.task(n) for n in test_names]
    seen_tasks = resample_suite(suite, seen_names, settings.seen_data_seed)
    rows = []
    pt_unfinished: dict[str, dict[str, list[str]]] = {}
    zs_meta = {t.name: get_baseline(ctx.store, "zero_shot", ctx.backbone, t, device=ctx.device).meta for t in train_tasks + test_tasks}
    zs = {n: m["test_acc"] for n, m in zs_meta.items()}
    for seed in seeds:
        ctx.stage(f"prompt tuning of {len(train_tasks)} training tasks (seed {seed})")
        train_prompts, train_entries = pt_prompts(ctx, suite, train_tasks, seed, pt_cfg)
        ref_tasks = seen_tasks + test_tasks
        ctx.stage(f"prompt tuning references for {len(ref_tasks)} seen/unseen tasks (seed {seed})")
        _, ref_entries = pt_prompts(ctx, suite, ref_tasks, seed, pt_cfg)
        pt_ref = {(("seen" if i < len(seen_tasks) else "unseen"), t.name): e.meta["test_acc"] for i, (t, e) in enumerate(zip(ref_tasks, ref_entries))}
        pt_dev = {(("seen" if i < len(seen_tasks) else "unseen"), t.name): e.meta.get("dev_acc") for i, (t, e) in enumerate(zip(ref_tasks, ref_entries))}
        # PT's own convergence: a subspace built from unfinished prompts, or a reference below its plateau, limits recovery
        rising = lambda tasks, entries: [t.name for t, e in zip(tasks, entries) if not run_finished(e.meta)]
        pt_unfinished[str(seed)] = {"train": rising(train_tasks, train_entries), "seen": rising(seen_tasks, ref_entries),
                                    "unseen": rising(test_tasks, ref_entries[len(seen_tasks):])}
        found = find_subspaces(ctx, train_tasks, train_prompts, train_entries, dims, seed, settings.msf, pt_cfg.kind)
        subspaces = {}
        ist_runs = []
        for d in dims:
            dk = found[d].key
            for sub, space in subspaces_of(found[d], settings.subspaces, train_prompts=train_prompts,
                                           norm=settings.msf.norm).items():
                subspaces[(dk, sub)] = space
                ist_runs += [ISTRun(t, "seen", sub, d, seed, dk) for t in seen_tasks]
                ist_runs += [ISTRun(t, "unseen", sub, d, seed, dk) for t in test_tasks]
        # seen (resampled) and unseen tasks have distinct names, but a bank must not hold two
        # versions of one task: seen runs and unseen runs never share a name, so one bank suffices
        entries = intrinsic_tuning(ctx, ist_runs, subspaces, settings.ist, pt_cfg.kind)
        for r, e in zip(ist_runs, entries):
            ist = e.meta["test_acc"]
            pt = pt_ref[(r.setting, r.task.name)]
            z = zs[r.task.name]
            g = gain_recovery(ist, pt, z)
            # the dev split's recovery too: settings (ablations, defaults) are chosen on it, never on test
            dev = (e.meta.get("dev_acc"), pt_dev[(r.setting, r.task.name)], zs_meta[r.task.name].get("dev_acc"))
            g_dev = gain_recovery(*dev) if None not in dev else math.nan
            rows.append({"d": r.d, "setting": r.setting, "subspace": r.subspace, "task": r.task.name, "family": r.task.type,
                         "seed": seed, "ist_test_acc": ist, "pt_test_acc": pt, "zero_shot_test_acc": z,
                         "recovery": recovery(ist, pt), "gain_recovery": None if math.isnan(g) else g,
                         "ist_dev_acc": dev[0], "pt_dev_acc": dev[1], "zero_shot_dev_acc": dev[2],
                         "dev_gain_recovery": None if math.isnan(g_dev) else g_dev, "ist_key": e.key,
                         "finished": run_finished(e.meta),
                         "ist_rows_to_plateau": _rows_to_plateau(e.meta, settings.ist)})
    meta = {"suite": suite.name, "prompt_kind": pt_cfg.kind, "train_tasks": train_names, "test_tasks": test_names,
            "seen_tasks": seen_names, "dims": dims, "seeds": list(seeds), "rows": rows, "summary": (summary := summarise(rows)),
            "dim_summary": dim_summary(summary), "dev_dim_summary": dim_summary(summary, "dev"),
            "pt_unfinished": pt_unfinished, "seconds": time.time() - t0, "device": str(ctx.device)} | (extra or {})
    return meta


ROW_FIELDS = ("task", "family", "setting", "subspace", "d", "seed", "ist_test_acc", "pt_test_acc", "zero_shot_test_acc",
              "gain_recovery", "ist_dev_acc", "pt_dev_acc", "zero_shot_dev_acc", "dev_gain_recovery", "finished",
              "ist_rows_to_plateau", "ist_key")


def summary_json(entry: Entry) -> dict:
    """The CLI's JSON of an ``ipt_dims`` entry.

    ``{"dims", "subspaces": {sub: {setting: {d: {recovery, gain_recovery, pooled_gain_recovery,
    dev_pooled_gain_recovery, finished_share, n_tasks}}}}, "dimension_summary": {sub: {setting:
    {d50, d90, max_d}}}, "dev_dimension_summary", "rows": [...], "key"}``: every subspace the sweep
    tuned in, each IST row with its finished flag, and the smallest d_I recovering 50% / 90% of PT's
    pooled gain. An entry stored before the flag and the summary were recorded gets them computed
    from its rows (a flag it cannot know is None).
    """
    m = entry.meta
    keep = ("recovery", "gain_recovery", "pooled_gain_recovery", "dev_pooled_gain_recovery", "finished_share", "n_tasks")
    summary = m["summary"] if all("pooled_gain_recovery" in v for b in m["summary"].values() for c in b.values()
                                  for v in c.values()) else summarise(m["rows"])
    return {
        "dims": m["dims"],
        "subspaces": {sub: {setting: {d: {k: v.get(k) for k in keep} for d, v in by_d.items()}
                            for setting, by_d in block.items()} for sub, block in summary.items()},
        "dimension_summary": m.get("dim_summary") or dim_summary(summary),
        "dev_dimension_summary": m.get("dev_dim_summary") or dim_summary(summary, "dev"),
        "rows": [{k: r.get(k) for k in ROW_FIELDS} for r in m["rows"]],
        "key": entry.key,
    }


def recovery_stage_keys(ctx: Context, suite: Suite, entry: Entry) -> dict[str, set[str]]:
    """The ``pt_run`` and ``msf`` keys an ``ipt_dims`` entry's computation asks the store for, named
    by today's code (``pt_spec``, ``msf_spec``, the seen tasks' resample) from the entry's own
    request (its spec's settings and tasks, its meta's seeds and dimensions).

    The entry itself is keyed by that request, so a replay that finds it proves the request is
    today's; this names its stages, which the replay does not reach (``tests/test_shipped_results.py``
    checks every shipped PT run and subspace against it).
    """
    sp, m = entry.spec, entry.meta
    pt_cfg, msf_cfg = PTConfig(**sp["settings"]["pt"]), MSFConfig(**sp["settings"]["msf"])
    train = [suite.task(n) for n in m["train_tasks"]]
    refs = resample_suite(suite, m["seen_tasks"], sp["settings"]["seen_data_seed"]) + [suite.task(n) for n in m["test_tasks"]]
    keys: dict[str, set[str]] = {"pt_run": set(), "msf": set()}
    for seed in m["seeds"]:
        train_keys = [spec_key(pt_spec(ctx.backbone, t, seed, pt_cfg)) for t in train]
        keys["pt_run"] |= set(train_keys) | {spec_key(pt_spec(ctx.backbone, t, seed, pt_cfg)) for t in refs}
        keys["msf"] |= {spec_key(msf_spec(ctx, train_keys, d, seed, msf_cfg)) for d in m["dims"]}
    return keys


def task_count_experiment(ctx: Context, suite: Suite, train_names, test_names, d: int, fractions: Sequence[float],
                          seeds: Sequence[int], settings: IPTSettings = IPTSettings(), max_seen: int | None = None,
                          seen_first: Sequence[str] = (), controls_partial: bool = True) -> Entry:
    """Recovery at one d_I when MSF sees 25/50/75/100% of the training tasks.

    The seen tasks are (up to ``max_seen`` of) the smallest training set, so every size is
    measured on the same seen tasks. ``seen_first``: training tasks to put first in the (otherwise
    random) order, so that they are the seen tasks (another experiment's seen tasks: their PT
    references and full-size IST runs are then shared). ``controls_partial`` False: the linear and
    random controls only at the full size.
    """
    train_names = list(train_names)
    rng = np.random.default_rng(0)
    order = [train_names[i] for i in rng.permutation(len(train_names))]
    first = [n for n in order if n in set(seen_first)]
    order = first + [n for n in order if n not in set(first)]
    sizes = sorted({max(1, round(f * len(order))) for f in fractions})
    seen = order[: min(sizes[0], max_seen or sizes[0])]  # every MSF run has seen these: comparable recovery
    parts = []
    for n in sizes:
        s_n = settings if (controls_partial or n == sizes[-1]) else replace(settings, subspaces=("found",))
        # the subset in the caller's order: the full size is then the caller's own MSF and IST runs
        # (their keys list the training prompts in order), served from the store, not trained again
        chosen = set(order[:n])
        e = recovery_experiment(ctx, suite, [t for t in train_names if t in chosen], test_names, [d], seeds, s_n,
                                kind="ipt_dims", seen_names=[t for t in train_names if t in set(seen)])
        parts.append((n, e))
    rows = [dict(r, n_train_tasks=n) for n, e in parts for r in e.meta["rows"]]
    spec = {"method": "ipt_task_count", "parts": [e.key for _, e in parts], "code_version": IPT_VERSION}
    meta = lambda: {"suite": suite.name, "prompt_kind": settings.pt.kind, "d": d, "sizes": sizes, "seen_tasks": seen,
                    "test_tasks": list(test_names), "seeds": list(seeds), "rows": rows,
                    "summary": {str(n): summarise([r for r in rows if r["n_train_tasks"] == n]) for n in sizes}}
    return ctx.store.memo("ipt_task_count", spec, meta, command=ctx.command)


def heldout_family_experiment(ctx: Context, suite: Suite, family: str, d: int, seeds: Sequence[int],
                              settings: IPTSettings = IPTSettings(), train_names: Sequence[str] | None = None,
                              max_seen: int | None = None, seen_first: Sequence[str] = ()) -> Entry:
    """Train the subspace on every family but one; test on that family's tasks (all unseen).

    ``max_seen`` limits the training tasks re-tuned on new data as the seen reference (the first
    ones, one per family; ``seen_first`` before them: another experiment's seen tasks, whose PT
    references are then shared), which keeps the experiment affordable on a CPU.
    """
    fams = suite.families()
    if family not in fams:
        raise IPTInputError(f"family {family!r} is not in the suite; families: {sorted(fams)}")
    test = fams[family]
    pool = list(train_names) if train_names else [n for n in suite.names()]
    train = [n for n in pool if n not in test]
    seen = None
    if max_seen is not None and max_seen < len(train):
        first_of_family: dict[str, str] = {}
        for n in train:
            first_of_family.setdefault(suite.task(n).type, n)
        preferred = [n for n in seen_first if n in train]
        seen = list(dict.fromkeys(preferred + list(first_of_family.values()) + train))[:max_seen]
        seen = [n for n in train if n in seen]
    e = recovery_experiment(ctx, suite, train, test, [d], seeds, settings, kind="ipt_dims", seen_names=seen)
    spec = {"method": "ipt_heldout_family", "part": e.key, "family": family, "code_version": IPT_VERSION}
    meta = lambda: {"suite": suite.name, "prompt_kind": settings.pt.kind, "d": d, "heldout_family": family,
                    "train_tasks": train, "test_tasks": test, "seeds": list(seeds),
                    "rows": [dict(r, heldout_family=family) for r in e.meta["rows"]], "summary": e.meta["summary"]}
    return ctx.store.memo("ipt_heldout_family", spec, meta, command=ctx.command)


def stability_experiment(ctx: Context, suite: Suite, task_names: Sequence[str], train_names: Sequence[str], d: int,
                         seeds: Sequence[int], settings: IPTSettings = IPTSettings(), eval_every: int = 10) -> Entry:
    """PT from random initialisation vs PT initialised from the IST solution, N seeds each.

    The subspace is found on ``train_names`` (seed 0); each task's IST solution (seed 0) gives the
    initial prompt; the seeds then vary the PT data order (and, for random init, the init).
    """
    task_names, train_names = list(task_names), list(train_names)
    spec = {"method": "ipt_stability", "code_version": IPT_VERSION, "backbone": ctx.backbone.identity(),
            "tasks": [(n, suite.task(n).data_hash()) for n in task_names],
            "train": [(n, suite.task(n).data_hash()) for n in train_names], "d": d, "seeds": list(seeds),
            "settings": settings.to_json(), "eval_every": eval_every}
    # these banks' results are stored only inside the experiment's entry: their checkpoints stay until it is
    ckpts = {init: checkpoint.bank_dir(ctx.store, [spec | {"bank": f"pt from {init}"}]) for init in ("random", "ist")}
    entry = ctx.store.memo("ipt_stability", spec, lambda: _stability_meta(ctx, suite, task_names, train_names, d, seeds,
                                                                          settings, eval_every, ckpts), command=ctx.command)
    for c in ckpts.values():
        checkpoint.discard(c)
    return entry


def _stability_meta(ctx: Context, suite: Suite, task_names: list[str], train_names: list[str], d: int,
                    seeds: Sequence[int], settings: IPTSettings, eval_every: int, ckpts: dict) -> dict:
    """The ``ipt_stability`` entry's meta: two PT banks (random and IST initialisation), their dev curves."""
    t0 = time.time()
    tasks = [suite.task(n) for n in task_names]
    train_tasks = [suite.task(n) for n in train_names]
    ctx.stage("prompt tuning of the training tasks")
    train_prompts, train_entries = pt_prompts(ctx, suite, train_tasks, 0, settings.pt)
    found = find_subspaces(ctx, train_tasks, train_prompts, train_entries, [d], 0, settings.msf, settings.pt.kind)
    space = subspaces_of(found[d], ["found"])["found"]
    ist_entries = intrinsic_tuning(ctx, [ISTRun(t, "seen" if t.name in train_names else "unseen", "found", d, 0, found[d].key)
                                         for t in tasks], {(found[d].key, "found"): space}, settings.ist, settings.pt.kind)
    curves = []
    pt_cfg = replace(settings.pt, eval_every=eval_every, patience=None)  # whole curves: no early stopping
    for init in ("random", "ist"):
        ctx.stage(f"stability: PT from {init} initialisation")
        if init == "random":
            inits = [(t, s, None) for t in tasks for s in seeds]
        else:
            inits = [(t, s, e.tensor("prompt")) for t, e in zip(tasks, ist_entries) for s in seeds]
        method = PromptTuning(
            [p if p is not None else _pt_init(ctx.backbone, pt_cfg, s, t) for t, s, p in inits], pt_cfg.kind)
        rc = [RunConfig.of((t.name,), s, pt_cfg) for t, s, _ in inits]
        results = train_bank_on_ranks(ctx.backbone, tasks, method, rc, device=ctx.device, progress=ctx.progress,
                                      should_cancel=ctx.should_cancel, checkpoint_dir=ckpts[init])
        for (t, s, _), res in zip(inits, results):
            curves.append({"task": t.name, "seed": s, "init": init, "steps": [p[0] for p in res.dev_curve],
                           "dev_acc": [p[1] for p in res.dev_curve], "test_acc": res.test_acc})
    final = []
    for t in tasks:
        for init in ("random", "ist"):
            last = [c["dev_acc"][-1] for c in curves if c["task"] == t.name and c["init"] == init]
            tests = [c["test_acc"] for c in curves if c["task"] == t.name and c["init"] == init]
            final.append({"task": t.name, "init": init, "mean": float(np.mean(last)), "std": float(np.std(last)),
                          "test_mean": float(np.mean(tests)), "test_std": float(np.std(tests))})
    meta = {"suite": suite.name, "tasks": task_names, "train_tasks": train_names, "seeds": list(seeds), "d": d,
            "curves": curves, "final": final, "seconds": time.time() - t0, "prompt_kind": settings.pt.kind}
    return meta


def _pt_init(bb: Backbone, cfg: PTConfig, seed: int, task: Task) -> torch.Tensor:
    from ipt_core.methods.pt import init_prompt

    return init_prompt(bb, cfg.n_tokens, cfg.kind, cfg.init, seed=seed, text=cfg.init_text or task.description)


def task_map_experiment(ctx: Context, suite: Suite, dims_entry: Entry, d: int | None = None, with_umap: bool = True) -> Entry:
    """Task embeddings for the map, from a finished ``ipt_dims`` experiment (seed of its first run).

    Spaces: ``prompt`` (PT prompts, flattened), ``intrinsic`` (Proj of each prompt in the found
    subspace), ``ist`` (each task's IST solution z). UMAP coordinates are computed here, in the
    job, so the page never waits for UMAP's first-call compile.
    """
    meta = dims_entry.meta
    d = d or meta["dims"][len(meta["dims"]) // 2]
    seed = meta["seeds"][0]
    spec = {"method": "task_map", "code_version": IPT_VERSION, "source": dims_entry.key, "d": d, "umap": with_umap}
    return ctx.store.memo("task_map", spec, lambda: _task_map(ctx, suite, dims_entry, d, seed, with_umap),
                          command=ctx.command)


def _task_map(ctx: Context, suite: Suite, dims_entry: Entry, d: int, seed: int, with_umap: bool) -> tuple[dict, dict]:
    """The ``task_map`` entry's meta and vectors (each space's ``[T, *]`` task vectors)."""
    meta = dims_entry.meta
    rows = [r for r in meta["rows"] if r["d"] == d and r["seed"] == seed and r["subspace"] == "found"]
    names = list(meta["train_tasks"]) + [n for n in meta["test_tasks"]]
    tasks = [suite.task(n) for n in names]
    prompts, _ = pt_prompts(ctx, suite, tasks, seed, PTConfig(**{k: v for k, v in _pt_cfg_json(dims_entry).items()}))
    msf_key = ctx.store.get(rows[0]["ist_key"]).spec["decoder"]
    ae, nm = load_decoder(ctx.store.get(msf_key), d=d, seed=seed, prompt_shape=prompts.shape[1:], hidden=ctx.store.get(msf_key).meta["hidden"])
    with torch.no_grad():
        intrinsic = ae.encode(nm(prompts.float()))
    ist_by_task = {}
    for r in rows:
        if r["task"] not in ist_by_task or r["setting"] == "unseen":
            ist_by_task[r["task"]] = ctx.store.get(r["ist_key"]).tensor("z")
    ist = torch.stack([ist_by_task.get(n, torch.full((d,), float("nan"))) for n in names])
    vectors = {"prompt": prompts.flatten(1).float(), "intrinsic": intrinsic.float(), "ist": ist.float()}
    umap_coords = {}
    if with_umap and len(names) >= 4:
        from ipt_core.analysis.maps import project

        for space, v in vectors.items():
            arr = v.numpy()
            umap_coords[space] = None if np.isnan(arr).any() else project(arr, method="umap", random_state=0).tolist()
    out_meta = {"suite": suite.name, "prompt_kind": meta["prompt_kind"], "tasks": names, "families": [t.type for t in tasks],
                "train_tasks": meta["train_tasks"], "test_tasks": meta["test_tasks"], "d": d, "seed": seed,
                "spaces": list(vectors), "umap": umap_coords or None}
    return out_meta, vectors


def _pt_cfg_json(entry: Entry) -> dict:
    return dict(entry.spec["settings"]["pt"])


def shipped_store() -> Store | None:
    """The read-only store of demo results shipped inside the package, when present."""
    from ipt_core.paths import SHIPPED_RESULTS

    return Store(SHIPPED_RESULTS, read_only=True) if (SHIPPED_RESULTS / "objects").is_dir() else None


def find_decoder(ctx: Context, suite: Suite, d: int, prompt_kind: str, decoder_key: str | None = None) -> tuple[Entry, Store]:
    """The ``msf`` entry to tune in: the given key, else the newest subspace of dimension ``d``
    found for this suite (training tasks all in it) and prompt kind, in the main store first,
    then in the shipped results."""
    stores = [ctx.store] + [s for s in [shipped_store()] if s is not None]
    for st in stores:
        if decoder_key:
            e = st.get(decoder_key)
            if e is not None and e.kind == "msf":
                return e, st
            continue
        names = set(suite.names())
        cands = [e for e in st.query("msf") if e.meta["d"] == d and set(e.meta["train_tasks"]) <= names
                 and len(e.meta["prompt_shape"]) == (3 if prompt_kind == "deep" else 2)]
        if cands:
            return cands[-1], st
    what = f"subspace {decoder_key}" if decoder_key else f"subspace of d_I = {d} for suite {suite.name!r} ({prompt_kind} prompts)"
    raise IPTInputError(f"no {what} in the store; find one first, e.g. python -m ipt_core ipt --suite {suite.source or suite.name} --dims {d}")


def tune_in_subspace(ctx: Context, suite: Suite, task_names: Sequence[str], d: int, seeds: Sequence[int],
                     cfg: ISTConfig = ISTConfig(), *, prompt_kind: str = "deep", subspace: str = "found",
                     decoder_key: str | None = None) -> list[Entry]:
    """IST of the named tasks in an existing subspace: only the coordinates train (no PT, no MSF).

    ``subspace``: ``found`` (the auto-encoder's), ``linear`` (the principal directions of the PT
    prompts it was found on) or ``random`` (its decoder untrained); the last two read those prompts
    from the store that holds the subspace. The
    tasks count as seen when the subspace was found on them, else unseen.
    """
    entry, st = find_decoder(ctx, suite, d, prompt_kind, decoder_key)
    train_prompts = None
    if subspace != "found":
        stored = [st.get(k) for k in entry.spec["train_prompts"]]
        if any(e is None for e in stored):
            raise IPTInputError(f"the {subspace} subspace beside {entry.key} needs the PT prompts it was found on, "
                                "and the store lacks some of them")
        train_prompts = torch.stack([e.tensor("prompt").float() for e in stored])
    space = subspaces_of(entry, [subspace], train_prompts=train_prompts,
                         norm=entry.spec["config"].get("norm", "layer"))[subspace]
    train = set(entry.meta["train_tasks"])
    runs = [ISTRun(suite.task(n), "seen" if n in train else "unseen", subspace, d, s, entry.key) for n in task_names for s in seeds]
    return intrinsic_tuning(ctx, runs, {(entry.key, subspace): space}, cfg, prompt_kind)
