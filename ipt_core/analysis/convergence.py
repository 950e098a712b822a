"""Has a run's optimiser finished? Read from its dev curve: ``[(step, dev accuracy), ...]``.

A run has *finished* when its dev accuracy no longer rises over the last fifth of the run: the best
evaluation in that last fifth is no more than ``tol`` above the best one before it. A curve of fewer
than three evaluations cannot show a plateau and counts as not finished. A run stuck where it started
has finished too: the flag says the optimiser stopped improving, not that it found anything (that is
what gain recovery says).

Example::

    finished([(0, .50), (10, .60), (20, .62), (30, .62), (40, .62), (50, .61)])   # True
    finished([(0, .50), (10, .55), (20, .60), (30, .65), (40, .70), (50, .75)])   # False: still rising
"""
from __future__ import annotations

from typing import Mapping, Sequence

TAIL = 0.2  # the share of the run that must show no rise
TOL = 0.01  # dev accuracy within this of the earlier best counts as no rise


def finished(curve: Sequence[Sequence[float]], tail: float = TAIL, tol: float = TOL) -> bool:
    """Whether dev accuracy stopped rising over the last ``tail`` of the run (steps of its own curve)."""
    pts = [(float(s), float(a)) for s, a in curve if a is not None]
    if len(pts) < 3:
        return False
    first, last = pts[0][0], pts[-1][0]
    cut = last - tail * (last - first)
    head = [a for s, a in pts if s <= cut]
    rest = [a for s, a in pts if s > cut]
    if not head or not rest:
        return False
    return max(rest) <= max(head) + tol


def run_finished(meta: Mapping) -> bool:
    """A run entry's flag: the one it recorded (``ist_run``), or else its dev curve's (an IST run stored before the
    flag was kept, or a PT run, which records none)."""
    flag = meta.get("finished")
    return bool(flag) if flag is not None else finished(meta.get("dev_curve") or [])


def plateau_step(curve: Sequence[Sequence[float]], tol: float = TOL) -> int | None:
    """The first evaluated step whose dev accuracy is within ``tol`` of the curve's best (None: no curve)."""
    pts = [(int(s), float(a)) for s, a in curve if a is not None]
    if not pts:
        return None
    best = max(a for _, a in pts)
    return next(s for s, a in pts if a >= best - tol)
