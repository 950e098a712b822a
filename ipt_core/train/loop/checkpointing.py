"""Checkpointing of a bank: resume a saved one at the start, save every ``every`` steps.

The files and their guarantees are :mod:`ipt_core.train.checkpoint`'s; this hook only decides when, and
moves the loop's state in and out of a :class:`~ipt_core.train.checkpoint.LoopState`.
"""
from __future__ import annotations

import time
from pathlib import Path

from ipt_core.train import checkpoint
from ipt_core.train.loop.state import BankState, Callback


class Checkpointing(Callback):
    """Resume the newest valid checkpoint of this very bank in ``directory``; save one every ``every`` steps.

    ``fingerprint`` (:func:`ipt_core.train.checkpoint.fingerprint` of the bank before training) tells this
    bank's checkpoints from any other's. No checkpoint is written after the last step: the caller
    stores the results and discards the directory.
    """

    def __init__(self, directory: str | Path, every: int, fingerprint: str):
        if every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {every}")
        self.directory = Path(directory)
        self.every = every
        self.fingerprint = fingerprint

    def on_init(self, bank: BankState) -> None:
        resumed = checkpoint.load(self.directory, self.fingerprint, method=bank.method, optimizer=bank.optimizer,
                                  samplers=bank.samplers, device=bank.device)
        if resumed is None:
            return
        bank.step = resumed.step
        # in place: the lists are shared with whoever holds the bank
        bank.active[:], bank.status[:], bank.best[:] = resumed.active, resumed.status, resumed.best
        bank.since_best[:], bank.dev_curves[:], bank.loss_curves[:] = resumed.since_best, resumed.dev_curves, resumed.loss_curves
        bank.started -= resumed.elapsed
        bank.cpu_started = None

    def on_step_end(self, bank: BankState, step: int) -> None:
        if step % self.every == 0 and step < bank.total_steps:
            state = checkpoint.LoopState(step, time.time() - bank.started, bank.active, bank.status, bank.best,
                                         bank.since_best, bank.dev_curves, bank.loss_curves)
            checkpoint.save(self.directory, self.fingerprint, state, method=bank.method, optimizer=bank.optimizer,
                            samplers=bank.samplers, device=bank.device)
