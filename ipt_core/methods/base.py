"""The contract between a bank method and the loop that trains it (``ipt_core.train.bank.train_bank``).

A method holds the parameters of all R runs of a bank and says how the prompt of a row is made.
Everything the loop, the checkpoints and the distributed runner may ask of a method is declared
here with its default, so a new method states what it does differently and nothing is probed
with ``hasattr``.

Must implement: ``run_parameters(r)``, ``prompts(run_ids, task_ids, enc)``, ``run_state(r)``,
``load_run_state(r, state)``. May override (defaults in brackets):

- ``prompt_kind`` ["shallow"]: ``"shallow"`` ``[B, n, d]`` or ``"deep"`` ``[B, L, n, d]`` prompts;
- ``row_parallel`` [False]: a row's prompt is a function of the parameters and the row alone, so
  torchrun may split a step's rows over ranks (not VIP: its code draws and EMA codebook are per
  run and per step);
- ``shared_parameters()`` [none]: parameters every run trains (one Adam group, clipped together),
  at ``shared_lr`` [the first run's lr] with ``shared_max_grad_norm`` [the largest run's];
- ``extra_loss(run_ids, task_ids, counts)`` [None]: a loss besides the task loss (MSF's
  reconstruction, VIP's commitment), see :meth:`BankMethod.extra_loss`;
- ``generators()`` [none]: the ``torch.Generator`` objects the method draws from; their states
  are part of a checkpoint (they are not in ``state_dict``);
- ``config_json()`` [``self.cfg.to_json()`` when there is a ``cfg``]: what the checkpoint
  fingerprint records of the method's configuration.

Example::

    class Constant(BankMethod):
        name = "constant"
        row_parallel = True

        def __init__(self, prompts):          # one [n, d] tensor per run
            super().__init__()
            self.params = nn.ParameterList(nn.Parameter(p.clone()) for p in prompts)

        def run_parameters(self, r):
            return [self.params[r]]

        def prompts(self, run_ids, task_ids, enc):
            return torch.stack(list(self.params))[run_ids]          # [B, n, d]

        def run_state(self, r):
            return {"prompt": self.params[r].detach().clone()}

        def load_run_state(self, r, state):
            with torch.no_grad():
                self.params[r].copy_(state["prompt"])
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn


class BankMethod(nn.Module):
    """Base class of every bank method; see the module docstring for the contract."""

    name: ClassVar[str] = "method"
    row_parallel: ClassVar[bool] = False
    prompt_kind: str = "shallow"
    shared_lr: float | None = None  # None: the first run's learning rate
    shared_max_grad_norm: float | None = None  # None: the largest max_grad_norm of the runs
    cfg = None  # the method's config dataclass, when it has one
    # False: the runs' initial state is never a candidate answer, so the loop skips its step-0 dev evaluation
    eval_at_start: ClassVar[bool] = True
    # False: no test scores (its runs are an intermediate stage, judged on dev and by what uses them)
    score_test: ClassVar[bool] = True
    # 0: the rows' task loss is left out and the frozen model is not run in training (only extra_loss trains;
    # MSF without its task loss); an instance may set it
    task_loss_weight: float = 1.0

    # --- must implement -----------------------------------------------------------------------
    def run_parameters(self, r: int) -> list[nn.Parameter]:
        """The parameters run ``r`` trains alone (its own Adam group, learning rate and clipping)."""
        raise NotImplementedError

    def prompts(self, run_ids: torch.Tensor, task_ids: torch.Tensor | None, enc) -> torch.Tensor:
        """Each row's prompt: ``[B, n, d]`` (shallow) or ``[B, L, n, d]`` (deep) for ``run_ids [B]``."""
        raise NotImplementedError

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        """Copies of run ``r``'s state (the best-dev checkpoint keeps them; the store saves them)."""
        raise NotImplementedError

    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        """Put back a state from :meth:`run_state` of run ``r``."""
        raise NotImplementedError

    # --- defaults -----------------------------------------------------------------------------
    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters trained by every run's rows together (none by default)."""
        return []

    def extra_loss(self, run_ids: torch.Tensor, task_ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | None:
        """This micro-batch's share of each run's extra loss, ``[R]``, or None (no extra loss).

        Called after :meth:`prompts` for every training micro-batch with that chunk's rows and each
        run's row count in the whole step (``counts [R]``); the shares over a step's micro-batches
        add up to the step's extra loss.
        """
        return None

    def generators(self) -> dict[str, torch.Generator]:
        """The random generators the method owns, by a stable name (none by default)."""
        return {}

    def config_json(self) -> dict | None:
        """The method's configuration as JSON (``cfg.to_json()`` when it has a ``cfg``)."""
        return self.cfg.to_json() if self.cfg is not None else None
