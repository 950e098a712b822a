"""transfer: targets x sources PT runs in one bank, gains over the default init, Spearman per space."""
from __future__ import annotations

import pytest

from ipt_core.analysis import map_quality as mq
from ipt_core.config.pt import PTConfig
from ipt_core.experiments.transfer import transfer_report, transfer_runs
from ipt_core.store import Store
from ipt_core.tasks import Suite


@pytest.fixture
def suite(tiny_task):
    return Suite("tiny", "", tuple(tiny_task(n, 2, seed=i) for i, n in enumerate("abcd")))


def test_transfer_bank_gains_and_correlations(make_tiny_backbone, suite, tmp_path, monkeypatch):
    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    source_cfg = PTConfig(kind="shallow", n_tokens=4, steps=2, batch_size=4, eval_every=2)
    cfg = PTConfig(kind="shallow", n_tokens=4, steps=2, batch_size=4, eval_every=2)
    rep = transfer_report([store], bb, suite, ["a", "b"], None, cfg, source_cfg, device="cpu",
                          command="python -m ipt_core transfer --suite tiny --targets a,b")
    entries = [store.get(k) for k in rep["keys"]]
    assert [e.meta["target"] for e in entries] == ["a", "b"]
    for e in entries:
        assert [r["source"] for r in e.meta["runs"]] == [n for n in "abcd" if n != e.meta["target"]]
        for r in e.meta["runs"]:
            assert r["gain"] == pytest.approx(r["test_acc"] - e.meta["default"]["test_acc"])
    assert len(rep["pairs"]) == 6
    assert {"prompt", "text", "zero_shot_profile"} <= set(rep["spaces"])
    for c in rep["spaces"].values():
        assert c["n_pairs"] == 6 and (c["spearman"] is None or -1 <= c["spearman"] <= 1)
    # the page's entry holds the report; a repeated request trains nothing
    stored = store.get(rep["key"])
    assert stored.kind == "transfer_report" and stored.meta["pairs"] == rep["pairs"]

    def boom(*a, **k):
        raise AssertionError("trained again")

    monkeypatch.setattr("ipt_core.train.bank.train_bank", boom)
    monkeypatch.setattr("ipt_core.experiments.context.train_bank_on_ranks", boom)
    again = transfer_runs(store, [], bb, suite, ["a", "b"], None, cfg, source_cfg, device="cpu")
    assert [e.key for e in again] == rep["keys"]
    # similarity in the report is the centred cosine of the map
    sims = [p["sim_prompt"] for p in rep["pairs"]]
    assert all(-1 <= s <= 1 for s in sims) and len(set(round(s, 6) for s in sims)) > 1


def test_transfer_refuses_mismatched_prompts(make_tiny_backbone, suite, tmp_path):
    bb = make_tiny_backbone("encoder_sim")
    with pytest.raises(ValueError, match="same prompt kind"):
        transfer_runs(Store(tmp_path), [], bb, suite, ["a"], None, PTConfig(kind="shallow", n_tokens=4),
                      PTConfig(kind="deep", n_tokens=4))
    with pytest.raises(ValueError, match="source"):
        transfer_runs(Store(tmp_path), [], bb, suite, ["a"], ["a"], PTConfig(kind="shallow", n_tokens=4, steps=1),
                      PTConfig(kind="shallow", n_tokens=4, steps=1))
    assert mq.SPACE_NAMES["text"].startswith("text baseline")


# --------------------------------------------------------------------------------------------------
# seeds, the similarity measures, the ranking metrics in the report, and resuming a killed bank


def test_transfer_report_over_two_seeds_ranks_every_measure(make_tiny_backbone, suite, tmp_path):
    from ipt_core.experiments.transfer import stored_request

    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    cfg = PTConfig(kind="deep", n_tokens=3, steps=4, batch_size=4, eval_every=2, lr=0.3)
    rep = transfer_report([store], bb, suite, ["a", "b"], None, cfg, cfg, (0, 1), device="cpu")
    assert len({round(p["gain"], 6) for p in rep["pairs"]}) > 1  # the sources differ: there is an order to rank
    assert rep["seeds"] == [0, 1] and len(rep["keys"]) == 4  # one entry per (target, seed)
    assert len(rep["pairs"]) == 6 and len(rep["pairs_by_seed"]) == 12
    by_seed = {(r["target"], r["source"], r["seed"]): r["gain"] for r in rep["pairs_by_seed"]}
    for p in rep["pairs"]:
        assert p["gain_seeds"] == [by_seed[(p["target"], p["source"], 0)], by_seed[(p["target"], p["source"], 1)]]
        assert p["gain"] == pytest.approx(sum(p["gain_seeds"]) / 2)
    assert {"prompt", "prompt_tokens", "activation_overlap", "text", "zero_shot_profile"} <= set(rep["measures"])
    assert set(rep["ranking"]) == set(rep["spaces"]) == set(rep["measures"])
    for name, r in rep["ranking"].items():
        assert r["n_targets"] == 2 and set(r["by_seed"]) == {"0", "1"}
        assert 0 <= r["pooled"]["ndcg@3"]["mean"] <= 1 and r["share_curve"]["k"] == [1, 2, 3]
        assert all(p[f"sim_{name}"] is not None for p in rep["pairs"])
    agree = rep["seed_agreement"]
    assert agree["seeds"] == [0, 1] and set(agree["per_target"]) == {"a", "b"}
    # the default run's dev accuracy beside the longer source PT of the same target (the plateau check)
    assert set(rep["default_vs_source_steps"]) == {"a", "b"}
    # no --targets: the stored matrix at these settings is what `transfer` reads
    assert stored_request([store], "tiny", cfg, cfg)["targets"] == ["a", "b"]
    assert stored_request([store], "tiny", PTConfig(kind="deep", n_tokens=3, steps=3), cfg) is None


def test_transfer_matrix_resumes_after_a_kill(make_tiny_backbone, suite, tmp_path, monkeypatch):
    """A transfer bank killed mid-way (after a checkpoint) resumes from it: the second call starts past
    the checkpoint and stores what an uninterrupted bank does."""
    from ipt_core.experiments.transfer import source_prompts
    from ipt_core.train import bank

    bb = make_tiny_backbone("encoder_sim")
    cfg = PTConfig(kind="shallow", n_tokens=3, steps=6, batch_size=4, eval_every=3)
    real = bank.train_bank
    monkeypatch.setattr(bank, "train_bank", lambda *a, **k: real(*a, **dict(k, checkpoint_every=2)))

    class Killed(Exception):
        pass

    straight = transfer_runs(Store(tmp_path / "straight"), [], bb, suite, ["a"], None, cfg, cfg, device="cpu")
    store = Store(tmp_path / "killed")
    source_prompts(store, [], bb, suite, list("abcd"), cfg, 0, device="cpu")  # the sources first: the kill is in the matrix

    def die(step, total, msg):
        if step == 5:
            raise Killed()

    with pytest.raises(Killed):
        transfer_runs(store, [], bb, suite, ["a"], None, cfg, cfg, device="cpu", progress=die)
    assert store.query("transfer") == []  # nothing half-written
    seen = []
    resumed = transfer_runs(store, [], bb, suite, ["a"], None, cfg, cfg, device="cpu",
                            progress=lambda s, t, m: seen.append(s))
    assert seen[0] == 5  # resumed after the step-4 checkpoint, not from step 1
    a, b = straight[0].meta, resumed[0].meta
    assert a["default"] == b["default"] and a["runs"] == b["runs"]
