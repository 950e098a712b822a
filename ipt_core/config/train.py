"""The training budget every bank run has: learning rate, steps, batch size, evaluation interval, patience, clipping.

Declared once, here. Each method's config (``PTConfig``, ``MSFConfig``, ``ISTConfig``,
``AttemptConfig``, ``VIPConfig``) *is* a ``TrainConfig`` with its own extra fields (and its own
defaults where they differ: MSF trains at lr 1e-3 on batches of 32, IST at lr 0.05 for 200
steps), and so is the bank's per-run ``RunConfig``. Field names stay flat (``cfg.steps``,
``PTConfig(steps=60)``, ``PTConfig(**stored_json)``), and ``cfg.train`` gives the budget alone,
which is what ``RunConfig.of(tasks, seed, cfg)`` copies into a run: the one place where a
method's config becomes a bank run.

Example::

    cfg = PTConfig(steps=60, batch_size=8)
    cfg.train                                   # TrainConfig(lr=0.01, steps=60, batch_size=8, ...)
    RunConfig.of(("sms_spam",), 0, cfg).steps   # 60
"""
from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, fields
from typing import ClassVar


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One run's training budget (keyword-only fields, so subclasses may add positional ones)."""

    lr: float = 0.01
    steps: int = 300
    batch_size: int = 16
    eval_every: int = 50
    patience: int | None = None  # in evaluations without improvement; None: never stop early
    max_grad_norm: float = 1.0

    # fields left out of ``to_json`` while they hold their default: budget fields a config gained after
    # its results were first stored, so that the store keys of those results stay the same
    KEY_OMITS_DEFAULT: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        self.check_train()

    def check_train(self) -> None:
        """ValueError naming the field when the budget is out of range."""
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and 0 < self.lr < 1e30):
            raise ValueError(f"lr must be a positive finite number below 1e30, got {self.lr}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive, got {self.max_grad_norm}")
        for name in ("steps", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be None or at least 1, got {self.patience}")

    @property
    def train(self) -> "TrainConfig":
        """The budget part of this config, as a plain ``TrainConfig``."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})

    def to_json(self) -> dict:
        out = asdict(self)
        for f in fields(self):
            if f.name in self.KEY_OMITS_DEFAULT and f.default is not MISSING and out[f.name] == f.default:
                del out[f.name]
        return out
