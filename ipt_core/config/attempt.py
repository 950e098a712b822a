"""ATTEMPT's hyper-parameters (torch-free: the app's forms and the CLI read them without loading the method).

The method and the reasons behind its defaults: :mod:`ipt_core.methods.attempt`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config.pt import STANDALONE_INITS
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
        super().__post_init__()  # the ranges (ipt_core/config/limits.py)
        if self.init not in STANDALONE_INITS:
            raise ValueError(f"ATTEMPT target init must be random, vocab or text, got {self.init!r}")
