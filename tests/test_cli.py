"""The CLI's boundary: every numeric flag has a range from ``ipt_core.config.limits``; a bad flag, an absent
device, a prompt that does not fit the model, an out-of-memory error are one line and exit 2, before any
model is loaded (OOM: after, with nothing of the bank stored); the configs refuse the same values when
the core is called directly."""
from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from ipt_core.cli import args as cli_args
from ipt_core.cli import main as cli
from ipt_core.config import limits
from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.ipt import ISTConfig, MSFConfig
from ipt_core.config.limits import LIMITS, LimitError
from ipt_core.config.pt import PTConfig
from ipt_core.config.vip import VIPConfig

ROOT = Path(__file__).resolve().parents[1]
NO_CUDA = not torch.cuda.is_available()

# the issue's examples: argv, the flag the one line must name
ISSUE_EXAMPLES = [
    pytest.param(["tune", "--device", "cuda"], "--device", marks=pytest.mark.skipif(not NO_CUDA, reason="CUDA is present")),
    pytest.param(["tune", "--device", "cuda:5"], "--device",
                 marks=pytest.mark.skipif(torch.cuda.device_count() > 5, reason="cuda:5 is present")),
    pytest.param(["tune", "--lr", "nan"], "--lr"),
    pytest.param(["tune", "--lr", "inf"], "--lr"),
    pytest.param(["tune", "--prompt-len", "100000"], "--prompt-len"),
    pytest.param(["tune", "--seeds", "-1"], "--seeds"),
]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _run_parse(argv, capsys):
    """``cli.parse(argv)``: (exit code or None, stderr)."""
    try:
        cli.parse(argv)
        code = None
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# ----------------------------------------------------------------------------- the issue's examples


@pytest.mark.slow  # six real processes, each importing torch
def test_issue_examples_exit_2_with_one_line_naming_the_flag():
    """Each example as a user types it: a real process, exit 2, one stderr line naming the flag, no traceback."""
    params = [p.values for p in ISSUE_EXAMPLES if not any(m.args[0] for m in p.marks)]
    procs = [(argv, flag, subprocess.Popen([sys.executable, "-m", "ipt_core", *argv], cwd=ROOT, text=True,
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)) for argv, flag in params]
    for argv, flag, proc in procs:
        out, err = proc.communicate(timeout=300)
        lines = [l for l in err.splitlines() if l.strip()]
        assert proc.returncode == 2, (argv, proc.returncode, err)
        assert "Traceback" not in err, err
        assert len(lines) == 1 and f"argument {flag}:" in lines[0], (argv, err)
        assert out == ""


@pytest.mark.parametrize("argv,flag", ISSUE_EXAMPLES)
def test_issue_examples_stop_before_any_model_loads(argv, flag, monkeypatch, capsys):
    def no_model(*a, **k):
        raise AssertionError("a model was loaded for a bad argument")

    monkeypatch.setattr("ipt_core.experiments.context.load_backbone", no_model)
    monkeypatch.setattr("ipt_core.backbones.load_backbone", no_model)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"argument {flag}:" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv,flag,says", [
    (["tune", "--seeds", "0"], "--seeds", "1..1000"),
    (["tune", "--seed-list", "3,-7"], "--seed-list", "0..2147483647"),
    (["tune", "--seed-list", ","], "--seed-list", "comma-separated"),
    (["tune", "--tasks", ""], "--tasks", "comma-separated names"),
    (["tune", "--steps", "1e3"], "--steps", "an integer"),
    (["tune", "--batch-size", "99999999999999999999"], "--batch-size", "1..65536"),
    (["tune", "--patience", "0"], "--patience", "or none"),
    (["tune", "--max-grad-norm", "-inf"], "--max-grad-norm", "expected one argument"),
    (["tune", "--eval-every", "٠"], "--eval-every", "1..1000000000"),  # an Arabic-Indic zero is int 0
    (["tune", "--checkpoint-every", "-1"], "--checkpoint-every", "0: never"),
    (["tune", "--k", "0"], "--k", "1..100000"),
    (["tune", "--data-seed", "nan"], "--data-seed", "an integer"),
    (["tune", "--init", "text"], "--init-text", "--init-text TEXT"),
    (["ipt", "--dims", "4,0"], "--dims", "1..65536"),
    (["ipt", "--alpha", "-0.5"], "--alpha", "[0, 1e+06]"),
    (["ipt", "--hidden", "0"], "--hidden", "1..65536"),
    (["ipt", "--msf-lr", "0"], "--msf-lr", "(0, 10]"),
    (["ipt", "--ist-steps", "0"], "--ist-steps", "1..10000000"),
    (["stability", "--tasks", "sms_spam", "--curve-every", "0"], "--curve-every", "1..1000000000"),
    (["ist", "--tasks", "sms_spam", "--d", "0"], "--d", "1..65536"),
    (["export", "--task", "t", "--out", "o", "--seed", "-2"], "--seed", "0..2147483647"),
    (["compare", "--attempt-temperature", "0"], "--attempt-temperature", "or none"),
    (["compare", "--vip-samples", "0"], "--vip-samples", "1..1024"),
    (["compare", "--codebook-size", "1e9"], "--codebook-size", "an integer"),
    (["compare", "--attempt-attn-lr-scale", "nan"], "--attempt-attn-lr-scale", "finite"),
    (["compare", "--methods", "pt,lora"], "--methods", "unknown method"),
    (["compare", "--methods", ""], "--methods", "comma-separated"),
    (["compare", "--vip-lr", "11"], "--vip-lr", "(0, 10]"),
    (["tune", "--device", "gpu"], "--device", "the devices here are: auto, cpu"),
    (["tune", "--device", ""], "--device", "unknown device"),
    (["probe", "--device", "cúda"], "--device", "unknown device"),
])
def test_bad_flags_are_one_line_naming_the_flag_and_range(argv, flag, says, capsys):
    code, err = _run_parse(argv, capsys)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"argument {flag}" in lines[0] and says in lines[0], err
    assert "Traceback" not in err


def test_good_flags_parse_and_give_the_configs(capsys):
    args = cli.parse(["compare", "--tasks", "sms_spam", "--seeds", "2", "--steps", "5", "--lr", "0.05",
                      "--attempt-temperature", "none", "--patience", "none", "--device", "cpu"])
    s = cli_args.compare_settings(args)
    assert (s.pt.steps, s.vip.steps, s.msf.steps, s.pt.lr, s.attempt.temperature, s.pt.patience) == (5, 5, 5, 0.05, None, None)
    args = cli.parse(["tune", "--seed-list", "3,7", "--patience", "4", "--checkpoint-every", "0"])
    assert args.seed_list == [3, 7] and args.patience == 4 and args.checkpoint_every == 0
    assert cli.parse(["ipt", "--dims", "1,4"]).dims == [1, 4]


# ------------------------------------------------------------------------------ one source of ranges


def test_every_numeric_flag_has_a_range_from_limits():
    """No flag of any subcommand is a bare int/float; each typed flag's limit names that very flag."""
    checked = 0
    for name, sub in _subparsers(cli.build_parser()).items():
        for action in sub._actions:
            assert action.type not in (int, float), f"{name} {action.option_strings}: no range"
            key = getattr(action.type, "__name__", None)
            if key in LIMITS:
                checked += 1
                assert LIMITS[key].flag in action.option_strings, (name, action.option_strings, key)
                if action.default is not None and not isinstance(action.default, list):
                    assert LIMITS[key].contains(action.default), (name, action.option_strings, action.default)
    assert checked >= 60


@pytest.mark.parametrize("name", sorted(LIMITS))
def test_each_limit_accepts_its_ends_and_refuses_outside(name):
    lim = LIMITS[name]
    kw = limits.widget_kwargs(name)
    assert lim.contains(kw["min_value"]) and lim.contains(kw["max_value"])
    for bad in (float("nan"), float("inf"), -float("inf"), True, "1"):
        assert not lim.contains(bad)
    assert lim.contains(None) == lim.optional
    if lim.kind is int:
        assert not lim.contains(kw["min_value"] - 1) and not lim.contains(kw["max_value"] + 1)
        assert not lim.contains(kw["min_value"] + 0.5)
        assert lim.parse(str(kw["max_value"])) == kw["max_value"]
    else:
        assert lim.contains(lim.lo) != lim.lo_open and lim.contains(lim.hi) != lim.hi_open
        assert not lim.contains(math.nextafter(lim.lo, -math.inf)) and not lim.contains(math.nextafter(lim.hi, math.inf))
    with pytest.raises(LimitError, match=re.escape(f"must be {lim.describe()} (flag {lim.flag})")):
        limits.validate(name, float("nan"))


@pytest.mark.parametrize("cls,field,bad", [
    (PTConfig, "lr", float("nan")), (PTConfig, "n_tokens", 0), (PTConfig, "steps", 2.5), (PTConfig, "patience", 0),
    (MSFConfig, "alpha", -1.0), (MSFConfig, "hidden", 0), (ISTConfig, "lr", float("inf")), (ISTConfig, "init_std", 0.0),
    (AttemptConfig, "temperature", 0.0), (AttemptConfig, "attn_lr_scale", float("nan")),
    (VIPConfig, "temperature", None), (VIPConfig, "decay", 1.0), (VIPConfig, "num_samples", 0),
])
def test_configs_refuse_the_same_values_when_called_directly(cls, field, bad):
    with pytest.raises(LimitError) as err:
        cls(**{field: bad})
    assert isinstance(err.value, ValueError) and str(err.value).startswith(f"{cls.__name__}.{field} = ")
    assert err.value.limit is not None and err.value.limit.describe() in str(err.value)


def test_check_recurses_into_nested_configs():
    """Configs holding a nested training config (a ``TrainConfig``) are checked field by field, path named."""

    @dataclass(frozen=True)
    class TrainConfig:  # no check of its own
        lr: float = 0.01
        steps: int = 10

    @dataclass(frozen=True)
    class Outer:
        train: TrainConfig = TrainConfig()
        n_tokens: int = 8
        name: str = "x"

        def __post_init__(self):
            limits.check(self)

    Outer()
    with pytest.raises(LimitError, match=r"^Outer\.train\.lr = nan: must be a finite number in \(0, 10\] \(flag --lr\)"):
        Outer(train=TrainConfig(lr=float("nan")))
    with pytest.raises(LimitError, match=r"Outer\.train\.steps = 0"):
        Outer(train=TrainConfig(steps=0))


def test_widget_kwargs_are_the_forms_bounds():
    assert limits.widget_kwargs("steps") == {"min_value": 1, "max_value": 10_000_000, "step": 1}
    assert limits.widget_kwargs("lr") == {"min_value": 1e-6, "max_value": 10.0}
    assert limits.widget_kwargs("seeds")["max_value"] == LIMITS["seeds"].hi


# ------------------------------------------------------------------------------------------ devices


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_devices_that_exist_pass(two_gpus):
    for name in ("auto", "cpu", "cuda", "cuda:0", "cuda:1"):
        assert cli_args.check_device(name) == name


@pytest.mark.parametrize("name,says", [("cuda:5", "not present"), ("cuda:2", "not present"), ("mps", "not present"),
                                       ("gpu", "unknown device"), ("cuda:-1", "unknown device"), ("CPU", "unknown device"),
                                       ("", "unknown device"), ("cuda:1:2", "unknown device")])
def test_absent_devices_name_the_ones_present(two_gpus, name, says):
    with pytest.raises(cli_args.ArgError) as err:
        cli_args.check_device(name)
    msg = str(err.value)
    assert msg.startswith("argument --device:") and says in msg and msg.endswith("auto, cpu, cuda:0, cuda:1")


def test_no_cuda_lists_only_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(cli_args.ArgError, match=r"'cuda' is not present on this machine; the devices here are: auto, cpu$"):
        cli_args.check_device("cuda")


# -------------------------------------------------------------------- sizes against the model's config


def _long_suite(tmp_path: Path, words: int) -> Path:
    d = tmp_path / "suite" / "longtask"
    d.mkdir(parents=True)
    labels = ["yes", "no"]
    doc = {"name": "longtask", "type": "sentiment", "labels": labels, "input_fields": ["text"], "description": "long",
           "license": "CC0", "sizes": {"train": 2, "dev": 2, "test": 2}, "notes": []}
    (d / "task.json").write_text(json.dumps(doc))
    for split in ("train", "dev", "test"):
        (d / f"{split}.jsonl").write_text("".join(json.dumps({"text": " ".join(["word"] * words) + f" {i}", "label": lab}) + "\n"
                                                  for i, lab in enumerate(labels)))
    return d.parent


def test_prompt_length_against_the_models_positions(tmp_path, capsys):
    """MiniLM has 512 positions; inputs are cut at 128 tokens: a prompt of 400 fits short inputs, not long ones."""
    long_suite = _long_suite(tmp_path, 300)
    code, err = _run_parse(["tune", "--suite", str(long_suite), "--prompt-len", "400"], capsys)
    assert code == 2 and "argument --prompt-len: must be an integer in 1..384" in err and "128 tokens" in err
    assert len(err.strip().splitlines()) == 1
    assert cli.parse(["tune", "--suite", str(long_suite), "--prompt-len", "384"]).prompt_len == 384
    short = _long_suite(tmp_path / "short", 10)
    assert cli.parse(["tune", "--suite", str(short), "--prompt-len", "499"]).prompt_len == 499  # 13 tokens + 499 = 512
    code, err = _run_parse(["tune", "--suite", str(short), "--prompt-len", "500"], capsys)
    assert code == 2 and "1..499" in err and "(13 tokens)" in err  # [CLS] + 10 words + "0"/"1" + [SEP]


def test_intrinsic_dimension_must_fit_in_the_prompt(capsys):
    code, err = _run_parse(["ipt", "--dims", "4,5000", "--prompt-kind", "shallow", "--prompt-len", "8"], capsys)
    assert code == 2 and "argument --dims: an intrinsic dimension must be in 1..3072" in err  # 8 x 384
    assert cli.parse(["ipt", "--dims", "4,5000", "--prompt-kind", "deep", "--prompt-len", "8"]).dims == [4, 5000]  # 6 layers
    code, err = _run_parse(["compare", "--d", "400", "--prompt-len", "1"], capsys)
    assert code == 2 and "argument --d:" in err
    assert cli.parse(["compare", "--d", "400", "--prompt-len", "1", "--methods", "pt,vip"]).d == 400  # no IPT: no d_I


def test_a_bad_backbone_spec_is_one_line(capsys):
    code, err = _run_parse(["tune", "--backbone", "causal"], capsys)
    assert code == 2 and "argument --backbone:" in err and "needs a model" in err
    # a model the config of which cannot be read here: the loader says why, later, still before training
    assert cli.parse(["tune", "--backbone", "causal:/no/such/model"]).backbone == "causal:/no/such/model"


# ----------------------------------------------------------------------------------- out of memory


def test_cuda_out_of_memory_names_the_batch_size_and_stores_nothing(tiny_bert_dir, tmp_path, monkeypatch, capsys):
    from ipt_core.backbones import Backbone
    from ipt_core.store import Store

    calls = []

    def oom(self, *a, **k):
        calls.append(1)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Backbone, "logits", oom)  # the first forward of the bank's training
    cache = tmp_path / "cache"
    code = cli.main(["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "3", "--batch-size", "64",
                     "--no-baselines", "--backbone", f"encoder-sim:{tiny_bert_dir}", "--device", "cpu",
                     "--cache", str(cache)])
    err = capsys.readouterr().err
    assert calls and code == 2
    line = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(line) == 1 and "out of memory" in line[0] and "lower --batch-size (now 64)" in line[0], err
    assert "Traceback" not in err
    assert Store(cache).query() == []  # nothing of the bank was stored


# ------------------------------------------------------------------------------ one direction of imports


def test_a_form_may_offer_less_than_the_range_never_more():
    assert limits.widget_kwargs("seeds", at_least=2, at_most=20) == {"min_value": 2, "max_value": 20, "step": 1}
    assert limits.widget_kwargs("lr", at_least=1e-5)["min_value"] == 1e-5
    with pytest.raises(ValueError, match="outside"):
        limits.widget_kwargs("seeds", at_most=5000)
    with pytest.raises(ValueError, match="outside"):
        limits.widget_kwargs("lr", at_least=0.0)
    with pytest.raises(ValueError, match="above"):
        limits.widget_kwargs("steps", at_least=10, at_most=5)


def test_refusal_gives_the_line_without_printing(capsys):
    assert cli.refusal(["tune", "--steps", "5", "--device", "cpu"]) is None
    msg = cli.refusal(["tune", "--lr", "nan"])
    assert msg.startswith("python -m ipt_core tune: error: argument --lr:") and "\n" not in msg
    assert cli.refusal(["tune", "--help"]) == "exit 0"
    assert capsys.readouterr() == ("", "")


def test_a_bad_suite_met_by_the_prompt_length_check_is_one_line(tmp_path, capsys):
    """A long prompt makes the boundary read the suite: its loader's error is the one line, exit 2."""
    code, err = _run_parse(["tune", "--suite", str(tmp_path / "nope"), "--prompt-len", "400"], capsys)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, err = _run_parse(["tune", "--tasks", "no_such_task", "--prompt-len", "400"], capsys)
    assert code == 2 and "no_such_task" in err and len(err.strip().splitlines()) == 1


def test_ipt_max_seen_and_the_ablation_flags_reach_the_settings():
    from ipt_core.cli import args as cli_args
    from ipt_core.cli import main as cli

    a = cli.parse(["ipt", "--suite", "demo", "--max-seen", "3", "--norm", "none", "--no-msf-task-loss", "--alpha", "0.1"])
    s = cli_args.ipt_settings(a)
    assert a.max_seen == 3 and s.msf.norm == "none" and s.msf.task_loss is False and s.msf.alpha == 0.1
    assert cli_args.ipt_settings(cli.parse(["ipt", "--suite", "demo"])).msf.task_loss is True


@pytest.mark.parametrize("argv", [
    ["tune", "--suite", "demo", "--tasks", "sms_spam", "--budget", "quick"],
    ["ipt", "--suite", "demo", "--dims", "4,16", "--max-seen", "2"],
    ["pipeline", "--suite", "demo", "--budget", "paper"],
    ["compare", "--suite", "demo", "--tasks", "sms_spam,cr", "--methods", "pt,vip"],
    ["ist", "--suite", "demo", "--tasks", "sms_spam", "--d", "8"],
])
def test_a_parser_of_one_command_parses_it_as_the_whole_parser_does(argv):
    """The app's cost estimate registers only the command it parses (the others' flags import torch)."""
    from ipt_core.cli import main as cli

    assert vars(cli.build_parser(only=argv[0]).parse_args(argv)) == vars(cli.build_parser().parse_args(argv))


# ------------------------------------------------------------------ the result store at the boundary (issue 32)


@pytest.mark.parametrize("command", ["tune", "probe", "ipt", "stability", "ist", "pipeline", "export", "compare",
                                     "map-quality", "transfer", "verify"])
@pytest.mark.parametrize("where", ["dev_null", "a_file", "under_a_file", "env_file"])
def test_a_cache_that_is_a_file_is_one_line_before_any_model_loads(command, where, tmp_path, monkeypatch, capsys):
    from ipt_core import backbones

    monkeypatch.setattr(backbones, "load_backbone", lambda *a, **k: pytest.fail("a model was loaded"))
    f = tmp_path / "file"
    f.write_text("x")
    cache = {"dev_null": "/dev/null", "a_file": str(f), "under_a_file": str(f / "store"), "env_file": None}[where]
    if cache is None:
        monkeypatch.setenv("IPT_CACHE", str(f))
    sub = _subparsers(cli.build_parser())[command]
    required = {a.dest for a in sub._actions if a.required}
    argv = [command] + (["--cache", cache] if cache else [])
    argv += ["--tasks", "sms_spam"] if "tasks" in required else []
    argv += ["--task", "sms_spam"] if "task" in required else []
    argv += ["--out", str(tmp_path / "out")] if "out" in required else []
    argv += ["--targets", "sms_spam"] if "targets" in required else []
    assert required <= {"tasks", "task", "out", "targets", "command"}, required
    assert _main_exit(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    flag = "--cache" if cache else "$IPT_CACHE"
    assert f"argument {flag}:" in err and "is a file" in err and "not a folder" in err, err


def test_a_cache_folder_that_does_not_exist_yet_is_fine(tmp_path, capsys):
    assert cli_args.check_store_root(str(tmp_path / "new" / "store")) is None
    assert _main_exit(["verify", "--cache", str(tmp_path / "new")]) == 0
    assert not (tmp_path / "new").exists()  # verify created nothing


def _main_exit(argv):
    """``cli.main(argv)``'s exit status, whether returned or raised by the parser."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


def _tiny_store(root: Path):
    from ipt_core.store import Store

    s = Store(root)
    good = s.put("probe", {"task": "a"}, {"acc": 0.5})
    bad = s.put("pt_run", {"task": "sms_spam", "seed": 0}, {"acc": 0.5}, {"prompt": torch.ones(4)})
    f = bad.path / "tensors.safetensors"
    f.write_bytes(f.read_bytes()[:-3])
    return s, good, bad


def test_verify_reports_corrupt_entries_with_exit_1_and_changes_nothing(tmp_path, capsys):
    s, good, bad = _tiny_store(tmp_path / "cache")
    assert _main_exit(["verify", "--cache", str(s.root)]) == 1
    out = capsys.readouterr().out
    assert "1 valid, 1 corrupt" in out and bad.key in out and "--repair" in out
    assert bad.path.exists()
    assert _main_exit(["verify", "--cache", str(s.root), "--json"]) == 1
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["ok"] == 1 and [c["key"] for c in rep["corrupt"]] == [bad.key] and rep["quarantined"] == 0


def test_verify_repair_quarantines_and_removes_stale_temp_then_exit_0(tmp_path, capsys):
    import multiprocessing as mp

    from ipt_core.store import tmp as store_tmp

    s, good, bad = _tiny_store(tmp_path / "cache")
    p = mp.get_context("spawn").Process(target=sorted, args=([],))
    p.start()
    p.join()
    stale = s.tmp_dir / f"w-{store_tmp.host_tag()}-{p.pid}-{'f' * 32}"
    stale.mkdir(parents=True)
    (stale / "tensors.safetensors").write_bytes(b"\0" * 1000)
    assert _main_exit(["verify", "--cache", str(s.root), "--repair", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rep["repaired"] and rep["quarantined"] == 1 and rep["tmp_removed"] == 1 and rep["tmp_stale"] == [stale.name]
    assert not bad.path.exists() and not stale.exists() and s.get(good.key) == good
    assert _main_exit(["verify", "--cache", str(s.root)]) == 0
    assert "1 valid, 0 corrupt, 1 quarantined" in capsys.readouterr().out


@pytest.mark.parametrize("error", ["safetensors", "oserror"])
def test_a_full_disk_while_storing_is_one_line_exit_2_and_leaves_nothing(error, tiny_bert_dir, tmp_path, monkeypatch,
                                                                        capsys):
    import errno

    import safetensors
    import safetensors.torch

    from ipt_core.store import Store

    def full(tensors, filename, *a, **k):
        Path(filename).write_bytes(b"\0" * 64)  # what a filling disk leaves
        if error == "safetensors":
            raise safetensors.SafetensorError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, "
                                              "message: \"No space left on device\" })")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    cache = tmp_path / "cache"
    code = cli.main(["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "2", "--batch-size", "4",
                     "--eval-every", "2", "--no-baselines", "--checkpoint-every", "0",
                     "--backbone", f"encoder-sim:{tiny_bert_dir}", "--device", "cpu", "--cache", str(cache)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "no space left" in lines[0] and str(cache.resolve()) in lines[0], err
    assert "Traceback" not in err and "SafetensorError" not in err.replace(lines[0], "")
    leftovers = [p for d in ("tmp", "objects") for p in (cache / d).rglob("*") if p.is_file()] if cache.exists() else []
    assert leftovers == [] and Store(cache).query("pt_run") == []


@pytest.mark.parametrize("targets", ["sms_spam", ""])
def test_a_long_prompt_on_a_command_without_resampling_flags_is_checked_not_a_traceback(targets):
    """``transfer`` has no --k/--data-seed: the prompt-length check read them and raised AttributeError
    (issue 31, found by the argument fuzzer on some draws)."""
    try:
        args = cli.parse(["transfer", "--prompt-len", "385", "--suite", "demo", "--targets", targets])
    except SystemExit as exc:
        assert exc.code == 2
    else:
        assert args.prompt_len == 385
