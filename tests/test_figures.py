"""figures.py: the tables behind each chart (exact numbers) and what the figures draw."""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from ipt_core.analysis import map_quality as mq
from ipt_core.analysis import maps
from ipt_core.figures import ipt as ipt_figures
from ipt_core.figures import maps as map_figures
from ipt_core.figures import maps as mf
from ipt_core.figures import pt as pt_figures


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
    assert t.shape == (4, 4) and t.dev_acc.tolist() == [0.5, 0.6, 0.5, 0.7]
    fig = pt_figures.dev_curves_figure(t)
    assert len(fig.data) == 2 and [tr.showlegend for tr in fig.data] == [True, False]
    assert fig.data[0].line.color == fig.data[1].line.color  # colour per task


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
    core = pytest.importorskip("ipt_core.experiments.ipt")
    rows = [dict(r, ist_test_acc=0.6, pt_test_acc=0.7) for r in ipt_rows()]
    from_rows = ipt_figures.recovery_table(rows)
    from_summary = ipt_figures.recovery_table(rows, "d", core._summary(rows))
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
    pts = {(tr.name.rsplit(", ", 1)[1], d, y) for tr in ref for d, y in zip(tr.x, tr.y)}
    assert pts == {("seen", 250, 0.97), ("unseen", 250, 0.83), ("seen", 5, 0.87), ("unseen", 5, 0.65)}
    assert fig.layout.xaxis.type == "log"
    no_ref = ipt_figures.recovery_figure(t, reference=False)
    assert not [tr for tr in no_ref.data if tr.name and "paper" in tr.name]
    # a categorical x (held-out family) draws error bars instead of bands
    rows = [dict(r, heldout_family="spam" if r["d"] == 4 else "topic") for r in ipt_rows()]
    cat = ipt_figures.recovery_figure(ipt_figures.recovery_table(rows, "heldout_family"), "heldout_family", reference=False)
    assert not [tr for tr in cat.data if tr.fill == "toself"]


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
    assert len(fig.data) == 2 * (3 + 2)  # per init: 3 seed traces, band, mean line
    assert len(ipt_figures.stability_figure(t, traces=False).data) == 4


# --------------------------------------------------------------------------------------------------
# methods


def test_method_compare_attention_codebook():
    rows = [{"method": m, "task": t, "seed": s, "test_acc": 0.5 + 0.1 * (m == "vip") + s / 100, "test_f1": 0.4,
             "trainable_params": 100, "seconds": 2.0} for m in ("pt", "vip") for t in ("a", "b") for s in (0, 1)]
    t = ipt_figures.method_compare_table(rows)
    assert len(t) == 4
    v = t[(t.method == "vip") & (t.task == "a")].iloc[0]
    assert v.test_acc == pytest.approx(0.605) and v.n_seeds == 2
    assert names_of(ipt_figures.method_compare_figure(t)) == ["pt", "vip"]
    assert ipt_figures.method_compare_table([]).empty

    att = {"targets": ["a", "b"], "sources": ["x", "y", "z"], "weights": [[0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]}
    at = ipt_figures.attention_table(att)
    assert at.shape == (2, 3) and at.loc["b", "z"] == 0.8
    assert ipt_figures.attention_heatmap(at).data[0].type == "heatmap"
    cu = ipt_figures.codebook_usage_table([0.5, 0.25, 0.25])
    assert cu.usage.sum() == pytest.approx(1.0)
    assert ipt_figures.codebook_usage_figure(cu).data[0].type == "bar"


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
    lines = re.split(r"<br\s*/?>", text or "")
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


def layout_defects(fig: go.Figure, width: int = CHART_WIDTH) -> list[str]:
    """Obvious layout defects of a plotly figure, from its layout and data alone (no browser):

    1. a categorical axis (string values, or an array of tick values) that does not label every
       category: a ``dtick``/``nticks``/``tickvals`` that drops some, or under 14 px per category;
    2. annotations (subplot titles, footnotes) outside the figure (the plot area plus its margins),
       e.g. ``yref='paper'`` at y < 0 needs |y| * plot height + 20 px <= margin.b; the title wider
       than the figure or on top of an annotation;
    3. an annotation within 20 px of an x axis's tick labels and title, annotations on top of each other, x-axis
       titles on top of each other.

    Sizes are estimates (0.55 em per character, 1.3 em per line); ``width`` is used when the
    figure has none (the page sizes it to its column). Returns one line per defect.
    """
    lay = fig.layout
    W = lay.width or width
    H = lay.height or 450
    m = lay.margin
    l, r = (m.l if m.l is not None else 80), (m.r if m.r is not None else 80)
    t, b = (m.t if m.t is not None else 100), (m.b if m.b is not None else 80)
    shown = [tr.name for tr in fig.data if tr.name and tr.showlegend is not False]
    legend_w = 0.0
    shows_legend = bool(shown) and (lay.showlegend or (lay.showlegend is None and len(fig.data) > 1))
    if shows_legend and lay.legend.orientation != "h" and (lay.legend.x is None or lay.legend.x >= 1):
        legend_w = max(_text_box(n, 12)[0] for n in shown) + 40  # plotly pushes the right margin for it
    pw, ph = W - l - r - legend_w, H - t - b
    out: list[str] = []
    if pw <= 0 or ph <= 0:
        return [f"no room for the plot: {pw:.0f} x {ph:.0f} px"]

    axes = {k: getattr(lay, k) for k in lay.to_plotly_json() if re.fullmatch(r"[xy]axis\d*", k)}
    for k in ("xaxis", "yaxis"):
        axes.setdefault(k, getattr(lay, k))

    def dom(ax) -> tuple[float, float]:
        return tuple(ax.domain) if ax.domain is not None else (0.0, 1.0)

    # 1. categorical axes
    cats: dict[str, list] = {k: [] for k in axes}
    for tr in fig.data:
        for letter in "xy":
            ref = getattr(tr, f"{letter}axis", None) or letter
            key = f"{letter}axis{ref[1:]}"
            vals = getattr(tr, letter, None)
            if key in cats and vals is not None:
                cats[key] += [v for v in vals if isinstance(v, str)]
    for k, ax in axes.items():
        c = list(dict.fromkeys(cats.get(k, [])))
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
        if not labelled or ax.showticklabels is False:
            continue
        length = (dom(ax)[1] - dom(ax)[0]) * (pw if k[0] == "x" else ph)
        if length / len(labelled) < MIN_PX_PER_CATEGORY:
            out.append(f"{k}: {len(labelled)} categories in {length:.0f} px ({length / len(labelled):.1f} px each, "
                       f"under {MIN_PX_PER_CATEGORY}): labels skipped or piled up")

    # boxes in px, origin at the plot area's bottom left, y up
    boxes: list[tuple[str, tuple[float, float], tuple[float, float]]] = []
    for i, a in enumerate(lay.annotations or ()):
        if a.xref != "paper" or a.yref != "paper" or a.showarrow is not False and a.showarrow is not None:
            continue
        size = (a.font.size if a.font and a.font.size else 12)
        w, h = _text_box(a.text, size)
        xa = a.xanchor if a.xanchor not in (None, "auto") else _auto_anchor(a.x, "left", "center", "right")
        ya = a.yanchor if a.yanchor not in (None, "auto") else _auto_anchor(a.y, "bottom", "middle", "top")
        xs, ys = _span(a.x * pw, w, xa, "left", "right"), _span(a.y * ph, h, ya, "bottom", "top")
        name = f"annotation {i} {re.sub(r'<[^>]+>', ' ', a.text or '')[:40]!r}"
        boxes.append((name, xs, ys))
        # 2. inside the figure
        if a.y < 0 and abs(a.y) * ph + MIN_GAP_PX > b:
            out.append(f"{name}: y={a.y:.3f} is {abs(a.y) * ph:.0f} px under the plot, bottom margin {b} px "
                       f"(needs {abs(a.y) * ph + MIN_GAP_PX:.0f})")
        if a.y > 1 and (a.y - 1) * ph + MIN_GAP_PX > t:
            out.append(f"{name}: y={a.y:.3f} is {(a.y - 1) * ph:.0f} px over the plot, top margin {t} px")
        if ys[0] < -b or ys[1] > ph + t:
            out.append(f"{name}: spans {ys[0]:.0f}..{ys[1]:.0f} px, the figure {-b}..{ph + t:.0f}: clipped")
        if xs[0] < -l or xs[1] > pw + r + legend_w:
            out.append(f"{name}: spans x {xs[0]:.0f}..{xs[1]:.0f} px, the figure {-l}..{pw + r + legend_w:.0f}: clipped")

    title = lay.title.text if lay.title else None
    if title:
        size = lay.title.font.size if lay.title.font and lay.title.font.size else 17
        w, h = _text_box(title, size)
        if w > W * 0.98:
            out.append(f"title: about {w:.0f} px wide, the figure {W} px")
        # plotly's "auto" title sits in the middle of the top margin
        tb = (ph + t / 2 - h / 2, ph + t / 2 + h / 2)
        txs = (-l + 0.01 * W, -l + 0.01 * W + w)
        for name, xs, ys in boxes:
            if not _apart(ys, tb, 4) and not _apart(xs, txs):
                out.append(f"{name}: on the title")

    # 3. x-axis titles
    ytitle_boxes = []
    for k, ax in axes.items():
        if k[0] != "x" or not (ax.title and ax.title.text):
            continue
        anchor = axes.get(f"yaxis{(ax.anchor or 'y')[1:]}")
        y0 = (dom(anchor)[0] if anchor is not None else 0.0) * ph
        labels = [str(v) for v in (ax.ticktext or list(dict.fromkeys(cats.get(k, []))) or ["0.00"])]
        angle = math.radians(abs(ax.tickangle or 0)) if ax.tickangle not in (None, "auto") else 0.0
        depth = max(_text_box(v, 12)[0] for v in labels) * math.sin(angle) + 12 * math.cos(angle) + 6
        standoff = ax.title.standoff if ax.title.standoff is not None else 15
        size = ax.title.font.size if ax.title.font and ax.title.font.size else 14
        w, h = _text_box(ax.title.text, size)
        top = y0 - depth - standoff
        xs = _span((dom(ax)[0] + dom(ax)[1]) / 2 * pw, w, "center", "left", "right")
        # the block under the axis: its tick labels, then its title
        ytitle_boxes.append((f"{k} title {ax.title.text!r}", xs, (top - h, y0)))
    for name, xs, ys in boxes:
        for tname, txs, tys in ytitle_boxes:
            if not _apart(xs, txs) and not _apart(ys, tys, MIN_GAP_PX):
                out.append(f"{name}: within {MIN_GAP_PX} px of {tname}")
    for group in (boxes, ytitle_boxes):
        for i, (n1, x1, y1) in enumerate(group):
            for n2, x2, y2 in group[i + 1:]:
                if not _apart(x1, x2, 4) and not _apart(y1, y2, 4):
                    out.append(f"{n1} and {n2} overlap")
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
    return mf.transfer_table(pairs), corr


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
    fig = mf.transfer_figure(tt, corr)
    assert layout_defects(fig) == []
    titles = [a.text for a in fig.layout.annotations]
    assert len(titles) == n_spaces and all("Spearman" in x for x in titles)
    assert "source of the target's family" in names_of(fig)  # the symbols explained in the legend, not a footnote


def test_other_figures_read_at_1400_px():
    """The layout check on the builders where it is cheap: the ones whose axes already scale."""
    rng = np.random.default_rng(0)
    names = [f"task_{i:02d}" for i in range(24)]
    x = rng.normal(size=(24, 8))
    sim = maps.cosine_similarity(x)
    st = map_figures.similarity_table(sim, names, maps.cluster_order(sim))
    report = mq.quality_report({"prompt": (x, names)}, dict(zip(names, ["a", "b", "c"] * 8)),
                               {"text": (x[:12], names[:12])})
    for fig in (mf.similarity_heatmap(st), mf.dendrogram_figure(maps.dendrogram_data(sim, names)),
                mf.quality_figure(mf.quality_table(report)),
                mf.task_map_figure(map_figures.task_map_table(maps.project(x), names, ["a", "b", "c"] * 8)),
                ipt_figures.method_compare_figure(pd.DataFrame([{"task": t, "method": m, "test_acc": 0.6, "test_acc_std": 0.01}
                                                            for t in names for m in ("PT", "IPT", "ATTEMPT")])),
                ipt_figures.attention_heatmap(ipt_figures.attention_table({"weights": sim.tolist(), "targets": names,
                                                                   "sources": names}))):
        assert layout_defects(fig) == [], fig.layout.title.text


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


def _old_builder(name: str):
    """``name`` as the last commit before the horizontal layout drew it (the vertical bars this replaces)."""
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    src = subprocess.run(["git", "show", "57c2ae4:ipt_core/figures_ipt.py"], cwd=root, capture_output=True, text=True)
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
