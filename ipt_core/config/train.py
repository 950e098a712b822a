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

from dataclasses import MISSING, asdict, dataclass, fields
from typing import ClassVar

from ipt_core.config import limits


LR_SCHEDULES = ("constant", "cosine")


def _check_schedule(cfg) -> None:
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"{type(cfg).__name__}.lr_schedule must be one of {LR_SCHEDULES}, got {cfg.lr_schedule!r}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """One run's training budget (keyword-only fields, so subclasses may add positional ones)."""

    lr: float = 0.01
    steps: int = 300
    batch_size: int = 16
    eval_every: int = 50
    patience: int | None = None  # in evaluations without improvement; None: never stop early
    max_grad_norm: float = 1.0
    # every step takes each run's whole training set (batch_size is then unused): for methods that train a
    # handful of numbers on a few-shot set, where a mini-batch's noise costs more steps than the rows it saves
    full_batch: bool = False
    lr_schedule: str = "constant"  # "constant" | "cosine" (from lr at the first step down towards 0 at the last)

    # added after results were stored under keys without them: left out of every config's key at their default
    _ADDED_LATER: ClassVar[tuple[str, ...]] = ("full_batch", "lr_schedule")

    # fields left out of ``to_json`` while they hold their default: budget fields a config gained after
    # its results were first stored, so that the store keys of those results stay the same
    KEY_OMITS_DEFAULT: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        limits.check(self)  # every field with a range, this class's and a subclass's (ipt_core/config/limits.py)
        _check_schedule(self)

    def check_train(self) -> None:
        """:class:`~ipt_core.config.limits.LimitError` naming the field when the budget (``TrainConfig``'s own
        fields) is out of range; for subclasses that check their other fields themselves (the bank's ``RunConfig``)."""
        for f in fields(TrainConfig):
            if f.name in limits.LIMITS:
                limits.validate(f.name, getattr(self, f.name), type(self).__name__)
        _check_schedule(self)

    @property
    def train(self) -> "TrainConfig":
        """The budget part of this config, as a plain ``TrainConfig``."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})

    def to_json(self) -> dict:
        out = asdict(self)
        for f in fields(self):
            omit = f.name in self.KEY_OMITS_DEFAULT or f.name in TrainConfig._ADDED_LATER
            if omit and f.default is not MISSING and out[f.name] == f.default:
                del out[f.name]
        return out
