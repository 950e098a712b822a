"""Methods side by side: zero-shot, linear probe, PT, IPT, ATTEMPT and VIP on one backbone, one set of
tasks and one step budget; and the ATTEMPT and VIP experiments themselves (results in the store).

    python -m ipt_core compare --suite demo --tasks movie_sentiment,sms_spam \\
        --methods zero-shot,probe,pt,ipt,attempt,vip --seeds 3 [--steps 300] [--json]

What each method is here:

- ``zero-shot`` and ``probe``: the reference rows of ``experiments.get_baseline`` (deterministic:
  the same row for every seed).
- ``pt``: prompt tuning of each task (``experiments.tune``).
- ``ipt``: intrinsic subspace tuning of each task in the subspace found on the suite's OTHER tasks
  (their PT prompts, seed for seed): the compared tasks are unseen tasks of IPT. This is
  ``ipt_experiments.recovery_experiment`` with the compared tasks as test tasks, without its seen
  tasks, random control and PT references (compare has its own PT rows); the PT prompts,
  subspace and IST runs are shared with it through the store.
- ``attempt``: single-task ATTEMPT; the sources of a task are the PT prompts (shallow, seed 0) of
  every other task of the suite. ``attempt-mt``: multi-task ATTEMPT, one run per seed over all
  compared tasks with one shared attention module; its sources are the suite's tasks that are
  not compared.
- ``vip``: VIP for each task.

The step budget (``steps``, ``batch_size``, ``eval_every``, ``patience``, ``n_tokens``,
``max_grad_norm``) is the same for every trained method, the subspace finding included; learning
rates are per method. ``trainable_params`` counts the numbers learned *per task*: PT ``n*d``;
IPT ``d_I`` (the decoder is learned on the other tasks); ATTEMPT its target prompt and attention
module (the multi-task variant's module divided among its tasks); VIP ``P``, the contextualiser
and the EMA-learned codebook; the probe ``(d + 1)`` per class (one set for two classes).
``seconds`` is a run's training time: its bank's wall time divided by the runs that trained
together (None for an IST run another experiment trained without recording its time).

The command line (``python -m ipt_core compare``) is ``cli.cmd_compare`` with its flags in
``cli_args.add_compare_parser``; this module never imports the CLI. It imports the experiment
layers lazily: the CLI's parser imports it for every command.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ipt_core.analysis.method_diagnostics import (
    attention_entropy,
    codebook_stats,
    diagnostics,
)
from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.pt import PTConfig
from ipt_core.config.registry import (
    COMPARE_METHODS,
    DEFAULT_COMPARE_METHODS,
    CompareSettings,
)
from ipt_core.config.vip import VIPConfig
from ipt_core.errors import InputError
from ipt_core.methods.attempt import CODE_VERSION as ATTEMPT_VERSION
from ipt_core.methods.attempt import Attempt
from ipt_core.methods.pt import init_prompt
from ipt_core.methods.vip import CODE_VERSION as VIP_VERSION
from ipt_core.methods.vip import VIP

if TYPE_CHECKING:  # pragma: no cover
    from ipt_core.backbones import Backbone
    from ipt_core.experiments.context import Context
    from ipt_core.store.entry import Entry
    from ipt_core.tasks import Example, Suite, Task

COMPARE_VERSION = "compare-1"
OWN_PROMPT = "(own prompt)"  # the column of ATTEMPT's attention on the target's own prompt


class CompareInputError(InputError):
    """A comparison that cannot be run as asked: unknown method, no other tasks for IPT/ATTEMPT..."""




# --------------------------------------------------------------------------------------------------
# helpers


def _per_row(backbone: "Backbone", fn, examples: Sequence["Example"], run: int, task_index: int, device,
             batch_size: int = 128) -> list[torch.Tensor]:
    """``fn(run_ids, task_ids, enc)`` over ``examples`` in length-sorted chunks (no gradient): one output per chunk."""
    order = sorted(range(len(examples)), key=lambda i: len(backbone.token_ids(examples[i])))
    out = []
    with torch.no_grad():
        for i in range(0, len(order), batch_size):
            chunk = [examples[j] for j in order[i : i + batch_size]]
            enc = backbone.collate(chunk).to(device)
            ids = torch.full((len(chunk),), run, dtype=torch.long, device=device)
            tids = torch.full((len(chunk),), task_index, dtype=torch.long, device=device)
            out.append(fn(ids, tids, enc))
    return out


def _scores_meta(res, bank_size: int, device) -> dict:
    return {"status": res.status, "best_step": res.best_step, "dev_acc": res.dev_acc, "dev_f1": res.dev_f1,
            "test_acc": res.test_acc, "test_f1": res.test_f1, "per_task": res.per_task, "dev_curve": res.dev_curve,
            "loss_curve": res.loss_curve, "bank_seconds": res.seconds, "bank_size": bank_size,
            "seconds": res.seconds / bank_size, "device": str(device), "test_pred": res.test_pred}


def _target_init(backbone: "Backbone", cfg, seed: int, task: "Task") -> torch.Tensor:
    return init_prompt(backbone, cfg.n_tokens, "shallow", cfg.init, seed=seed, text=task.description)


# --------------------------------------------------------------------------------------------------
# ATTEMPT


def attempt_spec(ctx: "Context", tasks: Sequence["Task"], sources: Sequence[tuple[str, str]], seed: int,
                 cfg: AttemptConfig, variant: str) -> dict:
    """Everything that decides one ATTEMPT run: targets (name, data hash), sources (name, PT key), seed, config."""
    return {"method": "attempt", "code_version": ATTEMPT_VERSION, "backbone": ctx.backbone.identity(),
            "variant": variant, "tasks": [[t.name, t.data_hash()] for t in tasks],
            "sources": [list(s) for s in sources], "seed": seed, "config": cfg.to_json()}


def attempt_runs(ctx: "Context", suite: "Suite", targets: Sequence[str], seeds: Sequence[int], cfg: AttemptConfig,
                 source_cfg: PTConfig, *, multi_task: bool = False, source_seed: int = 0) -> list["Entry"]:
    """ATTEMPT runs (``attempt_run`` entries), the missing ones trained in one bank.

    Single-task (default): one run per (target, seed), in that order; a target's sources are the PT
    prompts of every other task of the suite. ``multi_task``: one run per seed over all targets
    with one attention module; the sources are the suite's tasks that are not targets. Source
    prompts are shallow PT prompts of ``source_cfg`` and ``source_seed``, trained where missing
    (unless ``ctx.train_missing_prompts`` is False: then a missing one is an error).

    Each entry's meta holds the scores and ``attention``: ``{"sources": [... , "(own prompt)"],
    "weights": [[...] per target task]}``, the mean attention over each target's test rows.

    Example::

        entries = attempt_runs(ctx, load_suite("demo"), ["movie_sentiment"], [0, 1], AttemptConfig(steps=50),
                               PTConfig(kind="shallow", steps=50))
        entries[0].meta["attention"]["weights"]   # [[w_source_1, ..., w_own]]
    """
    from ipt_core.experiments.context import Bank, cached_bank
    from ipt_core.experiments.ipt_stages import pt_prompts
    from ipt_core.train.bank import RunConfig

    targets = list(targets)
    if not targets:
        raise CompareInputError("ATTEMPT needs at least one target task")
    if source_cfg.n_tokens != cfg.n_tokens:
        raise CompareInputError(f"ATTEMPT's target prompt has {cfg.n_tokens} vectors, its source prompts {source_cfg.n_tokens}")
    source_cfg = replace(source_cfg, kind="shallow")
    names = suite.names()
    if multi_task:
        pool = [n for n in names if n not in targets]
        runs = [(tuple(targets), s) for s in seeds]
    else:
        pool = [n for n in names if any(n != t for t in targets)]
        runs = [((t,), s) for t in targets for s in seeds]
    if not pool:
        raise CompareInputError(
            f"ATTEMPT{' (multi-task)' if multi_task else ''} needs source tasks: suite {suite.name!r} has no task "
            f"besides {targets}")
    ctx.stage(f"prompt tuning of {len(pool)} ATTEMPT source tasks")
    source_prompts, source_entries = pt_prompts(ctx, suite, [suite.task(n) for n in pool], source_seed, source_cfg)
    allowed_of = [[i for i, n in enumerate(pool) if n not in run_targets] for run_targets, _ in runs]
    variant = "multi" if multi_task else "single"
    specs = [attempt_spec(ctx, [suite.task(n) for n in rt], [(pool[i], source_entries[i].key) for i in allowed_of[k]],
                          s, cfg, variant) for k, (rt, s) in enumerate(runs)]

    def build(todo: list[int]) -> "Bank":
        ctx.stage(f"ATTEMPT ({variant}-task, {len(todo)} runs)")
        bank_names = list(dict.fromkeys(n for k in todo for n in runs[k][0]))
        allowed = torch.zeros((len(todo), len(pool)), dtype=torch.bool)
        for j, k in enumerate(todo):
            allowed[j, allowed_of[k]] = True
        method = Attempt(
            ctx.backbone, source_prompts,
            targets=[[_target_init(ctx.backbone, cfg, runs[k][1] + 1000 * i, suite.task(n)) for i, n in enumerate(runs[k][0])]
                     for k in todo],
            run_tasks=[[bank_names.index(n) for n in runs[k][0]] for k in todo],
            seeds=[runs[k][1] for k in todo], cfg=cfg, allowed=allowed,
        )
        return Bank(method, [suite.task(n) for n in bank_names], [RunConfig.of(runs[k][0], runs[k][1], cfg) for k in todo])

    def record(bank: "Bank", j: int, k: int, res):
        method, bank_names = bank.method, [t.name for t in bank.tasks]
        method.eval()  # every run holds its best state
        cols = allowed_of[k] + [len(pool)]
        rows_att = [torch.cat(_per_row(ctx.backbone, method.attention, suite.task(n).test, j, bank_names.index(n),
                                       ctx.device)).float()[:, cols].cpu() for n in runs[k][0]]  # [B_test, S_run + 1] each
        attention = torch.stack([r.mean(0) for r in rows_att])  # [T_run, S_run + 1]
        meta = {"tasks": list(runs[k][0]), "variant": variant, "seed": runs[k][1], "suite": suite.name,
                "trainable_params": method.trainable_params(j), "sources": [pool[i] for i in allowed_of[k]],
                "attention": {"sources": [pool[i] for i in allowed_of[k]] + [OWN_PROMPT],
                              "weights": attention.tolist()},
                "attention_entropy": [attention_entropy(r) for r in rows_att]} | _scores_meta(res, len(bank.runs), ctx.device)
        return meta, dict(res.state, attention=attention)

    return cached_bank(ctx, "attempt_run", specs, build, record)


# --------------------------------------------------------------------------------------------------
# VIP


def vip_spec(ctx: "Context", task: "Task", seed: int, cfg: VIPConfig) -> dict:
    """Everything that decides one VIP run."""
    return {"method": "vip", "code_version": VIP_VERSION, "backbone": ctx.backbone.identity(), "task": task.name,
            "task_data": task.data_hash(), "seed": seed, "config": cfg.to_json()}


def vip_runs(ctx: "Context", suite: "Suite", targets: Sequence[str], seeds: Sequence[int], cfg: VIPConfig) -> list["Entry"]:
    """VIP runs (``vip_run`` entries), one per (target, seed) in that order; the missing ones in one bank.

    Each entry's meta holds the scores and ``codebook_usage``: lookups per code over the task's
    test rows (counts; summed probabilities with ``eval_mode="expected"``).

    Example::

        entries = vip_runs(ctx, load_suite("demo"), ["sms_spam"], [0], VIPConfig(steps=50))
        len(entries[0].meta["codebook_usage"])   # 64
    """
    from ipt_core.experiments.context import Bank, cached_bank
    from ipt_core.train.bank import RunConfig

    wanted = [(suite.task(t), s) for t in targets for s in seeds]

    def build(todo: list[int]) -> "Bank":
        ctx.stage(f"VIP ({len(todo)} runs)")
        method = VIP(ctx.backbone, [_target_init(ctx.backbone, cfg, wanted[k][1], wanted[k][0]) for k in todo],
                     seeds=[wanted[k][1] for k in todo], cfg=cfg)
        return Bank(method, list({wanted[k][0].name: wanted[k][0] for k in todo}.values()),
                    [RunConfig.of((wanted[k][0].name,), wanted[k][1], cfg) for k in todo])

    def record(bank: "Bank", j: int, k: int, res):
        task, seed = wanted[k]
        method = bank.method  # every run holds its best state
        method.eval()  # reseeds the evaluation draws
        task_index = [t.name for t in bank.tasks].index(task.name)
        usage = torch.stack(_per_row(ctx.backbone, lambda r, t, e: method.code_usage(r, e), task.test, j,
                                     task_index, ctx.device)).sum(0)
        meta = {"task": task.name, "family": task.type, "seed": seed, "suite": suite.name,
                "trainable_params": method.trainable_params(j),
                "trainable_params_gradient": method.trainable_params(j, with_codebook=False),
                "codebook_usage": usage.tolist(), "codebook": codebook_stats(usage.tolist()),
                "eval_mode": cfg.eval_mode} | _scores_meta(res, len(bank.runs), ctx.device)
        return meta, res.state

    return cached_bank(ctx, "vip_run", [vip_spec(ctx, t, s, cfg) for t, s in wanted], build, record)


# --------------------------------------------------------------------------------------------------
# the comparison


def _ipt_rows(ctx: "Context", suite: "Suite", targets: Sequence[str], seeds: Sequence[int], s: CompareSettings) -> list[dict]:
    from ipt_core.experiments.ipt_stages import (
        ISTRun,
        find_subspaces,
        intrinsic_tuning,
        ist_spec,
        pt_prompts,
        subspaces_of,
    )

    others = [n for n in suite.names() if n not in targets]
    if not others:
        raise CompareInputError(f"ipt needs other tasks to find the subspace on: suite {suite.name!r} has none besides "
                                f"the compared ones; compare fewer tasks (--tasks)")
    other_tasks = [suite.task(n) for n in others]
    rows = []
    for seed in seeds:
        ctx.stage(f"IPT: prompt tuning of {len(others)} subspace tasks (seed {seed})")
        prompts, entries = pt_prompts(ctx, suite, other_tasks, seed, s.pt)
        found = find_subspaces(ctx, other_tasks, prompts, entries, [s.d_intrinsic], seed, s.msf, s.pt.kind)[s.d_intrinsic]
        space = subspaces_of(found, ["found"])["found"]
        runs = [ISTRun(suite.task(t), "unseen", "found", s.d_intrinsic, seed, found.key) for t in targets]
        new = sum(ctx.store.get(ist_spec(ctx, r, s.ist)) is None for r in runs)
        t0 = time.time()
        ist = intrinsic_tuning(ctx, runs, {(found.key, "found"): space}, s.ist, s.pt.kind)
        per_run = (time.time() - t0) / new if new else None
        for r, e in zip(runs, ist):
            secs = e.meta.get("bank_seconds")
            secs = secs / e.meta.get("bank_size", 1) if secs is not None else per_run
            rows.append({"method": "ipt", "task": r.task.name, "seed": seed, "test_acc": e.meta["test_acc"],
                         "test_f1": e.meta["test_f1"], "trainable_params": s.d_intrinsic, "seconds": secs})
    return rows


def _probe_params(backbone: "Backbone", task: "Task") -> int:
    n = len(task.labels)
    return (backbone.hidden_size + 1) * (1 if n == 2 else n)


def _prompt_params(backbone: "Backbone", cfg: PTConfig) -> int:
    return int(np.prod(backbone.prompt_shape(cfg.n_tokens, cfg.kind)))


def summarise(rows: Sequence[dict], methods: Sequence[str]) -> list[dict]:
    """Per method: test accuracy and macro-F1 as mean and std (ddof 0) over seeds of the mean over tasks;
    trainable parameters per task and seconds per run, averaged over rows.

    Example::

        summarise([{"method": "pt", "task": "a", "seed": 0, "test_acc": 0.5, "test_f1": 0.4,
                    "trainable_params": 10, "seconds": 1.0}], ["pt"])[0]["test_acc_mean"]   # 0.5
    """
    out = []
    for m in methods:
        sel = [r for r in rows if r["method"] == m]
        if not sel:
            continue
        seeds = sorted({r["seed"] for r in sel})
        acc = [float(np.mean([r["test_acc"] for r in sel if r["seed"] == s])) for s in seeds]
        f1 = [float(np.mean([r["test_f1"] for r in sel if r["seed"] == s])) for s in seeds]
        secs = [r["seconds"] for r in sel if r["seconds"] is not None]
        params = float(np.mean([r["trainable_params"] for r in sel]))
        out.append({"method": m, "test_acc_mean": float(np.mean(acc)), "test_acc_std": float(np.std(acc)),
                    "test_f1_mean": float(np.mean(f1)), "test_f1_std": float(np.std(f1)),
                    "trainable_params": int(params) if params.is_integer() else params,
                    "seconds": float(np.mean(secs)) if secs else None,
                    "n_tasks": len({r["task"] for r in sel}), "n_seeds": len(seeds)})
    return out


def attention_summary(entries: Sequence["Entry"], targets: Sequence[str], suite: "Suite") -> dict | None:
    """The Methods page's ``attempt_attention``: mean (over seeds) attention of each target on each source.

    Columns: the sources any target used, in suite order, then ``"(own prompt)"``; a source a target
    may not use (itself) has weight 0.
    """
    if not entries:
        return None
    used = {n for e in entries for n in e.meta["attention"]["sources"] if n != OWN_PROMPT}
    sources = [n for n in suite.names() if n in used] + [OWN_PROMPT]
    weights = []
    for t in targets:
        rows = []
        for e in entries:
            if t in e.meta["tasks"]:
                att = e.meta["attention"]
                w = dict(zip(att["sources"], att["weights"][e.meta["tasks"].index(t)]))
                rows.append([w.get(n, 0.0) for n in sources])
        weights.append(np.mean(rows, axis=0).tolist() if rows else [0.0] * len(sources))
    return {"targets": list(targets), "sources": sources, "weights": weights}


def codebook_summary(entries: Sequence["Entry"]) -> tuple[list[float] | None, list[dict]]:
    """The Methods page's ``vip_codebook_usage`` and the raw counts per run.

    Code indices mean nothing across runs (every run has its own codebook), so each run's shares of
    lookups are sorted from the most used code down before averaging: entry ``i`` is the mean share
    of a run's ``i``-th most used code, which shows how many codes carry the lookups.
    """
    if not entries:
        return None, []
    shares = []
    raw = []
    for e in entries:
        counts = np.asarray(e.meta["codebook_usage"], dtype=float)
        shares.append(np.sort(counts / max(counts.sum(), 1e-12))[::-1])
        raw.append({"task": e.meta["task"], "seed": e.meta["seed"], "counts": counts.tolist()})
    return np.mean(shares, axis=0).tolist(), raw


def compare_spec(ctx: "Context", suite: "Suite", targets: Sequence[str], methods: Sequence[str], seeds: Sequence[int],
                 settings: CompareSettings) -> dict:
    """Everything that decides a comparison (the other tasks of the suite too: ATTEMPT's sources and IPT's subspace)."""
    return {"method": "method_compare", "code_version": COMPARE_VERSION, "backbone": ctx.backbone.identity(),
            "tasks": [[n, suite.task(n).data_hash()] for n in targets],
            "suite_tasks": [[t.name, t.data_hash()] for t in suite.tasks],
            "methods": list(methods), "seeds": list(seeds), "settings": settings.to_json()}


def compare(ctx: "Context", suite: "Suite", task_names: Sequence[str] | None, methods: Sequence[str] = DEFAULT_COMPARE_METHODS,
            seeds: Sequence[int] = (0,), settings: CompareSettings = CompareSettings()) -> "Entry":
    """Compare methods on ``task_names`` (default: every task of the suite); a ``method_compare`` entry.

    Meta: ``suite``, ``tasks``, ``methods``, ``seeds``, ``rows`` (one per method x task x seed:
    ``method, task, seed, test_acc, test_f1, trainable_params, seconds``), ``summary`` (see
    :func:`summarise`), ``attempt_attention`` (:func:`attention_summary`, from ``attempt``, else
    ``attempt-mt``), ``vip_codebook_usage`` and ``vip_codebook_counts`` (:func:`codebook_summary`).
    A repeated request is served from the store; every stage is cached on its own too.

    Example::

        ctx = Context.create(Store(), "encoder-sim")
        e = compare(ctx, load_suite("demo"), ["movie_sentiment", "sms_spam"], ["pt", "attempt", "vip"], [0, 1],
                    CompareSettings().with_budget(steps=100))
        e.meta["summary"][0]   # {"method": "pt", "test_acc_mean": ..., "test_acc_std": ..., ...}
    """
    methods = list(dict.fromkeys(methods))
    unknown = [m for m in methods if m not in COMPARE_METHODS]
    if unknown or not methods:
        raise CompareInputError(f"unknown method(s) {unknown}; choose from {', '.join(COMPARE_METHODS)}" if unknown
                                else "no methods to compare")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise CompareInputError("compare needs at least one seed")
    targets = list(task_names) if task_names else suite.names()
    for n in targets:
        suite.task(n)
    spec = compare_spec(ctx, suite, targets, methods, seeds, settings)
    return ctx.store.memo("method_compare", spec, lambda: _compare_meta(ctx, suite, targets, methods, seeds, settings),
                          command=ctx.command)


def _compare_meta(ctx: "Context", suite: "Suite", targets: list[str], methods: list[str], seeds: list[int],
                  settings: CompareSettings) -> dict:
    """The ``method_compare`` entry's meta: every method's rows (each stage cached on its own)."""
    from ipt_core.experiments.tune import get_baseline, tune

    t0 = time.time()
    bb, s = ctx.backbone, settings
    rows: list[dict] = []
    attempt_entries: dict[str, list] = {}
    vip_entries: list = []
    for m in methods:
        if m in ("zero-shot", "probe"):
            ctx.stage(m)
            kind = "zero_shot" if m == "zero-shot" else "probe"
            for n in targets:
                task = suite.task(n)
                meta = get_baseline(ctx.store, kind, bb, task, device=ctx.device, command=ctx.command).meta
                params = 0 if m == "zero-shot" else _probe_params(bb, task)
                rows += [{"method": m, "task": n, "seed": sd, "test_acc": meta["test_acc"], "test_f1": meta["test_f1"],
                          "trainable_params": params, "seconds": meta.get("seconds")} for sd in seeds]
        elif m == "pt":
            ctx.stage("prompt tuning")
            report = tune(ctx.store, suite, targets, seeds, s.pt, backbone=bb, device=str(ctx.device), progress=ctx.progress,
                          should_cancel=ctx.should_cancel, command=ctx.command, with_baselines=False)
            for run in report.runs:
                meta = ctx.store.get(run["key"]).meta
                rows.append({"method": "pt", "task": run["task"], "seed": run["seed"], "test_acc": meta["test_acc"],
                             "test_f1": meta["test_f1"], "trainable_params": _prompt_params(bb, s.pt),
                             "seconds": meta["bank_seconds"] / meta.get("bank_size", 1)})
        elif m == "ipt":
            rows += _ipt_rows(ctx, suite, targets, seeds, s)
        elif m in ("attempt", "attempt-mt"):
            multi = m == "attempt-mt"
            entries = attempt_runs(ctx, suite, targets, seeds, s.attempt, s.pt, multi_task=multi, source_seed=s.source_seed)
            attempt_entries[m] = entries
            for e in entries:
                per_task = e.meta["trainable_params"] / len(e.meta["tasks"])
                for n in e.meta["tasks"]:
                    pt_ = e.meta["per_task"][n]
                    rows.append({"method": m, "task": n, "seed": e.meta["seed"], "test_acc": pt_["test_acc"],
                                 "test_f1": pt_["test_f1"], "trainable_params": int(per_task) if per_task.is_integer() else per_task,
                                 "seconds": e.meta["seconds"] / len(e.meta["tasks"])})
        elif m == "vip":
            vip_entries = vip_runs(ctx, suite, targets, seeds, s.vip)
            rows += [{"method": "vip", "task": e.meta["task"], "seed": e.meta["seed"], "test_acc": e.meta["test_acc"],
                      "test_f1": e.meta["test_f1"], "trainable_params": e.meta["trainable_params"],
                      "seconds": e.meta["seconds"]} for e in vip_entries]
    order = {m: i for i, m in enumerate(methods)}
    rows.sort(key=lambda r: (order[r["method"]], targets.index(r["task"]), r["seed"]))
    usage, counts = codebook_summary(vip_entries)
    meta = {"suite": suite.name, "tasks": targets, "methods": methods, "seeds": seeds, "rows": rows,
            "summary": summarise(rows, methods),
            "attempt_attention": attention_summary(attempt_entries.get("attempt") or attempt_entries.get("attempt-mt") or [],
                                                   targets, suite),
            "vip_codebook_usage": usage, "vip_codebook_counts": counts,
            "diagnostics": diagnostics(attempt_entries.get("attempt") or attempt_entries.get("attempt-mt") or [], vip_entries),
            "prompt_kind": s.pt.kind, "settings": s.to_json(), "seconds": time.time() - t0, "device": str(ctx.device)}
    return meta


def compare_json(entry: "Entry") -> dict:
    """The CLI's JSON: ``{"methods", "rows", "summary", "diagnostics", "key"}`` (diagnostics: ATTEMPT's
    attention entropy relative to uniform, VIP's codes used and perplexity; see :func:`diagnostics`)."""
    m = entry.meta
    return {"methods": m["methods"], "rows": m["rows"], "summary": m["summary"], "diagnostics": m.get("diagnostics", {}),
            "key": entry.key}


def format_summary(summary: Sequence[dict]) -> str:
    """A plain-text table of :func:`summarise`'s rows."""
    def cell(v, spec):
        return "n/a" if v is None else format(v, spec)

    lines = [f"{'method':>12}  {'test acc':>15}  {'test F1':>15}  {'params/task':>12}  {'s/run':>8}"]
    for r in summary:
        lines.append(f"{r['method']:>12}  {r['test_acc_mean']:>7.3f} ± {r['test_acc_std']:<5.3f}  "
                     f"{r['test_f1_mean']:>7.3f} ± {r['test_f1_std']:<5.3f}  {cell(r['trainable_params'], '>12,.0f')}  "
                     f"{cell(r['seconds'], '>8.1f')}")
    return "\n".join(lines)
