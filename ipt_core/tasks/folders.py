"""Source: a folder of task folders, or one task folder (``task.json`` + ``train/dev/test.jsonl``).

Example:
    >>> t = load_task_folder(Path("../shared/tasks-real/mrpc"))  # doctest: +SKIP
    >>> t.name, t.is_pair, t.sizes()                              # doctest: +SKIP
    ('mrpc', True, {'train': 32, 'dev': 32, 'test': 200})
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ipt_core.tasks.errors import TaskDataError
from ipt_core.tasks.model import SPLITS, Example, Suite, Task
from ipt_core.tasks.reading import json_loads, key_line, read_text
from ipt_core.tasks.validation import (
    INPUT_FORMS,
    bad_labels,
    bad_task_name,
    bad_text,
    type_name,
)

__all__ = ["load_task_folder", "load_task_folders", "parse_task_json", "parse_jsonl"]


JSON_WS = " \t\r\n"


def parse_task_json(path: Path, folder_name: str) -> dict[str, Any]:
    text = read_text(path)
    doc = json_loads(text, path, None)
    if not isinstance(doc, dict):
        raise TaskDataError(path, 1, None, f"task.json must hold a JSON object, got {type_name(doc)}")

    def fail(key: str, message: str) -> None:
        raise TaskDataError(path, key_line(text, key), key, message)

    for key in ("name", "type", "labels", "input_fields"):
        if key not in doc:
            raise TaskDataError(path, None, key, f'missing required field "{key}"')
    why = bad_task_name(doc["name"])
    if why:
        fail("name", f"name {why}")
    if doc["name"] != folder_name:
        fail("name", f"name {doc['name']!r} does not match its folder name {folder_name!r}")
    if not isinstance(doc["type"], str) or not doc["type"].strip():
        fail("type", f"must be a non-empty string, got {type_name(doc['type'])} {doc['type']!r:.60}")
    why = bad_labels(doc["labels"])
    if why:
        fail("labels", why)
    fields = doc["input_fields"]
    if not isinstance(fields, list) or tuple(fields) not in INPUT_FORMS:
        fail("input_fields", f"must be [\"text\"] or [\"text\", \"text_pair\"], got {fields!r:.80}")
    desc = doc.get("description", "")
    if not isinstance(desc, str):
        fail("description", f"must be a string, got {type_name(desc)}")
    sizes = doc.get("sizes")
    if sizes is not None:
        if not isinstance(sizes, dict):
            fail("sizes", f"must be an object like {{\"train\": 32, ...}}, got {type_name(sizes)}")
        for s in SPLITS:
            n = sizes.get(s)
            if n is not None and (isinstance(n, bool) or not isinstance(n, int)):
                fail("sizes", f"sizes.{s} must be an integer, got {type_name(n)} {n!r:.40}")
    return doc


def parse_jsonl(path: Path, labels: tuple[str, ...], pair: bool) -> tuple[Example, ...]:
    text = read_text(path)
    index = {lab: i for i, lab in enumerate(labels)}
    out: list[Example] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip(JSON_WS):
            continue
        obj = json_loads(line, path, lineno)
        if not isinstance(obj, dict):
            raise TaskDataError(path, lineno, None,
                                f"expected a JSON object, got {type_name(obj)}")
        for f in ("text", "text_pair") if pair else ("text",):
            if f not in obj:
                raise TaskDataError(path, lineno, f, f'missing field "{f}"')
            why = bad_text(obj[f])
            if why:
                raise TaskDataError(path, lineno, f, why)
        if not pair and obj.get("text_pair") is not None:
            raise TaskDataError(path, lineno, "text_pair",
                                "the task's input_fields are [\"text\"] but the line has a text_pair")
        if "label" not in obj:
            raise TaskDataError(path, lineno, "label", 'missing field "label"')
        lab = obj["label"]
        if not isinstance(lab, str):
            raise TaskDataError(path, lineno, "label",
                                f"must be a label name (string), got {type_name(lab)} {lab!r:.60}")
        j = index.get(lab)
        if j is None:
            raise TaskDataError(path, lineno, "label",
                                f"{lab!r:.80} is not one of the task's labels {list(labels)}")
        out.append(Example(obj["text"], j, obj["text_pair"] if pair else None))
    if not out:
        raise TaskDataError(path, None, None, "the split is empty (no examples)")
    return tuple(out)


def load_task_folder(path: Path) -> Task:
    """Load one task folder: ``task.json`` + ``train.jsonl``, ``dev.jsonl``, ``test.jsonl``.

    The folder name must equal task.json's ``name``; ``sizes`` (when present) must match.

    Example:
        >>> t = load_task_folder(Path("../shared/tasks-real/mrpc"))  # doctest: +SKIP
        >>> t.name, t.is_pair, t.sizes()                              # doctest: +SKIP
        ('mrpc', True, {'train': 32, 'dev': 32, 'test': 200})
    """
    path = Path(path)
    if not path.is_dir():
        what = "no such folder" if not path.exists() else "expected a task folder, found a file"
        raise TaskDataError(path, None, None, what)
    tj = path / "task.json"
    if not tj.is_file():
        raise TaskDataError(tj, None, None,
                            "missing task.json (a task folder holds task.json and "
                            "train/dev/test.jsonl)")
    doc = parse_task_json(tj, path.name)
    labels = tuple(doc["labels"])
    fields = tuple(doc["input_fields"])
    pair = len(fields) == 2
    splits: dict[str, tuple[Example, ...]] = {}
    for s in SPLITS:
        f = path / f"{s}.jsonl"
        if not f.exists():
            raise TaskDataError(f, None, None, f"missing split file {s}.jsonl")
        splits[s] = parse_jsonl(f, labels, pair)
    sizes = doc.get("sizes")
    if isinstance(sizes, dict):
        for s in SPLITS:
            if s in sizes and sizes[s] != len(splits[s]):
                raise TaskDataError(tj, key_line(read_text(tj), "sizes"), "sizes",
                                    f"sizes.{s} is {sizes[s]} but {s}.jsonl has "
                                    f"{len(splits[s])} examples")
    return Task(name=doc["name"], type=doc["type"], labels=labels, input_fields=fields,
                description=doc.get("description", ""), train=splits["train"],
                dev=splits["dev"], test=splits["test"], source=str(path))


def load_task_folders(path: Path, folders: Sequence[Path], name: str, source: str) -> Suite:
    tasks = []
    for d in folders:
        if not d.is_dir():
            continue
        tasks.append(load_task_folder(d))
    return Suite(name=name, source=source, tasks=tuple(tasks))
