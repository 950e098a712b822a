"""What a job will cost before it is queued: rows trained, and minutes at this machine's measured speed.

The estimate is made from the exact command a form is about to queue, parsed by the CLI's own
parser (so a default that changes in the CLI changes the estimate too). Work is counted in
*training rows*: runs x steps x batch size of every bank the command would train (prompt tuning,
subspace finding, intrinsic tuning, ATTEMPT, VIP), stage by stage. Evaluation is not counted on
its own: it is folded into the measured rate, which is computed the same way.

The rate (rows per second) is measured, never assumed: from the ``pt_run`` entries that jobs of
this store wrote when they finished (``bank_size x steps x batch_size / bank_seconds`` summed
over the latest banks of at least :data:`MIN_BANK_ROWS` rows, per device kind). Until this machine has finished one, the rate of the
shipped demo results' banks is used (measured on a 2-core CPU by the run that produced them),
and when neither exists :data:`DEFAULT_ROWS_PER_S`. A stage whose results are already in the
store is skipped by the job, so the figure is an upper bound.

Example::

    est = estimate(["tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "50"], n_suite_tasks=24)
    est.rows            # 800 = 1 run x 50 steps x 16 rows
    est.stages[0].name  # "prompt tuning"
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ipt_core import store as store_mod
from ipt_core.config.ipt import ISTConfig, MSFConfig
from ipt_core.store.entry import StoreError

DEFAULT_ROWS_PER_S = {"cpu": 40.0, "gpu": 4000.0}
"""Used only before any bank was measured: about the demo PT banks on a 2-core CPU (44 rows/s,
see the shipped results), and a PEFT-style one-prompt loop on an H100 (DESIGN.md: ~4.2k rows/s)."""
RECENT_BANKS = 8
MIN_BANK_ROWS = 500  # a smaller bank (a 2-step smoke run) measures start-up and evaluation, not training speed


@dataclass(frozen=True)
class Stage:
    name: str
    match: str  # how the core's stage name starts (lower case; the longest matching prefix wins)
    rows: int
    detail: str = ""


@dataclass
class Estimate:
    stages: list[Stage] = field(default_factory=list)
    rate: float = DEFAULT_ROWS_PER_S["cpu"]
    rate_source: str = "default"

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.stages)

    @property
    def seconds(self) -> float:
        return self.rows / self.rate if self.rate > 0 else float("nan")

    def to_json(self) -> dict:
        return {"rows": self.rows, "seconds": self.seconds, "rate": self.rate, "rate_source": self.rate_source,
                "stages": [{"name": s.name, "match": s.match, "rows": s.rows, "detail": s.detail} for s in self.stages]}


def fmt_seconds(s: float | None) -> str:
    if s is None or s != s:
        return "?"
    s = max(0.0, float(s))
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


# --------------------------------------------------------------------------------------------------
# the machine's rate


def _bank_rates(store: store_mod.Store, device_kind: str) -> list[tuple[float, int, float]]:
    """``(created, rows, seconds)`` of the distinct PT banks in ``store`` run on ``device_kind``."""
    banks: dict[tuple, tuple[float, int, float]] = {}
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
        if kind != device_kind or secs <= 0 or rows < MIN_BANK_ROWS:
            continue
        banks[(secs, size, int(cfg["steps"]), int(cfg["batch_size"]))] = (e.created, rows, secs)
    return sorted(banks.values(), reverse=True)[:RECENT_BANKS]


def machine_rate(stores: Sequence[store_mod.Store], device_kind: str = "cpu") -> tuple[float, str]:
    """Rows per second and where that number comes from: the first store (the main one, then the
    shipped results) that holds measured banks on this device kind, else the documented default."""
    for i, s in enumerate(stores):
        banks = _bank_rates(s, device_kind)
        if banks:
            rows, secs = sum(b[1] for b in banks), sum(b[2] for b in banks)
            where = "this store's latest prompt-tuning banks" if i == 0 else "the shipped demo results' banks (2-core CPU)"
            return rows / secs, f"measured from {len(banks)} of {where}"
    return DEFAULT_ROWS_PER_S[device_kind], "a default (no bank measured yet on this device)"


# --------------------------------------------------------------------------------------------------
# the work of a command


def _n(names: Sequence[str] | None, default: int) -> int:
    return len(names) if names else default


def estimate(argv: Sequence[str], *, n_suite_tasks: int, rate: float = DEFAULT_ROWS_PER_S["cpu"],
             rate_source: str = "default", example_rows: int = 0) -> Estimate:
    """The training rows ``python -m ipt_core <argv>`` would run, stage by stage (an upper bound:
    the job skips what is in the store). ``example_rows``: examples of the suite (for ``probe``).
    Raises ValueError when the CLI's parser refuses the command."""
    from ipt_core.cli.main import build_parser

    try:
        a = build_parser(only=argv[0] if argv else None).parse_args(list(argv))
    except SystemExit as e:  # argparse prints and exits on a bad command
        raise ValueError(f"the CLI refuses {' '.join(argv)!r}") from e
    if a.command != "pipeline":
        from ipt_core.config import budgets

        budgets.apply(a, a.command)  # the flags left out take the --budget's values, as the CLI does
    cmd, st = a.command, []
    seeds = lambda: len(a.seed_list) if getattr(a, "seed_list", None) else int(getattr(a, "seeds", 1))  # noqa: E731
    msf_b, ist_b = MSFConfig().batch_size, ISTConfig().batch_size  # the CLI has no flag for them
    if cmd == "tune":
        runs = _n(a.tasks, n_suite_tasks) * seeds()
        st.append(Stage("prompt tuning", "prompt tuning", runs * a.steps * a.batch_size,
                        f"{runs} runs x {a.steps} steps x {a.batch_size} rows"))
    elif cmd == "probe":
        st.append(Stage("zero-shot and linear probe", "", example_rows, "one pass over every example"))
    elif cmd == "ist":
        runs = len(a.tasks) * seeds()
        st.append(Stage("intrinsic subspace tuning", "intrinsic", runs * a.ist_steps * ist_b,
                        f"{runs} runs x {a.ist_steps} steps x {ist_b} rows"))
    elif cmd == "ipt":
        t = _n(a.train_tasks, max(2, n_suite_tasks * 3 // 4))
        u = _n(a.test_tasks, n_suite_tasks - t)
        n, d, subs = seeds(), len(a.dims), 1 if a.no_random_control else 2
        s = min(t, a.max_seen) if a.max_seen else t  # seen: training tasks re-tuned on new data
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
                continue
            if m == "ipt":
                msf = (a.msf_steps or a.steps) * msf_b
                st.append(Stage("IPT: subspace finding and intrinsic tuning", "ipt:", msf + k * n * a.steps * ist_b))
            else:
                st.append(Stage(m, "prompt tuning" if m == "pt" else m.split("-")[0], per, f"{k * n} runs x {a.steps} x {a.batch_size}"))
    elif cmd == "pipeline":
        st += _pipeline_stages(a.budget or "quick", n_suite_tasks)
    return Estimate(st, rate, rate_source)


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
    """One line for the form: rows, minutes, and where the rate comes from."""
    parts = [f"{s.name}: {s.rows:,} rows" + (f" ({s.detail})" if s.detail else "") for s in est.stages if s.rows]
    return (f"**Estimated cost:** at most {est.rows:,} training rows, about **{fmt_seconds(est.seconds)}** at "
            f"{est.rate:.0f} rows/s ({est.rate_source}); parts already in the store are skipped.  \n"
            + " · ".join(parts))
