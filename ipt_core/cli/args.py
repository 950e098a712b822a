"""The CLI's flags and their translation into configs; the checks at the boundary.

``cli.py`` builds its parser from the ``add_*`` functions here and dispatches; the experiments
never import this module (imports go cli -> cli_args -> experiments/compare -> methods). Every
numeric flag gets its range from :mod:`ipt_core.config.limits` (``type=limits.argtype(...)``), so a value
out of range is one argparse line naming the flag. What needs more than one flag, or the machine, or
the model's config, is :func:`validate`: the device asked for must be present, the prompt must fit in
the model's positions beside the longest input kept, an intrinsic dimension must fit in the prompt.
It raises :class:`ArgError` (flag + message) before any model is loaded.

The way back, for the app's launch forms: :func:`config_of` is the config a command builds (the
methods' defaults, a budget's schedules, some flags), and :func:`config_argv` (``pt_argv``, ``ipt_argv``,
``ist_argv``, ``compare_argv``) the fewest flags that make the CLI build a given config, so a form shows
the config's defaults and queues exactly the config it shows (tests/test_cli_forms.py: the round trip).

Example::

    parser = argparse.ArgumentParser()
    add_common(parser); add_pt_args(parser)
    args = parser.parse_args(["--lr", "0.03", "--device", "cpu"])
    validate(args, "tune")       # ArgError("--device", "...") when absent
    pt_config(args).lr           # 0.03
    pt_argv(pt_config(args))     # ["--lr", "0.03"]
"""
from __future__ import annotations

import argparse
import functools
import inspect
import re

from ipt_core.config import limits
from ipt_core.config.backbone import (
    DEFAULT_BACKBONE,  # torch-free: the app's cost estimate builds this parser
)
from ipt_core.config.budgets import QUICK_IST_STEPS, QUICK_MSF_STEPS, QUICK_PT
from ipt_core.errors import InputError


class ArgError(InputError):
    """A flag whose value the parser accepted but the boundary checks refuse; ``str()`` names the flag."""

    def __init__(self, flag: str, message: str):
        super().__init__(f"argument {flag}: {message}")
        self.flag = flag


def csv_names(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; an empty list is an error (it would silently mean "all")."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {value!r}")
    return names


def add_common(p: argparse.ArgumentParser, *, suite: bool = True) -> None:
    if suite:
        p.add_argument("--suite", default="demo", help="demo, a folder of task folders, a CrossFit folder, a CSV/TSV file, or hf:NAME")
        p.add_argument("--k", type=limits.argtype("k"), default=None, help="resample k examples per label for train and dev")
        p.add_argument("--data-seed", type=limits.argtype("data_seed"), default=0, help="seed of the few-shot resample (with --k)")
    p.add_argument("--backbone", default=DEFAULT_BACKBONE, help="encoder-sim | encoder-mlm:MODEL | seq2seq:MODEL | causal:MODEL")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (must be present)")
    p.add_argument("--cache", default=None, help="result store folder (default $IPT_CACHE or ./cache)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line of stdout")


def add_seeds(p: argparse.ArgumentParser, default: int = 1) -> None:
    p.add_argument("--seeds", type=limits.argtype("seeds"), default=default, help="number of seeds: 0..N-1")


def add_budget(p: argparse.ArgumentParser) -> None:
    from ipt_core.config.budgets import DEFAULT, NAMES

    p.add_argument("--budget", choices=list(NAMES), default=DEFAULT,
                   help="paper: the methods' own schedules; quick: short ones for a CPU (ipt_core/config/budgets.py); "
                        "flags given explicitly win")


def add_pt_args(p: argparse.ArgumentParser) -> None:
    from ipt_core.config.backbone import PROMPT_KINDS
    from ipt_core.config.pt import STANDALONE_INITS, PTConfig

    d = PTConfig()
    add_budget(p)
    p.add_argument("--steps", type=limits.argtype("steps"), default=None, help=f"default: {d.steps} (paper), {QUICK_PT['steps']} (quick)")
    p.add_argument("--lr", type=limits.argtype("lr"), default=d.lr)
    p.add_argument("--prompt-len", type=limits.argtype("n_tokens"), default=d.n_tokens,
                   help="prompt vectors (at most the model's positions minus its longest input)")
    p.add_argument("--prompt-kind", choices=list(PROMPT_KINDS), default=d.kind)
    p.add_argument("--batch-size", type=limits.argtype("batch_size"), default=None, help=f"default: {d.batch_size} (paper), {QUICK_PT['batch_size']} (quick)")
    p.add_argument("--eval-every", type=limits.argtype("eval_every"), default=None, help=f"default: {d.eval_every} (paper), {QUICK_PT['eval_every']} (quick)")
    p.add_argument("--patience", type=limits.argtype("patience"), default=d.patience, help="evaluations without improvement (none: never stop)")
    p.add_argument("--init", choices=list(STANDALONE_INITS), default=d.init)
    p.add_argument("--init-text", default=d.init_text, help="the text of --init text")
    p.add_argument("--max-grad-norm", type=limits.argtype("max_grad_norm"), default=d.max_grad_norm, help="per-run gradient clipping norm")


def _add_ist_flags(p: argparse.ArgumentParser) -> None:
    from ipt_core.config.ipt import IST_COORDS, ISTConfig

    i = ISTConfig()
    p.add_argument("--ist-steps", type=limits.argtype("ist_steps"), default=None, help=f"default: {i.steps} (paper), {QUICK_IST_STEPS} (quick)")
    p.add_argument("--ist-lr", type=limits.argtype("ist_lr"), default=i.lr)
    p.add_argument("--ist-coords", choices=list(IST_COORDS), default=i.coords,
                   help="spread: tune in units of the training tasks' spread from their centroid; raw: z itself from ~0 (the paper)")


def subspace_list(value: str) -> tuple[str, ...]:
    """``--subspaces found,linear``: names from ``SUBSPACES``, ``found`` among them."""
    from ipt_core.config.ipt import SUBSPACES

    names = csv_names(value)
    bad = [n for n in names if n not in SUBSPACES]
    if bad or "found" not in names:
        raise argparse.ArgumentTypeError(f"expected 'found' and any of {', '.join(SUBSPACES[1:])}, comma-separated; got {value!r}")
    return tuple(n for n in SUBSPACES if n in names)


def add_ist_args(p: argparse.ArgumentParser) -> None:
    """The flags of intrinsic tuning alone (``ist``): the budget, IST's steps and learning rate."""
    add_budget(p)
    _add_ist_flags(p)


def add_ipt_args(p: argparse.ArgumentParser) -> None:
    from ipt_core.config.ipt import NORMS, IPTSettings, MSFConfig

    add_pt_args(p)
    m = MSFConfig()
    p.add_argument("--msf-steps", type=limits.argtype("msf_steps"), default=None, help=f"default: {m.steps} (paper), {QUICK_MSF_STEPS} (quick)")
    p.add_argument("--msf-lr", type=limits.argtype("msf_lr"), default=m.lr)
    p.add_argument("--alpha", type=limits.argtype("alpha"), default=m.alpha, help="weight of the reconstruction MSE in MSF")
    p.add_argument("--hidden", type=limits.argtype("hidden"), default=m.hidden, help="hidden width of Proj_b")
    p.add_argument("--norm", choices=list(NORMS), default=m.norm,
                   help="prompt normalisation before the auto-encoder (none: the official code's raw prompts)")
    p.add_argument("--no-msf-task-loss", action="store_true",
                   help="subspace finding by reconstruction alone (the ablation of MSF's task loss)")
    _add_ist_flags(p)
    p.add_argument("--subspaces", type=subspace_list, default=IPTSettings().subspaces,
                   help="where IST tunes: found (the auto-encoder's), linear (top principal directions of the prompts), "
                        "random (an untrained decoder)")
    p.add_argument("--require-prompts", action="store_true",
                   help="use only PT prompts already in the store; a task without one is an error")


def add_compare_parser(sub) -> None:
    """Register ``compare`` on the CLI's subparsers (the flags of ``tune`` for the shared budget)."""
    from ipt_core.config.registry import (
        COMPARE_METHODS,
        DEFAULT_COMPARE_METHODS,
        CompareSettings,
    )
    from ipt_core.config.vip import EVAL_MODES

    s = CompareSettings()
    a, v, i = s.attempt, s.vip, s.ist
    p = sub.add_parser("compare", help="zero-shot, probe, PT, IPT, ATTEMPT and VIP on the same tasks and step budget")
    add_common(p)
    p.add_argument("--tasks", type=csv_names, default=None,
                   help="tasks to compare (default: all); IPT's subspace and ATTEMPT's sources come from the suite's other tasks")
    p.add_argument("--methods", type=_methods(COMPARE_METHODS), default=list(DEFAULT_COMPARE_METHODS), help=f"comma-separated, from {','.join(COMPARE_METHODS)}")
    add_seeds(p)
    add_pt_args(p)
    p.set_defaults(prompt_kind=s.pt.kind)  # shallow: ATTEMPT and VIP are shallow, PT and IPT match them unless told otherwise
    p.add_argument("--d", type=limits.argtype("d_intrinsic"), default=s.d_intrinsic, help="IPT's intrinsic dimension d_I")
    p.add_argument("--msf-steps", type=limits.argtype("msf_steps"), default=None, help="subspace-finding steps (default: --steps)")
    p.add_argument("--ist-lr", type=limits.argtype("ist_lr"), default=i.lr)
    p.add_argument("--attempt-lr", type=limits.argtype("attempt_lr"), default=a.lr)
    p.add_argument("--attempt-temperature", type=limits.argtype("temperature"), default=a.temperature,
                   help="attention temperature (demo dev); none: the paper's d x e")
    p.add_argument("--attempt-paper-temperature", action="store_true", help="the paper's temperature d x e")
    p.add_argument("--attempt-attn-lr-scale", type=limits.argtype("attn_lr_scale"), default=a.attn_lr_scale,
                   help="attention module learning rate / prompt learning rate")
    p.add_argument("--attempt-pool-padding", action="store_true", help="max-pool over padding too (the official code)")
    p.add_argument("--attempt-frozen-layernorm", action="store_true", help="do not train the LayerNorm (the official code)")
    p.add_argument("--vip-lr", type=limits.argtype("vip_lr"), default=v.lr)
    p.add_argument("--codebook-size", type=limits.argtype("codebook_size"), default=v.codebook_size)
    p.add_argument("--vip-samples", type=limits.argtype("num_samples"), default=v.num_samples, help="codes sampled and averaged per vector (m)")
    p.add_argument("--vip-dead-code-threshold", type=limits.argtype("dead_code_threshold"), default=v.dead_code_threshold,
                   help="0: the paper's codebook")
    p.add_argument("--vip-eval", choices=list(EVAL_MODES), default=v.eval_mode,
                   help="sample (the paper's stochastic evaluation) or expected (deterministic)")
    p.add_argument("--require-prompts", action="store_true",
                   help="use only PT prompts already in the store (IPT's subspace tasks, ATTEMPT's sources)")


def _methods(known):
    def methods(value: str) -> list[str]:
        names = csv_names(value)
        unknown = [m for m in names if m not in known]
        if unknown:  # before the model loads: a typo should not cost the load
            raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(map(repr, unknown))}; choose from {', '.join(known)}")
        return list(dict.fromkeys(names))

    return methods


# --------------------------------------------------------------------------------------------------
# parsed arguments -> configs, and back

# A config's field (a dotted path in a settings object) -> the dest of the flag that sets it, in the order a
# built command lists them; "not DEST": a flag that turns the field off. The builders below read these
# tables, and the argv builders (:func:`config_argv`) write them, so a field and its flag are paired once.
PT_FLAGS = {"steps": "steps", "batch_size": "batch_size", "eval_every": "eval_every", "lr": "lr", "n_tokens": "prompt_len",
            "kind": "prompt_kind", "init_text": "init_text", "init": "init", "patience": "patience",
            "max_grad_norm": "max_grad_norm"}
MSF_FLAGS = {"steps": "msf_steps", "lr": "msf_lr", "alpha": "alpha", "hidden": "hidden", "norm": "norm",
             "task_loss": "not no_msf_task_loss"}
IST_FLAGS = {"steps": "ist_steps", "lr": "ist_lr", "coords": "ist_coords"}
IPT_FLAGS = ({f"pt.{k}": v for k, v in PT_FLAGS.items()} | {f"msf.{k}": v for k, v in MSF_FLAGS.items()}
             | {f"ist.{k}": v for k, v in IST_FLAGS.items()} | {"subspaces": "subspaces"})
COMPARE_FLAGS = {f"pt.{k}": v for k, v in PT_FLAGS.items()} | {
    "d_intrinsic": "d", "msf.steps": "msf_steps", "ist.lr": "ist_lr", "attempt.lr": "attempt_lr",
    "attempt.temperature": "attempt_temperature", "attempt.attn_lr_scale": "attempt_attn_lr_scale",
    "attempt.pool_padding": "attempt_pool_padding", "attempt.train_layernorm": "not attempt_frozen_layernorm",
    "vip.lr": "vip_lr", "vip.codebook_size": "codebook_size", "vip.num_samples": "vip_samples",
    "vip.dead_code_threshold": "vip_dead_code_threshold", "vip.eval_mode": "vip_eval"}


def _flag_value(args, dest: str):
    """The value a field takes from ``args``' ``dest`` (``"not DEST"``: the opposite of a store-true flag)."""
    if dest.startswith("not "):
        return not getattr(args, dest[4:], False)
    return getattr(args, dest)


def _fields(args, table: dict[str, str]) -> dict:
    return {field: _flag_value(args, dest) for field, dest in table.items()}


def pt_config(args):
    from ipt_core.config.budgets import apply
    from ipt_core.config.pt import PTConfig

    apply(args, getattr(args, "command", "tune"))  # the flags left out take --budget's values (idempotent)
    return PTConfig(**_fields(args, PT_FLAGS))


def ist_config(args):
    """IST's config of parsed ``ist`` arguments (``--ist-steps``, ``--ist-lr``, ``--budget``)."""
    from ipt_core.config.budgets import apply
    from ipt_core.config.ipt import ISTConfig

    apply(args, getattr(args, "command", "ist"))
    return ISTConfig(**_fields(args, IST_FLAGS))


def ipt_settings(args):
    from ipt_core.config.budgets import apply
    from ipt_core.config.ipt import IPTSettings, MSFConfig

    apply(args, getattr(args, "command", "ipt"))
    return IPTSettings(pt=pt_config(args), msf=MSFConfig(**_fields(args, MSF_FLAGS)), ist=ist_config(args),
                       subspaces=_flag_value(args, IPT_FLAGS["subspaces"]))


def compare_settings(args):
    """The :class:`~ipt_core.config.registry.CompareSettings` of parsed ``compare`` arguments."""
    from ipt_core.config.attempt import AttemptConfig
    from ipt_core.config.budgets import apply
    from ipt_core.config.ipt import ISTConfig
    from ipt_core.config.registry import CompareSettings
    from ipt_core.config.vip import VIPConfig

    apply(args, "compare")  # before pt_config, which would fill them as another command's
    pt = pt_config(args)
    s = CompareSettings(
        pt=pt,
        attempt=AttemptConfig(lr=args.attempt_lr, init=pt.init,
                              temperature=None if args.attempt_paper_temperature else args.attempt_temperature,
                              attn_lr_scale=args.attempt_attn_lr_scale, pool_padding=args.attempt_pool_padding,
                              train_layernorm=not args.attempt_frozen_layernorm),
        vip=VIPConfig(lr=args.vip_lr, init=pt.init, codebook_size=args.codebook_size, num_samples=args.vip_samples,
                      dead_code_threshold=args.vip_dead_code_threshold, eval_mode=args.vip_eval),
        ist=ISTConfig(lr=args.ist_lr),
        d_intrinsic=args.d,
    )
    return s.with_budget(steps=pt.steps, batch_size=pt.batch_size, eval_every=pt.eval_every, patience=pt.patience,
                         n_tokens=pt.n_tokens, max_grad_norm=pt.max_grad_norm, msf_steps=args.msf_steps or pt.steps)


_BUILDERS = {"tune": pt_config, "export": pt_config, "ipt": ipt_settings, "stability": ipt_settings, "ist": ist_config,
             "compare": compare_settings}
_TABLES = {"tune": PT_FLAGS, "export": PT_FLAGS, "ipt": IPT_FLAGS, "stability": IPT_FLAGS, "ist": IST_FLAGS,
           "compare": COMPARE_FLAGS}
CONFIG_COMMANDS = tuple(_BUILDERS)
"""The commands whose flags build a method config (and the config each builds: :func:`config_of`)."""


class _Refuse(argparse.ArgumentParser):
    """A parser that raises ``ValueError`` (the argparse message) instead of printing and exiting."""

    def error(self, message: str):
        raise ValueError(" ".join(message.split()))


@functools.lru_cache(maxsize=None)
def _config_parser(command: str) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """A parser of ``command``'s config flags (made by the same ``add_*`` functions as the CLI's), and its subparser."""
    if command not in _BUILDERS:
        raise ValueError(f"no config is built by command {command!r}; these build one: {', '.join(CONFIG_COMMANDS)}")
    root = _Refuse(prog="python -m ipt_core", add_help=False)
    sub = root.add_subparsers(dest="command", required=True)
    if command == "compare":
        add_compare_parser(sub)
    else:
        add = {"ipt": add_ipt_args, "stability": add_ipt_args, "ist": add_ist_args}.get(command, add_pt_args)
        add(sub.add_parser(command, add_help=False))
    return root, sub.choices[command]


def _budget_flags(budget: str | None) -> list[str]:
    from ipt_core.config.budgets import DEFAULT, NAMES

    if budget is not None and budget not in NAMES:
        raise ValueError(f"budget must be one of {NAMES}, got {budget!r}")
    return [] if budget in (None, DEFAULT) else ["--budget", budget]


def config_of(command: str, budget: str | None = None, **flags):
    """The config ``python -m ipt_core COMMAND [--budget B] [flags]`` builds: the methods' defaults, the
    budget's schedules for the flags left out, and ``flags`` (by dest: ``steps=5``, ``prompt_len=4``).

    A launch form starts from ``config_of(command, budget)`` (its widgets' defaults) and builds the
    config it shows with its widgets' values as ``flags``; :func:`config_argv` is the way back.

    Example::

        config_of("tune").lr                              # 0.01: PTConfig().lr
        config_of("tune", "quick").steps                  # 40: the quick budget's
        config_of("compare", "quick", steps=5).msf.steps  # 45: quick keeps subspace finding's own steps
    """
    parser, _ = _config_parser(command)
    args = parser.parse_args([command] + _budget_flags(budget))
    for dest, value in flags.items():
        if dest == "command" or not hasattr(args, dest):
            raise TypeError(f"{command} has no flag {dest!r}")
        setattr(args, dest, value)
    return _BUILDERS[command](args)


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _differences(a, b, where: str = "") -> list[str]:
    """The dotted paths of the fields where dataclasses ``a`` and ``b`` differ."""
    import dataclasses

    if not (dataclasses.is_dataclass(a) and type(a) is type(b)):
        return [where or "(the whole config)"] if a != b else []
    out = []
    for f in dataclasses.fields(a):
        out += _differences(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}" if where else f.name)
    return out


def _tokens(parser: argparse.ArgumentParser, dest: str, value) -> list[str]:
    """The argv words that give ``dest`` the field value ``value`` (``"not DEST"``: a flag that turns it off)."""
    negate = dest.startswith("not ")
    dest = dest[4:] if negate else dest
    action = next(a for a in parser._actions if a.dest == dest)
    flag = next(o for o in action.option_strings if o.startswith("--"))
    if isinstance(action, argparse._StoreTrueAction):  # present: True (its field: False where negated)
        return [flag] if (not value if negate else value) else []  # absent is the default: nothing to write
    if isinstance(value, bool):
        raise TypeError(f"{flag} takes a value, not {value!r}")
    text = ("none" if value is None else repr(value) if isinstance(value, float)
            else ",".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value))
    if text == "--":  # argparse drops a bare "--" even as "--flag=--"
        raise ValueError(f"argument {flag}: the value '--' cannot be given on a command line")
    return [f"{flag}={text}"] if text.startswith("-") else [flag, text]  # "-x" would read as a flag


def config_argv(command: str, cfg, budget: str | None = None) -> list[str]:
    """The flags with which ``python -m ipt_core COMMAND ...`` builds ``cfg``: each flag whose value the
    defaults (with ``budget``) do not already give, then ``--budget B`` unless it is the default.

    The inverse of :func:`config_of` and of the CLI's builders (``pt_config(parse(argv))`` gives ``cfg``
    back): ``ValueError`` naming the fields when ``command``'s flags cannot express ``cfg`` (a field no
    flag sets, such as VIP's ``ctx_dim``, or a value a flag refuses, such as ``init="prompt"``).

    Example::

        config_argv("tune", PTConfig(steps=60, lr=0.03))        # ["--steps", "60", "--lr", "0.03"]
        config_argv("tune", config_of("tune", "quick"), "quick")  # ["--budget", "quick"]
    """
    parser, sub = _config_parser(command)
    budget_flags, table = _budget_flags(budget), _TABLES[command]
    flags: list[str] = []
    given: set[str] = set()
    while True:  # one flag at a time, in the table's order: a flag may move another field too (compare's --steps
        # moves MSF's), so a field gets its own flag only when the ones before it leave it different
        try:
            got = _BUILDERS[command](parser.parse_args([command] + flags + budget_flags))
        except ValueError as exc:
            raise ValueError(f"{command}: {exc}") from None
        if type(got) is not type(cfg):
            raise TypeError(f"{command} builds a {type(got).__name__}, not a {type(cfg).__name__}")
        if got == cfg:
            return flags + budget_flags
        path = next((p for p in table if p not in given and _get(got, p) != _get(cfg, p)), None)
        if path is None:
            diff = "; ".join(f"{p} = {_get(cfg, p)!r} (its flags give {_get(got, p)!r})" for p in _differences(got, cfg))
            raise ValueError(f"the flags of {command} cannot express {diff}")
        flags += _tokens(sub, table[path], _get(cfg, path))
        given.add(path)


def pt_argv(cfg, budget: str | None = None, command: str = "tune") -> list[str]:
    """The flags of ``tune`` (or ``export``) that build the :class:`~ipt_core.config.pt.PTConfig` ``cfg``."""
    return config_argv(command, cfg, budget)


def ipt_argv(settings, budget: str | None = None, command: str = "ipt") -> list[str]:
    """The flags of ``ipt`` (or ``stability``) that build the :class:`~ipt_core.config.ipt.IPTSettings` ``settings``."""
    return config_argv(command, settings, budget)


def ist_argv(cfg, budget: str | None = None) -> list[str]:
    """The flags of ``ist`` that build the :class:`~ipt_core.config.ipt.ISTConfig` ``cfg``."""
    return config_argv("ist", cfg, budget)


def compare_argv(settings, budget: str | None = None) -> list[str]:
    """The flags of ``compare`` that build the :class:`~ipt_core.config.registry.CompareSettings` ``settings``."""
    return config_argv("compare", settings, budget)


# --------------------------------------------------------------------------------------------------
# checks that need more than one flag: the machine, the model's config


def present_devices() -> list[str]:
    """The devices this process can use: ``cpu``, ``cuda:0..N-1``, ``mps``."""
    import torch

    out = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def check_device(name: str) -> str:
    """``name`` if that device is present here (``auto`` always is), else :class:`ArgError` listing the ones that are."""
    present = present_devices()
    m = re.fullmatch(r"(cpu|cuda|mps)(?::([0-9]{1,4}))?", name)
    if name == "auto" or (m and (name in present or (m.group(2) is None and any(p.startswith(name) for p in present)))):
        return name
    here = ", ".join(["auto"] + present)
    if m is None:
        raise ArgError("--device", f"unknown device {name!r}; the devices here are: {here}")
    raise ArgError("--device", f"{name!r} is not present on this machine; the devices here are: {here}")


@functools.lru_cache(maxsize=32)
def model_geometry(spec: str) -> dict | None:
    """``max_positions``, ``hidden``, ``layers`` of a backbone spec from its config file (no weights); None if unreadable.

    Unreadable (a hub name not in the local cache, a folder without a config): the loader says why
    when the command loads the model, still before any training. A malformed spec is an :class:`ArgError`.
    """
    from ipt_core.backbones import packaged_model_path
    from ipt_core.config.backbone import BackboneError, parse_spec

    try:
        _kind, ref = parse_spec(spec)
    except BackboneError as exc:
        raise ArgError("--backbone", str(exc)) from None
    try:
        import transformers

        path = str(packaged_model_path()) if ref is None else ref
        cfg = transformers.AutoConfig.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    positions = getattr(cfg, "max_position_embeddings", None)
    if isinstance(positions, int) and "roberta" in str(getattr(cfg, "model_type", "")):
        positions -= (getattr(cfg, "pad_token_id", None) or 0) + 1  # RoBERTa's positions start after the padding id
    return {"max_positions": positions if isinstance(positions, int) and positions > 0 else None,
            "hidden": getattr(cfg, "hidden_size", None), "layers": getattr(cfg, "num_hidden_layers", None)}


def max_input_length() -> int:
    """The longest input a backbone keeps (its tokeniser truncates to this): ``load_backbone``'s ``max_length``."""
    from ipt_core.backbones import load_backbone

    return int(inspect.signature(load_backbone).parameters["max_length"].default)


@functools.lru_cache(maxsize=8)
def _tokenizer(spec: str):
    from ipt_core.backbones import packaged_model_path
    from ipt_core.config.backbone import parse_spec

    ref = parse_spec(spec)[1]
    try:
        import transformers

        return transformers.AutoTokenizer.from_pretrained(str(packaged_model_path()) if ref is None else ref,
                                                          local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def longest_input(spec: str, tasks) -> int | None:
    """Positions the longest input of ``tasks`` takes, as the backbone tokenises it (truncated to the longest
    kept), plus the longest label name for a causal model (its labels follow the input); None without a tokeniser."""
    from ipt_core.config.backbone import parse_spec

    kind, tok = parse_spec(spec)[0], _tokenizer(spec)
    if tok is None:
        return None
    top = max_input_length()
    exs = [e for t in tasks for split in (t.train, t.dev, t.test) for e in split]
    if not exs:
        return 0
    if kind == "causal":
        texts = [(e.text if e.text_pair is None else f"{e.text}\n{e.text_pair}") + "\n" for e in exs]
        longest = max(len(ids) for ids in tok(texts, truncation=True, max_length=top)["input_ids"])
        labels = [" " + n for t in tasks for n in t.labels]
        return longest + max(len(ids) for ids in tok(labels, add_special_tokens=False)["input_ids"])
    longest = 0
    for pair in (False, True):
        sel = [e for e in exs if (e.text_pair is not None) == pair]
        if sel:
            enc = tok([e.text for e in sel], [e.text_pair for e in sel] if pair else None, truncation=True, max_length=top)
            longest = max(longest, max(len(ids) for ids in enc["input_ids"]))
    return min(longest + (1 if kind == "encoder-mlm" else 0), top)  # MLM: the [MASK] after the input


@functools.lru_cache(maxsize=32)
def _longest_in_suite(spec: str, suite_spec: str, k: int | None, data_seed: int | None, names: tuple[str, ...]) -> int | None:
    from ipt_core.experiments.context import load_and_resample

    suite = load_and_resample(suite_spec, k, data_seed if k is not None else None)
    return longest_input(spec, [suite.task(n) for n in names] if names else list(suite.tasks))


def _longest_selected(args, command: str) -> int | None:
    """The longest input of the tasks the command uses (``--tasks`` of tune/probe, ``--task`` of export, else all)."""
    names = args.tasks if command in ("tune", "probe") and getattr(args, "tasks", None) else (
        [args.task] if command == "export" else [])
    # not every command resamples its suite (transfer has no --k/--data-seed)
    return _longest_in_suite(args.backbone, args.suite, getattr(args, "k", None), getattr(args, "data_seed", None),
                             tuple(names))


def _check_against_model(args, command: str) -> None:
    if not hasattr(args, "backbone"):
        return
    geo = model_geometry(args.backbone)
    if geo is None:
        return
    positions = geo["max_positions"]
    if hasattr(args, "prompt_len") and positions is not None and args.prompt_len + max_input_length() > positions:
        # the prompt might not fit beside the longest input any suite could have: measure this suite's
        longest = _longest_selected(args, command)
        if longest is not None and args.prompt_len + longest > positions:
            raise ArgError("--prompt-len", f"must be an integer in 1..{max(positions - longest, 0)} for {args.backbone}: "
                                           f"{positions} positions minus the longest input kept ({longest} tokens), "
                                           f"got {args.prompt_len}")
    dims = {"ipt": ("--dims", getattr(args, "dims", None)), "stability": ("--d", [getattr(args, "d", 0)]),
            "compare": ("--d", [getattr(args, "d", 0)] if "ipt" in getattr(args, "methods", []) else None)}.get(command)
    if dims and dims[1] and geo["hidden"] and geo["layers"] and hasattr(args, "prompt_len"):
        size = args.prompt_len * geo["hidden"] * (geo["layers"] if args.prompt_kind == "deep" else 1)
        if max(dims[1]) > size:
            raise ArgError(dims[0], f"an intrinsic dimension must be in 1..{size} (the flattened {args.prompt_kind} prompt: "
                                    f"--prompt-len x d{' x layers' if args.prompt_kind == 'deep' else ''}), got {max(dims[1])}")


def check_store_root(value: str | None) -> None:
    """The result store folder (``--cache``, else ``$IPT_CACHE``, else ``./cache``) must be a folder or
    creatable as one: :class:`ArgError` when it, or the nearest existing folder above it, is a file.

    Checked at parse time, so ``--cache /dev/null`` is one line before any model loads rather than a
    ``NotADirectoryError`` after it.
    """
    import os
    from pathlib import Path

    from ipt_core.store import default_root

    flag = "--cache" if value is not None else ("$IPT_CACHE" if os.environ.get("IPT_CACHE") else "(default store)")
    try:
        root = Path(value).expanduser() if value is not None else default_root()
    except (RuntimeError, ValueError) as exc:  # "~nosuchuser", a NUL byte
        raise ArgError(flag, f"not a usable folder name {value!r} ({exc})") from None
    if not str(root).strip():
        raise ArgError(flag, "the result store folder is empty")
    p = root
    while True:
        try:
            exists = p.exists()
        except (OSError, ValueError) as exc:
            raise ArgError(flag, f"cannot use {root} as the result store ({exc})") from None
        if exists:
            break
        if p.parent == p:
            return
        p = p.parent
    if not p.is_dir():
        where = "is a file" if p == root else f"cannot be created: {p} is a file"
        raise ArgError(flag, f"the result store {root} {where}, not a folder; give a folder (it is created if absent)")


def validate(args, command: str) -> None:
    """The boundary checks after parsing: configs build, device present, sizes fit the model. Raises :class:`ArgError`."""
    if hasattr(args, "cache"):
        check_store_root(args.cache)
    if getattr(args, "init", None) == "text" and not (args.init_text or "").strip():
        raise ArgError("--init-text", "--init text needs the text to start from: --init-text TEXT")
    if hasattr(args, "device"):
        check_device(args.device)
    build = _BUILDERS.get(command)  # other commands (cli/analysis.py's) build their own configs
    if build is not None:
        try:
            build(args)
        except limits.LimitError as exc:
            raise ArgError(exc.limit.flag if exc.limit else "?", str(exc)) from None
        except ValueError as exc:  # a combination the config refuses (e.g. VIP's ctx_dim and heads)
            raise ArgError("(combination)", str(exc)) from None
    _check_against_model(args, command)
