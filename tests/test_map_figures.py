"""map_figures: stable family colours, PCA variance on the axes, robust limits, labels that fit,
a heatmap scaled to its data, a dendrogram labelling every leaf, the quality and transfer figures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ipt_core.analysis import map_quality as mq
from ipt_core.analysis import maps
from ipt_core.figures import maps as mf
from ipt_core.figures import transfer as transfer_figures
from ipt_core.figures.plotting import family_colors


def test_family_colours_are_the_same_in_every_space():
    suite = ["sentiment", "spam", "intent", "topic"]
    full = family_colors(suite)
    assert len(set(full.values())) == 4
    t = pd.DataFrame({"task": ["a", "b", "c"], "family": ["topic", "sentiment", "topic"], "x": [0, 1, 2], "y": [0, 1, 0]})
    fig = mf.task_map_figure(t, colours=full)
    by_name = {tr.name: tr.marker.color for tr in fig.data}
    assert by_name == {"sentiment": full["sentiment"], "topic": full["topic"]}
    # a space with other tasks: the same colours
    fig2 = mf.task_map_figure(t.assign(family=["spam", "topic", "intent"]), colours=full)
    assert {tr.name: tr.marker.color for tr in fig2.data}["topic"] == full["topic"]


def test_pca_axes_say_their_variance():
    assert mf.pca_axis_titles([0.234, 0.12]) == ("PC 1 (23% of variance)", "PC 2 (12% of variance)")


def test_outlier_does_not_set_the_scale_and_is_marked():
    rng = np.random.default_rng(0)
    xy = np.vstack([rng.normal(size=(20, 2)), [[80.0, 0.0]]])
    t = pd.DataFrame({"task": [f"t{i}" for i in range(21)], "family": ["f"] * 21, "x": xy[:, 0], "y": xy[:, 1]})
    fig = mf.task_map_figure(t)
    assert fig.layout.xaxis.range[1] < 20
    symbols = list(fig.data[0].marker.symbol)
    assert symbols[-1] == "triangle-up" and symbols.count("triangle-up") == 1
    assert float(fig.data[0].customdata[-1][2]) == pytest.approx(80.0)  # hover keeps the true coordinate
    assert fig.layout.annotations and "beyond" in fig.layout.annotations[0].text
    assert mf.task_map_figure(t, robust=False).layout.xaxis.range is None


def test_labels_where_they_fit_hover_for_the_rest():
    x = [0, 0.001, 0.002, 1, 0.5]
    y = [0, 0.001, 0.0, 1, 0.5]
    assert mf.label_mask(x, y) == [True, False, False, True, True]
    t = pd.DataFrame({"task": list("abcde"), "family": ["f"] * 5, "x": x, "y": y})
    assert list(mf.task_map_figure(t, robust=False).data[0].text) == ["a", "", "", "d", "e"]
    assert list(mf.task_map_figure(t, labels="hover").data[0].text) == [""] * 5
    assert list(mf.task_map_figure(t, labels="all").data[0].text) == list("abcde")


def test_heatmap_scale_follows_the_data():
    sim = np.array([[1, 0.2, -0.1], [0.2, 1, 0.05], [-0.1, 0.05, 1]])
    t = pd.DataFrame(sim, index=list("abc"), columns=list("abc"))
    hm = mf.similarity_heatmap(t)
    assert hm.data[0].zmax == pytest.approx(0.2) and hm.data[0].zmin == pytest.approx(-0.2)
    assert "-0.10" in hm.data[0].colorbar.title.text and "0.20" in hm.data[0].colorbar.title.text
    pos = mf.similarity_heatmap(pd.DataFrame(np.array([[1, .95], [.95, 1]]), index=list("ab"), columns=list("ab")),
                                centred=False)
    assert pos.data[0].zmin == pytest.approx(0.95)


@pytest.mark.parametrize("n", [2, 3, 6, 11])
def test_dendrogram_labels_every_leaf(n):
    rng = np.random.default_rng(n)
    names = [f"task_{i}" for i in range(n)]
    d = maps.dendrogram_data(mq.similarity(rng.normal(size=(n, 5))), names)
    fig = mf.dendrogram_figure(d)  # lying down: a row per task, the leaves' names level on the y axis
    ticks = list(fig.layout.yaxis.tickvals)
    hi, lo = fig.layout.yaxis.range  # the first leaf at the top
    assert len(fig.layout.yaxis.ticktext) == n and all(lo < v < hi for v in ticks)  # none on or past the edge
    assert sorted(fig.layout.yaxis.ticktext) == sorted(names)
    assert fig.layout.height >= 24 * n  # a row of 24 px per leaf


def test_quality_and_transfer_figures():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 4))
    fams = list("aabbccdd")
    report = mq.quality_report({"prompt": (x, list("ABCDEFGH"))}, dict(zip("ABCDEFGH", fams)),
                               {"text": (x[:6], list("ABCDEF"))})
    qt = mf.quality_table(report)
    assert qt["space"].tolist() == ["prompt", "text"] and qt["kind"].tolist() == ["space", "baseline"]
    fig = mf.quality_figure(qt)
    assert [tr.name for tr in fig.data][-1] == "chance (family sizes)" and list(fig.data[2].x) == qt["chance"].tolist()
    assert list(fig.data[2].y) == ["prompt", "text (baseline)"] and fig.data[0].orientation == "h"  # a row per space
    names = list("ABCDEFGH")
    transfers = [{"target": "A", "runs": [{"source": s, "gain": float(i) / 10, "dev_gain": 0.0}
                                          for i, s in enumerate(names[1:])]}]
    corr, pairs = mq.correlations(transfers, {"prompt": (x, names)}, dict(zip(names, fams)))
    tt = transfer_figures.transfer_table(pairs)
    tf = transfer_figures.transfer_figure(tt, corr)
    assert len(tt) == 7 and "Spearman" in tf.layout.annotations[0].text
    assert sum(len([v for v in tr.x if v is not None]) for tr in tf.data) == 7  # the legend's keys have no points
    # the targets' legend keys are plain circles (a point's symbol says its source's family); the points are not keys
    keys = [tr for tr in tf.data if tr.showlegend is not False]
    assert [tr.name for tr in keys] == ["target A", "source of the target's family", "source of another family"]
    assert keys[0].marker.symbol == "circle" and all(tr.showlegend is False for tr in tf.data if tr.x[0] is not None)
