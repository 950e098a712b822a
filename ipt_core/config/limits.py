"""The one source of the numeric ranges: CLI flags, app form fields and config dataclasses.

A :class:`Limit` is a range (closed or open at either end, integers or finite floats, ``None``
allowed or not) with the flag that sets it. :data:`LIMITS` holds them keyed by config field name
(``"lr"``, ``"steps"``, ...; ``"VIPConfig.temperature"`` where one class differs), plus the
CLI-only quantities (``"seeds"``, ``"k"``, ``"checkpoint_every"``...) and the flags that set a field
of a second config (``"msf_lr"``: the ``lr`` of MSF, flag ``--msf-lr``). The three users:

- a config dataclass calls :func:`check` from a one-line ``__post_init__``; a value out of range
  raises :class:`LimitError` (a ``ValueError``) naming the class, the field and the range, so the
  core's functions refuse it when called directly; nested dataclass fields are checked too;
- the CLI's parser gets ``type=argtype("lr")``: a bad value is one argparse error naming the flag;
- a Streamlit form says ``st.number_input("Learning rate", value=cfg.lr, **widget_kwargs("lr"))`` (the
  value from the config: ``ipt_core.cli.args.config_of``).

Example::

    >>> LIMITS["lr"].describe()
    'a finite number in (0, 10]'
    >>> validate("steps", 0)
    Traceback (most recent call last):
    ...
    ipt_core.config.limits.LimitError: steps = 0: must be an integer in 1..10000000 (flag --steps)
    >>> widget_kwargs("steps")
    {'min_value': 1, 'max_value': 10000000, 'step': 1}

This module imports nothing from the package: every layer may use it.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, replace

from ipt_core.errors import InputError

SEED_MAX = 2**31 - 1


class LimitError(InputError):
    """A value outside its range; ``name`` is the field (or flag quantity), ``limit`` the range."""

    def __init__(self, message: str, name: str = "", limit: "Limit | None" = None):
        super().__init__(message)
        self.name = name
        self.limit = limit


@dataclass(frozen=True)
class Limit:
    """A numeric range: ``lo``..``hi`` (``lo_open``/``hi_open``: that end excluded), ``None`` allowed if ``optional``.

    ``widget_lo`` is the smallest value a form offers where the range is open at ``lo`` (a number
    input needs an inclusive minimum).
    """

    flag: str
    kind: type  # int or float
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False
    optional: bool = False
    widget_lo: float | None = None
    note: str = ""  # what None or a special value means, for the message

    def describe(self) -> str:
        """``'an integer in 1..300'``, ``'a finite number in (0, 10]'``, ``'..., or none (what none means)'``."""
        if self.kind is int:
            lo = self.lo + 1 if self.lo_open else self.lo
            hi = self.hi - 1 if self.hi_open else self.hi
            text = f"an integer in {int(lo)}..{int(hi)}"
        else:
            text = f"a finite number in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.optional:
            text += ", or none"
        return text + (f" ({self.note})" if self.note else "")

    def contains(self, value) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.kind is int and not isinstance(value, numbers.Integral):
            return False
        v = float(value) if self.kind is float else int(value)
        if self.kind is float and not math.isfinite(v):
            return False
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below

    def parse(self, text: str):
        """A flag's string as a value of this range; raises ``ValueError`` with the range in the message."""
        s = text.strip()
        if self.optional and s.lower() in ("none", ""):
            value = None
        else:
            try:
                value = int(s) if self.kind is int else float(s)
            except ValueError:
                value = _MISSING
        if value is _MISSING or not self.contains(value):
            raise ValueError(f"must be {self.describe()}, got {text!r}")
        return value


_MISSING = object()


def _int(flag, lo, hi, **kw) -> Limit:
    return Limit(flag, int, lo, hi, **kw)


def _float(flag, lo, hi, **kw) -> Limit:
    return Limit(flag, float, lo, hi, **kw)


_LR = _float("--lr", 0, 10, lo_open=True, widget_lo=1e-6)
_STEPS = _int("--steps", 1, 10_000_000)
_SEED = _int("--seed", 0, SEED_MAX)

LIMITS: dict[str, Limit] = {
    # the training budget (PTConfig, AttemptConfig, VIPConfig, MSFConfig, ISTConfig; a nested TrainConfig)
    "steps": _STEPS,
    "lr": _LR,
    "batch_size": _int("--batch-size", 1, 65_536),
    "eval_every": _int("--eval-every", 1, 1_000_000_000),
    "patience": _int("--patience", 1, 1_000_000, optional=True, note="none: never stop early"),
    "max_grad_norm": _float("--max-grad-norm", 0, 1e9, lo_open=True, widget_lo=1e-6),
    "n_tokens": _int("--prompt-len", 1, 4096),
    "seed": _SEED,
    # IPT
    "hidden": _int("--hidden", 1, 65_536),
    "alpha": _float("--alpha", 0, 1e6),
    "init_std": _float("--init-std", 0, 1e3, lo_open=True, widget_lo=1e-6),
    "d_intrinsic": _int("--d", 1, 65_536),
    "seen_data_seed": _SEED,
    # ATTEMPT
    "attn_dim": _int("--attn-dim", 1, 65_536),
    "temperature": _float("--attempt-temperature", 0, 1e6, lo_open=True, optional=True, widget_lo=1e-3,
                          note="none: d x e"),
    "attn_lr_scale": _float("--attempt-attn-lr-scale", 0, 1e6, lo_open=True, widget_lo=1e-6),
    "source_seed": _SEED,
    # VIP
    "VIPConfig.temperature": _float("--vip-temperature", 0, 1e6, lo_open=True, widget_lo=1e-3),
    "ctx_dim": _int("--ctx-dim", 1, 65_536),
    "ctx_layers": _int("--ctx-layers", 1, 64),
    "ctx_heads": _int("--ctx-heads", 1, 64),
    "ctx_ff": _int("--ctx-ff", 1, 65_536),
    "codebook_size": _int("--codebook-size", 1, 65_536),
    "num_samples": _int("--vip-samples", 1, 1024),
    "commitment_weight": _float("--commitment-weight", 0, 1e6),
    "decay": _float("--decay", 0, 1, lo_open=True, hi_open=True, widget_lo=1e-3),
    "dead_code_threshold": _float("--vip-dead-code-threshold", 0, 1e6, note="0: the paper's codebook"),
    # quantities of the CLI and the forms only
    "seeds": _int("--seeds", 1, 1000, note="the number of seeds 0..N-1"),
    "max_seen": _int("--max-seen", 1, 1_000_000),
    "seed_list": replace(_SEED, flag="--seed-list"),
    "k": _int("--k", 1, 100_000),
    "data_seed": replace(_SEED, flag="--data-seed"),
    "dims": _int("--dims", 1, 65_536),
    "checkpoint_every": _int("--checkpoint-every", 0, 1_000_000_000, note="0: never"),
    "curve_every": _int("--curve-every", 1, 1_000_000_000),
    # flags that set a field of a second config: the field's range, their own flag
    "msf_steps": replace(_STEPS, flag="--msf-steps"),
    "ist_steps": replace(_STEPS, flag="--ist-steps"),
    "source_steps": replace(_STEPS, flag="--source-steps"),
    "msf_lr": replace(_LR, flag="--msf-lr"),
    "ist_lr": replace(_LR, flag="--ist-lr"),
    "attempt_lr": replace(_LR, flag="--attempt-lr"),
    "vip_lr": replace(_LR, flag="--vip-lr"),
}
MAX_SEED_LIST = 1000  # values in one --seed-list
MAX_DIMS = 64  # values in one --dims


def limit(name: str) -> Limit:
    """The :class:`Limit` of a field or flag quantity; ``KeyError`` naming the known ones."""
    try:
        return LIMITS[name]
    except KeyError:
        raise KeyError(f"no limit named {name!r}; known: {', '.join(sorted(LIMITS))}") from None


def validate(name: str, value, where: str = ""):
    """``value`` if it is in the range of ``name``, else :class:`LimitError` naming it, the range and the flag."""
    lim = limit(name)
    if not lim.contains(value):
        field = f"{where}.{name.rpartition('.')[2]}" if where else name
        raise LimitError(f"{field} = {value!r}: must be {lim.describe()} (flag {lim.flag})", field, lim)
    return value


def check(config, _where: str | None = None) -> None:
    """Check every field of a config dataclass that has a limit, recursing into nested dataclasses.

    A field is looked up as ``"ClassName.field"`` first, then ``"field"``; fields without a limit
    (strings, booleans, choices) are left to the class's own checks. Call it from ``__post_init__``::

        def __post_init__(self):
            limits.check(self)
    """
    where = type(config).__name__ if _where is None else _where
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            check(value, f"{where}.{f.name}")
            continue
        key = next((k for k in (f"{type(config).__name__}.{f.name}", f.name) if k in LIMITS), None)
        if key is not None:
            validate(key, value, where)


def argtype(name: str):
    """An argparse ``type=`` callable: the flag's string parsed and range-checked, else ``ArgumentTypeError``.

    argparse turns that into one line, ``error: argument --lr: must be a finite number in (0, 10], got 'nan'``.
    """
    import argparse

    lim = limit(name)

    def parse(text: str):
        try:
            return lim.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def list_argtype(name: str, max_values: int):
    """``type=`` for a comma-separated list of values of ``name``'s range (at least one, at most ``max_values``)."""
    import argparse

    lim = limit(name)

    def parse(text: str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"expected comma-separated values, each {lim.describe()}, got {text!r}")
        if len(parts) > max_values:
            raise argparse.ArgumentTypeError(f"at most {max_values} values, got {len(parts)}")
        out = []
        for p in parts:
            try:
                out.append(lim.parse(p))
            except ValueError:
                raise argparse.ArgumentTypeError(f"each value must be {lim.describe()}, got {p!r} in {text!r}") from None
        return out

    parse.__name__ = name
    return parse


def widget_kwargs(name: str, *, at_least: float | None = None, at_most: float | None = None) -> dict:
    """``min_value``/``max_value`` (and ``step`` for integers) for ``st.number_input`` from the range of ``name``.

    An open end becomes the nearest value a form offers (``widget_lo``, or the next integer). A form
    may offer less than the whole range (``at_least``/``at_most``, e.g. 20 seeds), never more: a
    narrowing outside the range is a ``ValueError``. The caller gives ``value`` (and ``format``).

    Example::

        st.number_input("Seeds", value=1, **widget_kwargs("seeds", at_most=20))
    """
    lim = limit(name)
    if lim.kind is int:
        lo = int(lim.lo) + (1 if lim.lo_open else 0)
        hi = int(lim.hi) - (1 if lim.hi_open else 0)
        out = {"min_value": lo, "max_value": hi, "step": 1}
    else:
        lo = lim.widget_lo if lim.lo_open and lim.widget_lo is not None else float(lim.lo)
        hi = float(lim.hi) if not lim.hi_open else math.nextafter(float(lim.hi), -math.inf)
        out = {"min_value": lo, "max_value": hi}
    for key, value in (("min_value", at_least), ("max_value", at_most)):
        if value is not None:
            if not lim.contains(value):
                raise ValueError(f"{name}: a form cannot offer {value}, outside {lim.describe()}")
            out[key] = lim.kind(value)
    if out["min_value"] > out["max_value"]:
        raise ValueError(f"{name}: at_least {out['min_value']} is above at_most {out['max_value']}")
    return out
