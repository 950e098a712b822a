"""The launch form of the transfer test (see :mod:`ipt_app.forms` for the pattern): prompt tuning of each
target started from every source task's prompt, against the default initialisation, queued as
``transfer --suite S --targets a,b --sources c,d,... --steps N --seeds K``.

The target list opens on the tasks picked on the task map (the button there writes them to
:data:`PICKED_KEY`), else on none; the sources on every task of the suite, as the command's own default
(each target's sources are all the tasks but itself, so the other targets are sources too).
"""
from __future__ import annotations

from typing import Sequence

import streamlit as st

from ipt_app.context import device_options
from ipt_app.escape import md_code
from ipt_app.forms import cli_default, common_flags, form_context, launch
from ipt_core.config.limits import widget_kwargs as limit_of  # the CLI's ranges: a form offers no more

PICKED_KEY = "transfer-targets-from-map"  # session state: the task map's selection, offered as targets
DEFAULT_SEEDS = 2  # two seeds: the smallest number that measures the seeds' agreement (the noise ceiling)


def transfer_argv(suite: str, targets: Sequence[str], sources: Sequence[str], *, steps: int, seeds: int,
                  names: Sequence[str], flags: Sequence[str] = ()) -> list[str]:
    """The command the form queues. ``--sources`` is left out where it is every task of the suite (the
    command's own default: each target's sources are all the tasks but itself). Raises
    ValueError for a selection the command would refuse (no target, a target with no source but itself).

    Example:
        >>> transfer_argv("demo", ["a"], ["b", "c"], steps=20, seeds=2, names=["a", "b", "c", "d"])
        ['transfer', '--suite', 'demo', '--targets', 'a', '--sources', 'b,c', '--steps', '20', '--seeds', '2']
        >>> transfer_argv("demo", ["a"], ["a", "b", "c", "d"], steps=20, seeds=2, names=["a", "b", "c", "d"])[5:]
        ['--steps', '20', '--seeds', '2']
    """
    targets, sources = list(dict.fromkeys(targets)), list(dict.fromkeys(sources))
    if not targets:
        raise ValueError("pick at least one target task")
    if not sources:
        raise ValueError("pick at least one source task")
    lonely = [t for t in targets if not [s for s in sources if s != t]]
    if lonely:
        raise ValueError(f"{', '.join(lonely)} has no source other than itself: pick another source")
    argv = ["transfer", "--suite", suite, "--targets", ",".join(targets)]
    if set(sources) != set(names):
        argv += ["--sources", ",".join(sources)]
    return argv + ["--steps", str(int(steps)), "--seeds", str(int(seeds))] + list(flags)


def use_as_targets(tasks: Sequence[str]) -> None:
    """Offer ``tasks`` as the form's targets (the task map's button); the form reads them on its next draw."""
    st.session_state[PICKED_KEY] = list(dict.fromkeys(tasks))
    st.session_state.pop("transfer-form-targets", None)  # the multiselect opens on them, not on its old value


def transfer_form(key: str = "transfer-form") -> None:
    """Targets, sources, steps and seeds: the estimate follows every change; the button queues the job."""
    got = form_context()
    if got is None:
        return
    c, info = got
    names = list(info["names"])
    picked = [t for t in st.session_state.get(PICKED_KEY, []) if t in names]
    with st.container(border=True):
        st.markdown(f"**Transfer test** on suite {md_code(c['suite_name'])} with {md_code(c['backbone'])}")
        if picked:
            st.caption(f"Targets from the task map's selection ({len(picked)}).")
        targets = st.multiselect("Target tasks (each is tuned from every source's prompt)", names, default=picked,
                                 key=f"{key}-targets",
                                 help="Pick tasks on the task map and use its button to fill this in.")
        sources = st.multiselect(f"Source tasks (default: all {len(names)}; a target is never its own source)", names,
                                 default=names, key=f"{key}-sources",
                                 help="Each target's prompt tuning starts once from each source's PT prompt, and "
                                      "once from the default initialisation; the gain is the difference.")
        a, b, d = st.columns(3)
        steps = a.number_input("Steps per run", value=cli_default("transfer", "steps"),
                               **limit_of("steps", at_most=100000),
                               key=f"{key}-steps", help="Steps of every transfer run and of its default-init run.")
        seeds = b.number_input("Seeds", value=DEFAULT_SEEDS, **limit_of("seeds", at_most=20), key=f"{key}-seeds",
                               help="Seeds 0..K-1; two or more also measure how well the gains repeat (the noise "
                                    "ceiling of every measure).")
        device = d.selectbox("Device", device_options(), key=f"{key}-device")

        def build() -> list[str]:
            return transfer_argv(c["suite"], targets, sources, steps=steps, seeds=seeds, names=names,
                                 flags=common_flags(c, device))

        launch(c, info, build, device=device, key=key, button="Queue the transfer test",
               label=lambda: f"transfer: {len(targets)} target(s) x {len(sources)} source(s), {int(steps)} steps, "
                             f"{int(seeds)} seed(s)")
