"""IPT: the auto-encoder and intrinsic tuning as bank methods, and the experiments on a tiny model."""
from __future__ import annotations

import pytest
import torch
from conftest import make_tiny_task

from ipt_core.analysis.convergence import finished
from ipt_core.analysis.metrics import gain_recovery, recovery
from ipt_core.config.ipt import IPTSettings, ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig
from ipt_core.experiments.context import Context
from ipt_core.experiments.ipt import (
    recovery_experiment,
    stability_experiment,
    summary_json,
    task_map_experiment,
)
from ipt_core.experiments.ipt_stages import IPTInputError
from ipt_core.methods.ipt import (
    IntrinsicTuning,
    PromptNormaliser,
    Subspace,
    SubspaceAutoencoder,
    SubspaceFinding,
)
from ipt_core.store import Store
from ipt_core.tasks import Suite
from ipt_core.train.bank import RunConfig, train_bank

TINY = IPTSettings(
    pt=PTConfig(n_tokens=2, kind="shallow", steps=4, batch_size=4, eval_every=2, lr=0.05),
    msf=MSFConfig(hidden=8, steps=4, batch_size=8, eval_every=2),
    ist=ISTConfig(steps=4, batch_size=4, eval_every=2),
)


def tiny_suite(n: int = 4) -> Suite:
    tasks = [make_tiny_task(f"t{i}", 2 + i % 2, n_train=12, n_dev=12, n_test=6, seed=i) for i in range(n)]
    tasks = [t.__class__(**{**t.__dict__, "type": "fam" + str(i % 2)}) for i, t in enumerate(tasks)]
    return Suite("tiny", "tiny", tuple(tasks))


@pytest.mark.parametrize("shape,norm", [((3, 4), "global"), ((2, 3, 4), "layer"), ((2, 3, 4), "global"), ((2, 3, 4), "none")])
def test_normaliser_round_trip(shape, norm):
    prompts = torch.randn(5, *shape) * torch.arange(1, shape[0] + 1).view(1, -1, *([1] * (len(shape) - 1)))
    nm = PromptNormaliser(prompts, norm)
    flat = nm(prompts)
    assert flat.shape == (5, int(torch.tensor(shape).prod()))
    torch.testing.assert_close(nm.inverse(flat), prompts)
    if norm == "layer":
        # every layer of a deep prompt ends up at unit scale, whatever its raw scale
        per_layer = flat.view(5, *shape).pow(2).mean(dim=(0, 2, 3)).sqrt()
        torch.testing.assert_close(per_layer, torch.ones(shape[0]), atol=1e-5, rtol=0)
    if norm == "none":  # the official code: the auto-encoder sees the raw prompts
        torch.testing.assert_close(flat, prompts.flatten(1))


def test_autoencoder_shapes_and_bounds():
    ae = SubspaceAutoencoder(dim=12, d_intrinsic=3, hidden=5, seed=0)
    x = torch.randn(4, 12)
    assert ae.encode(x).shape == (4, 3) and ae(x).shape == (4, 12)
    with pytest.raises(ValueError, match="d_I"):
        SubspaceAutoencoder(dim=12, d_intrinsic=13)
    # the seed alone fixes the initial weights, so the random control is reproducible
    same = SubspaceAutoencoder(dim=12, d_intrinsic=3, hidden=5, seed=0)
    torch.testing.assert_close(ae.out.weight, same.out.weight)


def test_ist_trains_only_z(make_tiny_backbone):
    bb = make_tiny_backbone("encoder_sim")
    task = make_tiny_task("a", 2)
    prompts = torch.randn(3, 2, bb.hidden_size)
    nm = PromptNormaliser(prompts)
    ae = SubspaceAutoencoder(nm.dim, 4, 8, seed=1)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    method = IntrinsicTuning([Subspace(ae, nm)], [0, 0], [0, 1], "shallow")
    assert method.prompts(torch.tensor([0, 1, 1]), None, None).shape == (3, 2, bb.hidden_size)
    res = train_bank(bb, [task], method, [RunConfig(("a",), seed=0, steps=3, batch_size=4, eval_every=3, lr=0.1),
                                          RunConfig(("a",), seed=1, steps=3, batch_size=4, eval_every=3, lr=0.1)])
    assert [r.state["z"].shape for r in res] == [(4,), (4,)]
    for k, v in ae.state_dict().items():
        torch.testing.assert_close(v, before[k])  # the decoder is frozen
    assert all(p.grad is None for p in ae.parameters())


def test_msf_loss_mixes_tasks_and_reconstructs(make_tiny_backbone):
    bb = make_tiny_backbone("encoder_sim")
    tasks = [make_tiny_task(f"t{i}", 2 + i % 2, seed=i) for i in range(3)]
    prompts = torch.randn(3, 2, bb.hidden_size)
    method = SubspaceFinding(prompts, dims=[2, 4], seeds=[0, 1], cfg=MSFConfig(hidden=8, alpha=1.0), kind="shallow")
    out = method.prompts(torch.tensor([0, 1, 1]), torch.tensor([0, 2, 1]), None)
    assert out.shape == (3, 2, bb.hidden_size)
    assert method.reconstruction_loss().shape == (2,)
    # micro-batch shares add up to the whole step's reconstruction loss
    counts = torch.tensor([1.0, 2.0])
    share = method.extra_loss(torch.tensor([1]), torch.tensor([0]), counts) + method.extra_loss(torch.tensor([0, 1]), torch.tensor([0, 2]), counts)
    torch.testing.assert_close(share, method.reconstruction_loss())
    res = train_bank(bb, tasks, method, [RunConfig(tuple(t.name for t in tasks), seed=s, steps=30, batch_size=8,
                                                   eval_every=30, lr=0.01) for s in (0, 1)])
    assert set(res[0].per_task) == {"t0", "t1", "t2"}
    for rr in res:
        # the training loss (task loss + alpha * MSE) falls as the auto-encoder learns to reconstruct
        losses = [l for _, l in rr.loss_curve]
        assert sum(losses[-5:]) < sum(losses[:5])


def test_recovery_experiment_end_to_end(make_tiny_backbone, tmp_path):
    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    suite = tiny_suite(4)
    ctx = Context.create(store, bb, "cpu", command="python -m ipt_core ipt ...")
    entry = recovery_experiment(ctx, suite, ["t0", "t1", "t2"], ["t3"], [2, 4], [0], TINY)
    rows = entry.meta["rows"]
    # seen (3 tasks) + unseen (1) x 2 dims x found/linear/random
    assert len(rows) == 4 * 2 * 3
    assert {r["setting"] for r in rows} == {"seen", "unseen"} and {r["subspace"] for r in rows} == {"found", "linear", "random"}
    for r in rows:
        assert r["recovery"] == pytest.approx(recovery(r["ist_test_acc"], r["pt_test_acc"]), nan_ok=True)
        g = gain_recovery(r["ist_test_acc"], r["pt_test_acc"], r["zero_shot_test_acc"])
        assert (r["gain_recovery"] is None) == (g != g) and (r["gain_recovery"] is None or r["gain_recovery"] == pytest.approx(g))
    out = summary_json(entry)
    assert out["dims"] == [2, 4] and set(out["subspaces"]) == {"found", "linear", "random"}
    assert set(out["subspaces"]["found"]["seen"]) == {"2", "4"} and set(out["subspaces"]["random"]["unseen"]) == {"2", "4"}
    assert len(out["rows"]) == len(rows) and all(isinstance(r["finished"], bool) for r in out["rows"])
    assert set(out["dimension_summary"]["linear"]["unseen"]) == {"d50", "d90", "max_d"}
    assert entry.command == "python -m ipt_core ipt ..."
    # PT's own convergence per seed: which training prompts and which references were still rising on dev
    unfinished = entry.meta["pt_unfinished"]["0"]
    assert set(unfinished) == {"train", "seen", "unseen"}
    train_pt = {e.spec["task"]: e for e in store.query("pt_run")
                if e.spec["task_data"] == suite.task(e.spec["task"]).data_hash()}  # not the resampled seen copies
    assert unfinished["train"] == [n for n in ("t0", "t1", "t2") if not finished(train_pt[n].meta["dev_curve"])]
    assert unfinished["unseen"] == ([] if finished(train_pt["t3"].meta["dev_curve"]) else ["t3"])
    # every stage is in the store, and the same request is served from it without training
    assert len(store.query("msf")) == 2 and len(store.query("ist_run")) == len(rows)
    n_entries = len(store.query())
    again = recovery_experiment(ctx, suite, ["t0", "t1", "t2"], ["t3"], [2, 4], [0], TINY)
    assert again.key == entry.key and len(store.query()) == n_entries
    # one more dimension trains only what is new: its auto-encoder and its IST runs
    recovery_experiment(ctx, suite, ["t0", "t1", "t2"], ["t3"], [2, 4, 8], [0], TINY)
    assert len(store.query("msf")) == 3 and len(store.query("pt_run")) == len(store.query("pt_run"))


def test_seen_tasks_use_different_data(make_tiny_backbone, tmp_path):
    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    suite = tiny_suite(3)
    recovery_experiment(Context.create(store, bb, "cpu"), suite, ["t0", "t1"], ["t2"], [2], [0],
                        IPTSettings(pt=TINY.pt, msf=TINY.msf, ist=TINY.ist, subspaces=("found",)))
    ist = {(e.meta["task"], e.meta["setting"]): e for e in store.query("ist_run")}
    assert ist[("t0", "seen")].spec["task_data"] != suite.task("t0").data_hash()
    assert ist[("t2", "unseen")].spec["task_data"] == suite.task("t2").data_hash()


def test_bad_inputs(make_tiny_backbone, tmp_path):
    bb = make_tiny_backbone("encoder_sim")
    suite = tiny_suite(3)
    ctx = Context.create(Store(tmp_path), bb, "cpu", train_missing_prompts=False)
    with pytest.raises(IPTInputError, match=r"no PT prompt in the store for task\(s\) t0, t1"):
        recovery_experiment(ctx, suite, ["t0", "t1"], ["t2"], [2], [0], TINY)
    ctx = Context.create(Store(tmp_path), bb, "cpu")
    with pytest.raises(IPTInputError, match="outside 1..64"):
        recovery_experiment(ctx, suite, ["t0", "t1"], ["t2"], [65], [0], TINY)  # n x d = 2 x 32
    with pytest.raises(IPTInputError, match="both in training and test"):
        recovery_experiment(ctx, suite, ["t0", "t1"], ["t1"], [2], [0], TINY)
    with pytest.raises(KeyError):
        recovery_experiment(ctx, suite, ["t0", "nope"], ["t2"], [2], [0], TINY)


def test_stability_and_task_map(make_tiny_backbone, tmp_path, monkeypatch):
    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    suite = tiny_suite(4)
    ctx = Context.create(store, bb, "cpu")
    stab = stability_experiment(ctx, suite, ["t3"], ["t0", "t1", "t2"], 2, [0, 1], TINY, eval_every=2)
    curves = stab.meta["curves"]
    assert {(c["init"], c["seed"]) for c in curves} == {("random", 0), ("random", 1), ("ist", 0), ("ist", 1)}
    assert all(c["steps"] == [0, 2, 4] for c in curves)
    # the IST-initialised runs start from the IST solution: same initial dev score for every seed
    ist_start = {c["dev_acc"][0] for c in curves if c["init"] == "ist"}
    assert len(ist_start) == 1
    dims = recovery_experiment(ctx, suite, ["t0", "t1", "t2"], ["t3"], [2], [0], TINY)
    tmap = task_map_experiment(ctx, suite, dims, d=2, with_umap=False)
    t = tmap.tensors()
    assert tmap.meta["tasks"] == ["t0", "t1", "t2", "t3"]
    assert t["prompt"].shape == (4, 2 * bb.hidden_size) and t["intrinsic"].shape == (4, 2) and t["ist"].shape == (4, 2)
    assert not torch.isnan(t["ist"]).any()


def test_tune_in_an_existing_subspace(make_tiny_backbone, tmp_path):
    from ipt_core.experiments.ipt import tune_in_subspace

    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    suite = tiny_suite(4)
    ctx = Context.create(store, bb, "cpu")
    with pytest.raises(IPTInputError, match="no subspace of d_I = 2 for suite 'tiny'"):
        tune_in_subspace(ctx, suite, ["t3"], 2, [0], TINY.ist, prompt_kind="shallow")
    recovery_experiment(ctx, suite, ["t0", "t1", "t2"], ["t3"], [2], [0], TINY)
    n_pt = len(store.query("pt_run"))
    entries = tune_in_subspace(ctx, suite, ["t3", "t0"], 2, [5], TINY.ist, prompt_kind="shallow")
    assert [e.meta["setting"] for e in entries] == ["unseen", "seen"] and all(e.meta["seed"] == 5 for e in entries)
    assert len(store.query("pt_run")) == n_pt  # nothing but z was trained
    rand = tune_in_subspace(ctx, suite, ["t3"], 2, [5], TINY.ist, prompt_kind="shallow", subspace="random")
    assert rand[0].meta["subspace"] == "random" and rand[0].key != entries[0].key


def test_msf_is_judged_on_dev_only(make_tiny_backbone, tmp_path):
    """MSF's runs skip the step-0 evaluation of a random auto-encoder and the test rows (no test score)."""
    from ipt_core.experiments.ipt_stages import find_subspaces, pt_prompts

    suite = tiny_suite()
    ctx = Context.create(Store(tmp_path), make_tiny_backbone("encoder_sim"), "cpu")
    tasks = [suite.task(n) for n in suite.names()[:3]]
    prompts, entries = pt_prompts(ctx, suite, tasks, 0, TINY.pt)
    found = find_subspaces(ctx, tasks, prompts, entries, [2], 0, TINY.msf, TINY.pt.kind)[2]
    assert found.meta["test_acc"] is None and found.meta["dev_acc"] is not None
    assert found.meta["dev_curve"][0][0] > 0
    assert all("test_acc" not in v and "dev_acc" in v for v in found.meta["per_task"].values())


def test_msf_without_its_task_loss_is_a_plain_auto_encoder(make_tiny_backbone, monkeypatch):
    """task_loss=False: the frozen model is not run in training, only the reconstruction trains it."""
    bb = make_tiny_backbone("encoder_sim")
    tasks = [make_tiny_task(f"t{i}", 2, seed=i) for i in range(3)]
    prompts = torch.randn(3, 2, bb.hidden_size)
    cfg = MSFConfig(hidden=8, alpha=1.0, task_loss=False, steps=20, batch_size=8, eval_every=20, lr=0.01)
    method = SubspaceFinding(prompts, dims=[2], seeds=[0], cfg=cfg, kind="shallow")
    calls = {"train": 0}
    real = bb.logits

    def counted(*a, **kw):
        if torch.is_grad_enabled():
            calls["train"] += 1
        return real(*a, **kw)

    monkeypatch.setattr(bb, "logits", counted)
    [res] = train_bank(bb, tasks, method, [RunConfig(tuple(t.name for t in tasks), seed=0, steps=20, batch_size=8,
                                                    eval_every=20, lr=0.01)])
    assert calls["train"] == 0
    losses = [l for _, l in res.loss_curve]
    # the logged loss is alpha * MSE alone, and it falls
    assert losses[-1] < losses[0]
    with torch.no_grad():
        mse = float(method.reconstruction_loss()[0])
    assert losses[-1] == pytest.approx(mse, rel=0.5)


def test_recovery_rows_carry_the_dev_split(make_tiny_backbone, tmp_path):
    bb = make_tiny_backbone("encoder_sim")
    ctx = Context.create(Store(tmp_path), bb, "cpu")
    entry = recovery_experiment(ctx, tiny_suite(4), ["t0", "t1", "t2"], ["t3"], [2], [0], TINY, seen_names=["t0"])
    rows = entry.meta["rows"]
    assert {r["task"] for r in rows if r["setting"] == "seen"} == {"t0"}
    for r in rows:
        assert 0 <= r["ist_dev_acc"] <= 1 and 0 <= r["pt_dev_acc"] <= 1 and 0 <= r["zero_shot_dev_acc"] <= 1
        g = gain_recovery(r["ist_dev_acc"], r["pt_dev_acc"], r["zero_shot_dev_acc"])
        assert (r["dev_gain_recovery"] is None) == (g != g)
    assert "dev_gain_recovery" in entry.meta["summary"]["found"]["seen"]["2"]


def test_msf_settings_that_are_defaults_keep_old_store_keys():
    """Adding task_loss must not re-key every stored subspace: at its default it is left out of the key."""
    assert "task_loss" not in MSFConfig().to_json()
    assert MSFConfig(task_loss=False).to_json()["task_loss"] is False
    with pytest.raises(ValueError, match="norm"):
        MSFConfig(norm="batch")
