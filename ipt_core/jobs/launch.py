"""The process a worker starts for a checked job (plain, or under torchrun with ``IPT_JOBS_NPROC``),
and the environment it gets. What a job may run at all is decided by :mod:`ipt_core.jobs.request`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from ipt_core.errors import InputError
from ipt_core.jobs.job import Job
from ipt_core.jobs.request import RESOURCES

__all__ = ["REPO_ROOT", "DISTRIBUTED_SUBCOMMANDS", "env_nproc", "env_nproc_resources", "launch_argv", "child_env"]


REPO_ROOT = Path(__file__).resolve().parents[2]  # the folder holding ipt_core/: the checkout, or site-packages once installed
# subcommands that train and so may run under torchrun (see launch_argv and ipt_core.train.distributed)
DISTRIBUTED_SUBCOMMANDS = frozenset({"tune", "ipt", "ist", "stability", "pipeline", "compare", "export"})


def env_nproc() -> int:
    """``IPT_JOBS_NPROC``: processes per distributed job (an integer, or ``gpus`` for one per visible GPU)."""
    value = os.environ.get("IPT_JOBS_NPROC", "1").strip() or "1"
    if value in ("gpus", "auto"):
        import torch

        return max(1, torch.cuda.device_count())
    try:
        n = int(value)
    except ValueError as exc:
        raise InputError(f"IPT_JOBS_NPROC must be an integer or 'gpus', got {value!r}") from exc
    if n < 1:
        raise InputError(f"IPT_JOBS_NPROC must be at least 1, got {n}")
    return n


def env_nproc_resources() -> tuple[str, ...]:
    """``IPT_JOBS_NPROC_RESOURCES``: the job resources launched with torchrun (default ``gpu``)."""
    raw = os.environ.get("IPT_JOBS_NPROC_RESOURCES", "gpu")
    out = tuple(r.strip() for r in raw.split(",") if r.strip())
    bad = [r for r in out if r not in RESOURCES]
    if bad:
        raise InputError(f"IPT_JOBS_NPROC_RESOURCES: unknown resources {bad}; known: {RESOURCES}")
    return out


def launch_argv(job: Job, nproc: int = 1, resources: Sequence[str] = ("gpu",)) -> list[str]:
    """The process a worker starts for ``job``.

    ``python -m ipt_core <argv>`` (``job.argv`` was rebuilt from a checked request, see
    :mod:`ipt_core.jobs.request`); with ``nproc > 1``, a training subcommand and a resource in
    ``resources``, the same under torchrun on this machine::

        python -m torch.distributed.run --standalone --nproc-per-node N -m ipt_core tune ...

    (``--standalone``: a single-node rendezvous on a free local port, so concurrent jobs never
    collide.) Only rank 0 prints, so the job's log and ``result.json`` read as for one process.

    Example:
        >>> launch_argv(job, 4)[:6]                           # doctest: +SKIP
        ['/usr/bin/python3', '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '4']
    """
    if not job.argv:
        raise ValueError(f"job {job.id} has no command to run ({job.error or 'refused request'})")
    if nproc > 1 and job.resource in resources and job.argv[0] in DISTRIBUTED_SUBCOMMANDS:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
                "-m", "ipt_core", *job.argv]
    return [sys.executable, "-m", "ipt_core", *job.argv]


def child_env(job_dir: Path | None, root: Path) -> dict[str, str]:
    env = dict(os.environ)
    if job_dir is not None:
        env["IPT_PROGRESS_FILE"] = str(job_dir / "progress.json")
    env["IPT_CACHE"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"  # the log shows output as it happens
    # `python -m ipt_core` must find this checkout even when it is not pip-installed
    paths = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
