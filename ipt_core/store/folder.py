"""Which folders may be used as a result store when a person types one into the app (torch-free).

A store root is where the app queues jobs (``jobs/<id>/request.json``) and a worker runs them, so a
folder someone else filled must not be taken for one: an uploaded suite's folder (whose files came
from a stranger's zip) least of all (security audit, issue 32). :func:`check_store_folder` accepts

- a folder that does not exist yet (the store creates it on its first write);
- an existing folder that is empty (dot-files such as ``.DS_Store`` or ``.gitignore`` aside);
- a folder that looks like a store: every entry is one of the store's own sub-folders
  (:data:`STORE_FOLDERS`: ``objects/``, ``tmp/``, ``corrupt/``, ``checkpoints/``, ``jobs/``,
  ``uploads/``, the layout that :mod:`ipt_core.store`, :mod:`ipt_core.jobs` and
  :mod:`ipt_app.uploads` create), a ``README`` note, or a dot-file;

and refuses, with :class:`NotAStoreFolder` and one line saying why,

- an upload: a folder holding ``_upload.json``, or any folder inside one;
- a folder inside a store's own sub-folder (``<store>/uploads/x``, ``<store>/jobs``...);
- a file, and any other non-empty folder (naming a few of the entries that are not a store's).

The store's default root (``$IPT_CACHE`` or ``./cache``) is the operator's choice and is not
checked here (the app accepts it as it is).

Example::

    >>> check_store_folder("/tmp/new-store")                          # doctest: +SKIP
    PosixPath('/tmp/new-store')
    >>> check_store_folder("/tmp/cache/uploads/my_tasks")             # doctest: +SKIP
    NotAStoreFolder: result store /tmp/cache/uploads/my_tasks is an uploaded suite's folder, not a result store
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ipt_core.errors import InputError

__all__ = ["STORE_FOLDERS", "NotAStoreFolder", "looks_like_store", "check_store_folder"]

STORE_FOLDERS = frozenset({"objects", "tmp", "corrupt", "checkpoints", "jobs", "uploads"})
"""A store root's own sub-folders (store.py's layout, plus the job queue's and the uploads')."""

UPLOAD_INFO = "_upload.json"  # the marker every upload folder holds (ipt_app.uploads)
_NOTE_RE = re.compile(r"^(readme|license|licence)(\.(md|txt|rst))?$", re.IGNORECASE)


class NotAStoreFolder(InputError):
    """A typed path is not usable as a result store; the message is one line saying why."""


def _entries(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return [e for e in it if not e.name.startswith(".")]


def _foreign(entries: list[os.DirEntry]) -> list[str]:
    """The entries that a store root would not hold (sorted names)."""
    out = []
    for e in entries:
        if e.name in STORE_FOLDERS and e.is_dir(follow_symlinks=False):
            continue
        if _NOTE_RE.match(e.name) and e.is_file(follow_symlinks=False):
            continue
        out.append(e.name)
    return sorted(out)


def looks_like_store(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is an existing, non-empty folder of only a store's own entries (module docstring)."""
    folder = Path(folder)
    try:
        if not folder.is_dir() or (folder / UPLOAD_INFO).exists():
            return False
        entries = _entries(folder)
    except OSError:
        return False
    return bool(entries) and any(e.name in STORE_FOLDERS for e in entries) and not _foreign(entries)


def check_store_folder(path: str | os.PathLike, what: str = "result store") -> Path:
    """``path`` resolved when it may be used as a result store (module docstring), else
    :class:`NotAStoreFolder` naming ``what``, the path and the reason."""
    resolved = Path(path).expanduser().resolve()
    label = f"{what} {resolved}"
    # an upload, or inside one: its files came from a stranger's zip
    for d in (resolved, *resolved.parents):
        if (d / UPLOAD_INFO).exists():
            where = "is" if d == resolved else f"is inside {d},"
            raise NotAStoreFolder(f"{label} {where} an uploaded suite's folder, not a result store")
    # inside a store's own sub-folder: e.g. <store>/uploads/<name>, <store>/jobs
    for child, parent in zip((resolved, *resolved.parents), resolved.parents):
        if child.name in STORE_FOLDERS and looks_like_store(parent):
            raise NotAStoreFolder(f"{label} is inside the result store {parent} (its {child.name}/ folder); "
                                  "choose the store's own folder")
    if not resolved.exists():
        return resolved
    if not resolved.is_dir():
        raise NotAStoreFolder(f"{label} is a file, not a folder")
    try:
        entries = _entries(resolved)
    except OSError as e:
        raise NotAStoreFolder(f"{label} cannot be read ({e.strerror or e})") from None
    foreign = _foreign(entries)
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise NotAStoreFolder(f"{label} is a folder that is not a result store (it holds {shown}); "
                              f"choose an empty or new folder, or a store's folder "
                              f"(holding only {', '.join(sorted(STORE_FOLDERS))})")
    return resolved
