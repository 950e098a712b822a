"""Jobs: every queued, running and finished job of the store, with progress, logs and cancel."""
from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from ipt_core import jobs
from ipt_app.context import ctx
from ipt_app.forms import ipt_form, ist_form, stability_form, tune_form
from ipt_app.job_panel import POLL_SECONDS, render_job
from ipt_app.widgets import pretty_json

c = ctx()
root = c["root"]
st.title("Jobs")
st.markdown("Jobs run in a separate worker process, one after another (at most one on the GPU at a time); "
            "they keep running when the browser is closed or refreshed. Results land in the store and appear on "
            "the other pages when a job is done.")

pid = jobs.worker_pid(root)
a, b = st.columns([4, 1])
a.markdown(f"Worker: **{'running, pid ' + str(pid) if pid else 'not running'}** · store `{root}`")
if not pid and b.button("Start worker", key="jobs-start-worker"):
    jobs.ensure_worker(root)
    st.rerun()


def _table(all_jobs: list[jobs.Job]) -> pd.DataFrame:
    return pd.DataFrame([{
        "id": j.id, "label": j.label, "status": j.status, "resource": j.resource,
        "progress": j.fraction if j.fraction is not None else (0.0 if not j.finished else None),
        "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.created)),
        "seconds": None if j.seconds is None else round(j.seconds, 1), "command": j.command,
    } for j in all_jobs])


def _active_block(was_active: bool) -> None:
    all_jobs = jobs.list_jobs(root)
    active = [j for j in all_jobs if not j.finished]
    if was_active and not active:
        st.rerun()  # the last job finished: redraw everything (list, results)
    st.subheader(f"Queued and running ({len(active)})")
    if not active:
        st.caption("Nothing is queued or running.")
    for j in active:
        render_job(j, key="jobs-active")


_active_polling = st.fragment(run_every=POLL_SECONDS)(_active_block)
if any(not j.finished for j in jobs.list_jobs(root)):
    _active_polling(True)
else:
    _active_block(False)

all_jobs = jobs.list_jobs(root)
st.subheader(f"All jobs ({len(all_jobs)})")
if all_jobs:
    df = _table(all_jobs)
    st.dataframe(df, hide_index=True, key="jobs-table",
                 column_config={"progress": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0)})
    st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name="jobs.csv", mime="text/csv",
                       key="jobs-csv", on_click="ignore", icon=":material/download:")
    job_id = st.selectbox("Details of job", [j.id for j in all_jobs], key="jobs-detail",
                          format_func=lambda i: next(f"{j.id} · {j.status} · {j.label}" for j in all_jobs if j.id == i))
    job = jobs.get_job(root, job_id)
    render_job(job, key="jobs-detail", log_lines=40, expanded=True)
    if job.result is not None:
        with st.expander("Result (the command's JSON output)"):
            st.code(pretty_json(job.result)[:20000], language="json")
    if job.finished and st.button("Remove this job from the list", key="jobs-delete"):
        jobs.delete_job(root, job.id)
        st.rerun()
else:
    st.info("No jobs yet. Launch one below or on the Prompt tuning, Recovery and Stability pages.")

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
