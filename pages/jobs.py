"""Jobs: every queued, running and finished job of the store, with progress, logs and cancel."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from ipt_app.context import ctx
from ipt_app.escape import md_code
from ipt_app.forms import tune_form
from ipt_app.forms_ipt import ipt_form, ist_form, stability_form
from ipt_app.job_panel import live, render_job, state_of
from ipt_app.job_state import worker_text
from ipt_app.widgets import pretty_json
from ipt_core import jobs

c = ctx()
root = c["root"]
st.title("Jobs")
st.markdown("Jobs run in a separate worker process, one after another (at most one on the GPU at a time); "
            "they keep running when the browser is closed or refreshed. Results land in the store and appear on "
            "the other pages when a job is done.")


def _table(all_jobs: list[jobs.Job]) -> pd.DataFrame:
    rows = []
    for j in all_jobs:
        s = state_of(j)
        rows.append({"id": j.id, "label": j.label, "status": j.status, "stage": s.stage if not j.finished else "",
                     "progress": s.overall if s.overall is not None else (None if j.finished else 0.0),
                     "eta": s.eta_text if j.status == "running" else "",  # the range the job panel shows
                     "resource": j.resource,
                     "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created)),
                     "seconds": None if j.seconds is None else round(j.seconds, 1), "command": j.command})
    return pd.DataFrame(rows)


def _draw(all_jobs: list[jobs.Job]) -> None:
    """Everything that changes while jobs run, redrawn together from one read of the job records."""
    pid = jobs.worker_pid(root)
    a, b = st.columns([4, 1])
    a.markdown(f"{worker_text(pid).capitalize()} · store {md_code(root)}")  # a typed path: issue 32
    if not pid and b.button("Start worker", key="jobs-start-worker"):
        jobs.ensure_worker(root)
        st.rerun()
    active = [j for j in all_jobs if not j.finished]
    st.subheader(f"Queued and running ({len(active)})")
    if not active:
        st.caption("Nothing is queued or running.")
    for j in active:
        render_job(j, key="jobs-active")
    st.subheader(f"All jobs ({len(all_jobs)})")
    if not all_jobs:
        st.info("No jobs yet. Launch one below or on the Prompt tuning, Recovery and Stability pages.")
        return
    df = _table(all_jobs)
    st.dataframe(df, hide_index=True, key="jobs-table",
                 column_config={"progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})
    st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name="jobs.csv", mime="text/csv",
                       key="jobs-csv", on_click="ignore", icon=":material/download:")
    by_id = {j.id: j for j in all_jobs}
    job_id = st.selectbox("Details of job", list(by_id), key="jobs-detail",
                          format_func=lambda i: f"{i} · {by_id[i].status} · {by_id[i].label}" if i in by_id else i)
    job = by_id.get(job_id) or all_jobs[0]
    render_job(job, key="jobs-detail", log_lines=40, expanded=True)
    if job.result is not None:
        with st.expander("Result (the command's JSON output)"):
            st.code(pretty_json(job.result)[:20000], language="json", wrap_lines=True)
    if job.finished and st.button("Remove this job from the list", key="jobs-delete"):
        jobs.delete_job(root, job.id)
        st.rerun()


live(root, _draw)

st.divider()
st.subheader("Launch")
t1, t2, t3 = st.tabs(["Prompt tuning", "IPT sweep", "Stability"])
with t1:
    tune_form("jobs-tune")
with t2:
    ipt_form("jobs-ipt")
    ist_form("jobs-ist")
with t3:
    stability_form("jobs-stab")
