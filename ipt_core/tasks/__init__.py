"""Task suites: the data layer of ``ipt_core``.

A *task* is a few-shot text classification problem (label names, one or two text fields,
train/dev/test examples); a *suite* is an ordered set of tasks plus where they came from.
Every suite is fully validated when it is loaded: :func:`load_suite` returns a complete
:class:`Suite` or raises one :class:`TaskDataError` naming the file, line and field.

Sources, chosen by one string ``spec`` (see :func:`load_suite`):

* a folder of task folders (``task.json`` + ``train/dev/test.jsonl``), or one task folder;
* a CrossFit-style folder (``{task}_{k}_{seed}_{train|dev|test}.tsv``, ``input<TAB>output``);
* one ``.csv`` / ``.tsv`` file with a header (``text[, text_pair], label[, split][, task][, type]``);
* a Hugging Face dataset, ``hf:<name or path>[:<config>]`` (needs the optional ``datasets``; a name is
  read from the local cache only unless ``IPT_HF_DOWNLOAD=1``);
* ``demo``: the built-in suite shipped in ``ipt_core/suites/demo``.

Example:
    >>> suite = load_suite("demo")                      # doctest: +SKIP
    >>> task = suite.task("sms_spam")                   # doctest: +SKIP
    >>> task.sizes()                                    # doctest: +SKIP
    {'train': 32, 'dev': 32, 'test': 80}
    >>> task.resample(k=8, seed=1).sizes()["train"]     # doctest: +SKIP
    16

The package, one module a job: :mod:`~ipt_core.tasks.model` (Example, Task, Suite),
:mod:`~ipt_core.tasks.errors` and :mod:`~ipt_core.tasks.validation`, one module per source
(:mod:`~ipt_core.tasks.folders`, :mod:`~ipt_core.tasks.crossfit`, :mod:`~ipt_core.tasks.table` over
:mod:`~ipt_core.tasks.rows`, :mod:`~ipt_core.tasks.hf`, :mod:`~ipt_core.tasks.demo`),
:mod:`~ipt_core.tasks.resample`, :mod:`~ipt_core.tasks.load` (:func:`load_suite`) and
:mod:`~ipt_core.tasks.report`. Everything public is re-exported here: import from ``ipt_core.tasks``.
"""

from __future__ import annotations

from ipt_core.tasks.demo import demo_suite_path
from ipt_core.tasks.errors import SuiteSourceError, TaskDataError
from ipt_core.tasks.folders import load_task_folder
from ipt_core.tasks.load import load_suite
from ipt_core.tasks.model import SPLITS, Example, Suite, Task
from ipt_core.tasks.report import format_tasks_table, tasks_report
from ipt_core.tasks.resample import resample
from ipt_core.tasks.rows import CSV_SPLIT_SEED

__all__ = [
    "TaskDataError",
    "SuiteSourceError",
    "Example",
    "Task",
    "Suite",
    "SPLITS",
    "CSV_SPLIT_SEED",
    "load_suite",
    "load_task_folder",
    "demo_suite_path",
    "tasks_report",
    "format_tasks_table",
    "resample",
]
