"""The sidebar's notice of results the store found corrupt and set aside (drawn on every page).

The store quarantines a corrupt entry (moves it to ``<store>/corrupt/``, see
:mod:`ipt_core.store.quarantine`) and computes it again when a job needs it; before this notice the
user was told nothing (the server log only). Torch-free, like the rest of the sidebar.
"""
from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

from ipt_core.store import quarantine as store_quarantine

SHOWN = 5  # results named in the notice; the rest are counted


def _plain(text: object) -> str:
    """``text`` with markdown's special characters escaped: task names and reasons come from files."""
    return re.sub(r"([\\`*_\[\]#|<>~$])", r"\\\1", str(text))


def _short(reason: str) -> str:
    """``entry.json checksum mismatch (file edited or damaged)`` -> ``checksum mismatch``."""
    short = reason.split(" (", 1)[0].removeprefix("entry.json ").strip()
    return (short or reason)[:80]


def quarantine_notice(root: Path) -> None:
    """A warning in the sidebar naming the corrupt results quarantined since the last dismissal, with a
    button that marks them seen (for everyone using this store: the records live in it)."""
    found = store_quarantine.list_quarantines(root, unseen_only=True)
    if not found:
        return
    n = len(found)
    named = "; ".join(f"{_plain(q['what'])} ({_plain(_short(q['reason']))})" for q in found[:SHOWN])
    more = f"; and {n - SHOWN} more" if n > SHOWN else ""
    sb = st.sidebar
    sb.warning(f"{n} corrupt result{'s were' if n > 1 else ' was'} found and set aside (quarantined in "
               f"{_plain(Path(root) / 'corrupt')}): {named}{more}. {'They' if n > 1 else 'It'} will be recomputed "
               f"when a job needs {'them' if n > 1 else 'it'}; `python -m ipt_core verify` checks the whole store.",
               icon="⚠️")
    if sb.button("Dismiss", key="quarantine-dismiss", help="mark these quarantined results as seen"):
        store_quarantine.mark_seen(root, [q["path"] for q in found])
        st.rerun()
