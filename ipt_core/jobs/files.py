"""The files of the job queue: atomic JSON writes, tolerant reads, the queue's lock, pids."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

from ipt_core.errors import UnknownNameError
from ipt_core.store import atomic

__all__ = ["ID_RE", "jobs_dir", "write_json", "write_text", "read_json", "locked", "check_id", "pid_alive"]


ID_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}-[0-9a-f]{8}$")


def jobs_dir(root: str | os.PathLike) -> Path:
    return Path(root).expanduser().resolve() / "jobs"


def write_json(path: Path, obj: Any) -> None:
    """Atomic write (:func:`ipt_core.store.atomic.write_json`): readers see the old file or the new one."""
    atomic.write_json(path, obj, indent=1)


def write_text(path: Path, text: str) -> None:
    """Atomic write of a small text file (the worker's pid)."""
    atomic.write_text(path, text)


MAX_RECORD_BYTES = 1024 * 1024  # a job record is a few hundred bytes; anything huge is not ours


def read_json(path: Path, max_bytes: int = MAX_RECORD_BYTES) -> Any:
    """The parsed file, or None when it is missing, too large, or not JSON at all (a store folder is
    not trusted: deep nesting raises RecursionError, bad bytes UnicodeError, both are None here)."""
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:
            return None
        return json.loads(data.decode("utf-8"))
    except (OSError, ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None


@contextlib.contextmanager
def locked(root: str | os.PathLike, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``jobs/<name>`` (released when the process dies, too)."""
    d = jobs_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def check_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not ID_RE.match(job_id):
        raise UnknownNameError(f"not a job id: {job_id!r}")
    return job_id


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs and is not a zombie (an exited child not yet reaped by its parent)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True
