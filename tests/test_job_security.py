"""No job record runs code: the worker runs only the project's CLI commands, checked by the CLI's own parser.

A store folder is not trusted (issue 32). A planted ``jobs/<id>/request.json`` of the old shape
(``"module": "timeit"``, argv ``-s <Python>``) made the worker run any Python. These tests plant
such records, and records of the current shape with hostile arguments, run the real worker over
them, and check that no marker file appears, nothing but ``python -m ipt_core <command>`` is started,
and every refused job is failed with a one-line reason. The fuzz at the end draws job records at
random (``IPT_JOB_FUZZ_EXAMPLES``, default 1000) and runs each through the worker's claim-and-start.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from ipt_core import jobs
from ipt_core.cli import main as cli
from ipt_core.jobs import request as jreq
from ipt_core.jobs.worker import Worker

FUZZ_SEED = int(os.environ.get("IPT_FUZZ_SEED", "0"))  # one per run, printed by conftest.py

JOB_ID = "20260101-000000-000000-0a1b2c3d"


def plant(root: Path, request: object, *, status: object = None, raw: bytes | None = None, job_id: str = JOB_ID) -> Path:
    """Write a job folder by hand, as an attacker with write access to a store folder would."""
    d = root / "jobs" / job_id
    d.mkdir(parents=True, exist_ok=True)
    (d / "request.json").write_bytes(raw if raw is not None else json.dumps(request).encode())
    (d / "status.json").write_text(json.dumps({"status": "queued"} if status is None else status))
    return d


def marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').write('pwned')"


def run_worker(root: Path, seconds: float = 1.5) -> None:
    """The real worker loop, in this process, until it has been idle for ``seconds``."""
    Worker(root, idle_exit=seconds, poll=0.05).run()


def v2(command: str, args: list[str], **over) -> dict:
    rec = {"format": 2, "command": command, "args": args, "label": "x", "resource": "cpu", "created": time.time()}
    rec.update(over)
    return rec


# --------------------------------------------------------------------------------------------------
# the audit's chain, and its neighbours


def test_planted_old_format_job_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    d = plant(tmp_path, {"argv": ["-s", marker_code(marker), "pass"], "module": "timeit", "label": "x",
                         "resource": "cpu", "created": 1.0})
    run_worker(tmp_path)
    assert not marker.exists()
    st = json.loads((d / "status.json").read_text())
    assert st["status"] == "failed" and st["error"].startswith("refused: ") and "\n" not in st["error"]
    assert "unknown fields ['argv', 'module']" in st["error"]
    job = jobs.get_job(tmp_path, JOB_ID)
    assert job.status == "failed" and job.argv == () and job.command == ""
    assert "not run by worker" in (d / "log.txt").read_text()


@pytest.mark.parametrize("command, args, reason", [
    ("timeit", ["-s", "MARK"], "is not one of the project's commands"),
    ("tune", ["--help"], "refused"),
    ("tasks", ["--suite", "/etc"], "outside the allowed folders"),
    ("tune", ["--suite", "demo", "--cache", "/tmp/elsewhere"], "may not name --cache"),
    ("tune", ["--suite", "demo", "--cache=/tmp/elsewhere"], "may not name --cache"),
    ("tune", ["--suite", "demo", "--lr", "nan"], "--lr"),
    ("tune", ["--suite", "demo", "--bogus-flag"], "unrecognized arguments"),
    ("export", ["--suite", "demo", "--task", "sms_spam", "--out", "/etc/ipt-out"], "outside the allowed folders"),
    ("umap", ["--entry", "k", "--extra-store", "/etc"], "outside the allowed folders"),
    ("tune", ["--backbone", "causal:/etc", "--suite", "demo"], "outside the allowed folders"),
    ("tune", ["--suite", "hf:/etc"], "outside the allowed folders"),
    ("tune", ["-m", "timeit"], "refused"),
])
def test_planted_current_format_job_with_hostile_arguments_is_refused(tmp_path, monkeypatch, command, args, reason):
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(tmp_path))
    marker = tmp_path / "marker"
    args = [a.replace("MARK", marker_code(marker)) for a in args]
    d = plant(tmp_path, v2(command, args))
    started: list[list[str]] = []

    def fake_popen(argv, **kw):
        started.append(argv)
        raise OSError("not started in this test")

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    run_worker(tmp_path, 0.5)
    assert started == [] and not marker.exists()
    st = json.loads((d / "status.json").read_text())
    assert st["status"] == "failed" and reason in st["error"], st


@pytest.mark.parametrize("record", [
    v2("tasks", ["--suite", "demo"], format=1),
    v2("tasks", ["--suite", "demo"], module="timeit"),
    v2("tasks", ["--suite", "demo"], env={"PYTHONSTARTUP": "x"}),
    v2("tasks", "--suite demo"),
    v2("tasks", [["--suite"], "demo"]),
    v2("tasks", ["--suite", "de\x00mo"]),
    v2("tasks", ["--suite", "demo"], resource="tpu"),
    v2("tasks", ["--suite", "demo"], created=float("nan")),
    v2("tasks", ["--suite", "demo"], label={"a": 1}),
    v2(["tasks"], ["--suite", "demo"]),
    [], "tune", 3, None,
])
def test_records_of_another_shape_are_failed_with_a_reason(tmp_path, monkeypatch, record):
    d = plant(tmp_path, None, raw=json.dumps(record, allow_nan=True).encode())
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a refused job was started"))
    run_worker(tmp_path, 0.3)
    st = json.loads((d / "status.json").read_text())
    assert st["status"] == "failed" and st["error"].startswith("refused: "), st


@pytest.mark.parametrize("raw", [b"[" * 100000 + b"]" * 100000, b"\xff\xfe{", b"{" * 10, b"", b"x" * (2 << 20)])
def test_malformed_job_files_neither_run_nor_crash(tmp_path, monkeypatch, raw):
    d = plant(tmp_path, None, raw=raw)
    (tmp_path / "jobs" / JOB_ID / "progress.json").write_bytes(raw)
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("a malformed job was started"))
    run_worker(tmp_path, 0.3)
    assert json.loads((d / "status.json").read_text())["status"] == "failed"
    assert [j.status for j in jobs.list_jobs(tmp_path)] == ["failed"]


def test_a_malformed_status_file_is_not_a_running_job(tmp_path):
    plant(tmp_path, v2("tasks", ["--suite", "demo"]), raw=None, status=["running"])
    (tmp_path / "jobs" / JOB_ID / "status.json").write_bytes(b"[" * 50000 + b"]" * 50000)
    job = jobs.get_job(tmp_path, JOB_ID)
    assert job.status == "failed"  # an unreadable status is never taken for queued or running


def test_cancel_signals_only_the_jobs_own_process(tmp_path):
    """A planted status.json naming another process's pid: cancel must not signal that process."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        plant(tmp_path, v2("tasks", ["--suite", "demo"]), status={"status": "running", "pid": victim.pid,
                                                                    "worker": victim.pid, "started": 1.0})
        job = jobs.cancel(tmp_path, JOB_ID)
        time.sleep(0.3)
        assert victim.poll() is None, "cancel killed a process that does not run the job"
        assert (job.dir / "cancel").exists()
    finally:
        victim.kill()
        victim.wait()


def test_a_good_job_still_runs(tmp_path):
    job = jobs.submit(tmp_path, ["tasks", "--suite", "demo"], label="list")
    rec = json.loads((job.dir / "request.json").read_text())
    assert set(rec) == {"format", "command", "args", "label", "resource", "created"} and rec["command"] == "tasks"
    assert "module" not in rec and "argv" not in rec
    done = jobs.run_job_inline(tmp_path, job.id)
    assert done.status == "done", jobs.log_tail(done, 20)


def test_the_worker_reads_the_request_as_it_is_when_it_starts(tmp_path, monkeypatch):
    """A request rewritten after it was queued is checked again: the snapshot is not trusted."""
    job = jobs.submit(tmp_path, ["tasks", "--suite", "demo"])
    (job.dir / "request.json").write_text(json.dumps({"module": "timeit", "argv": ["-s", "1"]}))
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("started"))
    run_worker(tmp_path, 0.3)
    assert jobs.get_job(tmp_path, job.id).status == "failed"


# --------------------------------------------------------------------------------------------------
# fuzz: random job records through the worker's claim and start

N_FUZZ = int(os.environ.get("IPT_JOB_FUZZ_EXAMPLES", "1000"))
FLAGS = sorted({s for a in cli.build_parser(only="tune")._subparsers._group_actions[0].choices["tune"]._actions
                for s in a.option_strings} | {"--cache", "--cache=/", "--extra-store", "--out", "-m", "-c", "-s", "--help"})
VALUES = ["demo", "/etc", "/", "..", "../../etc/passwd", "hf:/etc", "causal:/etc", "encoder-sim", "nan", "-1", "2", "1e9",
          "sms_spam", "import os", "__import__('os').system('id')", "$(id)", "`id`", ";id", "\x00", "", "é" * 50]
COMMANDS = list(jreq.JOB_COMMANDS) + ["timeit", "pdb", "runpy", "os", "ipt_core.analysis.maps", "-c", "", "tasks "]
KEYS = ["format", "command", "args", "label", "resource", "created", "module", "argv", "env", "cwd", "executable"]

values = st.one_of(st.integers(-3, 3), st.floats(allow_nan=True), st.text(max_size=20), st.none(), st.booleans(),
                   st.lists(st.sampled_from(VALUES), max_size=3))
arg_lists = st.lists(st.one_of(st.sampled_from(FLAGS), st.sampled_from(VALUES), st.text(max_size=12)), max_size=8)
SUITE_VALUES = ["demo", "/etc", "hf:/etc", "../../../etc", "/proc/self", "nope"]
pairs = st.lists(st.one_of(st.tuples(st.sampled_from(["--suite", "--out", "--extra-store"]), st.sampled_from(SUITE_VALUES)),
                           st.tuples(st.sampled_from(["--backbone"]), st.sampled_from(["encoder-sim", "causal:/etc",
                                                                                      "seq2seq:../..", "x:y"])),
                           st.tuples(st.sampled_from(["--steps", "--seeds", "--lr", "--k"]),
                                     st.sampled_from(["1", "2", "0", "nan", "-1", "1e9"]))), max_size=3)
plausible = st.builds(lambda c, ps: v2(c, [x for p in ps for x in p]), st.sampled_from(jreq.JOB_COMMANDS), pairs)
records = st.one_of(
    # the current shape, plausible flags with hostile values (twice: the branch that reaches the CLI check)
    plausible, plausible,
    # the current shape, hostile contents
    st.builds(lambda c, a, r, extra: {**v2(c, a, resource=r), **extra}, st.sampled_from(COMMANDS), arg_lists,
              st.sampled_from(["cpu", "gpu", "tpu"]), st.dictionaries(st.sampled_from(KEYS[6:]), values, max_size=1)),
    # the old shape, other modules
    st.builds(lambda m, a: {"module": m, "argv": a, "label": "", "resource": "cpu", "created": 1.0},
              st.sampled_from(COMMANDS), arg_lists),
    # any mix of fields
    st.dictionaries(st.sampled_from(KEYS), values, max_size=8),
)
as_json = records.map(lambda r: json.dumps(r).encode())
raw_files = st.one_of(as_json, as_json, as_json, st.binary(max_size=64),  # mostly JSON records, some garbage
                      records.map(lambda r: json.dumps(r).encode()[:-1]))


def _allowed_start(argv: list[str]) -> bool:
    """``python -m ipt_core <command> ...`` (or torchrun of it) that the CLI itself accepts."""
    if argv[:3] != [sys.executable, "-m", "ipt_core"]:
        return False
    return argv[3] in jreq.JOB_COMMANDS and cli.refusal(argv[3:]) is None


@pytest.mark.slow  # N_FUZZ (1000) job records, each claimed by a worker
@settings(max_examples=N_FUZZ, deadline=None, database=None, print_blob=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])
@seed(FUZZ_SEED)
@given(raw=raw_files)
def test_fuzzed_job_records_start_nothing_but_the_cli(tmp_path_factory, monkeypatch, raw):
    root = tmp_path_factory.mktemp("fuzz")
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(root))
    started: list[list[str]] = []

    def fake_popen(argv, **kw):
        started.append(list(argv))
        raise OSError("not started in the fuzz")  # the worker records "cannot start" and goes on

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    d = plant(root, None, raw=raw)
    w = Worker(root, idle_exit=0, poll=0)
    for job in w._claim():  # the worker's own claim and start, without its sleep loop
        w._start(job)
    assert all(_allowed_start(a) for a in started), started
    status = json.loads((d / "status.json").read_text())
    assert status["status"] == "failed"  # refused, or "cannot start" here
    err = status.get("error") or ""
    event("started: python -m ipt_core <command>" if started else
          "refused: not JSON" if "not a JSON object" in err else
          "refused: path outside the allowed folders" if "outside the allowed" in err else
          "refused: CLI parser or limits" if "python -m ipt_core" in err else "refused: record shape")


# --------------------------------------------------------------------------------------------------
# the same chain through the app: a store folder with planted jobs, opened in the sidebar


def test_planted_jobs_in_a_store_opened_by_the_app_run_nothing(tmp_path, monkeypatch):
    """A store-shaped folder (e.g. a store copied from elsewhere) holding an old-format timeit job and
    a current-format job with a path outside the allowed folders, typed into the sidebar with the
    worker's autostart on: the app shows both as failed with a reason, the worker it starts refuses
    the second, and no marker appears."""
    import signal

    from streamlit.testing.v1 import AppTest

    app_file = str(Path(__file__).resolve().parents[1] / "app.py")
    default = tmp_path / "default"
    planted = tmp_path / "copied-store"
    marker = tmp_path / "marker"
    monkeypatch.setenv("IPT_CACHE", str(default))
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(tmp_path))
    monkeypatch.setenv("IPT_SHIPPED_RESULTS", "0")
    monkeypatch.setenv("IPT_WARMUP", "0")
    monkeypatch.setenv("IPT_JOBS_AUTOSTART", "1")
    old = plant(planted, {"argv": ["-s", marker_code(marker), "pass"], "module": "timeit", "label": "planted-old",
                          "resource": "cpu", "created": 1.0}, job_id="20260101-000000-000000-00000001")
    new = plant(planted, v2("tasks", ["--suite", "/etc"], label="planted-new"), job_id="20260101-000000-000000-00000002")
    at = AppTest.from_file(app_file, default_timeout=90)
    at.session_state["ctx_root_input"] = str(planted)
    try:
        at.run()
        assert not at.exception, at.exception
        assert at.session_state["ctx_root"] == str(planted.resolve())
        at.switch_page("pages/jobs.py").run()
        assert not at.exception, at.exception
        deadline = time.time() + 120  # claimed ("running") first, then checked: wait for the final state
        while time.time() < deadline and json.loads((new / "status.json").read_text())["status"] in ("queued", "running"):
            time.sleep(0.2)
    finally:
        pid = jobs.worker_pid(planted)
        if pid:
            os.kill(pid, signal.SIGTERM)
    assert not marker.exists()
    for d, reason in ((old, "unknown fields ['argv', 'module']"), (new, "outside the allowed folders")):
        job = jobs.get_job(planted, d.name)
        assert job.status == "failed" and job.error.startswith("refused: ") and reason in job.error, job
    assert "not run by worker" in (new / "log.txt").read_text()


@pytest.mark.parametrize("estimate", [b"[" * 100000 + b"]" * 100000, b'{"stages": 5, "seconds": "x", "rate": []}',
                                      b'{"stages": [{"rows": "1e999", "match": 3}], "seconds": 1e999}', b"\xff",
                                      b'{"seconds": 10, "seconds_low": "x", "seconds_high": -5, "startup_s": 1e308, "tail_s": [],'
                                      b' "stages": [{"rows": 5, "seconds": "y", "match": "x"}, {"rows": -3, "seconds": 1e300}]}'])
def test_a_hostile_estimate_or_progress_file_is_ignored(tmp_path, estimate):
    from ipt_app.job_state import job_state

    job = jobs.submit(tmp_path, ["tasks", "--suite", "demo"])
    (job.dir / "estimate.json").write_bytes(estimate)
    (job.dir / "progress.json").write_text('{"stage": "x", "step": "nan", "total": [1]}')
    jobs.set_status(job.dir, status="running", started=time.time(), first_progress="soon")
    job = jobs.get_job(tmp_path, job.id)
    est = jobs.read_estimate(job)
    assert est is None or isinstance(est, dict)
    first = job_state(job, est)
    assert first.status == "running" and job.first_progress is None
    assert job_state(job, est, previous=first).status == "running"


def test_a_dataset_script_in_an_hf_suite_folder_is_never_run(tmp_path, monkeypatch):
    """``--suite hf:FOLDER`` with a loading script: the datasets release we pin refuses scripts; the
    suite fails to load with one clear error and the script's code never runs."""
    pytest.importorskip("datasets", reason="the optional Hugging Face source (requirements-dev.txt installs it)")
    from ipt_core.tasks import TaskDataError, load_suite

    marker = tmp_path / "marker"
    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "evil.py").write_text(f"{marker_code(marker)}\nimport datasets\n"
                                    "class Evil(datasets.GeneratorBasedBuilder):\n    pass\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TaskDataError, match="could not load the dataset"):
        load_suite(f"hf:{folder}")
    assert not marker.exists()
