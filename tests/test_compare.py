"""The ``compare`` experiment and command (ipt_core.experiments.compare) on a tiny backbone and a tiny suite.

Every method gives one row per (task, seed) with the agreed fields; the summary is mean and std
over seeds; the stored ``method_compare`` entry holds what the Methods page reads (ATTEMPT's
attention, VIP's codebook usage) and a repeated request trains nothing; bad requests fail with
a clear message; the CLI prints the JSON; one integration test on the real packaged model.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ipt_core.cli.args import add_compare_parser
from ipt_core.cli.main import cmd_compare
from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.ipt import MSFConfig
from ipt_core.config.pt import PTConfig
from ipt_core.config.registry import COMPARE_METHODS, CompareSettings
from ipt_core.config.vip import VIPConfig
from ipt_core.experiments.compare import (
    OWN_PROMPT,
    CompareInputError,
    compare,
    summarise,
)
from ipt_core.experiments.context import Context
from ipt_core.figures import ipt as ipt_figures
from ipt_core.store import Store
from ipt_core.tasks import Suite

ROW_FIELDS = {"method", "task", "seed", "test_acc", "test_f1", "trainable_params", "seconds"}
SUMMARY_FIELDS = {"method", "test_acc_mean", "test_acc_std", "test_f1_mean", "test_f1_std", "trainable_params", "seconds"}
N, D, ATTN, K, DI = 4, 32, 6, 8, 4


@pytest.fixture
def suite(tiny_task):
    return Suite("tiny", "", (tiny_task("a", 2, seed=1), tiny_task("b", 3, n_train=9, seed=2),
                              tiny_task("c", 2, seed=3), tiny_task("d", 4, n_train=12, n_dev=8, seed=4)))


@pytest.fixture
def ctx(make_tiny_backbone, tmp_path):
    return Context(Store(tmp_path / "store"), make_tiny_backbone("encoder_sim"), torch.device("cpu"))


def _settings(steps: int = 2) -> CompareSettings:
    s = CompareSettings(pt=PTConfig(kind="shallow"), attempt=AttemptConfig(attn_dim=ATTN), vip=VIPConfig(codebook_size=K),
                        msf=MSFConfig(hidden=16), d_intrinsic=DI)
    return s.with_budget(steps=steps, batch_size=4, eval_every=steps, n_tokens=N)


def test_with_budget_puts_one_budget_on_every_method():
    s = CompareSettings().with_budget(steps=7, batch_size=3, n_tokens=5, patience=2)
    assert {s.pt.steps, s.attempt.steps, s.vip.steps, s.ist.steps, s.msf.steps} == {7}
    assert {s.pt.batch_size, s.attempt.batch_size, s.vip.batch_size, s.ist.batch_size} == {3}
    assert s.msf.batch_size == MSFConfig().batch_size
    assert {s.pt.n_tokens, s.attempt.n_tokens, s.vip.n_tokens} == {5}
    assert s.vip.patience == 2 and s.pt.kind == "shallow"


def test_compare_every_method(ctx, suite, monkeypatch):
    entry = compare(ctx, suite, ["a", "b"], list(COMPARE_METHODS), [0, 1], _settings())
    m = entry.meta
    assert entry.kind == "method_compare" and m["suite"] == "tiny" and m["methods"] == list(COMPARE_METHODS)
    rows = m["rows"]
    assert len(rows) == len(COMPARE_METHODS) * 2 * 2
    assert all(set(r) == ROW_FIELDS for r in rows)
    assert {(r["method"], r["task"], r["seed"]) for r in rows} == {(x, t, s) for x in COMPARE_METHODS for t in "ab" for s in (0, 1)}
    assert all(0 <= r["test_acc"] <= 1 and 0 <= r["test_f1"] <= 1 for r in rows)
    params = {(r["method"], r["task"]): r["trainable_params"] for r in rows}
    assert params[("zero-shot", "a")] == 0
    assert params[("probe", "a")] == D + 1 and params[("probe", "b")] == 3 * (D + 1)
    assert params[("pt", "a")] == N * D and params[("ipt", "b")] == DI
    module = 2 * ATTN * D + 2 * D
    assert params[("attempt", "a")] == N * D + module
    assert params[("attempt-mt", "a")] == N * D + module / 2  # the shared module split between two tasks
    assert params[("vip", "a")] > N * D + K * D
    assert all(r["seconds"] is None or r["seconds"] >= 0 for r in rows)
    assert all(r["seconds"] is not None for r in rows if r["method"] in ("pt", "ipt", "attempt", "vip"))

    summary = {s["method"]: s for s in m["summary"]}
    assert list(summary) == list(COMPARE_METHODS)
    assert all(SUMMARY_FIELDS <= set(s) for s in summary.values())
    assert summary["zero-shot"]["test_acc_std"] == 0
    pt_rows = [r for r in rows if r["method"] == "pt"]
    per_seed = [np.mean([r["test_acc"] for r in pt_rows if r["seed"] == s]) for s in (0, 1)]
    assert summary["pt"]["test_acc_mean"] == pytest.approx(np.mean(per_seed))
    assert summary["pt"]["test_acc_std"] == pytest.approx(np.std(per_seed))

    att = m["attempt_attention"]  # from single-task ATTEMPT: a task's sources are all the others
    assert att["targets"] == ["a", "b"] and att["sources"] == ["a", "b", "c", "d", OWN_PROMPT]
    w = np.asarray(att["weights"])
    assert w.shape == (2, 5) and np.allclose(w.sum(1), 1) and w[0, 0] == 0 and w[1, 1] == 0
    usage = np.asarray(m["vip_codebook_usage"])
    assert len(usage) == K and usage.sum() == pytest.approx(1) and np.all(np.diff(usage) <= 1e-12)
    assert len(m["vip_codebook_counts"]) == 4 and all(len(c["counts"]) == K for c in m["vip_codebook_counts"])
    diag = m["diagnostics"]  # is ATTEMPT's attention informative, is VIP's codebook alive
    assert 0 < diag["attempt"]["entropy_vs_uniform"] <= 1 and diag["attempt"]["runs"] == 4
    assert 1 <= diag["vip"]["codes_used"] <= K and 1 <= diag["vip"]["perplexity"] <= diag["vip"]["codes_used"] + 1e-9

    # the per-method entries: ATTEMPT's attention and sources, the multi-task run over both tasks
    runs = ctx.store.query("attempt_run")
    single = [e for e in runs if e.meta["variant"] == "single"]
    multi = [e for e in runs if e.meta["variant"] == "multi"]
    assert len(single) == 4 and len(multi) == 2
    assert {tuple(e.meta["sources"]) for e in single if e.meta["tasks"] == ["a"]} == {("b", "c", "d")}
    assert multi[0].meta["tasks"] == ["a", "b"] and multi[0].meta["sources"] == ["c", "d"]
    assert multi[0].tensor("attention").shape == (2, 3)
    assert len(ctx.store.query("vip_run")) == 4

    # what the Methods page does with it
    table = ipt_figures.method_compare_table(rows)
    assert set(table["method"]) == set(COMPARE_METHODS)
    assert ipt_figures.attention_table(att).shape == (2, 5)
    assert len(ipt_figures.codebook_usage_table(m["vip_codebook_usage"])) == K

    # a repeated request is read from the store: no row goes through the model (every training,
    # evaluation and baseline forward collates its rows on the backbone first, whoever calls it)
    def boom(*a, **k):
        raise AssertionError("ran the model again")

    monkeypatch.setattr(ctx.backbone, "collate", boom)
    assert compare(ctx, suite, ["a", "b"], list(COMPARE_METHODS), [0, 1], _settings()).key == entry.key


def test_stages_are_shared_through_the_store(ctx, suite, monkeypatch):
    """A second comparison with other methods reuses every run already trained (PT, sources, VIP)."""
    # every training step of every caller goes through autograd's backward: count them
    backward_calls = []
    real_backward = torch.autograd.backward
    monkeypatch.setattr(torch.autograd, "backward", lambda *a, **k: backward_calls.append(1) or real_backward(*a, **k))
    compare(ctx, suite, ["a"], ["pt", "attempt", "vip"], [0], _settings())
    assert backward_calls, "the counter saw no training step: it would not see one the second time either"
    backward_calls.clear()
    e = compare(ctx, suite, ["a"], ["attempt", "vip", "zero-shot"], [0], _settings())
    assert backward_calls == [] and len(e.meta["rows"]) == 3


def test_entropy_and_codebook_stats():
    from ipt_core.analysis.method_diagnostics import attention_entropy, codebook_stats

    assert attention_entropy(torch.full((3, 4), 0.25)) == pytest.approx(1.0)
    assert attention_entropy(torch.tensor([[1.0, 0, 0, 0]])) == pytest.approx(0.0)
    assert codebook_stats([2, 2, 0, 0]) == {"codes_used": 2, "perplexity": pytest.approx(2.0), "codebook_size": 4}


def test_summarise_mean_and_std_over_seeds():
    rows = [{"method": "m", "task": t, "seed": s, "test_acc": acc, "test_f1": acc / 2, "trainable_params": 10, "seconds": sec}
            for t, s, acc, sec in [("x", 0, 0.2, 1.0), ("y", 0, 0.4, None), ("x", 1, 0.6, 3.0), ("y", 1, 0.8, None)]]
    (s,) = summarise(rows, ["m", "absent"])
    assert s["test_acc_mean"] == pytest.approx(0.5) and s["test_acc_std"] == pytest.approx(0.2)
    assert s["test_f1_mean"] == pytest.approx(0.25) and s["test_f1_std"] == pytest.approx(0.1)
    assert s["trainable_params"] == 10 and s["seconds"] == pytest.approx(2.0)
    assert s["n_tasks"] == 2 and s["n_seeds"] == 2


def test_bad_requests_fail_clearly(ctx, suite, tiny_task):
    with pytest.raises(CompareInputError, match="unknown method"):
        compare(ctx, suite, ["a"], ["pt", "lora"], [0], _settings())
    with pytest.raises(CompareInputError, match="ipt needs other tasks"):
        compare(ctx, suite, None, ["ipt"], [0], _settings())
    with pytest.raises(CompareInputError, match="needs source tasks"):
        compare(ctx, suite, None, ["attempt-mt"], [0], _settings())
    with pytest.raises(CompareInputError, match="needs source tasks"):
        compare(ctx, Suite("one", "", (tiny_task("a", 2),)), None, ["attempt"], [0], _settings())
    with pytest.raises(KeyError):
        compare(ctx, suite, ["nope"], ["pt"], [0], _settings())
    assert ctx.store.query("method_compare") == []


def test_cli_prints_the_json(ctx, suite, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("ipt_core.experiments.context.cached_backbone", lambda spec, device: ctx.backbone)  # Context.create's
    monkeypatch.setattr("ipt_core.experiments.context.load_and_resample", lambda spec, k=None, data_seed=None: suite)
    parser = argparse.ArgumentParser()
    add_compare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", "--suite", "tiny", "--tasks", "a,b", "--methods", "zero-shot,pt,attempt,vip",
                              "--steps", "2", "--batch-size", "4", "--prompt-len", str(N), "--codebook-size", str(K),
                              "--vip-eval", "expected", "--device", "cpu", "--cache", str(tmp_path / "cli"), "--json"])
    assert args.prompt_kind == "shallow"
    assert cmd_compare(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["methods"] == ["zero-shot", "pt", "attempt", "vip"]
    assert len(out["rows"]) == 4 * 2 and all(set(r) == ROW_FIELDS for r in out["rows"])
    assert [s["method"] for s in out["summary"]] == out["methods"]
    assert {"attempt", "vip"} <= set(out["diagnostics"])
    assert out["diagnostics"]["attempt"]["temperature"] == AttemptConfig().temperature  # the new default, not d x e
    entry = Store(tmp_path / "cli").get(out["key"])
    assert entry.meta["settings"]["vip"]["eval_mode"] == "expected" and entry.command.startswith("python -m ipt_core compare")


@pytest.mark.integration
def test_compare_on_the_real_model(real_backbone, tmp_path):
    """Every method end to end on the packaged MiniLM: three demo tasks cut to 8 rows a split, 2 steps."""
    from ipt_core.tasks import load_suite

    demo = load_suite("demo")
    cut = lambda t: replace(t, train=t.train[:8], dev=t.dev[:8], test=t.test[:8])
    suite = Suite("demo-cut", "", tuple(cut(demo.task(n)) for n in ("movie_sentiment", "sms_spam", "news_topic")))
    ctx = Context(Store(tmp_path), real_backbone, torch.device("cpu"))
    methods = ["zero-shot", "probe", "pt", "ipt", "attempt", "vip"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as conftest's tiny backbones: more threads are slower on a busy small machine
    try:
        entry = compare(ctx, suite, ["movie_sentiment", "sms_spam"], methods, [0],
                        replace(_settings(2), msf=MSFConfig(hidden=16, steps=2, batch_size=4)))
    finally:
        torch.set_num_threads(threads)
    summary = {s["method"]: s for s in entry.meta["summary"]}
    assert list(summary) == methods
    assert all(0 <= s["test_acc_mean"] <= 1 for s in summary.values())
    assert summary["pt"]["trainable_params"] == N * 384
    assert len(entry.meta["attempt_attention"]["weights"]) == 2
