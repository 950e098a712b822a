"""The configs' range checks are written once, in ``ipt_core.config.limits``.

Each config's ``__post_init__`` runs ``TrainConfig.__post_init__`` (``limits.check``: every field that has
a range, the budget's and the subclass's) and then only the checks a range cannot express (a choice,
``init="text"`` needs its text, VIP's ``ctx_dim`` divisible by ``ctx_heads``). The hand-written range
checks that ``limits`` made unreachable are gone: every value one of them refused is refused still, by
``limits``, with a message naming the class, the field, the range and the flag. Torch-free except the
bank's ``RunConfig``, whose ``check_train`` checks the budget fields alone.
"""
from __future__ import annotations

import re
from dataclasses import fields

import pytest

from ipt_core.config import limits
from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.ipt import IPTSettings, ISTConfig, MSFConfig
from ipt_core.config.limits import LimitError
from ipt_core.config.pt import PTConfig
from ipt_core.config.registry import CONFIGS, CompareSettings
from ipt_core.config.train import TrainConfig
from ipt_core.config.vip import VIPConfig

NAN, INF = float("nan"), float("inf")

# (class, field, a value a removed hand-written check refused); what the check was, in a comment
REMOVED = [
    # TrainConfig.check_train: lr positive finite (< 1e30), max_grad_norm > 0, steps/batch_size/eval_every >= 1,
    # patience None or >= 1; through super().__post_init__ these reach every subclass (MSF and IST had them already)
    *[(cls, f, bad) for cls in (TrainConfig, PTConfig, MSFConfig, ISTConfig, AttemptConfig, VIPConfig) for f, bad in (
        ("lr", NAN), ("lr", INF), ("lr", 0.0), ("lr", -0.01), ("max_grad_norm", 0.0), ("max_grad_norm", -1.0),
        ("steps", 0), ("batch_size", 0), ("eval_every", 0), ("patience", 0), ("patience", -3))],
    # PTConfig: "n_tokens, steps, batch_size and lr must be positive"
    (PTConfig, "n_tokens", 0), (PTConfig, "steps", -1), (PTConfig, "batch_size", -1), (PTConfig, "lr", -1.0),
    # AttemptConfig: n_tokens/steps/batch_size/attn_dim positive; lr and attn_lr_scale positive; temperature None or > 0
    (AttemptConfig, "n_tokens", 0), (AttemptConfig, "attn_dim", 0), (AttemptConfig, "attn_lr_scale", 0.0),
    (AttemptConfig, "attn_lr_scale", -1.0), (AttemptConfig, "temperature", 0.0), (AttemptConfig, "temperature", -0.5),
    # VIPConfig: n_tokens..num_samples >= 1, decay in (0, 1), lr and temperature positive, commitment_weight and
    # dead_code_threshold non-negative
    *[(VIPConfig, f, 0) for f in ("n_tokens", "ctx_dim", "ctx_layers", "ctx_heads", "ctx_ff", "codebook_size", "num_samples")],
    (VIPConfig, "decay", 0.0), (VIPConfig, "decay", 1.0), (VIPConfig, "decay", 1.5), (VIPConfig, "temperature", 0.0),
    (VIPConfig, "temperature", -1.0), (VIPConfig, "commitment_weight", -0.1), (VIPConfig, "dead_code_threshold", -1.0),
    (VIPConfig, "dead_code_threshold", NAN),
    # MSFConfig / ISTConfig: their own fields (limits.check moved into TrainConfig.__post_init__)
    (MSFConfig, "hidden", 0), (MSFConfig, "alpha", -1.0), (ISTConfig, "init_std", 0.0),
]


@pytest.mark.parametrize("cls,field,bad", REMOVED, ids=lambda v: getattr(v, "__name__", repr(v)))
def test_a_removed_check_still_refuses_its_values_through_limits(cls, field, bad):
    with pytest.raises(LimitError) as err:
        cls(**{field: bad})
    lim = err.value.limit
    key = f"{cls.__name__}.{field}" if f"{cls.__name__}.{field}" in limits.LIMITS else field
    assert lim is limits.LIMITS[key]
    assert re.fullmatch(rf"{cls.__name__}\.{field} = {re.escape(repr(bad))}: must be {re.escape(lim.describe())} "
                        rf"\(flag {re.escape(lim.flag)}\)", str(err.value)), str(err.value)
    assert isinstance(err.value, ValueError)  # callers catching ValueError keep working


@pytest.mark.parametrize("cls", [TrainConfig, *CONFIGS.values()])
def test_every_config_runs_trainconfigs_checks(cls, monkeypatch):
    """PTConfig, AttemptConfig and VIPConfig used to skip ``super().__post_init__()``."""
    seen = []
    check = TrainConfig.__post_init__
    monkeypatch.setattr(TrainConfig, "__post_init__", lambda self: (seen.append(type(self)), check(self))[1])
    cls()
    assert seen == [cls]


@pytest.mark.parametrize("make,says", [
    (lambda: PTConfig(kind="middle"), "prompt kind must be 'shallow' or 'deep'"),
    (lambda: PTConfig(init="zeros"), "prompt init must be one of"),
    (lambda: PTConfig(init="text"), "init='text' needs init_text"),
    (lambda: AttemptConfig(init="prompt"), "ATTEMPT target init must be random, vocab or text"),
    (lambda: VIPConfig(init="prompt"), "VIP prompt init must be random, vocab or text"),
    (lambda: VIPConfig(eval_mode="mean"), "eval_mode must be one of"),
    (lambda: VIPConfig(ctx_dim=30, ctx_heads=4), r"ctx_dim \(30\) must be divisible by ctx_heads \(4\)"),
    (lambda: MSFConfig(norm="batch"), "norm must be one of"),
])
def test_the_checks_limits_cannot_express_stay(make, says):
    with pytest.raises(ValueError, match=says) as err:
        make()
    assert not isinstance(err.value, LimitError)


def test_ranges_come_before_the_other_checks():
    """A config with a bad range and a bad choice names the range (limits runs first)."""
    with pytest.raises(LimitError, match=r"^VIPConfig\.ctx_heads = 0"):
        VIPConfig(ctx_heads=0, eval_mode="mean")


def test_settings_check_their_own_fields():
    with pytest.raises(LimitError, match=r"^IPTSettings\.seen_data_seed = -1: "):
        IPTSettings(seen_data_seed=-1)
    with pytest.raises(LimitError, match=r"^CompareSettings\.d_intrinsic = 0: .*\(flag --d\)"):
        CompareSettings(d_intrinsic=0)
    with pytest.raises(LimitError, match=r"^CompareSettings\.source_seed = "):
        CompareSettings(source_seed=2**31)


def test_lr_above_its_range_is_refused_everywhere():
    """TrainConfig's own check let any lr below 1e30 through; its range is (0, 10] like every flag's."""
    for cls in (TrainConfig, *CONFIGS.values()):
        with pytest.raises(LimitError, match=rf"^{cls.__name__}\.lr = 11\.0: must be a finite number in \(0, 10\]"):
            cls(lr=11.0)
    assert PTConfig(lr=10.0).lr == 10.0


def test_bank_run_config_checks_its_budget():
    """``RunConfig`` (the bank's, a TrainConfig) keeps ``check_train``: the budget fields, through limits; its
    seed is the bank's own (derived seeds may leave the flags' range)."""
    from ipt_core.train.bank import RunConfig

    with pytest.raises(LimitError, match=r"^RunConfig\.lr = 0\.0: "):
        RunConfig(("a",), lr=0.0)
    with pytest.raises(LimitError, match=r"^RunConfig\.eval_every = 0: "):
        RunConfig(("a",), eval_every=0)
    assert RunConfig(("a",), seed=2**40).seed == 2**40
    with pytest.raises(ValueError, match="at least one task"):
        RunConfig(())


def test_defaults_are_in_range_and_unchanged_in_json():
    """The store keys of shipped results come from ``to_json``: the defaults' JSON is the same as before."""
    assert TrainConfig().to_json() == {"lr": 0.01, "steps": 300, "batch_size": 16, "eval_every": 50, "patience": None,
                                       "max_grad_norm": 1.0}
    # IST's defaults changed on purpose (bench/IST_SCHEDULE.md): its keys and the shipped results changed with them
    assert ISTConfig().to_json() == {"lr": 0.3, "steps": 20, "batch_size": 16, "eval_every": 4,
                                     "init_std": 0.02, "coords": "spread"}
    assert MSFConfig().to_json() == {"lr": 0.001, "steps": 300, "batch_size": 32, "eval_every": 50, "hidden": 256,
                                     "alpha": 10.0, "norm": "layer"}
    for cls in CONFIGS.values():
        n = len(fields(TrainConfig))
        assert [f.name for f in fields(cls)][:n] == [f.name for f in fields(TrainConfig)]
