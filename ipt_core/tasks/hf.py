"""Source: a Hugging Face dataset, ``hf:<name or path>[:<config>]`` (needs the optional ``datasets``).

A folder written by ``save_to_disk`` is read with ``load_from_disk``. A dataset name is loaded from
the local Hugging Face cache only: while it loads, ``datasets`` and ``huggingface_hub`` are put in
offline mode (``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE``), so nothing is downloaded at run time.
Set ``IPT_HF_DOWNLOAD=1`` to let it download (an explicit opt-in; see :func:`download_allowed`).

Columns: ``text`` (and optionally ``text_pair``), ``label`` (strings, or a ``ClassLabel``), and
optionally ``split``, ``task``, ``type``. Splits: train, validation (or dev) and test, or one split
divided per label as for CSV files.

Example:
    >>> load_hf("hf:/tmp/my_saved_dataset").names()    # doctest: +SKIP
    ['my_saved_dataset']
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Any, Iterator

from ipt_core.tasks.errors import SuiteSourceError, TaskDataError
from ipt_core.tasks.model import Suite
from ipt_core.tasks.rows import SPLIT_ALIASES, Row, tasks_from_rows
from ipt_core.tasks.validation import bad_text, type_name

__all__ = ["DOWNLOAD_ENV", "download_allowed", "hub_offline", "load_hf", "split_hf_spec"]

DOWNLOAD_ENV = "IPT_HF_DOWNLOAD"
"""Environment variable: ``1`` (or true/yes/on) lets ``hf:NAME`` download; anything else keeps it offline."""

_OFFLINE_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
_offline_lock = threading.Lock()  # the offline switch is process-wide: one load at a time flips it


def download_allowed() -> bool:
    """True when the user opted in to downloads with ``IPT_HF_DOWNLOAD=1``.

    Example:
        >>> os.environ.pop(DOWNLOAD_ENV, None); download_allowed()   # doctest: +SKIP
        False
    """
    return os.environ.get(DOWNLOAD_ENV, "").strip().lower() in ("1", "true", "yes", "on")


@contextlib.contextmanager
def hub_offline(datasets: Any) -> Iterator[None]:
    """Offline mode for ``datasets`` and ``huggingface_hub`` inside the block, restored after it.

    Both libraries read ``HF_HUB_OFFLINE`` once, when imported, into module constants; so the block
    sets the environment variables (for anything imported inside it) and the constants
    ``datasets.config.HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` and
    ``huggingface_hub.constants.HF_HUB_OFFLINE``, which their request code reads at call time.
    """
    import huggingface_hub.constants as hub_constants

    targets = [(datasets.config, "HF_HUB_OFFLINE"), (datasets.config, "HF_DATASETS_OFFLINE"),
               (hub_constants, "HF_HUB_OFFLINE")]
    with _offline_lock:
        saved_env = {k: os.environ.get(k) for k in _OFFLINE_ENV}
        saved = [(obj, attr, getattr(obj, attr)) for obj, attr in targets if hasattr(obj, attr)]
        try:
            os.environ.update({k: "1" for k in _OFFLINE_ENV})
            for obj, attr, _ in saved:
                setattr(obj, attr, True)
            yield
        finally:
            for obj, attr, value in saved:
                setattr(obj, attr, value)
            for k, v in saved_env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def split_hf_spec(spec: str) -> tuple[str, str | None]:
    """``"hf:glue:sst2"`` -> ``("glue", "sst2")``; an existing path keeps its colons."""
    rest = spec[3:]
    if not rest:
        raise TaskDataError(spec, None, None, "expected hf:<name or path>[:<config>]")
    if ":" in rest and not Path(rest).exists():
        name, config = rest.rsplit(":", 1)
        return name, (config or None)
    return rest, None


def load_hf(spec: str) -> Suite:
    """Load and validate the suite of an ``hf:`` spec (see the module docstring)."""
    name, config = split_hf_spec(spec)
    try:
        import datasets  # optional dependency, imported only here
    except ImportError:
        raise SuiteSourceError(spec, None, None,
                               "loading a Hugging Face dataset needs the optional package "
                               "`datasets` (pip install datasets)") from None
    local = Path(name).expanduser()
    saved = local.is_dir() and any((local / f).exists() for f in
                                   ("dataset_dict.json", "state.json", "dataset_info.json"))
    try:
        if saved:
            ds = datasets.load_from_disk(str(local))
        elif download_allowed():
            ds = datasets.load_dataset(name, config)  # the user opted in: may download
        else:
            with hub_offline(datasets):  # local cache only: no network call
                ds = datasets.load_dataset(name, config)
    except Exception as e:  # the library raises many types (network, not found, format)
        hint = "" if saved or download_allowed() else (
            f" (offline: only the local Hugging Face cache is read; set {DOWNLOAD_ENV}=1 to download)")
        raise SuiteSourceError(spec, None, None,
                               f"could not load the dataset: {type(e).__name__}: {e}{hint}") from None
    if isinstance(ds, datasets.DatasetDict):
        found = list(ds.keys())
        dev_name = next((s for s in ("validation", "dev") if s in ds), None)
        if "train" not in ds or "test" not in ds or dev_name is None:
            raise TaskDataError(spec, None, "splits",
                                f"needs splits train, validation (or dev) and test; found {found}")
        parts = [("train", ds["train"]), ("dev", ds[dev_name]), ("test", ds["test"])]
        has_split = True
    elif isinstance(ds, datasets.Dataset):
        parts = [(None, ds)]
        has_split = "split" in ds.column_names
    else:
        raise TaskDataError(spec, None, None, f"expected a Dataset or DatasetDict, got "
                                              f"{type(ds).__name__}")
    stem = local.name if saved or local.exists() else name.rstrip("/").split("/")[-1]
    default_task = f"{stem}_{config}" if config else stem
    rows: list[Row] = []
    label_order: list[str] | None = None
    for split, d in parts:
        cols = list(d.column_names)
        where_file = f"{spec}[{split or 'data'}]"
        for need in ("text", "label"):
            if need not in cols:
                raise TaskDataError(where_file, None, need,
                                    f'missing column "{need}"; columns are {cols}')
        feat = d.features["label"]
        names = list(feat.names) if isinstance(feat, datasets.ClassLabel) else None
        if names is not None:
            if label_order is None:
                label_order = names
            elif names != label_order:
                raise TaskDataError(where_file, None, "label",
                                    f"ClassLabel names {names} differ from another split's "
                                    f"{label_order}")
        data = d.to_dict()
        n = len(data["label"])
        for i in range(n):
            where = (where_file, None, f"row {i}: ")
            lab = data["label"][i]
            if names is not None:
                if isinstance(lab, bool) or not isinstance(lab, int) or not 0 <= lab < len(names):
                    raise TaskDataError(where_file, None, "label",
                                        f"row {i}: {lab!r} is not a class index into {names}")
                lab = names[lab]
            elif not isinstance(lab, str):
                raise TaskDataError(where_file, None, "label",
                                    f"row {i}: labels must be strings or ClassLabel indices, got "
                                    f"{type_name(lab)} {lab!r:.40} (cast the column to "
                                    "datasets.ClassLabel(names=[...]))")
            lab = lab.strip()
            if not lab:
                raise TaskDataError(where_file, None, "label", f"row {i}: is empty")
            row_split = split
            if split is None and has_split:
                value = data["split"][i]
                row_split = SPLIT_ALIASES.get(str(value).strip().lower())
                if row_split is None:
                    raise TaskDataError(where_file, None, "split",
                                        f"row {i}: {value!r:.40} is not train, dev or test")
            task = default_task
            if "task" in data:
                task = data["task"][i]
                if not isinstance(task, str) or not task.strip():
                    raise TaskDataError(where_file, None, "task",
                                        f"row {i}: must be a non-empty string, got {task!r:.40}")
                task = task.strip()
            type_ = data["type"][i] if "type" in data else None
            if type_ is not None and not isinstance(type_, str):
                raise TaskDataError(where_file, None, "type",
                                    f"row {i}: must be a string, got {type_name(type_)}")
            text = data["text"][i]
            why = bad_text(text)
            if why:
                raise TaskDataError(where_file, None, "text", f"row {i}: {why}")
            pair = data["text_pair"][i] if "text_pair" in data else None
            if pair is not None and not isinstance(pair, str):
                raise TaskDataError(where_file, None, "text_pair",
                                    f"row {i}: must be a string, got {type_name(pair)}")
            rows.append(Row(where, task, type_.strip() if type_ else None, row_split,
                             text, pair or None, lab))
    tasks = tasks_from_rows(rows, spec, has_split=has_split, label_order=label_order)
    return Suite(name=default_task, source=spec, tasks=tasks)
