"""bench/IPT_REAL.md from the store and ``bench/ipt_real_runs.json`` (``python bench/ipt_real.py --report``).

Every number is read from the stored entries that ``bench/ipt_real.py`` logged; a run that is not
in the store (another machine's) is listed with its command and left out of the tables.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ipt_core.analysis.convergence import plateau_step, run_finished
from ipt_core.analysis.metrics import pooled_gain_recovery
from ipt_core.analysis.recovery_summary import dim_summary, summarise
from ipt_core.config.ipt import SUBSPACES, MSFConfig
from ipt_core.store import Store


def _fmt(v, digits: int = 2) -> str:
    return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.{digits}f}"


def _per_seed(rows: list[dict], field: str) -> list[float]:
    """Mean of ``field`` over tasks, one number per seed (None values left out)."""
    out = []
    for s in sorted({r["seed"] for r in rows}):
        v = [r[field] for r in rows if r["seed"] == s and r.get(field) is not None]
        if v:
            out.append(float(np.mean(v)))
    return out


def _cell(rows: list[dict], field: str) -> str:
    """``mean ± std`` over seeds (``mean`` alone for one seed), with the task count."""
    v = _per_seed(rows, field)
    if not v:
        return "n/a"
    n = len({r["task"] for r in rows if r.get(field) is not None})
    spread = f" ± {np.std(v):.2f}" if len(v) > 1 else ""
    return f"{np.mean(v):.2f}{spread} ({n})"


def _pooled_per_seed(rows: list[dict], split: str = "test") -> list[float]:
    """Pooled gain recovery (:func:`ipt_core.analysis.metrics.pooled_gain_recovery`), one number per seed."""
    vals = [pooled_gain_recovery([r for r in rows if r["seed"] == s], split) for s in sorted({r["seed"] for r in rows})]
    return [v for v in vals if not np.isnan(v)]


def _pooled(rows: list[dict], split: str = "test") -> str:
    """:func:`_pooled_per_seed`, mean (± std) over seeds."""
    vals = _pooled_per_seed(rows, split)
    if not vals:
        return "n/a"
    return f"{np.mean(vals):.2f}" + (f" ± {np.std(vals):.2f}" if len(vals) > 1 else "")


def _sel(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def _subspaces(rows) -> list[str]:
    """The subspaces an entry's rows tuned in, in the usual order (found, linear, random)."""
    return [s for s in SUBSPACES if any(r["subspace"] == s for r in rows)]


def _finished_flag(store: Store, r: dict) -> bool | None:
    """A row's finished flag: recorded, else read from its IST run's dev curve (None: not in the store)."""
    if r.get("finished") is not None:
        return bool(r["finished"])
    ist = store.get(r["ist_key"]) if r.get("ist_key") else None
    return run_finished(ist.meta) if ist else None


def _main_section(run: dict, e, store: Store, msf: str = "", default: bool = True) -> list[str]:
    rows, split = e.meta["rows"], run["split"]
    held = split["heldout_family"]
    held_tasks = [t for t in split["unseen"] if any(r["task"] == t and r["family"] == held for r in rows)]
    kind = e.meta["prompt_kind"]
    title = f"### {kind} prompts: recovery versus d_I" + (f" (MSF: {msf}{'; the defaults' if default else ''})" if msf else "")
    out = [title, "",
           f"`{run['command']}`: {run['seconds']:.0f} s wall on {run['device']} (load average {run['load_before']} before, "
           f"{run['load_after']} after; {run['date']}); seeds {e.meta['seeds']}; store key `{e.key[:16]}` (every run's wall time: "
           f"*Runs* above); IST: {_ist_label(e)}.", "",
           *_pt_convergence(e),
           "Cells: mean over tasks (± std over seeds where there are several; the number of tasks in brackets). "
           "Recovery = IST/PT test accuracy; gain recovery = (IST − zero-shot)/(PT − zero-shot), over tasks where PT "
           "beats zero-shot; *dev* = the same on the dev split (what settings are chosen on).", "",
           "*Pooled* gain = Σ(IST − zero-shot) / Σ(PT − zero-shot) over the tasks (per seed): it is not ruled by a "
           "task whose PT barely beats zero-shot, as the mean of per-task ratios (*mean gain*) can be.", "",
           "| d_I | subspace | seen recovery | seen mean gain | seen pooled gain | seen pooled gain (dev) | unseen recovery | "
           "unseen mean gain | unseen pooled gain | unseen pooled gain (dev) | held-out family: pooled gain |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in e.meta["dims"]:
        for sub in _subspaces(rows):
            s = _sel(rows, d=d, subspace=sub, setting="seen")
            u = _sel(rows, d=d, subspace=sub, setting="unseen")
            h = [r for r in u if r["task"] in held_tasks]
            out.append(f"| {d} | {sub} | {_cell(s, 'recovery')} | {_cell(s, 'gain_recovery')} | {_pooled(s)} | {_pooled(s, 'dev')} | "
                       f"{_cell(u, 'recovery')} | {_cell(u, 'gain_recovery')} | {_pooled(u)} | {_pooled(u, 'dev')} | {_pooled(h)} |")
    out += ["", "Found minus random (test): mean gain recovery, and pooled gain recovery:", "",
            "| d_I | seen: mean gain | seen: pooled gain | unseen: mean gain | unseen: pooled gain |", "|---|---|---|---|---|"]
    for d in e.meta["dims"]:
        diff = []
        for setting in ("seen", "unseen"):
            fr, rr = _sel(rows, d=d, subspace="found", setting=setting), _sel(rows, d=d, subspace="random", setting=setting)
            f, r = _per_seed(fr, "gain_recovery"), _per_seed(rr, "gain_recovery")
            diff.append(_fmt(np.mean(f) - np.mean(r)) if f and r else "n/a")
            pf, pr = _pooled_per_seed(fr), _pooled_per_seed(rr)
            diff.append(_fmt(np.mean(pf) - np.mean(pr)) if pf and pr else "n/a")
        out.append(f"| {d} | " + " | ".join(diff) + " |")
    out += ["", "Per task (test accuracy; gain recovery of the found subspace per d_I):", "",
            "| task | family | setting | zero-shot | PT | " + " | ".join(f"d_I {d}" for d in e.meta["dims"]) + " |",
            "|---|---|---|---|---|" + "---|" * len(e.meta["dims"])]
    for setting in ("seen", "unseen"):
        for t in dict.fromkeys(r["task"] for r in rows if r["setting"] == setting):
            tr = _sel(rows, task=t, setting=setting, subspace="found")
            g = [_fmt(np.mean([r["gain_recovery"] for r in _sel(tr, d=d) if r["gain_recovery"] is not None] or [np.nan]))
                 for d in e.meta["dims"]]
            tag = setting + (" (held-out family)" if t in held_tasks else "")
            out.append(f"| {t} | {tr[0]['family']} | {tag} | {_fmt(np.mean([r['zero_shot_test_acc'] for r in tr]))} | "
                       f"{_fmt(np.mean([r['pt_test_acc'] for r in tr]))} | " + " | ".join(g) + " |")
    out += ["", "Smallest d_I that recovers 50% and 90% of PT's gain (pooled, test; dev in brackets; only the measured "
            "dimensions are candidates, so *d90 = 64* means between the next smaller one measured and 64):", "",
            "| subspace | setting | d50 | d90 |", "|---|---|---|---|"]
    test, dev = dim_summary(summarise(rows)), dim_summary(summarise(rows), "dev")
    show = lambda t, k: str(t[k]) if t[k] is not None else f"none up to {t['max_d']}"
    for sub in _subspaces(rows):
        for setting in ("seen", "unseen"):
            if setting in test.get(sub, {}):
                t, v = test[sub][setting], dev[sub][setting]
                out.append(f"| {sub} | {setting} | {show(t, 'd50')} ({show(v, 'd50')}) | {show(t, 'd90')} ({show(v, 'd90')}) |")
    return out + [""] + _ist_moves(store, e)


def _ist_moves(store: Store, e) -> list[str]:
    """Does intrinsic tuning move z? Dev accuracy at IST's first evaluation (z at its small random start),
    at the step it kept, and zero-shot's, per d_I x subspace x setting: an unseen task that starts below
    zero-shot and does not climb is the subspace's limit, not the schedule's."""
    out = ["IST's own progress (dev accuracy, mean over tasks and seeds): at its first evaluation (the start: the "
           "training tasks' centroid in the subspace's coordinates, or z near 0 for the paper's IST), at the step it "
           "kept, zero-shot's, the share of runs whose kept step beats their start, the share that **finished** (dev "
           "no longer rising over the last fifth of the run) and the training rows at which dev first came within 0.01 "
           "of its best (median over runs).", "",
           "| d_I | subspace | setting | IST dev at start | IST dev kept | zero-shot dev | runs that moved | finished | "
           "rows to plateau |",
           "|---|---|---|---|---|---|---|---|---|"]
    for d in e.meta["dims"]:
        for sub in _subspaces(e.meta["rows"]):
            for setting in ("seen", "unseen"):
                starts, kept, zs, moved, flags, plateau = [], [], [], 0, [], []
                for r in _sel(e.meta["rows"], d=d, subspace=sub, setting=setting):
                    ist = store.get(r["ist_key"]) if r.get("ist_key") else None
                    curve = (ist.meta.get("dev_curve") or []) if ist else []
                    if not curve or r.get("ist_dev_acc") is None:
                        continue
                    starts.append(curve[0][1])
                    kept.append(r["ist_dev_acc"])
                    zs.append(r["zero_shot_dev_acc"])
                    moved += r["ist_dev_acc"] > curve[0][1] + 1e-9
                    flags.append(_finished_flag(store, r))
                    per_step = ist.meta.get("rows_per_step", (e.spec.get("settings") or {}).get("ist", {}).get("batch_size", 16))
                    plateau.append(plateau_step(curve) * per_step)
                if starts:
                    fin = [f for f in flags if f is not None]
                    out.append(f"| {d} | {sub} | {setting} | {np.mean(starts):.3f} | {np.mean(kept):.3f} | "
                               f"{np.mean(zs):.3f} | {moved}/{len(starts)} | {sum(fin)}/{len(fin)} | {int(np.median(plateau))} |")
    return out + [""]


def _pt_unfinished(e) -> str:
    """PT prompts still rising on dev at their last step, per seed: training prompts (the subspace's input) and
    unseen references (the denominator of gain recovery); n/a for an entry stored before this was recorded."""
    per_seed = e.meta.get("pt_unfinished")
    if not per_seed:
        return "n/a"
    n_train, n_unseen = len(e.meta["train_tasks"]), len(e.meta["test_tasks"])
    return ", ".join(f"{len(v['train'])}/{n_train} · {len(v['unseen'])}/{n_unseen}" for v in per_seed.values())


def _dev_accs(rows: list[dict]) -> str:
    """Mean dev accuracy over the rows' tasks: zero-shot / PT / IST (what pooled gain recovery is a ratio of)."""
    if not rows:
        return "n/a"
    return " / ".join(f"{_mean([r[f] for r in rows if r.get(f) is not None]):.3f}"
                      for f in ("zero_shot_dev_acc", "pt_dev_acc", "ist_dev_acc"))


def _pt_convergence(e) -> list[str]:
    """A line naming the PT prompts still rising on dev at their last step, per seed (none for an old entry)."""
    per_seed = e.meta.get("pt_unfinished")
    if not per_seed:
        return []
    groups = (("train", "training", "train_tasks"), ("seen", "seen", "seen_tasks"), ("unseen", "unseen", "test_tasks"))
    parts = []
    for seed, v in per_seed.items():
        named = [f"{label} {len(v[k])}/{len(e.meta[field])}" + (f" ({', '.join(v[k])})" if v[k] else "")
                 for k, label, field in groups]
        parts.append(f"seed {seed}: " + "; ".join(named))
    return ["PT prompts still rising on dev over the last fifth of PT (not finished; `analysis.convergence.finished` on "
            "their stored dev curves): " + " · ".join(parts) + ".", ""]


ABLATION_HEADER = ("| setting | seen (dev) | unseen (dev) | seen | unseen | random: seen | random: unseen | seen mean gain | "
                   "unseen mean gain | unseen dev acc: zero-shot / PT / IST | PT unfinished: training · unseen |",
                   "|---|---|---|---|---|---|---|---|---|---|---|")


def _ablation_rows(label: str, e) -> str:
    rows = e.meta["rows"]
    s, u = _sel(rows, subspace="found", setting="seen"), _sel(rows, subspace="found", setting="unseen")
    rs, ru = _sel(rows, subspace="random", setting="seen"), _sel(rows, subspace="random", setting="unseen")
    return (f"| {label} | {_pooled(s, 'dev')} | {_pooled(u, 'dev')} | {_pooled(s)} | {_pooled(u)} | {_pooled(rs)} | {_pooled(ru)} | "
            f"{_cell(s, 'gain_recovery')} | {_cell(u, 'gain_recovery')} | {_dev_accs(u)} | {_pt_unfinished(e)} |")


def default_labels() -> set[str]:
    """The ablation labels (as ``bench/ipt_real.py`` names them) of the settings ``ipt`` uses with no flags."""
    m = MSFConfig()
    return {f"norm {m.norm}", f"alpha {m.alpha:g}", f"MSF task loss {'on' if m.task_loss else 'off'}"}


MSF_FIELDS = ("alpha", "norm", "task_loss")  # what the ablations vary


def _msf(e) -> dict | None:
    """The MSF settings an entry was computed with (a field left out of the key is at its default), or None."""
    msf = (e.spec.get("settings") or {}).get("msf") if isinstance(e.spec, dict) else None
    if msf is None:
        return None
    m = MSFConfig()
    return {f: msf.get(f, getattr(m, f)) for f in MSF_FIELDS}


def _msf_text(values: dict) -> str:
    parts = {"alpha": lambda v: f"alpha {v:g}", "norm": lambda v: f"norm {v}",
             "task_loss": lambda v: f"task loss {'on' if v else 'off'}"}
    return ", ".join(parts[f](v) for f, v in values.items())


SCHEDULE_FIELDS = (("pt", "steps"), ("msf", "steps"), ("msf", "hidden"))  # what the stage ablations vary


def _schedule_is_base(e) -> bool:
    """Whether an entry's PT and MSF schedules are ``bench/ipt_real.py``'s CPU ones (a field its stored settings
    leave out counts as the base's)."""
    from bench.ipt_real import settings_for  # the script's own schedules; it imports this module only when reporting

    settings = (e.spec.get("settings") or {}) if isinstance(e.spec, dict) else {}
    base = settings_for(e.meta.get("prompt_kind", "deep"), "cpu")
    return all((settings.get(stage) or {}).get(f, getattr(getattr(base, stage), f)) == getattr(getattr(base, stage), f)
               for stage, f in SCHEDULE_FIELDS)


def is_default(label: str, e) -> bool:
    """Whether an entry ran at the MSF settings ``ipt`` uses with no flags and at the script's CPU schedules of PT
    and MSF (read from its stored spec; by its label where the spec has no settings)."""
    msf = _msf(e)
    if msf is None:
        return label in default_labels()
    m = MSFConfig()
    return all(msf[f] == getattr(m, f) for f in MSF_FIELDS) and _schedule_is_base(e)


def _shared_msf(entries) -> str:
    """The MSF settings every entry shares (the ones an ablation did not vary), as text."""
    settings = [_msf(e) for _, e in entries]
    if not settings or any(s is None for s in settings):
        return ""
    return _msf_text({f: settings[0][f] for f in MSF_FIELDS if all(s[f] == settings[0][f] for s in settings)})


def _mean(vals: list[float]) -> float:
    return float(np.mean(vals)) if vals else float("nan")


def _runs_table(runs: list[dict], store: Store) -> list[str]:
    out = ["## Runs", "",
           "Every command below landed its results in the store; *wall* is what it took with the store as it found it "
           "(a command run after another reuses the PT prompts, subspaces and IST runs they share, so a `--seeds 2` run "
           "after the `--seeds 1` one costs the second seed alone). Load average: the 1-minute figure before and after, "
           "on 2 cores.", "",
           "| command | wall | load before → after | device | date | in this store |", "|---|---|---|---|---|---|"]
    for run in runs:
        here = all(store.get(key) is not None for _, key in run["entries"])
        out.append(f"| `{run['command']}` | {run['seconds']:.0f} s | {run['load_before']} → {run['load_after']} | "
                   f"{run['device']} | {run['date']} | {'yes' if here else 'no'} |")
    return out + [""]


def _ist_label(e) -> str:
    """The IST schedule an entry ran (its stored settings): coordinates, steps x rows, learning rate."""
    ist = (e.spec.get("settings") or {}).get("ist") or {}
    if not ist:
        return "n/a"
    coords = ist.get("coords", "raw")
    return f"{'spread' if coords == 'spread' else 'paper (z)'} {ist.get('steps')}x{ist.get('batch_size')} lr {ist.get('lr')}"


def _kinds_table(mains: dict[tuple[str, str], tuple[dict, object]], store: Store) -> list[str]:
    """Both prompt kinds (and IST schedules) side by side: pooled gain recovery per subspace, seen / unseen / held out."""
    out = ["## Side by side", "",
           "Pooled gain recovery, mean ± std over seeds (0 = zero-shot's accuracy, 1 = PT's), in the found / linear / "
           "random subspaces (n/a: not run). The dev columns are what settings are chosen on; the rest is test. "
           "*Finished*: IST runs whose dev accuracy had stopped rising, of all the entry's runs at that d_I.", "",
           "| prompt kind | MSF | IST | d_I | seeds | seen: found / linear / random | seen (dev): found / linear | "
           "unseen: found / linear / random | unseen (dev): found / linear / random | held-out family: found | finished |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (kind, msf, ist), (run, e) in mains.items():
        rows = e.meta["rows"]
        held = run["split"]["heldout_family"]
        for d in e.meta["dims"]:
            pick = lambda sub, setting: _sel(rows, d=d, subspace=sub, setting=setting)
            trio = lambda setting, split="test": " / ".join(_pooled(pick(sb, setting), split) if pick(sb, setting) else "n/a"
                                                            for sb in SUBSPACES)
            h = [r for r in pick("found", "unseen") if r["family"] == held]
            flags = [f for f in (_finished_flag(store, r) for r in _sel(rows, d=d)) if f is not None]
            fin = f"{sum(flags)}/{len(flags)}" if flags else "not recorded"
            seen_dev = " / ".join(_pooled(pick(sb, "seen"), "dev") if pick(sb, "seen") else "n/a" for sb in ("found", "linear"))
            out.append(f"| {kind} | {msf or 'n/a'} | {ist} | {d} | {len(e.meta['seeds'])} | {trio('seen')} | {seen_dev} | "
                       f"{trio('unseen')} | {trio('unseen', 'dev')} | {_pooled(h)} | {fin} |")
    return out + [""]


def _glance_table(ablations: list[tuple[str, str, str, object]]) -> list[str]:
    """Every ablation setting in one table, the default marked, and what the dev split prefers."""
    out = ["## Ablations at a glance", "",
           "Found subspace, pooled gain recovery (mean ± std over seeds); **bold**: the setting `ipt` uses with no flags. "
           "*dev prefers*: the setting with the higher dev-split score for unseen tasks (the question this tool asks) "
           "and for seen tasks; a difference within the seeds' spread is called a tie.", "",
           "| prompt kind | ablation | setting | seeds | seen (dev) | unseen (dev) | seen (test) | unseen (test) |",
           "|---|---|---|---|---|---|---|---|"]
    by_ablation: dict[tuple[str, str], list[tuple[str, object]]] = {}
    for kind, ablation, label, e in ablations:
        by_ablation.setdefault((kind, ablation), []).append((label, e))
    verdicts = []
    for (kind, ablation), items in by_ablation.items():
        scores = {}
        for label, e in items:
            rows = e.meta["rows"]
            s, u = _sel(rows, subspace="found", setting="seen"), _sel(rows, subspace="found", setting="unseen")
            name = f"**{label}**" if is_default(label, e) else label
            out.append(f"| {kind} | {ablation} | {name} | {len(e.meta['seeds'])} | {_pooled(s, 'dev')} | {_pooled(u, 'dev')} | "
                       f"{_pooled(s)} | {_pooled(u)} |")
            scores[label] = {k: _pooled_per_seed(v, "dev") for k, v in (("seen", s), ("unseen", u))}
        for setting in ("unseen", "seen"):
            ranked = sorted(scores, key=lambda lab: _mean(scores[lab][setting]), reverse=True)
            if len(ranked) < 2:
                continue
            best, second = scores[ranked[0]][setting], scores[ranked[1]][setting]
            spread = max([float(np.std(v)) for v in (best, second) if len(v) > 1] or [0.0])
            tie = len(best) > 1 and _mean(best) - _mean(second) <= spread
            verdicts.append(f"- {kind}, {ablation}, {setting} tasks (dev): {ranked[0]} ({_mean(best):.2f})"
                            + (f", a tie with {ranked[1]} ({_mean(second):.2f}; seeds' spread {spread:.2f})" if tie
                               else f" over {ranked[1]} ({_mean(second):.2f})"))
    return out + ["", "*dev prefers*:", ""] + verdicts + [""]


def write_report(store: Store, runs_log: Path, out: Path) -> None:
    runs = json.loads(runs_log.read_text()) if runs_log.exists() else []
    lines = ["# IPT on the real suite (30 tasks)", "",
             "Written by `python bench/ipt_real.py --report` from the store and `bench/ipt_real_runs.json`; each "
             "section names the command that made it and its wall time. Model: the packaged all-MiniLM-L6-v2 "
             "(encoder-sim backbone).", ""]
    lines += _runs_table(runs, store)
    present = []
    for run in runs:
        entries = [(label, store.get(key)) for label, key in run["entries"]]
        if all(e is not None for _, e in entries):
            present.append((run, entries))
    if present:
        sp = present[0][0]["split"]
        lines += ["## Split", "",
                  f"Training ({len(sp['train'])}): {', '.join(sp['train'])}.  ",
                  f"Seen (re-tuned on a new few-shot sample, data seed 1; {len(sp['seen'])}): {', '.join(sp['seen'])}.  ",
                  f"Unseen ({len(sp['unseen'])}; every family but `{sp['heldout_family']}` has a relative in training, "
                  f"`{sp['heldout_family']}` is held out whole): {', '.join(sp['unseen'])}.", ""]
    # per prompt kind and MSF settings, the main run with the most seeds (then dims); the defaults first
    mains: dict[tuple[str, str], tuple[dict, object]] = {}
    for run, entries in present:
        if run["ablation"] == "main":
            e = entries[0][1]
            slot = (e.meta["prompt_kind"], _shared_msf(entries), _ist_label(e))
            rank = lambda x: (len(x.meta["seeds"]), len(x.meta["dims"]))
            if slot not in mains or rank(e) >= rank(mains[slot][1]):
                mains[slot] = (run, e)
    mains = dict(sorted(mains.items(), key=lambda kv: (kv[0][0], not is_default("", kv[1][1]), kv[0][1])))
    if mains:
        lines += _kinds_table(mains, store)
    ablations = []
    for run, entries in present:
        if run["ablation"] not in ("main", "task-count"):
            ablations += [(run["prompt_kind"], run["ablation"], label, e) for label, e in entries]
    if ablations:
        lines += _glance_table(ablations)
    for (kind, msf, ist), (run, e) in mains.items():
        lines += _main_section(run, e, store, msf, is_default("", e))
    for run, entries in present:
        if run["ablation"] == "task-count":
            e = entries[0][1]
            rows = e.meta["rows"]
            parts = [(None, store.get(k)) for k in (e.spec.get("parts") or [])]  # its ipt_dims runs, one per size
            shared = _shared_msf(parts) if parts and all(pe is not None for _, pe in parts) else ""
            lines += [f"### Recovery versus the number of training tasks ({run['prompt_kind']}, d_I = {e.meta['d']}"
                      + (f"; MSF at {shared}" if shared else "") + ")", "",
                      f"`{run['command']}`: {run['seconds']:.0f} s wall (load {run['load_before']} → {run['load_after']}); "
                      f"seeds {e.meta['seeds']}.", "",
                      "Found subspace; pooled gain recovery (± std over seeds), the same seen and unseen tasks at every "
                      "size; the random control (at the full size) in the last row. The Recovery page draws this as a "
                      "curve with a band of ± one std.", "",
                      "| training tasks | seen (dev) | unseen (dev) | seen | unseen | seen recovery | unseen recovery |",
                      "|---|---|---|---|---|---|---|"]
            for n in e.meta["sizes"]:
                s = _sel(rows, n_train_tasks=n, subspace="found", setting="seen")
                u = _sel(rows, n_train_tasks=n, subspace="found", setting="unseen")
                lines.append(f"| {n} | {_pooled(s, 'dev')} | {_pooled(u, 'dev')} | {_pooled(s)} | "
                             f"{_pooled(u)} | {_cell(s, 'recovery')} | {_cell(u, 'recovery')} |")
            n = e.meta["sizes"][-1]
            s = _sel(rows, n_train_tasks=n, subspace="random", setting="seen")
            u = _sel(rows, n_train_tasks=n, subspace="random", setting="unseen")
            lines.append(f"| random subspace ({n}) | {_pooled(s, 'dev')} | {_pooled(u, 'dev')} | {_pooled(s)} | "
                         f"{_pooled(u)} | {_cell(s, 'recovery')} | {_cell(u, 'recovery')} |")
            lines.append("")
        elif run["ablation"] != "main":
            shared = _shared_msf(entries)
            lines += [f"### Ablation: {run['ablation']} ({run['prompt_kind']}, d_I = {entries[0][1].meta['dims'][0]}"
                      + (f"; MSF otherwise at {shared}" if shared else "") + ")", "",
                      f"`{run['command']}`: {run['seconds']:.0f} s wall (load {run['load_before']} → {run['load_after']}); "
                      f"seeds {entries[0][1].meta['seeds']}.", "",
                      "Pooled gain recovery unless said; the dev columns are what the default is chosen on. Found "
                      "subspace; *random*: the untrained decoder (n/a where the ablation ran without it). Gain recovery "
                      "is a ratio to each setting's own PT, so a setting that moves PT moves the denominator too: the "
                      "mean dev accuracies beside it show which of the two moved. *PT unfinished*: prompts whose dev "
                      "accuracy was still rising over the last fifth of PT (per seed).", "",
                      *ABLATION_HEADER]
            lines += [_ablation_rows(label, e) for label, e in entries] + [""]
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())
