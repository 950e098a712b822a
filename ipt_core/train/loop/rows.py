"""Where the rows of a bank's step are computed: in this process (:class:`LocalRows`), or split over ranks.

The loop asks its row strategy three things; ``ipt_core.train.distributed.RowParallel`` answers them for
a data-parallel bank under torchrun (each rank a slice of the step's rows, gradients all-reduced,
evaluation rows split and gathered). :class:`LocalRows` is the single-process answer: everything
here, nothing to reduce.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch


class LocalRows:
    """All rows in this process: the identity strategy."""

    def local_rows(self, batch: list) -> list:
        """The rows of the (length-sorted) step batch this process computes."""
        return batch

    def reduce_step(self, run_loss_sum: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
        """Make the per-run loss sums and the gradients those of the whole step, in place (here they are)."""

    def evaluate(self, fn: Callable[[list], tuple[np.ndarray, np.ndarray]], rows: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """``fn(rows)``: predictions and losses of every row, in order."""
        return fn(list(rows))
