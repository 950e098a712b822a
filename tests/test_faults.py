"""Faults around the store and checkpoints that the unit tests of each module do not cover: a writer
process killed mid-write, a corrupted entry met by an experiment (recomputed to the same scores), a full
disk while checkpointing, and hypothesis-driven random damage of entries and checkpoints, which must
never show a different number or resume from a damaged state.
"""
from __future__ import annotations

import errno
import logging
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipt_core.config.pt import PTConfig
from ipt_core.experiments.tune import tune
from ipt_core.methods.pt import PromptTuning, init_prompt
from ipt_core.store import Store
from ipt_core.tasks import Suite
from ipt_core.train import checkpoint
from ipt_core.train.bank import RunConfig, _Sampler, train_bank

REPO = Path(__file__).resolve().parent.parent


class Killed(Exception):
    pass


def _die_at(step_to_die: int, also=None):
    def progress(step, total, msg):
        if also is not None:
            also(step)
        if step == step_to_die:
            raise Killed()
    return progress


# ---------------------------------------------------------------------------- a writer killed mid-write

_WRITER = """
import sys, torch
from ipt_core.store import Store
s = Store(sys.argv[1])
i = 0
while True:
    s.put("probe", {"i": i}, {"acc": i / 1000}, {"w": torch.full((512, 1024), float(i))})
    i += 1
"""


@pytest.mark.slow  # two writer processes, each importing torch: ~3.6 s (load 1.5)
def test_writer_killed_mid_write_leaves_only_whole_entries(tmp_path):
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    store = Store(tmp_path)
    for _ in range(2):
        before = len(store.query())
        p = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], env=env)
        try:
            deadline = time.time() + 60
            while len(store.query()) < before + 2 and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(rng.random() * 0.05)  # somewhere inside the next put
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=30)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        report = store.verify()
        assert report["corrupt"] == [] and report["ok"] >= before + 2
        for e in store.query():
            assert torch.equal(e.tensor("w"), torch.full((512, 1024), float(e.spec["i"])))
            assert e.meta == {"acc": e.spec["i"] / 1000}
    # what the killed writer left in tmp/ is invisible, and swept once it is old
    store.clean_tmp(older_than_s=0)
    assert not store.tmp_dir.exists() or list(store.tmp_dir.iterdir()) == []


# --------------------------------------------------------------- a corrupted entry met by an experiment


@pytest.fixture
def suite(tiny_task):
    return Suite("tiny", "tiny", (tiny_task("two", 2, n_train=8, n_dev=4, n_test=4, seed=1),))


CFG = PTConfig(n_tokens=3, kind="shallow", steps=6, eval_every=3, batch_size=4, lr=0.05)


@pytest.mark.parametrize("damage", ["truncate", "edit_meta"])
def test_tune_detects_a_corrupted_run_and_recomputes_the_same_scores(bb, suite, tmp_path, caplog, damage):
    store = Store(tmp_path)
    first = tune(store, suite, None, [0, 1], CFG, backbone=bb, device="cpu", with_baselines=False)
    victim = store.get(first.runs[1]["key"])
    prompt = victim.tensor("prompt")
    untouched = store.get(first.runs[0]["key"])
    if damage == "truncate":
        f = victim.path / "tensors.safetensors"
        f.write_bytes(f.read_bytes()[:-7])
    else:
        f = victim.path / "entry.json"
        text, n = re.subn(r'"test_acc": [0-9.e-]+', '"test_acc": 0.999', f.read_text(), count=1)
        assert n == 1
        f.write_text(text)
    with caplog.at_level(logging.WARNING, logger="ipt_core.store"):
        again = tune(store, suite, None, [0, 1], CFG, backbone=bb, device="cpu", with_baselines=False)
    assert any("corrupt" in r.getMessage() and victim.key in r.getMessage() for r in caplog.records)
    assert again.runs == first.runs and not again.from_cache  # recomputed, to the very same numbers
    assert store.get(untouched.key).created == untouched.created  # the intact run was not recomputed
    assert torch.equal(store.get(victim.key).tensor("prompt"), prompt)
    assert len(list((tmp_path / "corrupt").iterdir())) == 1
    assert not any((tmp_path / "checkpoints").iterdir())


# ------------------------------------------------------------------------- a full disk while checkpointing


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(bb, suite, tmp_path, monkeypatch, caplog):
    tasks = list(suite.tasks)
    inits = [init_prompt(bb, 3, "shallow", seed=0)]
    runs = [RunConfig(("two",), seed=0, lr=0.05, steps=9, batch_size=4, eval_every=3)]
    straight = train_bank(bb, tasks, PromptTuning(inits, "shallow"), runs, device="cpu")
    ck = tmp_path / "ck"
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    def disk_fills(step):
        if step == 4:  # after step 4's checkpoint: the one of step 6 cannot be written
            monkeypatch.setattr(os, "fsync", full)

    with caplog.at_level(logging.WARNING, logger="ipt_core.train.checkpoint"), pytest.raises(Killed):
        train_bank(bb, tasks, PromptTuning(inits, "shallow"), runs, device="cpu", checkpoint_dir=ck,
                   checkpoint_every=2, progress=_die_at(7, disk_fills))
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert any("cannot write checkpoint" in r.getMessage() and "step-00000006.json" in r.getMessage()
               for r in caplog.records)
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000004.json", "step-00000004.safetensors"]
    seen = []
    resumed = train_bank(bb, tasks, PromptTuning(inits, "shallow"), runs, device="cpu", checkpoint_dir=ck,
                         checkpoint_every=2, progress=lambda s, t, m: seen.append(s))
    assert seen[0] == 5
    assert torch.equal(resumed[0].state["prompt"], straight[0].state["prompt"])
    assert resumed[0].loss_curve == straight[0].loss_curve and resumed[0].test_pred == straight[0].test_pred


# ------------------------------------------------------------------------------------------ hypothesis

_damage = st.lists(st.tuples(st.sampled_from(["flip", "truncate", "append", "zero"]),
                             st.floats(0, 1, exclude_max=True), st.integers(0, 7)), min_size=1, max_size=3)


def _apply(path: Path, ops) -> None:
    data = bytearray(path.read_bytes())
    for op, where, bit in ops:
        i = int(where * len(data)) if data else 0
        if op == "flip" and data:
            data[i] ^= 1 << bit
        elif op == "truncate":
            del data[i:]
        elif op == "append":
            data += bytes([bit]) * (i % 5 + 1)
        elif data:
            data[i] = 0 if data[i] else 32
    path.write_bytes(bytes(data))


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["entry.json", "tensors.safetensors"]), ops=_damage)
def test_hypothesis_damaged_entry_is_hidden_or_unchanged(tmp_path_factory, which, ops):
    root = tmp_path_factory.mktemp("store")
    store = Store(root)
    spec, meta = {"task": "t", "seed": 1}, {"acc": 0.625, "curve": [[1, 0.5], [2, 0.75]], "status": "done"}
    w = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    e = store.put("pt_run", spec, meta, {"w": w})
    _apply(e.path / which, ops)
    got = Store(root).get(spec)
    if got is not None:  # the damage changed no value the store vouches for
        assert got.meta == meta and torch.equal(got.tensor("w"), w)
    else:
        assert not e.path.exists() and len(list((root / "corrupt").iterdir())) == 1


@pytest.fixture(scope="module")
def saved_checkpoint(tmp_path_factory):
    """A checkpoint of a small two-run PT bank (no backbone needed to write or read one)."""
    torch.manual_seed(0)
    method = PromptTuning([torch.randn(3, 8), torch.randn(3, 8)], "shallow")
    opt = torch.optim.Adam([{"params": [method.params[0]], "lr": 0.1}, {"params": [method.params[1]], "lr": 0.2}])
    method.prompts(torch.tensor([0, 1]), None, None).pow(2).sum().backward()
    opt.step()
    samplers = [_Sampler(10, 0), _Sampler(7, 1)]
    samplers[0].take(4)
    state = checkpoint.LoopState(4, 1.5, [True, False], ["done", "early_stopped"],
                                 [{"acc": 0.5, "loss": 0.7, "step": 2, "state": method.run_state(r),
                                   "dev": {"t": {"acc": 0.5, "pred": [1, 0]}}} for r in range(2)],
                                 [0, 2], [[(0, 0.25)], [(0, 0.5)]], [[(1, 0.9)], [(1, float("nan"))]])
    d = tmp_path_factory.mktemp("ck")
    checkpoint.save(d, "f" * 64, state, method=method, optimizer=opt, samplers=samplers, device=torch.device("cpu"))
    return d, method


def _fresh():
    method = PromptTuning([torch.zeros(3, 8), torch.zeros(3, 8)], "shallow")
    opt = torch.optim.Adam([{"params": [method.params[0]], "lr": 0.1}, {"params": [method.params[1]], "lr": 0.2}])
    return method, opt, [_Sampler(10, 0), _Sampler(7, 1)]


def test_checkpoint_round_trip(saved_checkpoint):
    d, saved = saved_checkpoint
    method, opt, samplers = _fresh()
    st_ = checkpoint.load(d, "f" * 64, method=method, optimizer=opt, samplers=samplers, device=torch.device("cpu"))
    assert st_ is not None and st_.step == 4 and st_.status == ["done", "early_stopped"]
    assert torch.equal(method.params[1], saved.params[1]) and len(samplers[0].order) == 6
    assert opt.param_groups[1]["lr"] == 0.2 and int(opt.state[method.params[0]]["step"]) == 1
    assert st_.loss_curves[1][0][1] != st_.loss_curves[1][0][1]  # NaN survives the JSON


@settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["json", "safetensors"]), ops=_damage)
def test_hypothesis_damaged_checkpoint_is_never_resumed(saved_checkpoint, tmp_path_factory, which, ops):
    src, _ = saved_checkpoint
    d = tmp_path_factory.mktemp("damaged")
    for f in src.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    before = (d / f"step-00000004.{which}").read_bytes()
    _apply(d / f"step-00000004.{which}", ops)
    method, opt, samplers = _fresh()
    got = checkpoint.load(d, "f" * 64, method=method, optimizer=opt, samplers=samplers, device=torch.device("cpu"))
    if (d / f"step-00000004.{which}").read_bytes() == before:
        assert got is not None  # the "damage" happened to change nothing
    else:
        assert got is None
        assert all(torch.equal(p, torch.zeros(3, 8)) for p in method.params)  # nothing half-restored


def test_interrupted_tune_keeps_finished_runs_and_resumes_the_rest(bb, suite, tmp_path):
    store = Store(tmp_path)
    done = tune(store, suite, None, [0], CFG, backbone=bb, device="cpu", with_baselines=False)
    kept = store.get(done.runs[0]["key"])

    def die(step, total, msg):
        if step == 5:
            raise Killed()

    with pytest.raises(Killed):  # the bank of seeds 1 and 2 (seed 0 is stored) dies after its step-4 checkpoint
        tune(store, suite, None, [0, 1, 2], CFG, backbone=bb, device="cpu", with_baselines=False, progress=die,
             checkpoint_every=2)
    assert [p.name for p in (tmp_path / "checkpoints").glob("*/*.json")] == ["step-00000004.json"]
    seen = []
    again = tune(store, suite, None, [0, 1, 2], CFG, backbone=bb, device="cpu", with_baselines=False,
                 progress=lambda s, t, m: seen.append(s), checkpoint_every=2)
    assert seen[0] == 5  # resumed
    assert store.get(kept.key).created == kept.created and again.runs[0] == done.runs[0]  # not recomputed
    ref = Store(tmp_path / "ref")  # the same two requests, never interrupted
    tune(ref, suite, None, [0], CFG, backbone=bb, device="cpu", with_baselines=False, checkpoint_every=0)
    straight = tune(ref, suite, None, [0, 1, 2], CFG, backbone=bb, device="cpu", with_baselines=False,
                    checkpoint_every=0)
    assert again.runs == straight.runs
    for row in again.runs:
        assert torch.equal(store.get(row["key"]).tensor("prompt"), ref.get(row["key"]).tensor("prompt"))
    assert not any((tmp_path / "checkpoints").iterdir())
    with pytest.raises(ValueError, match="checkpoint_every must be 0"):
        tune(store, suite, None, [0], CFG, backbone=bb, device="cpu", with_baselines=False, checkpoint_every=-1)
