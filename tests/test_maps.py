"""maps.py: projections, similarities, neighbours, clustering and the UMAP job entry point."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
import torch

from ipt_core.analysis import maps
from ipt_core.cli import main as cli
from ipt_core.store import Store


def clusters(n_per: int = 4, dim: int = 20, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Three tight, well separated clusters: a0..a3, b0..b3, c0..c3."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, dim)) * 5
    x = np.concatenate([c + rng.normal(size=(n_per, dim)) * 0.1 for c in centres])
    names = [f"{g}{i}" for g in "abc" for i in range(n_per)]
    return x, names


def test_project_pca_shapes_and_determinism():
    x, _ = clusters()
    p = maps.project(x, "pca")
    assert p.shape == (12, 2) and np.isfinite(p).all()
    np.testing.assert_allclose(p, maps.project(x, "pca", random_state=0))
    # PCA keeps the clusters apart: each point is nearer its own cluster's centre
    centres = np.stack([p[i * 4:(i + 1) * 4].mean(0) for i in range(3)])
    nearest = np.argmin(((p[:, None, :] - centres[None]) ** 2).sum(-1), axis=1)
    assert nearest.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert maps.project(np.ones((1, 5))).shape == (1, 2)
    np.testing.assert_array_equal(maps.project(np.ones((4, 5))), np.zeros((4, 2)))  # identical vectors
    assert maps.project([[0.0], [1.0], [3.0]]).shape == (3, 2)  # D = 1: second column padded


def test_project_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        maps.project(np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        maps.project([[1.0, np.nan], [0.0, 1.0]])
    with pytest.raises(ValueError, match="method"):
        maps.project(np.eye(3), "tsne")
    with pytest.raises(ValueError, match="at least 4"):
        maps.project(np.eye(3), "umap")


def test_cosine_similarity():
    s = maps.cosine_similarity([[1, 0], [0, 3], [2, 2], [0, 0]])
    assert s.shape == (4, 4)
    np.testing.assert_allclose(np.diag(s), 1.0)
    np.testing.assert_allclose(s, s.T)
    assert s[0, 1] == pytest.approx(0.0) and s[0, 2] == pytest.approx(2 ** -0.5)
    assert s[3, 0] == 0.0  # a zero vector is similar to nothing else


def test_nearest_neighbours_in_the_original_space():
    x, names = clusters()
    nn = maps.nearest_neighbours(x, names, k=3, query=["a0", "c2"])
    assert nn.columns.tolist() == ["task", "rank", "neighbour", "cosine"]
    assert sorted(nn[nn.task == "a0"].neighbour) == ["a1", "a2", "a3"]
    assert sorted(nn[nn.task == "c2"].neighbour) == ["c0", "c1", "c3"]
    assert nn[nn.task == "a0"]["rank"].tolist() == [1, 2, 3]
    assert (np.diff(nn[nn.task == "a0"].cosine) <= 0).all()
    # brute force in the original space
    sim = maps.cosine_similarity(x)
    for q in names:
        i = names.index(q)
        best = max((j for j in range(12) if j != i), key=lambda j: sim[i, j])
        assert maps.nearest_neighbours(x, names, 1, [q]).neighbour.iloc[0] == names[best]
    with pytest.raises(ValueError, match="unknown"):
        maps.nearest_neighbours(x, names, 2, ["zz"])
    with pytest.raises(ValueError, match="names"):
        maps.nearest_neighbours(x, names[:3], 2)


def test_cluster_order_and_dendrogram_group_clusters():
    x, names = clusters()
    perm = np.random.default_rng(1).permutation(12)
    xs, ns = x[perm], [names[i] for i in perm]
    sim = maps.cosine_similarity(xs)
    order = maps.cluster_order(sim)
    assert sorted(order) == list(range(12))
    groups = [ns[i][0] for i in order]
    # each cluster is contiguous in the order
    assert sum(1 for a, b in zip(groups, groups[1:]) if a != b) == 2
    d = maps.dendrogram_data(sim, ns)
    assert len(d["icoord"]) == len(d["dcoord"]) == 11 and len(d["linkage"]) == 11
    assert sorted(d["labels"]) == sorted(ns)
    assert [ns[i] for i in d["leaves"]] == d["labels"]
    assert maps.cluster_order(np.eye(2)) == [0, 1]
    assert maps.dendrogram_data(np.eye(1), ["a"])["icoord"] == []


def test_fingerprint_and_pt_config_id():
    x, names = clusters()
    fp = maps.vectors_fingerprint(x, names)
    assert fp == maps.vectors_fingerprint(x.copy(), list(names))
    assert fp != maps.vectors_fingerprint(x + 1e-3, names)
    assert fp != maps.vectors_fingerprint(x, names[::-1])
    spec = {"method": "pt", "backbone": {"spec": "encoder-sim"}, "config": {"kind": "deep", "n_tokens": 8}, "task": "a",
            "seed": 0}
    assert maps.pt_config_id(spec, {"k": None}) == maps.pt_config_id(dict(spec, task="b", seed=3), {"k": None})
    assert maps.pt_config_id(spec) != maps.pt_config_id(dict(spec, config={"kind": "shallow", "n_tokens": 8}))
    assert maps.pt_config_id(spec, {"k": 8, "data_seed": 1}) != maps.pt_config_id(spec, {"k": None})
    assert "deep n=8" in maps.pt_config_label(spec)


@dataclass
class FakeEntry:
    key: str
    meta: dict
    prompt: torch.Tensor
    spec: dict = field(default_factory=dict)

    def tensor(self, name):
        return self.prompt


def test_prompt_space_means_over_seeds_in_suite_order():
    e = [FakeEntry("k1", {"task": "b", "family": "F", "seed": 0}, torch.ones(2, 3)),
         FakeEntry("k2", {"task": "b", "family": "F", "seed": 1}, torch.zeros(2, 3)),
         FakeEntry("k3", {"task": "a", "family": "G", "seed": 0}, torch.full((2, 3), 2.0))]
    names, fams, x = maps.prompt_space(e, ["a", "b", "zz"])
    assert names == ["a", "b"] and fams == ["G", "F"]
    assert x.shape == (2, 6)
    np.testing.assert_allclose(x[1], 0.5)
    np.testing.assert_allclose(x[0], 2.0)
    assert maps.prompt_space(e)[0] == ["a", "b"]
    # the mean (so the fingerprint) does not depend on the order entries arrive in
    assert maps.vectors_fingerprint(maps.prompt_space(e[::-1])[2], names) == maps.vectors_fingerprint(x, names)
    with pytest.raises(ValueError, match="shapes"):
        maps.prompt_space(e + [FakeEntry("k4", {"task": "c", "seed": 0}, torch.ones(3, 3))])
    assert maps.prompt_space([])[0] == []


@pytest.mark.slow  # umap-learn's first fit compiles with numba (~20 s)
def test_umap_projection_and_job_entry_point(tmp_path, capsys):
    """One UMAP fit (compiles with numba once per process), then the CLI of the UMAP job."""
    x, names = clusters(n_per=4)
    p = maps.project(x, "umap", random_state=0, n_neighbors=5)
    assert p.shape == (12, 2) and np.isfinite(p).all()

    store = Store(tmp_path)
    t = torch.tensor(x, dtype=torch.float32)
    tm = store.put("task_map", {"method": "task_map", "t": 1},
                   {"suite": "demo", "tasks": names, "families": [n[0] for n in names], "spaces": ["prompt"]},
                   {"prompt": t}, command="python -m ipt_core ipt --suite demo")
    assert cli.main(["umap", "--cache", str(tmp_path), "--entry", tm.key, "--space", "prompt", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    e = store.get(out["key"])
    assert e.kind == "task_map_umap" and e.meta["tasks"] == names and np.asarray(e.meta["coords"]).shape == (12, 2)
    # the page finds it by the fingerprint of the vectors it holds
    fp = maps.vectors_fingerprint(t.numpy().astype(np.float64), names)
    assert store.get(maps.umap_spec(fp)).key == e.key
    assert "--cache" not in e.command and e.command.startswith("python -m ipt_core umap --entry")
    # bad requests are one clear error line, exit 2
    assert cli.main(["umap", "--cache", str(tmp_path), "--entry", "0" * 64]) == 2
    assert "no entry" in capsys.readouterr().err
    assert cli.main(["umap", "--cache", str(tmp_path)]) == 2
