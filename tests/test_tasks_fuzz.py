"""Property-based tests: corrupt valid suite files at random; loading must either raise one
TaskDataError or (when the corruption kept the files valid) give exactly what a fresh,
independent parse of the corrupted files gives. Never any other exception.

Volume: ``IPT_FUZZ_EXAMPLES`` examples per test (default 100, CI). The dedicated run of
bench/FAULTS.md (3 tests x 3,400 = 10,200 fuzzed suites)::

    IPT_FUZZ_EXAMPLES=3400 python -m pytest -q tests/test_tasks_fuzz.py --hypothesis-show-statistics
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, seed, settings
from hypothesis import strategies as st

from ipt_core.tasks import Example, Suite, Task, TaskDataError, load_suite

FUZZ_SEED = int(os.environ.get("IPT_FUZZ_SEED", "0"))  # one per run, printed by conftest.py

N_EXAMPLES = int(os.environ.get("IPT_FUZZ_EXAMPLES", "100"))
SETTINGS = settings(max_examples=N_EXAMPLES, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow])

SPLITS = ("train", "dev", "test")
TASKS = {
    "alpha": dict(type="sentiment", labels=["négatif", "positive"], pair=False),
    "beta": dict(type="nli", labels=["yes", "no", "maybe"], pair=True),
}
N = {"train": 3, "dev": 3, "test": 4}


def write_template(root: Path) -> Path:
    suite = root / "suite"
    for name, spec in TASKS.items():
        d = suite / name
        d.mkdir(parents=True)
        n_labels = len(spec["labels"])
        doc = {"name": name, "type": spec["type"], "labels": spec["labels"],
               "input_fields": ["text", "text_pair"] if spec["pair"] else ["text"],
               "description": f"{name}: a tiny task ✓", "license": "CC0",
               "sizes": {s: N[s] * n_labels for s in SPLITS}, "notes": []}
        (d / "task.json").write_text(json.dumps(doc, indent=2, ensure_ascii=False), encoding="utf-8")
        for split in SPLITS:
            lines = []
            for i in range(N[split]):
                for lab in spec["labels"]:
                    row = {"text": f"{split} {lab} texte numéro {i} — ok", "label": lab}
                    if spec["pair"]:
                        row["text_pair"] = f"hypothèse {i}"
                    lines.append(json.dumps(row, ensure_ascii=i % 2 == 0))
            (d / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return suite


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_template(tmp_path_factory.mktemp("fuzz"))


def suite_files(suite: Path) -> list[Path]:
    return sorted(p for p in suite.rglob("*") if p.is_file())


# ----------------------------------------------------------------- an independent reference


def reference_parse(suite: Path) -> Suite:
    """A plain parse of the files, trusting they are valid (only used after a load succeeded)."""
    tasks = []
    for d in sorted(p for p in suite.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        doc = json.loads((d / "task.json").read_text(encoding="utf-8-sig"))
        labels = doc["labels"]
        pair = doc["input_fields"] == ["text", "text_pair"]
        splits = {}
        for split in SPLITS:
            exs = []
            for line in (d / f"{split}.jsonl").read_text(encoding="utf-8-sig").split("\n"):
                if line.strip(" \t\r\n"):
                    o = json.loads(line)
                    exs.append(Example(o["text"], labels.index(o["label"]),
                                       o["text_pair"] if pair else None))
            splits[split] = tuple(exs)
        tasks.append(Task(name=doc["name"], type=doc["type"], labels=tuple(labels),
                          input_fields=tuple(doc["input_fields"]),
                          description=doc.get("description", ""), source=str(d), **splits))
    return Suite(name=suite.name, source=str(suite), tasks=tuple(tasks))


# ----------------------------------------------------------------------------- corruptions

INVALID_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3\x28", b"\xed\xa0\x80", b"\xf0\x28\x8c\x28", b"\xc0\xaf"]
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 10**6), st.text(max_size=12),
                         st.floats(allow_nan=False))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=6)


def corrupt_bytes(data: st.DataObject, raw: bytes) -> bytes:
    op = data.draw(st.sampled_from(["truncate", "flip", "insert_invalid", "insert_random",
                                    "delete_range", "blank", "whitespace"]), label="byte op")
    pos = data.draw(st.integers(0, max(len(raw) - 1, 0)), label="pos")
    if op == "truncate":
        return raw[:pos]
    if op == "flip":
        if not raw:
            return raw
        x = data.draw(st.integers(1, 255), label="xor")
        return raw[:pos] + bytes([raw[pos] ^ x]) + raw[pos + 1:]
    if op == "insert_invalid":
        return raw[:pos] + data.draw(st.sampled_from(INVALID_UTF8), label="seq") + raw[pos:]
    if op == "insert_random":
        return raw[:pos] + data.draw(st.binary(min_size=1, max_size=6), label="bytes") + raw[pos:]
    if op == "delete_range":
        n = data.draw(st.integers(1, 40), label="n")
        return raw[:pos] + raw[pos + n:]
    if op == "blank":
        return data.draw(st.sampled_from([b"", b"\n", b"  \n\n"]), label="blank")
    return raw[:pos] + data.draw(st.sampled_from([b"\n", b"\r\n", b" ", b"\t", b"\x0b"])) + raw[pos:]


def corrupt_jsonl(data: st.DataObject, raw: bytes) -> bytes:
    lines = raw.decode("utf-8").split("\n")
    i = data.draw(st.integers(0, len(lines) - 2), label="line")  # last element is ""
    obj = json.loads(lines[i])
    op = data.draw(st.sampled_from(["delete_field", "set_field", "change_label", "add_field",
                                    "duplicate_line", "drop_line"]), label="jsonl op")
    if op == "delete_field":
        obj.pop(data.draw(st.sampled_from(sorted(obj)), label="key"))
    elif op == "set_field":
        key = data.draw(st.sampled_from(sorted(obj)), label="key")
        obj[key] = data.draw(json_values, label="value")
    elif op == "change_label":
        obj["label"] = data.draw(st.sampled_from(["negative", "Positive", "yes ", "", "maybe"])
                                 | st.text(max_size=8), label="label")
    elif op == "add_field":
        obj[data.draw(st.sampled_from(["text_pair", "id", "extra"]), label="key")] = \
            data.draw(json_values, label="value")
    elif op == "duplicate_line":
        lines.insert(i, lines[i])
    else:
        del lines[i]
        return "\n".join(lines).encode("utf-8")
    lines[i] = json.dumps(obj, ensure_ascii=data.draw(st.booleans(), label="ascii"))
    return "\n".join(lines).encode("utf-8")


def corrupt_task_json(data: st.DataObject, raw: bytes, other_names: list[str]) -> bytes:
    doc = json.loads(raw.decode("utf-8"))
    op = data.draw(st.sampled_from(["delete_key", "set_key", "duplicate_name", "labels",
                                    "sizes", "input_fields"]), label="task.json op")
    keys = sorted(doc)
    if op == "delete_key":
        doc.pop(data.draw(st.sampled_from(keys), label="key"))
    elif op == "set_key":
        doc[data.draw(st.sampled_from(keys), label="key")] = data.draw(json_values, label="value")
    elif op == "duplicate_name":
        doc["name"] = data.draw(st.sampled_from(other_names), label="name")
    elif op == "labels":
        labels = list(doc["labels"])
        how = data.draw(st.sampled_from(["drop", "rename", "dup", "reorder", "extra"]), label="how")
        if how == "drop":
            labels.pop(data.draw(st.integers(0, len(labels) - 1)))
        elif how == "rename":
            labels[data.draw(st.integers(0, len(labels) - 1))] = data.draw(st.text(max_size=8))
        elif how == "dup":
            labels.append(labels[0])
        elif how == "reorder":
            labels = data.draw(st.permutations(labels))
        else:
            labels.append("unused label")
        doc["labels"] = labels
    elif op == "sizes":
        split = data.draw(st.sampled_from(SPLITS))
        doc["sizes"][split] += data.draw(st.sampled_from([-1, 1]))
    else:
        doc["input_fields"] = data.draw(st.sampled_from([["text"], ["text", "text_pair"],
                                                         ["text_pair"], "text", []]))
    return json.dumps(doc, indent=2, ensure_ascii=False).encode("utf-8")


def check_load(suite: Path, reference=None) -> None:
    try:
        loaded = load_suite(str(suite))
    except TaskDataError as e:
        event(f"TaskDataError field={e.field}")
        assert str(e)
        assert e.file is None or e.file.startswith(str(suite)), e.file
        assert e.line is None or (isinstance(e.line, int) and e.line >= 1)
        return
    event("loaded fine")
    assert loaded == load_suite(str(suite))  # deterministic
    if reference is not None:
        assert loaded == reference(suite)


@seed(FUZZ_SEED)
@SETTINGS
@given(data=st.data())
def test_corrupted_folder_suite(template, data):
    with tempfile.TemporaryDirectory() as tmp:
        suite = Path(tmp) / "suite"
        shutil.copytree(template, suite)
        files = suite_files(suite)
        target = data.draw(st.sampled_from(files), label="file")
        raw = target.read_bytes()
        kind = data.draw(st.sampled_from(["bytes", "structured", "delete_file", "rename_dir"]),
                         label="kind")
        if kind == "delete_file":
            target.unlink()
        elif kind == "rename_dir":
            target.parent.rename(suite / data.draw(st.sampled_from(["gamma", "alpha2", "_x", "zz"])))
        elif kind == "bytes":
            target.write_bytes(corrupt_bytes(data, raw))
        elif target.name == "task.json":
            others = [n for n in TASKS if n != target.parent.name] + ["", "a/b", " alpha"]
            target.write_bytes(corrupt_task_json(data, raw, others))
        else:
            target.write_bytes(corrupt_jsonl(data, raw))
        check_load(suite, reference_parse)


# ------------------------------------------------------------------------ CSV and CrossFit


@pytest.fixture(scope="module")
def table_template(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("fuzz_csv") / "table.csv"
    lines = ["text,text_pair,label,split,task,type"]
    for split in ("train", "dev", "test"):
        for i in range(3):
            lines.append(f'"premise, {split} {i}",hyp {i},{"yes" if i % 2 else "no"},{split},nli_t,nli')
            lines.append(f'"a ""quoted"" review {split} {i}",,{"pos" if i % 2 else "neg"},{split},senti,')
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    g = f.with_name("plain.tsv")
    g.write_text("text\tlabel\n" + "".join(f"sms {i} é\t{'spam' if i % 2 else 'ham'}\n"
                                           for i in range(12)), encoding="utf-8")
    return f.parent


@seed(FUZZ_SEED)
@settings(max_examples=N_EXAMPLES, deadline=None, database=None, print_blob=True)
@given(data=st.data())
def test_corrupted_table(table_template, data):
    with tempfile.TemporaryDirectory() as tmp:
        name = data.draw(st.sampled_from(["table.csv", "plain.tsv"]), label="file")
        target = Path(tmp) / name
        raw = (table_template / name).read_bytes()
        if data.draw(st.booleans(), label="cell op"):
            lines = raw.decode("utf-8").split("\n")
            i = data.draw(st.integers(0, len(lines) - 2), label="line")
            sep = "\t" if name.endswith(".tsv") else ","
            cells = lines[i].split(sep)
            j = data.draw(st.integers(0, len(cells) - 1), label="cell")
            cells[j] = data.draw(st.sampled_from(["", " ", "dev", "validation", "x", "spam", '"'])
                                 | st.text(max_size=5), label="value")
            lines[i] = sep.join(cells)
            target.write_text("\n".join(lines), encoding="utf-8")
        else:
            target.write_bytes(corrupt_bytes(data, raw))
        try:
            loaded = load_suite(str(target))
        except TaskDataError as e:
            event(f"TaskDataError field={e.field}")
            assert e.file is not None and e.file.startswith(str(target)), str(e)
            return
        event("loaded fine")
        assert loaded == load_suite(str(target))


@pytest.fixture(scope="module")
def crossfit_template(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("fuzz_cf") / "cf"
    d.mkdir()
    for split, n in (("train", 2), ("dev", 2), ("test", 3)):
        (d / f"glue-sst2_16_13_{split}.tsv").write_text(
            "".join(f"film {split} {i} très bien\t{lab}\n" for i in range(n)
                    for lab in ("positive", "negative")), encoding="utf-8")
        (d / f"rte_16_21_{split}.tsv").write_text(
            "".join(f"premise {i} [SEP] hyp {split} {i}\t{lab}\n" for i in range(n)
                    for lab in ("entailment", "not_entailment")), encoding="utf-8")
    (d / "ontology.json").write_text('{"glue-sst2": "sentiment", "rte": "nli"}\n')
    return d


@seed(FUZZ_SEED)
@settings(max_examples=N_EXAMPLES, deadline=None, database=None, print_blob=True)
@given(data=st.data())
def test_corrupted_crossfit(crossfit_template, data):
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "cf"
        shutil.copytree(crossfit_template, d)
        target = data.draw(st.sampled_from(suite_files(d)), label="file")
        if data.draw(st.integers(0, 9), label="delete?") == 0:
            target.unlink()
        else:
            target.write_bytes(corrupt_bytes(data, target.read_bytes()))
        check_load(d)
