"""The page "Which task helps which" (pages/transfer.py) under AppTest: a store with a synthetic transfer
report in the new format, an empty store, an old-format report (the shipped demo report before the ranking
metrics), the task map's selection as the form's targets, and the form's command."""
from __future__ import annotations

import pytest
from test_app import app, goto, seed_results
from test_transfer_figures import fake_report, old_report

from ipt_app.forms_transfer import PICKED_KEY, transfer_argv
from ipt_core import jobs
from ipt_core.store import Store
from ipt_core.tasks import load_suite

COMMAND = "python -m ipt_core transfer --suite demo --targets a,b,c --steps 20 --seeds 2"


def put_report(root, meta: dict, *, tag: str = "new", command: str = COMMAND) -> None:
    Store(root).put("transfer_report", {"method": "transfer_report", "suite": "demo", "synthetic": tag}, meta,
                    command=command)


def texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def test_a_synthetic_report_renders_every_view(store_root):
    put_report(store_root, fake_report(3, 23))
    at = goto(app(), "transfer")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Which task helps which"
    assert len(at.get("plotly_chart")) >= 4  # top-k curve, gain matrix, ranked sources, gain against similarity
    metrics = next(t.value for t in at.table if "NDCG@3" in t.value.columns)
    assert metrics.index[-1] == "random order (expected)" and len(metrics) == 8  # 7 measures + random
    assert "Noise ceiling" in texts(at) and "Cosine of the two tasks' trained prompts" in texts(at)
    assert any(COMMAND in c.value for c in at.code)  # every view names its command
    assert len(at.get("download_button")) >= 4
    target = at.selectbox(key="tr-target")
    target.set_value(target.options[-1]).run()
    assert not at.exception and not at.error
    ranked = next(d.value for d in at.dataframe if "oracle_rank" in d.value.columns)
    assert ranked["gain_points"].is_monotonic_decreasing and "gain_seed_1" in ranked.columns


def test_several_reports_get_a_selectbox_newest_first(store_root):
    put_report(store_root, fake_report(2, 6, seeds=1), tag="first", command=COMMAND.replace("--seeds 2", "--seeds 1"))
    put_report(store_root, fake_report(3, 8), tag="second")
    at = goto(app(), "transfer")
    assert not at.exception and not at.error
    pick = at.selectbox(key="tr-entry")
    assert len(pick.options) == 2 and "--seeds 2" in pick.options[0] and "targets" in pick.options[0]
    pick.set_value(pick.options[1]).run()
    assert not at.exception and not at.error
    assert "not measured" in texts(at)  # one seed: no noise ceiling, and the page says why


def test_an_empty_store_says_what_the_view_needs(store_root):
    at = goto(app(), "transfer")
    assert not at.exception and not at.error
    assert any("needs one `transfer` run" in i.value for i in at.info)
    assert any("python -m ipt_core transfer --suite demo" in c.value for c in at.code)
    assert at.multiselect(key="transfer-form-targets") is not None  # the job form is there
    assert not at.get("plotly_chart")


def test_an_old_format_report_does_not_crash(store_root):
    put_report(store_root, old_report(), tag="old")
    at = goto(app(), "transfer")
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = next(t.value for t in at.table if "NDCG@3" in t.value.columns)
    assert "raw prompt" in metrics.index and "random order (expected)" in metrics.index
    assert "no description stored" in texts(at) and "not measured" in texts(at)
    assert at.get("plotly_chart")


def test_the_shipped_report_draws(shipped_root):
    at = goto(app(), "transfer")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.get("plotly_chart")


def test_the_form_opens_on_the_task_maps_selection_and_queues_the_command(store_root):
    names = load_suite("demo").names()
    at = app()
    at.session_state[PICKED_KEY] = names[:2]
    goto(at, "transfer")
    form = at.multiselect(key="transfer-form-targets")
    assert form.value == names[:2]
    assert at.multiselect(key="transfer-form-sources").value == names  # every task: the command's default
    at.number_input(key="transfer-form-steps").set_value(5).run()
    at.button(key="transfer-form-go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    job = [j for j in jobs.list_jobs(store_root) if j.argv[0] == "transfer"][0]
    assert list(job.argv[:5]) == ["transfer", "--suite", "demo", "--targets", ",".join(names[:2])]
    assert "--sources" not in job.argv and job.argv[job.argv.index("--steps") + 1] == "5"
    assert job.argv[job.argv.index("--seeds") + 1] == "2"
    jobs.cancel(store_root, job.id)


@pytest.mark.slow  # the task map page drawn with vectors: ~3 s
def test_the_task_map_button_fills_the_transfer_targets(store_root):
    seed_results(store_root)
    at = goto(app(), "task_map")
    names = list(at.multiselect(key="map-selected").options)  # the tasks of the map the page opens on
    assert len(names) >= 3
    at.multiselect(key="map-selected").set_value(names[:3]).run()
    at.button(key="map-to-transfer").click().run()
    assert not at.exception and not at.error
    assert at.session_state[PICKED_KEY] == names[:3]
    goto(at, "transfer")
    assert at.multiselect(key="transfer-form-targets").value == names[:3]


def test_transfer_argv():
    names = ["a", "b", "c", "d"]
    assert transfer_argv("demo", ["a", "b"], names, steps=20, seeds=2, names=names) == \
        ["transfer", "--suite", "demo", "--targets", "a,b", "--steps", "20", "--seeds", "2"]
    assert transfer_argv("demo", ["a"], ["c", "b"], steps=7, seeds=1, names=names, flags=["--device", "cpu"]) == \
        ["transfer", "--suite", "demo", "--targets", "a", "--sources", "c,b", "--steps", "7", "--seeds", "1",
         "--device", "cpu"]
    for targets, sources, phrase in (([], names, "target"), (["a"], [], "source"), (["a"], ["a"], "other than itself")):
        with pytest.raises(ValueError, match=phrase):
            transfer_argv("demo", targets, sources, steps=5, seeds=1, names=names)


def test_the_estimate_counts_the_transfer_runs_and_the_source_prompts():
    from ipt_app.cost import TIMED_COMMANDS, estimate

    est = estimate(["transfer", "--suite", "demo", "--targets", "a,b", "--sources", "a,c,d", "--steps", "20",
                    "--batch-size", "4"], n_suite_tasks=24, rate=40.0)
    src, runs = est.stages
    assert src.rows == 4 * 60 * 4  # a, b, c, d: one PT prompt each, --source-steps 60, unknown to be stored
    assert runs.rows == (2 + 1 + 3 + 1) * 20 * 4  # a from c, d and the default; b from a, c, d and the default
    est = estimate(["transfer", "--suite", "demo", "--targets", "a,b", "--steps", "20", "--batch-size", "4"],
                   n_suite_tasks=24, rate=40.0)
    assert est.stages[1].rows == 2 * 24 * 20 * 4 and est.stages[0].rows == 24 * 60 * 4  # every other task a source
    assert "transfer" in TIMED_COMMANDS
