"""Subspace and task map: task embeddings by PCA or UMAP; neighbours, clustered similarity, dendrogram.

Vectors come from a ``task_map`` entry (raw prompt, intrinsic and IST spaces) or, until one exists,
from the suite's ``pt_run`` entries (mean prompt over seeds per task, flattened). PCA, similarities,
neighbours and the dendrogram are computed here (cached); UMAP only ever comes from the store,
computed by a job, because its first fit compiles for ~20 s.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from ipt_app.context import (
    ctx,
    suite_info,
    suite_matches,
    suite_problem,
    suite_read_problem,
)
from ipt_app.escape import md_code, md_escape
from ipt_app.forms_transfer import PICKED_KEY, use_as_targets
from ipt_app.glossary import help_for
from ipt_app.job_panel import job_panel, submit_job
from ipt_app.store_reads import backbone_of, entries, stores
from ipt_app.widgets import empty_state, show_commands, show_figure, terms_expander
from ipt_core import jobs
from ipt_core.analysis import map_quality as mq
from ipt_core.analysis import maps
from ipt_core.figures import maps as map_figures
from ipt_core.figures.plotting import family_colors
from ipt_core.paths import SHIPPED_RESULTS
from ipt_core.tasks import TaskDataError, load_suite

# the spaces in plain words, instead of the core's "intrinsic space (Proj of the prompts)"; short, as they go in
# chart titles too: the tooltip and the "Terms on this page" expander say the rest
SPACE_LABELS = {**{k: v for k, v in mq.SPACE_NAMES.items() if k in ("prompt", "intrinsic", "ist")},
                "intrinsic": "intrinsic space (encoded PT prompts)", "ist": "intrinsic space (IST solutions)"}
SPACE_HELP = help_for("soft prompt", "intrinsic space", "Proj", "IST",
                      lead="Which vectors stand for a task: its PT prompt, flattened; that prompt encoded by MSF's "
                           "Proj; or the d_I numbers IST tuned for it.")


def _find(root: str, key: str):
    for s in stores(Path(root)):
        e = s.get(key)
        if e is not None:
            return e
    return None


@st.cache_data(show_spinner="Loading task vectors…", max_entries=16)
def _task_map_vectors(root: str, key: str, space: str) -> np.ndarray:
    e = _find(root, key)
    t = e.tensor(space).float().numpy()
    return t.reshape(t.shape[0], -1).astype(np.float64)


@st.cache_data(show_spinner="Loading prompts…", max_entries=16)
def _pt_vectors(root: str, keys: tuple[str, ...], order: tuple[str, ...]) -> tuple[list[str], list[str], np.ndarray]:
    runs = [e for k in keys if (e := _find(root, k)) is not None]
    return maps.prompt_space(runs, list(order))


@st.cache_data(show_spinner=False, max_entries=64)
def _pca(vectors: np.ndarray) -> tuple[np.ndarray, list[float]]:
    return mq.pca(vectors, centre=False)  # vectors are prepared already; PCA centres on its own


@st.cache_data(show_spinner=False, max_entries=64)
def _similarity(vectors: np.ndarray) -> np.ndarray:
    return maps.cosine_similarity(vectors)


@st.cache_data(show_spinner=False, max_entries=16)
def _layers(root: str, key: str) -> int | None:
    return mq.prompt_layers(stores(Path(root)), _find(root, key))


@st.cache_data(show_spinner="Measuring map quality…", max_entries=16, ttl=60)
def _quality(root: str, key: str | None, suite_spec: str, backbone: str, centre: bool,
             extra: tuple = ()) -> dict:
    """Map quality of a task map's spaces (and ``extra``: (name, vectors, names) spaces) with the
    stored text / zero-shot-profile baselines of the suite."""
    sts = stores(Path(root))
    spaces, fams, layers = ({}, {}, {})
    if key is not None:
        spaces, fams, layers = mq.task_map_spaces(sts, _find(root, key))
    for name, x, names, lay in extra:
        spaces[name] = (x, list(names))
        layers[name] = lay
    base = {}
    # a suite outside the allowed folders (a results-only one named by a stored result) is never read
    if suite_read_problem(suite_spec, root) is None:
        try:
            suite = load_suite(suite_spec)
            fams = {**fams, **{t.name: t.type for t in suite.tasks}}
            base = mq.stored_baselines(sts, list(suite.tasks), backbone)
        except TaskDataError:
            pass
    return mq.quality_report(spaces, fams, base, centre=centre, layers=layers)


def _link(page: str, label: str) -> None:
    try:
        st.page_link(page, label=label, icon=":material/arrow_forward:")
    except Exception:  # noqa: BLE001 - a page run outside st.navigation cannot resolve links
        st.caption(f"See the page **{label}**.")


def _stored_umap(root: str, vectors: np.ndarray, names: list[str]) -> tuple[list | None, str | None]:
    """UMAP coordinates computed by a job for exactly these vectors, and that job's command."""
    spec = maps.umap_spec(maps.vectors_fingerprint(vectors, names))
    for s in stores(Path(root)):
        e = s.get(spec)
        if e is not None and e.meta.get("tasks") == names:
            return e.meta["coords"], e.command
    return None, None


c = ctx()
root = str(c["root"])
st.title("Subspace and task map")
st.caption(f"Suite {md_code(c['suite_name'])} · backbone {md_code(c['backbone'])}")  # user strings: issue 32
terms_expander("task_map")
info = suite_info(c["suite"])
suite_problem(c, info)
suite_names = info.get("names", [])

tm_entries = [e for e in entries(c["root"], "task_map") if suite_matches(e.meta.get("suite"), c["suite"])]
pt = [e for e in entries(c["root"], "pt_run") if e.meta.get("task") in suite_names and backbone_of(e) == c["backbone"]]
pt_groups: dict[str, list] = {}
for e in pt:
    pt_groups.setdefault(maps.pt_config_id(e.spec, e.meta), []).append(e)

sources: list[tuple[str, object]] = [("task_map", e) for e in sorted(tm_entries, key=lambda e: -e.created)]
sources += [("pt", g) for g in sorted(pt_groups, key=lambda g: -len({e.meta["task"] for e in pt_groups[g]}))]
if not sources:
    empty_state(f"No task vectors for suite `{c['suite_name']}` yet: the map needs prompt-tuning runs (the raw prompt "
                "space) or an IPT run (the intrinsic spaces). Queue prompt tuning on the Prompt tuning page, or run:",
                f"python -m ipt_core tune --suite {c['suite']} --steps 50 --eval-every 10")
    st.stop()


def _source_label(i: int) -> str:
    kind, obj = sources[i]
    if kind == "task_map":
        m = obj.meta
        return f"IPT task map · {m.get('prompt_kind', '?')} prompts · {len(m.get('tasks', []))} tasks · {obj.key[:10]}"
    runs = pt_groups[obj]
    return f"PT prompts · {maps.pt_config_label(runs[0].spec, runs[0].meta)} · {len({e.meta['task'] for e in runs})} tasks"


a, b, d = st.columns([3, 2, 2])
src_i = a.selectbox("Vectors from", range(len(sources)), format_func=_source_label, key="map-source",
                    help=help_for("prompt tuning (PT)", "MSF", "shallow vs deep prompts",
                                  lead="An IPT task map (raw, intrinsic and IST spaces) or, until one exists, the "
                                       "suite's prompt-tuning runs (the raw prompt space only)."))
kind, obj = sources[src_i]
o1, o2, o3 = st.columns([2, 2, 3])
centre = o1.toggle("Centre on the mean task", value=True, key="map-centre",
                   help="Cosine, PCA and neighbours of the task vectors minus their mean (deep prompts also normalised "
                        "per layer). Off: the raw vectors, where one shared component makes every pair look alike.")
robust = o2.toggle("Robust axes", value=True, key="map-robust",
                   help="Axis limits an outlier does not set; tasks beyond them are drawn as triangles on the border.")
label_mode = o3.radio("Labels", ["auto", "all", "hover"], horizontal=True, key="map-labels",
                      format_func={"auto": "where they fit", "all": "all", "hover": "on hover only"}.get)
stored_umap = None
quality = None
layers = None
if kind == "task_map":
    entry = obj
    spaces = [s for s in entry.meta.get("spaces", ["prompt"]) if s in entry.tensor_names]
    quality = _quality(root, entry.key, c["suite"], c["backbone"], centre)
    best = quality.get("best_space")
    space = b.radio("Space", spaces, index=spaces.index(best) if best in spaces else 0,
                    format_func=lambda s: SPACE_LABELS.get(s, s) + (" ★ best map quality" if s == best else ""),
                    key="map-space", help=SPACE_HELP)
    names = list(entry.meta["tasks"])
    families = list(entry.meta.get("families") or [info.get("families", {}).get(t, "") for t in names])
    vectors = _task_map_vectors(root, entry.key, space)
    stored_umap = (entry.meta.get("umap") or {}).get(space)
    commands = [entry.command]
    layers = _layers(root, entry.key) if space == "prompt" else None
    umap_argv = ["umap", "--entry", entry.key, "--space", space]
else:
    runs = pt_groups[obj]
    space = "prompt"
    b.radio("Space", ["prompt"], format_func=lambda s: SPACE_LABELS[s] + " (mean over seeds)", key="map-space-pt",
            help=SPACE_HELP)
    names, families, vectors = _pt_vectors(root, tuple(sorted(e.key for e in runs)), tuple(suite_names))
    shape = tuple(runs[0].tensor("prompt").shape)
    layers = int(shape[0]) if len(shape) == 3 else None
    commands = [e.command for e in runs]
    umap_argv = ["umap", "--suite", c["suite"], "--pt-config", obj]
if SHIPPED_RESULTS.is_dir():
    umap_argv += ["--extra-store", str(SHIPPED_RESULTS)]
method = d.radio("Projection", ["PCA", "UMAP"], horizontal=True, key="map-projection",
                 help="How the task vectors are drawn in 2-D: PCA (the two directions of most variance, computed "
                      "here) or UMAP (keeps near neighbours near; computed by a job).")
finite = np.isfinite(vectors).all(axis=1)
if not finite.all():  # e.g. tasks with no IST solution at this d_I have NaN rows in the "ist" space
    missing = [n for n, ok in zip(names, finite) if not ok]
    st.caption(f"Left out (no vector in this space): {md_escape(', '.join(missing))}")
    if stored_umap is not None and len(stored_umap) == len(names):
        stored_umap = [xy for xy, ok in zip(stored_umap, finite) if ok]
    names = [n for n, ok in zip(names, finite) if ok]
    families = [f for f, ok in zip(families, finite) if ok]
    vectors = vectors[finite]

if len(names) < 2:
    st.warning(f"Only {len(names)} task has vectors here; a map needs at least two. Tune more tasks.")
    st.stop()

raw_vectors = vectors
vectors = mq.prepare(raw_vectors, centre=centre, layers=layers)  # every view below: the prepared vectors
if kind == "pt":
    quality = _quality(root, None, c["suite"], c["backbone"], centre, extra=(("prompt", raw_vectors, tuple(names), layers),))
coords = None
axis = ("PC 1", "PC 2")
ratio = None
if method == "UMAP":
    coords, umap_command = (stored_umap, None) if stored_umap else _stored_umap(root, raw_vectors, names)
    axis = ("UMAP 1", "UMAP 2")
    if coords is None:
        if len(names) < 4:
            st.warning("UMAP needs at least 4 tasks; showing PCA.")
        else:
            st.info("No UMAP coordinates stored for these vectors yet. UMAP's first fit compiles for ~20 s, so it runs "
                    "as a background job, not in this page; PCA is shown meanwhile.")
            pending = any(not j.finished and j.argv[:len(umap_argv)] == tuple(umap_argv)
                          for j in jobs.list_jobs(c["root"]))
            if st.button("Compute UMAP (as a job)", key="map-umap-job", icon=":material/play_arrow:", disabled=pending,
                         help="already queued or running" if pending else None):
                submit_job(c["root"], umap_argv, label=f"UMAP of {len(names)} tasks ({space} space)")
            job_panel(c["root"], ["umap"], limit=1, key="map")
        axis = ("PC 1", "PC 2")
map_commands = commands
if coords is None:
    coords, ratio = _pca(vectors)
    axis = map_figures.pca_axis_titles(ratio)
    method_shown = "PCA"
else:
    method_shown = "UMAP"
    map_commands = commands + ([umap_command] if umap_command else [])

picked_on_chart = st.session_state.get("map-chart-picked", [])
table = map_figures.task_map_table(coords, names, families)
chosen = st.multiselect("Tasks to inspect (or select points on the map with the lasso/box tool)", names,
                        key="map-selected")
selected = list(dict.fromkeys(chosen + [t for t in picked_on_chart if t in names]))
trust = mq.trustworthiness(vectors, coords, centre=False)
fam_colours = family_colors(list(info.get("families", {}).values()) + list(families))
fig = map_figures.task_map_figure(
    table, f"Tasks in the {SPACE_LABELS.get(space, space)} ({method_shown}{', centred' if centre else ''})",
    highlight=selected, axis_titles=axis, colours=fam_colours, robust=robust, labels=label_mode,
    subtitle="" if trust is None else f"trustworthiness of this 2-D map (k = 3): {trust:.2f}")
event = st.plotly_chart(fig, key="chart-map", theme=None, on_select="rerun", selection_mode=("points", "box", "lasso"),
                        config={"toImageButtonOptions": {"format": "svg", "filename": f"task_map_{space}_{method_shown}",
                                                         "scale": 2}, "displaylogo": False})
try:
    points = event.selection.points if event and event.selection else []
except AttributeError:
    points = []
picked = []
for p in points:
    cd = p.get("customdata")
    if isinstance(cd, (list, tuple)) and cd and cd[0] in names:
        picked.append(cd[0])
if picked != picked_on_chart:
    st.session_state["map-chart-picked"] = picked
    st.rerun()
cols = st.columns([1, 3])
cols[0].download_button("Download CSV", table.to_csv(index=False).encode(), file_name=f"task_map_{space}_{method_shown}.csv",
                        mime="text/csv", key="csv-map", on_click="ignore", icon=":material/download:")
cols[1].caption(f"{len(names)} tasks · vectors of dimension {vectors.shape[1]}"
                + (f" · {layers} layers, each normalised" if layers else "")
                + ("" if trust is None else f" · trustworthiness {trust:.2f} (1 = every map neighbour is a real one)")
                + " · SVG: camera icon in the chart's toolbar")
show_commands(map_commands)
if selected:  # the selection as the transfer test's targets: the form on the transfer page opens on them
    t1, t2 = st.columns([2, 3])
    if t1.button(f"Use the {len(selected)} selected task{'s' if len(selected) > 1 else ''} as transfer targets",
                 key="map-to-transfer", icon=":material/swap_horiz:",
                 help="Fills the target list of the transfer test's form on the page Which task helps which."):
        use_as_targets(selected)
    if st.session_state.get(PICKED_KEY):
        with t2:
            _link("pages/transfer.py", f"Which task helps which: {len(st.session_state[PICKED_KEY])} target(s) "
                                       "ready in its form")

st.subheader("Nearest neighbours (" + ("centred " if centre else "") + "cosine, in the original space)")
k = st.slider("Neighbours per task", 1, max(1, min(10, len(names) - 1)), min(3, len(names) - 1), key="map-k",
              help="How many nearest tasks (by cosine similarity in the chosen space) to list for each selected task.") \
    if len(names) > 2 else 1
if selected:
    nn = maps.nearest_neighbours(vectors, names, k, query=selected)
    nn["family"] = nn["task"].map(dict(zip(names, families)))
    nn["neighbour_family"] = nn["neighbour"].map(dict(zip(names, families)))
    st.dataframe(nn, hide_index=True, key="map-nn")
    st.download_button("Download CSV", nn.to_csv(index=False).encode(), file_name=f"neighbours_{space}.csv",
                       mime="text/csv", key="csv-nn", on_click="ignore", icon=":material/download:")
    subset = list(dict.fromkeys(selected + nn["neighbour"].tolist()))
else:
    st.caption("Select tasks above (or on the map) to list their nearest neighbours; the heatmap and dendrogram "
               "below then show the selection and its neighbours.")
    subset = names

idx = [names.index(t) for t in subset]
sub_vectors = vectors[idx]
sim = _similarity(sub_vectors)
order = maps.cluster_order(sim)
sim_table = map_figures.similarity_table(sim, subset, order)
st.subheader("Clustered cosine similarity" + (" (centred on the mean task)" if centre else ""))
show_figure(map_figures.similarity_heatmap(sim_table, f"Cosine similarity in the {SPACE_LABELS.get(space, space)}",
                                           centred=centre),
            sim_table, name=f"similarity_{space}", commands=commands,
            key="map-sim", index=True, beside=False)  # a row and a column per task: the whole width
if len(subset) >= 2:
    st.subheader("Dendrogram")
    dendro = maps.dendrogram_data(sim, subset)
    show_figure(map_figures.dendrogram_figure(dendro), map_figures.dendrogram_table(dendro), name=f"dendrogram_{space}",
                commands=commands, key="map-dendro")

st.subheader("Map quality")
if quality and quality.get("spaces"):
    qt = map_figures.quality_table(quality)
    st.caption(f"For each space: the share of tasks whose nearest neighbour (k = 1), and of the 3 nearest neighbours "
               f"(k = 3), is of the task's own family ({'centred ' if centre else ''}cosine), beside chance for this "
               f"suite's family sizes ({quality['chance_nn1']:.3f} over all {quality['n_tasks']} tasks; a space with "
               "fewer tasks has its own). Baselines need only the frozen model: the mean sentence embedding of a "
               "task's inputs (text) and the zero-shot scores of every label name (zero-shot profile). "
               "Trustworthiness: of the space's 2-D PCA map.")
    show_figure(map_figures.quality_figure(qt), qt, name="map_quality", key="map-quality",
                commands=[f"python -m ipt_core map-quality --suite {c['suite']} --json"])
    if not quality.get("baselines"):
        st.info("No text baseline in the store for this suite yet (forward passes of the frozen model only, cached):")
        st.code(f"python -m ipt_core map-quality --suite {c['suite']}", language="bash")
else:
    st.caption("Map quality needs at least two tasks with vectors in a space.")

st.subheader("Which task helps which")
st.markdown("Whether a source task's prompt helps another task's tuning, and which similarity measure predicts it, "
            "has its own page:")
_link("pages/transfer.py", "Which task helps which")
