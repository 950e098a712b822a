"""IST's convergence: the finished flag, the linear subspace, the spread coordinates and the LR schedule."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import make_tiny_task
from ipt_core.analysis.convergence import finished, plateau_step, run_finished
from ipt_core.analysis.metrics import dimension_thresholds
from ipt_core.analysis.recovery_summary import dim_summary, summarise
from ipt_core.config.ipt import IPTSettings, ISTConfig
from ipt_core.config.train import TrainConfig
from ipt_core.methods.ipt import IntrinsicTuning, LinearSubspace, PromptNormaliser, Subspace, spread_of
from ipt_core.train.bank import RunConfig, evaluate_rows, train_bank
from ipt_core.train.loop.schedule import lr_factor


# ---------------------------------------------------------------------------------------------- the finished flag

def test_finished_is_false_on_a_rising_curve_and_true_on_a_plateau():
    rising = [(s, 0.5 + 0.05 * i) for i, s in enumerate(range(0, 60, 10))]
    assert not finished(rising)
    plateau = [(0, 0.5), (10, 0.6), (20, 0.62), (30, 0.62), (40, 0.62), (50, 0.61)]
    assert finished(plateau)
    # a rise in the last fifth alone is a rise: the run had not finished
    late = [(0, 0.5), (10, 0.6), (20, 0.6), (30, 0.6), (40, 0.6), (50, 0.66)]
    assert not finished(late)
    # within the tolerance (one point in a hundred) it is noise, not a rise
    assert finished([(0, 0.5), (10, 0.6), (20, 0.6), (30, 0.6), (40, 0.6), (50, 0.605)])
    # a run stuck where it started has finished too: the flag is about the optimiser, not the answer
    assert finished([(0, 0.5), (10, 0.5), (20, 0.5)])


def test_finished_needs_three_evaluations_and_reads_its_own_steps():
    assert not finished([])
    assert not finished([(0, 0.5), (40, 0.5)])  # two points cannot show a plateau
    # an early-stopped run's curve ends early: the last fifth is of its own steps
    assert finished([(0, 0.4), (5, 0.6), (10, 0.6), (15, 0.6), (20, 0.6)])
    assert finished([(0, 0.4), (5, 0.6), (10, None), (15, 0.6), (20, 0.6)])  # a missing score is skipped


def test_a_runs_flag_is_the_recorded_one_else_its_curves():
    rising = [[0, 0.5], [10, 0.6], [20, 0.7]]
    assert run_finished({"finished": True, "dev_curve": rising}) is True  # recorded: kept as it is
    assert run_finished({"dev_curve": rising}) is False  # stored before the flag: read from the curve
    assert run_finished({}) is False


def test_plateau_step_is_the_first_step_near_the_best():
    assert plateau_step([(0, 0.5), (10, 0.595), (20, 0.6), (30, 0.58)]) == 10
    assert plateau_step([]) is None


# ---------------------------------------------------------------------------------------------- the d50/d90 summary

def test_dimension_thresholds_take_the_smallest_dimension_reaching_each_level():
    assert dimension_thresholds({4: 0.2, 16: 0.6, 64: 0.95}) == {"d50": 16, "d90": 64}
    assert dimension_thresholds({4: 0.2, 16: 0.4}) == {"d50": None, "d90": None}
    assert dimension_thresholds({4: math.nan, 16: 0.5}) == {"d50": 16, "d90": None}
    # not monotone: the first dimension that reaches the level counts
    assert dimension_thresholds({4: 0.55, 16: 0.3}) == {"d50": 4, "d90": None}


def _row(task, sub, d, ist, pt=0.8, zs=0.5, fin=True, seed=0, setting="unseen"):
    return {"task": task, "subspace": sub, "setting": setting, "d": d, "seed": seed, "ist_test_acc": ist,
            "pt_test_acc": pt, "zero_shot_test_acc": zs, "recovery": ist / pt, "gain_recovery": (ist - zs) / (pt - zs),
            "ist_dev_acc": ist, "pt_dev_acc": pt, "zero_shot_dev_acc": zs, "dev_gain_recovery": (ist - zs) / (pt - zs),
            "finished": fin}


def test_summary_pools_gain_and_counts_finished_runs():
    rows = [_row("a", "found", 4, 0.6), _row("b", "found", 4, 0.65, fin=False),
            _row("a", "found", 16, 0.8), _row("b", "found", 16, 0.77),
            _row("a", "linear", 4, 0.5), _row("b", "linear", 4, 0.5), _row("a", "linear", 16, 0.62), _row("b", "linear", 16, 0.6)]
    s = summarise(rows)
    cell = s["found"]["unseen"]["4"]
    assert cell["pooled_gain_recovery"] == pytest.approx((0.1 + 0.15) / 0.6)
    assert cell["finished_share"] == 0.5 and cell["n_runs"] == 2
    assert s["found"]["unseen"]["16"]["finished_share"] == 1.0
    d = dim_summary(s)
    assert d["found"]["unseen"] == {"d50": 16, "d90": 16, "max_d": 16}
    assert d["linear"]["unseen"] == {"d50": None, "d90": None, "max_d": 16}
    # an old entry's rows carry no flag: the share is unknown, not zero
    old = [{k: v for k, v in r.items() if k != "finished"} for r in rows]
    assert summarise(old)["found"]["unseen"]["4"]["finished_share"] is None


# ---------------------------------------------------------------------------------------------- the linear subspace

def test_linear_subspace_reconstructs_its_training_prompts_exactly_at_tasks_minus_one():
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randn(6, 2, 3, 8, generator=gen) * torch.tensor([1.0, 5.0]).view(1, 2, 1, 1)  # 6 tasks, deep
    nm = PromptNormaliser(prompts)
    x = nm(prompts)
    lin = LinearSubspace(x, 5)  # T - 1 = 5
    assert lin.rank == 5
    torch.testing.assert_close(nm.inverse(lin.decode(lin.encode(x))), prompts, atol=1e-4, rtol=1e-4)
    # fewer directions lose something; more than the rank add nothing (zero rows)
    fewer = LinearSubspace(x, 2)
    assert (nm.inverse(fewer.decode(fewer.encode(x))) - prompts).abs().max() > 1e-2
    more = LinearSubspace(x, 9)
    assert more.rank == 5 and torch.all(more.basis[5:] == 0)
    torch.testing.assert_close(more.decode(more.encode(x)), x, atol=1e-4, rtol=1e-4)
    # the directions are orthonormal and the first one carries the most variance
    torch.testing.assert_close(lin.basis @ lin.basis.T, torch.eye(5), atol=1e-5, rtol=0)
    var = lin.encode(x).var(0)
    assert var[0] == var.max()


def test_spread_coordinates_start_at_the_centroid_and_scale_by_the_spread():
    z = torch.tensor([[0.0, 10.0, 1.0], [2.0, -10.0, 1.0], [4.0, 30.0, 1.0]])
    offset, scale = spread_of(z)
    torch.testing.assert_close(offset, torch.tensor([2.0, 10.0, 1.0]))
    assert scale[2] == 0 and scale[1] > scale[0] > 0  # a coordinate the tasks do not vary along is frozen
    prompts = torch.randn(4, 2, 8)
    nm = PromptNormaliser(prompts)
    lin = LinearSubspace(nm(prompts), 3)
    space = Subspace(lin, nm, *spread_of(lin.encode(nm(prompts))))
    # u = 0 is the training tasks' centroid: the mean prompt
    torch.testing.assert_close(space.prompts(torch.zeros(1, 3))[0], prompts.mean(0), atol=1e-5, rtol=1e-5)


# ---------------------------------------------------------------------------------------------- the optimiser

def test_cosine_schedule_goes_from_lr_to_zero_and_is_left_out_of_old_keys():
    assert lr_factor("cosine", 1, 10) == 1.0 and lr_factor("cosine", 11, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor("cosine", 6, 10) == pytest.approx(0.5)
    assert lr_factor("constant", 7, 10) == 1.0
    # fields added to every budget stay out of keys at their defaults (stored results keep their keys)
    assert "lr_schedule" not in TrainConfig().to_json() and "full_batch" not in TrainConfig().to_json()
    assert TrainConfig(lr_schedule="cosine").to_json()["lr_schedule"] == "cosine"
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="subspaces"):
        IPTSettings(subspaces=("linear",))
    assert IPTSettings(subspaces=("random", "found")).subspaces == ("found", "random")


def test_full_batch_takes_every_training_row_each_step(make_tiny_backbone):
    bb = make_tiny_backbone("encoder_sim")
    task = make_tiny_task("a", 2, n_train=10)
    prompts = torch.randn(3, 2, bb.hidden_size)
    nm = PromptNormaliser(prompts)
    method = IntrinsicTuning([Subspace(LinearSubspace(nm(prompts), 2), nm)], [0], [0], "shallow")
    seen: list[int] = []
    real = bb.collate
    bb.collate = lambda exs: (seen.append(len(exs)), real(exs))[1]
    try:
        train_bank(bb, [task], method, [RunConfig(("a",), steps=2, batch_size=4, eval_every=2, full_batch=True)],
                   max_rows=64, eval_batch_size=64)
    finally:
        bb.collate = real
    # evaluation passes aside (dev at 0 and 2: 6 rows each; test: 6), each step's one chunk held all 10 rows
    assert seen.count(10) == 2


def _train_loss(bb, task, method, run: int = 0) -> float:
    rows = [(run, 0, ex) for ex in task.train]
    _, losses = evaluate_rows(bb, method, rows, {task.name: 0}, bb.label_table([task]), device=torch.device("cpu"))
    return float(np.mean(losses))


def test_spread_coordinates_beat_the_papers_ist_after_the_same_model_passes(make_tiny_backbone):
    """The default IST (spread coordinates, cosine decay) against the paper's (z from ~0, constant lr 0.05)
    on the same subspace, task and seed, for the same training rows: its training loss ends lower."""
    bb = make_tiny_backbone("encoder_sim")
    task = make_tiny_task("a", 2, n_train=16, n_dev=8, seed=3)
    gen = torch.Generator().manual_seed(1)
    prompts = torch.randn(8, 4, bb.hidden_size, generator=gen) * 3  # eight "training tasks'" prompts
    nm = PromptNormaliser(prompts)
    lin = LinearSubspace(nm(prompts), 6)
    new_cfg = ISTConfig()
    old_cfg = ISTConfig(coords="raw", lr=0.05, lr_schedule="constant", full_batch=False, batch_size=new_cfg.batch_size,
                        steps=new_cfg.steps, eval_every=new_cfg.eval_every)
    assert new_cfg.coords == "spread"
    losses = {}
    for name, cfg in (("new", new_cfg), ("old", old_cfg)):
        space = Subspace(lin, nm, *spread_of(lin.encode(nm(prompts)))) if cfg.coords == "spread" else Subspace(lin, nm)
        method = IntrinsicTuning([space], [0], [0], "shallow", init_std=cfg.init_std)
        start = _train_loss(bb, task, method)
        train_bank(bb, [task], method, [RunConfig.of(("a",), 0, cfg)])
        losses[name] = (start, _train_loss(bb, task, method))
    assert losses["new"][0] == pytest.approx(losses["old"][0], abs=0.05)  # the same start: the mean prompt
    assert losses["new"][1] < losses["old"][1] - 0.01
