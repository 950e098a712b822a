"""The state of a job as every page shows it: status, stage, overall progress and ETA, worker.

One pure function, :func:`job_state`, turns a job's records (``ipt_core.jobs.Job``: status,
``progress.json`` of the current stage) and the estimate written when it was queued
(``estimate.json``, see :mod:`ipt_app.cost`, kept and read by ``ipt_core.jobs``) into what the pages draw, so the sidebar, the job
panels and the Jobs page can never disagree. The pages poll it from one fragment
(:func:`ipt_app.job_panel.job_panel`); tests call it directly (AppTest does not run timed fragments).

Overall progress runs over *all* stages of a job: the stages planned in the estimate are found
in the stage the job reports (by the start of its name), the rows of the stages before it count
as done (cached stages are skipped by the job, so their rows are done at once), plus the current
stage's step fraction. Without a plan (or for a stage the plan does not name), the elapsed time
over the estimated time stands in, capped below 100% until the job says it is done. The ETA is
the remaining rows at the rate this job has shown so far (or the estimate's rate at first).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ipt_app.cost import fmt_seconds

RESULT_PAGES = {  # subcommand -> (page file, title) that shows its result
    "tune": ("pages/prompt_tuning.py", "Prompt tuning"), "probe": ("pages/prompt_tuning.py", "Prompt tuning"),
    "ipt": ("pages/recovery.py", "Recovery"), "ist": ("pages/recovery.py", "Recovery"),
    "stability": ("pages/stability.py", "Stability"), "compare": ("pages/methods.py", "Methods"),
    "umap": ("pages/task_map.py", "Subspace and task map"), "pipeline": ("pages/overview.py", "Overview"),
}


@dataclass(frozen=True)
class JobState:
    status: str                 # queued | running | done | failed | cancelled
    stage: str                  # the stage the job reports ("" before its first report)
    stage_fraction: float | None
    overall: float | None       # over all stages, in [0, 1]; None while queued without an estimate
    eta_s: float | None         # seconds left (running), None when unknown
    elapsed_s: float | None
    estimate_s: float | None    # the estimate made when it was queued
    text: str                   # one line: status · stage · overall % · elapsed · ETA

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


def _num(v: Any) -> float:
    """A number from a job's records (not trusted: any other value counts as 0)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return 0.0
    return float(v)


def _plan_index(stages: list[dict], stage: str) -> int | None:
    s, best, best_len = stage.lower(), None, -1
    for i, p in enumerate(stages):
        m = str(p.get("match", "")).lower()
        if s.startswith(m) and len(m) > best_len:
            best, best_len = i, len(m)
    return best


def job_state(job: Any, estimate: dict | None = None, now: float | None = None) -> JobState:
    """What to show for ``job`` (an ``ipt_core.jobs.Job``), given its ``estimate.json`` (or None).

    Example::

        st = job_state(jobs.get_job(root, job_id), jobs.read_estimate(job))
        st.overall, st.eta_s, st.text   # 0.42, 95.0, "running · subspace finding · 42% · 1 min so far · about 2 min left"
    """
    now = time.time() if now is None else now
    p = job.progress or {}
    stage = str(p.get("stage") or "")
    step, total = _num(p.get("step")), _num(p.get("total"))
    frac = max(0.0, min(1.0, step / total)) if total > 0 else None
    started, ended = getattr(job, "started", None), getattr(job, "ended", None)
    elapsed = None if started is None else max(0.0, (ended or now) - started)
    est_s = _num(estimate["seconds"]) if estimate and _num(estimate.get("seconds")) > 0 else None
    overall = eta = None
    status = job.status
    if status == "done":
        overall, eta = 1.0, 0.0
    elif status == "running":
        raw = (estimate or {}).get("stages")
        stages = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
        total_rows = sum(_num(s.get("rows")) for s in stages)
        i = _plan_index(stages, stage) if stage and total_rows > 0 else None
        if i is not None:
            done_rows = sum(_num(s.get("rows")) for s in stages[:i]) + (frac or 0.0) * _num(stages[i].get("rows"))
            overall = min(0.99, done_rows / total_rows)
            rate = done_rows / elapsed if elapsed and elapsed > 5 and done_rows > 0 else _num((estimate or {}).get("rate"))
            eta = (total_rows - done_rows) / rate if rate > 0 else None
        elif est_s and elapsed is not None:
            overall = min(0.99, elapsed / est_s) if est_s > 0 else None
            eta = max(0.0, est_s - elapsed)
        elif frac is not None and not stages:
            overall = frac  # a one-stage job without an estimate: its stage is the whole job
    # a cancel takes a step or two to land (the job stops at its next step): say so at once
    bits = ["cancelling…" if status == "running" and getattr(job, "cancel_requested", False) else status]
    if stage and not job.finished:
        bits.append(stage + (f" {frac:.0%}" if frac is not None else ""))
    elif status == "running":
        bits.append("starting (loading the model)")
    if overall is not None and status == "running":
        bits.append(f"{overall:.0%} overall")
    if elapsed is not None:
        bits.append(f"{fmt_seconds(elapsed)}" + (" so far" if status == "running" else ""))
    if status == "running" and eta is not None:
        bits.append(f"about {fmt_seconds(eta)} left")
    if status == "queued" and est_s is not None:
        bits.append(f"estimated {fmt_seconds(est_s)}")
    return JobState(status, stage, frac, overall, eta, elapsed, est_s, " · ".join(bits))


def worker_text(pid: int | None) -> str:
    """The worker's state in the same words on every page."""
    return f"worker running (pid {pid})" if pid else "worker not running (it starts with the next job)"
