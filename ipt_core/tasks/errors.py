"""Errors of the task data layer: one exception names the file, the line and the field."""

from __future__ import annotations

import os

from ipt_core.errors import InputError

__all__ = ["TaskDataError", "SuiteSourceError"]


class TaskDataError(InputError):
    """Bad task data: names the file, the line (1-based, or None) and the field (or None).

    Example:
        >>> err = TaskDataError("t/train.jsonl", 7, "label", "not one of the labels")
        >>> print(err)
        t/train.jsonl, line 7, field "label": not one of the labels
        >>> (err.file, err.line, err.field)
        ('t/train.jsonl', 7, 'label')
    """

    def __init__(self, file: str | os.PathLike[str] | None, line: int | None,
                 field: str | None, message: str) -> None:
        file_s = None if file is None else str(file)
        super().__init__(file_s, line, field, message)
        self.file: str | None = file_s
        self.line: int | None = line
        self.field: str | None = field
        self.message: str = message

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file:
            parts.append(self.file)
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.field is not None:
            parts.append(f'field "{self.field}"')
        return f"{', '.join(parts)}: {self.message}" if parts else self.message


class SuiteSourceError(TaskDataError):
    """The source itself is unusable: a missing optional package or data that cannot be reached.

    Example:
        >>> raise SuiteSourceError("hf:imdb", None, None, "datasets is not installed")  # doctest: +SKIP
    """
