"""Stability: PT from a random init vs PT initialised from the IST solution, across seeds."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ipt_app.context import ctx, suite_info, suite_matches, suite_problem
from ipt_app.escape import md_escape
from ipt_app.forms_ipt import stability_form
from ipt_app.glossary import help_for
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import entries, pick_entry
from ipt_app.widgets import empty_state, show_figure, terms_expander
from ipt_core.figures import ipt as ipt_figures

c = ctx()
st.title("Stability")
st.markdown("The paper reports that initialising prompt tuning from the intrinsic-subspace (IST) solution makes it "
            "more stable across seeds. Here: mean ± std of dev accuracy per step over seeds, and each seed's trace.")
terms_expander("stability")
info = suite_info(c["suite"])
names = info.get("names", [])
suite_problem(c, info)

found = [e for e in entries(c["root"], "ipt_stability") if suite_matches(e.meta.get("suite"), c["suite"])]
if not found:
    empty_state(f"No stability run for suite `{c['suite_name']}` yet. Queue one below, or run:",
                f"python -m ipt_core stability --suite {c['suite']} --tasks {names[0] if names else 'TASK'} "
                "--seeds 3 --d 16")
else:
    entry = pick_entry(found, "Stability run", key="stab-entry",
                       help=help_for("stability", "d_I", lead="Each run: PT from a random init and PT from the IST "
                                                                 "solution at d_I, for the same tasks and seeds."))
    m = entry.meta
    curves = m.get("curves", [])
    tasks = sorted({cv["task"] for cv in curves})
    st.caption(md_escape(f"d_I = {m.get('d')} · seeds {m.get('seeds')} · tasks {', '.join(tasks)}"))  # issue 32
    a, b = st.columns([3, 1])
    task = a.selectbox("Task", ["all tasks (mean)"] + tasks, key="stab-task",
                       help=help_for("prompt tuning (PT)", "IST", "dev/test split",
                                     lead="Dev accuracy of PT per step, from a random init and from the IST solution."))
    traces = b.checkbox("Per-seed traces", value=True, key="stab-traces", help=help_for("stability"))
    t = ipt_figures.stability_table(curves, None if task.startswith("all tasks") else task,
                                    n_labels={r["task"]: r.get("n_labels") for r in info.get("rows", [])})
    if t.empty:
        st.warning("No curves for this selection.")
    else:
        show_figure(ipt_figures.stability_figure(t, f"Dev accuracy across seeds: {task}", traces=traces), t,
                    name=f"stability_{task.split(' ')[0]}", commands=[entry.command], key="stab-main")
    final = pd.DataFrame(m.get("final", []))
    if len(final):
        seeds = m.get("seeds") or []
        st.subheader("Final dev accuracy" + (" (mean ± std over seeds)" if len(seeds) > 1 else " (one seed)"))
        st.dataframe(final, hide_index=True, key="stab-final")
        st.download_button("Download CSV", final.to_csv(index=False).encode(), file_name="stability_final.csv",
                           mime="text/csv", key="stab-final-csv", on_click="ignore", icon=":material/download:")

st.divider()
st.subheader("Launch a stability run")
stability_form("stab-form")
job_panel(c["root"], ["stability"], key="stab")
