"""A read-only store (a replay, ``IPT_REPLAY=1``): every result is read, nothing is computed or written."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from test_ipt import TINY, tiny_suite

from ipt_core.experiments.context import Context, cached_bank
from ipt_core.experiments.ipt import recovery_experiment
from ipt_core.store import REPLAY_ENV, Store
from ipt_core.store.entry import EntryMissing, StoreError


def test_a_read_only_memo_reads_a_hit_and_refuses_a_miss_before_computing(tmp_path):
    Store(tmp_path).put("probe", {"task": "a"}, {"acc": 0.5})
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    ro = Store(tmp_path, read_only=True)
    assert ro.memo("probe", {"task": "a"}, lambda: pytest.fail("a hit is not computed")).meta == {"acc": 0.5}
    calls = []
    with pytest.raises(EntryMissing, match=r"read-only .* no probe entry [0-9a-f]{64}.*\"task\":\"b\""):
        ro.memo("probe", {"task": "b"}, lambda: calls.append(1) or {"acc": 1.0})
    assert calls == []  # refused before the work, not after
    with pytest.raises(EntryMissing):
        ro.put("probe", {"task": "b"}, {"acc": 1.0})
    assert ro.put("probe", {"task": "a"}, {"acc": 0.9}).meta == {"acc": 0.5}  # the stored one, as put always does
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing written
    assert isinstance(EntryMissing("x"), StoreError)  # the CLI's one-line error path


def test_the_environment_turns_every_store_read_only(tmp_path, monkeypatch):
    monkeypatch.setenv(REPLAY_ENV, "1")
    assert Store(tmp_path).read_only and not Store(tmp_path, read_only=False).read_only
    monkeypatch.setenv(REPLAY_ENV, "0")
    assert not Store(tmp_path).read_only


def test_a_read_only_store_leaves_a_corrupt_entry_where_it_is(tmp_path):
    e = Store(tmp_path).put("probe", {"task": "a"}, {"acc": 0.5})
    (e.path / "entry.json").write_text("{broken")
    assert Store(tmp_path, read_only=True).get(e.key) is None
    assert (e.path / "entry.json").read_text() == "{broken" and not (tmp_path / "corrupt").exists()


def test_a_replayed_experiment_reads_every_stage_and_trains_nothing(tmp_path, make_tiny_backbone, monkeypatch):
    bb = make_tiny_backbone("encoder_sim")
    suite = tiny_suite(4)
    args = (suite, ["t0", "t1", "t2"], ["t3"], [2], [0], TINY)
    first = recovery_experiment(Context(Store(tmp_path), bb, torch.device("cpu")), *args)

    import ipt_core.train.bank as bank

    monkeypatch.setattr(bank, "train_bank", lambda *a, **k: pytest.fail("a replay trains nothing"))
    ro = Context(Store(tmp_path, read_only=True), bb, torch.device("cpu"))
    assert recovery_experiment(ro, *args).key == first.key
    # the same experiment with one setting changed is a result the store lacks: refused before any bank
    changed = (suite, ["t0", "t1", "t2"], ["t3"], [2, 3], [0], TINY)
    with pytest.raises(EntryMissing, match="ipt_dims"):
        recovery_experiment(ro, *changed)
    # below an experiment's own entry, a missing stage is refused before its bank is even built
    with pytest.raises(EntryMissing, match="pt_run"):
        cached_bank(ro, "pt_run", [{"method": "pt", "task": "new"}], build=lambda todo: pytest.fail("built"),
                    record=lambda *a: pytest.fail("recorded"))


def test_the_cli_replay_names_what_it_would_compute_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ipt_core", "tune", "--suite", "demo", "--tasks", "sms_spam",
                          "--steps", "2", "--cache", str(tmp_path / "empty"), "--json"],
                         env={**os.environ, REPLAY_ENV: "1"}, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "read-only" in lines[0] and "pt_run" in lines[0], out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "empty").exists()
    assert not any(ln.startswith("{") for ln in out.stdout.splitlines())  # no --json result: nothing ran


@pytest.mark.slow  # two CLI processes load the packaged model
def test_verify_replay_passes_on_a_fresh_store_and_names_a_stale_entry(tmp_path):
    store = tmp_path / "store"
    run = lambda *argv, **env: subprocess.run([sys.executable, "-m", "ipt_core", *argv], capture_output=True, text=True,
                                              timeout=600, env={**os.environ, **env})
    made = run("tune", "--suite", "demo", "--tasks", "sms_spam", "--steps", "2", "--eval-every", "2",
               "--batch-size", "4", "--cache", str(store), "--json")
    assert made.returncode == 0, made.stderr
    ok = run("verify", "--replay", "--cache", str(store), "--json")
    rep = json.loads(ok.stdout.splitlines()[-1])
    assert ok.returncode == 0 and rep["ok"] and rep["stale"] == [], ok.stdout + ok.stderr
    assert [c["returncode"] for c in rep["commands"]] == [0] and rep["reached"] >= 3  # PT run, zero-shot, probe
    # a result of an older default: recorded with a command that today computes another key
    Store(store).put("probe", {"task": "sms_spam", "old": True}, {"test_acc": 0.5},
                     command=rep["commands"][0]["command"])
    bad = run("verify", "--replay", "--cache", str(store))
    assert bad.returncode == 1 and "1 stale" in bad.stdout and "stale probe" in bad.stdout, bad.stdout + bad.stderr
