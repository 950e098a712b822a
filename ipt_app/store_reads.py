"""Reading results: the main store first, then the read-only demo store shipped with the package.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import streamlit as st

from ipt_app.escape import md_escape
from ipt_core import store as store_mod
from ipt_core.analysis import maps
from ipt_core.analysis.convergence import run_finished
from ipt_core.config.ipt import MSFConfig
from ipt_core.paths import SHIPPED_RESULTS
from ipt_core.store.entry import Entry, StoreError


@st.cache_resource(show_spinner=False)
def get_store(root: str) -> store_mod.Store:
    """One Store per root for the whole server: it caches parsed entries between reruns."""
    return store_mod.Store(root)


def stores(root: Path) -> list[store_mod.Store]:
    """The main store, then the demo results shipped with the package (``IPT_SHIPPED_RESULTS=0``: main only)."""
    out = [get_store(str(root))]
    shipped_on = os.environ.get("IPT_SHIPPED_RESULTS", "1") != "0"
    if shipped_on and SHIPPED_RESULTS.is_dir() and SHIPPED_RESULTS.resolve() != Path(root).resolve():
        out.append(get_store(str(SHIPPED_RESULTS)))
    return out


def entries(root: Path, kind: str, **where: Any) -> list[Entry]:
    """Entries of ``kind`` from the main store, then the shipped store (same key: main wins)."""
    seen: set[str] = set()
    out = []
    for s in stores(root):
        try:
            found = s.query(kind, **where)
        except StoreError as e:
            st.warning(md_escape(f"cannot read the store at {s.root}: {e}"))
            continue
        for e in found:
            if e.key not in seen:
                seen.add(e.key)
                out.append(e)
    return out


def backbone_of(entry: Entry) -> str | None:
    bb = entry.spec.get("backbone")
    return bb.get("spec") if isinstance(bb, dict) else (bb if isinstance(bb, str) else None)


def pick_entry(items: Sequence[Entry], label: str, key: str, *,
               describe: Callable[[Entry], str] | None = None,
               rank: Callable[[Entry], Any] | None = None, help: str | None = None) -> Entry:
    """A selectbox over entries when there are several: ordered by ``rank`` (highest first; default:
    newest), the first one selected, each named by ``describe`` (default: date, a few meta fields,
    key); names that come out the same get the date and key added. ``help``: the selectbox's tooltip."""
    items = sorted(items, key=rank or (lambda e: e.created), reverse=True)
    if len(items) == 1:
        return items[0]

    def when(e: Entry) -> str:
        return f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(e.created))} · {e.key[:10]}"

    def default(e: Entry) -> str:
        m = e.meta
        what = ", ".join(f"{k}={m[k]}" for k in ("prompt_kind", "d", "n_train_tasks") if k in m)
        return f"{when(e)} · {what or e.kind}"

    names = [(describe or default)(e) for e in items]
    if describe is not None:
        names = [n if names.count(n) == 1 else f"{n} · {when(e)}" for n, e in zip(names, items)]
    i = st.selectbox(label, range(len(items)), format_func=lambda i: names[i], key=key, help=help)
    return items[i]


def subspaces(root: Path, names: Sequence[str]) -> list[dict]:
    """The subspaces (``msf`` entries) an intrinsic-tuning job of this suite can use: found on tasks
    all in ``names``; newest first, the main store before the shipped one. Each:
    ``{"key", "d", "kind" (deep/shallow), "n_train", "shipped", "created"}``."""
    out, names = [], set(names)
    shipped = {e.key for e in get_store(str(SHIPPED_RESULTS)).query("msf")} if SHIPPED_RESULTS.is_dir() else set()
    for e in entries(root, "msf"):
        m = e.meta
        train, shape = m.get("train_tasks") or [], m.get("prompt_shape") or []
        if not train or not set(train) <= names or not isinstance(m.get("d"), int):
            continue
        out.append({"key": e.key, "d": m["d"], "kind": "deep" if len(shape) == 3 else "shallow",
                    "n_train": len(train), "shipped": e.key in shipped, "created": e.created})
    return sorted(out, key=lambda s: (s["shipped"], -s["created"]))


def subspace_label(s: dict) -> str:
    return (f"d_I {s['d']} · {s['kind']} prompts · found on {s['n_train']} tasks"
            + (" · shipped demo" if s["shipped"] else f" · {time.strftime('%Y-%m-%d %H:%M', time.localtime(s['created']))}"))


def _count(v: Any) -> int:
    return len(v) if isinstance(v, (list, tuple)) else int(v) if isinstance(v, int) else 0


def sweep_bits(e: Entry, explain: bool = False) -> list[str]:
    """What an IPT sweep is, part by part: ``["d_I 2/8/32", "17 seen / 7 unseen", "deep"]`` (+ seeds, family,
    and each MSF setting it changed from the default, as ``"MSF alpha = 1"``; ``explain`` adds what the
    setting is: ``"MSF alpha = 1 (reconstruction weight)"``)."""
    m = e.meta
    dims = "/".join(str(d) for d in m.get("dims", [])) or "?"
    seeds = _count(m.get("seeds"))
    bits = [f"d_I {dims}", f"{_count(m.get('train_tasks'))} seen / {_count(m.get('test_tasks'))} unseen",
            str(m.get("prompt_kind", "?"))]
    if seeds > 1:
        bits.append(f"{seeds} seeds")
    if m.get("heldout_family"):
        bits.append(f"{m['heldout_family']} held out")
    msf, default = (e.spec.get("settings") or {}).get("msf") or {}, MSFConfig()  # an ablation says what it changed
    if msf.get("norm", default.norm) != default.norm:
        bits.append(f"MSF norm = {msf['norm']}" + (" (prompt normalisation)" if explain else ""))
    if msf.get("alpha", default.alpha) != default.alpha:
        bits.append(f"MSF alpha = {msf['alpha']:g}" + (" (reconstruction weight)" if explain else ""))
    if msf.get("task_loss", default.task_loss) is not default.task_loss:
        bits.append("MSF without task loss")
    return bits


def sweep_label(e: Entry, explain: bool = False) -> str:
    """An IPT sweep named by what it is: ``"d_I 2/8/32 · 17 seen / 7 unseen · deep"`` (see :func:`sweep_bits`)."""
    return " · ".join(sweep_bits(e, explain))


def sweep_rank(e: Entry) -> tuple:
    """The sweep that shows the most first: most dimensions, then most training tasks, then seeds, then newest."""
    m = e.meta
    return (len(m.get("dims", [])), _count(m.get("train_tasks")), _count(m.get("seeds")), e.created)


def headline_pt_runs(pt: Sequence[Entry]) -> list[Entry]:
    """The prompt-tuning runs of the configuration with the most tasks (then runs, then newest): the one
    the Overview's headline and the tour's step 2 show. ``pt`` must not be empty."""
    groups: dict[str, list[Entry]] = {}
    for e in pt:
        groups.setdefault(maps.pt_config_id(e.spec, e.meta), []).append(e)
    return max(groups.values(), key=lambda g: (len({e.meta.get("task") for e in g}), len(g), max(x.created for x in g)))


def with_finished(root: Path, rows: Sequence[dict]) -> list[dict]:
    """An IPT sweep's rows with each IST run's ``finished`` flag (dev accuracy no longer rising over the last
    fifth of the run): a row's own where it has one; for a row stored before the flag was kept, computed from
    the dev curve of the ``ist_run`` entry its ``ist_key`` names (main store, then the shipped one); None
    where that entry is not readable here (not recorded)."""
    if all(isinstance(r.get("finished"), bool) for r in rows):
        return list(rows)
    runs = {e.key: e for e in entries(root, "ist_run")}
    out = []
    for r in rows:
        if isinstance(r.get("finished"), bool):
            out.append(r)
            continue
        e = runs.get(r.get("ist_key"))
        out.append(dict(r, finished=run_finished(e.meta) if e is not None and e.meta.get("dev_curve") else None))
    return out
