"""Import the heavy libraries other pages need in the background, once per server, after the first page.

The landing page loads none of torch or scikit-learn (its first paint would take seconds longer:
bench/SPEED.md), but the task map reads prompt tensors (torch) and projects them (scikit-learn's PCA,
scipy's clustering), and other pages' estimates and tables touch torch too. Importing them in a
daemon thread once the first page has been sent means the visitor's next page finds them loaded.
``IPT_WARMUP=0`` turns it off (a test that checks what the first page imports sets it).
"""
from __future__ import annotations

import importlib
import os
import threading

MODULES = ("torch", "safetensors.torch", "sklearn.decomposition", "scipy.cluster.hierarchy")
DELAY_S = 2.0
_started = threading.Event()


def _run() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a missing optional library is the page's to report, not this thread's
            pass


def start(delay: float = DELAY_S) -> threading.Thread | None:
    """Start the warm-up thread, after ``delay`` seconds, unless it ran already in this process (or
    ``IPT_WARMUP=0``). The delay lets the first page finish: started at once, the imports held the GIL
    while the server sent that page, and its first paint took 2.85 s instead of 2.23 s (bench/SPEED.md)."""
    if os.environ.get("IPT_WARMUP", "1") == "0" or _started.is_set():
        return None
    _started.set()
    t = threading.Timer(delay, _run)
    t.name, t.daemon = "ipt-warmup", True
    t.start()
    return t
