"""Tests of ipt_core.train.bank.train_bank with prompt tuning on a tiny random-weight encoder-sim model.

The central promise: a run trained in a bank with other runs gives the same result as the same
run trained alone (same seed, same initial prompt). Then the per-run parts of the loop: early
stopping with the best checkpoint kept, gradient clipping, divergence that stays in its run,
cancellation, and seeds.
"""
from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from ipt_core.analysis.metrics import accuracy
from ipt_core.methods.pt import PromptTuning, init_prompt
from ipt_core.train.bank import RunConfig, train_bank
from ipt_core.train.loop.evaluation import evaluate_rows
from ipt_core.train.loop.state import Cancelled

N_TOKENS = 4


def _runs() -> list[RunConfig]:
    """Different tasks, seeds, learning rates, batch sizes and lengths (run 1 stops first)."""
    return [
        RunConfig(("two",), seed=0, lr=0.05, steps=20, batch_size=4, eval_every=5),
        RunConfig(("three",), seed=1, lr=0.03, steps=12, batch_size=3, eval_every=4),
        RunConfig(("four",), seed=2, lr=0.08, steps=25, batch_size=5, eval_every=5),
    ]


def _inits(bb, kind: str, seeds=(0, 1, 2)) -> list[torch.Tensor]:
    return [init_prompt(bb, N_TOKENS, kind, "vocab", seed=s) for s in seeds]


def _train(bb, tasks, inits, runs, kind="shallow", **kwargs):
    method = PromptTuning(inits, kind)
    return train_bank(bb, tasks, method, runs, device="cpu", **kwargs), method


class _Snapshots:
    """A progress callback that keeps every run's prompt after every step (step 0: the initial prompts)."""

    def __init__(self, method: PromptTuning):
        self.method = method
        self.steps: list[int] = []
        self.prompts: dict[int, list[torch.Tensor]] = {0: [p.detach().clone() for p in method.params]}

    def __call__(self, step: int, total: int, message: str) -> None:
        self.steps.append(step)
        self.prompts[step] = [p.detach().clone() for p in self.method.params]


def _assert_same_result(a, b, atol=1e-4):
    assert a.status == b.status
    assert a.best_step == b.best_step
    torch.testing.assert_close(a.state["prompt"], b.state["prompt"], atol=atol, rtol=0)
    for field in ("dev_acc", "dev_f1", "test_acc", "test_f1"):
        assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-9), field
    assert [s for s, _ in a.dev_curve] == [s for s, _ in b.dev_curve]
    assert [acc for _, acc in a.dev_curve] == pytest.approx([acc for _, acc in b.dev_curve], abs=1e-9)
    assert [s for s, _ in a.loss_curve] == [s for s, _ in b.loss_curve]
    assert [x for _, x in a.loss_curve] == pytest.approx([x for _, x in b.loss_curve], abs=atol)
    assert a.test_pred == b.test_pred


# ------------------------------------------------------------------------------------ bank == alone


@pytest.mark.parametrize("kind", ["shallow", "deep"])
def test_a_run_in_a_bank_of_three_matches_the_same_run_alone(bb, tasks, kind):
    inits, runs = _inits(bb, kind), _runs()
    together, _ = _train(bb, tasks, inits, runs, kind)
    assert [r.status for r in together] == ["done"] * 3
    for r in range(3):
        alone, _ = _train(bb, [tasks[r]], [inits[r]], [runs[r]], kind)
        _assert_same_result(together[r], alone[0])
        assert len(together[r].loss_curve) == runs[r].steps
    # the runs did train: the final prompts moved away from their starting points
    _, method = _train(bb, tasks, inits, runs, kind)
    for r in range(3):
        assert (method.params[r].detach() - inits[r]).abs().max() > 1e-3


def test_micro_batches_give_the_same_result_as_one_batch(bb, tasks):
    # 12 rows a step (4 + 3 + 5): max_rows=5 splits them into chunks that cut through runs
    inits, runs = _inits(bb, "shallow"), _runs()
    whole, _ = _train(bb, tasks, inits, runs, max_rows=64)
    chunked, _ = _train(bb, tasks, inits, runs, max_rows=5)
    for a, b in zip(whole, chunked):
        _assert_same_result(a, b)


def test_scores_are_those_of_the_best_checkpoint(bb, tasks):
    inits, runs = _inits(bb, "shallow"), _runs()
    results, _ = _train(bb, tasks, inits, runs)
    for r, res in enumerate(results):
        best_dev = max(acc for _, acc in res.dev_curve)
        assert dict(res.dev_curve)[res.best_step] == best_dev
        # re-scoring test with the returned prompt alone gives the reported numbers
        method = PromptTuning([res.state["prompt"]], "shallow")
        task = tasks[r]
        rows = [(0, 0, ex) for ex in task.test]
        pred, _ = evaluate_rows(bb, method, rows, {task.name: 0}, bb.label_table([task]), device=torch.device("cpu"))
        assert res.test_acc == pytest.approx(accuracy(pred, [ex.label for ex in task.test]))
        assert res.test_pred[task.name] == [int(p) for p in pred]


# ------------------------------------------------------------------------------------ early stopping


def _early_stopping_bank(bb, tasks):
    """Run 0 stops early (patience 1, evaluated every 2 steps); run 1 trains its 40 steps."""
    runs = [
        RunConfig(("two",), seed=0, lr=0.1, steps=40, batch_size=4, eval_every=2, patience=1),
        RunConfig(("three",), seed=1, lr=0.1, steps=40, batch_size=3, eval_every=2),
    ]
    inits = _inits(bb, "shallow", seeds=(0, 1))
    method = PromptTuning(inits, "shallow")
    snaps = _Snapshots(method)
    results = train_bank(bb, tasks[:2], method, runs, device="cpu", progress=snaps)
    return results, snaps, runs, inits


def test_early_stopping_stops_one_run_and_keeps_its_best_checkpoint(bb, tasks):
    results, snaps, runs, inits = _early_stopping_bank(bb, tasks)
    stopped, other = results
    assert stopped.status == "early_stopped"
    last = stopped.loss_curve[-1][0]
    assert last < 40 and [s for s, _ in stopped.loss_curve] == list(range(1, last + 1))
    assert stopped.dev_curve[-1][0] == last
    # patience 1: it stopped at the first evaluation that did not beat the best
    assert stopped.best_step == stopped.dev_curve[-2][0] < last
    # the other run went on to the end
    assert other.status == "done" and len(other.loss_curve) == 40 and snaps.steps[-1] == 40
    assert not torch.equal(snaps.prompts[40][1], snaps.prompts[last][1])
    # every run returns the prompt it had at its best evaluation, not its last
    for r, res in enumerate(results):
        assert torch.equal(res.state["prompt"], snaps.prompts[res.best_step][r])
    assert not torch.equal(stopped.state["prompt"], snaps.prompts[last][0])
    # and the early stop changed nothing for the other run
    alone, _ = _train(bb, [tasks[1]], [inits[1]], [runs[1]])
    _assert_same_result(other, alone[0])


def test_a_stopped_runs_prompt_never_changes_again(bb, tasks):
    results, snaps, _, _ = _early_stopping_bank(bb, tasks)
    last = results[0].loss_curve[-1][0]
    for step in range(last, 41):
        assert torch.equal(snaps.prompts[step][0], snaps.prompts[last][0]), f"moved at step {step}"


# ------------------------------------------------------------------------------------ clipping


def test_gradient_clipping_is_per_run(bb, tasks):
    init = _inits(bb, "shallow", seeds=(0,))[0]
    base = RunConfig(("two",), seed=0, lr=0.05, steps=15, batch_size=4, eval_every=5)
    runs = [replace(base, max_grad_norm=1e-15), base]
    method = PromptTuning([init, init], "shallow")
    snaps = _Snapshots(method)
    results = train_bank(bb, tasks[:1], method, runs, device="cpu", progress=snaps)
    moved = [(snaps.prompts[15][r] - init).abs().max().item() for r in range(2)]
    assert moved[1] > 1e-2
    assert moved[0] < 1e-4 * moved[1], moved
    # the unclipped run is unaffected by its clipped neighbour
    alone, _ = _train(bb, tasks[:1], [init], [base])
    _assert_same_result(results[1], alone[0])


# ------------------------------------------------------------------------------------ divergence


@pytest.mark.parametrize("max_rows", [64, 5])
def test_a_diverged_run_stops_and_leaves_the_others_as_they_would_be_without_it(bb, tasks, max_rows):
    inits, runs = _inits(bb, "shallow"), _runs()
    method = PromptTuning(inits, "shallow")

    def poison(step, total, message):
        if step == 5:
            with torch.no_grad():
                method.params[1].fill_(float("inf"))

    results = train_bank(bb, tasks, method, runs, device="cpu", progress=poison, max_rows=max_rows)
    bad = results[1]
    assert bad.status == "diverged"
    assert [s for s, _ in bad.loss_curve] == list(range(1, 7))
    assert bad.loss_curve[-1][1] is None  # JSON-safe: a non-finite loss is recorded as None
    assert all(math.isfinite(x) for _, x in bad.loss_curve[:-1])
    assert bad.best_step <= 5 and torch.isfinite(bad.state["prompt"]).all()
    assert math.isfinite(bad.test_acc) and math.isfinite(bad.dev_acc)
    without, _ = _train(bb, [tasks[0], tasks[2]], [inits[0], inits[2]], [runs[0], runs[2]])
    _assert_same_result(results[0], without[0])
    _assert_same_result(results[2], without[1])


def test_an_absurd_learning_rate_diverges_alone(bb, tasks):
    inits, runs = _inits(bb, "shallow"), _runs()
    runs[1] = replace(runs[1], lr=10.0)  # the largest the limits allow ...
    object.__setattr__(runs[1], "lr", 1e29)  # ... and past them: the loop must survive what a config refuses
    results, _ = _train(bb, tasks, inits, runs)
    assert results[1].status == "diverged"
    assert torch.isfinite(results[1].state["prompt"]).all()
    without, _ = _train(bb, [tasks[0], tasks[2]], [inits[0], inits[2]], [runs[0], runs[2]])
    _assert_same_result(results[0], without[0])
    _assert_same_result(results[2], without[1])


# ------------------------------------------------------------------------------------ cancel, seeds


def test_should_cancel_raises_cancelled(bb, tasks):
    steps: list[int] = []
    polls = {"n": 0}

    def should_cancel() -> bool:
        polls["n"] += 1
        return polls["n"] > 3

    with pytest.raises(Cancelled):
        _train(bb, tasks, _inits(bb, "shallow"), _runs(), progress=lambda s, t, m: steps.append(s),
               should_cancel=should_cancel)
    assert steps == [1, 2, 3]


def test_the_same_seed_twice_gives_identical_results(bb, tasks):
    inits, runs = _inits(bb, "shallow"), _runs()
    a, _ = _train(bb, tasks, inits, runs)
    b, _ = _train(bb, tasks, inits, runs)
    for x, y in zip(a, b):
        _assert_same_result(x, y, atol=0)
        assert torch.equal(x.state["prompt"], y.state["prompt"])


def test_different_seeds_give_different_results(bb, tasks):
    base = RunConfig(("four",), seed=0, lr=0.05, steps=10, batch_size=4, eval_every=10)
    init0, init1 = _inits(bb, "shallow", seeds=(0, 1))
    # the same start, a different seed: a different order of mini-batches
    method = PromptTuning([init0, init0], "shallow")
    snaps = _Snapshots(method)
    train_bank(bb, tasks[2:], method, [base, replace(base, seed=1)], device="cpu", progress=snaps)
    assert not torch.allclose(snaps.prompts[10][0], snaps.prompts[10][1], atol=1e-4)
    # a different initial prompt (init_prompt's seed)
    assert not torch.allclose(init0, init1)


def test_a_run_naming_an_unknown_task_is_refused(bb, tasks):
    with pytest.raises(KeyError, match="nope"):
        _train(bb, tasks, _inits(bb, "shallow", seeds=(0,)), [RunConfig(("nope",))])
