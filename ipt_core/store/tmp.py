"""The store's temp folder: writer-named temp paths, and which leftovers are stale (torch-free).

A store writes every entry into ``<store>/tmp/`` first and renames it into place. A writer killed
mid-write (``kill -9`` during a 400 MB ``put``) leaves its temp item behind, so each temp name
carries its writer: ``w-<host tag>-<pid>-<uuid>``. An item of a process of this host (and pid
namespace) that no longer runs is stale at once; an item of another host, or with a name of the
old style, is stale when untouched for :data:`STALE_TMP_S`. A live writer's item is never stale.
:class:`ipt_core.store.Store` sweeps stale items the first time a process opens a store, and
``python -m ipt_core verify`` reports them.

Example::

    >>> p = new_tmp_path(Path("/s/tmp"))            # doctest: +SKIP
    >>> p.name                                      # doctest: +SKIP
    'w-myhost.4026531836-12345-0f3c...'
    >>> stale_and_live(Path("/s/tmp"))              # doctest: +SKIP
    ([], [PosixPath('/s/tmp/w-myhost.4026531836-12345-0f3c...')])
"""
from __future__ import annotations

import os
import re
import socket
import time
import uuid
from pathlib import Path

from ipt_core.store.entry import rmtree

__all__ = ["STALE_TMP_S", "TMP_NAME_RE", "host_tag", "new_tmp_path", "stale_and_live", "clean", "tree_bytes"]

STALE_TMP_S = 3600.0
"""A temp item whose writer cannot be checked (another host, an old name) is stale after this long
untouched: live writers finish an entry in seconds, and write to it all along."""

TMP_NAME_RE = re.compile(r"^w-(?P<host>.+)-(?P<pid>[0-9]{1,10})-(?P<id>[0-9a-f]{32})(?:\.deleted)?$")


def host_tag() -> str:
    """This machine and pid namespace: pids are comparable only between writers with the same tag.

    The pid namespace matters: containers started with the host's network share its host name but
    not its pids.
    """
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"
    try:
        ns = re.sub(r"[^0-9]", "", os.readlink("/proc/self/ns/pid"))
    except OSError:
        ns = ""
    return f"{host}.{ns}" if ns else host


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's live process (or a number we cannot check): keep its files
    return True


def new_tmp_path(tmp_dir: Path, suffix: str = "") -> Path:
    """A fresh temp path in ``tmp_dir`` named after this writer (host tag, pid)."""
    return tmp_dir / f"w-{host_tag()}-{os.getpid()}-{uuid.uuid4().hex}{suffix}"


def stale_and_live(tmp_dir: Path, older_than_s: float = STALE_TMP_S) -> tuple[list[Path], list[Path]]:
    """(stale, live) items of ``tmp_dir``.

    Stale: written by a process of this host (and pid namespace) that is no longer running, at
    once; else (another host, or a name without a writer) untouched for ``older_than_s`` seconds.
    A live writer's item is never stale: its pid runs, or it was touched recently.
    """
    try:
        items = list(os.scandir(tmp_dir))
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    here, cutoff = host_tag(), time.time() - older_than_s
    stale: list[Path] = []
    live: list[Path] = []
    for it in items:
        p = Path(it.path)
        m = TMP_NAME_RE.match(it.name)
        if m and m["host"] == here:
            pid = int(m["pid"])
            (live if pid == os.getpid() or _pid_alive(pid) else stale).append(p)
            continue
        try:
            newest = it.stat(follow_symlinks=False).st_mtime
            if it.is_dir(follow_symlinks=False):
                for sub in os.scandir(p):
                    newest = max(newest, sub.stat(follow_symlinks=False).st_mtime)
        except FileNotFoundError:
            continue
        (stale if newest <= cutoff else live).append(p)
    return stale, live


def clean(tmp_dir: Path, older_than_s: float = STALE_TMP_S) -> int:
    """Remove the stale items of ``tmp_dir`` (see :func:`stale_and_live`); returns how many went."""
    removed = 0
    for p in stale_and_live(tmp_dir, older_than_s)[0]:
        rmtree(p)
        if not os.path.lexists(p):
            removed += 1
    return removed


def tree_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (a file: its size); 0 when gone."""
    try:
        if not path.is_dir() or path.is_symlink():
            return path.lstat().st_size
        return sum(f.lstat().st_size for f in path.rglob("*") if not f.is_dir())
    except OSError:
        return 0
