"""Guided tour: the idea in six steps, for a class. Each step: a paragraph to read aloud, its key figure
or table from the store (the same reads and figure builders as the full pages), the command that
reproduces it, and a link to the full page. Reads only; nothing trains here, and torch is not imported:
the task map uses the 2-D coordinates a job stored, never the prompt tensors.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from ipt_app.context import ctx, suite_info, suite_matches, suite_problem
from ipt_app.escape import md_code, md_escape
from ipt_app.store_reads import (
    backbone_of,
    entries,
    headline_pt_runs,
    stores,
    sweep_label,
    sweep_rank,
)
from ipt_app.widgets import empty_state, headline_markdown, show_commands, show_figure
from ipt_core.analysis import map_quality as mq
from ipt_core.figures import ipt as ipt_figures
from ipt_core.figures import maps as map_figures
from ipt_core.figures import pt as pt_figures
from ipt_core.figures import transfer as transfer_figures
from ipt_core.figures.plotting import family_colors

c = ctx()
st.title("Guided tour")
st.markdown(
    "Why can one frozen language model adapt to many different tasks from a few examples? Six steps, each with a "
    "paragraph to read aloud, the result that shows it (from the store: on a fresh clone, the demo results shipped "
    "with the app), the command that reproduces it, and a link to the page with everything about it."
)
st.caption(f"Suite {md_code(c['suite_name'])} · backbone {md_code(c['backbone'])}")
info = suite_info(c["suite"])
suite_problem(c, info)
names: list[str] = info.get("names", [])
suite = c["suite"]

STEPS = ["1 · Tasks", "2 · Prompt tuning", "3 · The subspace", "4 · Recovery versus d_I", "5 · Stability",
         "6 · Which task helps which"]


def heading(i: int, text: str) -> None:
    st.subheader(f"Step {i}: {text}")


def more(page: str, label: str) -> None:
    try:
        st.page_link(page, label=f"Everything about it: the {label} page", icon=":material/arrow_forward:")
    except Exception:  # noqa: BLE001 - a page run outside st.navigation cannot resolve links
        st.caption(f"Everything about it: the **{label}** page.")


def reproduce(command: str) -> None:
    st.caption("Reproduce with")
    st.code(command, language="bash", wrap_lines=True)


tabs = st.tabs(STEPS)

with tabs[0]:
    heading(1, "many small classification tasks, one frozen model")
    st.markdown(
        "A **task** here is a small text-classification problem: read a sentence (or a pair of sentences) and pick "
        "one of a few labels, such as *positive* or *negative* for a movie review, or *spam* or *not spam* for a "
        "text message. Each task comes with only a handful of labelled examples to learn from (*few-shot*). Every "
        "task is solved by one and the same pre-trained language model, and that model stays **frozen**: its "
        "millions of weights are never changed. The whole tour asks one question: how can a single fixed model adapt "
        "to so many different tasks, and what do those adaptations have in common?"
    )
    rows = pd.DataFrame(info.get("rows", []))
    if len(rows):
        fams = rows["family"].nunique()
        st.markdown(f"This suite has **{len(rows)} tasks** in **{fams} families** (tasks of a similar kind).")
        cols = [col for col in ("task", "family", "labels", "n_labels", "train", "dev", "test") if col in rows]
        st.dataframe(rows[cols], hide_index=True, key="tour-tasks")
    else:
        st.info("No tasks to show: the chosen suite could not be read (the sidebar says why).")
    reproduce(f"python -m ipt_core tasks --suite {suite}")
    more("pages/tasks.py", "Tasks")

with tabs[1]:
    heading(2, "prompt tuning adapts the frozen model to each task")
    st.markdown(
        "To adapt the frozen model to one task we use **prompt tuning (PT)**. A **soft prompt** is a short row of "
        "trained vectors placed in front of the input's word vectors: an instruction written in the model's own "
        "internal numbers rather than in words. Only these few vectors are trained on the task's examples; the model "
        "itself is untouched. Three reference points tell us whether that helps. **Zero-shot**: the frozen model with "
        "no training at all, choosing the label whose name best matches its reading of the input. **Linear probe**: "
        "a simple linear classifier trained on the frozen model's sentence features. **Chance**: guessing one of the "
        "labels at random. The score is test accuracy, the share of held-out examples labelled correctly."
    )
    pt = [e for e in entries(c["root"], "pt_run") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
    zs = [e for e in entries(c["root"], "zero_shot") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
    lp = [e for e in entries(c["root"], "probe") if e.meta.get("task") in names and backbone_of(e) == c["backbone"]]
    if pt:
        best = headline_pt_runs(pt)
        table = pt_figures.pt_results_table([e.meta for e in best], [e.meta for e in zs], [e.meta for e in lp])
        table = table[table["n_seeds"] > 0].reset_index(drop=True)
        st.markdown(headline_markdown(table, {r["task"]: r.get("n_labels") for r in info.get("rows", [])}))
        show_figure(pt_figures.pt_results_figure(table, "Test accuracy: prompt tuning vs zero-shot vs linear probe"),
                    table, name="tour_pt_results", commands=[e.command for e in best + zs + lp], key="tour-pt")
    else:
        empty_state("No prompt-tuning results for this suite and backbone in the store yet. Make them with:",
                    f"python -m ipt_core tune --suite {suite} --steps 50 --eval-every 10")
    more("pages/prompt_tuning.py", "Prompt tuning")

with tabs[2]:
    heading(3, "the trained prompts share a low-dimensional subspace")
    st.markdown(
        "Every task now has its own trained prompt: thousands of numbers. Are those prompts scattered anywhere, or do "
        "they share a structure? **Multi-task subspace finding (MSF)** looks for one with an *auto-encoder*: a small "
        "network that squeezes each task's prompt through a bottleneck of only **d_I** numbers and rebuilds it from "
        "them, trained so that the rebuilt prompt still solves its task. **d_I** (the *intrinsic dimension*) is the "
        "size of that bottleneck, and the d_I numbers a task gets are its coordinates in the **intrinsic task "
        "subspace**. The task map places every task by those coordinates, flattened to two dimensions for the "
        "screen; tasks of the same family (same colour) close together suggest the subspace captures what tasks share."
    )
    tm = sorted((e for e in entries(c["root"], "task_map") if suite_matches(e.meta.get("suite"), suite)),
                key=lambda e: -e.created)
    shown = False
    for e in tm:  # the newest task map: its stored UMAP coordinates, else a PCA of its (small) intrinsic vectors
        umap = e.meta.get("umap") or {}
        space = next((s for s in ("intrinsic", "ist", "prompt") if umap.get(s)), None)
        tasks = list(e.meta.get("tasks") or [])
        if space is not None and len(umap[space]) == len(tasks):
            coords, how, axes = umap[space], "UMAP", ("UMAP 1", "UMAP 2")
        elif "intrinsic" in e.tensor_names and len(tasks) >= 3:  # the quick pipeline stores no UMAP (a job on request)
            vectors = e.tensor("intrinsic").float().numpy().reshape(len(tasks), -1)
            coords, ratio = mq.pca(vectors)
            space, how, axes = "intrinsic", "PCA", map_figures.pca_axis_titles(ratio)
        else:
            continue
        fams = list(e.meta.get("families") or [info.get("families", {}).get(t, "") for t in tasks])
        table = map_figures.task_map_table(coords, tasks, fams)
        space_name = {"intrinsic": "intrinsic subspace (MSF coordinates)", "ist": "intrinsic subspace (IST solutions)",
                      "prompt": "raw prompt space"}[space]
        st.caption(md_escape(f"d_I = {e.meta.get('d', '?')} · {len(e.meta.get('train_tasks') or [])} tasks found the "
                             f"subspace · {e.meta.get('prompt_kind', '?')} prompts · {how} of the {space_name}"
                             + (" (PCA: the two directions of most variance; the full page also computes UMAP)"
                                if how == "PCA" else "")))
        show_figure(map_figures.task_map_figure(table, f"Tasks in the {space_name} ({how})", axis_titles=axes,
                                                colours=family_colors(list(info.get("families", {}).values()) + fams)),
                    table, name=f"tour_task_map_{space}", commands=[e.command], key="tour-map")
        shown = True
        break
    if not shown:
        msf = [e for e in entries(c["root"], "msf") if set(e.meta.get("train_tasks") or []) <= set(names)]
        if tm or msf:
            st.info("A subspace is in the store, but no 2-D map of it has been computed yet (UMAP runs as a job). "
                    "The Subspace and task map page draws it by PCA, or queues the UMAP job.")
            show_commands([e.command for e in tm + msf])
        else:
            empty_state("No subspace for this suite in the store yet. The pipeline finds one (and everything else in "
                        "this tour):", f"python -m ipt_core pipeline --suite {suite}")
    more("pages/task_map.py", "Subspace and task map")

with tabs[3]:
    heading(4, "tuning only d_I numbers recovers part of prompt tuning's gain")
    st.markdown(
        "Now the test. Keep the auto-encoder's *decoder* (the half that turns d_I numbers back into a prompt) and "
        "freeze it. For a task, train only d_I numbers and let the decoder turn them into its prompt: this is "
        "**intrinsic subspace tuning (IST)**. If the subspace is real, a handful of numbers gets much of the way to "
        "full prompt tuning. We measure how much with **gain recovery = (IST − zero-shot) / (PT − zero-shot)**: 0 "
        "means IST did no better than the untrained model, 1 means it matched prompt tuning. *Seen* tasks helped find "
        "the subspace (IST sees new examples of them); *unseen* tasks did not. Two controls of the same size: a "
        "*random* subspace (an untrained decoder: if it did as well, the found subspace would carry nothing special) "
        "and a *linear* one (the top principal directions of the training prompts, PCA: if it did as well, the "
        "auto-encoder's non-linearity would add nothing)."
    )
    sweeps = [e for e in entries(c["root"], "ipt_dims") if suite_matches(e.meta.get("suite"), suite)]
    if sweeps:
        entry = max(sweeps, key=sweep_rank)  # the sweep with the most dimensions, as the Recovery page opens on
        table = ipt_figures.recovery_table(entry.meta.get("rows", []), "d", entry.meta.get("summary"))
        st.caption(md_escape(sweep_label(entry)))
        if table.empty:
            st.warning("This sweep has no rows with scores.")
        else:
            rows = entry.meta.get("rows", [])
            done = ipt_figures.finished_table(rows)
            show_figure(ipt_figures.recovery_figure(table, "d", reference=False, gain="pooled_gain_recovery",
                                                    finished=done), table,
                        name="tour_recovery", commands=[entry.command], key="tour-rec",
                        caption=ipt_figures.subspace_caption(sorted({r.get("subspace") for r in rows if r.get("subspace")}))
                                + " Pooled gain recovery: Σ(IST − zero-shot) / Σ(PT − zero-shot) over the tasks. "
                                + ipt_figures.finished_caption(done))
    else:
        empty_state("No IPT dimension sweep for this suite in the store yet. Make one with:",
                    f"python -m ipt_core ipt --suite {suite} --dims 2,8,32 --seeds 3")
    more("pages/recovery.py", "Recovery")

with tabs[4]:
    heading(5, "starting prompt tuning from the IST solution")
    st.markdown(
        "Prompt tuning can be fickle: run it again from a different random start (a different *seed*) and the result "
        "can change a lot. The paper found that starting prompt tuning from the IST solution, rather than from random "
        "vectors, makes it steadier. The chart follows *dev accuracy* (accuracy on a separate validation split, used "
        "to choose when to stop) during training: the mean over seeds, with a band of ± one standard deviation. A "
        "narrower band means a more stable start."
    )
    stab = [e for e in entries(c["root"], "ipt_stability") if suite_matches(e.meta.get("suite"), suite)]
    if stab:
        entry = max(stab, key=lambda e: e.created)
        m = entry.meta
        st.caption(md_escape(f"d_I = {m.get('d')} · seeds {m.get('seeds')} · tasks {', '.join(map(str, m.get('tasks') or []))}"))
        t = ipt_figures.stability_table(m.get("curves", []), None,
                                        n_labels={r["task"]: r.get("n_labels") for r in info.get("rows", [])})
        if t.empty:
            st.warning("This stability run has no curves.")
        else:
            show_figure(ipt_figures.stability_figure(t, "Dev accuracy across seeds: all tasks (mean)"), t,
                        name="tour_stability", commands=[entry.command], key="tour-stab")
    else:
        empty_state("No stability run for this suite in the store yet. Make one with:",
                    f"python -m ipt_core stability --suite {suite} --tasks {names[0] if names else 'TASK'} --seeds 3 --d 16")
    more("pages/stability.py", "Stability")

with tabs[5]:
    heading(6, "which task helps which")
    st.markdown(
        "Last question: which task helps which? Take the prompt trained on one task (the *source*) as the starting "
        "point for prompt tuning on another (the *target*), with a small training budget. The *gain* is how much "
        "better that does than the usual start. A *similarity measure* (how alike two tasks' prompts are, or how "
        "alike the frozen model's neurons they switch on) ranks the sources before any such run. The chart asks: "
        "if you try only the top k sources of a measure, how much of the best source's gain do you get? A good "
        "measure climbs to 1 quickly; the dashed line is trying sources in random order."
    )
    reports = sorted((e for s in stores(c["root"]) for e in s.query("transfer_report")
                      if e.meta.get("suite") == info.get("name", c["suite_name"])),
                     key=transfer_figures.report_rank, reverse=True)
    if reports:
        rep = reports[0].meta
        labels = transfer_figures.measure_labels(rep)
        tk = transfer_figures.topk_curve_table(transfer_figures.report_rankings(rep), labels)
        st.caption(md_escape(f"Targets {', '.join(map(str, rep.get('targets', [])))} · "
                             f"{len(rep.get('seeds') or [0])} seed(s) · mean gain {rep.get('mean_gain', 0):+.3f}"))
        if len(tk):
            show_figure(transfer_figures.topk_curve_figure(tk), tk, name="tour_transfer",
                        commands=[reports[0].command], key="tour-transfer")
        else:
            st.info("No source helps any target in this test (every best gain is 0 or below): there is no share of "
                    "a best gain to plot. The full page shows the gains.")
    else:
        st.info("No transfer test for this suite in the store yet: this step has no result to show. It tunes each "
                "target task starting from every other task's prompt (a few steps each). Make it with:")
        st.code(f"python -m ipt_core transfer --suite {suite} --targets {','.join(names[:3]) or 'T1,T2,T3'}",
                language="bash")
    more("pages/transfer.py", "Which task helps which")

st.divider()
st.caption("Everything in this tour, for a suite, comes from one job: the pipeline launcher on the Overview page "
           f"({md_code(f'python -m ipt_core pipeline --suite {suite}')}), plus the transfer test above.")
