"""figures.py: the tables behind each chart (exact numbers) and what the figures draw."""
from __future__ import annotations

import math
import re
from itertools import pairwise

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from render_checks import MEASURE_JS, rendered_defects

from ipt_core.analysis import map_quality as mq
from ipt_core.analysis import maps
from ipt_core.figures import ipt as ipt_figures
from ipt_core.figures import maps as map_figures
from ipt_core.figures import maps as mf
from ipt_core.figures import pt as pt_figures
from ipt_core.figures import transfer as transfer_figures
from ipt_core.figures.plotting import family_colors


def names_of(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data if t.name]


# --------------------------------------------------------------------------------------------------
# prompt tuning


def test_pt_results_table_and_figure():
    runs = [{"task": "b", "family": "spam", "seed": s, "test_acc": a} for s, a in enumerate([0.6, 0.8])]
    runs += [{"task": "a", "family": "topic", "seed": 0, "test_acc": 0.5}]
    zs = [{"task": "a", "test_acc": 0.4}, {"task": "b", "test_acc": 0.55}, {"task": "c", "family": "x", "test_acc": 0.3}]
    lp = [{"task": "b", "test_acc": 0.9}]
    t = pt_figures.pt_results_table(runs, zs, lp)
    assert t["task"].tolist() == ["b", "a", "c"]  # by family, then task
    b = t.set_index("task").loc["b"]
    assert b.pt_mean == pytest.approx(0.7) and b.pt_std == pytest.approx(np.std([0.6, 0.8], ddof=0))
    assert b.n_seeds == 2 and b.zero_shot == 0.55 and b.probe == 0.9
    a = t.set_index("task").loc["a"]
    assert a.pt_std == 0.0 and math.isnan(a.probe)
    assert t.set_index("task").loc["c"].n_seeds == 0 and math.isnan(t.set_index("task").loc["c"].pt_mean)
    fig = pt_figures.pt_results_figure(t)
    assert isinstance(fig, go.Figure)
    assert [tr.type for tr in fig.data] == ["bar"] * 3
    assert list(fig.data[0].y[:1]) == ["b"] and list(fig.data[0].x[:1]) == [pytest.approx(0.7)]  # horizontal bars
    assert list(fig.data[0].error_x.array[:1]) == [pytest.approx(b.pt_std)]
    assert "zero-shot" in names_of(fig) and "linear probe" in names_of(fig)
    assert pt_figures.pt_results_table([]).empty
    pt_figures.pt_results_figure(pt_figures.pt_results_table([]))  # empty data draws an empty chart


def test_dev_curves():
    runs = [{"task": "a", "seed": s, "dev_curve": [[0, 0.5], [10, 0.6 + s / 10]]} for s in range(2)]
    t = pt_figures.dev_curves_table(runs + [{"task": "b", "seed": 0}])
    assert t.shape == (4, 5) and t.dev_acc.tolist() == [0.5, 0.6, 0.5, 0.7] and t.chance.isna().all()
    fig = pt_figures.dev_curves_figure(t)
    curves = [tr for tr in fig.data if tr.legendgroup == "a"]
    assert len(curves) == 2 and [tr.showlegend for tr in curves] == [True, False]
    assert curves[0].line.color == curves[1].line.color  # colour per task
    assert any(n.startswith("no chance line") for n in names_of(fig))  # no labels: the legend says why
    # with labels: a chance line per level, one legend entry, the tasks of each level in its hover
    labelled = [dict(r, labels=["x", "y"]) for r in runs] + [{"task": "c", "seed": 0, "dev_curve": [[0, 0.4]],
                                                             "labels": ["x", "y", "z"]}]
    fig = pt_figures.dev_curves_figure(pt_figures.dev_curves_table(labelled))
    chance = [tr for tr in fig.data if tr.legendgroup == "chance"]
    assert sorted(tr.y[0] for tr in chance) == [pytest.approx(1 / 3), 0.5]
    assert [tr.showlegend for tr in chance] == [True, False] and "c" in chance[0].hovertemplate


# --------------------------------------------------------------------------------------------------
# task map


def test_task_map_similarity_dendrogram():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(1, 6)) * 3 + rng.normal(size=(3, 6)) * 0.1 for _ in range(2)])
    names = ["a0", "a1", "a2", "b0", "b1", "b2"]
    fams = ["A"] * 3 + ["B"] * 3
    t = map_figures.task_map_table(maps.project(x), names, fams)
    assert t.columns.tolist() == ["task", "family", "x", "y"] and len(t) == 6
    fig = map_figures.task_map_figure(t, "map", highlight=["a1"], labels="all")
    assert names_of(fig) == ["A", "B", "selected"]
    assert list(fig.data[0].text) == ["a0", "a1", "a2"]  # hover/labels are the tasks
    assert "%{customdata[0]}" in fig.data[0].hovertemplate
    with pytest.raises(ValueError):
        map_figures.task_map_table([[0, 0]], names, fams)

    sim = maps.cosine_similarity(x)
    order = maps.cluster_order(sim)
    st = map_figures.similarity_table(sim, names, order)
    assert list(st.index) == [names[i] for i in order] == list(st.columns)
    assert st.loc["a0", "b1"] == pytest.approx(sim[0, 4])
    hm = map_figures.similarity_heatmap(st)
    assert hm.data[0].type == "heatmap" and list(hm.data[0].x) == list(st.columns)

    d = maps.dendrogram_data(sim, names)
    dt = map_figures.dendrogram_table(d)
    assert len(dt) == 5 and dt["size"].iloc[-1] == 6
    assert set(dt.left).union(dt.right) >= {"a0", "a1", "a2", "b0", "b1", "b2"}
    # the first merges are within one family (the clusters are tight)
    first = dt.iloc[0]
    assert first.left[0] == first.right[0]
    df = map_figures.dendrogram_figure(d)
    assert len(df.data) == 5 and list(df.layout.yaxis.ticktext) == d["labels"]  # lying down: a row per task


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
    t = ipt_figures.recovery_table(ipt_rows())
    assert set(t.columns) == {"d", "setting", "subspace", "metric", "mean", "std", "n_seeds"}
    r = t[(t.metric == "recovery") & (t.d == 4) & (t.setting == "seen") & (t.subspace == "found")].iloc[0]
    per_seed = [np.mean([0.64 + s / 100, 0.66 + s / 100]) for s in (0, 1)]
    assert r["mean"] == pytest.approx(np.mean(per_seed)) and r["std"] == pytest.approx(np.std(per_seed, ddof=0))
    assert r.n_seeds == 2
    # gain recovery skips null rows: seed 1 has only t1
    g = t[(t.metric == "gain_recovery") & (t.d == 4) & (t.setting == "seen") & (t.subspace == "found")].iloc[0]
    assert g["mean"] == pytest.approx(np.mean([np.mean([0.14, 0.16]), 0.15]))
    assert len(t) == 2 * 2 * 2 * 2  # metric x d x setting x subspace
    assert ipt_figures.recovery_table([]).empty


def test_rows_aggregation_agrees_with_the_core_summary():
    """The page computes task-count / held-out charts from rows: same numbers as the core's summary."""
    from ipt_core.analysis.recovery_summary import summarise  # the core's summary (torch-free)

    rows = [dict(r, ist_test_acc=0.6, pt_test_acc=0.7) for r in ipt_rows()]
    from_rows = ipt_figures.recovery_table(rows)
    from_summary = ipt_figures.recovery_table(rows, "d", summarise(rows))
    key = ["d", "setting", "subspace", "metric"]
    a = from_rows.sort_values(key).reset_index(drop=True)
    b = from_summary.sort_values(key).reset_index(drop=True)
    assert a[key].equals(b[key])
    np.testing.assert_allclose(a["mean"], b["mean"])
    np.testing.assert_allclose(a["std"], b["std"], atol=1e-12)


def test_recovery_table_prefers_the_stored_summary():
    summary = {"found": {"seen": {"4": {"recovery": 0.9, "recovery_std": 0.01, "gain_recovery": 0.5,
                                        "gain_recovery_std": 0.1}}}}
    t = ipt_figures.recovery_table(ipt_rows(), "d", summary)
    assert len(t) == 2
    rec = t[t.metric == "recovery"].iloc[0]
    assert (rec.d, rec["mean"], rec["std"], rec.n_seeds) == (4, 0.9, 0.01, 2)


def test_recovery_figure_bands_and_paper_reference():
    t = ipt_figures.recovery_table(ipt_rows())
    fig = ipt_figures.recovery_figure(t)
    lines = [tr for tr in fig.data if tr.name and "subspace" in tr.name]
    assert len(lines) == 8  # 4 series x 2 panels
    assert sum(1 for tr in fig.data if tr.fill == "toself") == 8  # a band per line
    ref = [tr for tr in fig.data if tr.name and "paper" in tr.name]
    assert len(ref) == 2 and all("BART-base" in tr.name and "100 tasks" in tr.name for tr in ref)
    pts = {(tr.name.rsplit(", ", 1)[1], d, y) for tr in ref for d, y in zip(tr.customdata, tr.y)}
    assert pts == {("seen", 250, 0.97), ("unseen", 250, 0.83), ("seen", 5, 0.87), ("unseen", 5, 0.65)}
    # d_I 4 and the paper's 5 are too close on a log axis of a ~560 px chart: one even step per value, every one
    # labelled, the title saying so; both panels on the same axis
    assert fig.layout.xaxis.type == "linear" and list(fig.layout.xaxis.ticktext) == ["4", "5", "16", "250"]
    assert list(fig.layout.xaxis.tickvals) == [0, 1, 2, 3] and "evenly spaced" in fig.layout.xaxis.title.text
    assert sorted({x for tr in ref for x in tr.x}) == [1, 3] and fig.layout.xaxis2.matches == "x"
    assert fig.layout.legend.title.text == "lines and bands: mean ± std over 2 seeds"
    assert layout_defects(fig) == []
    no_ref = ipt_figures.recovery_figure(t, reference=False)
    assert not [tr for tr in no_ref.data if tr.name and "paper" in tr.name]
    # without the paper's points d_I 4 and 16 fit a log axis
    assert no_ref.layout.xaxis.type == "log" and list(no_ref.layout.xaxis.tickvals) == [4, 16]
    # one seed: no band, no "±"
    one = ipt_figures.recovery_figure(ipt_figures.recovery_table([r for r in ipt_rows() if r["seed"] == 0]))
    assert not [tr for tr in one.data if tr.fill == "toself"] and "±" not in one.layout.legend.title.text
    assert all("±" not in (tr.hovertemplate or "") for tr in one.data)
    # a categorical x (held-out family) draws points with error bars: no bands, no lines (families have no order)
    rows = [dict(r, heldout_family="spam" if r["d"] == 4 else "topic") for r in ipt_rows()]
    cat = ipt_figures.recovery_figure(ipt_figures.recovery_table(rows, "heldout_family"), "heldout_family", reference=False)
    assert not [tr for tr in cat.data if tr.fill == "toself"]
    assert all(tr.mode == "markers" for tr in cat.data if tr.name and "subspace" in tr.name)
    assert cat.layout.xaxis.title.text == "held-out family" and layout_defects(cat) == []


def test_old_figures_fail_the_checks():
    """What issue 31 saw, caught by the checker on the builders as they were (98c9451): the recovery chart's
    ticks 4 and 5 touching and its subplot titles overlapping and clipped; a method comparison of 30 tasks
    with its turned task names on top of each other."""
    old = "98c9451:ipt_core/figures/ipt.py"
    fig = _old_builder("recovery_figure", old)(ipt_figures.recovery_table(real_sweep_rows(), "d"))
    found = layout_defects(fig)
    assert any("tick labels '4' and '5'" in d for d in found)
    assert any("clipped" in d for d in found) and any("overlap" in d for d in found)
    rows = [{"method": m, "task": t, "seed": 0, "test_acc": 0.5} for m in ("pt", "vip") for t in REAL_NAMES]
    old_methods = _old_builder("method_compare_figure", old)(ipt_figures.method_compare_table(rows))
    assert any("tick labels 'ag_news' and 'airline_sentiment'" in d for d in layout_defects(old_methods))


@pytest.mark.parametrize("dims", [(2, 8, 32), (4, 16, 64), (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), (4, 5, 6)])
@pytest.mark.parametrize("reference", [True, False])
def test_recovery_figure_labels_every_dim_apart(dims, reference):
    """Issue 31: the ticks "4" and "5" touched. Whatever the dims, every d_I (and the paper's) is labelled,
    level or turned, and no two labels touch at ~560 px."""
    t = ipt_figures.recovery_table(real_sweep_rows(dims=dims, seeds=1), "d")
    for gain in ("gain_recovery", "pooled_gain_recovery"):
        fig = ipt_figures.recovery_figure(t, gain=gain, reference=reference)
        assert layout_defects(fig) == [], (dims, gain)
        expected = sorted(set(dims) | ({5, 250} if reference else set()))
        assert list(fig.layout.xaxis.ticktext) == [f"{d:g}" for d in expected]


def test_recovery_bars():
    t = ipt_figures.recovery_bars_table(ipt_rows(), 16)
    assert len(t) == 2 * 2 * 2  # task x setting x subspace
    r = t[(t.task == "t1") & (t.setting == "unseen") & (t.subspace == "random")].iloc[0]
    assert r.recovery == pytest.approx(np.mean([0.66, 0.67])) and r.n_seeds == 2
    assert r.recovery_std == pytest.approx(np.std([0.66, 0.67], ddof=0))
    fig = ipt_figures.recovery_bars_figure(t, "gain_recovery")
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert len(bars) == 4 and all(tr.orientation == "h" for tr in bars)
    assert names_of(fig)[4:] == ["0 = zero-shot level", "1 = PT level"]  # the reference lines, named
    assert "zero_shot_recovery" in t.columns and t["zero_shot_recovery"].isna().all()  # these rows have no accuracies
    with pytest.raises(ValueError):
        ipt_figures.recovery_bars_figure(t, "accuracy")
    assert ipt_figures.recovery_bars_table(ipt_rows(), 999).empty


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
    t = ipt_figures.stability_table(curves(), "a")
    mean = t[(t.init == "random") & (t.series == "mean")]
    assert mean.step.tolist() == [0, 10, 20]
    assert mean.dev_acc.tolist() == pytest.approx([0.5, 0.7, 0.7])
    assert mean["std"].tolist() == pytest.approx([0.0, np.std([0.6, 0.7, 0.8], ddof=0), 0.0])
    assert mean.n_seeds.tolist() == [3, 3, 3]
    assert sorted(t[t.init == "ist"].series.unique()) == ["mean", "seed 0", "seed 1", "seed 2"]


def test_stability_table_all_tasks_uses_shared_steps():
    t = ipt_figures.stability_table(curves())
    seed2 = t[(t.init == "ist") & (t.series == "seed 2")]
    assert seed2.step.tolist() == [0, 10]  # task b seed 2 stopped early: step 20 is not shared
    assert seed2.dev_acc.tolist() == pytest.approx([np.mean([0.5, 0.6]), np.mean([0.6, 0.7])])
    assert ipt_figures.stability_table([]).empty


def test_stability_figure():
    t = ipt_figures.stability_table(curves(), "a")
    fig = ipt_figures.stability_figure(t)
    legend = names_of(fig)
    assert any("random init" in n for n in legend) and any("IST" in n for n in legend)
    assert sum(1 for tr in fig.data if tr.fill == "toself") == 2
    assert len(fig.data) == 2 * (3 + 2) + 1  # per init: 3 seed traces, band, mean line; the note on chance
    assert len(ipt_figures.stability_figure(t, traces=False).data) == 4 + 1
    assert any("mean ± std over 3 seeds" in n for n in legend)
    assert legend[-1] == "no chance line: the number of labels is not known here"
    # with the label counts: a line at chance (the mean of 1 / labels over the tasks shown)
    for task, level in (("a", 0.5), (None, (1 / 2 + 1 / 4) / 2)):
        tc = ipt_figures.stability_table(curves(), task, n_labels={"a": 2, "b": 4})
        assert tc.chance.unique().tolist() == [pytest.approx(level)]
        fc = ipt_figures.stability_figure(tc)
        assert [sh.y0 for sh in fc.layout.shapes] == [pytest.approx(level)]
        assert names_of(fc)[-1] == f"chance (1 / labels): {level:.2f}" and layout_defects(fc) == []
    # one seed: no band, no "±"
    one = ipt_figures.stability_figure(ipt_figures.stability_table([c for c in curves() if c["seed"] == 0], "a"))
    assert not [tr for tr in one.data if tr.fill == "toself"] and not any("±" in n for n in names_of(one))


# --------------------------------------------------------------------------------------------------
# methods


def test_method_compare_attention_codebook():
    rows = [{"method": m, "task": t, "seed": s, "test_acc": 0.5 + 0.1 * (m == "vip") + s / 100, "test_f1": 0.4,
             "trainable_params": 100, "seconds": 2.0} for m in ("pt", "vip") for t in ("a", "b") for s in (0, 1)]
    t = ipt_figures.method_compare_table(rows)
    assert len(t) == 4
    v = t[(t.method == "vip") & (t.task == "a")].iloc[0]
    assert v.test_acc == pytest.approx(0.605) and v.n_seeds == 2 and math.isnan(v.chance)
    fig = ipt_figures.method_compare_figure(t)
    assert names_of(fig) == ["pt (mean ± std over 2 seeds)", "vip (mean ± std over 2 seeds)",
                             "no chance line: the number of labels is not known here"]
    assert all(tr.orientation == "h" and tr.error_x.visible for tr in fig.data if tr.type == "bar")
    assert ipt_figures.method_compare_table([]).empty
    # with the label counts (the page passes the suite's), a tick per task at chance; one seed: no error bars
    t1 = ipt_figures.method_compare_table([r for r in rows if r["seed"] == 0], n_labels={"a": 2, "b": 4})
    assert t1.set_index(["task", "method"]).loc[("b", "pt"), "chance"] == 0.25
    fig = ipt_figures.method_compare_figure(t1)
    chance = next(tr for tr in fig.data if tr.name == "chance (1/labels)")
    assert list(chance.y) == ["a", "b"] and list(chance.x) == [0.5, 0.25]
    assert names_of(fig)[0] == "pt (one seed)" and not fig.data[0].error_x.visible

    att = {"targets": ["a", "b"], "sources": ["x", "y", "z"], "weights": [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]}
    at = ipt_figures.attention_table(att)
    assert at.shape == (2, 3) and at.loc["b", "z"] == 0.8
    hm = ipt_figures.attention_heatmap(at)
    assert hm.data[0].type == "heatmap" and list(hm.data[0].y) == ["x", "y", "z"]  # a row per source prompt
    assert list(hm.data[0].x) == ["a", "b"] and hm.data[0].z[2][1] == 0.8 and "0.333" in hm.data[0].colorbar.title.text
    cu = ipt_figures.codebook_usage_table([0.5, 0.5, 0.0, 0.0])
    assert cu.usage.sum() == pytest.approx(1.0)
    fig = ipt_figures.codebook_usage_figure(cu)
    assert fig.data[0].type == "bar" and fig.layout.title.text.endswith("2 of 4 codes used")
    assert fig.layout.shapes[0].y0 == 0.25 and "uniform use: 1/4 = 0.250" in names_of(fig)


def test_every_figure_is_exportable_json():
    """The figures serialise (what the page and the modebar's SVG export use), NaNs included."""
    t = pt_figures.pt_results_table([{"task": "a", "family": "f", "seed": 0, "test_acc": 0.5}], [], [])
    for fig in (pt_figures.pt_results_figure(t), ipt_figures.recovery_figure(ipt_figures.recovery_table(ipt_rows())),
                ipt_figures.stability_figure(ipt_figures.stability_table(curves()))):
        assert isinstance(fig.to_json(), str)


def test_sweeps_side_by_side_compare_found_and_random_on_dev_and_test():
    from ipt_core.figures import ipt as ipt_figures

    def rows(shift):
        return [{"d": 16, "setting": st, "subspace": sub, "seed": s, "task": t,
                 "gain_recovery": shift + (0.5 if sub == "found" else 0.0) + 0.1 * s,
                 "dev_gain_recovery": shift + (0.4 if sub == "found" else 0.0)}
                for st in ("seen", "unseen") for sub in ("found", "random") for s in (0, 1) for t in ("a", "b")] + \
               [{"d": 4, "setting": "seen", "subspace": "found", "seed": 0, "task": "a", "gain_recovery": 9.0}]

    old = [dict(r, dev_gain_recovery=None) for r in rows(0.0)]  # a sweep from before dev scores were kept
    t = ipt_figures.sweep_comparison_table([("norm layer", rows(0.0)), ("norm none", rows(-0.2)), ("old", old)], 16)
    found = t[(t["split"] == "test") & (t["subspace"] == "found") & (t["setting"] == "seen")].set_index("sweep")
    assert found.loc["norm layer", "mean"] == pytest.approx(0.55) and found.loc["norm layer", "std"] == pytest.approx(0.05)
    assert found.loc["norm none", "mean"] == pytest.approx(0.35) and found.loc["norm layer", "n_tasks"] == 2
    dev = t[t["split"] == "dev"]
    assert set(dev["sweep"]) == {"norm layer", "norm none"}  # no dev scores: no dev rows, not zeros
    assert 9.0 not in set(t["mean"])  # only the chosen d_I
    fig = ipt_figures.sweep_comparison_figure(t, "dev")
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert len(bars) == 4 and list(bars[0].x) == ["norm layer", "norm none"]
    assert names_of(fig)[0] == "seen tasks, found subspace (mean ± std over 2 seeds)" and bars[0].error_y.visible
    assert names_of(fig)[-2:] == ["0 = zero-shot level", "1 = PT level"]
    one = ipt_figures.sweep_comparison_table([("a", [r for r in rows(0.0) if r["seed"] == 0])], 16)
    fig = ipt_figures.sweep_comparison_figure(one, "test")
    assert names_of(fig)[0] == "seen tasks, found subspace (one seed)" and not fig.data[0].error_y.visible
    # long labels: wrapped to their slot, level, no two touching
    long = [(f"MSF alpha = {a} (reconstruction weight)<br>(key{a})", rows(0.0)) for a in range(6)]
    fig = ipt_figures.sweep_comparison_figure(ipt_figures.sweep_comparison_table(long, 16), "test")
    assert all(len(line) <= 20 for tr in fig.data if tr.type == "bar" for x in tr.x for line in x.split("<br>"))
    assert layout_defects(fig, FULL_WIDTH) == []


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
    from ipt_core.analysis.metrics import pooled_gain_recovery

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
    t = ipt_figures.recovery_table(acc_rows())
    p = t[t.metric == "pooled_gain_recovery"].iloc[0]
    per_seed = [(0.1 - 0.01) / 0.21, (0.2 + 0.0) / 0.21]
    assert p["mean"] == pytest.approx(np.mean(per_seed)) and p["std"] == pytest.approx(np.std(per_seed))
    assert p.n_seeds == 2
    # the stored-summary path adds the pooled metric from the rows too
    summary = {"found": {"unseen": {"16": {"recovery": 0.9, "gain_recovery": 0.1}}}}
    assert "pooled_gain_recovery" in set(ipt_figures.recovery_table(acc_rows(), "d", summary)["metric"])
    fig = ipt_figures.recovery_figure(t, gain="pooled_gain_recovery")
    assert "pooled" in fig.layout.annotations[1].text
    gain_line = [tr for tr in fig.data if tr.name and "subspace" in tr.name and tr.xaxis == "x2"][0]
    assert list(gain_line.y) == [pytest.approx(p["mean"])]
    with pytest.raises(ValueError, match="gain 'nope'"):
        ipt_figures.recovery_figure(t, gain="nope")


def test_sweep_comparison_pooled():
    t = ipt_figures.sweep_comparison_table([("a", acc_rows())], 16, "pooled_gain_recovery")
    test = t[t["split"] == "test"].iloc[0]
    assert test["mean"] == pytest.approx(np.mean([0.09 / 0.21, 0.2 / 0.21])) and test.n_tasks == 2
    dev = t[t["split"] == "dev"].iloc[0]
    assert dev["mean"] == pytest.approx(np.mean([0.09 / 0.41, 0.2 / 0.41]))
    fig = ipt_figures.sweep_comparison_figure(t, "test", gain="pooled_gain_recovery")
    assert "pooled gain recovery" in fig.layout.yaxis.title.text


# --------------------------------------------------------------------------------------------------
# layout checks without a browser (issue 31, point 5: figures a teacher projects must read at 1,400 px)

# The chart's width on a 1,400 px screen: the wide layout less the sidebar and padding, then the
# [3, 2] column that show_figure puts beside the plotted numbers.
CHART_WIDTH = 560
# plotly's own rule: a category axis in auto mode labels every category only where each has
# round(1.2 * tick font size) px, 14 at the default 12 px; below that it skips every other label.
MIN_PX_PER_CATEGORY = 14
MIN_GAP_PX = 20


def _text_box(text: str | None, size: float) -> tuple[float, float]:
    """Estimated (width, height) in px of a plotly text (``<br>`` lines, tags ignored)."""
    lines = re.split(r"<br\s*/?>", str(text or ""))
    plain = [re.sub(r"<[^>]+>", "", ln) for ln in lines]
    return max((len(ln) for ln in plain), default=0) * 0.55 * size, len(lines) * 1.3 * size


def _span(pos: float, extent: float, anchor: str | None, lo: str, hi: str) -> tuple[float, float]:
    if anchor == lo:
        return pos, pos + extent
    if anchor == hi:
        return pos - extent, pos
    return pos - extent / 2, pos + extent / 2


def _auto_anchor(v: float, lo: str, mid: str, hi: str) -> str:
    # plotly's "auto" anchor of a paper-referenced annotation without an arrow
    return lo if v <= 1 / 3 else hi if v >= 2 / 3 else mid


def _apart(a: tuple[float, float], b: tuple[float, float], gap: float = 0.0) -> bool:
    return a[1] + gap <= b[0] or b[1] + gap <= a[0]


def _size(font, default: float) -> float:
    return font.size if font is not None and font.size else default


LEGEND_ROW_PX = 19  # a legend row of bars or markers (12 px text), as plotly draws it
LEGEND_LINE_ROW_PX = 29  # a row with a line's entry: its symbol is taller
TICK_GAP_PX = 4  # between two tick labels
_HAS_COLOUR_BAR = {"heatmap", "contour", "histogram2d", "histogram2dcontour", "surface", "choropleth"}


def _legend_entries(fig: go.Figure) -> list[str]:
    return [tr.name for tr in fig.data if tr.name and tr.showlegend is not False]


def _legend_row_px(fig: go.Figure) -> int:
    lines = any(tr.type in ("scatter", "scattergl") and "lines" in (tr.mode or "lines")
                for tr in fig.data if tr.name and tr.showlegend is not False)
    return LEGEND_LINE_ROW_PX if lines else LEGEND_ROW_PX


def _h_legend_rows(names: list[str], width: float) -> int:
    rows, used = 1, 0.0
    for n in names:
        w = _text_box(n, 12)[0] + 40
        if used and used + w > width:
            rows, used = rows + 1, 0.0
        used += w
    return rows


def _colour_bars(fig: go.Figure) -> list:
    out = []
    for tr in fig.data:
        if tr.type in _HAS_COLOUR_BAR and tr.showscale is not False:
            out.append(tr.colorbar)
        elif getattr(getattr(tr, "marker", None), "showscale", None):
            out.append(tr.marker.colorbar)
    return out


def _colour_bar_width(cb) -> float:
    """The colour bar (vertical): its bar, tick labels and title (on top: as wide as its widest line)."""
    thickness = cb.thickness if cb.thickness is not None else 30
    title_w = _text_box(cb.title.text, _size(cb.title.font, 14))[0] if cb.title and cb.title.text else 0.0
    return max(thickness + 5 + 5 * 0.55 * 12, title_w) + 2 * (cb.xpad if cb.xpad is not None else 10)


def _numeric_values(fig: go.Figure, key: str) -> list[float]:
    """The numbers the traces plot on axis ``key`` (``xaxis2``...), bars from 0."""
    letter, out = key[0], []
    for tr in fig.data:
        ref = getattr(tr, f"{letter}axis", None) or letter
        if f"{letter}axis{ref[1:]}" != key:
            continue
        vals = getattr(tr, letter, None)
        for v in (vals if vals is not None else []):
            if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v):
                out.append(float(v))
        if tr.type == "bar" and (tr.orientation == "h") == (letter == "x"):
            out.append(0.0)
    return out


def _marker_px(fig: go.Figure, key: str) -> float:
    """The largest marker (px) a scatter on axis ``key`` draws; 0 when none draws markers."""
    letter, size = key[0], 0.0
    for tr in fig.data:
        ref = getattr(tr, f"{letter}axis", None) or letter
        if f"{letter}axis{ref[1:]}" != key or tr.type != "scatter" or "markers" not in (tr.mode or "lines+markers"):
            continue
        s = tr.marker.size if tr.marker and tr.marker.size is not None else 6
        size = max(size, max(s) if isinstance(s, (list, tuple)) else float(s))
    return size


def layout_defects(fig: go.Figure, width: int = CHART_WIDTH) -> list[str]:
    """Obvious layout defects of a plotly figure, from its layout and data alone (no browser):

    1. a categorical axis (string values, or an array of tick values) that does not label every
       category: a ``dtick``/``nticks``/``tickvals`` that drops some, or under 14 px per category;
    2. tick labels closer than their own size: on a category axis, or the ``tickvals`` of a numeric
       (linear or log) axis, two neighbouring labels nearer than their half widths plus 4 px (across a
       rotated label: its height);
    3. annotations (subplot titles, footnotes) outside the figure (the plot area plus its margins),
       e.g. ``yref='paper'`` at y < 0 needs |y| * plot height + 20 px <= margin.b; the title wider
       than the figure or on top of an annotation;
    4. an annotation within 20 px of an x axis's tick labels and title, annotations on top of each other, x-axis
       titles on top of each other;
    5. the legend: a vertical one taller than the plot (it scrolls: entries hidden), one inside the plot
       area, a horizontal one under the plot that runs past the figure's bottom or onto the x axis's tick
       labels and title, or onto an annotation;
    6. a colour bar over the plot, or on the right together with a vertical legend (both go there).

    Sizes are estimates (0.55 em per character, 1.3 em per line); ``width`` is used when the figure
    has none (the page sizes it to its column). Margins grow as plotly's automargin makes them (tick
    labels, axis titles, a legend or colour bar on the right). Returns one line per defect.
    """
    lay = fig.layout
    W = lay.width or width
    H = lay.height or 450
    m = lay.margin
    l, r = (m.l if m.l is not None else 80), (m.r if m.r is not None else 80)
    t, b = (m.t if m.t is not None else 100), (m.b if m.b is not None else 80)
    out: list[str] = []

    axes = {k: getattr(lay, k) for k in lay.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", k)}
    for k in ("xaxis", "yaxis"):
        axes.setdefault(k, getattr(lay, k))

    def dom(ax) -> tuple[float, float]:
        return tuple(ax.domain) if ax.domain is not None else (0.0, 1.0)

    def anchor_of(k: str, ax):
        other = "y" if k[0] == "x" else "x"
        return axes.get(f"{other}axis{(ax.anchor or other)[1:]}")

    cats: dict[str, list] = {k: [] for k in axes}
    for tr in fig.data:
        for letter in "xy":
            ref = getattr(tr, f"{letter}axis", None) or letter
            key = f"{letter}axis{ref[1:]}"
            vals = getattr(tr, letter, None)
            if key in cats and vals is not None:
                cats[key] += [v for v in vals if isinstance(v, str)]
    cats = {k: list(dict.fromkeys(v)) for k, v in cats.items()}

    def labels_of(k: str, ax) -> list[str]:
        if ax.ticktext is not None:
            return [str(v) for v in ax.ticktext]
        if ax.tickvals is not None and not cats.get(k):
            return [f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in ax.tickvals]
        return [str(v) for v in cats.get(k, [])] or ["-0.00"]  # numeric auto ticks: about 5 characters

    def angle_of(ax) -> float | None:
        return None if ax.tickangle in (None, "auto") else math.radians(abs(float(ax.tickangle)))

    def tick_font(ax) -> float:
        return _size(ax.tickfont, 12)

    def shows_labels(ax) -> bool:
        return ax.showticklabels is not False and ax.visible is not False

    def tick_h(label: str, fs: float) -> float:
        return (len(re.split(r"<br\s*/?>", label)) * 1.2) * fs  # plotly's line height for tick labels

    def ticks_of(k: str, ax, length: float) -> list[tuple[float, str]]:
        """(position in px along the axis, label) of every tick label the axis draws, when it draws a
        fixed set: its categories (one slot each) or its ``tickvals``; [] for automatic numeric ticks."""
        c = cats.get(k, [])
        if c and not (ax.tickmode == "array" and ax.tickvals is not None and ax.ticktext is not None):
            return [((i + 0.5) * length / len(c), str(v)) for i, v in enumerate(c)]
        if ax.tickvals is None or c:
            return []
        log = ax.type == "log"
        vals = [float(v) for v in ax.tickvals]
        if log and min(vals, default=1) <= 0:
            return []
        f = math.log10 if log else float
        if ax.range is not None:
            lo, hi = sorted(float(v) for v in ax.range)
        else:
            data = [f(v) for v in _numeric_values(fig, k) + vals if not log or v > 0]
            lo, hi = min(data), max(data)
            marker = _marker_px(fig, k)
            if marker and length > 2 * (marker + 5):
                # plotly's autorange keeps a marker's radius and some px clear of the edges
                span = (hi - lo or 1) * length / (length - 2 * (marker + 5))
                lo, hi = lo - (marker + 5) * span / length, hi + (marker + 5) * span / length
            else:
                pad = 0.05 * (hi - lo or 1)
                lo, hi = lo - pad, hi + pad
        return sorted(((f(v) - lo) / (hi - lo) * length, s) for v, s in zip(vals, labels_of(k, ax)) if lo <= f(v) <= hi)

    def need_px(s1: str, s2: str, fs: float, letter: str, a: float) -> float:
        """How far apart two neighbouring tick labels must be: their half widths and a gap across the
        axis (x, horizontal labels), their height along a y axis or across a rotated x label."""
        if letter == "y":
            return (tick_h(s1, fs) + tick_h(s2, fs)) / 2
        if a > math.radians(20):
            return max(tick_h(s1, fs), tick_h(s2, fs)) / math.sin(a)
        return (_text_box(s1, fs)[0] + _text_box(s2, fs)[0]) / 2 + TICK_GAP_PX

    def x_angle(k: str, ax, length: float) -> float:
        """The x labels' angle: the axis's own, or for "auto" the first of 0, 30, 90 degrees at which the
        category labels do not collide (plotly's autotickangles; an array of tick values stays level)."""
        a = angle_of(ax)
        if a is not None:
            return a
        ticks = ticks_of(k, ax, length)
        if not cats.get(k) or len(ticks) < 2:
            return 0.0
        fs = tick_font(ax)
        for deg in (0, 30):
            if all(abs(p2 - p1) >= need_px(s1, s2, fs, "x", math.radians(deg)) for (p1, s1), (p2, s2) in pairwise(ticks)):
                return math.radians(deg)
        return math.radians(90)

    def x_depth(k: str, ax, length: float) -> float:
        a, fs = x_angle(k, ax, length), tick_font(ax)
        return max(_text_box(v, fs)[0] * math.sin(a) + tick_h(v, fs) * math.cos(a) for v in labels_of(k, ax)) + 6

    # margins as plotly's automargin grows them: the outer axes' tick labels and titles (left and bottom), a
    # legend or colour bar on the right
    def title_h(ax) -> float:
        return (_text_box(ax.title.text, _size(ax.title.font, 14))[1] + 10) if ax.title and ax.title.text else 0.0

    for k, ax in axes.items():
        other = anchor_of(k, ax)
        if k[0] == "y" and ax.automargin is not False and shows_labels(ax) and ax.side != "right" \
                and (other is None or dom(other)[0] == 0):
            l = max(l, max(_text_box(v, tick_font(ax))[0] for v in labels_of(k, ax)) + 8 + title_h(ax))
    shown = _legend_entries(fig)
    shows_legend = bool(shown) and (lay.showlegend or (lay.showlegend is None and len(fig.data) > 1))
    leg = lay.legend
    horizontal = leg.orientation == "h"
    right_legend = shows_legend and not horizontal and (leg.x is None or leg.x >= 1)
    legend_w = (max(_text_box(n, 12)[0] for n in shown) + 40) if right_legend else 0.0  # plotly pushes the margin
    bar_w = 0.0
    for cb in _colour_bars(fig):
        vertical = cb.orientation != "h"
        if vertical:
            x = cb.x if cb.x is not None else 1.02
            if x < 1:
                out.append(f"colour bar at x={x:.2f}: over the plot")
            else:
                bar_w = max(bar_w, _colour_bar_width(cb))
                if right_legend:
                    out.append("a colour bar and the legend both on the right: they overlap")
        elif cb.y is not None and 0 < cb.y < 1:
            out.append(f"colour bar at y={cb.y:.2f}: over the plot")
    if right_legend and legend_w > 0.3 * W:
        out.append(f"legend on the right: about {legend_w:.0f} px of the figure's {W} (over 30%): the plot is squeezed")
    r = max(r, legend_w + 10, bar_w + 10)
    pw = W - l - r
    if pw <= 0:
        return out + [f"no room for the plot: {pw:.0f} px wide"]
    for k, ax in axes.items():
        other = anchor_of(k, ax)
        if k[0] == "x" and ax.automargin is not False and shows_labels(ax) and ax.side != "top" \
                and (other is None or dom(other)[0] == 0):
            b = max(b, x_depth(k, ax, (dom(ax)[1] - dom(ax)[0]) * pw) + 2 + title_h(ax))
    ph = H - t - b
    if ph <= 0:
        return out + [f"no room for the plot: {pw:.0f} x {ph:.0f} px"]

    def length_of(k: str, ax) -> float:
        return (dom(ax)[1] - dom(ax)[0]) * (pw if k[0] == "x" else ph)

    # 1. categorical axes: every category labelled
    for k, ax in axes.items():
        c = cats.get(k, [])
        labelled = c
        if ax.tickmode == "array" and ax.tickvals is not None:
            if c:
                missing = [v for v in c if v not in set(ax.tickvals)]
                if missing:
                    out.append(f"{k}: {len(missing)} of {len(c)} categories have no tick value")
            else:
                labelled = list(ax.tickvals)
        elif c:
            if ax.dtick is not None and float(ax.dtick) > 1:
                out.append(f"{k}: dtick {ax.dtick} labels one category in {ax.dtick}")
            if ax.nticks and ax.nticks < len(c):
                out.append(f"{k}: nticks {ax.nticks} < {len(c)} categories")
        if not labelled or not shows_labels(ax):
            continue
        length = length_of(k, ax)
        if length / len(labelled) < MIN_PX_PER_CATEGORY:
            out.append(f"{k}: {len(labelled)} categories in {length:.0f} px ({length / len(labelled):.1f} px each, "
                       f"under {MIN_PX_PER_CATEGORY}): labels skipped or piled up")

    # 2. neighbouring tick labels: apart by their size
    for k, ax in axes.items():
        if not shows_labels(ax):
            continue
        length = length_of(k, ax)
        ticks = ticks_of(k, ax, length)
        if k[0] == "x" and angle_of(ax) is None and cats.get(k):
            continue  # category labels at an automatic angle: plotly turns them; rule 1 holds the rest
        a = x_angle(k, ax, length) if k[0] == "x" else 0.0
        for (p1, s1), (p2, s2) in pairwise(ticks):
            gap, need = abs(p2 - p1), need_px(s1, s2, tick_font(ax), k[0], a)
            if gap < need - 0.5:
                out.append(f"{k}: tick labels {s1!r} and {s2!r} {gap:.0f} px apart, need {need:.0f}: they touch")
                break

    # boxes in px, origin at the plot area's bottom left, y up
    boxes: list[tuple[str, tuple[float, float], tuple[float, float]]] = []
    for i, a in enumerate(lay.annotations or ()):
        if a.xref != "paper" or a.yref != "paper" or a.showarrow is not False and a.showarrow is not None:
            continue
        size = _size(a.font, 12)
        w, h = _text_box(a.text, size)
        xa = a.xanchor if a.xanchor not in (None, "auto") else _auto_anchor(a.x, "left", "center", "right")
        ya = a.yanchor if a.yanchor not in (None, "auto") else _auto_anchor(a.y, "bottom", "middle", "top")
        xs, ys = _span(a.x * pw, w, xa, "left", "right"), _span(a.y * ph, h, ya, "bottom", "top")
        name = f"annotation {i} {re.sub(r'<[^>]+>', ' ', a.text or '')[:40]!r}"
        boxes.append((name, xs, ys))
        # 3. inside the figure
        if a.y < 0 and abs(a.y) * ph + MIN_GAP_PX > b:
            out.append(f"{name}: y={a.y:.3f} is {abs(a.y) * ph:.0f} px under the plot, bottom margin {b:.0f} px "
                       f"(needs {abs(a.y) * ph + MIN_GAP_PX:.0f})")
        if a.y > 1 and (a.y - 1) * ph + MIN_GAP_PX > t:
            out.append(f"{name}: y={a.y:.3f} is {(a.y - 1) * ph:.0f} px over the plot, top margin {t} px")
        if ys[0] < -b or ys[1] > ph + t:
            out.append(f"{name}: spans {ys[0]:.0f}..{ys[1]:.0f} px, the figure {-b:.0f}..{ph + t:.0f}: clipped")
        if xs[0] < -l or xs[1] > W - l:
            out.append(f"{name}: spans x {xs[0]:.0f}..{xs[1]:.0f} px, the figure {-l:.0f}..{W - l:.0f}: clipped")

    title = lay.title.text if lay.title else None
    if title:
        size = _size(lay.title.font, 17)
        w, h = _text_box(title, size)
        if w > W * 0.98:
            out.append(f"title: about {w:.0f} px wide, the figure {W} px")
        # plotly's "auto" title sits in the middle of the top margin
        tb = (ph + t / 2 - h / 2, ph + t / 2 + h / 2)
        txs = (-l + 0.01 * W, -l + 0.01 * W + w)
        for name, xs, ys in boxes:
            if not _apart(ys, tb, 4) and not _apart(xs, txs):
                out.append(f"{name}: on the title")

    # 4. x-axis tick labels and titles
    xblocks = []
    for k, ax in axes.items():
        if k[0] != "x" or not shows_labels(ax):
            continue
        anchor = anchor_of(k, ax)
        y0 = (dom(anchor)[0] if anchor is not None else 0.0) * ph
        depth = x_depth(k, ax, (dom(ax)[1] - dom(ax)[0]) * pw)
        xs = (dom(ax)[0] * pw, dom(ax)[1] * pw)
        if ax.title and ax.title.text:
            standoff = ax.title.standoff if ax.title.standoff is not None else 15
            w, h = _text_box(ax.title.text, _size(ax.title.font, 14))
            xs = _span((dom(ax)[0] + dom(ax)[1]) / 2 * pw, w, "center", "left", "right")
            xblocks.append((f"{k} title {ax.title.text!r}", xs, (y0 - depth - standoff - h, y0)))
        else:
            xblocks.append((f"{k} tick labels", xs, (y0 - depth, y0)))
    for name, xs, ys in boxes:
        for tname, txs, tys in xblocks:
            if tname.endswith("tick labels"):
                continue
            if not _apart(xs, txs) and not _apart(ys, tys, MIN_GAP_PX):
                out.append(f"{name}: within {MIN_GAP_PX} px of {tname}")
    titled = [x for x in xblocks if not x[0].endswith("tick labels")]
    for group in (boxes, titled):
        for i, (n1, x1, y1) in enumerate(group):
            for n2, x2, y2 in group[i + 1:]:
                if not _apart(x1, x2, 4) and not _apart(y1, y2, 4):
                    out.append(f"{n1} and {n2} overlap")

    # 5. the legend
    if shows_legend:
        if horizontal:
            rows = _h_legend_rows(shown, pw)  # plotly wraps a horizontal legend at the plot area's width
            lh = rows * _legend_row_px(fig) + 6 + (LEGEND_ROW_PX if leg.title and leg.title.text else 0)
            ly = leg.y if leg.y is not None else -0.1
            ya = leg.yanchor if leg.yanchor not in (None, "auto") else ("top" if ly <= 0 else "bottom")
            ys = _span(ly * ph, lh, ya, "bottom", "top")
            if 0 < ys[1] and ys[0] < ph:
                out.append(f"legend: spans {ys[0]:.0f}..{ys[1]:.0f} px, over the plot (0..{ph:.0f})")
            if ys[0] < -b:
                out.append(f"legend ({rows} rows, {lh:.0f} px) reaches {-ys[0]:.0f} px under the plot, "
                           f"the bottom margin is {b:.0f}: the plot shrinks or the legend is clipped")
            for name, xs, bys in xblocks + boxes:
                if ys[1] <= 0 and not _apart(ys, bys, 4) and not _apart((0, pw), xs):
                    out.append(f"legend and {name} overlap")
        else:
            n = len(shown) + (1 if leg.title and leg.title.text else 0)
            lh = n * _legend_row_px(fig) + 10
            if right_legend and lh > ph + 10:
                out.append(f"legend: {len(shown)} entries need {lh} px, the plot is {ph:.0f}: it scrolls, entries hidden")
            if not right_legend and leg.x is not None and 0 <= leg.x < 1 and (leg.y is None or 0 <= leg.y <= 1):
                out.append(f"legend at x={leg.x:.2f}, y={leg.y}: over the plot")
    return out


def pt_table(n_tasks: int = 24, seeds: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(n_tasks + seeds)
    runs, zs, lp = [], [], []
    for i in range(n_tasks):
        task, labels = f"task_{i:02d}_{'long_name' if i % 3 == 0 else 'x'}", ["a", "b", "c"][: 2 + i % 2]
        runs += [{"task": task, "family": f"fam{i % 4}", "seed": s, "test_acc": float(rng.uniform(0.5, 0.9)),
                  "labels": labels} for s in range(seeds)]
        zs.append({"task": task, "test_acc": 0.5, "labels": labels})
        lp.append({"task": task, "test_acc": 0.6})
    return pt_figures.pt_results_table(runs, zs, lp)


def transfer_inputs(n_spaces: int, n_targets: int = 3):
    rng = np.random.default_rng(n_spaces)
    names = [f"task_{i}" for i in range(10)]
    fams = dict(zip(names, ["spam", "sentiment", "nli", "topic", "paraphrase"] * 2))
    spaces = {s: (rng.normal(size=(10, 6)), names) for s in list(mq.SPACE_NAMES)[:n_spaces]}
    transfers = [{"target": tgt, "runs": [{"source": s, "gain": float(rng.normal(0, 0.05)), "dev_gain": 0.0}
                                          for s in names if s != tgt]} for tgt in names[:n_targets]]
    corr, pairs = mq.correlations(transfers, spaces, fams)
    return transfer_figures.transfer_table(pairs), corr


def test_layout_defects_finds_the_defects_it_is_for():
    """The checker itself: a squeezed category axis, a dtick that skips, a clipped footnote, a subplot
    title on an x-axis title."""
    from plotly.subplots import make_subplots
    cats = [f"c{i}" for i in range(40)]
    squeezed = go.Figure(go.Bar(x=cats, y=[1] * 40)).update_layout(height=400, margin={"l": 60, "r": 20, "t": 30, "b": 60})
    assert any("40 categories" in d for d in layout_defects(squeezed, width=400))
    assert layout_defects(squeezed, width=1400) == []
    skipping = go.Figure(go.Bar(x=cats[:5], y=[1] * 5)).update_layout(xaxis={"dtick": 2})
    assert any("dtick" in d for d in layout_defects(skipping))
    clipped = go.Figure(go.Scatter(x=[0], y=[0])).update_layout(height=400, margin={"b": 60})
    clipped.add_annotation(text="footnote", xref="paper", yref="paper", x=0, y=-0.2, showarrow=False, xanchor="left")
    assert any("bottom margin" in d for d in layout_defects(clipped))
    packed = make_subplots(rows=2, cols=1, subplot_titles=["a", "b"], vertical_spacing=0.02)
    packed.update_xaxes(title_text="x").update_layout(height=500, margin={"l": 60, "r": 20, "t": 60, "b": 60})
    assert any("within 20 px" in d for d in layout_defects(packed))


def bad_and_good_layouts() -> dict[str, tuple[go.Figure, go.Figure, str]]:
    """For each check added to :func:`layout_defects` (issue 31, point 5): a figure with the defect, the
    same figure without it, and a phrase of the defect's line."""
    from plotly.subplots import make_subplots
    base = {"template": "plotly_white", "height": 420, "margin": {"l": 60, "r": 20, "t": 40, "b": 60}}
    out = {}
    # tick labels of a numeric axis closer than their own width: d_I 4 and 5 on a log axis, half a chart wide
    dims = [4, 5, 16, 64, 250]
    log = go.Figure(go.Scatter(x=dims, y=[1] * 5)).update_layout(**base, width=280, xaxis={"type": "log", "tickvals": dims})
    even = go.Figure(go.Scatter(x=list(range(5)), y=[1] * 5)).update_layout(
        **base, width=280, xaxis={"tickvals": list(range(5)), "ticktext": [str(d) for d in dims]})
    out["numeric ticks"] = (log, even, "tick labels '4' and '5'")
    # category labels at a fixed angle that overlap across their slots
    names = [f"a_long_task_name_{i}" for i in range(28)]
    tilted = go.Figure(go.Bar(x=names, y=[1] * 28)).update_layout(**base, xaxis={"tickangle": -40})
    upright = go.Figure(go.Bar(x=names, y=[1] * 28)).update_layout(**base, xaxis={"tickangle": -90})
    out["turned categories"] = (tilted, upright, "px apart")
    # long row labels (automargin) and a colour bar leave a heatmap's columns under 14 px each
    rows = [f"tweeteval_stance_{i:02d}" for i in range(30)]
    heat = go.Figure(go.Heatmap(z=np.eye(30), x=rows, y=rows)).update_layout(**base)
    small = go.Figure(go.Heatmap(z=np.eye(12), x=rows[:12], y=rows[:12])).update_layout(**base)
    out["margins as automargin grows them"] = (heat, small, "30 categories")
    # a legend on the right that takes more than 30% of the width
    lines = [go.Scatter(x=[0, 1], y=[i, i], name=f"PT initialised from IST, series {i} (mean ± std)") for i in range(2)]
    right = go.Figure(lines).update_layout(**base)
    below = go.Figure(lines).update_layout(**base).update_layout(
        margin={"b": 150}, legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0})
    out["wide legend on the right"] = (right, below, "over 30%")
    # a vertical legend taller than the plot scrolls
    many = [go.Scatter(x=[0, 1], y=[i, i], name=f"t{i}") for i in range(24)]
    out["legend that scrolls"] = (go.Figure(many).update_layout(**base), go.Figure(many[:8]).update_layout(**base),
                                  "it scrolls")
    # a horizontal legend under the plot: onto the x-axis title, or past the figure's bottom
    onto = go.Figure(lines).update_layout(**base, xaxis_title="training step",
                                          legend={"orientation": "h", "y": -0.05, "yanchor": "top", "x": 0})
    clear = go.Figure(lines).update_layout(**base, xaxis_title="training step").update_layout(
        margin={"b": 180}, legend={"orientation": "h", "y": -0.4, "yanchor": "top", "x": 0})
    out["legend on the x title"] = (onto, clear, "legend and xaxis title")
    past = go.Figure(lines).update_layout(**base, xaxis_title="training step",
                                          legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0})
    out["legend past the bottom"] = (past, clear, "the bottom margin is")
    # a legend inside the plot area
    inside = go.Figure([go.Scatter(x=[0, 1], y=[i, i], name=n) for i, n in enumerate("ab")]).update_layout(
        **base, legend={"x": 0.02, "y": 0.98})
    out["legend over the plot"] = (inside, go.Figure(inside).update_layout(legend={"x": 1.02}), "over the plot")
    # a colour bar over the plot, and a colour bar where the legend also goes
    abc = list("abc")
    cb_in = go.Figure(go.Heatmap(z=np.eye(3), x=abc, y=abc, colorbar={"x": 0.8})).update_layout(**base)
    cb_out = go.Figure(go.Heatmap(z=np.eye(3), x=abc, y=abc)).update_layout(**base)
    out["colour bar over the plot"] = (cb_in, cb_out, "colour bar at x=0.80: over the plot")
    both = make_subplots(rows=1, cols=2).add_trace(go.Heatmap(z=np.eye(3), x=abc, y=abc), 1, 1)
    both.add_scatter(x=[0, 1], y=[0, 1], name="a", row=1, col=2).add_scatter(x=[0, 1], y=[1, 0], name="b", row=1, col=2)
    both.update_layout(**base)
    below_legend = go.Figure(both).update_layout(margin={"b": 120},
                                                 legend={"orientation": "h", "y": -0.2, "yanchor": "top", "x": 0})
    out["colour bar and legend"] = (both, below_legend, "colour bar and the legend both on the right")
    return out


@pytest.mark.parametrize("check", list(bad_and_good_layouts()))
def test_layout_defects_new_checks(check):
    """Each check added for issue 31 fails its bad figure and passes the same figure laid out well."""
    bad, good, phrase = bad_and_good_layouts()[check]
    assert any(phrase in d for d in layout_defects(bad)), layout_defects(bad)
    assert layout_defects(good) == []


@pytest.mark.parametrize("seeds", [1, 3])
def test_pt_results_figure_reads_at_1400_px(seeds):
    t = pt_table(24, seeds)
    by = t.set_index("task")
    assert by.loc["task_00_long_name", "chance"] == 0.5 and by.loc["task_01_x", "chance"] == pytest.approx(1 / 3)
    assert by.loc["task_01_x", "n_labels"] == 3
    fig = pt_figures.pt_results_figure(t)
    assert layout_defects(fig) == []
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert all(tr.orientation == "h" for tr in bars) and len(set(fig.data[0].y)) == 24  # every task on the y axis
    assert fig.layout.height >= 24 * 22 + 100
    chance = [tr for tr in fig.data if tr.name == "chance (1/labels)"]
    assert len(chance) == 1 and list(chance[0].x) == t["chance"].tolist()  # a tick per task at its own chance
    pt = fig.data[0]
    if seeds == 1:
        assert pt.name == "prompt tuning (one seed)" and not pt.error_x.visible and "±" not in pt.name
    else:
        assert pt.name == "prompt tuning (mean ± std over 3 seeds)" and pt.error_x.visible
        assert list(pt.error_x.array) == pytest.approx(t["pt_std"].tolist())


def test_pt_results_figure_mixed_seeds_and_no_labels():
    t = pt_figures.pt_results_table([{"task": "a", "seed": s, "test_acc": 0.5 + s / 10} for s in range(2)]
                                 + [{"task": "b", "seed": 0, "test_acc": 0.7}])
    fig = pt_figures.pt_results_figure(t)
    assert fig.data[0].name == "prompt tuning (mean ± std where 2+ seeds; else one seed)"
    assert list(fig.data[0].error_x.array) == [pytest.approx(0.05), 0.0]  # no std for the one-seed task
    assert "chance (1/labels)" not in names_of(fig)  # no label count: no chance tick
    ref = pt_figures.pt_results_figure(pt_figures.pt_results_table([], [{"task": "a", "test_acc": 0.5}]))
    assert ref.data[0].name == "prompt tuning (no runs)" and layout_defects(ref) == []


@pytest.mark.parametrize("n_spaces", [1, 2, 3, 5, 6])
def test_transfer_figure_reads_at_1400_px(n_spaces):
    tt, corr = transfer_inputs(n_spaces)
    fig = transfer_figures.transfer_figure(tt, corr)
    assert layout_defects(fig) == []
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == n_spaces and all("Spearman" in x for x in titles)
    assert "source of the target's family" in names_of(fig)  # the symbols explained in the legend, not a footnote


def test_page_figures_read_at_1400_px():
    """Every figure builder the pages show, with the shipped results or realistic synthetic records (24 and
    30 tasks), at the width the page gives it in a 1,400 px window: no layout defect."""
    defects = {name: d for name, fig, width in page_figures() if (d := layout_defects(fig, width))}
    assert not defects, "\n".join(f"{k}: {v}" for k, v in defects.items())


# --------------------------------------------------------------------------------------------------
# per-task recovery and intrinsic-tuning runs at 1,400 px


def recovery_rows(n_tasks: int = 24, seeds: int = 1, d: int = 16) -> list[dict]:
    """An IPT sweep's rows at one d_I: two thirds of the tasks seen, the rest unseen, found and random."""
    rng = np.random.default_rng(n_tasks + seeds)
    out = []
    for i in range(n_tasks):
        task, setting = f"task_{i:02d}_{'long_name' if i % 3 == 0 else 'x'}", "seen" if i < 2 * n_tasks // 3 else "unseen"
        for sub in ("found", "random"):
            for s in range(seeds):
                ist, pt, zs = float(rng.uniform(0.5, 0.8)), 0.8, 0.4 + i / 100
                out.append({"d": d, "setting": setting, "subspace": sub, "task": task, "family": f"fam{i % 4}",
                            "seed": s, "ist_test_acc": ist, "pt_test_acc": pt, "zero_shot_test_acc": zs,
                            "recovery": ist / pt, "gain_recovery": (ist - zs) / (pt - zs)})
    return out


def ist_metas(n_tasks: int = 24, seeds: int = 1, pt: bool = True) -> tuple[list[dict], dict]:
    """``ist_run`` metas as the Recovery page passes them (``pt_test_acc`` added from the PT runs), and zero-shot."""
    runs = [{"task": r["task"], "family": r["family"], "setting": r["setting"], "d": r["d"], "subspace": r["subspace"],
             "seed": r["seed"], "test_acc": r["ist_test_acc"]} | ({"pt_test_acc": r["pt_test_acc"]} if pt else {})
            for r in recovery_rows(n_tasks, seeds)]
    return runs, {r["task"]: r["zero_shot_test_acc"] for r in recovery_rows(n_tasks, seeds)}


def _old_builder(name: str, where: str = "57c2ae4:ipt_core/figures_ipt.py"):
    """``name`` as a past commit drew it: by default the last before the horizontal layout (the vertical bars
    this replaces)."""
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", where], cwd=root, capture_output=True, text=True)
    if src.returncode:
        pytest.skip("no git history to load the old builders from")
    ns: dict = {"__name__": "ipt_core._old_figures_ipt", "__package__": "ipt_core"}
    old = src.stdout.replace("from .metrics import", "from ipt_core.analysis.metrics import").replace(
        "from .plotting import", "from ipt_core.figures.plotting import")  # the modules' homes since then
    exec(compile(old, "old_figures_ipt.py", "exec"), ns)
    return ns[name]


@pytest.mark.parametrize("seeds", [1, 3])
def test_recovery_bars_figure_reads_at_1400_px(seeds):
    t = ipt_figures.recovery_bars_table(recovery_rows(24, seeds), 16)
    assert t["zero_shot_recovery"].tolist()[:1] == [pytest.approx(0.4 / 0.8)]  # zero-shot / PT, per task
    for metric in ("recovery", "gain_recovery"):
        fig = ipt_figures.recovery_bars_figure(t, metric, f"Per-task {metric.replace('_', ' ')} at d_I = 16")
        assert layout_defects(fig) == [], metric
        bars = [tr for tr in fig.data if tr.type == "bar"]
        assert all(tr.orientation == "h" for tr in bars)
        assert len({y for tr in bars for y in tr.y}) == 24  # every task a row of its own
        assert fig.layout.height >= 24 * 22 + 100
        assert fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0  # under the axis, not beside
        assert fig.layout.xaxis.title.text.startswith(metric.replace("_", " ") + " = ")  # the term explained
        assert fig.layout.yaxis.title.text == "task"
        assert {"0 = zero-shot level", "1 = PT level"} <= set(names_of(fig))
        assert sorted(s.x0 for s in fig.layout.shapes) == [0.0, 1.0]
        ticks = [tr for tr in fig.data if tr.name == "zero-shot / PT (no tuning)"]
        assert len(ticks) == (1 if metric == "recovery" else 0)  # zero-shot on a recovery axis, where it has one
        for tr in bars:
            if seeds == 1:
                assert "(one seed)" in tr.name and "±" not in tr.name and not tr.error_x.visible
            else:
                assert "(mean ± std over 3 seeds)" in tr.name and tr.error_x.visible
    old = _old_builder("recovery_bars_figure")(t, "gain_recovery")
    assert any("24 categories" in d for d in layout_defects(old))  # what this replaces: every other task unlabelled


def test_recovery_bars_figure_mixed_seeds():
    rows = recovery_rows(4, 2)
    rows = [r for r in rows if not (r["task"] == "task_00_long_name" and r["seed"] == 1)]
    t = ipt_figures.recovery_bars_table(rows, 16)
    fig = ipt_figures.recovery_bars_figure(t, "recovery")
    seen_found = next(tr for tr in fig.data if tr.name.startswith("seen tasks, found"))
    assert "where 2+ seeds; else one seed" in seen_found.name
    assert list(seen_found.error_x.array)[0] == 0.0 and list(seen_found.error_x.array)[1] > 0  # no std for one seed
    assert layout_defects(ipt_figures.recovery_bars_figure(ipt_figures.recovery_bars_table(rows[:1], 16))) == []


@pytest.mark.parametrize("seeds", [1, 3])
def test_ist_runs_figure_reads_at_1400_px(seeds):
    runs, zs = ist_metas(24, seeds)
    t = ipt_figures.ist_runs_table(runs, zs)
    r = t.iloc[0]
    assert r.recovery == pytest.approx(r.ist_test_acc / r.pt_test_acc)
    assert r.gain_recovery == pytest.approx((r.ist_test_acc - r.zero_shot) / (r.pt_test_acc - r.zero_shot))
    fig = ipt_figures.ist_runs_figure(t)
    assert layout_defects(fig) == []
    bars = [tr for tr in fig.data if tr.type == "bar"]
    assert all(tr.orientation == "h" for tr in bars) and len({y for tr in bars for y in tr.y}) == 24
    assert fig.layout.height >= 24 * 22 + 100 and fig.layout.legend.orientation == "h" and fig.layout.legend.y < 0
    # PT and zero-shot beside IST on the accuracy panel, the gain recovery beside it on the same rows
    assert {"zero-shot (ZS: no tuning)", "PT: prompt tuning (the whole prompt trains)",
            "0 = zero-shot level", "1 = PT level"} <= set(names_of(fig))
    assert {tr.xaxis for tr in bars} == {"x", "x2"}
    assert fig.layout.xaxis.title.text == "test accuracy" and "gain recovery" in fig.layout.xaxis2.title.text
    assert fig.layout.yaxis.title.text == "task"
    gain = [tr for tr in bars if tr.xaxis == "x2"]
    assert list(gain[0].x) == pytest.approx(t[t.subspace == "found"]["gain_recovery"].tolist())
    for tr in (b for b in bars if b.xaxis == "x"):
        assert ("±" in tr.name) == (seeds > 1) and bool(tr.error_x.visible) == (seeds > 1)
    old = _old_builder("ist_runs_figure")(t)
    assert any("24 categories" in d for d in layout_defects(old))


def test_ist_runs_figure_without_pt_and_one_task():
    runs, zs = ist_metas(24, 1, pt=False)
    t = ipt_figures.ist_runs_table(runs, zs)
    assert t["pt_test_acc"].isna().all() and t["gain_recovery"].isna().all()
    fig = ipt_figures.ist_runs_figure(t)
    assert layout_defects(fig) == [] and "xaxis2" not in fig.layout.to_plotly_json()  # no PT: one panel
    one = ipt_figures.ist_runs_table([dict(runs[0], pt_test_acc=0.8, zero_shot_test_acc=0.5)])
    assert one.zero_shot[0] == 0.5 and one.gain_recovery[0] == pytest.approx((runs[0]["test_acc"] - 0.5) / 0.3)
    fig = ipt_figures.ist_runs_figure(one)
    assert layout_defects(fig) == [] and "PT: prompt tuning (the whole prompt trains)" in names_of(fig)
    assert ipt_figures.ist_runs_table([]).empty


# --------------------------------------------------------------------------------------------------
# every figure the pages show, with realistic inputs: the shipped results where a page draws from them,
# else synthetic records shaped like the store's, for the demo suite (24 tasks) and the real one (30)

# The width a chart gets in a 1,400 px window when the page shows it alone (not beside its table):
# the wide layout less the sidebar (~300 px) and the padding.
FULL_WIDTH = 930

# the real suite (../shared/tasks-real): name, family, number of labels
REAL_TASKS = [
    ("ag_news", "topic", 4), ("airline_sentiment", "sentiment", 3), ("banking77", "intent", 20),
    ("clickbait", "clickbait", 2), ("clinc_domain", "intent_domain", 10), ("clinc_kitchen_and_dining", "intent", 15),
    ("clinc_travel", "intent", 15), ("cola", "acceptability", 2), ("cr", "sentiment", 2),
    ("davidson_hate_offensive", "hate_speech", 3), ("emotion", "emotion", 6), ("hwu64_scenario", "intent_domain", 18),
    ("mpqa", "sentiment", 2), ("mr", "sentiment", 2), ("mrpc", "paraphrase", 2), ("poem_sentiment", "sentiment", 4),
    ("semeval2010_relation", "relation", 10), ("sick_nli", "nli", 3), ("sms_spam", "spam", 2), ("sst5", "sentiment", 5),
    ("subj", "subjectivity", 2), ("trec", "question_type", 6), ("trec_fine", "question_type", 20),
    ("tweeteval_emotion", "emotion", 4), ("tweeteval_hate", "hate_speech", 2), ("tweeteval_offensive", "offensive", 2),
    ("tweeteval_sentiment", "sentiment", 3), ("tweeteval_stance_abortion", "stance", 3),
    ("tweeteval_stance_atheism", "stance", 3), ("tweeteval_stance_feminist", "stance", 3),
]
REAL_NAMES = [t for t, _, _ in REAL_TASKS]
REAL_FAMILIES = {t: f for t, f, _ in REAL_TASKS}
REAL_LABELS = {t: n for t, _, n in REAL_TASKS}


def shipped():
    from ipt_core.paths import SHIPPED_RESULTS
    from ipt_core.store import Store
    return Store(SHIPPED_RESULTS)


def real_sweep_rows(dims=(4, 16, 64), seeds: int = 2, shift: float = 0.0) -> list[dict]:
    """An IPT sweep on the real suite as ``ipt_dims`` stores its rows: 22 seen, 8 unseen tasks."""
    rng = np.random.default_rng(len(dims) + seeds)
    rows = []
    for i, (task, fam, n) in enumerate(REAL_TASKS):
        setting = "seen" if i % 4 else "unseen"
        for d in dims:
            for sub in ("found", "random"):
                for s in range(seeds):
                    zs, pt = 1 / n + 0.1, min(0.95, 1 / n + 0.4)
                    ist = zs + (pt - zs) * (min(1.0, np.log(d) / 4.5) if sub == "found" else 0.05) + rng.normal(0, 0.02)
                    ist = ist + shift
                    rows.append({"d": d, "setting": setting, "subspace": sub, "task": task, "family": fam, "seed": s,
                                 "ist_test_acc": ist, "pt_test_acc": pt, "zero_shot_test_acc": zs,
                                 "ist_dev_acc": ist, "pt_dev_acc": pt, "zero_shot_dev_acc": zs,
                                 "recovery": ist / pt, "gain_recovery": (ist - zs) / (pt - zs),
                                 "dev_gain_recovery": (ist - zs) / (pt - zs)})
    return rows


def page_figures() -> list[tuple[str, go.Figure, int]]:
    """(name, figure, width in a 1,400 px window) of every figure builder a page shows, as the page calls it."""
    store = shipped()
    demo_labels = {e.meta["task"]: len(e.meta["labels"]) for e in store.query("pt_run")}  # as the pages pass them
    out: list[tuple[str, go.Figure, int]] = []
    # recovery versus d_I: the shipped sweep with the most dims, and the real suite's (d_I 4/16/64 + the paper's 5, 250)
    dims = max(store.query("ipt_dims"), key=lambda e: len(e.meta["dims"]))
    for gain in ("pooled_gain_recovery", "gain_recovery"):
        t = ipt_figures.recovery_table(dims.meta["rows"], "d", dims.meta.get("summary"))
        out.append((f"recovery_demo_{gain}", ipt_figures.recovery_figure(t, "d", gain=gain), CHART_WIDTH))
    real = real_sweep_rows()
    out.append(("recovery_real", ipt_figures.recovery_figure(ipt_figures.recovery_table(real, "d")), CHART_WIDTH))
    wide = real_sweep_rows(dims=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), seeds=1)
    out.append(("recovery_many_dims", ipt_figures.recovery_figure(ipt_figures.recovery_table(wide, "d")), CHART_WIDTH))
    count = store.query("ipt_task_count")[0]
    out.append(("recovery_task_count", ipt_figures.recovery_figure(
        ipt_figures.recovery_table(count.meta["rows"], "n_train_tasks"), "n_train_tasks", reference=False,
        gain="pooled_gain_recovery", title=f"Recovery at d_I = {count.meta['d']} versus training tasks"), CHART_WIDTH))
    held = [dict(r, heldout_family=r["family"]) for r in real_sweep_rows(dims=(16,)) if r["setting"] == "unseen"]
    out.append(("recovery_heldout_family", ipt_figures.recovery_figure(
        ipt_figures.recovery_table(held, "heldout_family"), "heldout_family", reference=False,
        gain="pooled_gain_recovery", title="Recovery of the held-out family's tasks"), CHART_WIDTH))
    # sweeps side by side: the shipped sweeps at d_I 8, and four ablations of the real suite
    sweeps = [(f"MSF alpha = {a} (reconstruction weight)<br>({k})", real_sweep_rows(shift=sh))
              for a, k, sh in (("1", "1a2b3c", 0.0), ("10", "4d5e6f", 0.02))]
    sweeps += [("MSF norm = none (prompt normalisation)<br>(778899)", real_sweep_rows(shift=-0.03)),
               ("MSF without task loss<br>(aabbcc)", real_sweep_rows(shift=-0.05))]
    for split in ("dev", "test"):
        cmp = ipt_figures.sweep_comparison_table(sweeps, 16, "pooled_gain_recovery")
        fig = ipt_figures.sweep_comparison_figure(cmp, split, gain="pooled_gain_recovery")
        out.append((f"sweeps_real_{split}", fig.update_xaxes(tickangle=0, automargin=True), FULL_WIDTH))
    demo_sweeps = [(f"same settings<br>({e.key[:6]})", e.meta["rows"]) for e in store.query("ipt_dims")]
    cmp = ipt_figures.sweep_comparison_table(demo_sweeps, 8, "gain_recovery")
    out.append(("sweeps_demo_test", ipt_figures.sweep_comparison_figure(cmp, "test").update_xaxes(tickangle=0, automargin=True),
                FULL_WIDTH))
    # stability: the shipped run, all tasks and one task
    stab = store.query("ipt_stability")[0].meta
    out.append(("stability_all", ipt_figures.stability_figure(ipt_figures.stability_table(stab["curves"], None, demo_labels),
                                                             "Dev accuracy across seeds: all tasks (mean)"), CHART_WIDTH))
    task = stab["tasks"][0]
    out.append(("stability_task", ipt_figures.stability_figure(ipt_figures.stability_table(stab["curves"], task, demo_labels),
                                                              f"Dev accuracy across seeds: {task}"), CHART_WIDTH))
    # methods: the shipped comparison (2 tasks x 6 methods), the real suite's 30 tasks; attention; codebook
    mc = store.query("method_compare")[0].meta
    out.append(("methods_demo", ipt_figures.method_compare_figure(ipt_figures.method_compare_table(mc["rows"], demo_labels)),
                CHART_WIDTH))
    rng = np.random.default_rng(1)
    rows = [{"method": m, "task": t, "seed": s, "test_acc": float(rng.uniform(1 / n, 1)), "test_f1": 0.5,
             "trainable_params": 100, "seconds": 1.0}
            for m in ("zero-shot", "probe", "pt", "ipt", "attempt", "vip") for t, _, n in REAL_TASKS for s in range(2)]
    out.append(("methods_real", ipt_figures.method_compare_figure(ipt_figures.method_compare_table(rows, REAL_LABELS)), CHART_WIDTH))
    out.append(("attention_demo", ipt_figures.attention_heatmap(ipt_figures.attention_table(mc["attempt_attention"])),
                FULL_WIDTH))
    w = rng.dirichlet(np.ones(30), size=30)
    out.append(("attention_real", ipt_figures.attention_heatmap(ipt_figures.attention_table(
        {"targets": REAL_NAMES, "sources": REAL_NAMES, "weights": w.tolist()})), FULL_WIDTH))
    out.append(("codebook_demo", ipt_figures.codebook_usage_figure(ipt_figures.codebook_usage_table(mc["vip_codebook_usage"])),
                CHART_WIDTH))
    out.append(("codebook_spread", ipt_figures.codebook_usage_figure(ipt_figures.codebook_usage_table(
        rng.dirichlet(np.ones(64)).tolist())), CHART_WIDTH))
    # prompt tuning: the shipped runs' dev curves (the page's default: four tasks; and all 24)
    pt_runs = [e.meta for e in store.query("pt_run")]
    first4 = sorted({r["task"] for r in pt_runs})[:4]
    out.append(("dev_curves_4", pt_figures.dev_curves_figure(pt_figures.dev_curves_table(
        [r for r in pt_runs if r["task"] in first4])), CHART_WIDTH))
    out.append(("dev_curves_24", pt_figures.dev_curves_figure(pt_figures.dev_curves_table(pt_runs)), CHART_WIDTH))
    # the per-task bar charts (checked above; rendered here too)
    out.append(("pt_results_demo", pt_figures.pt_results_figure(pt_figures.pt_results_table(
        pt_runs, [e.meta for e in store.query("zero_shot")], [e.meta for e in store.query("probe")])), CHART_WIDTH))
    out.append(("recovery_bars_real", ipt_figures.recovery_bars_figure(ipt_figures.recovery_bars_table(real, 16), "recovery",
                                                                       "Per-task recovery at d_I = 16"), FULL_WIDTH))
    runs, zs = ist_metas(24, 2)
    labels = {r["task"]: 2 + i % 3 for i, r in enumerate(runs)}
    out.append(("ist_runs", ipt_figures.ist_runs_figure(ipt_figures.ist_runs_table(runs, zs, labels)), CHART_WIDTH))
    out += map_page_figures(store)
    return out


def map_page_figures(store) -> list[tuple[str, go.Figure, int]]:
    out = []
    tm = store.query("task_map")[0].meta
    fam = dict(zip(tm["tasks"], tm["families"]))
    colours = family_colors(tm["families"])
    entry = store.query("task_map")[0]
    for space in ("prompt", "intrinsic"):
        if tm.get("umap"):
            coords, how, axes = tm["umap"][space], "UMAP", ("UMAP 1", "UMAP 2")
        else:  # the quick pipeline stores no UMAP: the page and the tour draw PCA of the stored vectors
            coords, ratio = mq.pca(entry.tensor(space).float().numpy().reshape(len(tm["tasks"]), -1))
            how, axes = "PCA", mf.pca_axis_titles(ratio)
        t = mf.task_map_table(coords, tm["tasks"], tm["families"])
        out.append((f"task_map_{space}", mf.task_map_figure(
            t, f"Tasks in the {space} space ({how})", axis_titles=axes, colours=colours,
            subtitle="trustworthiness of this 2-D map (k = 3): 0.81"), FULL_WIDTH))
    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 16)) + np.array([sorted(set(REAL_FAMILIES.values())).index(f) % 7 for f in REAL_FAMILIES.values()])[:, None] * 0.3
    coords, ratio = mq.pca(x)
    out.append(("task_map_real_pca", mf.task_map_figure(
        mf.task_map_table(coords, REAL_NAMES, list(REAL_FAMILIES.values())), "Tasks in the raw prompt space (PCA)",
        axis_titles=mf.pca_axis_titles(ratio), highlight=["sst5"], subtitle="trustworthiness of this 2-D map (k = 3): 0.74"),
        FULL_WIDTH))
    for n, names in ((24, tm["tasks"]), (30, REAL_NAMES)):
        v = rng.normal(size=(n, 16))
        sim = maps.cosine_similarity(v)
        st = mf.similarity_table(sim, names, maps.cluster_order(sim))
        out.append((f"similarity_{n}", mf.similarity_heatmap(st, "Cosine similarity in the raw prompt space"), FULL_WIDTH))
        out.append((f"dendrogram_{n}", mf.dendrogram_figure(maps.dendrogram_data(sim, list(names))), CHART_WIDTH))
    v = rng.normal(size=(24, 8))
    report = mq.quality_report({s: (v, tm["tasks"]) for s in ("prompt", "intrinsic", "ist")}, fam,
                               {"text": (v, tm["tasks"]), "zero_shot_profile": (v, tm["tasks"])})
    out.append(("quality", mf.quality_figure(mf.quality_table(report)), CHART_WIDTH))
    rep = store.query("transfer_report")[0].meta
    out.append(("transfer_demo", transfer_figures.transfer_figure(transfer_figures.transfer_table(rep["pairs"]), rep["spaces"]),
                CHART_WIDTH))
    return out


def test_render_page_figures(tmp_path):
    """Each page figure drawn by headless Chromium at its width in a 1,400 px window and at 1,400 px:
    a PNG of each in test-artifacts/figures/ (for a person to look at), and no rendered overlaps."""
    import os
    import shutil
    from pathlib import Path

    import plotly.offline
    chromium = shutil.which("chromium")
    if not chromium or not os.environ.get("IPT_RENDER_FIGURES"):
        pytest.skip("set IPT_RENDER_FIGURES=1 (needs chromium, chromedriver and selenium) to render the figures")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    out = Path(__file__).resolve().parents[1] / "test-artifacts" / "figures"
    out.mkdir(parents=True, exist_ok=True)
    page = tmp_path / "figure.html"
    page.write_text("<html><head><style>body{margin:0}</style><script>" + plotly.offline.get_plotlyjs()
                    + "</script></head><body><div id='gd'></div></body></html>")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                 "--window-size=1400,3000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    problems = {}
    try:
        driver.get(page.as_uri())
        driver.set_script_timeout(60)
        from selenium.webdriver.common.by import By
        def draw(fig: go.Figure, width: int, png: Path | None = None) -> list[str]:
            f = go.Figure(fig).update_layout(width=fig.layout.width or width, height=fig.layout.height or 450)
            m = driver.execute_async_script(MEASURE_JS, f.to_json())
            if png:
                driver.find_element(By.ID, "gd").screenshot(str(png))
            return rendered_defects(m)

        for name, fig, width in page_figures():
            for suffix, w in (("", width), ("_1400", 1400)):
                bad = draw(fig, w, out / f"{name}{suffix}.png")
                if bad:
                    problems[f"{name}{suffix}"] = bad
        # the layout checker's examples, drawn: what it calls a defect shows as one (where a drawing can show it:
        # a legend too wide or too tall for its margin makes plotly shrink the plot, which overlaps nothing)
        for check, (bad, good, _) in bad_and_good_layouts().items():
            if check in ("wide legend on the right", "legend past the bottom"):
                continue
            if not draw(bad, CHART_WIDTH):
                problems[f"checker example {check!r}"] = ["drawn without a defect"]
            if (d := draw(good, CHART_WIDTH)):
                problems[f"checker example {check!r}, laid out well"] = d
    finally:
        driver.quit()
    assert not problems, "\n".join(f"{k}: {v}" for k, v in problems.items())


def test_the_attention_heatmap_says_when_it_is_one_hot_or_uniform_and_stays_quiet_when_graded():
    from ipt_core.figures.ipt import attention_reading, attention_table

    one_hot = attention_table({"targets": ["a", "b"], "sources": ["a", "b", "c", "(own prompt)"],
                               "weights": [[0, 0.97, 0.02, 0.01], [0.0, 0, 0.995, 0.005]]})
    text = attention_reading(one_hot)
    assert text.startswith("**Near one-hot:**") and "97%–100%" in text and "a → b, b → c" in text
    uniform = attention_table({"targets": ["a"], "sources": ["a", "b", "c", "d"], "weights": [[0.9, 0.34, 0.33, 0.33]]})
    assert attention_reading(uniform).startswith("**Near uniform:**")  # the self cell does not count
    graded = attention_table({"targets": ["a"], "sources": ["a", "b", "c", "d"], "weights": [[0, 0.6, 0.3, 0.1]]})
    assert attention_reading(graded) is None
