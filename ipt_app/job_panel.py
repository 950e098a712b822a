"""Submitting jobs and showing them: progress, status, log tail, cancel; a fragment polls while one runs.

Nothing trains in the Streamlit process: a job is a CLI command run by the worker (``ipt_core.jobs``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import streamlit as st

from ipt_core import jobs

POLL_SECONDS = 1.5


def autostart_worker() -> bool:
    return os.environ.get("IPT_JOBS_AUTOSTART", "1") != "0"


def submit_job(root: Path, argv: Sequence[str], *, label: str, resource: str = "cpu") -> jobs.Job | None:
    """Queue a job (and start the worker); shows the error instead when the request is refused."""
    try:
        job = jobs.submit(root, list(argv), label=label, resource=resource)
    except (ValueError, OSError) as e:
        st.error(f"Could not queue the job: {e}")
        return None
    if autostart_worker():
        try:
            jobs.ensure_worker(root)
        except OSError as e:
            st.warning(f"Job queued, but the worker could not be started: {e}")
    st.success(f"Queued job {job.id}: {job.label}")
    return job


def _job_line(job: jobs.Job) -> str:
    p = job.progress or {}
    bits = [f"**{job.label or job.argv[0]}**", f"`{job.status}`"]
    if p.get("stage"):
        bits.append(str(p["stage"]))
    if p.get("total"):
        bits.append(f"step {p.get('step', 0)}/{p['total']}")
    if p.get("message"):
        bits.append(str(p["message"]))
    if job.seconds is not None:
        bits.append(f"{job.seconds:.0f} s")
    return " · ".join(bits)


def render_job(job: jobs.Job, *, key: str, log_lines: int = 8, expanded: bool = False) -> None:
    """Progress bar, status, log tail and a cancel button of one job."""
    with st.container(border=True):
        st.markdown(_job_line(job))
        frac = job.fraction
        if job.status == "running":
            st.progress(frac or 0.0, text=f"{(frac or 0) * 100:.0f}%" if frac is not None else "starting…")
        elif job.status == "done":
            st.progress(1.0, text="done")
        if job.status == "failed":
            # red only where one looks at this job; elsewhere an old failure should not shout on every visit
            (st.error if expanded else st.warning)(
                f"Job failed (exit code {job.returncode}){': ' + job.error if job.error else ''}; see the log.")
        tail = jobs.log_tail(job, log_lines)
        if tail and (expanded or job.status in ("running", "failed")):
            st.code(tail, language=None)
        st.caption(f"`{job.command}`")
        if not job.finished:
            if st.button("Cancel", key=f"cancel-{key}-{job.id}", icon=":material/cancel:"):
                jobs.cancel(job.root, job.id)
                st.rerun(scope="fragment") if _in_fragment() else st.rerun()


def _in_fragment() -> bool:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        c = get_script_run_ctx()
        return bool(c and c.current_fragment_id)
    except Exception:  # noqa: BLE001 - only decides the scope of a rerun
        return False


def _select(root: Path, subcommands: Sequence[str] | None, which: str, limit: int) -> list[jobs.Job]:
    found = [j for j in jobs.list_jobs(root) if subcommands is None or j.argv[0] in subcommands]
    if which == "active":
        found = [j for j in found if not j.finished]
    elif which == "finished":
        found = [j for j in found if j.finished]
    return found[:limit]


def _jobs_block(root: Path, subcommands: Sequence[str] | None, limit: int, key: str, which: str,
                was_active: bool) -> None:
    shown = _select(root, subcommands, which, limit)
    active = any(not j.finished for j in shown)
    if was_active and not active:
        st.rerun()  # a job just finished: redraw the whole page so its results appear
    if not shown:
        if which != "active":
            st.caption("No jobs yet.")
        return
    for j in shown:
        render_job(j, key=key)


_jobs_block_polling = st.fragment(run_every=POLL_SECONDS)(_jobs_block)


def job_panel(root: Path, subcommands: Sequence[str] | None = None, *, limit: int = 3, key: str = "jobs",
              which: str = "all") -> None:
    """The latest jobs (of these subcommands; ``which``: "all", "active" or "finished"), with
    progress, log tail and cancel; it polls (a fragment) while one of them is queued or running."""
    shown = _select(root, subcommands, which, limit)
    if any(not j.finished for j in shown):
        if autostart_worker() and jobs.worker_pid(root) is None and any(j.status == "queued" for j in shown):
            try:
                jobs.ensure_worker(root)  # e.g. the worker exited while idle and a job was queued from the CLI
            except OSError:
                pass
        _jobs_block_polling(root, subcommands, limit, key, which, True)
    else:
        _jobs_block(root, subcommands, limit, key, which, False)
