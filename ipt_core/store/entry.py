"""One store entry on disk: its files, its record (entry.json), its verification and its read-only view.

An entry directory holds ``entry.json`` (key, kind, spec, meta, command, created, files, tensors and a
checksum of all that) and, when it has tensors, ``tensors.safetensors``. :func:`read_entry_dir`
verifies the JSON checksum, that the spec hashes to the key, and the sha256 of every file;
:class:`Entry` is what callers get back (see :mod:`ipt_core.store` for the store itself).

Example:
    >>> e = store.get(spec)                     # doctest: +SKIP
    >>> e.kind, e.tensor("prompt").shape         # doctest: +SKIP
    ('pt_run', torch.Size([4, 8]))
"""

from __future__ import annotations

import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipt_core.store.keys import canonical, copy_json, sha256_bytes, strict_loads

if TYPE_CHECKING:  # torch is imported lazily: listing the store does not need it
    import torch

__all__ = ["ENTRY_JSON", "TENSOR_FILE", "FORMAT_VERSION", "MAX_ENTRY_JSON_BYTES", "KEY_RE", "RECORD_FIELDS", "StoreError",
           "CorruptEntryError", "EntryCorrupt", "EntryGone", "Entry", "validate_record", "read_entry_dir",
           "entry_from_record", "rmtree", "stat_sig"]

ENTRY_JSON = "entry.json"
TENSOR_FILE = "tensors.safetensors"
FORMAT_VERSION = 1
MAX_ENTRY_JSON_BYTES = 256 * 1024 * 1024
"""An entry.json larger than this is corrupt (the largest results' meta is a few MB): parsing it could
exhaust memory, and a MemoryError says nothing about the file, so the limit decides instead."""
KEY_RE = re.compile(r"^[0-9a-f]{64}$")
RECORD_FIELDS = frozenset(
    {"format", "key", "kind", "spec", "meta", "command", "created", "code_version", "files", "tensors",
     "checksum"}
)


class StoreError(RuntimeError):
    """A store operation failed (disk full, permission denied, ...); the message names store and key."""


class EntryMissing(StoreError):
    """A read-only store (a replay, ``IPT_REPLAY=1``) was asked to compute or write an entry it lacks."""


class CorruptEntryError(StoreError):
    """An entry's files do not match its recorded checksums (truncated, edited, missing)."""


class EntryCorrupt(Exception):
    """Raised by :func:`read_entry_dir`: the directory exists but is not a valid entry (the argument says why)."""


class EntryGone(Exception):
    """Raised by :func:`read_entry_dir`: the directory vanished while being read (deleted or quarantined elsewhere)."""

def rmtree(path: Path) -> None:
    """Remove a folder (or a file left in its place), ignoring errors."""
    shutil.rmtree(path, ignore_errors=True)
    if path.exists() and not path.is_dir():
        try:
            path.unlink()
        except OSError:
            pass


def stat_sig(path: Path) -> tuple[int, int, int]:
    """(mtime_ns, size, inode) of a file: unchanged while the file is."""
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


# --------------------------------------------------------------------------------------------------
# entries


@dataclass(frozen=True)
class Entry:
    """One stored result (read-only view). ``spec`` and ``meta`` are plain JSON values (copies).

    Example:
        >>> e = store.get(spec)              # doctest: +SKIP
        >>> e.kind, e.meta["acc"], e.tensor_names   # doctest: +SKIP
        ('pt_run', 0.81, ('prompt',))
        >>> e.tensor("prompt").shape  # verifies the file's sha256 first  # doctest: +SKIP
        torch.Size([4, 8])
    """

    key: str
    kind: str
    spec: dict
    meta: dict
    command: str | None
    created: float
    path: Path
    tensor_names: tuple[str, ...]
    files: dict[str, str] = field(default_factory=dict, repr=False, compare=False)  # file name -> sha256

    def __hash__(self) -> int:
        return hash(self.key)

    def tensors(self) -> dict[str, "torch.Tensor"]:
        """Load all tensors (CPU) after checking the file's sha256.

        Returns ``{}`` for an entry stored without tensors.

        Raises:
            CorruptEntryError: the tensor file is missing or its sha256 no longer matches.
        """
        if not self.tensor_names:
            return {}
        import safetensors.torch

        path = self.path / TENSOR_FILE
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CorruptEntryError(
                f"entry {self.key} at {self.path}: {TENSOR_FILE} is missing (deleted or quarantined "
                f"since it was read); get() it again"
            ) from None
        except OSError as e:
            raise StoreError(f"entry {self.key} at {self.path}: cannot read {TENSOR_FILE}: {e}") from e
        want = self.files.get(TENSOR_FILE)
        got = sha256_bytes(data)
        if got != want:
            raise CorruptEntryError(
                f"entry {self.key} at {self.path}: {TENSOR_FILE} sha256 {got[:12]}... != recorded "
                f"{str(want)[:12]}...; get() it again (the store quarantines it) and recompute"
            )
        return safetensors.torch.load(data)

    def tensor(self, name: str) -> "torch.Tensor":
        """Load one tensor by name (verifies the file's sha256 first).

        Raises:
            KeyError: no tensor of that name (the message lists the names there are).
            CorruptEntryError: as in :meth:`tensors`.
        """
        if name not in self.tensor_names:
            raise KeyError(f"entry {self.key} ({self.kind}) has no tensor {name!r}; it has "
                           f"{list(self.tensor_names)}")
        return self.tensors()[name]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_record(rec: Any, key: str) -> dict:
    """Check the parsed entry.json of the entry ``key``; raise EntryCorrupt with the reason.

    Every field the store (and :func:`entry_from_record`) reads is type-checked at every depth it is
    read, so a record that passes cannot raise later: a hand-edited record whose checksum was made to
    match is refused as surely as a damaged one. ``spec`` and ``meta`` are free-form JSON objects.
    """
    if not isinstance(rec, dict):
        raise EntryCorrupt(f"{ENTRY_JSON} is not a JSON object")
    missing = RECORD_FIELDS - rec.keys()
    if missing:
        raise EntryCorrupt(f"{ENTRY_JSON} lacks fields {sorted(missing)}")
    if not isinstance(rec["checksum"], str):
        raise EntryCorrupt("checksum has the wrong type")
    body = {k: v for k, v in rec.items() if k != "checksum"}
    if sha256_bytes(canonical(body)) != rec["checksum"]:
        raise EntryCorrupt(f"{ENTRY_JSON} checksum mismatch (file edited or damaged)")
    if rec["key"] != key:
        raise EntryCorrupt(f"{ENTRY_JSON} says key {str(rec['key'])[:12]}... but lies in directory {key}")
    if not isinstance(rec["spec"], dict) or not isinstance(rec["meta"], dict):
        raise EntryCorrupt("spec or meta is not a JSON object")
    if sha256_bytes(canonical(rec["spec"])) != key:
        raise EntryCorrupt("the spec does not hash to the entry's key")
    if not isinstance(rec["kind"], str) or not rec["kind"] or not _is_number(rec["created"]):
        raise EntryCorrupt("kind or created has the wrong type")
    if rec["command"] is not None and not isinstance(rec["command"], str):
        raise EntryCorrupt("command has the wrong type")
    files, tensors = rec["files"], rec["tensors"]
    if not isinstance(files, dict) or not isinstance(tensors, list):
        raise EntryCorrupt("files or tensors has the wrong type")
    if any(not isinstance(v, str) for v in files.values()):
        raise EntryCorrupt("files has a checksum that is not a string")
    for t in tensors:
        if (not isinstance(t, dict) or not isinstance(t.get("name"), str) or not isinstance(t.get("dtype"), str)
                or not isinstance(t.get("shape"), list)
                or any(not isinstance(n, int) or isinstance(n, bool) or n < 0 for n in t["shape"])):
            raise EntryCorrupt("tensors list is malformed")
    if len({t["name"] for t in tensors}) != len(tensors):
        raise EntryCorrupt("tensors list names a tensor twice")
    if bool(tensors) != (TENSOR_FILE in files) or set(files) - {TENSOR_FILE}:
        raise EntryCorrupt("files and tensors disagree")
    return rec


def _read_signed(entry_dir: Path, name: str, sigs: dict[str, tuple[int, int, int]], missing: str) -> bytes:
    """The bytes of ``entry_dir/name``, its stat signature (taken before reading) recorded in ``sigs``."""
    fpath = entry_dir / name
    try:
        sigs[name] = stat_sig(fpath)
        return fpath.read_bytes()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        if not os.path.lexists(entry_dir):
            raise EntryGone() from None
        raise EntryCorrupt(f"{name} {missing}") from None


def read_entry_dir(path: Path, key: str) -> tuple[dict, dict[str, tuple[int, int, int]]]:
    """Read and fully verify an entry directory: JSON checksum and the sha256 of every file.

    Returns the record and the stat signatures of its files (taken *before* reading them).
    Raises EntryGone when the directory does not exist, EntryCorrupt when it is not a valid entry, and other
    OSErrors (permission, I/O) unchanged.
    """
    sigs: dict[str, tuple[int, int, int]] = {}
    try:
        size = os.stat(path / ENTRY_JSON).st_size
    except OSError:
        size = 0  # _read_signed says why
    if size > MAX_ENTRY_JSON_BYTES:
        raise EntryCorrupt(f"{ENTRY_JSON} is {size} bytes, more than any entry writes ({MAX_ENTRY_JSON_BYTES})")
    raw = _read_signed(path, ENTRY_JSON, sigs, "is missing or not a file")
    try:
        rec = strict_loads(raw)
    except (ValueError, UnicodeError) as e:
        raise EntryCorrupt(f"{ENTRY_JSON} is not valid JSON ({e})") from None
    except RecursionError:  # '[' * 100000: not ours, and it must not take the whole store down
        raise EntryCorrupt(f"{ENTRY_JSON} is nested too deeply to parse") from None
    try:
        rec = validate_record(rec, key)
    except EntryCorrupt:
        raise
    except RecursionError:
        raise EntryCorrupt(f"{ENTRY_JSON} is nested too deeply to check") from None
    except Exception as e:  # noqa: BLE001 - a record validate_record did not foresee is corrupt, never fatal
        raise EntryCorrupt(f"{ENTRY_JSON} is malformed ({type(e).__name__}: {str(e)[:200]})") from None
    for name, want in rec["files"].items():
        data = _read_signed(path, name, sigs, "is missing")
        if sha256_bytes(data) != want:
            raise EntryCorrupt(f"{name} sha256 mismatch (truncated or damaged; {len(data)} bytes)")
    return rec, sigs


def entry_from_record(rec: dict, path: Path) -> Entry:
    return Entry(
        key=rec["key"],
        kind=rec["kind"],
        spec=copy_json(rec["spec"]),
        meta=copy_json(rec["meta"]),
        command=rec["command"],
        created=float(rec["created"]),
        path=path,
        tensor_names=tuple(t["name"] for t in rec["tensors"]),
        files=dict(rec["files"]),
    )
