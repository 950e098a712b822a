"""Fuzzing the CLI's boundary: argument vectors for every subcommand, drawn from the parser's own flags
(valid and invalid values, missing and repeated flags, huge and negative numbers, NaN/inf, unicode,
empty strings, unknown flags), run through ``cli.parse`` in-process (parsing plus every boundary check,
no model loading). Nothing may escape but ``SystemExit(2)`` with one line on stderr, or
``SystemExit(0)`` for ``--help``; what parses must give configs inside the limits.

Volume: ``IPT_FUZZ_EXAMPLES`` (default 300, CI). The dedicated run of bench/FAULTS.md::

    IPT_FUZZ_EXAMPLES=10000 python -m pytest -q tests/test_cli_fuzz.py --hypothesis-show-statistics
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from ipt_core.cli import args as cli_args
from ipt_core.cli import main as cli
from ipt_core.config.limits import LIMITS

FUZZ_SEED = int(os.environ.get("IPT_FUZZ_SEED", "0"))  # one per run, printed by conftest.py

N_EXAMPLES = int(os.environ.get("IPT_FUZZ_EXAMPLES", "300"))
SETTINGS = settings(max_examples=N_EXAMPLES, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])

PARSER = cli.build_parser()
SUBPARSERS = dict(next(a for a in PARSER._actions if isinstance(a, argparse._SubParsersAction)).choices)
COMMANDS = sorted(SUBPARSERS)

NASTY_NUMBERS = ["nan", "NaN", "inf", "-inf", "+inf", "Infinity", "1e400", "-1e400", "1e-400", "0", "-0", "-1", "+1",
                 "99999999999999999999999999", "-99999999999999999999", "2147483648", "4294967296", "1e3", "1.5", "0x10",
                 "1_000", "٣", "１２", " 7 ", "7\n", "", " ", "-", "--", "None", "none", "null", "true", "3,4", ",",
                 "1,,2", "1,-1", "0,0,0", "1," * 70 + "1"]
UNICODE = ["é", "ü:ß", "中文", "🙂", "\u200b", "\x00", "a\x00b", "caf\udce9", "\u202e", "x" * 300, "-x", "--lr", "=",
           "../../..", "~", "$HOME", "'", '"', "\\", "\t", "\n"]
# suite and backbone values that stay away from real folders (a fuzzer must not scan /) and from the network
SUITES = ["demo", "nope", "no/such/folder", "", " ", "démo", "demo,demo", "x.csv", "missing.tsv"]
BACKBONES = ["encoder-sim", "encoder-sim:", "causal", "causal:", "seq2seq:", "encoder-mlm:/no/such", "causal:/no/such",
             "x:y", "", ":", "encoder-sim:/no/such/model", "ENCODER-SIM", "encoder-sim:é"]
DEVICES = ["auto", "cpu", "cuda", "cuda:0", "cuda:5", "cuda:-1", "cuda:", "mps", "mps:0", "gpu", "", "CPU", "cpu:0",
           "cuda:99999", "tpu", "xla"]


def _option_actions(sub: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in sub._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def _valid_values(action: argparse.Action) -> st.SearchStrategy[str]:
    """Strings the flag should accept (mostly): its choices, numbers inside its range, plausible names."""
    dest = action.dest
    key = getattr(action.type, "__name__", None)
    if action.choices:
        return st.sampled_from([str(c) for c in action.choices])
    if key in LIMITS:
        lim = LIMITS[key]
        if lim.kind is int:
            lo, hi = int(lim.lo) + lim.lo_open, int(lim.hi) - lim.hi_open
            one = st.integers(lo, hi) | st.sampled_from([lo, hi, min(lo + 1, hi)])
            if key in ("seed_list", "dims"):
                return st.lists(one, min_size=1, max_size=4).map(lambda v: ",".join(map(str, v)))
            return one.map(str)
        return st.floats(lim.lo, lim.hi, exclude_min=lim.lo_open, exclude_max=lim.hi_open, allow_nan=False).map(repr)
    if dest == "suite":
        return st.sampled_from(SUITES)
    if dest == "backbone":
        return st.sampled_from(BACKBONES)
    if dest == "device":
        return st.sampled_from(DEVICES)
    if dest in ("tasks", "train_tasks", "test_tasks", "task"):
        return st.lists(st.sampled_from(["sms_spam", "movie_sentiment", "news_topic", "nope", "é"]), min_size=1,
                        max_size=3).map(",".join)
    if dest == "methods":
        return st.lists(st.sampled_from(["zero-shot", "probe", "pt", "ipt", "attempt", "attempt-mt", "vip", "lora"]),
                        min_size=1, max_size=4).map(",".join)
    return st.text(max_size=12)  # --cache, --out, --decoder, --init-text: free text


def _not_a_path(v: str) -> bool:
    return not any(c in v for c in "/.~$\\") and not v.startswith("hf:")


SAFE_STRINGS = [v for v in NASTY_NUMBERS + UNICODE if _not_a_path(v)]


def _values(action: argparse.Action) -> st.SearchStrategy[str]:
    if action.dest in ("suite", "backbone"):  # never a real folder (the check may read the suite) nor the hub
        return st.one_of(_valid_values(action), st.sampled_from(SAFE_STRINGS), st.text(max_size=8).filter(_not_a_path))
    valid = _valid_values(action)
    return st.one_of(valid, valid, valid, valid, valid, valid, st.sampled_from(NASTY_NUMBERS),
                     st.sampled_from(UNICODE), st.text(max_size=8),
                     st.integers(-(10**30), 10**30).map(str),
                     st.floats(allow_nan=True, allow_infinity=True).map(repr))


@st.composite
def argv_vectors(draw) -> list[str]:
    first = draw(st.sampled_from(COMMANDS * 20 + ["", "train", "--help", "-h", "--json", "TUNE", "tünе"]))
    argv = [first] if first else []
    sub = SUBPARSERS.get(first)
    if sub is None:
        return argv + draw(st.lists(st.sampled_from(["--suite", "demo", "--lr", "x"]), max_size=3))
    actions = _option_actions(sub)
    if not actions:  # a command without options (e.g. `app`, which passes the rest on to streamlit)
        return argv + draw(st.lists(st.sampled_from(UNICODE + NASTY_NUMBERS), max_size=2))
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.sampled_from(["flag"] * 40 + ["missing value", "unknown", "positional", "equals"] * 2 + ["help"]))
        action = draw(st.sampled_from(actions))
        flag = draw(st.sampled_from(action.option_strings))
        takes_value = action.nargs != 0
        if kind == "flag":
            argv += [flag] + ([draw(_values(action))] if takes_value else [])
        elif kind == "missing value":
            argv.append(flag)
        elif kind == "unknown":
            argv.append(draw(st.sampled_from(["--nope", "-x", "--l", "--s", "--seed-lis", "--lŕ", "---lr", "--"])
                             | st.text(max_size=6).map(lambda t: "--" + t)))
        elif kind == "positional":
            argv.append(draw(st.sampled_from(UNICODE + NASTY_NUMBERS)))
        elif kind == "equals" and takes_value:
            argv.append(f"{flag}={draw(_values(action))}")
        else:
            argv.append(draw(st.sampled_from(["--help", "-h"])))
    return argv


@pytest.mark.slow  # 300 vectors: about 40 s on a busy 2-core machine
@seed(FUZZ_SEED)
@SETTINGS
@given(argv=argv_vectors())
def test_no_argument_vector_escapes_the_boundary(argv, monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("parse loaded a model")

    monkeypatch.setattr("ipt_core.experiments.context.load_backbone", no_model)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            args = cli.parse(argv)
            code = None
        except SystemExit as exc:
            code = exc.code
    text = err.getvalue()
    assert "Traceback" not in text
    if code is None:
        event(f"parsed {args.command}")
        _check_parsed(args)
        return
    event(f"exit {code}")
    if code == 0:
        assert "usage:" in out.getvalue()
        return
    assert code == 2, (argv, code, text)
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "error: " in lines[0], (argv, text)


def _check_parsed(args) -> None:
    """What parsed is inside the limits: its configs build, its device is present, its seeds are seeds."""
    for dest, key in (("seeds", "seeds"), ("k", "k"), ("data_seed", "data_seed"), ("d", "d_intrinsic"),
                      ("checkpoint_every", "checkpoint_every"), ("curve_every", "curve_every"), ("seed", "seed")):
        if hasattr(args, dest) and getattr(args, dest) is not None:
            assert LIMITS[key].contains(getattr(args, dest)), (dest, getattr(args, dest))
    for dest, key in (("seed_list", "seed_list"), ("dims", "dims")):
        for v in getattr(args, dest, None) or []:
            assert LIMITS[key].contains(v)
    if hasattr(args, "device"):
        assert cli_args.check_device(args.device) == args.device
    if args.command in ("ipt", "stability"):
        cli_args.ipt_settings(args)
    elif args.command == "compare":
        cli_args.compare_settings(args)
    elif args.command in ("tune", "export"):
        cli_args.pt_config(args)


@pytest.mark.parametrize("argv", [["transfer", "--targets", "x", "--steps", "0"], ["tune", "--device", "cuda"], ["tune", "--lr", "nan"], ["ipt", "--dims", ""],
                                  ["compare", "--methods", ","], ["stability"], []])
def test_known_bad_vectors_exit_2(argv, capsys, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(SystemExit) as exc:
        cli.parse(argv)
    assert exc.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()) == 1
