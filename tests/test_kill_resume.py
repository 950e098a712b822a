"""A real ``python -m ipt_core tune`` killed with SIGKILL after a checkpoint, then run again with the same
command: it resumes and stores exactly the scores and prompts of a run never killed.

The model is a tiny random-weight BERT saved to disk with the packaged tokenizer, loaded by the CLI as
a local model (``encoder-sim:<folder>``); the suite is a tiny task folder (``bench/faults.py`` builds both).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch

from bench.faults import REPO, child_env, make_tiny_model, make_tiny_suite, tune_argv
from ipt_core.backbones import load_backbone
from ipt_core.config.pt import PTConfig
from ipt_core.experiments.tune import tune
from ipt_core.store import Store
from ipt_core.tasks import load_suite

pytestmark = pytest.mark.slow  # a real CLI process trains, is killed, and trains again

STEPS = 40


def _checkpoints(store):
    return sorted((store / "checkpoints").glob("*/step-*.json"))


def test_tune_killed_with_sigkill_resumes_to_identical_results(tmp_path):
    model, suite = make_tiny_model(tmp_path / "model"), make_tiny_suite(tmp_path / "suite")
    store = tmp_path / "store"
    argv = tune_argv(suite, model, store, seeds="0", steps=STEPS, checkpoint_every=2)

    proc = subprocess.Popen(argv, env=child_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while not _checkpoints(store):
            assert proc.poll() is None, f"tune ended before its first checkpoint: {proc.stderr.read()[-2000:]}"
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = int(_checkpoints(store)[-1].stem.split("-")[1])
    assert 2 <= killed_at < STEPS
    assert Store(store).query("pt_run") == []  # nothing half-done is visible

    done = subprocess.run(argv, env=child_env(), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming bank from checkpoint" in done.stderr and f"(step {killed_at})" in done.stderr
    resumed = json.loads(done.stdout.strip().splitlines()[-1])
    assert not resumed["from_cache"]
    assert _checkpoints(store) == [] and not any((store / "checkpoints").iterdir())  # removed once stored

    # the same request never interrupted, in this process (one thread, like the CLI children)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        bb = load_backbone(f"encoder-sim:{model}")
        cfg = PTConfig(n_tokens=4, kind="shallow", lr=0.05, steps=STEPS, batch_size=4, eval_every=50)
        ref_store = Store(tmp_path / "ref")
        straight = tune(ref_store, load_suite(str(suite)), None, [0], cfg, backbone=bb, device="cpu",
                        with_baselines=False, checkpoint_every=0)
    finally:
        torch.set_num_threads(threads)
    assert resumed["runs"] == straight.runs  # scores, statuses and keys, exactly
    for row in straight.runs:
        a, b = Store(store).get(row["key"]), ref_store.get(row["key"])
        assert torch.equal(a.tensor("prompt"), b.tensor("prompt"))
        assert a.meta["loss_curve"] == b.meta["loss_curve"] and a.meta["dev_curve"] == b.meta["dev_curve"]
