"""One module per method: its parameters and how it makes a row's prompt (PEFT's shape), and the registry.

``REGISTRY`` maps a method's name to its :class:`MethodSpec`: the bank method class (a
:class:`~ipt_core.methods.base.BankMethod`), its config dataclass (a
:class:`~ipt_core.config.train.TrainConfig`) and a one-line description. The configs and the
method lists (``compare``'s among them) live torch-free in :mod:`ipt_core.config.registry`, where the CLI
and the app's forms read them.

Example::

    spec = REGISTRY["vip"]
    spec.method_class, spec.config_class      # VIP, VIPConfig
"""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config.registry import CONFIGS
from ipt_core.methods.attempt import Attempt
from ipt_core.methods.base import BankMethod
from ipt_core.methods.ipt import IntrinsicTuning, SubspaceFinding
from ipt_core.methods.pt import PromptTuning
from ipt_core.methods.vip import VIP


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its name, its method and config classes, and a one-line description."""

    name: str
    method_class: type[BankMethod]
    config_class: type
    description: str


_CLASSES = {
    "pt": (PromptTuning, "prompt tuning: one soft prompt per run"),
    "msf": (SubspaceFinding, "IPT stage 1: an auto-encoder over the training tasks' prompts"),
    "ist": (IntrinsicTuning, "IPT stage 2: tune z in a frozen decoder's subspace"),
    "attempt": (Attempt, "ATTEMPT: attention over frozen source prompts and a target"),
    "vip": (VIP, "VIP: contextualised, vector-quantised prompts"),
}
REGISTRY: dict[str, MethodSpec] = {
    name: MethodSpec(name, cls, CONFIGS[name], text) for name, (cls, text) in _CLASSES.items()
}
_mismatched = [n for n, spec in REGISTRY.items() if spec.method_class.name != n] + sorted(set(CONFIGS) ^ set(REGISTRY))
if _mismatched:  # the registry, the configs and the classes must agree on names (checkpoints and specs use them)
    raise RuntimeError(f"registry names {_mismatched} differ from their classes' or configs' names")


