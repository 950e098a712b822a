"""The app's glossary (issue 31, point 5): one plain-words definition per term, a "Terms on this page"
expander and widget tooltips from it on the Recovery, Stability, Task map and Methods pages; pages
open on a section that has data (the Recovery page's side-by-side sweeps on the shipped results)."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from test_app import app, goto

from ipt_app import glossary

ROOT = Path(__file__).resolve().parents[1]
GLOSSARY_PAGES = ("recovery", "stability", "task_map", "methods", "transfer")
# the widgets whose labels use glossary terms, per page (with the shipped demo results)
KEY_WIDGETS = {
    "recovery": ("rec-entry", "rec-gain", "rec-d", "rec-metric", "rec-cmp-split", "rec-cmp-d", "rec-ipt-dims"),
    "stability": ("stab-task", "stab-traces", "stab-form-d"),
    "task_map": ("map-source", "map-space", "map-projection", "map-k"),
    "methods": ("meth-methods",),
    "transfer": ("tr-target",),
}
REQUIRED_TERMS = ("soft prompt", "prompt tuning (PT)", "zero-shot", "linear probe", "chance", "MSF", "Proj",
                  "Proj_b (decoder)", "IST", "d_I", "found vs random subspace", "seen vs unseen tasks", "recovery",
                  "gain recovery", "alpha", "norm", "shallow vs deep prompts", "ATTEMPT", "VIP", "dev/test split")


def test_glossary_defines_every_term_in_one_line():
    assert set(REQUIRED_TERMS) <= set(glossary.TERMS)
    for term, text in glossary.TERMS.items():
        assert text.strip() and "\n" not in text and len(text) <= 160, term
    for page in GLOSSARY_PAGES:
        assert glossary.PAGE_TERMS[page], page
        assert set(glossary.PAGE_TERMS[page]) <= set(glossary.TERMS), page  # every listed term is defined
    assert "reconstruction weight" in glossary.define("alpha") and "(IST − zero-shot)" in glossary.define("gain recovery")
    assert glossary.help_for("d_I", lead="x").startswith("x\n\n**d_I**: ")
    with pytest.raises(KeyError):
        glossary.define("no such term")


def test_glossary_imports_neither_torch_nor_streamlit():
    tree = ast.parse((ROOT / "ipt_app" / "glossary.py").read_text(encoding="utf-8"))
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {m for m in names if m.split(".")[0] in ("torch", "streamlit", "ipt_core", "ipt_app")}, names
    assert not {m for m in names if m.split(".")[0] not in ("__future__", "typing")}, names
    # and the package it lives in imports nothing heavy either
    init = ast.parse((ROOT / "ipt_app" / "__init__.py").read_text(encoding="utf-8"))
    assert not [n for n in ast.walk(init) if isinstance(n, (ast.Import, ast.ImportFrom))]


def _help(at, key: str) -> str:
    for kind in ("selectbox", "multiselect", "radio", "select_slider", "slider", "checkbox", "toggle", "text_input",
                 "number_input"):
        for w in getattr(at, kind):
            if w.key == key:
                return w.proto.help
    raise AssertionError(f"no widget {key!r}")


def test_recovery_opens_its_side_by_side_sweeps_on_data(shipped_root):
    """The shipped sweeps have dev-split scores and share the task map's d_I: the section opens on the
    dev split (where settings are chosen) at that d_I, and the test split has the same bars."""
    from ipt_core.experiments.ipt import shipped_store

    [tmap] = shipped_store().query("task_map")
    at = goto(app(), "recovery")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not any("No sweep" in i.value for i in at.info), [i.value for i in at.info]
    assert at.radio(key="rec-cmp-split").value == "dev"
    assert at.select_slider(key="rec-cmp-d").value == tmap.meta["d"]

    def bars(at) -> set[str]:
        spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Sweeps side by side" in c.proto.spec)
        return {x for trace in spec["data"] for x in trace["x"]}

    dev = bars(at)
    assert len(dev) == 4  # all four shipped sweeps have that d_I
    assert all(len(line) <= 45 for x in dev for line in x.split("<br>")), dev  # short lines: no truncation
    captions = " ".join(c.value for c in at.caption).replace("\\", "")  # markdown escapes
    assert "Read the **dev** split to choose a setting" in captions and "All these sweeps: deep" in captions, captions
    at.radio(key="rec-cmp-split").set_value("test").run()
    assert not at.exception and not at.error and bars(at) == dev


@pytest.mark.parametrize("page", GLOSSARY_PAGES)
def test_pages_list_their_terms_and_explain_their_widgets(shipped_root, page):
    at = goto(app(), page)
    assert not at.exception and not at.error, [e.value for e in at.error]
    [exp] = [e for e in at.expander if e.label == "Terms on this page"]
    text = " ".join(m.value for m in exp.markdown)
    for term in glossary.PAGE_TERMS[page]:
        assert f"**{term}**: {glossary.define(term)}" in text, term
    for key in KEY_WIDGETS[page]:
        assert _help(at, key).strip(), key
    if page == "task_map":
        assert "Proj of the prompts" not in " ".join(str(o) for o in at.radio(key="map-space").options)
