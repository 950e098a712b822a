"""Shared pieces of the figure builders (:mod:`ipt_core.figures.pt`, :mod:`ipt_core.figures.ipt`):
layout, colours, and the small numeric helpers that keep missing scores missing."""
from __future__ import annotations

import math
from typing import Any, Iterable

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
