"""Unit tests of ipt_core.tasks on small files written to tmp_path (one per source)."""

from __future__ import annotations

import csv
import json
import pickle
import sys
from pathlib import Path

import pytest

from ipt_core.tasks import (
    Example,
    Suite,
    SuiteSourceError,
    Task,
    TaskDataError,
    demo_suite_path,
    format_tasks_table,
    load_suite,
    load_task_folder,
    tasks_report,
)

LABELS = ["negative", "positive"]


def rows(n_per_label: int, labels=LABELS, pair: bool = False, tag: str = "") -> list[dict]:
    out = []
    for i in range(n_per_label):
        for lab in labels:
            row = {"text": f"{tag}{lab} text number {i}", "label": lab}
            if pair:
                row["text_pair"] = f"{tag}second text {i} for {lab}"
            out.append(row)
    return out


def write_jsonl(path: Path, items: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in items), encoding="utf-8")


def make_task(root: Path, name: str = "toy", *, labels=LABELS, pair: bool = False,
              n=(4, 4, 6), type_: str = "sentiment", sizes: bool = True, **extra) -> Path:
    """Write a valid task folder root/name and return its path."""
    d = root / name
    d.mkdir(parents=True)
    doc = {"name": name, "type": type_, "labels": list(labels),
           "input_fields": ["text", "text_pair"] if pair else ["text"],
           "description": f"the {name} task", "license": "CC0", **extra}
    if sizes:
        doc["sizes"] = {s: k * len(labels) for s, k in zip(("train", "dev", "test"), n)}
    (d / "task.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
    for split, k in zip(("train", "dev", "test"), n):
        write_jsonl(d / f"{split}.jsonl", rows(k, labels, pair, tag=f"{split} "))
    return d


def make_suite(root: Path) -> Path:
    s = root / "suite"
    make_task(s, "toy")
    make_task(s, "pairs", pair=True, labels=["yes", "no", "maybe"], type_="nli")
    return s


def assert_error(exc: TaskDataError, file: Path | str | None, line: int | None,
                 field: str | None) -> None:
    assert type(exc) is TaskDataError or isinstance(exc, TaskDataError)
    if file is None:
        assert exc.file is None
    else:
        assert exc.file == str(file), (exc.file, str(file))
    assert exc.line == line, str(exc)
    assert exc.field == field, str(exc)


def load_err(spec, **kw) -> TaskDataError:
    with pytest.raises(TaskDataError) as info:
        load_suite(str(spec), **kw)
    return info.value


# ---------------------------------------------------------------------------------- model


def test_error_format_and_attributes():
    e = TaskDataError("path/to/train.jsonl", 7, "label",
                      "'posit' is not one of the task's labels ['negative', 'positive']")
    assert str(e) == ("path/to/train.jsonl, line 7, field \"label\": 'posit' is not one of the "
                      "task's labels ['negative', 'positive']")
    assert isinstance(e, ValueError)
    assert (e.file, e.line, e.field) == ("path/to/train.jsonl", 7, "label")
    assert str(TaskDataError(None, None, None, "plain")) == "plain"
    assert str(TaskDataError(Path("a/b"), None, "x", "m")) == 'a/b, field "x": m'
    e2 = pickle.loads(pickle.dumps(e))
    assert str(e2) == str(e) and e2.line == 7
    assert issubclass(SuiteSourceError, TaskDataError)


def small_task(**kw) -> Task:
    ex = (Example("good", 1), Example("bad", 0))
    args = dict(name="t", type="sentiment", labels=("negative", "positive"),
                input_fields=("text",), description="", train=ex, dev=ex, test=ex)
    args.update(kw)
    return Task(**args)


def test_task_validation_on_construction():
    t = small_task(labels=["negative", "positive"])
    assert t.labels == ("negative", "positive") and not t.is_pair
    for kw, field in [
        (dict(labels=("only",)), "labels"),
        (dict(labels=("a", "a")), "labels"),
        (dict(labels=("a", 3)), "labels"),
        (dict(labels=("a", "")), "labels"),
        (dict(input_fields=("text_pair",)), "input_fields"),
        (dict(train=()), "train"),
        (dict(dev=(Example("x", 5),)), "label"),
        (dict(test=(Example("", 0),)), "text"),
        (dict(test=(Example(3, 0),)), "text"),
        (dict(test=(Example("x", 0, "y"),)), "text_pair"),
        (dict(input_fields=("text", "text_pair")), "text_pair"),
        (dict(name=""), "name"),
        (dict(name="a/b"), "name"),
        (dict(type=""), "type"),
    ]:
        with pytest.raises(TaskDataError) as info:
            small_task(**kw)
        assert info.value.field == field, (kw, str(info.value))


def test_suite_methods_and_duplicate_names(tmp_path):
    suite = load_suite(str(make_suite(tmp_path)))
    assert suite.names() == ["pairs", "toy"]  # folders in name order
    assert suite.families() == {"nli": ["pairs"], "sentiment": ["toy"]}
    assert suite.task("toy").name == "toy"
    with pytest.raises(KeyError, match="available.*pairs"):
        suite.task("nope")
    sub = suite.subset(["toy", "pairs"])
    assert sub.names() == ["toy", "pairs"]
    with pytest.raises(TaskDataError) as info:
        suite.subset(["toy", "ghost"])
    assert info.value.field == "tasks" and "ghost" in str(info.value)
    with pytest.raises(TaskDataError) as info:
        Suite("s", "x", (suite.task("toy"), suite.task("toy")))
    assert info.value.field == "name" and "duplicate task name 'toy'" in str(info.value)
    with pytest.raises(TaskDataError):
        Suite("s", "x", ())
    assert suite.data_hash() != sub.data_hash()  # order matters
    assert suite.data_hash() == load_suite(str(tmp_path / "suite")).data_hash()


def test_data_hash_ignores_description_and_source():
    t = small_task()
    assert len(t.data_hash()) == 64
    assert small_task(description="other", source="elsewhere").data_hash() == t.data_hash()
    assert small_task(type="topic").data_hash() != t.data_hash()
    assert small_task(test=(Example("good!", 1),)).data_hash() != t.data_hash()
    assert t == small_task()
    assert hash(t) == hash(small_task())


# --------------------------------------------------------------------- folder of task folders


def test_load_folder_suite(tmp_path):
    path = make_suite(tmp_path)
    suite = load_suite(str(path))
    assert suite.name == "suite" and suite.source == str(path)
    toy = suite.task("toy")
    assert toy.sizes() == {"train": 8, "dev": 8, "test": 12}
    assert toy.labels == ("negative", "positive") and toy.input_fields == ("text",)
    assert toy.description == "the toy task" and toy.source == str(path / "toy")
    assert toy.train[0] == Example("train negative text number 0", 0)
    pairs = suite.task("pairs")
    assert pairs.is_pair and pairs.train[0].text_pair == "train second text 0 for yes"
    assert pairs.type == "nli"


def test_load_one_task_folder(tmp_path):
    d = make_task(tmp_path, "solo", sizes=False)
    suite = load_suite(str(d))
    assert suite.names() == ["solo"] and suite.name == "solo"
    assert load_task_folder(d) == suite.task("solo")
    assert load_suite(str(d / "task.json")).task("solo") == suite.task("solo")


def test_blank_lines_bom_and_extra_keys_are_fine(tmp_path):
    d = make_task(tmp_path, "toy", sizes=False)
    lines = (d / "train.jsonl").read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), "id": 17})
    (d / "train.jsonl").write_bytes(b"\xef\xbb\xbf" + ("\n\n".join(lines) + "\n  \n").encode())
    t = load_task_folder(d)
    assert t.sizes()["train"] == 8


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_bad_label_names_file_line_field(tmp_path, split):
    d = make_task(tmp_path)
    f = d / f"{split}.jsonl"
    lines = f.read_text().splitlines()
    lines[6] = json.dumps({"text": "hello", "label": "posit"})
    f.write_text("\n".join(lines) + "\n")
    e = load_err(tmp_path / "toy")
    assert_error(e, f, 7, "label")
    assert str(e) == (f"{f}, line 7, field \"label\": 'posit' is not one of the task's labels "
                      "['negative', 'positive']")


@pytest.mark.parametrize("bad_line, field, fragment", [
    ('{"text": "a", "label": "positive"', None, "malformed JSON"),
    ('["text", "label"]', None, "expected a JSON object"),
    ('{"label": "positive"}', "text", "missing field"),
    ('{"text": "a"}', "label", "missing field"),
    ('{"text": 5, "label": "positive"}', "text", "must be a string"),
    ('{"text": null, "label": "positive"}', "text", "must be a string"),
    ('{"text": "   ", "label": "positive"}', "text", "is empty"),
    ('{"text": "a", "label": 1}', "label", "must be a label name"),
    ('{"text": "a", "label": "positive", "text_pair": "b"}', "text_pair", "text_pair"),
    ('{"text": "\\ud800", "label": "positive"}', "text", "surrogate"),
    ('{"text": "a", "label": "positive"} x', None, "malformed JSON"),
])
def test_bad_jsonl_lines(tmp_path, bad_line, field, fragment):
    d = make_task(tmp_path)
    f = d / "dev.jsonl"
    lines = f.read_text().splitlines()
    lines[2] = bad_line
    f.write_text("\n".join(lines) + "\n")
    e = load_err(d)
    assert_error(e, f, 3, field)
    assert fragment in str(e)


def test_pair_task_missing_text_pair(tmp_path):
    d = make_task(tmp_path, "p", pair=True)
    f = d / "test.jsonl"
    lines = f.read_text().splitlines()
    lines[4] = json.dumps({"text": "a", "label": "positive"})
    f.write_text("\n".join(lines) + "\n")
    assert_error(load_err(d), f, 5, "text_pair")


def test_not_utf8(tmp_path):
    d = make_task(tmp_path)
    f = d / "train.jsonl"
    data = f.read_bytes().split(b"\n")
    data[3] = data[3].replace(b"text", b"t\xffxt", 1)
    f.write_bytes(b"\n".join(data))
    e = load_err(d)
    assert_error(e, f, 4, None)
    assert "not valid UTF-8" in str(e) and "0xff" in str(e)


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_missing_and_empty_split(tmp_path, split):
    d = make_task(tmp_path, sizes=False)
    f = d / f"{split}.jsonl"
    f.write_text("\n  \n")
    e = load_err(d)
    assert_error(e, f, None, None)
    assert "empty" in str(e)
    f.unlink()
    e = load_err(d)
    assert_error(e, f, None, None)
    assert "missing split" in str(e)


@pytest.mark.parametrize("mutate, field, fragment", [
    (lambda doc: doc.pop("labels"), "labels", "missing"),
    (lambda doc: doc.pop("type"), "type", "missing"),
    (lambda doc: doc.pop("input_fields"), "input_fields", "missing"),
    (lambda doc: doc.pop("name"), "name", "missing"),
    (lambda doc: doc.update(labels="negative,positive"), "labels", "list"),
    (lambda doc: doc.update(labels=["negative", 1]), "labels", "strings"),
    (lambda doc: doc.update(labels=["positive", "positive"]), "labels", "duplicate"),
    (lambda doc: doc.update(labels=["positive"]), "labels", "at least 2"),
    (lambda doc: doc.update(input_fields=["sentence"]), "input_fields", "must be"),
    (lambda doc: doc.update(input_fields="text"), "input_fields", "must be"),
    (lambda doc: doc.update(type=3), "type", "non-empty string"),
    (lambda doc: doc.update(description=["x"]), "description", "string"),
    (lambda doc: doc.update(name="other"), "name", "does not match its folder name"),
    (lambda doc: doc.update(sizes={"train": 9, "dev": 8, "test": 12}), "sizes", "train.jsonl has 8"),
    (lambda doc: doc.update(sizes={"train": "8"}), "sizes", "integer"),
    (lambda doc: doc.update(sizes=[8, 8, 12]), "sizes", "object"),
])
def test_bad_task_json(tmp_path, mutate, field, fragment):
    d = make_task(tmp_path)
    f = d / "task.json"
    doc = json.loads(f.read_text())
    mutate(doc)
    f.write_text(json.dumps(doc, indent=2))
    e = load_err(d)
    assert e.file == str(f) and e.field == field, str(e)
    assert fragment in str(e)
    if field in doc:  # the line of the offending key is named
        key_line = next(i for i, l in enumerate(f.read_text().splitlines(), 1)
                        if l.strip().startswith(f'"{field}"'))
        assert e.line == key_line


def test_task_json_malformed_and_not_object(tmp_path):
    d = make_task(tmp_path)
    f = d / "task.json"
    f.write_text('{\n  "name": "toy",\n  "type": sentiment\n}')
    assert_error(load_err(d), f, 3, None)
    f.write_text("[1, 2]")
    assert_error(load_err(d), f, 1, None)
    f.write_text("")
    assert_error(load_err(d), f, 1, None)


def test_duplicate_task_name_inside_task_json(tmp_path):
    s = make_suite(tmp_path)
    f = s / "pairs" / "task.json"
    doc = json.loads(f.read_text())
    doc["name"] = "toy"
    f.write_text(json.dumps(doc, indent=2))
    e = load_err(s)
    assert_error(e, f, 2, "name")
    assert "'toy' does not match its folder name 'pairs'" in str(e)


def test_folder_without_task_json_in_suite(tmp_path):
    s = make_suite(tmp_path)
    (s / "notes").mkdir()
    e = load_err(s)
    assert_error(e, s / "notes" / "task.json", None, None)
    assert "no task.json" in str(e)


def test_hidden_and_private_entries_ignored(tmp_path):
    s = make_suite(tmp_path)
    (s / "__pycache__").mkdir()
    (s / ".git").mkdir()
    (s / "README.md").write_text("hello")
    assert load_suite(str(s)).names() == ["pairs", "toy"]


def test_empty_folder_and_nonexistent_path(tmp_path):
    e = load_err(tmp_path)
    assert_error(e, tmp_path, None, None)
    assert "found no tasks" in str(e)
    e = load_err(tmp_path / "nope")
    assert_error(e, tmp_path / "nope", None, None)
    assert "no such file or folder" in str(e)
    (tmp_path / "x.txt").write_text("hi")
    assert_error(load_err(tmp_path / "x.txt"), tmp_path / "x.txt", None, None)
    with pytest.raises(TaskDataError) as info:
        load_task_folder(tmp_path / "nope")
    assert info.value.file == str(tmp_path / "nope")
    with pytest.raises(TaskDataError):
        load_suite("")


def test_all_or_nothing(tmp_path):
    s = make_suite(tmp_path)
    (s / "toy" / "test.jsonl").write_text('{"text": "x", "label": "nope"}\n')
    with pytest.raises(TaskDataError):
        load_suite(str(s))  # the valid "pairs" task is not returned on its own


# ------------------------------------------------------------------------------- CrossFit


def write_tsv(path: Path, lines: list[str]) -> None:
    path.write_text("".join(l + "\n" for l in lines), encoding="utf-8")


def make_crossfit(root: Path) -> Path:
    d = root / "crossfit"
    d.mkdir(parents=True)
    for seed in (100, 13, 21):
        for split, n in (("train", 3), ("dev", 3), ("test", 5)):
            write_tsv(d / f"glue-sst2_16_{seed}_{split}.tsv",
                      [f"s{seed} {split} movie {i}\t{lab}" for i in range(n)
                       for lab in ("positive", "negative")])
            write_tsv(d / f"superglue-rte_16_{seed}_{split}.tsv",
                      [f"p{seed} {split} premise {i} [SEP] hypothesis {i}\t{lab}" for i in range(n)
                       for lab in ("entailment", "not_entailment")])
    (d / "ontology.json").write_text(json.dumps({"glue-sst2": "sentiment"}))
    return d


def test_crossfit_folder(tmp_path):
    d = make_crossfit(tmp_path)
    suite = load_suite(str(d))
    assert suite.names() == ["glue-sst2", "superglue-rte"] and suite.name == "crossfit"
    sst = suite.task("glue-sst2")
    assert sst.type == "sentiment" and sst.labels == ("negative", "positive")
    assert sst.sizes() == {"train": 6, "dev": 6, "test": 10}
    assert sst.train[0] == Example("s13 train movie 0", 1)  # default: smallest seed (13)
    rte = suite.task("superglue-rte")
    assert rte.type == "unknown" and rte.is_pair
    assert rte.train[1] == Example("p13 train premise 0", 1, "hypothesis 0")
    s21 = load_suite(str(d), crossfit_seed=21)
    assert s21.task("glue-sst2").train[0].text == "s21 train movie 0"
    e = load_err(d, crossfit_seed=7)
    assert e.field == "crossfit_seed" and "13, 21, 100" in str(e)


def test_crossfit_task_subfolders_layout(tmp_path):
    d = tmp_path / "data"
    for task in ("a-task", "b-task"):
        (d / task).mkdir(parents=True)
        for split in ("train", "dev", "test"):
            write_tsv(d / task / f"{task}_16_42_{split}.tsv", [f"x {i}\t{'yn'[i % 2]}" for i in range(4)])
    suite = load_suite(str(d))
    assert suite.names() == ["a-task", "b-task"]
    assert suite.task("a-task").labels == ("n", "y")


def test_crossfit_not_pair_when_sep_missing_somewhere(tmp_path):
    d = make_crossfit(tmp_path)
    f = d / "superglue-rte_16_13_test.tsv"
    f.write_text(f.read_text() + "no separator here\tentailment\n")
    rte = load_suite(str(d)).task("superglue-rte")
    assert not rte.is_pair and " [SEP] " in rte.train[0].text


@pytest.mark.parametrize("line, field, fragment", [
    ("no tab here", "output", "missing output"),
    ("a\tb\tc", None, "3 tab-separated"),
    ("text\tmaybe", "output", "not one of the task's labels"),
    ("\tpositive", "input", "is empty"),
    ("a text\t ", "output", "is empty"),
])
def test_crossfit_bad_lines(tmp_path, line, field, fragment):
    d = make_crossfit(tmp_path)
    f = d / "glue-sst2_16_13_dev.tsv"
    lines = f.read_text().splitlines()
    lines[1] = line
    write_tsv(f, lines)
    e = load_err(d)
    assert e.file == str(f) and e.line == 2 and e.field == field, str(e)
    assert fragment in str(e)


def test_crossfit_missing_split_empty_file_bad_utf8(tmp_path):
    d = make_crossfit(tmp_path)
    (d / "glue-sst2_16_13_dev.tsv").unlink()
    e = load_err(d)
    assert e.file == str(d / "glue-sst2_16_13_dev.tsv") and "missing split" in str(e)
    d2 = make_crossfit(tmp_path / "b")
    (d2 / "glue-sst2_16_13_test.tsv").write_text("")
    assert_error(load_err(d2), d2 / "glue-sst2_16_13_test.tsv", None, None)
    (d2 / "glue-sst2_16_13_test.tsv").write_bytes(b"ok\tpositive\nbad \xc3\x28\tnegative\n")
    assert_error(load_err(d2), d2 / "glue-sst2_16_13_test.tsv", 2, None)


def test_crossfit_single_label_and_bad_ontology(tmp_path):
    d = make_crossfit(tmp_path)
    write_tsv(d / "glue-sst2_16_13_train.tsv", ["a\tpositive", "b\tpositive"])
    e = load_err(d)
    assert e.field == "output" and "at least 2" in str(e)
    d2 = make_crossfit(tmp_path / "b")
    (d2 / "ontology.json").write_text('{\n"glue-sst2": 5\n}')
    assert_error(load_err(d2), d2 / "ontology.json", 2, "glue-sst2")
    (d2 / "ontology.json").write_text('{"glue-sst2": ')
    assert_error(load_err(d2), d2 / "ontology.json", 1, None)


# ----------------------------------------------------------------------------------- CSV/TSV


def write_table(path: Path, header: list[str], data: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t" if path.suffix == ".tsv" else ",",
                       lineterminator="\n")
        w.writerow(header)
        w.writerows(data)


def test_csv_without_split_or_task(tmp_path):
    f = tmp_path / "reviews.csv"
    data = [[f"review {lab} {i}, with comma", lab] for lab in ("good", "bad") for i in range(40)]
    data += [["short and \"quoted\"", "meh"]] * 3
    write_table(f, ["text", "label"], data)
    suite = load_suite(str(f))
    assert suite.name == "reviews" and suite.names() == ["reviews"]
    t = suite.task("reviews")
    assert t.labels == ("bad", "good", "meh") and t.type == "unknown"
    assert t.label_counts("train") == {"bad": 16, "good": 16, "meh": 1}
    assert t.label_counts("dev") == {"bad": 16, "good": 16, "meh": 1}
    assert t.label_counts("test") == {"bad": 8, "good": 8, "meh": 1}
    assert load_suite(str(f)) == suite  # deterministic
    all_texts = [e.text for s in ("train", "dev", "test") for e in t.split(s)]
    assert sorted(all_texts) == sorted(r[0] for r in data)


def test_csv_with_split_task_type_and_pairs(tmp_path):
    f = tmp_path / "multi.tsv"
    data = []
    for split in ("train", "validation", "test"):
        for i in range(2):
            data.append([f"premise {split} {i}", f"hyp {i}", "yes" if i else "no", split, "nli_t", "nli"])
            data.append([f"text {split} {i}", "", "pos" if i else "neg", split, "senti", "sentiment"])
    write_table(f, ["text", "text_pair", "label", "split", "task", "type"], data)
    suite = load_suite(str(f))
    assert suite.names() == ["nli_t", "senti"] and suite.name == "multi"
    nli = suite.task("nli_t")
    assert nli.is_pair and nli.type == "nli" and nli.sizes() == {"train": 2, "dev": 2, "test": 2}
    assert nli.dev[0] == Example("premise validation 0", 0, "hyp 0")
    senti = suite.task("senti")
    assert not senti.is_pair and senti.labels == ("neg", "pos") and senti.type == "sentiment"
    report = tasks_report(suite)
    assert report == {"tasks": [
        {"name": "nli_t", "type": "nli", "labels": ["no", "yes"],
         "sizes": {"train": 2, "dev": 2, "test": 2}},
        {"name": "senti", "type": "sentiment", "labels": ["neg", "pos"],
         "sizes": {"train": 2, "dev": 2, "test": 2}}]}
    table = format_tasks_table(suite).splitlines()
    assert table[0].split() == ["name", "type", "labels", "train", "dev", "test"]
    assert table[1].split() == ["nli_t", "nli", "2", "2", "2", "2"]
    assert len(table) == 3


@pytest.mark.parametrize("header, row, line, field, fragment", [
    (["text", "lbl"], ["a", "b"], 1, "label", 'missing column "label"'),
    (["label"], ["b"], 1, "text", 'missing column "text"'),
    (["text", "label", "label"], ["a", "b", "c"], 1, "label", "twice"),
    (["text", "label"], ["a", "b", "c"], 5, None, "expected 2 columns"),
    (["text", "label"], ["", "positive"], 5, "text", "is empty"),
    (["text", "label"], ["a", ""], 5, "label", "is empty"),
    (["text", "label", "split"], ["a", "positive", "training"], 5, "split", "not train"),
    (["text", "label", "task"], ["a", "positive", " "], 5, "task", "is empty"),
])
def test_csv_bad_rows(tmp_path, header, row, line, field, fragment):
    f = tmp_path / "bad.csv"
    fill = {"text": "t", "label": "positive", "split": "train", "task": "x", "lbl": "b"}
    data = [[fill.get(h, "c") for h in header] for _ in range(3)] + [row]
    write_table(f, header, data)
    e = load_err(f)
    assert_error(e, f, line, field)
    assert fragment in str(e)


def test_csv_too_few_rows_per_label_and_missing_split(tmp_path):
    f = tmp_path / "few.csv"
    write_table(f, ["text", "label"], [["a", "x"], ["b", "x"], ["c", "x"], ["d", "y"], ["e", "y"]])
    e = load_err(f)
    assert e.file == str(f) and e.field == "label" and "'y' has 2 row(s)" in str(e)
    g = tmp_path / "nodev.csv"
    write_table(g, ["text", "label", "split"], [["a", "x", "train"], ["b", "y", "train"],
                                                 ["c", "x", "test"]])
    e = load_err(g)
    assert e.field == "split" and "no dev rows" in str(e)


def test_csv_empty_bad_utf8_and_conflicting_type(tmp_path):
    f = tmp_path / "e.csv"
    f.write_text("")
    assert_error(load_err(f), f, None, None)
    f.write_bytes(b"text,label\nabc,x\nab\xfe,y\n")
    assert_error(load_err(f), f, 3, None)
    write_table(f, ["text", "label", "split", "type"],
                [["a", "x", "train", "t1"], ["b", "y", "dev", "t2"]])
    assert_error(load_err(f), f, 3, "type")
    f.write_text('text,label\n"unterminated,x\n')
    assert load_err(f).file == str(f)


def test_crossfit_seed_rejected_for_other_sources(tmp_path):
    e = load_err(make_task(tmp_path), crossfit_seed=13)
    assert e.field == "crossfit_seed"


# ---------------------------------------------------------------------------- Hugging Face


def test_hf_saved_dataset_dict(tmp_path):
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features({"text": datasets.Value("string"),
                               "label": datasets.ClassLabel(names=["neg", "pos", "unused"])})
    parts = {}
    for split in ("train", "validation", "test"):
        parts[split] = datasets.Dataset.from_dict(
            {"text": [f"{split} {i}" for i in range(6)], "label": [i % 2 for i in range(6)]},
            features=feats)
    path = tmp_path / "my_ds"
    datasets.DatasetDict(parts).save_to_disk(str(path))
    suite = load_suite(f"hf:{path}")
    assert suite.names() == ["my_ds"] and suite.source == f"hf:{path}"
    t = suite.task("my_ds")
    assert t.labels == ("neg", "pos") and t.sizes() == {"train": 6, "dev": 6, "test": 6}
    assert t.dev[1] == Example("validation 1", 1)


def test_hf_string_labels_pairs_and_single_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    n = 10
    ds = datasets.Dataset.from_dict({
        "text": [f"premise {i}" for i in range(2 * n)],
        "text_pair": [f"hypothesis {i}" for i in range(2 * n)],
        "label": ["entail" if i % 2 else "contra" for i in range(2 * n)],
    })
    path = tmp_path / "pairs_ds"
    ds.save_to_disk(str(path))
    t = load_suite(f"hf:{path}").task("pairs_ds")
    assert t.is_pair and t.labels == ("contra", "entail")
    assert t.label_counts("train") == {"contra": 4, "entail": 4}  # (10 - 1) // 2 per label
    assert sum(t.sizes().values()) == 2 * n


def test_hf_bad_data(tmp_path):
    datasets = pytest.importorskip("datasets")
    d = {s: datasets.Dataset.from_dict({"text": ["a", "b"], "label": ["x", "y"]})
         for s in ("train", "test")}
    path = tmp_path / "nodev"
    datasets.DatasetDict(d).save_to_disk(str(path))
    e = load_err(f"hf:{path}")
    assert e.field == "splits" and "found ['train', 'test']" in str(e)
    path2 = tmp_path / "intlabels"
    datasets.Dataset.from_dict({"text": ["a"] * 9, "label": [0, 1, 2] * 3}).save_to_disk(str(path2))
    e = load_err(f"hf:{path2}")
    assert e.field == "label" and "ClassLabel" in str(e)
    path3 = tmp_path / "nolabel"
    datasets.Dataset.from_dict({"sentence": ["a"], "label": ["x"]}).save_to_disk(str(path3))
    e = load_err(f"hf:{path3}")
    assert e.field == "text" and "sentence" in str(e)


def test_hf_missing_package_and_unreachable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import raises ImportError
    with pytest.raises(SuiteSourceError) as info:
        load_suite("hf:some/dataset")
    assert "pip install datasets" in str(info.value) and info.value.file == "hf:some/dataset"
    monkeypatch.undo()
    datasets = pytest.importorskip("datasets")

    def offline(*args, **kwargs):
        raise ConnectionError("offline mode is enabled")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(SuiteSourceError) as info:
        load_suite("hf:some/dataset:cfg")
    assert "offline mode" in str(info.value)


# ------------------------------------------------------------------------------- resampling


def test_resample_deterministic_and_distinct(tmp_path):
    t = load_task_folder(make_task(tmp_path, n=(10, 10, 3)))  # pool: 20 per label
    a = t.resample(k=4, seed=1)
    assert a == t.resample(k=4, seed=1)
    assert a.data_hash() == t.resample(k=4, seed=1).data_hash()
    assert a.name == t.name and a.data_seed == 1 and a.k == 4 and a.test == t.test
    assert a.label_counts("train") == {"negative": 4, "positive": 4}
    assert a.label_counts("dev") == {"negative": 4, "positive": 4}
    assert not set(a.train) & set(a.dev)
    assert set(a.train) | set(a.dev) <= set(t.train) | set(t.dev)
    hashes = {t.resample(k=4, seed=s).data_hash() for s in range(10)}
    assert len(hashes) == 10  # different seeds -> different data
    assert t.resample(k=10, seed=3).sizes() == {"train": 20, "dev": 20, "test": 6}


def test_resample_too_few_examples(tmp_path):
    t = load_task_folder(make_task(tmp_path, n=(4, 4, 3)))
    with pytest.raises(TaskDataError) as info:
        t.resample(k=5, seed=0)
    e = info.value
    assert e.field == "label"
    assert "'toy'" in str(e) and "'negative' has 8" in str(e) and "needs 10" in str(e)
    with pytest.raises(ValueError):
        t.resample(k=0, seed=0)


def test_demo_suite_path():
    p = demo_suite_path()
    assert p.name == "demo" and p.parent.name == "suites"
