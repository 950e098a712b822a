"""Progress and cancellation of a bank: a callback after every step, a cancel flag polled before every step."""
from __future__ import annotations

from typing import Callable

from ipt_core.train.loop.state import BankState, Callback, Cancelled


class Cancellation(Callback):
    """Raises :class:`~ipt_core.train.loop.state.Cancelled` before a step when ``should_cancel()`` is true."""

    def __init__(self, should_cancel: Callable[[], bool]):
        self.should_cancel = should_cancel

    def on_step_begin(self, bank: BankState, step: int) -> None:
        if self.should_cancel():
            raise Cancelled(f"cancelled at step {step} of {bank.total_steps}")


class ProgressReport(Callback):
    """Calls ``progress(step, total, message)`` after every step; the message counts the active runs."""

    def __init__(self, progress: Callable[[int, int, str], None]):
        self.progress = progress

    def on_step_end(self, bank: BankState, step: int) -> None:
        self.progress(step, bank.total_steps, f"{len(bank.live())}/{bank.n_runs} runs active")
