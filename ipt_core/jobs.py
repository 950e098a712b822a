"""A file-based job queue for the app: CLI commands run by a detached worker, surviving refreshes.

The Streamlit pages never train in their own process: they :func:`submit` a command line of
``python -m ipt_core`` and read the store when it is done. Everything about a job is a file, so a
browser refresh, a second browser tab or a restarted app sees the same queue::

    <store root>/jobs/<job_id>/request.json    argv, module, label, resource ("cpu"|"gpu"), created
    <store root>/jobs/<job_id>/status.json     queued|running|done|failed|cancelled, pid, started, ended, returncode
    <store root>/jobs/<job_id>/log.txt         the command's stdout + stderr
    <store root>/jobs/<job_id>/progress.json   written by the CLI itself (IPT_PROGRESS_FILE, see progress.py)
    <store root>/jobs/<job_id>/result.json     the last stdout line of the ``--json`` command, parsed
    <store root>/jobs/<job_id>/cancel          present once a cancel was asked for a running job
    <store root>/jobs/worker.pid               the pid of the last worker started for this store
    <store root>/jobs/.lock                    fcntl lock held while a job changes state

Every JSON file is written atomically (temp file + ``os.replace``). A worker (``python -m
ipt_core.jobs worker --cache ROOT``) claims queued jobs oldest first under the lock, so several
workers never run the same job; it runs at most one "gpu" job at a time (over all workers) and
``--cpu-slots`` "cpu" jobs at once, and exits after ``--idle-exit`` seconds without work.
With ``--nproc N`` (or ``IPT_JOBS_NPROC=N``, ``gpus`` for one per visible GPU) it launches the
training jobs of "gpu" resource (``IPT_JOBS_NPROC_RESOURCES=cpu,gpu`` to include CPU jobs) with
torchrun on N processes of this machine (:func:`launch_argv`, :mod:`ipt_core.distributed`).

Example:
    >>> job = submit(root, ["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "2"],
    ...              label="PT on sms_spam")                          # doctest: +SKIP
    >>> ensure_worker(root)                                          # doctest: +SKIP
    >>> get_job(root, job.id).status                                 # doctest: +SKIP
    'running'
    >>> cancel(root, job.id).status                                  # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

__all__ = [
    "SUBCOMMANDS",
    "STATES",
    "FINAL_STATES",
    "Job",
    "submit",
    "list_jobs",
    "get_job",
    "cancel",
    "delete_job",
    "log_tail",
    "ensure_worker",
    "worker_pid",
    "run_job_inline",
    "launch_argv",
    "Worker",
]

# subcommand -> the module run as ``python -m <module> <subcommand> ...``
SUBCOMMANDS: dict[str, str] = {
    "tasks": "ipt_core",
    "tune": "ipt_core",
    "probe": "ipt_core",
    "export": "ipt_core",
    "ipt": "ipt_core",
    "ist": "ipt_core",
    "stability": "ipt_core",
    "pipeline": "ipt_core",
    "compare": "ipt_core",
    "umap": "ipt_core.maps",  # UMAP coordinates of a task map (numba's compile must not block a page)
}
# the CLI's ``tasks`` never touches the store and takes no --cache flag
_NO_CACHE_FLAG = frozenset({"tasks"})
STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL_STATES = frozenset({"done", "failed", "cancelled"})
RESOURCES = ("cpu", "gpu")
EXIT_CANCELLED = 130
KILL_AFTER_S = 15.0  # a job that ignores SIGTERM this long gets SIGKILL
_ID_RE = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{6}-[0-9a-f]{8}$")
_REPO_ROOT = Path(__file__).resolve().parent.parent
# subcommands that train and so may run under torchrun (see launch_argv and ipt_core.distributed)
DISTRIBUTED_SUBCOMMANDS = frozenset({"tune", "ipt", "ist", "stability", "pipeline", "compare", "export"})


def _env_nproc() -> int:
    """``IPT_JOBS_NPROC``: processes per distributed job (an integer, or ``gpus`` for one per visible GPU)."""
    value = os.environ.get("IPT_JOBS_NPROC", "1").strip() or "1"
    if value in ("gpus", "auto"):
        import torch

        return max(1, torch.cuda.device_count())
    try:
        n = int(value)
    except ValueError as exc:
        raise ValueError(f"IPT_JOBS_NPROC must be an integer or 'gpus', got {value!r}") from exc
    if n < 1:
        raise ValueError(f"IPT_JOBS_NPROC must be at least 1, got {n}")
    return n


def _env_nproc_resources() -> tuple[str, ...]:
    """``IPT_JOBS_NPROC_RESOURCES``: the job resources launched with torchrun (default ``gpu``)."""
    raw = os.environ.get("IPT_JOBS_NPROC_RESOURCES", "gpu")
    out = tuple(r.strip() for r in raw.split(",") if r.strip())
    bad = [r for r in out if r not in RESOURCES]
    if bad:
        raise ValueError(f"IPT_JOBS_NPROC_RESOURCES: unknown resources {bad}; known: {RESOURCES}")
    return out


def launch_argv(job: "Job", nproc: int = 1, resources: Sequence[str] = ("gpu",)) -> list[str]:
    """The process a worker starts for ``job``.

    ``python -m <module> <argv>``; with ``nproc > 1``, a training subcommand of ``ipt_core`` and a
    resource in ``resources``, the same under torchrun on this machine::

        python -m torch.distributed.run --standalone --nproc-per-node N -m ipt_core tune ...

    (``--standalone``: a single-node rendezvous on a free local port, so concurrent jobs never
    collide.) Only rank 0 prints, so the job's log and ``result.json`` read as for one process.

    Example:
        >>> launch_argv(job, 4)[:6]                           # doctest: +SKIP
        ['/usr/bin/python3', '-m', 'torch.distributed.run', '--standalone', '--nproc-per-node', '4']
    """
    if (nproc > 1 and job.module == "ipt_core" and job.resource in resources and job.argv
            and job.argv[0] in DISTRIBUTED_SUBCOMMANDS):
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
                "-m", job.module, *job.argv]
    return [sys.executable, "-m", job.module, *job.argv]


# --------------------------------------------------------------------------------------------------
# files


def _jobs_dir(root: str | os.PathLike) -> Path:
    return Path(root).expanduser().resolve() / "jobs"


def _write_json(path: Path, obj: Any) -> None:
    """Atomic write: readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _locked(root: str | os.PathLike, name: str = ".lock") -> Iterator[None]:
    """Hold an exclusive fcntl lock on ``jobs/<name>`` (released when the process dies, too)."""
    d = _jobs_dir(root)
    d.mkdir(parents=True, exist_ok=True)
    fd = os.open(d / name, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _check_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _ID_RE.match(job_id):
        raise KeyError(f"not a job id: {job_id!r}")
    return job_id


def _pid_alive(pid: int | None) -> bool:
    """True when ``pid`` runs and is not a zombie (an exited child not yet reaped by its parent)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


def _child_env(job_dir: Path | None, root: Path) -> dict[str, str]:
    env = dict(os.environ)
    if job_dir is not None:
        env["IPT_PROGRESS_FILE"] = str(job_dir / "progress.json")
    env["IPT_CACHE"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"  # the log shows output as it happens
    # `python -m ipt_core` must find this checkout even when it is not pip-installed
    paths = [str(_REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


# --------------------------------------------------------------------------------------------------
# jobs


@dataclass(frozen=True)
class Job:
    """One job as read from its folder (a snapshot; read it again with :func:`get_job`).

    Example:
        >>> job = get_job(root, "20250101-120000-000000-0a1b2c3d")   # doctest: +SKIP
        >>> job.status, job.command, job.fraction                      # doctest: +SKIP
        ('running', 'python -m ipt_core tune --suite demo ... --json --cache /x/cache', 0.42)
    """

    id: str
    root: Path
    argv: tuple[str, ...]
    module: str
    label: str
    resource: str
    created: float
    status: str
    pid: int | None = None
    worker: int | None = None
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    error: str | None = None
    progress: dict | None = None
    result: Any = None

    @property
    def dir(self) -> Path:
        """The job's folder, ``<root>/jobs/<id>``."""
        return self.root / "jobs" / self.id

    @property
    def command(self) -> str:
        """The shell command the job runs (copy-paste reproduces it)."""
        return shlex.join(["python", "-m", self.module, *self.argv])

    @property
    def finished(self) -> bool:
        return self.status in FINAL_STATES

    @property
    def fraction(self) -> float | None:
        """Progress in [0, 1] from progress.json (1.0 once done), None when unknown."""
        if self.status == "done":
            return 1.0
        p = self.progress or {}
        try:
            total = float(p.get("total") or 0)
            step = float(p.get("step") or 0)
        except (TypeError, ValueError):
            return None
        if total <= 0:
            return None
        return max(0.0, min(1.0, step / total))

    @property
    def seconds(self) -> float | None:
        """Run time so far (running) or in all (finished); None while queued."""
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


def _load_job(root: Path, job_id: str) -> Job | None:
    d = root / "jobs" / job_id
    req = _read_json(d / "request.json")
    st = _read_json(d / "status.json")
    if not isinstance(req, dict) or not isinstance(st, dict):
        return None
    prog = _read_json(d / "progress.json")
    res = _read_json(d / "result.json") if (d / "result.json").exists() else None
    try:
        return Job(
            id=job_id, root=root, argv=tuple(str(a) for a in req["argv"]), module=str(req.get("module", "ipt_core")),
            label=str(req.get("label", "")), resource=str(req.get("resource", "cpu")), created=float(req["created"]),
            status=str(st.get("status", "queued")), pid=st.get("pid"), worker=st.get("worker"),
            started=st.get("started"), ended=st.get("ended"), returncode=st.get("returncode"),
            error=st.get("error"), progress=prog if isinstance(prog, dict) else None, result=res,
        )
    except (KeyError, TypeError, ValueError):
        return None


def submit(root: str | os.PathLike, argv: Sequence[str], *, label: str = "", resource: str = "cpu") -> Job:
    """Queue ``python -m ipt_core <argv> --json --cache <root>``; returns the queued Job.

    ``argv[0]`` must be a known subcommand (:data:`SUBCOMMANDS`); ``--json`` and ``--cache`` are
    added here (``--cache`` is refused in ``argv``: results must land in this store). The job is
    made in a hidden folder and renamed into place, so it is never seen half-written.

    Raises:
        ValueError: unknown subcommand, bad resource, a non-string argument or ``--cache`` in argv.

    Example:
        >>> job = submit("/tmp/store", ["tasks", "--suite", "demo"], label="list demo")   # doctest: +SKIP
        >>> job.status, job.argv[-1]                                                      # doctest: +SKIP
        ('queued', '--json')
    """
    root_p = Path(root).expanduser().resolve()
    argv = list(argv)
    if not argv:
        raise ValueError(f"empty command; expected a subcommand, one of {sorted(SUBCOMMANDS)}")
    bad = [a for a in argv if not isinstance(a, str) or "\x00" in a]
    if bad:
        raise ValueError(f"command arguments must be strings without NUL bytes, got {bad[0]!r}")
    if argv[0] not in SUBCOMMANDS:
        raise ValueError(f"unknown subcommand {argv[0]!r}; expected one of {sorted(SUBCOMMANDS)}")
    if any(a == "--cache" or a.startswith("--cache=") for a in argv):
        raise ValueError("do not pass --cache: submit() adds the store's own --cache")
    if resource not in RESOURCES:
        raise ValueError(f"resource must be one of {list(RESOURCES)}, got {resource!r}")
    full = argv + ([] if "--json" in argv else ["--json"])
    if argv[0] not in _NO_CACHE_FLAG:
        full += ["--cache", str(root_p)]
    created = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(created)) + f"-{int(created % 1 * 1e6):06d}"
    job_id = f"{stamp}-{uuid.uuid4().hex[:8]}"
    jobs = root_p / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    tmp = jobs / f".new-{job_id}"
    tmp.mkdir()
    try:
        _write_json(tmp / "request.json", {"argv": full, "module": SUBCOMMANDS[argv[0]], "label": str(label),
                                           "resource": resource, "created": created})
        _write_json(tmp / "status.json", {"status": "queued"})
        os.rename(tmp, jobs / job_id)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    job = _load_job(root_p, job_id)
    assert job is not None
    return job


def list_jobs(root: str | os.PathLike) -> list[Job]:
    """All jobs of the store, newest first (an empty list when there are none).

    Example:
        >>> [(j.id, j.status) for j in list_jobs(root)][:1]   # doctest: +SKIP
        [('20250101-120000-000000-0a1b2c3d', 'done')]
    """
    root_p = Path(root).expanduser().resolve()
    try:
        names = [e.name for e in os.scandir(root_p / "jobs") if e.is_dir() and _ID_RE.match(e.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    jobs = [j for j in (_load_job(root_p, n) for n in names) if j is not None]
    jobs.sort(key=lambda j: (j.created, j.id), reverse=True)
    return jobs


def get_job(root: str | os.PathLike, job_id: str) -> Job:
    """The job ``job_id``; KeyError when there is no such job."""
    root_p = Path(root).expanduser().resolve()
    job = _load_job(root_p, _check_id(job_id))
    if job is None:
        raise KeyError(f"no job {job_id!r} in {root_p / 'jobs'}")
    return job


def _set_status(job_dir: Path, **fields: Any) -> None:
    st = _read_json(job_dir / "status.json") or {}
    st.update(fields)
    _write_json(job_dir / "status.json", st)


def cancel(root: str | os.PathLike, job_id: str) -> Job:
    """Cancel a job: a queued one at once; a running one gets SIGTERM (its whole process group).

    The CLI stops at its next training step and exits 130; the worker then records "cancelled".
    Nothing half-done reaches the store (results are written only once a bank has finished).
    A finished job is left as it is. Returns the job as it is now.
    """
    root_p = Path(root).expanduser().resolve()
    job = get_job(root_p, job_id)
    pid = None
    with _locked(root_p):
        st = _read_json(job.dir / "status.json") or {}
        state = st.get("status")
        if state == "queued":
            _set_status(job.dir, status="cancelled", ended=time.time())
        elif state == "running":
            (job.dir / "cancel").touch()
            pid = st.get("pid")
    if pid:
        try:
            os.killpg(int(pid), signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass  # ended meanwhile; the worker sees the cancel marker and records it
    return get_job(root_p, job_id)


def delete_job(root: str | os.PathLike, job_id: str) -> bool:
    """Remove a finished job's folder (its results stay in the store); False if it is not finished."""
    import shutil

    root_p = Path(root).expanduser().resolve()
    with _locked(root_p):
        job = _load_job(root_p, _check_id(job_id))
        if job is None or not job.finished:
            return False
        trash = root_p / "jobs" / f".del-{uuid.uuid4().hex}"
        os.rename(job.dir, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def log_tail(job: Job, n_lines: int = 20, *, max_bytes: int = 256 * 1024) -> str:
    """The last ``n_lines`` lines of the job's log (carriage-return redraws collapsed).

    Example:
        >>> print(log_tail(get_job(root, job_id), 5))   # doctest: +SKIP
    """
    path = job.dir / "log.txt"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").split("\n")
    if size > max_bytes:
        lines = lines[1:]  # the first one is cut
    lines = [ln.rstrip("\r").rsplit("\r", 1)[-1] for ln in lines]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines[-n_lines:]) if n_lines > 0 else ""


def _last_json_line(path: Path, max_bytes: int = 4 * 1024 * 1024) -> Any:
    """The last line of the log that is a JSON object (the ``--json`` result), or None."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    for line in reversed(data.decode("utf-8", errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


# --------------------------------------------------------------------------------------------------
# the worker


class Worker:
    """Runs queued jobs of one store as subprocesses (see the module docstring).

    Example:
        >>> Worker("/tmp/store", cpu_slots=2, idle_exit=60).run()   # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, *, cpu_slots: int = 1, idle_exit: float = 600.0,
                 poll: float = 0.2, nproc: int | None = None, nproc_resources: Sequence[str] | None = None) -> None:
        if cpu_slots < 1:
            raise ValueError(f"cpu_slots must be >= 1, got {cpu_slots}")
        # torchrun processes per training job of these resources (launch_argv); default from the
        # environment: IPT_JOBS_NPROC (1: no torchrun) and IPT_JOBS_NPROC_RESOURCES (gpu)
        self.nproc = _env_nproc() if nproc is None else int(nproc)
        if self.nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {self.nproc}")
        self.nproc_resources = tuple(nproc_resources) if nproc_resources is not None else _env_nproc_resources()
        self.root = Path(root).expanduser().resolve()
        self.cpu_slots = cpu_slots
        self.idle_exit = idle_exit
        self.poll = poll
        self.stop = False
        # job id -> (process, job, open log file, time SIGTERM was sent or None)
        self.running: dict[str, list] = {}

    # -- claiming --------------------------------------------------------------------------------
    def _states(self) -> dict[str, dict]:
        """job id -> status.json of every job (one small read each: the worker polls this)."""
        try:
            names = [e.name for e in os.scandir(self.root / "jobs") if e.is_dir() and _ID_RE.match(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return {}
        out = {}
        for n in names:
            st = _read_json(self.root / "jobs" / n / "status.json")
            if isinstance(st, dict):
                out[n] = st
        return out

    def _claim(self, only: str | None = None) -> list[Job]:
        """Under the lock: mark the oldest queued jobs that fit the free slots as ours."""
        if only is None and not any(st.get("status") == "queued" for st in self._states().values()):
            return []  # the common case, checked without taking the lock
        claimed: list[Job] = []
        with _locked(self.root):
            states = self._states()
            queued = [j for j in (_load_job(self.root, n) for n, st in states.items() if st.get("status") == "queued")
                      if j is not None]
            running = [_load_job(self.root, n) for n, st in states.items() if st.get("status") == "running"]
            gpu_busy = any(j is not None and j.resource == "gpu" for j in running)
            cpu_used = sum(1 for rec in self.running.values() if rec[1].resource == "cpu")
            for job in sorted(queued, key=lambda j: (j.created, j.id)):
                if only is not None:
                    if job.id != only:
                        continue  # an explicit request (run_job_inline) ignores the slots
                elif job.resource == "gpu":
                    if gpu_busy:
                        continue
                    gpu_busy = True
                else:
                    if cpu_used >= self.cpu_slots:
                        continue
                    cpu_used += 1
                _set_status(job.dir, status="running", worker=os.getpid(), pid=None, started=time.time())
                claimed.append(get_job(self.root, job.id))
        return claimed

    def _start(self, job: Job) -> None:
        argv = launch_argv(job, self.nproc, self.nproc_resources)
        log = open(job.dir / "log.txt", "ab")
        shown = job.command if argv[2] == job.module else shlex.join(["python", *argv[1:]])
        log.write(f"# job {job.id} started by worker {os.getpid()} at "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {shown}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=_child_env(job.dir, self.root),
                start_new_session=True,  # its own process group: cancel signals the job and its children
            )
        except OSError as e:
            log.write(f"cannot start the job: {e}\n".encode())
            log.close()
            with _locked(self.root):
                _set_status(job.dir, status="failed", ended=time.time(), returncode=None,
                            error=f"cannot start: {e}")
            return
        with _locked(self.root):
            _set_status(job.dir, pid=proc.pid)
        self.running[job.id] = [proc, job, log, None]

    # -- supervising -----------------------------------------------------------------------------
    def _check_cancels(self) -> None:
        now = time.time()
        for job_id, rec in self.running.items():
            proc, job, _, term_at = rec
            if proc.poll() is not None:
                continue
            if term_at is None and (job.dir / "cancel").exists():
                rec[3] = now
                self._signal(proc.pid, signal.SIGTERM)
            elif term_at is not None and now - term_at > KILL_AFTER_S:
                self._signal(proc.pid, signal.SIGKILL)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self) -> None:
        for job_id in list(self.running):
            proc, job, log, _ = self.running[job_id]
            rc = proc.poll()
            if rc is None:
                continue
            log.close()
            self._finish(job, rc)
            del self.running[job_id]

    def _finish(self, job: Job, rc: int, error: str | None = None) -> None:
        cancelled = (job.dir / "cancel").exists() or rc == EXIT_CANCELLED
        if cancelled:
            state = "cancelled"
        elif rc == 0:
            state = "done"
            result = _last_json_line(job.dir / "log.txt")
            if result is not None:  # written before "done" so a reader seeing done sees the result
                _write_json(job.dir / "result.json", result)
        else:
            state = "failed"
        with _locked(self.root):
            _set_status(job.dir, status=state, ended=time.time(), returncode=rc, error=error)

    def _recover_orphans(self) -> None:
        """Jobs left "running" by a worker that died: failed once their process is gone too."""
        with _locked(self.root):
            for job in list_jobs(self.root):
                if job.status != "running" or job.id in self.running or job.worker == os.getpid():
                    continue
                if _pid_alive(job.worker) or _pid_alive(job.pid):
                    continue
                _set_status(job.dir, status="cancelled" if (job.dir / "cancel").exists() else "failed",
                            ended=time.time(), error="the worker running this job exited")

    def _terminate_all(self) -> None:
        for proc, job, _, _ in self.running.values():
            (job.dir / "cancel").touch()
            self._signal(proc.pid, signal.SIGTERM)
        deadline = time.time() + KILL_AFTER_S
        while self.running and time.time() < deadline:
            self._reap()
            time.sleep(0.1)
        for proc, _, _, _ in self.running.values():
            self._signal(proc.pid, signal.SIGKILL)
        while self.running:
            self._reap()
            time.sleep(0.05)

    # -- entry points ----------------------------------------------------------------------------
    def run_one(self, job_id: str) -> Job:
        """Claim ``job_id`` (it must be queued) and run it to the end in this process."""
        claimed = self._claim(only=job_id)
        if not claimed:
            raise ValueError(f"job {job_id} is not queued (status {get_job(self.root, job_id).status!r})")
        self._start(claimed[0])
        while self.running:
            self._check_cancels()
            self._reap()
            if self.running:
                time.sleep(self.poll)
        return get_job(self.root, job_id)

    def run(self) -> None:
        """Loop: claim, start, supervise, record; return after ``idle_exit`` seconds without jobs."""
        jobs = self.root / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        pid_file = jobs / "worker.pid"
        _write_text(pid_file, f"{os.getpid()}\n")

        def _stop(signum, frame):
            self.stop = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop)
        idle_since = time.time()
        loops = 0
        try:
            self._recover_orphans()
            while not self.stop:
                self._reap()
                self._check_cancels()
                for job in self._claim():
                    self._start(job)
                if self.running:
                    idle_since = time.time()
                elif time.time() - idle_since >= self.idle_exit:
                    break
                loops += 1
                if loops % 50 == 0:
                    self._recover_orphans()
                time.sleep(self.poll)
        finally:
            self._terminate_all()
            try:
                if pid_file.read_text().strip() == str(os.getpid()):
                    pid_file.unlink()
            except OSError:
                pass


def run_job_inline(root: str | os.PathLike, job_id: str) -> Job:
    """Run one queued job synchronously (tests, scripts); returns the finished Job.

    Example:
        >>> job = submit(root, ["tasks", "--suite", "demo"])   # doctest: +SKIP
        >>> run_job_inline(root, job.id).status                # doctest: +SKIP
        'done'
    """
    return Worker(root).run_one(job_id)


def worker_pid(root: str | os.PathLike) -> int | None:
    """The pid of a live worker of this store, or None."""
    try:
        pid = int((_jobs_dir(root) / "worker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        if b"ipt_core.jobs" not in cmdline:
            return None  # the pid was reused by another program
    except OSError:
        pass
    return pid


def ensure_worker(root: str | os.PathLike, *, cpu_slots: int = 1, idle_exit: float = 600.0) -> int:
    """Start a detached worker for the store unless a live one is recorded; returns its pid.

    The worker outlives the calling process (its own session), logs to ``jobs/worker.log`` and
    exits by itself after ``idle_exit`` idle seconds.

    Example:
        >>> pid = ensure_worker(default_root())   # doctest: +SKIP
    """
    root_p = Path(root).expanduser().resolve()
    jobs = root_p / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    with _locked(root_p, ".ensure.lock"):  # two pages asking at once start one worker
        pid = worker_pid(root_p)
        if pid is not None:
            return pid
        with open(jobs / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ipt_core.jobs", "worker", "--cache", str(root_p),
                 "--cpu-slots", str(cpu_slots), "--idle-exit", str(idle_exit)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=_child_env(None, root_p), start_new_session=True,
            )
        _write_text(jobs / "worker.pid", f"{proc.pid}\n")
        return proc.pid


# --------------------------------------------------------------------------------------------------
# command line


def main(argv: list[str] | None = None) -> int:
    """``python -m ipt_core.jobs worker --cache ROOT [--cpu-slots 1] [--idle-exit 600]`` (and list)."""
    p = argparse.ArgumentParser(prog="python -m ipt_core.jobs", description="the app's job queue")
    sub = p.add_subparsers(dest="command", required=True)
    w = sub.add_parser("worker", help="run queued jobs until idle")
    w.add_argument("--cache", default=None, help="store root (default $IPT_CACHE or ./cache)")
    w.add_argument("--cpu-slots", type=int, default=1)
    w.add_argument("--idle-exit", type=float, default=600.0, help="exit after this many idle seconds")
    w.add_argument("--poll", type=float, default=0.2, help=argparse.SUPPRESS)
    w.add_argument("--nproc", type=int, default=None,
                   help="run training jobs with torchrun on this many processes (default $IPT_JOBS_NPROC or 1)")
    ls = sub.add_parser("list", help="list jobs, newest first")
    ls.add_argument("--cache", default=None)
    args = p.parse_args(argv)
    from .store import default_root

    root = Path(args.cache) if args.cache else default_root()
    if args.command == "worker":
        Worker(root, cpu_slots=args.cpu_slots, idle_exit=args.idle_exit, poll=args.poll, nproc=args.nproc).run()
        return 0
    for j in list_jobs(root):
        print(f"{j.id}  {j.status:9}  {j.resource}  {j.label or ''}  {j.command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
