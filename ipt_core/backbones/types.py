"""What every backbone shares: the spec names and the error (from the torch-free
:mod:`ipt_core.config.backbone`), and the two batch containers
(:class:`Encoded` inputs, a :class:`LabelTable` of the tasks' labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ipt_core.config.backbone import (
    DEFAULT_BACKBONE,
    KINDS,
    PROMPT_KINDS,
    BackboneError,
    parse_spec,
)

__all__ = ["DEFAULT_BACKBONE", "KINDS", "PROMPT_KINDS", "BackboneError", "parse_spec", "LabelTable", "Encoded"]


@dataclass
class LabelTable:
    """Per-task label information for a set of tasks, padded to the largest label count.

    ``mask[t, j]`` is True where task ``t`` has a label ``j``. ``embeddings`` ([T, Lmax, d]) is used
    by similarity backbones; ``token_ids`` (per task, per label) by generative ones.
    """

    task_names: list[str]
    mask: torch.Tensor
    embeddings: torch.Tensor | None = None
    token_ids: list[list[list[int]]] | None = None

    def to(self, device: torch.device | str) -> "LabelTable":
        emb = None if self.embeddings is None else self.embeddings.to(device)
        return LabelTable(self.task_names, self.mask.to(device), emb, self.token_ids)


@dataclass
class Encoded:
    """A padded batch of tokenised inputs (special tokens included, no prompt yet)."""

    input_ids: torch.Tensor  # [B, S]
    attention_mask: torch.Tensor  # [B, S]
    token_type_ids: torch.Tensor | None  # [B, S]

    def to(self, device: torch.device | str) -> "Encoded":
        tti = None if self.token_type_ids is None else self.token_type_ids.to(device)
        return Encoded(self.input_ids.to(device), self.attention_mask.to(device), tti)
