"""figures.py: the tables behind each chart (exact numbers) and what the figures draw."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from ipt_core import figures, maps


def names_of(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.name]


# --------------------------------------------------------------------------------------------------
# prompt tuning


def test_pt_results_table_and_figure():
    runs = [{"task": "b", "family": "spam", "seed": s, "test_acc": a} for s, a in enumerate([0.6, 0.8])]
    runs += [{"task": "a", "family": "topic", "seed": 0, "test_acc": 0.5}]
    zs = [{"task": "a", "test_acc": 0.4}, {"task": "b", "test_acc": 0.55}, {"task": "c", "family": "x", "test_acc": 0.3}]
    lp = [{"task": "b", "test_acc": 0.9}]
    t = figures.pt_results_table(runs, zs, lp)
    assert t["task"].tolist() == ["b", "a", "c"]  # by family, then task
    b = t.set_index("task").loc["b"]
    assert b.pt_mean == pytest.approx(0.7) and b.pt_std == pytest.approx(np.std([0.6, 0.8], ddof=0))
    assert b.n_seeds == 2 and b.zero_shot == 0.55 and b.probe == 0.9
    a = t.set_index("task").loc["a"]
    assert a.pt_std == 0.0 and math.isnan(a.probe)
    assert t.set_index("task").loc["c"].n_seeds == 0 and math.isnan(t.set_index("task").loc["c"].pt_mean)
    fig = figures.pt_results_figure(t)
    assert isinstance(fig, go.Figure)
    assert [tr.type for tr in fig.data] == ["bar"] * 3
    assert list(fig.data[0].y[:1]) == [pytest.approx(0.7)]
    assert list(fig.data[0].error_y.array[:1]) == [pytest.approx(b.pt_std)]
    assert "zero-shot" in names_of(fig) and "linear probe" in names_of(fig)
    assert figures.pt_results_table([]).empty
    figures.pt_results_figure(figures.pt_results_table([]))  # empty data draws an empty chart


def test_dev_curves():
    runs = [{"task": "a", "seed": s, "dev_curve": [[0, 0.5], [10, 0.6 + s / 10]]} for s in range(2)]
    t = figures.dev_curves_table(runs + [{"task": "b", "seed": 0}])
    assert t.shape == (4, 4) and t.dev_acc.tolist() == [0.5, 0.6, 0.5, 0.7]
    fig = figures.dev_curves_figure(t)
    assert len(fig.data) == 2 and [tr.showlegend for tr in fig.data] == [True, False]
    assert fig.data[0].line.color == fig.data[1].line.color  # colour per task


# --------------------------------------------------------------------------------------------------
# task map


def test_task_map_similarity_dendrogram():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(1, 6)) * 3 + rng.normal(size=(3, 6)) * 0.1 for _ in range(2)])
    names = ["a0", "a1", "a2", "b0", "b1", "b2"]
    fams = ["A"] * 3 + ["B"] * 3
    t = figures.task_map_table(maps.project(x), names, fams)
    assert t.columns.tolist() == ["task", "family", "x", "y"] and len(t) == 6
    fig = figures.task_map_figure(t, "map", highlight=["a1"])
    assert names_of(fig) == ["A", "B", "selected"]
    assert list(fig.data[0].text) == ["a0", "a1", "a2"]  # hover/labels are the tasks
    assert "%{customdata[0]}" in fig.data[0].hovertemplate
    with pytest.raises(ValueError):
        figures.task_map_table([[0, 0]], names, fams)

    sim = maps.cosine_similarity(x)
    order = maps.cluster_order(sim)
    st = figures.similarity_table(sim, names, order)
    assert list(st.index) == [names[i] for i in order] == list(st.columns)
    assert st.loc["a0", "b1"] == pytest.approx(sim[0, 4])
    hm = figures.similarity_heatmap(st)
    assert hm.data[0].type == "heatmap" and list(hm.data[0].x) == list(st.columns)

    d = maps.dendrogram_data(sim, names)
    dt = figures.dendrogram_table(d)
    assert len(dt) == 5 and dt["size"].iloc[-1] == 6
    assert set(dt.left).union(dt.right) >= {"a0", "a1", "a2", "b0", "b1", "b2"}
    # the first merges are within one family (the clusters are tight)
    first = dt.iloc[0]
    assert first.left[0] == first.right[0]
    df = figures.dendrogram_figure(d)
    assert len(df.data) == 5 and list(df.layout.xaxis.ticktext) == d["labels"]


# --------------------------------------------------------------------------------------------------
# recovery


def ipt_rows() -> list[dict]:
    rows = []
    for d in (4, 16):
        for setting in ("seen", "unseen"):
            for sub in ("found", "random"):
                for task in ("t1", "t2"):
                    for seed in (0, 1):
                        rec = 0.5 + d / 100 + (0.1 if sub == "found" else 0) + seed / 100 + (0.02 if task == "t2" else 0)
                        gain = None if (task == "t2" and seed == 1) else rec - 0.5
                        rows.append({"d": d, "setting": setting, "subspace": sub, "task": task, "family": "F",
                                     "seed": seed, "recovery": rec, "gain_recovery": gain})
    return rows


def test_recovery_table_from_rows():
    t = figures.recovery_table(ipt_rows())
    assert set(t.columns) == {"d", "setting", "subspace", "metric", "mean", "std", "n_seeds"}
    r = t[(t.metric == "recovery") & (t.d == 4) & (t.setting == "seen") & (t.subspace == "found")].iloc[0]
    per_seed = [np.mean([0.64 + s / 100, 0.66 + s / 100]) for s in (0, 1)]
    assert r["mean"] == pytest.approx(np.mean(per_seed)) and r["std"] == pytest.approx(np.std(per_seed, ddof=0))
    assert r.n_seeds == 2
    # gain recovery skips null rows: seed 1 has only t1
    g = t[(t.metric == "gain_recovery") & (t.d == 4) & (t.setting == "seen") & (t.subspace == "found")].iloc[0]
    assert g["mean"] == pytest.approx(np.mean([np.mean([0.14, 0.16]), 0.15]))
    assert len(t) == 2 * 2 * 2 * 2  # metric x d x setting x subspace
    assert figures.recovery_table([]).empty


def test_rows_aggregation_agrees_with_the_core_summary():
    """The page computes task-count / held-out charts from rows: same numbers as the core's summary."""
    core = pytest.importorskip("ipt_core.ipt_experiments")
    rows = [dict(r, ist_test_acc=0.6, pt_test_acc=0.7) for r in ipt_rows()]
    from_rows = figures.recovery_table(rows)
    from_summary = figures.recovery_table(rows, "d", core._summary(rows))
    key = ["d", "setting", "subspace", "metric"]
    a = from_rows.sort_values(key).reset_index(drop=True)
    b = from_summary.sort_values(key).reset_index(drop=True)
    assert a[key].equals(b[key])
    np.testing.assert_allclose(a["mean"], b["mean"])
    np.testing.assert_allclose(a["std"], b["std"], atol=1e-12)


def test_recovery_table_prefers_the_stored_summary():
    summary = {"found": {"seen": {"4": {"recovery": 0.9, "recovery_std": 0.01, "gain_recovery": 0.5,
                                        "gain_recovery_std": 0.1}}}}
    t = figures.recovery_table(ipt_rows(), "d", summary)
    assert len(t) == 2
    rec = t[t.metric == "recovery"].iloc[0]
    assert (rec.d, rec["mean"], rec["std"], rec.n_seeds) == (4, 0.9, 0.01, 2)


def test_recovery_figure_bands_and_paper_reference():
    t = figures.recovery_table(ipt_rows())
    fig = figures.recovery_figure(t)
    lines = [tr for tr in fig.data if tr.name and "subspace" in tr.name]
    assert len(lines) == 8  # 4 series x 2 panels
    assert sum(1 for tr in fig.data if tr.fill == "toself") == 8  # a band per line
    ref = [tr for tr in fig.data if tr.name and "paper" in tr.name]
    assert len(ref) == 2 and all("BART-base" in tr.name and "100 tasks" in tr.name for tr in ref)
    pts = {(tr.name.rsplit(", ", 1)[1], d, y) for tr in ref for d, y in zip(tr.x, tr.y)}
    assert pts == {("seen", 250, 0.97), ("unseen", 250, 0.83), ("seen", 5, 0.87), ("unseen", 5, 0.65)}
    assert fig.layout.xaxis.type == "log"
    no_ref = figures.recovery_figure(t, reference=False)
    assert not [tr for tr in no_ref.data if tr.name and "paper" in tr.name]
    # a categorical x (held-out family) draws error bars instead of bands
    rows = [dict(r, heldout_family="spam" if r["d"] == 4 else "topic") for r in ipt_rows()]
    cat = figures.recovery_figure(figures.recovery_table(rows, "heldout_family"), "heldout_family", reference=False)
    assert not [tr for tr in cat.data if tr.fill == "toself"]


def test_recovery_bars():
    t = figures.recovery_bars_table(ipt_rows(), 16)
    assert len(t) == 2 * 2 * 2  # task x setting x subspace
    r = t[(t.task == "t1") & (t.setting == "unseen") & (t.subspace == "random")].iloc[0]
    assert r.recovery == pytest.approx(np.mean([0.66, 0.67])) and r.n_seeds == 2
    assert r.recovery_std == pytest.approx(np.std([0.66, 0.67], ddof=0))
    fig = figures.recovery_bars_figure(t, "gain_recovery")
    assert len(fig.data) == 4 and all(tr.type == "bar" for tr in fig.data)
    with pytest.raises(ValueError):
        figures.recovery_bars_figure(t, "accuracy")
    assert figures.recovery_bars_table(ipt_rows(), 999).empty


# --------------------------------------------------------------------------------------------------
# stability


def curves() -> list[dict]:
    out = []
    for task, off in (("a", 0.0), ("b", 0.1)):
        for seed in range(3):
            for init in ("random", "ist"):
                out.append({"task": task, "seed": seed, "init": init, "steps": [0, 10, 20],
                            "dev_acc": [0.5 + off, 0.6 + off + seed / 10 * (init == "random"), 0.7 + off]})
    # an early-stopped seed: step 20 missing for task b seed 2 ist
    out[-1] = dict(out[-1], steps=[0, 10], dev_acc=[0.6, 0.7])
    return out


def test_stability_table_one_task():
    t = figures.stability_table(curves(), "a")
    mean = t[(t.init == "random") & (t.series == "mean")]
    assert mean.step.tolist() == [0, 10, 20]
    assert mean.dev_acc.tolist() == pytest.approx([0.5, 0.7, 0.7])
    assert mean["std"].tolist() == pytest.approx([0.0, np.std([0.6, 0.7, 0.8], ddof=0), 0.0])
    assert mean.n_seeds.tolist() == [3, 3, 3]
    assert sorted(t[t.init == "ist"].series.unique()) == ["mean", "seed 0", "seed 1", "seed 2"]


def test_stability_table_all_tasks_uses_shared_steps():
    t = figures.stability_table(curves())
    seed2 = t[(t.init == "ist") & (t.series == "seed 2")]
    assert seed2.step.tolist() == [0, 10]  # task b seed 2 stopped early: step 20 is not shared
    assert seed2.dev_acc.tolist() == pytest.approx([np.mean([0.5, 0.6]), np.mean([0.6, 0.7])])
    assert figures.stability_table([]).empty


def test_stability_figure():
    t = figures.stability_table(curves(), "a")
    fig = figures.stability_figure(t)
    legend = names_of(fig)
    assert any("random init" in n for n in legend) and any("IST" in n for n in legend)
    assert sum(1 for tr in fig.data if tr.fill == "toself") == 2
    assert len(fig.data) == 2 * (3 + 2)  # per init: 3 seed traces, band, mean line
    assert len(figures.stability_figure(t, traces=False).data) == 4


# --------------------------------------------------------------------------------------------------
# methods


def test_method_compare_attention_codebook():
    rows = [{"method": m, "task": t, "seed": s, "test_acc": 0.5 + 0.1 * (m == "vip") + s / 100, "test_f1": 0.4,
             "trainable_params": 100, "seconds": 2.0} for m in ("pt", "vip") for t in ("a", "b") for s in (0, 1)]
    t = figures.method_compare_table(rows)
    assert len(t) == 4
    v = t[(t.method == "vip") & (t.task == "a")].iloc[0]
    assert v.test_acc == pytest.approx(0.605) and v.n_seeds == 2
    assert names_of(figures.method_compare_figure(t)) == ["pt", "vip"]
    assert figures.method_compare_table([]).empty

    att = {"targets": ["a", "b"], "sources": ["x", "y", "z"], "weights": [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]}
    at = figures.attention_table(att)
    assert at.shape == (2, 3) and at.loc["b", "z"] == 0.8
    assert figures.attention_heatmap(at).data[0].type == "heatmap"
    cu = figures.codebook_usage_table([0.5, 0.25, 0.25])
    assert cu.usage.sum() == pytest.approx(1.0)
    assert figures.codebook_usage_figure(cu).data[0].type == "bar"


def test_every_figure_is_exportable_json():
    """The figures serialise (what the page and the modebar's SVG export use), NaNs included."""
    t = figures.pt_results_table([{"task": "a", "family": "f", "seed": 0, "test_acc": 0.5}], [], [])
    for fig in (figures.pt_results_figure(t), figures.recovery_figure(figures.recovery_table(ipt_rows())),
                figures.stability_figure(figures.stability_table(curves()))):
        assert isinstance(fig.to_json(), str)


def test_sweeps_side_by_side_compare_found_and_random_on_dev_and_test():
    from ipt_core import figures

    def rows(shift):
        return [{"d": 16, "setting": st, "subspace": sub, "seed": s, "task": t,
                 "gain_recovery": shift + (0.5 if sub == "found" else 0.0) + 0.1 * s,
                 "dev_gain_recovery": shift + (0.4 if sub == "found" else 0.0)}
                for st in ("seen", "unseen") for sub in ("found", "random") for s in (0, 1) for t in ("a", "b")] + \
               [{"d": 4, "setting": "seen", "subspace": "found", "seed": 0, "task": "a", "gain_recovery": 9.0}]

    old = [dict(r, dev_gain_recovery=None) for r in rows(0.0)]  # a sweep from before dev scores were kept
    t = figures.sweep_comparison_table([("norm layer", rows(0.0)), ("norm none", rows(-0.2)), ("old", old)], 16)
    found = t[(t["split"] == "test") & (t["subspace"] == "found") & (t["setting"] == "seen")].set_index("sweep")
    assert found.loc["norm layer", "mean"] == pytest.approx(0.55) and found.loc["norm layer", "std"] == pytest.approx(0.05)
    assert found.loc["norm none", "mean"] == pytest.approx(0.35) and found.loc["norm layer", "n_tasks"] == 2
    dev = t[t["split"] == "dev"]
    assert set(dev["sweep"]) == {"norm layer", "norm none"}  # no dev scores: no dev rows, not zeros
    assert 9.0 not in set(t["mean"])  # only the chosen d_I
    fig = figures.sweep_comparison_figure(t, "dev")
    assert len(fig.data) == 4 and list(fig.data[0].x) == ["norm layer", "norm none"]


def acc_rows():
    """Two tasks x two seeds of IST/PT/zero-shot accuracies; task b's PT barely beats zero-shot."""
    rows = []
    for seed, (ist_a, ist_b) in enumerate([(0.6, 0.49), (0.7, 0.50)]):
        for task, ist, pt, zs in (("a", ist_a, 0.7, 0.5), ("b", ist_b, 0.51, 0.5)):
            g = (ist - zs) / (pt - zs)
            rows.append({"d": 16, "setting": "unseen", "subspace": "found", "task": task, "seed": seed,
                         "recovery": ist / pt, "gain_recovery": g, "ist_test_acc": ist, "pt_test_acc": pt,
                         "zero_shot_test_acc": zs, "ist_dev_acc": ist, "pt_dev_acc": pt + 0.1, "zero_shot_dev_acc": zs,
                         "dev_gain_recovery": (ist - zs) / (pt + 0.1 - zs)})
    return rows


def test_pooled_gain_recovery_weighs_tasks_by_pt_gain():
    from ipt_core.metrics import pooled_gain_recovery

    rows = acc_rows()
    seed0 = [r for r in rows if r["seed"] == 0]
    assert pooled_gain_recovery(seed0) == pytest.approx((0.1 - 0.01) / (0.2 + 0.01))
    assert np.mean([r["gain_recovery"] for r in seed0]) == pytest.approx(-0.25)  # what pooling avoids
    assert pooled_gain_recovery(seed0, "dev") == pytest.approx((0.1 - 0.01) / (0.3 + 0.11))
    assert math.isnan(pooled_gain_recovery([dict(seed0[0], pt_test_acc=0.5)]))  # PT gains nothing: undefined
    assert math.isnan(pooled_gain_recovery([{"ist_test_acc": 0.6}]))  # rows without the scores are left out
    with pytest.raises(ValueError, match="split 'val'"):
        pooled_gain_recovery(seed0, "val")


def test_recovery_table_and_figure_pooled_gain_with_spread():
    t = figures.recovery_table(acc_rows())
    p = t[t.metric == "pooled_gain_recovery"].iloc[0]
    per_seed = [(0.1 - 0.01) / 0.21, (0.2 + 0.0) / 0.21]
    assert p["mean"] == pytest.approx(np.mean(per_seed)) and p["std"] == pytest.approx(np.std(per_seed))
    assert p.n_seeds == 2
    # the stored-summary path adds the pooled metric from the rows too
    summary = {"found": {"unseen": {"16": {"recovery": 0.9, "gain_recovery": 0.1}}}}
    assert "pooled_gain_recovery" in set(figures.recovery_table(acc_rows(), "d", summary)["metric"])
    fig = figures.recovery_figure(t, gain="pooled_gain_recovery")
    assert "pooled" in fig.layout.annotations[1].text
    gain_line = [tr for tr in fig.data if tr.name and "subspace" in tr.name and tr.xaxis == "x2"][0]
    assert list(gain_line.y) == [pytest.approx(p["mean"])]
    with pytest.raises(ValueError, match="gain 'nope'"):
        figures.recovery_figure(t, gain="nope")


def test_sweep_comparison_pooled():
    t = figures.sweep_comparison_table([("a", acc_rows())], 16, "pooled_gain_recovery")
    test = t[t["split"] == "test"].iloc[0]
    assert test["mean"] == pytest.approx(np.mean([0.09 / 0.21, 0.2 / 0.21])) and test.n_tasks == 2
    dev = t[t["split"] == "dev"].iloc[0]
    assert dev["mean"] == pytest.approx(np.mean([0.09 / 0.41, 0.2 / 0.41]))
    fig = figures.sweep_comparison_figure(t, "test", gain="pooled_gain_recovery")
    assert "pooled gain recovery" in fig.layout.yaxis.title.text
