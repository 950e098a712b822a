"""The CLI's flags and their translation into configs; the checks at the boundary.

``cli.py`` builds its parser from the ``add_*`` functions here and dispatches; the experiments
never import this module (imports go cli -> cli_args -> experiments/compare -> methods). Every
numeric flag gets its range from :mod:`ipt_core.config.limits` (``type=limits.argtype(...)``), so a value
out of range is one argparse line naming the flag. What needs more than one flag, or the machine, or
the model's config, is :func:`validate`: the device asked for must be present, the prompt must fit in
the model's positions beside the longest input kept, an intrinsic dimension must fit in the prompt.
It raises :class:`ArgError` (flag + message) before any model is loaded.

Example::

    parser = argparse.ArgumentParser()
    add_common(parser); add_pt_args(parser)
    args = parser.parse_args(["--lr", "0.03", "--device", "cpu"])
    validate(args, "tune")       # ArgError("--device", "...") when absent
    pt_config(args).lr           # 0.03
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
    from ipt_core.config.budgets import NAMES

    p.add_argument("--budget", choices=list(NAMES), default="paper",
                   help="paper: the methods' own schedules; quick: short ones for a CPU (ipt_core/config/budgets.py); "
                        "flags given explicitly win")


def add_pt_args(p: argparse.ArgumentParser) -> None:
    from ipt_core.config.pt import PTConfig

    d = PTConfig()
    add_budget(p)
    p.add_argument("--steps", type=limits.argtype("steps"), default=None, help=f"default: {d.steps} (paper), {QUICK_PT['steps']} (quick)")
    p.add_argument("--lr", type=limits.argtype("lr"), default=d.lr)
    p.add_argument("--prompt-len", type=limits.argtype("n_tokens"), default=d.n_tokens,
                   help="prompt vectors (at most the model's positions minus its longest input)")
    p.add_argument("--prompt-kind", choices=["shallow", "deep"], default=d.kind)
    p.add_argument("--batch-size", type=limits.argtype("batch_size"), default=None, help=f"default: {d.batch_size} (paper), {QUICK_PT['batch_size']} (quick)")
    p.add_argument("--eval-every", type=limits.argtype("eval_every"), default=None, help=f"default: {d.eval_every} (paper), {QUICK_PT['eval_every']} (quick)")
    p.add_argument("--patience", type=limits.argtype("patience"), default=d.patience, help="evaluations without improvement (none: never stop)")
    p.add_argument("--init", choices=["random", "vocab", "text"], default=d.init)
    p.add_argument("--init-text", default=None, help="the text of --init text")
    p.add_argument("--max-grad-norm", type=limits.argtype("max_grad_norm"), default=d.max_grad_norm, help="per-run gradient clipping norm")


def add_ipt_args(p: argparse.ArgumentParser) -> None:
    from ipt_core.config.ipt import ISTConfig, MSFConfig

    add_pt_args(p)
    m, i = MSFConfig(), ISTConfig()
    p.add_argument("--msf-steps", type=limits.argtype("msf_steps"), default=None, help=f"default: {m.steps} (paper), {QUICK_MSF_STEPS} (quick)")
    p.add_argument("--msf-lr", type=limits.argtype("msf_lr"), default=m.lr)
    p.add_argument("--alpha", type=limits.argtype("alpha"), default=m.alpha, help="weight of the reconstruction MSE in MSF")
    p.add_argument("--hidden", type=limits.argtype("hidden"), default=m.hidden, help="hidden width of Proj_b")
    p.add_argument("--norm", choices=["layer", "global", "none"], default=m.norm,
                   help="prompt normalisation before the auto-encoder (none: the official code's raw prompts)")
    p.add_argument("--no-msf-task-loss", action="store_true",
                   help="subspace finding by reconstruction alone (the ablation of MSF's task loss)")
    p.add_argument("--ist-steps", type=limits.argtype("ist_steps"), default=None, help=f"default: {i.steps} (paper), {QUICK_IST_STEPS} (quick)")
    p.add_argument("--ist-lr", type=limits.argtype("ist_lr"), default=i.lr)
    p.add_argument("--no-random-control", action="store_true")
    p.add_argument("--require-prompts", action="store_true",
                   help="use only PT prompts already in the store; a task without one is an error")


def add_compare_parser(sub) -> None:
    """Register ``compare`` on the CLI's subparsers (the flags of ``tune`` for the shared budget)."""
    from ipt_core.config.attempt import AttemptConfig
    from ipt_core.config.ipt import ISTConfig
    from ipt_core.config.registry import (
        COMPARE_METHODS,
        DEFAULT_COMPARE_METHODS,
        CompareSettings,
    )
    from ipt_core.config.vip import EVAL_MODES, VIPConfig

    a, v, i = AttemptConfig(), VIPConfig(), ISTConfig()
    p = sub.add_parser("compare", help="zero-shot, probe, PT, IPT, ATTEMPT and VIP on the same tasks and step budget")
    add_common(p)
    p.add_argument("--tasks", type=csv_names, default=None,
                   help="tasks to compare (default: all); IPT's subspace and ATTEMPT's sources come from the suite's other tasks")
    p.add_argument("--methods", type=_methods(COMPARE_METHODS), default=list(DEFAULT_COMPARE_METHODS), help=f"comma-separated, from {','.join(COMPARE_METHODS)}")
    add_seeds(p)
    add_pt_args(p)
    p.set_defaults(prompt_kind="shallow")  # ATTEMPT and VIP are shallow: PT and IPT match them unless told otherwise
    p.add_argument("--d", type=limits.argtype("d_intrinsic"), default=CompareSettings().d_intrinsic, help="IPT's intrinsic dimension d_I")
    p.add_argument("--msf-steps", type=limits.argtype("msf_steps"), default=None, help="subspace-finding steps (default: --steps)")
    p.add_argument("--ist-lr", type=limits.argtype("ist_lr"), default=i.lr)
    p.add_argument("--attempt-lr", type=limits.argtype("attempt_lr"), default=a.lr)
    p.add_argument("--attempt-temperature", type=limits.argtype("temperature"), default=a.temperature, help="attention temperature (demo dev)")
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
# parsed arguments -> configs


def pt_config(args):
    from ipt_core.config.budgets import apply
    from ipt_core.config.pt import PTConfig

    apply(args, getattr(args, "command", "tune"))  # the flags left out take --budget's values (idempotent)
    return PTConfig(
        n_tokens=args.prompt_len, kind=args.prompt_kind, lr=args.lr, steps=args.steps, batch_size=args.batch_size,
        eval_every=args.eval_every, patience=args.patience, init=args.init, init_text=args.init_text,
        max_grad_norm=args.max_grad_norm,
    )


def ipt_settings(args):
    from ipt_core.config.budgets import apply
    from ipt_core.config.ipt import IPTSettings, ISTConfig, MSFConfig

    apply(args, getattr(args, "command", "ipt"))
    return IPTSettings(
        pt=pt_config(args),
        msf=MSFConfig(hidden=args.hidden, alpha=args.alpha, lr=args.msf_lr, steps=args.msf_steps, norm=args.norm,
                      task_loss=not getattr(args, "no_msf_task_loss", False)),
        ist=ISTConfig(lr=args.ist_lr, steps=args.ist_steps),
        random_control=not args.no_random_control,
    )


def compare_settings(args):
    """The :class:`~ipt_core.experiments.compare.CompareSettings` of parsed ``compare`` arguments."""
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
    builders = {"ipt": ipt_settings, "stability": ipt_settings, "compare": compare_settings}
    builders.update(tune=pt_config, export=pt_config)  # other commands (analysis_cli's) build their own configs
    build = builders.get(command)
    if build is not None:
        try:
            build(args)
        except limits.LimitError as exc:
            raise ArgError(exc.limit.flag if exc.limit else "?", str(exc)) from None
        except ValueError as exc:  # a combination the config refuses (e.g. VIP's ctx_dim and heads)
            raise ArgError("(combination)", str(exc)) from None
    _check_against_model(args, command)
