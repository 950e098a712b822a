"""ATTEMPT (ipt_core.methods.attempt) on a tiny random-weight encoder-sim backbone.

Shapes and the paper's formula; that only the target prompts and the attention module train;
padding kept out of the max-pool (our default) or in it (the official code); the attention
learning-rate scale; seeds; and that a run gives the same result in a bank as alone, for the
single-task and the multi-task variant.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ipt_core.config.attempt import DEFAULT_TEMPERATURE, AttemptConfig
from ipt_core.methods.attempt import Attempt, masked_max_pool
from ipt_core.methods.pt import init_prompt
from ipt_core.tasks import Example
from ipt_core.train.bank import RunConfig, train_bank

N = 4
D = 32  # TINY_HIDDEN
S = 3


@pytest.fixture
def tasks(tiny_task):
    return [tiny_task("two", 2, n_train=8, n_dev=6, n_test=6, seed=1),
            tiny_task("three", 3, n_train=9, n_dev=6, n_test=6, seed=2),
            tiny_task("four", 4, n_train=12, n_dev=8, n_test=8, seed=3)]


@pytest.fixture
def sources():
    return torch.randn(S, N, D, generator=torch.Generator().manual_seed(5)) * 0.3


def _cfg(**kw) -> AttemptConfig:
    return AttemptConfig(**({"n_tokens": N, "attn_dim": 8} | kw))


def _method(bb, sources, runs=((0,), (1,)), seeds=(0, 1), cfg=None, allowed=None) -> Attempt:
    targets = [[init_prompt(bb, N, "shallow", seed=10 * s + i) for i in range(len(ts))] for ts, s in zip(runs, seeds)]
    return Attempt(bb, sources, targets, [list(t) for t in runs], list(seeds), cfg or _cfg(), allowed=allowed)


def _batch(bb, task, k=5):
    enc = bb.collate(task.train[:k])
    return enc, len(task.train[:k])


def test_shapes_and_attention_rows_sum_to_one(bb, tasks, sources):
    m = _method(bb, sources, allowed=torch.tensor([[True, False, True], [True, True, True]]))
    enc, B = _batch(bb, tasks[0])
    runs = torch.tensor([0, 1, 0, 1, 0])
    task_ids = runs.clone()
    assert m.prompts(runs, task_ids, enc).shape == (B, N, D)
    att = m.attention(runs, task_ids, enc)
    assert att.shape == (B, S + 1)
    torch.testing.assert_close(att.sum(1), torch.ones(B))
    assert torch.all(att[runs == 0, 1] == 0)  # run 0 may not use source 1
    assert torch.all(att[runs == 1] > 0)
    assert m.temperature == pytest.approx(DEFAULT_TEMPERATURE)  # chosen on the demo's dev splits
    assert _method(bb, sources, cfg=_cfg(temperature=None)).temperature == pytest.approx(D * math.e)  # the paper's


def test_prompt_is_target_plus_attention_weighted_sum(bb, tasks, sources):
    m = _method(bb, sources, cfg=_cfg(temperature=0.05))  # a sharp temperature: weights far from uniform
    enc, B = _batch(bb, tasks[0], 3)
    runs = torch.zeros(B, dtype=torch.long)
    prompt = m.prompts(runs, runs, enc)
    # by hand for row 0, straight from the paper's equations
    with torch.no_grad():
        emb = bb.input_embeddings()(enc.input_ids[0, : int(enc.attention_mask[0].sum())])
        x = emb.max(0).values
        h = F.layer_norm(m.w_up[0] @ F.silu(m.w_down[0] @ x), (D,), m.ln_weight[0], m.ln_bias[0])
        pool = torch.cat([sources.max(1).values, m.targets[0].max(0).values[None]])
        a = torch.softmax(pool @ h / 0.05, 0)
        want = m.targets[0] + (a[:, None, None] * torch.cat([sources, m.targets[0][None]])).sum(0)
    assert a.max() > 0.4  # the check is not trivially uniform
    torch.testing.assert_close(prompt[0], want, atol=1e-5, rtol=1e-5)


def test_masked_max_pool():
    x = torch.tensor([[[1.0, -2.0], [3.0, -1.0], [9.0, 9.0]]])
    torch.testing.assert_close(masked_max_pool(x, torch.tensor([[1, 1, 0]])), torch.tensor([[3.0, -1.0]]))
    torch.testing.assert_close(masked_max_pool(x, None), torch.tensor([[9.0, 9.0]]))


def test_padding_stays_out_of_the_pool_unless_asked(bb, sources):
    """Our default: a row's prompt does not depend on the other rows of its batch; the official pooling does."""
    short, long = Example("great", 0), Example("the film was very long and the day was awful and it had snow", 1)
    enc_alone, enc_padded = bb.collate([short]), bb.collate([short, long])
    # a large pad embedding makes the official behaviour visible
    with torch.no_grad():
        bb.input_embeddings().weight[bb.tokenizer.pad_token_id] += 5.0
    one, two = torch.zeros(1, dtype=torch.long), torch.zeros(2, dtype=torch.long)
    ours = _method(bb, sources)
    torch.testing.assert_close(ours.prompts(one, one, enc_alone)[0], ours.prompts(two, two, enc_padded)[0])
    official = _method(bb, sources, cfg=_cfg(pool_padding=True, temperature=0.05))
    assert not torch.allclose(official.attention(one, one, enc_alone)[0], official.attention(two, two, enc_padded)[0])


def test_only_target_prompts_and_attention_module_get_gradients(bb, tasks, sources):
    m = _method(bb, sources)
    enc, B = _batch(bb, tasks[0])
    runs = torch.zeros(B, dtype=torch.long)
    labels = bb.label_table(tasks[:1])
    loss = bb.logits(enc, torch.zeros(B, dtype=torch.long), labels, m.prompts(runs, runs, enc), "shallow").logsumexp(-1).sum()
    loss.backward()
    for p in m.run_parameters(0):
        assert p.grad is not None and p.grad.abs().sum() > 0
    for p in m.run_parameters(1):  # no row of run 1 in the batch
        assert p.grad is None or p.grad.abs().sum() == 0
    assert not m.sources.requires_grad and m.sources.grad is None
    assert all(p.grad is None for p in bb.parameters())
    assert {id(p) for p in m.parameters()} == {id(p) for r in (0, 1) for p in m.run_parameters(r)}
    assert m.trainable_params(0) == N * D + 2 * 8 * D + 2 * D


def test_frozen_layernorm_is_the_official_plain_normalisation(bb, sources):
    m = _method(bb, sources, cfg=_cfg(train_layernorm=False))
    assert len(m.run_parameters(0)) == 3  # target, W_down, W_up
    assert "ln_weight" not in m.run_state(0)
    assert m.trainable_params(0) == N * D + 2 * 8 * D


def test_attention_lr_scale_speeds_up_only_the_attention_module(bb, tasks, sources):
    """Adam's first step moves every weight by lr; W = scale * W' then moves by scale * lr."""
    torch.testing.assert_close(_method(bb, sources, cfg=_cfg(attn_lr_scale=3.0)).run_state(0)["w_down"],
                               _method(bb, sources).run_state(0)["w_down"])  # the same effective init
    for scale in (1.0, 3.0):
        m = _method(bb, sources, runs=((0,),), seeds=(0,), cfg=_cfg(attn_lr_scale=scale))
        before = m.run_state(0)
        opt = torch.optim.Adam(m.run_parameters(0), lr=0.01)
        enc, B = _batch(bb, tasks[0], 4)
        ids = torch.zeros(B, dtype=torch.long)
        m.prompts(ids, ids, enc).pow(2).sum().backward()
        opt.step()
        after = m.run_state(0)
        step_w = (after["w_down"] - before["w_down"]).abs()
        step_p = (after["target.0"] - before["target.0"]).abs()
        assert step_w.max() == pytest.approx(0.01 * scale, rel=1e-3)
        assert step_p.max() == pytest.approx(0.01, rel=1e-3)


def test_same_seed_same_run_different_seed_different_module(bb, tasks, sources):
    def run(seed):
        m = _method(bb, sources, runs=((0,),), seeds=(seed,))
        return train_bank(bb, tasks[:1], m, [RunConfig(("two",), seed=seed, lr=0.05, steps=6, batch_size=4, eval_every=3)],
                          device="cpu")[0]
    a, b, c = run(0), run(0), run(1)
    for k in a.state:
        torch.testing.assert_close(a.state[k], b.state[k], atol=0, rtol=0)
    assert a.loss_curve == b.loss_curve and a.test_pred == b.test_pred
    assert not torch.equal(_method(bb, sources, seeds=(0, 1)).w_down[0], _method(bb, sources, seeds=(1, 1)).w_down[0])


def test_run_state_round_trip(bb, sources):
    m = _method(bb, sources, runs=((0, 1),), seeds=(0,))
    state = {k: v + 1 for k, v in m.run_state(0).items()}
    m.load_run_state(0, state)
    for k, v in m.run_state(0).items():
        torch.testing.assert_close(v, state[k])


def test_multi_task_run_shares_one_attention_module(bb, tasks, sources):
    m = _method(bb, sources, runs=((0, 1),), seeds=(0,))
    params = m.run_parameters(0)
    assert len(params) == 2 + 2 + 2  # two target prompts, W_down, W_up, LayerNorm
    enc, B = _batch(bb, tasks[0], 2)
    runs = torch.zeros(B, dtype=torch.long)
    p0 = m.prompts(runs, torch.tensor([0, 0]), enc)
    p1 = m.prompts(runs, torch.tensor([1, 1]), enc)
    assert not torch.allclose(p0, p1)  # each task its own target prompt
    with pytest.raises(KeyError):
        m.prompts(runs, torch.tensor([2, 2]), enc)  # no such task in the run


def _assert_same(a, b, atol=1e-4):
    assert a.status == b.status and a.best_step == b.best_step
    for k in a.state:
        torch.testing.assert_close(a.state[k], b.state[k], atol=atol, rtol=0)
    assert [s for s, _ in a.loss_curve] == [s for s, _ in b.loss_curve]
    assert [x for _, x in a.loss_curve] == pytest.approx([x for _, x in b.loss_curve], abs=atol)
    assert [s for s, _ in a.dev_curve] == [s for s, _ in b.dev_curve]
    assert [x for _, x in a.dev_curve] == pytest.approx([x for _, x in b.dev_curve])
    assert a.test_pred == b.test_pred
    for name in a.per_task:
        assert a.per_task[name] == pytest.approx(b.per_task[name])


def test_a_run_in_a_bank_matches_it_alone(bb, tasks, sources):
    """Single-task runs and a multi-task run, each with its own sources, in one micro-batched bank."""
    allowed = torch.tensor([[True, True, False], [False, True, True], [True, True, True]])
    specs = [((0,), 0), ((1,), 1), ((1, 2), 2)]
    configs = [RunConfig(("two",), seed=0, lr=0.05, steps=8, batch_size=4, eval_every=4),
               RunConfig(("three",), seed=1, lr=0.03, steps=6, batch_size=3, eval_every=3),
               RunConfig(("three", "four"), seed=2, lr=0.05, steps=9, batch_size=5, eval_every=3)]

    def build(which):
        rs = [specs[i] for i in which]
        return _method(bb, sources, runs=[r for r, _ in rs], seeds=[s for _, s in rs], allowed=allowed[list(which)])

    together = train_bank(bb, tasks, build([0, 1, 2]), configs, device="cpu", max_rows=5)
    for i in range(3):
        alone = train_bank(bb, tasks, build([i]), [configs[i]], device="cpu")[0]
        _assert_same(together[i], alone)
