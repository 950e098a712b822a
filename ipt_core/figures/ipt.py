"""Figure builders of the IPT experiments and the method comparison: recovery versus d_I (and
versus training tasks, held-out family), per-task recovery, intrinsic-tuning runs, seed
stability, methods side by side, ATTEMPT attention and VIP codebook usage.

Pure functions from plain records (an entry's ``meta``) to a table and a ``go.Figure`` drawn from
that table, as in :mod:`ipt_core.figures.pt`, which re-exports every name here.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ipt_core.analysis.metrics import gain_recovery, pooled_gain_recovery, recovery
from ipt_core.figures.plotting import (
    PX_PER_TASK,
    as_float,
    colour_map,
    pstd,
    rgba,
    seeds_note,
    styled,
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
    ("seen", "random"): ("#1f77b4", "dot"),
    ("unseen", "random"): ("#d62728", "dot"),
}
_SUBSPACE_MARKER = {"found": "circle", "random": "x-thin-open"}  # shapes differ: readable on single points too
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


GAIN_TITLES = {"gain_recovery": "gain recovery: mean over tasks of (IST - ZS) / (PT - ZS)",
               "pooled_gain_recovery": "pooled gain recovery: Σ(IST - ZS) / Σ(PT - ZS)"}


def recovery_figure(table: pd.DataFrame, x: str = "d", *, reference: bool = True,
                    title: str = "Recovery of prompt tuning in the intrinsic subspace",
                    gain: str = "gain_recovery") -> go.Figure:
    """Two panels (recovery, and ``gain``: the mean of per-task gain recoveries or the pooled one) vs ``x``:
    a line per setting x subspace with a band of ± one std over seeds; the paper's reference points on the
    recovery panel (``x == "d"``); 1 is PT's level, and 0 on the gain panel zero-shot's."""
    if gain not in GAIN_TITLES:
        raise ValueError(f"gain {gain!r}: one of {', '.join(GAIN_TITLES)}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("recovery: IST / PT", GAIN_TITLES[gain]),
                        horizontal_spacing=0.12)
    numeric = pd.api.types.is_numeric_dtype(table[x]) if len(table) else True
    fig.add_hline(y=0.0, line={"color": "#bbb", "dash": "dot", "width": 1}, row=1, col=2)  # zero-shot's level
    for col, metric in ((1, "recovery"), (2, gain)):
        t = table[table["metric"] == metric]
        for (setting, subspace), g in t.groupby(["setting", "subspace"], sort=False):
            colour, dash = _SERIES_STYLE.get((setting, subspace), ("#9467bd", "dash"))
            name = f"{setting} tasks, {subspace} subspace"
            g = g.sort_values(x)
            if numeric and len(g) > 1:
                xs = list(g[x]) + list(g[x])[::-1]
                ys = list(g["mean"] + g["std"]) + list(g["mean"] - g["std"])[::-1]
                fig.add_scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=rgba(colour, 0.15),
                                line={"width": 0}, hoverinfo="skip", showlegend=False, legendgroup=name, row=1, col=col)
            fig.add_scatter(x=g[x], y=g["mean"], mode="lines+markers", name=name, legendgroup=name,
                            showlegend=col == 1, line={"color": colour, "dash": dash},
                            marker={"symbol": _SUBSPACE_MARKER.get(subspace, "diamond"), "size": 10 if subspace == "found" else 11,
                                    "color": colour, "line": {"color": colour, "width": 2}},
                            error_y=None if numeric and len(g) > 1 else {"type": "data", "array": g["std"]},
                            customdata=np.stack([g["std"], g["n_seeds"]], axis=-1),
                            hovertemplate=f"{name}<br>{x}=%{{x}}: %{{y:.3f}} ± %{{customdata[0]:.3f}}"
                                          f" (%{{customdata[1]}} seeds)<extra></extra>", row=1, col=col)
        fig.add_hline(y=1.0, line={"color": "#999", "dash": "dash", "width": 1}, row=1, col=col)
    if reference and x == "d":
        # the values go in the legend and the hover, not as text on the plot: a label there overlaps the data
        for setting, symbol in (("seen", "star"), ("unseen", "diamond")):
            pts = sorted((p for p in PAPER_REFERENCE if p["setting"] == setting), key=lambda p: p["d"])
            colour = _SERIES_STYLE[(setting, "found")][0]
            values = "; ".join(f"{p['recovery']:.0%} at d_I {p['d']}" for p in pts)
            fig.add_scatter(x=[p["d"] for p in pts], y=[p["recovery"] for p in pts], mode="markers",
                            name=f"{PAPER_LABEL} [{values}], {setting}",
                            marker={"symbol": symbol, "size": 13, "color": "white", "line": {"color": colour, "width": 2}},
                            hovertemplate=f"{PAPER_LABEL}<br>{setting}: %{{y:.0%}} at d_I=%{{x}}<extra></extra>",
                            row=1, col=1)
    axis_title = "intrinsic dimension d_I" if x == "d" else x.replace("_", " ")
    for col in (1, 2):
        ticks = None
        if numeric and len(table):
            extra = {p["d"] for p in PAPER_REFERENCE} if (reference and x == "d" and col == 1) else set()
            ticks = sorted({float(v) for v in table[x]} | extra)
        fig.update_xaxes(title_text=axis_title, type="log" if (x == "d" and numeric) else None, row=1, col=col,
                         tickvals=ticks, ticktext=[f"{v:g}" for v in ticks] if ticks else None)
    fig.update_yaxes(title_text="fraction of PT", row=1, col=1)
    styled(fig, title, height=560)
    # six long legend entries: below the panels, so both panels keep their width
    fig.update_layout(legend={"orientation": "h", "yanchor": "top", "y": -0.2, "x": 0, "xanchor": "left"},
                      margin={"b": 150})
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


def _legend_rows(names: Sequence[str], width: float = 500) -> int:
    """Rows a horizontal legend of ``names`` takes in ``width`` px (12 px text, 0.55 em a character,
    40 px for the symbol and the gap)."""
    rows, used = 1, 0.0
    for n in names:
        w = len(n) * 0.55 * 12 + 40
        if used and used + w > width:
            rows, used = rows + 1, 0.0
        used += w
    return rows


def _horizontal_layout(fig: go.Figure, title: str, n_tasks: int, px_per_task: int, legend_names: Sequence[str],
                       **axes: Any) -> go.Figure:
    """Height from the number of tasks (``px_per_task`` each), the legend under the x axis across the
    width (on the right it would take a third of a narrow chart from the bars), its rows counted."""
    plot_h = px_per_task * max(n_tasks, 3)
    top, bottom = (70 if title else 30), 64 + 22 * _legend_rows(legend_names) + 16
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05, **axes)
    styled(fig, title, height=plot_h + top + bottom)
    fig.update_layout(margin={"l": 60, "r": 20, "t": top, "b": bottom},
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -64 / plot_h, "yanchor": "top"})
    return fig


def _reference_lines(fig: go.Figure, **where: Any) -> None:
    """The 0 (zero-shot) and 1 (PT) lines of a recovery axis, named in the legend (a shape has no entry)."""
    for x0, name, colour, dash in _REF_LINES:
        fig.add_vline(x=x0, line={"color": colour, "dash": dash, "width": 1.5}, **where)
        fig.add_scatter(x=[None], y=[None], mode="lines", name=name, line={"color": colour, "dash": dash, "width": 1.5},
                        hoverinfo="skip")


def recovery_bars_figure(table: pd.DataFrame, metric: str = "recovery", title: str = "") -> go.Figure:
    """Horizontal bars, one row per task (every task labelled; the height grows with the number of
    tasks; seen tasks first, as the table is sorted): ``metric`` per subspace (found solid, random
    hatched; blue seen, red unseen), with ± std error bars only where a task has two or more seeds
    (the legend says which); lines at 0 (zero-shot's level) and 1 (PT's), named in the legend; for
    ``recovery`` (IST / PT) a tick per task at zero-shot / PT, where the table has it."""
    if metric not in ("recovery", "gain_recovery"):
        raise ValueError(f"metric must be 'recovery' or 'gain_recovery', got {metric!r}")
    fig = go.Figure()
    tasks = [str(t) for t in dict.fromkeys(table["task"])]
    what = RECOVERY_AXIS[metric].split(" = ")[1]
    for (setting, subspace), g in table.groupby(["setting", "subspace"], sort=False):
        colour, _ = _SERIES_STYLE.get((setting, subspace), ("#9467bd", "dash"))
        n_seeds = g["n_seeds"].fillna(0).astype(int)
        # seen and unseen tasks never share a row: one slot per subspace, not per setting x subspace
        fig.add_bar(y=[str(t) for t in g["task"]], x=g[metric], orientation="h", offsetgroup=str(subspace),
                    name=f"{setting} tasks, {subspace} subspace ({seeds_note(n_seeds)})",
                    marker={"color": colour, "pattern": {"shape": "/" if subspace == "random" else ""}},
                    error_x=_std_where_seeds(g[f"{metric}_std"], n_seeds),
                    customdata=np.stack([g["family"], n_seeds, g[f"{metric}_std"]], axis=-1),
                    hovertemplate=f"%{{y}} (%{{customdata[0]}}), {setting} task, {subspace} subspace<br>"
                                  f"{metric.replace('_', ' ')} %{{x:.3f}} (std %{{customdata[2]:.3f}} over "
                                  f"%{{customdata[1]}} seed(s))<br>= {what}<extra></extra>")
    if metric == "recovery" and "zero_shot_recovery" in table.columns and table["zero_shot_recovery"].notna().any():
        zs = table.drop_duplicates("task")
        fig.add_scatter(y=[str(t) for t in zs["task"]], x=zs["zero_shot_recovery"], mode="markers",
                        name="zero-shot / PT (no tuning)",
                        marker={"symbol": "line-ns-open", "size": PX_PER_TASK - 4, "color": "#333", "line": {"width": 2.5}},
                        hovertemplate="%{y}<br>zero-shot accuracy / PT accuracy %{x:.3f}<extra></extra>")
    _reference_lines(fig)
    names = [tr.name for tr in fig.data if tr.name]
    return _horizontal_layout(fig, title or f"Per-task {metric.replace('_', ' ')}", len(tasks), PX_PER_TASK, names,
                              xaxis={"title": RECOVERY_AXIS[metric], "automargin": True, "zeroline": False},
                              yaxis={"title": "task", "autorange": "reversed", "automargin": True,
                                     "tickmode": "linear", "tick0": 0, "dtick": 1})


def sweep_comparison_table(sweeps: Sequence[tuple[str, Sequence[Mapping]]], d: Any,
                           gain: str = "gain_recovery") -> pd.DataFrame:
    """Several IPT sweeps (ablations) side by side at one d_I: gain recovery of the found and the random
    subspace on seen and unseen tasks, test and dev split, over tasks then mean over seeds.

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
                            gain: str = "gain_recovery") -> go.Figure:
    """Gain recovery (``gain``, as the table was made) per sweep (bars), seen and unseen, found against the
    random control (hatched)."""
    fig = go.Figure()
    sel = table[table["split"] == split]
    for (setting, subspace), g in sel.groupby(["setting", "subspace"], sort=False):
        colour, _ = _SERIES_STYLE.get((setting, subspace), ("#9467bd", "dash"))
        fig.add_bar(x=g["sweep"], y=g["mean"], name=f"{setting} tasks, {subspace} subspace",
                    marker={"color": colour, "pattern": {"shape": "/" if subspace == "random" else ""}},
                    error_y={"type": "data", "array": g["std"], "visible": True},
                    customdata=np.stack([g["n_tasks"], g["n_seeds"]], axis=-1),
                    hovertemplate="%{x}<br>%{y:.3f} over %{customdata[0]} tasks, %{customdata[1]} seeds<extra></extra>")
    fig.add_hline(y=0.0, line={"color": "#999", "dash": "dash", "width": 1})  # zero-shot's level
    what = gain.replace("_", " ")
    fig.update_layout(barmode="group", yaxis={"title": f"{what} ({split} split)"}, xaxis={"tickangle": -20})
    return styled(fig, title or f"Sweeps side by side: {what} on the {split} split")


def ist_runs_table(runs: Sequence[Mapping], zero_shot: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Intrinsic-tuning runs (``ist_run`` metas) per task, d_I and subspace: test accuracy (mean and
    std over seeds) beside the task's zero-shot accuracy and, where a run carries it
    (``pt_test_acc``: the page adds the PT runs of the subspace's PT configuration), PT's; then
    recovery = IST / PT and gain recovery = (IST − zero-shot) / (PT − zero-shot), of the means (NaN
    where a score is missing or PT does not beat zero-shot). ``zero_shot`` maps a task to its accuracy;
    a run's own ``zero_shot_test_acc`` wins. Columns: ``task, family, setting, d, subspace,
    ist_test_acc, ist_std, n_seeds, zero_shot, pt_test_acc, recovery, gain_recovery``.

    Example:
        >>> t = ist_runs_table([{"task": "a", "d": 8, "subspace": "found", "setting": "unseen", "seed": 0,
        ...                      "test_acc": 0.7, "pt_test_acc": 0.8}], {"a": 0.5})
        >>> t[["task", "ist_test_acc", "zero_shot", "pt_test_acc"]].values.tolist(), round(float(t.gain_recovery[0]), 3)
        ([['a', 0.7, 0.5, 0.8]], 0.667)
    """
    cols = ["task", "family", "setting", "d", "subspace", "ist_test_acc", "ist_std", "n_seeds", "zero_shot",
            "pt_test_acc", "recovery", "gain_recovery"]
    if not runs:
        return pd.DataFrame(columns=cols)
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
    return out[cols].reset_index(drop=True)


def ist_runs_figure(table: pd.DataFrame, title: str = "Intrinsic tuning: test accuracy per task") -> go.Figure:
    """Horizontal bars, one row per task (every task labelled; the row grows with the number of d_I x
    subspace groups): IST test accuracy per d_I x subspace (random hatched; ± std error bars only
    where a task has two or more seeds), a tick at the task's zero-shot accuracy and a diamond at its
    PT accuracy. Where the table has PT, a second panel beside it, on the same rows: gain recovery =
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
        marker = {"color": colour, "pattern": {"shape": "/" if subspace == "random" else ""}}
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
    if has_pt:
        fig.add_scatter(y=[str(t) for t in zs["task"]], x=zs["pt_test_acc"], mode="markers",
                        name="PT: prompt tuning (the whole prompt trains)",
                        marker={"symbol": "diamond", "size": 10, "color": "#ff7f0e", "line": {"color": "#333", "width": 1}},
                        hovertemplate="%{y}<br>PT %{x:.3f}<extra></extra>", row=1, col=1)
        _reference_lines(fig, row=1, col=2)
    names = [tr.name for tr in fig.data if tr.name and tr.showlegend is not False]
    _horizontal_layout(fig, title, len(tasks), row_px, names)
    fig.update_xaxes(title_text="test accuracy", range=[0, 1.02], automargin=True, row=1, col=1)
    fig.update_yaxes(title_text="task", autorange="reversed", automargin=True, tickmode="linear", tick0=0, dtick=1,
                     row=1, col=1)
    if has_pt:
        fig.update_xaxes(title_text="gain recovery<br>(IST − ZS) / (PT − ZS)", title_font={"size": 12},
                         automargin=True, zeroline=False, row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=2)
    return fig


# --------------------------------------------------------------------------------------------------
# stability


def stability_table(curves: Sequence[Mapping], task: str | None = None) -> pd.DataFrame:
    """The data of :func:`stability_figure`, long form: ``init, series, step, dev_acc, std, n_seeds``.

    ``series`` is ``"seed <s>"`` for a seed's trace (its dev accuracy, averaged over the tasks when
    ``task`` is None; only steps all those tasks share) or ``"mean"`` for the mean over seeds with
    its std. ``curves`` is an ``ipt_stability`` entry's ``meta["curves"]``.

    Example:
        >>> c = [{"task": "a", "seed": s, "init": "ist", "steps": [0, 1], "dev_acc": [.5, .6 + s / 10]}
        ...      for s in range(2)]
        >>> t = stability_table(c); t[t.series == "mean"]["dev_acc"].round(2).tolist()
        [0.5, 0.65]
    """
    cols = ["init", "series", "step", "dev_acc", "std", "n_seeds"]
    long = pd.DataFrame([{"task": c["task"], "seed": c["seed"], "init": c["init"], "step": int(s), "dev_acc": as_float(a)}
                         for c in curves if task is None or c["task"] == task
                         for s, a in zip(c.get("steps", []), c.get("dev_acc", []))])
    if long.empty:
        return pd.DataFrame(columns=cols)
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
    return pd.concat(parts, ignore_index=True)[cols]


def stability_figure(table: pd.DataFrame, title: str = "Dev accuracy over training, across seeds",
                     *, traces: bool = True) -> go.Figure:
    """Mean ± std band over seeds per init (PT from random init vs IST-initialised PT), plus thin
    per-seed traces."""
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
            xs = list(band["step"]) + list(band["step"])[::-1]
            ys = list(band["dev_acc"] + band["std"]) + list(band["dev_acc"] - band["std"])[::-1]
            fig.add_scatter(x=xs, y=ys, mode="lines", fill="toself", fillcolor=rgba(colour, 0.18),
                            line={"width": 0}, hoverinfo="skip", legendgroup=name, showlegend=False)
            fig.add_scatter(x=band["step"], y=band["dev_acc"], mode="lines", name=f"{name} (mean ± std)",
                            legendgroup=name, line={"color": colour, "width": 3},
                            customdata=np.stack([band["std"], band["n_seeds"]], axis=-1),
                            hovertemplate=f"{name}<br>step %{{x}}: %{{y:.3f}} ± %{{customdata[0]:.3f}}"
                                          " (%{customdata[1]} seeds)<extra></extra>")
    fig.update_layout(xaxis={"title": "training step"}, yaxis={"title": "dev accuracy"})
    return styled(fig, title)


# --------------------------------------------------------------------------------------------------
# methods (ATTEMPT, VIP, ...)


def method_compare_table(rows: Sequence[Mapping]) -> pd.DataFrame:
    """Per (task, method): test accuracy mean/std over seeds, trainable parameters and seconds.

    Columns: ``task, method, test_acc, test_acc_std, test_f1, n_seeds, trainable_params, seconds``.
    """
    cols = ["task", "method", "test_acc", "test_acc_std", "test_f1", "n_seeds", "trainable_params", "seconds"]
    if not rows:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame([{"task": r.get("task"), "method": r.get("method"), "seed": r.get("seed"),
                        "test_acc": as_float(r.get("test_acc")), "test_f1": as_float(r.get("test_f1")),
                        "trainable_params": as_float(r.get("trainable_params")), "seconds": as_float(r.get("seconds"))}
                       for r in rows])
    out = df.groupby(["task", "method"], sort=False).agg(
        test_acc=("test_acc", "mean"), test_acc_std=("test_acc", pstd), test_f1=("test_f1", "mean"),
        n_seeds=("seed", "nunique"), trainable_params=("trainable_params", "mean"), seconds=("seconds", "mean"),
    ).reset_index()
    out["test_acc_std"] = out["test_acc_std"].fillna(0.0)
    return out[cols]


def method_compare_figure(table: pd.DataFrame, title: str = "Test accuracy per task and method") -> go.Figure:
    """Grouped bars: one colour per method, ± std over seeds."""
    fig = go.Figure()
    colours = colour_map(table["method"])
    for method, g in table.groupby("method", sort=False):
        fig.add_bar(x=g["task"], y=g["test_acc"], name=str(method), marker_color=colours[method],
                    error_y={"type": "data", "array": g["test_acc_std"], "visible": True},
                    hovertemplate=f"{method}<br>%{{x}}: %{{y:.3f}}<extra></extra>")
    fig.update_layout(barmode="group", yaxis={"title": "test accuracy", "range": [0, 1.05]}, xaxis={"tickangle": -40})
    return styled(fig, title)


def attention_table(attention: Mapping) -> pd.DataFrame:
    """ATTEMPT's mean attention weights: rows = target tasks, columns = source prompts."""
    return pd.DataFrame(np.asarray(attention["weights"], dtype=float), index=pd.Index(attention["targets"], name="target"),
                        columns=list(attention["sources"]))


def attention_heatmap(table: pd.DataFrame, title: str = "ATTEMPT: attention of target tasks on source prompts") -> go.Figure:
    """Heatmap of an :func:`attention_table` (a task-similarity signal)."""
    fig = go.Figure(go.Heatmap(z=table.values, x=list(table.columns), y=list(table.index), colorscale="Viridis",
                               colorbar={"title": "weight"},
                               hovertemplate="target %{y}<br>source %{x}<br>%{z:.3f}<extra></extra>"))
    fig.update_layout(yaxis={"autorange": "reversed"}, xaxis={"tickangle": -40})
    return styled(fig, title, height=max(380, 22 * len(table) + 160))


def codebook_usage_table(usage: Sequence[float]) -> pd.DataFrame:
    """VIP's codebook usage: ``code, usage`` (fraction of lookups per code)."""
    return pd.DataFrame({"code": list(range(len(usage))), "usage": [as_float(u) for u in usage]})


def codebook_usage_figure(table: pd.DataFrame, title: str = "VIP: codebook usage") -> go.Figure:
    fig = go.Figure(go.Bar(x=table["code"], y=table["usage"], marker_color="#9467bd",
                           hovertemplate="code %{x}: %{y:.3f}<extra></extra>"))
    fig.update_layout(xaxis={"title": "code"}, yaxis={"title": "share of lookups"})
    return styled(fig, title, height=360)
