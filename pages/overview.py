"""Overview: what is in the store for the chosen suite, the headline PT chart, recent jobs."""
from __future__ import annotations

import streamlit as st

from ipt_app.context import ctx, suite_info, suite_matches, suite_problem
from ipt_app.escape import md_code, md_escape
from ipt_app.forms import pipeline_launcher
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import backbone_of, entries, headline_pt_runs
from ipt_app.widgets import empty_state, headline_markdown, show_figure
from ipt_core.analysis import maps
from ipt_core.figures import pt as pt_figures
from ipt_core.paths import SHIPPED_RESULTS

c = ctx()
st.title("Intrinsic task subspace explorer")
st.markdown(
    "One frozen language model adapts to many tasks through **soft prompts**. This app trains prompts for many "
    "tasks (prompt tuning), finds the low-dimensional **intrinsic task subspace** they share (IPT, Qin et al.), "
    "and shows task maps, recovery versus dimension and seed stability. Results come from the store; new runs "
    "are launched as background jobs."
)

info = suite_info(c["suite"])
suite_problem(c, info)
names: list[str] = info.get("names", [])

pt = [e for e in entries(c["root"], "pt_run") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
zs = [e for e in entries(c["root"], "zero_shot") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
lp = [e for e in entries(c["root"], "probe") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
ipt = [e for e in entries(c["root"], "ipt_dims") if suite_matches(e.meta.get("suite"), c["suite"])]
stab = [e for e in entries(c["root"], "ipt_stability") if suite_matches(e.meta.get("suite"), c["suite"])]

cols = st.columns(5)
cols[0].metric("Tasks in suite", len(names))
cols[1].metric("Prompt-tuning runs", len(pt))
cols[2].metric("Tasks with PT results", len({e.meta.get("task") for e in pt}))
cols[3].metric("IPT sweeps", len(ipt))
cols[4].metric("Stability runs", len(stab))
st.caption(f"Suite {md_code(c['suite_name'])} · backbone {md_code(c['backbone'])} · store {md_code(c['root'])}"
           + (f" · also reading shipped results in {md_code(SHIPPED_RESULTS)}" if SHIPPED_RESULTS.is_dir() else ""))

st.subheader("Prompt tuning at a glance")
if pt:
    best = headline_pt_runs(pt)
    label = maps.pt_config_label(best[0].spec, best[0].meta)
    st.caption(f"Configuration with the most tasks: {md_escape(label)} ({len(best)} runs; other configurations on the "
               "Prompt tuning page)")
    table = pt_figures.pt_results_table([e.meta for e in best], [e.meta for e in zs], [e.meta for e in lp])
    table = table[table["n_seeds"] > 0].reset_index(drop=True)
    n_labels = {r["task"]: r.get("n_labels") for r in info.get("rows", [])}
    st.markdown(headline_markdown(table, n_labels))
    # the chart is drawn on request: plotly's and the table's browser code alone take ~2 s to load on a
    # 2-core machine, past the 3 s first paint (bench/SPEED.md); the Prompt tuning page draws it at once
    if st.toggle("Show the chart and the per-task numbers", key="ov-show-chart"):
        show_figure(pt_figures.pt_results_figure(table, "Test accuracy: prompt tuning vs zero-shot vs linear probe"), table,
                    name="overview_pt_results", commands=[e.command for e in best + zs + lp], key="overview-pt")
    else:
        cmds = list(dict.fromkeys(e.command for e in best + zs + lp if e.command))
        a, b = st.columns([1, 3])
        a.download_button("Download CSV", table.to_csv(index=False).encode("utf-8"), file_name="overview_pt_results.csv",
                          mime="text/csv", key="csv-overview-headline", on_click="ignore", icon=":material/download:")
        b.caption("Per task, in the CSV. Reproduce with: " + " · ".join(md_code(cmd) for cmd in cmds[:2])
                  + (f" and {len(cmds) - 2} more (all of them: with the chart)" if len(cmds) > 2 else ""))
else:
    empty_state(
        f"No prompt-tuning results for suite {md_code(c['suite_name'])} with {md_code(c['backbone'])} yet. Queue a run on the "
        "Prompt tuning page, or run this in a terminal (it writes into the same store):",
        f"python -m ipt_core tune --suite {c['suite']} --tasks {','.join(names[:2]) or 'TASK'} --steps 50 "
        "--eval-every 10 --prompt-kind shallow",
    )

with st.expander("Compute everything this app shows for the suite (one job)", expanded=not pt and "error" not in info):
    st.markdown("`pipeline` runs prompt tuning, the reference rows, the IPT dimension sweep, the task-count and "
                "held-out-family runs, the stability run and the task map, with defaults for the suite and machine "
                "(*quick* on a CPU, *paper* on a GPU). The estimate below is at this machine's measured speed.")
    pipeline_launcher("ov-pipeline")

st.subheader("Recent jobs")
job_panel(c["root"], limit=3, key="overview")

with st.expander("How the pieces fit"):
    st.markdown(
        "- **Tasks**: the suite's tasks, examples, and uploading your own suite (zip of task folders or a CSV).\n"
        "- **Prompt tuning**: PT test accuracy per task against zero-shot and a linear probe; dev curves; launch runs.\n"
        "- **Subspace and task map**: task embeddings (raw prompts or intrinsic vectors) by PCA or UMAP; neighbours, "
        "clustered similarity, dendrogram.\n"
        "- **Recovery**: how much of PT's score intrinsic subspace tuning recovers, versus d_I, seen and unseen tasks, "
        "against a random subspace.\n"
        "- **Stability**: PT from random init vs PT initialised from the intrinsic-subspace solution, across seeds.\n"
        "- **Methods**: ATTEMPT and VIP on the same engine.\n"
        "- **Jobs**: everything queued or running, with logs; jobs survive a browser refresh."
    )
