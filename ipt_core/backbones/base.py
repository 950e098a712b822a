"""The :class:`Backbone` base class: a frozen model that scores the labels of prompted inputs.

Tokenisation (cached), dynamic padding, label tables (cached), prompt placement (shallow in front
of the input embeddings, deep through :class:`~ipt_core.backbones.layers.DeepPromptInjector`) and
the checks of :meth:`Backbone.logits`; subclasses implement ``_forward_hidden`` and ``_scores``.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ipt_core.backbones.layers import DeepPromptInjector, find_layers
from ipt_core.backbones.types import Encoded, LabelTable
from ipt_core.config.backbone import PROMPT_KINDS, BackboneError
from ipt_core.tasks import Example, Task

__all__ = ["Backbone"]


class Backbone(nn.Module):
    """A frozen model that scores labels of prompted inputs. Subclasses implement ``_scores``."""

    kind: str = ""

    def __init__(self, spec: str, model: nn.Module, tokenizer, *, max_length: int = 128):
        super().__init__()
        self.spec = spec
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._weights_hash: str | None = None
        self._token_cache: dict[tuple[str, str | None], list[int]] = {}
        self._label_cache: dict[tuple[str, ...], LabelTable] = {}
        self.injector = DeepPromptInjector(self.layers())

    def train(self, mode: bool = True) -> "Backbone":
        """The wrapped model stays in eval mode: it is frozen, and dropout would make runs noisy."""
        super().train(mode)
        self.model.eval()
        return self

    # --- description --------------------------------------------------------------------------
    @property
    def hidden_size(self) -> int:
        return self.input_embeddings().weight.shape[1]

    @property
    def num_layers(self) -> int:
        return len(self.layers())

    @property
    def device(self) -> torch.device:
        return self.input_embeddings().weight.device

    def layers(self) -> nn.ModuleList:
        return find_layers(self.model)

    def input_embeddings(self) -> nn.Embedding:
        return self.model.get_input_embeddings()

    def prompt_shape(self, n_tokens: int, kind: str) -> tuple[int, ...]:
        """Shape of one run's prompt: ``(n, d)`` shallow, ``(L, n, d)`` deep."""
        if kind == "shallow":
            return (n_tokens, self.hidden_size)
        if kind == "deep":
            return (self.num_layers, n_tokens, self.hidden_size)
        raise BackboneError(f"prompt kind must be one of {PROMPT_KINDS}, got {kind!r}")

    def weights_hash(self) -> str:
        """sha256 over the frozen weights (names, shapes, bytes): part of every result's key."""
        if self._weights_hash is None:
            h = hashlib.sha256()
            for name, t in sorted(self.model.state_dict().items()):
                h.update(name.encode())
                h.update(str(tuple(t.shape)).encode())
                h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            self._weights_hash = h.hexdigest()
        return self._weights_hash

    def identity(self) -> dict:
        """What identifies this backbone in a result's key."""
        return {"spec": self.spec, "kind": self.kind, "weights": self.weights_hash(), "max_length": self.max_length}

    # --- tokenisation -------------------------------------------------------------------------
    def token_ids(self, example: Example) -> list[int]:
        """Token ids of one input, special tokens included, truncated to ``max_length``. Cached."""
        key = (example.text, example.text_pair)
        ids = self._token_cache.get(key)
        if ids is None:
            ids = self._tokenize(example)
            self._token_cache[key] = ids
        return ids

    def _tokenize(self, example: Example) -> list[int]:
        enc = self.tokenizer(
            example.text,
            example.text_pair,
            truncation=True,
            max_length=self.max_length,
            add_special_tokens=True,
        )
        return list(enc["input_ids"])

    def collate(self, examples: Sequence[Example]) -> Encoded:
        """Pad a list of examples to the longest one (dynamic padding, on the right).

        ``token_type_ids`` only for models that use them (BERT-style ``type_vocab_size > 1``):
        0 up to the first ``[SEP]``, 1 after it for pair inputs.

        Example::

            enc = bb.collate([Example("a fine film", 1), Example("bad", 0)])
            enc.input_ids.shape, enc.attention_mask.shape   # [2, S], [2, S]; S = longest row
        """
        if not examples:
            raise BackboneError("collate needs at least one example")
        ids = [self.token_ids(e) for e in examples]
        width = max(len(x) for x in ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        input_ids = torch.full((len(ids), width), pad, dtype=torch.long)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        for i, x in enumerate(ids):
            input_ids[i, : len(x)] = torch.tensor(x)
            mask[i, : len(x)] = 1
        tti = None
        if self._uses_token_types():
            tti = torch.zeros_like(input_ids)
            for i, e in enumerate(examples):
                if e.text_pair is not None:
                    sep = self.tokenizer.sep_token_id
                    x = ids[i]
                    if sep is not None and sep in x:
                        first = x.index(sep)
                        tti[i, first + 1 : len(x)] = 1
        return Encoded(input_ids, mask, tti)

    def _uses_token_types(self) -> bool:
        return getattr(self.model.config, "type_vocab_size", 0) > 1

    # --- labels -------------------------------------------------------------------------------
    def label_table(self, tasks: Sequence[Task]) -> LabelTable:
        """Label information for ``tasks`` (cached: the model is frozen)."""
        key = tuple(f"{t.name}\x00" + "\x01".join(t.labels) for t in tasks)
        table = self._label_cache.get(key)
        if table is None:
            lmax = max(len(t.labels) for t in tasks)
            mask = torch.zeros((len(tasks), lmax), dtype=torch.bool)
            for i, t in enumerate(tasks):
                mask[i, : len(t.labels)] = True
            table = self._build_label_table(tasks, mask)
            self._label_cache[key] = table
        return table.to(self.device)

    def _build_label_table(self, tasks: Sequence[Task], mask: torch.Tensor) -> LabelTable:
        raise NotImplementedError

    # --- prompts ------------------------------------------------------------------------------
    def layer_inputs(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Hidden states at the input of every layer for a sequence of tokens: ``[L, n, d]``.

        Used to initialise deep prompts at the right scale for each layer.
        """
        captured: list[torch.Tensor] = []
        hooks = [
            layer.register_forward_pre_hook(
                lambda m, a, k: captured.append((a[0] if a else k["hidden_states"]).detach()), with_kwargs=True
            )
            for layer in self.layers()
        ]
        try:
            with torch.no_grad():
                self._forward_hidden(
                    Encoded(token_ids[None], torch.ones_like(token_ids)[None], None), None, "shallow"
                )
        finally:
            for hk in hooks:
                hk.remove()
        return torch.stack([c[0] for c in captured[: self.num_layers]])

    # --- forward ------------------------------------------------------------------------------
    def _prompted_inputs(self, enc: Encoded, prompt: torch.Tensor | None, kind: str):
        """Input embeddings with the prompt in front, and the matching masks."""
        embeds = self.input_embeddings()(enc.input_ids)
        mask, tti = enc.attention_mask, enc.token_type_ids
        if prompt is None:
            return embeds, mask, tti, 0
        if kind == "shallow":
            front = prompt
        else:
            # placeholders: replaced at every layer's input by the deep injector
            front = prompt[:, 0]
        n = front.shape[1]
        embeds = torch.cat([front.to(embeds.dtype), embeds], dim=1)
        ones = torch.ones((mask.shape[0], n), dtype=mask.dtype, device=mask.device)
        mask = torch.cat([ones, mask], dim=1)
        if tti is not None:
            tti = torch.cat([torch.zeros_like(ones), tti], dim=1)
        return embeds, mask, tti, n

    def _forward_hidden(self, enc: Encoded, prompt: torch.Tensor | None, kind: str):
        raise NotImplementedError

    def logits(
        self,
        enc: Encoded,
        task_ids: torch.Tensor,
        labels: LabelTable,
        prompt: torch.Tensor | None = None,
        kind: str = "shallow",
    ) -> torch.Tensor:
        """Scores of every label of each row's task: ``[B, Lmax]``, ``-inf`` where a task has fewer labels.

        Example::

            bb = load_backbone("encoder-sim")
            enc = bb.collate(task.train[:4]).to(bb.device)
            table = bb.label_table([task])
            scores = bb.logits(enc, torch.zeros(4, dtype=torch.long), table)   # [4, len(task.labels)]
        """
        if kind not in PROMPT_KINDS:
            raise BackboneError(f"prompt kind must be one of {PROMPT_KINDS}, got {kind!r}")
        if prompt is not None:
            want = 3 if kind == "shallow" else 4
            if prompt.dim() != want or prompt.shape[0] != enc.input_ids.shape[0] or prompt.shape[-1] != self.hidden_size:
                raise BackboneError(
                    f"{kind} prompt must have shape [B, {'L, ' if kind == 'deep' else ''}n, {self.hidden_size}] "
                    f"with B={enc.input_ids.shape[0]}, got {tuple(prompt.shape)}"
                )
            if kind == "deep" and prompt.shape[1] != self.num_layers:
                raise BackboneError(f"deep prompt needs {self.num_layers} layers, got {prompt.shape[1]}")
        scores = self._scores(enc, task_ids, labels, prompt, kind)
        return scores.masked_fill(~labels.mask[task_ids], float("-inf"))

    def _scores(self, enc, task_ids, labels, prompt, kind) -> torch.Tensor:
        raise NotImplementedError

    def logits_from_features(self, feats: torch.Tensor, task_ids: torch.Tensor, labels: LabelTable) -> torch.Tensor | None:
        """``logits`` of unprompted rows from their :meth:`features`, where this backbone scores labels
        that way (encoder-sim: similarity to the label names); None where it does not (MLM, seq2seq, causal)."""
        return None

    def features(self, enc: Encoded, prompt: torch.Tensor | None = None, kind: str = "shallow") -> torch.Tensor:
        """Mean-pooled, L2-normalised last hidden state of the (prompted) input: ``[B, d]``.

        Used by the linear probe and by ATTEMPT-style input summaries.
        """
        embeds, mask, tti, _ = self._prompted_inputs(enc, prompt, kind)
        kwargs = {"inputs_embeds": embeds, "attention_mask": mask}
        if tti is not None:
            kwargs["token_type_ids"] = tti
        with self.injector.run(prompt if kind == "deep" else None):
            if self.kind == "seq2seq":
                hidden = self.model.get_encoder()(**kwargs).last_hidden_state
            else:
                hidden = self.model(**kwargs, output_hidden_states=True).hidden_states[-1]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return F.normalize(((hidden * m).sum(1) / m.sum(1).clamp_min(1.0)).float(), dim=-1)
