"""Small display helpers: a chart with its CSV and command, empty states, JSON.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

import pandas as pd
import streamlit as st

from ipt_app.glossary import PAGE_TERMS, terms_markdown


def show_figure(fig, table: pd.DataFrame, *, name: str, commands: Iterable[str | None], key: str,
                index: bool = False, caption: str = "", beside: bool = True) -> None:
    """A plotly chart with: SVG/PNG from its modebar (camera icon), the plotted numbers as a table
    beside it (``beside``), a CSV of ``table``, the command(s) that reproduce it."""
    config = {"toImageButtonOptions": {"format": "svg", "filename": name, "scale": 2}, "displaylogo": False}
    if beside and len(table):
        left, right = st.columns([3, 2])
        with left:
            st.plotly_chart(fig, key=f"chart-{key}", theme=None, config=config)
        with right:
            st.caption("The plotted numbers")
            st.dataframe(_rounded(table), hide_index=not index, key=f"table-{key}",
                         height=min(520, 38 + 35 * len(table)))
    else:
        st.plotly_chart(fig, key=f"chart-{key}", theme=None, config=config)
    cols = st.columns([1, 3])
    with cols[0]:
        st.download_button("Download CSV", table.to_csv(index=index).encode("utf-8"), file_name=f"{name}.csv",
                           mime="text/csv", key=f"csv-{key}", on_click="ignore", icon=":material/download:")
    with cols[1]:
        st.caption("SVG: camera icon in the chart's toolbar." + (f" {caption}" if caption else ""))
    show_commands(commands)


def headline_markdown(table: pd.DataFrame, n_labels: dict[str, int | None]) -> str:
    """One markdown table of ``figures.pt_results_table``'s means over its tasks: prompt tuning beside
    zero-shot, the linear probe and chance (1 / labels, uniform guessing), and on how many tasks PT wins."""
    def mean(col: str) -> str:
        v = table[col].dropna()
        return f"{v.mean():.3f} ({len(v)} tasks)" if len(v) else "–"

    chance = [1 / n for t in table["task"] if (n := n_labels.get(t))]
    beats = lambda col: int((table["pt_mean"] > table[col]).sum())  # noqa: E731 (NaN compares False)
    has = lambda col: int(table[col].notna().sum())  # noqa: E731
    rows = [("prompt tuning (mean over seeds)", mean("pt_mean"), ""),
            ("zero-shot", mean("zero_shot"), f"PT higher on {beats('zero_shot')} of {has('zero_shot')}"),
            ("linear probe on frozen features", mean("probe"), f"PT higher on {beats('probe')} of {has('probe')}"),
            ("chance (1 / number of labels)", f"{sum(chance) / len(chance):.3f} ({len(chance)} tasks)" if chance else "–", "")]
    return "\n".join(["| mean test accuracy | value | per task |", "|---|---|---|"]
                     + [f"| {a} | {b} | {c} |" for a, b, c in rows])


def _rounded(table: pd.DataFrame) -> pd.DataFrame:
    """Three decimals for display (the CSV keeps every digit)."""
    return table.round(3) if len(table.select_dtypes("number").columns) else table


def show_commands(commands: Iterable[str | None], limit: int = 4) -> None:
    cmds = list(dict.fromkeys(c for c in commands if c))
    if not cmds:
        st.caption("No command recorded for these results.")
        return
    label = "Reproduce with" if len(cmds) == 1 else f"Reproduce with ({len(cmds)} commands)"
    st.caption(label)
    st.code("\n".join(cmds[:limit]) + (f"\n# ... and {len(cmds) - limit} more" if len(cmds) > limit else ""),
            language="bash", wrap_lines=True)


def empty_state(message: str, command: str) -> None:
    st.info(message)
    st.code(command, language="bash")


def terms_expander(page: str) -> None:
    """The "Terms on this page" expander: each term ``page`` uses, defined in one line (ipt_app.glossary)."""
    with st.expander("Terms on this page", icon=":material/menu_book:"):
        st.markdown(terms_markdown(PAGE_TERMS[page]))


def pretty_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
