"""Submitting jobs and showing them: overall progress and ETA, status, wrapped log tail, cancel, and
a link to the page that shows a finished job's result. One fragment polls the job records while a
job is queued or running; what it shows comes from :func:`ipt_app.job_state.job_state`.

Nothing trains in the Streamlit process: a job is a CLI command run by the worker (``ipt_core.jobs``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Sequence

import streamlit as st

from ipt_app.cost import Estimate
from ipt_app.escape import md_code, md_escape
from ipt_app.job_state import RESULT_PAGES, JobState, job_state
from ipt_core import jobs

POLL_SECONDS = 1.5


def autostart_worker() -> bool:
    return os.environ.get("IPT_JOBS_AUTOSTART", "1") != "0"


def submit_job(root: Path, argv: Sequence[str], *, label: str, resource: str = "cpu",
               estimate: Estimate | None = None) -> jobs.Job | None:
    """Queue a job (and start the worker); shows the error instead when the request is refused.
    ``estimate`` is kept beside the job for its overall progress and ETA."""
    try:
        job = jobs.submit(root, list(argv), label=label, resource=resource)
    except (ValueError, OSError) as e:
        st.error(f"Could not queue the job: {md_escape(e)}")
        return None
    if estimate is not None:
        jobs.write_estimate(job, estimate.to_json())
    if autostart_worker():
        try:
            jobs.ensure_worker(root)
        except OSError as e:
            st.warning(f"Job queued, but the worker could not be started: {md_escape(e)}")
    st.success(f"Queued job {job.id}: {md_escape(job.label)}")  # labels name suites and tasks: issue 32
    return job


def state_of(job: jobs.Job) -> JobState:
    """:func:`job_state` with the job's estimate, continued from this session's last poll of the job: the
    bar never goes back, and each ETA stays in the range the last one gave (less the time since)."""
    key = f"_jobstate-{job.id}"
    prev = st.session_state.get(key)
    s = job_state(job, jobs.read_estimate(job), previous=prev if isinstance(prev, JobState) else None)
    st.session_state[key] = s
    return s


def result_link(job: jobs.Job, key: str) -> None:
    """A link to the page that shows a finished job's result."""
    page = RESULT_PAGES.get(job.argv[0] if job.argv else "")
    if job.status != "done" or page is None:
        return
    try:
        st.page_link(page[0], label=f"See the result on the {page[1]} page", icon=":material/arrow_forward:")
    except Exception:  # noqa: BLE001 - outside st.navigation (a page run on its own) links cannot resolve
        st.caption(f"The result is on the **{page[1]}** page.")


def render_job(job: jobs.Job, *, key: str, log_lines: int = 8, expanded: bool = False) -> None:
    """Overall progress bar with ETA, status, wrapped log tail, cancel or the result's page, of one job."""
    s = state_of(job)
    with st.container(border=True):
        shown = "cancelling…" if job.cancel_requested else job.status
        st.markdown(f"**{md_escape(job.label or job.argv[0])}** · {md_code(shown)}")
        if job.status == "running":  # bar and text from the one state: they cannot disagree
            st.progress(s.overall or 0.0, text=md_escape(s.text))
        elif job.status == "done":
            st.progress(1.0, text=md_escape(s.text))
        else:
            st.caption(md_escape(s.text))
        if job.status == "failed":
            # red only where one looks at this job; elsewhere an old failure should not shout on every visit
            (st.error if expanded else st.warning)(
                md_escape(f"Job failed{f' (exit code {job.returncode})' if job.returncode is not None else ''}"
                          f"{': ' + job.error if job.error else ''}; see the log."))
        tail = jobs.log_tail(job, log_lines)
        if tail and (expanded or job.status in ("running", "failed")):
            st.code(tail, language=None, wrap_lines=True)
        st.caption(md_code(job.command))
        result_link(job, key)
        if not job.finished:
            if st.button("Cancel", key=f"cancel-{key}-{job.id}", icon=":material/cancel:",
                         disabled=job.cancel_requested, help="cancelling…" if job.cancel_requested else None):
                jobs.cancel(job.root, job.id)
                st.rerun(scope="fragment") if _in_fragment() else st.rerun()


def _in_fragment() -> bool:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        c = get_script_run_ctx()
        return bool(c and c.current_fragment_id)
    except Exception:  # noqa: BLE001 - only decides the scope of a rerun
        return False


def _ensure_worker_for_queued(root: Path, shown: Sequence[jobs.Job]) -> None:
    if autostart_worker() and jobs.worker_pid(root) is None and any(j.status == "queued" for j in shown):
        try:
            jobs.ensure_worker(root)  # e.g. the worker exited while idle and a job was queued from the CLI
        except OSError:
            pass


def _live_block(draw: Callable[[list[jobs.Job]], None], root: Path, was_active: bool) -> None:
    all_jobs = jobs.list_jobs(root)
    active = any(not j.finished for j in all_jobs)
    if was_active and not active:
        st.rerun()  # the last job just finished: redraw the whole page so its results appear
    draw(all_jobs)


_live_polling = st.fragment(run_every=POLL_SECONDS)(_live_block)


def prune_empty_checkpoints(root: Path) -> int:
    """Remove the empty checkpoint folders a cancelled or failed job leaves (the store creates a
    bank's folder before its first checkpoint); called only while no job runs. Returns how many."""
    n = 0
    try:
        for d in (Path(root) / "checkpoints").iterdir():
            try:
                d.rmdir()  # only ever removes an empty folder
                n += 1
            except OSError:
                pass
    except OSError:
        pass
    return n


def live(root: Path, draw: Callable[[list[jobs.Job]], None]) -> None:
    """Call ``draw(all jobs of the store)`` now, and again every :data:`POLL_SECONDS` (one fragment)
    while any job of the store is queued or running; when the last one ends the page reruns."""
    all_jobs = jobs.list_jobs(root)
    if any(not j.finished for j in all_jobs):
        _ensure_worker_for_queued(root, all_jobs)
        _live_polling(draw, root, True)
    else:
        if any(j.status in ("cancelled", "failed") for j in all_jobs):
            prune_empty_checkpoints(root)
        _live_block(draw, root, False)


def job_panel(root: Path, subcommands: Sequence[str] | None = None, *, limit: int = 3, key: str = "jobs",
              which: str = "all") -> None:
    """The latest jobs (of these subcommands; ``which``: "all", "active" or "finished"), with
    progress, log tail and cancel; live while a job of the store is queued or running."""

    def draw(all_jobs: list[jobs.Job]) -> None:
        shown = [j for j in all_jobs if subcommands is None or j.argv[:1] and j.argv[0] in subcommands]
        if which == "active":
            shown = [j for j in shown if not j.finished]
        elif which == "finished":
            shown = [j for j in shown if j.finished]
        if not shown[:limit]:
            if which != "active":
                st.caption("No jobs yet.")
            return
        for j in shown[:limit]:
            render_job(j, key=key)

    live(root, draw)
