"""The project installs as a package: ``pip wheel .`` builds a wheel holding every module, the demo
suite and the shipped results; installed into a fresh virtual environment (not the checkout), its
``ipt`` console script lists the demo suite from the installed copy.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _project_files(package: str) -> set[str]:
    base = ROOT / package
    if not base.is_dir():
        return set()
    return {p.relative_to(ROOT).as_posix() for p in base.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # no build isolation: the build uses this environment's setuptools, so the test needs no network
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True, cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = out.glob("ipt_core-*.whl")
    return whl


def test_wheel_holds_every_module_and_data_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = _project_files("ipt_core") | _project_files("ipt_app")
    assert expected, "no package found"
    missing = sorted(expected - names)
    assert not missing, f"{len(missing)} files not in the wheel, e.g. {missing[:5]}"
    assert not [n for n in names if n.startswith(("tests/", "pages/", "bench/", "cache/"))]
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "Requires-Dist: torch" in text and 'extra == "app"' in text
    eps = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "ipt = ipt_core.cli.main:main" in eps


def test_installed_wheel_runs_from_a_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                           "--no-index", str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the dependencies come from this environment (installing torch again would download gigabytes)
    site = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        text=True).strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IPT_CACHE")}
    env["IPT_CACHE"] = str(tmp_path / "store")
    where = subprocess.check_output([str(py), "-c", "import ipt_core; print(ipt_core.__file__)"],
                                    text=True, cwd=tmp_path, env=env).strip()
    assert Path(where).is_relative_to(env_dir), where  # the installed copy, not the checkout
    out = subprocess.run([str(env_dir / "bin" / "ipt"), "tasks", "--suite", "demo", "--json"],
                         capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(report["tasks"]) >= 20
