"""The Streamlit app under AppTest: every page renders (with results and on an empty store), its
widgets are there, forms queue the right jobs, and a job submitted from a form lands in the store.

AppTest sees plotly charts only as opaque elements; the figures are tested in test_figures.py.
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from ipt_core import jobs
from ipt_core.analysis import maps
from ipt_core.store import Store
from ipt_core.tasks import demo_suite_path, load_suite

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGES = ["overview", "tour", "tasks", "prompt_tuning", "task_map", "transfer", "recovery", "stability", "methods", "jobs"]
BACKBONE = {"spec": "encoder-sim", "kind": "encoder-sim", "weights": "fake", "max_length": 128, "temperature": 0.05}


def seed_results(root: Path, *, with_pt: bool = True, suite: str = "demo") -> None:
    """Synthetic entries of every kind the pages read (no training): shapes as the core writes them."""
    store = Store(root)
    demo = load_suite("demo")
    names, fams = demo.names(), [t.type for t in demo.tasks]
    rng = np.random.default_rng(0)
    if with_pt:
        for t, fam in list(zip(names, fams))[:6]:
            data = demo.task(t).data_hash()
            for seed in range(2):
                acc = float(0.6 + rng.random() * 0.3)
                store.put("pt_run", {"method": "pt", "code_version": "pt-1", "backbone": BACKBONE, "task": t,
                                     "task_data": data, "seed": seed,
                                     "config": {"n_tokens": 2, "kind": "shallow", "lr": 0.01, "steps": 3, "batch_size": 4}},
                          {"task": t, "family": fam, "labels": list(demo.task(t).labels), "seed": seed, "status": "done",
                           "best_step": 3, "dev_acc": acc, "dev_f1": acc, "test_acc": acc, "test_f1": acc,
                           "dev_curve": [[0, 0.5], [3, acc]], "loss_curve": [[1, 0.7], [3, 0.5]], "bank_seconds": 1.0,
                           "bank_size": 12, "device": "cpu", "test_pred": [0, 1], "k": None, "data_seed": None},
                          {"prompt": torch.randn(2, 8, generator=torch.Generator().manual_seed(100 * names.index(t) + seed))},
                          command=f"python -m ipt_core tune --suite {suite} --steps 3")
            for kind, acc in (("zero_shot", 0.5), ("probe", 0.65)):
                store.put(kind, {"method": kind, "code_version": "baselines-1", "backbone": BACKBONE, "task": t,
                                 "task_data": data},
                          {"task": t, "family": fam, "dev_acc": acc, "dev_f1": acc, "test_acc": acc, "test_f1": acc},
                          command=f"python -m ipt_core probe --suite {suite}")
    train, test = names[:18], names[18:]
    rows = []
    for d in (4, 16, 64):
        for setting, tl in (("seen", train), ("unseen", test)):
            for sub in ("found", "random"):
                for t in tl:
                    for seed in range(2):
                        pt, zs = 0.7, 0.5
                        ist = zs + (pt - zs) * d / (80 if sub == "found" else 200) + rng.normal() * 0.01
                        rows.append({"d": d, "setting": setting, "subspace": sub, "task": t,
                                     "family": fams[names.index(t)], "seed": seed, "ist_test_acc": ist,
                                     "pt_test_acc": pt, "zero_shot_test_acc": zs, "recovery": ist / pt,
                                     "gain_recovery": (ist - zs) / (pt - zs)})
    store.put("ipt_dims", {"method": "ipt_dims", "suite": suite, "synthetic": 1},
              {"suite": suite, "prompt_kind": "shallow", "train_tasks": train, "test_tasks": test, "dims": [4, 16, 64],
               "seeds": [0, 1], "rows": rows}, command=f"python -m ipt_core ipt --suite {suite} --dims 4,16,64")
    store.put("ipt_task_count", {"method": "ipt_task_count", "suite": suite, "synthetic": 1},
              {"suite": suite, "rows": [dict(r, n_train_tasks=n) for n in (4, 8) for r in rows if r["d"] == 16]},
              command=f"python -m ipt_core ipt --suite {suite} --task-counts 4,8")
    for fam in ("spam", "sentiment"):
        held = [n for n, f in zip(names, fams) if f == fam]
        store.put("ipt_heldout_family", {"method": "ipt_heldout_family", "family": fam, "suite": suite, "synthetic": 1},
                  {"suite": suite, "d": 16, "heldout_family": fam, "test_tasks": held,
                   "rows": [dict(r, setting="unseen", heldout_family=fam) for r in rows
                            if r["d"] == 16 and r["task"] in held and r["setting"] == "unseen"]
                   or [dict(r, task=held[0], setting="unseen", heldout_family=fam) for r in rows if r["d"] == 16][:8]},
                  command=f"python -m ipt_core pipeline --suite {suite}")
    curves = [{"task": t, "seed": s, "init": init, "steps": [0, 10, 20],
               "dev_acc": [0.5, 0.6 + rng.random() * 0.1, 0.7 + (init == "ist") * 0.05]}
              for t in names[:2] for s in range(3) for init in ("random", "ist")]
    store.put("ipt_stability", {"method": "ipt_stability", "suite": suite, "synthetic": 1},
              {"suite": suite, "tasks": names[:2], "seeds": [0, 1, 2], "d": 16, "curves": curves,
               "final": [{"task": t, "init": i, "mean": 0.7, "std": 0.02} for t in names[:2] for i in ("random", "ist")]},
              command=f"python -m ipt_core stability --suite {suite} --tasks {names[0]} --seeds 3 --d 16")
    T = len(names)
    store.put("task_map", {"method": "task_map", "suite": suite, "synthetic": 1},
              {"suite": suite, "prompt_kind": "shallow", "tasks": names, "families": fams,
               "spaces": ["prompt", "intrinsic", "ist"], "umap": {"prompt": None, "intrinsic": None, "ist": None}},
              {"prompt": torch.randn(T, 16), "intrinsic": torch.randn(T, 4),
               "ist": torch.cat([torch.full((1, 4), float("nan")), torch.randn(T - 1, 4)])},  # task 0: no IST run
              command=f"python -m ipt_core ipt --suite {suite} --dims 4")
    store.put("method_compare", {"method": "method_compare", "suite": suite, "synthetic": 1},
              {"suite": suite, "methods": ["pt", "attempt", "vip"],
               "rows": [{"method": m, "task": t, "seed": s, "test_acc": float(0.5 + rng.random() * 0.3), "test_f1": 0.5,
                         "trainable_params": 1000, "seconds": 3.0} for m in ("pt", "attempt", "vip") for t in names[:4]
                        for s in range(2)],
               "attempt_attention": {"targets": names[:2], "sources": names[2:5], "weights": [[0.2, 0.3, 0.5]] * 2},
               "vip_codebook_usage": [0.25] * 4},
              command=f"python -m ipt_core compare --suite {suite}")


@pytest.mark.slow  # five pages on the shipped results: ~3.6 s (load 1.5)
def test_first_open_shows_the_shipped_demo_results(shipped_root):
    at = app()
    for page in ("recovery", "stability", "task_map", "prompt_tuning", "methods"):
        goto(at, page)
        assert not at.exception and not at.error, page
        assert at.get("plotly_chart"), f"{page} shows no chart from the shipped results"
        made_by = "compare --suite demo" if page == "methods" else "pipeline --suite demo"
        assert any(f"python -m ipt_core {made_by}" in c.value for c in at.code), page
    assert not list(shipped_root.glob("objects/*"))  # nothing was trained or written on page load


def test_guided_tour_walks_through_the_shipped_results(shipped_root):
    """On a fresh clone (shipped demo results only) every step of the tour has its heading, its chart or
    table, and the command that reproduces it (tests/test_layers.py checks it imports no training code)."""
    at = goto(app(), "tour")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.title[0].value == "Guided tour"
    assert len(at.tabs) == 6
    for i, tab in enumerate(at.tabs, start=1):
        assert tab.subheader and tab.subheader[0].value.startswith(f"Step {i}:"), (i, [h.value for h in tab.subheader])
        assert tab.get("plotly_chart") or tab.dataframe, f"step {i} shows no chart or table"
        assert any(c.value.startswith("python -m ipt_core ") for c in tab.code), f"step {i} has no command"
    text = " ".join(m.value for m in at.markdown)
    for term in ("soft prompt", "Zero-shot", "Linear probe", "MSF", "IST", "d_I", "gain recovery = (IST − zero-shot)"):
        assert term in text, term  # every term is defined where the tour first uses it
    commands = [c.value for c in at.code]
    assert any("pipeline --suite demo" in c for c in commands) and any("transfer --suite demo" in c for c in commands)
    assert not list(shipped_root.glob("objects/*"))  # it only read the store


@pytest.fixture(scope="module")
def seeded_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeded")
    seed_results(root)
    return root


@pytest.fixture
def seeded(seeded_dir, app_env):
    return app_env(seeded_dir, shipped=True)


def app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=90)
    at.run()
    assert not at.exception, at.exception
    return at


def goto(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def keys(at: AppTest) -> set[str]:
    out = set()
    for kind in ("selectbox", "multiselect", "radio", "button", "checkbox", "text_input", "number_input",
                 "select_slider", "slider"):
        out.update(w.key for w in getattr(at, kind) if w.key)
    return out


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


# --------------------------------------------------------------------------------------------------


def test_sidebar_and_navigation(seeded):
    at = app()
    assert at.title[0].value == "Intrinsic task subspace explorer"  # Overview is the default page
    assert {"ctx_root_input", "ctx_suite_choice", "ctx_backbone_choice"} <= keys(at)
    assert at.selectbox(key="ctx_suite_choice").value == "demo"
    assert at.text_input(key="ctx_root_input").value == str(seeded)
    assert any("Device:" in m.value for m in at.sidebar.markdown)
    assert not at.error


EXPECTED = {
    "overview": ({"Prompt-tuning runs"}, set()),
    "tour": (set(), set()),
    "tasks": ({"Tasks"}, {"tasks-example-task", "upload-name", "upload-overwrite"}),
    "prompt_tuning": ({"PT mean test acc"}, {"pt-config", "pt-curve-tasks", "pt-tune-tasks", "pt-tune-steps", "pt-probe"}),
    "task_map": (set(), {"map-source", "map-space", "map-projection", "map-selected", "map-k"}),
    "transfer": (set(), {"tr-target", "transfer-form-targets", "transfer-form-sources", "transfer-form-steps"}),
    "recovery": (set(), {"rec-ref", "rec-d", "rec-metric", "rec-ipt-train", "rec-ipt-test", "rec-ipt-dims"}),
    "stability": (set(), {"stab-task", "stab-traces", "stab-form-tasks", "stab-form-seeds", "stab-form-d"}),
    "methods": (set(), {"meth-tasks", "meth-methods", "meth-seeds", "meth-steps"}),
    "jobs": (set(), {"jobs-tune-tasks", "jobs-ipt-dims", "jobs-stab-d"}),
}


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_with_results(seeded, page):
    at = goto(app(), page)
    assert not at.error, [e.value for e in at.error]
    metrics, widget_keys = EXPECTED[page]
    assert metrics <= {m.label for m in at.metric}
    assert widget_keys <= keys(at), widget_keys - keys(at)
    if page == "overview":  # a headline table first (fast first paint), the chart on request
        assert any("mean test accuracy" in m.value and "chance" in m.value for m in at.markdown)
        assert at.get("download_button") and not at.get("plotly_chart")
        at.toggle(key="ov-show-chart").set_value(True).run()
        assert not at.exception and at.get("plotly_chart")
    if page in ("overview", "tour", "prompt_tuning", "task_map", "transfer", "recovery", "stability", "methods"):
        # charts come with the command that reproduces them and a CSV download
        assert any("python -m ipt_core" in c.value for c in at.code), page
        assert at.get("download_button"), page


def test_every_page_renders_on_an_empty_store(store_root):
    at = app()
    for page in PAGES:
        goto(at, page)
        assert not at.error, (page, [e.value for e in at.error])
        if page in ("overview", "tour", "prompt_tuning", "task_map", "transfer", "recovery", "stability", "methods"):
            assert at.info, f"{page} says nothing about what to run"
            assert any("python -m ipt_core" in c.value for c in at.code), page


@pytest.mark.slow  # the task map page redrawn in every space: ~3.7 s (load 1.5)
def test_task_map_neighbours_and_spaces(seeded):
    at = goto(app(), "task_map")
    at.multiselect(key="map-selected").set_value(["sms_spam", "movie_sentiment"]).run()
    assert not at.exception
    nn = [d.value for d in at.dataframe if "neighbour" in d.value.columns]
    assert nn and set(nn[0]["task"]) == {"sms_spam", "movie_sentiment"}
    assert (nn[0]["task"] != nn[0]["neighbour"]).all()
    at.radio(key="map-space").set_value("intrinsic").run()
    assert not at.exception and not at.error
    at.radio(key="map-space").set_value("ist").run()  # a task without a vector there is left out, not an error
    assert not at.exception and not at.error
    assert any("Left out" in c.value and load_suite("demo").names()[0] in c.value for c in at.caption)
    # the raw-prompt fallback from pt_run entries (no task_map needed)
    source = at.selectbox(key="map-source")
    pt_index = [i for i in source.options if "PT prompts" in i]
    assert pt_index
    source.set_value(source.options.index(pt_index[0])).run()
    assert not at.exception and not at.error


@pytest.mark.slow  # the task map page drawn seven times: ~3.8 s (load 1.5)
def test_task_map_umap_runs_as_a_job_or_comes_from_the_store(seeded):
    at = goto(app(), "task_map")
    at.radio(key="map-space").set_value("prompt").run()  # the page opens on the best-scoring space
    at.radio(key="map-projection").set_value("UMAP").run()
    assert any("UMAP" in i.value for i in at.info)
    at.button(key="map-umap-job").click().run()
    assert not at.exception
    job = [j for j in jobs.list_jobs(seeded) if j.argv[0] == "umap"][0]
    entry = Store(seeded).query("task_map")[0]
    assert job.argv[:5] == ("umap", "--entry", entry.key, "--space", "prompt")
    jobs.cancel(seeded, job.id)
    # coordinates stored for exactly these vectors are shown, with no job offered
    x = entry.tensor("prompt").float().numpy().astype(np.float64)
    names = entry.meta["tasks"]
    Store(seeded).put("task_map_umap", maps.umap_spec(maps.vectors_fingerprint(x, names)),
                      {"tasks": names, "coords": np.random.default_rng(0).normal(size=(len(names), 2)).tolist()},
                      command="python -m ipt_core umap --entry K --space prompt")
    at = goto(app(), "task_map")
    at.radio(key="map-space").set_value("prompt").run()
    at.radio(key="map-projection").set_value("UMAP").run()
    assert not any(b.key == "map-umap-job" for b in at.button)
    assert any("ipt_core umap" in c.value for c in at.code)


@pytest.mark.slow  # a job subprocess loads the real model
def test_umap_job_from_pt_prompts_end_to_end(store_root):
    """The page and the UMAP job build the same vectors (fingerprint): the job's coordinates show up."""
    tmp_path = store_root
    seed_results(tmp_path)
    at = goto(app(), "task_map")
    source = at.selectbox(key="map-source")
    source.set_value(next(i for i, label in enumerate(source.options) if "PT prompts" in label)).run()
    at.radio(key="map-projection").set_value("UMAP").run()
    at.button(key="map-umap-job").click().run()
    [job] = [j for j in jobs.list_jobs(tmp_path) if j.argv[0] == "umap"]
    assert job.argv[:3] == ("umap", "--suite", "demo") and "--pt-config" in job.argv
    at.run()
    assert at.button(key="map-umap-job").disabled  # no second job for the same vectors
    done = jobs.run_job_inline(tmp_path, job.id)
    assert done.status == "done", jobs.log_tail(done, 20)
    at.run()
    assert not any(b.key == "map-umap-job" for b in at.button)
    assert any("python -m ipt_core umap --suite demo" in c.value for c in at.code)


@pytest.mark.slow  # a job subprocess loads the real model
def test_tune_form_job_lands_in_the_store(store_root):
    """The one test that trains: 1 task x 1 seed x 2 steps of a shallow prompt on the real model."""
    at = goto(app(), "prompt_tuning")
    at.multiselect(key="pt-tune-tasks").set_value(["sms_spam"])
    at.number_input(key="pt-tune-steps").set_value(2)
    at.number_input(key="pt-tune-eval").set_value(1)
    at.selectbox(key="pt-tune-kind").set_value("shallow")
    button(at, "Queue prompt tuning").click().run()
    assert not at.exception and not at.error
    assert any("Queued job" in s.value for s in at.success)
    [job] = jobs.list_jobs(store_root)
    assert job.argv[:2] == ("tune", "--suite") and "--tasks" in job.argv and "sms_spam" in job.argv
    assert job.argv[job.argv.index("--steps") + 1] == "2" and job.argv[-2:] == ("--cache", str(store_root))
    assert job.status == "queued" and job.resource == "cpu"
    done = jobs.run_job_inline(store_root, job.id)
    assert done.status == "done", jobs.log_tail(done, 30)
    runs = Store(store_root).query("pt_run")
    assert [e.meta["task"] for e in runs] == ["sms_spam"]
    at = goto(app(), "overview")
    assert {m.label: m.value for m in at.metric}["Prompt-tuning runs"] == "1"
    assert any("done" in m.value for m in at.markdown)  # the job panel shows it finished
    at = goto(at, "prompt_tuning")
    assert not at.error and {m.label for m in at.metric} >= {"PT mean test acc"}


def test_ipt_and_stability_forms_queue_their_commands(store_root):
    at = goto(app(), "recovery")
    at.multiselect(key="rec-ipt-train").set_value(["sms_spam", "email_spam", "movie_sentiment"])
    at.multiselect(key="rec-ipt-test").set_value(["movie_sentiment"])
    button(at, "Queue IPT sweep").click().run()
    assert any("both seen and unseen" in e.value for e in at.error)
    at.multiselect(key="rec-ipt-test").set_value(["hotel_sentiment"])
    at.text_input(key="rec-ipt-dims").set_value("16, 4,x")
    button(at, "Queue IPT sweep").click().run()
    assert any("'x' is not an integer" in e.value for e in at.error)
    at.text_input(key="rec-ipt-dims").set_value("16, 4")
    at.number_input(key="rec-ipt-seeds").set_value(2)
    button(at, "Queue IPT sweep").click().run()
    assert not at.exception
    [job] = jobs.list_jobs(store_root)
    assert job.argv[:11] == ("ipt", "--suite", "demo", "--train-tasks", "sms_spam,email_spam,movie_sentiment",
                             "--test-tasks", "hotel_sentiment", "--dims", "4,16", "--seeds", "2")
    # on a CPU the form's default budget is the CLI's quick one
    assert job.argv[11:-3] == ("--budget", "quick")
    est = json.loads((job.dir / "estimate.json").read_text())  # kept for the job's overall progress and ETA
    assert [s["name"] for s in est["stages"]][-2:] == ["subspace finding", "intrinsic subspace tuning"]
    assert est["rows"] == sum(s["rows"] for s in est["stages"]) > 0

    at = goto(at, "stability")
    at.multiselect(key="stab-form-tasks").set_value(["sms_spam"])
    at.number_input(key="stab-form-d").set_value(8)
    button(at, "Queue stability run").click().run()
    job = jobs.list_jobs(store_root)[0]
    assert job.argv[:9] == ("stability", "--suite", "demo", "--tasks", "sms_spam", "--seeds", "3", "--d", "8")
    assert job.argv[job.argv.index("--budget") + 1] == "quick"


def test_compare_form_queues_its_command(store_root):
    at = goto(app(), "methods")
    names = load_suite("demo").names()
    at.multiselect(key="meth-tasks").set_value(names)
    button(at, "Queue comparison").click().run()
    assert any("need tasks that are not compared" in e.value for e in at.error)
    assert not jobs.list_jobs(store_root)
    at.multiselect(key="meth-tasks").set_value(["sms_spam", "movie_sentiment"])
    at.multiselect(key="meth-methods").set_value(["pt", "vip"])
    at.number_input(key="meth-steps").set_value(5)
    button(at, "Queue comparison").click().run()
    assert not at.exception and not at.error
    [job] = jobs.list_jobs(store_root)
    assert job.argv[:11] == ("compare", "--suite", "demo", "--tasks", "sms_spam,movie_sentiment", "--methods", "pt,vip",
                             "--seeds", "1", "--steps", "5")


def test_jobs_page_cancel_and_details(store_root):
    job = jobs.submit(store_root, ["tasks", "--suite", "demo"], label="listing")
    at = goto(app(), "jobs")
    assert any("listing" in m.value for m in at.markdown)
    at.button(key=f"cancel-jobs-active-{job.id}").click().run()
    assert not at.exception
    assert jobs.get_job(store_root, job.id).status == "cancelled"
    at = goto(app(), "jobs")
    assert at.selectbox(key="jobs-detail").value == job.id
    at.button(key="jobs-delete").click().run()
    assert jobs.list_jobs(store_root) == []


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for k, v in files.items():
            zf.writestr(k, v)
    return buf.getvalue()


def test_upload_a_suite_from_the_tasks_page(store_root):
    at = goto(app(), "tasks")
    at.get("file_uploader")[0].set_value(("broken.csv", b"text,label\nonly one row,x\n", "text/csv"))
    button(at, "Add suite").click().run()
    assert not at.exception
    assert any("Upload refused" in e.value and "broken.csv" in e.value for e in at.error)
    assert not [p for p in (store_root / "uploads").iterdir()] if (store_root / "uploads").exists() else True

    demo = demo_suite_path()
    files = {f"mine/{t}/{f}": (demo / t / f).read_bytes() for t in ("sms_spam", "email_spam")
             for f in ("task.json", "train.jsonl", "dev.jsonl", "test.jsonl")}
    at.get("file_uploader")[0].set_value(("mine.zip", _zip(files), "application/zip"))
    button(at, "Add suite").click().run()
    assert not at.exception and not at.error
    assert any("Added suite 'mine'" in s.value for s in at.success)
    assert at.selectbox(key="tasks-example-task").options == ["email_spam", "sms_spam"]  # now the chosen suite
    assert at.session_state["pending_suite"] == "mine (uploaded)"  # for the sidebar's picker (app.py)
    at = app()  # a new session sees the upload in the sidebar's suite picker
    assert "mine (uploaded)" in at.selectbox(key="ctx_suite_choice").options


def test_bad_suite_path_shows_the_loaders_error(store_root, tmp_path):
    bad = tmp_path / "bad_suite" / "t1"
    bad.mkdir(parents=True)
    (bad / "task.json").write_text("{not json")
    # AppTest reruns a page file without the entry script (Streamlit's pages/ folder mode), so the
    # sidebar's widgets are set before the first run, which goes through app.py
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = "Other folder or file…"
    at.session_state["ctx_suite_path"] = str(bad.parent)
    at.run()
    assert not at.exception
    assert at.text_input(key="ctx_suite_path").value == str(bad.parent)
    assert any("malformed JSON" in e.value for e in at.error)  # the Overview page
    for page in ("tasks", "prompt_tuning", "recovery"):
        goto(at, page)
        assert any("malformed JSON" in e.value and "task.json" in e.value for e in at.error), page


def test_typed_paths_stay_inside_the_allowed_roots(store_root, tmp_path, monkeypatch):
    """A store, suite or model path typed into the sidebar outside IPT_ALLOWED_ROOTS is refused
    (symlinks followed), and the app falls back to its defaults."""
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    (outside / "suite").mkdir(parents=True)
    inside.mkdir()
    (inside / "sneaky").symlink_to(outside / "suite")
    monkeypatch.setenv("IPT_ALLOWED_ROOTS", str(inside))
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_root_input"] = str(outside / "store")
    at.session_state["ctx_suite_choice"] = "Other folder or file…"
    at.session_state["ctx_suite_path"] = str(inside / "sneaky")
    at.session_state["ctx_backbone_choice"] = "Other…"
    at.session_state["ctx_backbone_text"] = f"encoder-mlm:{outside}"
    at.run()
    assert not at.exception
    errors = " ".join(e.value for e in at.sidebar.error)
    assert "result store" in errors and "suite path" in errors and "model folder" in errors
    assert "outside the allowed folders" in errors
    assert at.session_state["ctx_root"] == str(store_root.resolve())
    assert at.session_state["ctx_suite"] == "demo"
    assert not (outside / "store").exists()  # nothing was created there


def test_results_of_a_suite_whose_data_is_elsewhere(store_root):
    """Results computed on another machine (suite name only) are browsable: a note, no error."""
    seed_results(store_root, with_pt=False, suite="gpu-server-suite")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = "gpu-server-suite (results only)"
    at.run()
    assert not at.exception and not at.error
    assert at.selectbox(key="ctx_suite_choice").value == "gpu-server-suite (results only)"
    assert any("not on this machine" in w.value for w in at.warning)
    assert {m.label: m.value for m in at.metric}["IPT sweeps"] == "1"
    for page in ("recovery", "stability", "task_map", "methods"):
        goto(at, page)
        assert not at.error, (page, [e.value for e in at.error])
        assert any("--suite gpu-server-suite" in c.value for c in at.code), page


def test_recovery_puts_sweeps_side_by_side(store_root):
    """Two sweeps of a suite (an ablation): one chart of both, found against random, on the dev split."""
    seed_results(store_root)
    store = Store(store_root)
    [sweep] = store.query("ipt_dims")
    rows = [dict(r, dev_gain_recovery=r["gain_recovery"], ist_dev_acc=r["ist_test_acc"], pt_dev_acc=r["pt_test_acc"],
                 zero_shot_dev_acc=r["zero_shot_test_acc"]) for r in sweep.meta["rows"]]
    store.put("ipt_dims", dict(sweep.spec, settings={"msf": {"norm": "none"}}), dict(sweep.meta, rows=rows),
              command=sweep.command + " --norm none")
    at = goto(app(), "recovery")
    assert not at.exception and not at.error
    assert at.radio(key="rec-cmp-split").value == "dev"
    assert at.select_slider(key="rec-cmp-d").value == 16
    def side_by_side() -> tuple[str, set]:
        spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if "Sweeps side by side" in c.proto.spec)
        return spec["layout"]["title"]["text"], {x for trace in spec["data"] for x in trace["x"]}

    # the older sweep has no dev scores: the dev chart shows the one that does, the test chart both
    title, sweeps = side_by_side()
    assert "dev split" in title and len(sweeps) == 1 and "MSF norm = none" in next(iter(sweeps))
    at.radio(key="rec-cmp-split").set_value("test").run()
    assert not at.exception and not at.error
    title, sweeps = side_by_side()
    assert "test split" in title and len(sweeps) == 2
    # gain recovery pooled over tasks by default (a task whose PT barely beats zero-shot cannot rule it); the
    # mean of per-task ratios on request
    assert "pooled gain recovery" in title and at.radio(key="rec-gain").value == "pooled_gain_recovery"
    at.radio(key="rec-gain").set_value("gain_recovery").run()
    assert not at.exception and not at.error
    title, sweeps = side_by_side()
    assert "pooled" not in title and "gain recovery on the test split" in title


def test_recovery_shows_an_ist_run_beside_pt_and_zero_shot(store_root):
    """An ``ist`` run of one task: its PT accuracy (the PT configuration that found the subspace, mean over
    seeds) and zero-shot beside it, and its gain recovery in a panel on the same row."""
    import base64

    import plotly.io as pio
    seed_results(store_root)
    store = Store(store_root)
    pts = store.query("pt_run")
    task = pts[0].meta["task"]
    msf = store.put("msf", {"method": "msf", "backbone": BACKBONE, "train_prompts": [e.key for e in pts], "d": 4,
                            "seed": 0, "config": {}},
                    {"d": 4, "seed": 0, "train_tasks": sorted({e.meta["task"] for e in pts}), "prompt_shape": [2, 8],
                     "hidden": 8}, command="python -m ipt_core ipt --suite demo --dims 4")
    for seed in range(2):
        store.put("ist_run", {"method": "ist", "backbone": BACKBONE, "decoder": msf.key, "subspace": "found", "d": 4,
                              "task": task, "seed": seed},
                  {"task": task, "family": pts[0].meta["family"], "setting": "seen", "subspace": "found", "d": 4,
                   "seed": seed, "test_acc": 0.6 + seed / 20, "dev_acc": 0.6},
                  command=f"python -m ipt_core ist --suite demo --tasks {task} --d 4")
    at = goto(app(), "recovery")
    assert not at.exception and not at.error
    fig = pio.from_json(next(c.proto.spec for c in at.get("plotly_chart") if "Intrinsic tuning" in c.proto.spec))

    def values(xs) -> list[float]:
        return np.frombuffer(base64.b64decode(xs["bdata"]), xs["dtype"]).tolist() if isinstance(xs, dict) else list(xs)

    pt = next(t for t in fig.data if (t.name or "").startswith("PT:"))
    assert values(pt.x) == [pytest.approx(np.mean([e.meta["test_acc"] for e in pts if e.meta["task"] == task]))]
    assert any(t.name == "zero-shot (ZS: no tuning)" for t in fig.data)
    assert any(t.type == "bar" and t.xaxis == "x2" for t in fig.data)  # the gain recovery beside it
