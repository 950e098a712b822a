"""The layer rules of ARCHITECTURE.md, checked on the source with ``ast`` (nothing is imported):

- no import cycle between the modules of ``ipt_core`` (imports go one way: cli -> experiments ->
  methods -> bank -> backbones -> tasks, store);
- the app (``app.py``, ``pages/``, the app's helper package) never imports ``ipt_core.bank`` or
  ``ipt_core.methods``: pages read the store and submit jobs;
- the core never imports streamlit;
- no Python file outside ``tests/`` is over 600 lines.

Function-level imports count like top-level ones (they run too, only later). An import of a
module's own parent package is not an edge: the parent is always initialised first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = "ipt_core"
MAX_LINES = 600
FORBIDDEN_FOR_APP = ("ipt_core.bank", "ipt_core.methods")



def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / CORE).rglob("*.py")) if "__pycache__" not in p.parts}


def imported_names(path: Path, modname: str) -> set[str]:
    """Absolute dotted names ``path`` imports; ``from X import a`` gives both X and X.a."""
    is_pkg = path.name == "__init__.py"
    package = modname if is_pkg else modname.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                keep = len(parts) - (node.level - 1)
                if keep <= 0:
                    continue  # beyond the top package: not ours
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names if a.name != "*")
    return out


def import_graph() -> dict[str, set[str]]:
    mods = core_modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        edges = set()
        for target in imported_names(path, name):
            if target in mods and target != name and target not in ancestors:
                edges.add(target)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module (Tarjan), each a set of module names."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[set[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def describe(comp: set[str], graph: dict[str, set[str]]) -> str:
    """One shortest cycle through the component's first module, e.g. ``a -> b -> a`` (+ the component)."""
    start = min(comp)
    paths = {start: [start]}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & comp):
            if w == start:
                return " -> ".join(paths[v] + [start]) + f"   (modules in the cycle: {sorted(comp)})"
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return str(sorted(comp))


def app_files() -> list[Path]:
    files = [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]
    for helpers in ("ipt_app", "app_support"):
        d = ROOT / helpers
        files += sorted(d.rglob("*.py")) if d.is_dir() else []
        f = ROOT / f"{helpers}.py"
        files += [f] if f.is_file() else []
    return [f for f in files if f.is_file()]


def python_files_outside_tests() -> list[Path]:
    skip = {"tests", "cache", "build", "dist", "node_modules", "__pycache__"}
    out = []
    for p in ROOT.rglob("*.py"):
        rel = p.relative_to(ROOT).parts
        if any(part in skip or part.startswith(".") for part in rel[:-1]):
            continue
        out.append(p)
    return sorted(out)


def line_count(path: Path) -> int:
    with open(path, encoding="utf-8", errors="replace") as f:
        return sum(1 for _ in f)


# ------------------------------------------------------------------------------------------- tests


def test_the_checker_sees_the_core():
    graph = import_graph()
    assert {"ipt_core.bank", "ipt_core.store", "ipt_core.tasks", "ipt_core.cli"} <= set(graph)
    assert "ipt_core.backbones" in graph["ipt_core.bank"]  # `from .backbones import ...`
    assert "ipt_core.tasks.model" in graph["ipt_core.tasks"]  # the package re-exports its modules
    assert "ipt_core.tasks" not in graph["ipt_core.tasks.model"]  # its own package: not an edge


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [{"a", "b", "c"}]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_ipt_core():
    graph = import_graph()
    found = cycles(graph)
    assert not found, "import cycles in ipt_core:\n" + "\n".join(describe(c, graph) for c in found)


def test_app_never_imports_the_bank_or_a_method():
    bad = []
    for f in app_files():
        for name in imported_names(f, module_name(f)):
            if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_FOR_APP):
                bad.append(f"{f.relative_to(ROOT)} imports {name}")
    assert {p.name for p in app_files()} >= {"app.py"}
    assert not bad, "the app reaches into the training core:\n" + "\n".join(sorted(set(bad)))


def test_core_never_imports_streamlit():
    bad = [f"{path.relative_to(ROOT)} imports {name}"
           for mod, path in core_modules().items() for name in imported_names(path, mod)
           if name == "streamlit" or name.startswith("streamlit.")]
    assert not bad, "\n".join(bad)


def test_no_python_file_over_600_lines():
    big = [f"{p.relative_to(ROOT).as_posix()}: {n} lines" for p in python_files_outside_tests()
           if (n := line_count(p)) > MAX_LINES]
    assert not big, "\n".join(big)
