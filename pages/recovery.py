"""Recovery: how much of prompt tuning's score intrinsic subspace tuning (IST) recovers, versus d_I."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ipt_core import figures
from ipt_app.context import ctx, suite_info, suite_matches, suite_problem
from ipt_app.forms import ipt_form, ist_form
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import entries, pick_entry
from ipt_app.widgets import empty_state, show_figure

c = ctx()
st.title("Recovery")
st.markdown(
    "**Recovery** = mean over tasks of score(IST) / score(PT); **gain recovery** = (IST − zero-shot) / (PT − zero-shot), "
    "which is not inflated when zero-shot is already high. *Seen*: training tasks of the subspace on new few-shot data; "
    "*unseen*: held-out tasks; *random*: a random subspace of the same dimension, the control."
)
info = suite_info(c["suite"])
names = info.get("names", [])
suite_problem(c, info)

dims_entries = [e for e in entries(c["root"], "ipt_dims") if suite_matches(e.meta.get("suite"), c["suite"])]
if not dims_entries:
    empty_state(
        f"No IPT dimension sweep for suite `{c['suite_name']}` yet. Queue one below, or run:",
        f"python -m ipt_core ipt --suite {c['suite']} --train-tasks {','.join(names[:-2]) or 'A,B'} "
        f"--test-tasks {','.join(names[-2:]) or 'C'} --dims 4,16,64 --seeds 3 --steps 100",
    )
else:
    entry = pick_entry(dims_entries, "IPT sweep", key="rec-entry")
    m = entry.meta
    st.caption(f"{m.get('prompt_kind', '?')} prompts · {len(m.get('train_tasks', []))} training tasks · "
               f"{len(m.get('test_tasks', []))} held-out tasks · d_I {m.get('dims')} · seeds {m.get('seeds')}")
    rows = m.get("rows", [])
    table = figures.recovery_table(rows, "d", m.get("summary"))
    if table.empty:
        st.warning("This sweep has no rows with scores.")
    else:
        ref = st.checkbox("Show the paper's reference points (BART-base, 100 training tasks)", value=True, key="rec-ref")
        show_figure(figures.recovery_figure(table, "d", reference=ref), table, name="recovery_vs_dim",
                    commands=[entry.command], key="rec-main",
                    caption="Bands: ± one std over seeds. Reference points are from the paper's setting, not this model.")

        st.subheader("Per task at one dimension")
        dims = sorted({r["d"] for r in rows if r.get("d") is not None})
        a, b = st.columns([3, 2])
        d = a.select_slider("d_I", dims, value=dims[-1], key="rec-d") if len(dims) > 1 else dims[0]
        metric = b.radio("Metric", ["recovery", "gain_recovery"], horizontal=True, key="rec-metric",
                         format_func=lambda s: s.replace("_", " "))
        bars = figures.recovery_bars_table(rows, d)
        show_figure(figures.recovery_bars_figure(bars, metric, f"Per-task {metric.replace('_', ' ')} at d_I = {d}"),
                    bars, name=f"recovery_per_task_d{d}", commands=[entry.command], key="rec-bars")

        with st.expander("All rows (IST, PT and zero-shot test accuracy per task, seed, d_I)"):
            df = pd.DataFrame(rows)
            st.dataframe(df, hide_index=True, key="rec-rows")
            st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name="ipt_rows.csv",
                               mime="text/csv", key="rec-rows-csv", on_click="ignore", icon=":material/download:")

counts = [e for e in entries(c["root"], "ipt_task_count") if suite_matches(e.meta.get("suite"), c["suite"])]
if counts:
    st.subheader("Recovery versus the number of training tasks")
    e = pick_entry(counts, "Run", key="rec-count-entry")
    t = figures.recovery_table(e.meta.get("rows", []), "n_train_tasks")
    if t.empty:
        st.warning("This run has no rows with scores.")
    else:
        show_figure(figures.recovery_figure(t, "n_train_tasks", reference=False,
                                            title=f"Recovery at d_I = {e.meta.get('d', '?')} versus training tasks"),
                    t, name="ipt_task_count", commands=[e.command], key="rec-count")

held = [e for e in entries(c["root"], "ipt_heldout_family") if suite_matches(e.meta.get("suite"), c["suite"])]
if held:
    st.subheader("Recovery with a whole task family held out")
    st.caption("Each family in turn is left out of subspace finding; its tasks are then all unseen.")
    latest: dict[str, object] = {}
    for e in sorted(held, key=lambda e: e.created):  # the newest run per family
        latest[e.meta.get("heldout_family", "?")] = e
    rows = [r for e in latest.values() for r in e.meta.get("rows", [])]
    t = figures.recovery_table(rows, "heldout_family")
    if t.empty:
        st.warning("These runs have no rows with scores.")
    else:
        show_figure(figures.recovery_figure(t, "heldout_family", reference=False,
                                            title="Recovery of the held-out family's tasks"),
                    t, name="ipt_heldout_family", commands=[e.command for e in latest.values()], key="rec-held")

st.divider()
st.subheader("Launch an IPT sweep")
ipt_form("rec-ipt")
ist_form("rec-ist")
job_panel(c["root"], ["ipt", "pipeline"], key="rec")
