"""Estimates a person can trust (issue 31): the machine's rate from several banks (median, CPU time
where recorded), the load, the measured overhead, a range; and an ETA that agrees with itself
between polls. Behaviour only: timings belong to ``bench/estimates.py``."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ipt_app import cost
from ipt_app.job_state import job_state
from ipt_core import jobs
from ipt_core.store import Store

REPO = Path(__file__).resolve().parent.parent
TUNE_FORM = ["tune", "--suite", "demo", "--budget", "quick"]  # the prompt-tuning form's default command


def bank(store: Store, name: str, rows_per_s: float, *, size: int = 10, steps: int = 60, batch: int = 8,
         cpu_per_wall: float | None = None, threads: int | None = None) -> None:
    """A finished PT bank of ``size`` runs that trained at ``rows_per_s`` (wall); with ``cpu_per_wall``,
    its CPU time (all threads) and torch's thread count are recorded too."""
    wall = size * steps * batch / rows_per_s
    meta = {"task": name, "bank_size": size, "bank_seconds": wall, "device": "cpu"}
    if cpu_per_wall is not None:
        meta |= {"bank_cpu_seconds": wall * cpu_per_wall, "torch_threads": threads}
    store.put("pt_run", {"method": "pt", "task": name, "config": {"steps": steps, "batch_size": batch}}, meta,
              command="python -m ipt_core tune")


def speed(stores, load=0.0, cores=2):
    return cost.machine_speed(stores, "cpu", load=load, cores=cores)


# --------------------------------------------------------------------------------------------------
# the machine's rate


def test_the_rate_is_the_median_of_the_banks_and_ignores_one_outlier(tmp_path):
    main = Store(tmp_path / "main")
    for i, r in enumerate([48.0, 50.0, 52.0, 51.0, 49.0]):
        bank(main, f"t{i}", r)
    calm = speed([main])
    bank(main, "slow", 3.0)  # one bank run while the machine was busy
    sp = speed([main])
    assert calm.rate == pytest.approx(50.0) and sp.rate == pytest.approx(49.5)  # a neighbour's rate, not 3 rows/s
    assert sp.rate_slow <= sp.rate <= sp.rate_fast and sp.rate_slow > 3.0 * 10
    bank(main, "tiny", 1.0, size=1, steps=2)  # a smoke bank of 16 rows: start-up, not speed
    assert speed([main]).banks == 6


def test_one_slow_run_does_not_make_the_estimates_jump(tmp_path):
    """The issue's case: the first prompt-tuning run on this machine, made under load (3 rows/s), moved
    every estimate from 7 min to 2 h. Fewer than MIN_OWN_BANKS of this store's banks are pooled with
    the shipped ones, and the median of the pool moves by one bank at most."""
    main, shipped = Store(tmp_path / "main"), Store(tmp_path / "shipped")
    for i, r in enumerate([34.0, 52.0, 72.0, 80.0]):
        bank(shipped, f"t{i}", r)
    before = cost.estimate(TUNE_FORM, n_suite_tasks=24, rate=speed([main, shipped]))
    bank(main, "mine", 3.0)
    after = cost.estimate(TUNE_FORM, n_suite_tasks=24, rate=speed([main, shipped]))
    assert after.speed.banks == 5 and "1 of this store's and 4 of the shipped" in after.rate_source
    assert after.seconds < before.seconds * 1.6  # 52 rows/s (was 62): not 20x
    # from MIN_OWN_BANKS of this store's banks on, they alone count
    for i in range(cost.MIN_OWN_BANKS - 1):
        bank(main, f"mine{i}", 3.1 + i / 10)  # (a bank's entries share its timing: these are other banks)
    assert speed([main, shipped]).rate == pytest.approx(3.1) and "this store's latest" in speed([main, shipped]).source


def test_cpu_time_gives_the_idle_rate_of_a_bank_run_under_load(tmp_path):
    """Two banks of the same work: one on an idle machine (2 threads busy all along), one under load
    (its threads ran a third of the time, so it took 3x as long). By CPU time they are the same speed."""
    main = Store(tmp_path / "main")
    bank(main, "idle", 60.0, cpu_per_wall=1.9, threads=2)
    bank(main, "loaded", 20.0, cpu_per_wall=1.9 / 3, threads=2)
    bank(main, "idle2", 60.0, size=12, cpu_per_wall=1.9, threads=2)
    sp = speed([main])
    idle = 60.0 * 2 / 1.9  # the CPU time spread over both cores: what the idle bank's 1.9 cores did, at 2
    assert sp.rate == pytest.approx(idle) and sp.rate_slow == pytest.approx(idle / (1 + cost.MIN_SPREAD))
    assert "3 timed by CPU time" in sp.source
    # beside banks with CPU time, one timed by wall alone (under some unknown load) does not count
    bank(main, "old", 5.0, size=14)
    assert speed([main]).rate == pytest.approx(idle)
    # without CPU time the loaded bank counts at its wall rate
    wall = Store(tmp_path / "wall")
    for name, r, size in [("idle", 60.0, 10), ("loaded", 20.0, 10), ("idle2", 60.0, 12)]:
        bank(wall, name, r, size=size)
    assert speed([wall]).rate == pytest.approx(60.0) and speed([wall]).rate_slow <= 40.0
    # a machine with fewer cores than the banks' threads gets their rate per core it has
    assert speed([main], cores=1).rate == pytest.approx(idle / 2)


def test_the_load_is_the_runnable_threads_now_not_the_minute_average(monkeypatch):
    """A job that ended a minute ago still sits in the 1-min load average: the estimate reads the
    run queue now (``/proc/loadavg``'s running count, less the reader itself)."""
    import builtins
    import io

    real_open = builtins.open
    reads = iter(["3.10 2.00 1.00 3/120 999\n", "3.10 2.00 1.00 1/120 999\n"] * 5)
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: io.StringIO(next(reads)) if f == "/proc/loadavg"
                        else real_open(f, *a, **k))
    monkeypatch.setattr(cost, "_LOAD_CACHE", [])
    assert cost.current_load(samples=4, gap_s=0) == pytest.approx(1.0)  # (2 + 0 + 2 + 0) / 4, not 3.1


def test_the_load_slows_the_estimate_as_a_fair_share_of_the_cores():
    assert cost.cores_for(2, 2, 0.0) == 2.0 and cost.cores_for(2, 2, 10.0) == pytest.approx(1 / 3)
    assert cost.slowdown(2, 2, 0.0) == 1.0 and cost.slowdown(2, 2, 10.0) == pytest.approx(6.0)
    assert cost.slowdown(1, 2, 1.0) == 1.0  # one thread beside one busy one on two cores: no slower
    assert cost.slowdown(2, 8, 4.0) == 1.0  # room to spare


@pytest.mark.parametrize("argv", [
    TUNE_FORM, ["tune", "--suite", "demo", "--tasks", "sms_spam,email_spam", "--steps", "20"], ["probe", "--suite", "demo"],
    ["ist", "--suite", "demo", "--tasks", "a,b", "--d", "8"],
    ["ipt", "--suite", "demo", "--train-tasks", "a,b,c", "--test-tasks", "d", "--dims", "2,8", "--budget", "quick"],
    ["stability", "--suite", "demo", "--tasks", "a", "--budget", "quick"],
    ["compare", "--suite", "demo", "--tasks", "a,b", "--budget", "quick"],
    ["pipeline", "--suite", "demo", "--budget", "quick"]])
@pytest.mark.parametrize("load", [0.0, 1.0, 10.0])
def test_the_range_holds_the_point_and_the_json_keeps_its_old_fields(tmp_path, argv, load):
    shipped = Store(tmp_path / "shipped")
    for i, r in enumerate([34.0, 52.0, 72.0]):
        bank(shipped, f"t{i}", r)
    e = cost.estimate(argv, n_suite_tasks=24, rate=speed([Store(tmp_path / "main"), shipped], load=load))
    assert 0 < e.seconds_low <= e.seconds <= e.seconds_high
    assert e.overhead_s >= cost.DEFAULT_STARTUP_S  # the model's loading is in every estimate
    if load >= 10:
        assert e.seconds_high > 4 * e.seconds_low  # the load-10 job: 272 s for "about 15 s"
    j = e.to_json()
    assert {"rows", "seconds", "rate", "rate_source", "stages"} <= set(j)  # what earlier readers read
    assert j["seconds_low"] <= j["seconds"] <= j["seconds_high"] and j["overhead_s"] == pytest.approx(e.overhead_s)
    assert all({"name", "match", "rows", "detail"} <= set(s) for s in j["stages"])
    assert json.loads(json.dumps(j)) == j
    text = cost.summary(e)
    assert "Estimated cost" in text and re.search(r"about \*\*[\d.]+ (s|min|h)(–[\d.]+ (s|min|h))?\*\*|about \*\*[\d.]+(–[\d.]+)? (s|min|h)\*\*", text)


def test_fmt_range():
    assert cost.fmt_range(240, 420) == "4–7 min" and cost.fmt_range(40, 180) == "40 s–3 min"
    assert cost.fmt_range(100, 110) == "2 min" and cost.fmt_range(None, 5) == "5 s"


# --------------------------------------------------------------------------------------------------
# the overhead: measured from this store's finished jobs


def _finished_job(root: Path, i: int, startup: float, tail: float, argv=("tune", "--suite", "demo")) -> None:
    job = jobs.submit(root, list(argv), label=f"j{i}")
    t0 = 1_000_000.0 + 1000 * i
    jobs.set_status(job.dir, status="done", started=t0, first_progress=t0 + startup, ended=t0 + startup + 30 + tail)
    (job.dir / "progress.json").write_text(json.dumps({"stage": "prompt tuning", "step": 5, "total": 5,
                                                       "time": t0 + startup + 30}))


def test_the_overhead_comes_from_this_stores_finished_jobs(tmp_path, monkeypatch):
    monkeypatch.setattr(cost, "_OVERHEAD_CACHE", {})
    assert cost.job_overhead(tmp_path)[:2] == (cost.DEFAULT_STARTUP_S, cost.DEFAULT_TAIL_S)
    _finished_job(tmp_path, 0, 20.0, 4.0)
    _finished_job(tmp_path, 1, 22.0, 6.0)
    _finished_job(tmp_path, 2, 900.0, 5.0, argv=("tasks", "--suite", "demo"))  # not a training command
    monkeypatch.setattr(cost, "_OVERHEAD_CACHE", {})
    assert cost.job_overhead(tmp_path)[:2] == (cost.DEFAULT_STARTUP_S, cost.DEFAULT_TAIL_S)  # 2 < MIN_JOBS
    _finished_job(tmp_path, 3, 200.0, 5.0)  # one under heavy load: the median ignores it
    monkeypatch.setattr(cost, "_OVERHEAD_CACHE", {})
    startup, tail, source = cost.job_overhead(tmp_path)
    assert (startup, tail) == (22.0, 5.0) and "3 finished jobs" in source
    sp = cost.machine_speed([Store(tmp_path)], "cpu", load=0.0, cores=2)
    assert sp.startup_s == 22.0 and cost.estimate(TUNE_FORM, n_suite_tasks=24, rate=sp).overhead_s == pytest.approx(27.0)


def test_the_worker_records_the_first_progress_report(tmp_path):
    from ipt_core.jobs.worker import Worker

    job = jobs.submit(tmp_path, ["tasks", "--suite", "demo"])
    w = Worker(tmp_path)
    w.running[job.id] = [None, job, None, None]
    w._note_progress()
    assert jobs.get_job(tmp_path, job.id).first_progress is None  # no report yet
    (job.dir / "progress.json").write_text(json.dumps({"stage": "x", "step": 1, "total": 9, "time": 1234.5}))
    w._note_progress()
    (job.dir / "progress.json").write_text(json.dumps({"stage": "x", "step": 2, "total": 9, "time": 2000.0}))
    w._note_progress()  # the first one stays
    assert jobs.get_job(tmp_path, job.id).first_progress == 1234.5


# --------------------------------------------------------------------------------------------------
# the ETA: one state for bar, text and ETA, continuous between polls


EST = {"rows": 1500, "seconds": 165.0, "seconds_low": 140.0, "seconds_high": 200.0, "overhead_s": 15.0,
       "startup_s": 10.0, "tail_s": 5.0, "rate": 10.0, "rate_source": "test",
       "stages": [{"name": "prompt tuning of the training tasks", "match": "prompt tuning of", "rows": 600, "seconds": 60.0},
                  {"name": "subspace finding", "match": "subspace finding", "rows": 300, "seconds": 30.0},
                  {"name": "intrinsic subspace tuning", "match": "intrinsic", "rows": 600, "seconds": 60.0}]}
T0 = 1000.0


def _records(t: float):
    """The job's records ``t`` s after it started: loading the model takes 25 s (estimated: 10), the first
    stage runs as estimated (60 s), the second is in the store (skipped at once, never reported), the
    third runs 3x slower than estimated (180 s), then 5 s to write the results."""
    def prog(stage, step, total, at):
        return {"stage": stage, "step": step, "total": total, "message": "", "time": T0 + at}
    if t < 25:
        return "running", None, None
    if t < 85:
        step = int((t - 25) / 60 * 20)
        return "running", prog("prompt tuning of 18 training tasks (seed 0)", step, 20, 25 + 3 * step), None
    if t < 265:
        step = int((t - 85) / 180 * 40)
        return "running", prog("intrinsic subspace tuning (12 runs)", step, 40, 85 + 4.5 * step), None
    return ("running" if t < 270 else "done"), prog("intrinsic subspace tuning (12 runs)", 40, 40, 265), \
        (T0 + 270 if t >= 270 else None)


def test_the_eta_stays_within_the_range_it_gave_over_a_simulated_job():
    prev, seen = None, []
    for k in range(0, 140):
        t = 2.0 * k  # a poll every 2 s
        status, progress, ended = _records(t)
        job = jobs.Job(id="j", root=Path("/nowhere"), argv=("ipt",), label="x", resource="cpu", created=T0,
                       status=status, started=T0, ended=ended, progress=progress,
                       first_progress=T0 + 25 if t >= 25 else None)
        s = job_state(job, EST, now=T0 + t, previous=prev)
        if status == "running":
            assert s.eta_low <= s.eta_s <= s.eta_high
            if prev is not None:
                assert max(0.0, prev.eta_low - 2) - 1e-9 <= s.eta_s <= max(0.0, prev.eta_high - 2) + 1e-9, (t, prev.text, s.text)
                assert s.overall >= prev.overall  # the bar never goes back
            # bar and text from the one state: never a full bar while the text says less
            assert s.overall < 1.0 and f"{s.overall:.0%} overall" in s.text and "100% overall" not in s.text
            assert f"about {cost.fmt_range(s.eta_low, s.eta_high)} left" in s.text
        else:
            assert s.overall == 1.0 and s.eta_s == 0.0 and s.finished
        seen.append((t, s))
        prev = s
    eta = dict((t, s) for t, s in seen)
    assert 140 <= eta[0].eta_s <= 200 and "starting" in eta[0].text  # the estimate, model loading included
    assert eta[24].eta_s <= eta[0].eta_s  # a slow start with no progress does not raise it
    assert eta[100].eta_s < eta[80].eta_s  # the skipped stage is counted done (over a few polls, not at once)
    assert eta[100].skipped == pytest.approx(30.0, abs=3.0)  # and is not taken for speed
    assert eta[150].eta_s > eta[110].eta_s  # the slow stage raises it
    for t in range(150, 270, 2):  # once the slow stage has shown its speed, the range holds the truth (give or take
        assert eta[t].eta_low - 5 <= 270 - t <= eta[t].eta_high + 5, (t, eta[t].text)  # a step of 4.5 s)


def test_job_state_reads_an_estimate_of_an_earlier_version():
    old = {"rows": 1000, "seconds": 100.0, "rate": 10.0, "rate_source": "x",
           "stages": [{"name": "prompt tuning", "match": "prompt tuning", "rows": 1000, "detail": ""}]}
    job = jobs.Job(id="j", root=Path("/nowhere"), argv=("tune",), label="x", resource="cpu", created=T0,
                   status="running", started=T0, progress={"stage": "prompt tuning", "step": 5, "total": 10, "time": T0 + 50})
    s = job_state(job, old, now=T0 + 50)
    assert s.eta_s == pytest.approx(50.0) and s.overall == pytest.approx(0.5)
    assert s.eta_low < s.eta_s < s.eta_high


# --------------------------------------------------------------------------------------------------
# torch-free


def test_estimates_and_job_state_import_no_torch(tmp_path):
    """The forms' estimate runs on the first page: it must not load torch (nor transformers, scikit-learn, scipy)."""
    code = (
        "import sys\n"
        "from ipt_app import cost, job_state\n"
        "from ipt_core import store\n"
        "from ipt_core.paths import SHIPPED_RESULTS\n"
        f"sp = cost.machine_speed([store.Store({str(tmp_path)!r}), store.Store(SHIPPED_RESULTS)], 'cpu')\n"
        "for argv in (['tune', '--suite', 'demo'], ['ipt', '--suite', 'demo'], ['compare', '--suite', 'demo', '--tasks', 'a,b']):\n"
        "    e = cost.estimate(argv, n_suite_tasks=24, rate=sp)\n"
        "    assert e.seconds_low <= e.seconds <= e.seconds_high, argv\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sklearn', 'scipy') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
