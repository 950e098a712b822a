"""``--budget quick|paper``: the preset fills only the flags left out, and reaches the configs."""
from __future__ import annotations

import pytest

from ipt_core.cli import args as cli_args
from ipt_core.cli import main as cli
from ipt_core.config import budgets
from ipt_core.config.ipt import ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig


def test_paper_is_the_methods_own_defaults():
    args = cli.parse(["tune", "--suite", "demo", "--device", "cpu"])
    cfg = cli_args.pt_config(args)
    assert (cfg.steps, cfg.batch_size, cfg.eval_every) == (PTConfig().steps, PTConfig().batch_size, PTConfig().eval_every)


def test_quick_fills_the_flags_left_out_and_an_explicit_flag_wins():
    args = cli.parse(["tune", "--suite", "demo", "--device", "cpu", "--budget", "quick", "--steps", "7"])
    cfg = cli_args.pt_config(args)
    quick = budgets.flag_defaults("quick", "tune")
    assert cfg.steps == 7  # given: the budget does not override it
    assert (cfg.batch_size, cfg.eval_every) == (quick["batch_size"], quick["eval_every"])
    assert cfg.batch_size != PTConfig().batch_size


def test_quick_reaches_subspace_finding_and_intrinsic_tuning():
    s = cli_args.ipt_settings(cli.parse(["ipt", "--suite", "demo", "--device", "cpu", "--budget", "quick"]))
    q = budgets.flag_defaults("quick", "ipt")
    assert (s.msf.steps, s.ist.steps) == (q["msf_steps"], q["ist_steps"])
    assert (s.msf.steps, s.ist.steps) != (MSFConfig().steps, ISTConfig().steps)


def test_compare_quick_and_paper():
    quick = cli_args.compare_settings(cli.parse(["compare", "--suite", "demo", "--tasks", "sms_spam,nli",
                                                 "--device", "cpu", "--budget", "quick"]))
    q = budgets.flag_defaults("quick", "compare")
    assert {quick.pt.steps, quick.vip.steps, quick.attempt.steps, quick.ist.steps} == {q["steps"]}
    assert quick.msf.steps == q["msf_steps"]
    paper = cli_args.compare_settings(cli.parse(["compare", "--suite", "demo", "--tasks", "sms_spam,nli", "--device", "cpu"]))
    assert paper.pt.steps == paper.msf.steps == PTConfig().steps  # paper: subspace finding takes --steps


def test_unknown_budget_is_one_line_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse(["tune", "--suite", "demo", "--budget", "fast"])
    assert exc.value.code == 2 and "--budget" in capsys.readouterr().err
    with pytest.raises(ValueError, match="budget"):
        budgets.flag_defaults("fast", "tune")
