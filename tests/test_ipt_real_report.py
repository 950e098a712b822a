"""bench/ipt_real_report.py: bench/IPT_REAL.md from stored entries and the runs' log (exact numbers, no training)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ipt_real_report import default_labels, is_default, write_report  # noqa: E402
from ipt_core.config.ipt import MSFConfig  # noqa: E402
from ipt_core.store import Store  # noqa: E402

DEFAULT_MSF = {"alpha": MSFConfig().alpha, "norm": MSFConfig().norm}  # task_loss at its default: left out, as in keys

SPLIT = {"train": ["a", "b"], "unseen": ["u", "h"], "seen": ["a"], "heldout_family": "H"}


def rows(kind_shift: float, seeds=(0, 1), dims=(4, 16)):
    """Seen task a, unseen u (family F) and h (the held-out family H); IST = zero-shot + share x PT's gain."""
    out = []
    for seed in seeds:
        for d in dims:
            for sub, share in (("found", 0.5 + kind_shift + 0.1 * seed), ("random", 0.1)):
                for setting, task, fam in (("seen", "a", "F"), ("unseen", "u", "F"), ("unseen", "h", "H")):
                    zs, pt = 0.5, 0.7
                    ist = zs + share * (pt - zs)
                    out.append({"d": d, "setting": setting, "subspace": sub, "task": task, "family": fam, "seed": seed,
                                "ist_test_acc": ist, "pt_test_acc": pt, "zero_shot_test_acc": zs,
                                "recovery": ist / pt, "gain_recovery": share, "ist_dev_acc": ist, "pt_dev_acc": pt,
                                "zero_shot_dev_acc": zs, "dev_gain_recovery": share})
    return out


def put(store, kind, key_seed, meta, msf=None):
    spec = {"test": key_seed} | ({"settings": {"msf": msf}} if msf is not None else {})
    return store.put(kind, spec, meta, command="python bench/ipt_real.py ...").key


def run_record(command, ablation, kind, entries, seconds=10.0):
    return {"command": command, "prompt_kind": kind, "ablation": ablation, "seconds": seconds, "load_before": 1.0,
            "load_after": 2.0, "device": "cpu", "date": "2026-12-04 10:00", "split": SPLIT, "entries": entries}


def dims_meta(kind, r, seeds=(0, 1), dims=(4, 16)):
    return {"prompt_kind": kind, "dims": list(dims), "seeds": list(seeds), "rows": r}


def test_report_tables_from_the_store(tmp_path: Path):
    store = Store(tmp_path / "store")
    sh1 = put(store, "ipt_dims", "sh1", dims_meta("shallow", rows(0.0, seeds=(0,)), seeds=(0,)), msf=DEFAULT_MSF)
    sh2 = put(store, "ipt_dims", "sh2", dims_meta("shallow", rows(0.0)), msf=DEFAULT_MSF)
    other = dict(DEFAULT_MSF, alpha=DEFAULT_MSF["alpha"] * 10)
    sh_other = put(store, "ipt_dims", "sh_other", dims_meta("shallow", rows(0.1)), msf=other)
    deep = put(store, "ipt_dims", "deep", dims_meta("deep", rows(-0.3)), msf=DEFAULT_MSF)
    a1 = put(store, "ipt_dims", "a1", dims_meta("shallow", rows(0.0, dims=(16,)), dims=(16,)), msf=DEFAULT_MSF)
    a10 = put(store, "ipt_dims", "a10", dims_meta("shallow", rows(0.3, dims=(16,)), dims=(16,)), msf=other)
    tc_rows = [dict(r, n_train_tasks=n) for n, shift in ((1, -0.2), (2, 0.0)) for r in rows(shift, dims=(16,))]
    tc = put(store, "ipt_task_count", "tc", {"prompt_kind": "shallow", "d": 16, "sizes": [1, 2], "seeds": [0, 1],
                                             "rows": tc_rows})
    log = tmp_path / "runs.json"
    log.write_text(json.dumps([
        run_record("python bench/ipt_real.py --prompt-kind shallow", "main", "shallow", [["main", sh1]], 1700),
        run_record("python bench/ipt_real.py --prompt-kind shallow --seeds 2", "main", "shallow", [["main", sh2]], 1500),
        run_record("python bench/ipt_real.py --prompt-kind shallow --seeds 2 --alpha X", "main", "shallow", [["main", sh_other]]),
        run_record("python bench/ipt_real.py --prompt-kind deep --seeds 2", "main", "deep", [["main", deep]]),
        run_record("python bench/ipt_real.py --ablation alpha", "alpha", "shallow", [["alpha A", a1], ["alpha B", a10]]),
        run_record("python bench/ipt_real.py --ablation task-count", "task-count", "shallow", [["task-count", tc]]),
        run_record("python bench/ipt_real.py --ablation norm", "norm", "shallow", [["norm none", "0" * 64]]),
    ]))
    out = tmp_path / "IPT_REAL.md"
    write_report(store, log, out)
    text = out.read_text()
    # every run is listed with its wall time; the one whose entry is elsewhere says so
    assert "| `python bench/ipt_real.py --prompt-kind shallow` | 1700 s |" in text
    assert "| `python bench/ipt_real.py --ablation norm` | 10 s | 1.0 → 2.0 | cpu | 2026-12-04 10:00 | no |" in text
    # both kinds side by side, from the two-seed shallow run: found 0.5/0.6 per seed, random 0.1
    dflt = f"alpha {DEFAULT_MSF['alpha']:g}, norm layer, task loss on"
    assert (f"| shallow | {dflt} | n/a | 16 | 2 | 0.55 ± 0.05 / n/a / 0.10 ± 0.00 | 0.55 ± 0.05 / n/a | "
            "0.55 ± 0.05 / n/a / 0.10 ± 0.00 | 0.55 ± 0.05 / n/a / 0.10 ± 0.00 |") in text
    assert f"| deep | {dflt} | n/a | 4 | 2 | 0.25 ± 0.05 / n/a / 0.10 ± 0.00 |" in text
    # per kind and MSF settings, the run with more seeds is shown; the defaults' section first, and named so
    assert text.count("### shallow prompts: recovery versus d_I") == 2
    assert f"### shallow prompts: recovery versus d_I (MSF: {dflt}; the defaults)" in text
    other_title = f"### shallow prompts: recovery versus d_I (MSF: alpha {other['alpha']:g}, norm layer, task loss on)"
    assert text.index(f"(MSF: {dflt}; the defaults)") < text.index(other_title)
    assert "seeds [0, 1]; store key `" + sh2[:16] in text
    # ablations at a glance: the default in bold, the dev split's preference beyond the seeds' spread
    assert "| shallow | alpha | **alpha A** | 2 | 0.55 ± 0.05 |" in text
    assert "| shallow | alpha | alpha B | 2 | 0.85 ± 0.05 |" in text
    assert "- shallow, alpha, unseen tasks (dev): alpha B (0.85) over alpha A (0.55)" in text
    assert "### Ablation: alpha (shallow, d_I = 16; MSF otherwise at norm layer, task loss on)" in text
    # the task-count curve with its spread, and the random control at the full size
    assert "| 1 | 0.35 ± 0.05 | 0.35 ± 0.05 | 0.35 ± 0.05 | 0.35 ± 0.05 |" in text
    assert "| random subspace (2) | 0.10 ± 0.00 | 0.10 ± 0.00 |" in text


def test_close_settings_are_called_a_tie(tmp_path: Path):
    store = Store(tmp_path / "store")
    a1 = put(store, "ipt_dims", "a1", dims_meta("shallow", rows(0.0, dims=(16,)), dims=(16,)))
    a2 = put(store, "ipt_dims", "a2", dims_meta("shallow", rows(0.02, dims=(16,)), dims=(16,)))
    log = tmp_path / "runs.json"
    log.write_text(json.dumps([run_record("c", "alpha", "shallow", [["alpha 1", a1], ["alpha 10", a2]])]))
    write_report(store, log, tmp_path / "r.md")
    assert "alpha 10 (0.57), a tie with alpha 1 (0.55; seeds' spread 0.05)" in (tmp_path / "r.md").read_text()


def test_default_labels_name_the_msf_defaults():
    m = MSFConfig()
    assert default_labels() == {f"norm {m.norm}", f"alpha {m.alpha:g}", "MSF task loss on"}


def test_the_default_is_read_from_the_stored_settings(tmp_path: Path):
    """An ablation run at other base settings is not marked default by its label alone."""
    store = Store(tmp_path / "s")
    m = MSFConfig()
    at_default = store.get(put(store, "ipt_dims", "d", {}, msf=DEFAULT_MSF))
    off_default = store.get(put(store, "ipt_dims", "o", {}, msf=dict(DEFAULT_MSF, alpha=m.alpha * 10)))
    no_spec = store.get(put(store, "ipt_dims", "n", {}))
    assert is_default(f"norm {m.norm}", at_default)
    assert not is_default(f"norm {m.norm}", off_default)
    assert not is_default("MSF task loss on", store.get(put(store, "ipt_dims", "t", {}, msf=dict(DEFAULT_MSF, task_loss=False))))
    assert is_default(f"norm {m.norm}", no_spec) and not is_default("norm none", no_spec)


def test_a_longer_stage_schedule_is_not_the_default(tmp_path: Path):
    """pt-schedule / msf-schedule: the same MSF settings at a longer PT or MSF is an ablation setting, not the
    default; the ablation table shows the PT prompts still rising and the dev accuracies the ratio is made of."""
    from bench.ipt_real import settings_for

    base = settings_for("deep", "cpu")
    store = Store(tmp_path / "s")
    meta = dims_meta("deep", rows(0.0, seeds=(0,), dims=(16,)), seeds=(0,), dims=(16,)) | {
        "train_tasks": SPLIT["train"], "seen_tasks": SPLIT["seen"], "test_tasks": SPLIT["unseen"]}
    spec = lambda pt_steps, msf_steps: {"settings": {"msf": dict(DEFAULT_MSF, steps=msf_steps, hidden=base.msf.hidden),
                                                      "pt": {"steps": pt_steps}}}
    short = store.put("ipt_dims", spec(base.pt.steps, base.msf.steps) | {"t": 1},
                      meta | {"pt_unfinished": {"0": {"train": ["a"], "seen": [], "unseen": ["u"]}}}).key
    long_pt = store.put("ipt_dims", spec(base.pt.steps * 2, base.msf.steps) | {"t": 2},
                        meta | {"pt_unfinished": {"0": {"train": [], "seen": [], "unseen": []}}}).key
    long_msf = store.put("ipt_dims", spec(base.pt.steps, base.msf.steps * 3) | {"t": 3}, meta).key
    assert is_default("", store.get(short))
    assert not is_default("", store.get(long_pt)) and not is_default("", store.get(long_msf))
    log = tmp_path / "runs.json"
    log.write_text(json.dumps([run_record("python bench/ipt_real.py --ablation pt-schedule", "pt-schedule", "deep",
                                          [["PT 80 steps", short], ["PT 160 steps", long_pt]])]))
    write_report(store, log, tmp_path / "out.md")
    text = (tmp_path / "out.md").read_text()
    assert "| deep | pt-schedule | **PT 80 steps** |" in text and "| deep | pt-schedule | PT 160 steps |" in text
    assert "0.500 / 0.700 / 0.600 | 1/2 · 1/2 |" in text  # zero-shot / PT / IST dev; training · unseen still rising
    assert "0.500 / 0.700 / 0.600 | 0/2 · 0/2 |" in text


def test_an_empty_log_writes_a_header(tmp_path: Path):
    write_report(Store(tmp_path / "s"), tmp_path / "none.json", tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text().startswith("# IPT on the real suite")


def test_ist_progress_from_each_runs_dev_curve(tmp_path: Path):
    """Whether IST moved from its start is read from each IST run's stored dev curve."""
    store = Store(tmp_path / "store")
    moved = put(store, "ist_run", "moved", {"dev_curve": [[0, 0.5], [20, 0.58]]})
    stuck = put(store, "ist_run", "stuck", {"dev_curve": [[0, 0.56], [20, 0.52]]})
    r = rows(0.0, seeds=(0,), dims=(16,))
    for row in r:
        row["ist_key"] = moved if row["task"] == "u" else stuck
        row["ist_dev_acc"] = 0.58 if row["task"] == "u" else 0.56
    sh = put(store, "ipt_dims", "sh", dims_meta("shallow", r, seeds=(0,), dims=(16,)))
    log = tmp_path / "runs.json"
    log.write_text(json.dumps([run_record("c", "main", "shallow", [["main", sh]])]))
    write_report(store, log, tmp_path / "r.md")
    text = (tmp_path / "r.md").read_text()
    assert "| 16 | found | unseen | 0.530 | 0.570 | 0.500 | 1/2 |" in text  # u moved, h kept its start
    assert "| 16 | found | seen | 0.560 | 0.560 | 0.500 | 0/1 |" in text
