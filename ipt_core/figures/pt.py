"""Plotly figure builders for the app: pure functions from plain records to ``go.Figure``.

Every figure has a ``*_table`` function that gives the DataFrame behind it (the page offers it as a
CSV download), and the figure is drawn from that table, so what is downloaded is what is shown.
Inputs are plain JSON-like records as they lie in the store's ``meta`` (lists of dicts), never
store objects, so the builders are unit-tested directly.

Example:
    >>> runs = [{"task": "a", "family": "f", "seed": s, "test_acc": 0.6 + s / 10} for s in range(2)]
    >>> t = pt_results_table(runs, [{"task": "a", "test_acc": 0.5}], [])
    >>> round(float(t.loc[0, "pt_mean"]), 3), int(t.loc[0, "n_seeds"])
    (0.65, 2)
    >>> type(pt_results_figure(t)).__name__
    'Figure'
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ipt_core.figures.ipt import (
    PAPER_REFERENCE,
    attention_heatmap,
    attention_table,
    codebook_usage_figure,
    codebook_usage_table,
    ist_runs_figure,
    ist_runs_table,
    method_compare_figure,
    method_compare_table,
    recovery_bars_figure,
    recovery_bars_table,
    recovery_figure,
    recovery_table,
    stability_figure,
    stability_table,
    sweep_comparison_figure,
    sweep_comparison_table,
)
from ipt_core.figures.plotting import (
    CHANCE_COLOUR,
    PX_PER_TASK,
    as_float,
    chance_level,
    colour_map,
    curve_layout,
    family_colors,
    no_chance_note,
    seeds_note,
    styled,
)

__all__ = [
    "PAPER_REFERENCE", "family_colors",
    "pt_results_table", "pt_results_figure",
    "dev_curves_table", "dev_curves_figure",
    "recovery_table", "recovery_figure",
    "recovery_bars_table", "recovery_bars_figure",
    "sweep_comparison_table", "sweep_comparison_figure",
    "ist_runs_table", "ist_runs_figure",
    "stability_table", "stability_figure",
    "method_compare_table", "method_compare_figure",
    "attention_table", "attention_heatmap",
    "codebook_usage_table", "codebook_usage_figure",
]

# --------------------------------------------------------------------------------------------------
# prompt tuning


def pt_results_table(pt_runs: Sequence[Mapping], zero_shot: Sequence[Mapping] = (),
                     probe: Sequence[Mapping] = ()) -> pd.DataFrame:
    """Test accuracy per task: PT mean and std over seeds, zero-shot, linear probe, chance.

    ``pt_runs`` are ``pt_run`` metas (``task``, ``family``, ``seed``, ``test_acc``, ``labels``); ``zero_shot``
    and ``probe`` metas of those kinds. Columns: ``task, family, pt_mean, pt_std, n_seeds, zero_shot,
    probe, n_labels, chance`` (NaN where a row is missing; ``chance`` = 1 / ``n_labels``, uniform
    guessing, from any meta's ``labels`` list or ``n_labels``), sorted by family then task. Every std in
    this module is over seeds with ddof 0, as the core's summaries.

    Example:
        >>> pt_results_table([{"task": "a", "family": "f", "seed": 0, "test_acc": 0.7}]).columns.tolist()
        ['task', 'family', 'pt_mean', 'pt_std', 'n_seeds', 'zero_shot', 'probe', 'n_labels', 'chance']
        >>> float(pt_results_table([{"task": "a", "seed": 0, "test_acc": 0.7, "labels": ["x", "y", "z"]}]).chance[0])
        0.3333333333333333
    """
    cols = ["task", "family", "pt_mean", "pt_std", "n_seeds", "zero_shot", "probe", "n_labels", "chance"]
    fam: dict[str, str] = {}
    accs: dict[str, list[float]] = {}
    n_labels: dict[str, int] = {}
    for r in pt_runs:
        accs.setdefault(r["task"], []).append(as_float(r.get("test_acc")))
        fam.setdefault(r["task"], r.get("family", ""))
    zs = {r["task"]: as_float(r.get("test_acc")) for r in zero_shot}
    lp = {r["task"]: as_float(r.get("test_acc")) for r in probe}
    for r in [*pt_runs, *zero_shot, *probe]:
        fam.setdefault(r["task"], r.get("family", ""))
        labels = r.get("labels")
        n = float(len(labels)) if isinstance(labels, (list, tuple)) else as_float(r.get("n_labels"))
        if not math.isnan(n) and n >= 1:
            n_labels.setdefault(r["task"], round(n))
    rows = []
    for task in fam:
        a = np.array([x for x in accs.get(task, []) if not math.isnan(x)])
        n = n_labels.get(task)
        rows.append({"task": task, "family": fam[task], "pt_mean": float(a.mean()) if len(a) else math.nan,
                     "pt_std": float(a.std()) if len(a) else math.nan,
                     "n_seeds": int(len(a)), "zero_shot": zs.get(task, math.nan), "probe": lp.get(task, math.nan),
                     "n_labels": n if n else math.nan, "chance": 1.0 / n if n else math.nan})
    df = pd.DataFrame(rows, columns=cols)
    return df.sort_values(["family", "task"], kind="stable").reset_index(drop=True)


def pt_results_figure(table: pd.DataFrame, title: str = "Test accuracy per task") -> go.Figure:
    """Horizontal grouped bars, one row per task (every task labelled, the height grows with the
    number of tasks, top to bottom in the table's order): PT (mean, with ± std error bars only where
    a task has two or more seeds; the legend says which), zero-shot, linear probe, and a red tick per
    task at chance (1 / number of labels)."""
    fig = go.Figure()
    y = [f"{t}" for t in table["task"]]
    n_seeds = table["n_seeds"].fillna(0).astype(int)
    several = n_seeds >= 2
    hover_f = table["family"].tolist()
    fig.add_bar(name=f"prompt tuning ({seeds_note(n_seeds)})", y=y, x=table["pt_mean"], orientation="h",
                error_x={"type": "data", "array": table["pt_std"].where(several, 0.0).fillna(0),
                         "visible": bool(several.any()), "thickness": 1.5},
                marker_color="#1f77b4", customdata=np.stack([hover_f, n_seeds], axis=-1) if len(y) else None,
                hovertemplate="%{y} (%{customdata[0]})<br>PT %{x:.3f} over %{customdata[1]} seed(s)<extra></extra>")
    fig.add_bar(name="zero-shot", y=y, x=table["zero_shot"], orientation="h", marker_color="#bbbbbb",
                hovertemplate="%{y}<br>zero-shot %{x:.3f}<extra></extra>")
    fig.add_bar(name="linear probe", y=y, x=table["probe"], orientation="h", marker_color="#ff7f0e",
                hovertemplate="%{y}<br>probe %{x:.3f}<extra></extra>")
    chance = table["chance"] if "chance" in table.columns else pd.Series(math.nan, index=table.index)
    if chance.notna().any():
        fig.add_scatter(name="chance (1/labels)", y=y, x=chance, mode="markers",
                        marker={"symbol": "line-ns-open", "size": PX_PER_TASK - 4, "color": "#d62728",
                                "line": {"width": 2.5}},
                        hovertemplate="%{y}<br>chance %{x:.3f}<extra></extra>")
    plot_h = PX_PER_TASK * max(len(y), 3)
    top, bottom = (70 if title else 30), 130  # bottom: the x axis, its title and the legend (two rows)
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05,
                      xaxis={"title": "test accuracy", "range": [0, 1.05], "automargin": True},
                      yaxis={"autorange": "reversed", "automargin": True, "tickmode": "linear", "tick0": 0, "dtick": 1})
    styled(fig, title, height=plot_h + top + bottom)
    # the legend under the x axis, across the chart's width: on the right it would take a third of a
    # narrow chart from the bars
    fig.update_layout(margin={"l": 60, "r": 20, "t": top, "b": bottom},
                      legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -64 / plot_h, "yanchor": "top"})
    return fig


def dev_curves_table(pt_runs: Sequence[Mapping]) -> pd.DataFrame:
    """Dev accuracy per evaluation step, long form: ``task, seed, step, dev_acc, chance`` (chance: 1 /
    the number of labels in the run's ``labels`` or ``n_labels``, NaN where it has neither).

    Example:
        >>> dev_curves_table([{"task": "a", "seed": 0, "dev_curve": [[0, .5], [10, .6]], "labels": ["x", "y"]}]).shape
        (2, 5)
    """
    def chance(r: Mapping) -> float:
        return chance_level(len(r["labels"]) if isinstance(r.get("labels"), (list, tuple)) else r.get("n_labels"))

    rows = [{"task": r["task"], "seed": r.get("seed"), "step": int(s), "dev_acc": as_float(a), "chance": chance(r)}
            for r in pt_runs for s, a in (r.get("dev_curve") or [])]
    return pd.DataFrame(rows, columns=["task", "seed", "step", "dev_acc", "chance"])


def dev_curves_figure(table: pd.DataFrame, title: str = "Dev accuracy during prompt tuning") -> go.Figure:
    """One line per (task, seed), coloured by task; a dotted red line at each chance level the tasks have
    (1 / number of labels; the hover names its tasks), or a legend entry saying it is not known. The
    legend goes under the axis, its rows counted (the height grows with them)."""
    fig = go.Figure()
    colours = colour_map(table["task"])
    shown: set[str] = set()
    for (task, seed), g in table.groupby(["task", "seed"], sort=False):
        fig.add_scatter(x=g["step"], y=g["dev_acc"], mode="lines+markers", name=str(task), legendgroup=str(task),
                        showlegend=task not in shown, line={"color": colours[task]}, marker={"size": 4},
                        hovertemplate=f"{task} seed {seed}<br>step %{{x}}: %{{y:.3f}}<extra></extra>")
        shown.add(task)
    chance = table.drop_duplicates("task")[["task", "chance"]] if "chance" in table.columns else pd.DataFrame()
    levels = chance.dropna().groupby("chance", sort=True)["task"].apply(list) if len(chance) else pd.Series(dtype=object)
    steps = [table["step"].min(), table["step"].max()] if len(table) else []
    for i, (level, tasks) in enumerate(levels.items()):
        fig.add_scatter(x=steps, y=[level, level], mode="lines", name="chance (1 / labels)", legendgroup="chance",
                        showlegend=i == 0, line={"color": CHANCE_COLOUR, "dash": "dot", "width": 1.5},
                        hovertemplate=f"chance {level:.3f}: {', '.join(map(str, tasks))}<extra></extra>")
    if len(table) and not len(levels):
        fig.add_scatter(**no_chance_note("the runs do not say their labels"))
    fig.update_layout(xaxis={"title": "training step"}, yaxis={"title": "dev accuracy"})
    return curve_layout(fig, title)
