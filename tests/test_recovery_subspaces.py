"""The Recovery page's three subspaces (found, linear, random), the share of IST runs that finished, and the
d50 / d90 summary: the figure builders, the table builders, the store reads for old entries, the forms' argv,
and the page under AppTest on a new-format and an old-format sweep."""
from __future__ import annotations

import json

import pytest
from test_app import app, goto
from test_figures import layout_defects

from ipt_core.cli import args as cli_args
from ipt_core.cli import main as cli
from ipt_core.figures import ipt as ipt_figures
from ipt_core.store import Store

SUBS = ("found", "linear", "random")


def legend(fig, part: str = "") -> list[str]:
    """The legend's entries (a series drawn on both panels is one entry) that contain ``part``."""
    return [tr.name for tr in fig.data if tr.name and tr.showlegend is not False and part in tr.name]


def sweep_rows(dims=(2, 8, 32), settings=("seen", "unseen"), subspaces=SUBS, seeds=(0, 1), unfinished=0,
               finished=True) -> list[dict]:
    """An ``ipt_dims`` sweep's rows, new format: gain recovery found > linear > random, rising with d_I.
    ``unfinished``: that many runs (the first ones) have ``finished`` False; ``finished=None``: no flag (old)."""
    gains = {"found": {2: 0.3, 8: 0.6, 32: 0.95}, "linear": {2: 0.2, 8: 0.55, 32: 0.7}, "random": {2: 0.0, 8: 0.1, 32: 0.3}}
    rows = []
    for d in dims:
        for setting in settings:
            for sub in subspaces:
                for task in ("t1", "t2"):
                    for seed in seeds:
                        zs, pt = 0.5, 0.8
                        ist = zs + (pt - zs) * gains[sub][d]
                        r = {"d": d, "setting": setting, "subspace": sub, "task": task, "family": "F", "seed": seed,
                             "ist_test_acc": ist, "pt_test_acc": pt, "zero_shot_test_acc": zs, "recovery": ist / pt,
                             "gain_recovery": (ist - zs) / (pt - zs), "ist_key": f"{len(rows):064x}"}
                        if finished is not None:
                            r["finished"] = finished
                        rows.append(r)
    for r in rows[:unfinished]:
        r["finished"] = False
    return rows


# --------------------------------------------------------------------------------------------------
# figures: a third style for the linear subspace


def test_three_subspaces_three_styles_named_in_the_legend():
    rows = sweep_rows(settings=("unseen",))
    fig = ipt_figures.recovery_figure(ipt_figures.recovery_table(rows), reference=False, gain="pooled_gain_recovery")
    series = [tr for tr in fig.data if tr.name and "subspace" in tr.name and tr.showlegend is not False]
    assert [tr.name for tr in series] == ["unseen tasks, found subspace", "unseen tasks, linear subspace (PCA)",
                                          "unseen tasks, random subspace"]
    assert len({tr.marker.symbol for tr in series}) == 3 and len({tr.line.dash for tr in series}) == 3
    assert {tr.marker.symbol: tr.line.dash for tr in series}["diamond"] == "dash"  # linear: diamonds, dashed
    assert layout_defects(fig) == []
    both = ipt_figures.recovery_figure(ipt_figures.recovery_table(sweep_rows()))  # + the paper's reference points
    assert len(legend(both, "subspace")) == 6 and layout_defects(both) == []
    # categorical x (a held-out family): the three side by side, still three styles
    held = [dict(r, heldout_family="spam") for r in rows if r["d"] == 8]
    cat = ipt_figures.recovery_figure(ipt_figures.recovery_table(held, "heldout_family"), "heldout_family", reference=False)
    assert len({tr.marker.symbol for tr in cat.data if tr.name and "subspace" in tr.name}) == 3


def test_bars_hatch_each_subspace_differently():
    rows = sweep_rows()
    fig = ipt_figures.recovery_bars_figure(ipt_figures.recovery_bars_table(rows, 8), "gain_recovery")
    bars = [tr for tr in fig.data if tr.type == "bar"]
    hatch = {tr.name.split(",")[1].split("(")[0].strip(): tr.marker.pattern.shape for tr in bars}
    assert hatch == {"found subspace": "", "linear subspace": ".", "random subspace": "/"}
    assert layout_defects(fig) == []
    two = ipt_figures.recovery_bars_figure(ipt_figures.recovery_bars_table(sweep_rows(subspaces=("found", "random")), 8),
                                           "gain_recovery")
    assert fig.layout.height > two.layout.height  # three bars a row: taller rows
    cmp = ipt_figures.sweep_comparison_table([("a", rows), ("b", rows)], 8, "pooled_gain_recovery")
    assert set(cmp["subspace"]) == set(SUBS)
    fig = ipt_figures.sweep_comparison_figure(cmp, "test")
    assert {tr.marker.pattern.shape for tr in fig.data if tr.type == "bar"} == {"", ".", "/"}


def test_subspace_caption_names_the_linear_one():
    text = ipt_figures.subspace_caption(["random", "linear", "found"])
    assert text.index("found") < text.index("linear") < text.index("random")
    assert "linear (diamonds, dashed): the top principal directions of the training prompts, PCA" in text
    assert "dotted bars" in ipt_figures.subspace_caption(["linear"], bars=True)


# --------------------------------------------------------------------------------------------------
# the share of IST runs that finished


def test_a_sweep_with_one_unfinished_run_is_labelled():
    rows = sweep_rows(unfinished=1)
    done = ipt_figures.finished_table(rows)
    n = len(rows)
    assert ipt_figures.finished_warning(done) == (
        f"IST had not finished in 1 of {n} runs (dev accuracy still rising over the last fifth of the run): these "
        "recoveries are lower bounds.")
    first = done[(done.subspace == "found") & (done.setting == "seen")].iloc[0]
    assert (first.runs, first.finished, first.not_finished) == (12, 11, 1)
    assert first["IST runs finished"] == "11 of 12 (not finished)" and first.finished_share == pytest.approx(11 / 12)
    fig = ipt_figures.recovery_figure(ipt_figures.recovery_table(rows), finished=done)
    assert "(not finished" in fig.layout.title.text and layout_defects(fig) == []
    late = legend(fig, "not finished")
    assert late == ["seen tasks, found subspace (not finished)"]  # only the series that has the run
    bars = ipt_figures.recovery_bars_figure(ipt_figures.recovery_bars_table(rows, 2), "recovery", "Per task",
                                            finished=ipt_figures.finished_table([r for r in rows if r["d"] == 2]))
    assert "(not finished" in bars.layout.title.text and layout_defects(bars) == []
    table = ipt_figures.dim_threshold_table(ipt_figures.sweep_dim_summary({"rows": rows}), done)
    assert table.loc[0, "IST runs finished"] == "11 of 12 (not finished)"


def test_a_sweep_where_every_run_finished_has_no_label():
    rows = sweep_rows()
    done = ipt_figures.finished_table(rows)
    assert ipt_figures.finished_warning(done) is None
    assert set(done["IST runs finished"]) == {"12 of 12"} and (done.finished_share == 1).all()
    fig = ipt_figures.recovery_figure(ipt_figures.recovery_table(rows), finished=done)
    assert "not finished" not in fig.layout.title.text and not legend(fig, "not finished")
    assert ipt_figures.finished_caption(done).startswith("IST runs finished (dev accuracy no longer rising")


def test_an_old_sweep_says_not_recorded():
    rows = sweep_rows(finished=None)
    done = ipt_figures.finished_table(rows)
    assert ipt_figures.finished_warning(done) is None
    assert set(done["IST runs finished"]) == {"not recorded"} and done.finished_share.isna().all()
    assert "not recorded" in ipt_figures.finished_caption(done)
    rows[0]["finished"] = True  # some recorded, some not
    part = ipt_figures.finished_table(rows).iloc[0]["IST runs finished"]
    assert part == "1 of 1, 11 not recorded"


def test_old_rows_get_their_flags_from_the_ist_runs_in_the_store(tmp_path, monkeypatch):
    """A row without ``finished``: from its ``ist_run`` entry's dev curve where the store has it, else None."""
    monkeypatch.setenv("IPT_SHIPPED_RESULTS", "0")
    from ipt_app.store_reads import with_finished

    store = Store(tmp_path)
    rising = store.put("ist_run", {"method": "ist", "task": "t1", "seed": 0},
                       {"task": "t1", "dev_curve": [[0, 0.5], [10, 0.55], [20, 0.6], [30, 0.65], [40, 0.7], [50, 0.75]]})
    flat = store.put("ist_run", {"method": "ist", "task": "t2", "seed": 0},
                     {"task": "t2", "dev_curve": [[0, 0.5], [10, 0.6], [20, 0.62], [30, 0.62], [40, 0.62], [50, 0.61]]})
    rows = [{"task": "t1", "ist_key": rising.key}, {"task": "t2", "ist_key": flat.key}, {"task": "t3", "ist_key": "0" * 64},
            {"task": "t4", "finished": True}]
    assert [r["finished"] for r in with_finished(tmp_path, rows)] == [False, True, None, True]
    assert "finished" not in rows[0]  # the entry's rows are not changed


# --------------------------------------------------------------------------------------------------
# d50 / d90


def test_dim_threshold_table_from_rows_and_from_the_stored_summary():
    rows = sweep_rows()
    dims = ipt_figures.sweep_dim_summary({"rows": rows})  # an old entry: computed from its rows
    t = ipt_figures.dim_threshold_table(dims)
    assert list(t.columns) == ipt_figures.DIM_COLUMNS
    assert list(zip(t.subspace, t.setting)) == [(s, x) for s in SUBS for x in ("seen", "unseen")]
    got = {(r.subspace, r.setting): (r.iloc[2], r.iloc[3], r.iloc[4]) for _, r in t.iterrows()}
    assert got[("found", "seen")] == ("8", "32", 32)  # pooled gain 0.6 at d_I 8, 0.95 at 32
    assert got[("linear", "unseen")] == ("8", "none up to 32", 32)
    assert got[("random", "seen")] == ("none up to 32", "none up to 32", 32)
    stored = {"found": {"seen": {"d50": 4, "d90": None, "max_d": 64}}}
    assert ipt_figures.sweep_dim_summary({"rows": rows, "dim_summary": stored}) == stored  # the producer's own
    assert ipt_figures.dim_threshold_table(stored).iloc[0, 2:].tolist() == ["4", "none up to 64", 64]
    assert ipt_figures.sweep_dim_summary({"rows": []}) == {} and ipt_figures.dim_threshold_table({}).empty


# --------------------------------------------------------------------------------------------------
# forms: --subspaces from the form's controls, the ist form's three choices


@pytest.mark.parametrize("budget", ["quick", "paper"])
@pytest.mark.parametrize("controls", [["linear", "random"], ["random"], ["linear"], []])
def test_the_ipt_form_writes_subspaces_that_round_trip(budget, controls):
    from ipt_app.forms_ipt import ipt_form_config, ipt_run_argv, ipt_subspaces

    subs = ipt_subspaces(controls)
    assert subs[0] == "found" and set(subs) == {"found", *controls}
    argv = ipt_run_argv("ipt", budget, subspaces=subs)
    if set(controls) == {"linear", "random"}:  # the CLI's default: no flag
        assert "--subspaces" not in argv
    else:
        assert argv[argv.index("--subspaces") + 1] == ",".join(subs)
    back = cli_args.ipt_settings(cli.build_parser().parse_args(["ipt"] + argv))
    assert back.subspaces == subs and back == ipt_form_config("ipt", budget, subspaces=subs)
    full = ["ipt", "--suite", "demo", "--train-tasks", "a,b", "--dims", "4"] + argv
    assert cli.refusal(full) is None


def test_form_defaults_come_from_the_cli():
    from ipt_app.forms import cli_default
    from ipt_app.forms_ipt import CONTROLS
    from ipt_core.cli.main import build_parser
    from ipt_core.config.ipt import SUBSPACES, IPTSettings

    assert cli_default("ipt", "subspaces") == IPTSettings().subspaces
    assert set(CONTROLS) == set(IPTSettings().subspaces) - {"found"}
    # the ist form offers SUBSPACES, the ist command's own --subspace choices
    commands = next(a for a in build_parser(only="ist")._actions if a.dest == "command")
    assert list(next(a for a in commands.choices["ist"]._actions if a.dest == "subspace").choices) == list(SUBSPACES)
    assert cli_default("ist", "subspace") == "found"


# --------------------------------------------------------------------------------------------------
# the page


def _put_sweep(root, rows, *, new: bool = True) -> None:
    """An ``ipt_dims`` entry of ``rows``: with the summaries the core now keeps (``new``), or as an old entry."""
    from ipt_core.analysis.recovery_summary import dim_summary, summarise

    meta = {"suite": "demo", "prompt_kind": "shallow", "train_tasks": ["t1", "t2"], "test_tasks": ["t3"], "dims": [2, 8, 32],
            "seeds": [0, 1], "rows": rows}
    if new:
        meta |= {"summary": (s := summarise(rows)), "dim_summary": dim_summary(s), "dev_dim_summary": dim_summary(s, "dev")}
    Store(root).put("ipt_dims", {"method": "ipt_dims", "suite": "demo", "synthetic": len(rows)}, meta,
                    command="python -m ipt_core ipt --suite demo --dims 2,8,32")


def _chart(at, title: str) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if title in c.proto.spec)


def test_the_page_labels_an_unfinished_sweep_and_shows_d50_d90(store_root):
    _put_sweep(store_root, sweep_rows(unfinished=1))
    at = goto(app(), "recovery")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any("IST had not finished in 1 of" in w.value and "lower bounds" in w.value for w in at.warning)
    spec = _chart(at, "Recovery of prompt tuning")
    assert "(not finished" in spec["layout"]["title"]["text"]
    assert {t["name"] for t in spec["data"] if t.get("showlegend") is not False and "subspace" in t.get("name", "")} >= {
        "seen tasks, linear subspace (PCA)", "unseen tasks, random subspace"}
    [dims] = [d for d in at.dataframe if "d50: 50% of PT's gain" in d.value.columns]
    assert "none up to 32" in set(dims.value["d90: 90% of PT's gain"])
    assert "11 of 12 (not finished)" in set(dims.value["IST runs finished"])
    assert any("d90" in c.value and "intrinsic-dimension" in c.value for c in at.caption)


def test_the_page_on_an_old_sweep_says_not_recorded(store_root):
    _put_sweep(store_root, sweep_rows(finished=None, subspaces=("found", "random")), new=False)
    at = goto(app(), "recovery")
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert not any("had not finished" in w.value for w in at.warning)
    [dims] = [d for d in at.dataframe if "d50: 50% of PT's gain" in d.value.columns]
    assert set(dims.value["IST runs finished"]) == {"not recorded"} and set(dims.value["subspace"]) == {"found", "random"}
    assert any("IST runs finished: not recorded" in c.value for c in at.caption)


def test_the_pt_note_counts_unfinished_prompts_per_group():
    meta = {"train_tasks": ["a", "b", "c"], "seen_tasks": ["a"], "test_tasks": ["x", "y"],
            "pt_unfinished": {"0": {"train": ["b"], "seen": [], "unseen": ["x", "y"]},
                              "1": {"train": [], "seen": [], "unseen": ["y"]}}}
    note = ipt_figures.pt_unfinished_note(meta)
    assert "1 of 6 training prompts, 0 of 2 seen references, 3 of 4 unseen references" in note and "2 seeds" in note
    done = {"0": {"train": [], "seen": [], "unseen": []}}
    assert ipt_figures.pt_unfinished_note(meta | {"pt_unfinished": done}) is None
    assert ipt_figures.pt_unfinished_note({"train_tasks": ["a"]}) is None  # a sweep stored before the record
