"""Reports of a suite (the CLI's ``tasks`` subcommand): a JSON-able summary and a plain-text table."""

from __future__ import annotations

from typing import Any

from ipt_core.tasks.model import Suite

__all__ = ["tasks_report", "format_tasks_table"]


def tasks_report(suite: Suite) -> dict[str, Any]:
    """A JSON-able summary of a suite: name, type, labels and split sizes per task.

    Example:
        >>> tasks_report(load_suite("demo"))["tasks"][0]["sizes"]  # doctest: +SKIP
        {'train': 32, 'dev': 32, 'test': 80}
    """
    return {"tasks": [{"name": t.name, "type": t.type, "labels": list(t.labels),
                       "sizes": t.sizes()} for t in suite.tasks]}


def format_tasks_table(suite: Suite) -> str:
    """A plain-text table: name, type, number of labels, train/dev/test sizes.

    Example:
        >>> print(format_tasks_table(load_suite("demo")))  # doctest: +SKIP
        name           type      labels  train  dev  test
        chat_toxicity  toxicity       2     32   32    80
        ...
    """
    header = ["name", "type", "labels", "train", "dev", "test"]
    rows = [[t.name, t.type, str(len(t.labels)), *(str(n) for n in t.sizes().values())]
            for t in suite.tasks]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def fmt(r: list[str]) -> str:
        cells = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        return "  ".join(cells).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])
