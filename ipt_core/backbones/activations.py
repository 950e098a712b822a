"""Which feed-forward neurons of the frozen model a soft prompt switches on (Su et al., NAACL 2022, "ON").

Su et al. found that the overlap of the feed-forward neurons two prompts activate predicts how well
one prompt transfers to the other's task better than the prompts' own cosine. This module records
the activation states; :mod:`ipt_core.analysis.transfer_measures` turns them into a similarity.

What is recorded: the prompt is put in front of an empty input (the tokenizer's special tokens
only, so the states are the prompt's and not a task's data), one forward pass of the frozen model,
and at every layer the output of the feed-forward block's activation function at the prompt's
positions ``0..n-1``. A neuron is *active* where that output is positive (GELU, ReLU and SiLU are
positive exactly where their input is). Result: ``[N, L, n, F]`` booleans (``F`` the feed-forward
width). Positions are kept apart: a prompt used as another task's initialisation keeps its
positions, so position ``i`` of one prompt meets position ``i`` of the other.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ipt_core.config.backbone import BackboneError
from ipt_core.tasks import Example

__all__ = ["ffn_activation_modules", "ffn_activation_states"]

# the activation module of a transformer block's feed-forward part, by family (the first found wins):
# BERT/RoBERTa/MiniLM, GPT-2 ``mlp.act``, Llama/Qwen ``mlp.act_fn``, T5 ``DenseReluDense.act``; BART keeps
# its activation as a plain function after ``fc1``, and fc1's output is positive exactly where GELU's is
_ACTIVATION_NAMES = ("intermediate.intermediate_act_fn", "mlp.act_fn", "mlp.act", "DenseReluDense.act", "fc1")


def ffn_activation_modules(layers: Sequence[nn.Module]) -> list[nn.Module]:
    """The feed-forward activation module of every layer (one per layer), or a BackboneError naming
    the first layer's type when a family keeps its activation as a plain function (nothing to hook)."""
    found = []
    for i, layer in enumerate(layers):
        mods = list(layer.named_modules())
        hit = next((m for n in _ACTIVATION_NAMES for k, m in mods if k == n or k.endswith("." + n)), None)
        if hit is None:
            raise BackboneError(f"layer {i} ({type(layer).__name__}) has no feed-forward activation module "
                                f"({', '.join(_ACTIVATION_NAMES)}): the activation overlap needs one")
        found.append(hit)
    return found


@torch.no_grad()
def ffn_activation_states(backbone, prompts: torch.Tensor, kind: str, *, batch_size: int = 16) -> torch.Tensor:
    """``[N, L, n, F]`` booleans: which feed-forward neurons are active at each prompt position.

    ``prompts``: ``[N, n, d]`` (shallow) or ``[N, L, n, d]`` (deep), one per task.

    Example::

        states = ffn_activation_states(bb, torch.stack([p_a, p_b]), "deep")   # [2, 6, 8, 1536]
    """
    want = 3 if kind == "shallow" else 4
    if prompts.dim() != want:
        raise BackboneError(f"{kind} prompts must be [N, {'L, ' if kind == 'deep' else ''}n, d], got {tuple(prompts.shape)}")
    n = int(prompts.shape[-2])
    modules = ffn_activation_modules(backbone.layers())
    captured: list[list[torch.Tensor]] = [[] for _ in modules]

    def hook(index: int):
        def record(module, args, output):
            captured[index].append((output[:, :n] > 0).cpu())
        return record

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(modules)]
    was_training = backbone.training
    backbone.eval()
    try:
        for start in range(0, len(prompts), batch_size):
            p = prompts[start:start + batch_size].to(backbone.device, torch.float32)
            backbone.features(backbone.collate([Example(text="", label=0)] * len(p)).to(backbone.device), p, kind)
    finally:
        for h in handles:
            h.remove()
        backbone.train(was_training)
    per_layer = [torch.cat(c) for c in captured]  # [N, n, F] each
    return torch.stack(per_layer, dim=1)
