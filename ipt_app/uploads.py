"""Uploaded task suites: safe extraction of a zip (or a CSV) into ``<store root>/uploads/<name>/``.

An upload is untrusted: a zip is checked before anything is written (no absolute paths, no ``..``,
no symlinks or special files, no encrypted members, at most :data:`MAX_FILES` files and
:data:`MAX_TOTAL_BYTES` declared bytes, no member compressed more than :data:`MAX_RATIO` times),
then extracted into a temporary folder while the bytes actually written are counted against the
declared sizes (headers can lie), then loaded with :func:`ipt_core.tasks.load_suite`. Only a suite
that loads is renamed into place; on any failure nothing is left behind. Errors are
:class:`UploadError` or the loader's :class:`~ipt_core.tasks.TaskDataError` (naming the file inside
the upload, the line and the field).

An upload carries task data only (security audit, issue 32: data must never become code). Every
member must be a file the task loaders read, at most :data:`MAX_DEPTH` path parts deep
(``suite/task/train.jsonl``):

- ``task.json``, ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` (task folders);
- ``{task}_{k}_{seed}_{train|dev|test}.tsv`` and ``ontology.json`` (CrossFit-style folders);

in folders whose names do not start with ``.`` or ``_`` and are not the names of a result store's
own folders (:data:`RESERVED_FOLDERS`: ``jobs``, ``objects``, ``uploads``, ...). Any other member
refuses the whole upload with an :class:`UploadError` naming it: refusing (rather than silently
skipping) tells the uploader what was wrong, and makes it impossible for an upload to hold a job's
``request.json``/``status.json``, a store entry or a script, whatever the folder is later taken
for. Only well-known harmless junk is skipped without a word, and never extracted: ``__MACOSX/``,
``._*`` AppleDouble files, ``.DS_Store``, ``Thumbs.db``, ``desktop.ini``, and ``README``/``LICENSE``
notes (``.md``/``.txt``/``.rst`` or no extension). A CSV/TSV upload is stored as
``<name>/<name>.csv`` (or ``.tsv``), ``<name>`` made by :func:`safe_name`.

Publishing is atomic and exclusive: the suite is built in ``uploads/.tmp-*`` and renamed into
place while holding ``uploads/.lock`` (``flock``), so of several callers saving one name without
``overwrite`` exactly one succeeds and the others get "name taken". With ``overwrite`` the new
folder is swapped in with ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it, so a reader
sees the old suite or the new one, never neither; elsewhere the old folder is moved aside and the
new one renamed in at once (a window of microseconds without the name).

Layout::

    <store root>/uploads/<name>/                 the suite folder (task folders, or a CrossFit folder)
    <store root>/uploads/<name>/<name>.csv       for a CSV upload, the suite is this file
    <store root>/uploads/<name>/_upload.json     name, kind, spec, original file name, tasks, created
    <store root>/uploads/.lock                   held while a name is claimed, replaced or deleted

Example:
    >>> info = save_upload(root, "my_tasks.zip", data)     # doctest: +SKIP
    >>> info["name"], info["spec"]                         # doctest: +SKIP
    ('my_tasks', '/.../cache/uploads/my_tasks')
    >>> [u["name"] for u in list_uploads(root)]            # doctest: +SKIP
    ['my_tasks']
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import io
import json
import os
import re
import shutil
import stat
import time
import uuid
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from ipt_core.errors import InputError
from ipt_core.tasks import TaskDataError, load_suite
from ipt_core.tasks.crossfit import CROSSFIT_RE

__all__ = [
    "UploadError",
    "MAX_TOTAL_BYTES",
    "MAX_FILES",
    "MAX_RATIO",
    "MAX_DEPTH",
    "TASK_FILES",
    "RESERVED_FOLDERS",
    "safe_name",
    "check_zip",
    "extract_zip",
    "save_upload",
    "list_uploads",
    "delete_upload",
]

MAX_TOTAL_BYTES = 50 * 1024 * 1024
MAX_FILES = 2000
MAX_RATIO = 100  # text compresses ~5-10x; far beyond that is a zip bomb
_RATIO_MIN_BYTES = 1024 * 1024  # tiny members can have silly ratios harmlessly (e.g. a file of spaces)
MAX_DEPTH = 3  # suite/task/train.jsonl: the deepest file a loader reads (one top folder is lifted)
TASK_FILES = frozenset({"task.json", "train.jsonl", "dev.jsonl", "test.jsonl", "ontology.json"})
"""File names the task loaders read, besides CrossFit's ``{task}_{k}_{seed}_{split}.tsv``."""
RESERVED_FOLDERS = frozenset({"objects", "tmp", "corrupt", "checkpoints", "jobs", "uploads"})
"""A result store's own folders (store.py, jobs/, uploads.py): never a folder inside an upload."""
_IGNORED_PREFIXES = ("__MACOSX/",)  # macOS Finder metadata in zips
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})
_NOTE_RE = re.compile(r"^(readme|license|licence)(\.(md|txt|rst))?$", re.IGNORECASE)
_ALLOWED = ("an upload may hold only task folders (task.json, train.jsonl, dev.jsonl, test.jsonl) "
            "or CrossFit files ({task}_{k}_{seed}_{train|dev|test}.tsv, ontology.json)")
_INFO = "_upload.json"
_LOCK = ".lock"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class UploadError(InputError):
    """An upload was refused; the message says why (and names the member of the zip)."""


def safe_name(filename: str) -> str:
    """A folder name from an uploaded file's name: its stem, reduced to ``[A-Za-z0-9_.-]``.

    Example:
        >>> safe_name("My Tasks (v2).zip")
        'My_Tasks_v2'
    """
    stem = PurePosixPath(str(filename).replace("\\", "/")).name
    for ext in (".zip", ".csv", ".tsv"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:64]
    if not name or not _NAME_RE.match(name):
        raise UploadError(f"cannot make a folder name from {filename!r}; rename the file (letters, digits, _ . -)")
    return name


def _member_path(info: zipfile.ZipInfo) -> PurePosixPath | None:
    """The member's relative path, None for ignored members; UploadError for unsafe ones."""
    raw = info.filename
    if "\x00" in raw:
        raise UploadError(f"zip member {raw!r}: NUL byte in its name")
    name = raw.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise UploadError(f"zip member {raw!r}: absolute paths are not allowed")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UploadError(f"zip member {raw!r}: '..' in a path is not allowed (path traversal)")
    if not parts or name.startswith(_IGNORED_PREFIXES) or _is_junk(parts[-1]) and not info.is_dir():
        return None
    return PurePosixPath(*parts)


def _is_junk(basename: str) -> bool:
    """Harmless clutter that zip tools and people add: skipped, never extracted (module docstring)."""
    return basename.lower() in _JUNK_NAMES or basename.startswith("._") or bool(_NOTE_RE.match(basename))


def _not_task_data(info: zipfile.ZipInfo, rel: PurePosixPath) -> str | None:
    """Why the member is outside the allow-list of task data (module docstring), None when inside."""
    if any(ord(c) < 32 or c == "\x7f" for c in str(rel)):
        return "a control character in its name"
    base = rel.parts[-1]
    if not info.is_dir() and (base.startswith((".", "_"))
                              or not (base in TASK_FILES or CROSSFIT_RE.match(base))):
        return "not a task file"
    if len(rel.parts) > MAX_DEPTH:
        return f"{len(rel.parts)} levels deep (at most {MAX_DEPTH}: suite/task/train.jsonl)"
    for part in rel.parts if info.is_dir() else rel.parts[:-1]:
        if part.startswith((".", "_")):
            return f"folder {part!r} starts with {part[0]!r} (hidden and reserved names are not task folders)"
        if part.lower() in RESERVED_FOLDERS:
            return f"folder {part!r} has the name of a result store's own folder (rename the task folder)"
    return None


def check_zip(zf: zipfile.ZipFile, *, max_total: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES,
              max_ratio: float = MAX_RATIO) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every member of an open zip; return the (member, relative path) pairs to extract.

    Raises:
        UploadError: unsafe path, symlink or special file, encrypted member, duplicate path, too many
            files, too many declared bytes, a compression ratio above ``max_ratio``, or a member
            that is not task data (see the module's docstring: the allow-list).

    Example:
        >>> buf = io.BytesIO(); zipfile.ZipFile(buf, "w").writestr("../x", "hi")
        >>> check_zip(zipfile.ZipFile(buf))
        Traceback (most recent call last):
        ...
        ipt_app.uploads.UploadError: zip member '../x': '..' in a path is not allowed (path traversal)
    """
    members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
    seen: set[str] = set()
    total = 0
    for info in zf.infolist():
        rel = _member_path(info)
        if rel is None:
            continue
        mode = (info.external_attr >> 16) & 0xFFFF
        ftype = stat.S_IFMT(mode)
        if ftype == stat.S_IFLNK:
            raise UploadError(f"zip member {info.filename!r}: symbolic links are not allowed")
        if ftype and ftype not in (stat.S_IFREG, stat.S_IFDIR):
            raise UploadError(f"zip member {info.filename!r}: special files (devices, pipes, sockets) are not allowed")
        if info.flag_bits & 0x1:
            raise UploadError(f"zip member {info.filename!r}: encrypted members are not supported")
        key = str(rel).lower()  # case-insensitive file systems would merge these
        if key in seen:
            raise UploadError(f"zip member {info.filename!r}: the path appears twice")
        seen.add(key)
        if info.is_dir():
            continue
        members.append((info, rel))
        if len(members) > max_files:
            raise UploadError(f"the zip holds more than {max_files} files")
        total += info.file_size
        if total > max_total:
            raise UploadError(f"the zip unpacks to more than {max_total // (1024 * 1024)} MB")
        if info.file_size > _RATIO_MIN_BYTES and info.file_size > max_ratio * max(info.compress_size, 1):
            raise UploadError(f"zip member {info.filename!r}: compressed {info.file_size / max(info.compress_size, 1):.0f}x "
                              f"(more than {max_ratio}x): refused as a possible zip bomb")
    # the allow-list last, so that an unsafe zip is named for its worst fault (traversal, link, bomb)
    for info in zf.infolist():
        rel = _member_path(info)
        why = None if rel is None else _not_task_data(info, rel)
        if why:
            raise UploadError(f"zip member {info.filename!r}: {why}; {_ALLOWED}")
    # a file and a folder of one name ("a" and "a/b") cannot both exist
    files = {str(rel).lower() for _, rel in members}
    for _, rel in members:
        for parent in rel.parents:
            if str(parent).lower() in files:
                raise UploadError(f"zip member {str(rel)!r}: {str(parent)!r} is both a file and a folder")
    if not members:
        raise UploadError("the zip holds no files")
    return members


def extract_zip(source: str | os.PathLike | bytes | BinaryIO, dest: str | os.PathLike, *,
                max_total: int = MAX_TOTAL_BYTES, max_files: int = MAX_FILES, max_ratio: float = MAX_RATIO) -> Path:
    """Extract a checked zip into the NEW folder ``dest`` (which must not exist); returns ``dest``.

    Bytes written are counted against each member's declared size and the total limit while
    extracting. On any error ``dest`` is removed again.

    Raises:
        UploadError: see :func:`check_zip`; also a file that is not a zip, or a member larger than
            declared.
    """
    dest = Path(dest)
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise UploadError(f"not a valid zip file ({e})") from None
    with zf:
        members = check_zip(zf, max_total=max_total, max_files=max_files, max_ratio=max_ratio)
        dest.mkdir(parents=True, exist_ok=False)
        try:
            written = 0
            root = dest.resolve()
            for info, rel in members:
                target = dest.joinpath(*rel.parts)
                if root not in target.resolve().parents:  # belt and braces after check_zip
                    raise UploadError(f"zip member {info.filename!r} would land outside the folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                n = 0
                try:
                    with zf.open(info) as src, open(target, "xb") as out:
                        while chunk := src.read(1 << 16):
                            n += len(chunk)
                            written += len(chunk)
                            if n > info.file_size or written > max_total:
                                raise UploadError(f"zip member {info.filename!r} unpacks to more than it declares: "
                                                  "refused as a possible zip bomb")
                            out.write(chunk)
                except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
                    raise UploadError(f"zip member {info.filename!r} cannot be read ({e})") from None
                except FileExistsError:
                    raise UploadError(f"zip member {info.filename!r}: the path appears twice") from None
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
    return dest


def _suite_root(folder: Path) -> Path:
    """The folder to load: a zip of one top folder (``suite/task/...``) holds the suite inside it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith((".", "_"))]
    if len(entries) == 1 and entries[0].is_dir() and not (entries[0] / "task.json").exists() \
            and not (folder / "task.json").exists():
        return entries[0]
    return folder


def _relative_error(err: TaskDataError, base: Path, label: str) -> TaskDataError:
    """The loader's error with the temporary path replaced by ``<upload>:<path inside it>``."""
    file = err.file
    if file:
        try:
            rel = Path(file).resolve().relative_to(base.resolve())
            file = f"{label}:{rel.as_posix()}" if str(rel) != "." else label
        except ValueError:
            pass
    return type(err)(file, err.line, err.field, err.message)


def save_upload(root: str | os.PathLike, filename: str, data: bytes, *, name: str | None = None,
                overwrite: bool = False) -> dict:
    """Validate and store an uploaded suite (a ``.zip`` of task folders or a ``.csv``/``.tsv``).

    Returns the upload's info: ``{"name", "kind", "spec", "source", "tasks", "created"}``, where
    ``spec`` is what :func:`ipt_core.tasks.load_suite` (and ``--suite`` of the CLI) takes.

    Raises:
        UploadError: unsupported file type, unsafe zip or a member that is not task data, too
            large, name taken (without ``overwrite``; of concurrent callers saving one name,
            exactly one succeeds).
        TaskDataError: the data does not load; the message names the file inside the upload.

    Example:
        >>> save_upload(root, "spam.csv", b"text,label\\nhi,ham\\n...")["kind"]   # doctest: +SKIP
        'csv'
    """
    if not isinstance(data, (bytes, bytearray)):
        raise UploadError(f"upload data must be bytes, got {type(data).__name__}")
    lower = str(filename).lower()
    kind = "zip" if lower.endswith(".zip") else "csv" if lower.endswith((".csv", ".tsv")) else None
    if kind is None:
        raise UploadError(f"{filename!r}: upload a .zip of task folders or a .csv/.tsv file")
    name = safe_name(name or filename)
    if len(data) > MAX_TOTAL_BYTES:
        raise UploadError(f"{filename!r} is larger than {MAX_TOTAL_BYTES // (1024 * 1024)} MB")
    uploads = Path(root).expanduser().resolve() / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    final = uploads / name
    if os.path.lexists(final) and not overwrite:  # fail fast; decided under the lock when publishing
        raise UploadError(_taken(name))
    tmp: Path | None = uploads / f".tmp-{uuid.uuid4().hex}"
    try:
        if kind == "zip":
            extract_zip(bytes(data), tmp)
            base = _suite_root(tmp)
            if base != tmp:  # lift the single top folder's contents up
                lifted = uploads / f".tmp-{uuid.uuid4().hex}"
                os.rename(base, lifted)
                shutil.rmtree(tmp)
                tmp = lifted
            load_path, rel_spec = tmp, "."
        else:
            tmp.mkdir()
            ext = ".tsv" if lower.endswith(".tsv") else ".csv"
            (tmp / f"{name}{ext}").write_bytes(bytes(data))
            load_path, rel_spec = tmp / f"{name}{ext}", f"{name}{ext}"
        try:
            suite = load_suite(str(load_path))
        except TaskDataError as e:
            raise _relative_error(e, tmp if kind == "zip" else load_path, filename) from None
        info = {"name": name, "kind": kind, "spec_relative": rel_spec, "source": str(filename),
                "tasks": suite.names(), "created": time.time()}
        (tmp / _INFO).write_text(json.dumps(info, indent=1), encoding="utf-8")
        # claim and publish under the lock: checking that ``final`` is free and renaming into it must
        # be one step, else concurrent callers all see it free and all "succeed" (and on Linux
        # rename(dir, empty dir) replaces the empty one silently)
        with _names_locked(uploads):
            if os.path.lexists(final):
                if not overwrite:
                    raise UploadError(_taken(name))
                if not _exchange(tmp, final):  # no RENAME_EXCHANGE here: aside, then in
                    old = uploads / f".old-{uuid.uuid4().hex}"
                    os.rename(final, old)
                    os.rename(tmp, final)
                    tmp = old
                # tmp now holds the old suite: removed below, outside the lock
            else:
                os.rename(tmp, final)
                tmp = None
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return _info_with_spec(final, info)


def _taken(name: str) -> str:
    return (f"name taken: an uploaded suite named {name!r} exists already; delete it or choose "
            "another name")


@contextlib.contextmanager
def _names_locked(uploads: Path) -> Iterator[None]:
    """Hold ``uploads/.lock`` exclusively: one process or thread at a time claims, replaces or deletes
    a name. ``flock`` locks belong to the open file, so threads of one process exclude each other too."""
    fd = os.open(uploads / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_libc: ctypes.CDLL | None = None


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the C
    library, kernel or file system does not offer it (the caller then falls back)."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None, use_errno=True)
        fn = _libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _info_with_spec(folder: Path, info: dict) -> dict:
    rel = info.get("spec_relative", ".")
    spec = folder if rel == "." else folder / rel
    return {k: v for k, v in info.items() if k != "spec_relative"} | {"spec": str(spec), "path": str(folder)}


def list_uploads(root: str | os.PathLike) -> list[dict]:
    """The uploaded suites of a store, by name: each ``{"name", "kind", "spec", "source", "tasks", ...}``."""
    uploads = Path(root).expanduser().resolve() / "uploads"
    out = []
    try:
        folders = sorted(p for p in uploads.iterdir() if p.is_dir() and _NAME_RE.match(p.name))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for folder in folders:
        try:
            info = json.loads((folder / _INFO).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and info.get("name") == folder.name:
            out.append(_info_with_spec(folder, info))
    return out


def delete_upload(root: str | os.PathLike, name: str) -> bool:
    """Remove an uploaded suite (results computed on it stay in the store); True if it existed."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise UploadError(f"not an upload name: {name!r}")
    uploads = Path(root).expanduser().resolve() / "uploads"
    folder = uploads / name
    if not folder.is_dir():
        return False
    trash = uploads / f".del-{uuid.uuid4().hex}"
    with _names_locked(uploads):  # not while another caller swaps a new suite in under this name
        try:
            os.rename(folder, trash)
        except FileNotFoundError:
            return False  # deleted by another caller meanwhile
    shutil.rmtree(trash, ignore_errors=True)
    return True
