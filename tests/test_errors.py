"""One error contract at the boundary: what the user got wrong is an ``InputError`` (exit 2, one line,
no traceback); anything else is a bug and keeps its traceback (the CLI does not catch it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ipt_app.uploads import UploadError
from ipt_core.cli import main as cli
from ipt_core.cli.args import ArgError
from ipt_core.config.backbone import BackboneError
from ipt_core.config.limits import LimitError
from ipt_core.errors import InputError, UnknownNameError
from ipt_core.experiments.compare import CompareInputError
from ipt_core.experiments.export import ExportError
from ipt_core.experiments.ipt_stages import IPTInputError
from ipt_core.jobs.request import RequestRefused
from ipt_core.paths import PathNotAllowed
from ipt_core.store.folder import NotAStoreFolder
from ipt_core.tasks import SuiteSourceError, TaskDataError, load_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("cls", [ArgError, BackboneError, LimitError, CompareInputError, ExportError, IPTInputError,
                                 RequestRefused, PathNotAllowed, NotAStoreFolder, TaskDataError, SuiteSourceError,
                                 UploadError, UnknownNameError])
def test_every_input_error_is_one_family(cls):
    assert issubclass(cls, InputError) and issubclass(cls, ValueError)


def test_unknown_name_is_a_key_error_with_a_plain_message():
    exc = UnknownNameError("no task 'x' in suite 'demo'")
    assert isinstance(exc, KeyError) and str(exc) == "no task 'x' in suite 'demo'"  # not KeyError's quoted repr
    with pytest.raises(UnknownNameError, match="no task 'nope'"):
        load_suite("demo").task("nope")
    with pytest.raises(InputError, match="unknown task"):  # a TaskDataError naming the field
        load_suite("demo").subset(["nope"])


def test_an_input_error_is_one_line_and_exit_2(monkeypatch, capsys):
    def bad_input(args):
        raise IPTInputError("--d 999 is larger than the prompt")
    monkeypatch.setitem(cli.COMMANDS, "tasks", bad_input)
    assert cli.main(["tasks", "--suite", "demo"]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.strip() == "error: --d 999 is larger than the prompt" and "Traceback" not in err


@pytest.mark.parametrize("bug", [ValueError("internal shape mismatch"), KeyError("a dict key we forgot"),
                                 TypeError("wrong call"), RuntimeError("bug")])
def test_anything_else_is_a_bug_and_propagates(monkeypatch, bug):
    def buggy(args):
        raise bug
    monkeypatch.setitem(cli.COMMANDS, "tasks", buggy)
    with pytest.raises(type(bug)):
        cli.main(["tasks", "--suite", "demo"])


def test_a_bug_shows_its_traceback_and_exit_1_from_the_command_line(tmp_path):
    code = ("import sys\nfrom ipt_core.cli import main as cli\n"
            "def buggy(args):\n    raise ValueError('internal: not the user')\n"
            "cli.COMMANDS['tasks'] = buggy\nsys.exit(cli.main(['tasks', '--suite', 'demo']))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" in out.stderr and "ValueError: internal: not the user" in out.stderr


def test_a_real_bad_input_from_the_command_line_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ipt_core", "tasks", "--suite", str(tmp_path / "missing")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
