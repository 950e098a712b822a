"""Replay a store's commands read-only: are its results the ones today's code and defaults compute?

Every entry records the command that made it. Replaying that command against the store with
``IPT_REPLAY=1`` (every store read-only, :data:`ipt_core.store.REPLAY_ENV`) either finds each result
it asks for, which proves the result's key is the one today's code computes for the command (a
key is the hash of everything that decides the result: method, hyper-parameters, data, backbone,
code version), or stops before any training, naming the first entry it would have to compute.

What the replayed commands read is their own results. Below those, the stages they were made from
(PT prompts, subspaces, transfer runs) are not read again by a replay that finds the result, so
they are reached two ways, both with today's code: the keys a result's spec names (a task map
names its sweep, a transfer report its runs, a transfer run its source prompts), and, for a
recovery sweep, the PT runs and subspaces :func:`ipt_core.experiments.ipt.recovery_stage_keys`
says it asks for. An entry reached no way is *stale*: nothing today's commands ask for.

``python -m ipt_core verify --replay`` prints the report; ``tests/test_shipped_results.py`` asserts
the shipped results have no stale entry, and ``scripts/ship_results.py`` ships what is reached.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from ipt_core.store import REPLAY_ENV, REPLAY_LOG_ENV, Store
from ipt_core.store.entry import Entry

PREFIX = "python -m ipt_core"
KEY_IN_SPEC = re.compile(r"\b[0-9a-f]{64}\b")


@dataclass
class Replayed:
    command: str
    returncode: int
    error: str  # the command's last stderr line when it failed ("" when it replayed)
    read: set[str] = field(default_factory=set)


@dataclass
class ReplayReport:
    commands: list[Replayed]
    reached: set[str]
    stale: list[Entry]  # entries no replay reached, oldest first
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.stale and all(c.returncode == 0 for c in self.commands)

    def to_json(self) -> dict:
        return {"ok": self.ok, "commands": [{"command": c.command, "returncode": c.returncode, "error": c.error,
                                             "read": len(c.read)} for c in self.commands],
                "reached": len(self.reached),
                "stale": [{"key": e.key, "kind": e.kind, "command": e.command} for e in self.stale], "notes": self.notes}


def replay_command(command: str, root: Path, *, timeout: float = 1800) -> Replayed:
    """Run one recorded command against ``root`` read-only, in a subprocess; the keys it read."""
    if not command.startswith(PREFIX + " "):
        return Replayed(command, 2, f"not a command of this tool (does not start with {PREFIX!r})")
    argv = shlex.split(command)[len(PREFIX.split()):]
    with tempfile.NamedTemporaryFile("r", suffix=".keys", delete=False) as log:
        log_path = log.name
    try:
        env = {**os.environ, REPLAY_ENV: "1", REPLAY_LOG_ENV: log_path, "IPT_CACHE": str(root)}
        env.pop("IPT_PROGRESS_FILE", None)
        out = subprocess.run([sys.executable, "-m", "ipt_core", *argv, "--cache", str(root), "--json"], env=env,
                             capture_output=True, text=True, timeout=timeout)
        read = set(Path(log_path).read_text(encoding="utf-8").split())
    finally:
        os.unlink(log_path)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    return Replayed(command, out.returncode, "" if out.returncode == 0 else (lines[-1] if lines else f"exit {out.returncode}"),
                    read)


def _spec_keys(entry: Entry) -> set[str]:
    return set(KEY_IN_SPEC.findall(json.dumps(entry.spec)))


def _suite_of(entry: Entry):
    """The suite a recovery sweep ran on: its command's ``--suite`` (a folder's path; the meta has its name)."""
    from ipt_core.tasks import load_suite

    argv = shlex.split(entry.command or "")
    spec = argv[argv.index("--suite") + 1] if "--suite" in argv[:-1] else entry.meta["suite"]
    return load_suite(spec)


def reached_from(store: Store, read: set[str], notes: list[str] | None = None) -> set[str]:
    """``read`` and everything below it: the keys their specs name (transitively) and the stages of
    every recovery sweep among them (loads the sweep's backbone to name its PT runs). A sweep whose
    suite no longer loads is noted in ``notes`` (its stages then count as stale)."""
    from ipt_core.errors import InputError
    from ipt_core.experiments.context import Context
    from ipt_core.experiments.ipt import recovery_stage_keys

    reached, todo = set(), list(read)
    contexts: dict[str, Context] = {}
    while todo:
        key = todo.pop()
        if key in reached:
            continue
        reached.add(key)
        e = store.get(key)
        if e is None:
            continue
        below = _spec_keys(e)
        if e.kind == "ipt_dims" and e.meta.get("suite"):
            try:
                suite = _suite_of(e)
            except InputError as exc:
                if notes is not None:
                    notes.append(f"sweep {e.key[:12]}: its suite does not load ({exc}); its PT runs and subspaces are not named")
            else:
                bb = e.spec["backbone"]["spec"]
                ctx = contexts.setdefault(bb, Context.create(store, bb, "cpu"))
                below |= set().union(*recovery_stage_keys(ctx, suite, e).values())
        todo += [k for k in below if k not in reached]
    return reached


def replay_store(root: str | Path, commands: list[str] | None = None) -> ReplayReport:
    """Replay ``commands`` (default: every command recorded in the store at ``root``) read-only;
    report what each read and which entries nothing reached."""
    store = Store(root, read_only=True)
    entries = store.query()
    commands = sorted({e.command for e in entries if e.command}) if commands is None else commands
    done = [replay_command(c, store.root) for c in commands]
    notes: list[str] = []
    reached = reached_from(store, set().union(*(c.read for c in done)) if done else set(), notes)
    stale = sorted((e for e in entries if e.key not in reached), key=lambda e: e.created)
    return ReplayReport(done, reached, stale, notes)


def format_report(rep: ReplayReport) -> str:
    lines = []
    for c in rep.commands:
        lines.append(("replayed " if c.returncode == 0 else "FAILED   ") + f"{c.command}  ({len(c.read)} entries read)"
                     + (f"\n         {c.error}" if c.error else ""))
    lines += [f"note: {n}" for n in rep.notes]
    lines.append(f"{len(rep.reached)} entries reached; {len(rep.stale)} stale (no command of today reaches them)")
    lines += [f"  stale {e.kind} {e.key[:12]} from: {e.command}" for e in rep.stale[:50]]
    return "\n".join(lines)
