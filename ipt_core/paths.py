"""Which folders the app may read and write when a person types a path into it.

The app serves on localhost, but on a shared lab machine anyone who reaches the port can type a
path: a store folder (the app creates job and result files there), a suite folder or file, a local
model folder. Such paths must resolve, symlinks followed, inside one of the allowed roots:

- ``$IPT_ALLOWED_ROOTS`` (folders separated by ``os.pathsep``) when set: exactly those;
- otherwise the project's parent folder (the repository and ``../shared`` beside it) when the code
  runs from a checkout (:func:`is_checkout`; installed, that folder is ``lib/pythonX.Y/`` and is left
  out), the current folder, the user's home, the system's temporary folder, and ``$IPT_CACHE`` when set.

The same holds for every path the app reads on a store's or a suite's word (a result's
``meta["suite"]``, an upload's spec), and for every file *inside* a suite folder it loads: a
symlink there (``t/train.jsonl -> /elsewhere/x``) must resolve inside the roots as well
(:func:`check_tree_allowed`, :func:`check_suite_allowed`).

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
from typing import Iterable

from ipt_core.errors import InputError

PACKAGE_ROOT = Path(__file__).resolve().parent
"""The installed ``ipt_core`` package (its data: the demo suite, the shipped results)."""
PROJECT_ROOT = PACKAGE_ROOT.parent
"""The folder holding ``ipt_core``: the checkout, or ``site-packages`` once installed (see :func:`is_checkout`)."""
SHIPPED_RESULTS = PACKAGE_ROOT / "shipped_results"
"""The read-only store of demo results shipped inside the package."""

TREE_MAX_ENTRIES = 20_000
"""Files and folders :func:`check_tree_allowed` looks at in one suite before it refuses it: ten
times the upload limit (2,000 files), and far above the full CrossFit data (~2,400 files)."""
TREE_MAX_DEPTH = 4
"""Folder levels below a suite that :func:`check_tree_allowed` walks. The task loader reads two
(``suite/task/train.jsonl``; a saved Hugging Face dataset ``ds/train/data.arrow``)."""


class PathNotAllowed(InputError):
    """A typed path resolves outside every allowed root."""


def is_checkout(root: Path | None = None) -> bool:
    """True when ``root`` (default :data:`PROJECT_ROOT`) is the project's checkout: it holds
    ``pyproject.toml`` and ``app.py``. False once installed, where it is ``site-packages``."""
    root = PROJECT_ROOT if root is None else Path(root)
    return (root / "pyproject.toml").is_file() and (root / "app.py").is_file()


def allowed_roots() -> list[Path]:
    """The allowed roots, resolved, without duplicates (see the module's docstring)."""
    env = os.environ.get("IPT_ALLOWED_ROOTS", "").strip()
    if env:
        raw = [p for p in env.split(os.pathsep) if p.strip()]
    else:
        # the checkout's parent (../shared beside it); installed, PROJECT_ROOT.parent is lib/pythonX.Y/: left out
        raw = [str(PROJECT_ROOT.parent)] if is_checkout() else []
        raw += [os.getcwd(), str(Path.home()), tempfile.gettempdir()]
        if os.environ.get("IPT_CACHE"):
            raw.append(os.environ["IPT_CACHE"])
    out: list[Path] = []
    for p in raw:
        r = Path(p).expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


def _roots(extra_roots: Iterable[str | os.PathLike]) -> list[Path]:
    out = allowed_roots()
    for p in extra_roots:
        r = Path(p).expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


def _inside(resolved: Path, roots: list[Path]) -> bool:
    return any(resolved == r or r in resolved.parents for r in roots)


def check_allowed(path: str | os.PathLike, what: str, *, extra_roots: Iterable[str | os.PathLike] = ()) -> Path:
    """``path`` resolved (symlinks followed, ``..`` removed) when it lies inside an allowed root
    (or one of ``extra_roots``: e.g. the uploads of the store in use); else :class:`PathNotAllowed`
    naming ``what``, the path and the roots."""
    resolved = Path(path).expanduser().resolve()
    roots = _roots(extra_roots)
    if _inside(resolved, roots):
        return resolved
    raise PathNotAllowed(f"{what} {str(path)!r} resolves to {resolved}, outside the allowed folders "
                         f"({', '.join(map(str, roots))}); set IPT_ALLOWED_ROOTS to allow it")


def _skipped(name: str) -> bool:
    """Folders the task loader never looks into (hidden, ``_private``, ``__pycache__``): not walked,
    so a suite kept in a git checkout is not refused for the size of its ``.git``."""
    return name.startswith((".", "_"))


def check_tree_allowed(path: str | os.PathLike, what: str, *, extra_roots: Iterable[str | os.PathLike] = (),
                       max_entries: int = TREE_MAX_ENTRIES, max_depth: int = TREE_MAX_DEPTH) -> Path:
    """:func:`check_allowed` of ``path``, and, for a folder, of every symlink inside it: a link in a
    suite folder is followed by the loader, so one that resolves outside the allowed roots would
    let the app read (and show) a file no typed path may name. Returns ``path`` resolved.

    The walk is bounded: ``max_depth`` folder levels (linked folders followed, each real folder
    once), folders the loader skips (hidden, ``_...``) not entered, and at most ``max_entries``
    entries, past which the folder is refused (the app cannot vouch for what it did not look at).
    A file named ``task.json`` stands for its folder (the loader reads the folder's other files).
    Raises :class:`PathNotAllowed` naming the offending link and where it points.
    """
    roots = _roots(extra_roots)
    top = check_allowed(path, what, extra_roots=roots)
    lexical = Path(path).expanduser()
    if lexical.name == "task.json" and top.is_file():  # load_suite loads the file's folder
        check_tree_allowed(lexical.parent, what, extra_roots=roots, max_entries=max_entries, max_depth=max_depth)
        return top
    if not top.is_dir():
        return top
    seen = {top}
    stack = [(top, 1)]
    count = 0
    while stack:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as it:
                items = []
                for item in it:
                    count += 1
                    if count > max_entries:
                        raise PathNotAllowed(f"{what} {str(path)!r} holds more than {max_entries} files and "
                                             "folders; the app only loads suites it can check (use the CLI)")
                    items.append(item)
        except OSError:
            continue  # an unreadable folder: the loader reports it in its own words
        for item in items:
            p = Path(item.path)
            try:
                is_link = item.is_symlink()
                real = p.resolve() if is_link else p
            except (OSError, RuntimeError):  # a link loop: nothing the loader could read either
                raise PathNotAllowed(f"{what} {str(path)!r} holds the link {p}, which cannot be resolved "
                                     "(a loop)") from None
            if is_link and not _inside(real, roots):
                raise PathNotAllowed(f"{what} {str(path)!r} holds the link {p} -> {real}, outside the allowed "
                                     f"folders ({', '.join(map(str, roots))}); set IPT_ALLOWED_ROOTS to allow it")
            try:
                is_dir = item.is_dir()  # follows links: a linked folder inside the roots is walked too
            except OSError:
                is_dir = False
            if is_dir and depth < max_depth and not _skipped(item.name) and real not in seen:
                seen.add(real)
                stack.append((real, depth + 1))
    return top


def suite_local_path(spec: str) -> str | None:
    """The local file or folder a suite spec makes the loader read, or None when it reads none
    (``demo``, shipped with the package; ``hf:NAME``, a dataset from the Hugging Face cache).

    ``hf:PATH[:CONFIG]`` names a local folder when its name part looks like a path; the split
    mirrors :func:`ipt_core.tasks.hf.split_hf_spec` (not imported: this module stays import-light).
    """
    if not isinstance(spec, str) or not spec.strip() or spec == "demo":
        return None
    if not spec.startswith("hf:"):
        return spec
    rest = spec[3:]
    name = rest.rsplit(":", 1)[0] if ":" in rest and not Path(rest).exists() else rest
    return name if name and looks_like_path(name) else None


def check_suite_allowed(spec: str, what: str = "suite", *,
                        extra_roots: Iterable[str | os.PathLike] = ()) -> Path | None:
    """:func:`check_tree_allowed` of the local path a suite spec reads (:func:`suite_local_path`),
    which is returned resolved; None for ``demo`` and hub dataset names."""
    local = suite_local_path(spec)
    return None if local is None else check_tree_allowed(local, what, extra_roots=extra_roots)


def looks_like_path(model: str) -> bool:
    """A backbone's model part names a local folder (not a hub id) when it is absolute, starts
    with ``.`` or ``~``, or exists on disk."""
    return model.startswith(("/", ".", "~")) or Path(model).expanduser().exists()
