"""Canonical JSON and store keys: what the store hashes, and the strict JSON it accepts and reads.

A store key is the sha256 of the canonical JSON of a spec (sorted keys, no spaces, UTF-8, no NaN);
values must be strict JSON, and a value that is not names its field path in the error.

Example:
    >>> spec_key({"b": 1, "a": [1, 2]}) == spec_key({"a": (1, 2), "b": 1})
    True
    >>> canonical({"b": 1, "a": 2})
    b'{"a":2,"b":1}'
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

__all__ = ["spec_key", "canonical", "check_json", "field_path", "sha256_bytes", "strict_loads", "copy_json"]


def field_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if key.isidentifier():
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]"


def check_json(value: Any, path: str, nonfinite: type[Exception]) -> None:
    """Raise TypeError (or ``nonfinite`` for NaN/inf) naming ``path`` if ``value`` is not strict JSON.

    Allowed: None, bool, int, finite float, str, list/tuple of those, dict with str keys of those.
    """
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise nonfinite(f"{path}: non-finite float {value!r} is not allowed (the store keeps strict JSON)")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise TypeError(f"{path}: string is not valid UTF-8 ({e.reason})") from None
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_json(item, field_path(path, i), nonfinite)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise TypeError(
                    f"{path}: dict key {k!r} ({type(k).__name__}) is not a str; JSON keys must be strings"
                )
            check_json(item, field_path(path, k), nonfinite)
        return
    t = type(value)
    hint = ""
    if t.__module__ == "torch" or t.__module__.startswith("torch."):
        hint = "; put a hash of it in the spec and the tensor itself in put(tensors=...)"
    elif t.__module__ == "numpy":
        hint = "; convert it with int(), float() or .tolist()"
    elif isinstance(value, (set, frozenset)):
        hint = "; use a sorted list"
    raise TypeError(f"{path}: {t.__module__}.{t.__qualname__} is not JSON (allowed: None, bool, int, "
                    f"finite float, str, list, dict with str keys){hint}")


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def spec_key(spec: dict) -> str:
    """Return the store key of ``spec``: sha256 hex of its canonical JSON.

    Canonical JSON is ``json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)`` in UTF-8, so dict order does not matter (tuples hash like lists).

    Raises:
        TypeError: ``spec`` is not a dict, or holds a value that is not strict JSON (a tensor, a set,
            NaN, a non-str dict key, ...); the message names the field path, e.g. ``spec.optim.lr``.

    Example:
        >>> spec_key({"b": 1, "a": [1, 2]}) == spec_key({"a": (1, 2), "b": 1})
        True
        >>> spec_key({"a": {"lr": float("nan")}})
        Traceback (most recent call last):
        ...
        TypeError: spec.a.lr: non-finite float nan is not allowed (the store keeps strict JSON)
    """
    if not isinstance(spec, dict):
        raise TypeError(f"spec must be a dict, got {type(spec).__name__}")
    check_json(spec, "spec", TypeError)
    return hashlib.sha256(canonical(spec)).hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def strict_loads(data: bytes) -> Any:
    """json.loads that refuses NaN/Infinity constants (the store keeps strict JSON)."""
    def reject(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(data, parse_constant=reject)


def copy_json(v: Any) -> Any:
    """Fast deep copy of a parsed JSON tree (so callers cannot mutate the store's cache)."""
    t = type(v)
    if t is dict:
        return {k: copy_json(x) for k, x in v.items()}
    if t is list:
        return [copy_json(x) for x in v]
    return v
