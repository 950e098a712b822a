"""Prompt tuning (PT): one trainable soft prompt per run, gathered per row from a bank.

Shallow prompts are ``[n, d]`` vectors in front of the input embeddings; deep prompts are
``[L, n, d]``, one set per layer, replacing the prompt positions' hidden states at every layer.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ipt_core.backbones import Backbone, Encoded
from ipt_core.methods.base import BankMethod

CODE_VERSION = "pt-1"


def _vocab_ids(backbone: Backbone, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` token ids sampled from the ordinary vocabulary (no special tokens, first 5000 word pieces)."""
    special = set(backbone.tokenizer.all_special_ids)
    vocab = backbone.input_embeddings().weight.shape[0]
    lo = 1000 if vocab > 6000 else 0  # skip BERT's [unused] block and control tokens where there are many
    hi = min(vocab, lo + 5000)
    ids = []
    while len(ids) < n:
        i = int(torch.randint(lo, hi, (1,), generator=gen))
        if i not in special:
            ids.append(i)
    return torch.tensor(ids)


def init_prompt(
    backbone: Backbone,
    n_tokens: int,
    kind: str,
    init: str = "vocab",
    *,
    seed: int = 0,
    text: str | None = None,
    prompt: torch.Tensor | None = None,
) -> torch.Tensor:
    """An initial prompt for one run: ``[n, d]`` (shallow) or ``[L, n, d]`` (deep).

    - ``random``: normal noise at the scale of the word embeddings (shallow) or of each layer's
      hidden states (deep);
    - ``vocab``: embeddings of sampled vocabulary tokens (deep: their hidden states at every layer);
    - ``text``: the same for the tokens of ``text`` (e.g. the task's description);
    - ``prompt``: a given tensor of the right shape (e.g. from another run or from IST).

    Example::

        p = init_prompt(bb, 8, "deep", "vocab", seed=1)   # [6, 8, 384] for MiniLM
    """
    gen = torch.Generator().manual_seed(seed)
    shape = backbone.prompt_shape(n_tokens, kind)
    if init == "prompt":
        if prompt is None or tuple(prompt.shape) != shape:
            raise ValueError(f"init='prompt' needs a tensor of shape {shape}, got {None if prompt is None else tuple(prompt.shape)}")
        return prompt.detach().clone().float().cpu()
    if init == "text":
        if not text:
            raise ValueError("init='text' needs text")
        ids = backbone.tokenizer(text, add_special_tokens=False)["input_ids"] or [0]
        ids = torch.tensor((ids * (n_tokens // len(ids) + 1))[:n_tokens])
    else:
        ids = _vocab_ids(backbone, n_tokens, gen)
    with torch.no_grad():
        ids = ids.to(backbone.device)
        if kind == "shallow":
            base = backbone.input_embeddings()(ids).float().cpu()
        else:
            base = backbone.layer_inputs(ids).float().cpu()  # [L, n, d]
    if init != "random":
        return base.clone()
    if kind == "shallow":
        scale = backbone.input_embeddings().weight.float().std().item()
        return torch.randn(shape, generator=gen) * scale
    scale = base.std(dim=(1, 2), keepdim=True)  # per layer
    return torch.randn(shape, generator=gen) * scale


class PromptTuning(BankMethod):
    """A bank of independent soft prompts, one per run.

    ``prompts(run_ids, task_ids, enc)`` gathers each row's prompt: ``[B, n, d]`` or ``[B, L, n, d]``.

    Example::

        m = PromptTuning([init_prompt(bb, 8, "deep", seed=s) for s in range(3)], kind="deep")
        m.prompts(torch.tensor([0, 2]), None, None).shape   # [2, 6, 8, 384]
    """

    name = "pt"
    # a row's prompt depends on the parameters and the row alone: torchrun may train it data-parallel
    row_parallel = True

    def __init__(self, initial: Sequence[torch.Tensor], kind: str):
        super().__init__()
        self.prompt_kind = kind
        self.params = nn.ParameterList([nn.Parameter(p.detach().clone().float()) for p in initial])

    def run_parameters(self, r: int) -> list[nn.Parameter]:
        return [self.params[r]]

    def prompts(self, run_ids: torch.Tensor, task_ids: torch.Tensor | None, enc: Encoded | None) -> torch.Tensor:
        return torch.stack(list(self.params))[run_ids]

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        return {"prompt": self.params[r].detach().clone()}

    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.params[r].copy_(state["prompt"])
