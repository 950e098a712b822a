"""The state of a job as every page shows it: status, stage, overall progress and an ETA range, worker.

One pure function, :func:`job_state`, turns a job's records (``ipt_core.jobs.Job``: status, the
time it first reported progress, ``progress.json`` of the current stage) and the estimate written
when it was queued (``estimate.json``, see :mod:`ipt_app.cost`, kept and read by ``ipt_core.jobs``)
into what the pages draw: the bar, the text and the ETA come from one :class:`JobState`, so they
cannot disagree. The pages poll it from one fragment (:func:`ipt_app.job_panel.job_panel`), handing
each poll the state of the one before (``previous``); tests call it directly (AppTest does not run
timed fragments).

**The ETA.** The plan is the estimate's stages, each with its estimated seconds (rows at the
estimate's rate, plus measured baselines), after a start-up (loading the model) and before a
tail. The stage the job reports is found in the plan (by the start of its name); the stages
before it are done, plus the current stage's step fraction. Then

- *the job's shown speed*: actual seconds per estimated second of work, over its last minute of
  work (over all of it until then). Work done faster than :data:`MAX_SPEEDUP` x the fastest the
  estimate allows was found in the store, not computed (a cached stage skipped at once): it counts
  as done but not as speed;
- *blended*: ``(1 - w) x 1 + w x shown``, ``w`` the fraction of the computed work done, so the first
  noisy steps barely move it and the last steps are timed by the job itself;
- ETA = the work left x the blend + the tail; before the first report, the start-up left + all of it;
- *range*: the estimate's own range (``seconds_low``/``seconds_high``) around the ETA, narrowing as
  ``w`` grows to +-:data:`MIN_U`, its top at least :data:`MIN_WIDTH_S` above; widened to hold the
  ETA if the rest ran as estimated and if it ran as the job has shown over its last half minute or more;
- *continuity*: a poll's ETA lies in the previous poll's range less the time between them (what a
  person was told stays true); a new fact (a slow stage, a skipped one) moves it over a few polls.

The overall fraction is the time fraction ``elapsed / (elapsed + ETA)``, never going back while the
job runs and never 100% before the job is done. Without a plan (or for a stage the plan does not
name), the elapsed time over the estimated time stands in.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ipt_app.cost import fmt_range, fmt_seconds

RESULT_PAGES = {  # subcommand -> (page file, title) that shows its result
    "tune": ("pages/prompt_tuning.py", "Prompt tuning"), "probe": ("pages/prompt_tuning.py", "Prompt tuning"),
    "ipt": ("pages/recovery.py", "Recovery"), "ist": ("pages/recovery.py", "Recovery"),
    "stability": ("pages/stability.py", "Stability"), "compare": ("pages/methods.py", "Methods"),
    "umap": ("pages/task_map.py", "Subspace and task map"), "pipeline": ("pages/overview.py", "Overview"),
}
MIN_U = 0.1  # an ETA's range is at least +-10% of it
MIN_WIDTH_S = 3.0  # and its top at least this far above it (more than a poll apart: the next poll fits)
MAX_SPEEDUP = 2.0  # work done faster than this x the estimate's idle fast end was found in the store
WINDOW_S = 60.0  # the job's shown speed is taken over its last minute of work
STALE_S = 30.0  # a previous poll older than this (the page opened again later) is not continued
MAX_CAP = 0.99  # the bar while the job runs


@dataclass(frozen=True)
class JobState:
    status: str                 # queued | running | done | failed | cancelled
    stage: str                  # the stage the job reports ("" before its first report)
    stage_fraction: float | None
    overall: float | None       # over all stages, in [0, 1]; None while queued
    eta_s: float | None         # seconds left (running), None when unknown
    elapsed_s: float | None
    estimate_s: float | None    # the estimate made when it was queued
    text: str                   # one line: status · stage · overall % · elapsed · ETA
    eta_low: float | None = None    # the ETA's range: eta_low <= eta_s <= eta_high
    eta_high: float | None = None
    estimate_low: float | None = None   # the estimate's range
    estimate_high: float | None = None
    at: float | None = None     # when this state was computed (``now``)
    work_done: float | None = None  # estimated seconds of the plan's work done
    skipped: float = 0.0        # of which found in the store (done faster than possible)
    samples: tuple = ()         # ((time, computed work done), ...) of recent polls: the job's shown speed

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")

    @property
    def eta_text(self) -> str:
        """``"about 2–3 min"`` (the range), or ``""`` when there is no ETA."""
        return "" if self.eta_s is None else f"about {fmt_range(self.eta_low, self.eta_high)}"


def _num(v: Any) -> float:
    """A number from a job's records (not trusted: any other value counts as 0, huge ones are capped)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return 0.0
    return max(-1e9, min(1e9, float(v)))


def _plan_index(stages: list[dict], stage: str) -> int | None:
    s, best, best_len = stage.lower(), None, -1
    for i, p in enumerate(stages):
        m = str(p.get("match", "")).lower()
        if s.startswith(m) and len(m) > best_len:
            best, best_len = i, len(m)
    return best


@dataclass(frozen=True)
class _Plan:
    seconds: float          # the point estimate
    low: float
    high: float
    stages: list[dict]
    times: list[float]      # each stage's estimated seconds
    startup: float
    tail: float

    @property
    def work(self) -> float:
        return sum(self.times)

    @property
    def trains(self) -> bool:
        """Does the job report progress (it trains a bank)? A job of baselines alone does not."""
        return any(_num(s.get("rows")) > 0 for s in self.stages)


def _plan(estimate: dict | None) -> _Plan | None:
    """The plan of an ``estimate.json`` (this version's or an earlier one's), or None."""
    if not isinstance(estimate, dict):
        return None
    secs = max(0.0, _num(estimate.get("seconds")))
    if secs <= 0:
        return None
    raw = estimate.get("stages")
    stages = [s for s in raw if isinstance(s, dict)] if isinstance(raw, list) else []
    rate, rows = _num(estimate.get("rate")), sum(max(0.0, _num(s.get("rows"))) for s in stages)
    startup, tail = max(0.0, _num(estimate.get("startup_s"))), max(0.0, _num(estimate.get("tail_s")))
    if "startup_s" not in estimate:  # an earlier version: overhead in one figure (or none)
        startup = max(0.0, _num(estimate.get("overhead_s")))
    times = []
    for s in stages:
        r = max(0.0, _num(s.get("rows")))
        if "seconds" in s:
            times.append(max(0.0, _num(s.get("seconds"))))
        else:  # an earlier version: rows at the rate, or the stage's share of the estimate
            times.append(r / rate if rate > 0 else (secs - startup - tail) * r / rows if rows else 0.0)
    low, high = _num(estimate.get("seconds_low")), _num(estimate.get("seconds_high"))
    low = min(low, secs) if low > 0 else secs
    high = max(high, secs)
    return _Plan(secs, low, high, stages, times, startup, tail)


def _window(samples: tuple, now: float, real: float) -> tuple:
    """``samples`` with ``(now, real)`` added, those older than :data:`WINDOW_S` dropped (one kept as the start)."""
    out = [s for s in samples if isinstance(s, tuple) and len(s) == 2 and s[0] < now and s[1] <= real] + [(now, real)]
    while len(out) > 2 and now - out[1][0] >= WINDOW_S:
        out.pop(0)
    return tuple(out[-64:])


def _running(job: Any, plan: _Plan, stage: str, frac: float | None, elapsed: float, now: float,
             prev: JobState | None) -> tuple[float, float, float | None, float, tuple, list[float]]:
    """``(eta, w, work_done, skipped, samples, bounds)`` of a running job with a plan (see the module
    doc); ``bounds``: the ETA if the rest ran as estimated, and as the job has lately shown."""
    i = _plan_index(plan.stages, stage) if stage else None
    if not stage or i is None:
        if not stage and plan.trains:  # still starting: loading the model
            return max(0.0, plan.startup - elapsed) + plan.work + plan.tail, 0.0, None, 0.0, (), []
        return max(0.0, plan.seconds - elapsed), min(1.0, elapsed / plan.seconds), None, 0.0, (), []
    done = sum(plan.times[:i]) + (frac or 0.0) * plan.times[i]
    started = _num(getattr(job, "started", None))
    first = _num(getattr(job, "first_progress", None))
    t0 = first if started <= first <= now else started + min(plan.startup, elapsed)
    t_train = max(0.0, now - t0)
    fastest = MAX_SPEEDUP * max(1.0, plan.seconds / plan.low)  # estimated seconds of work per second, at most
    if prev is not None and prev.work_done is not None:
        skipped = prev.skipped + max(0.0, (done - prev.work_done) - fastest * (now - (prev.at or now)))
    else:
        skipped = max(0.0, done - fastest * t_train)
    skipped = min(skipped, done)
    real = done - skipped
    samples = _window(prev.samples if prev is not None else (), now, real)
    (t_a, w_a), (t_b, w_b) = samples[0], samples[-1]
    shown, settled = 1.0, False
    if len(samples) >= 2 and t_b - t_a >= WINDOW_S / 2 and w_b > w_a:
        shown, settled = (t_b - t_a) / (w_b - w_a), True  # actual seconds per estimated second, lately
    elif real > 0 and t_train > 0:
        shown, settled = t_train / real, t_train >= WINDOW_S / 2
    computable = plan.work - skipped
    w = min(1.0, real / computable) if computable > 0 else 1.0
    since = 0.0
    last = _num((getattr(job, "progress", None) or {}).get("time"))
    if frac is not None and frac >= 1 and 0 < last <= now:  # the stage reported is complete: what follows is unreported
        since = now - last
    left = plan.work - done

    def eta(slow: float) -> float:
        return max(0.0, left * slow + plan.tail - since)

    return eta((1 - w) + w * shown), w, done, skipped, samples, [eta(1.0)] + ([eta(shown)] if settled else [])


def job_state(job: Any, estimate: dict | None = None, now: float | None = None,
              previous: JobState | None = None) -> JobState:
    """What to show for ``job`` (an ``ipt_core.jobs.Job``), given its ``estimate.json`` (or None) and
    the state of the last poll (``previous``, or None: the overall fraction never goes back from it,
    and the ETA stays in its range).

    Example::

        st = job_state(jobs.get_job(root, job_id), jobs.read_estimate(job), previous=st)
        st.overall, st.eta_s, st.text   # 0.42, 95.0, "running · subspace finding · 42% overall · 1 min so far · about 80 s–2 min left"
    """
    now = time.time() if now is None else now
    p = job.progress or {}
    stage = str(p.get("stage") or "")
    step, total = _num(p.get("step")), _num(p.get("total"))
    frac = max(0.0, min(1.0, step / total)) if total > 0 else None
    started, ended = getattr(job, "started", None), getattr(job, "ended", None)
    elapsed = None if started is None else max(0.0, (ended or now) - started)
    plan = _plan(estimate)
    same = previous if isinstance(previous, JobState) and previous.status == "running" else None
    prev = same if same is not None and same.at is not None and 0 <= now - same.at <= STALE_S else None
    overall = eta = lo = hi = work = None
    skipped, samples = 0.0, ()
    status = job.status
    if status == "done":
        overall, eta, lo, hi = 1.0, 0.0, 0.0, 0.0
    elif status == "running" and elapsed is not None:
        if plan is not None:
            eta, w, work, skipped, samples, bounds = _running(job, plan, stage, frac, elapsed, now, prev)
            u_lo = max(MIN_U, (1 - plan.low / plan.seconds) * (1 - w))
            u_hi = max(MIN_U, (plan.high / plan.seconds - 1) * (1 - w))
            if prev is not None and prev.eta_low is not None and prev.eta_high is not None:
                dt = now - prev.at
                eta = min(max(eta, max(0.0, prev.eta_low - dt)), max(0.0, prev.eta_high - dt))
            lo = min([eta * (1 - u_lo)] + bounds)
            hi = max([eta * (1 + u_hi)] + bounds) + MIN_WIDTH_S
            overall = min(MAX_CAP, elapsed / (elapsed + eta)) if elapsed + eta > 0 else 0.0
        elif frac is not None:
            overall = min(MAX_CAP, frac)  # a one-stage job without an estimate: its stage is the whole job
        if overall is not None and same is not None and same.overall is not None:
            overall = max(overall, same.overall)  # the bar never goes back
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
        bits.append(f"about {fmt_range(lo, hi)} left")
    if status == "queued" and plan is not None:
        bits.append(f"estimated {fmt_range(plan.low, plan.high)}")
    return JobState(status, stage, frac, overall, eta, elapsed, plan.seconds if plan else None, " · ".join(bits),
                    eta_low=lo, eta_high=hi, estimate_low=plan.low if plan else None,
                    estimate_high=plan.high if plan else None, at=now, work_done=work, skipped=skipped, samples=samples)


def worker_text(pid: int | None) -> str:
    """The worker's state in the same words on every page."""
    return f"worker running (pid {pid})" if pid else "worker not running (it starts with the next job)"
