"""CLI progress (issue 31, point 6): a tqdm bar per stage on a terminal's stderr, nothing extra with
--json or when stderr is not a terminal, the progress file as before; ``tasks`` never imports torch."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from ipt_core.cli import main as cli
from ipt_core.train import progress
from ipt_core.train.progress import Reporter

ROOT = Path(__file__).resolve().parents[1]


class FakeTTY(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _modules_after(argv: list[str]) -> dict:
    """Run ``cli.main(argv)`` in a fresh interpreter; which heavy modules it imported, and the exit status."""
    code = (
        "import json, sys\n"
        "from ipt_core.cli import main as cli\n"
        "try:\n"
        f"    rc = cli.main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    rc = exc.code\n"
        "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, 'transformers': 'transformers' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv, rc", [
    (["tasks", "--suite", "demo"], 0),
    (["tasks", "--suite", "demo", "--json"], 0),
    (["tasks", "--suite", "no_such_suite_here"], cli.EXIT_BAD_INPUT),
    (["tasks", "--no-such-flag"], cli.EXIT_BAD_INPUT),
    (["tune", "--lr", "nan"], cli.EXIT_BAD_INPUT),  # refused by the flag's type: before any model check
])
def test_tasks_and_flag_errors_import_neither_torch_nor_transformers(argv, rc):
    got = _modules_after(argv)
    assert got == {"rc": rc, "torch": False, "transformers": False}


def _drive(reporter: Reporter) -> None:
    reporter.set_stage("stage one")
    for step in range(1, 4):
        reporter(step, 3, "1/1 runs active")
    reporter.set_stage("stage two")
    for step in range(1, 6):
        reporter(step, 5, "2/2 runs active")
    reporter.close()


def test_a_terminal_gets_one_bar_per_stage(monkeypatch):
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    _drive(Reporter("start"))
    text = err.getvalue()
    assert "stage one" in text and "3/3" in text
    assert "stage two" in text and "5/5" in text
    assert text.index("stage one") < text.index("stage two")


def test_a_new_bank_in_the_same_stage_starts_a_new_bar(monkeypatch):
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    r = Reporter("tuning")
    for total in (4, 2):  # two banks one after the other, no set_stage between them
        for step in range(1, total + 1):
            r(step, total)
    r.close()
    assert "4/4" in err.getvalue() and "2/2" in err.getvalue()


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    _drive(Reporter("start"))
    assert err.getvalue() == ""


def test_no_bar_when_bars_are_off_json(monkeypatch, tmp_path):
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    before = progress.bars(False)
    try:
        _drive(Reporter("start", path=tmp_path / "progress.json"))
    finally:
        progress.bars(before)
    # no bar; a job's log lines only (stage started, bank finished)
    assert "\r" not in err.getvalue() and "%|" not in err.getvalue()
    assert all(line.startswith("[") for line in err.getvalue().splitlines())
    got = json.loads((tmp_path / "progress.json").read_text())  # the file sink is unaffected
    assert (got["stage"], got["step"], got["total"]) == ("stage two", 5, 5)


def _fake_command(seen: list):
    """Stands in for a training command: reports two stages through a Reporter, as the real ones do."""

    def run(args) -> int:
        _drive(Reporter("fake"))
        seen.append(args.json)
        cli._emit(args, {"ok": True}, "ok")
        return 0

    return run


@pytest.mark.parametrize("json_flag", [False, True])
def test_main_draws_bars_on_a_terminal_and_none_with_json(monkeypatch, tmp_path, json_flag):
    err, seen = FakeTTY(), []
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setitem(cli.COMMANDS, "tasks", _fake_command(seen))
    progress_file = tmp_path / "progress.json"
    monkeypatch.setenv("IPT_PROGRESS_FILE", str(progress_file))
    assert cli.main(["tasks", "--suite", "demo"] + (["--json"] if json_flag else [])) == 0
    assert seen == [json_flag]
    if json_flag:
        # the job worker's runs: the log's stage lines, then the command's own text (--json puts it on stderr), no bar
        lines = err.getvalue().splitlines()
        assert lines[-1] == "ok" and "%|" not in err.getvalue()
        assert [ln.split("] ", 1)[1] for ln in lines[:-1] if "stage:" in ln] == ["stage: stage one", "stage: stage two"]
    else:
        assert "stage one" in err.getvalue() and "stage two" in err.getvalue()
    got = json.loads(progress_file.read_text())
    assert (got["stage"], got["step"], got["total"]) == ("stage two", 5, 5) and "time" in got
    assert progress._BARS["enabled"] is True  # main restores the setting


def test_the_first_line_says_what_loads_on_a_terminal_only(monkeypatch):
    err = FakeTTY()
    monkeypatch.setattr(sys, "stderr", err)
    cli._announce(Namespace(command="tune", backbone="encoder-sim", json=False))
    assert err.getvalue() == "tune: starting, loading encoder-sim ...\n"
    for args in (Namespace(command="tune", backbone="encoder-sim", json=True), Namespace(command="tasks", json=False)):
        err.seek(0), err.truncate()
        cli._announce(args)
        assert err.getvalue() == ""
    plain = io.StringIO()
    monkeypatch.setattr(sys, "stderr", plain)
    cli._announce(Namespace(command="tune", backbone="encoder-sim", json=False))
    assert plain.getvalue() == ""


def test_a_job_log_gets_a_line_per_stage_and_per_finished_bank(tmp_path, capsys):
    """With a progress file (a job), stage starts and finished banks are plain lines on stderr: the job's log."""
    rep = Reporter("ipt", path=tmp_path / "progress.json", bar=False)
    rep.set_stage("subspace finding")
    for s in range(1, 4):
        rep(s, 3, "loss 0.1")
    rep(3, 3, "again")  # the last step reported twice: one line
    rep.set_stage("intrinsic subspace tuning (2 runs)")
    rep(1, 5)
    rep.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert [ln.split("] ", 1)[1] for ln in lines] == [
        "stage: subspace finding", lines[1].split("] ", 1)[1], "stage: intrinsic subspace tuning (2 runs)"]
    assert lines[1].split("] ", 1)[1].startswith("subspace finding: 3/3 steps in ")
    assert all(ln.startswith("[") and ln[9] == "]" for ln in lines)  # [HH:MM:SS]
    assert json.loads((tmp_path / "progress.json").read_text())["stage"] == "intrinsic subspace tuning (2 runs)"


def test_no_log_lines_without_a_progress_file(capsys, monkeypatch):
    monkeypatch.delenv("IPT_PROGRESS_FILE", raising=False)
    rep = Reporter("tune", bar=False)
    rep.set_stage("prompt tuning")
    rep(2, 2)
    assert capsys.readouterr().err == ""
