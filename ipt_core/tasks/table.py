"""Source: one ``.csv`` / ``.tsv`` file with a header ``text[, text_pair], label[, split][, task][, type]``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ipt_core.tasks.errors import TaskDataError
from ipt_core.tasks.model import Suite
from ipt_core.tasks.reading import read_text
from ipt_core.tasks.rows import SPLIT_ALIASES, Row, tasks_from_rows

__all__ = ["load_table"]


def load_table(path: Path, source: str) -> Suite:
    """One CSV (comma) or TSV (tab) file with a header row."""
    text = read_text(path)
    tsv = path.suffix.lower() == ".tsv"
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL, strict=True)
    file = str(path)
    header: list[str] | None = None
    rows: list[Row] = []
    col: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not any(v.strip() for v in record):
                continue
            if header is None:
                header = [h.strip().lower() for h in record]
                for i, h in enumerate(header):
                    if h in col:
                        raise TaskDataError(path, line, h, "column appears twice in the header")
                    col[h] = i
                for need in ("text", "label"):
                    if need not in col:
                        raise TaskDataError(path, line, need,
                                            f'missing column "{need}"; the header is {header} '
                                            "(expected text[, text_pair], label[, split][, task]"
                                            "[, type])")
                continue
            if len(record) != len(header):
                raise TaskDataError(path, line, None,
                                    f"expected {len(header)} columns like the header, "
                                    f"found {len(record)}")

            def get(name: str) -> str | None:
                return record[col[name]] if name in col else None

            label = record[col["label"]].strip()
            if not label:
                raise TaskDataError(path, line, "label", "is empty")
            split = get("split")
            if split is not None:
                split_key = SPLIT_ALIASES.get(split.strip().lower())
                if split_key is None:
                    raise TaskDataError(path, line, "split",
                                        f"{split!r:.40} is not train, dev (or validation) or test")
                split = split_key
            task = get("task")
            if task is not None:
                task = task.strip()
                if not task:
                    raise TaskDataError(path, line, "task", "is empty")
            type_ = get("type")
            pair = get("text_pair")
            rows.append(Row((file, line, ""), task if task is not None else path.stem,
                             type_.strip() if type_ is not None else None, split,
                             record[col["text"]], pair if pair else None, label))
    except csv.Error as e:
        raise TaskDataError(path, reader.line_num or None, None, f"malformed CSV: {e}") from None
    if header is None:
        raise TaskDataError(path, None, None, "the file is empty (no header row)")
    tasks = tasks_from_rows(rows, file, has_split="split" in col)
    return Suite(name=path.stem, source=source, tasks=tasks)
