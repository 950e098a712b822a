"""Recovery: how much of prompt tuning's score intrinsic subspace tuning (IST) recovers, versus d_I."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ipt_app.context import ctx, suite_info, suite_matches, suite_problem
from ipt_app.escape import md_code, md_escape
from ipt_app.forms_ipt import ipt_form, ist_form
from ipt_app.glossary import help_for
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import entries, pick_entry, sweep_bits, sweep_label, sweep_rank, with_finished
from ipt_app.widgets import empty_state, show_figure, terms_expander
from ipt_core.analysis import maps
from ipt_core.figures import ipt as ipt_figures


def default_choice(counts: dict, options: list):
    """The option most sweeps have scores at (ties: the middle one of the tied values), else the last option."""
    if not counts:
        return options[-1]
    best = max(counts.values())
    tied = sorted(v for v, n in counts.items() if n == best)
    return tied[len(tied) // 2]


def show_table(df: pd.DataFrame, *, name: str, key: str) -> None:
    """A small table with its CSV download (as ``show_figure`` gives a chart's)."""
    st.dataframe(df, hide_index=True, key=f"table-{key}")
    st.download_button("Download CSV", df.to_csv(index=False).encode("utf-8"), file_name=f"{name}.csv",
                       mime="text/csv", key=f"csv-{key}", on_click="ignore", icon=":material/download:")


def finished_notes(done: pd.DataFrame, *, unknown: bool = False) -> None:
    """The label of runs where IST had not finished (a warning); ``unknown``: else a caption where the flags are
    not recorded (sections whose chart caption does not say it)."""
    warn = ipt_figures.finished_warning(done)
    if warn:
        st.warning(warn, icon=":material/hourglass_top:")
    elif unknown and len(done) and (done["not_recorded"] == done["runs"]).all():
        st.caption(ipt_figures.finished_caption(done))


c = ctx()
st.title("Recovery")
st.markdown(
    "**Recovery** = mean over tasks of score(IST) / score(PT); **gain recovery** = (IST − zero-shot) / (PT − zero-shot), "
    "which is not inflated when zero-shot is already high. *Seen*: training tasks of the subspace on new few-shot data; "
    "*unseen*: held-out tasks.\n\n"
    "IST tunes d_I numbers inside one of three kinds of subspace of the same dimension: **found**, the subspace MSF's "
    "auto-encoder learned from the training tasks' prompts; **linear**, the top d_I principal directions of those "
    "prompts (PCA), which says how much the auto-encoder's non-linear decoder adds; and **random**, an untrained "
    "decoder, the control that says how much any d_I numbers recover."
)
terms_expander("recovery")
GAINS = {"pooled_gain_recovery": "pooled over tasks", "gain_recovery": "mean of per-task ratios"}
gain = st.radio("Gain recovery", list(GAINS), format_func=GAINS.get, horizontal=True, key="rec-gain",
                help=help_for("gain recovery", "zero-shot",
                              lead="Pooled: Σ(IST − zero-shot) / Σ(PT − zero-shot) over the tasks, per seed. The mean "
                                   "of per-task ratios is ruled by any task whose PT barely beats zero-shot (a gap of "
                                   "0.01 gives a ratio of −11)."))
info = suite_info(c["suite"])
names = info.get("names", [])
suite_problem(c, info)

dims_entries = [e for e in entries(c["root"], "ipt_dims") if suite_matches(e.meta.get("suite"), c["suite"])]
IPT_COMMAND = (f"python -m ipt_core ipt --suite {c['suite']} --train-tasks {','.join(names[:-2]) or 'A,B'} "
               f"--test-tasks {','.join(names[-2:]) or 'C'} --dims 2,8,32 --seeds 3 --steps 100")
if not dims_entries:
    empty_state(f"No IPT dimension sweep for suite `{c['suite_name']}` yet. Queue one below, or run:", IPT_COMMAND)
else:
    # the sweep that shows the most first (most dimensions), each named by what it is
    entry = pick_entry(dims_entries, "IPT sweep", key="rec-entry", describe=sweep_label, rank=sweep_rank,
                       help=help_for("d_I", "seen vs unseen tasks", "shallow vs deep prompts", "alpha", "norm",
                                     lead="One run of MSF then IST at each d_I; a sweep names only the MSF settings it "
                                          "changed from the defaults."))
    m = entry.meta
    n_seeds = len(m.get("seeds", [])) if isinstance(m.get("seeds"), list) else 1
    st.caption(md_escape(f"{sweep_label(entry, explain=True)} · seeds {m.get('seeds')}")
               + f" · key {md_code(entry.key[:12])}")
    rows = with_finished(c["root"], m.get("rows", []))
    done = ipt_figures.finished_table(rows)
    table = ipt_figures.recovery_table(rows, "d", m.get("summary"))
    if table.empty:
        st.warning("This sweep has no rows with scores.")
    else:
        finished_notes(done, unknown=True)
        if pt_note := ipt_figures.pt_unfinished_note(m):
            st.caption(pt_note)
        ref = st.checkbox("Show the paper's reference points (BART-base, 100 training tasks)", value=True, key="rec-ref")
        spread = "Bands: ± one std over seeds. " if n_seeds > 1 else "One seed: no spread over seeds to show. "
        shown = sorted({r.get("subspace") for r in rows if r.get("subspace")})
        show_figure(ipt_figures.recovery_figure(table, "d", reference=ref, gain=gain, finished=done), table,
                    name="recovery_vs_dim",
                    commands=[entry.command], key="rec-main",
                    caption=spread + "Subspaces: " + ipt_figures.subspace_caption(shown) + " Reference points are "
                            "from the paper's setting, not this model.")

        st.subheader("Smallest d_I that recovers half and 90% of PT's gain")
        st.caption("d50 / d90: the smallest d_I whose pooled gain recovery, Σ(IST − zero-shot) / Σ(PT − zero-shot) on "
                   "the test split (mean over seeds), reaches 0.5 / 0.9 of PT's gain over zero-shot: in the spirit of "
                   "the intrinsic-dimension literature's d90 (Li et al. 2018; Aghajanyan et al. 2021). Only the measured "
                   "dimensions are candidates: d90 = 32 means between the next smaller measured d_I and 32; \"none up "
                   "to N\": no measured d_I reaches it. Last column: the IST runs that had finished (dev accuracy no "
                   "longer rising over the last fifth of the run); where not, the d_I here are upper bounds.")
        dim_table = ipt_figures.dim_threshold_table(ipt_figures.sweep_dim_summary(m), done)
        if dim_table.empty:
            st.info("This sweep's rows lack the accuracies the d50 / d90 summary is computed from.")
        else:
            show_table(dim_table, name="ipt_d50_d90", key="rec-dims")

        st.subheader("Per task at one dimension")
        dims = sorted({r["d"] for r in rows if r.get("d") is not None})
        a, b = st.columns([3, 2])
        d = a.select_slider("d_I", dims, value=dims[-1], key="rec-d", help=help_for("d_I")) \
            if len(dims) > 1 else dims[0]
        metric = b.radio("Metric", ["recovery", "gain_recovery"], horizontal=True, key="rec-metric",
                         format_func=lambda s: s.replace("_", " "), help=help_for("recovery", "gain recovery"))
        bars = ipt_figures.recovery_bars_table(rows, d)
        at_d = ipt_figures.finished_table([r for r in rows if str(r.get("d")) == str(d)])
        show_figure(ipt_figures.recovery_bars_figure(bars, metric, f"Per-task {metric.replace('_', ' ')} at d_I = {d}",
                                                     finished=at_d),
                    bars, name=f"recovery_per_task_d{d}", commands=[entry.command], key="rec-bars", beside=False,
                    caption="Bars: " + ipt_figures.subspace_caption(sorted(set(bars["subspace"])), bars=True)
                            + (" " + ipt_figures.finished_caption(at_d) if ipt_figures.finished_warning(at_d) else ""))

        with st.expander("All rows (IST, PT and zero-shot test accuracy per task, seed, d_I)"):
            df = pd.DataFrame(rows)
            st.dataframe(df, hide_index=True, key="rec-rows")
            st.download_button("Download CSV", df.to_csv(index=False).encode(), file_name="ipt_rows.csv",
                               mime="text/csv", key="rec-rows-csv", on_click="ignore", icon=":material/download:")

# intrinsic tuning of single tasks in an existing subspace (the ``ist`` command: the form below)
ist = [e for e in entries(c["root"], "ist_run") if e.meta.get("task") in names and " ist " in f" {e.command or ''} "]
if ist:
    st.subheader("Intrinsic tuning runs")
    st.caption("Tasks tuned in an existing subspace (only z trains), newest first; beside each, its zero-shot "
               "accuracy and, where this store has the task's PT runs in the configuration that found the subspace, "
               "PT's accuracy and the gain recovery = (IST − zero-shot) / (PT − zero-shot): 0 is zero-shot's level, "
               "1 is PT's.")
    zs = {e.meta.get("task"): e.meta.get("test_acc") for e in entries(c["root"], "zero_shot") if e.meta.get("task") in names}
    latest = sorted(ist, key=lambda e: e.created, reverse=True)[:48]
    # PT's accuracy for each run: the mean over seeds of the task's pt_run entries in the PT configuration of the
    # subspace's training prompts (its msf entry's spec names them), as the IPT sweep pairs them
    msf = {e.key: e for e in entries(c["root"], "msf")}
    pt_runs = entries(c["root"], "pt_run")
    pt_by_key = {e.key: e for e in pt_runs}
    pt_acc: dict[tuple, list] = {}
    for e in pt_runs:
        if e.meta.get("test_acc") is not None:
            pt_acc.setdefault((maps.pt_config_id(e.spec, e.meta), e.meta.get("task")), []).append(e.meta["test_acc"])

    def pt_of(e) -> float | None:
        dec = msf.get(e.spec.get("decoder"))
        first = pt_by_key.get(next(iter(dec.spec.get("train_prompts") or []), None)) if dec else None
        accs = pt_acc.get((maps.pt_config_id(first.spec, first.meta), e.meta.get("task"))) if first else None
        return sum(accs) / len(accs) if accs else None

    t = ipt_figures.ist_runs_table([dict(e.meta, pt_test_acc=pt_of(e)) for e in latest], zs,
                                   n_labels={r["task"]: r.get("n_labels") for r in info.get("rows", [])})
    show_figure(ipt_figures.ist_runs_figure(t), t, name="ist_runs", commands=[e.command for e in latest], key="rec-ist-runs")

if len(dims_entries) == 1:
    st.subheader("Sweeps side by side (ablations)")
    empty_state("One sweep of this suite so far. A second one that changes a setting (an ablation) is put beside it "
                "here; e.g. MSF without its prompt normalisation (--norm none; others: --alpha, --no-msf-task-loss, "
                "--prompt-kind):", IPT_COMMAND + " --norm none")
elif len(dims_entries) > 1:
    st.subheader("Sweeps side by side (ablations)")
    st.caption("Every sweep of this suite that has the chosen d_I, named by what it changed (normalisation, alpha, "
               "MSF without its task loss, prompt kind, tasks). Read the **dev** split to choose a setting; the test "
               "split is reported, never chosen on. 0 is zero-shot's level, 1 is PT's; dotted bars: the linear "
               "subspace (PCA of the training prompts); hatched bars: the random subspace, the control. A sweep marked "
               "\"not finished\" had IST runs still rising at the end: its numbers are lower bounds.")
    common = sorted({r.get("d") for e in dims_entries for r in e.meta.get("rows", []) if r.get("d") is not None})
    # how many sweeps have scores at each d_I, per split: the section opens on a split and a d_I that have data
    fields = {"dev": "dev_gain_recovery", "test": "gain_recovery"}
    cover: dict[str, dict] = {split: {} for split in fields}
    for e in dims_entries:
        for split, field in fields.items():
            for dv in {r.get("d") for r in e.meta.get("rows", []) if r.get("d") is not None and r.get(field) is not None}:
                cover[split][dv] = cover[split].get(dv, 0) + 1
    a, b = st.columns([3, 2])
    split = b.radio("Split", list(fields), index=0 if cover["dev"] else 1, horizontal=True, key="rec-cmp-split",
                    help=help_for("dev/test split"))
    options = sorted(cover[split]) or common
    if st.session_state.get("rec-cmp-d") not in options:  # a d_I this split has scores at (or the first open)
        st.session_state["rec-cmp-d"] = default_choice(cover[split], options)
    d_cmp = a.select_slider("d_I", options, key="rec-cmp-d",
                            help=help_for("d_I", lead="Only the d_I values some sweep has scores at on this split.")) \
        if len(options) > 1 else options[0]
    with_d = sorted([e for e in dims_entries if any(r.get("d") == d_cmp for r in e.meta.get("rows", []))],
                    key=lambda e: e.created)
    # each bar named by what sets its sweep apart, one part a line (short lines: no truncated tick labels);
    # what all of them share goes in the caption
    bits = [sweep_bits(e, explain=True) for e in with_d]
    shared = [x for x in bits[0] if all(x in o for o in bits[1:])] if len(bits) > 1 else []
    late = [bool(ipt_figures.finished_warning(ipt_figures.finished_table(
        [r for r in with_finished(c["root"], e.meta.get("rows", [])) if r.get("d") == d_cmp]))) for e in with_d]
    labels = ["<br>".join([x for x in bs if x not in shared] or ["same settings"]) + f"<br>({e.key[:6]})"
              + ("<br>(not finished)" if lt else "") for bs, e, lt in zip(bits, with_d, late)]
    cmp = ipt_figures.sweep_comparison_table([(lab, e.meta.get("rows", [])) for lab, e in zip(labels, with_d)], d_cmp, gain)
    if cmp[cmp["split"] == split].empty:
        empty_state(f"No sweep of this suite has {split}-split scores at d_I = {d_cmp}"
                    + (" (these sweeps were stored before dev scores were kept; a new sweep keeps them). Run, e.g.:"
                       if split == "dev" else ". Run, e.g.:"), IPT_COMMAND)
    else:
        fig = ipt_figures.sweep_comparison_figure(cmp, split, gain=gain)
        fig.update_xaxes(tickangle=0, automargin=True)
        show_figure(fig, cmp, name=f"ipt_sweeps_d{d_cmp}", commands=[e.command for e in with_d], key="rec-cmp",
                    beside=False, caption=md_escape("All these sweeps: " + " · ".join(shared) + ".") if shared else "")

counts = [e for e in entries(c["root"], "ipt_task_count") if suite_matches(e.meta.get("suite"), c["suite"])]
if counts:
    st.subheader("Recovery versus the number of training tasks")
    e = pick_entry(counts, "Run", key="rec-count-entry", help=help_for("seen vs unseen tasks", "d_I"))
    count_rows = with_finished(c["root"], e.meta.get("rows", []))
    count_done = ipt_figures.finished_table(count_rows)
    t = ipt_figures.recovery_table(count_rows, "n_train_tasks")
    if t.empty:
        st.warning("This run has no rows with scores.")
    else:
        finished_notes(count_done)
        show_figure(ipt_figures.recovery_figure(t, "n_train_tasks", reference=False, gain=gain, finished=count_done,
                                                title=f"Recovery at d_I = {e.meta.get('d', '?')} versus training tasks"),
                    t, name="ipt_task_count", commands=[e.command], key="rec-count",
                    caption=(f"Bands: ± one std over {len(e.meta.get('seeds', []))} seeds. " if len(e.meta.get("seeds", [])) > 1
                             else "One seed: no spread over seeds to show. ")
                            + "The same seen and unseen tasks at every size; the paper's claim is that the curve rises. "
                            + "Subspaces: " + ipt_figures.subspace_caption(sorted(set(t["subspace"]))) + " "
                            + ipt_figures.finished_caption(count_done))

held = [e for e in entries(c["root"], "ipt_heldout_family") if suite_matches(e.meta.get("suite"), c["suite"])]
if held:
    st.subheader("Recovery with a whole task family held out")
    st.caption("Each family in turn is left out of subspace finding; its tasks are then all unseen.")
    latest: dict[str, object] = {}
    for e in sorted(held, key=lambda e: e.created):  # the newest run per family
        latest[e.meta.get("heldout_family", "?")] = e
    rows = with_finished(c["root"], [r for e in latest.values() for r in e.meta.get("rows", [])])
    held_done = ipt_figures.finished_table(rows)
    t = ipt_figures.recovery_table(rows, "heldout_family")
    if t.empty:
        st.warning("These runs have no rows with scores.")
    else:
        finished_notes(held_done)
        show_figure(ipt_figures.recovery_figure(t, "heldout_family", reference=False, gain=gain, finished=held_done,
                                                title="Recovery of the held-out family's tasks"),
                    t, name="ipt_heldout_family", commands=[e.command for e in latest.values()], key="rec-held",
                    caption="Subspaces: " + ipt_figures.subspace_caption(sorted(set(t["subspace"]))) + " "
                            + ipt_figures.finished_caption(held_done))

st.divider()
st.subheader("Launch")
st.markdown("**Intrinsic tuning** of a few tasks in a subspace that is already in the store takes a minute or two on "
            "a CPU; an **IPT sweep** finds new subspaces (prompt tuning of its training tasks first).")
ist_form("rec-ist")
ipt_form("rec-ipt")
job_panel(c["root"], ["ipt", "ist", "pipeline"], key="rec")
