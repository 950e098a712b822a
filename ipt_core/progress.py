"""Progress and cancellation for long work, shared by the CLI and the app's job runner.

A job runner starts the CLI with ``IPT_PROGRESS_FILE`` set: progress is then also written there
as JSON (atomically, at most a few times a second) for the page to poll. SIGTERM or SIGINT asks
the running loop to stop at the next step; nothing half-done reaches the store because results
are written only once a bank has finished.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from .atomic import write_text


class Reporter:
    """``reporter(step, total, message)``: a tqdm bar on stderr plus the optional JSON file."""

    def __init__(self, stage: str = "", *, path: str | os.PathLike | None = None, bar: bool = True, min_interval: float = 0.5):
        self.path = Path(path) if path else (Path(os.environ["IPT_PROGRESS_FILE"]) if os.environ.get("IPT_PROGRESS_FILE") else None)
        self.stage = stage
        self.min_interval = min_interval
        self._last = 0.0
        self._bar = None
        self._want_bar = bar and sys.stderr.isatty() or bar == "always"
        if os.environ.get("RANK", "0") != "0":  # under torchrun, progress comes from rank 0 alone
            self.path, self._want_bar = None, False

    def set_stage(self, stage: str) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self.stage = stage
        self._write({"stage": stage, "step": 0, "total": 0, "message": ""})

    def __call__(self, step: int, total: int, message: str = "") -> None:
        if self._want_bar:
            if self._bar is None:
                from tqdm import tqdm

                self._bar = tqdm(total=total, desc=self.stage or "training", file=sys.stderr)
            self._bar.n = step
            self._bar.set_postfix_str(message, refresh=False)
            self._bar.refresh()
        now = time.time()
        if now - self._last >= self.min_interval or step >= total:
            self._last = now
            self._write({"stage": self.stage, "step": step, "total": total, "message": message})

    def _write(self, payload: dict) -> None:
        if self.path is None:
            return
        payload = dict(payload, time=time.time())
        write_text(self.path, json.dumps(payload))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class CancelFlag:
    """Set by SIGTERM/SIGINT; polled by the training loop through ``__call__``."""

    def __init__(self, install: bool = True):
        self.requested = False
        if install:
            for sig in (signal.SIGTERM, signal.SIGINT):
                try:
                    signal.signal(sig, self._handle)
                except ValueError:  # not the main thread (e.g. inside a test runner thread)
                    pass

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __call__(self) -> bool:
        return self.requested
