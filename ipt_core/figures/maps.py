"""Plotly figures of the task map and its measured quality (pure functions; the transfer test's are in
:mod:`ipt_core.figures.transfer`).

As in :mod:`ipt_core.figures.pt`, every figure has a ``*_table`` with the numbers it draws. What is
new here: one colour per family for the whole suite (:func:`family_colors`, the same in every
space), PCA axes that say the variance they explain, axis limits an outlier does not set, labels
only where they do not pile up (hover shows every task), a similarity heatmap whose colour scale
follows the data, and a dendrogram with every leaf labelled.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"task": list("abcdef"), "family": list("fgfgfg"), "x": [0, 1, 2, 3, 4, 50], "y": [0, 1, 2, 3, 4, 5]})
    >>> fig = task_map_figure(t, colours=family_colors(["g", "f"]))
    >>> fig.layout.xaxis.range[1] < 50            # the outlier does not set the scale
    True
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ipt_core.analysis.map_quality import off_diagonal, robust_range
from ipt_core.figures.plotting import (  # one colour per family for every chart of a suite
    CHAR_PX,
    DESIGN_WIDTH,
    PX_PER_TASK,
    family_colors,
    heatmap_layout,
    legend_below,
    styled,
    text_px,
    wrap_label,
    x_axis_px,
)


def pca_axis_titles(ratio: Sequence[float]) -> tuple[str, str]:
    """``("PC 1 (23% of variance)", "PC 2 (12% of variance)")``."""
    r = list(ratio) + [0.0, 0.0]
    return tuple(f"PC {i + 1} ({100 * r[i]:.0f}% of variance)" for i in range(2))  # type: ignore[return-value]


def label_mask(x: Sequence[float], y: Sequence[float], *, min_gap: float = 0.07, max_labels: int = 40,
               ranges: tuple[tuple[float, float], tuple[float, float]] | None = None) -> list[bool]:
    """Which points get a text label: greedily, a point is labelled when no labelled point lies
    within ``min_gap`` (a fraction of the axes' spans); at most ``max_labels``. The others are
    shown on hover only.

    Example:
        >>> label_mask([0, 0.001, 1], [0, 0, 1])
        [True, False, True]
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if ranges is None:
        ranges = ((float(xs.min()), float(xs.max())), (float(ys.min()), float(ys.max()))) if len(xs) else ((0, 1), (0, 1))
    sx = max(ranges[0][1] - ranges[0][0], 1e-12)
    sy = max(ranges[1][1] - ranges[1][0], 1e-12)
    pts = np.stack([xs / sx, ys / sy], axis=1) if len(xs) else np.zeros((0, 2))
    keep: list[int] = []
    out = [False] * len(pts)
    for i in range(len(pts)):
        if len(keep) >= max_labels:
            break
        if not keep or np.min(np.linalg.norm(pts[keep] - pts[i], axis=1)) >= min_gap:
            keep.append(i)
            out[i] = True
    return out


def task_map_figure(table: pd.DataFrame, title: str = "", *, highlight: Sequence[str] = (),
                    axis_titles: tuple[str, str] = ("component 1", "component 2"),
                    colours: Mapping[str, str] | None = None, robust: bool = True, labels: str = "auto",
                    subtitle: str = "") -> go.Figure:
    """Scatter of tasks (``task, family, x, y``) coloured by family (``colours``: :func:`family_colors`).

    ``robust``: axis limits from :func:`robust_range`; a point beyond them is drawn on the border
    as a triangle, its hover giving its true coordinates. ``labels``: ``"auto"`` (labels where they
    do not overlap), ``"all"`` or ``"hover"`` (none; hover only).
    """
    colours = dict(colours or family_colors(table["family"]))
    fig = go.Figure()
    xr = robust_range(table["x"]) if robust and len(table) else None
    yr = robust_range(table["y"]) if robust and len(table) else None
    x = table["x"].to_numpy(dtype=float)
    y = table["y"].to_numpy(dtype=float)
    cx = np.clip(x, *xr) if xr else x
    cy = np.clip(y, *yr) if yr else y
    outside = (cx != x) | (cy != y)
    if labels == "all":
        show = [True] * len(table)
    elif labels == "hover":
        show = [False] * len(table)
    else:
        show = label_mask(cx, cy, ranges=(xr, yr) if xr else None)
    t = table.assign(_x=cx, _y=cy, _out=outside, _label=[n if s else "" for n, s in zip(table["task"], show)])
    for fam, g in t.groupby("family", sort=True):
        fig.add_scatter(x=g["_x"], y=g["_y"], mode="markers+text", name=str(fam), text=g["_label"],
                        textposition="top center", textfont={"size": 10}, cliponaxis=False,
                        marker={"size": 12, "color": colours.get(str(fam), "#999"), "line": {"width": 1, "color": "white"},
                                "symbol": ["triangle-up" if o else "circle" for o in g["_out"]]},
                        customdata=np.stack([g["task"], g["family"], g["x"], g["y"]], axis=-1),
                        hovertemplate="<b>%{customdata[0]}</b><br>family: %{customdata[1]}"
                                      "<br>(%{customdata[2]:.3g}, %{customdata[3]:.3g})<extra></extra>")
    hl = t[t["task"].isin(list(highlight))]
    if len(hl):
        fig.add_scatter(x=hl["_x"], y=hl["_y"], mode="markers", name="selected", hoverinfo="skip",
                        marker={"size": 22, "color": "rgba(0,0,0,0)", "line": {"width": 2, "color": "black"}})
    fig.update_layout(xaxis={"title": axis_titles[0], "zeroline": False, **({"range": list(xr)} if xr else {})},
                      yaxis={"title": axis_titles[1], "zeroline": False, **({"range": list(yr)} if yr else {})},
                      dragmode="lasso")
    n_out = int(outside.sum())
    top, bottom = (70 if title else 30), 60
    if n_out or subtitle:
        note = subtitle + (("  ·  " if subtitle else "") + f"{n_out} task(s) beyond the robust axis limits, drawn as "
                           "triangles on the border" if n_out else "")
        # under the x axis's title, wrapped to a ~560 px chart (the tour shows the map beside its text)
        note = wrap_label(note, int((DESIGN_WIDTH - 80) / (CHAR_PX * 11)))
        plot_h = 540 - top - 60
        below = x_axis_px() + 24  # clear of a long centred axis title ("PC 1 (23% of variance)")
        fig.add_annotation(text=note, xref="paper", yref="paper", x=0, y=-below / plot_h, showarrow=False,
                           xanchor="left", yanchor="top", align="left", font={"size": 11, "color": "#555"})
        bottom = int(below + len(note.split("<br>")) * 11 * 1.3 + 14)
    styled(fig, title, height=540 - 60 + bottom)
    fig.update_layout(margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


def similarity_heatmap(table: pd.DataFrame, title: str = "Cosine similarity (clustered)", *,
                       centred: bool = True) -> go.Figure:
    """Heatmap of a square similarity table whose colour scale follows the off-diagonal values
    (symmetric around 0 when they straddle it), and says so in the colour bar's title. Every task
    labelled on both axes: a row ``22`` px high each, the columns' labels turned where they do not fit
    level across the main column (the page shows it there, not beside its table)."""
    z = table.to_numpy(dtype=float)
    off = off_diagonal(z) if len(z) > 1 else np.array([1.0])
    lo, hi = float(off.min()), float(off.max())
    if lo < 0 < hi:
        m = max(-lo, hi)
        zmin, zmax, scale = -m, m, "RdBu_r"
    else:
        zmin, zmax, scale = lo, hi if hi > lo else lo + 1e-6, "Viridis"
    what = "centred cos" if centred else "cos"
    fig = go.Figure(go.Heatmap(z=z, x=list(table.columns), y=list(table.index), zmin=zmin, zmax=zmax, colorscale=scale,
                               colorbar={"title": {"text": f"{what}<br>off-diagonal<br>{lo:.2f} … {hi:.2f}",
                                                   "font": {"size": 12}}},
                               hovertemplate="%{y} vs %{x}<br>" + what + " %{z:.3f}<extra></extra>"))
    return heatmap_layout(fig, title, [str(c) for c in table.columns], [str(i) for i in table.index])


def dendrogram_figure(dendro: Mapping, title: str = "Dendrogram (average linkage, 1 - cosine)") -> go.Figure:
    """The dendrogram as line segments, lying down: a row per task (every leaf labelled, level; the
    height grows with the tasks), the merge distance along the x axis."""
    fig = go.Figure()
    for xs, ys in zip(dendro.get("icoord", []), dendro.get("dcoord", [])):
        fig.add_scatter(x=ys, y=xs, mode="lines", line={"color": "#444", "width": 1.5}, hoverinfo="skip", showlegend=False)
    labels = list(dendro.get("labels", []))
    n = len(labels)
    fig.update_layout(yaxis={"tickmode": "array", "tickvals": [5 + 10 * i for i in range(n)], "ticktext": labels,
                             "showgrid": False, "range": [10 * max(n, 1), 0], "automargin": True, "zeroline": False},
                      xaxis={"title": "distance (1 - cosine)", "rangemode": "tozero", "zeroline": False})
    plot_h = PX_PER_TASK * max(n, 4)
    top = 70 if title else 30
    styled(fig, title)
    fig.update_layout(height=top + plot_h + 70, margin={"l": 60, "r": 20, "t": top, "b": 70})
    return fig


def quality_table(report: Mapping) -> pd.DataFrame:
    """One row per space and baseline of a map-quality report: ``space, kind, n_tasks, nn1_family,
    nn3_family, chance, trustworthiness``."""
    rows = []
    for group, kind in (("spaces", "space"), ("baselines", "baseline")):
        for name, q in (report.get(group) or {}).items():
            rows.append({"space": name, "kind": kind, "n_tasks": q["n_tasks"], "nn1_family": q["nn1_family"],
                         "nn3_family": q["nn3_family"], "chance": q["chance"], "trustworthiness": q.get("trustworthiness")})
    return pd.DataFrame(rows, columns=["space", "kind", "n_tasks", "nn1_family", "nn3_family", "chance", "trustworthiness"])


def quality_figure(table: pd.DataFrame, title: str = "Map quality: neighbours of the same family") -> go.Figure:
    """Horizontal grouped bars, a row per space and baseline (k = 1, 3), with each one's chance level
    as a red tick; the legend under the axis."""
    fig = go.Figure()
    y = [f"{s} (baseline)" if k == "baseline" else s for s, k in zip(table["space"], table["kind"])]
    fig.add_bar(name="nearest neighbour of the same family (k=1)", y=y, x=table["nn1_family"], orientation="h",
                marker_color="#1f77b4", hovertemplate="%{y}<br>k=1: %{x:.3f}<extra></extra>")
    fig.add_bar(name="share of 3 nearest of the same family (k=3)", y=y, x=table["nn3_family"], orientation="h",
                marker_color="#9ecae1", hovertemplate="%{y}<br>k=3: %{x:.3f}<extra></extra>")
    row_px = 40
    fig.add_scatter(name="chance (family sizes)", y=y, x=table["chance"], mode="markers",
                    marker={"symbol": "line-ns-open", "size": row_px - 6, "color": "#d62728", "line": {"width": 3}},
                    hovertemplate="%{y}<br>chance %{x:.3f}<extra></extra>")
    fig.update_layout(barmode="group", bargap=0.25,
                      xaxis={"title": "share of neighbours of the same family", "range": [0, 1.02]},
                      yaxis={"autorange": "reversed", "automargin": True})
    plot_h = row_px * max(len(y), 3)
    top = 70 if title else 30
    below = x_axis_px() + 12
    left = max((text_px(v) for v in y), default=0) + 8
    styled(fig, title, height=plot_h)
    bottom = int(below + legend_below(fig, plot_h, below, width=DESIGN_WIDTH - max(60, left) - 20) + 10)
    fig.update_layout(height=top + plot_h + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


def task_map_table(coords: Any, names: Sequence[str], families: Sequence[str]) -> pd.DataFrame:
    """``task, family, x, y`` from ``coords`` ``[N, 2]``.

    Example:
        >>> task_map_table([[0, 1], [2, 3]], ["a", "b"], ["f", "g"])["y"].tolist()
        [1.0, 3.0]
    """
    c = np.asarray(coords, dtype=float).reshape(-1, 2)
    if not (len(c) == len(names) == len(families)):
        raise ValueError(f"{len(c)} points, {len(names)} names and {len(families)} families")
    return pd.DataFrame({"task": list(names), "family": list(families), "x": c[:, 0], "y": c[:, 1]})


def similarity_table(sim: Any, names: Sequence[str], order: Sequence[int] | None = None) -> pd.DataFrame:
    """Square cosine-similarity table (index and columns = tasks), rows and columns in ``order``."""
    s = np.asarray(sim, dtype=float)
    order = list(range(len(names))) if order is None else list(order)
    labels = [names[i] for i in order]
    return pd.DataFrame(s[np.ix_(order, order)], index=pd.Index(labels, name="task"), columns=labels)


def dendrogram_table(dendro: Mapping) -> pd.DataFrame:
    """The merge table of :func:`ipt_core.analysis.maps.dendrogram_data`: ``step, left, right, distance, size``
    (ids below N are tasks, listed by name; N + i is the cluster made at step i)."""
    z = dendro.get("linkage") or []
    labels = dendro.get("labels") or []
    leaves = dendro.get("leaves") or []
    # the merge table counts tasks in input order; labels are in leaf order
    names = [None] * len(labels)
    for pos, idx in enumerate(leaves):
        names[idx] = labels[pos]
    n = len(names)

    def name(i: float) -> str:
        i = int(i)
        return str(names[i]) if i < n else f"cluster {i - n}"

    rows = [{"step": k, "left": name(a), "right": name(b), "distance": float(dist), "size": int(size)}
            for k, (a, b, dist, size) in enumerate(z)]
    return pd.DataFrame(rows, columns=["step", "left", "right", "distance", "size"])
