"""Which folders the app may read and write when a person types a path into it.

The app serves on localhost, but on a shared lab machine anyone who reaches the port can type a
path: a store folder (the app creates job and result files there), a suite folder or file, a local
model folder. Such paths must resolve, symlinks followed, inside one of the allowed roots:

- ``$IPT_ALLOWED_ROOTS`` (folders separated by ``os.pathsep``) when set: exactly those;
- otherwise the project's parent folder (the repository and ``../shared`` beside it), the current
  folder, the user's home, the system's temporary folder, and ``$IPT_CACHE`` when set.

The CLI is not limited: whoever runs a command already has the shell.

Example::

    >>> from ipt_core.paths import check_allowed
    >>> check_allowed("/etc/passwd", "suite path")  # doctest: +SKIP
    PathNotAllowed: suite path /etc/passwd is outside the allowed folders (...); set IPT_ALLOWED_ROOTS to allow it
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class PathNotAllowed(ValueError):
    """A typed path resolves outside every allowed root."""


def allowed_roots() -> list[Path]:
    """The allowed roots, resolved, without duplicates (see the module's docstring)."""
    env = os.environ.get("IPT_ALLOWED_ROOTS", "").strip()
    if env:
        raw = [p for p in env.split(os.pathsep) if p.strip()]
    else:
        raw = [str(PROJECT_ROOT.parent), os.getcwd(), str(Path.home()), tempfile.gettempdir()]
        if os.environ.get("IPT_CACHE"):
            raw.append(os.environ["IPT_CACHE"])
    out: list[Path] = []
    for p in raw:
        r = Path(p).expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


def check_allowed(path: str | os.PathLike, what: str) -> Path:
    """``path`` resolved (symlinks followed, ``..`` removed) when it lies inside an allowed root;
    else :class:`PathNotAllowed` naming ``what``, the path and the roots."""
    resolved = Path(path).expanduser().resolve()
    roots = allowed_roots()
    if any(resolved == r or r in resolved.parents for r in roots):
        return resolved
    raise PathNotAllowed(f"{what} {str(path)!r} resolves to {resolved}, outside the allowed folders "
                         f"({', '.join(map(str, roots))}); set IPT_ALLOWED_ROOTS to allow it")


def looks_like_path(model: str) -> bool:
    """A backbone's model part names a local folder (not a hub id) when it is absolute, starts
    with ``.`` or ``~``, or exists on disk."""
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()
