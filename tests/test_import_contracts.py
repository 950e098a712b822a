"""The layers of ARCHITECTURE.md, checked.

- ``lint-imports`` (import-linter, configured in pyproject.toml) holds: ``ipt_core``'s layers top to
  bottom, the core never imports the app or streamlit, the app never imports the experiments, the
  methods, the training loop or a model, and the configs never import torch, transformers,
  scikit-learn or scipy, even lazily;
- it fails on a planted forbidden import (so the check can fail);
- the pages (scripts, not a package import-linter sees) keep the app's rule too;
- what the first page imports at import time never loads torch, transformers, scikit-learn or scipy,
  followed transitively over top-level imports. Written here with ``ast`` because import-linter counts
  an import inside a function (the store's lazy ``import torch``) like a top-level one.
"""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ipt_core", "ipt_app")
APP_MAY_NOT_IMPORT = ("ipt_core.experiments", "ipt_core.methods", "ipt_core.train", "ipt_core.backbones")
HEAVY = {"torch", "transformers", "sklearn", "scipy"}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is not installed (requirements-dev.txt)"
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([exe, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_import_linter_contracts_hold():
    res = lint_imports(ROOT)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_a_planted_forbidden_import_breaks_the_contracts(tmp_path):
    for pkg in PACKAGES:
        for p in (ROOT / pkg).rglob("*.py"):
            if "__pycache__" in p.parts:
                continue
            dst = tmp_path / p.relative_to(ROOT)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_bytes(p.read_bytes())
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "ipt_core" / "config" / "limits.py", "a") as f:
        f.write("\nfrom ipt_core.cli import main as _planted  # a config importing the CLI: upwards\n")
    with open(tmp_path / "ipt_app" / "escape.py", "a") as f:
        f.write("\nfrom ipt_core.train import bank as _planted  # the app reaching into the training loop\n")
    res = lint_imports(tmp_path)
    assert res.returncode != 0
    assert "ipt_core.config.limits -> ipt_core.cli.main" in res.stdout, res.stdout[-3000:]
    assert "ipt_app.escape -> ipt_core.train.bank" in res.stdout, res.stdout[-3000:]
    assert "configs are plain dataclasses" in res.stdout and "BROKEN" in res.stdout


# --------------------------------------------------------------------------- top-level imports, by ast


def _module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def top_level_imports(path: Path, modname: str) -> set[str]:
    """Absolute names imported when ``path`` is imported (module body, top-level if/try; not functions,
    not ``if TYPE_CHECKING``); ``from X import a`` gives X and X.a."""
    is_pkg = path.name == "__init__.py"
    package = modname if is_pkg else modname.rpartition(".")[0]
    out: set[str] = set()

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                out.add(base)
                out.update(f"{base}.{a.name}" for a in node.names)
            elif isinstance(node, ast.If) and not _is_type_checking(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for h in node.handlers:
                    visit(h.body)
                visit(node.orelse)
                visit(node.finalbody)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return out


def loaded_at_import(files: list[Path]) -> dict[str, list[str]]:
    """Every top-level package loaded by importing ``files``, with one chain of modules that loads it."""
    chains: dict[str, list[str]] = {}
    seen: set[str] = set()
    stack = [(f, f.stem, [f.name]) for f in files]
    while stack:
        path, modname, chain = stack.pop()
        for name in top_level_imports(path, modname):
            parts = name.split(".")
            if parts[0] not in PACKAGES:
                chains.setdefault(parts[0], chain + [name])
                continue
            # importing a.b.c runs a, a.b and a.b.c
            for i in range(1, len(parts) + 1):
                sub = ".".join(parts[:i])
                target = _module_file(sub)
                if target is not None and sub not in seen:
                    seen.add(sub)
                    stack.append((target, sub, chain + [sub]))
    return chains


def test_the_first_page_never_loads_heavy_libraries():
    first = [ROOT / "app.py", ROOT / "pages" / "overview.py"]
    chains = loaded_at_import(first)
    assert "streamlit" in chains and "plotly" in chains  # the walk follows the app's imports
    bad = {lib: " -> ".join(chain) for lib, chain in chains.items() if lib in HEAVY}
    assert not bad, "the first page loads: " + "; ".join(f"{k}: {v}" for k, v in bad.items())


def test_the_walk_finds_a_planted_top_level_import(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("import ipt_core.store\nfrom ipt_core.train import bank\n")
    chains = loaded_at_import([page])
    assert "torch" in chains and "ipt_core.train.bank" in chains["torch"]
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    import torch\nif TYPE_CHECKING:\n    import sklearn\n")
    assert not set(loaded_at_import([lazy])) & HEAVY


@pytest.mark.parametrize("page", sorted((ROOT / "pages").glob("*.py")) + [ROOT / "app.py"], ids=lambda p: p.name)
def test_pages_never_import_the_training_core(page):
    names = set()
    for node in ast.walk(ast.parse(page.read_text(encoding="utf-8"))):  # function-level imports count too
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    bad = sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in APP_MAY_NOT_IMPORT))
    assert not bad, f"{page.name} imports {bad}"
