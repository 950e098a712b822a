"""Which source prompt will help a target? The similarity measures of the transfer literature, in one registry.

Every measure is a function of the inputs below that returns a square matrix ``M[target, source]``
over the tasks it covers (a measure may be asymmetric), or None where its inputs are missing (no
task map: no intrinsic space). Adding a measure is one decorated function::

    @measure("my_measure", "short label", "one sentence for the page")
    def _my_measure(inputs: MeasureInputs):
        return matrix, task_names

The measures (Vu et al. 2022 "SPoT"; Su et al. 2022 "On transferability of prompt tuning"; Lin et
al. 2024 on intermediate-task selection):

- ``prompt``: cosine of the two flattened prompts, per-layer normalised and centred on the mean
  task (``map_quality.prepare``; the plain cosine of deep prompts is ~1 for every pair). SPoT's
  measure, made unsaturated.
- ``prompt_tokens``: token-level max-pairwise cosine: for every token of the target's prompt, its
  highest cosine with any token of the source's prompt, averaged over the target's tokens (and over
  layers of a deep prompt); tokens centred on their layer's mean token over all tasks and positions
  (what every prompt's tokens share at a layer; a per-position mean would break the measure's
  indifference to the order of the source's tokens).
  Our reading of Lin et al.'s "max-pairwise" similarity (MaxSim, as in ColBERT); asymmetric.
- ``activation_overlap`` (ON): cosine of the two prompts' binary activation states of the frozen
  model's feed-forward neurons (``ipt_core.backbones.activations``): shared active neurons over the
  geometric mean of each prompt's active count. A prompt with itself: 1. Su et al.'s best predictor.
- ``intrinsic`` / ``ist``: centred cosine in the suite's intrinsic space (the MSF projection of the
  prompts; the IST solutions), where a task map exists.
- ``text`` / ``zero_shot_profile``: model-only baselines (mean frozen embedding of the inputs; the
  zero-shot scores of every label), centred cosine: what one knows without tuning a prompt.

Pure numpy; no store, no model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ipt_core.analysis.map_quality import similarity

__all__ = ["MeasureInputs", "Measure", "MEASURES", "measure", "similarity_matrices", "token_max_pairwise",
           "activation_overlap"]


@dataclass(frozen=True)
class MeasureInputs:
    """What the measures read. ``prompts``: ``[N, n, d]`` (shallow) or ``[N, L, n, d]`` (deep) of
    ``prompt_tasks``; ``activations``: ``[N, ...]`` booleans of the same tasks; ``vectors``: name ->
    ``(vectors [M, D], task names)`` of the other spaces (intrinsic, ist, text, zero_shot_profile)."""

    prompts: np.ndarray | None = None
    prompt_tasks: list[str] = field(default_factory=list)
    activations: np.ndarray | None = None
    vectors: dict[str, tuple[np.ndarray, list[str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Measure:
    name: str
    label: str
    description: str
    compute: Callable[[MeasureInputs], "tuple[np.ndarray, list[str]] | None"]


MEASURES: dict[str, Measure] = {}


def measure(name: str, label: str, description: str):
    """Register ``fn(inputs) -> (matrix [N, N] indexed [target, source], task names) | None``."""
    def register(fn):
        if name in MEASURES:
            raise ValueError(f"measure {name!r} registered twice")
        MEASURES[name] = Measure(name, label, description, fn)
        return fn
    return register


def token_max_pairwise(prompts: np.ndarray) -> np.ndarray:
    """``[N, N]`` with ``[t, s]`` = mean over layers and over the tokens ``i`` of prompt ``t`` of
    ``max_j cos(t_i, s_j)``, tokens centred on the mean token of their layer (over prompts and positions).

    Example:
        >>> a = np.array([[1., 0.], [0., 1.]])                # two tokens; with -a and the swapped ones
        >>> token_max_pairwise(np.stack([a, a[::-1], -a, -a[::-1]])).round(2).tolist()[0]   # mean 0: no shift
        [1.0, 1.0, 0.0, 0.0]
    """
    x = np.asarray(prompts, dtype=np.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"prompts must be [N, n, d] or [N, L, n, d], got shape {x.shape}")
    x = x - x.mean(axis=(0, 2), keepdims=True)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 1e-12)
    # cos[t, s, l, i, j] for every pair of prompts, layer, target token i and source token j
    cos = np.einsum("tlid,sljd->tslij", unit, unit)
    return cos.max(axis=-1).mean(axis=(-1, -2))


def activation_overlap(states: np.ndarray) -> np.ndarray:
    """``[N, N]`` cosine of binary activation states: ``|a & b| / sqrt(|a| |b|)`` (0 where one has none).

    Example:
        >>> activation_overlap(np.array([[1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)).tolist()
        [[1.0, 0.5], [0.5, 1.0]]
    """
    a = np.asarray(states, dtype=bool).reshape(len(states), -1).astype(np.float64)
    both = a @ a.T
    count = np.sqrt(np.outer(a.sum(1), a.sum(1)))
    return np.divide(both, count, out=np.zeros_like(both), where=count > 0)


def _flat(prompts: np.ndarray) -> np.ndarray:
    return np.asarray(prompts, dtype=np.float64).reshape(len(prompts), -1)


@measure("prompt", "raw prompt (cosine)",
         "cosine of the two prompts (every layer weighed alike, centred on the mean task): SPoT's measure")
def _prompt(inputs: MeasureInputs):
    if inputs.prompts is None:
        return None
    p = np.asarray(inputs.prompts)
    return similarity(_flat(p), layers=int(p.shape[1]) if p.ndim == 4 else None), list(inputs.prompt_tasks)


@measure("prompt_tokens", "prompt tokens (max-pairwise)",
         "for each token of the target's prompt, its best cosine with any token of the source's prompt, "
         "averaged (Lin et al. 2024's max-pairwise token similarity)")
def _prompt_tokens(inputs: MeasureInputs):
    if inputs.prompts is None:
        return None
    return token_max_pairwise(inputs.prompts), list(inputs.prompt_tasks)


@measure("activation_overlap", "activated neurons (ON)",
         "overlap of the frozen model's feed-forward neurons each prompt switches on (Su et al. 2022's ON)")
def _activation_overlap(inputs: MeasureInputs):
    if inputs.activations is None:
        return None
    return activation_overlap(inputs.activations), list(inputs.prompt_tasks)


def _space(name: str):
    def compute(inputs: MeasureInputs):
        if name not in inputs.vectors or len(inputs.vectors[name][1]) < 2:
            return None
        x, names = inputs.vectors[name]
        return similarity(np.asarray(x, dtype=np.float64)), list(names)
    return compute


for _name, _label, _text in (
        ("intrinsic", "intrinsic (Proj)", "cosine in the suite's intrinsic space: the prompts projected by its MSF"),
        ("ist", "intrinsic (IST)", "cosine of the tasks' intrinsic vectors found by tuning inside the subspace (IST)"),
        ("text", "text baseline", "cosine of the mean frozen embeddings of the two tasks' inputs (no prompt needed)"),
        ("zero_shot_profile", "zero-shot profile",
         "cosine of the frozen model's zero-shot scores of every label on the two tasks (no prompt needed)")):
    measure(_name, _label, _text)(_space(_name))


def similarity_matrices(inputs: MeasureInputs, names: list[str] | None = None) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Every registered measure (or those of ``names``) whose inputs are present: name -> (matrix, tasks)."""
    out = {}
    for name, m in MEASURES.items():
        if names is not None and name not in names:
            continue
        got = m.compute(inputs)
        if got is not None and len(got[1]) >= 2:
            out[name] = got
    return out
