"""One job as its folder describes it: :class:`Job` (a snapshot), reading it, updating its status."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipt_core.jobs.files import read_json, write_json
from ipt_core.jobs.request import RequestRefused, check_record, job_argv

__all__ = ["STATES", "FINAL_STATES", "Job", "load_job", "set_status"]


STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = frozenset({"done", "failed", "cancelled"})
MAX_RESULT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Job:
    """One job as read from its folder (a snapshot; read it again with :func:`get_job`).

    Example:
        >>> job = get_job(root, "20250101-120000-000000-0a1b2c3d")   # doctest: +SKIP
        >>> job.status, job.command                                    # doctest: +SKIP
        ('running', 'python -m ipt_core tune --suite demo ... --json --cache /x/cache')

    ``argv`` is the CLI argv the job runs, rebuilt from its request (:func:`~ipt_core.jobs.request.job_argv`,
    ending in ``--json --cache <root>``); empty for a request the queue refuses, whose ``status`` then
    reads ``failed`` and ``error`` says why (:mod:`ipt_core.jobs.request`).
    """

    id: str
    root: Path
    argv: tuple[str, ...]
    label: str
    resource: str
    created: float
    status: str
    pid: int | None = None
    worker: int | None = None
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    error: str | None = None
    progress: dict | None = None
    result: Any = None
    cancel_requested: bool = False  # a cancel was asked (the marker file); the job is still running
    first_progress: float | None = None  # when the job first reported progress (the worker notes it): start-up ends

    @property
    def dir(self) -> Path:
        """The job's folder, ``<root>/jobs/<id>``."""
        return self.root / "jobs" / self.id

    @property
    def command(self) -> str:
        """The shell command the job runs (copy-paste reproduces it)."""
        return shlex.join(["python", "-m", "ipt_core", *self.argv]) if self.argv else ""

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def seconds(self) -> float | None:
        """Run time so far (running) or in all (finished); None while queued."""
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


def load_job(root: Path, job_id: str) -> Job | None:
    d = root / "jobs" / job_id
    req = read_json(d / "request.json")
    st = read_json(d / "status.json")
    if req is None and st is None and not d.is_dir():
        return None
    if not isinstance(st, dict):  # unreadable: never taken for queued or running
        st = {"status": "failed", "error": "refused: status.json is not a JSON object"}
    prog = read_json(d / "progress.json")
    res = read_json(d / "result.json", MAX_RESULT_BYTES) if (d / "result.json").exists() else None
    status = st.get("status") if st.get("status") in STATES else "failed"
    try:
        r = check_record(req)
    except RequestRefused as exc:  # shown as failed with the reason; a worker never runs it
        return Job(id=job_id, root=root, argv=(), label="refused job request", resource="cpu",
                   created=(_number(req.get("created")) if isinstance(req, dict) else None) or 0.0,
                   status=status if status in FINAL_STATES else "failed", error=f"refused: {exc}")
    return Job(
        id=job_id, root=root, argv=tuple(job_argv(r.command, r.args, root)), label=r.label, resource=r.resource,
        created=r.created, status=status, pid=_int(st.get("pid")), worker=_int(st.get("worker")),
        started=_number(st.get("started")), ended=_number(st.get("ended")), returncode=_int(st.get("returncode")),
        error=str(st["error"])[:2000] if st.get("error") is not None else None,
        progress=prog if isinstance(prog, dict) else None, result=res,
        cancel_requested=status == "running" and (d / "cancel").exists(),
        first_progress=_number(st.get("first_progress")),
    )


def _int(v: Any) -> int | None:
    """An integer field of status.json (a pid, an exit code), or None for anything else."""
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _number(v: Any) -> float | None:
    """A time field of status.json, or None for anything that is not a finite number."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v or v in (float("inf"), float("-inf")):
        return None
    return float(v)


def set_status(job_dir: Path, **fields: Any) -> None:
    st = read_json(job_dir / "status.json")
    st = st if isinstance(st, dict) else {}
    st.update(fields)
    write_json(job_dir / "status.json", st)
