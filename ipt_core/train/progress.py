"""Progress and cancellation for long work, shared by the CLI and the app's job runner.

A :class:`Reporter` hands every stage change and step to its sinks:

* a tqdm bar on stderr, one bar per stage, drawn only when stderr is a terminal (and the CLI was
  not given ``--json``: :func:`bars` turns bars off for the whole process);
* the JSON file ``IPT_PROGRESS_FILE``: a job runner starts the CLI with it set, and progress is
  then written there (atomically, at most a few times a second) for the page to poll;
* with that file, also one plain line on stderr per stage started and per bank finished (the job's
  ``log.txt``, whose tail the job panel shows), so the log says what ran when, not only how far.

SIGTERM or SIGINT asks the running loop to stop at the next step; nothing half-done reaches the
store because results are written only once a bank has finished.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from ipt_core.store.atomic import write_text

_BARS = {"enabled": True}  # the CLI turns bars off with --json (bars(False)); the file sink is unaffected


def bars(enabled: bool) -> bool:
    """Allow (True) or forbid (False) stderr bars for Reporters made from now on; returns the previous setting."""
    previous, _BARS["enabled"] = _BARS["enabled"], bool(enabled)
    return previous


class _FileSink:
    """``IPT_PROGRESS_FILE``: ``{"stage", "step", "total", "message", "time"}``, at most every ``min_interval`` s."""

    def __init__(self, path: Path, min_interval: float):
        self.path, self.min_interval, self._last = path, min_interval, 0.0

    def stage(self, stage: str) -> None:
        self._write({"stage": stage, "step": 0, "total": 0, "message": ""})

    def step(self, stage: str, step: int, total: int, message: str) -> None:
        now = time.time()
        if now - self._last >= self.min_interval or step >= total:
            self._last = now
            self._write({"stage": stage, "step": step, "total": total, "message": message})

    def _write(self, payload: dict) -> None:
        write_text(self.path, json.dumps(dict(payload, time=time.time())))

    def close(self) -> None:
        pass


class _LogSink:
    """Plain lines for a job's log: ``[12:03:04] stage: intrinsic subspace tuning (12 runs)`` when a stage
    starts, ``[12:05:10] ... 200/200 steps in 126 s`` when a bank's last step is reached."""

    def __init__(self, stream):
        self.stream, self._started, self._done = stream, time.time(), None

    def _line(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", file=self.stream, flush=True)

    def stage(self, stage: str) -> None:
        self._started, self._done = time.time(), None
        self._line(f"stage: {stage}")

    def step(self, stage: str, step: int, total: int, message: str) -> None:
        if total and step >= total and self._done != (stage, total):
            self._done = (stage, total)
            self._line(f"{stage}: {step}/{total} steps in {time.time() - self._started:.0f} s")

    def close(self) -> None:
        pass


class _BarSink:
    """A tqdm bar on stderr per stage; a new bar also when a stage starts another bank (new total, step back)."""

    def __init__(self):
        self._bar = None

    def stage(self, stage: str) -> None:
        self.close()

    def step(self, stage: str, step: int, total: int, message: str) -> None:
        if self._bar is not None and (self._bar.total != total or step < self._bar.n):
            self.close()
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=step, desc=stage or "training", file=sys.stderr, dynamic_ncols=True)
        self._bar.n = step
        self._bar.set_postfix_str(message, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class Reporter:
    """``reporter(step, total, message)`` and ``reporter.set_stage(name)``, passed on to each sink:
    a tqdm bar on stderr (a terminal only) plus the optional JSON file.

    ``bar``: True draws bars when stderr is a terminal and :func:`bars` allows them, ``"always"``
    draws them anyway, False never.
    """

    def __init__(self, stage: str = "", *, path: str | os.PathLike | None = None, bar: bool | str = True, min_interval: float = 0.5):
        self.path = Path(path) if path else (Path(os.environ["IPT_PROGRESS_FILE"]) if os.environ.get("IPT_PROGRESS_FILE") else None)
        self.stage = stage
        self.min_interval = min_interval
        self._want_bar = bar == "always" or bool(bar and _BARS["enabled"] and _isatty(sys.stderr))
        if os.environ.get("RANK", "0") != "0":  # under torchrun, progress comes from rank 0 alone
            self.path, self._want_bar = None, False
        self.sinks: list = ([_FileSink(self.path, min_interval), _LogSink(sys.stderr)] if self.path is not None else []) + \
                           ([_BarSink()] if self._want_bar else [])

    def set_stage(self, stage: str) -> None:
        self.stage = stage
        for sink in self.sinks:
            sink.stage(stage)

    def __call__(self, step: int, total: int, message: str = "") -> None:
        for sink in self.sinks:
            sink.step(self.stage, step, total, message)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _isatty(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def status(line: str) -> None:
    """One status line on stderr, only on a terminal and when bars are allowed (not with --json)."""
    if _BARS["enabled"] and _isatty(sys.stderr):
        print(line, file=sys.stderr, flush=True)


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
