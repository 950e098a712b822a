"""``encoder-sim``, the default kind: a sentence encoder scoring a label by the cosine of the pooled
prompted input and the embedding of the label's name, over a temperature.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ipt_core.backbones.base import Backbone
from ipt_core.backbones.types import Encoded, LabelTable
from ipt_core.tasks import Example

__all__ = ["EncoderSimBackbone"]


class EncoderSimBackbone(Backbone):
    """Sentence encoder; label score = cos(mean-pool(encoder(prompt; input)), label-name embedding) / T."""

    kind = "encoder-sim"

    def __init__(self, spec, model, tokenizer, *, temperature: float = 0.05, max_length: int = 128):
        super().__init__(spec, model, tokenizer, max_length=max_length)
        self.temperature = temperature

    def identity(self) -> dict:
        return dict(super().identity(), temperature=self.temperature)

    def _forward_hidden(self, enc: Encoded, prompt, kind):
        embeds, mask, tti, n = self._prompted_inputs(enc, prompt, kind)
        kwargs = {"inputs_embeds": embeds, "attention_mask": mask}
        if tti is not None:
            kwargs["token_type_ids"] = tti
        with self.injector.run(prompt if kind == "deep" else None):
            out = self.model(**kwargs)
        return out.last_hidden_state, mask

    def features(self, enc: Encoded, prompt: torch.Tensor | None = None, kind: str = "shallow") -> torch.Tensor:
        """Mean-pooled, L2-normalised sentence embedding of the prompted input: ``[B, d]``."""
        hidden, mask = self._forward_hidden(enc, prompt, kind)
        m = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)
        return F.normalize(pooled.float(), dim=-1)

    def _build_label_table(self, tasks, mask):
        d = self.hidden_size
        emb = torch.zeros((len(tasks), mask.shape[1], d))
        with torch.no_grad():
            for i, t in enumerate(tasks):
                enc = self.collate([Example(text=name, label=0) for name in t.labels]).to(self.device)
                emb[i, : len(t.labels)] = self.features(enc).cpu()
        return LabelTable([t.name for t in tasks], mask, embeddings=emb)

    def _scores(self, enc, task_ids, labels, prompt, kind):
        return self._similarity(self.features(enc, prompt, kind), task_ids, labels)

    def _similarity(self, feats, task_ids, labels):
        lab = labels.embeddings[task_ids]  # [B, Lmax, d]
        return torch.einsum("bd,bld->bl", feats, lab.to(feats.dtype)) / self.temperature

    def logits_from_features(self, feats, task_ids, labels):
        return self._similarity(feats, task_ids, labels).masked_fill(~labels.mask[task_ids], float("-inf"))
