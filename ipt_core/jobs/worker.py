"""The worker: claims queued jobs under the lock, runs them as subprocesses, supervises cancels, and
records how they ended; plus the helpers that start one in the background.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from ipt_core.jobs.files import (
    ID_RE,
    jobs_dir,
    locked,
    pid_alive,
    read_json,
    write_json,
    write_text,
)
from ipt_core.jobs.job import Job, load_job, set_status
from ipt_core.jobs.launch import child_env, env_nproc, env_nproc_resources, launch_argv
from ipt_core.jobs.queue import get_job, last_json_line, list_jobs
from ipt_core.jobs.request import RequestRefused, check_record, check_with_cli

__all__ = ["EXIT_CANCELLED", "KILL_AFTER_S", "Worker", "run_job_inline", "worker_pid", "ensure_worker"]


EXIT_CANCELLED = 130
KILL_AFTER_S = 15.0  # a job that ignores SIGTERM this long gets SIGKILL


class Worker:
    """Runs queued jobs of one store as subprocesses (see :mod:`ipt_core.jobs`).

    Example:
        >>> Worker("/tmp/store", cpu_slots=2, idle_exit=60).run()   # doctest: +SKIP
    """

    def __init__(self, root: str | os.PathLike, *, cpu_slots: int = 1, idle_exit: float = 600.0,
                 poll: float = 0.2, nproc: int | None = None, nproc_resources: Sequence[str] | None = None) -> None:
        if cpu_slots < 1:
            raise ValueError(f"cpu_slots must be >= 1, got {cpu_slots}")
        # torchrun processes per training job of these resources (launch_argv); default from the
        # environment: IPT_JOBS_NPROC (1: no torchrun) and IPT_JOBS_NPROC_RESOURCES (gpu)
        self.nproc = env_nproc() if nproc is None else int(nproc)
        if self.nproc < 1:
            raise ValueError(f"nproc must be >= 1, got {self.nproc}")
        self.nproc_resources = tuple(nproc_resources) if nproc_resources is not None else env_nproc_resources()
        self.root = Path(root).expanduser().resolve()
        self.cpu_slots = cpu_slots
        self.idle_exit = idle_exit
        self.poll = poll
        self.stop = False
        # job id -> (process, job, open log file, time SIGTERM was sent or None)
        self.running: dict[str, list] = {}
        self._progress_noted: set[str] = set()

    # -- claiming --------------------------------------------------------------------------------
    def _states(self) -> dict[str, dict]:
        """job id -> status.json of every job (one small read each: the worker polls this)."""
        try:
            names = [e.name for e in os.scandir(self.root / "jobs") if e.is_dir() and ID_RE.match(e.name)]
        except (FileNotFoundError, NotADirectoryError):
            return {}
        out = {}
        for n in names:
            st = read_json(self.root / "jobs" / n / "status.json")
            if isinstance(st, dict):
                out[n] = st
        return out

    def _claim(self, only: str | None = None) -> list[Job]:
        """Under the lock: mark the oldest queued jobs that fit the free slots as ours."""
        if only is None and not any(st.get("status") == "queued" for st in self._states().values()):
            return []  # the common case, checked without taking the lock
        claimed: list[Job] = []
        with locked(self.root):
            states = self._states()
            queued = [j for j in (load_job(self.root, n) for n, st in states.items() if st.get("status") == "queued")
                      if j is not None]
            for job in [j for j in queued if not j.argv]:  # a request of another shape: never run
                self._refuse(job, job.error or "refused: not a job request of this version")
            queued = [j for j in queued if j.argv]
            running = [load_job(self.root, n) for n, st in states.items() if st.get("status") == "running"]
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
                set_status(job.dir, status="running", worker=os.getpid(), pid=None, started=time.time())
                claimed.append(get_job(self.root, job.id))
        return claimed

    def _refuse(self, job: Job, reason: str) -> None:
        """Mark ``job`` failed with a one-line ``reason`` (under the lock held by the caller, or none)."""
        reason = " ".join(reason.split())[:2000]
        try:
            with open(job.dir / "log.txt", "ab") as log:
                log.write(f"# job {job.id} not run by worker {os.getpid()}: {reason}\n".encode())
        except OSError:
            pass
        set_status(job.dir, status="failed", ended=time.time(), returncode=None, pid=None, error=reason)

    def _checked(self, job: Job) -> Job | None:
        """``job`` with the argv the CLI's own parser and the path checks accept, rebuilt from its
        request file as it is now; None (and the job failed with the reason) when it is refused."""
        try:
            req = check_record(read_json(job.dir / "request.json"))
            argv = check_with_cli(req.command, req.args, self.root)
        except RequestRefused as exc:
            with locked(self.root):
                self._refuse(job, f"refused: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - a bug in a check must not take the worker down
            import traceback

            with locked(self.root):
                self._refuse(job, f"refused: checking the request failed ({type(exc).__name__}: {exc})")
            with open(job.dir / "log.txt", "ab") as log:
                log.write(traceback.format_exc().encode())
            return None
        return dataclasses.replace(job, argv=tuple(argv), resource=req.resource)

    def _start(self, job: Job) -> None:
        checked = self._checked(job)
        if checked is None:
            return
        job = checked
        argv = launch_argv(job, self.nproc, self.nproc_resources)
        log = open(job.dir / "log.txt", "ab")
        shown = job.command if argv[2] == "ipt_core" else shlex.join(["python", *argv[1:]])
        log.write(f"# job {job.id} started by worker {os.getpid()} at "
                  f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {shown}\n".encode())
        log.flush()
        try:
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=child_env(job.dir, self.root),
                start_new_session=True,  # its own process group: cancel signals the job and its children
            )
        except OSError as e:
            log.write(f"cannot start the job: {e}\n".encode())
            log.close()
            with locked(self.root):
                set_status(job.dir, status="failed", ended=time.time(), returncode=None,
                            error=f"cannot start: {e}")
            return
        with locked(self.root):
            set_status(job.dir, pid=proc.pid)
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

    def _note_progress(self) -> None:
        """Record in status.json when each running job first reported progress (``first_progress``):
        the start-up (Python, torch, the model) ends there, and the app's estimates measure it so."""
        for job_id, rec in self.running.items():
            if job_id in self._progress_noted:
                continue
            path = rec[1].dir / "progress.json"
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            got = read_json(path)
            t = got.get("time") if isinstance(got, dict) else None
            t = float(t) if isinstance(t, (int, float)) and not isinstance(t, bool) and t == t else mtime
            with locked(self.root):
                set_status(rec[1].dir, first_progress=min(t, mtime))
            self._progress_noted.add(job_id)

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
            self._progress_noted.discard(job_id)

    def _finish(self, job: Job, rc: int, error: str | None = None) -> None:
        cancelled = (job.dir / "cancel").exists() or rc == EXIT_CANCELLED
        if cancelled:
            state = "cancelled"
        elif rc == 0:
            state = "done"
            result = last_json_line(job.dir / "log.txt")
            if result is not None:  # written before "done" so a reader seeing done sees the result
                write_json(job.dir / "result.json", result)
        else:
            state = "failed"
        with locked(self.root):
            set_status(job.dir, status=state, ended=time.time(), returncode=rc, error=error)

    def _recover_orphans(self) -> None:
        """Jobs left "running" by a worker that died: failed once their process is gone too."""
        with locked(self.root):
            for job in list_jobs(self.root):
                if job.status != "running" or job.id in self.running or job.worker == os.getpid():
                    continue
                if pid_alive(job.worker) or pid_alive(job.pid):
                    continue
                set_status(job.dir, status="cancelled" if (job.dir / "cancel").exists() else "failed",
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
            self._note_progress()  # before reaping: a job that ended since the last poll is noted too
            self._reap()
            if self.running:
                time.sleep(self.poll)
        return get_job(self.root, job_id)

    def run(self) -> None:
        """Loop: claim, start, supervise, record; return after ``idle_exit`` seconds without jobs."""
        jobs = self.root / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        pid_file = jobs / "worker.pid"
        write_text(pid_file, f"{os.getpid()}\n")

        def _stop(signum, frame):
            self.stop = True

        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _stop)
        idle_since = time.time()
        loops = 0
        try:
            self._recover_orphans()
            while not self.stop:
                self._note_progress()  # before reaping: a job that ended since the last poll is noted too
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
        pid = int((jobs_dir(root) / "worker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    if not pid_alive(pid):
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
    with locked(root_p, ".ensure.lock"):  # two pages asking at once start one worker
        pid = worker_pid(root_p)
        if pid is not None:
            return pid
        with open(jobs / "worker.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "ipt_core.jobs", "worker", "--cache", str(root_p),
                 "--cpu-slots", str(cpu_slots), "--idle-exit", str(idle_exit)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=child_env(None, root_p), start_new_session=True,
            )
        write_text(jobs / "worker.pid", f"{proc.pid}\n")
        return proc.pid
