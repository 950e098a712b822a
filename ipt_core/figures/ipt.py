"""Figure builders of the IPT experiments and the method comparison: recovery versus d_I (and
versus training tasks, held-out family), per-task recovery, intrinsic-tuning runs, seed
stability, methods side by side, ATTEMPT attention and VIP codebook usage.

Pure functions from plain records (an entry's ``meta``) to a table and a ``go.Figure`` drawn from
that table, as in :mod:`ipt_core.figures.pt`, which re-exports every name here.
"""
from __future__ import annotations

import math
from itertools import pairwise
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ipt_core.analysis.metrics import gain_recovery, pooled_gain_recovery, recovery
from ipt_core.analysis.recovery_summary import dim_summary, summarise
from ipt_core.config.ipt import SUBSPACES
from ipt_core.figures.plotting import (
    CHANCE_COLOUR,
    CHAR_PX,
    DESIGN_WIDTH,
    FULL_WIDTH,
    PX_PER_TASK,
    STANDOFF_PX,
    TICK_FONT_PX,
    X_TITLE_PX,
    as_float,
    chance_level,
    colour_map,
    curve_layout,
    heatmap_layout,
    label_counts,
    legend_below,
    no_chance_note,
    pstd,
    rgba,
    seeds_note,
    slot_angle,
    styled,
    text_px,
    tick_depth,
    wrap_label,
    x_axis_px,
)

PAPER_REFERENCE: tuple[dict, ...] = (
    {"d": 250, "setting": "seen", "recovery": 0.97},
    {"d": 250, "setting": "unseen", "recovery": 0.83},
    {"d": 5, "setting": "seen", "recovery": 0.87},
    {"d": 5, "setting": "unseen", "recovery": 0.65},
)
"""Qin et al.'s IPT recovery (BART-base, 100 training tasks): 97% / 83% at d_I = 250 (later
version), 87% / 65% at d_I = 5 (first version); seen / unseen tasks."""
PAPER_LABEL = "paper: BART-base, 100 tasks (Qin et al.)"

_SERIES_STYLE = {  # setting x subspace: colour and dash, fixed so every chart reads the same way
    ("seen", "found"): ("#1f77b4", "solid"),
    ("unseen", "found"): ("#d62728", "solid"),
    ("seen", "linear"): ("#1f77b4", "dash"),
    ("unseen", "linear"): ("#d62728", "dash"),
    ("seen", "random"): ("#1f77b4", "dot"),
    ("unseen", "random"): ("#d62728", "dot"),
}
# shapes differ: readable on single points too (the paper's reference points are open stars and hexagrams)
_SUBSPACE_MARKER = {"found": "circle", "linear": "diamond", "random": "x-thin-open"}
_SUBSPACE_HATCH = {"found": "", "linear": ".", "random": "/"}  # bars: found solid, linear dotted, random hatched


def _bar_marker(colour: str, subspace: Any) -> dict:
    """A bar's fill: the subspace's pattern (linear's dots small and dense: they show on a thin bar)."""
    pattern = {"shape": _SUBSPACE_HATCH.get(subspace, "x")}
    if subspace == "linear":
        pattern |= {"size": 5, "solidity": 0.45}
    return {"color": colour, "pattern": pattern}


SUBSPACE_WHAT = {
    "found": "the auto-encoder's subspace, learned from the training prompts (MSF)",
    "linear": "the top principal directions of the training prompts, PCA",
    "random": "an untrained decoder of the same d_I, the control",
}
SUBSPACE_LOOK = {"found": "circles, solid", "linear": "diamonds, dashed", "random": "crosses, dotted"}
SUBSPACE_BAR_LOOK = {"found": "solid bars", "linear": "dotted bars", "random": "hatched bars"}


def subspace_caption(subspaces: Sequence[str] = SUBSPACES, *, bars: bool = False) -> str:
    """The subspaces a chart shows, each with its look and what it is, for the chart's caption:
    ``"found (circles, solid): the auto-encoder's subspace, ...; linear (diamonds, dashed): the top
    principal directions of the training prompts, PCA; ..."``."""
    look = SUBSPACE_BAR_LOOK if bars else SUBSPACE_LOOK
    shown = [s for s in SUBSPACES if s in set(subspaces)] + sorted(set(subspaces) - set(SUBSPACES))
    return "; ".join(f"{s} ({look.get(s, 'purple')}): {SUBSPACE_WHAT.get(s, 'a subspace')}" for s in shown) + "."


def _series_name(setting: Any, subspace: Any, *notes: str) -> str:
    """``"seen tasks, linear subspace (PCA, one seed)"``: the legend's name of a series, its notes in brackets."""
    notes = (("PCA",) if subspace == "linear" else ()) + tuple(n for n in notes if n)
    return f"{setting} tasks, {subspace} subspace" + (f" ({', '.join(notes)})" if notes else "")


_INIT_STYLE = {"random": ("#7f7f7f", "PT from random init"), "ist": ("#2ca02c", "PT initialised from IST")}


# --------------------------------------------------------------------------------------------------
# recovery (IPT)


def _agg_over_seeds(df: pd.DataFrame, keys: list[str], value: str) -> pd.DataFrame:
    """Mean over tasks per seed, then mean and std over seeds (as the core's ``summary``)."""
    per_seed = df.dropna(subset=[value]).groupby(keys + ["seed"], sort=True)[value].mean().reset_index()
    g = per_seed.groupby(keys, sort=True)[value]
    out = g.agg(["mean", pstd, "count"]).reset_index().rename(columns={"count": "n_seeds", "pstd": "std"})
    out["std"] = out["std"].fillna(0.0)
    return out


def _pooled_over_seeds(rows: Sequence[Mapping], keys: list[str], split: str = "test") -> pd.DataFrame:
    """Pooled gain recovery (:func:`~ipt_core.analysis.metrics.pooled_gain_recovery`) per ``keys`` and seed, over the
    tasks; then mean and std over seeds. Columns: ``keys + [mean, std, n_seeds]``."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in keys + ["seed"]), []).append(r)
    per_seed = pd.DataFrame([dict(zip(keys + ["seed"], k), v=pooled_gain_recovery(g, split)) for k, g in groups.items()],
                            columns=keys + ["seed", "v"])
    per_seed = per_seed.dropna(subset=["v"])
    if per_seed.empty:
        return pd.DataFrame(columns=keys + ["mean", "std", "n_seeds"])
    out = per_seed.groupby(keys, sort=True)["v"].agg(["mean", pstd, "count"]).reset_index()
    out = out.rename(columns={"count": "n_seeds", "pstd": "std"})
    out["std"] = out["std"].fillna(0.0)
    return out


def recovery_table(rows: Sequence[Mapping], x: str = "d", summary: Mapping | None = None) -> pd.DataFrame:
    """Recovery and gain recovery per (x, setting, subspace): mean and std over seeds.

    ``rows`` are an ``ipt_*`` entry's ``meta["rows"]``. Per seed, a setting's score is the mean over
    tasks (gain recovery skips rows where it is null); mean and std are then over seeds. With
    ``x == "d"`` and the entry's ``summary``, the summary's numbers are used as they are (they are
    the producer's own). Metric ``pooled_gain_recovery`` is always computed from the rows (where they
    hold the accuracies): per seed, Σ(IST − zero-shot) / Σ(PT − zero-shot) over the tasks, then mean
    and std over seeds. Columns: ``x, setting, subspace, metric, mean, std, n_seeds``.

    Example:
        >>> rows = [{"d": 4, "setting": "seen", "subspace": "found", "task": "a", "seed": s,
        ...          "recovery": 0.8 + s / 10, "gain_recovery": None} for s in range(2)]
        >>> t = recovery_table(rows); t[["d", "metric", "mean"]].round(2).values.tolist()
        [[4, 'recovery', 0.85]]
    """
    cols = [x, "setting", "subspace", "metric", "mean", "std", "n_seeds"]
    out = []
    if summary and x == "d":
        for subspace, by_setting in summary.items():
            for setting, by_d in (by_setting or {}).items():
                for d, s in (by_d or {}).items():
                    for metric in ("recovery", "gain_recovery"):
                        m = as_float(s.get(metric))
                        if math.isnan(m):
                            continue
                        n = sum(1 for _ in {r.get("seed") for r in rows if str(r.get("d")) == str(d)
                                            and r.get("setting") == setting and r.get("subspace") == subspace})
                        out.append({x: int(d) if str(d).lstrip("-").isdigit() else d, "setting": setting,
                                    "subspace": subspace, "metric": metric, "mean": m,
                                    "std": as_float(s.get(f"{metric}_std")) if s.get(f"{metric}_std") is not None else 0.0,
                                    "n_seeds": n})
        df = pd.DataFrame(out, columns=cols)
        pooled = _pooled_over_seeds(rows, [x, "setting", "subspace"])
        if len(pooled):
            pooled["metric"] = "pooled_gain_recovery"
            pooled[x] = [int(v) if str(v).lstrip("-").isdigit() else v for v in pooled[x]]
            df = pd.concat([df, pooled[cols]], ignore_index=True) if len(df) else pooled[cols]
    else:
        df0 = pd.DataFrame([{x: r.get(x), "setting": r.get("setting"), "subspace": r.get("subspace"),
                             "seed": r.get("seed"), "recovery": as_float(r.get("recovery")),
                             "gain_recovery": as_float(r.get("gain_recovery"))} for r in rows])
        parts = []
        if len(df0):
            for metric in ("recovery", "gain_recovery"):
                a = _agg_over_seeds(df0, [x, "setting", "subspace"], metric)
                a["metric"] = metric
                parts.append(a)
            pooled = _pooled_over_seeds(rows, [x, "setting", "subspace"])
            if len(pooled):
                pooled["metric"] = "pooled_gain_recovery"
                parts.append(pooled)
        df = pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
    return df.sort_values(["metric", "subspace", "setting", x], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# had IST finished? (a row's ``finished`` flag: True, False, or None / absent where not recorded)

FINISHED_COLUMNS = ["subspace", "setting", "runs", "finished", "not_finished", "not_recorded", "finished_share",
                    "IST runs finished"]


def _finished_text(runs: int, done: int, not_done: int, unknown: int) -> str:
    if unknown == runs:
        return "not recorded"
    text = f"{done} of {runs - unknown}" + (" (not finished)" if not_done else "")
    return text + (f", {unknown} not recorded" if unknown else "")


def finished_table(rows: Sequence[Mapping]) -> pd.DataFrame:
    """The share of IST runs that had finished (dev accuracy no longer rising over the last fifth of the
    run: ``analysis.convergence.finished``), per subspace and setting: one run per row. A row without a
    flag (stored before it was recorded) counts as not recorded. Columns: ``subspace, setting, runs,
    finished, not_finished, not_recorded, finished_share`` (NaN where nothing is recorded) and ``IST runs
    finished`` (``"7 of 8 (not finished)"``, ``"not recorded"``), in the order found, linear, random.

    Example:
        >>> t = finished_table([{"subspace": "found", "setting": "seen", "finished": f} for f in (True, False)])
        >>> t[["runs", "finished", "IST runs finished"]].values.tolist()
        [[2, 1, '1 of 2 (not finished)']]
    """
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r.get("subspace"), r.get("setting")), []).append(r.get("finished"))
    order = {s: i for i, s in enumerate(SUBSPACES)}
    out = []
    for (sub, setting), flags in sorted(groups.items(), key=lambda kv: (order.get(kv[0][0], 9), str(kv[0][0]),
                                                                       str(kv[0][1]))):
        done = sum(1 for f in flags if f is True)
        not_done = sum(1 for f in flags if f is False)
        unknown = len(flags) - done - not_done
        out.append({"subspace": sub, "setting": setting, "runs": len(flags), "finished": done, "not_finished": not_done,
                    "not_recorded": unknown, "finished_share": done / (done + not_done) if done + not_done else math.nan,
                    "IST runs finished": _finished_text(len(flags), done, not_done, unknown)})
    return pd.DataFrame(out, columns=FINISHED_COLUMNS)


def unfinished_runs(finished: pd.DataFrame | None) -> tuple[int, int]:
    """``(runs not finished, runs whose flag is recorded)`` of a :func:`finished_table`."""
    if finished is None or finished.empty:
        return 0, 0
    return int(finished["not_finished"].sum()), int((finished["runs"] - finished["not_recorded"]).sum())


def finished_warning(finished: pd.DataFrame | None) -> str | None:
    """The label of a sweep where not every IST run finished (None where all did, or nothing is recorded):
    ``"IST had not finished in 1 of 8 runs (dev accuracy still rising over the last fifth): these
    recoveries are lower bounds."``"""
    n, m = unfinished_runs(finished)
    if not n:
        return None
    return (f"IST had not finished in {n} of {m} runs (dev accuracy still rising over the last fifth of the run): "
            "these recoveries are lower bounds.")


def pt_unfinished_note(meta: dict) -> str | None:
    """Where PT itself had not finished (an ``ipt_dims`` meta's ``pt_unfinished``, per seed): one line, or None
    where every PT prompt had stopped rising or the sweep predates the record. PT matters twice: its training
    prompts are what the subspace is found from, and its references are the 1 of gain recovery."""
    per_seed = meta.get("pt_unfinished")
    if not per_seed:
        return None
    sizes = {"train": len(meta.get("train_tasks") or []), "seen": len(meta.get("seen_tasks") or []),
             "unseen": len(meta.get("test_tasks") or [])}
    counts = {k: sum(len(v.get(k, [])) for v in per_seed.values()) for k in sizes}
    if not any(counts.values()):
        return None
    n_seeds = len(per_seed)
    what = ", ".join(f"{counts[k]} of {sizes[k] * n_seeds} {label}" for k, label in
                     (("train", "training prompts"), ("seen", "seen references"), ("unseen", "unseen references"))
                     if sizes[k])
    return (f"Prompt tuning had not finished everywhere: {what} were still rising on dev over the last fifth of PT"
            + (f" (over {n_seeds} seeds)" if n_seeds > 1 else "") + ". The subspace is found from the training "
            "prompts and gain recovery is measured against the references, so both can move with a longer PT.")


def finished_caption(finished: pd.DataFrame | None) -> str:
    """One line on whether IST had finished: per subspace and setting, or "not recorded"."""
    if finished is None or finished.empty:
        return ""
    if (finished["not_recorded"] == finished["runs"]).all():
        return ("IST runs finished: not recorded (stored before the flag was kept, and the runs' dev curves are not in "
                "this store).")
    parts = [f"{r.subspace} {r.setting} {r['IST runs finished']}" for _, r in finished.iterrows()]
    return ("IST runs finished (dev accuracy no longer rising over the last fifth of the run): " + "; ".join(parts)
            + ".")


def _finished_title(title: str, finished: pd.DataFrame | None) -> tuple[str, bool]:
    """``title`` with a second line "(not finished: ...)" where some IST run had not finished."""
    n, m = unfinished_runs(finished)
    if not n:
        return title, False
    line = f"(not finished: {n} of {m} IST runs still rising)"  # short: a ~560 px chart
    return (f"{title}<br><span style='font-size:12px'>{line}</span>" if title else line), True


def _unfinished_series(finished: pd.DataFrame | None) -> set[tuple]:
    if finished is None or finished.empty:
        return set()
    bad = finished[finished["not_finished"] > 0]
    return {(r.setting, r.subspace) for _, r in bad.iterrows()}


# --------------------------------------------------------------------------------------------------
# d50 / d90: the smallest d_I that recovers half and 90% of PT's gain


def sweep_dim_summary(meta: Mapping, split: str = "test") -> dict:
    """An ``ipt_dims`` meta's ``dim_summary`` (``dev_dim_summary`` for ``split == "dev"``), or, for an entry
    stored before it was kept, the same computed from its rows (``analysis.recovery_summary``)."""
    stored = meta.get("dim_summary" if split == "test" else "dev_dim_summary")
    if stored:
        return stored
    need = ("d", "subspace", "setting", "task", "seed", "recovery", "ist_test_acc", "pt_test_acc")
    rows = [dict(r, gain_recovery=r.get("gain_recovery")) for r in meta.get("rows") or []
            if all(r.get(k) is not None for k in need)]  # a row that lacks a score cannot count
    if not rows:
        return {}
    return dim_summary(summarise(rows), split)


DIM_COLUMNS = ["subspace", "setting", "d50: 50% of PT's gain", "d90: 90% of PT's gain", "largest d_I measured"]


def dim_threshold_table(dims: Mapping, finished: pd.DataFrame | None = None) -> pd.DataFrame:
    """The d50 / d90 summary of a sweep as a table: per subspace and setting, the smallest measured d_I whose
    pooled gain recovery reaches 50% and 90% of PT's gain, ``"none up to N"`` where no measured d_I does
    (N: the largest measured). ``dims``: :func:`sweep_dim_summary`'s ``{subspace: {setting: {"d50", "d90",
    "max_d"}}}``; ``finished`` (a :func:`finished_table`) adds the share of IST runs that finished. Columns:
    :data:`DIM_COLUMNS` (+ ``IST runs finished``), found, linear, random.

    Example:
        >>> t = dim_threshold_table({"found": {"seen": {"d50": 4, "d90": None, "max_d": 16}}})
        >>> t.iloc[0, 2:].tolist()
        ['4', 'none up to 16', 16]
    """
    order = {s: i for i, s in enumerate(SUBSPACES)}
    done = {} if finished is None else {(r.subspace, r.setting): r["IST runs finished"] for _, r in finished.iterrows()}
    out = []
    for sub in sorted(dims, key=lambda s: (order.get(s, 9), str(s))):
        for setting in sorted(dims[sub] or {}):
            c = dims[sub][setting] or {}
            top = c.get("max_d")
            text = {k: (str(c[k]) if c.get(k) is not None else f"none up to {top}") for k in ("d50", "d90")}
            row = {"subspace": sub, "setting": setting, DIM_COLUMNS[2]: text["d50"], DIM_COLUMNS[3]: text["d90"],
                   DIM_COLUMNS[4]: top}
            if finished is not None:
                row["IST runs finished"] = done.get((sub, setting), "not recorded")
            out.append(row)
    return pd.DataFrame(out, columns=DIM_COLUMNS + (["IST runs finished"] if finished is not None else []))


GAIN_TITLES = {"gain_recovery": "gain recovery: mean over tasks of (IST - ZS) / (PT - ZS)",
               "pooled_gain_recovery": "pooled gain recovery: Σ(IST - ZS) / Σ(PT - ZS)"}
# the panels' titles: short, for half of a ~560 px chart; the formulas go on the y axes
PANEL_TITLES = {"recovery": "recovery", "gain_recovery": "mean gain recovery", "pooled_gain_recovery": "pooled gain recovery"}
PANEL_Y_TITLES = {"recovery": "IST / PT (1 = PT's accuracy)",
                  "gain_recovery": "(IST − ZS) / (PT − ZS), mean over tasks",
                  "pooled_gain_recovery": "Σ(IST − ZS) / Σ(PT − ZS) over tasks"}


def _level_fits(positions: Sequence[float], labels: Sequence[str], gap: float = 8) -> bool:
    """Whether labels at these px positions stand level without touching (``gap`` px between two)."""
    return all(p2 - p1 >= (text_px(a) + text_px(b)) / 2 + gap
               for (p1, a), (p2, b) in pairwise(zip(positions, labels)))


def _value_axis(values: Sequence[float], log: bool, panel_px: float) -> dict:
    """An x axis for the values of a sweep (d_I, number of training tasks) that labels every value level
    and apart: to scale (log or linear) where the labels fit at ``panel_px``, else one even step per
    value (``ordinal``; the traces then plot at 0, 1, 2, ...)."""
    vals = sorted({float(v) for v in values})
    labels = [f"{v:g}" for v in vals]
    f = math.log10 if log else float
    lo, hi = f(vals[0]), f(vals[-1])
    pad = 0.08 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - pad, hi + pad
    pos = [(f(v) - lo) / (hi - lo) * panel_px for v in vals]
    if _level_fits(pos, labels):
        return {"ordinal": False, "values": vals, "axis": {"type": "log" if log else "linear", "range": [lo, hi],
                                                          "tickmode": "array", "tickvals": vals, "ticktext": labels,
                                                          "tickangle": 0}}
    slot = panel_px / len(vals)
    return {"ordinal": True, "values": vals,
            "axis": {"type": "linear", "range": [-0.5, len(vals) - 0.5], "tickmode": "array",
                     "tickvals": list(range(len(vals))), "ticktext": labels, "tickangle": slot_angle(slot, labels)}}


def recovery_figure(table: pd.DataFrame, x: str = "d", *, reference: bool = True,
                    title: str = "Recovery of prompt tuning in the intrinsic subspace",
                    gain: str = "gain_recovery", finished: pd.DataFrame | None = None) -> go.Figure:
    """Two panels (recovery, and ``gain``: the mean of per-task gain recoveries or the pooled one) vs ``x``:
    a line per setting x subspace, with a band of ± one std over seeds where there are two or more (the
    legend's title says which); the paper's reference points on the recovery panel (``x == "d"``); 1 is
    PT's level, and 0 on the gain panel zero-shot's.

    The x axis labels every value: d_I on a log scale (a number of training tasks on a linear one) where
    the labels fit a ~560 px chart, else evenly spaced, one step per value ("evenly spaced" in its title);
    both panels share it. A categorical ``x`` (a held-out family) draws points with error bars, no lines
    (families have no order).

    Subspaces: found (circles, solid lines), linear (PCA: diamonds, dashed), random (crosses, dotted).
    ``finished`` (a :func:`finished_table` of the rows drawn): a series with an IST run that had not
    finished says "(not finished)" in the legend, and the title gets a second line saying how many."""
    if gain not in GAIN_TITLES:
        raise ValueError(f"gain {gain!r}: one of {', '.join(GAIN_TITLES)}")
    title, two_lines = _finished_title(title, finished)
    unfinished = _unfinished_series(finished)
    spacing = 0.16
    panel_px = (DESIGN_WIDTH - 80) * (1 - spacing) / 2
    fig = make_subplots(rows=1, cols=2, subplot_titles=(PANEL_TITLES["recovery"], PANEL_TITLES[gain]),
                        horizontal_spacing=spacing)
    numeric = pd.api.types.is_numeric_dtype(table[x]) if len(table) else True
    axis_title = "intrinsic dimension d_I" if x == "d" else {"heldout_family": "held-out family",
                                                             "n_train_tasks": "training tasks"}.get(x, x.replace("_", " "))
    ref_pts = [p for p in PAPER_REFERENCE] if reference and x == "d" else []
    if numeric and len(table):
        scale = _value_axis(list(table[x]) + [p["d"] for p in ref_pts], log=(x == "d"), panel_px=panel_px)
        where = {v: i for i, v in enumerate(scale["values"])}
        def at(vs):
            return [where[float(v)] for v in vs] if scale["ordinal"] else list(vs)
        # evenly spaced: the title says so (short: half of a narrow chart)
        xaxis = dict(scale["axis"], title_text=(("d_I" if x == "d" else axis_title) + ", evenly spaced")
                     if scale["ordinal"] else axis_title)
        labels = list(xaxis["ticktext"])
        angle = xaxis["tickangle"]
    else:
        def at(vs):
            return [str(v) for v in vs]
        cats = list(dict.fromkeys(str(v) for v in table[x])) if len(table) else []
        angle = slot_angle(panel_px / max(len(cats), 1), cats)
        xaxis = {"title_text": axis_title, "type": "category", "tickangle": angle}
        labels = cats
    n_seeds = table["n_seeds"] if "n_seeds" in table.columns else pd.Series(dtype=float)
    several = bool(len(n_seeds) and n_seeds.fillna(0).max() >= 2)
    fig.add_hline(y=0.0, line={"color": "#bbb", "dash": "dot", "width": 1}, row=1, col=2)  # zero-shot's level
    for col, metric in ((1, "recovery"), (2, gain)):
        t = table[table["metric"] == metric]
        for (setting, subspace), g in t.groupby(["setting", "subspace"], sort=False):
            colour, dash = _SERIES_STYLE.get((setting, subspace), ("#9467bd", "dash"))
            name = _series_name(setting, subspace, "not finished" if (setting, subspace) in unfinished else "")
            g = g.sort_values(x)
            xs = at(g[x])
            spread = g["n_seeds"].fillna(0).astype(int) >= 2 if "n_seeds" in g.columns else pd.Series(False, g.index)
            std = g["std"].where(spread, 0.0).fillna(0.0)
            if numeric and len(g) > 1 and spread.any():
                fig.add_scatter(x=xs + xs[::-1], y=list(g["mean"] + std) + list(g["mean"] - std)[::-1], mode="lines",
                                fill="toself", fillcolor=rgba(colour, 0.15), line={"width": 0}, hoverinfo="skip",
                                showlegend=False, legendgroup=name, row=1, col=col)
            bars = not (numeric and len(g) > 1) and spread.any()
            fig.add_scatter(x=xs, y=g["mean"], mode="lines+markers" if numeric else "markers", name=name,
                            legendgroup=name, showlegend=col == 1, line={"color": colour, "dash": dash},
                            marker={"symbol": _SUBSPACE_MARKER.get(subspace, "square"), "size": 11 if subspace == "random" else 10,
                                    "color": colour, "line": {"color": colour, "width": 2}},
                            error_y={"type": "data", "array": std.tolist(), "visible": True} if bars else None,
                            customdata=np.stack([g[x].astype(str), g["std"].fillna(0.0), g["n_seeds"]], axis=-1),
                            hovertemplate=f"{name}<br>{x}=%{{customdata[0]}}: %{{y:.3f}}"
                                          + (" ± %{customdata[1]:.3f} over %{customdata[2]} seeds" if several
                                             else " (one seed)") + "<extra></extra>", row=1, col=col)
        fig.add_hline(y=1.0, line={"color": "#999", "dash": "dash", "width": 1}, row=1, col=col)
    if ref_pts:
        # the values go in the legend and the hover, not as text on the plot: a label there overlaps the data
        for setting, symbol in (("seen", "star"), ("unseen", "hexagram")):  # open: the subspaces' markers are filled
            pts = sorted((p for p in ref_pts if p["setting"] == setting), key=lambda p: p["d"])
            colour = _SERIES_STYLE[(setting, "found")][0]
            values = "; ".join(f"{p['recovery']:.0%} at d_I {p['d']}" for p in pts)
            fig.add_scatter(x=at([p["d"] for p in pts]), y=[p["recovery"] for p in pts], mode="markers",
                            name=f"{PAPER_LABEL} [{values}], {setting}",
                            marker={"symbol": symbol, "size": 13, "color": "white", "line": {"color": colour, "width": 2}},
                            customdata=[p["d"] for p in pts],
                            hovertemplate=f"{PAPER_LABEL}<br>{setting}: %{{y:.0%}} at d_I=%{{customdata}}<extra></extra>",
                            row=1, col=1)
    if not numeric:
        # the subspaces side by side in a family's slot: three need a wider group than two to stand apart
        fig.update_layout(scattermode="group", scattergap=0.6 if table["subspace"].nunique() <= 2 else 0.2)
    fig.update_xaxes(**xaxis, title_standoff=STANDOFF_PX, automargin=True)
    fig.update_xaxes(matches="x", row=1, col=2)
    for col, metric in ((1, "recovery"), (2, gain)):
        fig.update_yaxes(title_text=PANEL_Y_TITLES[metric], title_font={"size": 12}, title_standoff=4, row=1, col=col)
    plot_h = 330
    top = (100 if title else 50) + (24 if two_lines else 0)  # the title, then the panels' titles under it
    below = tick_depth(labels, angle) + STANDOFF_PX + X_TITLE_PX + 14
    note = seeds_note(n_seeds)
    styled(fig, title, height=plot_h)
    shown = ("lines and bands" if several else "lines") if numeric else ("points and bars" if several else "points")
    legend_px = legend_below(fig, plot_h, below, title=f"{shown}: {note}")
    bottom = int(below + legend_px + 10)
    fig.update_layout(height=top + plot_h + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


RECOVERY_AXIS = {"recovery": "recovery = IST accuracy / PT accuracy",
                 "gain_recovery": "gain recovery = (IST − zero-shot) / (PT − zero-shot)"}
_REF_LINES = ((0.0, "0 = zero-shot level", "#999", "dot"), (1.0, "1 = PT level", "#555", "dash"))


def recovery_bars_table(rows: Sequence[Mapping], d: Any, x: str = "d") -> pd.DataFrame:
    """Per task at ``x == d``: recovery and gain recovery, mean and std over seeds, per
    setting x subspace, and zero-shot's own recovery (zero-shot / PT, mean over seeds; NaN where the
    rows lack ``zero_shot_test_acc`` or ``pt_test_acc``): where zero-shot already sits on the
    recovery axis. Columns: ``task, family, setting, subspace, recovery, recovery_std, gain_recovery,
    gain_recovery_std, n_seeds, zero_shot_recovery``.

    Example:
        >>> rows = [{"d": 4, "setting": "unseen", "subspace": "found", "task": "a", "seed": 0, "recovery": 0.9,
        ...          "gain_recovery": 0.5, "zero_shot_test_acc": 0.4, "pt_test_acc": 0.8}]
        >>> recovery_bars_table(rows, 4)[["task", "recovery", "zero_shot_recovery"]].values.tolist()
        [['a', 0.9, 0.5]]
    """
    cols = ["task", "family", "setting", "subspace", "recovery", "recovery_std", "gain_recovery",
            "gain_recovery_std", "n_seeds", "zero_shot_recovery"]
    sel = [r for r in rows if str(r.get(x)) == str(d)]
    if not sel:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame([{"task": r.get("task"), "family": r.get("family", ""), "setting": r.get("setting"),
                        "subspace": r.get("subspace"), "seed": r.get("seed"), "recovery": as_float(r.get("recovery")),
                        "gain_recovery": as_float(r.get("gain_recovery")),
                        "zs_rec": recovery(as_float(r.get("zero_shot_test_acc")), as_float(r.get("pt_test_acc")))}
                       for r in sel])
    g = df.groupby(["task", "family", "setting", "subspace"], sort=False)
    out = g.agg(recovery=("recovery", "mean"), recovery_std=("recovery", pstd),
                gain_recovery=("gain_recovery", "mean"), gain_recovery_std=("gain_recovery", pstd),
                n_seeds=("seed", "nunique"), zero_shot_recovery=("zs_rec", "mean")).reset_index()
    out[["recovery_std", "gain_recovery_std"]] = out[["recovery_std", "gain_recovery_std"]].fillna(0.0)
    return out[cols].sort_values(["setting", "subspace", "family", "task"], kind="stable").reset_index(drop=True)


def _std_where_seeds(std: pd.Series, n_seeds: pd.Series) -> dict:
    several = pd.Series(n_seeds).fillna(0).astype(int) >= 2
    return {"type": "data", "array": pd.Series(std).where(several.to_numpy(), 0.0).fillna(0.0).tolist(),
            "visible": bool(several.any()), "thickness": 1.5}


def _horizontal_layout(fig: go.Figure, title: str, n_tasks: int, px_per_task: int, legend_names: Sequence[str],
                       *, tasks: Sequence[str] = (), x_title_lines: int = 1, title_lines: int = 1,
                       **axes: Any) -> go.Figure:
    """Height from the number of tasks (``px_per_task`` each), the legend under the x axis (its tick
    labels and ``x_title_lines`` of title) across the width: on the right it would take a third of a
    narrow chart from the bars. Its rows are counted in the width the task names on the y axis leave
    of a ~560 px chart."""
    plot_h = px_per_task * max(n_tasks, 3)
    left = max(60.0, max((text_px(t) for t in tasks), default=0) + 8 + X_TITLE_PX + 10)
    below = x_axis_px(x_title_lines) + 14
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05, **axes)
    top = (70 + 24 * (title_lines - 1)) if title else 30
    styled(fig, title, height=plot_h)
    bottom = int(below + legend_below(fig, plot_h, below, width=DESIGN_WIDTH - left - 20) + 10)
    fig.update_layout(height=plot_h + top + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


def _reference_lines(fig: go.Figure, **where: Any) -> None:
    """The 0 (zero-shot) and 1 (PT) lines of a recovery axis, named in the legend (a shape has no entry)."""
    for x0, name, colour, dash in _REF_LINES:
        fig.add_vline(x=x0, line={"color": colour, "dash": dash, "width": 1.5}, **where)
        fig.add_scatter(x=[None], y=[None], mode="lines", name=name, line={"color": colour, "dash": dash, "width": 1.5},
                        hoverinfo="skip")


def recovery_bars_figure(table: pd.DataFrame, metric: str = "recovery", title: str = "",
                         finished: pd.DataFrame | None = None) -> go.Figure:
    """Horizontal bars, one row per task (every task labelled; the height grows with the number of
    tasks; seen tasks first, as the table is sorted): ``metric`` per subspace (found solid, linear
    dotted, random hatched; blue seen, red unseen), with ± std error bars only where a task has two or
    more seeds (the legend says which); lines at 0 (zero-shot's level) and 1 (PT's), named in the legend;
    for ``recovery`` (IST / PT) a tick per task at zero-shot / PT, where the table has it. ``finished``
    (a :func:`finished_table` of these runs): "(not finished)" on the series and in the title, as in
    :func:`recovery_figure`."""
    if metric not in ("recovery", "gain_recovery"):
        raise ValueError(f"metric must be 'recovery' or 'gain_recovery', got {metric!r}")
    fig = go.Figure()
    tasks = [str(t) for t in dict.fromkeys(table["task"])]
    what = RECOVERY_AXIS[metric].split(" = ")[1]
    title, two_lines = _finished_title(title or f"Per-task {metric.replace('_', ' ')}", finished)
    unfinished = _unfinished_series(finished)
    n_sub = table["subspace"].nunique() if len(table) else 1
    row_px = PX_PER_TASK if n_sub <= 2 else max(PX_PER_TASK, 9 * n_sub + 8)  # three bars a row: ~9 px each
    for (setting, subspace), g in table.groupby(["setting", "subspace"], sort=False):
        colour, _ = _SERIES_STYLE.get((setting, subspace), ("#9467bd", "dash"))
        n_seeds = g["n_seeds"].fillna(0).astype(int)
        late = "not finished" if (setting, subspace) in unfinished else ""
        # seen and unseen tasks never share a row: one slot per subspace, not per setting x subspace
        fig.add_bar(y=[str(t) for t in g["task"]], x=g[metric], orientation="h", offsetgroup=str(subspace),
                    name=_series_name(setting, subspace, seeds_note(n_seeds), late),
                    marker=_bar_marker(colour, subspace), error_x=_std_where_seeds(g[f"{metric}_std"], n_seeds),
                    customdata=np.stack([g["family"], n_seeds, g[f"{metric}_std"]], axis=-1),
                    hovertemplate=f"%{{y}} (%{{customdata[0]}}), {setting} task, {subspace} subspace<br>"
                                  f"{metric.replace('_', ' ')} %{{x:.3f}} (std %{{customdata[2]:.3f}} over "
                                  f"%{{customdata[1]}} seed(s))<br>= {what}<extra></extra>")
    if metric == "recovery" and "zero_shot_recovery" in table.columns and table["zero_shot_recovery"].notna().any():
        zs = table.drop_duplicates("task")
        fig.add_scatter(y=[str(t) for t in zs["task"]], x=zs["zero_shot_recovery"], mode="markers",
                        name="zero-shot / PT (no tuning)",
                        marker={"symbol": "line-ns-open", "size": row_px - 4, "color": "#333", "line": {"width": 2.5}},
                        hovertemplate="%{y}<br>zero-shot accuracy / PT accuracy %{x:.3f}<extra></extra>")
    _reference_lines(fig)
    names = [tr.name for tr in fig.data if tr.name]
    return _horizontal_layout(fig, title, len(tasks), row_px, names, tasks=tasks, title_lines=2 if two_lines else 1,
                              xaxis={"title": RECOVERY_AXIS[metric], "automargin": True, "zeroline": False},
                              yaxis={"title": "task", "autorange": "reversed", "automargin": True,
                                     "tickmode": "linear", "tick0": 0, "dtick": 1})


def sweep_comparison_table(sweeps: Sequence[tuple[str, Sequence[Mapping]]], d: Any,
                           gain: str = "gain_recovery") -> pd.DataFrame:
    """Several IPT sweeps (ablations) side by side at one d_I: gain recovery of the found subspace and the
    controls (linear, random) on seen and unseen tasks, test and dev split, over tasks then mean over seeds.

    ``sweeps``: ``(label, rows)`` pairs, rows as in ``recovery_table``. ``gain``: ``gain_recovery`` (the
    mean of per-task ratios) or ``pooled_gain_recovery`` (Σ(IST − ZS) / Σ(PT − ZS) per seed). The dev
    columns are what a setting is chosen on; rows without dev scores (older sweeps) give NaN there.
    Columns: ``sweep, setting, subspace, split, mean, std, n_seeds, n_tasks``."""
    if gain not in GAIN_TITLES:
        raise ValueError(f"gain {gain!r}: one of {', '.join(GAIN_TITLES)}")
    cols = ["sweep", "setting", "subspace", "split", "mean", "std", "n_seeds", "n_tasks"]
    out = []
    for label, rows in sweeps:
        sel = [r for r in rows if str(r.get("d")) == str(d)]
        for split, field in (("test", "gain_recovery"), ("dev", "dev_gain_recovery")):
            df = pd.DataFrame([{"setting": r.get("setting"), "subspace": r.get("subspace"), "seed": r.get("seed"),
                                "task": r.get("task"), "v": as_float(r.get(field))} for r in sel])
            if df.empty or df["v"].isna().all():
                continue
            if gain == "pooled_gain_recovery":
                agg = _pooled_over_seeds(sel, ["setting", "subspace"], split)
            else:
                agg = _agg_over_seeds(df, ["setting", "subspace"], "v")
            tasks = df.dropna(subset=["v"]).groupby(["setting", "subspace"])["task"].nunique()
            for _, a in agg.iterrows():
                out.append({"sweep": label, "setting": a["setting"], "subspace": a["subspace"], "split": split,
                            "mean": a["mean"], "std": a["std"], "n_seeds": int(a["n_seeds"]),
                            "n_tasks": int(tasks.get((a["setting"], a["subspace"]), 0))})
    return pd.DataFrame(out, columns=cols)


def sweep_comparison_figure(table: pd.DataFrame, split: str = "dev", title: str = "",
                            gain: str = "gain_recovery", *, width: int = FULL_WIDTH) -> go.Figure:
    """Gain recovery (``gain``, as the table was made) per sweep (bars), seen and unseen, found against the
    linear (dotted) and random (hatched) controls, ± std over seeds only where a sweep has two or more (the legend says which);
    lines at 0 (zero-shot's level) and 1 (PT's), named in the legend. Each sweep's label is wrapped to
    its slot of a chart ``width`` px wide (the page shows it across the main column) and stands level;
    the legend goes under the axis."""
    fig = go.Figure()
    sel = table[table["split"] == split]
    sweeps = list(dict.fromkeys(sel["sweep"]))
    slot = (width - 80) / max(len(sweeps), 1)
    wrapped = {s: wrap_label(s, int((slot - 12) / (CHAR_PX * TICK_FONT_PX))) for s in sweeps}
    for (setting, subspace), g in sel.groupby(["setting", "subspace"], sort=False):
        colour, _ = _SERIES_STYLE.get((setting, subspace), ("#9467bd", "dash"))
        n_seeds = g["n_seeds"].fillna(0).astype(int)
        fig.add_bar(x=[wrapped[s] for s in g["sweep"]], y=g["mean"],
                    name=_series_name(setting, subspace, seeds_note(n_seeds)),
                    marker=_bar_marker(colour, subspace),
                    error_y={k: v for k, v in _std_where_seeds(g["std"], n_seeds).items() if k != "thickness"},
                    customdata=np.stack([g["n_tasks"], g["n_seeds"]], axis=-1),
                    hovertemplate="%{x}<br>%{y:.3f} over %{customdata[0]} tasks, %{customdata[1]} seed(s)<extra></extra>")
    for y0, name, colour, dash in _REF_LINES:
        fig.add_hline(y=y0, line={"color": colour, "dash": dash, "width": 1.5})
        # a legend key only (a shape has none): no point, at a sweep's own category
        fig.add_scatter(x=[next(iter(wrapped.values()), None)], y=[None], mode="lines", name=name,
                        line={"color": colour, "dash": dash, "width": 1.5}, hoverinfo="skip")
    what = gain.replace("_", " ")
    labels = list(wrapped.values())
    lines = max((len(v.split("<br>")) for v in labels), default=1)
    fig.update_layout(barmode="group", yaxis={"title": f"{what} ({split} split)"},
                      xaxis={"tickangle": 0, "automargin": True, "categoryorder": "array", "categoryarray": labels})
    plot_h = 320
    top = 70
    below = lines * 1.2 * TICK_FONT_PX + 6 + 16
    styled(fig, title or f"Sweeps side by side: {what} on the {split} split", height=plot_h)
    bottom = int(below + legend_below(fig, plot_h, below, width=width - 80) + 10)
    fig.update_layout(height=top + plot_h + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


def ist_runs_table(runs: Sequence[Mapping], zero_shot: Mapping[str, float] | None = None,
                   n_labels: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Intrinsic-tuning runs (``ist_run`` metas) per task, d_I and subspace: test accuracy (mean and
    std over seeds) beside the task's zero-shot accuracy and, where a run carries it
    (``pt_test_acc``: the page adds the PT runs of the subspace's PT configuration), PT's; then
    recovery = IST / PT and gain recovery = (IST − zero-shot) / (PT − zero-shot), of the means (NaN
    where a score is missing or PT does not beat zero-shot). ``zero_shot`` maps a task to its accuracy;
    a run's own ``zero_shot_test_acc`` wins. ``chance``: 1 / number of labels (``n_labels`` maps a task to
    its count; a run's own ``labels`` or ``n_labels`` wins; NaN where unknown). Columns: ``task, family,
    setting, d, subspace, ist_test_acc, ist_std, n_seeds, zero_shot, pt_test_acc, recovery, gain_recovery,
    chance``.

    Example:
        >>> t = ist_runs_table([{"task": "a", "d": 8, "subspace": "found", "setting": "unseen", "seed": 0,
        ...                      "test_acc": 0.7, "pt_test_acc": 0.8}], {"a": 0.5})
        >>> t[["task", "ist_test_acc", "zero_shot", "pt_test_acc"]].values.tolist(), round(float(t.gain_recovery[0]), 3)
        ([['a', 0.7, 0.5, 0.8]], 0.667)
    """
    cols = ["task", "family", "setting", "d", "subspace", "ist_test_acc", "ist_std", "n_seeds", "zero_shot",
            "pt_test_acc", "recovery", "gain_recovery", "chance"]
    if not runs:
        return pd.DataFrame(columns=cols)
    counts = label_counts(runs, n_labels)
    df = pd.DataFrame([{"task": r.get("task"), "family": r.get("family", ""), "setting": r.get("setting", ""),
                        "d": r.get("d"), "subspace": r.get("subspace", "found"), "seed": r.get("seed"),
                        "acc": as_float(r.get("test_acc")), "pt": as_float(r.get("pt_test_acc")),
                        "zs": as_float(r.get("zero_shot_test_acc"))} for r in runs])
    g = df.groupby(["task", "family", "setting", "d", "subspace"], sort=True, dropna=False)
    out = g.agg(ist_test_acc=("acc", "mean"), ist_std=("acc", pstd), n_seeds=("seed", "nunique"),
                pt_test_acc=("pt", "mean"), zs=("zs", "mean")).reset_index()
    out["ist_std"] = out["ist_std"].fillna(0.0)
    given = pd.Series([as_float((zero_shot or {}).get(t)) for t in out["task"]], index=out.index)
    out["zero_shot"] = out["zs"].where(out["zs"].notna(), given)
    out["recovery"] = [recovery(i, p) if not (math.isnan(i) or math.isnan(p)) else math.nan
                       for i, p in zip(out["ist_test_acc"], out["pt_test_acc"])]
    out["gain_recovery"] = [gain_recovery(i, p, z) if not any(map(math.isnan, (i, p, z))) else math.nan
                            for i, p, z in zip(out["ist_test_acc"], out["pt_test_acc"], out["zero_shot"])]
    out["chance"] = [chance_level(counts.get(t)) for t in out["task"]]
    return out[cols].reset_index(drop=True)


def ist_runs_figure(table: pd.DataFrame, title: str = "Intrinsic tuning: test accuracy per task") -> go.Figure:
    """Horizontal bars, one row per task (every task labelled; the row grows with the number of d_I x
    subspace groups): IST test accuracy per d_I x subspace (linear dotted, random hatched; ± std error bars only
    where a task has two or more seeds), a tick at the task's zero-shot accuracy, a red one at chance
    (1 / number of labels; else the legend says it is not known) and a diamond at its PT accuracy. Where the table has PT, a second panel beside it, on the same rows: gain recovery =
    (IST − zero-shot) / (PT − zero-shot), with lines at 0 (zero-shot's level) and 1 (PT's); the hover
    gives recovery = IST / PT too."""
    has_pt = "pt_test_acc" in table.columns and table["pt_test_acc"].notna().any()
    cols = 2 if has_pt else 1
    fig = make_subplots(rows=1, cols=cols, shared_yaxes=True, horizontal_spacing=0.05,
                        column_widths=[0.6, 0.4] if has_pt else None)
    tasks = [str(t) for t in dict.fromkeys(table["task"])]
    groups = list(table.groupby(["d", "subspace"], sort=True))
    for i, ((d, subspace), g) in enumerate(groups):
        colour = _SERIES_STYLE.get(("seen", subspace), ("#9467bd", ""))[0] if subspace == "found" else "#7f7f7f"
        n_seeds = g["n_seeds"].fillna(0).astype(int)
        name = f"IST, d_I {d}, {subspace} subspace ({seeds_note(n_seeds)})"
        marker = _bar_marker(colour, subspace)
        y = [str(t) for t in g["task"]]
        fig.add_bar(y=y, x=g["ist_test_acc"], orientation="h", name=name, legendgroup=name, offsetgroup=str(i),
                    marker=marker, error_x=_std_where_seeds(g["ist_std"], n_seeds),
                    customdata=np.stack([g["setting"], n_seeds, g["ist_std"]], axis=-1),
                    hovertemplate=f"%{{y}} (%{{customdata[0]}} task)<br>IST (intrinsic subspace tuning: only the d_I = "
                                  f"{d} coordinates train) test acc %{{x:.3f}}<br>std %{{customdata[2]:.3f}} over "
                                  "%{customdata[1]} seed(s)<extra></extra>", row=1, col=1)
        if has_pt:
            fig.add_bar(y=y, x=g["gain_recovery"], orientation="h", name=name, legendgroup=name, offsetgroup=str(i),
                        showlegend=False, marker=marker,
                        customdata=np.stack([g["recovery"], g["ist_test_acc"], g["pt_test_acc"], g["zero_shot"]], axis=-1),
                        hovertemplate="%{y}<br>gain recovery %{x:.3f} = (IST %{customdata[1]:.3f} − zero-shot "
                                      "%{customdata[3]:.3f}) / (PT %{customdata[2]:.3f} − zero-shot)<br>recovery = IST / PT "
                                      "%{customdata[0]:.3f}<extra></extra>", row=1, col=2)
    zs = table.drop_duplicates("task")
    row_px = max(PX_PER_TASK, 9 * len(groups) + 10)
    if zs["zero_shot"].notna().any():
        fig.add_scatter(y=[str(t) for t in zs["task"]], x=zs["zero_shot"], mode="markers", name="zero-shot (ZS: no tuning)",
                        marker={"symbol": "line-ns-open", "size": row_px - 4, "color": "#333", "line": {"width": 2.5}},
                        hovertemplate="%{y}<br>zero-shot %{x:.3f}<extra></extra>", row=1, col=1)
    if "chance" in zs.columns and zs["chance"].notna().any():
        fig.add_scatter(y=[str(t) for t in zs["task"]], x=zs["chance"], mode="markers", name="chance (1/labels)",
                        marker={"symbol": "line-ns-open", "size": row_px - 4, "color": CHANCE_COLOUR, "line": {"width": 2.5}},
                        hovertemplate="%{y}<br>chance %{x:.3f}<extra></extra>", row=1, col=1)
    elif len(table):
        fig.add_scatter(**no_chance_note(), row=1, col=1)
    if has_pt:
        fig.add_scatter(y=[str(t) for t in zs["task"]], x=zs["pt_test_acc"], mode="markers",
                        name="PT: prompt tuning (the whole prompt trains)",
                        marker={"symbol": "diamond", "size": 10, "color": "#ff7f0e", "line": {"color": "#333", "width": 1}},
                        hovertemplate="%{y}<br>PT %{x:.3f}<extra></extra>", row=1, col=1)
        _reference_lines(fig, row=1, col=2)
    names = [tr.name for tr in fig.data if tr.name and tr.showlegend is not False]
    _horizontal_layout(fig, title, len(tasks), row_px, names, tasks=tasks, x_title_lines=2 if has_pt else 1)
    fig.update_xaxes(title_text="test accuracy", range=[0, 1.02], automargin=True, row=1, col=1)
    fig.update_yaxes(title_text="task", autorange="reversed", automargin=True, tickmode="linear", tick0=0, dtick=1,
                     row=1, col=1)
    if has_pt:
        # the 0 and 1 lines inside the panel, not on its edge (a tick label there runs past the figure)
        g = pd.to_numeric(table["gain_recovery"], errors="coerce").dropna()
        lo, hi = min([0.0, *g]), max([1.0, *g])
        fig.update_xaxes(title_text="gain recovery<br>(IST − ZS) / (PT − ZS)", title_font={"size": 12},
                         automargin=True, zeroline=False, range=[lo - 0.08 * (hi - lo), hi + 0.08 * (hi - lo)],
                         row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=2)
    return fig


# --------------------------------------------------------------------------------------------------
# stability


def stability_table(curves: Sequence[Mapping], task: str | None = None,
                    n_labels: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """The data of :func:`stability_figure`, long form: ``init, series, step, dev_acc, std, n_seeds, chance``.

    ``series`` is ``"seed <s>"`` for a seed's trace (its dev accuracy, averaged over the tasks when
    ``task`` is None; only steps all those tasks share) or ``"mean"`` for the mean over seeds with
    its std. ``curves`` is an ``ipt_stability`` entry's ``meta["curves"]``. ``chance``: 1 / number of
    labels (``n_labels`` maps a task to its count; a curve's own ``labels`` or ``n_labels`` wins), the
    mean over the tasks shown; NaN where a task's count is unknown.

    Example:
        >>> c = [{"task": "a", "seed": s, "init": "ist", "steps": [0, 1], "dev_acc": [.5, .6 + s / 10]}
        ...      for s in range(2)]
        >>> t = stability_table(c, n_labels={"a": 4}); t[t.series == "mean"]["dev_acc"].round(2).tolist(), float(t.chance[0])
        ([0.5, 0.65], 0.25)
    """
    cols = ["init", "series", "step", "dev_acc", "std", "n_seeds", "chance"]
    chosen = [c for c in curves if task is None or c["task"] == task]
    long = pd.DataFrame([{"task": c["task"], "seed": c["seed"], "init": c["init"], "step": int(s), "dev_acc": as_float(a)}
                         for c in chosen for s, a in zip(c.get("steps", []), c.get("dev_acc", []))])
    if long.empty:
        return pd.DataFrame(columns=cols)
    counts = label_counts(chosen, n_labels)
    levels = [chance_level(counts.get(t)) for t in sorted(set(long["task"]))]
    chance = float(np.mean(levels)) if levels and not any(map(math.isnan, levels)) else math.nan
    n_tasks = long.groupby(["init", "seed"])["task"].transform("nunique")
    per_step = long.groupby(["init", "seed", "step"])["task"].transform("nunique")
    long = long[per_step == n_tasks]  # a seed's trace uses only steps where all its tasks have a score
    traces = long.groupby(["init", "seed", "step"], sort=True)["dev_acc"].mean().reset_index()
    parts = []
    for init, g in traces.groupby("init", sort=False):
        for seed, gs in g.groupby("seed", sort=True):
            parts.append(pd.DataFrame({"init": init, "series": f"seed {seed}", "step": gs["step"],
                                       "dev_acc": gs["dev_acc"], "std": math.nan, "n_seeds": 1}))
        band = g.groupby("step", sort=True)["dev_acc"].agg(["mean", pstd, "count"]).reset_index() \
            .rename(columns={"pstd": "std"})
        parts.append(pd.DataFrame({"init": init, "series": "mean", "step": band["step"], "dev_acc": band["mean"],
                                   "std": band["std"].fillna(0.0), "n_seeds": band["count"]}))
    out = pd.concat(parts, ignore_index=True)
    out["chance"] = chance
    return out[cols]


def stability_figure(table: pd.DataFrame, title: str = "Dev accuracy over training, across seeds",
                     *, traces: bool = True) -> go.Figure:
    """Mean over seeds per init (PT from random init vs IST-initialised PT) with a ± std band where two
    or more seeds ran (the legend says how many), plus thin per-seed traces; a line at chance (1 / number
    of labels, the mean over the tasks shown) where the table has it, else the legend says it is not
    known. The legend goes under the axis."""
    fig = go.Figure()
    for init, g in table.groupby("init", sort=False):
        colour, name = _INIT_STYLE.get(init, ("#9467bd", str(init)))
        band = g[g["series"] == "mean"].sort_values("step")
        if traces:
            for series, gs in g[g["series"] != "mean"].groupby("series", sort=False):
                fig.add_scatter(x=gs["step"], y=gs["dev_acc"], mode="lines", legendgroup=name, showlegend=False,
                                line={"color": rgba(colour, 0.35), "width": 1},
                                hovertemplate=f"{name}, {series}<br>step %{{x}}: %{{y:.3f}}<extra></extra>")
        if len(band):
            n = int(band["n_seeds"].max())
            if n >= 2:
                xs = list(band["step"]) + list(band["step"])[::-1]
                ys = list(band["dev_acc"] + band["std"]) + list(band["dev_acc"] - band["std"])[::-1]
                fig.add_scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=rgba(colour, 0.18),
                                line={"width": 0}, hoverinfo="skip", legendgroup=name, showlegend=False)
            fig.add_scatter(x=band["step"], y=band["dev_acc"], mode="lines", name=f"{name} ({seeds_note(band['n_seeds'])})",
                            legendgroup=name, line={"color": colour, "width": 3},
                            customdata=np.stack([band["std"], band["n_seeds"]], axis=-1),
                            hovertemplate=f"{name}<br>step %{{x}}: %{{y:.3f}}"
                                          + (" ± %{customdata[0]:.3f} (%{customdata[1]} seeds)" if n >= 2 else "")
                                          + "<extra></extra>")
    chance = float(table["chance"].dropna().iloc[0]) if "chance" in table.columns and table["chance"].notna().any() \
        else math.nan
    if math.isnan(chance):
        if len(table):
            fig.add_scatter(**no_chance_note())
    else:
        fig.add_hline(y=chance, line={"color": CHANCE_COLOUR, "dash": "dot", "width": 1.5})
        fig.add_scatter(x=[None], y=[None], mode="lines", name=f"chance (1 / labels): {chance:.2f}",
                        line={"color": CHANCE_COLOUR, "dash": "dot", "width": 1.5}, hoverinfo="skip")
    # a margin round the data and the chance line: a line on the axis's edge puts its tick label on the x axis's
    ys = pd.concat([table["dev_acc"] + table["std"].fillna(0), table["dev_acc"] - table["std"].fillna(0)]).dropna()
    ys = list(ys) + ([] if math.isnan(chance) else [chance])
    yrange = [min(ys) - 0.05 * (max(ys) - min(ys) or 1), max(ys) + 0.05 * (max(ys) - min(ys) or 1)] if ys else None
    # and the first step off the y axis: lines alone get no padding, so the label of step 0 sat in the
    # plot's corner, on the y axis's lowest label whenever a tick fell at the range's bottom
    steps = table["step"].dropna()
    xrange = None
    if len(steps):
        lo, hi = float(steps.min()), float(steps.max())
        pad_px = text_px(f"{lo:g}", TICK_FONT_PX) / 2 + 8  # half the first label, and a gap
        frac = pad_px / (DESIGN_WIDTH - 80 - 2 * pad_px)  # of the span, at the narrowest plot width
        xrange = [lo - frac * ((hi - lo) or 1), hi + frac * ((hi - lo) or 1)]
    fig.update_layout(xaxis={"title": "training step", "range": xrange, "zeroline": False},
                      yaxis={"title": "dev accuracy", "range": yrange})
    return curve_layout(fig, title)


# --------------------------------------------------------------------------------------------------
# methods (ATTEMPT, VIP, ...)


def method_compare_table(rows: Sequence[Mapping], n_labels: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Per (task, method): test accuracy mean/std over seeds, trainable parameters and seconds, and the
    task's chance level (1 / number of labels: ``n_labels`` maps a task to its count, a row's own
    ``labels`` or ``n_labels`` wins; NaN where unknown).

    Columns: ``task, method, test_acc, test_acc_std, test_f1, n_seeds, trainable_params, seconds, chance``.
    """
    cols = ["task", "method", "test_acc", "test_acc_std", "test_f1", "n_seeds", "trainable_params", "seconds", "chance"]
    if not rows:
        return pd.DataFrame(columns=cols)
    counts = label_counts(rows, n_labels)
    df = pd.DataFrame([{"task": r.get("task"), "method": r.get("method"), "seed": r.get("seed"),
                        "test_acc": as_float(r.get("test_acc")), "test_f1": as_float(r.get("test_f1")),
                        "trainable_params": as_float(r.get("trainable_params")), "seconds": as_float(r.get("seconds"))}
                       for r in rows])
    out = df.groupby(["task", "method"], sort=False).agg(
        test_acc=("test_acc", "mean"), test_acc_std=("test_acc", pstd), test_f1=("test_f1", "mean"),
        n_seeds=("seed", "nunique"), trainable_params=("trainable_params", "mean"), seconds=("seconds", "mean"),
    ).reset_index()
    out["test_acc_std"] = out["test_acc_std"].fillna(0.0)
    out["chance"] = [chance_level(counts.get(t)) for t in out["task"]]
    return out[cols]


def method_compare_figure(table: pd.DataFrame, title: str = "Test accuracy per task and method") -> go.Figure:
    """Horizontal grouped bars, one row per task (every task labelled; the height grows with the tasks
    and methods), one colour per method, ± std error bars only where a method has two or more seeds on a
    task (its legend entry says which), and a red tick per task at chance (1 / number of labels) where
    the table has it (else the legend says it is not known)."""
    fig = go.Figure()
    colours = colour_map(table["method"])
    tasks = [str(t) for t in dict.fromkeys(table["task"])]
    methods = list(dict.fromkeys(table["method"]))
    for method, g in table.groupby("method", sort=False):
        n_seeds = (g["n_seeds"] if "n_seeds" in g.columns else pd.Series(1, index=g.index)).fillna(0).astype(int)
        fig.add_bar(y=[str(t) for t in g["task"]], x=g["test_acc"], orientation="h", name=f"{method} ({seeds_note(n_seeds)})",
                    marker_color=colours[method], error_x=_std_where_seeds(g.get("test_acc_std", 0.0 * n_seeds), n_seeds),
                    customdata=np.stack([n_seeds, g.get("test_acc_std", 0.0 * n_seeds)], axis=-1),
                    hovertemplate=f"{method}<br>%{{y}}: %{{x:.3f}} (std %{{customdata[1]:.3f}} over %{{customdata[0]}} "
                                  "seed(s))<extra></extra>")
    row_px = max(PX_PER_TASK, 5 * len(methods) + 10)
    per_task = table.drop_duplicates("task")
    chance = per_task["chance"] if "chance" in per_task.columns else pd.Series(math.nan, index=per_task.index)
    if chance.notna().any():
        fig.add_scatter(y=[str(t) for t in per_task["task"]], x=chance, mode="markers", name="chance (1/labels)",
                        marker={"symbol": "line-ns-open", "size": row_px - 4, "color": CHANCE_COLOUR, "line": {"width": 2.5}},
                        hovertemplate="%{y}<br>chance %{x:.3f}<extra></extra>")
    elif len(table):
        fig.add_scatter(**no_chance_note())
    names = [tr.name for tr in fig.data if tr.name and tr.showlegend is not False]
    return _horizontal_layout(fig, title, len(tasks), row_px, names, tasks=tasks,
                              xaxis={"title": "test accuracy", "range": [0, 1.05], "automargin": True},
                              yaxis={"title": "task", "autorange": "reversed", "automargin": True,
                                     "tickmode": "linear", "tick0": 0, "dtick": 1})


def attention_table(attention: Mapping) -> pd.DataFrame:
    """ATTEMPT's mean attention weights: rows = target tasks, columns = source prompts."""
    return pd.DataFrame(np.asarray(attention["weights"], dtype=float), index=pd.Index(attention["targets"], name="target"),
                        columns=list(attention["sources"]))


def attention_heatmap(table: pd.DataFrame, title: str = "ATTEMPT: attention of target tasks on source prompts") -> go.Figure:
    """Heatmap of an :func:`attention_table` (a task-similarity signal): a row per source prompt (every
    one labelled; the height grows with them), a column per target task, the colour bar's title giving
    the uniform weight (1 / number of sources) to read the colours against. Wide: the page shows it
    across the main column."""
    sources, targets = [str(c) for c in table.columns], [str(i) for i in table.index]
    uniform = 1 / len(sources) if sources else math.nan
    fig = go.Figure(go.Heatmap(z=table.to_numpy(dtype=float).T, x=targets, y=sources, colorscale="Viridis",
                               colorbar={"title": {"text": f"weight<br>uniform:<br>{uniform:.3f}", "font": {"size": 12}}},
                               hovertemplate="target %{x}<br>source %{y}<br>weight %{z:.3f}<extra></extra>"))
    return heatmap_layout(fig, title, targets, sources, x_title="target task", y_title="source prompt")


def attention_reading(table: pd.DataFrame) -> str | None:
    """One paragraph for the page when the attention heatmap is degenerate, None when it is graded.

    Near one-hot (every target puts at least 90% on one source) or near uniform (every weight within
    25% of its row's uniform share, the self cell left out): the heatmap then shows which single
    source ATTEMPT picked, or nothing, rather than a graded similarity; the text says which.

    Example::

        attention_reading(attention_table({"targets": ["a"], "sources": ["a", "b", "c"], "weights": [[0, 1, 0]]}))
        # "Near one-hot: each target puts 100% of its attention on one source prompt (a → b) ..."
    """
    w = table.to_numpy(dtype=float)
    if w.size == 0 or not np.isfinite(w).all():
        return None
    rows = []
    for target, row in zip(table.index, w):
        live = [(str(src), x) for src, x in zip(table.columns, row) if str(src) != str(target)]
        if len(live) < 2:
            return None
        share = np.array([x for _, x in live]) / max(sum(x for _, x in live), 1e-12)
        rows.append((str(target), live[int(np.argmax(share))][0], float(share.max()), share * len(share)))
    top = [r[2] for r in rows]
    picks = ", ".join(f"{t} → {s}" for t, s, _, _ in rows[:6]) + (" …" if len(rows) > 6 else "")
    if min(top) >= 0.9:
        span = f"{min(top):.0%}" if f"{min(top):.0%}" == f"{max(top):.0%}" else f"{min(top):.0%}–{max(top):.0%}"
        return (f"**Near one-hot:** each target puts {span} of its attention on one source prompt "
                f"({picks}); every other source gets almost nothing. ATTEMPT's attention is a softmax (its temperature "
                "in the settings) over the scores of the pooled input against each source prompt; once one score leads "
                "by a few units the softmax is one-hot. Read this map as *which single source ATTEMPT chose* for each "
                "target, not as a graded task similarity (for that: the transfer test and the task map).")
    if all(np.all(np.abs(r[3] - 1) <= 0.25) for r in rows):
        return ("**Near uniform:** every weight is within 25% of its row's uniform share (the colour bar's value): "
                "ATTEMPT has not learned to prefer any source here, so the heatmap carries no similarity signal. More "
                "steps or a lower temperature sharpen it.")
    return None


def codebook_usage_table(usage: Sequence[float]) -> pd.DataFrame:
    """VIP's codebook usage: ``code, usage`` (fraction of lookups per code)."""
    return pd.DataFrame({"code": list(range(len(usage))), "usage": [as_float(u) for u in usage]})


def codebook_usage_figure(table: pd.DataFrame, title: str = "VIP: codebook usage") -> go.Figure:
    """A bar per code: its share of the lookups, against a line at uniform use (1 / number of codes);
    the title says how many codes were used at all (a collapsed codebook uses one)."""
    used = int((table["usage"].fillna(0) > 0).sum())
    n = len(table)
    fig = go.Figure(go.Bar(x=table["code"], y=table["usage"], marker_color="#9467bd", name="share of lookups",
                           hovertemplate="code %{x}: %{y:.3f}<extra></extra>"))
    if n:
        fig.add_hline(y=1 / n, line={"color": "#555", "dash": "dash", "width": 1.5})
        fig.add_scatter(x=[None], y=[None], mode="lines", name=f"uniform use: 1/{n} = {1 / n:.3f}",
                        line={"color": "#555", "dash": "dash", "width": 1.5}, hoverinfo="skip")
    fig.update_layout(xaxis={"title": "code"}, yaxis={"title": "share of lookups", "rangemode": "tozero"})
    plot_h, top = 240, 70
    below = x_axis_px() + 12
    styled(fig, f"{title}: {used} of {n} codes used" if n else title, height=plot_h)
    bottom = int(below + legend_below(fig, plot_h, below) + 10)
    fig.update_layout(height=top + plot_h + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig
