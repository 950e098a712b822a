"""Tests of ipt_core.backbones on tiny random-weight models of every kind, and on the packaged model.

Every kind (encoder-sim on BertModel, encoder-mlm on BertForMaskedLM, seq2seq on T5 and BART,
causal on GPT-2 and Llama): score shapes and label masks, shallow and deep prompts, padding
independence, gradients that reach the prompt only, deep-prompt injection at every layer, shape
errors, identity and weights hash, label token ids, pair inputs, and label scores checked against
a direct computation with the Hugging Face model.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ipt_core.backbones import Backbone, Encoded, from_model
from ipt_core.config.backbone import BackboneError
from ipt_core.methods.pt import init_prompt
from ipt_core.tasks import Example

N_PROMPT = 3
TINY_HIDDEN, TINY_LAYERS = 32, 2  # the sizes conftest's tiny configs use
GENERATIVE = ["bert_mlm", "t5", "bart", "gpt2", "llama"]
PROMPTS = ["none", "shallow", "deep"]


@pytest.fixture
def two_tasks(tiny_task):
    """Tasks with 2 and 3 labels (the 3-label one has the 2-token label "blue sky")."""
    return [tiny_task("two", 2), tiny_task("three", 3)]


def _batch(tasks):
    """Rows of both tasks, interleaved, lengths differing: examples and task ids ``[B]``."""
    rows = [(0, tasks[0].train[0]), (1, tasks[1].train[2]), (0, tasks[0].train[1]), (1, tasks[1].train[0])]
    return [ex for _, ex in rows], torch.tensor([t for t, _ in rows])


def _prompt(bb: Backbone, kind: str, batch: int, seed: int = 0, requires_grad: bool = False):
    """A random prompt at the scale of the hidden states: ``[B, n, d]``, ``[B, L, n, d]`` or None."""
    if kind == "none":
        return None
    gen = torch.Generator().manual_seed(seed)
    p = torch.randn((batch, *bb.prompt_shape(N_PROMPT, kind)), generator=gen)
    return p.requires_grad_(requires_grad)


def _kind(prompt_kind: str) -> str:
    return "shallow" if prompt_kind == "none" else prompt_kind


# ------------------------------------------------------------------------------------ shapes, masks


@pytest.mark.parametrize("prompt_kind", PROMPTS)
def test_logits_shape_and_inf_exactly_where_a_task_lacks_a_label(tiny_backbone, two_tasks, prompt_kind):
    examples, task_ids = _batch(two_tasks)
    enc = tiny_backbone.collate(examples)
    table = tiny_backbone.label_table(two_tasks)
    scores = tiny_backbone.logits(enc, task_ids, table, _prompt(tiny_backbone, prompt_kind, 4), _kind(prompt_kind))
    assert scores.shape == (4, 3)
    expected_missing = torch.tensor([[False, False, t == 0] for t in task_ids.tolist()])
    assert torch.equal(torch.isneginf(scores), expected_missing)
    assert torch.isfinite(scores[~expected_missing]).all()


def test_prompt_shape_describes_one_run(tiny_backbone):
    assert tiny_backbone.hidden_size == TINY_HIDDEN
    assert tiny_backbone.num_layers == TINY_LAYERS
    assert tiny_backbone.prompt_shape(5, "shallow") == (5, TINY_HIDDEN)
    assert tiny_backbone.prompt_shape(5, "deep") == (TINY_LAYERS, 5, TINY_HIDDEN)
    with pytest.raises(BackboneError):
        tiny_backbone.prompt_shape(5, "sideways")


@pytest.mark.parametrize("prompt_kind", ["shallow", "deep"])
def test_a_prompt_changes_the_scores(tiny_backbone, two_tasks, prompt_kind):
    examples, task_ids = _batch(two_tasks)
    enc = tiny_backbone.collate(examples)
    table = tiny_backbone.label_table(two_tasks)
    with torch.no_grad():
        plain = tiny_backbone.logits(enc, task_ids, table)
        a = tiny_backbone.logits(enc, task_ids, table, _prompt(tiny_backbone, prompt_kind, 4, seed=1), prompt_kind)
        b = tiny_backbone.logits(enc, task_ids, table, _prompt(tiny_backbone, prompt_kind, 4, seed=2), prompt_kind)
    finite = torch.isfinite(plain)
    assert (a[finite] - plain[finite]).abs().max() > 1e-4
    assert (a[finite] - b[finite]).abs().max() > 1e-4


# ------------------------------------------------------------------------------------ padding


@pytest.mark.parametrize("prompt_kind", PROMPTS)
def test_a_rows_scores_do_not_depend_on_the_rest_of_the_batch(tiny_backbone, two_tasks, prompt_kind):
    examples, task_ids = _batch(two_tasks)
    enc = tiny_backbone.collate(examples)
    assert (enc.attention_mask == 0).any(), "the batch must be padded for this test to mean anything"
    table = tiny_backbone.label_table(two_tasks)
    kind = _kind(prompt_kind)
    prompt = _prompt(tiny_backbone, prompt_kind, 4)
    with torch.no_grad():
        together = tiny_backbone.logits(enc, task_ids, table, prompt, kind)
        for i, ex in enumerate(examples):
            alone_enc = tiny_backbone.collate([ex])
            alone = tiny_backbone.logits(
                alone_enc, task_ids[i : i + 1], table, None if prompt is None else prompt[i : i + 1], kind
            )
            torch.testing.assert_close(alone[0], together[i], atol=1e-5, rtol=0)


# ------------------------------------------------------------------------------------ gradients


@pytest.mark.parametrize("prompt_kind", ["shallow", "deep"])
def test_gradients_reach_the_prompt_and_no_backbone_parameter(tiny_backbone, two_tasks, prompt_kind):
    examples, task_ids = _batch(two_tasks)
    enc = tiny_backbone.collate(examples)
    table = tiny_backbone.label_table(two_tasks)
    prompt = _prompt(tiny_backbone, prompt_kind, 4, requires_grad=True)
    scores = tiny_backbone.logits(enc, task_ids, table, prompt, prompt_kind)
    # the loss of row 0 only: its gradient must stay in row 0's prompt
    loss = F.cross_entropy(scores[:1], torch.tensor([1]))
    loss.backward()
    grad = prompt.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad[0].abs().sum() > 0
    assert torch.count_nonzero(grad[1:]) == 0
    if prompt_kind == "deep":
        per_layer = grad[0].abs().sum(dim=(1, 2))
        assert (per_layer > 0).all(), f"every layer's prompt must get a gradient, got {per_layer}"
    params = list(tiny_backbone.parameters())
    assert params and not any(p.requires_grad for p in params)
    assert all(p.grad is None for p in params)


# ------------------------------------------------------------------------------------ deep prompts


def test_deep_prompt_replaces_the_prompt_positions_at_every_layers_input(tiny_backbone, two_tasks):
    examples, task_ids = _batch(two_tasks)
    enc = tiny_backbone.collate(examples)
    table = tiny_backbone.label_table(two_tasks)
    prompt = _prompt(tiny_backbone, "deep", 4, seed=3)
    before: dict[int, torch.Tensor] = {}
    after: dict[int, torch.Tensor] = {}

    def capture(store, i):
        def hook(module, args, kwargs):
            store[i] = (args[0] if args else kwargs["hidden_states"]).detach().clone()

        return hook

    handles = []
    for i, layer in enumerate(tiny_backbone.layers()):
        handles.append(layer.register_forward_pre_hook(capture(before, i), with_kwargs=True, prepend=True))
        handles.append(layer.register_forward_pre_hook(capture(after, i), with_kwargs=True))
    try:
        with torch.no_grad():
            tiny_backbone.logits(enc, task_ids, table, prompt, "deep")
    finally:
        for h in handles:
            h.remove()
    assert sorted(after) == list(range(TINY_LAYERS))
    for i in range(TINY_LAYERS):
        rows = after[i].shape[0]  # causal models run every (row, label) pair: B * Lmax rows
        expected = prompt[:, i].repeat_interleave(rows // 4, 0)
        torch.testing.assert_close(after[i][:, :N_PROMPT], expected, atol=0, rtol=0)
        torch.testing.assert_close(after[i][:, N_PROMPT:], before[i][:, N_PROMPT:], atol=0, rtol=0)
        if i > 0:  # at layer 0 the placeholder may already be the prompt (Llama adds nothing to embeddings)
            assert not torch.equal(before[i][:, :N_PROMPT], after[i][:, :N_PROMPT])
    # and nothing stays injected after the call
    assert tiny_backbone.injector.prompt is None


def test_injector_restores_an_outer_prompt_after_a_nested_forward(tiny_encoder_sim, tiny_task):
    prompt = _prompt(tiny_encoder_sim, "deep", 1)
    with tiny_encoder_sim.injector.run(prompt):
        tiny_encoder_sim.label_table([tiny_task("nested", 3)])  # runs unprompted forwards inside
        assert tiny_encoder_sim.injector.prompt is prompt
    assert tiny_encoder_sim.injector.prompt is None


def test_a_forward_in_another_thread_does_not_disturb_a_deep_prompted_one(tiny_encoder_sim, two_tasks):
    # the app shares one cached backbone between sessions, which run in threads: thread A stops at
    # layer 1's input mid-forward while the main thread runs a whole unprompted forward
    examples, task_ids = _batch(two_tasks)
    enc = tiny_encoder_sim.collate(examples)
    table = tiny_encoder_sim.label_table(two_tasks)
    prompt = _prompt(tiny_encoder_sim, "deep", 4)
    with torch.no_grad():
        reference = tiny_encoder_sim.logits(enc, task_ids, table, prompt, "deep")
        plain_reference = tiny_encoder_sim.logits(enc, task_ids, table)
    at_layer_1, release = threading.Event(), threading.Event()
    result = {}

    def pause(module, args, kwargs):
        if threading.current_thread().name == "A":
            at_layer_1.set()
            release.wait(30)

    def thread_a():
        with torch.no_grad():
            result["a"] = tiny_encoder_sim.logits(enc, task_ids, table, prompt, "deep")

    handle = tiny_encoder_sim.layers()[1].register_forward_pre_hook(pause, with_kwargs=True, prepend=True)
    a = threading.Thread(target=thread_a, name="A")
    try:
        a.start()
        assert at_layer_1.wait(30)
        with torch.no_grad():
            plain = tiny_encoder_sim.logits(enc, task_ids, table)
    finally:
        release.set()
        a.join()
        handle.remove()
    torch.testing.assert_close(plain, plain_reference)
    torch.testing.assert_close(result["a"], reference)


@pytest.mark.parametrize("prompt_kind", PROMPTS)
def test_features_are_unit_vectors_per_row(tiny_backbone, two_tasks, prompt_kind):
    examples, _ = _batch(two_tasks)
    with torch.no_grad():
        feats = tiny_backbone.features(tiny_backbone.collate(examples), _prompt(tiny_backbone, prompt_kind, 4),
                                       _kind(prompt_kind))
    assert feats.shape == (4, TINY_HIDDEN)
    torch.testing.assert_close(feats.norm(dim=-1), torch.ones(4))


def test_layer_inputs_and_deep_vocab_init_work_for_every_kind(tiny_backbone):
    ids = torch.tensor([2000, 2001, 2002, 2003])
    h = tiny_backbone.layer_inputs(ids)
    assert h.shape == (TINY_LAYERS, 4, TINY_HIDDEN)
    assert torch.isfinite(h).all()
    deep = init_prompt(tiny_backbone, 4, "deep", "vocab", seed=0)
    assert deep.shape == (TINY_LAYERS, 4, TINY_HIDDEN)
    assert init_prompt(tiny_backbone, 4, "shallow", "vocab", seed=0).shape == (4, TINY_HIDDEN)


def test_layer_inputs_start_at_the_embedding_output(tiny_encoder_sim):
    ids = torch.tensor([2000, 2001, 2002])
    with torch.no_grad():
        emb = tiny_encoder_sim.model.embeddings(input_ids=ids[None])[0]
    torch.testing.assert_close(tiny_encoder_sim.layer_inputs(ids)[0], emb)


# ------------------------------------------------------------------------------------ shape errors


def test_wrong_prompt_shapes_raise_backbone_error(tiny_backbone, two_tasks):
    examples, task_ids = _batch(two_tasks)
    enc = tiny_backbone.collate(examples)
    table = tiny_backbone.label_table(two_tasks)
    B, L, n, d = 4, TINY_LAYERS, N_PROMPT, TINY_HIDDEN
    bad = [
        ("shallow", (B, n)),
        ("shallow", (B + 1, n, d)),
        ("shallow", (B, n, d + 1)),
        ("shallow", (B, L, n, d)),
        ("deep", (B, n, d)),
        ("deep", (B - 1, L, n, d)),
        ("deep", (B, L + 1, n, d)),
        ("deep", (B, L, n, d - 1)),
    ]
    for kind, shape in bad:
        with pytest.raises(BackboneError):
            tiny_backbone.logits(enc, task_ids, table, torch.zeros(shape), kind)


# ------------------------------------------------------------------------------------ identity


def test_identity_and_weights_hash_are_stable_and_follow_the_weights(make_tiny_backbone):
    for name in ("encoder_sim", "gpt2"):
        a, a2 = make_tiny_backbone(name, seed=0), make_tiny_backbone(name, seed=0)
        h = a.weights_hash()
        assert len(h) == 64 and int(h, 16) >= 0
        assert a.weights_hash() == h == a2.weights_hash()
        assert a.identity() == a2.identity()
        assert a.identity()["spec"] == a.spec and a.identity()["kind"] == a.spec.split(":")[0]
        assert make_tiny_backbone(name, seed=1).weights_hash() != h
        changed = make_tiny_backbone(name, seed=0)
        with torch.no_grad():
            next(changed.model.parameters()).view(-1)[0] += 1e-3
        assert changed.weights_hash() != h
        assert changed.identity() != a.identity()


def test_from_model_accepts_a_bare_kind_and_rejects_unknown_kinds(tokenizer):
    import transformers as tf

    cfg = tf.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    bb = from_model("encoder-mlm", tf.BertForMaskedLM(cfg), tokenizer)
    assert bb.kind == "encoder-mlm" and bb.spec == "encoder-mlm"
    for spec in ("decoder-only:x", "tiny", ""):
        with pytest.raises(BackboneError):
            from_model(spec, tf.BertModel(cfg), tokenizer)


# ------------------------------------------------------------------------------------ labels


@pytest.mark.parametrize("name", GENERATIVE)
def test_label_token_ids_of_generative_kinds(make_tiny_backbone, tokenizer, two_tasks, name):
    bb = make_tiny_backbone(name)
    table = bb.label_table(two_tasks)
    assert table.task_names == ["two", "three"]
    assert torch.equal(table.mask.cpu(), torch.tensor([[True, True, False], [True, True, True]]))
    prefix = " " if bb.kind == "causal" else ""
    for t, task in enumerate(two_tasks):
        assert len(table.token_ids[t]) == len(task.labels)
        for j, label in enumerate(task.labels):
            assert table.token_ids[t][j] == tokenizer(prefix + label, add_special_tokens=False)["input_ids"]
    assert len(table.token_ids[1][2]) == 2  # "blue sky"
    assert bb.label_table(two_tasks) is not None  # cached second call


def test_label_embeddings_of_encoder_sim(tiny_encoder_sim, two_tasks):
    table = tiny_encoder_sim.label_table(two_tasks)
    assert table.embeddings.shape == (2, 3, TINY_HIDDEN)
    norms = table.embeddings.norm(dim=-1)
    torch.testing.assert_close(norms[table.mask], torch.ones(5))
    assert torch.count_nonzero(table.embeddings[0, 2]) == 0


def _direct_scores(bb: Backbone, ex: Example, labels: tuple[str, ...]) -> torch.Tensor:
    """Each label's score computed straight from the Hugging Face model, one unpadded sequence at a time."""
    tok, model = bb.tokenizer, bb.model
    ids = torch.tensor([bb.token_ids(ex)])
    out = []
    with torch.no_grad():
        if bb.kind == "encoder-sim":
            def pooled(x):
                return F.normalize(model(input_ids=x).last_hidden_state.mean(1)[0], dim=-1)

            q = pooled(ids)
            for lab in labels:
                out.append(q @ pooled(torch.tensor([tok(lab)["input_ids"]])) / bb.temperature)
        elif bb.kind == "encoder-mlm":
            logits = model(input_ids=ids).logits[0]
            pos = (ids[0] == tok.mask_token_id).nonzero()[-1, 0]
            logp = logits[pos].log_softmax(-1)
            for lab in labels:
                out.append(logp[tok(lab, add_special_tokens=False)["input_ids"]].mean())
        elif bb.kind == "seq2seq":
            for lab in labels:
                target = torch.tensor([tok(lab, add_special_tokens=False)["input_ids"]])
                logits = model(input_ids=ids, labels=target).logits[0]
                out.append(logits.log_softmax(-1).gather(-1, target[0][:, None]).mean())
        else:
            for lab in labels:
                target = tok(" " + lab, add_special_tokens=False)["input_ids"]
                full = torch.cat([ids[0], torch.tensor(target)])[None]
                logp = model(input_ids=full).logits[0].log_softmax(-1)
                start = ids.shape[1]
                out.append(torch.stack([logp[start + k - 1, t] for k, t in enumerate(target)]).mean())
    return torch.stack(out)


def test_label_scores_match_a_direct_computation(tiny_backbone, two_tasks):
    examples, task_ids = _batch(two_tasks)
    table = tiny_backbone.label_table(two_tasks)
    with torch.no_grad():
        scores = tiny_backbone.logits(tiny_backbone.collate(examples), task_ids, table)
    for i, ex in enumerate(examples):
        labels = two_tasks[int(task_ids[i])].labels
        torch.testing.assert_close(scores[i, : len(labels)], _direct_scores(tiny_backbone, ex, labels),
                                   atol=1e-4, rtol=1e-4)


# ------------------------------------------------------------------------------------ pair inputs


@pytest.mark.parametrize("name", ["encoder_sim", "bert_mlm"])
def test_pair_inputs_get_token_type_ids_where_the_model_uses_them(make_tiny_backbone, tokenizer, tiny_task, name):
    bb = make_tiny_backbone(name)
    pair = tiny_task("pairs", 2, pair=True)
    single = tiny_task("single", 2)
    examples = [pair.train[0], single.train[0], pair.train[1]]
    enc = bb.collate(examples)
    assert enc.token_type_ids is not None and enc.token_type_ids.shape == enc.input_ids.shape
    sep = tokenizer.sep_token_id
    for i, ex in enumerate(examples):
        ids = enc.input_ids[i][enc.attention_mask[i].bool()].tolist()
        tti = enc.token_type_ids[i][enc.attention_mask[i].bool()].tolist()
        if ex.text_pair is None:
            assert set(tti) == {0}
        else:
            first_sep = ids.index(sep)
            assert tti == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
            if name == "encoder_sim":  # the same segments as the tokenizer's own
                assert tti == tokenizer(ex.text, ex.text_pair)["token_type_ids"]
    # the segment ids reach the model: zeroing them changes a pair row's scores, not a single row's
    table = bb.label_table([pair, single])
    task_ids = torch.tensor([0, 1, 0])
    flat = Encoded(enc.input_ids, enc.attention_mask, torch.zeros_like(enc.token_type_ids))
    with torch.no_grad():
        a, b = bb.logits(enc, task_ids, table), bb.logits(flat, task_ids, table)
    assert (a[0] - b[0]).abs().max() > 1e-5
    torch.testing.assert_close(a[1], b[1])


def test_a_shallow_prompt_takes_segment_zero(tiny_encoder_sim, tiny_task):
    pair = tiny_task("pairs", 2, pair=True)
    enc = tiny_encoder_sim.collate(pair.train[:2])
    seen = []
    emb = tiny_encoder_sim.model.embeddings.token_type_embeddings
    handle = emb.register_forward_pre_hook(lambda m, args: seen.append(args[0].clone()))
    try:
        with torch.no_grad():
            tiny_encoder_sim.logits(enc, torch.zeros(2, dtype=torch.long), tiny_encoder_sim.label_table([pair]),
                                    _prompt(tiny_encoder_sim, "shallow", 2), "shallow")
    finally:
        handle.remove()
    tti = seen[-1]
    assert tti.shape == (2, N_PROMPT + enc.input_ids.shape[1])
    assert torch.count_nonzero(tti[:, :N_PROMPT]) == 0
    assert torch.equal(tti[:, N_PROMPT:], enc.token_type_ids)


@pytest.mark.parametrize("name", ["t5", "bart", "gpt2", "llama"])
def test_pair_inputs_without_token_types(make_tiny_backbone, tiny_task, name):
    bb = make_tiny_backbone(name)
    pair = tiny_task("pairs", 2, pair=True)
    enc = bb.collate(pair.train[:2])
    assert enc.token_type_ids is None
    with torch.no_grad():
        scores = bb.logits(enc, torch.zeros(2, dtype=torch.long), bb.label_table([pair]))
    assert torch.isfinite(scores).all()


def test_mlm_mask_is_appended_and_survives_truncation(tiny_bert_mlm, tokenizer, tiny_task):
    mask, sep = tokenizer.mask_token_id, tokenizer.sep_token_id
    short = tiny_bert_mlm.token_ids(Example("a fine film", 1))
    assert short[-2:] == [mask, sep] and short.count(sep) == 1
    assert short[:-2] == tokenizer("a fine film")["input_ids"][:-1]
    long = tiny_bert_mlm.token_ids(Example(" ".join(["film"] * 200), 1))
    assert len(long) == tiny_bert_mlm.max_length and long[-2:] == [mask, sep]
    # a literal [MASK] in the text is not the scored position: the appended one is
    tricky = Example("the [MASK] was great", 0)
    labels = ("positive", "negative")
    enc = tiny_bert_mlm.collate([tricky])
    assert (enc.input_ids == mask).sum() == 2
    task = tiny_task("t", 2)
    with torch.no_grad():
        got = tiny_bert_mlm.logits(enc, torch.zeros(1, dtype=torch.long), tiny_bert_mlm.label_table([task]))[0]
    torch.testing.assert_close(got, _direct_scores(tiny_bert_mlm, tricky, labels), atol=1e-4, rtol=1e-4)


def test_collate_rejects_an_empty_batch(tiny_encoder_sim):
    with pytest.raises(BackboneError):
        tiny_encoder_sim.collate([])


# ------------------------------------------------------------------------------------ the packaged model


@pytest.mark.integration
def test_packaged_model_loads_offline(real_backbone):
    assert real_backbone.kind == "encoder-sim"
    assert real_backbone.hidden_size == 384 and real_backbone.num_layers == 6
    assert not any(p.requires_grad for p in real_backbone.parameters())
    assert len(real_backbone.weights_hash()) == 64


@pytest.mark.integration
def test_packaged_model_zero_shot_scores_are_finite(real_backbone, tiny_task):
    tasks = [tiny_task("two", 2), tiny_task("three", 3)]
    examples, task_ids = _batch(tasks)
    with torch.no_grad():
        scores = real_backbone.logits(real_backbone.collate(examples), task_ids, real_backbone.label_table(tasks))
    assert scores.shape == (4, 3)
    assert torch.isfinite(scores[task_ids == 1]).all()
    assert torch.isfinite(scores[task_ids == 0, :2]).all() and torch.isneginf(scores[task_ids == 0, 2]).all()


@pytest.mark.integration
@pytest.mark.parametrize("kind", ["shallow", "deep"])
def test_packaged_model_vocab_prompts_have_the_right_shape(real_backbone, tiny_task, kind):
    p = init_prompt(real_backbone, 4, kind, "vocab", seed=0)
    assert p.shape == ((4, 384) if kind == "shallow" else (6, 4, 384))
    assert torch.isfinite(p).all()
    task = tiny_task("two", 2)
    enc = real_backbone.collate(task.train[:2])
    with torch.no_grad():
        scores = real_backbone.logits(enc, torch.zeros(2, dtype=torch.long), real_backbone.label_table([task]),
                                      p.expand(2, *p.shape), kind)
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize("name", ["encoder_sim", "bert_mlm"])
def test_zero_shot_from_shared_features_equals_the_logits_path(make_tiny_backbone, tiny_task, name):
    """Zero-shot scores from the cached unprompted features (encoder-sim) or from logits (the others)
    give the predictions of ``evaluate_rows``; the probe then reads the same feature rows."""
    from ipt_core.analysis.metrics import accuracy
    from ipt_core.experiments import baselines
    from ipt_core.train.loop.evaluation import evaluate_rows

    bb = make_tiny_backbone(name)
    task = tiny_task("three", 3)
    got = baselines.zero_shot(bb, task, device="cpu")
    for split in ("dev", "test"):
        rows = [(0, 0, ex) for ex in task.split(split)]
        pred, _ = evaluate_rows(bb, None, rows, {task.name: 0}, bb.label_table([task]), device=torch.device("cpu"))
        assert got[f"{split}_acc"] == accuracy(pred, [ex.label for ex in task.split(split)])
    assert (bb.logits_from_features(torch.zeros(1, bb.hidden_size), torch.zeros(1, dtype=torch.long),
                                    bb.label_table([task])) is None) == (name != "encoder_sim")
    calls = []
    original = bb.features
    bb.features = lambda *a, **k: calls.append(1) or original(*a, **k)
    feats = baselines.frozen_features(bb, list(task.test), device="cpu")
    again = baselines.frozen_features(bb, list(task.test)[::-1], device="cpu")
    assert np.allclose(feats[::-1], again) and len(calls) <= (0 if name == "encoder_sim" else 1)
