"""Security audit, issue 32 (data must never become code): uploads carry task data only, are published
atomically without taking another's name, are never taken for a result store, and nothing a user
supplied is rendered as markdown by the app.

Each test here failed on the code before the fix: the hostile zips loaded (their extra members were
extracted), four racing savers of one name were all told they succeeded, an upload's folder typed
into the sidebar became the store (and its planted queued job started a worker), and a task type,
description, label or an upload's file name rendered as an image fetched from 127.0.0.1.
"""
from __future__ import annotations

import io
import json
import os
import signal
import stat
import threading
import zipfile
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from ipt_app import uploads
from ipt_app.escape import md_code, md_escape
from ipt_core import jobs
from ipt_core.store import Store
from ipt_core.store.folder import NotAStoreFolder, check_store_folder, looks_like_store
from ipt_core.tasks import demo_suite_path

APP = str(Path(__file__).resolve().parent.parent / "app.py")
DEMO = demo_suite_path()
TASK_FILES = ("task.json", "train.jsonl", "dev.jsonl", "test.jsonl")


def task_files(name: str, prefix: str = "") -> dict[str, bytes]:
    return {f"{prefix}{name}/{f}": (DEMO / name / f).read_bytes() for f in TASK_FILES}


def make_zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ((stat.S_IFDIR | 0o755) if name.endswith("/") else (stat.S_IFREG | 0o644)) << 16
            zf.writestr(info, data)
    return buf.getvalue()


def leftovers(root: Path) -> list[str]:
    d = root / "uploads"
    return sorted(p.name for p in d.iterdir() if p.name != ".lock") if d.exists() else []


def csv_bytes(tag: str, n: int = 6) -> bytes:
    lines = ["text,label"] + [f"{tag} message {i} about {lab},{lab}" for lab in ("spam", "ham") for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


# -- 1. an upload carries task data only ------------------------------------------------------------

REQUEST = json.dumps({"format": 1, "command": "tune", "args": ["--suite", "demo"], "label": "x"}).encode()
# each member rides along with a valid task folder (sms_spam/...), a layout the loaders accept, so the
# old code stored it: the allow-list is what refuses it now
HOSTILE_MEMBERS = [
    "sms_spam/jobs/20250101-000000-000000-0a1b2c3d/request.json",   # a planted job
    "sms_spam/jobs/20250101-000000-000000-0a1b2c3d/status.json",
    "sms_spam/jobs/worker.pid",
    "sms_spam/objects/ab/" + "ab" * 32 + "/entry.json",               # a planted store entry
    "sms_spam/objects/ab/" + "ab" * 32 + "/tensors.safetensors",
    "sms_spam/checkpoints/" + "cd" * 32 + "/state.pt",
    "sms_spam/index",
    "sms_spam/request.json",
    "sms_spam/status.json",
    "sms_spam/_upload.json",                                          # a forged upload record
    "sms_spam/.env",                                                  # dot-files
    "sms_spam/.hidden/task.json",
    "sms_spam/run.py",                                                # unknown extensions
    "sms_spam/train.jsonl.sh",
    "sms_spam/notes.txt",
    "sms_spam/data.csv",                                              # a CSV inside a zip is not read
    "sms_spam/Ontology.JSON",                                         # names are exact
    "sms_spam/deeper/still/train.jsonl",                              # too deep
    "sms_spam/_private/task.json",
    "sms_spam/x\x1b_16_13_train.tsv",                                 # a control character
]


@pytest.mark.parametrize("member", HOSTILE_MEMBERS)
def test_a_member_that_is_not_task_data_refuses_the_upload(tmp_path, member):
    data = make_zip(task_files("sms_spam") | {member: REQUEST})
    with pytest.raises(uploads.UploadError) as err:
        uploads.save_upload(tmp_path, "evil.zip", data)
    msg = str(err.value)
    assert repr(member) in msg and "an upload may hold only task folders" in msg
    assert leftovers(tmp_path) == []
    with pytest.raises(uploads.UploadError, match="an upload may hold only"):
        uploads.extract_zip(data, tmp_path / "out")  # extract_zip applies the same allow-list
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("folder", ["jobs", "objects", "uploads", "tmp", "corrupt", "checkpoints", "Jobs"])
def test_a_task_folder_named_like_a_store_folder_is_refused(tmp_path, folder):
    """Even holding only task files: an upload's folder must never look like part of a store."""
    data = make_zip(task_files("sms_spam", prefix=f"{folder}/"))
    with pytest.raises(uploads.UploadError, match="result store's own folder"):
        uploads.save_upload(tmp_path, "evil.zip", data)
    assert leftovers(tmp_path) == []


def test_the_single_task_folder_layout_with_a_planted_job_is_refused(tmp_path):
    """The audit's case: task.json at the top and ``jobs/<id>/request.json`` beside it."""
    files = {f: (DEMO / "sms_spam" / f).read_bytes() for f in TASK_FILES}
    files |= {"jobs/20250101-000000-000000-0a1b2c3d/request.json": REQUEST,
              "jobs/20250101-000000-000000-0a1b2c3d/status.json": b'{"status": "queued"}'}
    with pytest.raises(uploads.UploadError, match=r"jobs/20250101-000000-000000-0a1b2c3d/request\.json'?: not a task file"):
        uploads.save_upload(tmp_path, "evil.zip", make_zip(files))
    assert leftovers(tmp_path) == []


JUNK = ["__MACOSX/suite/._task.json", "suite/.DS_Store", "suite/sms_spam/._train.jsonl", "suite/README.md",
        "suite/LICENSE", "suite/readme.txt", "suite/Thumbs.db", "suite/sms_spam/desktop.ini"]


def test_harmless_junk_is_skipped_and_never_extracted(tmp_path):
    files = task_files("sms_spam", prefix="suite/") | {j: b"junk" for j in JUNK}
    info = uploads.save_upload(tmp_path, "suite.zip", make_zip(files))
    assert info["tasks"] == ["sms_spam"]
    on_disk = sorted(str(p.relative_to(info["path"])) for p in Path(info["path"]).rglob("*"))
    assert on_disk == ["_upload.json", "sms_spam"] + [f"sms_spam/{f}" for f in sorted(TASK_FILES)]


def test_crossfit_files_and_ontology_are_task_data(tmp_path):
    rows = {"train": "a great film\tpositive\nawful\tnegative\n", "dev": "fine\tpositive\nbad\tnegative\n",
            "test": "superb\tpositive\nworse\tnegative\n"}
    files = {f"cf/movies/movies_16_13_{s}.tsv": t.encode() for s, t in rows.items()}
    files["cf/ontology.json"] = b'{"movies": "sentiment"}'
    info = uploads.save_upload(tmp_path, "cf.zip", make_zip(files))
    assert info["tasks"] == ["movies"]


# -- 2. atomic, exclusive publishing ----------------------------------------------------------------

ROUNDS, RACERS = 30, 4


def test_racing_savers_of_one_name_exactly_one_wins(tmp_path):
    for r in range(ROUNDS):
        barrier = threading.Barrier(RACERS)
        results: dict[int, str] = {}

        def save(i: int) -> None:
            barrier.wait()
            try:
                uploads.save_upload(tmp_path, f"race{r}.csv", csv_bytes(f"racer{i}"))
                results[i] = "ok"
            except uploads.UploadError as e:
                results[i] = str(e)

        threads = [threading.Thread(target=save, args=(i,)) for i in range(RACERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, v in results.items() if v == "ok"]
        assert len(winners) == 1, (r, results)
        assert all("name taken" in v for i, v in results.items() if i not in winners), results
        kept = (tmp_path / "uploads" / f"race{r}" / f"race{r}.csv").read_bytes()
        assert kept == csv_bytes(f"racer{winners[0]}")  # the survivor is the winner's own data
    assert leftovers(tmp_path) == [f"race{r}" for r in sorted(range(ROUNDS), key=lambda r: f"race{r}")]


def test_racing_replacements_are_atomic_for_readers(tmp_path):
    """With overwrite every saver succeeds, one after another; a reader meanwhile always finds a whole
    upload (old or new), never none, and nothing is left over."""
    uploads.save_upload(tmp_path, "swap.csv", csv_bytes("first"))
    folder = tmp_path / "uploads" / "swap"
    stop, missing = threading.Event(), []

    def read() -> None:
        while not stop.is_set():
            if not (folder / "_upload.json").exists() or not (folder / "swap.csv").exists():
                missing.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for r in range(10):
            barrier = threading.Barrier(RACERS)
            errors: list[BaseException] = []

            def save(i: int) -> None:
                barrier.wait()
                try:
                    uploads.save_upload(tmp_path, "swap.csv", csv_bytes(f"r{r}-{i}"), overwrite=True)
                except BaseException as e:  # noqa: BLE001 - reported below
                    errors.append(e)

            threads = [threading.Thread(target=save, args=(i,)) for i in range(RACERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            assert (folder / "swap.csv").read_bytes() in {csv_bytes(f"r{r}-{i}") for i in range(RACERS)}
    finally:
        stop.set()
        reader.join()
    assert not missing, f"a reader found no upload {len(missing)} times"
    assert leftovers(tmp_path) == ["swap"]


# -- 3. a folder is a result store only if it looks like one ----------------------------------------

def _upload_with_planted_job(root: Path) -> Path:
    """An upload's folder with a queued job in it, as an old upload (or a hand) could have left it."""
    folder = Path(uploads.save_upload(root, "planted.csv", csv_bytes("planted"))["path"])
    jobs.submit(folder, ["tasks", "--suite", "demo"], label="planted")
    return folder


def test_store_folder_accepts_new_empty_and_store_shaped_folders(tmp_path):
    assert check_store_folder(tmp_path / "new") == (tmp_path / "new").resolve()   # not there yet
    (tmp_path / "empty").mkdir()
    assert check_store_folder(tmp_path / "empty")
    (tmp_path / "dots").mkdir()
    (tmp_path / "dots" / ".DS_Store").write_text("x")
    assert check_store_folder(tmp_path / "dots")                                   # dot-files only
    store = tmp_path / "store"
    Store(store).put("probe", {"method": "probe", "t": 1}, {"acc": 0.5})
    jobs.submit(store, ["tasks", "--suite", "demo"], label="x")
    uploads.save_upload(store, "u.csv", csv_bytes("u"))
    (store / "README.md").write_text("my results")
    assert looks_like_store(store) and check_store_folder(store) == store.resolve()
    assert check_store_folder(tmp_path / "store" / ".." / "store") == store.resolve()


def test_store_folder_refuses_uploads_store_parts_files_and_other_folders(tmp_path):
    store = tmp_path / "store"
    Store(store).put("probe", {"method": "probe", "t": 1}, {"acc": 0.5})
    planted = _upload_with_planted_job(store)
    (store / "uploads" / ".tmp-half").mkdir()
    (tmp_path / "stray").mkdir()
    (tmp_path / "stray" / "_upload.json").write_text("{}")     # an upload's marker, wherever it is
    (tmp_path / "stray" / "objects").mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "thesis.tex").write_text("x")
    (tmp_path / "docs" / "objects").mkdir()
    (tmp_path / "file").write_text("x")
    cases = {
        planted: "uploaded suite's folder",                    # an upload, with a planted job
        planted / "jobs": "uploaded suite's folder",           # inside an upload
        store / "uploads" / ".tmp-half": "inside the result store",  # inside a store's uploads/
        store / "uploads": "inside the result store",
        store / "jobs": "inside the result store",
        store / "objects": "inside the result store",
        tmp_path / "stray": "uploaded suite's folder",
        tmp_path / "stray" / "objects": "uploaded suite's folder",
        tmp_path / "docs": "not a result store (it holds thesis.tex)",
        tmp_path / "file": "is a file",
    }
    for path, why in cases.items():
        with pytest.raises(NotAStoreFolder, match=why.replace("(", r"\(").replace(")", r"\)")):
            check_store_folder(path)
    assert not looks_like_store(planted)


@pytest.fixture
def store_root(tmp_path, monkeypatch, app_env):
    """The app's empty store in ``tmp_path / "cache"`` (uploads go beside it), no background warm-up."""
    monkeypatch.setenv("IPT_WARMUP", "0")
    return app_env(tmp_path / "cache")


def test_an_upload_typed_as_the_result_store_is_refused(store_root, monkeypatch):
    """The sidebar falls back to the default store; the planted job is never run, no worker starts
    (autostart on, as in a real app: Overview's job panel starts a worker for a queued job)."""
    planted = _upload_with_planted_job(store_root)
    [job] = jobs.list_jobs(planted)
    monkeypatch.setenv("IPT_JOBS_AUTOSTART", "1")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_root_input"] = str(planted)
    try:
        at.run()
        assert not at.exception, at.exception
        errors = " ".join(e.value for e in at.sidebar.error)
        assert "uploaded suite" in errors and "using the default store" in errors
        assert at.session_state["ctx_root"] == str(store_root.resolve())
        at.switch_page("pages/jobs.py").run()
        assert not at.exception
        assert not any("planted" in m.value for m in at.markdown)
    finally:
        pid = jobs.worker_pid(planted)
        if pid:  # only on a regression: stop the worker this test made the app start
            os.kill(pid, signal.SIGTERM)
    assert pid is None
    assert not (planted / "jobs" / "worker.pid").exists() and not (planted / "jobs" / "worker.log").exists()
    assert jobs.get_job(planted, job.id).status == "queued"
    assert not list((planted / "jobs" / job.id).glob("*.log"))


# -- 4. nothing a user supplied is rendered as markdown ---------------------------------------------

PORT = 9  # nothing listens there: the test inspects the markdown, no browser fetches anything
IMG = f"![t](http://127.0.0.1:{PORT}/x.png)"
HOSTILE_TYPE = f"<b>f</b>{IMG}"
HOSTILE_SOURCE = f"x` ![s](http://127.0.0.1:{PORT}/y.png) `.csv"
_MD = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
TEXT_KINDS = ("markdown", "caption", "error", "warning", "info", "success", "title", "header", "subheader")


def rendered_markup(at: AppTest) -> list[str]:
    """Bodies of every markdown element whose rendering holds an image, a link to 127.0.0.1 or the
    planted HTML tag (rendered with markdown-it as CommonMark + GFM tables, HTML on: the worst case)."""
    bad = []
    for kind in TEXT_KINDS:
        for el in getattr(at, kind):
            html = _MD.render(str(el.value))
            if "<img" in html or "127.0.0.1" in html and "href=" in html or "<b>f</b>" in html:
                bad.append(f"{kind}: {el.value}")
    return bad


def hostile_suite_zip() -> bytes:
    doc = json.loads((DEMO / "sms_spam" / "task.json").read_text())
    labels = list(doc["labels"])
    evil_label = f"{labels[0]} {IMG}"
    doc |= {"type": HOSTILE_TYPE, "description": f"*desc* {IMG} <img src=http://127.0.0.1:{PORT}/z.png>",
            "labels": [evil_label] + labels[1:]}
    doc.pop("sizes", None)
    files = {"evil/sms_spam/task.json": json.dumps(doc).encode()}
    for split in ("train", "dev", "test"):
        lines = []
        for line in (DEMO / "sms_spam" / f"{split}.jsonl").read_text().splitlines():
            row = json.loads(line)
            row["label"] = evil_label if row["label"] == labels[0] else row["label"]
            lines.append(json.dumps(row))
        files[f"evil/sms_spam/{split}.jsonl"] = ("\n".join(lines) + "\n").encode()
    return make_zip(files)


def test_no_user_string_renders_as_markdown_on_the_tasks_and_overview_pages(store_root, tmp_path):
    zip_name = HOSTILE_SOURCE.replace(".csv", ".zip")
    info = uploads.save_upload(store_root, zip_name, hostile_suite_zip(), name="evil")
    uploads.save_upload(store_root, HOSTILE_SOURCE, csv_bytes("plain"))
    assert info["source"] == zip_name  # kept as given; only the folder name is made safe
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = "evil (uploaded)"
    at.run()
    assert not at.exception, at.exception
    assert rendered_markup(at) == []
    at.switch_page("pages/tasks.py").run()
    assert not at.exception, at.exception
    assert rendered_markup(at) == []
    bodies = " ".join(str(el.value) for kind in TEXT_KINDS for el in getattr(at, kind))
    assert "Families" in bodies and "desc" in bodies and "from x" in bodies  # the strings are shown, as text
    # a broken suite whose loader error quotes the hostile label, typed as a path (Overview and Tasks)
    bad = tmp_path / "bad" / "t1"
    bad.mkdir(parents=True)
    doc = json.loads((DEMO / "sms_spam" / "task.json").read_text()) | {"name": "t1"}
    doc.pop("sizes", None)
    (bad / "task.json").write_text(json.dumps(doc))
    for split in ("train", "dev", "test"):
        (bad / f"{split}.jsonl").write_text(json.dumps({"text": "hi", "label": IMG}) + "\n")
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["ctx_suite_choice"] = "Other folder or file…"
    at.session_state["ctx_suite_path"] = str(bad.parent)
    at.run()
    assert not at.exception
    assert any("is not one of the task's labels" in e.value for e in at.error)
    assert rendered_markup(at) == []
    at.switch_page("pages/tasks.py").run()
    assert rendered_markup(at) == []


def test_md_escape_and_md_code_leave_no_markup():
    hostile = [HOSTILE_TYPE, HOSTILE_SOURCE, f"<img src=http://127.0.0.1:{PORT}/a.png>", f"[l]: http://127.0.0.1/x\n![a][l]",
               f"<http://127.0.0.1:{PORT}/x>", "$\\href{http://127.0.0.1}{x}$", ":red[x] **b** _i_ ~~s~~ `c` # h | t |",
               f"1. {IMG}", f"- {IMG}", "www.example.com http://127.0.0.1/", "__b__ a_*x*_b _é_ task_name_"]
    for s in hostile:
        for text in (md_escape(s), md_code(s), f"**{md_escape(s)}**", f"x {md_code(s)} y"):
            html = _MD.render(text)
            assert "<img" not in html and "<a " not in html and "<b>" not in html and "<strong>b" not in html, (s, html)
            assert "<ol" not in html and "<ul" not in html and "<h1" not in html, (s, html)
        html = _MD.render(md_escape(s))  # escaped text is text: no emphasis, no code span either
        assert "<em>" not in html and "<strong>" not in html and "<code>" not in html, (s, html)
