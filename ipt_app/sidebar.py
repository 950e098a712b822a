"""The shared sidebar (result store, task suite, backbone, device), drawn by app.py on every page.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ipt_app import uploads
from ipt_app.context import gpu_name, suite_read_problem
from ipt_app.escape import md_code, md_escape
from ipt_app.job_state import worker_text
from ipt_app.store_reads import backbone_of, entries
from ipt_core import jobs
from ipt_core import store as store_mod
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.paths import (
    PathNotAllowed,
    check_allowed,
    check_suite_allowed,
    looks_like_path,
    suite_local_path,
)
from ipt_core.store.folder import NotAStoreFolder, check_store_folder


def sidebar() -> None:
    """The shared sidebar: result store, task suite, backbone, device; called by app.py."""
    ss = st.session_state
    sb = st.sidebar
    sb.markdown("### Settings")

    root_text = sb.text_input("Result store", value=str(store_mod.default_root()), key="ctx_root_input",
                              help="Folder of the result store (default: $IPT_CACHE or ./cache). "
                                   "Jobs, uploads and results live here.")
    root = Path(root_text.strip() or str(store_mod.default_root())).expanduser()
    if root != store_mod.default_root():  # the default comes from the environment, not from a visitor
        try:
            check_allowed(root, "result store")
            # the app queues jobs in a store and a worker runs them: never in an upload's folder or any
            # other folder someone filled, only a new, empty or store-shaped one (issue 32)
            check_store_folder(root, "result store")
        except (PathNotAllowed, NotAStoreFolder) as e:
            sb.error(f"{md_escape(e)}; using the default store")
            root = store_mod.default_root()
    if root.exists() and not root.is_dir():
        sb.error(f"{md_escape(root)} is a file, not a folder; using the default store")
        root = store_mod.default_root()
    ss["ctx_root"] = str(root.resolve())

    # suites: the built-in demo, uploads, and suites that results in the store were computed on
    options: dict[str, tuple[str, str]] = {"demo": ("demo", "demo")}
    uploaded = uploads.list_uploads(root)
    for u in uploaded:
        options[f"{u['name']} (uploaded)"] = (u["spec"], u["name"])
    known = {u["name"] for u in uploaded} | {"demo"}
    results_only: set[str] = set()
    for kind in ("ipt_dims", "ipt_stability", "task_map", "method_compare"):
        for e in entries(root, kind):
            s = e.meta.get("suite")
            if isinstance(s, str) and s and s not in known:
                known.add(s)
                local = suite_local_path(s)
                # a store's word is no more trusted than a typed path: a suite outside the allowed
                # folders (or with a link inside that points out) is offered as results only, never read
                if local is not None and Path(local).expanduser().exists() and suite_read_problem(s, root) is None:
                    options[f"{Path(s).name} ({s})"] = (s, Path(s).name)
                else:  # computed elsewhere (e.g. on a GPU server) on data this machine does not have
                    options[f"{s} (results only)"] = (s, s)
                    results_only.add(s)
    options["Other folder or file…"] = ("", "")
    pending = ss.pop("pending_suite", None)  # set by the Tasks page after an upload
    if pending in options:
        ss["ctx_suite_choice"] = pending
    if "ctx_suite_choice" not in ss and st.query_params.get("suite") in options:
        ss["ctx_suite_choice"] = st.query_params["suite"]  # a reload (new session) keeps the URL's suite
    if ss.get("ctx_suite_choice") not in options:
        ss["ctx_suite_choice"] = "demo"
    choice = sb.selectbox("Task suite", list(options), key="ctx_suite_choice")
    if choice == "demo" or not options[choice][0]:
        st.query_params.pop("suite", None)
    elif st.query_params.get("suite") != choice:
        st.query_params["suite"] = choice
    spec, name = options[choice]
    if not spec:
        spec = sb.text_input("Suite path (folder, CSV, or hf:NAME)", key="ctx_suite_path").strip() or "demo"
        try:  # the path, an hf: path, and every symlink inside the folder (issue 32)
            check_suite_allowed(spec, "suite path")
        except PathNotAllowed as e:
            sb.error(f"{md_escape(e)}; using the demo suite")
            spec = "demo"
        name = Path(spec).name or spec
    ss["ctx_suite"], ss["ctx_suite_name"] = spec, name
    ss["ctx_results_only"] = spec in results_only

    seen = {DEFAULT_BACKBONE}
    for kind in ("pt_run", "zero_shot"):
        seen.update(b for e in entries(root, kind) if (b := backbone_of(e)))
    bb_options = sorted(seen, key=lambda b: (b != DEFAULT_BACKBONE, b)) + ["Other…"]
    bb = sb.selectbox("Backbone", bb_options, key="ctx_backbone_choice",
                      help="encoder-sim (the packaged MiniLM), or encoder-mlm:MODEL, seq2seq:MODEL, causal:MODEL")
    if bb == "Other…":
        bb = sb.text_input("Backbone spec", value="encoder-mlm:bert-base-uncased", key="ctx_backbone_text").strip() \
            or DEFAULT_BACKBONE
        model = bb.split(":", 1)[1] if ":" in bb else ""
        if model and looks_like_path(model):
            try:
                check_allowed(model, "model folder")
            except PathNotAllowed as e:
                sb.error(f"{md_escape(e)}; using {DEFAULT_BACKBONE}")
                bb = DEFAULT_BACKBONE
    ss["ctx_backbone"] = bb

    name_gpu = gpu_name()
    ss["ctx_gpu_name"] = name_gpu
    sb.markdown(f"**Device:** {name_gpu + ' (CUDA)' if name_gpu else 'CPU (no GPU found)'}")
    with sb:
        _jobs_status(root)

    # results the store found corrupt and set aside: the user is told, not only the server log (issue 32)
    from ipt_app.quarantine_notice import quarantine_notice

    quarantine_notice(root)


def _jobs_status(root: Path) -> None:
    """The store and its job count and worker state; while a job is queued or running it redraws itself
    every 2 s (a fragment), so the count and the worker's state stay live on every page."""
    listed = jobs.list_jobs(root)
    if any(not j.finished for j in listed):
        st.fragment(run_every=2.0)(_draw_jobs_status)(root)  # each redraw reads the queue afresh
    else:
        _draw_jobs_status(root, listed)  # idle: the queue is read once


def _draw_jobs_status(root: Path, listed: list[jobs.Job] | None = None) -> None:
    active = [j for j in (jobs.list_jobs(root) if listed is None else listed) if not j.finished]
    st.caption(f"Store: {md_code(root)}  \nJobs: {len(active)} queued or running · {worker_text(jobs.worker_pid(root))}")
