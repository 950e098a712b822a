"""The demo results shipped with the package are valid, cover every page, and are reproducible."""
from __future__ import annotations

import pytest

from ipt_core.config.pt import PTConfig
from ipt_core.experiments.tune import get_baseline, pt_spec, tune
from ipt_core.store import Store
from ipt_core.tasks import load_suite


def test_shipped_store_is_intact_and_covers_the_pages(shipped):
    report = shipped.verify()
    assert report["corrupt"] == [] and report["ok"] > 0
    kinds = {e.kind for e in shipped.query()}
    assert {"zero_shot", "probe", "pt_run", "ipt_dims", "ipt_task_count", "ipt_heldout_family",
            "ipt_stability", "task_map", "msf", "method_compare"} <= kinds
    dims = [e for e in shipped.query("ipt_dims") if len(e.meta["dims"]) > 1][0]
    # the demo's headline: on seen tasks the found subspace recovers more than a random one
    s = dims.meta["summary"]
    for d in dims.meta["dims"]:
        assert s["found"]["seen"][str(d)]["recovery"] > s["random"]["seen"][str(d)]["recovery"]
    assert all(e.command and e.command.startswith("python -m ipt_core") for e in shipped.query())


@pytest.mark.integration
def test_a_shipped_part_recomputes_to_the_same_numbers(shipped, real_backbone, tmp_path):
    suite = load_suite("demo")
    task = suite.task("sms_spam")
    zs = [e for e in shipped.query("zero_shot") if e.meta["task"] == "sms_spam"][0]
    fresh = get_baseline(Store(tmp_path), "zero_shot", real_backbone, task, device="cpu")
    assert fresh.key == zs.key  # same backbone weights, data and code version -> same key
    assert fresh.meta["test_acc"] == pytest.approx(zs.meta["test_acc"], abs=1e-9)

    run = [e for e in shipped.query("pt_run") if e.meta["task"] == "sms_spam"][0]
    cfg = PTConfig(**run.spec["config"])
    assert pt_spec(real_backbone, task, run.meta["seed"], cfg) == run.spec
    report = tune(Store(tmp_path), suite, ["sms_spam"], [run.meta["seed"]], cfg, backbone=real_backbone,
                  device="cpu", with_baselines=False)
    assert report.keys == [run.key]
    # bitwise equality is not promised across CPUs; one test example of slack (of 80)
    assert report.runs[0]["test_acc"] == pytest.approx(run.meta["test_acc"], abs=1 / 80 + 1e-9)


def test_shipped_subspace_serves_the_intrinsic_tuning_form(shipped):
    """The app's intrinsic-tuning form needs a subspace on a fresh clone: the one at the task map's
    d_I, found on the shipped sweep's training tasks, with every tensor the decoder needs."""
    [tmap] = shipped.query("task_map")
    [msf] = [e for e in shipped.query("msf") if e.meta["d"] == tmap.meta["d"]]
    sweep = max(shipped.query("ipt_dims"), key=lambda e: len(e.meta["dims"]))
    assert msf.meta["train_tasks"] == sweep.meta["train_tasks"] and len(msf.meta["prompt_shape"]) == 3  # deep
    assert {"ae.out.weight", "ae.up.weight", "train_z"} <= set(msf.tensor_names)
    assert msf.meta["status"] and msf.meta["dev_acc"] > 0.5


@pytest.mark.slow
def test_every_shipped_entry_is_what_todays_code_computes_for_its_command(shipped):
    """Shipped results can never drift from the code again: every command recorded in them is
    replayed read-only (``verify --replay``), so a default, a data file or a code version that
    changed any key makes a replay stop before it trains, and every shipped entry must be reached
    by a replay (read, or a stage of what was read). Regenerate with ``scripts/ship_results.py``."""
    from ipt_core.cli.replay import format_report, replay_store

    rep = replay_store(shipped.root)
    assert rep.ok, "shipped results are not today's; run scripts/ship_results.py:\n" + format_report(rep)
    assert {c.command.split()[3] for c in rep.commands} >= {"pipeline", "compare", "transfer", "map-quality"}
