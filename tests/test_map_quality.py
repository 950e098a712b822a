"""map_quality / analysis: centred similarity, neighbour-family agreement, chance, trustworthiness,
the map-quality command on the shipped demo results alone, and commands without machine paths."""
from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from ipt_core.analysis import map_quality as mq
from ipt_core.cli import command_line
from ipt_core.cli.main import main
from ipt_core.tasks import load_suite


def shared_component(seed: int = 0):
    """Three families of 4 tasks on top of one large common component (as deep prompts are)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=60) * 20 + np.repeat(rng.normal(size=(3, 60)), 4, axis=0) + rng.normal(size=(12, 60)) * 0.3
    return x, [f for f in "abc" for _ in range(4)]


def test_centring_removes_the_shared_component():
    x, fams = shared_component()
    raw, centred = mq.similarity(x, centre=False), mq.similarity(x)
    assert mq.off_diagonal(raw).min() > 0.9  # saturated: every pair looks alike
    assert mq.off_diagonal(centred).min() < 0  # centred: a real range
    np.testing.assert_allclose(mq.prepare(x).mean(0), 0, atol=1e-9)
    assert mq.neighbour_agreement(centred, fams, 1) == 1.0
    np.testing.assert_allclose(np.diag(centred), 1) and np.testing.assert_allclose(centred, centred.T)


def test_per_layer_normalisation_equalises_layers():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(5, 8)), 100 * rng.normal(size=(5, 8))], axis=1)  # layer 2 dominates
    p = mq.prepare(x, centre=False, layers=2).reshape(5, 2, 8)
    rms = np.sqrt((np.linalg.norm(p, axis=2) ** 2).mean(0))
    np.testing.assert_allclose(rms, [1, 1])
    with pytest.raises(ValueError, match="layers"):
        mq.prepare(np.ones((2, 7)), layers=2)


def test_agreement_and_chance_by_brute_force():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(10, 5))
    fams = list("aaabbbccdd")
    sim = mq.similarity(x)
    for k in (1, 3):
        want = []
        for i in range(10):
            order = sorted((j for j in range(10) if j != i), key=lambda j: -sim[i, j])[:k]
            want.append(np.mean([fams[j] == fams[i] for j in order]))
        assert mq.neighbour_agreement(sim, fams, k) == pytest.approx(np.mean(want))
    # random neighbours of the demo's family sizes: the 7.6%
    demo = load_suite("demo")
    assert mq.chance_agreement([t.type for t in demo.tasks]) == pytest.approx(42 / 552)
    with pytest.raises(ValueError):
        mq.chance_agreement(["a"])


def test_trustworthiness_and_pca_variance():
    x, fams = shared_component()
    coords, ratio = mq.pca(x)
    assert 0 < ratio[1] <= ratio[0] < 1
    assert mq.trustworthiness(x, coords) > 0.8
    shuffled = np.random.default_rng(0).permutation(coords)
    assert mq.trustworthiness(x, shuffled) < mq.trustworthiness(x, coords)
    assert mq.trustworthiness(x[:3], coords[:3]) is None  # too few tasks


def test_robust_range_ignores_an_outlier():
    lo, hi = mq.robust_range(list(range(20)) + [1000])
    assert lo < 0 and 19 < hi < 100
    assert mq.robust_range([3.0, 3.0]) [0] < 3 < mq.robust_range([3.0, 3.0])[1]


def test_correlations_of_gain_with_similarity():
    x, fams = shared_component()
    names = [f"t{i}" for i in range(12)]
    sim = mq.similarity(x)
    transfers = [{"target": names[t], "runs": [{"source": names[s], "gain": float(sim[t, s]), "dev_gain": 0.0}
                                                for s in range(12) if s != t]} for t in (0, 5)]
    corr, pairs = mq.correlations(transfers, {"prompt": (x, names)}, dict(zip(names, fams)))
    assert corr["prompt"]["spearman"] == pytest.approx(1.0) and corr["prompt"]["n_pairs"] == 22
    assert corr["prompt"]["per_target_mean"] == pytest.approx(1.0)
    assert sum(p["same_family"] for p in pairs) == 6
    # a space that lacks a task gives NaN for its pairs and leaves them out
    corr, _ = mq.correlations(transfers, {"p": (x[1:], names[1:])}, dict(zip(names, fams)))
    assert corr["p"]["n_pairs"] == 10  # t0 as target (11 pairs) and as a source of t5 (1) are left out


def test_shipped_demo_map_is_not_saturated_once_centred(shipped):
    """The issue's pin: off-diagonal cosines of the centred prompts are not all above 0.9."""
    tm = mq.latest_task_map([shipped], "demo")
    spaces, fams, layers = mq.task_map_spaces([shipped], tm)
    x, names = spaces["prompt"]
    assert layers["prompt"] == 6
    assert mq.off_diagonal(mq.similarity(x, centre=False)).min() > 0.9  # the saturated raw view
    centred = mq.off_diagonal(mq.similarity(x, layers=6))
    assert not (centred > 0.9).all() and centred.max() - centred.min() > 0.3
    q = mq.space_quality(*spaces["intrinsic"][:1], [fams[n] for n in spaces["intrinsic"][1]])
    assert q["nn1_family"] > q["chance"]  # the centred intrinsic space beats chance


def test_map_quality_command_runs_from_the_shipped_results_alone(tmp_path, capsys, monkeypatch):
    def no_model(*a, **k):
        raise AssertionError("loaded the model")

    monkeypatch.setattr("ipt_core.experiments.context.cached_backbone", no_model)
    assert main(["map-quality", "--suite", "demo", "--cache", str(tmp_path / "empty"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"prompt", "intrinsic", "ist"} <= set(out["spaces"])  # + ATTEMPT attention when a comparison ships
    for q in out["spaces"].values():
        assert {"nn1_family", "nn3_family", "trustworthiness", "chance"} <= set(q)
    assert set(out["baselines"]) == {"text", "zero_shot_profile"} and out["baselines"]["text"]["n_tasks"] == 24
    assert out["chance_nn1"] == pytest.approx(42 / 552)
    assert out["spaces"]["intrinsic"]["nn1_family"] > out["chance_nn1"]
    assert out["best_space"] in out["spaces"]
    assert not (tmp_path / "empty").exists()  # nothing computed, nothing written


def test_reproduce_commands_name_no_folder_of_this_machine(shipped):
    assert command_line.reproducible_command("python -m ipt_core", ["tune", "--cache", "/abs/x", "--suite", "demo",
                                                                 "--cache=/y", "--json"]) == "python -m ipt_core tune --suite demo"
    for e in shipped.query():
        argv = shlex.split(e.command)
        assert "--cache" not in argv and not any(a.startswith("/") for a in argv), e.command
