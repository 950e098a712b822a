"""VIP (ipt_core.methods.vip) on a tiny random-weight encoder-sim backbone.

The quantiser alone (sampling by distance, averaging, straight-through gradient, commitment loss,
EMA updates, data init, expected mode), then VIP as a bank method: shapes, which parameters get
gradients, reproducible evaluation, seeds, and that a run gives the same result in a
micro-batched bank as alone (its code draws and EMA updates included).
"""
from __future__ import annotations

import pytest
import torch

from ipt_core.config.vip import VIPConfig
from ipt_core.methods.pt import init_prompt
from ipt_core.methods.vip import (
    VIP,
    Contextualiser,
    SampledVectorQuantize,
    sinusoidal_positions,
)
from ipt_core.train.bank import RunConfig, train_bank

N = 4
D = 32
K = 8
M = 3


@pytest.fixture
def tasks(tiny_task):
    return [tiny_task("two", 2, n_train=8, n_dev=6, n_test=6, seed=1),
            tiny_task("three", 3, n_train=9, n_dev=6, n_test=6, seed=2)]


def _cfg(**kw) -> VIPConfig:
    return VIPConfig(**({"n_tokens": N, "codebook_size": K, "num_samples": M} | kw))


def _vip(bb, seeds=(0, 1), **kw) -> VIP:
    return VIP(bb, [init_prompt(bb, N, "shallow", seed=s) for s in seeds], list(seeds), _cfg(**kw))


# --- the quantiser ----------------------------------------------------------------------------


def test_quantiser_shapes_straight_through_and_commitment():
    vq = SampledVectorQuantize(D, K, num_samples=M, commitment_weight=0.1, seed=0)
    x = torch.randn(2, N, D, requires_grad=True)
    u = torch.rand(2, N, M, generator=torch.Generator().manual_seed(0))
    q, idx, commit = vq(x, u)
    assert q.shape == (2, N, D) and idx.shape == (2, N, M) and commit.shape == (2,)
    # forward value: the mean of the sampled codes
    torch.testing.assert_close(q, vq.codebook[idx].mean(-2))
    torch.testing.assert_close(commit, 0.1 * (x - vq.codebook[idx].mean(-2)).pow(2).flatten(1).mean(1))
    # straight through: d q / d x is the identity
    g = torch.randn(2, N, D)
    (q * g).sum().backward()
    torch.testing.assert_close(x.grad, g)
    assert not vq.codebook.requires_grad


def test_sampling_follows_the_distance_softmax():
    vq = SampledVectorQuantize(D, K, num_samples=M, temperature=40.0, seed=1)
    x = vq.codebook[2:3] + 0.5 * torch.randn(1, D, generator=torch.Generator().manual_seed(3))
    probs = vq.probabilities(x)[0]
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))
    assert probs.argmax() == 2
    u = torch.rand(20000, 1, generator=torch.Generator().manual_seed(4))
    idx = vq.sample(probs.expand(20000, K), u).flatten()
    freq = torch.bincount(idx, minlength=K).float() / len(idx)
    torch.testing.assert_close(freq, probs, atol=0.015, rtol=0)
    # a sharp temperature makes it the nearest code
    sharp = SampledVectorQuantize(D, K, temperature=1e-3, seed=1)
    assert torch.all(sharp.sample(sharp.probabilities(x), torch.rand(1, 16)) == 2)


def test_expected_mode_is_the_probability_weighted_code():
    vq = SampledVectorQuantize(D, K, seed=0, temperature=30.0)
    x = torch.randn(3, N, D)
    q, idx, _ = vq(x, None)
    assert idx is None
    torch.testing.assert_close(q, vq.probabilities(x) @ vq.codebook)


def test_ema_update_data_init_then_moving_average():
    vq = SampledVectorQuantize(D, K, num_samples=2, decay=0.9, eps=0.0, seed=0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(5, 2, D)  # 10 vectors >= 8 codes
    vq.accumulate(x, torch.zeros(5, 2, 2, dtype=torch.long))
    vq.update(gen)
    assert bool(vq.initted)
    flat = x.reshape(-1, D)
    assert all(any(torch.equal(code, v) for v in flat) for code in vq.codebook)  # every code is an input vector
    before = vq.codebook.clone()
    # one vector, both samples on code 3: count 1, sum x
    y = torch.randn(1, 1, D)
    vq.accumulate(y, torch.full((1, 1, 2), 3, dtype=torch.long))
    vq.update(gen)
    size = torch.full((K,), 0.9)
    size[3] += 0.1
    want3 = (0.9 * before[3] + 0.1 * y[0, 0]) / size[3]
    torch.testing.assert_close(vq.cluster_size, size)
    torch.testing.assert_close(vq.codebook[3], want3)
    torch.testing.assert_close(vq.codebook[0], before[0])  # unused: embed_sum / cluster_size unchanged


def test_accumulating_in_pieces_equals_one_piece():
    a = SampledVectorQuantize(D, K, num_samples=M, seed=0, data_init=False)
    b = SampledVectorQuantize(D, K, num_samples=M, seed=0, data_init=False)
    x = torch.randn(6, N, D)
    idx = torch.randint(K, (6, N, M), generator=torch.Generator().manual_seed(1))
    a.accumulate(x, idx)
    a.update()
    b.accumulate(x[:2], idx[:2])
    b.accumulate(x[2:], idx[2:])
    b.update()
    torch.testing.assert_close(a.codebook, b.codebook)
    torch.testing.assert_close(a.cluster_size, b.cluster_size)


def test_contextualiser_reads_only_real_tokens():
    torch.manual_seed(0)
    ctx = Contextualiser(D, 16, 2, 4, 32).eval()
    p, x = torch.randn(1, N, D), torch.randn(1, 5, D)
    short = ctx(p, x[:, :3], torch.ones(1, 3))
    padded = ctx(p, torch.cat([x[:, :3], 100 * torch.randn(1, 2, D)], 1), torch.tensor([[1, 1, 1, 0, 0]]))
    assert short.shape == (1, N, D)
    torch.testing.assert_close(short, padded, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(short, ctx(p, x, torch.ones(1, 5)))  # the input matters
    assert sinusoidal_positions(7, 16).shape == (7, 16)


# --- VIP as a bank method ----------------------------------------------------------------------


def test_prompt_shapes_and_usage(bb, tasks):
    m = _vip(bb)
    enc = bb.collate(tasks[0].train[:5])
    runs = torch.tensor([0, 1, 1, 0, 1])
    assert m.prompts(runs, None, enc).shape == (5, N, D)
    m.eval()
    usage = m.code_usage(torch.zeros(5, dtype=torch.long), enc)
    assert usage.shape == (K,) and usage.sum() == 5 * N * M
    with pytest.raises(ValueError):
        m.code_usage(runs, enc)
    # the prompt is P + sigma * (mean of codes): the skip connection
    m.eval()
    one = torch.zeros(1, dtype=torch.long)
    enc1 = bb.collate(tasks[0].train[:1])
    emb = bb.input_embeddings()(enc1.input_ids)
    prompt = m.prompts(one, None, enc1)[0]
    m.eval()
    _, c, idx, _ = m._run_rows(0, torch.tensor([0]), emb, enc1.attention_mask)
    torch.testing.assert_close(prompt, m.params[0] + m.sigma * m.quantisers[0].codebook[idx[0]].mean(-2))


def test_only_prompt_and_contextualiser_get_gradients(bb, tasks):
    m = _vip(bb)
    enc = bb.collate(tasks[0].train[:4])
    runs = torch.zeros(4, dtype=torch.long)
    labels = bb.label_table(tasks[:1])
    loss = bb.logits(enc, runs, labels, m.prompts(runs, None, enc), "shallow").logsumexp(-1).sum()
    extra = m.extra_loss(runs, runs, torch.tensor([4.0, 1.0]))
    assert extra.shape == (2,) and extra[0] > 0 and extra[1] == 0
    (loss + extra.sum()).backward()
    assert m.params[0].grad.abs().sum() > 0
    assert all(p.grad is not None for p in m.contextualisers[0].parameters())
    assert m.params[1].grad is None and all(p.grad is None for p in m.contextualisers[1].parameters())
    assert all(not b.requires_grad for b in m.quantisers[0].buffers())
    assert all(p.grad is None for p in bb.parameters())
    assert {id(p) for p in m.parameters()} == {id(p) for r in (0, 1) for p in m.run_parameters(r)}
    assert m.trainable_params(0) == m.trainable_params(0, with_codebook=False) + K * D


def test_ema_update_waits_for_the_runs_last_micro_batch(bb, tasks):
    m = _vip(bb)
    enc = bb.collate(tasks[0].train[:4])
    runs = torch.zeros(4, dtype=torch.long)
    counts = torch.tensor([8.0, 1.0])  # the step has 8 rows of run 0: two micro-batches of 4
    before = m.quantisers[0].codebook.clone()
    m.prompts(runs, None, enc)
    m.extra_loss(runs, runs, counts)
    assert torch.equal(m.quantisers[0].codebook, before) and not bool(m.quantisers[0].initted)
    m.prompts(runs, None, enc)
    m.extra_loss(runs, runs, counts)
    assert bool(m.quantisers[0].initted) and not torch.equal(m.quantisers[0].codebook, before)
    assert not bool(m.quantisers[1].initted)
    m.eval()
    m.prompts(runs, None, enc)  # evaluation neither keeps codes nor updates the codebook
    assert m._pending == []


def test_evaluation_is_reproducible_in_both_modes(bb, tasks):
    enc = bb.collate(tasks[0].dev)
    runs = torch.zeros(len(tasks[0].dev), dtype=torch.long)
    for mode in ("sample", "expected"):
        m = _vip(bb, eval_mode=mode, temperature=30.0)
        m.eval()
        a = m.prompts(runs, None, enc)
        b = m.prompts(runs, None, enc)  # later draws of the same evaluation
        m.train()
        m.eval()
        c = m.prompts(runs, None, enc)  # a new evaluation: the same draws again
        torch.testing.assert_close(a, c)
        if mode == "expected":
            torch.testing.assert_close(a, b)
        else:
            assert not torch.allclose(a, b)


def _train(bb, tasks, seeds, configs, **kw):
    m = _vip(bb, seeds=seeds)
    return train_bank(bb, tasks, m, configs, device="cpu", **kw)


def test_same_seed_same_run_different_seed_different_run(bb, tasks):
    cfg = lambda s: [RunConfig(("two",), seed=s, lr=0.02, steps=5, batch_size=4, eval_every=5)]
    a, b, c = (_train(bb, tasks, [s], cfg(s))[0] for s in (0, 0, 1))
    for k in a.state:
        torch.testing.assert_close(a.state[k], b.state[k], atol=0, rtol=0)
    assert a.loss_curve == b.loss_curve and a.test_pred == b.test_pred
    assert not torch.equal(a.state["ctx.down.weight"], c.state["ctx.down.weight"])


def test_a_run_in_a_bank_matches_it_alone(bb, tasks):
    """Micro-batches of 3 rows split each run's step; the code draws and EMA updates must not notice."""
    configs = [RunConfig(("two",), seed=0, lr=0.02, steps=6, batch_size=4, eval_every=3),
               RunConfig(("three",), seed=1, lr=0.01, steps=5, batch_size=5, eval_every=5),
               RunConfig(("two",), seed=2, lr=0.02, steps=7, batch_size=3, eval_every=7)]
    together = _train(bb, tasks, [0, 1, 2], configs, max_rows=3)
    for i, cfg in enumerate(configs):
        alone = _train(bb, tasks, [cfg.seed], [cfg])[0]
        a = together[i]
        assert a.status == alone.status and a.best_step == alone.best_step
        assert [x for _, x in a.loss_curve] == pytest.approx([x for _, x in alone.loss_curve], abs=1e-4)
        assert [x for _, x in a.dev_curve] == pytest.approx([x for _, x in alone.dev_curve])
        assert a.test_pred == alone.test_pred
        for k in a.state:
            # Adam turns float noise in a (numerically) zero gradient into a step of size lr: the
            # attention's key bias gets exactly zero gradient in exact arithmetic (softmax is shift
            # invariant), so contextualiser weights only agree loosely; what they compute agrees tightly
            tol = 5e-3 if k.startswith("ctx.") else 1e-4
            torch.testing.assert_close(a.state[k], alone.state[k], atol=tol, rtol=0, msg=k)
        prompts = []
        for state in (a.state, alone.state):
            m = _vip(bb, seeds=[cfg.seed])
            m.load_run_state(0, state)
            m.eval()
            enc = bb.collate(tasks[0].test)
            prompts.append(m.prompts(torch.zeros(len(tasks[0].test), dtype=torch.long), None, enc))
        torch.testing.assert_close(prompts[0], prompts[1], atol=1e-4, rtol=0)


def test_run_state_round_trip_includes_the_codebook(bb):
    m = _vip(bb)
    state = {k: (v + 1 if v.is_floating_point() else v) for k, v in m.run_state(0).items()}
    assert "vq.codebook" in state and "prompt" in state and any(k.startswith("ctx.") for k in state)
    m.load_run_state(0, state)
    for k, v in m.run_state(0).items():
        torch.testing.assert_close(v, state[k])


def test_dead_codes_are_reinitialised_from_the_batch():
    """A collapsed codebook (every vector near one code): with dead-code re-initialisation the
    unused codes move to batch vectors and get used; without it they stay dead."""
    gen = torch.Generator().manual_seed(0)
    used = {}
    for threshold in (0.0, 1.0):
        vq = SampledVectorQuantize(D, K, num_samples=M, seed=0, data_init=False, temperature=1e-3,
                                   dead_code_threshold=threshold)
        for step in range(30):
            x = torch.randn((16, 4, D), generator=gen) * 0.5 + 3.0  # far from the random codebook
            _, idx, _ = vq(x, torch.rand((16, 4, M), generator=gen))
            vq.accumulate(x, idx)
            vq.update(torch.Generator().manual_seed(step))
        x = torch.randn((64, 4, D), generator=gen) * 0.5 + 3.0
        _, idx, _ = vq(x, torch.rand((64, 4, M), generator=gen))
        used[threshold] = len(torch.unique(idx))
    assert used[0.0] <= 2 and used[1.0] > K // 4, used
    assert VIPConfig().dead_code_threshold > 0 and VIPConfig(dead_code_threshold=0).dead_code_threshold == 0
    with pytest.raises(ValueError):
        VIPConfig(dead_code_threshold=-1)
