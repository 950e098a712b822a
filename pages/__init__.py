"""Shared helpers of the app's pages (this file is not a page: Streamlit skips ``__init__.py``).

app.py draws the shared sidebar with :func:`sidebar` (widgets of the entry script keep their values
across pages); it stores the choices as plain session values that pages read with :func:`ctx`. A
page also works when Streamlit runs its file without the entry script (the first request of a fresh
server that deep-links to a page, in Streamlit's legacy ``pages/`` mode, and ``AppTest.switch_page``):
it then gets the last choices, or the defaults.

Pages read results through :func:`entries` (the main store first, then the read-only store shipped
with the repository), show every chart with :func:`show_figure` (modebar PNG/SVG, CSV download,
the reproducing command) and launch work with the forms here, which only ever submit jobs
(``ipt_core.jobs``): nothing trains in the Streamlit process.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd
import streamlit as st

from ipt_core import jobs, store as store_mod, tasks as tasks_mod, uploads
from ipt_core.limits import widget_kwargs as limit_of  # the CLI's ranges: a form offers no more
from ipt_core.paths import PathNotAllowed, check_allowed, looks_like_path

SHIPPED_ROOT = Path(store_mod.__file__).resolve().parent / "shipped_results"
DEFAULT_BACKBONE = "encoder-sim"  # the core's default (ipt_core.backbones.DEFAULT_BACKBONE), without importing torch
POLL_SECONDS = 1.5


# --------------------------------------------------------------------------------------------------
# context chosen in the sidebar (app.py)


def ctx() -> dict:
    """The sidebar's choices: ``root`` (Path), ``suite`` (spec), ``suite_name``, ``backbone``, ``results_only``."""
    ss = st.session_state
    return {
        "root": Path(ss.get("ctx_root") or store_mod.default_root()),
        "suite": ss.get("ctx_suite", "demo"),
        "suite_name": ss.get("ctx_suite_name", "demo"),
        "backbone": ss.get("ctx_backbone", DEFAULT_BACKBONE),
        "results_only": bool(ss.get("ctx_results_only", False)),
    }


@st.cache_resource(show_spinner=False)
def get_store(root: str) -> store_mod.Store:
    """One Store per root for the whole server: it caches parsed entries between reruns."""
    return store_mod.Store(root)


def stores(root: Path) -> list[store_mod.Store]:
    """The main store, then the demo results shipped with the package (``IPT_SHIPPED_RESULTS=0``: main only)."""
    out = [get_store(str(root))]
    shipped_on = os.environ.get("IPT_SHIPPED_RESULTS", "1") != "0"
    if shipped_on and SHIPPED_ROOT.is_dir() and SHIPPED_ROOT.resolve() != Path(root).resolve():
        out.append(get_store(str(SHIPPED_ROOT)))
    return out


def entries(root: Path, kind: str, **where: Any) -> list[store_mod.Entry]:
    """Entries of ``kind`` from the main store, then the shipped store (same key: main wins)."""
    seen: set[str] = set()
    out = []
    for s in stores(root):
        try:
            found = s.query(kind, **where)
        except store_mod.StoreError as e:
            st.warning(f"cannot read the store at {s.root}: {e}")
            continue
        for e in found:
            if e.key not in seen:
                seen.add(e.key)
                out.append(e)
    return out


def backbone_of(entry: store_mod.Entry) -> str | None:
    bb = entry.spec.get("backbone")
    return bb.get("spec") if isinstance(bb, dict) else (bb if isinstance(bb, str) else None)


@st.cache_resource(show_spinner=False)
def gpu_name() -> str | None:
    """The GPU's name, or None (torch is imported here, once per server, not at start-up)."""
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - a broken CUDA setup means: no GPU for the app
        return None


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
        except PathNotAllowed as e:
            sb.error(f"{e}; using the default store")
            root = store_mod.default_root()
    if root.exists() and not root.is_dir():
        sb.error(f"{root} is a file, not a folder; using the default store")
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
                if Path(s).expanduser().exists():
                    options[f"{Path(s).name} ({s})"] = (s, Path(s).name)
                else:  # computed elsewhere (e.g. on a GPU server) on data this machine does not have
                    options[f"{s} (results only)"] = (s, s)
                    results_only.add(s)
    options["Other folder or file…"] = ("", "")
    pending = ss.pop("pending_suite", None)  # set by the Tasks page after an upload
    if pending in options:
        ss["ctx_suite_choice"] = pending
    if ss.get("ctx_suite_choice") not in options:
        ss["ctx_suite_choice"] = "demo"
    choice = sb.selectbox("Task suite", list(options), key="ctx_suite_choice")
    spec, name = options[choice]
    if not spec:
        spec = sb.text_input("Suite path (folder, CSV, or hf:NAME)", key="ctx_suite_path").strip() or "demo"
        local = spec[3:] if spec.startswith("hf:") else spec
        if spec != "demo" and (not spec.startswith("hf:") or looks_like_path(local)):
            try:
                check_allowed(local, "suite path")
            except PathNotAllowed as e:
                sb.error(f"{e}; using the demo suite")
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
                sb.error(f"{e}; using {DEFAULT_BACKBONE}")
                bb = DEFAULT_BACKBONE
    ss["ctx_backbone"] = bb

    name_gpu = gpu_name()
    ss["ctx_gpu_name"] = name_gpu
    sb.markdown(f"**Device:** {name_gpu + ' (CUDA)' if name_gpu else 'CPU (no GPU found)'}")
    pid = jobs.worker_pid(root)
    active = [j for j in jobs.list_jobs(root) if not j.finished]
    sb.caption(f"Store: `{root}`  \nJobs: {len(active)} queued or running · worker "
               f"{'running (pid ' + str(pid) + ')' if pid else 'idle'}")


def suite_matches(value: Any, spec: str) -> bool:
    """Does a suite recorded in an entry (``meta["suite"]``: the loaded suite's name, or the spec it
    was given) name the selected suite ``spec``?"""
    if not isinstance(value, str):
        return False
    if value == spec:
        return True
    info = suite_info(spec)
    if info.get("name") is not None and value == info["name"] and spec != "demo" and value != "demo":
        return True
    try:
        a, b = Path(value).expanduser(), Path(spec).expanduser()
        if a.exists() and b.exists():
            return a.resolve() == b.resolve()
    except OSError:
        pass
    return False


def suite_problem(c: dict, info: dict) -> None:
    """Say why the suite cannot be listed: an error for a broken suite, a note for results-only ones."""
    if "error" not in info:
        return
    if c.get("results_only"):
        st.warning(f"The data of suite `{c['suite_name']}` is not on this machine (its results are in the store); "
                   "results are shown, but tasks cannot be listed or tuned.")
    else:
        st.error(f"Cannot load suite {c['suite']!r}: {info['error']}")


def _path_signature(spec: str) -> str:
    """Changes when an uploaded/local suite changes on disk, so the cached listing is refreshed."""
    if spec == "demo" or spec.startswith("hf:"):
        return ""
    p = Path(spec).expanduser()
    try:
        mt = [p.stat().st_mtime_ns] + ([c.stat().st_mtime_ns for c in p.iterdir()] if p.is_dir() else [])
    except OSError:
        return "missing"
    return str(max(mt))


@st.cache_data(show_spinner=False, max_entries=32)
def _suite_info(spec: str, signature: str) -> dict:
    try:
        suite = tasks_mod.load_suite(spec)
    except tasks_mod.TaskDataError as e:
        return {"error": str(e)}
    return {
        "name": suite.name,
        "names": suite.names(),
        "families": {t.name: t.type for t in suite.tasks},
        "rows": [{"task": t.name, "family": t.type, "labels": ", ".join(t.labels), "input": " + ".join(t.input_fields),
                  **t.sizes(), "description": t.description} for t in suite.tasks],
        "examples": {t.name: [{"text": ex.text, **({"text_pair": ex.text_pair} if ex.text_pair is not None else {}),
                               "label": t.labels[ex.label]} for ex in t.train[:8]] for t in suite.tasks},
    }


def suite_info(spec: str) -> dict:
    """``{"names", "families", "rows", "examples"}`` of a suite, or ``{"error": loader's message}``."""
    return _suite_info(spec, _path_signature(spec))


def device_options() -> list[str]:
    gpu = st.session_state.get("ctx_gpu_name")
    return ["auto", "cpu"] + (["cuda"] if gpu else [])


def resource_for(device: str) -> str:
    """A job on the GPU is queued so that only one GPU job runs at a time."""
    gpu = st.session_state.get("ctx_gpu_name")
    return "gpu" if gpu and device in ("auto", "cuda") or device.startswith("cuda") else "cpu"


# --------------------------------------------------------------------------------------------------
# charts


def show_figure(fig, table: pd.DataFrame, *, name: str, commands: Iterable[str | None], key: str,
                index: bool = False, caption: str = "") -> None:
    """A plotly chart with: SVG/PNG from its modebar (camera icon), a CSV of ``table``, the command(s)."""
    st.plotly_chart(fig, key=f"chart-{key}", theme=None,
                    config={"toImageButtonOptions": {"format": "svg", "filename": name, "scale": 2},
                            "displaylogo": False})
    cols = st.columns([1, 3])
    with cols[0]:
        st.download_button("Download CSV", table.to_csv(index=index).encode("utf-8"), file_name=f"{name}.csv",
                           mime="text/csv", key=f"csv-{key}", on_click="ignore", icon=":material/download:")
    with cols[1]:
        st.caption("SVG: camera icon in the chart's toolbar." + (f" {caption}" if caption else ""))
    show_commands(commands)


def show_commands(commands: Iterable[str | None], limit: int = 4) -> None:
    cmds = list(dict.fromkeys(c for c in commands if c))
    if not cmds:
        st.caption("No command recorded for these results.")
        return
    label = "Reproduce with" if len(cmds) == 1 else f"Reproduce with ({len(cmds)} commands)"
    st.caption(label)
    st.code("\n".join(cmds[:limit]) + (f"\n# ... and {len(cmds) - limit} more" if len(cmds) > limit else ""),
            language="bash", wrap_lines=True)


def empty_state(message: str, command: str) -> None:
    st.info(message)
    st.code(command, language="bash")


# --------------------------------------------------------------------------------------------------
# jobs


def autostart_worker() -> bool:
    return os.environ.get("IPT_JOBS_AUTOSTART", "1") != "0"


def submit_job(root: Path, argv: Sequence[str], *, label: str, resource: str = "cpu") -> jobs.Job | None:
    """Queue a job (and start the worker); shows the error instead when the request is refused."""
    try:
        job = jobs.submit(root, list(argv), label=label, resource=resource)
    except (ValueError, OSError) as e:
        st.error(f"Could not queue the job: {e}")
        return None
    if autostart_worker():
        try:
            jobs.ensure_worker(root)
        except OSError as e:
            st.warning(f"Job queued, but the worker could not be started: {e}")
    st.success(f"Queued job {job.id}: {job.label}")
    return job


def _job_line(job: jobs.Job) -> str:
    p = job.progress or {}
    bits = [f"**{job.label or job.argv[0]}**", f"`{job.status}`"]
    if p.get("stage"):
        bits.append(str(p["stage"]))
    if p.get("total"):
        bits.append(f"step {p.get('step', 0)}/{p['total']}")
    if p.get("message"):
        bits.append(str(p["message"]))
    if job.seconds is not None:
        bits.append(f"{job.seconds:.0f} s")
    return " · ".join(bits)


def render_job(job: jobs.Job, *, key: str, log_lines: int = 8, expanded: bool = False) -> None:
    """Progress bar, status, log tail and a cancel button of one job."""
    with st.container(border=True):
        st.markdown(_job_line(job))
        frac = job.fraction
        if job.status == "running":
            st.progress(frac or 0.0, text=f"{(frac or 0) * 100:.0f}%" if frac is not None else "starting…")
        elif job.status == "done":
            st.progress(1.0, text="done")
        if job.status == "failed":
            # red only where one looks at this job; elsewhere an old failure should not shout on every visit
            (st.error if expanded else st.warning)(
                f"Job failed (exit code {job.returncode}){': ' + job.error if job.error else ''}; see the log.")
        tail = jobs.log_tail(job, log_lines)
        if tail and (expanded or job.status in ("running", "failed")):
            st.code(tail, language=None)
        st.caption(f"`{job.command}`")
        if not job.finished:
            if st.button("Cancel", key=f"cancel-{key}-{job.id}", icon=":material/cancel:"):
                jobs.cancel(job.root, job.id)
                st.rerun(scope="fragment") if _in_fragment() else st.rerun()


def _in_fragment() -> bool:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        c = get_script_run_ctx()
        return bool(c and c.current_fragment_id)
    except Exception:  # noqa: BLE001 - only decides the scope of a rerun
        return False


def _select(root: Path, subcommands: Sequence[str] | None, which: str, limit: int) -> list[jobs.Job]:
    found = [j for j in jobs.list_jobs(root) if subcommands is None or j.argv[0] in subcommands]
    if which == "active":
        found = [j for j in found if not j.finished]
    elif which == "finished":
        found = [j for j in found if j.finished]
    return found[:limit]


def _jobs_block(root: Path, subcommands: Sequence[str] | None, limit: int, key: str, which: str,
                was_active: bool) -> None:
    shown = _select(root, subcommands, which, limit)
    active = any(not j.finished for j in shown)
    if was_active and not active:
        st.rerun()  # a job just finished: redraw the whole page so its results appear
    if not shown:
        if which != "active":
            st.caption("No jobs yet.")
        return
    for j in shown:
        render_job(j, key=key)


_jobs_block_polling = st.fragment(run_every=POLL_SECONDS)(_jobs_block)


def job_panel(root: Path, subcommands: Sequence[str] | None = None, *, limit: int = 3, key: str = "jobs",
              which: str = "all") -> None:
    """The latest jobs (of these subcommands; ``which``: "all", "active" or "finished"), with
    progress, log tail and cancel; it polls (a fragment) while one of them is queued or running."""
    shown = _select(root, subcommands, which, limit)
    if any(not j.finished for j in shown):
        if autostart_worker() and jobs.worker_pid(root) is None and any(j.status == "queued" for j in shown):
            try:
                jobs.ensure_worker(root)  # e.g. the worker exited while idle and a job was queued from the CLI
            except OSError:
                pass
        _jobs_block_polling(root, subcommands, limit, key, which, True)
    else:
        _jobs_block(root, subcommands, limit, key, which, False)


# --------------------------------------------------------------------------------------------------
# launch forms (each submits one CLI command as a job)


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
        if v < 1 or v > limit_of("dims")["max_value"]:
            raise ValueError(f"dimension {v} must be at least 1 and at most {limit_of('dims')['max_value']}")
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
        seeds = b.number_input("Seeds", value=1, **limit_of("seeds", at_most=20), key=f"{key}-seeds")
        steps = d.number_input("Steps", value=50, **limit_of("steps", at_most=100000), key=f"{key}-steps")
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
        dim = a.number_input("Intrinsic dimension d_I", value=8, **limit_of("d_intrinsic", at_most=4096), key=f"{key}-d")
        subspace = b.selectbox("Subspace", ["found", "random"], key=f"{key}-sub")
        steps = d.number_input("Steps", value=100, **limit_of("ist_steps", at_most=100000), key=f"{key}-steps")
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
        seeds = a.number_input("Seeds", value=3, **limit_of("seeds", at_least=2, at_most=20), key=f"{key}-seeds")
        dim = b.number_input("Intrinsic dimension d_I", value=16, **limit_of("d_intrinsic", at_most=4096), key=f"{key}-d")
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
        seeds = a.number_input("Seeds", value=1, **limit_of("seeds", at_most=20), key=f"{key}-seeds")
        steps = b.number_input("Steps (every trained method)", value=300 if gpu else 50, **limit_of("steps", at_most=100000), key=f"{key}-steps")
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


def pick_entry(items: Sequence[store_mod.Entry], label: str, key: str) -> store_mod.Entry:
    """A selectbox over entries (newest first) when there are several."""
    items = sorted(items, key=lambda e: e.created, reverse=True)
    if len(items) == 1:
        return items[0]
    def fmt(i: int) -> str:
        e = items[i]
        m = e.meta
        what = ", ".join(f"{k}={m[k]}" for k in ("prompt_kind", "d", "n_train_tasks") if k in m)
        return f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(e.created))} · {what or e.kind} · {e.key[:10]}"

    i = st.selectbox(label, range(len(items)), format_func=fmt, key=key)
    return items[i]


def pretty_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
