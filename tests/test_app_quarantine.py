"""The app tells the user when the store found results corrupt and set them aside (issue 32): a
hostile entry does not take the pages down, the sidebar names what was quarantined and why, and a
button dismisses the notice (for this store: the records are marked seen)."""
from __future__ import annotations

from pathlib import Path

import torch
from streamlit.testing.v1 import AppTest

from ipt_core.store import Store
from ipt_core.store.quarantine import list_quarantines

APP = str(Path(__file__).resolve().parent.parent / "app.py")
NOTICE = "found and set aside"


def _notices(at: AppTest) -> list[str]:
    return [w.value.replace("\\", "") for w in at.sidebar.warning if NOTICE in w.value]


def _damaged_store(root: Path) -> tuple:
    store = Store(root)
    spec = {"method": "pt", "task": "sms_spam", "seed": 0, "backbone": {"spec": "encoder-sim"}}
    a = store.put("pt_run", spec, {"task": "sms_spam", "seed": 0, "test_acc": 0.8}, {"prompt": torch.ones(2, 4)})
    b = store.put("pt_run", spec | {"seed": 1}, {"task": "sms_spam", "seed": 1, "test_acc": 0.7},
                  {"prompt": torch.ones(2, 4)})
    ok = store.put("zero_shot", {"method": "zero_shot", "task": "sms_spam"}, {"test_acc": 0.5})
    (a.path / "entry.json").write_text("[" * 100000 + "]" * 100000)  # a RecursionError for json.loads
    t = b.path / "tensors.safetensors"
    t.write_bytes(t.read_bytes()[:-4])
    return a, b, ok


def test_quarantined_results_are_named_in_the_sidebar_until_dismissed(store_root):
    a, b, ok = _damaged_store(store_root)
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]  # one hostile entry no longer takes every page down
    [text] = _notices(at)
    assert text.startswith("2 corrupt results were found and set aside")
    assert str(store_root / "corrupt") in text and "will be recomputed" in text
    assert "pt_run sms_spam seed 1 (tensors.safetensors sha256 mismatch)" in text
    assert f"entry {a.key[:12]} (is nested too deeply to parse)" in text
    assert not a.path.exists() and not b.path.exists() and Store(store_root).get(ok.key) == ok
    # (AppTest keeps the sidebar of a session's first run only: each check below is a new session)
    assert len(_notices(_fresh())) == 1  # shown again until dismissed
    # the button, in a script of the notice alone (AppTest loses app.py's sidebar when the click reruns it)
    notice = AppTest.from_function(_notice_only, default_timeout=30)
    notice.run()
    assert len(_notices(notice)) == 1
    [dismiss] = [x for x in notice.sidebar.button if x.key == "quarantine-dismiss"]
    dismiss.click().run()
    assert not notice.exception and _notices(notice) == []
    assert list_quarantines(store_root, unseen_only=True) == [] and len(list_quarantines(store_root)) == 2
    assert _notices(_fresh()) == []
    # a new quarantine is news again
    c = Store(store_root).put("probe", {"method": "probe", "task": "sms_spam"}, {"test_acc": 0.6})
    (c.path / "entry.json").write_text('{"kind": "probe", "spec": {"task": "sms_spam"}, "meta": []}')
    assert Store(store_root).get(c.key) is None
    [text] = _notices(_fresh())
    assert text.startswith("1 corrupt result was found") and "probe sms_spam (lacks fields" in text


def _notice_only() -> None:
    import os
    from pathlib import Path

    from ipt_app.quarantine_notice import quarantine_notice

    quarantine_notice(Path(os.environ["IPT_CACHE"]))


def _fresh() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_sidebar_notice_does_not_import_torch():
    import ast

    src = (Path(__file__).resolve().parent.parent / "ipt_app" / "quarantine_notice.py").read_text()
    mods = {n.module for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Import) for a in n.names}
    assert mods <= {"__future__", "re", "pathlib", "streamlit", "ipt_core.store"}, mods
