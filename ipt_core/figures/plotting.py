"""Shared pieces of the figure builders (:mod:`ipt_core.figures.pt`, :mod:`ipt_core.figures.ipt`):
layout, colours, and the small numeric helpers that keep missing scores missing."""
from __future__ import annotations

import math
import re
import textwrap
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

PALETTE = qualitative.Plotly + qualitative.D3 + qualitative.Dark24  # 54 colours before one repeats


def styled(fig: go.Figure, title: str = "", height: int = 460) -> go.Figure:
    # legend on the right (plotly pushes the margin for it), so it never covers the title or the plot
    fig.update_layout(template="plotly_white", height=height,
                      title={"text": title, "x": 0.01, "xanchor": "left"} if title else None,
                      margin={"l": 60, "r": 20, "t": 70 if title else 30, "b": 60},
                      legend={"orientation": "v", "yanchor": "top", "y": 1.0, "x": 1.02, "xanchor": "left"})
    return fig


def rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def colour_map(keys: Iterable[str]) -> dict[str, str]:
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(dict.fromkeys(keys))}


def family_colors(families: Iterable[str]) -> dict[str, str]:
    """One colour per task family, the same in every chart of a suite: pass all the suite's families
    (any order, repeats allowed); the colours follow the sorted family names, not the order or the
    subset a chart happens to show.

    Example:
        >>> a = family_colors(["spam", "sentiment", "nli"]); b = family_colors(["nli", "sentiment", "spam", "nli"])
        >>> a == b, len(set(a.values()))
        (True, 3)
    """
    names = sorted({str(f) for f in families})
    return {f: PALETTE[i % len(PALETTE)] for i, f in enumerate(names)}


def pstd(x: pd.Series) -> float:
    """Standard deviation over seeds with ddof 0, as the core's summaries (numpy's default)."""
    x = x.dropna()
    return float(np.std(x.to_numpy(dtype=float))) if len(x) else math.nan


def as_float(v: Any) -> float:
    """A float, NaN for None/non-numbers (missing scores stay missing, never 0)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f if math.isfinite(f) else math.nan


PX_PER_TASK = 24  # one task's row of horizontal bars: every task name gets its tick label at 1,400 px


def seeds_note(n_seeds: pd.Series) -> str:
    """What the bars of one series are, for its legend name: "one seed", "mean ± std over 3 seeds", ...
    ("± std" only where a task has two or more seeds: one seed has no spread to show).

    Example:
        >>> seeds_note(pd.Series([1, 1])), seeds_note(pd.Series([3, 3])), seeds_note(pd.Series([1, 2]))
        ('one seed', 'mean ± std over 3 seeds', 'mean ± std where 2+ seeds; else one seed')
    """
    n = pd.Series(n_seeds).fillna(0).astype(int)
    n = n[n > 0]
    if not len(n):
        return "no runs"
    lo, hi = int(n.min()), int(n.max())
    if hi < 2:
        return "one seed"
    if lo >= 2:
        return f"mean ± std over {lo} seeds" if lo == hi else f"mean ± std over {lo}–{hi} seeds"
    return "mean ± std where 2+ seeds; else one seed"


# --------------------------------------------------------------------------------------------------
# layout for a 1,400 px screen: the builders size margins, legends and labels for these widths

DESIGN_WIDTH = 560  # a chart beside its table (show_figure's [3, 2] columns in the wide layout)
FULL_WIDTH = 930  # a chart the page shows alone, across the main column
CHAR_PX = 0.55  # estimated width of a character, in em
LEGEND_ROW_PX = 19  # one row of a horizontal legend of bars or markers (12 px text), as plotly draws it
LEGEND_LINE_ROW_PX = 29  # a row with a line's entry (its symbol is taller)
CHANCE_COLOUR = "#d62728"
TICK_FONT_PX = 12
X_TITLE_PX = 14 * 1.3  # an axis title's line
STANDOFF_PX = 15  # plotly's default between the tick labels and the axis title


def text_px(text: str, size: float = 12) -> float:
    """Estimated width in px of a one-line text (the widest line of a ``<br>`` text)."""
    return max((len(re.sub(r"<[^>]+>", "", ln)) for ln in re.split(r"<br\s*/?>", str(text))), default=0) * CHAR_PX * size


def legend_rows(names: Iterable[str], width: float = DESIGN_WIDTH - 80) -> int:
    """Rows a horizontal legend of ``names`` takes in ``width`` px (40 px each for the symbol and the gap)."""
    rows, used = 1, 0.0
    for n in names:
        w = text_px(n) + 40
        if used and used + w > width:
            rows, used = rows + 1, 0.0
        used += w
    return rows


def legend_below(fig: go.Figure, plot_h: float, below_px: float, *, width: float = DESIGN_WIDTH - 80,
                 title: str = "") -> float:
    """Put the legend under the plot, ``below_px`` under its bottom edge (past the x axis's tick labels
    and title), across the width: on the right it would take a third of a narrow chart from the plot.
    Returns the px it takes, its rows counted at ``width`` (plotly wraps a horizontal legend at the plot
    area's width)."""
    entries = [tr for tr in fig.data if tr.name and tr.showlegend is not False]
    row = LEGEND_LINE_ROW_PX if any(legend_draws_line(tr) for tr in entries) else LEGEND_ROW_PX
    fig.update_layout(legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -below_px / plot_h, "yanchor": "top",
                              "title": {"text": title, "side": "top"} if title else None})
    return legend_rows([tr.name for tr in entries], width) * row + (LEGEND_ROW_PX if title else 0) + 8


def legend_draws_line(trace: Any) -> bool:
    """Whether a trace's legend entry is a line (a scatter drawn with lines): its row is taller."""
    return trace.type in ("scatter", "scattergl") and "lines" in (trace.mode or "lines")


def wrap_label(text: str, chars: int) -> str:
    """A tick label broken into lines of at most ``chars`` characters at spaces (its ``<br>`` kept).

    Example:
        >>> wrap_label("MSF alpha = 10 (reconstruction weight)<br>(4d5e6f)", 16)
        'MSF alpha = 10<br>(reconstruction<br>weight)<br>(4d5e6f)'
    """
    out = []
    for part in re.split(r"<br\s*/?>", str(text)):
        out += textwrap.wrap(part, max(chars, 4), break_long_words=False, break_on_hyphens=False) or [""]
    return "<br>".join(out)


def chance_level(n_labels: Any) -> float:
    """1 / number of labels (uniform guessing), NaN where the count is missing or below 1."""
    n = as_float(n_labels)
    return 1.0 / n if n >= 1 else math.nan


def label_counts(records: Iterable[Mapping], n_labels: Mapping | None = None) -> dict:
    """Task -> its number of labels: ``n_labels`` (the page's suite info), overridden by what each record
    says itself (its ``labels`` list, else its ``n_labels``)."""
    counts = dict(n_labels or {})
    for r in records:
        own = len(r["labels"]) if isinstance(r.get("labels"), (list, tuple)) else r.get("n_labels")
        if own:
            counts[r.get("task")] = own
    return counts


def curve_layout(fig: go.Figure, title: str, plot_h: int = 330) -> go.Figure:
    """Height and margins of a line chart with its legend under the x axis (rows counted, nothing clipped)."""
    top, below = (70 if title else 30), x_axis_px() + 12
    styled(fig, title, height=plot_h)
    bottom = int(below + legend_below(fig, plot_h, below) + 10)
    fig.update_layout(height=top + plot_h + bottom, margin={"l": 60, "r": 20, "t": top, "b": bottom})
    return fig


def no_chance_note(what: str = "the number of labels is not known here") -> dict:
    """A legend entry that says why a chart of accuracy has no chance line (``fig.add_scatter(**...)``)."""
    return {"x": [None], "y": [None], "mode": "lines", "name": f"no chance line: {what}",
            "line": {"color": "rgba(0,0,0,0)"}, "hoverinfo": "skip"}


def x_axis_px(title_lines: int = 1) -> float:
    """How far a level x axis reaches under the plot: its tick labels, the title's standoff and its title."""
    return 1.2 * TICK_FONT_PX + 6 + STANDOFF_PX + title_lines * X_TITLE_PX


def tick_depth(labels: Sequence[str], angle: float) -> float:
    """How far tick labels at ``angle`` degrees reach under the axis, in px."""
    a = math.radians(abs(angle))
    return max((text_px(v, TICK_FONT_PX) * math.sin(a) + 1.2 * TICK_FONT_PX * math.cos(a) for v in labels), default=0) + 6


def slot_angle(slot_px: float, labels: Sequence[str]) -> int:
    """The tick angle (0, -30 or -90 degrees) at which category labels ``slot_px`` apart do not touch."""
    line = 1.2 * TICK_FONT_PX
    if slot_px >= max((text_px(v) for v in labels), default=0) + 8:
        return 0
    return -30 if slot_px * 0.5 >= line + 2 else -90


def heatmap_layout(fig: go.Figure, title: str, xs: Sequence[str], ys: Sequence[str], *, x_title: str = "",
                    y_title: str = "", row_px: int = 22, width: int = FULL_WIDTH) -> go.Figure:
    """A heatmap's rows ``row_px`` high each, every column labelled: level where the labels fit a chart
    ``width`` px wide, else turned (-30 or -90 degrees); the bottom margin takes the turned labels."""
    left = max((text_px(v) for v in ys), default=0) + 8 + (X_TITLE_PX + 10 if y_title else 0)
    slot = (width - left - 20 - 110) / max(len(xs), 1)  # 110: the colour bar
    angle = slot_angle(slot, xs)
    below = tick_depth(xs, angle) + (STANDOFF_PX + X_TITLE_PX if x_title else 0) + 10
    top = 70 if title else 30
    fig.update_layout(yaxis={"autorange": "reversed", "title": y_title, "automargin": True},
                      xaxis={"tickangle": angle, "title": x_title, "automargin": True})
    styled(fig, title)
    fig.update_layout(height=int(top + row_px * max(len(ys), 4) + below),
                      margin={"l": 60, "r": 20, "t": top, "b": int(below)})
    return fig
