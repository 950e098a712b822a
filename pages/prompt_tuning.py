"""Prompt tuning: PT vs zero-shot vs linear probe per task, dev curves, runs; launch `tune` and `probe`."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ipt_app.context import ctx, suite_info, suite_problem
from ipt_app.escape import md_code
from ipt_app.forms import probe_button, tune_form
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import backbone_of, entries, stores
from ipt_app.widgets import empty_state, show_commands, show_figure
from ipt_core.analysis import maps
from ipt_core.figures import pt as pt_figures

c = ctx()
st.title("Prompt tuning")
st.caption(f"Suite {md_code(c['suite_name'])} · backbone {md_code(c['backbone'])}")  # user strings: issue 32

info = suite_info(c["suite"])
suite_problem(c, info)
names = info.get("names", [])

pt = [e for e in entries(c["root"], "pt_run") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
zs = [e for e in entries(c["root"], "zero_shot") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
lp = [e for e in entries(c["root"], "probe") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]

jobs_slot = st.container()  # filled last, so a job queued by the form below shows up at once
tab_results, tab_launch = st.tabs(["Results", "Launch"])
with tab_results:
    if not pt:
        empty_state(f"No prompt-tuning runs for suite `{c['suite_name']}` with `{c['backbone']}` yet. Use the Launch "
                    "tab, or run:", f"python -m ipt_core tune --suite {c['suite']} --steps 50 --eval-every 10")
        if zs or lp:
            table = pt_figures.pt_results_table([], [e.meta for e in zs], [e.meta for e in lp])
            show_figure(pt_figures.pt_results_figure(table, "Reference rows: zero-shot and linear probe"), table,
                        name="pt_reference", commands=[e.command for e in zs + lp], key="pt-ref")
    else:
        groups: dict[str, list] = {}
        for e in pt:
            groups.setdefault(maps.pt_config_id(e.spec, e.meta), []).append(e)
        # a configuration this store trained most recently first (a new result is selected), then the one with most tasks
        mine = {e.key for e in stores(c["root"])[0].query("pt_run")}
        order = sorted(groups, key=lambda g: (-max((e.created for e in groups[g] if e.key in mine), default=0.0),
                                              -len({e.meta.get("task") for e in groups[g]}), -len(groups[g])))
        gid = st.selectbox("Configuration", order, key="pt-config",
                           format_func=lambda g: f"{maps.pt_config_label(groups[g][0].spec, groups[g][0].meta)} · "
                                                 f"{len(groups[g])} runs")
        runs = groups[gid]
        with st.expander("Full configuration"):
            st.json(runs[0].spec.get("config", {}))
        table = pt_figures.pt_results_table([e.meta for e in runs], [e.meta for e in zs], [e.meta for e in lp])
        table = table[table["n_seeds"] > 0].reset_index(drop=True)
        means = table[["pt_mean", "zero_shot", "probe"]].mean()
        cols = st.columns(3)
        cols[0].metric("PT mean test acc", f"{means['pt_mean']:.3f}")
        cols[1].metric("Zero-shot", "–" if pd.isna(means["zero_shot"]) else f"{means['zero_shot']:.3f}")
        cols[2].metric("Linear probe", "–" if pd.isna(means["probe"]) else f"{means['probe']:.3f}")
        show_figure(pt_figures.pt_results_figure(table), table, name="pt_results",
                    commands=[e.command for e in runs + zs + lp], key="pt-results",
                    caption="Bars: PT mean over seeds (± std where a task has two or more; the legend says); "
                            "zero-shot and probe are one row per task; red tick: chance (1 / number of labels).")

        st.subheader("Dev accuracy during training")
        run_tasks = sorted({e.meta["task"] for e in runs})
        chosen = st.multiselect("Tasks", run_tasks, default=run_tasks[:4], key="pt-curve-tasks")
        curves = pt_figures.dev_curves_table([e.meta for e in runs if e.meta["task"] in chosen])
        if len(curves):
            show_figure(pt_figures.dev_curves_figure(curves), curves, name="pt_dev_curves",
                        commands=[e.command for e in runs if e.meta["task"] in chosen], key="pt-curves")
        else:
            st.caption("Choose tasks to see their dev curves.")

        st.subheader("Runs")
        rows = pd.DataFrame([{"task": e.meta["task"], "family": e.meta.get("family"), "seed": e.meta.get("seed"),
                              "status": e.meta.get("status"), "best_step": e.meta.get("best_step"),
                              "dev_acc": e.meta.get("dev_acc"), "test_acc": e.meta.get("test_acc"),
                              "test_f1": e.meta.get("test_f1"), "device": e.meta.get("device"),
                              "bank_size": e.meta.get("bank_size"), "bank_seconds": e.meta.get("bank_seconds"),
                              "key": e.key[:12]} for e in runs]).sort_values(["task", "seed"])
        st.dataframe(rows, hide_index=True, key="pt-runs")
        st.download_button("Download CSV", rows.to_csv(index=False).encode(), file_name="pt_runs.csv", mime="text/csv",
                           key="pt-runs-csv", on_click="ignore", icon=":material/download:")
        show_commands([e.command for e in runs])

with tab_launch:
    tune_form("pt-tune")
    st.markdown("**Reference rows**: zero-shot and a linear probe on frozen features, for every task of the suite.")
    probe_button("pt-probe")
    st.markdown("**Finished jobs**")
    job_panel(c["root"], ["tune", "probe"], key="pt-done", which="finished")
with jobs_slot:
    job_panel(c["root"], ["tune", "probe"], key="pt", which="active")
