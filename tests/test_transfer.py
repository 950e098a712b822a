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
