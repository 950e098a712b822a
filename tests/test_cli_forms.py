"""The app's launch forms against the CLI's boundary, under AppTest: random values in every number and
text input of a form (inside and outside the widget's bounds, unicode, empty), random task choices,
then its queue button. The page must show no exception, and a job it queues must be a command the CLI
accepts (``cli.refusal(argv) is None``): a form can offer only what the CLI's limits allow.

Volume: ``IPT_FORM_FUZZ_EXAMPLES`` per form (default 6: 5 forms, 30 cases in CI).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from ipt_core import jobs
from ipt_core.cli import main as cli

APP = str(Path(__file__).resolve().parent.parent / "app.py")
pytestmark = pytest.mark.slow  # the app under AppTest, 30 reruns of its pages
N_EXAMPLES = int(os.environ.get("IPT_FORM_FUZZ_EXAMPLES", "6"))
# page, key prefix of the form's widgets, its queue button
FORMS = [("prompt_tuning", "pt-tune", "Queue prompt tuning"), ("recovery", "rec-ipt", "Queue IPT sweep"),
         ("recovery", "rec-ist", "Queue intrinsic tuning"), ("stability", "stab-form", "Queue stability run"),
         ("methods", "meth", "Queue comparison")]
TEXTS = ["", " ", "4,16", "2,8,32", "0", "-1", "1e3", "nan", "inf", "x", "4,,8", "٣", "é,ü", "99999999999", ",", "1,1,1"]


@pytest.fixture(scope="module")
def store_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("forms")
    mp = pytest.MonkeyPatch()
    mp.setenv("IPT_CACHE", str(root))
    mp.setenv("IPT_JOBS_AUTOSTART", "0")  # nothing runs: the test reads the queued commands
    mp.delenv("IPT_SHIPPED_RESULTS", raising=False)  # the shipped demo subspaces: the IST form needs one
    yield root
    mp.undo()


def _widgets(at: AppTest, kind: str, prefix: str) -> list:
    return [w for w in getattr(at, kind) if (w.key or "").startswith(prefix + "-")]


def _number(w) -> st.SearchStrategy:
    lo, hi = getattr(w, "min", None), getattr(w, "max", None)
    is_int = isinstance(w.value, int)
    near = []
    for b in (lo, hi):
        if b is not None:
            near += [b, b - 1, b + 1] if is_int else [b, b * 0.5, b * 2, -b]
    ints = st.integers(-10**6, 10**9)
    vals = st.sampled_from(near) | ints if near else ints
    return vals if is_int else vals.map(float) | st.floats(-1e6, 1e6, allow_nan=False)


def _button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}: {[b.label for b in at.button]}"
    return found[0]


@pytest.mark.parametrize("page,prefix,label", FORMS)
def test_what_a_form_queues_the_cli_accepts(store_root, page, prefix, label):
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    _button(at, label)  # the form is there

    checked = []

    @settings(max_examples=N_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        before = {j.id for j in jobs.list_jobs(store_root)}
        for w in _widgets(at, "number_input", prefix):
            if data.draw(st.booleans(), label=f"set {w.key}"):
                w.set_value(data.draw(_number(w), label=w.key))
        for w in _widgets(at, "text_input", prefix):
            w.set_value(data.draw(st.sampled_from(["4,16", "2,8,32", "8", "1,64", "4096"]) | st.sampled_from(TEXTS)
                                  | st.text(max_size=8), label=w.key))
        for w in _widgets(at, "multiselect", prefix):
            if w.options and data.draw(st.booleans(), label=f"choose {w.key}"):
                w.set_value(data.draw(st.lists(st.sampled_from(list(w.options)), max_size=4, unique=True), label=w.key))
        _button(at, label).click()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        for job in jobs.list_jobs(store_root):
            if job.id not in before:  # every job runs `python -m ipt_core <argv>` (umap included)
                assert cli.refusal(list(job.argv)) is None, (job.argv, cli.refusal(list(job.argv)))
                checked.append(job.argv)

    fuzz()
    # the defaults queue a job the CLI accepts too (and show that the check above sees queued jobs)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(f"pages/{page}.py").run()
    before = {j.id for j in jobs.list_jobs(store_root)}
    _button(at, label).click()
    at.run()
    new = [j for j in jobs.list_jobs(store_root) if j.id not in before]
    print(f"{page}/{prefix}: {len(checked)} fuzzed jobs queued and accepted; defaults queued {len(new)}")
    for job in new:
        assert cli.refusal(list(job.argv)) is None, job.argv
