"""What a bank's callbacks see and change: :class:`BankState`, and the :class:`Callback` base class."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch


class Cancelled(RuntimeError):
    """Raised inside the loop when the caller's cancel callback says stop."""


@dataclass
class BankState:
    """The loop's state: per-run status, best dev checkpoint and curves, plus the objects that train.

    ``best[r]`` is ``{"acc", "loss", "step", "state", ["dev": per-task scores]}``: the run's best dev
    evaluation so far and a copy of its state then. ``step`` is the last finished step (0 before
    the first one; a resumed bank starts after the checkpoint's step).
    """

    runs: Sequence[Any]  # RunConfig, one per run
    method: Any  # a BankMethod
    optimizer: torch.optim.Optimizer | None
    run_groups: list[dict | None]  # each run's Adam parameter group (None: the run has no parameters)
    samplers: list
    device: torch.device
    total_steps: int
    step: int = 0
    started: float = field(default_factory=time.time)
    # this process's CPU time at the start (all its threads): the cost model's rate under load.
    # None once resumed from a checkpoint, whose CPU time before the crash is unknown
    cpu_started: float | None = field(default_factory=time.process_time)
    active: list[bool] = field(default_factory=list)
    status: list[str] = field(default_factory=list)
    best: list[dict] = field(default_factory=list)
    since_best: list[int] = field(default_factory=list)
    dev_curves: list[list[tuple[int, float]]] = field(default_factory=list)
    loss_curves: list[list[tuple[int, float | None]]] = field(default_factory=list)
    stepped: list[int] = field(default_factory=list)  # the runs the last step trained
    diverged: list[int] = field(default_factory=list)  # those of them whose loss was not finite

    def __post_init__(self):
        R = len(self.runs)
        self.active = self.active or [True] * R
        self.status = self.status or ["done"] * R
        self.best = self.best or [{"acc": -1.0, "loss": math.inf, "step": 0, "state": self.method.run_state(r)}
                                  for r in range(R)]
        self.since_best = self.since_best or [0] * R
        self.dev_curves = self.dev_curves or [[] for _ in range(R)]
        self.loss_curves = self.loss_curves or [[] for _ in range(R)]

    @property
    def n_runs(self) -> int:
        return len(self.runs)

    def live(self) -> list[int]:
        return [r for r in range(self.n_runs) if self.active[r]]

    def stop(self, r: int, why: str) -> None:
        """Run ``r`` stops training (``why`` becomes its status); its learning rate is 0 from now on,
        so that Adam's momentum does not move it at the next step."""
        self.active[r] = False
        self.status[r] = why
        if self.run_groups[r] is not None:
            self.run_groups[r]["lr"] = 0.0


class Callback:
    """A hook of the bank loop; override the events you need (each default does nothing).

    Example::

        class PrintLoss(Callback):
            def on_step_end(self, bank, step):
                print(step, [c[-1][1] for c in bank.loss_curves if c and c[-1][0] == step])
    """

    def on_init(self, bank: BankState) -> None:
        """The bank is built, nothing has run: restore saved state here."""

    def on_train_begin(self, bank: BankState) -> None:
        """Training starts after step ``bank.step`` (0 unless resumed)."""

    def on_step_begin(self, bank: BankState, step: int) -> None:
        """Step ``step`` is about to run."""

    def on_step_end(self, bank: BankState, step: int) -> None:
        """Step ``step`` is done: ``bank.loss_curves`` hold its losses and finished runs are stopped."""

    def on_train_end(self, bank: BankState) -> None:
        """No step is left (or no run is active)."""


class CallbackList(Callback):
    """Calls each callback in order for every event."""

    def __init__(self, callbacks: Sequence[Callback]):
        self.callbacks = list(callbacks)

    def on_init(self, bank):
        for c in self.callbacks:
            c.on_init(bank)

    def on_train_begin(self, bank):
        for c in self.callbacks:
            c.on_train_begin(bank)

    def on_step_begin(self, bank, step):
        for c in self.callbacks:
            c.on_step_begin(bank, step)

    def on_step_end(self, bank, step):
        for c in self.callbacks:
            c.on_step_end(bank, step)

    def on_train_end(self, bank):
        for c in self.callbacks:
            c.on_train_end(bank)
