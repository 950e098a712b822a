"""Checks shared by every loader and by the data model: texts, task names, label lists.

Each ``bad_*`` function returns why a value is not usable (a message fragment), or None when it is.

Example:
    >>> bad_labels(["yes", "yes"])
    "has duplicate label names ['yes']"
    >>> bad_text("fine") is None
    True
"""

from __future__ import annotations

__all__ = ["INPUT_FORMS", "type_name", "bad_text", "bad_task_name", "bad_labels"]


INPUT_FORMS: tuple[tuple[str, ...], ...] = (("text",), ("text", "text_pair"))
"""The two allowed ``input_fields``: one text, or a text pair."""


def type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def bad_text(value: object) -> str | None:
    """Why ``value`` is not a usable text (None when it is)."""
    if not isinstance(value, str):
        return f"must be a string, got {type_name(value)} {value!r:.60}"
    if not value.strip():
        return "is empty"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not encodable as UTF-8)"
    return None


def bad_task_name(name: object) -> str | None:
    if not isinstance(name, str):
        return f"must be a string, got {type_name(name)}"
    if not name.strip():
        return "is empty"
    if name != name.strip():
        return f"{name!r} has leading or trailing whitespace"
    if any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
        return f"{name!r} contains a path separator or control character"
    return None


def bad_labels(labels: object) -> str | None:
    if not isinstance(labels, (list, tuple)):
        return f"must be a list of label names, got {type_name(labels)}"
    for lab in labels:
        if not isinstance(lab, str):
            return f"must be a list of strings, got {type_name(lab)} {lab!r:.60}"
        if not lab.strip():
            return "contains an empty label name"
        try:
            lab.encode("utf-8")
        except UnicodeEncodeError:
            return f"label {lab!r} contains an unpaired surrogate"
    if len(set(labels)) != len(labels):
        dups = sorted({lab for lab in labels if labels.count(lab) > 1})
        return f"has duplicate label names {dups}"
    if len(labels) < 2:
        return f"needs at least 2 labels, got {list(labels)}"
    return None
