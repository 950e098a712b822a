"""The pipeline runs every experiment the app shows and says where each result is stored."""
from __future__ import annotations

from dataclasses import replace

import pytest
from conftest import make_tiny_task
from test_ipt import TINY

from ipt_core.config.budgets import BUDGETS, Budget
from ipt_core.experiments.context import Context
from ipt_core.experiments.pipeline import default_split, run_pipeline
from ipt_core.store import Store
from ipt_core.tasks import Suite, load_suite


def nine_task_suite() -> Suite:
    tasks = []
    for i in range(9):
        t = make_tiny_task(f"t{i}", 2 + i % 2, n_train=12, n_dev=12, n_test=6, seed=i)
        tasks.append(replace(t, type=f"fam{i % 3}"))
    return Suite("nine", "nine", tuple(tasks))


def test_default_split_is_family_stratified():
    suite = load_suite("demo")
    train, test = default_split(suite)
    assert set(train) | set(test) == set(suite.names()) and not set(train) & set(test)
    fams = suite.families()
    for fam, names in fams.items():
        # every family keeps at least one task in training; large families give some to test
        assert any(n in train for n in names), fam
    assert any(n in test for n in fams["sentiment"]) and 0.15 < len(test) / len(suite.names()) < 0.35
    assert default_split(suite) == (train, test)  # deterministic


@pytest.mark.slow  # every stage of the pipeline trains
def test_pipeline_runs_everything_and_reports_keys(make_tiny_backbone, tmp_path):
    bb = make_tiny_backbone("encoder_sim")
    store = Store(tmp_path)
    budget = Budget(settings=TINY, dims=(2, 4), seeds=(0,), max_seen=2, count_fractions=(0.5, 1.0),
                    stability_tasks=1, stability_seeds=(0, 1), curve_every=2, heldout_seen=0)
    report = run_pipeline(Context.create(store, bb, "cpu"), nine_task_suite(), budget, umap=False)
    kinds = [r["kind"] for r in report["results"]]
    assert kinds == ["zero_shot+probe", "ipt_dims", "ipt_task_count", "ipt_heldout_family", "ipt_stability", "task_map"]
    for r in report["results"][1:]:
        assert store.get(r["key"]) is not None
    # the task-count curve's full size is the dimension sweep's own subspace (not a reordered copy):
    # subspaces of d_I 2 and 4, one at half the tasks, one without the held-out family
    assert len(store.query("msf")) == 4
    count = store.get(report["results"][2]["key"])
    dims_rows = {(r["task"], r["setting"], r["subspace"]): r["ist_key"] for r in store.get(report["results"][1]["key"]).meta["rows"] if r["d"] == 4}
    full = [r for r in count.meta["rows"] if r["n_train_tasks"] == count.meta["sizes"][-1]]
    assert full and all(dims_rows[(r["task"], r["setting"], r["subspace"])] == r["ist_key"] for r in full)
    # MSF is not scored at step 0 (a random auto-encoder); heldout_seen=0: the held-out family's tasks only
    assert all(e.meta["dev_curve"][0][0] > 0 for e in store.query("msf"))
    assert {r["setting"] for r in store.get(report["results"][3]["key"]).meta["rows"]} == {"unseen"}
    assert report["store"] == str(store.root) and report["dims"] == [2, 4]
    assert len(store.query("probe")) == 9 and len(store.query("zero_shot")) == 9
    # a second run is served from the store: no row goes through the model, no entry is written
    before = {e.key: e.created for e in store.query()}

    def boom(*a, **k):
        raise AssertionError("ran the model again")

    bb.collate = boom
    again = run_pipeline(Context.create(store, bb, "cpu"), nine_task_suite(), budget, umap=False)
    assert [r["key"] for r in again["results"]] == [r["key"] for r in report["results"]]
    assert {e.key: e.created for e in store.query()} == before


def test_quick_budget_fits_the_default_prompt():
    b = BUDGETS["quick"]
    assert b.settings.pt.steps <= 100 and len(b.seeds) == 1
