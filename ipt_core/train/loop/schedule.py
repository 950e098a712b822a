"""The learning-rate schedule of every run of a bank: a callback that sets each live run's rate before a step.

``cosine``: from the run's ``lr`` at its first step down towards 0 (``lr * (1 + cos(pi (steps - 1) / steps)) / 2``
at its last; per run and per parameter group, which torch's schedulers, one per optimiser, do not do); ``constant``: ``lr``
throughout (the callback leaves the rate alone). The rate is a function of the step alone, so a bank
resumed from a checkpoint continues on the same schedule. A stopped run keeps the 0 that
``BankState.stop`` gave it.
"""
from __future__ import annotations

import math

from ipt_core.train.loop.state import BankState, Callback


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """The multiple of ``lr`` used at ``step`` (1-based) of a ``steps``-step run."""
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step - 1, steps) / max(steps, 1)))
    raise ValueError(f"unknown lr_schedule {schedule!r}")


class LRSchedule(Callback):
    """Sets each live run's parameter-group learning rate from its ``lr_schedule`` before every step."""

    def on_step_begin(self, bank: BankState, step: int) -> None:
        for r in bank.live():
            cfg, group = bank.runs[r], bank.run_groups[r]
            if group is not None and cfg.lr_schedule != "constant":
                group["lr"] = cfg.lr * lr_factor(cfg.lr_schedule, step, cfg.steps)
