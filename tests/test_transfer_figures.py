"""figures/transfer.py: the views of a transfer report (gain matrix, ranked sources, top-k curve, metric
table, gain against similarity), on synthetic reports in the format ``python -m ipt_core transfer`` writes,
and each figure's layout at the width a 1,400 px page gives it (test_figures.layout_defects)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from test_figures import CHART_WIDTH, FULL_WIDTH, layout_defects

from ipt_core.analysis.transfer_ranking import ranking_report
from ipt_core.figures import transfer as tf

MEASURES = {
    "prompt": ("raw prompt (centred cosine)", "Cosine of the two tasks' trained prompts, centred on the mean task."),
    "prompt_tokens": ("prompt tokens (best-matched cosine)", "Mean cosine of each prompt token to its best match."),
    "activation_overlap": ("activation overlap", "Overlap of the frozen model's activations under each prompt."),
    "intrinsic": ("intrinsic space (Proj)", "Cosine of the prompts encoded by MSF's Proj."),
    "ist": ("intrinsic space (IST solutions)", "Cosine of the d_I vectors IST tuned for each task."),
    "text": ("text baseline", "Cosine of the mean sentence embeddings of the tasks' inputs."),
    "zero_shot_profile": ("zero-shot profile", "Cosine of the zero-shot scores of every label name."),
}


def fake_report(n_targets: int = 3, n_sources: int = 24, seeds: int = 2, measures=tuple(MEASURES), *,
                seed: int = 0, ranking: bool = True) -> dict:
    """A transfer_report meta in the new format: ``prompt`` tracks the gains closely, ``text`` loosely, the
    others are noise; gains per seed, their mean, the spaces' Spearman and the ranking of every measure."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(seed)
    names = [f"task_{i:02d}_{'sentiment' if i % 3 == 0 else 'nli'}" for i in range(max(n_sources, n_targets) + 1)]
    fams = {n: n.rsplit("_", 1)[1] for n in names}
    targets = names[:n_targets]
    sources = names[: n_sources + 1] if n_targets <= n_sources else names
    pairs = []
    for t in targets:
        for s in sources:
            if s == t:
                continue
            true = rng.normal(0, 0.03)
            per_seed = [float(true + rng.normal(0, 0.01)) for _ in range(seeds)]
            row = {"target": t, "source": s, "same_family": fams[s] == fams[t], "gain": float(np.mean(per_seed)),
                   "dev_gain": float(true), "gain_seeds": per_seed}
            for m in measures:
                noise = {"prompt": 0.005, "text": 0.05}.get(m, 1.0)
                row[f"sim_{m}"] = float(true + rng.normal(0, noise))
            pairs.append(row)
    spaces = {}
    for m in measures:
        g = [p["gain"] for p in pairs]
        x = [p[f"sim_{m}"] for p in pairs]
        r = spearmanr(g, x)
        per = {t: float(spearmanr([p["gain"] for p in pairs if p["target"] == t],
                                  [p[f"sim_{m}"] for p in pairs if p["target"] == t]).statistic) for t in targets}
        spaces[m] = {"spearman": float(r.statistic), "p_value": float(r.pvalue), "n_pairs": len(pairs),
                     "per_target_mean": float(np.mean(list(per.values()))), "per_target": per}
    rep = {"suite": "demo", "targets": targets, "sources": [s for s in sources if s not in targets] or sources,
           "seeds": list(range(seeds)), "seed": 0,
           "config": {"steps": 20, "batch_size": 8, "lr": 0.01, "kind": "deep", "n_tokens": 8},
           "source_config": {"steps": 60, "batch_size": 8, "lr": 0.01, "kind": "deep", "n_tokens": 8},
           "keys": [f"k{i}" for i in range(n_targets)],
           "default": {t: {"test_acc": 0.6, "dev_acc": 0.6} for t in targets},
           "mean_gain": float(np.mean([p["gain"] for p in pairs])),
           "measures": {m: {"label": MEASURES[m][0], "description": MEASURES[m][1]} for m in measures},
           "spaces": spaces, "pairs": pairs, "seconds": 1.0, "bank_seconds": 10.0,
           "seed_agreement": None if seeds < 2 else {"spearman_pooled": 0.8, "per_target": {t: 0.7 for t in targets},
                                                     "mean_per_target": 0.7, "seeds": list(range(seeds))}}
    if ranking:
        rep["ranking"] = {m: ranking_report(pairs, f"sim_{m}", n_boot=200) for m in measures}
    return rep


def old_report() -> dict:
    """The old format (the shipped demo report before the ranking metrics): no measures, ranking, seeds,
    gain_seeds or seed_agreement; an ATTEMPT space with a single scored pair."""
    rep = fake_report(3, 10, seeds=1, measures=("prompt", "intrinsic", "text"), ranking=False)
    for k in ("measures", "seeds", "seed_agreement", "sources"):
        rep.pop(k)
    for p in rep["pairs"]:
        p.pop("gain_seeds")
        p["sim_attention"] = None
    rep["pairs"][0]["sim_attention"] = 0.3
    rep["spaces"]["attention"] = {"spearman": None, "p_value": None, "n_pairs": 1, "per_target_mean": None,
                                  "per_target": {rep["targets"][0]: None}}
    return rep


# --------------------------------------------------------------------------------------------------
# the tables


def test_gain_matrix_masks_self_cells_and_orders_by_clustering():
    # two blocks of sources: b* help targets A*, c* help targets B*; listed interleaved, the clustering groups them
    pairs = []
    targets = ["A1", "B1", "A2", "B2"]
    sources = ["b1", "c1", "b2", "c2", "b3", "c3", "A1", "B1"]
    for t in targets:
        for s in sources:
            helps = (t[0] == "A") == (s[0] in "bA")
            pairs.append({"target": t, "source": s, "gain": (0.05 if helps else -0.05) + 0.001 * len(pairs)})
    t = tf.gain_matrix_table(pairs)
    assert math.isnan(t.loc["A1", "A1"]) and math.isnan(t.loc["B1", "B1"])  # a target's own cell: masked
    assert t.loc["A2", "b1"] == pytest.approx(100 * next(p["gain"] for p in pairs if p["target"] == "A2" and p["source"] == "b1"))
    rows, cols = list(t.index), list(t.columns)
    assert sorted(rows) == sorted(targets) and sorted(cols) == sorted(sources)

    def contiguous(order, group):
        pos = sorted(order.index(x) for x in group)
        return pos == list(range(pos[0], pos[0] + len(pos)))

    assert contiguous(rows, ["A1", "A2"]) and contiguous(rows, ["B1", "B2"])
    assert contiguous(cols, ["b1", "b2", "b3", "A1"]) and contiguous(cols, ["c1", "c2", "c3", "B1"])
    fig = tf.gain_matrix_figure(t)
    hm = fig.data[0]
    assert hm.type == "heatmap" and hm.zmid == 0 and hm.zmin == -hm.zmax and "gain" in hm.colorbar.title.text
    z = np.asarray(hm.z, dtype=float)
    assert np.isnan(z[rows.index("A1"), cols.index("A1")])  # drawn blank
    assert any("not its own source" in a.text for a in fig.layout.annotations)  # the note says so


def test_gain_matrix_with_one_target_clusters_only_the_sources():
    pairs = [{"target": "t", "source": f"s{i}", "gain": g} for i, g in enumerate([0.01, 0.05, -0.02, 0.049, -0.021])]
    t = tf.gain_matrix_table(pairs)
    assert list(t.index) == ["t"] and sorted(t.columns) == [f"s{i}" for i in range(5)]
    cols = list(t.columns)
    assert abs(cols.index("s1") - cols.index("s3")) == 1 and abs(cols.index("s2") - cols.index("s4")) == 1
    assert tf.gain_matrix_table([]).empty


def test_ranked_sources_table_on_a_hand_example():
    pairs = [{"target": "T", "source": s, "same_family": s == "b", "gain": g, "gain_seeds": [g - 0.01, g + 0.01],
              "sim_prompt": p, "sim_text": x}
             for s, g, p, x in [("a", 0.01, 0.2, 0.9), ("b", 0.04, 0.8, 0.1), ("c", -0.02, 0.5, 0.5),
                                ("d", 0.02, None, 0.3)]]
    pairs.append({"target": "U", "source": "a", "gain": 0.5, "sim_prompt": 1.0, "sim_text": 1.0})  # another target
    t = tf.ranked_sources_table(pairs, "T", {"prompt": "raw", "text": "text"})
    assert t["source"].tolist() == ["b", "d", "a", "c"]  # by gain, largest first
    assert t["gain_points"].tolist() == pytest.approx([4, 2, 1, -2])
    assert t["gain_seed_0"].tolist() == pytest.approx([3, 1, 0, -3]) and "gain_seed_1" in t
    assert t["oracle_rank"].tolist() == [1, 2, 3, 4]
    assert t["rank_prompt"].tolist()[:1] == [1] and t.set_index("source")["rank_prompt"].to_dict() == \
        pytest.approx({"b": 1, "a": 3, "c": 2, "d": math.nan}, nan_ok=True)  # no score: unranked
    assert t.set_index("source")["rank_text"].to_dict() == {"a": 1, "b": 4, "c": 2, "d": 3}
    fig = tf.ranked_sources_figure(t, {"prompt": "raw", "text": "text"}, "T",
                                   per_target={"prompt": {"ndcg@3": 0.9}})
    grid = fig.data[0]
    assert grid.type == "heatmap" and grid.zmid == 0
    assert list(grid.y) == ["oracle (sorted by gain)", "raw · NDCG@3 0.90", "text", "random order (expected: the mean gain)"]
    z = np.asarray(grid.z, dtype=float)
    assert z[0].tolist() == pytest.approx([4, 2, 1, -2])  # the oracle: sources by gain
    assert z[1].tolist() == pytest.approx([4, -2, 1, math.nan], nan_ok=True)  # b, c, a: the measure's order; d unscored
    assert z[2].tolist() == pytest.approx([1, -2, 2, 4])  # text: a, c, d, b
    assert z[3].tolist() == pytest.approx([1.25] * 4)  # random order: the mean gain everywhere
    assert [c[0] for c in grid.customdata[1]][:3] == ["b", "c", "a"]


def test_metric_table_has_every_measure_and_a_random_order_row():
    rep = fake_report(4, 12)
    t = tf.metric_table(rep, rep["ranking"])
    assert t.columns.tolist() == tf.METRIC_COLUMNS
    assert t["measure"].tolist() == [MEASURES[m][0] for m in MEASURES] + ["random order (expected)"]
    row = t.set_index("measure").loc["raw prompt (centred cosine)"]
    assert row["targets p < 0.05"].endswith("/ 4") and "[" in row["NDCG@3"] and "[" in row["Regret@3 (points)"]
    pooled = rep["ranking"]["prompt"]["pooled"]["ndcg@3"]
    assert row["NDCG@3"].startswith(f"{pooled['mean']:.2f} [{pooled['ci_low']:.2f}")
    rnd = t.set_index("measure").loc["random order (expected)"]
    assert rnd["targets p < 0.05"] == "0.2 / 4"  # 5% of 4 targets
    # the prompt measure tracks the gains: it beats random order on NDCG@3
    assert float(row["NDCG@3"].split()[0]) > float(rnd["NDCG@3"].split()[0])
    assert "Noise ceiling" in tf.noise_ceiling_text(rep) and "+0.80" in tf.noise_ceiling_text(rep)
    assert "not measured" in tf.noise_ceiling_text(fake_report(2, 5, seeds=1))


def test_an_old_report_computes_its_ranking_and_falls_back_to_short_names():
    rep = old_report()
    labels = tf.measure_labels(rep)
    assert labels == {"prompt": "raw prompt", "intrinsic": "intrinsic (Proj)", "text": "text baseline",
                      "attention": "ATTEMPT attention"}
    rankings = tf.report_rankings(rep, n_boot=50)
    assert rankings["prompt"]["n_targets"] == 3 and rankings["attention"]["n_targets"] == 0
    t = tf.metric_table(rep, rankings)
    assert t.set_index("measure").loc["ATTEMPT attention", "NDCG@3"] == "–"  # one pair: nothing to rank
    assert "random order (expected)" in t["measure"].tolist()
    ranked = tf.ranked_sources_table(rep["pairs"], rep["targets"][0], labels)
    assert "gain_seed_0" not in ranked and len(ranked) == 10
    curve = tf.topk_curve_table(rankings, labels)
    assert set(curve["measure"]) <= set(labels) and len(curve)
    for fig in (tf.topk_curve_figure(curve), tf.ranked_sources_figure(ranked, labels, rep["targets"][0]),
                tf.gain_matrix_figure(tf.gain_matrix_table(rep["pairs"]))):
        assert layout_defects(fig, FULL_WIDTH) == []


def test_topk_curve_reads_the_pooled_curve_or_pools_the_targets():
    rep = fake_report(3, 8)
    labels = tf.measure_labels(rep)
    pooled = tf.topk_curve_table(rep["ranking"], labels)
    r = rep["ranking"]["prompt"]
    got = pooled[pooled["measure"] == "prompt"]
    assert got["k"].tolist() == list(range(1, 9))
    assert got["share"].tolist() == pytest.approx(r["share_curve"]["share"])  # the ranking's pooled curve
    assert got["share"].iloc[-1] == pytest.approx(1.0)
    # a ranking without one (stored before it had it): the mean over the targets' curves
    curves = [c for c in r["share_curves"].values() if all(v is not None for v in c["share"])]
    without = {name: {k: v for k, v in rk.items() if k != "share_curve"} for name, rk in rep["ranking"].items()}
    got = tf.topk_curve_table(without, labels)
    assert got[got["measure"] == "prompt"]["share"].tolist() == pytest.approx(
        [np.mean([c["share"][i] for c in curves]) for i in range(8)])
    # the lead's pooled share_curve, where the report has it, is read as it is
    rep["ranking"]["prompt"]["share_curve"] = {"k": [1, 2], "share": [0.5, 1.0], "random": [0.2, 1.0], "n_targets": 2}
    got = tf.topk_curve_table(rep["ranking"], labels)
    assert got[got["measure"] == "prompt"]["share"].tolist() == [0.5, 1.0]
    fig = tf.topk_curve_figure(pooled)
    names = [tr.name for tr in fig.data]
    assert names[0].startswith("oracle") and "random order (expected)" in names
    assert fig.layout.yaxis.title.text == "share of the best source's gain" and "k:" in fig.layout.xaxis.title.text


# --------------------------------------------------------------------------------------------------
# readable at 1,400 px


@pytest.mark.parametrize("n_targets,n_sources", [(1, 22), (3, 24), (8, 30)])
def test_gain_matrix_reads_at_1400_px(n_targets, n_sources):
    rep = fake_report(n_targets, n_sources, seeds=1, ranking=False)
    fig = tf.gain_matrix_figure(tf.gain_matrix_table(rep["pairs"]))
    assert layout_defects(fig, FULL_WIDTH) == []
    assert len(fig.data[0].x) >= n_sources  # every source has its column and its label


@pytest.mark.parametrize("n_measures", [1, 3, 7])
def test_new_figures_read_at_1400_px(n_measures):
    rep = fake_report(4, 24, measures=tuple(MEASURES)[:n_measures])
    labels = tf.measure_labels(rep)
    target = rep["targets"][0]
    ranked = tf.ranked_sources_table(rep["pairs"], target, labels)
    per = {m: rep["ranking"][m]["per_target"].get(target) for m in labels}
    figs = {"topk": (tf.topk_curve_figure(tf.topk_curve_table(rep["ranking"], labels)), CHART_WIDTH),
            "topk_full": (tf.topk_curve_figure(tf.topk_curve_table(rep["ranking"], labels), width=FULL_WIDTH), FULL_WIDTH),
            "ranked": (tf.ranked_sources_figure(ranked, labels, target, per_target=per), FULL_WIDTH)}
    defects = {k: d for k, (fig, w) in figs.items() if (d := layout_defects(fig, w))}
    assert not defects, defects


@pytest.mark.parametrize("n_measures", [1, 2, 5, 7])
@pytest.mark.parametrize("width", [CHART_WIDTH, FULL_WIDTH])
def test_transfer_figure_reads_at_1400_px_with_long_measure_labels(n_measures, width):
    rep = fake_report(3, 10, seeds=1, measures=tuple(MEASURES)[:n_measures], ranking=False)
    fig = tf.transfer_figure(tf.transfer_table(rep["pairs"]), rep["spaces"], labels=tf.measure_labels(rep), width=width)
    assert layout_defects(fig, width) == []
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == n_measures and all("Spearman" in x for x in titles)
    assert titles[0].startswith("raw prompt")  # the report's label, not the short fallback
    # panel titles sit on their own panel: above its top, below the bottom of the panel above (with its x axis)
    plot_h = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    for i, a in enumerate(fig.layout.annotations):
        row = i // 2
        if row == 0:
            continue
        above = fig.layout[f"yaxis{'' if i - 2 == 0 else i - 1}"].domain[0] * plot_h  # the panel above's bottom
        top_of_title = a.y * plot_h + (a.text.count("<br>") + 1) * 13 * 1.3
        assert top_of_title + 40 <= above, (i, top_of_title, above)


def test_metric_table_is_plain_strings_for_display():
    rep = fake_report(2, 6)
    t = tf.metric_table(rep, rep["ranking"])
    assert all(isinstance(v, str) for v in t.drop(columns="measure").to_numpy().ravel())
    assert isinstance(t, pd.DataFrame)
