"""Where prompts enter a model: its transformer block list, and the hooks that put a deep prompt
at the input of every layer.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ipt_core.config.backbone import BackboneError

__all__ = ["find_layers", "DeepPromptInjector"]


def find_layers(model: nn.Module, prefer: str = "") -> nn.ModuleList:
    """The transformer block list of a Hugging Face model (encoder blocks for seq2seq).

    A ``ModuleList`` as long as the model's layer count; with ``prefer``, one whose name contains
    it. Among equals the shallowest wins: a block may hold a sub-list of the same length (T5's
    ``block.0.layer`` has 2 entries, so a 2-layer T5 has two candidates).

    Example::

        find_layers(BertForMaskedLM(cfg), prefer="encoder")   # model.bert.encoder.layer
    """
    config = model.config
    n = getattr(config, "num_hidden_layers", None) or getattr(config, "num_layers", None)
    candidates = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.ModuleList) and len(mod) > 0 and (n is None or len(mod) == n)
    ]
    if prefer:
        preferred = [c for c in candidates if prefer in c[0]]
        candidates = preferred or candidates
    if not candidates:
        raise BackboneError(f"cannot find the layer list of {type(model).__name__}")
    # min() keeps the first of equally shallow lists: named_modules() is in definition order
    return min(candidates, key=lambda c: c[0].count("."))[1]


class DeepPromptInjector:
    """Replaces the hidden states of positions ``0..n-1`` at the input of every layer.

    Registered as forward pre-hooks; ``with injector.run(prompt):`` sets the per-layer prompt
    (``[B, L, n, d]``, ``L`` = number of layers) for the forwards inside the block.

    Example::

        inj = DeepPromptInjector(model.encoder.layer)
        with inj.run(torch.zeros(4, 2, 8, 32)):   # 4 rows, 2 layers, 8 prompt positions, d = 32
            model(inputs_embeds=embeds)            # embeds: [4, 8 + S, 32]; positions 0..7 replaced
    """

    def __init__(self, layers: nn.ModuleList):
        self.layers = layers
        # per thread: the app shares one cached backbone between sessions, which may run at once
        self._local = threading.local()
        for i, layer in enumerate(layers):
            layer.register_forward_pre_hook(self._hook(i), with_kwargs=True)

    @property
    def prompt(self) -> torch.Tensor | None:
        return getattr(self._local, "prompt", None)

    def _hook(self, index: int):
        def hook(module, args, kwargs):
            prompt = self.prompt
            if prompt is None:
                return None
            p = prompt[:, index]
            n = p.shape[1]
            if args:
                h = args[0]
                h = torch.cat([p.to(h.dtype), h[:, n:]], dim=1)
                return (h, *args[1:]), kwargs
            h = kwargs["hidden_states"]
            kwargs = dict(kwargs, hidden_states=torch.cat([p.to(h.dtype), h[:, n:]], dim=1))
            return args, kwargs

        return hook

    @contextmanager
    def run(self, prompt: torch.Tensor | None) -> Iterator[None]:
        """Inject ``prompt`` (``[B, L, n, d]``, or None for none) into the forwards of the block."""
        if prompt is not None and prompt.shape[1] != len(self.layers):
            raise BackboneError(f"deep prompt needs {len(self.layers)} layers, got {prompt.shape[1]}")
        previous = self.prompt
        self._local.prompt = prompt
        try:
            yield
        finally:
            # restore, not clear: a nested forward (e.g. label embeddings) must not end the outer one
            self._local.prompt = previous
