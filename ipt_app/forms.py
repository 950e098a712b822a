"""Launch forms: each builds one CLI command from its widgets, shows what it will cost before the
click (:mod:`ipt_app.cost`), checks its input and prerequisites, and submits the command as a job.

The widgets are not inside ``st.form``, so the estimate follows every change. A problem found
while building the command (a bad dimension, a task both seen and unseen) is said when the
button is clicked, and nothing is queued; a missing prerequisite (no subspace for intrinsic
tuning) is said on the form at once, with the one click that computes it.
"""
from __future__ import annotations

import functools
from typing import Callable, Sequence

import streamlit as st

from ipt_app.context import ctx, device_options, resource_for, suite_info, suite_problem
from ipt_app.cost import Estimate, estimate, fmt_range, machine_speed, summary
from ipt_app.escape import md_code
from ipt_app.job_panel import submit_job
from ipt_app.store_reads import stores
from ipt_core import jobs
from ipt_core.cli.args import config_of, pt_argv
from ipt_core.config.backbone import DEFAULT_BACKBONE, PROMPT_KINDS
from ipt_core.config.budgets import NAMES as BUDGET_NAMES
from ipt_core.config.limits import MAX_DIMS, limit
from ipt_core.config.limits import widget_kwargs as limit_of  # the CLI's ranges: a form offers no more

LONG_S = 30 * 60  # an estimate whose idle end is above this is a warning, not a caption


@functools.lru_cache(maxsize=None)
def cli_default(command: str, dest: str):
    """The default of a flag of the CLI's ``command`` that no config holds (``--seeds``, ``--d``, ``--dims``):
    the CLI's parser is its one source, e.g. ``cli_default("stability", "seeds")`` -> 3.
    (A config's defaults: :func:`ipt_core.cli.args.config_of`.)"""
    from ipt_core.cli.main import build_parser

    commands = next(a for a in build_parser(only=command)._actions if a.dest == "command")
    return commands.choices[command].get_default(dest)


def machine_budget() -> str:
    """The CLI's budget for this machine: ``paper`` (the methods' own schedules) on a GPU, ``quick`` on a CPU."""
    return "paper" if st.session_state.get("ctx_gpu_name") else "quick"


def tune_form_config(budget: str, *, steps: int, eval_every: int, kind: str, n_tokens: int, lr: float, batch_size: int):
    """The :class:`~ipt_core.config.pt.PTConfig` the prompt-tuning form shows: the CLI's ``tune`` under
    ``budget`` with the form's values (``tune_form`` queues it with :func:`~ipt_core.cli.args.pt_argv`)."""
    return config_of("tune", budget, steps=int(steps), eval_every=int(eval_every), prompt_kind=kind,
                     prompt_len=int(n_tokens), lr=float(lr), batch_size=int(batch_size))


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
    """The estimate of ``argv`` at this machine's measured speed and load now (None when the CLI refuses it).
    The same :class:`~ipt_app.cost.Estimate` is shown on the form and kept beside the job (``estimate.json``)."""
    speed = machine_speed(stores(c["root"]), resource_for(device))
    examples = sum(int(r.get(k) or 0) for r in info.get("rows", []) for k in ("train", "dev", "test"))
    try:
        return estimate(argv, n_suite_tasks=len(info.get("names", [])), rate=speed, example_rows=examples)
    except ValueError:
        return None


def show_cost(est: Estimate | None) -> None:
    if est is None:
        st.caption("No estimate: fix the input first.")
    elif est.seconds_low > LONG_S:  # long even on an idle machine (the load alone is said in the range)
        st.warning(summary(est) + f"  \nThis is a long job (about {fmt_range(est.seconds_low, est.seconds_high)}): fewer tasks, "
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
    """``"4, 16,64"`` -> ``[4, 16, 64]``; ValueError naming the bad item (the range of ``--dims``: ``limits``)."""
    dims = limit("dims")
    out = []
    for item in str(text).replace(" ", "").split(","):
        if not item:
            continue
        try:
            v = int(item)
        except ValueError:
            raise ValueError(f"dimension {item!r} is not an integer") from None
        if not dims.contains(v):
            raise ValueError(f"dimension {v} must be {dims.describe()}")
        out.append(v)
    if not out:
        raise ValueError("give at least one dimension, e.g. 4,16,64")
    if len(set(out)) > MAX_DIMS:
        raise ValueError(f"at most {MAX_DIMS} dimensions, got {len(set(out))}")
    return sorted(set(out))


def tune_form(key: str = "tune") -> None:
    """Prompt tuning: ``tune --suite S --tasks a,b --seeds N --steps N ...``."""
    got = form_context()
    if got is None:
        return
    c, info = got
    budget = machine_budget()
    base = config_of("tune", budget)  # the widgets start at the CLI's defaults for this machine
    with st.container(border=True):
        st.markdown(f"**Prompt tuning** on suite {md_code(c['suite_name'])} with {md_code(c['backbone'])}")
        tasks = st.multiselect(f"Tasks (none = all {len(info['names'])})", info["names"], key=f"{key}-tasks")
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", value=cli_default("tune", "seeds"), **limit_of("seeds", at_most=20), key=f"{key}-seeds")
        steps = b.number_input("Steps", value=base.steps, **limit_of("steps", at_most=100000), key=f"{key}-steps")
        eval_every = d.number_input("Evaluate every", value=base.eval_every, **limit_of("eval_every", at_most=100000),
                                    key=f"{key}-eval")
        a, b, d = st.columns(3)
        kind = a.selectbox("Prompt kind", PROMPT_KINDS, index=PROMPT_KINDS.index(base.kind), key=f"{key}-kind")
        n_tokens = b.number_input("Prompt length", value=base.n_tokens, **limit_of("n_tokens", at_most=256), key=f"{key}-len")
        lr = d.number_input("Learning rate", value=base.lr, **limit_of("lr", at_least=1e-5), format="%.4f", key=f"{key}-lr")
        a, b = st.columns(2)
        batch = a.number_input("Batch size", value=base.batch_size, **limit_of("batch_size", at_most=4096), key=f"{key}-batch")
        device = b.selectbox("Device", device_options(), key=f"{key}-device")

        def build() -> list[str]:
            cfg = tune_form_config(budget, steps=steps, eval_every=eval_every, kind=kind, n_tokens=n_tokens, lr=lr,
                              batch_size=batch)
            argv = ["tune", "--suite", c["suite"], "--seeds", str(int(seeds))] + pt_argv(cfg, budget) + common_flags(c, device)
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
    budget = a.selectbox("Budget", BUDGET_NAMES, index=BUDGET_NAMES.index(machine_budget()), key="ov-budget")
    flags = ["--backbone", c["backbone"]] if c["backbone"] != DEFAULT_BACKBONE else []
    with b:
        launch(c, info, lambda: ["pipeline", "--suite", c["suite"], "--budget", budget] + flags, device="auto",
               key=key, button_key=key, button="Queue the pipeline", label=lambda: f"pipeline ({budget}) on {c['suite_name']}")
