"""Backbone spec names (``KIND[:MODEL]``) and the backbone error, without torch: the CLI's parser and
the app's cost estimate read them at first paint (``ipt_core.backbones`` loads torch and transformers).
"""

from __future__ import annotations

from ipt_core.errors import InputError

__all__ = ["DEFAULT_BACKBONE", "KINDS", "PROMPT_KINDS", "BackboneError", "parse_spec"]


DEFAULT_BACKBONE = "encoder-sim"
KINDS = ("encoder-sim", "encoder-mlm", "seq2seq", "causal")
PROMPT_KINDS = ("shallow", "deep")


class BackboneError(InputError):
    """A backbone spec or model that cannot be used; the message says which and why."""


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
