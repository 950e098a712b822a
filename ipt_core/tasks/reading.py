"""Reading files for the loaders: UTF-8 text and JSON with errors that name the file and line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ipt_core.tasks.errors import TaskDataError

__all__ = ["read_text", "json_loads", "key_line", "is_listed", "list_dir"]


def read_text(path: Path) -> str:
    """UTF-8 text of ``path`` (a leading BOM dropped); TaskDataError naming the bad line."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise TaskDataError(path, None, None, "file not found") from None
    except IsADirectoryError:
        raise TaskDataError(path, None, None, "expected a file, found a folder") from None
    except OSError as e:
        raise TaskDataError(path, None, None, f"cannot read file: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise TaskDataError(path, line, None,
                            f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at column {col})") from None
    return text[1:] if text.startswith("\ufeff") else text


def json_loads(text: str, path: Path, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        at = line if line is not None else e.lineno
        col = e.colno
        raise TaskDataError(path, at, None, f"malformed JSON: {e.msg} (column {col})") from None
    except (ValueError, RecursionError) as e:  # e.g. huge integers, absurd nesting
        raise TaskDataError(path, line, None, f"malformed JSON: {e}") from None


def key_line(text: str, key: str) -> int | None:
    """1-based line of the first ``"key":`` in a JSON text (a best effort for messages)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return None if m is None else text.count("\n", 0, m.start()) + 1


def is_listed(p: Path) -> bool:
    """Folder entries that loaders look at: not hidden, not ``_private``/``__pycache__``."""
    return not p.name.startswith((".", "_"))


def list_dir(path: Path) -> list[Path]:
    try:
        return sorted((p for p in path.iterdir() if is_listed(p)), key=lambda p: p.name)
    except OSError as e:
        raise TaskDataError(path, None, None, f"cannot list folder: {e.strerror or e}") from None
