"""Launch forms of the IPT experiments and the method comparison (see :mod:`ipt_app.forms`).

- ``ipt_form``: subspace finding + intrinsic tuning + a dimension sweep (``ipt``);
- ``ist_form``: intrinsic tuning in a subspace already in the store (``ist --decoder KEY``); with
  no subspace for the suite it says so and offers the one click that finds one;
- ``stability_form``: PT from random init vs IST-initialised PT over seeds (``stability``);
- ``compare_form``: the methods side by side (``compare``).
"""
from __future__ import annotations

import streamlit as st

from ipt_app.context import device_options
from ipt_app.escape import md_code
from ipt_app.forms import cli_default, common_flags, form_context, launch, machine_budget, parse_dims
from ipt_app.glossary import help_for
from ipt_app.store_reads import subspace_label, subspaces
from ipt_core.cli.args import compare_argv, config_of, ipt_argv, ist_argv
from ipt_core.config.budgets import NAMES as BUDGET_NAMES
from ipt_core.config.ipt import SUBSPACES
from ipt_core.config.limits import widget_kwargs as limit_of  # the CLI's ranges: a form offers no more


def budget_help() -> str:
    """What each budget runs, read from the configs the CLI builds under it."""
    q, p = config_of("ipt", "quick"), config_of("ipt", "paper")
    return (f"quick: the CLI's CPU schedule, --budget quick (PT {q.pt.steps} steps x {q.pt.batch_size} rows, subspace "
            f"finding {q.msf.steps} steps, intrinsic tuning {q.ist.steps} steps); paper: the methods' own defaults "
            f"(PT {p.pt.steps} steps x {p.pt.batch_size} rows, subspace finding {p.msf.steps}, intrinsic tuning {p.ist.steps})")


def _budget(key: str) -> str:
    return st.radio("Budget", BUDGET_NAMES, index=BUDGET_NAMES.index(machine_budget()), horizontal=True,
                    key=f"{key}-budget", help=budget_help())


def ipt_form_config(command: str, budget: str, **flags):
    """The :class:`~ipt_core.config.ipt.IPTSettings` of the ``ipt`` and ``stability`` forms: the CLI's under
    ``budget``, with the form's ``flags`` by dest (the ``ipt`` form's ``subspaces``; no other field has one)."""
    return config_of(command, budget, **flags)


def ipt_run_argv(command: str, budget: str, **flags) -> list[str]:
    """The flags of an ``ipt``/``stability`` job that build :func:`ipt_form_config` (``--budget quick`` or none,
    ``--subspaces found,random`` where the form leaves a control out)."""
    return ipt_argv(ipt_form_config(command, budget, **flags), budget, command)


# the subspaces IST tunes in besides the found one (the CLI's --subspaces; "found" is always on), and what each is
CONTROLS = dict(zip(SUBSPACES[1:], ("the top principal directions of the training prompts (PCA)",
                                    "an untrained decoder of the same d_I")))
SUBSPACE_HELP = ("Where intrinsic tuning runs, beside the **found** subspace (the auto-encoder MSF trained on the "
                 "training prompts, always on). **linear**: the top d_I principal directions of the same prompts "
                 "(PCA): how much the auto-encoder's non-linear decoder adds. **random**: an untrained decoder of the "
                 "same shape: how much any d_I numbers recover. Each control adds one IST run per task, d_I and seed.")


def ipt_subspaces(controls) -> tuple[str, ...]:
    """The ``subspaces`` of an IPT sweep: found, then the chosen controls, in the CLI's order."""
    chosen = {"found", *controls}
    return tuple(s for s in ("found", *CONTROLS) if s in chosen)


def ist_form_config(budget: str, *, steps: int):
    """The :class:`~ipt_core.config.ipt.ISTConfig` the intrinsic-tuning form shows: the CLI's ``ist`` under
    ``budget`` with the form's steps (``ist_form`` queues it with ``ist_argv``)."""
    return config_of("ist", budget, ist_steps=int(steps))


def default_split(names: list[str]) -> tuple[list[str], list[str]]:
    cut = max(2, len(names) * 3 // 4)
    return names[:cut], names[cut:]


def find_subspace_button(c: dict, info: dict, d: int, key: str) -> None:
    """The one click that computes a missing subspace: an ``ipt`` sweep at ``d`` (quick budget on CPU)."""
    train, test = default_split(info["names"])
    argv = (["ipt", "--suite", c["suite"], "--train-tasks", ",".join(train)] + (["--test-tasks", ",".join(test)] if test else [])
            + ["--dims", str(d), "--seeds", str(cli_default("ipt", "seeds"))] + ipt_run_argv("ipt", machine_budget())
            + common_flags(c, "auto"))
    launch(c, info, lambda: argv, device="auto", key=f"{key}-find", button=f"Find a d_I = {d} subspace first",
           label=lambda: f"IPT: {len(train)} seen / {len(test)} unseen, d_I [{d}] (subspace for intrinsic tuning)")


def ipt_form(key: str = "ipt") -> None:
    """Subspace finding + intrinsic tuning + a dimension sweep: ``ipt --suite S --train-tasks ...``."""
    got = form_context()
    if got is None:
        return
    c, info = got
    names = info["names"]
    train0, test0 = default_split(names)
    with st.container(border=True):
        st.markdown(f"**Intrinsic prompt tuning** on suite {md_code(c['suite_name'])}: find the subspace on the training "
                    "tasks (seen), tune in it on new data of those tasks and on held-out tasks (unseen)")
        train = st.multiselect("Training tasks (seen)", names, default=train0, key=f"{key}-train")
        test = st.multiselect("Held-out tasks (unseen)", names, default=test0, key=f"{key}-test")
        a, b, d = st.columns(3)
        dims = a.text_input("Intrinsic dimensions d_I", ",".join(map(str, cli_default("ipt", "dims"))), key=f"{key}-dims",
                            help=help_for("d_I", lead="Comma-separated: one subspace is found per value."))
        seeds = b.number_input("Seeds", value=cli_default("ipt", "seeds"), **limit_of("seeds", at_most=20), key=f"{key}-seeds")
        device = d.selectbox("Device", device_options(), key=f"{key}-device")
        default_controls = [s for s in cli_default("ipt", "subspaces") if s in CONTROLS]
        # the options are the CLI's own names (no format_func: the value is what the widget shows); help says what
        controls = st.multiselect("Controls beside the found subspace (linear: PCA; random: untrained)", list(CONTROLS),
                                  default=default_controls, key=f"{key}-controls", help=SUBSPACE_HELP)
        budget = _budget(key)

        def build() -> list[str]:
            dim_list = parse_dims(dims)
            if len(train) < 2:
                raise ValueError("choose at least two training tasks: the subspace is shared by several tasks")
            both = sorted(set(train) & set(test))
            if both:
                raise ValueError(f"a task cannot be both seen and unseen: {both}")
            argv = ["ipt", "--suite", c["suite"], "--train-tasks", ",".join(train)]
            if test:
                argv += ["--test-tasks", ",".join(test)]
            argv += ["--dims", ",".join(map(str, dim_list)), "--seeds", str(int(seeds))]
            return argv + ipt_run_argv("ipt", budget, subspaces=ipt_subspaces(controls)) + common_flags(c, device)

        launch(c, info, build, device=device, key=key, button="Queue IPT sweep",
               label=lambda: f"IPT: {len(train)} seen / {len(test)} unseen, d_I {dims.replace(' ', '')}, "
                             f"subspaces {'/'.join(ipt_subspaces(controls))}")


def ist_form(key: str = "ist") -> None:
    """Intrinsic tuning of chosen tasks in a subspace already in the store: ``ist --suite S --tasks a
    --d D --decoder KEY``. Only the d_I numbers of each task train (no PT, no subspace finding)."""
    got = form_context()
    if got is None:
        return
    c, info = got
    found = subspaces(c["root"], info["names"])
    with st.container(border=True):
        st.markdown(f"**Intrinsic tuning** on suite {md_code(c['suite_name'])}: tune chosen tasks inside a subspace that was "
                    "already found; only the intrinsic vector z trains")
        if not found:
            st.warning(f"No subspace for suite {md_code(c['suite_name'])} in the store yet: intrinsic tuning needs one. "
                       "Find one first (one click below), then tune in it.", icon=":material/info:")
            find_subspace_button(c, info, cli_default("ist", "d"), key)
            return
        default = next((i for i, s in enumerate(found) if s["d"] == cli_default("ist", "d")), 0)
        budget = machine_budget()
        tasks = st.multiselect("Tasks", info["names"], default=info["names"][:1], key=f"{key}-tasks")
        a, b, d, e = st.columns([3, 1, 1, 1])
        pick = a.selectbox("Subspace", range(len(found)), index=default, format_func=lambda i: subspace_label(found[i]),
                           key=f"{key}-space")
        kinds = list(SUBSPACES)  # the ist command's --subspace choices
        subspace = b.selectbox("Control", kinds, index=kinds.index(cli_default("ist", "subspace")), key=f"{key}-sub",
                               help="Where z is tuned. **found**: the subspace chosen on the left (MSF's decoder). "
                                    "**linear**: the top d_I principal directions of the PT prompts it was found on "
                                    "(PCA). **random**: an untrained decoder of the same shape, the control. Both "
                                    "controls read those PT prompts from the store that holds the subspace.")
        steps = d.number_input("IST steps", value=config_of("ist", budget).steps, **limit_of("ist_steps", at_most=100000),
                               key=f"{key}-steps")
        device = e.selectbox("Device", device_options(), key=f"{key}-device")
        s = found[pick]

        def build() -> list[str]:
            if not tasks:
                raise ValueError("choose at least one task")
            cfg = ist_form_config(budget, steps=steps)
            return (["ist", "--suite", c["suite"], "--tasks", ",".join(tasks), "--d", str(s["d"]), "--subspace", subspace]
                    + ist_argv(cfg, budget) + ["--prompt-kind", s["kind"], "--decoder", s["key"]] + common_flags(c, device))

        launch(c, info, build, device=device, key=key, button="Queue intrinsic tuning",
               label=lambda: f"IST: {len(tasks)} task(s), d_I {s['d']}, {subspace} subspace")


def stability_form(key: str = "stability") -> None:
    """PT from random init vs IST-initialised PT over seeds: ``stability --suite S --tasks a --seeds N --d D``."""
    got = form_context()
    if got is None:
        return
    c, info = got
    with st.container(border=True):
        st.markdown(f"**Seed stability** on suite {md_code(c['suite_name'])}: PT from a random init against PT initialised "
                    "from the intrinsic-subspace solution (the subspace is found on every other task)")
        tasks = st.multiselect("Tasks", info["names"], default=info["names"][:1], key=f"{key}-tasks")
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", value=cli_default("stability", "seeds"), **limit_of("seeds", at_least=2, at_most=20),
                               key=f"{key}-seeds")
        dim = b.number_input("Intrinsic dimension d_I", value=cli_default("stability", "d"), **limit_of("d_intrinsic", at_most=4096),
                             key=f"{key}-d", help=help_for("d_I"))
        device = d.selectbox("Device", device_options(), key=f"{key}-device")
        budget = _budget(key)

        def build() -> list[str]:
            if not tasks:
                raise ValueError("choose at least one task")
            return (["stability", "--suite", c["suite"], "--tasks", ",".join(tasks), "--seeds", str(int(seeds)),
                     "--d", str(int(dim))] + ipt_run_argv("stability", budget) + common_flags(c, device))

        launch(c, info, build, device=device, key=key, button="Queue stability run",
               label=lambda: f"stability: {len(tasks)} task(s) x {int(seeds)} seeds, d_I {int(dim)}")


def compare_form_config(budget: str, *, steps: int):
    """The :class:`~ipt_core.config.registry.CompareSettings` the comparison form shows: the CLI's ``compare``
    under ``budget`` with the form's step budget (``compare_form`` queues it with ``compare_argv``)."""
    return config_of("compare", budget, steps=int(steps))


def compare_form(key: str = "compare") -> None:
    """Methods side by side: ``compare --suite S --tasks a,b --methods ... --seeds N --steps N``.

    IPT's subspace and ATTEMPT's sources come from the suite's tasks that are not compared, so
    the form asks for the compared tasks only and refuses when none are left over.
    """
    from ipt_core.config.registry import COMPARE_METHODS, DEFAULT_COMPARE_METHODS

    got = form_context()
    if got is None:
        return
    c, info = got
    names = info["names"]
    budget = machine_budget()
    with st.container(border=True):
        st.markdown(f"**Method comparison** on suite {md_code(c['suite_name'])}: every method on the same tasks, model and "
                    "step budget; IPT's subspace and ATTEMPT's source prompts come from the tasks not compared")
        tasks = st.multiselect("Tasks to compare", names, default=names[:2], key=f"{key}-tasks")
        methods = st.multiselect("Methods", list(COMPARE_METHODS), default=list(DEFAULT_COMPARE_METHODS), key=f"{key}-methods",
                                 help=help_for("zero-shot", "linear probe", "prompt tuning (PT)", "MSF", "IST",
                                               "ATTEMPT", "VIP", lead="ipt: a subspace found by MSF, then IST in it."))
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", value=cli_default("compare", "seeds"), **limit_of("seeds", at_most=20), key=f"{key}-seeds")
        steps = b.number_input("Steps (every trained method)", value=config_of("compare", budget).pt.steps,
                               **limit_of("steps", at_most=100000), key=f"{key}-steps")
        device = d.selectbox("Device", device_options(), key=f"{key}-device")

        def build() -> list[str]:
            if not tasks or not methods:
                raise ValueError("choose at least one task and one method")
            needs_others = sorted(set(methods) & {"ipt", "attempt", "attempt-mt"})
            if needs_others and len(tasks) >= len(names):
                raise ValueError(f"{', '.join(needs_others)} need tasks that are not compared (their subspace or "
                                 "source prompts come from them): leave some tasks out")
            cfg = compare_form_config(budget, steps=steps)
            return (["compare", "--suite", c["suite"], "--tasks", ",".join(tasks), "--methods", ",".join(methods),
                     "--seeds", str(int(seeds))] + compare_argv(cfg, budget) + common_flags(c, device))

        launch(c, info, build, device=device, key=key, button="Queue comparison",
               label=lambda: f"compare {len(methods)} methods on {len(tasks)} task(s) x {int(seeds)} seed(s)")
