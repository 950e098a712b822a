"""Plotly figures and tables of a transfer report: which source task's prompt helps which target (pure functions).

A ``transfer_report`` (``python -m ipt_core transfer``) holds, per (target, source) pair, the observed
*gain* (test accuracy of prompt tuning started from the source's prompt minus the default
initialisation's, mean over seeds) and the source's similarity to the target under every *measure*
(``sim_<name>``); its ``ranking`` says how well each measure orders a target's sources
(:func:`ipt_core.analysis.transfer_ranking.ranking_report`). Here:

- :func:`gain_matrix_table` / :func:`gain_matrix_figure`: target x source heatmap of the gains, both axes
  ordered by hierarchical clustering, a target's own cell blank;
- :func:`ranked_sources_table` / :func:`ranked_sources_figure`: one target's sources, their gains and
  their rank under each measure; the gains in each measure's predicted order;
- :func:`topk_curve_table` / :func:`topk_curve_figure`: the share of the best source's gain reached by
  trying a measure's top k sources, beside random order and the oracle;
- :func:`metric_table`: every measure's ranking metrics with their bootstrap intervals, and random order;
- :func:`transfer_table` / :func:`transfer_figure`: gain against similarity, a panel per measure.

Gains are shown in accuracy points (x 100) in the new views; the tables say so in their column names.
Reports written before the ranking metrics existed (no ``measures``, ``ranking``, ``gain_seeds``,
``seed_agreement``) still draw: :func:`report_rankings` computes the ranking from the stored pairs.

Example:
    >>> pairs = [{"target": "a", "source": s, "gain": g, "same_family": False, "sim_prompt": c}
    ...          for s, g, c in [("b", .03, .9), ("c", -.01, .1), ("d", .01, .5)]]
    >>> ranked_sources_table(pairs, "a", ["prompt"])[["source", "rank_prompt"]].values.tolist()
    [['b', 1.0], ['d', 2.0], ['c', 3.0]]
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ipt_core.figures.plotting import (
    CHANCE_COLOUR,
    CHAR_PX,
    DESIGN_WIDTH,
    FULL_WIDTH,
    STANDOFF_PX,
    X_TITLE_PX,
    as_float,
    colour_map,
    heatmap_layout,
    legend_below,
    styled,
    text_px,
    wrap_label,
    x_axis_px,
)

# short names of the similarity measures for old reports (no "measures" dict) and narrow panel titles
SHORT_SPACE_NAMES = {"prompt": "raw prompt", "prompt_tokens": "prompt tokens", "intrinsic": "intrinsic (Proj)",
                     "ist": "intrinsic (IST)", "attention": "ATTEMPT attention", "activation_overlap": "activation overlap",
                     "text": "text baseline", "zero_shot_profile": "zero-shot profile"}
# the display order of the measures: the store writes a report's dicts with sorted keys, so the order of its
# "measures" is lost; the raw prompt first, the baselines that need no prompt last, unknown ones after them
MEASURE_ORDER = ["prompt", "prompt_tokens", "activation_overlap", "intrinsic", "ist", "attention", "text",
                 "zero_shot_profile"]
POINTS = 100.0  # gains and regrets are accuracy fractions in the report; the views show accuracy points
MEASURE_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
REFERENCE_COLOUR = "#555"  # the oracle's line; random order is CHANCE_COLOUR, as chance in every other chart


# --------------------------------------------------------------------------------------------------
# reading a report (old and new formats)


def measure_labels(report: Mapping) -> dict[str, str]:
    """``{measure: label}`` in display order: the report's ``measures`` (new format), else the measures of its
    ``spaces`` with :data:`SHORT_SPACE_NAMES` (old format). Only measures some pair has a ``sim_<name>`` for
    (an old report's ATTEMPT space may have a single pair: it is kept, the views say it has too few)."""
    pairs = list(report.get("pairs") or [])
    named = report.get("measures")
    if isinstance(named, Mapping) and named:
        out = {n: str((m or {}).get("label") or SHORT_SPACE_NAMES.get(n, n)) for n, m in named.items()}
    else:
        out = {n: SHORT_SPACE_NAMES.get(n, n) for n in (report.get("spaces") or {})}
        if not out:  # neither: the sim_ columns of the pairs
            out = {k[4:]: SHORT_SPACE_NAMES.get(k[4:], k[4:]) for p in pairs for k in p if k.startswith("sim_")}
    known = {n: i for i, n in enumerate(MEASURE_ORDER)}
    order = sorted(out, key=lambda n: (known.get(n, len(known)), n))
    return {n: out[n] for n in order if any(p.get(f"sim_{n}") is not None for p in pairs)}


def measure_descriptions(report: Mapping) -> dict[str, str]:
    """``{measure: one sentence}`` from the report's ``measures`` (empty for an old report)."""
    named = report.get("measures")
    if not isinstance(named, Mapping):
        return {}
    return {n: str(m["description"]) for n, m in named.items() if isinstance(m, Mapping) and m.get("description")}


def report_rank(entry: Any) -> tuple:
    """How a page orders a suite's transfer reports, first = shown: most seeds, then most (target, source)
    pairs, then newest (a one-seed report of the same runs is a part of the two-seed one)."""
    m = entry.meta
    return (len(m.get("seeds") or [m.get("seed", 0)]), len(m.get("pairs") or []), entry.created)


def report_rankings(report: Mapping, *, n_boot: int = 1000) -> dict[str, dict]:
    """``{measure: ranking_report}``: the report's stored ``ranking`` where it has one for a measure, else
    computed here from its pairs (``ranking_report(pairs, "sim_<name>")``: an old report has none)."""
    stored = report.get("ranking") if isinstance(report.get("ranking"), Mapping) else {}
    out = {}
    for name in measure_labels(report):
        if name in stored and isinstance(stored[name], Mapping):
            out[name] = dict(stored[name])
            continue
        from ipt_core.analysis.transfer_ranking import ranking_report  # scipy: loaded when first needed

        out[name] = ranking_report(list(report.get("pairs") or []), f"sim_{name}", n_boot=n_boot)
    return out


def _mean_gain_rows(pairs: Sequence[Mapping]) -> pd.DataFrame:
    """One row per (target, source): mean gain over any repeated rows (a row per seed), as a float."""
    df = pd.DataFrame(list(pairs))
    if df.empty:
        return pd.DataFrame(columns=["target", "source", "gain"])
    df["gain"] = [as_float(v) for v in df["gain"]]
    return df


# --------------------------------------------------------------------------------------------------
# the gain matrix


def _cluster_order(x: np.ndarray) -> list[int]:
    """Leaf order of an average-linkage clustering of the rows of ``x`` (Euclidean; optimal leaf ordering, so
    neighbouring rows are the most alike); the rows as they are when there are fewer than 3."""
    if len(x) < 3:
        return list(range(len(x)))
    from scipy.cluster.hierarchy import leaves_list, linkage  # the first page must not load scipy

    return [int(i) for i in leaves_list(linkage(x, method="average", optimal_ordering=True))]


def gain_matrix_table(pairs: Sequence[Mapping]) -> pd.DataFrame:
    """Target x source table of the gain in accuracy points (mean over seeds), a target's own cell NaN
    (a task is never its own source), rows and columns in the leaf order of a hierarchical clustering of
    the gain rows (targets) and columns (sources). With a single target the row is not clustered; its
    sources still are (by their gains alone). A missing cell (a pair not run) is NaN too; for the
    clustering only it counts as the target's mean gain, so it pulls its row and column nowhere.

    Example:
        >>> t = gain_matrix_table([{"target": "a", "source": "b", "gain": 0.02}, {"target": "a", "source": "a", "gain": 0.5}])
        >>> t.loc["a", "b"], bool(np.isnan(t.loc["a", "a"]))
        (2.0, True)
    """
    df = _mean_gain_rows(pairs)
    if df.empty:
        return pd.DataFrame(index=pd.Index([], name="target"), columns=pd.Index([], name="source"), dtype=float)
    targets = list(dict.fromkeys(df["target"]))
    sources = list(dict.fromkeys(df["source"]))
    table = df.pivot_table(index="target", columns="source", values="gain", aggfunc="mean", dropna=False)
    table = table.reindex(index=targets, columns=sources).astype(float) * POINTS
    for t in targets:
        if t in table.columns:
            table.loc[t, t] = np.nan  # the target's own prompt is not a source: masked, shown blank
    filled = table.to_numpy(copy=True)
    row_mean = np.nanmean(np.where(np.isfinite(filled), filled, np.nan), axis=1) if filled.size else np.array([])
    row_mean = np.where(np.isfinite(row_mean), row_mean, 0.0)
    filled = np.where(np.isfinite(filled), filled, row_mean[:, None])
    rows = _cluster_order(filled) if len(targets) > 1 else [0]
    cols = _cluster_order(filled.T)
    out = table.iloc[rows, cols]
    out.index.name, out.columns.name = "target", "source"
    return out


def gain_matrix_figure(table: pd.DataFrame, title: str = "Observed gain of every (target, source) pair",
                       *, width: int = FULL_WIDTH) -> go.Figure:
    """Heatmap of :func:`gain_matrix_table`: a row per target, a column per source (every label, turned where
    they do not fit ``width`` level), a diverging scale centred at 0 (blue: the source helps; red: it hurts)
    whose bar says so, a target's own cell blank, and a note under the chart that says why."""
    z = table.to_numpy(dtype=float)
    finite = z[np.isfinite(z)]
    m = float(np.max(np.abs(finite))) if finite.size else 1.0
    m = m if m > 0 else 1.0
    xs, ys = [str(c) for c in table.columns], [str(i) for i in table.index]
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, zmin=-m, zmax=m, zmid=0, colorscale="RdBu", hoverongaps=False, xgap=1, ygap=1,
        colorbar={"title": {"text": "gain<br>(accuracy<br>points)", "font": {"size": 12}}, "thickness": 16},
        hovertemplate="target %{y}<br>source %{x}<br>gain %{z:+.1f} points<extra></extra>"))
    heatmap_layout(fig, title, xs, ys, x_title="source task (its prompt starts the tuning)", y_title="target task",
                   row_px=max(26, -(-180 // max(1, len(ys)))), width=width)  # a colour bar needs ~180 px for its ticks
    # a masked cell (a target's own, or a pair not run) is blank; a grey cross says which, so it is not read
    # as the white of a zero gain
    own = [(x, y) for y in ys for x in xs if x == y]
    if own:
        fig.add_scatter(x=[x for x, _ in own], y=[y for _, y in own], mode="markers", showlegend=False,
                        marker={"symbol": "x-thin", "size": 10, "line": {"width": 2, "color": "#888"}},
                        hovertemplate="target %{y}: its own prompt is not a source<extra></extra>")
    clustered = "targets and sources" if len(ys) > 1 else "sources"
    note = (f"×: a task is not its own source (no run; a blank cell: a pair not run). Order: {clustered} clustered "
            "by their gains (average linkage), so alike rows and columns sit together.")
    return _note_under(fig, note, max((text_px(v) for v in ys), default=0) + 8 + X_TITLE_PX + 10, width)


def _note_under(fig: go.Figure, note: str, left: int, width: int) -> go.Figure:
    """A grey note under a heatmap's x-axis title, wrapped to the plot area's width (the row labels,
    ``left`` px, and the colour bar take the rest), the figure grown to hold it."""
    note = wrap_label(note, int((width - max(60, left) - 20 - 110) / (CHAR_PX * 11)))
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    below = fig.layout.margin.b + 16  # 20 px clear of the x title (the margin has 10 under it)
    fig.add_annotation(text=note, xref="paper", yref="paper", x=0, y=-below / plot_h, showarrow=False,
                       xanchor="left", yanchor="top", align="left", font={"size": 11, "color": "#555"})
    extra = 16 + len(note.split("<br>")) * 11 * 1.3 + 10
    fig.update_layout(height=int(fig.layout.height + extra), margin={"b": int(fig.layout.margin.b + extra)})
    return fig


# --------------------------------------------------------------------------------------------------
# one target's sources in each measure's order


def ranked_sources_table(pairs: Sequence[Mapping], target: str, measures: Sequence[str] | Mapping[str, str]) -> pd.DataFrame:
    """One target's sources: ``source, same_family, gain_points`` (mean over seeds), ``gain_seed_<i>`` per seed
    where the pairs have ``gain_seeds``, ``oracle_rank`` (1 = the largest gain) and ``rank_<measure>`` under
    each measure (1 = most similar; ties share the best rank; NaN where the measure has no score for it),
    sorted by gain, largest first."""
    names = list(measures)
    rows = [p for p in pairs if p.get("target") == target]
    out = []
    for p in rows:
        r = {"source": p.get("source"), "same_family": bool(p.get("same_family", False)),
             "gain_points": as_float(p.get("gain")) * POINTS}
        seeds = p.get("gain_seeds")
        if isinstance(seeds, (list, tuple)):
            for i, g in enumerate(seeds):
                r[f"gain_seed_{i}"] = as_float(g) * POINTS
        for n in names:
            r[f"sim_{n}"] = as_float(p.get(f"sim_{n}"))
        out.append(r)
    seed_cols = sorted({k for r in out for k in r if k.startswith("gain_seed_")}, key=lambda k: int(k.rsplit("_", 1)[1]))
    cols = ["source", "same_family", "gain_points", *seed_cols, "oracle_rank", *[f"rank_{n}" for n in names],
            *[f"sim_{n}" for n in names]]
    df = pd.DataFrame(out, columns=[c for c in cols if c not in ("oracle_rank",) and not c.startswith("rank_")])
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["oracle_rank"] = df["gain_points"].rank(ascending=False, method="min")
    for n in names:
        df[f"rank_{n}"] = df[f"sim_{n}"].rank(ascending=False, method="min")  # NaN scores stay unranked
    return df[cols].sort_values(["gain_points", "source"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _measure_colours(names: Sequence[str]) -> dict[str, str]:
    return {n: MEASURE_COLOURS[i % len(MEASURE_COLOURS)] for i, n in enumerate(names)}


def ranked_sources_figure(table: pd.DataFrame, labels: Mapping[str, str], target: str = "", *,
                          per_target: Mapping[str, Mapping] | None = None, width: int = FULL_WIDTH) -> go.Figure:
    """The target's sources in each measure's predicted order, as a grid: a row per measure, a column per
    predicted rank 1..S, each cell coloured by the observed gain of the source the measure puts there (hover:
    which source, its similarity). The oracle's row (the sources sorted by gain) on top: blue on the left, red
    on the right; a measure that puts the helpful sources first looks like it, a useless one is mixed, like
    random order (whose expectation, the mean gain in every cell, is the last row). ``per_target``:
    ``{measure: ranking per_target[target]}`` adds each measure's NDCG@3 to its row's label."""
    names = [n for n in labels if f"sim_{n}" in table.columns]
    s = len(table)
    gains = table["gain_points"].to_numpy(dtype=float) if s else np.array([])
    ok = np.isfinite(gains)
    rows: list[tuple[str, list, list, list]] = []  # (label, gains by position, sources, similarities)
    order = table[ok].sort_values(["gain_points", "source"], ascending=[False, True], kind="stable")
    rows.append(("oracle (sorted by gain)", order["gain_points"].tolist(), order["source"].tolist(), [math.nan] * len(order)))
    for n in names:
        part = table[ok & np.isfinite(table[f"sim_{n}"].to_numpy(dtype=float))]
        part = part.sort_values([f"sim_{n}", "source"], ascending=[False, True], kind="stable")
        got = (per_target or {}).get(n) or {}
        extra = f" · NDCG@3 {got['ndcg@3']:.2f}" if got.get("ndcg@3") is not None else ""
        rows.append((f"{labels[n]}{extra}", part["gain_points"].tolist(), part["source"].tolist(), part[f"sim_{n}"].tolist()))
    mean = float(np.mean(gains[ok])) if ok.any() else math.nan
    rows.append(("random order (expected: the mean gain)", [mean] * int(ok.sum()), ["any"] * int(ok.sum()),
                 [math.nan] * int(ok.sum())))
    width_k = max((len(r[1]) for r in rows), default=0)

    def pad(v: list, fill: Any) -> list:
        return list(v) + [fill] * (width_k - len(v))

    xs = [str(k) for k in range(1, width_k + 1)]
    ys = [r[0] for r in rows]
    z = [pad(r[1], math.nan) for r in rows]
    custom = [[[src, sim] for src, sim in zip(pad(r[2], ""), pad(r[3], math.nan))] for r in rows]
    finite = gains[ok]
    m = float(np.max(np.abs(finite))) if finite.size else 1.0
    m = m if m > 0 else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=xs, y=ys, zmin=-m, zmax=m, zmid=0, colorscale="RdBu", xgap=1, ygap=2, hoverongaps=False,
        customdata=custom, colorbar={"title": {"text": "gain<br>(accuracy<br>points)", "font": {"size": 12}},
                                     "thickness": 16},
        hovertemplate="%{y}<br>rank %{x}: %{customdata[0]}<br>similarity %{customdata[1]:.3f}"
                      "<br>gain %{z:+.1f} points<extra></extra>"))
    title = f"Target {target}: the sources in each measure's order" if target else "The sources in each measure's order"
    heatmap_layout(fig, title, xs, ys, x_title="rank the measure predicts (1 = the source it finds most similar)",
                   row_px=30, width=width)
    note = ("Each cell: the gain of the source the measure ranks there (hover: which source). A good measure is blue "
            "on the left and red on the right, like the oracle's row.")
    return _note_under(fig, note, max((text_px(v) for v in ys), default=0) + 8, width)


# --------------------------------------------------------------------------------------------------
# the top-k curve


def _pooled_curve(ranking: Mapping) -> dict | None:
    """``{"k", "share", "random", "n_targets"}``: the report's pooled ``share_curve``, else the mean over the
    targets' ``share_curves`` (targets whose best gain is not positive have None shares and are left out)."""
    got = ranking.get("share_curve")
    if isinstance(got, Mapping) and got.get("k"):
        return {"k": list(got["k"]), "share": [as_float(v) for v in got.get("share", [])],
                "random": [as_float(v) for v in got.get("random", [])], "n_targets": int(got.get("n_targets") or 0)}
    curves = [c for c in (ranking.get("share_curves") or {}).values()
              if c.get("share") and all(v is not None for v in c["share"])]
    if not curves:
        return None
    n = max(len(c["share"]) for c in curves)

    def mean_at(key: str, i: int) -> float:
        # a target with fewer sources has tried them all by k = its S: its share stays at its last value (1)
        vals = [as_float(c[key][min(i, len(c[key]) - 1)]) for c in curves]
        vals = [v for v in vals if not math.isnan(v)]
        return float(np.mean(vals)) if vals else math.nan

    return {"k": list(range(1, n + 1)), "share": [mean_at("share", i) for i in range(n)],
            "random": [mean_at("random", i) for i in range(n)], "n_targets": len(curves)}


def topk_curve_table(ranking: Mapping[str, Mapping], labels: Mapping[str, str]) -> pd.DataFrame:
    """``measure, label, k, share, random, n_targets``: the pooled top-k oracle share of each measure."""
    rows = []
    for n, lab in labels.items():
        c = _pooled_curve(ranking.get(n) or {})
        if c is None:
            continue
        for k, s, r in zip(c["k"], c["share"], c["random"]):
            rows.append({"measure": n, "label": lab, "k": int(k), "share": s, "random": r, "n_targets": c["n_targets"]})
    return pd.DataFrame(rows, columns=["measure", "label", "k", "share", "random", "n_targets"])


def topk_curve_figure(table: pd.DataFrame, title: str = "Best gain found by trying the top k sources",
                      *, width: int = DESIGN_WIDTH) -> go.Figure:
    """A line per measure of :func:`topk_curve_table`: at k, the best gain among the k sources the measure
    ranks first, as a share of the best source's gain (pooled as SPoT pools it: the mean over targets of the
    best gain found over the mean of the best source's gain); random
    order (exact expectation) and the oracle (1) as reference lines. Higher and earlier is better."""
    fig = go.Figure()
    names = list(dict.fromkeys(table["measure"])) if len(table) else []
    colours = _measure_colours(names)
    kmax = int(table["k"].max()) if len(table) else 1
    fig.add_scatter(x=[1, kmax], y=[1, 1], mode="lines", name="oracle (the best source first)",
                    line={"color": REFERENCE_COLOUR, "width": 5}, opacity=0.35, hoverinfo="skip")
    for n in names:
        g = table[table["measure"] == n]
        fig.add_scatter(x=g["k"], y=g["share"], mode="lines+markers", name=str(g["label"].iloc[0]),
                        line={"color": colours[n], "width": 2}, marker={"size": 6, "color": colours[n]},
                        hovertemplate=f"{g['label'].iloc[0]}<br>top %{{x}}: %{{y:.2f}} of the best gain"
                                      f"<br>{int(g['n_targets'].iloc[0])} targets<extra></extra>")
    if names:
        ref = table[table["measure"] == max(names, key=lambda n: int(table.loc[table["measure"] == n, "n_targets"].iloc[0]))]
        fig.add_scatter(x=ref["k"], y=ref["random"], mode="lines", name="random order (expected)",
                        line={"color": CHANCE_COLOUR, "dash": "dash", "width": 1.5},
                        hovertemplate="random order<br>top %{x}: %{y:.2f}<extra></extra>")
    n_t = int(table["n_targets"].max()) if len(table) else 0
    fig.update_layout(xaxis={"title": "k: sources tried, in the measure's order (most similar first)",
                             "range": [0.7, kmax + 0.3], "dtick": 1 if kmax <= 12 else 5 if kmax <= 60 else None,
                             "tick0": 1 if kmax <= 60 else None, "zeroline": False},
                      yaxis={"title": "share of the best source's gain", "zeroline": False})
    fig.add_hline(y=0, line={"color": "#bbb", "width": 1})
    title_lines = [title, f"{n_t} targets: mean best gain found / mean best-source gain"] if n_t else [title]
    top, plot_h = (90 if len(title_lines) > 1 else 70), 320
    below = x_axis_px() + 12
    styled(fig, "<br>".join(title_lines[:1]) + (f"<br><sup>{title_lines[1]}</sup>" if len(title_lines) > 1 else ""),
           height=plot_h)
    bottom = int(below + legend_below(fig, plot_h, below, width=width - 80) + 10)
    fig.update_layout(height=top + plot_h + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


# --------------------------------------------------------------------------------------------------
# the metric table


def _fmt(entry: Mapping | None, scale: float = 1.0, digits: int = 2) -> str:
    """``"0.71 [0.55, 0.86]"`` from a pooled ``{"mean", "ci_low", "ci_high"}``; ``"–"`` where undefined."""
    if not isinstance(entry, Mapping) or entry.get("mean") is None:
        return "–"
    m = f"{entry['mean'] * scale:.{digits}f}"
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    return m if lo is None or hi is None else f"{m} [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]"


METRIC_COLUMNS = ["measure", "Spearman pooled (p)", "Spearman per target", "targets p < 0.05",
                  "NDCG@3", "Regret@3 (points)", "share@1", "share@3"]


def metric_table(report: Mapping, rankings: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """One row per measure and a last "random order" row: Spearman of the pooled pairs (its p), the mean of the
    per-target Spearman, the targets whose Spearman is significant (p < 0.05) "n / N", NDCG@3, Regret@3 in
    accuracy points, and the top-1 and top-3 oracle shares, each "mean [95% bootstrap interval over targets]".
    Random order: the exact expectation of each metric for the same gains (its significant count: the nominal
    5% of targets). ``rankings``: :func:`report_rankings` (computed here when not given)."""
    labels = measure_labels(report)
    rankings = report_rankings(report) if rankings is None else rankings
    spaces = report.get("spaces") or {}
    rows = []
    for n, lab in labels.items():
        r, sp = rankings.get(n) or {}, spaces.get(n) or {}
        pooled = r.get("pooled") or {}
        rho, p = sp.get("spearman"), sp.get("p_value")
        rows.append({"measure": lab,
                     "Spearman pooled (p)": "–" if rho is None else f"{rho:+.2f}" + ("" if p is None else f" (p {p:.2g})"),
                     "Spearman per target": _fmt(pooled.get("spearman")),
                     "targets p < 0.05": f"{r.get('n_significant', 0)} / {r.get('n_targets', 0)}",
                     "NDCG@3": _fmt(pooled.get("ndcg@3")), "Regret@3 (points)": _fmt(pooled.get("regret_abs@3"), POINTS, 1),
                     "share@1": _fmt(pooled.get("share@1")), "share@3": _fmt(pooled.get("share@3"))})
    # random order: the expectations for the gains of the measure that ranks the most targets (all measures
    # share the gains; a measure with missing scores leaves some targets out)
    best = max(rankings.values(), key=lambda r: int(r.get("n_targets") or 0), default=None)
    if best is not None and best.get("chance"):
        ch = best["chance"]
        pooled = ch.get("pooled") or {}
        rows.append({"measure": "random order (expected)", "Spearman pooled (p)": "+0.00",
                     "Spearman per target": "0.00",
                     "targets p < 0.05": f"{float(ch.get('n_significant') or 0):.2g} / {best.get('n_targets', 0)}",
                     "NDCG@3": _fmt(pooled.get("ndcg@3")), "Regret@3 (points)": _fmt(pooled.get("regret_abs@3"), POINTS, 1),
                     "share@1": _fmt(pooled.get("share@1")), "share@3": _fmt(pooled.get("share@3"))})
    return pd.DataFrame(rows, columns=METRIC_COLUMNS)


def noise_ceiling_text(report: Mapping) -> str:
    """One line on how well the gains of one seed predict another's (the best any measure can hope for), or
    why there is none."""
    sa = report.get("seed_agreement")
    seeds = report.get("seeds") or ([report["seed"]] if "seed" in report else [])
    if not isinstance(sa, Mapping):
        return (f"Noise ceiling: not measured: this report has {len(seeds) or 'one'} seed"
                f"{'s' if len(seeds) > 1 else ''} (a run with --seeds 2 or more compares the seeds' gains).")
    pooled, per = sa.get("spearman_pooled"), sa.get("mean_per_target")
    f = lambda v: "–" if v is None else f"{v:+.2f}"  # noqa: E731
    return (f"Noise ceiling (seeds {', '.join(map(str, sa.get('seeds') or seeds))}): Spearman of "
            f"the gains of one seed against another's, pooled {f(pooled)}, mean per target {f(per)}. A measure cannot "
            "rank the sources much better than the gains' own repeatability.")


# --------------------------------------------------------------------------------------------------
# gain against similarity, a panel per measure (the tour's step 6)


def transfer_table(pairs: Sequence[Mapping]) -> pd.DataFrame:
    """The (target, source) pairs of a transfer report: gain and the similarity in every space."""
    return pd.DataFrame(list(pairs))


PANEL_PX = 220  # a panel's plot height


def transfer_figure(table: pd.DataFrame, correlations: Mapping[str, Mapping], *, colours: Mapping[str, str] | None = None,
                    title: str = "Does similarity predict transfer?", labels: Mapping[str, str] | None = None,
                    width: int = DESIGN_WIDTH) -> go.Figure:
    """One panel per measure (two per row), each (target, source) pair's gain against their similarity,
    coloured by target, diamonds for a source of the target's family (a legend entry, not a footnote); the
    measure (``labels``, else :data:`SHORT_SPACE_NAMES`) and its Spearman correlation in the panel's title,
    wrapped to the panel's width. The gap between rows is sized from the tallest title of the row below and
    the x axis above it, so a title never sits on the row above (``width``: the chart's width on the page)."""
    known = {n: i for i, n in enumerate(MEASURE_ORDER)}  # the store sorts a report's keys: the display order
    spaces = sorted((s for s in correlations if f"sim_{s}" in table.columns), key=lambda n: (known.get(n, len(known)), n))
    cols = min(2, max(1, len(spaces)))
    rows = max(1, -(-len(spaces) // cols))
    h_space = 0.14
    panel_w = (width - 80) * (1 - h_space * (cols - 1)) / cols
    chars = max(12, int(panel_w / (CHAR_PX * 13)))

    def name(s: str) -> str:
        c = correlations[s]
        rho = "n/a" if c.get("spearman") is None else f"{c['spearman']:+.2f}"
        lab = (labels or {}).get(s) or SHORT_SPACE_NAMES.get(s, s)
        return wrap_label(f"{lab}", chars) + f"<br>Spearman {rho} (n={c.get('n_pairs', 0)})"

    titles = [name(s) for s in spaces]
    lines = [max([t.count("<br>") + 1 for t in titles[r * cols:(r + 1) * cols]] or [1]) for r in range(rows)]
    title_px = [n * 13 * 1.3 + 6 for n in lines]
    x_px = x_axis_px() - STANDOFF_PX + 8  # tick labels, a short standoff (8) and the x title
    gaps = [x_px + title_px[r + 1] + 22 for r in range(rows - 1)]  # 20 px clear of the x title above
    plot_h = rows * PANEL_PX + sum(gaps)
    # row domains from the top: each panel PANEL_PX high, the gap below it for its x axis and the next titles
    domains, y = [], plot_h
    for r in range(rows):
        domains.append((max(0.0, (y - PANEL_PX) / plot_h), min(1.0, y / plot_h)))
        y -= PANEL_PX + (gaps[r] if r < rows - 1 else 0)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or [""], horizontal_spacing=h_space,
                        vertical_spacing=min(gaps) / plot_h if gaps else 0.1)
    for r in range(rows):
        for c in range(cols):
            fig.update_yaxes(domain=list(domains[r]), row=r + 1, col=c + 1)
    for i, ann in enumerate(fig.layout.annotations):  # subplot titles follow their panel's moved domain
        if i < len(spaces):
            ann.y = domains[i // cols][1]
        ann.font = {"size": 13}
    targets = list(dict.fromkeys(table["target"])) if len(table) else []
    colours = dict(colours or colour_map(targets))
    for i, s in enumerate(spaces):
        r, c = i // cols + 1, i % cols + 1
        for t in targets:
            g = table[(table["target"] == t) & np.isfinite(pd.to_numeric(table[f"sim_{s}"], errors="coerce"))]
            fig.add_scatter(x=g[f"sim_{s}"], y=g["gain"], mode="markers", name=f"target {t}", legendgroup=t,
                            showlegend=False, marker={"size": 8, "color": colours.get(t, "#999"),
                                                       "symbol": ["diamond" if f else "circle" for f in g["same_family"]]},
                            customdata=np.stack([g["source"], g["same_family"]], axis=-1) if len(g) else None,
                            hovertemplate=f"target {t}<br>source %{{customdata[0]}}<br>similarity %{{x:.3f}}"
                                          "<br>gain %{y:+.3f}<extra></extra>", row=r, col=c)
        fig.add_hline(y=0, line={"color": "#999", "dash": "dash", "width": 1}, row=r, col=c)
        fig.update_xaxes(title_text="similarity", title_standoff=8, row=r, col=c)
    for t in targets:  # the legend's key to the colours: a plain circle (a point's symbol says its source's family)
        fig.add_scatter(x=[None], y=[None], mode="markers", name=f"target {t}", legendgroup=t,
                        marker={"size": 8, "color": colours.get(t, "#999"), "symbol": "circle"}, hoverinfo="skip")
    for symbol, label in (("diamond", "source of the target's family"), ("circle", "source of another family")):
        fig.add_scatter(x=[None], y=[None], mode="markers", name=label, legendgroup="symbols",
                        marker={"size": 8, "color": "#777", "symbol": symbol}, hoverinfo="skip")
    fig.update_yaxes(title_text="test-accuracy gain", col=1)
    fig.update_yaxes(matches="y")  # one gain scale in every panel: the panels compare
    # plotly centres the figure's title in the top margin: the margin holds it twice over the first row's titles
    top = int(2 * title_px[0] + 30) if title else int(title_px[0] + 14)
    below = x_px + 8
    styled(fig, title, height=plot_h)
    # the legend under the last row's x-axis title, across the width (on the right it would halve the panels)
    bottom = int(below + legend_below(fig, plot_h, below, width=width - 80) + 10)
    fig.update_layout(height=plot_h + top + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig
