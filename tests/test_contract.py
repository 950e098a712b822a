"""The bank-method contract, checked for every registered method (in the manner of scikit-learn's ``check_estimator``).

For each method of ``ipt_core.methods.REGISTRY``, on a tiny random-weight encoder:

- it is a ``BankMethod`` with a ``TrainConfig`` config whose JSON rebuilds it;
- **bank equals alone**: every run trained in a micro-batched bank of several runs gives the
  result of the same run trained alone;
- **resume equals uninterrupted**: a bank killed after a checkpoint and started again from a fresh
  method gives bit for bit the result of a bank never interrupted.

A method added to the registry without a case here fails ``test_every_registered_method_has_a_case``.
"""
from __future__ import annotations

from dataclasses import fields

import pytest
import torch

from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.ipt import MSFConfig
from ipt_core.config.train import TrainConfig
from ipt_core.config.vip import VIPConfig
from ipt_core.methods import REGISTRY
from ipt_core.methods.attempt import Attempt
from ipt_core.methods.base import BankMethod
from ipt_core.methods.ipt import (
    IntrinsicTuning,
    PromptNormaliser,
    Subspace,
    SubspaceAutoencoder,
    SubspaceFinding,
)
from ipt_core.methods.pt import PromptTuning, init_prompt
from ipt_core.methods.vip import VIP
from ipt_core.train.bank import RunConfig, train_bank

N = 3  # prompt length


def _fixed(shape, seed: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _pt(bb, which):
    return PromptTuning([init_prompt(bb, N, "shallow", "vocab", seed=s) for s in which], "shallow")


def _msf(bb, which):
    dims, seeds = [2, 4, 3], [0, 1, 2]
    return SubspaceFinding(_fixed((3, N, bb.hidden_size), 3), dims=[dims[i] for i in which],
                           seeds=[seeds[i] for i in which], cfg=MSFConfig(hidden=8), kind="shallow")


def _ist(bb, which):
    prompts = _fixed((3, N, bb.hidden_size), 4)
    nm = PromptNormaliser(prompts)
    spaces = [Subspace(SubspaceAutoencoder(nm.dim, d, 8, seed=d), nm, torch.full((d,), 0.1), torch.full((d,), 3.0))
              for d in (2, 4)]
    groups = [0, 1, 0]
    return IntrinsicTuning(spaces, [groups[i] for i in which], list(which), "shallow")


def _attempt(bb, which):
    run_tasks = [[0], [1], [1, 2]]  # the third run is multi-task: one attention module for two tasks
    allowed = torch.tensor([[True, True, False], [False, True, True], [True, True, True]])
    targets = [[init_prompt(bb, N, "shallow", seed=10 * r + i) for i in range(len(run_tasks[r]))] for r in range(3)]
    return Attempt(bb, _fixed((3, N, bb.hidden_size), 5, 0.3), [targets[i] for i in which],
                   [run_tasks[i] for i in which], list(which), AttemptConfig(n_tokens=N, attn_dim=8),
                   allowed=allowed[list(which)])


def _vip(bb, which):
    cfg = VIPConfig(n_tokens=N, ctx_dim=8, ctx_layers=1, ctx_heads=2, ctx_ff=16, codebook_size=8, num_samples=2)
    return VIP(bb, [init_prompt(bb, N, "shallow", seed=s) for s in which], list(which), cfg)


_SINGLE = [RunConfig(("two",), seed=0, lr=0.05, steps=6, batch_size=4, eval_every=3),
           RunConfig(("three",), seed=1, lr=0.03, steps=5, batch_size=3, eval_every=2, patience=1),
           RunConfig(("four",), seed=2, lr=0.05, steps=7, batch_size=5, eval_every=3)]
ALL = ("two", "three", "four")

# name -> (build(backbone, run indices) -> method, the bank's runs)
CASES = {
    "pt": (_pt, _SINGLE),
    "msf": (_msf, [RunConfig(ALL, seed=s, lr=0.01, steps=6, batch_size=7, eval_every=3) for s in (0, 1, 2)]),
    "ist": (_ist, _SINGLE),
    "attempt": (_attempt, _SINGLE[:2] + [RunConfig(("three", "four"), seed=2, lr=0.05, steps=7, batch_size=5,
                                                   eval_every=3)]),
    "vip": (_vip, _SINGLE),
}


def test_every_registered_method_has_a_case():
    assert set(CASES) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_is_a_bank_method_with_a_train_config(name, bb):
    spec = REGISTRY[name]
    assert issubclass(spec.method_class, BankMethod) and spec.method_class.name == name
    assert issubclass(spec.config_class, TrainConfig)
    cfg = spec.config_class()
    assert spec.config_class(**cfg.to_json()) == cfg  # stored config JSON rebuilds the config
    assert {f.name for f in fields(TrainConfig)} <= {f.name for f in fields(cfg)}
    method = CASES[name][0](bb, [0, 1])
    assert isinstance(method, spec.method_class)
    assert method.prompt_kind in ("shallow", "deep")
    for r in range(2):
        assert method.run_parameters(r), "every run trains something"
        state = method.run_state(r)
        method.load_run_state(r, state)
        assert all(torch.equal(v, state[k]) for k, v in method.run_state(r).items())


def _assert_close(a, b, name):
    assert (a.status, a.best_step) == (b.status, b.best_step)
    assert [s for s, _ in a.loss_curve] == [s for s, _ in b.loss_curve]
    assert [x for _, x in a.loss_curve] == pytest.approx([x for _, x in b.loss_curve], abs=1e-4)
    assert [s for s, _ in a.dev_curve] == [s for s, _ in b.dev_curve]
    assert [x for _, x in a.dev_curve] == pytest.approx([x for _, x in b.dev_curve], abs=1e-9)
    assert a.test_pred == b.test_pred and a.per_task.keys() == b.per_task.keys()
    for task in a.per_task:
        assert a.per_task[task] == pytest.approx(b.per_task[task], abs=1e-9), task
    assert a.state.keys() == b.state.keys()
    for k in a.state:
        # Adam turns float noise in (near-)zero gradient entries into steps of up to lr: VIP's attention
        # key bias (tests/test_vip.py), and ATTEMPT's W_up behind its LayerNorm (5.7e-4 here, the same
        # on the loop before the hooks); what they compute agrees tightly (curves, predictions above)
        loose = (name == "vip" and k.startswith("ctx.")) or (name == "attempt" and k in ("w_up", "w_down"))
        tol = 0.05 if "in_proj_bias" in k else 5e-3 if loose else 1e-4  # the key bias: up to lr (0.05) a step
        torch.testing.assert_close(a.state[k], b.state[k], atol=tol, rtol=0, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_a_run_in_a_bank_equals_it_alone(name, bb, tasks):
    build, runs = CASES[name]
    together = train_bank(bb, tasks, build(bb, range(len(runs))), runs, device="cpu", max_rows=5)
    assert len(together) == len(runs)
    for r, run in enumerate(runs):
        alone = train_bank(bb, tasks, build(bb, [r]), [run], device="cpu")[0]
        _assert_close(together[r], alone, name)


class _Killed(Exception):
    """Stands in for kill -9 (raised from the progress callback, after the step's checkpoint)."""


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_resume_from_a_checkpoint_equals_an_uninterrupted_run(name, bb, tasks, tmp_path):
    build, runs = CASES[name]
    every, kill_at = 2, 3
    torch.manual_seed(0)
    straight = train_bank(bb, tasks, build(bb, range(len(runs))), runs, device="cpu", max_rows=5)

    def die(step, total, message):
        if step == kill_at:
            raise _Killed()

    torch.manual_seed(0)
    with pytest.raises(_Killed):
        train_bank(bb, tasks, build(bb, range(len(runs))), runs, device="cpu", max_rows=5, checkpoint_dir=tmp_path,
                   checkpoint_every=every, progress=die)
    torch.manual_seed(123)  # a new process: the checkpoint must restore every random stream
    steps = []
    resumed = train_bank(bb, tasks, build(bb, range(len(runs))), runs, device="cpu", max_rows=5,
                         checkpoint_dir=tmp_path, checkpoint_every=every, progress=lambda s, t, m: steps.append(s))
    assert steps[0] == every + 1  # resumed after the checkpoint of step 2, not restarted
    for a, b in zip(straight, resumed, strict=True):
        assert (a.status, a.best_step, a.dev_acc, a.test_acc, a.test_f1) == (b.status, b.best_step, b.dev_acc, b.test_acc,
                                                                             b.test_f1)
        assert a.loss_curve == b.loss_curve and a.dev_curve == b.dev_curve and a.test_pred == b.test_pred
        assert a.state.keys() == b.state.keys()
        for k in a.state:
            assert torch.equal(a.state[k], b.state[k]), k
