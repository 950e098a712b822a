"""The app reads no file outside the allowed folders on a store's or a suite's word (issue 32).

Under AppTest, with ``IPT_ALLOWED_ROOTS`` set to one folder: a result whose ``meta["suite"]`` names
a suite outside it (or one whose folder links out) is offered as results only and never read, on
any page; and a typed suite folder with a symlink pointing out is refused with one clear error,
none of the linked file's rows shown. See tests/test_paths.py for the path check itself.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_app import APP, seed_results

SECRET = "zzsecretmarker"  # in every outside file: it must never reach the page (no markdown to escape)
PAGES = ("overview", "tasks", "prompt_tuning", "task_map", "recovery", "stability", "methods")


def plain(text: str) -> str:
    """Text without markdown's escaping backslashes (the app escapes paths in its messages)."""
    return text.replace("\\", "")


def shown(at: AppTest) -> str:
    """Everything the app put on the page (sidebar included), as one lower-cased, unescaped text."""
    out: list[str] = []

    def walk(node) -> None:
        if getattr(node, "proto", None) is not None:
            out.append(str(node.proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    out += [str(df.value) for df in at.dataframe]
    return plain("\n".join(out)).lower()


def plant_outside(outside: Path) -> tuple[Path, Path]:
    """An outside CSV (header and rows carry the marker) and an outside task file (rows that load)."""
    outside.mkdir(parents=True, exist_ok=True)
    csv = outside / "secret.csv"
    csv.write_text(f"{SECRET}_a,{SECRET}_b\n{SECRET} row,x\n")
    rows = outside / "rows.jsonl"
    rows.write_text("".join(json.dumps({"text": f"{SECRET} {i}", "label": "a" if i % 2 else "b"}) + "\n"
                            for i in range(8)))
    return csv, rows


def linked_suite(folder: Path, target: Path) -> Path:
    """A valid one-task suite folder whose ``t1/train.jsonl`` is a symlink to ``target``."""
    task = folder / "t1"
    task.mkdir(parents=True)
    (task / "task.json").write_text(json.dumps({"name": "t1", "type": "topic", "labels": ["a", "b"],
                                                "input_fields": ["text"]}))
    for split in ("dev", "test"):
        (task / f"{split}.jsonl").write_text("".join(json.dumps({"text": f"plain {split} {i}", "label": "ab"[i % 2]})
                                                     + "\n" for i in range(8)))
    (task / "train.jsonl").symlink_to(target)
    return folder


@pytest.fixture
def fenced(tmp_path, monkeypatch, app_env):
    """``inside`` (the only allowed root, holding the store) and ``outside``."""
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    (inside / "store").mkdir(parents=True)
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(inside))
    app_env(inside / "store")
    return inside, outside


@pytest.mark.parametrize("kind", ["outside_csv", "inside_folder_linking_out"])
def test_a_stored_suite_outside_the_roots_is_never_read(fenced, kind):
    """The audit's finding: ``meta["suite"]`` = a CSV outside every allowed folder was offered as a
    loadable suite, and choosing it printed the CSV's first line ("the header is [...]")."""
    inside, outside = fenced
    csv, rows = plant_outside(outside)
    suite = str(csv) if kind == "outside_csv" else str(linked_suite(inside / "suite", rows))
    seed_results(inside / "store", with_pt=False, suite=suite)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception
    options = [o for o in at.selectbox(key="ctx_suite_choice").options if suite in o]
    assert len(options) == 1, options
    # AppTest reruns a page file without the entry script, so the choice is set before the first run
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = options[0]
    at.run()
    assert not at.exception
    assert SECRET not in shown(at), "overview"
    for page in PAGES:
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert SECRET not in shown(at), page
        assert not at.error, (page, [e.value for e in at.error])  # a note, not the loader's error
    assert options == [f"{suite} (results only)"]
    assert at.session_state["ctx_suite"] == suite and at.session_state["ctx_results_only"]
    at.switch_page("pages/overview.py").run()
    assert any("outside the folders this app may read" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["IPT sweeps"] == "1"  # its results are still shown


def test_a_typed_suite_folder_with_a_link_out_is_refused(fenced):
    """The audit's finding: ``t/train.jsonl`` -> a file outside the allowed folders was followed and
    the Tasks page showed its rows."""
    inside, outside = fenced
    _, rows = plant_outside(outside)
    suite = linked_suite(inside / "suite", rows)
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = "Other folder or file…"
    at.session_state["ctx_suite_path"] = str(suite)
    at.run()
    assert not at.exception
    errors = [plain(e.value) for e in at.sidebar.error]
    at.switch_page("pages/tasks.py").run()
    assert not at.exception and SECRET not in shown(at)
    assert len(errors) == 1 and "holds the link" in errors[0] and str(rows) in errors[0], errors
    assert "\n" not in errors[0]  # one clear line
    assert at.session_state["ctx_suite"] == "demo"  # the sidebar falls back to the demo suite
    # the pages check too: a session whose suite was chosen before the link was there (or a page
    # run without the sidebar) shows the refusal as the page's one error, and none of the rows
    at.session_state["ctx_suite"] = str(suite)
    at.run()
    errors = [plain(e.value) for e in at.error]
    assert len(errors) == 1 and "holds the link" in errors[0] and "\n" not in errors[0], errors
    assert SECRET not in shown(at)


def test_a_link_planted_after_the_suite_was_listed_is_caught(fenced):
    """The listing is cached by the folder's mtimes: a file swapped for a link out is seen at once."""
    inside, outside = fenced
    _, rows = plant_outside(outside)
    suite = linked_suite(inside / "suite", inside / "own.jsonl")
    (inside / "own.jsonl").write_text("".join(json.dumps({"text": f"own {i}", "label": "ab"[i % 2]}) + "\n"
                                              for i in range(8)))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = "Other folder or file…"
    at.session_state["ctx_suite_path"] = str(suite)
    at.run()
    at.switch_page("pages/tasks.py").run()
    assert not at.error and at.session_state["ctx_suite"] == str(suite)
    (suite / "t1" / "train.jsonl").unlink()
    (suite / "t1" / "train.jsonl").symlink_to(rows)
    at.run()
    assert any("holds the link" in e.value for e in at.error)
    assert SECRET not in shown(at)
