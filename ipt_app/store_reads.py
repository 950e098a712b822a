"""Reading results: the main store first, then the read-only demo store shipped with the package.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Sequence

import streamlit as st

from ipt_core import store as store_mod

SHIPPED_ROOT = Path(store_mod.__file__).resolve().parent / "shipped_results"


@st.cache_resource(show_spinner=False)
def get_store(root: str) -> store_mod.Store:
    """One Store per root for the whole server: it caches parsed entries between reruns."""
    return store_mod.Store(root)


def stores(root: Path) -> list[store_mod.Store]:
    """The main store, then the demo results shipped with the package (``IPT_SHIPPED_RESULTS=0``: main only)."""
    out = [get_store(str(root))]
    shipped_on = os.environ.get("IPT_SHIPPED_RESULTS", "1") != "0"
    if shipped_on and SHIPPED_ROOT.is_dir() and SHIPPED_ROOT.resolve() != Path(root).resolve():
        out.append(get_store(str(SHIPPED_ROOT)))
    return out


def entries(root: Path, kind: str, **where: Any) -> list[store_mod.Entry]:
    """Entries of ``kind`` from the main store, then the shipped store (same key: main wins)."""
    seen: set[str] = set()
    out = []
    for s in stores(root):
        try:
            found = s.query(kind, **where)
        except store_mod.StoreError as e:
            st.warning(f"cannot read the store at {s.root}: {e}")
            continue
        for e in found:
            if e.key not in seen:
                seen.add(e.key)
                out.append(e)
    return out


def backbone_of(entry: store_mod.Entry) -> str | None:
    bb = entry.spec.get("backbone")
    return bb.get("spec") if isinstance(bb, dict) else (bb if isinstance(bb, str) else None)


def pick_entry(items: Sequence[store_mod.Entry], label: str, key: str) -> store_mod.Entry:
    """A selectbox over entries (newest first) when there are several."""
    items = sorted(items, key=lambda e: e.created, reverse=True)
    if len(items) == 1:
        return items[0]
    def fmt(i: int) -> str:
        e = items[i]
        m = e.meta
        what = ", ".join(f"{k}={m[k]}" for k in ("prompt_kind", "d", "n_train_tasks") if k in m)
        return f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(e.created))} · {what or e.kind} · {e.key[:10]}"

    i = st.selectbox(label, range(len(items)), format_func=fmt, key=key)
    return items[i]
