"""Launching from the app: cost estimates, the job state every page shows (overall progress, ETA),
prerequisite checks of the intrinsic-tuning form, and the Recovery page's defaults.

AppTest does not run timed fragments, so the live job state is tested through its pure function
(:func:`ipt_app.job_state.job_state`); the pages are driven with AppTest as in test_app.py.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_app import app, button, goto, seed_results

from ipt_app import cost
from ipt_app.job_state import job_state, worker_text
from ipt_app.store_reads import sweep_label, sweep_rank
from ipt_core import jobs
from ipt_core.experiments.ipt import shipped_store
from ipt_core.store import Store

# --------------------------------------------------------------------------------------------------
# estimates


def test_estimates_count_the_rows_of_every_stage():
    e = cost.estimate(["tune", "--suite", "demo", "--tasks", "sms_spam,email_spam", "--seeds", "2", "--steps", "50",
                       "--batch-size", "8"], n_suite_tasks=24, rate=40.0)
    assert [s.name for s in e.stages] == ["prompt tuning"] and e.rows == 2 * 2 * 50 * 8
    assert e.seconds == pytest.approx(e.rows / 40.0)
    everything = cost.estimate(["tune", "--suite", "demo"], n_suite_tasks=24)  # no --tasks: all 24, CLI defaults
    assert everything.rows == 24 * 300 * 16
    ist = cost.estimate(["ist", "--suite", "demo", "--tasks", "a,b", "--d", "8", "--ist-steps", "10"], n_suite_tasks=24)
    assert ist.rows == 2 * 10 * 16
    ipt = cost.estimate(["ipt", "--suite", "demo", "--train-tasks", "a,b,c", "--test-tasks", "d", "--dims", "2,8",
                         "--steps", "10", "--batch-size", "4", "--msf-steps", "5", "--ist-steps", "3"], n_suite_tasks=24)
    rows = {s.name: s.rows for s in ipt.stages}
    assert rows["prompt tuning of the training tasks"] == 3 * 10 * 4
    fewer = cost.estimate(["ipt", "--suite", "demo", "--train-tasks", "a,b,c", "--test-tasks", "d", "--dims", "2,8",
                           "--steps", "10", "--batch-size", "4", "--msf-steps", "5", "--ist-steps", "3", "--max-seen", "1"],
                          n_suite_tasks=24)
    few = {s.name: s.rows for s in fewer.stages}
    assert few["prompt tuning references (seen on new data, unseen)"] == (1 + 1) * 10 * 4
    assert few["intrinsic subspace tuning"] == (1 + 1) * 2 * 3 * 3 * 16
    assert rows["subspace finding"] == 2 * 5 * 32
    assert rows["intrinsic subspace tuning"] == 4 * 2 * 3 * 3 * 16  # seen + unseen x dims x (found, linear, random)
    found_only = cost.estimate(["ipt", "--suite", "demo", "--train-tasks", "a,b,c", "--test-tasks", "d", "--dims", "2,8",
                                "--ist-steps", "3", "--subspaces", "found"], n_suite_tasks=24)
    assert {s.name: s.rows for s in found_only.stages}["intrinsic subspace tuning"] == 4 * 2 * 1 * 3 * 16
    stab = cost.estimate(["stability", "--suite", "demo", "--tasks", "a", "--seeds", "3", "--steps", "10"], n_suite_tasks=24)
    assert {s.name: s.rows for s in stab.stages}["prompt tuning of the training tasks"] == 23 * 10 * 16
    assert cost.estimate(["pipeline", "--suite", "demo", "--budget", "quick"], n_suite_tasks=24).rows > 0
    with pytest.raises(ValueError):
        cost.estimate(["tune", "--steps", "many"], n_suite_tasks=24)
    assert "Estimated cost" in cost.summary(e) and cost.fmt_seconds(5400) == "1.5 h"


def _bank(store: Store, task: str, size: int, steps: int, batch: int, seconds: float) -> None:
    store.put("pt_run", {"method": "pt", "task": task, "config": {"steps": steps, "batch_size": batch}},
              {"task": task, "bank_size": size, "bank_seconds": seconds, "device": "cpu"}, command="python -m ipt_core tune")


def machine_rate(stores, kind):
    sp = cost.machine_speed(stores, kind, load=0.0)  # the idle rate and where it comes from
    return sp.rate, sp.source


def test_machine_rate_is_measured_from_the_stores_banks(tmp_path):
    empty = Store(tmp_path / "empty")
    rate, source = machine_rate([empty], "cpu")
    assert rate == cost.DEFAULT_ROWS_PER_S["cpu"] and "default" in source
    main = Store(tmp_path / "main")
    _bank(main, "a", 12, 50, 4, 10.0)   # 2,400 rows in 10 s
    _bank(main, "b", 1, 100, 10, 10.0)  # 1,000 rows in 10 s
    _bank(main, "c", 2, 2, 16, 30.0)    # a smoke run: 64 rows, mostly start-up; not a measure of speed
    rate, source = machine_rate([main, empty], "cpu")
    assert rate == pytest.approx((240 + 100) / 2) and "2 prompt-tuning banks: this store's" in source  # the median
    rate, source = machine_rate([empty, main], "cpu")  # the main store has none: the next one's
    assert rate == pytest.approx(170.0) and "shipped" in source
    assert machine_rate([main], "gpu")[0] == cost.DEFAULT_ROWS_PER_S["gpu"]  # no GPU bank measured


# --------------------------------------------------------------------------------------------------
# job state


def _job(status: str, progress: dict | None = None, started: float | None = 1000.0, ended: float | None = None):
    return jobs.Job(id="j", root=Path("/nowhere"), argv=("stability",), label="x", resource="cpu",
                    created=990.0, status=status, started=started, ended=ended, progress=progress)


PLAN = {"rows": 1000, "seconds": 100.0, "rate": 10.0, "stages": [
    {"name": "prompt tuning of the training tasks", "match": "prompt tuning of", "rows": 600},
    {"name": "subspace finding", "match": "subspace finding", "rows": 100},
    {"name": "PT from random", "match": "stability: pt from random", "rows": 300}]}


def test_job_state_runs_over_all_stages_with_an_eta():
    # half of the first stage: 300 of 1000 rows (an estimate of an earlier version: rows at its rate)
    s = job_state(_job("running", {"stage": "prompt tuning of the training tasks", "step": 5, "total": 10}), PLAN, now=1030.0)
    assert s.stage_fraction == pytest.approx(0.5)
    assert s.eta_s == pytest.approx(700 / (300 / 30))  # as estimated and as shown: 10 rows/s
    assert s.overall == pytest.approx(30 / (30 + 70))  # the time fraction: bar and ETA agree
    assert "30% overall" in s.text and "left" in s.text and s.eta_low < s.eta_s < s.eta_high
    # the last stage, a quarter through: 600 + 100 + 75 rows done, faster than estimated
    s = job_state(_job("running", {"stage": "stability: PT from random initialisation", "step": 1, "total": 4}), PLAN,
                  now=1050.0)
    assert s.eta_s < 22.5 and s.overall == pytest.approx(50 / (50 + s.eta_s))
    # a stage the plan does not name: elapsed time over the estimate, never 100% before done
    s = job_state(_job("running", {"stage": "something else", "step": 1, "total": 2}), PLAN, now=1500.0)
    assert s.overall == 0.99 and s.eta_s == 0.0
    # started, no report yet: says so (not a stale "starting..."), the whole plan still ahead
    s = job_state(_job("running", None), PLAN, now=1002.0)
    assert "starting" in s.text and s.eta_s == pytest.approx(100.0) and s.overall == pytest.approx(2 / 102)
    done = job_state(_job("done", {"stage": "x", "step": 1, "total": 9}, ended=1100.0), PLAN, now=5000.0)
    assert done.overall == 1.0 and done.finished and done.elapsed_s == 100.0 and "running" not in done.text
    queued = job_state(_job("queued", started=None), PLAN)
    assert queued.overall is None and "estimated 2 min" in queued.text
    assert "not running" in worker_text(None) and "pid 7" in worker_text(7)


def test_estimate_is_kept_beside_the_job(store_root):
    at = goto(app(), "prompt_tuning")
    assert any("Estimated cost" in c.value for c in list(at.caption) + list(at.warning))  # shown before the click
    at.multiselect(key="pt-tune-tasks").set_value(["sms_spam"])
    at.number_input(key="pt-tune-steps").set_value(7)
    at.number_input(key="pt-tune-batch").set_value(16)  # the form opens on the machine's budget (quick on a CPU: 8)
    at.run()
    assert any("Estimated cost" in c.value and "112 rows" in c.value for c in at.caption)  # 1 x 7 x 16, follows the input
    button(at, "Queue prompt tuning").click().run()
    [job] = jobs.list_jobs(store_root)
    est = jobs.read_estimate(job)
    assert est["rows"] == 7 * 16 and est["stages"][0]["match"] == "prompt tuning"


# --------------------------------------------------------------------------------------------------
# the Recovery page


def test_recovery_page_opens_on_the_sweep_with_most_dimensions(seeded_dir, app_env):
    app_env(seeded_dir)
    one = Store(seeded_dir).query("ipt_dims")[0]
    time.sleep(0.01)
    Store(seeded_dir).put("ipt_dims", {"method": "ipt_dims", "suite": "demo", "newer": 1},
                          dict(one.meta, dims=[16], rows=[r for r in one.meta["rows"] if r["d"] == 16]),
                          command="python -m ipt_core ipt --suite demo --dims 16")
    at = goto(app(), "recovery")
    sel = at.selectbox(key="rec-entry")
    assert sel.index == 0 and sel.options[0].startswith("d_I 4/16/64 · 18 seen / 6 unseen · shallow")
    assert sel.options[1].startswith("d_I 16 ·")
    assert any(d.value.shape[0] > 0 for d in at.dataframe)  # the plotted numbers beside the chart
    entries = Store(seeded_dir).query("ipt_dims")
    assert max(entries, key=sweep_rank).meta["dims"] == [4, 16, 64]
    assert sweep_label(max(entries, key=sweep_rank)) == "d_I 4/16/64 · 18 seen / 6 unseen · shallow · 2 seeds"


@pytest.fixture
def seeded_dir(tmp_path):
    seed_results(tmp_path)
    return tmp_path


def test_ist_form_without_a_subspace_offers_the_click_that_finds_one(store_root):
    at = goto(app(), "recovery")
    assert any("No subspace for suite `demo`" in w.value for w in at.warning)
    assert not [b for b in at.button if b.label == "Queue intrinsic tuning"]  # refused before queueing
    button(at, "Find a d_I = 8 subspace first").click().run()
    assert not at.exception and not at.error
    [job] = jobs.list_jobs(store_root)
    assert job.argv[0] == "ipt" and job.argv[job.argv.index("--dims") + 1] == "8"


@pytest.mark.slow  # a job subprocess loads the real model
def test_ist_form_tunes_in_the_shipped_subspace_and_the_result_shows(shipped_root):
    """On a fresh store, the form's defaults use the shipped demo subspace; the job finishes and the
    Recovery page shows its run (2 steps: the only training here)."""
    at = goto(app(), "recovery")
    space = at.selectbox(key="rec-ist-space")
    label = space.options[space.index]
    [tmap] = shipped_store().query("task_map")  # the shipped subspace is the task map's
    assert label.startswith(f"d_I {tmap.meta['d']} · deep prompts") and "shipped" in label
    at.number_input(key="rec-ist-steps").set_value(2)
    button(at, "Queue intrinsic tuning").click().run()
    assert not at.exception and not at.error
    [job] = jobs.list_jobs(shipped_root)
    assert job.argv[0] == "ist" and "--decoder" in job.argv
    done = jobs.run_job_inline(shipped_root, job.id)
    assert done.status == "done", jobs.log_tail(done, 30)
    at = goto(app(), "recovery")
    assert "Intrinsic tuning runs" in [s.value for s in at.subheader]
    task = job.argv[job.argv.index("--tasks") + 1]
    assert any(task in set(d.value.get("task", [])) for d in at.dataframe)
    assert json.loads(json.dumps(done.result))["runs"][0]["task"] == task
    at = goto(at, "jobs")  # the finished job points to the page with its result
    links = [p for p in at.get("page_link") if "Recovery" in str(p.proto)]
    assert links or any("result is on the **Recovery** page" in c.value for c in at.caption)


def test_a_cancelled_job_leaves_no_empty_checkpoint_folder(store_root):
    from ipt_app.job_panel import prune_empty_checkpoints

    job = jobs.submit(store_root, ["tasks", "--suite", "demo"], label="listing")
    empty, kept = store_root / "checkpoints" / "a", store_root / "checkpoints" / "b"
    empty.mkdir(parents=True)
    kept.mkdir()
    (kept / "step-10.json").write_text("{}")
    jobs.cancel(store_root, job.id)
    goto(app(), "jobs")  # a page drawn while no job runs tidies up after the cancelled one
    assert not empty.exists() and kept.exists()
    assert prune_empty_checkpoints(store_root) == 0


def test_the_chosen_suite_is_kept_in_the_url(store_root):
    from streamlit.testing.v1 import AppTest
    from test_app import APP

    seed_results(store_root, with_pt=False, suite="gpu-server-suite")
    choice = "gpu-server-suite (results only)"
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["suite"] = choice  # a reload: a new session with the URL of the last one
    at.run()
    assert not at.exception
    assert at.selectbox(key="ctx_suite_choice").value == choice
    # the choice goes into the URL (AppTest reruns a page without the entry script: a new session each time)
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = choice
    at.run()
    assert at.query_params.get("suite") == choice
    at = AppTest.from_file(APP, default_timeout=90)
    at.query_params["suite"] = "no such suite"
    at.run()
    assert at.selectbox(key="ctx_suite_choice").value == "demo" and "suite" not in at.query_params


# --------------------------------------------------------------------------------------------------
# first paint: nothing heavy is imported by the landing page


def test_the_overview_and_its_estimate_import_no_torch(tmp_path):
    """The Overview (sidebar, headline table, pipeline estimate) loads neither torch, transformers,
    scikit-learn nor umap: importing them costs seconds of the first paint (bench/SPEED.md). A fresh
    interpreter, since this test process has them loaded already."""
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parent.parent
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(repo / 'app.py')!r}, default_timeout=90)\n"
        "at.run()\n"
        "assert not at.exception, at.exception\n"
        "assert any('Estimated cost' in c.value for c in at.caption), [c.value for c in at.caption]\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'umap', 'scipy') if m in sys.modules))\n"
    )
    # IPT_WARMUP=0: the background import that follows the first page (ipt_app.warmup) would load them
    env = dict(os.environ, IPT_CACHE=str(tmp_path), IPT_JOBS_AUTOSTART="0", PYTHONPATH=str(repo), IPT_WARMUP="0")
    env.pop("IPT_SHIPPED_RESULTS", None)  # the shipped results: the headline table is drawn
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_the_warm_up_imports_the_heavy_libraries_once_in_the_background(monkeypatch):
    from ipt_app import warmup

    monkeypatch.setattr(warmup, "_started", __import__("threading").Event())
    monkeypatch.setenv("IPT_WARMUP", "0")
    assert warmup.start() is None  # off
    monkeypatch.setenv("IPT_WARMUP", "1")
    t = warmup.start(delay=0.0)
    assert t is not None and t.daemon
    t.join(timeout=120)
    import sys

    assert all(m in sys.modules for m in ("torch", "sklearn.decomposition"))
    assert warmup.start() is None  # once per process
