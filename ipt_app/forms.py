"""Launch forms: each checks its input and submits one CLI command as a job.
"""
from __future__ import annotations

import streamlit as st

from .context import DEFAULT_BACKBONE, ctx, device_options, resource_for, suite_info, suite_problem
from .job_panel import submit_job

def _common_flags(c: dict, device: str) -> list[str]:
    flags = []
    if c["backbone"] != DEFAULT_BACKBONE:
        flags += ["--backbone", c["backbone"]]
    if device != "auto":
        flags += ["--device", device]
    return flags


def _form_context() -> tuple[dict, dict] | None:
    """The page context and the chosen suite's info for a launch form; None (after saying why) when
    the suite cannot be read, so the form is not drawn."""
    c = ctx()
    info = suite_info(c["suite"])
    if "error" in info:
        suite_problem(c, info)
        return None
    return c, info


def tune_form(key: str = "tune") -> None:
    """Prompt tuning: ``tune --suite S --tasks a,b --seeds N --steps N ...``."""
    got = _form_context()
    if got is None:
        return
    c, info = got
    gpu = bool(st.session_state.get("ctx_gpu_name"))
    with st.form(f"form-{key}"):
        st.markdown(f"**Prompt tuning** on suite `{c['suite_name']}` with `{c['backbone']}`")
        tasks = st.multiselect("Tasks (none = all)", info["names"], key=f"{key}-tasks")
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", 1, 20, 1, key=f"{key}-seeds")
        steps = b.number_input("Steps", 1, 100000, 300 if gpu else 50, key=f"{key}-steps")
        eval_every = d.number_input("Evaluate every", 1, 100000, 25 if not gpu else 50, key=f"{key}-eval")
        a, b, d = st.columns(3)
        kind = a.selectbox("Prompt kind", ["deep", "shallow"], key=f"{key}-kind")
        n_tokens = b.number_input("Prompt length", 1, 256, 8, key=f"{key}-len")
        lr = d.number_input("Learning rate", 1e-5, 10.0, 0.01, format="%.4f", key=f"{key}-lr")
        a, b = st.columns(2)
        batch = a.number_input("Batch size", 1, 4096, 16, key=f"{key}-batch")
        device = b.selectbox("Device", device_options(), key=f"{key}-device")
        go = st.form_submit_button("Queue prompt tuning", type="primary")
    if go:
        argv = ["tune", "--suite", c["suite"], "--seeds", str(int(seeds)), "--steps", str(int(steps)),
                "--eval-every", str(int(eval_every)), "--prompt-kind", kind, "--prompt-len", str(int(n_tokens)),
                "--lr", f"{lr:g}", "--batch-size", str(int(batch))] + _common_flags(c, device)
        if tasks:
            argv += ["--tasks", ",".join(tasks)]
        label = f"PT {kind} on {len(tasks) or len(info['names'])} task(s) x {int(seeds)} seed(s), {int(steps)} steps"
        submit_job(c["root"], argv, label=label, resource=resource_for(device))


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
        if v < 1:
            raise ValueError(f"dimension {v} must be at least 1")
        out.append(v)
    if not out:
        raise ValueError("give at least one dimension, e.g. 4,16,64")
    return sorted(set(out))


def ipt_form(key: str = "ipt") -> None:
    """Subspace finding + intrinsic tuning + a dimension sweep: ``ipt --suite S --train-tasks ...``."""
    got = _form_context()
    if got is None:
        return
    c, info = got
    names = info["names"]
    with st.form(f"form-{key}"):
        st.markdown(f"**Intrinsic prompt tuning** on suite `{c['suite_name']}`: find the subspace on the training "
                    "tasks (seen), tune in it on new data of those tasks and on held-out tasks (unseen)")
        train = st.multiselect("Training tasks (seen)", names, default=names[: max(2, len(names) * 3 // 4)],
                               key=f"{key}-train")
        test = st.multiselect("Held-out tasks (unseen)", names, default=names[max(2, len(names) * 3 // 4):],
                              key=f"{key}-test")
        a, b, d = st.columns(3)
        dims = a.text_input("Intrinsic dimensions d_I", "4,16,64", key=f"{key}-dims")
        seeds = b.number_input("Seeds", 1, 20, 1, key=f"{key}-seeds")
        steps = d.number_input("Steps", 1, 100000, 50, key=f"{key}-steps")
        device = st.selectbox("Device", device_options(), key=f"{key}-device")
        go = st.form_submit_button("Queue IPT sweep", type="primary")
    if go:
        try:
            dim_list = parse_dims(dims)
            if len(train) < 2:
                raise ValueError("choose at least two training tasks: the subspace is shared by several tasks")
            both = sorted(set(train) & set(test))
            if both:
                raise ValueError(f"a task cannot be both seen and unseen: {both}")
        except ValueError as e:
            st.error(str(e))
            return
        argv = ["ipt", "--suite", c["suite"], "--train-tasks", ",".join(train)]
        if test:
            argv += ["--test-tasks", ",".join(test)]
        argv += ["--dims", ",".join(map(str, dim_list)), "--seeds", str(int(seeds)), "--steps", str(int(steps))]
        argv += _common_flags(c, device)
        submit_job(c["root"], argv, label=f"IPT: {len(train)} seen / {len(test)} unseen, d_I {dim_list}",
                   resource=resource_for(device))


def ist_form(key: str = "ist") -> None:
    """Intrinsic tuning of chosen tasks in a subspace already in the store: ``ist --suite S --tasks a --d D``.

    Only the d_I numbers of each task train (no prompt tuning, no subspace finding), so one task
    takes well under a minute on a laptop CPU.
    """
    got = _form_context()
    if got is None:
        return
    c, info = got
    with st.form(f"form-{key}"):
        st.markdown(f"**Intrinsic tuning** on suite `{c['suite_name']}`: tune chosen tasks inside a subspace that was "
                    "already found (the newest of that d_I in the store); only the intrinsic vector z trains")
        tasks = st.multiselect("Tasks", info["names"], default=info["names"][:1], key=f"{key}-tasks")
        a, b, d, e = st.columns(4)
        dim = a.number_input("Intrinsic dimension d_I", 1, 4096, 8, key=f"{key}-d")
        subspace = b.selectbox("Subspace", ["found", "random"], key=f"{key}-sub")
        steps = d.number_input("Steps", 1, 100000, 100, key=f"{key}-steps")
        device = e.selectbox("Device", device_options(), key=f"{key}-device")
        go = st.form_submit_button("Queue intrinsic tuning", type="primary")
    if go:
        if not tasks:
            st.error("choose at least one task")
            return
        argv = ["ist", "--suite", c["suite"], "--tasks", ",".join(tasks), "--d", str(int(dim)),
                "--subspace", subspace, "--ist-steps", str(int(steps))] + _common_flags(c, device)
        submit_job(c["root"], argv, label=f"IST: {len(tasks)} task(s), d_I {int(dim)}, {subspace} subspace",
                   resource=resource_for(device))


def stability_form(key: str = "stability") -> None:
    """PT from random init vs IST-initialised PT over seeds: ``stability --suite S --tasks a --seeds N --d D``."""
    got = _form_context()
    if got is None:
        return
    c, info = got
    with st.form(f"form-{key}"):
        st.markdown(f"**Seed stability** on suite `{c['suite_name']}`: PT from a random init against PT initialised "
                    "from the intrinsic-subspace solution")
        tasks = st.multiselect("Tasks", info["names"], default=info["names"][:1], key=f"{key}-tasks")
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", 2, 20, 3, key=f"{key}-seeds")
        dim = b.number_input("Intrinsic dimension d_I", 1, 4096, 16, key=f"{key}-d")
        device = d.selectbox("Device", device_options(), key=f"{key}-device")
        go = st.form_submit_button("Queue stability run", type="primary")
    if go:
        if not tasks:
            st.error("choose at least one task")
            return
        argv = ["stability", "--suite", c["suite"], "--tasks", ",".join(tasks), "--seeds", str(int(seeds)),
                "--d", str(int(dim))] + _common_flags(c, device)
        submit_job(c["root"], argv, label=f"stability: {len(tasks)} task(s) x {int(seeds)} seeds, d_I {int(dim)}",
                   resource=resource_for(device))


def compare_form(key: str = "compare") -> None:
    """Methods side by side: ``compare --suite S --tasks a,b --methods ... --seeds N --steps N``.

    IPT's subspace and ATTEMPT's sources come from the suite's tasks that are not compared, so
    the form asks for the compared tasks only and warns when none are left over.
    """
    from ipt_core.compare import DEFAULT_METHODS, METHODS

    got = _form_context()
    if got is None:
        return
    c, info = got
    names = info["names"]
    gpu = bool(st.session_state.get("ctx_gpu_name"))
    with st.form(f"form-{key}"):
        st.markdown(f"**Method comparison** on suite `{c['suite_name']}`: every method on the same tasks, model and "
                    "step budget; IPT's subspace and ATTEMPT's source prompts come from the tasks not compared")
        tasks = st.multiselect("Tasks to compare", names, default=names[:2], key=f"{key}-tasks")
        methods = st.multiselect("Methods", list(METHODS), default=list(DEFAULT_METHODS), key=f"{key}-methods")
        a, b, d = st.columns(3)
        seeds = a.number_input("Seeds", 1, 20, 1, key=f"{key}-seeds")
        steps = b.number_input("Steps (every trained method)", 1, 100000, 300 if gpu else 50, key=f"{key}-steps")
        device = d.selectbox("Device", device_options(), key=f"{key}-device")
        go = st.form_submit_button("Queue comparison", type="primary")
    if go:
        if not tasks or not methods:
            st.error("choose at least one task and one method")
            return
        needs_others = sorted(set(methods) & {"ipt", "attempt", "attempt-mt"})
        if needs_others and len(tasks) >= len(names):
            st.error(f"{', '.join(needs_others)} need tasks that are not compared (their subspace or source "
                     "prompts come from them): leave some tasks out")
            return
        argv = ["compare", "--suite", c["suite"], "--tasks", ",".join(tasks), "--methods", ",".join(methods),
                "--seeds", str(int(seeds)), "--steps", str(int(steps))] + _common_flags(c, device)
        submit_job(c["root"], argv, label=f"compare {len(methods)} methods on {len(tasks)} task(s) x {int(seeds)} seed(s)",
                   resource=resource_for(device))
