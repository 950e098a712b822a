"""The project installs as a package: ``pip wheel .`` builds a wheel holding every module, the demo
suite, the shipped results and a copy of the app (``app.py``, ``pages/*.py``, ``.streamlit/config.toml``
under ``ipt_app/site/``, put there by ``setup.py``). Installed into a fresh virtual environment (not
the checkout) without network, from an empty folder with ``IPT_CACHE`` unset: ``ipt tasks`` lists the
demo suite from the installed copy, ``ipt tune`` stores under ``./cache`` of that folder and writes
nothing inside site-packages, and ``ipt app`` serves the installed copy of the app.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow
APP_DIR = "ipt_app/site"  # where the wheel carries the app (setup.py, ipt_core/cli/app_command.py)


def _project_files(package: str) -> set[str]:
    base = ROOT / package
    if not base.is_dir():
        return set()
    return {p.relative_to(ROOT).as_posix() for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def _app_files() -> list[str]:
    """The app's files at the root, as the wheel must carry them below APP_DIR."""
    pages = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "pages").glob("*.py"))
    return ["app.py", ".streamlit/config.toml"] + pages


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # no build isolation: the build uses this environment's setuptools, so the test needs no network
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = out.glob("ipt_core-*.whl")
    return whl


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> dict:
    """The wheel in a fresh venv (no network: ``--no-deps --no-index``); the dependencies come from this
    environment through a ``.pth`` file (installing torch again would download gigabytes)."""
    env_dir = tmp_path_factory.mktemp("fresh") / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IPT_CACHE", "IPT_ALLOWED_ROOTS")}
    return {"dir": env_dir, "py": py, "bin": env_dir / "bin", "site": site, "env": env}


def _empty_folder(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    return work


def _files(folder: Path) -> set[str]:
    """Every file below ``folder`` but bytecode (importing an installed module may write it)."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _project_files("ipt_core") | _project_files("ipt_app")
    assert expected, "no package found"
    missing = sorted(expected - names)
    assert not missing, f"{len(missing)} files not in the wheel, e.g. {missing[:5]}"
    assert not [n for n in names if n.startswith(("tests/", "pages/", "bench/", "cache/", ".streamlit/"))]
    assert "app.py" not in names and "setup.py" not in names  # no new top-level modules
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Requires-Dist: torch" in text and 'extra == "app"' in text
    assert "Classifier: Operating System :: POSIX :: Linux" in text
    assert any(line.startswith("Requires-Dist: streamlit>=") and 'extra == "app"' in line for line in text.splitlines())
    assert any(line.startswith("Requires-Dist: huggingface") and 'extra == "hf"' in line for line in text.splitlines())
    eps = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "ipt = ipt_core.cli.main:main" in eps


def test_wheel_carries_a_copy_of_the_app(wheel):
    """app.py, every page and the Streamlit config, byte for byte, under ipt_app/site/."""
    z = zipfile.ZipFile(wheel)
    names = set(z.namelist())
    files = _app_files()
    assert "app.py" in files and ".streamlit/config.toml" in files and len(files) >= 5
    for rel in files:
        assert f"{APP_DIR}/{rel}" in names, f"{rel} is not in the wheel"
        assert z.read(f"{APP_DIR}/{rel}") == (ROOT / rel).read_bytes(), f"{rel}: the wheel's copy differs"
    copies = {n[len(APP_DIR) + 1:] for n in names if n.startswith(APP_DIR + "/")}
    assert copies == set(files), sorted(copies ^ set(files))


def test_installed_wheel_runs_from_a_fresh_venv(installed, tmp_path):
    env = dict(installed["env"], IPT_CACHE=str(tmp_path / "store"))
    where = subprocess.check_output([str(installed["py"]), "-c", "import ipt_core; print(ipt_core.__file__)"],
                                    text=True, cwd=tmp_path, env=env).strip()
    assert Path(where).is_relative_to(installed["dir"]), where  # the installed copy, not the checkout
    out = subprocess.run([str(installed["bin"] / "ipt"), "tasks", "--suite", "demo", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["tasks"]) >= 20


def test_installed_tune_stores_in_the_working_folder(installed, tmp_path):
    """No IPT_CACHE, no --cache: the store is ./cache of the working folder, nothing lands in site-packages."""
    work = _empty_folder(tmp_path)
    before = _files(installed["dir"])
    # the smallest budget the flags allow that still trains: 2 steps, one task, one seed, no baselines
    argv = [str(installed["bin"] / "ipt"), "tune", "--suite", "demo", "--tasks", "sms_spam", "--seeds", "1",
            "--steps", "2", "--eval-every", "2", "--batch-size", "8", "--prompt-len", "1",
            "--no-baselines", "--checkpoint-every", "0", "--device", "cpu", "--json"]
    out = subprocess.run(argv, capture_output=True, text=True, cwd=work, env=installed["env"], timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    (run,) = json.loads(out.stdout.strip().splitlines()[-1])["runs"]
    assert run["task"] == "sms_spam" and run["status"] == "done"
    entry = work / "cache" / "objects" / run["key"][:2] / run["key"]
    assert (entry / "entry.json").is_file() and (entry / "tensors.safetensors").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["cache"]
    assert _files(installed["dir"]) == before, sorted(_files(installed["dir"]) ^ before)  # site-packages untouched


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _listening(port: int) -> set[str]:
    """The local addresses (hex, as /proc/net shows them) listening on ``port``."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":  # 0A: LISTEN
                out.add(addr)
    return out


def test_installed_ipt_app_serves_the_installed_copy(installed, tmp_path):
    """``ipt app`` starts Streamlit as a child on the wheel's app.py (not the checkout's), with the
    wheel's .streamlit/config.toml in effect (it listens on 127.0.0.1 only), and stops on SIGTERM."""
    work = _empty_folder(tmp_path)
    port = _free_port()
    log = (tmp_path / "app.log").open("w")
    proc = subprocess.Popen([str(installed["bin"] / "ipt"), "app", "--server.port", str(port),
                             "--server.headless", "true"], cwd=work, env=installed["env"], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        health, deadline = "", time.monotonic() + 45
        while health != "ok" and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "app.log").read_text()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    health = r.read().decode().strip()
            except OSError:
                time.sleep(0.3)
        assert health == "ok", (tmp_path / "app.log").read_text()[-3000:]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            html = r.read().decode()
        assert '<div id="root">' in html and "<title>Streamlit</title>" in html

        (child,) = _children(proc.pid)  # python -m streamlit run <app.py> ...
        cmd = Path(f"/proc/{child}/cmdline").read_bytes().decode().split("\0")
        script = Path(cmd[cmd.index("run") + 1])
        assert cmd[1:3] == ["-m", "streamlit"] and "--server.port" in cmd
        assert script.resolve() == (installed["site"] / "ipt_app" / "site" / "app.py").resolve(), cmd
        assert not script.is_relative_to(ROOT)
        assert _listening(port) == {"0100007F"}, _listening(port)  # 127.0.0.1: the installed config.toml

        proc.send_signal(signal.SIGTERM)  # passed on to Streamlit, which stops; ipt exits with its status
        assert proc.wait(timeout=20) == 0, (tmp_path / "app.log").read_text()[-3000:]
        assert not Path(f"/proc/{child}").exists()
        assert f"streamlit run {script}" in (tmp_path / "app.log").read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
def test_ipt_app_in_a_checkout_passes_arguments_through(monkeypatch):
    """In the checkout the root app.py is served; the arguments after ``app`` reach streamlit run
    unchanged (argparse alone would refuse ``--server.port`` as an unknown option)."""
    from ipt_core.cli import app_command
    from ipt_core.cli.main import parse

    assert app_command.app_script() == ROOT / "app.py"
    args = parse(["app", "--server.port", "8600", "--server.headless", "true", "--", "--x"])
    assert args.streamlit_args == ["--server.port", "8600", "--server.headless", "true", "--", "--x"]
    argv = app_command.streamlit_argv(app_command.app_script(), args.streamlit_args)
    assert argv[:5] == [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py")]
    assert argv[5:] == args.streamlit_args


def test_ipt_app_without_streamlit_says_what_to_install(monkeypatch, capsys):
    """One line, exit 2, nothing started, when streamlit is not installed."""
    import importlib.util

    from ipt_core.cli import app_command
    from ipt_core.cli.main import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "streamlit" else real(name, *a))
    monkeypatch.setattr(app_command.subprocess, "Popen", lambda *a, **k: pytest.fail("started a process"))
    assert main(["app", "--server.port", "1"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "streamlit" in line and "pip install 'ipt-core[app]'" in line
