"""Source: a CrossFit-style folder, ``{task}_{k}_{seed}_{train|dev|test}.tsv`` with ``input<TAB>output``
lines, optionally in task sub-folders, with an optional ``ontology.json`` (task -> family).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from ipt_core.tasks.errors import TaskDataError
from ipt_core.tasks.model import SPLITS, Example, Suite, Task
from ipt_core.tasks.reading import json_loads, key_line, list_dir, read_text
from ipt_core.tasks.validation import INPUT_FORMS, bad_task_name, type_name

__all__ = ["CROSSFIT_RE", "CROSSFIT_SEP", "crossfit_files", "read_ontology", "parse_crossfit_tsv", "load_crossfit"]


CROSSFIT_RE = re.compile(r"^(?P<task>.+)_(?P<k>\d+)_(?P<seed>\d+)_(?P<split>train|dev|test)\.tsv$")
CROSSFIT_SEP = " [SEP] "


def crossfit_files(path: Path, entries: Sequence[Path]) -> dict[tuple[str, int, int, str], Path]:
    """(task, k, seed, split) -> file, from ``path`` and its task subfolders (CrossFit layout)."""
    candidates = [p for p in entries if p.is_file()]
    for d in entries:
        if d.is_dir():
            candidates.extend(p for p in list_dir(d) if p.is_file())
    found: dict[tuple[str, int, int, str], Path] = {}
    for p in candidates:
        m = CROSSFIT_RE.match(p.name)
        if m is None:
            continue
        key = (m["task"], int(m["k"]), int(m["seed"]), m["split"])
        if key in found:
            raise TaskDataError(p, None, None, f"the same CrossFit file is also at {found[key]}")
        found[key] = p
    return found


def read_ontology(path: Path) -> dict[str, str]:
    f = path / "ontology.json"
    if not f.exists():
        return {}
    text = read_text(f)
    doc = json_loads(text, f, None)
    if not isinstance(doc, dict):
        raise TaskDataError(f, 1, None,
                            f"ontology.json must map task name -> family, got {type_name(doc)}")
    for key, value in doc.items():
        if not isinstance(value, str) or not value.strip():
            raise TaskDataError(f, key_line(text, key), key,
                                f"family must be a non-empty string, got {type_name(value)}")
    return doc


def parse_crossfit_tsv(path: Path) -> list[tuple[int, str, str]]:
    """(line, input, output) rows of a CrossFit ``input<TAB>output`` file."""
    rows = []
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) == 1:
            raise TaskDataError(path, lineno, "output", "missing output (expected input<TAB>output)")
        if len(parts) > 2:
            raise TaskDataError(path, lineno, None,
                                f"expected input<TAB>output, found {len(parts)} tab-separated fields")
        inp, out = parts[0].strip(), parts[1].strip()
        if not inp:
            raise TaskDataError(path, lineno, "input", "is empty")
        if not out:
            raise TaskDataError(path, lineno, "output", "is empty")
        rows.append((lineno, inp, out))
    if not rows:
        raise TaskDataError(path, None, None, "the split is empty (no lines)")
    return rows


def load_crossfit(path: Path, files: dict[tuple[str, int, int, str], Path], name: str,
                   source: str, seed: int | None) -> Suite:
    ontology = read_ontology(path)
    variants: dict[str, set[tuple[int, int]]] = {}
    for task, k, s, _split in files:
        variants.setdefault(task, set()).add((s, k))
    tasks = []
    for task in sorted(variants):
        options = sorted(variants[task])
        if seed is None:
            s, k = options[0]
        else:
            picked = [o for o in options if o[0] == seed]
            if not picked:
                raise TaskDataError(path, None, "crossfit_seed",
                                    f"task {task!r} has no files for seed {seed}; "
                                    f"seeds available: {sorted({o[0] for o in options})}")
            s, k = picked[0]
        split_files = {}
        for split in SPLITS:
            f = files.get((task, k, s, split))
            if f is None:
                raise TaskDataError(path / f"{task}_{k}_{s}_{split}.tsv", None, None,
                                    f"missing split file for task {task!r} (k={k}, seed={s})")
            split_files[split] = f
        why = bad_task_name(task)
        if why:
            raise TaskDataError(split_files["train"], None, "task", f"task name {why}")
        rows = {sp: parse_crossfit_tsv(f) for sp, f in split_files.items()}
        labels = tuple(sorted({out for _, _, out in rows["train"]}))
        if len(labels) < 2:
            raise TaskDataError(split_files["train"], None, "output",
                                f"task {task!r} needs at least 2 distinct outputs in train, "
                                f"found {list(labels)}")
        pair = all(CROSSFIT_SEP in inp for sp in SPLITS for _, inp, _ in rows[sp])
        index = {lab: i for i, lab in enumerate(labels)}
        splits: dict[str, tuple[Example, ...]] = {}
        for sp in SPLITS:
            exs = []
            for lineno, inp, out in rows[sp]:
                j = index.get(out)
                if j is None:
                    raise TaskDataError(split_files[sp], lineno, "output",
                                        f"{out!r:.80} is not one of the task's labels {list(labels)} "
                                        "(the outputs seen in train)")
                if pair:
                    a, _, b = inp.partition(CROSSFIT_SEP)
                    if not a.strip():
                        raise TaskDataError(split_files[sp], lineno, "text",
                                            f"the text before {CROSSFIT_SEP.strip()} is empty")
                    if not b.strip():
                        raise TaskDataError(split_files[sp], lineno, "text_pair",
                                            f"the text after {CROSSFIT_SEP.strip()} is empty")
                    exs.append(Example(a, j, b))
                else:
                    exs.append(Example(inp, j))
            splits[sp] = tuple(exs)
        tasks.append(Task(
            name=task, type=ontology.get(task, "unknown"), labels=labels,
            input_fields=INPUT_FORMS[1] if pair else INPUT_FORMS[0],
            description=f"CrossFit task {task} (k={k}, seed={s})",
            train=splits["train"], dev=splits["dev"], test=splits["test"],
            source=str(split_files["train"].parent),
        ))
    return Suite(name=name, source=source, tasks=tuple(tasks))
