"""One entry point for every source: :func:`load_suite` picks the loader from the spec string."""

from __future__ import annotations

from pathlib import Path

from ipt_core.tasks.crossfit import crossfit_files, load_crossfit
from ipt_core.tasks.demo import demo_suite_path
from ipt_core.tasks.errors import SuiteSourceError, TaskDataError
from ipt_core.tasks.folders import load_task_folder, load_task_folders
from ipt_core.tasks.hf import load_hf
from ipt_core.tasks.model import Suite
from ipt_core.tasks.reading import list_dir
from ipt_core.tasks.table import load_table
from ipt_core.tasks.validation import type_name

__all__ = ["load_suite"]


def load_folder(path: Path, name: str, source: str, crossfit_seed: int | None) -> Suite:
    if (path / "task.json").exists():
        no_seed(source, crossfit_seed)
        return Suite(name=path.name, source=source, tasks=(load_task_folder(path),))
    entries = list_dir(path)
    subdirs = [p for p in entries if p.is_dir()]
    task_dirs = [d for d in subdirs if (d / "task.json").exists()]
    if task_dirs:
        no_seed(source, crossfit_seed)
        for d in subdirs:
            if d not in task_dirs:
                raise TaskDataError(d / "task.json", None, None,
                                    f"folder {d.name!r} in a suite of task folders has no "
                                    "task.json (every sub-folder must be a task folder)")
        return load_task_folders(path, subdirs, name, source)
    files = crossfit_files(path, entries)
    if files:
        return load_crossfit(path, files, name, source, crossfit_seed)
    raise TaskDataError(path, None, None,
                        "found no tasks: expected task folders (task.json + train/dev/test.jsonl), "
                        "a task folder, or CrossFit files {task}_{k}_{seed}_{train|dev|test}.tsv")


def no_seed(source: str, crossfit_seed: int | None) -> None:
    if crossfit_seed is not None:
        raise TaskDataError(source, None, "crossfit_seed",
                            "crossfit_seed only applies to CrossFit-style folders")


def load_suite(spec: str, *, crossfit_seed: int | None = None) -> Suite:
    """Load and validate a task suite from ``spec`` (all or nothing).

    ``spec`` is ``"demo"``; ``"hf:<name or path>[:<config>]"``; a ``.csv``/``.tsv`` file;
    a folder of task folders; one task folder; or a CrossFit-style folder, where
    ``crossfit_seed`` picks the data seed (default: the smallest seed of each task).
    Bad data raises :class:`TaskDataError`; an unusable source :class:`SuiteSourceError`.

    Example:
        >>> load_suite("demo").names()[:2]                     # doctest: +SKIP
        ['chat_toxicity', 'comment_toxicity']
        >>> load_suite("data/crossfit", crossfit_seed=21)       # doctest: +SKIP
        >>> load_suite("hf:/tmp/my_saved_dataset")              # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec.strip():
        raise TaskDataError(None, None, "spec", f"expected a suite spec string, got {spec!r:.60}")
    if crossfit_seed is not None and (isinstance(crossfit_seed, bool)
                                      or not isinstance(crossfit_seed, int)):
        raise TaskDataError(spec, None, "crossfit_seed",
                            f"must be an int or None, got {type_name(crossfit_seed)}")
    if spec == "demo":
        no_seed(spec, crossfit_seed)
        path = demo_suite_path()
        if not path.is_dir():
            raise SuiteSourceError(path, None, None, "the built-in demo suite is missing")
        return load_folder(path, "demo", "demo", None)
    if spec.startswith("hf:"):
        no_seed(spec, crossfit_seed)
        return load_hf(spec)
    path = Path(spec).expanduser()
    if not path.exists():
        raise TaskDataError(path, None, None, "no such file or folder")
    if path.is_file():
        no_seed(spec, crossfit_seed)
        if path.suffix.lower() in (".csv", ".tsv"):
            return load_table(path, spec)
        if path.name == "task.json":
            return Suite(name=path.parent.name, source=spec,
                         tasks=(load_task_folder(path.parent),))
        raise TaskDataError(path, None, None,
                            "unsupported file: expected a .csv or .tsv file, a folder, "
                            "'demo' or 'hf:<dataset>'")
    stem = path.resolve().name or str(path)
    return load_folder(path, stem, spec, crossfit_seed)
