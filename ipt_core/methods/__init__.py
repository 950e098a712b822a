"""One module per method: its parameters and how it makes a row's prompt (PEFT's shape), and the registry.

``REGISTRY`` maps a method's name to its :class:`MethodSpec`: the bank method class (a
:class:`~ipt_core.methods.base.BankMethod`), its config dataclass (a
:class:`~ipt_core.train_config.TrainConfig`), the names under which ``compare`` runs it, and a
one-line description. ``compare``'s method list derives from it; CLI flags and app forms can
read a method's hyper-parameters (and their defaults) from :func:`config_fields`.

Example::

    spec = REGISTRY["vip"]
    spec.method_class, spec.config_class      # VIP, VIPConfig
    compare_methods()                          # ("pt", "ipt", "attempt", "attempt-mt", "vip")
    config_fields("ist")["lr"]                 # 0.05
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from .attempt import Attempt, AttemptConfig
from .base import BankMethod
from .ipt import IntrinsicTuning, ISTConfig, MSFConfig, SubspaceFinding
from .pt import PromptTuning, PTConfig, init_prompt
from .vip import VIP, SampledVectorQuantize, VIPConfig


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: what it is called, its classes, and how ``compare`` names it."""

    name: str
    method_class: type[BankMethod]
    config_class: type
    description: str
    compare_as: tuple[str, ...] = ()  # names of the comparison's rows this method trains (may be none)


REGISTRY: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec("pt", PromptTuning, PTConfig, "prompt tuning: one soft prompt per run", ("pt",)),
        MethodSpec("msf", SubspaceFinding, MSFConfig, "IPT stage 1: an auto-encoder over the training tasks' prompts"),
        MethodSpec("ist", IntrinsicTuning, ISTConfig, "IPT stage 2: tune z in a frozen decoder's subspace", ("ipt",)),
        MethodSpec("attempt", Attempt, AttemptConfig, "ATTEMPT: attention over frozen source prompts and a target",
                   ("attempt", "attempt-mt")),
        MethodSpec("vip", VIP, VIPConfig, "VIP: contextualised, vector-quantised prompts", ("vip",)),
    )
}
_mismatched = [n for n, spec in REGISTRY.items() if spec.method_class.name != n]
if _mismatched:  # the registry and the classes must agree on names (checkpoints and specs use them)
    raise RuntimeError(f"registry names {_mismatched} differ from their classes' names")


def compare_methods() -> tuple[str, ...]:
    """The trained methods ``compare`` knows, in registry order."""
    return tuple(n for spec in REGISTRY.values() for n in spec.compare_as)


def config_fields(name: str) -> dict[str, object]:
    """A registered method's hyper-parameters and their defaults (``None`` default included)."""
    cfg = REGISTRY[name].config_class()
    return {f.name: getattr(cfg, f.name) for f in fields(cfg)}


__all__ = ["BankMethod", "MethodSpec", "REGISTRY", "compare_methods", "config_fields", "PromptTuning", "PTConfig",
           "init_prompt", "SubspaceFinding", "MSFConfig", "IntrinsicTuning", "ISTConfig", "Attempt", "AttemptConfig",
           "VIP", "VIPConfig", "SampledVectorQuantize"]
