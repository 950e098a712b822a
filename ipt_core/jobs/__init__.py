"""A file-based job queue for the app: CLI commands run by a detached worker, surviving refreshes.

The Streamlit pages never train in their own process: they :func:`submit` a command line of
``python -m ipt_core`` and read the store when it is done. Everything about a job is a file, so a
browser refresh, a second browser tab or a restarted app sees the same queue::

    <store root>/jobs/<job_id>/request.json    format 2: command, args, label, resource ("cpu"|"gpu"), created
    <store root>/jobs/<job_id>/status.json     queued|running|done|failed|cancelled, pid, started, ended, returncode
    <store root>/jobs/<job_id>/log.txt         the command's stdout + stderr
    <store root>/jobs/<job_id>/progress.json   written by the CLI itself (IPT_PROGRESS_FILE, see progress.py)
    <store root>/jobs/<job_id>/result.json     the last stdout line of the ``--json`` command, parsed
    <store root>/jobs/<job_id>/estimate.json   the app's cost estimate, for overall progress and ETA
    <store root>/jobs/<job_id>/cancel          present once a cancel was asked for a running job
    <store root>/jobs/worker.pid               the pid of the last worker started for this store
    <store root>/jobs/.lock                    fcntl lock held while a job changes state

A store folder is not trusted, so neither is a job record: a request names a command of the
project's CLI and its arguments, never a module or an executable; the worker rebuilds the argv,
checks it with the CLI's own parser, ``limits`` and the allowed folders, and runs nothing else
(:mod:`~ipt_core.jobs.request`). Any other record is marked failed with a one-line reason.

Every JSON file is written atomically (temp file + ``os.replace``). A worker (``python -m
ipt_core.jobs worker --cache ROOT``) claims queued jobs oldest first under the lock, so several
workers never run the same job; it runs at most one "gpu" job at a time (over all workers) and
``--cpu-slots`` "cpu" jobs at once, and exits after ``--idle-exit`` seconds without work.
With ``--nproc N`` (or ``IPT_JOBS_NPROC=N``, ``gpus`` for one per visible GPU) it launches the
training jobs of "gpu" resource (``IPT_JOBS_NPROC_RESOURCES=cpu,gpu`` to include CPU jobs) with
torchrun on N processes of this machine (:func:`launch_argv`, :mod:`ipt_core.train.distributed`).

Example:
    >>> job = submit(root, ["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "2"],
    ...              label="PT on sms_spam")                          # doctest: +SKIP
    >>> ensure_worker(root)                                          # doctest: +SKIP
    >>> get_job(root, job.id).status                                 # doctest: +SKIP
    'running'
    >>> cancel(root, job.id).status                                  # doctest: +SKIP

The package: :mod:`~ipt_core.jobs.files` (atomic JSON, the lock), :mod:`~ipt_core.jobs.job` (the
:class:`Job` record), :mod:`~ipt_core.jobs.launch` (what a job runs), :mod:`~ipt_core.jobs.queue`
(submit/list/get/cancel/delete/log), :mod:`~ipt_core.jobs.request` (what a job may run),
:mod:`~ipt_core.jobs.worker` (:class:`Worker`) and
``__main__`` (the worker's command line). Everything public is re-exported here.
"""

from __future__ import annotations

from ipt_core.jobs.job import FINAL_STATES, STATES, Job, set_status
from ipt_core.jobs.launch import DISTRIBUTED_SUBCOMMANDS, launch_argv
from ipt_core.jobs.queue import (
    cancel,
    delete_job,
    get_job,
    list_jobs,
    log_tail,
    read_estimate,
    submit,
    write_estimate,
)
from ipt_core.jobs.request import JOB_COMMANDS, RESOURCES, RequestRefused
from ipt_core.jobs.worker import (
    EXIT_CANCELLED,
    KILL_AFTER_S,
    Worker,
    ensure_worker,
    run_job_inline,
    worker_pid,
)

__all__ = [
    "JOB_COMMANDS",
    "RequestRefused",
    "STATES",
    "FINAL_STATES",
    "Job",
    "submit",
    "list_jobs",
    "get_job",
    "cancel",
    "delete_job",
    "log_tail",
    "write_estimate",
    "read_estimate",
    "ensure_worker",
    "worker_pid",
    "run_job_inline",
    "launch_argv",
    "Worker",
    "RESOURCES",
    "DISTRIBUTED_SUBCOMMANDS",
    "EXIT_CANCELLED",
    "KILL_AFTER_S",
    "set_status",
]
