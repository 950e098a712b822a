"""VIP's hyper-parameters (torch-free: the app's forms and the CLI read them without loading the method).

The method and the reasons behind its defaults: :mod:`ipt_core.methods.vip`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config import limits
from ipt_core.config.pt import INIT_CHOICES
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
        limits.check(self)  # ranges: ipt_core/limits.py
        if self.init not in INIT_CHOICES or self.init == "prompt":
            raise ValueError(f"VIP prompt init must be random, vocab or text, got {self.init!r}")
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {EVAL_MODES}, got {self.eval_mode!r}")
        for name in ("n_tokens", "steps", "batch_size", "ctx_dim", "ctx_layers", "ctx_heads", "ctx_ff",
                     "codebook_size", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.ctx_dim % self.ctx_heads:
            raise ValueError(f"ctx_dim ({self.ctx_dim}) must be divisible by ctx_heads ({self.ctx_heads})")
        if not 0 < self.decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {self.decay}")
        if not (self.lr > 0 and self.temperature > 0 and self.commitment_weight >= 0):
            raise ValueError("lr and temperature must be positive, commitment_weight non-negative")
        if not self.dead_code_threshold >= 0:
            raise ValueError(f"dead_code_threshold must be non-negative, got {self.dead_code_threshold}")
