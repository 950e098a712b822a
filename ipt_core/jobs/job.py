"""One job as its folder describes it: :class:`Job` (a snapshot), reading it, updating its status."""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import read_json, write_json

__all__ = ["STATES", "FINAL_STATES", "RESOURCES", "Job", "load_job", "set_status"]


STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = frozenset({"done", "failed", "cancelled"})
RESOURCES = ("cpu", "gpu")


@dataclass(frozen=True)
class Job:
    """One job as read from its folder (a snapshot; read it again with :func:`get_job`).

    Example:
        >>> job = get_job(root, "20250101-120000-000000-0a1b2c3d")   # doctest: +SKIP
        >>> job.status, job.command, job.fraction                      # doctest: +SKIP
        ('running', 'python -m ipt_core tune --suite demo ... --json --cache /x/cache', 0.42)
    """

    id: str
    root: Path
    argv: tuple[str, ...]
    module: str
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

    @property
    def dir(self) -> Path:
        """The job's folder, ``<root>/jobs/<id>``."""
        return self.root / "jobs" / self.id

    @property
    def command(self) -> str:
        """The shell command the job runs (copy-paste reproduces it)."""
        return shlex.join(["python", "-m", self.module, *self.argv])

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def fraction(self) -> float | None:
        """Progress in [0, 1] from progress.json (1.0 once done), None when unknown."""
        if self.status == "done":
            return 1.0
        p = self.progress or {}
        try:
            total = float(p.get("total") or 0)
            step = float(p.get("step") or 0)
        except (TypeError, ValueError):
            return None
        if total <= 0:
            return None
        return max(0.0, min(1.0, step / total))

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
    if not isinstance(req, dict) or not isinstance(st, dict):
        return None
    prog = read_json(d / "progress.json")
    res = read_json(d / "result.json") if (d / "result.json").exists() else None
    try:
        return Job(
            id=job_id, root=root, argv=tuple(str(a) for a in req["argv"]), module=str(req.get("module", "ipt_core")),
            label=str(req.get("label", "")), resource=str(req.get("resource", "cpu")), created=float(req["created"]),
            status=str(st.get("status", "queued")), pid=st.get("pid"), worker=st.get("worker"),
            started=st.get("started"), ended=st.get("ended"), returncode=st.get("returncode"),
            error=st.get("error"), progress=prog if isinstance(prog, dict) else None, result=res,
        )
    except (KeyError, TypeError, ValueError):
        return None


def set_status(job_dir: Path, **fields: Any) -> None:
    st = read_json(job_dir / "status.json") or {}
    st.update(fields)
    write_json(job_dir / "status.json", st)
