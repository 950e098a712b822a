"""transfer_measures: the registry of (target, source) similarity measures, ON from the frozen model's
feed-forward activations, and the token-level max-pairwise cosine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from ipt_core.analysis import transfer_measures as tm
from ipt_core.backbones.activations import ffn_activation_states


@pytest.mark.parametrize("name", ["encoder_sim", "t5", "bart", "gpt2", "llama"])
@pytest.mark.parametrize("kind", ["shallow", "deep"])
def test_activation_overlap_of_a_prompt_with_itself_is_one(make_tiny_backbone, name, kind):
    bb = make_tiny_backbone(name)
    g = torch.Generator().manual_seed(0)
    shape = bb.prompt_shape(4, kind)
    p, q = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    states = ffn_activation_states(bb, torch.stack([p, p, q]), kind)
    assert states.dtype == torch.bool and states.shape[:3] == (3, bb.num_layers, 4)
    assert 0 < states.float().mean() < 1  # some neurons on, some off
    on = tm.activation_overlap(states.flatten(1).numpy())
    assert on[0, 1] == pytest.approx(1.0) and on[0, 0] == pytest.approx(1.0)
    assert 0 < on[0, 2] < 1  # another prompt shares some active neurons, not all
    # the states are the prompt's: the backbone is left as it was (frozen, no hooks)
    again = ffn_activation_states(bb, torch.stack([q]), kind)
    assert torch.equal(again[0], states[2])


def test_token_max_pairwise_finds_a_token_anywhere_in_the_other_prompt():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 2, 4, 16))  # 5 tasks, 2 layers, 4 tokens
    shuffled = base[0][:, ::-1]  # task 0's tokens in the reverse order
    x = np.concatenate([base, shuffled[None]])
    m = tm.token_max_pairwise(x)
    assert m.shape == (6, 6)
    assert np.allclose(np.diag(m), 1.0) and m[0, 5] == pytest.approx(1.0) and m[5, 0] == pytest.approx(1.0)
    assert (m[0, 1:5] < 0.99).all()
    # whereas the flattened prompts' cosine sees the reordered prompt as another one
    flat = tm.MEASURES["prompt"].compute(tm.MeasureInputs(prompts=x, prompt_tasks=list("abcdef")))[0]
    assert flat[0, 5] < 0.9


def test_registry_one_function_adds_a_measure(monkeypatch):
    monkeypatch.setattr(tm, "MEASURES", dict(tm.MEASURES))

    @tm.measure("negated_text", "minus text", "the text baseline reversed (a test)")
    def _neg(inputs):
        x, names = inputs.vectors["text"]
        return -np.asarray(x) @ np.asarray(x).T, names

    vec = np.eye(3)
    mats = tm.similarity_matrices(tm.MeasureInputs(vectors={"text": (vec, ["a", "b", "c"])}))
    assert set(mats) == {"text", "negated_text"}  # no prompts: the prompt measures are absent, not errors
    assert mats["negated_text"][0][0, 0] == -1.0
    with pytest.raises(ValueError, match="twice"):
        tm.measure("text", "again", "")(_neg)
