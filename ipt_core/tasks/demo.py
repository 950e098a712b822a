"""The built-in ``demo`` suite: its data ships in ``ipt_core/suites/demo`` (task folders)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["demo_suite_path"]


def demo_suite_path() -> Path:
    """The folder of the built-in ``demo`` suite (``ipt_core/suites/demo``).

    Example:
        >>> demo_suite_path().name
        'demo'
    """
    return Path(str(resources.files("ipt_core") / "suites" / "demo"))
