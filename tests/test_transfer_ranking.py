"""transfer_ranking: Spearman, NDCG@k, Regret@k and the top-k oracle share of a similarity measure's
ranking of source tasks, against hand-computed examples, brute-force enumeration of tie orders and
random subsets, and the report's pooling, bootstrap and JSON."""
from __future__ import annotations

import doctest
import itertools
import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from ipt_core.analysis import transfer_ranking as tr
from ipt_core.store import Store

G = [4.0, 2.0, 1.0, -1.0]  # 4 sources; relevance (gain - min) = 5, 3, 2, 0
PERFECT = [0.9, 0.5, 0.3, 0.1]
REVERSED = [0.1, 0.3, 0.5, 0.9]
L3, L5 = math.log2(3), math.log2(5)


# --------------------------------------------------------------------------------------------------
# independent references: enumerate every order the scores allow, every k-subset


def orders(scores):
    """Every order of the sources consistent with the scores (tied sources in every order)."""
    return [o for o in itertools.permutations(range(len(scores)))
            if all(scores[o[i]] >= scores[o[i + 1]] for i in range(len(o) - 1))]


def brute_ndcg(gains, scores, k):
    rel = [g - min(gains) for g in gains]
    ideal = sum(r / math.log2(i + 2) for i, r in enumerate(sorted(rel, reverse=True)[:k]))
    dcgs = [sum(rel[s] / math.log2(i + 2) for i, s in enumerate(o[:k])) for o in orders(scores)]
    return float(np.mean(dcgs)) / ideal


def brute_best(gains, scores, k):
    return float(np.mean([max(gains[s] for s in o[:k]) for o in orders(scores)]))


def brute_random_best(gains, k):
    return float(np.mean([max(c) for c in itertools.combinations(gains, k)]))


# --------------------------------------------------------------------------------------------------
# one target


def test_a_perfect_predictor_scores_ndcg_1_regret_0_and_the_oracles_share():
    for k in (1, 2, 3, 4):
        assert tr.ndcg_at_k(G, PERFECT, k) == pytest.approx(1.0)
        r = tr.regret_at_k(G, PERFECT, k)
        assert r["regret_abs"] == 0.0 and r["regret_rel"] == 0.0 and r["best_top_k"] == 4.0
    assert tr.ndcg_at_k(G, PERFECT) == pytest.approx(1.0)
    share = tr.topk_oracle_share(G, PERFECT)
    assert share["share"] == [1.0, 1.0, 1.0, 1.0] and share["oracle"] == [1.0] * 4
    assert tr.spearman_per_target(G, PERFECT)[0] == pytest.approx(1.0)


def test_a_reversed_predictor_gets_the_hand_computed_worst_values():
    # predicted order: gains -1, 1, 2, 4 -> relevance 0, 2, 3, 5; ideal 5, 3, 2, 0
    assert tr.ndcg_at_k(G, REVERSED, 1) == 0.0
    assert tr.ndcg_at_k(G, REVERSED, 2) == pytest.approx((2 / L3) / (5 + 3 / L3))
    full = (0 + 2 / L3 + 3 / 2 + 5 / L5) / (5 + 3 / L3 + 2 / 2 + 0)
    assert tr.ndcg_at_k(G, REVERSED) == pytest.approx(full) == pytest.approx(0.622751, abs=1e-6)  # 4.915242 / 7.892789
    regrets = [tr.regret_at_k(G, REVERSED, k) for k in (1, 2, 3, 4)]
    assert [r["regret_abs"] for r in regrets] == [5.0, 3.0, 2.0, 0.0]  # 4 - (-1), 4 - 1, 4 - 2, 4 - 4
    assert [r["regret_rel"] for r in regrets] == [1.25, 0.75, 0.5, 0.0]
    assert tr.topk_oracle_share(G, REVERSED)["share"] == [-0.25, 0.25, 0.5, 1.0]
    assert tr.spearman_per_target(G, REVERSED)[0] == pytest.approx(-1.0)
    # and they are the worst over all 24 orders
    every = [[4 - p for p in perm] for perm in itertools.permutations(range(4))]
    assert min(tr.ndcg_at_k(G, s) for s in every) == pytest.approx(full)
    assert max(tr.regret_at_k(G, s, 1)["regret_abs"] for s in every) == 5.0


def test_random_order_expected_share_is_exact():
    c = tr.topk_oracle_share(G, PERFECT)
    # k=1: mean / max = 1.5 / 4; k=2: pairs' maxima 1, 2, 4, 2, 4, 4 -> 17/6; k=3: (2 + 3 * 4) / 4 = 3.5
    assert c["random"] == pytest.approx([0.375, 17 / 24, 0.875, 1.0])
    assert c["random_best"] == pytest.approx([1.5, 17 / 6, 3.5, 4.0])
    rng = np.random.default_rng(3)
    for _ in range(5):
        g = rng.uniform(0.01, 0.1, size=6)  # positive gains
        curve = tr.topk_oracle_share(g, rng.normal(size=6))["random"]
        assert curve[-1] == pytest.approx(1.0)
        assert curve[0] == pytest.approx(g.mean() / g.max())
        for k in range(1, 7):
            assert tr.random_best_at_k(g, k) == pytest.approx(brute_random_best(list(g), k))


def test_tied_scores_count_as_a_random_order_inside_the_tie():
    # the top two tie: top-1 is source 0 or 1 at random
    s = [2, 2, 1, 0]
    assert tr.regret_at_k(G, s, 1) == pytest.approx({"regret_abs": 1.0, "regret_rel": 0.25,
                                                     "best_top_k": 3.0, "oracle": 4.0})
    assert tr.ndcg_at_k(G, s, 1) == pytest.approx(4 / 5)  # each tied position gets the mean relevance (5 + 3) / 2
    assert tr.ndcg_at_k(G, s, 2) == pytest.approx((4 + 4 / L3) / (5 + 3 / L3))
    assert tr.regret_at_k(G, s, 2)["regret_abs"] == 0.0
    # the tie straddles k: the best so far (2) is a floor under the random pick from {4, 1, 0}
    assert tr.regret_at_k([2, 4, 1, 0], [3, 1, 1, 1], 2)["best_top_k"] == pytest.approx((4 + 2 + 2) / 3)
    # against every order the ties allow
    rng = np.random.default_rng(0)
    for _ in range(20):
        g, sc = list(rng.normal(size=5)), list(rng.integers(0, 3, size=5))
        for k in (1, 2, 3, 5):
            assert tr.ndcg_at_k(g, sc, k) == pytest.approx(brute_ndcg(g, sc, k))
            assert tr.regret_at_k(g, sc, k)["best_top_k"] == pytest.approx(brute_best(g, sc, k))
    # a constant measure is exactly chance
    const = tr.target_metrics(G, [0.5] * 4, (1, 2, 3))
    chance = tr.chance_metrics(G, (1, 2, 3))
    assert const["spearman"] is None and chance["spearman"] == 0.0
    for key in const:
        if key not in ("spearman", "p_value"):
            assert const[key] == pytest.approx(chance[key]), key
    assert tr.spearman_per_target(G, [0.5] * 4) == pytest.approx((math.nan, math.nan), nan_ok=True)


def test_negative_gains():
    worse = [-0.01, -0.03, -0.02]  # no source helps
    r = tr.regret_at_k(worse, [0.1, 0.9, 0.5], 1)
    assert r["regret_abs"] == pytest.approx(0.02) and math.isnan(r["regret_rel"])
    assert all(math.isnan(x) for x in tr.topk_oracle_share(worse, [0.1, 0.9, 0.5])["share"])
    assert tr.target_metrics(worse, [0.1, 0.9, 0.5], (1,))["share@1"] is None
    # NDCG of shifted gains: defined, in [0, 1], and blind to the default run's offset
    assert tr.ndcg_at_k(worse, [0.9, 0.1, 0.5]) == pytest.approx(1.0)
    assert tr.ndcg_at_k(worse, [0.1, 0.9, 0.5], 1) == 0.0
    sc = [0.3, 0.1, 0.4, 0.2]
    assert tr.ndcg_at_k(G, sc, 2) == pytest.approx(tr.ndcg_at_k(np.array(G) - 10, sc, 2))
    assert math.isnan(tr.ndcg_at_k([0.02, 0.02, 0.02], [1, 2, 3]))  # every source alike: undefined
    # an oracle gain above 0 with a harmful top pick: relative regret above 1
    assert tr.regret_at_k([0.01, -0.03], [0, 1], 1)["regret_rel"] == pytest.approx(4.0)


@pytest.mark.parametrize(("gains", "scores", "k", "message"), [
    ([1, 2, 3], [1, 2], 1, r"differ in length \(3 vs 2\)"),
    ([1], [1], 1, r"fewer than 2 sources \(1\)"),
    ([], [], 1, r"fewer than 2 sources \(0\)"),
    ([1, math.nan, 3], [1, 2, 3], 1, r"gains are not all finite .*positions \[1\]"),
    ([1, 2, 3], [1, 2, math.inf], 1, r"scores are not all finite .*positions \[2\]"),
    ([[1, 2], [3, 4]], [[1, 2], [3, 4]], 1, "1-D"),
    ([1, 2, 3], [1, 2, 3], 0, "k must be a positive integer"),
    ([1, 2, 3], [1, 2, 3], 1.5, "k must be a positive integer"),
    ([1, 2, 3], [1, 2, 3], True, "k must be a positive integer"),
])
def test_refusals_name_the_problem(gains, scores, k, message):
    with pytest.raises(ValueError, match=message):
        tr.regret_at_k(gains, scores, k)
    if type(k) is int and k == 1:  # the k-free functions refuse the inputs too
        for fn in (tr.spearman_per_target, tr.ndcg_at_k, tr.topk_oracle_share):
            with pytest.raises(ValueError, match=message):
                fn(gains, scores)


def test_k_beyond_the_sources_means_every_source():
    assert tr.regret_at_k(G, REVERSED, 10)["regret_abs"] == 0.0
    assert tr.ndcg_at_k(G, REVERSED, 10) == tr.ndcg_at_k(G, REVERSED)


def test_the_docstring_examples_hold():
    res = doctest.testmod(tr)
    assert res.attempted >= 8 and res.failed == 0


# --------------------------------------------------------------------------------------------------
# the report over targets


def rows_for(n_targets=8, n_sources=5, seeds=(0, 1), noise=0.5, seed=1):
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n_targets):
        true = rng.normal(0.02, 0.03, size=n_sources)
        sim = true + noise * 0.03 * rng.normal(size=n_sources)
        for sd in seeds:
            for s in range(n_sources):
                rows.append({"target": f"t{t}", "source": f"s{s}", "seed": sd,
                             "gain": float(true[s] + 0.005 * rng.normal()), "sim_prompt": float(sim[s] + 0.001 * sd)})
    return rows


def plain_json(x):
    if isinstance(x, dict):
        return all(type(k) is str and plain_json(v) for k, v in x.items())
    if isinstance(x, list):
        return all(plain_json(v) for v in x)
    return x is None or type(x) in (str, int, float, bool)


def test_report_averages_seeds_then_scores_each_target():
    rows = rows_for()
    rep = tr.ranking_report(rows, "sim_prompt", k=(1, 3))
    assert rep["n_targets"] == 8 and rep["k"] == [1, 3] and rep["targets_skipped"] == []
    for t in ("t0", "t5"):
        sel = [r for r in rows if r["target"] == t]
        g = [np.mean([r["gain"] for r in sel if r["source"] == s]) for s in [f"s{i}" for i in range(5)]]
        sc = [np.mean([r["sim_prompt"] for r in sel if r["source"] == s]) for s in [f"s{i}" for i in range(5)]]
        got = rep["per_target"][t]
        assert got["spearman"] == pytest.approx(spearmanr(g, sc).statistic)
        assert got["ndcg@3"] == pytest.approx(tr.ndcg_at_k(g, sc, 3))
        assert got["regret_abs@1"] == pytest.approx(tr.regret_at_k(g, sc, 1)["regret_abs"])
        assert got["best_source"] == f"s{int(np.argmax(g))}" and got["top_predicted"] == f"s{int(np.argmax(sc))}"
        assert rep["chance"]["per_target"][t]["share@1"] == pytest.approx(np.mean(g) / max(g))
        assert rep["share_curves"][t]["random"][-1] == pytest.approx(1.0)
    per = rep["per_target"].values()
    assert rep["pooled"]["ndcg@3"]["mean"] == pytest.approx(np.mean([m["ndcg@3"] for m in per]))
    assert rep["chance"]["n_significant"] == pytest.approx(0.4)
    # an informative measure beats chance on NDCG; chance's Spearman is 0
    assert rep["pooled"]["ndcg"]["mean"] > rep["chance"]["pooled"]["ndcg"]["mean"]
    assert rep["chance"]["pooled"]["spearman"]["mean"] == 0.0


def test_report_counts_significance_by_scipy():
    rep = tr.ranking_report(rows_for(noise=0.05, n_sources=6), "sim_prompt", n_boot=0)
    expected = 0
    for t in rep["per_target"]:
        g = {}
        for r in rows_for(noise=0.05, n_sources=6):
            if r["target"] == t:
                g.setdefault(r["source"], []).append((r["gain"], r["sim_prompt"]))
        a = [np.mean([v[0] for v in vs]) for vs in g.values()]
        b = [np.mean([v[1] for v in vs]) for vs in g.values()]
        expected += spearmanr(a, b).pvalue < 0.05
    assert rep["n_significant"] == expected > 0
    assert rep["pooled"]["spearman"]["ci_low"] is None  # n_boot=0: no interval


def test_bootstrap_interval_holds_the_estimate_and_is_deterministic():
    rows = rows_for()
    a = tr.ranking_report(rows, "sim_prompt", n_boot=500, seed=7)
    b = tr.ranking_report(rows, "sim_prompt", n_boot=500, seed=7)
    c = tr.ranking_report(rows, "sim_prompt", n_boot=500, seed=8)
    assert a == b
    assert a["pooled"] != c["pooled"]
    for name, p in a["pooled"].items():
        if p["mean"] is None:
            continue
        assert p["ci_low"] <= p["mean"] <= p["ci_high"], name
    assert a["pooled"]["spearman"]["ci_low"] < a["pooled"]["spearman"]["ci_high"]
    # a single target: no interval
    one = tr.ranking_report([r for r in rows if r["target"] == "t0"], "sim_prompt")
    assert one["n_targets"] == 1 and one["pooled"]["ndcg"]["ci_low"] is None
    assert one["pooled"]["ndcg"]["mean"] == one["per_target"]["t0"]["ndcg"]


def test_report_is_plain_json():
    rows = rows_for(n_targets=3, n_sources=3)
    rows.append({"target": "t0", "source": "s9", "seed": 0, "gain": 0.01, "sim_prompt": None})  # no score: left out
    rows.append({"target": "lonely", "source": "s0", "gain": 0.01, "sim_prompt": 0.3})  # 1 source: skipped
    rows += [{"target": "flat", "source": f"s{i}", "gain": -0.01, "sim_prompt": 0.1 * i} for i in range(3)]
    rep = tr.ranking_report(rows, "sim_prompt", k=(1, 5), n_boot=50)
    assert rep["n_rows_skipped"] == 1 and rep["targets_skipped"] == ["lonely"]
    assert rep["per_target"]["flat"]["ndcg"] is None and rep["per_target"]["flat"]["regret_rel@1"] is None
    assert plain_json(rep)
    assert json.loads(json.dumps(rep, allow_nan=False)) == rep


def test_report_refuses_bad_rows():
    rows = rows_for(n_targets=2, n_sources=3, seeds=(0,))
    with pytest.raises(ValueError, match="two rows for target 't0', source 's0'"):
        tr.ranking_report(rows + [dict(rows[0])], "sim_prompt")
    with pytest.raises(ValueError, match="gain is not finite"):
        tr.ranking_report(rows + [{"target": "t0", "source": "s7", "seed": 0, "gain": math.nan, "sim_prompt": 1}],
                          "sim_prompt")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        tr.ranking_report(rows, "sim_prompt", k=(0,))
    with pytest.raises(ValueError, match="n_boot"):
        tr.ranking_report(rows, "sim_prompt", n_boot=-1)


@pytest.mark.slow  # loads the packaged model for the parser's checks; the shipped report is read, nothing computes
def test_transfer_with_no_flags_reads_the_demos_shipped_matrix(tmp_path, capsys, monkeypatch):
    """`transfer --suite demo --json` alone: the shipped matrix's targets, sources and seeds, every
    measure's ranking metrics with intervals beside random order, read from the store (IPT_REPLAY:
    any computation would raise)."""
    from ipt_core.cli.main import main

    monkeypatch.setenv("IPT_REPLAY", "1")
    rc = main(["transfer", "--suite", "demo", "--cache", str(tmp_path), "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert out["seeds"] == [0, 1] and len(out["targets"]) == 3 and out["seed_agreement"] is not None
    assert {"prompt", "prompt_tokens", "activation_overlap", "intrinsic", "text", "zero_shot_profile"} <= set(out["ranking"])
    for name, r in out["ranking"].items():
        assert r["n_targets"] == 3 and set(r["per_target"]) == set(out["targets"]), name
        for metric in ("spearman", "ndcg@3", "regret_abs@3", "share@1"):
            p = r["pooled"][metric]
            assert p["mean"] is None or p["ci_low"] <= p["mean"] <= p["ci_high"], (name, metric)
        assert r["chance"]["pooled"]["ndcg@3"]["mean"] is not None and r["share_curve"]["k"][0] == 1
    assert Store(tmp_path).query() == []  # nothing computed, nothing written


def test_transfer_with_no_flags_and_no_stored_matrix_says_so(tmp_path, capsys):
    from ipt_core.cli.main import main

    rc = main(["transfer", "--suite", "demo", "--steps", "7", "--cache", str(tmp_path)])
    assert rc == 2
    assert "no stored transfer matrix of suite 'demo' at these settings: name --targets" in capsys.readouterr().err
