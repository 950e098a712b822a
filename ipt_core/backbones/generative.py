"""Backbones that score a label by the likelihood of its name: ``encoder-mlm`` (a verbalizer at
``[MASK]``), ``seq2seq`` (the name as the target) and ``causal`` (the name after the input).
"""

from __future__ import annotations

import torch

from ipt_core.backbones.base import Backbone
from ipt_core.backbones.layers import find_layers
from ipt_core.backbones.types import Encoded, LabelTable
from ipt_core.config.backbone import BackboneError

__all__ = ["EncoderMLMBackbone", "Seq2SeqBackbone", "CausalBackbone"]


class _GenerativeMixin:
    """Label token ids per task, for backbones that score label names by likelihood."""

    def _label_token_ids(self, name: str) -> list[int]:
        # causal: the label follows other text, and byte-level BPEs spell a word there with a leading space
        ids = self.tokenizer(" " + name if self.kind == "causal" else name, add_special_tokens=False)["input_ids"]
        if not ids:
            raise BackboneError(f"label {name!r} tokenises to nothing with {self.spec}")
        return list(ids)

    def _build_label_table(self, tasks, mask):
        return LabelTable(
            [t.name for t in tasks], mask, token_ids=[[self._label_token_ids(n) for n in t.labels] for t in tasks]
        )

    def _row_label_ids(self, task_ids: torch.Tensor, labels: LabelTable) -> list[list[list[int]]]:
        return [labels.token_ids[int(t)] for t in task_ids.tolist()]

    def _pad_id(self) -> int:
        return self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0


class _LikelihoodScorer:
    @staticmethod
    def _mean_logprob(logits: torch.Tensor, targets: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        """Mean log-probability of ``targets`` under ``logits`` (``[N, T, V]``, ``[N, T]``) where masked.

        Example::

            _mean_logprob(torch.zeros(2, 3, 10), torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3))
            # tensor([-2.3026, -2.3026])  (log 1/10): [N]
        """
        logp = logits.float().log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        m = target_mask.to(logp.dtype)
        return (logp * m).sum(1) / m.sum(1).clamp_min(1.0)

    @staticmethod
    def _expand_labels(rows: list[list[list[int]]], lmax: int, pad: int, device):
        """Every (row, label) pair as one target sequence: ``[B*Lmax, T]`` ids and mask.

        A label a row's task lacks is all padding with an all-False mask (its score is masked later).

        Example::

            ids, mask = _expand_labels([[[5], [6, 7]]], lmax=3, pad=0, device="cpu")
            # ids [[5, 0], [6, 7], [0, 0]], mask [[T, F], [T, T], [F, F]]
        """
        width = max(len(lab) for row in rows for lab in row)
        ids = torch.full((len(rows) * lmax, width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows) * lmax, width), dtype=torch.bool)
        for i, row in enumerate(rows):
            for j, lab in enumerate(row):
                ids[i * lmax + j, : len(lab)] = torch.tensor(lab)
                mask[i * lmax + j, : len(lab)] = True
        return ids.to(device), mask.to(device)


class EncoderMLMBackbone(_GenerativeMixin, Backbone):
    """MLM encoder with a verbalizer: ``[prompt] [CLS] text [SEP] (pair [SEP]) [MASK] [SEP]``.

    A label scores the mean log-probability of its name's tokens at the ``[MASK]`` position.

    Example::

        bb = from_model("encoder-mlm", BertForMaskedLM(cfg), tokenizer)
        bb.logits(bb.collate(rows), task_ids, bb.label_table(tasks))   # [B, Lmax]
    """

    kind = "encoder-mlm"

    def layers(self):
        return find_layers(self.model, prefer="encoder")

    def _tokenize(self, example):
        ids = super()._tokenize(example)
        mask_id, sep = self.tokenizer.mask_token_id, self.tokenizer.sep_token_id
        if mask_id is None:
            raise BackboneError(f"{self.spec}: the tokenizer has no mask token")
        tail = [mask_id] + ([sep] if sep is not None else [])
        # drop the closing [SEP] first, so a long input loses one text token, not two
        if sep is not None and ids and ids[-1] == sep:
            ids = ids[:-1]
        return ids[: max(self.max_length - len(tail), 1)] + tail

    def _forward_hidden(self, enc, prompt, kind):
        embeds, mask, tti, n = self._prompted_inputs(enc, prompt, kind)
        kwargs = {"inputs_embeds": embeds, "attention_mask": mask}
        if tti is not None:
            kwargs["token_type_ids"] = tti
        with self.injector.run(prompt if kind == "deep" else None):
            return self.model(**kwargs).logits, n

    def _scores(self, enc, task_ids, labels, prompt, kind):
        vocab_logits, n = self._forward_hidden(enc, prompt, kind)  # [B, n + S, V]
        is_mask = enc.input_ids == self.tokenizer.mask_token_id
        # the appended [MASK] is each row's last one: a literal "[MASK]" in the text is not it
        pos = torch.arange(is_mask.shape[1], device=is_mask.device).expand_as(is_mask)
        mask_pos = torch.where(is_mask, pos, -1).amax(1) + n
        rows = torch.arange(len(mask_pos), device=mask_pos.device)
        logp = vocab_logits[rows, mask_pos].float().log_softmax(-1)  # [B, V]
        lmax = labels.mask.shape[1]
        targets, tmask = _LikelihoodScorer._expand_labels(
            self._row_label_ids(task_ids, labels), lmax, self._pad_id(), logp.device
        )  # [B*Lmax, T]
        picked = logp.repeat_interleave(lmax, 0).gather(1, targets)  # [B*Lmax, T]
        m = tmask.to(picked.dtype)
        return ((picked * m).sum(1) / m.sum(1).clamp_min(1.0)).view(-1, lmax)


class Seq2SeqBackbone(_GenerativeMixin, _LikelihoodScorer, Backbone):
    """T5/BART: prompt on the encoder input; a label scores the mean log-likelihood of its name.

    Deep prompts go into the encoder's layers; the decoder reads the prompted encoder output.

    Example::

        bb = from_model("seq2seq", T5ForConditionalGeneration(cfg), tokenizer)
        bb.logits(bb.collate(rows), task_ids, bb.label_table(tasks), prompt, "shallow")   # [B, Lmax]
    """

    kind = "seq2seq"

    def layers(self):
        return find_layers(self.model, prefer="encoder")

    def _uses_token_types(self):
        return False

    def input_embeddings(self):
        return self.model.get_encoder().get_input_embeddings()

    def _forward_hidden(self, enc, prompt, kind):
        """Encoder output of the prompted input ``[B, n + S, d]`` and its mask ``[B, n + S]``."""
        embeds, mask, _, _ = self._prompted_inputs(enc, prompt, kind)
        with self.injector.run(prompt if kind == "deep" else None):
            hidden = self.model.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return hidden, mask

    def _scores(self, enc, task_ids, labels, prompt, kind):
        hidden, mask = self._forward_hidden(enc, prompt, kind)
        lmax = labels.mask.shape[1]
        targets, tmask = self._expand_labels(self._row_label_ids(task_ids, labels), lmax, self._pad_id(), hidden.device)
        hidden = hidden.repeat_interleave(lmax, 0)
        mask = mask.repeat_interleave(lmax, 0)
        labels_ = targets.masked_fill(~tmask, -100)
        prepare = getattr(self.model, "prepare_decoder_input_ids_from_labels", None)
        if prepare is not None:
            # decoder inputs without ``labels=``: the model would also compute a loss nobody reads
            out = self.model(
                encoder_outputs=(hidden,), attention_mask=mask, decoder_input_ids=prepare(labels=labels_), use_cache=False
            )
        else:
            out = self.model(encoder_outputs=(hidden,), attention_mask=mask, labels=labels_, use_cache=False)
        return self._mean_logprob(out.logits, targets, tmask).view(-1, lmax)


class CausalBackbone(_GenerativeMixin, _LikelihoodScorer, Backbone):
    """Decoder-only LM: ``[prompt] input label``; a label scores the mean log-likelihood of its name.

    Every (row, label) pair is one sequence: ``B * Lmax`` sequences per forward.

    Example::

        bb = from_model("causal", GPT2LMHeadModel(cfg), tokenizer)
        bb.logits(bb.collate(rows), task_ids, bb.label_table(tasks), prompt, "deep")   # [B, Lmax]
    """

    kind = "causal"

    def _uses_token_types(self):
        return False

    def _tokenize(self, example):
        text = example.text if example.text_pair is None else f"{example.text}\n{example.text_pair}"
        ids = self.tokenizer(text + "\n", truncation=True, max_length=self.max_length, add_special_tokens=True)
        return list(ids["input_ids"])

    def _forward_hidden(self, enc, prompt, kind):
        """Vocabulary logits of the prompted input ``[B, n + S, V]`` and the prompt length ``n``."""
        embeds, mask, _, n = self._prompted_inputs(enc, prompt, kind)
        with self.injector.run(prompt if kind == "deep" else None):
            return self.model(inputs_embeds=embeds, attention_mask=mask, use_cache=False).logits, n

    def _scores(self, enc, task_ids, labels, prompt, kind):
        lmax = labels.mask.shape[1]
        pad = self._pad_id()
        device = enc.input_ids.device
        targets, tmask = self._expand_labels(self._row_label_ids(task_ids, labels), lmax, pad, device)  # [N, T]
        inputs = enc.input_ids.repeat_interleave(lmax, 0)  # [N, S], N = B * Lmax
        lengths = enc.attention_mask.repeat_interleave(lmax, 0).sum(1)  # [N]
        n_rows, width = inputs.shape
        t_width = targets.shape[1]
        # right-padded inputs: each row's label goes right after its last real token
        tpos = lengths[:, None] + torch.arange(t_width, device=device)  # [N, T]
        full = torch.cat([inputs, inputs.new_full((n_rows, t_width), pad)], dim=1)
        full = full.masked_fill(torch.arange(width + t_width, device=device) >= lengths[:, None], pad)
        full = full.scatter(1, tpos, targets)
        ends = lengths + tmask.sum(1)
        fmask = (torch.arange(width + t_width, device=device)[None] < ends[:, None]).to(enc.attention_mask.dtype)
        p = None if prompt is None else prompt.repeat_interleave(lmax, 0)
        logits, n = self._forward_hidden(Encoded(full, fmask, None), p, kind)
        # the token at position q is predicted by the logits at q - 1
        pred_pos = (tpos + n - 1).clamp_min(0)
        picked = logits.gather(1, pred_pos.unsqueeze(-1).expand(-1, -1, logits.shape[-1]))
        return self._mean_logprob(picked, targets, tmask).view(-1, lmax)
