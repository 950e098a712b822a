"""The file-based job queue: real subprocesses running tiny CLI commands (`tasks`, a 2-step `tune`)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipt_core import jobs
from ipt_core.store import Store

REPO = Path(__file__).resolve().parent.parent
TINY_TUNE = ["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "2", "--eval-every", "1",
             "--prompt-kind", "shallow", "--no-baselines"]


def wait_for(pred, timeout: float, what: str, interval: float = 0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def spawned():
    """Worker processes started by a test; stopped (SIGTERM, then SIGKILL) at teardown."""
    procs: list[subprocess.Popen] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def start_worker(root: Path, procs: list, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.Popen([sys.executable, "-m", "ipt_core.jobs", "worker", "--cache", str(root), "--poll", "0.1", *extra],
                         env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(p)
    return p


# --------------------------------------------------------------------------------------------------
# submit / list / get


def test_submit_validates_and_completes_argv(tmp_path):
    job = jobs.submit(tmp_path, ["tune", "--suite", "demo"], label="x")
    assert job.status == "queued" and job.label == "x" and job.resource == "cpu"
    assert job.argv == ("tune", "--suite", "demo", "--json", "--cache", str(tmp_path.resolve()))
    assert job.command.startswith("python -m ipt_core tune --suite demo --json --cache ")
    # the CLI's `tasks` takes no --cache; --json is not doubled
    assert jobs.submit(tmp_path, ["tasks", "--json"]).argv == ("tasks", "--json")
    with pytest.raises(ValueError, match="job command .train. is not one of"):
        jobs.submit(tmp_path, ["train"])
    with pytest.raises(ValueError, match="empty command"):
        jobs.submit(tmp_path, [])
    with pytest.raises(ValueError, match="--cache"):
        jobs.submit(tmp_path, ["tune", "--cache", "/elsewhere"])
    with pytest.raises(ValueError, match="resource"):
        jobs.submit(tmp_path, ["tasks"], resource="tpu")
    for sub in ("tasks", "tune", "probe", "export", "ipt", "stability", "pipeline", "compare"):
        assert sub in jobs.JOB_COMMANDS
    # nothing half-made is visible: only finished job folders, newest first
    listed = jobs.list_jobs(tmp_path)
    assert [j.argv[0] for j in listed] == ["tasks", "tune"]
    assert not [p for p in (tmp_path / "jobs").iterdir() if p.name.startswith(".new-")]


def test_get_job_and_bad_ids(tmp_path):
    job = jobs.submit(tmp_path, ["tasks"])
    assert jobs.get_job(tmp_path, job.id) == job
    with pytest.raises(KeyError):
        jobs.get_job(tmp_path, "../../etc")
    with pytest.raises(KeyError):
        jobs.get_job(tmp_path, "20990101-000000-000000-deadbeef")
    assert jobs.list_jobs(tmp_path / "nowhere") == []


def test_log_tail_collapses_redraws(tmp_path):
    job = jobs.submit(tmp_path, ["tasks"])
    (job.dir / "log.txt").write_text("a\nb\n10%\r50%\r100%\nlast\n\n")
    assert jobs.log_tail(job, 2) == "100%\nlast"
    assert jobs.log_tail(job, 10).splitlines()[0] == "a"
    assert jobs.log_tail(jobs.submit(tmp_path, ["tasks"]), 5) == ""


# --------------------------------------------------------------------------------------------------
# running


def test_tasks_job_runs_inline_to_done(tmp_path):
    job = jobs.submit(tmp_path, ["tasks", "--suite", "demo"], label="list demo")
    done = jobs.run_job_inline(tmp_path, job.id)
    assert done.status == "done" and done.returncode == 0
    assert done.started <= done.ended
    assert len(done.result["tasks"]) >= 2 and {"name", "type", "labels", "sizes"} <= set(done.result["tasks"][0])
    assert json.loads((job.dir / "result.json").read_text()) == done.result
    assert "started by worker" in jobs.log_tail(done, 100)
    with pytest.raises(ValueError, match="not queued"):
        jobs.run_job_inline(tmp_path, job.id)
    assert jobs.delete_job(tmp_path, job.id) and jobs.list_jobs(tmp_path) == []


def test_failed_job_is_recorded(tmp_path):
    job = jobs.submit(tmp_path, ["tasks", "--suite", str(tmp_path / "no_such_suite")])
    done = jobs.run_job_inline(tmp_path, job.id)
    assert done.status == "failed" and done.returncode == 2 and done.result is None
    assert "no such file or folder" in jobs.log_tail(done, 5)


@pytest.mark.slow  # a detached worker process trains a tune job
def test_tune_job_via_detached_worker(tmp_path):
    job = jobs.submit(tmp_path, TINY_TUNE, label="tiny PT")
    pid = jobs.ensure_worker(tmp_path, idle_exit=1)
    try:
        assert jobs.ensure_worker(tmp_path, idle_exit=1) == pid  # the live worker is reused
        done = wait_for(lambda: (j := jobs.get_job(tmp_path, job.id)).finished and j, 180, "the tune job")
        assert done.status == "done", jobs.log_tail(done, 30)
        assert done.result["runs"][0]["task"] == "sms_spam"
        assert done.progress["total"] == 2 and done.progress["step"] == 2
        runs = Store(tmp_path).query("pt_run")
        assert [e.key for e in runs] == [done.result["runs"][0]["key"]]
        wait_for(lambda: jobs.worker_pid(tmp_path) is None, 30, "the idle worker to exit")
    finally:
        if jobs.worker_pid(tmp_path):
            os.killpg(pid, signal.SIGTERM)


@pytest.mark.slow  # a worker process loads the real model and trains until cancelled
def test_cancel_running_tune_writes_nothing(tmp_path, spawned):
    job = jobs.submit(tmp_path, ["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "100000",
                                 "--eval-every", "1000", "--prompt-kind", "shallow"])
    start_worker(tmp_path, spawned, "--idle-exit", "30")
    wait_for(lambda: ((jobs.get_job(tmp_path, job.id).progress or {}).get("step") or 0) >= 1, 120,
             "training to start")
    assert jobs.cancel(tmp_path, job.id).status == "running"  # asked; the worker records the outcome
    done = wait_for(lambda: (j := jobs.get_job(tmp_path, job.id)).finished and j, 60, "the cancel")
    assert done.status == "cancelled" and done.returncode == 130
    assert "cancelled" in jobs.log_tail(done, 5)
    assert Store(tmp_path).query() == []
    assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("entry.json"))


def test_cancel_queued_job(tmp_path):
    job = jobs.submit(tmp_path, ["tasks"])
    assert jobs.cancel(tmp_path, job.id).status == "cancelled"
    with pytest.raises(ValueError, match="not queued"):
        jobs.run_job_inline(tmp_path, job.id)
    assert jobs.cancel(tmp_path, job.id).status == "cancelled"  # idempotent


def test_many_submitters_two_workers_each_job_runs_once(tmp_path, spawned):
    code = ("import sys; from ipt_core import jobs; "
            "[jobs.submit(sys.argv[1], ['tasks', '--suite', 'demo'], label=f'p{sys.argv[2]}-{i}', "
            "resource='gpu' if i == 0 else 'cpu') for i in range(2)]")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    submitters = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path), str(k)], env=env) for k in range(3)]
    start_worker(tmp_path, spawned, "--idle-exit", "30", "--cpu-slots", "2")
    start_worker(tmp_path, spawned, "--idle-exit", "30", "--cpu-slots", "2")
    assert all(p.wait(timeout=60) == 0 for p in submitters)
    all_jobs = wait_for(lambda: (js := jobs.list_jobs(tmp_path)) and len(js) == 6 and all(j.finished for j in js) and js,
                        240, "all six jobs")
    assert sorted(j.label for j in all_jobs) == sorted(f"p{k}-{i}" for k in range(3) for i in range(2))
    for j in all_jobs:
        assert j.status == "done", jobs.log_tail(j, 20)
        log = (j.dir / "log.txt").read_text()
        assert log.count("started by worker") == 1, log  # claimed once, run once
        assert j.result and "tasks" in j.result
    gpu = sorted((j.started, j.ended) for j in all_jobs if j.resource == "gpu")
    assert len(gpu) == 3
    for (s1, e1), (s2, e2) in zip(gpu, gpu[1:]):
        assert e1 <= s2, "two gpu jobs ran at the same time"


def test_orphaned_running_job_is_failed(tmp_path):
    job = jobs.submit(tmp_path, ["tasks"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    jobs.set_status(job.dir, status="running", worker=dead.pid, pid=dead.pid, started=time.time())
    jobs.Worker(tmp_path)._recover_orphans()
    j = jobs.get_job(tmp_path, job.id)
    assert j.status == "failed" and "worker" in j.error


def test_worker_exits_when_idle(tmp_path, spawned):
    p = start_worker(tmp_path, spawned, "--idle-exit", "0.5")
    assert p.wait(timeout=30) == 0
    assert not (tmp_path / "jobs" / "worker.pid").exists()


def test_a_cancel_under_way_shows_at_once(tmp_path):
    """After Cancel the job runs until its next step: its state says "cancelling…" from the click on."""
    from ipt_app.job_state import job_state

    job = jobs.submit(tmp_path, ["tasks", "--suite", "demo"])
    jobs.set_status(job.dir, status="running", started=time.time())
    assert not jobs.get_job(tmp_path, job.id).cancel_requested
    jobs.cancel(tmp_path, job.id)  # no process runs it here: only the marker is left
    job = jobs.get_job(tmp_path, job.id)
    assert job.status == "running" and job.cancel_requested
    assert job_state(job).text.startswith("cancelling…")
    jobs.set_status(job.dir, status="cancelled", ended=time.time())
    assert not jobs.get_job(tmp_path, job.id).cancel_requested
