"""ATTEMPT's hyper-parameters (torch-free: the app's forms and the CLI read them without loading the method).

The method and the reasons behind its defaults: :mod:`ipt_core.methods.attempt`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config import limits
from ipt_core.config.pt import INIT_CHOICES
from ipt_core.config.train import TrainConfig

DEFAULT_TEMPERATURE = 0.5  # see the module docstring; None: the paper's d * e


@dataclass(frozen=True)
class AttemptConfig(TrainConfig):
    """ATTEMPT hyper-parameters (the training budget is ``TrainConfig``'s; prompts are shallow).

    ``n_tokens`` must equal the source prompts' length. ``temperature`` None means the paper's ``d * e``.
    """

    n_tokens: int = 8
    init: str = "vocab"  # target prompt: random | vocab | text (as PT)
    attn_dim: int = 100  # W_down: d -> attn_dim (100 in the official code)
    temperature: float | None = DEFAULT_TEMPERATURE
    train_layernorm: bool = True
    pool_padding: bool = False
    attn_lr_scale: float = 1.0

    def __post_init__(self):
        limits.check(self)  # ranges: ipt_core/limits.py
        if self.init not in INIT_CHOICES or self.init == "prompt":
            raise ValueError(f"ATTEMPT target init must be random, vocab or text, got {self.init!r}")
        if self.n_tokens < 1 or self.steps < 1 or self.batch_size < 1 or self.attn_dim < 1:
            raise ValueError("n_tokens, steps, batch_size and attn_dim must be positive")
        if not (self.lr > 0 and self.attn_lr_scale > 0):
            raise ValueError("lr and attn_lr_scale must be positive")
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
