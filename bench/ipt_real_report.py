"""bench/IPT_REAL.md from the store and ``bench/ipt_real_runs.json`` (``python bench/ipt_real.py --report``).

Every number is read from the stored entries that ``bench/ipt_real.py`` logged; a run that is not
in the store (another machine's) is listed with its command and left out of the tables.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
    """Pooled gain recovery: sum over tasks of (IST - zero-shot) / sum of (PT - zero-shot), one number per
    seed. Unlike the mean of per-task ratios it is not ruled by a task whose PT barely beats zero-shot
    (one such task at a gap of 0.01 gives a ratio of -11)."""
    f = {"test": ("ist_test_acc", "pt_test_acc", "zero_shot_test_acc"),
         "dev": ("ist_dev_acc", "pt_dev_acc", "zero_shot_dev_acc")}[split]
    vals = []
    for s in sorted({r["seed"] for r in rows}):
        sel = [r for r in rows if r["seed"] == s and all(r.get(k) is not None for k in f)]
        gap = sum(r[f[1]] - r[f[2]] for r in sel)
        if sel and gap > 1e-9:
            vals.append(sum(r[f[0]] - r[f[2]] for r in sel) / gap)
    return vals


def _pooled(rows: list[dict], split: str = "test") -> str:
    """:func:`_pooled_per_seed`, mean (± std) over seeds."""
    vals = _pooled_per_seed(rows, split)
    if not vals:
        return "n/a"
    return f"{np.mean(vals):.2f}" + (f" ± {np.std(vals):.2f}" if len(vals) > 1 else "")


def _sel(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def _main_section(run: dict, e) -> list[str]:
    rows, split = e.meta["rows"], run["split"]
    held = split["heldout_family"]
    held_tasks = [t for t in split["unseen"] if any(r["task"] == t and r["family"] == held for r in rows)]
    kind = e.meta["prompt_kind"]
    out = [f"### {kind} prompts: recovery versus d_I", "",
           f"`{run['command']}`: {run['seconds']:.0f} s wall on {run['device']} (load average {run['load_before']} before, "
           f"{run['load_after']} after; {run['date']}); seeds {e.meta['seeds']}; store key `{e.key[:16]}`.", "",
           "Cells: mean over tasks (± std over seeds where there are several; the number of tasks in brackets). "
           "Recovery = IST/PT test accuracy; gain recovery = (IST − zero-shot)/(PT − zero-shot), over tasks where PT "
           "beats zero-shot; *dev* = the same on the dev split (what settings are chosen on).", "",
           "*Pooled* gain = Σ(IST − zero-shot) / Σ(PT − zero-shot) over the tasks (per seed): it is not ruled by a "
           "task whose PT barely beats zero-shot, as the mean of per-task ratios (*mean gain*) can be.", "",
           "| d_I | subspace | seen recovery | seen mean gain | seen pooled gain | seen pooled gain (dev) | unseen recovery | "
           "unseen mean gain | unseen pooled gain | unseen pooled gain (dev) | held-out family: pooled gain |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for d in e.meta["dims"]:
        for sub in ("found", "random"):
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
    return out + [""]


def _ablation_rows(label: str, e) -> str:
    rows = e.meta["rows"]
    s, u = _sel(rows, subspace="found", setting="seen"), _sel(rows, subspace="found", setting="unseen")
    rs, ru = _sel(rows, subspace="random", setting="seen"), _sel(rows, subspace="random", setting="unseen")
    return (f"| {label} | {_pooled(s, 'dev')} | {_pooled(u, 'dev')} | {_pooled(s)} | {_pooled(u)} | {_pooled(rs)} | {_pooled(ru)} | "
            f"{_cell(s, 'gain_recovery')} | {_cell(u, 'gain_recovery')} |")


def write_report(store: Store, runs_log: Path, out: Path) -> None:
    runs = json.loads(runs_log.read_text()) if runs_log.exists() else []
    lines = ["# IPT on the real suite (30 tasks)", "",
             "Written by `python bench/ipt_real.py --report` from the store and `bench/ipt_real_runs.json`; each "
             "section names the command that made it and its wall time. Model: the packaged all-MiniLM-L6-v2 "
             "(encoder-sim backbone).", ""]
    missing = []
    split_said = False
    for run in runs:
        entries = [(label, store.get(key)) for label, key in run["entries"]]
        if any(e is None for _, e in entries):
            missing.append(run["command"])
            continue
        if not split_said:
            sp = run["split"]
            lines += ["## Split", "",
                      f"Training ({len(sp['train'])}): {', '.join(sp['train'])}.  ",
                      f"Seen (re-tuned on a new few-shot sample, data seed 1; {len(sp['seen'])}): {', '.join(sp['seen'])}.  ",
                      f"Unseen ({len(sp['unseen'])}; every family but `{sp['heldout_family']}` has a relative in training, "
                      f"`{sp['heldout_family']}` is held out whole): {', '.join(sp['unseen'])}.", ""]
            split_said = True
        if run["ablation"] == "main":
            lines += _main_section(run, entries[0][1])
        elif run["ablation"] == "task-count":
            e = entries[0][1]
            rows = e.meta["rows"]
            lines += [f"### Recovery versus the number of training tasks ({run['prompt_kind']}, d_I = {e.meta['d']})", "",
                      f"`{run['command']}`: {run['seconds']:.0f} s wall (load {run['load_before']} → {run['load_after']}).", "",
                      "Found subspace; pooled gain recovery; the random control (at the full size) in the last row.", "",
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
        else:
            lines += [f"### Ablation: {run['ablation']} ({run['prompt_kind']}, d_I = {entries[0][1].meta['dims'][0]})", "",
                      f"`{run['command']}`: {run['seconds']:.0f} s wall (load {run['load_before']} → {run['load_after']}).", "",
                      "Pooled gain recovery unless said; the dev columns are what the default is chosen on.", "",
                      "| setting | seen (dev) | unseen (dev) | seen | unseen | random: seen | random: unseen | seen mean gain | unseen mean gain |",
                      "|---|---|---|---|---|---|---|---|---|"]
            lines += [_ablation_rows(label, e) for label, e in entries] + [""]
    if missing:
        lines += ["## Runs not in this store", ""] + [f"- `{c}`" for c in missing] + [""]
    out.write_text("\n".join(lines) + "\n")
    print(out.read_text())
