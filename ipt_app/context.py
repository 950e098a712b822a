"""The page context chosen in the sidebar, the chosen suite's listing, and the device choices.

app.py draws the sidebar (:mod:`ipt_app.sidebar`), which stores its choices as plain session values
that pages read with :func:`ctx`. A page also works when Streamlit runs its file without the entry
script (the first request of a fresh server that deep-links to a page, and ``AppTest.switch_page``):
it then gets the last choices, or the defaults.

Every suite the app loads is first checked against the allowed folders (:mod:`ipt_core.paths`),
symlinks inside its folder included, wherever its spec came from: typed, an upload, or a result's
``meta["suite"]`` (issue 32). A refused suite reads as a suite with an error; nothing of it is read.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from ipt_app.escape import md_code, md_escape
from ipt_core import store as store_mod
from ipt_core import tasks as tasks_mod
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.paths import (
    PathNotAllowed,
    allowed_roots,
    check_suite_allowed,
    suite_local_path,
)


def ctx() -> dict:
    """The sidebar's choices: ``root`` (Path), ``suite`` (spec), ``suite_name``, ``backbone``, ``results_only``."""
    ss = st.session_state
    return {
        "root": Path(ss.get("ctx_root") or store_mod.default_root()),
        "suite": ss.get("ctx_suite", "demo"),
        "suite_name": ss.get("ctx_suite_name", "demo"),
        "backbone": ss.get("ctx_backbone", DEFAULT_BACKBONE),
        "results_only": bool(ss.get("ctx_results_only", False)),
    }


@st.cache_resource(show_spinner=False)
def _gpu_driver_present() -> bool:
    """Is there a CUDA (NVIDIA) or ROCm driver at all? Without one no torch build can see a GPU, and
    importing torch only to learn that costs ~1.4 s of the first paint on a CPU machine."""
    return any(Path(p).exists() for p in ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg"))


def gpu_name() -> str | None:
    """The GPU's name, or None. torch is imported (once per server) only where a GPU driver exists."""
    if not _gpu_driver_present():
        return None
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken CUDA setup means: no GPU for the app
        return None


def suite_matches(value: Any, spec: str) -> bool:
    """Does a suite recorded in an entry (``meta["suite"]``: the loaded suite's name, or the spec it
    was given) name the selected suite ``spec``?"""
    if not isinstance(value, str):
        return False
    if value == spec:
        return True
    info = suite_info(spec)
    if info.get("name") is not None and value == info["name"] and spec != "demo" and value != "demo":
        return True
    try:
        a, b = Path(value).expanduser(), Path(spec).expanduser()
        if a.exists() and b.exists():
            return a.resolve() == b.resolve()
    except OSError:
        pass
    return False


def suite_problem(c: dict, info: dict) -> None:
    """Say why the suite cannot be listed: an error for a broken suite, a note for results-only ones."""
    if "error" not in info:
        return
    if c.get("results_only"):
        where = "outside the folders this app may read" if info.get("refused") else "not on this machine"
        st.warning(f"The data of suite {md_code(c['suite_name'])} is {where} (its results are in the store); "
                   "results are shown, but tasks cannot be listed or tuned.")
    else:
        st.error(md_escape(f"Cannot load suite {c['suite']!r}: {info['error']}"))  # names, paths, values: issue 32


def _mtimes(p: Path) -> list[int]:
    """The entry's own mtime (lstat: a file swapped for a symlink changes it) and its target's."""
    out = [p.lstat().st_mtime_ns]
    try:
        out.append(p.stat().st_mtime_ns)
    except OSError:  # a dangling link: its lstat time is enough
        pass
    return out


def _path_signature(spec: str) -> str:
    """Changes when an uploaded/local suite changes on disk (a task folder's mtime changes when a
    file in it is replaced, by a symlink too), so the cached listing and its path check are redone."""
    local = suite_local_path(spec)
    if local is None:
        return ""
    p = Path(local).expanduser()
    try:
        mt = _mtimes(p) + ([t for c in p.iterdir() for t in _mtimes(c)] if p.is_dir() else [])
    except OSError:
        return "missing"
    return str(max(mt))


def suite_extra_roots(root: str | Path | None = None) -> tuple[str, ...]:
    """Folders the app reads suites from besides the allowed roots: the uploads of the store in use
    (``root``, default the sidebar's), which the sidebar checked or took from the environment."""
    root = root if root is not None else st.session_state.get("ctx_root") or store_mod.default_root()
    return (str(Path(root).expanduser() / "uploads"),)


def suite_read_problem(spec: str, root: str | Path | None = None) -> str | None:
    """Why the app must not read suite ``spec`` (it, or a link inside it, resolves outside the
    allowed folders), as one line; None when it may. ``root``: the store in use (see
    :func:`suite_extra_roots`)."""
    try:
        check_suite_allowed(spec, "suite", extra_roots=suite_extra_roots(root))
    except PathNotAllowed as e:
        return str(e)
    return None


@st.cache_data(show_spinner=False, max_entries=32)
def _suite_info(spec: str, signature: str, roots: tuple[str, ...]) -> dict:
    # checked here, before the loader opens anything; ``roots`` (the allowed roots and the store's
    # uploads) is part of the cache key so a listing made under other roots is never reused
    try:
        check_suite_allowed(spec, "suite", extra_roots=roots)
    except PathNotAllowed as e:
        return {"error": str(e), "refused": True}
    try:
        suite = tasks_mod.load_suite(spec)
    except tasks_mod.TaskDataError as e:
        return {"error": str(e)}
    return {
        "name": suite.name,
        "names": suite.names(),
        "families": {t.name: t.type for t in suite.tasks},
        "rows": [{"task": t.name, "family": t.type, "labels": ", ".join(t.labels), "n_labels": len(t.labels), "input": " + ".join(t.input_fields),
                  **t.sizes(), "description": t.description} for t in suite.tasks],
        "examples": {t.name: [{"text": ex.text, **({"text_pair": ex.text_pair} if ex.text_pair is not None else {}),
                               "label": t.labels[ex.label]} for ex in t.train[:8]] for t in suite.tasks},
    }


def suite_info(spec: str) -> dict:
    """``{"names", "families", "rows", "examples"}`` of a suite, or ``{"error": loader's message}``
    (``{"error", "refused": True}`` for a suite outside the allowed folders, which is never read)."""
    roots = tuple(str(r) for r in allowed_roots()) + suite_extra_roots()
    return _suite_info(spec, _path_signature(spec), roots)


def device_options() -> list[str]:
    gpu = st.session_state.get("ctx_gpu_name")
    return ["auto", "cpu"] + (["cuda"] if gpu else [])


def resource_for(device: str) -> str:
    """A job on the GPU is queued so that only one GPU job runs at a time."""
    gpu = st.session_state.get("ctx_gpu_name")
    return "gpu" if gpu and device in ("auto", "cuda") or device.startswith("cuda") else "cpu"
