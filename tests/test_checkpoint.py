"""Resumable banks in-process: a bank interrupted after a checkpoint and started again gives bit for bit
the result of one never interrupted, for PT (with a shared parameter and global-RNG dropout), MSF,
ATTEMPT and VIP; checkpoints of another bank or damaged ones are ignored, never resumed.
"""
from __future__ import annotations

import json
import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ipt_core.config.attempt import AttemptConfig
from ipt_core.config.ipt import MSFConfig
from ipt_core.config.vip import VIPConfig
from ipt_core.methods.attempt import Attempt
from ipt_core.methods.ipt import SubspaceFinding
from ipt_core.methods.pt import PromptTuning, init_prompt
from ipt_core.methods.vip import VIP
from ipt_core.train import checkpoint
from ipt_core.train.bank import RunConfig, train_bank

N = 3


class Killed(Exception):
    """Stands in for kill -9: raised from the progress callback, after the step's checkpoint."""


class NoisyPT(PromptTuning):
    """PT plus a bias shared by all runs and dropout from torch's global RNG: the resumed bank must
    restore the shared Adam group and the global random stream too."""

    def __init__(self, initial, kind):
        super().__init__(initial, kind)
        self.bias = nn.Parameter(torch.zeros(initial[0].shape[-1]))

    def shared_parameters(self):
        return [self.bias]

    def prompts(self, run_ids, task_ids, enc):
        p = super().prompts(run_ids, task_ids, enc) + self.bias
        return F.dropout(p, 0.3, training=self.training)


@pytest.fixture
def tasks(tiny_task):
    return [tiny_task("two", 2, n_train=8, n_dev=4, n_test=4, seed=1),
            tiny_task("three", 3, n_train=9, n_dev=6, n_test=6, seed=2)]


def _interrupted_then_resumed(bb, tasks, build, runs, tmp_path, *, every: int, kill_at: int, **kw):
    """Train to ``kill_at``, die, start again from a fresh method; returns (resumed results, the dir)."""
    ck = tmp_path / "ck"

    def die(step, total, msg):
        if step == kill_at:
            raise Killed()

    with pytest.raises(Killed):
        train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=ck, checkpoint_every=every,
                   progress=die, **kw)
    assert sorted(p.name for p in ck.iterdir()) == [f"step-{kill_at // every * every:08d}.json",
                                                    f"step-{kill_at // every * every:08d}.safetensors"]
    torch.manual_seed(12345)  # the new process's global RNG is elsewhere: the checkpoint must reset it
    seen = []
    resumed = train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=ck, checkpoint_every=every,
                         progress=lambda s, t, m: seen.append(s), **kw)
    assert seen[0] == kill_at // every * every + 1  # it did resume, not restart
    return resumed, ck


def _killed_at(bb, tasks, method, runs, ck, *, step: int) -> None:
    """Train ``method`` with a checkpoint every 2 steps in ``ck`` and die at ``step``, as kill -9 would."""
    with pytest.raises(Killed):
        train_bank(bb, tasks, method, runs, device="cpu", checkpoint_dir=ck, checkpoint_every=2,
                   progress=lambda s, t, m: (_ for _ in ()).throw(Killed()) if s == step else None)


def _assert_identical(a, b):
    for x, y in zip(a, b, strict=True):
        assert (x.status, x.best_step, x.dev_acc, x.test_acc, x.test_f1) == (y.status, y.best_step, y.dev_acc, y.test_acc, y.test_f1)
        assert x.loss_curve == y.loss_curve and x.dev_curve == y.dev_curve and x.test_pred == y.test_pred
        assert x.per_task == y.per_task
        assert x.state.keys() == y.state.keys()
        for k in x.state:
            assert torch.equal(x.state[k], y.state[k]), k


def _check(bb, tasks, build, runs, tmp_path, *, every=2, kill_at=5, **kw):
    torch.manual_seed(0)
    straight = train_bank(bb, tasks, build(), runs, device="cpu", **kw)
    torch.manual_seed(0)
    resumed, ck = _interrupted_then_resumed(bb, tasks, build, runs, tmp_path, every=every, kill_at=kill_at, **kw)
    _assert_identical(straight, resumed)
    return resumed, ck


def test_pt_with_shared_parameter_and_dropout_resumes_exactly(bb, tasks, tmp_path):
    inits = [init_prompt(bb, N, "shallow", "vocab", seed=s) for s in (0, 1, 2)]
    runs = [RunConfig(("two",), seed=0, lr=0.05, steps=9, batch_size=4, eval_every=3),
            RunConfig(("three",), seed=1, lr=0.03, steps=4, batch_size=3, eval_every=2),  # stops before the kill
            RunConfig(("three",), seed=2, lr=0.05, steps=8, batch_size=5, eval_every=4, patience=1)]
    _check(bb, tasks, lambda: NoisyPT(inits, "shallow"), runs, tmp_path, max_rows=5)


def test_msf_multi_task_runs_resume_exactly(bb, tasks, tmp_path):
    prompts = torch.randn(2, N, bb.hidden_size, generator=torch.Generator().manual_seed(0))
    cfg = MSFConfig(hidden=8, alpha=1.0)
    runs = [RunConfig(("two", "three"), seed=s, lr=0.01, steps=7, batch_size=6, eval_every=3) for s in (0, 1)]
    _check(bb, tasks, lambda: SubspaceFinding(prompts, dims=[2, 4], seeds=[0, 1], cfg=cfg, kind="shallow"), runs,
           tmp_path, kill_at=4)


def test_attempt_resumes_exactly(bb, tasks, tmp_path):
    sources = torch.randn(3, N, bb.hidden_size, generator=torch.Generator().manual_seed(1))
    tgt = [torch.randn(N, bb.hidden_size, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    build = lambda: Attempt(bb, sources, targets=[[tgt[0]], [tgt[1], tgt[2]]], run_tasks=[[0], [0, 1]], seeds=[0, 1],
                            cfg=AttemptConfig(n_tokens=N, attn_dim=8))
    runs = [RunConfig(("two",), seed=0, lr=0.05, steps=6, batch_size=4, eval_every=3),
            RunConfig(("two", "three"), seed=1, lr=0.05, steps=6, batch_size=5, eval_every=3)]
    _check(bb, tasks, build, runs, tmp_path, every=3, kill_at=4)


def test_vip_generators_and_codebook_resume_exactly(bb, tasks, tmp_path):
    cfg = VIPConfig(n_tokens=N, ctx_dim=8, ctx_layers=1, ctx_heads=2, ctx_ff=16, codebook_size=8, num_samples=2)
    inits = [init_prompt(bb, N, "shallow", seed=s) for s in (0, 1)]
    runs = [RunConfig(("two",), seed=0, lr=0.02, steps=6, batch_size=4, eval_every=3),
            RunConfig(("three",), seed=1, lr=0.02, steps=6, batch_size=3, eval_every=3)]
    _check(bb, tasks, lambda: VIP(bb, inits, [0, 1], cfg), runs, tmp_path, kill_at=3)


def _pt_bank(bb, tasks, seed=0):
    inits = [init_prompt(bb, N, "shallow", "vocab", seed=seed)]
    return (lambda: PromptTuning(inits, "shallow"),
            [RunConfig(("two",), seed=0, lr=0.05, steps=6, batch_size=4, eval_every=3)])


def test_checkpoint_of_another_bank_is_ignored(bb, tasks, tmp_path, caplog):
    build, runs = _pt_bank(bb, tasks)
    straight = train_bank(bb, tasks, build(), runs, device="cpu")
    _, ck = _check(bb, tasks, build, runs, tmp_path, kill_at=5)
    # leave the step-4 checkpoint of a bank whose initial prompt differs, then train this one into it
    other, _ = _pt_bank(bb, tasks, seed=9)
    _killed_at(bb, tasks, other(), runs, ck, step=5)
    seen = []
    with caplog.at_level(logging.WARNING, logger="ipt_core.train.checkpoint"):
        again = train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=ck, checkpoint_every=2,
                           progress=lambda s, t, m: seen.append(s))
    assert seen[0] == 1  # started over
    assert any("fingerprint" in r.getMessage() and "step-00000004.json" in r.getMessage() for r in caplog.records)
    _assert_identical(straight, again)


@pytest.mark.parametrize("damage", ["truncate_tensors", "edit_json", "garbage_json"])
def test_damaged_checkpoint_is_ignored_and_named(bb, tasks, tmp_path, caplog, damage):
    build, runs = _pt_bank(bb, tasks)
    straight = train_bank(bb, tasks, build(), runs, device="cpu")
    ck = tmp_path / "ck"
    _killed_at(bb, tasks, build(), runs, ck, step=5)
    j, t = ck / "step-00000004.json", ck / "step-00000004.safetensors"
    if damage == "truncate_tensors":
        t.write_bytes(t.read_bytes()[:100])
    elif damage == "edit_json":
        doc = json.loads(j.read_text())
        doc["fingerprint"] = "0" * 64
        j.write_text(json.dumps(doc))
    else:
        j.write_bytes(b"{\x00 not json")
    seen = []
    with caplog.at_level(logging.WARNING, logger="ipt_core.train.checkpoint"):
        again = train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=ck, checkpoint_every=2,
                           progress=lambda s, t, m: seen.append(s))
    assert seen[0] == 1
    assert any("ignoring checkpoint" in r.getMessage() and "step-00000004" in r.getMessage() for r in caplog.records)
    _assert_identical(straight, again)


def test_checkpoint_files_are_safetensors_and_json_only(bb, tasks, tmp_path):
    build, runs = _pt_bank(bb, tasks)
    ck = tmp_path / "ck"
    _killed_at(bb, tasks, build(), runs, ck, step=3)
    doc = json.loads((ck / "step-00000002.json").read_text())
    assert doc["step"] == 2 and doc["tensor_file"] == "step-00000002.safetensors"
    import safetensors.torch

    names = set(safetensors.torch.load_file(str(ck / doc["tensor_file"])))
    assert {"method/params.0", "sampler/0/gen", "sampler/0/order", "rng/torch", "optim/0/exp_avg",
            "best/0/prompt"} <= names
    # the old checkpoint is replaced, never accumulated; no temp files remain
    assert sorted(p.name for p in ck.iterdir()) == ["step-00000002.json", "step-00000002.safetensors"]


def test_bank_dir_is_keyed_by_the_specs(tmp_path):
    from ipt_core.store import Store

    store = Store(tmp_path)
    specs = [{"method": "pt", "seed": 0}]
    ck = checkpoint.bank_dir(store, specs)
    assert ck == store.root / "checkpoints" / checkpoint.bank_key(specs) and ck.is_dir()
    assert checkpoint.bank_dir(store, specs) == ck  # the same request finds the same directory
    assert checkpoint.bank_dir(store, [{"method": "pt", "seed": 1}]) != ck
    assert checkpoint.bank_dir(None, specs) is None and checkpoint.bank_dir(store, []) is None
    (ck / "step-00000002.json").write_text("{}")
    checkpoint.discard(ck)
    assert not ck.exists()


def test_checkpoint_every_must_be_positive(bb, tasks, tmp_path):
    build, runs = _pt_bank(bb, tasks)
    with pytest.raises(ValueError, match="checkpoint_every must be at least 1, got 0"):
        train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=tmp_path, checkpoint_every=0)


# --------------------------------------------------------------------- hostile checkpoints (issue 32)


def _resign(doc: dict) -> dict:
    doc["checksum"] = checkpoint._doc_checksum(doc)
    return doc


def _set(path, value):
    """Set ``doc[path...] = value`` (a re-signed checkpoint: the checksum matches, the content is wrong)."""
    def change(doc, tensors):
        d = doc
        for p in path[:-1]:
            d = d[p]
        d[path[-1]] = value
    return change


def _tensor(name, value):
    def change(doc, tensors):
        tensors[name] = value
    return change


HOSTILE_CHECKPOINTS = {
    # raw bytes: the checksum cannot even be read
    "deep_list_nesting": b"[" * 100000 + b"]" * 100000,
    "deep_dict_nesting": b'{"a":' * 100000 + b"1" + b"}" * 100000,
    "invalid_utf8": b'{"format": 1, "x": "\xff"}',
    "top_level_list": b"[1, 2]",
    "top_level_string": b'"step"',
    # re-signed documents: a wrong type at some depth
    "step_is_bool": _set(["step"], True),
    "step_is_string": _set(["step"], "6"),
    "elapsed_is_string": _set(["elapsed"], "1s"),
    "active_holds_int": _set(["active"], [1]),
    "status_holds_number": _set(["status"], [3]),
    "since_best_holds_string": _set(["since_best"], ["x"]),
    "dev_curve_point_is_string": _set(["dev_curves"], [[["a", 1]]]),
    "loss_curve_point_is_number": _set(["loss_curves"], [[1]]),
    "best_is_number": _set(["best"], [3]),
    "best_acc_is_string": _set(["best", 0, "acc"], "high"),
    "best_state_is_dict": _set(["best", 0, "state"], {"prompt": 1}),
    "optimizer_is_list": _set(["optimizer"], []),
    "param_group_is_number": _set(["optimizer", "param_groups"], [3]),
    "lr_is_string": _set(["optimizer", "param_groups", 0, "lr"], "fast"),
    "betas_is_number": _set(["optimizer", "param_groups", 0, "betas"], 0.9),
    "optim_state_index_not_int": _set(["optimizer", "state"], {"x": ["exp_avg"]}),
    "optim_state_index_too_big": _set(["optimizer", "state"], {"99": ["exp_avg"]}),
    "optim_state_names_is_string": _set(["optimizer", "state"], {"0": "exp_avg"}),
    "generators_is_string": _set(["generators"], "abc"),
    "tensor_file_is_number": _set(["tensor_file"], 3),
    # re-signed tensors: the file's sha256 matches, its content is wrong
    "sampler_order_out_of_range": _tensor("sampler/0/order", torch.tensor([10 ** 6, 0], dtype=torch.int64)),
    "sampler_order_is_float": _tensor("sampler/0/order", torch.zeros(2)),
    "sampler_gen_state_truncated": _tensor("sampler/0/gen", torch.zeros(7, dtype=torch.uint8)),
    "rng_state_is_float": _tensor("rng/torch", torch.zeros(5)),
    "method_param_wrong_dtype": _tensor("method/params.0", torch.zeros(N, 32, dtype=torch.float64)),
    "adam_moment_wrong_shape": _tensor("optim/0/exp_avg", torch.zeros(2, 2)),
}


def test_any_malformed_checkpoint_is_skipped_for_the_previous_one(bb, tasks, tmp_path, caplog):
    """A newer hostile checkpoint (RecursionError, wrong types at any depth, bad tensors) is ignored
    with a warning and the bank resumes from the older valid one, to the uninterrupted result."""
    import hashlib
    import shutil

    import safetensors.torch

    build, runs = _pt_bank(bb, tasks)
    torch.manual_seed(0)
    straight = train_bank(bb, tasks, build(), runs, device="cpu")
    pristine = tmp_path / "pristine"
    torch.manual_seed(0)
    _killed_at(bb, tasks, build(), runs, pristine, step=5)
    good = json.loads((pristine / "step-00000004.json").read_text())
    hidden = build().state_dict()["params.0"].shape[-1]
    assert hidden == 32, "the tensor cases above assume the tiny backbone's width"
    for name, damage in HOSTILE_CHECKPOINTS.items():
        ck = tmp_path / name
        shutil.copytree(pristine, ck)
        j, t = ck / "step-00000006.json", ck / "step-00000006.safetensors"
        if isinstance(damage, bytes):
            j.write_bytes(damage)
        else:
            doc = json.loads(json.dumps(good)) | {"step": 6, "tensor_file": t.name}
            tensors = safetensors.torch.load_file(str(ck / "step-00000004.safetensors"))
            damage(doc, tensors)
            blob = safetensors.torch.save(tensors)
            t.write_bytes(blob)
            if doc.get("tensor_file") == t.name:
                doc["tensor_sha256"] = hashlib.sha256(blob).hexdigest()
            j.write_text(json.dumps(_resign(doc)))
        seen = []
        caplog.clear()
        torch.manual_seed(12345)
        with caplog.at_level(logging.WARNING, logger="ipt_core.train.checkpoint"):
            again = train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=ck, checkpoint_every=2,
                               progress=lambda s, t, m: seen.append(s))
        assert seen[0] == 5, name  # resumed from step 4, the older valid checkpoint
        assert any("ignoring checkpoint" in r.getMessage() and "step-00000006" in r.getMessage()
                   for r in caplog.records), name
        _assert_identical(straight, again)


def test_a_checkpoint_that_fails_half_way_through_applying_leaves_the_bank_as_it_was(bb, tasks, tmp_path,
                                                                                     monkeypatch, caplog):
    build, runs = _pt_bank(bb, tasks)
    torch.manual_seed(0)
    straight = train_bank(bb, tasks, build(), runs, device="cpu")
    ck = tmp_path / "ck"
    torch.manual_seed(0)
    _killed_at(bb, tasks, build(), runs, ck, step=5)
    real = checkpoint._apply

    def half(plan, doc, tensors, *, method, optimizer, samplers, device):
        method.load_state_dict({k[len("method/"):]: v for k, v in tensors.items() if k.startswith("method/")})
        raise RuntimeError("set_state: wrong size")  # after the method's state changed

    monkeypatch.setattr(checkpoint, "_apply", half)
    seen = []
    torch.manual_seed(0)
    with caplog.at_level(logging.WARNING, logger="ipt_core.train.checkpoint"):
        again = train_bank(bb, tasks, build(), runs, device="cpu", checkpoint_dir=ck, checkpoint_every=2,
                           progress=lambda s, t, m: seen.append(s))
    monkeypatch.setattr(checkpoint, "_apply", real)
    assert seen[0] == 1 and any("cannot be applied" in r.getMessage() for r in caplog.records)
    _assert_identical(straight, again)  # a fresh start, as if there had been no checkpoint


RESUME_ATOL = 1e-5  # the README's resume guarantee with several threads (bench/resume_diff.py measures it)


def test_resume_with_several_threads_keeps_the_stated_guarantee(bb, tasks, tmp_path):
    """The README's guarantee: scores (status, best step, accuracies, F1, curves, predictions) exactly,
    tensors within RESUME_ATOL, whatever the thread count (bit for bit with one thread: the tests above)."""
    build, runs = _pt_bank(bb, tasks)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        torch.manual_seed(0)
        straight = train_bank(bb, tasks, build(), runs, device="cpu")
        torch.manual_seed(0)
        resumed, _ = _interrupted_then_resumed(bb, tasks, build, runs, tmp_path, every=2, kill_at=5)
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(straight, resumed, strict=True):
        assert (x.status, x.best_step, x.dev_acc, x.test_acc, x.test_f1) == (y.status, y.best_step, y.dev_acc, y.test_acc, y.test_f1)
        assert x.dev_curve == y.dev_curve and x.test_pred == y.test_pred and x.per_task == y.per_task
        for k in x.state:
            assert torch.allclose(x.state[k], y.state[k], rtol=0, atol=RESUME_ATOL), k
