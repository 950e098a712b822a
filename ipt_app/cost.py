"""What a job will cost before it is queued: rows trained, and a time *range* at this machine's measured speed.

The estimate is made from the exact command a form is about to queue, parsed by the CLI's own
parser (so a default that changes in the CLI changes the estimate too). Work is counted in
*training rows*: runs x steps x batch size of every bank the command would train (prompt tuning,
subspace finding, intrinsic tuning, ATTEMPT, VIP), stage by stage, plus the measured seconds of the
zero-shot and linear-probe baselines the command computes (they are not training rows).

**Time = overhead + rows / rate + baselines**, given as a range ``seconds_low <= seconds <= seconds_high``
(:class:`Estimate`; "about 4–7 min"):

- *rate* (:func:`machine_speed`): the **median** of per-bank rates of several finished prompt-tuning
  banks (``pt_run`` entries of at least :data:`MIN_BANK_ROWS` rows), never one run, so one bank run
  under load moves it to a neighbouring bank's rate at most. This store's latest banks replace the
  shipped demo results' banks only from :data:`MIN_OWN_BANKS` on; fewer are pooled with them. A
  bank's time includes its dev evaluations and its final test evaluation, so they are inside the rate.
  Where a bank recorded its CPU time (``bank_cpu_seconds``, all threads) and ``torch_threads``, its
  idle rate is ``rows / (cpu / min(threads, cores))``: the CPU time a bank needs hardly changes with
  the load (its wall time does), and on an idle machine its threads run side by side (measured: a
  24-task bank used 290 CPU s in 153 s wall on 2 cores, 1.9 of them). Banks without CPU time count
  with their wall rate, and only while fewer than :data:`MIN_CPU_BANKS` banks have CPU time (a wall
  time says nothing about the load it ran under).
- *spread*: the quartiles of the per-bank rates, at least +-:data:`MIN_SPREAD` and at most a factor
  :data:`MAX_SPREAD` from the median.
- *load* (:func:`current_load`, :func:`slowdown`): the runnable threads other than this process now
  (Linux ``/proc/loadavg``'s fourth field, a few samples; elsewhere the 1-min load average), of
  ``os.cpu_count()`` cores. Not the 1-min average: it still counts a job that ended a minute ago.
  A job of T threads on C cores with L other runnable threads gets ``min(T, C)`` cores when
  ``T + L <= C``, else about ``C * T / (T + L)`` (a fair share); training slows by the ratio, the
  start-up (mostly one thread) by the same with T = 1.
- *overhead*: the start-up (Python, torch, the model, the suite, the first batch: process start to
  the job's first progress report, ``first_progress`` in the job's status.json) and the tail (the
  last progress report to the end: writing results, exiting). From this store's finished jobs
  (medians of the latest :data:`RECENT_JOBS`) once :data:`MIN_JOBS` have them, else
  :data:`DEFAULT_STARTUP_S` and :data:`DEFAULT_TAIL_S`.
- *baselines*: zero-shot and linear probe per task, the mean ``seconds`` of the stores' ``zero_shot``
  and ``probe`` entries (else :data:`DEFAULT_BASELINE_S`); a fresh store computes them for every task
  a ``tune``, ``ist``, ``ipt``, ``probe`` (and ``compare`` with those methods) touches.

The **low** end is an idle machine at the fast end of the spread; the point is the median rate at
the load now; the **high** end is the slow end of the spread at the load now. A stage whose results
are already in the store is skipped by the job, so every figure is an upper bound on the work.

Example::

    est = estimate(["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "50"], n_suite_tasks=24)
    est.rows            # 800 = 1 run x 50 steps x 16 rows
    est.stages[0].name  # "prompt tuning"
    fmt_range(est.seconds_low, est.seconds_high)   # "30–45 s": the form says "about 30–45 s"
"""
from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ipt_core import store as store_mod
from ipt_core.config.ipt import ISTConfig, MSFConfig
from ipt_core.store.entry import StoreError

DEFAULT_ROWS_PER_S = {"cpu": 40.0, "gpu": 4000.0}
"""Used only before any bank was measured: about the demo PT banks on a 2-core CPU (44 rows/s,
see the shipped results), and a PEFT-style one-prompt loop on an H100 (DESIGN.md: ~4.2k rows/s)."""
RECENT_BANKS = 8
MIN_BANK_ROWS = 500  # a smaller bank (a 2-step smoke run) measures start-up and evaluation, not training speed
MIN_CPU_BANKS = 2  # from this many banks with CPU time on, banks timed by wall time alone are left out
MIN_OWN_BANKS = 3  # this store's banks replace the shipped results' from this many on; fewer are pooled with them
MIN_SPREAD = 0.15  # the rate's range is at least +-15% of the median, however alike the banks are
MAX_SPREAD = 2.0  # and at most a factor 2 either side of it
RECENT_JOBS = 8
MIN_JOBS = 3  # finished jobs with a recorded first progress report before their overhead replaces the default
DEFAULT_STARTUP_S = 9.0
"""Process start to the first progress report, seconds, before this store has timed :data:`MIN_JOBS`
jobs: ``python -m ipt_core tune --suite demo --tasks sms_spam --steps 2 --budget quick`` (the packaged
MiniLM ``encoder-sim``: import torch and transformers, load the model and the suite, the first batch)
on this project's 2-core VM, from the job's ``started`` to its first ``progress.json``: 9.3, 8.7 and
9.4 s on the idle machine (``python bench/estimates.py --overhead 3``, load 1.0-1.1, 2026-12-07);
8.3 s as a test's job (load about 1-2), 12.9 s and 15.3 s at load 2.3-3.6 under ``nice -n 19``."""
DEFAULT_TAIL_S = 1.0
"""The last progress report to the end of the job, less the baselines counted on their own: writing
the results and exiting. Measured with the run above: 5.5-5.8 s after the last step, of which
the zero-shot baseline of the task and the bank's test evaluation (inside the rate) are most."""
DEFAULT_BASELINE_S = {"zero_shot": 1.6, "probe": 2.3}
"""Seconds per task of the zero-shot and the linear-probe baseline before the stores hold any: the
means over the 24 demo tasks of the shipped results (2-core CPU; medians 0.85 and 2.1 s)."""
TIMED_COMMANDS = frozenset({"tune", "ipt", "ist", "stability", "compare", "pipeline", "transfer"})  # the ones that report progress


_LOAD_CACHE: list[tuple[float, float]] = []  # (monotonic time, load) of the last sample
LOAD_CACHE_S = 2.0  # a page's forms estimate on every rerun: the run queue is sampled at most this often


def current_load(samples: int = 5, gap_s: float = 0.01) -> float:
    """Runnable threads besides this process now: the mean over ``samples`` reads of ``/proc/loadavg``'s
    running count less one (this process, running while it reads); elsewhere the 1-min load average
    (0 where the platform has none). One sample serves the calls of the next :data:`LOAD_CACHE_S`."""
    if _LOAD_CACHE and time.monotonic() - _LOAD_CACHE[0][0] < LOAD_CACHE_S:
        return _LOAD_CACHE[0][1]
    load = _sample_load(samples, gap_s)
    _LOAD_CACHE[:] = [(time.monotonic(), load)]
    return load


def _sample_load(samples: int, gap_s: float) -> float:
    seen = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as f:
                seen.append(max(0, int(f.read().split()[3].split("/")[0]) - 1))
        except (OSError, ValueError, IndexError):
            break
        if i + 1 < samples:
            time.sleep(gap_s)
    if seen:
        return float(statistics.mean(seen))
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return 0.0


def cores_for(threads: int, cores: int, load: float) -> float:
    """The cores a job of ``threads`` threads gets on ``cores`` cores beside ``load`` other runnable
    threads: ``min(threads, cores)`` while they fit, else a fair share ``cores * threads / (threads + load)``.

    Example::

        cores_for(2, 2, 0.0)    # 2.0: an idle 2-core machine
        cores_for(2, 2, 10.0)   # 0.33: load 10 leaves a sixth of it
    """
    t, c, ld = max(1, int(threads)), max(1, int(cores)), max(0.0, float(load))
    return float(min(t, c)) if t + ld <= c else c * t / (t + ld)


def slowdown(threads: int, cores: int, load: float) -> float:
    """How much longer work of ``threads`` threads takes at ``load`` than on the idle machine (>= 1)."""
    return cores_for(threads, cores, 0.0) / cores_for(threads, cores, load)


# --------------------------------------------------------------------------------------------------
# the machine's speed


@dataclass(frozen=True)
class Speed:
    """This machine's speed for an estimate: training rows/s (idle: median and spread), the load now,
    the overhead of a job and the baselines' seconds per task (idle).

    ``Speed.fixed(40.0)``: one rate, no overhead, no load (tests, and callers that know the rate).
    """

    rate: float                  # training rows/s on the idle machine: the median of the per-bank rates
    rate_fast: float             # the fast end of the per-bank spread (idle)
    rate_slow: float             # the slow end (idle)
    source: str = "given"
    load: float = 0.0            # the 1-min load average when estimated
    cores: int = 1
    threads: int = 1
    train_slowdown: float = 1.0  # training at that load against idle (>= 1)
    overhead_slowdown: float = 1.0  # the start-up (about one thread) at that load
    startup_s: float = 0.0       # idle: process start to the first progress report
    tail_s: float = 0.0          # idle: the last progress report to the end
    overhead_source: str = "none"
    baseline_s: dict = field(default_factory=dict)  # "zero_shot"/"probe" -> idle seconds per task
    banks: int = 0

    @classmethod
    def fixed(cls, rate: float, source: str = "given") -> Speed:
        return cls(rate, rate, rate, source)


@dataclass(frozen=True)
class BankTiming:
    """One finished bank: training rows, wall seconds, and (where recorded) CPU seconds and torch threads."""

    created: float
    rows: int
    wall_s: float
    cpu_s: float | None = None
    threads: int | None = None

    @property
    def cpu_timed(self) -> bool:
        return bool(self.cpu_s and self.cpu_s > 0 and self.threads)

    def idle_rate(self, cores: int) -> float:
        """Rows/s this bank would have run at on an idle machine of ``cores`` cores (see the module doc):
        its CPU time spread over ``min(threads, cores)`` cores, else its wall rate."""
        if not self.cpu_timed:
            return self.rows / self.wall_s
        return self.rows / (self.cpu_s / min(self.threads, max(1, cores)))


def bank_timings(store: store_mod.Store, device_kind: str) -> list[BankTiming]:
    """The distinct PT banks of ``store`` run on ``device_kind`` ("cpu"/"gpu"), newest first (at most
    :data:`RECENT_BANKS`; smoke banks under :data:`MIN_BANK_ROWS` rows left out)."""
    banks: dict[tuple, BankTiming] = {}
    try:
        found = store.query("pt_run")
    except StoreError:
        return []
    for e in found:
        m, cfg = e.meta, (e.spec.get("config") or {})
        dev = str(m.get("device") or "cpu")
        kind = "gpu" if dev.startswith("cuda") else "cpu"
        try:
            size, secs = int(m["bank_size"]), float(m["bank_seconds"])
            rows = size * int(cfg["steps"]) * int(cfg["batch_size"])
        except (KeyError, TypeError, ValueError):
            continue
        if kind != device_kind or not secs > 0 or rows < MIN_BANK_ROWS:
            continue
        cpu, threads = m.get("bank_cpu_seconds"), m.get("torch_threads")
        cpu = float(cpu) if isinstance(cpu, (int, float)) and not isinstance(cpu, bool) and cpu > 0 else None
        threads = int(threads) if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0 else None
        if kind == "gpu":
            cpu = None  # a GPU bank's speed is the GPU's, not its CPU time's
        banks[(secs, size, int(cfg["steps"]), int(cfg["batch_size"]))] = BankTiming(float(e.created), rows, secs, cpu, threads)
    return sorted(banks.values(), key=lambda b: b.created, reverse=True)[:RECENT_BANKS]


def robust_rate(banks: Sequence[BankTiming], cores: int) -> tuple[float, float, float]:
    """``(median, fast, slow)`` idle rows/s of ``banks``: the median of the per-bank idle rates, and the
    quartiles (with fewer than 4 banks: the fastest and the slowest; banks differ by their tasks'
    lengths and evaluation sets, and two quartiles of two or three banks hide that) kept within
    +-:data:`MIN_SPREAD` .. x:data:`MAX_SPREAD` of it."""
    timed = [b for b in banks if b.cpu_timed]
    rates = sorted(b.idle_rate(cores) for b in (timed if len(timed) >= MIN_CPU_BANKS else banks))
    med = statistics.median(rates)
    if len(rates) >= 4:
        q1, q3 = statistics.quantiles(rates, n=4, method="inclusive")[0::2]
    else:
        q1, q3 = rates[0], rates[-1]
    fast = min(max(q3, med * (1 + MIN_SPREAD)), med * MAX_SPREAD)
    slow = max(min(q1, med / (1 + MIN_SPREAD)), med / MAX_SPREAD)
    return med, fast, slow


def _seconds_of(store: store_mod.Store, kind: str) -> list[float]:
    try:
        found = store.query(kind)
    except StoreError:
        return []
    found = sorted(found, key=lambda e: e.created, reverse=True)
    out = []
    for e in found:
        s = e.meta.get("seconds")
        if isinstance(s, (int, float)) and not isinstance(s, bool) and 0 < s < 3600:
            out.append(float(s))
    return out[:48]


def baseline_seconds(stores: Sequence[store_mod.Store]) -> dict[str, float]:
    """Mean seconds per task of the zero-shot and the linear-probe baseline: this store's entries
    (from :data:`MIN_OWN_BANKS` on), else pooled with the other stores', else :data:`DEFAULT_BASELINE_S`.
    A mean, not a median: a job computes them for many tasks, and the sum is what it waits for."""
    out = {}
    for kind in ("zero_shot", "probe"):
        own = _seconds_of(stores[0], kind) if stores else []
        pooled = own if len(own) >= MIN_OWN_BANKS else own + [s for st in stores[1:] for s in _seconds_of(st, kind)]
        out[kind] = statistics.fmean(pooled) if pooled else DEFAULT_BASELINE_S[kind]
    return out


_OVERHEAD_CACHE: dict[str, tuple[float, tuple[float, float, str]]] = {}
OVERHEAD_CACHE_S = 30.0  # the forms recompute their estimate on every rerun: the job records are read at most this often


def job_overhead(root: str | os.PathLike | None) -> tuple[float, float, str]:
    """``(startup_s, tail_s, source)``: the medians over this store's latest finished jobs (training
    commands, done) of process start to first progress report and of last progress report to the end;
    :data:`DEFAULT_STARTUP_S` and :data:`DEFAULT_TAIL_S` until :data:`MIN_JOBS` jobs recorded them."""
    default = (DEFAULT_STARTUP_S, DEFAULT_TAIL_S, "measured on a 2-core CPU (the default)")
    if root is None:
        return default
    key = str(Path(root).expanduser().resolve())
    hit = _OVERHEAD_CACHE.get(key)
    if hit is not None and time.monotonic() - hit[0] < OVERHEAD_CACHE_S:
        return hit[1]
    from ipt_core import jobs

    starts, tails = [], []
    for j in jobs.list_jobs(key):  # newest first
        if j.status != "done" or not j.argv or j.argv[0] not in TIMED_COMMANDS:
            continue
        first, last = getattr(j, "first_progress", None), (j.progress or {}).get("time")
        if first is None or j.started is None or j.ended is None or isinstance(last, bool) or not isinstance(last, (int, float)):
            continue
        s, t = first - j.started, j.ended - last
        if 0 <= s < 3600 and 0 <= t < 3600:
            starts.append(s)
            tails.append(t)
        if len(starts) >= RECENT_JOBS:
            break
    got = (statistics.median(starts), statistics.median(tails), f"measured from {len(starts)} finished jobs of this store") \
        if len(starts) >= MIN_JOBS else default
    _OVERHEAD_CACHE[key] = (time.monotonic(), got)
    return got


def machine_speed(stores: Sequence[store_mod.Store], device_kind: str = "cpu", *, load: float | None = None,
                  cores: int | None = None) -> Speed:
    """This machine's :class:`Speed` from the stores (the main one first, then the shipped results).

    Example::

        sp = machine_speed(stores(root), "cpu")
        sp.rate, sp.source   # 52.0, "median of 8 prompt-tuning banks: this store's latest"
    """
    cores = int(cores or os.cpu_count() or 1)
    load = current_load() if load is None else float(load)
    own = bank_timings(stores[0], device_kind) if stores else []
    shipped = [b for s in stores[1:] for b in bank_timings(s, device_kind)][:RECENT_BANKS]
    if len(own) >= MIN_OWN_BANKS:
        banks, where = own, "this store's latest"
    elif own and shipped:
        banks, where = own + shipped, f"{len(own)} of this store's and {len(shipped)} of the shipped demo results' (2-core CPU)"
    elif own:
        banks, where = own, "this store's"
    else:
        banks, where = shipped, "the shipped demo results' (2-core CPU)"
    if banks:
        rate, fast, slow = robust_rate(banks, cores)
        cpu = sum(b.cpu_s is not None for b in banks)
        source = (f"median of {len(banks)} prompt-tuning banks: {where}"
                  + (f"; {cpu} timed by CPU time" if cpu else "; wall time"))
    else:
        d = DEFAULT_ROWS_PER_S[device_kind]
        rate, fast, slow, source = d, d * (1 + MIN_SPREAD), d / MAX_SPREAD, "a default (no bank measured yet on this device)"
    threads = [b.threads for b in banks if b.threads]
    t = int(statistics.median(threads)) if threads else cores
    startup, tail, osrc = job_overhead(stores[0].root if stores else None)
    return Speed(rate=rate, rate_fast=fast, rate_slow=slow, source=source, load=load, cores=cores, threads=t,
                 train_slowdown=slowdown(t, cores, load) if device_kind == "cpu" else 1.0,
                 overhead_slowdown=slowdown(1, cores, load), startup_s=startup, tail_s=tail, overhead_source=osrc,
                 baseline_s=baseline_seconds(stores), banks=len(banks))


# --------------------------------------------------------------------------------------------------
# the estimate


@dataclass(frozen=True)
class Stage:
    name: str
    match: str  # how the core's stage name starts (lower case; the longest matching prefix wins)
    rows: int
    detail: str = ""
    seconds: float = 0.0  # idle seconds of work that is not training rows (baselines), beside the rows


@dataclass
class Estimate:
    """The work of a command and its time at a :class:`Speed`: ``seconds_low <= seconds <= seconds_high``."""

    stages: list[Stage] = field(default_factory=list)
    speed: Speed = field(default_factory=lambda: Speed.fixed(DEFAULT_ROWS_PER_S["cpu"], "default"))

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.stages)

    @property
    def rate(self) -> float:
        """Training rows/s at the load now (the median bank's rate, slowed by the load)."""
        return self.speed.rate / self.speed.train_slowdown

    @property
    def rate_source(self) -> str:
        return self.speed.source

    @property
    def startup_s(self) -> float:
        return self.speed.startup_s * self.speed.overhead_slowdown

    @property
    def tail_s(self) -> float:
        return self.speed.tail_s * self.speed.overhead_slowdown

    @property
    def overhead_s(self) -> float:
        """Start-up and tail at the load now."""
        return self.startup_s + self.tail_s

    def stage_seconds(self, s: Stage, rate: float | None = None, extra: float | None = None) -> float:
        """A stage's time: its rows at ``rate`` (default: :attr:`rate`) and its baselines' seconds x ``extra``."""
        rate = self.rate if rate is None else rate
        extra = self.speed.train_slowdown if extra is None else extra
        return (s.rows / rate if rate > 0 else float("inf")) + s.seconds * extra

    @property
    def seconds(self) -> float:
        """The point estimate: the median rate at the load now, with the overhead."""
        return self.overhead_s + sum(self.stage_seconds(s) for s in self.stages)

    @property
    def seconds_low(self) -> float:
        """An idle machine at the fast end of the banks' spread."""
        sp = self.speed
        return sp.startup_s + sp.tail_s + sum(self.stage_seconds(s, sp.rate_fast, sp.rate / sp.rate_fast) for s in self.stages)

    @property
    def seconds_high(self) -> float:
        """The load now, at the slow end of the banks' spread."""
        sp = self.speed
        slow = sp.rate_slow / sp.train_slowdown
        return self.overhead_s + sum(self.stage_seconds(s, slow, sp.train_slowdown * sp.rate / sp.rate_slow)
                                     for s in self.stages)

    def to_json(self) -> dict:
        """``estimate.json``: the fields of earlier versions (rows, seconds, rate, rate_source, stages with
        name/match/rows/detail) plus ``seconds_low``, ``seconds_high``, ``overhead_s`` (``startup_s`` +
        ``tail_s``), the load, and each stage's point ``seconds``."""
        sp = self.speed
        return {"rows": self.rows, "seconds": self.seconds, "seconds_low": self.seconds_low,
                "seconds_high": self.seconds_high, "overhead_s": self.overhead_s, "startup_s": self.startup_s,
                "tail_s": self.tail_s, "rate": self.rate, "rate_idle": sp.rate, "rate_source": self.rate_source,
                "load": sp.load, "cores": sp.cores, "train_slowdown": sp.train_slowdown,
                "stages": [{"name": s.name, "match": s.match, "rows": s.rows, "detail": s.detail,
                            "seconds": self.stage_seconds(s)} for s in self.stages]}


def fmt_seconds(s: float | None) -> str:
    if s is None or s != s:
        return "?"
    s = max(0.0, float(s))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def fmt_range(low: float | None, high: float | None) -> str:
    """``"4–7 min"``, ``"40 s–3 min"``, or one figure when both ends read the same (``"2 min"``)."""
    a, b = fmt_seconds(low), fmt_seconds(high)
    if a == b or "?" in (a, b):
        return b if a == "?" else a
    (na, ua), (nb, ub) = a.split(" "), b.split(" ")
    return f"{na}–{nb} {ub}" if ua == ub else f"{a}–{b}"


# --------------------------------------------------------------------------------------------------
# the work of a command


def _n(names: Sequence[str] | None, default: int) -> int:
    return len(names) if names else default


def estimate(argv: Sequence[str], *, n_suite_tasks: int, rate: float | Speed = DEFAULT_ROWS_PER_S["cpu"],
             rate_source: str = "default", example_rows: int = 0) -> Estimate:
    """The work ``python -m ipt_core <argv>`` would do, stage by stage (an upper bound: the job skips
    what is in the store), at ``rate``: a :class:`Speed` (:func:`machine_speed`), or rows/s alone (no
    overhead, no load). ``example_rows``: examples of the suite (``probe`` without measured baselines).
    Raises ValueError when the CLI's parser refuses the command."""
    speed = rate if isinstance(rate, Speed) else Speed.fixed(float(rate), rate_source)
    base = speed.baseline_s
    zs, lp = base.get("zero_shot", 0.0), base.get("probe", 0.0)

    def baselines(n: int, what: str, match: str, per: float) -> Stage:
        return Stage(what, match, 0, f"{n} tasks x {per:.1f} s", n * per)

    from ipt_core.cli.main import build_parser

    try:
        a = build_parser(only=argv[0] if argv else None).parse_args(list(argv))
    except SystemExit as e:  # argparse prints and exits on a bad command
        raise ValueError(f"the CLI refuses {' '.join(argv)!r}") from e
    if a.command != "pipeline":
        from ipt_core.config import budgets

        budgets.apply(a, a.command)  # the flags left out take the --budget's values, as the CLI does
    cmd, st = a.command, []
    # transfer's --seeds defaults to None (its stored matrix's, or 1)
    seeds = lambda: len(a.seed_list) if getattr(a, "seed_list", None) else int(getattr(a, "seeds", 1) or 1)  # noqa: E731
    msf_b, ist_b = MSFConfig().batch_size, ISTConfig().batch_size  # the CLI has no flag for them
    if cmd == "tune":
        runs = _n(a.tasks, n_suite_tasks) * seeds()
        st.append(Stage("prompt tuning", "prompt tuning", runs * a.steps * a.batch_size,
                        f"{runs} runs x {a.steps} steps x {a.batch_size} rows"))
        if zs and not getattr(a, "no_baselines", False):
            st.append(baselines(_n(a.tasks, n_suite_tasks), "zero-shot baselines", "zero-shot baselines", zs))
    elif cmd == "probe":
        n = _n(a.tasks, n_suite_tasks)
        st.append(baselines(n, "zero-shot and linear probe", "zero-shot and linear probe", zs + lp) if zs + lp
                  else Stage("zero-shot and linear probe", "zero-shot and linear probe", example_rows, "one pass over every example"))
    elif cmd == "ist":
        runs = len(a.tasks) * seeds()
        st.append(Stage("intrinsic subspace tuning", "intrinsic", runs * a.ist_steps * ist_b,
                        f"{runs} runs x {a.ist_steps} steps x {ist_b} rows"))
        if zs:
            st.append(baselines(len(a.tasks), "zero-shot baselines", "zero-shot baselines", zs))
    elif cmd == "ipt":
        t = _n(a.train_tasks, max(2, n_suite_tasks * 3 // 4))
        u = _n(a.test_tasks, n_suite_tasks - t)
        n, d, subs = seeds(), len(a.dims), len(a.subspaces)
        s = min(t, a.max_seen) if a.max_seen else t  # seen: training tasks re-tuned on new data
        if zs:  # before the first stage is reported
            st.append(baselines(t + u, "zero-shot baselines", "zero-shot baselines", zs))
        st += [Stage("prompt tuning of the training tasks", "prompt tuning of", n * t * a.steps * a.batch_size,
                     f"{n * t} runs x {a.steps} steps x {a.batch_size} rows"),
               Stage("prompt tuning references (seen on new data, unseen)", "prompt tuning references",
                     n * (s + u) * a.steps * a.batch_size, f"{n * (s + u)} runs x {a.steps} x {a.batch_size}"),
               Stage("subspace finding", "subspace finding", n * d * a.msf_steps * msf_b,
                     f"{n * d} auto-encoders x {a.msf_steps} steps x {msf_b} rows"),
               Stage("intrinsic subspace tuning", "intrinsic", n * (s + u) * d * subs * a.ist_steps * ist_b,
                     f"{n * (s + u) * d * subs} runs x {a.ist_steps} steps x {ist_b} rows")]
    elif cmd == "stability":
        k, n = len(a.tasks), seeds()
        t = _n(a.train_tasks, n_suite_tasks - k)
        pt = k * n * a.steps * a.batch_size
        st += [Stage("prompt tuning of the training tasks", "prompt tuning of", t * a.steps * a.batch_size,
                     f"{t} runs x {a.steps} steps x {a.batch_size} rows"),
               Stage("subspace finding", "subspace finding", a.msf_steps * msf_b, f"1 auto-encoder x {a.msf_steps} steps"),
               Stage("intrinsic subspace tuning", "intrinsic", k * a.ist_steps * ist_b, f"{k} runs x {a.ist_steps} steps"),
               Stage("PT from random initialisation", "stability: pt from random", pt, f"{k * n} runs x {a.steps} x {a.batch_size}"),
               Stage("PT from the IST solution", "stability: pt from ist", pt, f"{k * n} runs x {a.steps} x {a.batch_size}")]
    elif cmd == "compare":
        k, n = _n(a.tasks, n_suite_tasks), seeds()
        others = n_suite_tasks - k
        per = k * n * a.steps * a.batch_size
        methods = list(a.methods)
        if {"ipt", "attempt", "attempt-mt"} & set(methods):
            st.append(Stage("source prompts of the other tasks", "prompt tuning of", others * a.steps * a.batch_size,
                            f"{others} runs x {a.steps} x {a.batch_size}"))
        for m in methods:
            if m in ("zero-shot", "probe"):
                if zs:
                    st.append(baselines(k, m, m, zs if m == "zero-shot" else lp))
                continue
            if m == "ipt":
                msf = (a.msf_steps or a.steps) * msf_b
                st.append(Stage("IPT: subspace finding and intrinsic tuning", "ipt:", msf + k * n * a.steps * ist_b))
            else:
                st.append(Stage(m, "prompt tuning" if m == "pt" else m.split("-")[0], per, f"{k * n} runs x {a.steps} x {a.batch_size}"))
    elif cmd == "transfer":
        st += _transfer_stages(a, n_suite_tasks, seeds())
    elif cmd == "pipeline":
        if zs + lp:
            st.append(baselines(n_suite_tasks, "reference rows (zero-shot, linear probe)", "reference rows", zs + lp))
        st += _pipeline_stages(a.budget or "quick", n_suite_tasks)
    return Estimate(st, speed)


def _csv(v: str | None) -> list[str]:
    return [x.strip() for x in str(v).split(",") if x.strip()] if v else []


def _transfer_stages(a, n_suite_tasks: int, n_seeds: int) -> list[Stage]:
    """``transfer``: per seed, each target tuned once from every source's prompt and once from the default
    initialisation (``--steps`` x ``--batch-size`` each), after the PT prompts of the targets and sources.
    Which of those prompts the store holds already is not known to a pure estimate (it would have to build
    the command's specs, with the backbone's weights hash): every one is counted, ``--source-steps`` steps
    (default 60) x ``--batch-size`` per task and seed, so this stage is an upper bound like the rest."""
    targets, pool = _csv(getattr(a, "targets", None)), _csv(getattr(a, "sources", None))
    n_targets = len(targets) or n_suite_tasks  # no --targets: every task of the suite is a target
    if pool:  # a target is never its own source
        per_seed = sum(len([s for s in pool if s != t]) + 1 for t in targets) if targets \
            else n_targets * (len(pool) + 1) - len(pool)
        n_prompts = len(set(targets) | set(pool)) if targets else n_suite_tasks
    else:  # the command's default: every other task of the suite
        per_seed, n_prompts = n_targets * n_suite_tasks, n_suite_tasks
    src_steps = int(getattr(a, "source_steps", None) or 60)
    runs = per_seed * n_seeds
    return [Stage("source prompts (prompt tuning of the tasks without one in the store)", "prompt tuning",
                  n_prompts * n_seeds * src_steps * a.batch_size,
                  f"at most {n_prompts * n_seeds} runs x {src_steps} steps x {a.batch_size} rows"),
            Stage("transfer runs (from each source's prompt and from the default start)", "transfer",
                  runs * a.steps * a.batch_size, f"{runs} runs x {a.steps} steps x {a.batch_size} rows")]


def _pipeline_stages(budget: str, n_tasks: int) -> list[Stage]:
    """The pipeline's banks with its budget's settings (``ipt_core.config.budgets.BUDGETS``, torch-free)."""
    from ipt_core.config.budgets import BUDGETS

    b = BUDGETS[budget]
    pt, msf, ist = b.settings.pt, b.settings.msf, b.settings.ist
    test = max(1, n_tasks // 4)
    train = n_tasks - test
    seen = min(b.max_seen, train)
    n, d = len(b.seeds), len(b.dims)
    ptr = pt.steps * pt.batch_size
    return [
        Stage("prompt tuning (training tasks and references)", "prompt tuning", n * (train + seen + test) * ptr),
        Stage("subspace finding", "subspace finding", n * (d + len(b.count_fractions) + 1) * msf.steps * msf.batch_size),
        Stage("intrinsic subspace tuning", "intrinsic",
              n * (seen + test) * (d + len(b.count_fractions) + 1) * 2 * ist.steps * ist.batch_size),
        Stage("stability", "stability", 2 * b.stability_tasks * len(b.stability_seeds) * ptr),
    ]


def summary(est: Estimate) -> str:
    """The form's text: the time range, what it stands on, and the work of each stage."""
    sp = est.speed
    parts = [f"{s.name}: " + (f"{s.rows:,} rows" if s.rows else fmt_seconds(s.seconds)) + (f" ({s.detail})" if s.detail else "")
             for s in est.stages if s.rows or s.seconds]
    lo, hi = est.seconds_low, est.seconds_high
    when = f"{fmt_seconds(lo)} on an idle machine"
    if sp.train_slowdown > 1.05 or sp.overhead_slowdown > 1.05:
        when += f", {fmt_seconds(est.seconds)} at the load now ({sp.load:.1f} on {sp.cores} cores)"
    bits = [f"**Estimated cost:** about **{fmt_range(lo, hi)}** ({when})"]
    if est.rows:
        bits.append(f"at most {est.rows:,} training rows at {sp.rate:.0f} rows/s ({sp.source})")
    if est.overhead_s > 0:
        bits.append(f"{fmt_seconds(est.overhead_s)} to load the model and finish ({sp.overhead_source})")
    return " · ".join(bits) + ". Parts already in the store are skipped.  \n" + " · ".join(parts)
