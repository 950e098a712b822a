"""Every method's config class by name, the names ``compare`` runs, and the comparison's settings.

Torch-free, so the app's forms and the CLI's parser read the same defaults and method lists that
the methods train with (:data:`ipt_core.methods.REGISTRY` pairs each name here with its class).

Example::

    CONFIGS["ist"]().lr                     # 0.05
    COMPARE_METHODS                         # ("zero-shot", "probe", "pt", "ipt", "attempt", "attempt-mt", "vip")
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ipt_core.config import limits
from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.ipt import ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig
from ipt_core.config.vip import VIPConfig

CONFIGS: dict[str, type] = {"pt": PTConfig, "msf": MSFConfig, "ist": ISTConfig, "attempt": AttemptConfig, "vip": VIPConfig}
"""A trained method's name -> its config dataclass."""
COMPARE_AS: dict[str, tuple[str, ...]] = {"pt": ("pt",), "msf": (), "ist": ("ipt",), "attempt": ("attempt", "attempt-mt"),
                                          "vip": ("vip",)}
"""A trained method's name -> the rows of the comparison it trains (MSF trains none of its own)."""
BASELINES = ("zero-shot", "probe")
COMPARE_METHODS = BASELINES + tuple(n for name in CONFIGS for n in COMPARE_AS[name])
DEFAULT_COMPARE_METHODS = ("zero-shot", "probe", "pt", "ipt", "attempt", "vip")


@dataclass(frozen=True)
class CompareSettings:
    """Every method's hyper-parameters; :meth:`with_budget` puts one step budget on all of them.

    Example::

        s = CompareSettings().with_budget(steps=100, batch_size=8)
        s.vip.steps, s.ist.steps, s.msf.steps   # 100, 100, 100
    """

    pt: PTConfig = PTConfig(kind="shallow")
    attempt: AttemptConfig = AttemptConfig()
    vip: VIPConfig = VIPConfig()
    msf: MSFConfig = MSFConfig()
    ist: ISTConfig = ISTConfig()
    d_intrinsic: int = 16
    source_seed: int = 0  # the seed of ATTEMPT's source prompts

    def __post_init__(self):
        limits.check(self)  # d_intrinsic's and source_seed's ranges (the nested configs checked themselves)

    def with_budget(self, *, steps: int | None = None, batch_size: int | None = None, eval_every: int | None = None,
                    patience: int | None = None, n_tokens: int | None = None, max_grad_norm: float | None = None,
                    msf_steps: int | None = None) -> "CompareSettings":
        """The same settings with the given budget on every trained method (None: unchanged)."""
        common = {k: v for k, v in dict(steps=steps, batch_size=batch_size, eval_every=eval_every).items() if v is not None}
        prompt = common | {k: v for k, v in dict(n_tokens=n_tokens, max_grad_norm=max_grad_norm).items() if v is not None}
        if patience is not None:
            prompt["patience"] = patience
        msf = dict(common)
        msf.pop("batch_size", None)  # MSF mixes tasks in its own, larger batch
        if msf_steps is not None:
            msf["steps"] = msf_steps
        return replace(self, pt=replace(self.pt, **prompt), attempt=replace(self.attempt, **prompt),
                       vip=replace(self.vip, **prompt), msf=replace(self.msf, **msf), ist=replace(self.ist, **common))

    def to_json(self) -> dict:
        return {"pt": self.pt.to_json(), "attempt": self.attempt.to_json(), "vip": self.vip.to_json(),
                "msf": self.msf.to_json(), "ist": self.ist.to_json(), "d_intrinsic": self.d_intrinsic,
                "source_seed": self.source_seed}

