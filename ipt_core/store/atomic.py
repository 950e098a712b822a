"""Atomic file writes, the one helper every writer of ``ipt_core`` uses (store, checkpoints, jobs,
exports, progress files).

A reader sees the old file or the new one, never half of one: the data goes to a temporary name in
the same folder (``.tmp-<uuid>-<name>``), is fsynced, renamed over the target with ``os.replace``
(atomic on POSIX within one file system), and the folder is fsynced so that the rename itself
survives a crash. On any failure the temporary file is removed and the exception propagates
(callers decide whether a full disk is fatal: the store raises, a checkpoint only warns).

Bytes go through ``os.write`` in a loop (short writes are continued), so a test can simulate a full
disk by patching ``os.write`` or ``os.fsync``.

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_json(d / "status.json", {"status": "queued"})
    >>> (d / "status.json").read_text()
    '{\\n "status": "queued"\\n}'
    >>> write_text(d / "worker.pid", "123\\n"); sorted(p.name for p in d.iterdir())
    ['status.json', 'worker.pid']
"""
from __future__ import annotations

import errno
import json
import os
import uuid
from pathlib import Path
from typing import Any, Callable

__all__ = ["TMP_PREFIX", "write_bytes", "write_text", "write_json", "write_with", "write_new_file",
           "read_and_fsync", "fsync_dir"]

TMP_PREFIX = ".tmp-"
"""Temporary files are named ``.tmp-<uuid>-<target name>`` next to the target (hidden, easy to sweep)."""


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a folder so that the renames and creations inside it are durable.

    A folder that cannot be opened is skipped; file systems that cannot fsync a folder (EINVAL,
    ENOTSUP, ...) are tolerated; any other error (e.g. EIO, ENOSPC) is raised.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as e:  # some file systems cannot fsync a directory
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


def write_new_file(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` (it must not exist), write ``data`` (os.write loop) and fsync it.

    Not atomic by itself: use it inside a private temporary folder that is renamed into place as a
    whole (the store's entries), or through :func:`write_bytes`.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_and_fsync(path: str | os.PathLike[str]) -> bytes:
    """fsync a file written by someone else (e.g. a library writing by file name) and return its bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{uuid.uuid4().hex}-{path.name}")


def write_bytes(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``data`` (temp name in the same folder, fsync, rename, fsync folder).

    Example:
        >>> write_bytes(d / "blob.bin", b"\\x00\\x01")   # doctest: +SKIP
    """
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        write_new_file(tmp, bytes(data), mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", mode: int = 0o644) -> None:
    """Atomically replace ``path`` with ``text`` encoded as ``encoding`` (see :func:`write_bytes`)."""
    write_bytes(path, text.encode(encoding), mode=mode)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 1, mode: int = 0o644,
               **dumps_kwargs: Any) -> None:
    """Atomically replace ``path`` with ``json.dumps(obj, indent=indent, **dumps_kwargs)`` in UTF-8."""
    write_bytes(path, json.dumps(obj, indent=indent, **dumps_kwargs).encode("utf-8"), mode=mode)


def write_with(path: str | os.PathLike[str], write: Callable[[str], None], *, mode: int = 0o644) -> None:
    """Atomically replace ``path`` with what ``write(tmp_name)`` writes to the file name it is given.

    For libraries that only write by file name (``safetensors.torch.save_file``). The file is then
    fsynced, given ``mode`` (shared files: 0o644 whatever the umask) and renamed into place.

    Example:
        >>> write_with(d / "p.safetensors", lambda tmp: save_file({"prompt": t}, tmp))   # doctest: +SKIP
    """
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        write(str(tmp))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
