"""Named training budgets for the command line: ``paper`` (the methods' own defaults) and ``quick``.

``quick`` is the preset for a CPU (the app uses it there): short schedules and sparse dev
evaluation, so that a two-task comparison of six methods fits in about five minutes on a 2-core
laptop and one prompt-tuning run in well under a minute. What it costs in accuracy is measured in
bench/SPEED.md. A flag given on the command line always wins over the budget; the budget fills
only the flags left out. ``pipeline`` has its own, larger presets (:data:`BUDGETS`, one
:class:`Budget` each), whose PT/MSF/IST schedules are these. Nothing here imports torch: the app's
cost estimate reads these schedules at first paint.

Example::

    flag_defaults("quick", "tune")   # {"steps": 40, "batch_size": 8, "eval_every": 40}
    flag_defaults("paper", "tune")   # {"steps": 300, "batch_size": 16, "eval_every": 50}
"""
from __future__ import annotations

from dataclasses import dataclass

from ipt_core.config.ipt import IPTSettings, ISTConfig, MSFConfig
from ipt_core.config.pt import PTConfig

NAMES = ("quick", "paper")
DEFAULT = "paper"  # the budget of a command line without --budget

# quick: the flags it sets, per command (dest -> value); every other flag keeps its default
# 40 steps, as compare's quick; dev scored at the first and last step only (with a mid-run score too, 1 of
# 27 demo runs picked it: bench/SPEED.md)
QUICK_PT = {"steps": 40, "batch_size": 8, "eval_every": 40}
QUICK_MSF_STEPS = 45
# IST's own schedule already reaches its plateau in a few hundred rows (bench/IST_SCHEDULE.md): quick keeps it,
# so that the quick budget's IST finishes too
QUICK_IST_STEPS = ISTConfig().steps
_QUICK_PT = QUICK_PT
_QUICK = {
    "tune": _QUICK_PT,
    "export": _QUICK_PT,  # export reads the prompt a quick tune stored
    "ipt": _QUICK_PT | {"msf_steps": QUICK_MSF_STEPS, "ist_steps": QUICK_IST_STEPS},
    "stability": _QUICK_PT | {"msf_steps": QUICK_MSF_STEPS, "ist_steps": QUICK_IST_STEPS},
    "ist": {"ist_steps": QUICK_IST_STEPS},
    # compare: the suite's other tasks are trained too (IPT's subspace, ATTEMPT's sources), so fewer steps
    "compare": {"steps": 40, "batch_size": 8, "eval_every": 20, "msf_steps": QUICK_MSF_STEPS},
}


def _paper(command: str) -> dict:
    pt, msf, ist = PTConfig(), MSFConfig(), ISTConfig()
    base = {"steps": pt.steps, "batch_size": pt.batch_size, "eval_every": pt.eval_every}
    return {
        "tune": base, "export": base, "ipt": base | {"msf_steps": msf.steps, "ist_steps": ist.steps},
        "stability": base | {"msf_steps": msf.steps, "ist_steps": ist.steps}, "ist": {"ist_steps": ist.steps},
        "compare": base | {"msf_steps": None},  # None: compare's subspace finding takes --steps
    }.get(command, {})


def flag_defaults(budget: str, command: str) -> dict:
    """The values ``budget`` gives the flags of ``command`` that the command line left out."""
    if budget not in NAMES:
        raise ValueError(f"budget must be one of {NAMES}, got {budget!r}")
    paper = _paper(command)
    return paper if budget == "paper" else paper | _QUICK.get(command, {})


def apply(args, command: str) -> None:
    """Fill the budget's flags that are None on ``args`` (the parser leaves them None when not given)."""
    for dest, value in flag_defaults(getattr(args, "budget", None) or DEFAULT, command).items():
        if hasattr(args, dest) and getattr(args, dest) is None:
            setattr(args, dest, value)


# --------------------------------------------------------------------------------------------------
# the pipeline's budgets (ipt_core.experiments.pipeline)


@dataclass(frozen=True)
class Budget:
    """What ``pipeline`` runs: the PT/MSF/IST settings and the size of each experiment."""

    settings: IPTSettings
    dims: tuple[int, ...]
    seeds: tuple[int, ...]
    max_seen: int  # seen tasks re-tuned on new data (a subset keeps IST affordable on CPU)
    count_fractions: tuple[float, ...]
    stability_tasks: int
    stability_seeds: tuple[int, ...]
    curve_every: int
    count_controls: bool = True  # the linear and random controls at the task-count curve's partial sizes too
    heldout_seen: int | None = None  # seen tasks of the held-out-family subspace (None: as max_seen)
    umap: bool = True  # UMAP coordinates of the task map (off: the page shows PCA and computes UMAP as a job)


BUDGETS = {
    "quick": Budget(
        settings=IPTSettings(
            pt=PTConfig(**QUICK_PT),  # the CLI's --budget quick schedules
            # dev-scored once, at the end (16 rows a step instead of 32 raised the reconstruction MSE by half: bench/SPEED.md)
            msf=MSFConfig(steps=QUICK_MSF_STEPS, batch_size=32, eval_every=QUICK_MSF_STEPS),
            ist=ISTConfig(),  # converged (bench/IST_SCHEDULE.md): the finished flag needs its dev curve
        ),
        dims=(4, 16), seeds=(0,), max_seen=3, count_fractions=(0.5, 1.0),
        stability_tasks=1, stability_seeds=(0, 1, 2), curve_every=10, count_controls=False,
        heldout_seen=0, umap=False,
    ),
    "paper": Budget(
        settings=IPTSettings(), dims=(1, 4, 16, 64, 250), seeds=(0, 1, 2), max_seen=10_000,
        count_fractions=(0.25, 0.5, 0.75, 1.0), stability_tasks=4, stability_seeds=(0, 1, 2, 3, 4), curve_every=10,
    ),
}
BUDGETS["full"] = BUDGETS["paper"]  # the old name
