"""What the store set aside: a record of every quarantined entry, readable without torch.

When the store finds an entry corrupt it moves the entry's directory to
``<store>/corrupt/<key>-<timestamp>/`` (see :mod:`ipt_core.store`) and writes, inside it,
``quarantine.json``: the key, the kind and a short description of the result (from the last valid
read of it, or from what of its ``entry.json`` still parses), the reason and the time. The app lists
the records it has not shown yet (:func:`list_quarantines`) and marks them seen once a user dismissed
the notice (:func:`mark_seen`); the CLI's ``verify`` counts them. One directory per quarantine keeps
``corrupt/`` one item per event, whatever was moved (a directory, or a file lying where an entry
directory should be).

Example:
    >>> for q in list_quarantines("/tmp/ipt-cache", unseen_only=True):   # doctest: +SKIP
    ...     print(q["what"], q["reason"])
    pt_run sms_spam seed 0 checksum mismatch (file edited or damaged)
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from ipt_core.store.atomic import write_json

__all__ = ["RECORD", "MAX_RECORD_BYTES", "describe", "write_record", "list_quarantines", "mark_seen",
           "summary_of_damaged"]

RECORD = "quarantine.json"
MAX_RECORD_BYTES = 64 * 1024  # a record is a few hundred bytes; anything bigger is not ours
_SUMMARY_READ_BYTES = 1 << 20  # how much of a damaged entry.json is read to name what it held


def describe(kind: Any, spec: Any) -> str:
    """A short human name of a result: its kind and the spec's task(s), seed and dimension when present.

    Example:
        >>> describe("pt_run", {"task": "sms_spam", "seed": 0, "lr": 0.03})
        'pt_run sms_spam seed 0'
    """
    parts = [kind if isinstance(kind, str) and kind else "result"]
    if isinstance(spec, dict):
        task = spec.get("task")
        if isinstance(task, str):
            parts.append(task[:60])
        elif isinstance(spec.get("tasks"), list):
            names = [t for t in spec["tasks"] if isinstance(t, str)]
            if names:
                parts.append(", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else ""))
        for fields, label in ((("seed",), "seed"), (("d", "d_intrinsic"), "d")):
            v = next((spec[f] for f in fields if isinstance(spec.get(f), int) and not isinstance(spec[f], bool)), None)
            if v is not None:
                parts.append(f"{label} {v}")
    return " ".join(parts)


def summary_of_damaged(path: Path) -> tuple[str | None, dict | None]:
    """(kind, spec) of a damaged entry directory, from what of its entry.json still parses; Nones if nothing does.

    Best effort and bounded: at most 1 MiB is read, and any failure (bad JSON, deep nesting, wrong types)
    gives Nones, since the entry is corrupt by definition.
    """
    try:
        with open(path / "entry.json", "rb") as f:
            rec = json.loads(f.read(_SUMMARY_READ_BYTES))
    except Exception:  # noqa: BLE001 - anything: the file is known to be damaged
        return None, None
    if not isinstance(rec, dict):
        return None, None
    kind = rec.get("kind") if isinstance(rec.get("kind"), str) else None
    spec = rec.get("spec") if isinstance(rec.get("spec"), dict) else None
    return kind, spec


def write_record(dest: Path, key: str, kind: str | None, spec: dict | None, reason: str) -> None:
    """Write ``dest/quarantine.json`` (``dest``: the directory the corrupt entry was moved to)."""
    doc = {"key": key, "kind": kind, "what": describe(kind, spec) if kind or spec else f"entry {key[:12]}",
           "reason": reason[:500], "time": time.time(), "seen": False}
    write_json(dest / RECORD, doc)


def _read_record(path: Path) -> dict | None:
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            return None
        doc = json.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 - a damaged record is skipped, never fatal
        return None
    if not (isinstance(doc, dict) and isinstance(doc.get("key"), str) and isinstance(doc.get("reason"), str)
            and isinstance(doc.get("what"), str) and isinstance(doc.get("time"), (int, float))
            and not isinstance(doc.get("time"), bool)):
        return None
    return doc


def list_quarantines(root: str | Path, *, unseen_only: bool = False, limit: int = 200) -> list[dict]:
    """The quarantine records of the store at ``root``, newest first (at most ``limit``).

    Each is ``{"key", "kind", "what", "reason", "time", "seen", "path"}`` (``path``: the quarantined
    directory). Quarantines from before records were written, and unreadable records, are left out.
    """
    corrupt = Path(root).expanduser() / "corrupt"
    try:
        items = list(os.scandir(corrupt))
    except OSError:
        return []
    out = []
    for it in items:
        if not it.is_dir(follow_symlinks=False):
            continue
        doc = _read_record(Path(it.path) / RECORD)
        if doc is None or (unseen_only and doc.get("seen") is True):
            continue
        out.append(doc | {"path": it.path, "seen": doc.get("seen") is True})
    out.sort(key=lambda d: d["time"], reverse=True)
    return out[:limit]


def mark_seen(root: str | Path, paths: list[str] | None = None) -> int:
    """Mark quarantine records seen (all unseen ones, or those of the directories ``paths``); returns how many.

    A record that cannot be rewritten (read-only store) is skipped.
    """
    n = 0
    for q in list_quarantines(root, unseen_only=True, limit=10_000):
        if paths is not None and q["path"] not in paths:
            continue
        doc = {k: v for k, v in q.items() if k != "path"} | {"seen": True}
        try:
            write_json(Path(q["path"]) / RECORD, doc)
        except OSError:
            continue
        n += 1
    return n
