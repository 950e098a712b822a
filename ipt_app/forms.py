"""Launch forms: each builds one CLI command from its widgets, shows what it will cost before the
click (:mod:`ipt_app.cost`), checks its input and prerequisites, and submits the command as a job.

The widgets are not inside ``st.form``, so the estimate follows every change. A problem found
while building the command (a bad dimension, a task both seen and unseen) is said when the
button is clicked, and nothing is queued; a missing prerequisite (no subspace for intrinsic
tuning) is said on the form at once, with the one click that computes it.
"""
from __future__ import annotations

from typing import Callable, Sequence

import streamlit as st

from ipt_app.context import ctx, device_options, resource_for, suite_info, suite_problem
from ipt_app.cost import Estimate, estimate, fmt_seconds, machine_rate, summary
from ipt_app.escape import md_code
from ipt_app.job_panel import submit_job
from ipt_app.store_reads import stores
from ipt_core import jobs
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.config.limits import (
    widget_kwargs as limit_of,  # the CLI's ranges: a form offers no more
)

LONG_S = 30 * 60  # above this an estimate is a warning, not a caption


def quick_flags(kind: str = "ipt") -> list[str]:
    """The CLI's quick (CPU) budget (``ipt_core.config.budgets``): short schedules; a flag the form sets explicitly wins."""
    return ["--budget", "quick"]


def common_flags(c: dict, device: str) -> list[str]:
    flags = []
    if c["backbone"] != DEFAULT_BACKBONE:
        flags += ["--backbone", c["backbone"]]
    if device != "auto":
        flags += ["--device", device]
    return flags


def form_context() -> tuple[dict, dict] | None:
    """The page context and the chosen suite's info for a launch form; None (after saying why) when
    the suite cannot be read, so the form is not drawn."""
    c = ctx()
    info = suite_info(c["suite"])
    if "error" in info:
        suite_problem(c, info)
        return None
    return c, info


def cost_of(c: dict, info: dict, argv: Sequence[str], device: str) -> Estimate | None:
    """The estimate of ``argv`` at this machine's measured rate (None when the CLI refuses it)."""
    kind = resource_for(device)
    rate, source = machine_rate(stores(c["root"]), kind)
    examples = sum(int(r.get(k) or 0) for r in info.get("rows", []) for k in ("train", "dev", "test"))
    try:
        return estimate(argv, n_suite_tasks=len(info.get("names", [])), rate=rate, rate_source=source,
                        example_rows=examples)
    except ValueError:
        return None


def show_cost(est: Estimate | None) -> None:
    if est is None:
        st.caption("No estimate: fix the input first.")
    elif est.seconds > LONG_S:
        st.warning(summary(est) + f"  \nThis is a long job (about {fmt_seconds(est.seconds)}): fewer tasks, "
                   "steps or seeds make it shorter; a GPU makes it much shorter.", icon=":material/schedule:")
    else:
        st.caption(summary(est))


def launch(c: dict, info: dict, build: Callable[[], list[str]], *, label: Callable[[], str], device: str,
           key: str, button: str, blocked: str | None = None, button_key: str | None = None) -> jobs.Job | None:
    """Estimate, then (on the click) check and queue the command ``build()`` makes.
    ``build`` raises ValueError for bad input; ``blocked`` disables the button (a missing prerequisite)."""
    try:
        argv, problem = build(), None
    except ValueError as e:
        argv, problem = None, str(e)
    est = cost_of(c, info, argv, device) if argv else None
    if blocked is None:
        show_cost(est)
    if st.button(button, type="primary", key=button_key or f"{key}-go", disabled=blocked is not None):
        if problem:
            st.error(problem)
            return None
        return submit_job(c["root"], argv, label=label(), resource=resource_for(device), estimate=est)
    return None


def parse_dims(text: str) -> list[int]:
    """``"4, 16,64"`` -> ``[4, 16, 64]``; ValueError naming the bad item."""
    out = []
    for item in str(text).replace(" ", "").split(","):
        if not item:
            continue
        try:
            v = int(item)
        except ValueError:
            raise ValueError(f"dimension {item!r} is not an integer") from None
        if v < 1 or v > limit_of("dims")["max_value"]:
            raise ValueError(f"dimension {v} must be at least 1 and at most {limit_of('dims')['max_value']}")
        out.append(v)
    if not out:
        raise ValueError("give at least one dimension, e.g. 4,16,64")
    return sorted(set(out))


def tune_form(key: str = "tune") -> None:
    """Prompt tuning: ``tune --suite S --tasks a,b --seeds N --steps N ...``."""
    got = form_context()
    if got is None:
        return
    c, info = got
    gpu = bool(st.session_state.get("ctx_gpu_name"))
    with st.container(border=True):
        st.markdown(f"**Prompt tuning** on suite {md_code(c['suite_name'])} with {md_code(c['backbone'])}")
        tasks = st.multiselect(f"Tasks (none = all {len(info['names'])})", info["names"], key=f"{key}-tasks")
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", value=1, **limit_of("seeds", at_most=20), key=f"{key}-seeds")
        steps = b.number_input("Steps", value=300 if gpu else 50, **limit_of("steps", at_most=100000), key=f"{key}-steps")
        eval_every = d.number_input("Evaluate every", value=25 if not gpu else 50, **limit_of("eval_every", at_most=100000), key=f"{key}-eval")
        a, b, d = st.columns(3)
        kind = a.selectbox("Prompt kind", ["deep", "shallow"], key=f"{key}-kind")
        n_tokens = b.number_input("Prompt length", value=8, **limit_of("n_tokens", at_most=256), key=f"{key}-len")
        lr = d.number_input("Learning rate", value=0.01, **limit_of("lr", at_least=1e-5), format="%.4f", key=f"{key}-lr")
        a, b = st.columns(2)
        batch = a.number_input("Batch size", value=16, **limit_of("batch_size", at_most=4096), key=f"{key}-batch")
        device = b.selectbox("Device", device_options(), key=f"{key}-device")

        def build() -> list[str]:
            argv = ["tune", "--suite", c["suite"], "--seeds", str(int(seeds)), "--steps", str(int(steps)),
                    "--eval-every", str(int(eval_every)), "--prompt-kind", kind, "--prompt-len", str(int(n_tokens)),
                    "--lr", f"{lr:g}", "--batch-size", str(int(batch))] + common_flags(c, device)
            return argv + (["--tasks", ",".join(tasks)] if tasks else [])

        launch(c, info, build, device=device, key=key, button="Queue prompt tuning",
               label=lambda: f"PT {kind} on {len(tasks) or len(info['names'])} task(s) x {int(seeds)} seed(s), "
                             f"{int(steps)} steps")


def probe_button(key: str = "probe") -> None:
    """Zero-shot and linear-probe reference rows for every task: ``probe --suite S``."""
    got = form_context()
    if got is None:
        return
    c, info = got
    flags = ["--backbone", c["backbone"]] if c["backbone"] != DEFAULT_BACKBONE else []
    launch(c, info, lambda: ["probe", "--suite", c["suite"]] + flags, device="auto", key=key, button_key=key,
           button="Queue zero-shot + linear probe", label=lambda: f"zero-shot + probe on {c['suite_name']}")


def pipeline_launcher(key: str = "ov-pipeline") -> None:
    """Everything the app shows for the suite in one job: ``pipeline --suite S --budget B``."""
    got = form_context()
    if got is None:
        return
    c, info = got
    a, b = st.columns([1, 3])
    budget = a.selectbox("Budget", ["quick", "paper"], index=0 if not st.session_state.get("ctx_gpu_name") else 1,
                         key="ov-budget")
    flags = ["--backbone", c["backbone"]] if c["backbone"] != DEFAULT_BACKBONE else []
    with b:
        launch(c, info, lambda: ["pipeline", "--suite", c["suite"], "--budget", budget] + flags, device="auto",
               key=key, button_key=key, button="Queue the pipeline", label=lambda: f"pipeline ({budget}) on {c['suite_name']}")
