"""uploads.py: safe extraction of uploaded suites; every refusal leaves nothing behind."""
from __future__ import annotations

import io
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from ipt_app import uploads
from ipt_core.tasks import TaskDataError, demo_suite_path, load_suite

DEMO = demo_suite_path()


def task_files(name: str) -> dict[str, bytes]:
    return {f"{name}/{f}": (DEMO / name / f).read_bytes() for f in ("task.json", "train.jsonl", "dev.jsonl", "test.jsonl")}


def make_zip(files: dict[str, bytes], *, compression=zipfile.ZIP_DEFLATED, tweak=None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            if tweak:
                tweak(info)
            zf.writestr(info, data)
    return buf.getvalue()


def leftovers(root: Path) -> list[str]:
    """What is in uploads/ besides the lock file that publishing takes."""
    d = root / "uploads"
    return sorted(p.name for p in d.iterdir() if p.name != ".lock") if d.exists() else []


def csv_bytes(n_per_label: int = 10) -> bytes:
    lines = ["text,label"] + [f"message number {i} about {lab},{lab}" for lab in ("spam", "ham") for i in range(n_per_label)]
    return ("\n".join(lines) + "\n").encode()


def test_zip_of_task_folders_is_stored_and_listed(tmp_path):
    data = make_zip(task_files("sms_spam") | task_files("movie_sentiment"))
    info = uploads.save_upload(tmp_path, "My Suite.zip", data)
    assert info["name"] == "My_Suite" and info["kind"] == "zip"
    assert sorted(info["tasks"]) == ["movie_sentiment", "sms_spam"]
    suite = load_suite(info["spec"])
    assert suite.task("sms_spam").sizes() == load_suite("demo").task("sms_spam").sizes()
    assert [u["name"] for u in uploads.list_uploads(tmp_path)] == ["My_Suite"]
    assert leftovers(tmp_path) == ["My_Suite"]
    with pytest.raises(uploads.UploadError, match="exists already"):
        uploads.save_upload(tmp_path, "My Suite.zip", data)
    # replacing keeps exactly one copy
    uploads.save_upload(tmp_path, "other.zip", make_zip(task_files("sms_spam")), name="My_Suite", overwrite=True)
    assert uploads.list_uploads(tmp_path)[0]["tasks"] == ["sms_spam"] and leftovers(tmp_path) == ["My_Suite"]
    assert uploads.delete_upload(tmp_path, "My_Suite") and uploads.list_uploads(tmp_path) == []
    assert not uploads.delete_upload(tmp_path, "My_Suite")


def test_zip_with_one_top_folder_and_mac_junk(tmp_path):
    files = {f"suite/{k}": v for k, v in task_files("sms_spam").items()}
    files["__MACOSX/suite/._task.json"] = b"junk"
    files["suite/.DS_Store"] = b"junk"
    info = uploads.save_upload(tmp_path, "suite.zip", make_zip(files))
    assert info["tasks"] == ["sms_spam"]
    assert (Path(info["spec"]) / "sms_spam" / "task.json").is_file()


def test_csv_upload(tmp_path):
    info = uploads.save_upload(tmp_path, "spam.csv", csv_bytes())
    assert info["kind"] == "csv" and info["spec"].endswith("spam/spam.csv")
    assert len(load_suite(info["spec"]).tasks) == 1


@pytest.mark.parametrize("member, why", [
    ("../evil.txt", "path traversal"),
    ("a/../../evil.txt", "path traversal"),
    ("/etc/evil.txt", "absolute"),
    ("C:/evil.txt", "absolute"),
    ("..\\evil.txt", "path traversal"),
])
def test_unsafe_paths_are_refused(tmp_path, member, why):
    data = make_zip(task_files("sms_spam") | {member: b"x"})
    with pytest.raises(uploads.UploadError, match=why):
        uploads.save_upload(tmp_path, "bad.zip", data)
    assert leftovers(tmp_path) == []
    assert not (tmp_path.parent / "evil.txt").exists()


@pytest.mark.parametrize("ftype, why", [(stat.S_IFLNK, "symbolic links"), (stat.S_IFIFO, "special files"),
                                        (stat.S_IFCHR, "special files")])
def test_links_and_special_files_are_refused(tmp_path, ftype, why):
    def tweak(info):
        if info.filename.endswith("task.json"):
            info.external_attr = (ftype | 0o777) << 16
    with pytest.raises(uploads.UploadError, match=why):
        uploads.save_upload(tmp_path, "bad.zip", make_zip(task_files("sms_spam"), tweak=tweak))
    assert leftovers(tmp_path) == []


def test_encrypted_and_duplicate_members_are_refused(tmp_path):
    data = bytearray(make_zip({"t/a.txt": b"secret"}))
    cd = data.rfind(b"PK\x01\x02")
    data[6] |= 0x1  # the "encrypted" bit of the general purpose flags, local header and central directory
    data[cd + 8] |= 0x1
    with pytest.raises(uploads.UploadError, match="encrypted"):
        uploads.save_upload(tmp_path, "e.zip", bytes(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("t/a.txt", "1")
        zf.writestr("t/a.txt", "2")
    with pytest.raises(uploads.UploadError, match="appears twice"):
        uploads.save_upload(tmp_path, "d.zip", buf.getvalue())
    assert leftovers(tmp_path) == []


def test_limits_on_files_size_and_ratio(tmp_path):
    many = make_zip({f"f{i}.txt": b"x" for i in range(30)})
    with pytest.raises(uploads.UploadError, match="more than 20 files"):
        uploads.check_zip(zipfile.ZipFile(io.BytesIO(many)), max_files=20)
    big = make_zip({"a.txt": b"y" * 5000, "b.txt": b"z" * 5000}, compression=zipfile.ZIP_STORED)
    with pytest.raises(uploads.UploadError, match="unpacks to more than"):
        uploads.check_zip(zipfile.ZipFile(io.BytesIO(big)), max_total=8000)
    bomb = make_zip({"zeros.txt": b"\0" * (3 * 1024 * 1024)})  # ~3 KB compressed, ratio ~1000
    with pytest.raises(uploads.UploadError, match="zip bomb"):
        uploads.save_upload(tmp_path, "bomb.zip", bomb)
    assert uploads.MAX_TOTAL_BYTES == 50 * 1024 * 1024 and uploads.MAX_FILES == 2000
    with pytest.raises(uploads.UploadError, match="larger than"):
        uploads.save_upload(tmp_path, "huge.csv", b"x" * (uploads.MAX_TOTAL_BYTES + 1))
    assert leftovers(tmp_path) == []


def test_member_larger_than_declared_is_refused(tmp_path):
    """Headers that lie about the size: the extraction stops (size count or CRC) and cleans up."""
    data = bytearray(make_zip({"t/train.jsonl": b"hello world " * 100}))  # a name the allow-list lets in
    real = len(b"hello world " * 100)
    small = struct.pack("<I", 10)
    # uncompressed size: local header offset 22, central directory entry offset 24
    data[22:26] = small
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = small
    assert struct.unpack("<I", bytes(data[cd + 24:cd + 28]))[0] != real
    with pytest.raises(uploads.UploadError, match="more than it declares|cannot be read"):
        uploads.extract_zip(bytes(data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_data_gets_the_loaders_message_naming_the_member(tmp_path):
    files = task_files("sms_spam")
    lines = files["sms_spam/train.jsonl"].decode().splitlines()
    lines[2] = '{"text": "hi", "label": "maybe"}'
    files["sms_spam/train.jsonl"] = ("\n".join(lines) + "\n").encode()
    with pytest.raises(TaskDataError) as err:
        uploads.save_upload(tmp_path, "broken.zip", make_zip(files))
    msg = str(err.value)
    assert msg.startswith("broken.zip:sms_spam/train.jsonl, line 3") and "label" in msg
    assert ".tmp-" not in msg and leftovers(tmp_path) == []
    with pytest.raises(TaskDataError):
        uploads.save_upload(tmp_path, "bad.csv", b"text,label\n")
    assert leftovers(tmp_path) == []


def test_not_a_zip_and_wrong_types(tmp_path):
    with pytest.raises(uploads.UploadError, match="not a valid zip"):
        uploads.save_upload(tmp_path, "x.zip", b"this is not a zip")
    with pytest.raises(uploads.UploadError, match=r"\.zip"):
        uploads.save_upload(tmp_path, "x.exe", b"MZ")
    with pytest.raises(uploads.UploadError, match="holds no files"):
        uploads.save_upload(tmp_path, "empty.zip", make_zip({}))
    with pytest.raises(uploads.UploadError, match="folder name"):
        uploads.safe_name("...zip")
    assert leftovers(tmp_path) == []
