"""Prompt tuning's hyper-parameters (torch-free; the method: :mod:`ipt_core.methods.pt`)."""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config.backbone import PROMPT_KINDS
from ipt_core.config.train import TrainConfig

INIT_CHOICES = ("random", "vocab", "text", "prompt")
STANDALONE_INITS = ("random", "vocab", "text")  # the inits that need no prompt tensor: the CLI's --init, ATTEMPT's, VIP's


@dataclass(frozen=True)
class PTConfig(TrainConfig):
    """Hyper-parameters of prompt tuning (the training budget is ``TrainConfig``'s); the defaults are
    the ones the README's sweep supports."""

    n_tokens: int = 8
    kind: str = "deep"  # "shallow" or "deep"
    init: str = "vocab"  # random | vocab | text | prompt
    init_text: str | None = None

    def __post_init__(self):
        super().__post_init__()  # the ranges (ipt_core/config/limits.py)
        if self.kind not in PROMPT_KINDS:
            raise ValueError(f"prompt kind must be 'shallow' or 'deep', got {self.kind!r}")
        if self.init not in INIT_CHOICES:
            raise ValueError(f"prompt init must be one of {INIT_CHOICES}, got {self.init!r}")
        if self.init == "text" and not self.init_text:
            raise ValueError("init='text' needs init_text")
