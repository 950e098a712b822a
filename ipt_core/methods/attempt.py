"""ATTEMPT (Asai et al., EMNLP 2022): an attentional mixture of frozen source prompts and a new target prompt.

Per row: ``x`` = max-pool of the input embeddings over the row's real tokens; ``h = LayerNorm(W_up
SiLU(W_down x))``; scores ``s_j = maxpool(P_j) . h / T`` for every source prompt ``P_j`` the run may
use and for the target prompt; ``a = softmax(s)``; prompt = ``P_target + sum_j a_j P_j`` (the sum
runs over the sources *and* the target, as in the paper). Only the target prompt(s) and the
attention module train; the source prompts (PT prompts of other tasks, from the store) are frozen.

Runs of a bank are independent: each run has its own target prompt(s) and attention module, and
may attend to its own subset of the shared source prompts (``allowed``). A run with several tasks
is the paper's *multi-task* variant: one target prompt per task and ONE attention module shared
by its tasks.

Where the official code (github.com/AkariAsai/ATTEMPT) differs from the paper, what we chose:

- **Padding in the max-pool.** The official code max-pools the padded input embeddings, so a row's
  attention depends on how long the *other* rows of its batch are. We pool over real tokens only
  (default), so a row's prompt is a function of the row alone: a run gives the same result in a
  bank as alone, and scores do not depend on the evaluation batch size. ``pool_padding=True``
  reproduces the official behaviour.
- **The LayerNorm.** The paper's module is ``LayerNorm(W_up SiLU(W_down x))``, all of it trained;
  the official optimiser never receives the LayerNorm's parameters, so its gain and bias stay 1
  and 0. We train it (default, 2d numbers per run); ``train_layernorm=False`` reproduces the
  official code (a plain normalisation without affine parameters).
- **A separate learning rate for the attention module.** The official code configures one but it
  never reaches the optimiser, so everything trained at the prompt learning rate. We do the same
  by default (``attn_lr_scale=1``). The bank gives every run ONE Adam group, so a different rate is
  obtained by reparametrisation: ``W = attn_lr_scale * W'`` with ``W'`` trained; Adam's step is
  invariant to the gradient's scale, so ``W`` moves ``attn_lr_scale`` times faster.
- **The temperature.** The paper's ``d * e`` (the official code hard-codes a number close to it for
  T5-base) makes the attention uniform on MiniLM, whose embeddings are small: after 150 steps on
  real tasks every weight was 0.060-0.064 of 16 (uniform: 0.0625), so the heatmap carried no
  signal. The default here is :data:`ipt_core.config.attempt.DEFAULT_TEMPERATURE`, chosen on the demo's dev splits (see
  the README and ``bench/attempt_vip_defaults.py``); ``temperature=None`` is the paper's ``d * e``.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ipt_core.backbones import Backbone, Encoded
from ipt_core.config.attempt import AttemptConfig
from ipt_core.methods.base import BankMethod

CODE_VERSION = "attempt-1"




def masked_max_pool(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Max over the sequence axis of ``x`` (``[B, S, d]``) where ``mask`` (``[B, S]``) is set: ``[B, d]``.

    ``mask`` None pools every position (padding included, as the official code does).

    Example::

        masked_max_pool(torch.tensor([[[1.0], [5.0]]]), torch.tensor([[1, 0]]))   # tensor([[1.]])
    """
    if mask is None:
        return x.max(dim=1).values
    return x.masked_fill(~mask.bool().unsqueeze(-1), float("-inf")).max(dim=1).values


def _linear_init(shape: tuple[int, int], gen: torch.Generator) -> torch.Tensor:
    """``nn.Linear``'s default init (uniform in +-1/sqrt(fan_in)) from an explicit generator."""
    bound = 1.0 / math.sqrt(shape[1])
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class Attempt(BankMethod):
    """ATTEMPT as a bank method: run ``r`` trains its target prompt(s) and its attention module.

    ``sources``: ``[S, n, d]`` frozen source prompts. ``targets[r]``: run ``r``'s initial target
    prompts (``[n, d]`` each), one per task of the run, for the bank task indices ``run_tasks[r]``
    (the indices of the bank's ``tasks`` list). ``allowed``: ``[R, S]`` bool, which sources run ``r``
    attends to (default all; a task is normally not its own source). ``seeds[r]`` seeds run ``r``'s
    attention module.

    Example::

        m = Attempt(bb, sources, targets=[[p0], [p1]], run_tasks=[[0], [1]], seeds=[0, 0], cfg=AttemptConfig())
        m.prompts(run_ids, task_ids, enc).shape    # [B, 8, 384]
        m.attention(run_ids, task_ids, enc).shape  # [B, S + 1]: sources, then the target's own weight
    """

    name = "attempt"
    # a row's prompt depends on the parameters and the row alone: torchrun may train it data-parallel
    row_parallel = True
    prompt_kind = "shallow"

    def __init__(
        self,
        backbone: Backbone,
        sources: torch.Tensor,
        targets: Sequence[Sequence[torch.Tensor]],
        run_tasks: Sequence[Sequence[int]],
        seeds: Sequence[int],
        cfg: AttemptConfig = AttemptConfig(),
        allowed: torch.Tensor | None = None,
    ):
        super().__init__()
        R = len(targets)
        if not (R == len(run_tasks) == len(seeds)) or R == 0:
            raise ValueError("targets, run_tasks and seeds need one entry per run (at least one run)")
        if sources.dim() != 3 or sources.shape[0] < 1:
            raise ValueError(f"sources must be [S, n, d] with S >= 1, got {tuple(sources.shape)}")
        S, n, d = sources.shape
        if d != backbone.hidden_size:
            raise ValueError(f"source prompts have d = {d}, the backbone {backbone.hidden_size}")
        self.cfg = cfg
        self.temperature = cfg.temperature if cfg.temperature is not None else d * math.e
        # a plain tuple, not a submodule: the frozen embeddings belong to the backbone
        self._embedding = (backbone.input_embeddings(),)
        self.register_buffer("sources", sources.detach().float().clone())
        self.register_buffer("sources_pooled", self.sources.max(dim=1).values)  # [S, d]
        if allowed is None:
            allowed = torch.ones((R, S), dtype=torch.bool)
        if tuple(allowed.shape) != (R, S):
            raise ValueError(f"allowed must be [R, S] = [{R}, {S}], got {tuple(allowed.shape)}")
        self.register_buffer("allowed", allowed.bool().clone())

        n_bank = max(t for ts in run_tasks for t in ts) + 1
        index = torch.full((R, n_bank), -1, dtype=torch.long)
        params, self._run_targets = [], []
        for r, (ps, ts) in enumerate(zip(targets, run_tasks)):
            if len(ps) != len(ts) or not ts:
                raise ValueError(f"run {r}: one target prompt per task needed, got {len(ps)} for {len(ts)} tasks")
            mine = []
            for p, t in zip(ps, ts):
                if tuple(p.shape) != (n, d):
                    raise ValueError(f"run {r}: target prompt must be [{n}, {d}] like the sources, got {tuple(p.shape)}")
                index[r, t] = len(params)
                mine.append(len(params))
                params.append(nn.Parameter(p.detach().clone().float()))
            self._run_targets.append(mine)
        self.targets = nn.ParameterList(params)
        self.register_buffer("_target_index", index)

        scale = cfg.attn_lr_scale
        downs, ups, ln_w, ln_b = [], [], [], []
        for s in seeds:
            gen = torch.Generator().manual_seed(int(s))
            downs.append(nn.Parameter(_linear_init((cfg.attn_dim, d), gen) / scale))
            ups.append(nn.Parameter(_linear_init((d, cfg.attn_dim), gen) / scale))
            if cfg.train_layernorm:
                ln_w.append(nn.Parameter(torch.ones(d)))
                ln_b.append(nn.Parameter(torch.zeros(d)))
        self.w_down = nn.ParameterList(downs)
        self.w_up = nn.ParameterList(ups)
        self.ln_weight = nn.ParameterList(ln_w)
        self.ln_bias = nn.ParameterList(ln_b)

    # --- the bank's interface -----------------------------------------------------------------
    def run_parameters(self, r: int) -> list[nn.Parameter]:
        out = [self.targets[i] for i in self._run_targets[r]] + [self.w_down[r], self.w_up[r]]
        if self.cfg.train_layernorm:
            out += [self.ln_weight[r], self.ln_bias[r]]
        return out

    def trainable_params(self, r: int) -> int:
        """Numbers trained by run ``r`` (its target prompts and attention module)."""
        return sum(p.numel() for p in self.run_parameters(r))

    def _hidden(self, run_ids: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``LayerNorm(W_up SiLU(W_down x))`` with each row's own run's module: ``[B, d]``."""
        out = torch.empty_like(x)
        scale = self.cfg.attn_lr_scale
        for r in torch.unique(run_ids).tolist():
            rows = (run_ids == r).nonzero(as_tuple=True)[0]
            h = F.silu(x[rows] @ (self.w_down[r] * scale).to(x.dtype).t()) @ (self.w_up[r] * scale).to(x.dtype).t()
            if self.cfg.train_layernorm:
                h = F.layer_norm(h, h.shape[-1:], self.ln_weight[r].to(h.dtype), self.ln_bias[r].to(h.dtype))
            else:
                h = F.layer_norm(h, h.shape[-1:])
            out = out.index_copy(0, rows, h.to(out.dtype))
        return out

    def _target_rows(self, run_ids: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        width = self._target_index.shape[1]
        idx = self._target_index[run_ids, task_ids.clamp_max(width - 1)].masked_fill(task_ids >= width, -1)
        if bool((idx < 0).any()):
            bad = sorted({(int(r), int(t)) for r, t, i in zip(run_ids, task_ids, idx) if i < 0})
            raise KeyError(f"rows of (run, task) {bad} have no target prompt")
        return torch.stack(list(self.targets))[idx]  # [B, n, d]

    def attention(self, run_ids: torch.Tensor, task_ids: torch.Tensor, enc: Encoded) -> torch.Tensor:
        """Each row's attention over the sources and its own target prompt: ``[B, S + 1]`` (rows sum to 1).

        A source the row's run may not use gets weight 0.
        """
        return self._mix(run_ids, task_ids, enc)[0]

    def _mix(self, run_ids, task_ids, enc):
        emb = self._embedding[0](enc.input_ids).float()  # [B, S_in, d]
        x = masked_max_pool(emb, None if self.cfg.pool_padding else enc.attention_mask)
        h = self._hidden(run_ids, x)  # [B, d]
        target = self._target_rows(run_ids, task_ids)  # [B, n, d]
        src_scores = (h @ self.sources_pooled.t()) / self.temperature  # [B, S]
        src_scores = src_scores.masked_fill(~self.allowed[run_ids], float("-inf"))
        own = (h * target.max(dim=1).values).sum(-1, keepdim=True) / self.temperature  # [B, 1]
        weights = torch.softmax(torch.cat([src_scores, own], dim=1), dim=1)
        return weights, target

    def prompts(self, run_ids: torch.Tensor, task_ids: torch.Tensor, enc: Encoded) -> torch.Tensor:
        """``P_target + sum_j a_j P_j`` per row: ``[B, n, d]``."""
        weights, target = self._mix(run_ids, task_ids, enc)
        S, n, d = self.sources.shape
        mixed = (weights[:, :S] @ self.sources.reshape(S, n * d)).view(-1, n, d)
        return target + mixed + weights[:, S:, None] * target

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        """Run ``r``'s target prompts (``target.{i}``, in its task order) and attention weights as used."""
        scale = self.cfg.attn_lr_scale
        state = {f"target.{j}": self.targets[i].detach().clone() for j, i in enumerate(self._run_targets[r])}
        state["w_down"] = (self.w_down[r] * scale).detach().clone()
        state["w_up"] = (self.w_up[r] * scale).detach().clone()
        if self.cfg.train_layernorm:
            state["ln_weight"] = self.ln_weight[r].detach().clone()
            state["ln_bias"] = self.ln_bias[r].detach().clone()
        return state

    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        scale = self.cfg.attn_lr_scale
        with torch.no_grad():
            for j, i in enumerate(self._run_targets[r]):
                self.targets[i].copy_(state[f"target.{j}"])
            self.w_down[r].copy_(state["w_down"] / scale)
            self.w_up[r].copy_(state["w_up"] / scale)
            if self.cfg.train_layernorm:
                self.ln_weight[r].copy_(state["ln_weight"])
                self.ln_bias[r].copy_(state["ln_bias"])
