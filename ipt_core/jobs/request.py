"""What a job may run: the request record, and the checks it passes before any process starts.

A store folder is not trusted: anyone who can write a file there (an upload, a copied store, a
store on a shared disk) could plant a job record. So a request names a *command of the project's
CLI* and its arguments, never a module, an executable or an environment::

    {"format": 2, "command": "tune", "args": ["--suite", "demo", "--steps", "2"],
     "label": "PT on demo", "resource": "cpu", "created": 1765000000.0}

and the process a worker starts is rebuilt from it by :func:`job_argv`, always
``python -m ipt_core <command> <args> --json --cache <the store the job sits in>``. Before a worker
starts it, :func:`check_with_cli` parses that argv with the CLI's own parser and boundary checks
(:func:`ipt_core.cli.main.refusal`: every flag's range from ``limits``, the device, the suite, the
prompt length) and checks every path the arguments name against the folders the app may read
(:func:`ipt_core.paths.check_allowed`). A record of any other shape (an older format with
``module``/``argv``, unknown or missing fields, a wrong type, an unknown command) is refused by
:func:`check_record` with a one-line reason; the worker marks such a job failed and never runs it.

Example:
    >>> rec = {"format": 2, "command": "tasks", "args": ["--suite", "demo"], "label": "",
    ...        "resource": "cpu", "created": 0.0}
    >>> check_record(rec).command
    'tasks'
    >>> check_record({"module": "timeit", "argv": ["-s", "print(1)"]})
    Traceback (most recent call last):
    ...
    ipt_core.jobs.request.RequestRefused: job request has unknown fields ['argv', 'module'] and lacks ['args', 'command', 'created', 'format', 'label', 'resource']; only the project's CLI commands run as jobs
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ipt_core.errors import InputError

__all__ = ["REQUEST_FORMAT", "JOB_COMMANDS", "NO_CACHE_FLAG", "RESOURCES", "RequestRefused", "Request",
           "check_record", "check_args", "job_argv", "check_with_cli"]

REQUEST_FORMAT = 2
RESOURCES = ("cpu", "gpu")
# the CLI commands a job may run (``python -m ipt_core <command>``); umap runs as a job because its
# first fit compiles with numba for ~20 s, which must not block a page; transfer trains a bank of runs per seed
JOB_COMMANDS = ("tasks", "tune", "probe", "export", "ipt", "ist", "stability", "pipeline", "compare", "umap",
                "transfer")
# the CLI's ``tasks`` never touches the store and takes no --cache flag
NO_CACHE_FLAG = frozenset({"tasks"})
_KEYS = frozenset({"format", "command", "args", "label", "resource", "created"})
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
MAX_LABEL_CHARS = 300


class RequestRefused(InputError):
    """A job request that is not one of the project's commands, or one the CLI would refuse."""


@dataclass(frozen=True)
class Request:
    """A request record that passed :func:`check_record` (its shape; the CLI check comes later)."""

    command: str
    args: tuple[str, ...]
    label: str
    resource: str
    created: float


def check_args(command: Any, args: Any) -> tuple[str, tuple[str, ...]]:
    """``(command, args)`` when they name a job command and plain string arguments without ``--cache``.

    Raises:
        RequestRefused: an unknown command, a non-string or over-long argument, a NUL byte, too
            many arguments, or ``--cache`` (the job's results land in the store it sits in).
    """
    if not isinstance(command, str) or command not in JOB_COMMANDS:
        shown = repr(command)[:60]
        raise RequestRefused(f"job command {shown} is not one of the project's commands {list(JOB_COMMANDS)}")
    if not isinstance(args, (list, tuple)):
        raise RequestRefused(f"job arguments must be a list of strings, got {type(args).__name__}")
    if len(args) > MAX_ARGS:
        raise RequestRefused(f"job has {len(args)} arguments; at most {MAX_ARGS}")
    for a in args:
        if not isinstance(a, str):
            raise RequestRefused(f"job arguments must be strings, got {type(a).__name__}")
        if "\x00" in a or len(a) > MAX_ARG_CHARS:
            raise RequestRefused(f"job argument {a[:40]!r}... has a NUL byte or is over {MAX_ARG_CHARS} characters")
        if a == "--cache" or a.startswith("--cache="):
            raise RequestRefused("job arguments may not name --cache: a job's results land in the store it sits in")
    return command, tuple(args)


def check_record(rec: Any) -> Request:
    """The request when ``rec`` (a parsed ``request.json``) has exactly the current format's fields.

    Cheap (no parsing of the command line): readers such as :func:`~ipt_core.jobs.list_jobs` use it;
    a worker also runs :func:`check_with_cli` before it starts anything.

    Raises:
        RequestRefused: one line naming what is wrong.
    """
    if not isinstance(rec, dict):
        raise RequestRefused(f"job request is not a JSON object (got {type(rec).__name__})")
    keys = {k for k in rec if isinstance(k, str)}
    if len(keys) != len(rec) or keys != _KEYS:
        extra, missing = sorted(keys - _KEYS), sorted(_KEYS - keys)
        raise RequestRefused(f"job request has unknown fields {extra[:8]} and lacks {missing}; "
                             "only the project's CLI commands run as jobs")
    if rec["format"] != REQUEST_FORMAT or isinstance(rec["format"], bool):
        raise RequestRefused(f"job request format {str(rec['format'])[:20]!r} is not {REQUEST_FORMAT} "
                             "(made by another version of the app, or not by the app)")
    command, args = check_args(rec["command"], rec["args"])
    label, resource, created = rec["label"], rec["resource"], rec["created"]
    if not isinstance(label, str) or len(label) > MAX_LABEL_CHARS:
        raise RequestRefused(f"job label must be a string of at most {MAX_LABEL_CHARS} characters")
    if resource not in RESOURCES:
        raise RequestRefused(f"job resource must be one of {list(RESOURCES)}, got {str(resource)[:20]!r}")
    if isinstance(created, bool) or not isinstance(created, (int, float)) or not math.isfinite(created):
        raise RequestRefused("job creation time must be a finite number")
    return Request(command, args, label, resource, float(created))


def job_argv(command: str, args: Sequence[str], root: Path) -> list[str]:
    """The CLI argv a job runs: ``<command> <args> --json --cache <root>`` (``tasks`` takes no --cache).

    Example:
        >>> job_argv("tune", ["--steps", "2"], Path("/s"))
        ['tune', '--steps', '2', '--json', '--cache', '/s']
    """
    full = [command, *args]
    if "--json" not in full:
        full.append("--json")
    if command not in NO_CACHE_FLAG:
        full += ["--cache", str(root)]
    return full


def _path_values(ns: Any) -> list[tuple[str, str]]:
    """``(flag, path)`` for every argument of a parsed command that names a local file or folder."""
    from ipt_core.paths import looks_like_path

    out: list[tuple[str, str]] = []
    suite = getattr(ns, "suite", None)
    if isinstance(suite, str) and suite != "demo":
        local = suite[3:] if suite.startswith("hf:") else suite
        if not suite.startswith("hf:") or looks_like_path(local):
            out.append(("--suite", local))
    backbone = getattr(ns, "backbone", None)
    if isinstance(backbone, str) and ":" in backbone:
        model = backbone.split(":", 1)[1]
        if model and looks_like_path(model):
            out.append(("--backbone", model))
    if isinstance(getattr(ns, "out", None), str):
        out.append(("--out", ns.out))
    for extra in getattr(ns, "extra_store", None) or []:
        out.append(("--extra-store", extra))
    return out


def check_with_cli(command: str, args: Sequence[str], root: Path) -> list[str]:
    """The argv to run, after the CLI's parser and boundary checks and the allowed-folder check of
    every path it names; nothing is run or loaded beyond what ``cli.refusal`` reads.

    Raises:
        RequestRefused: the CLI's own one-line refusal, or a path outside the allowed folders.
    """
    from ipt_core.cli.main import build_parser, refusal
    from ipt_core.paths import PathNotAllowed, check_allowed

    command, args = check_args(command, args)
    argv = job_argv(command, args, root)
    err = io.StringIO()
    try:  # the parser alone first: paths are checked before the boundary checks read the suite
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            ns = build_parser(only=command).parse_args(argv)
    except SystemExit:
        raise RequestRefused(" ".join((err.getvalue().strip() or "the CLI refused the arguments").split())) from None
    if ns.command != command:
        raise RequestRefused(f"job arguments parse as command {ns.command!r}, not {command!r}")
    if command not in NO_CACHE_FLAG and getattr(ns, "cache", None) != str(root):
        raise RequestRefused("job arguments may not name --cache: a job's results land in the store it sits in")
    for flag, value in _path_values(ns):
        try:
            check_allowed(value, f"job argument {flag}")
        except (PathNotAllowed, OSError, RuntimeError) as exc:
            raise RequestRefused(str(exc)) from None
    line = refusal(argv)
    if line is not None:
        raise RequestRefused(" ".join(line.split()))
    return argv
