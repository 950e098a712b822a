"""Methods: prompt tuning, IPT, ATTEMPT and VIP on the same model, tasks and budget."""
from __future__ import annotations

import streamlit as st

from ipt_app.context import ctx, suite_info, suite_matches
from ipt_app.forms_ipt import compare_form
from ipt_app.glossary import help_for
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import entries, pick_entry
from ipt_app.widgets import empty_state, show_figure, terms_expander
from ipt_core.figures import ipt as ipt_figures

c = ctx()
st.title("Methods: ATTEMPT and VIP")
st.markdown(
    "**ATTEMPT** mixes frozen source prompts into a new target prompt with input-dependent attention; its attention "
    "weights are a task-similarity signal. **VIP** adds input-specific, vector-quantised prompt vectors from a small "
    "contextualiser. Both run on the same engine as prompt tuning and IPT, so the methods compare on one model, one "
    "task suite and one budget."
)
terms_expander("methods")
names = suite_info(c["suite"]).get("names", [])
found = [e for e in entries(c["root"], "method_compare") if suite_matches(e.meta.get("suite"), c["suite"])]
if not found:
    empty_state(
        f"No method comparison for suite `{c['suite_name']}` yet. "
        "Produce one with:",
        f"python -m ipt_core compare --suite {c['suite']} --tasks {','.join(names[:2]) or 'TASK_A,TASK_B'} "
        "--methods zero-shot,probe,pt,ipt,attempt,vip --seeds 1 --budget quick",  # the form's defaults on a CPU
    )
else:
    entry = pick_entry(found, "Comparison", key="meth-entry",
                       help=help_for("prompt tuning (PT)", "ATTEMPT", "VIP", lead="One run of `compare`: every method "
                                     "on the same tasks, seeds and step budget."))
    m = entry.meta
    table = ipt_figures.method_compare_table(m.get("rows", []), n_labels={r["task"]: r.get("n_labels")
                                                                          for r in suite_info(c["suite"]).get("rows", [])})
    if table.empty:
        st.warning("This comparison has no rows.")
    else:
        summary = table.groupby("method")[["test_acc", "trainable_params", "seconds"]].mean().reset_index()
        st.dataframe(summary, hide_index=True, key="meth-summary")
        show_figure(ipt_figures.method_compare_figure(table), table, name="method_compare", commands=[entry.command],
                    key="meth-main")
    att = m.get("attempt_attention")
    if att and att.get("weights"):
        t = ipt_figures.attention_table(att)
        reading = ipt_figures.attention_reading(t)
        if reading:
            st.info(reading)
        show_figure(ipt_figures.attention_heatmap(t), t, name="attempt_attention", commands=[entry.command],
                    key="meth-att", index=True, beside=False)  # a row per source, a column per target: the whole width
    usage = m.get("vip_codebook_usage")
    if usage:
        t = ipt_figures.codebook_usage_table(usage)
        show_figure(ipt_figures.codebook_usage_figure(t), t, name="vip_codebook_usage", commands=[entry.command],
                    key="meth-vip")

st.divider()
st.subheader("Run a comparison")
compare_form("meth")
job_panel(c["root"], ["compare"], key="meth")
