"""``python -m ipt_core.jobs worker --cache ROOT [--cpu-slots 1] [--idle-exit 600]`` (and ``list``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ipt_core.jobs.queue import list_jobs
from ipt_core.jobs.worker import Worker


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
    from ipt_core.store import default_root

    root = Path(args.cache) if args.cache else default_root()
    if args.command == "worker":
        Worker(root, cpu_slots=args.cpu_slots, idle_exit=args.idle_exit, poll=args.poll, nproc=args.nproc).run()
        return 0
    for j in list_jobs(root):
        print(f"{j.id}  {j.status:9}  {j.resource}  {j.label or ''}  {j.command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
