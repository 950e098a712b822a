"""VIP's hyper-parameters (torch-free: the app's forms and the CLI read them without loading the method).

The method and the reasons behind its defaults: :mod:`ipt_core.methods.vip`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config.pt import STANDALONE_INITS
from ipt_core.config.train import TrainConfig

EVAL_MODES = ("sample", "expected")


DEAD_CODE_THRESHOLD = 1.0  # EMA vectors per step below which a code is re-initialised from the batch


@dataclass(frozen=True)
class VIPConfig(TrainConfig):
    """VIP hyper-parameters (the training budget is ``TrainConfig``'s; prompts are shallow)."""

    n_tokens: int = 8
    init: str = "vocab"  # the static prompt P: random | vocab | text (as PT)
    ctx_dim: int = 32
    ctx_layers: int = 2
    ctx_heads: int = 4
    ctx_ff: int = 128
    codebook_size: int = 64
    num_samples: int = 4  # m codes sampled per vector and averaged
    commitment_weight: float = 0.1
    decay: float = 0.99
    temperature: float = 1.0
    eval_mode: str = "sample"
    dead_code_threshold: float = DEAD_CODE_THRESHOLD  # 0: no re-initialisation (the paper's EMA codebook)

    def __post_init__(self):
        super().__post_init__()  # the ranges (ipt_core/config/limits.py)
        if self.init not in STANDALONE_INITS:
            raise ValueError(f"VIP prompt init must be random, vocab or text, got {self.init!r}")
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {self.eval_mode!r}")
        if self.ctx_dim % self.ctx_heads:
            raise ValueError(f"ctx_dim ({self.ctx_dim}) must be divisible by ctx_heads ({self.ctx_heads})")
