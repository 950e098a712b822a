"""The queue's API for pages and scripts: submit, list, get, cancel, delete a job, and read its log."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

from ipt_core.errors import InputError, UnknownNameError
from ipt_core.jobs.files import ID_RE, check_id, locked, read_json, write_json
from ipt_core.jobs.job import Job, load_job, set_status
from ipt_core.jobs.request import (
    JOB_COMMANDS,
    MAX_LABEL_CHARS,
    REQUEST_FORMAT,
    RESOURCES,
    RequestRefused,
    check_args,
)

__all__ = ["submit", "list_jobs", "get_job", "cancel", "runs_job", "delete_job", "log_tail", "last_json_line",
           "write_estimate", "read_estimate"]


def submit(root: str | os.PathLike, argv: Sequence[str], *, label: str = "", resource: str = "cpu") -> Job:
    """Queue ``python -m ipt_core <argv> --json --cache <root>``; returns the queued Job.

    ``argv[0]`` must be a job command (:data:`~ipt_core.jobs.request.JOB_COMMANDS`); the request
    records the command and its arguments only, and ``--json`` and ``--cache <root>`` are added
    when the job is run (``--cache`` is refused in ``argv``: results must land in this store). The
    worker checks the command line with the CLI's own parser before it starts it
    (:func:`~ipt_core.jobs.request.check_with_cli`). The job is made in a hidden folder and renamed
    into place, so it is never seen half-written.

    Raises:
        ValueError: unknown subcommand, bad resource, a non-string argument or ``--cache`` in argv.

    Example:
        >>> job = submit("/tmp/store", ["tasks", "--suite", "demo"], label="list demo")   # doctest: +SKIP
        >>> job.status, job.argv[-1]                                                      # doctest: +SKIP
        ('queued', '--json')
    """
    root_p = Path(root).expanduser().resolve()
    argv = list(argv)
    if not argv:
        raise InputError(f"empty command; expected a subcommand, one of {list(JOB_COMMANDS)}")
    try:
        command, args = check_args(argv[0], [a for a in argv[1:] if a != "--json"])
    except RequestRefused as exc:
        raise InputError(str(exc)) from None
    if resource not in RESOURCES:
        raise InputError(f"resource must be one of {list(RESOURCES)}, got {resource!r}")
    created = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(created)) + f"-{int(created % 1 * 1e6):06d}"
    job_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
    jobs = root_p / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    tmp = jobs / f".new-{job_id}"
    tmp.mkdir()
    try:
        write_json(tmp / "request.json", {"format": REQUEST_FORMAT, "command": command, "args": list(args),
                                           "label": str(label)[:MAX_LABEL_CHARS], "resource": resource,
                                           "created": created})
        write_json(tmp / "status.json", {"status": "queued"})
        os.rename(tmp, jobs / job_id)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    job = load_job(root_p, job_id)
    assert job is not None
    return job


def write_estimate(job: Job, estimate: dict) -> bool:
    """Keep the cost estimate made when ``job`` was queued beside its records (``estimate.json``,
    for its overall progress and ETA); False when it could not be written (only the ETA is lost)."""
    try:
        write_json(job.dir / "estimate.json", estimate)
    except (OSError, TypeError, ValueError):
        return False
    return True


def read_estimate(job: Job) -> dict | None:
    """The estimate kept by :func:`write_estimate`, or None (missing, unreadable, not an object)."""
    est = read_json(job.dir / "estimate.json")
    return est if isinstance(est, dict) else None


def list_jobs(root: str | os.PathLike) -> list[Job]:
    """All jobs of the store, newest first (an empty list when there are none).

    Example:
        >>> [(j.id, j.status) for j in list_jobs(root)][:1]   # doctest: +SKIP
        [('20250101-120000-000000-0a1b2c3d', 'done')]
    """
    root_p = Path(root).expanduser().resolve()
    try:
        names = [e.name for e in os.scandir(root_p / "jobs") if e.is_dir() and ID_RE.match(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    jobs = [j for j in (load_job(root_p, n) for n in names) if j is not None]
    jobs.sort(key=lambda j: (j.created, j.id), reverse=True)
    return jobs


def get_job(root: str | os.PathLike, job_id: str) -> Job:
    """The job ``job_id``; KeyError when there is no such job."""
    root_p = Path(root).expanduser().resolve()
    job = load_job(root_p, check_id(job_id))
    if job is None:
        raise UnknownNameError(f"no job {job_id!r} in {root_p / 'jobs'}")
    return job


def cancel(root: str | os.PathLike, job_id: str) -> Job:
    """Cancel a job: a queued one at once; a running one gets SIGTERM (its whole process group).

    The CLI stops at its next training step and exits 130; the worker then records "cancelled".
    Nothing half-done reaches the store (results are written only once a bank has finished).
    A finished job is left as it is. Returns the job as it is now.
    """
    root_p = Path(root).expanduser().resolve()
    job = get_job(root_p, job_id)
    pid = None
    with locked(root_p):
        st = read_json(job.dir / "status.json")
        state = st.get("status") if isinstance(st, dict) else None
        if state == "queued":
            set_status(job.dir, status="cancelled", ended=time.time())
        elif state == "running":
            (job.dir / "cancel").touch()
            pid = job.pid
    # status.json is not trusted (a planted record could name any pid): signal the pid only when it
    # runs this job's own command line; otherwise the worker, which watches the cancel marker, does
    if pid and runs_job(pid, job):
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass  # ended meanwhile; the worker sees the cancel marker and records it
    return get_job(root_p, job_id)


def runs_job(pid: int, job: Job) -> bool:
    """Does process ``pid`` run ``job``'s command (``... -m ipt_core <job.argv>``, torchrun included)?"""
    if not job.argv:
        return False
    try:
        cmd = [a.decode("utf-8", "replace") for a in Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0")]
    except (OSError, ValueError):
        return False  # no /proc (not Linux) or no such process: leave it to the worker
    while cmd and not cmd[-1]:
        cmd.pop()
    n = len(job.argv)
    return len(cmd) > n + 1 and cmd[-n:] == list(job.argv) and cmd[-n - 1] == "ipt_core"


def delete_job(root: str | os.PathLike, job_id: str) -> bool:
    """Remove a finished job's folder (its results stay in the store); False if it is not finished."""
    import shutil

    root_p = Path(root).expanduser().resolve()
    with locked(root_p):
        job = load_job(root_p, check_id(job_id))
        if job is None or not job.finished:
            return False
        trash = root_p / "jobs" / f".del-{uuid.uuid4().hex}"
        os.rename(job.dir, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _read_tail(path: Path, max_bytes: int) -> tuple[bytes, int] | None:
    """The last ``max_bytes`` of a file and its size, or None when it cannot be read."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            return f.read(), size
    except OSError:
        return None


def log_tail(job: Job, n_lines: int = 20, *, max_bytes: int = 256 * 1024) -> str:
    """The last ``n_lines`` lines of the job's log (carriage-return redraws collapsed).

    Example:
        >>> print(log_tail(get_job(root, job_id), 5))   # doctest: +SKIP
    """
    tail = _read_tail(job.dir / "log.txt", max_bytes)
    if tail is None:
        return ""
    data, size = tail
    lines = data.decode("utf-8", errors="replace").split("\n")
    if size > max_bytes:
        lines = lines[1:]  # the first one is cut
    lines = [ln.rstrip("\r").rsplit("\r", 1)[-1] for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines[-n_lines:]) if n_lines > 0 else ""


def last_json_line(path: Path, max_bytes: int = 4 * 1024 * 1024) -> Any:
    """The last line of the log that is a JSON object (the ``--json`` result), or None."""
    tail = _read_tail(path, max_bytes)
    if tail is None:
        return None
    for line in reversed(tail[0].decode("utf-8", errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except (ValueError, RecursionError):
                continue
    return None
