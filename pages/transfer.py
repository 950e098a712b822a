"""Which task helps which: the transfer test's view (issue 29, point 4).

Reads the suite's ``transfer_report`` entries (``python -m ipt_core transfer``): how well each similarity
measure ranks a target's source tasks (metrics with intervals, beside random order and the seeds' own
agreement), the share of the best gain reached by trying a measure's top k sources, the target x source
gain matrix, and one target's sources in each measure's order. Queues a new test as a job; nothing trains
here, and neither torch nor scipy loads at import (the ranking of an old report is computed on first view).
"""
from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from ipt_app.context import ctx, suite_info, suite_matches, suite_problem
from ipt_app.escape import md_code, md_escape
from ipt_app.forms_transfer import transfer_form
from ipt_app.job_panel import job_panel
from ipt_app.store_reads import entries, pick_entry, stores
from ipt_app.widgets import empty_state, show_commands, show_figure, terms_expander
from ipt_core.figures import transfer as tf
from ipt_core.figures.plotting import FULL_WIDTH


@st.cache_data(show_spinner="Ranking the sources under every measure…", max_entries=16)
def _rankings(root: str, key: str) -> dict:
    """The report's ranking metrics: stored in a new report, computed from its pairs for an old one."""
    for s in stores(Path(root)):
        e = s.get(key)
        if e is not None:
            return tf.report_rankings(e.meta)
    return {}


def _describe(e) -> str:
    m = e.meta
    targets = [str(t) for t in m.get("targets", [])]
    seeds = m.get("seeds") or [m.get("seed", 0)]
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created))
    shown = ", ".join(targets[:3]) + (f" and {len(targets) - 3} more" if len(targets) > 3 else "")
    return (f"{when} · targets {shown} · {len(seeds)} seed{'s' if len(seeds) > 1 else ''} · "
            f"{(m.get('config') or {}).get('steps', '?')} steps · {e.command or 'no command recorded'}")


c = ctx()
root = str(c["root"])
st.title("Which task helps which")
st.caption(f"Suite {md_code(c['suite_name'])} · backbone {md_code(c['backbone'])}")
terms_expander("transfer")
info = suite_info(c["suite"])
suite_problem(c, info)
names = info.get("names", [])
suite_name = info.get("name", c["suite_name"])
st.markdown(
    "Prompt tuning of a *target* task can start from the prompt trained on another task, the *source*, instead of "
    "the usual initialisation. The **gain** of a (target, source) pair is the target's test accuracy when tuning "
    "starts from the source's prompt minus its accuracy from the default start, at the same small budget "
    "(accuracy points, mean over seeds): positive, the source helps. A **similarity measure** scores each source "
    "for a target before any such run; a good one ranks the sources that help first, so one could try only its "
    "top few.")

found = [e for e in entries(c["root"], "transfer_report")
         if e.meta.get("suite") == suite_name or suite_matches(e.meta.get("suite"), c["suite"])]
cmd_hint = (f"python -m ipt_core transfer --suite {c['suite']} --targets "
            f"{','.join(names[:3]) or 'T1,T2,T3'} --steps 20 --seeds 2")
if not found:
    empty_state(f"No transfer test for suite `{c['suite_name']}` yet. This view needs one `transfer` run: each target "
                "task tuned from every source task's prompt and from the default start (a few steps each, over "
                "seeds), with every measure's similarity of the pairs. Pick targets below (or on the task map), "
                "queue it, or run:", cmd_hint)
else:
    entry = pick_entry(found, "Transfer test", key="tr-entry", describe=_describe, rank=tf.report_rank,
                       help="Each stored transfer test of this suite, the largest first (most seeds, then most "
                            "pairs, then newest): its targets, seeds, steps and the command that made it.")
    rep = entry.meta
    commands = [entry.command]
    labels = tf.measure_labels(rep)
    descriptions = tf.measure_descriptions(rep)
    cfg, src_cfg = rep.get("config") or {}, rep.get("source_config") or {}
    seeds = rep.get("seeds") or [rep.get("seed", 0)]
    targets = [str(t) for t in rep.get("targets", [])]
    st.caption(md_escape(
        f"{len(targets)} target(s), {len({p.get('source') for p in rep.get('pairs', [])})} source(s), "
        f"{cfg.get('steps', '?')} steps per run from source prompts of {src_cfg.get('steps', '?')} steps, "
        f"seed(s) {', '.join(map(str, seeds))} · mean gain {100 * float(rep.get('mean_gain') or 0):+.1f} points"))
    with st.expander("The similarity measures", expanded=not descriptions, icon=":material/straighten:"):
        missing = "no description stored in this (older) report"
        st.markdown("\n".join(f"- **{md_escape(lab)}**: {md_escape(descriptions.get(n, missing))}"
                              for n, lab in labels.items()))

    if not labels:
        st.warning("This report has no similarity measure with a score for any pair: nothing to rank.")
    else:
        rankings = _rankings(root, entry.key)
        st.subheader("How well each measure ranks the sources")
        st.caption(
            "Per target, the sources are ranked by the measure and compared with their observed gains; each value "
            "is the mean over targets [its 95% bootstrap interval, targets resampled]. Spearman pooled: rank "
            "correlation of gain and similarity over all pairs (its p); per target: the mean of each target's. "
            "Targets p < 0.05: targets whose own Spearman is significant. NDCG@3: how "
            "good the measure's top 3 are (1 = the best three in order). Regret@3: the best gain the oracle finds "
            "minus the best among the measure's top 3 (accuracy points; 0 is perfect). share@k: the best gain among "
            "the top k as a share of the best source's gain. Random order: each metric's exact expectation.")
        mt = tf.metric_table(rep, rankings)
        st.table(mt.set_index("measure"))  # a static table wraps its cells: all eight columns in the main column
        st.download_button("Download CSV", mt.to_csv(index=False).encode(), file_name="transfer_metrics.csv",
                           mime="text/csv", key="csv-tr-metrics", on_click="ignore", icon=":material/download:")
        st.caption(md_escape(tf.noise_ceiling_text(rep)))
        show_commands(commands)

        st.subheader("Trying the top k sources")
        tk = tf.topk_curve_table(rankings, labels)
        if len(tk):
            show_figure(tf.topk_curve_figure(tk), tk, name="transfer_topk", key="tr-topk", commands=commands,
                        caption="k = 1: the measure's single pick; the curve reaches 1 at the latest when every source "
                                "is tried. Pooled as SPoT pools it: over all targets, the mean best gain found over the "
                                "mean gain of the best source (a target whose best gain is one test example does not "
                                "swamp the rest).")
        else:
            st.info("No target has a source that helps (every best gain is 0 or below): a share of the best gain "
                    "means nothing here. The gain matrix and the ranked sources below still show the gains.")

    st.subheader("Gain of every (target, source) pair")
    gm = tf.gain_matrix_table(rep.get("pairs", []))
    show_figure(tf.gain_matrix_figure(gm), gm, name="transfer_gain_matrix", key="tr-matrix", commands=commands,
                index=True, beside=False)

    st.subheader("One target's sources, in each measure's order")
    target = st.selectbox("Target", targets, key="tr-target",
                          help="The sources of this target: their gains, and where each measure ranks them.") \
        if targets else None
    if target is not None and labels:
        rt = tf.ranked_sources_table(rep.get("pairs", []), target, labels)
        per = {n: (rankings.get(n) or {}).get("per_target", {}).get(target) for n in labels}
        show_figure(tf.ranked_sources_figure(rt, labels, target, per_target=per, width=FULL_WIDTH), rt,
                    name=f"transfer_sources_{target}", key="tr-ranked", commands=commands, beside=False,
                    caption="A measure that puts the helpful sources first starts high on the left and falls like "
                            "the oracle's grey line.")
        shown = rt[[col for col in rt.columns if not col.startswith("sim_")]].rename(
            columns={f"rank_{n}": f"rank: {lab}" for n, lab in labels.items()})
        st.caption("Sources by observed gain (accuracy points; per seed where stored) and their rank under each "
                   "measure (1 = most similar; blank: no score). The CSV above has the similarities too.")
        st.dataframe(shown.round(2), hide_index=True, key="tr-ranked-table")

    with st.expander("Gain against similarity, a panel per measure"):
        tt = tf.transfer_table(rep.get("pairs", []))
        show_figure(tf.transfer_figure(tt, rep.get("spaces", {}), labels=labels, width=FULL_WIDTH), tt,
                    name="transfer_scatter", key="tr-scatter", commands=commands, beside=False)

st.divider()
st.subheader("Queue a transfer test")
transfer_form("transfer-form")
job_panel(c["root"], ["transfer"], key="transfer")
