"""Prompt tuning's hyper-parameters (torch-free; the method: :mod:`ipt_core.methods.pt`)."""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config import limits
from ipt_core.config.train import TrainConfig

INIT_CHOICES = ("random", "vocab", "text", "prompt")


@dataclass(frozen=True)
class PTConfig(TrainConfig):
    """Hyper-parameters of prompt tuning (the training budget is ``TrainConfig``'s); the defaults are
    the ones the README's sweep supports."""

    n_tokens: int = 8
    kind: str = "deep"  # "shallow" or "deep"
    init: str = "vocab"  # random | vocab | text | prompt
    init_text: str | None = None

    def __post_init__(self):
        limits.check(self)  # ranges: ipt_core/limits.py
        if self.kind not in ("shallow", "deep"):
            raise ValueError(f"prompt kind must be 'shallow' or 'deep', got {self.kind!r}")
        if self.init not in INIT_CHOICES:
            raise ValueError(f"prompt init must be one of {INIT_CHOICES}, got {self.init!r}")
        if self.init == "text" and not self.init_text:
            raise ValueError("init='text' needs init_text")
        if self.n_tokens < 1 or self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("n_tokens, steps, batch_size and lr must be positive")
