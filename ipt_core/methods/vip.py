"""VIP (Bhardwaj et al., 2022): vector-quantised, input-contextualised soft prompts.

Per row: a small *contextualiser* reads ``[P ; X]`` (the soft prompt ``P``, ``[n, d]``, and the
row's frozen input embeddings ``X``): ``Linear(d -> 32)``, a 2-layer transformer encoder over the
real tokens, ``Linear(32 -> d)``; its outputs at the prompt positions are the contextualised
prompt ``C`` (``[n, d]``). A *quantiser* maps each vector of ``C`` to the codebook: ``m`` codes
are sampled from ``softmax(-||c - e_k||^2 / T)`` and averaged; the gradient passes straight
through (``c + sg(q - c)``), a commitment loss ``beta * ||c - sg(q)||^2`` (beta 0.1) pulls ``C``
towards its codes, and the codebook follows an exponential moving average of the vectors
assigned to it (no gradient). The final prompt is ``P + q`` (the paper's skip connection).

Choices where the paper leaves room:

- **Units.** The contextualiser and the codebook work in units of the backbone's word-embedding
  standard deviation ``sigma`` (inputs divided by it, outputs multiplied by it), so the distance
  softmax, the commitment weight and the codebook's initial scale mean the same on a backbone
  whose embeddings are 100x larger (T5) as on MiniLM. The paper's ``exp(-||c - e||^2)`` is
  ``temperature=1`` in these units.
- **Evaluation.** The paper samples at evaluation too (``eval_mode="sample"``, the default); the
  draws come from a per-run generator reseeded every time the module enters eval mode, so every
  evaluation of a checkpoint sees the same draws. ``eval_mode="expected"`` replaces the ``m``
  samples by their expectation ``sum_k p_k e_k`` (deterministic).
- **Randomness and the bank.** Each run draws its code samples from its own generator, one draw
  per row in the run's row order, so its draws do not depend on the other runs of a bank or on
  how a step is cut into micro-batches. The codebook's EMA update is applied once per step, after
  the run's last micro-batch (``extra_loss`` sees each run's row count for the whole step).
- **Dead codes.** With the EMA codebook alone, the codes collapse onto the few nearest the
  contextualised vectors (about 2 of 64 were used after 150 steps on real tasks). As
  vector-quantize-pytorch does (``threshold_ema_dead_code``), after every EMA step a code whose
  EMA count of assigned vectors per step is below ``dead_code_threshold`` is re-initialised to a
  vector of that step's batch (drawn with the run's generator). ``dead_code_threshold=0`` turns
  it off (the paper's plain EMA codebook).
- The contextualiser has no dropout (a global-RNG dropout would couple the runs of a bank) and
  uses fixed sinusoidal positions (the frozen word embeddings carry none).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ipt_core.backbones import Backbone, Encoded
from ipt_core.config.vip import VIPConfig
from ipt_core.methods.base import BankMethod

CODE_VERSION = "vip-1"




def sinusoidal_positions(length: int, dim: int, device=None) -> torch.Tensor:
    """The transformer paper's fixed position encodings: ``[length, dim]``.

    Example::

        sinusoidal_positions(5, 32).shape   # [5, 32]
    """
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * freq)
    out[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return out


class Contextualiser(nn.Module):
    """``[P ; X]`` -> ``Linear(d -> k)`` -> 2-layer transformer -> ``Linear(k -> d)``, at the prompt positions.

    Inputs and outputs are in units of the backbone's embedding scale (the caller divides by it).

    Example::

        ctx = Contextualiser(d=384)
        ctx(torch.randn(2, 8, 384), torch.randn(2, 12, 384), torch.ones(2, 12)).shape   # [2, 8, 384]
    """

    def __init__(self, d: int, dim: int = 32, layers: int = 2, heads: int = 4, ff: int = 128):
        super().__init__()
        self.down = nn.Linear(d, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.up = nn.Linear(dim, d)

    def forward(self, prompt: torch.Tensor, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``prompt [B, n, d]``, ``inputs [B, S, d]``, ``mask [B, S]`` (1 = real token) -> ``[B, n, d]``."""
        n = prompt.shape[1]
        x = self.down(torch.cat([prompt, inputs.to(prompt.dtype)], dim=1))
        x = x + sinusoidal_positions(x.shape[1], x.shape[2], device=x.device).to(x.dtype)
        pad = torch.cat([torch.zeros((mask.shape[0], n), dtype=torch.bool, device=mask.device), ~mask.bool()], dim=1)
        return self.up(self.encoder(x, src_key_padding_mask=pad)[:, :n])


class SampledVectorQuantize(nn.Module):
    """A codebook of ``codebook_size`` vectors; each input vector becomes the mean of ``num_samples``
    codes sampled by distance, with a straight-through gradient, a commitment loss and EMA updates.

    In the shape of lucidrains' ``vector_quantize_pytorch.VectorQuantize`` (options as keyword
    arguments, ``decay``, ``commitment_weight``), but written here because VIP's quantiser is not
    what that library does: it *samples* ``m`` codes from ``softmax(-||x - e_k||^2 / T)`` and
    averages them (the soft-EM style of Roy et al. 2018) where the library takes the nearest code
    (or a Gumbel sample of one); and its EMA statistics must be accumulated over micro-batches and
    applied once per step, which the library's in-forward update does not allow. The library is also
    not a dependency of this project.

    Example::

        vq = SampledVectorQuantize(384, 64, num_samples=4, seed=0)
        q, idx, commit = vq(torch.randn(2, 8, 384), torch.rand(2, 8, 4))
        q.shape, idx.shape, commit.shape   # [2, 8, 384], [2, 8, 4], [2]
    """

    def __init__(self, dim: int, codebook_size: int, *, num_samples: int = 4, decay: float = 0.99,
                 commitment_weight: float = 0.1, temperature: float = 1.0, eps: float = 1e-5,
                 init_scale: float = 0.5, data_init: bool = True, seed: int = 0, dead_code_threshold: float = 0.0):
        super().__init__()
        self.codebook_size = codebook_size
        self.dead_code_threshold = dead_code_threshold
        self.num_samples = num_samples
        self.decay = decay
        self.commitment_weight = commitment_weight
        self.temperature = temperature
        self.eps = eps
        gen = torch.Generator().manual_seed(int(seed))
        codebook = torch.randn((codebook_size, dim), generator=gen) * init_scale
        self.register_buffer("codebook", codebook)
        # every code starts as if it had seen itself once: an unused code then keeps its place
        # (embed_sum / cluster_size stays e_k) instead of shrinking to zero
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", codebook.clone())
        # data init: the first update sets the codebook to vectors drawn from that step's inputs;
        # a random codebook far from the inputs sends every vector to the same code (collapse)
        self.register_buffer("initted", torch.tensor(not data_init))
        self._pending_count = torch.zeros(codebook_size)
        self._pending_sum = torch.zeros((codebook_size, dim))
        self._pending_x: list[torch.Tensor] = []

    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """``softmax(-||x - e_k||^2 / T)`` over the codes: ``[..., K]`` for ``x [..., dim]``."""
        x = x.float()
        dist = x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.codebook.t() + self.codebook.pow(2).sum(-1)
        return torch.softmax(-dist / self.temperature, dim=-1)

    def sample(self, probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
        """Code indices by inverse-CDF sampling: ``probs [..., K]``, ``uniforms [..., m]`` -> ``[..., m]``."""
        cdf = probs.cumsum(-1)
        u = uniforms.to(cdf.dtype) * cdf[..., -1:]
        return torch.searchsorted(cdf.contiguous(), u.contiguous()).clamp_max(self.codebook_size - 1)

    def forward(self, x: torch.Tensor, uniforms: torch.Tensor | None):
        """Quantise ``x [B, n, dim]``; ``uniforms [B, n, m]`` in [0, 1) draw the codes, None takes the expectation.

        Returns ``(quantized, indices, commitment)``: the straight-through quantised vectors
        ``[B, n, dim]``; the sampled codes ``[B, n, m]`` (None in expected mode); and the commitment
        loss per row ``[B]`` (``commitment_weight`` x the mean squared distance to the codes).
        """
        with torch.no_grad():
            probs = self.probabilities(x)
            if uniforms is None:
                indices = None
                q = probs @ self.codebook
            else:
                indices = self.sample(probs, uniforms)
                q = self.codebook[indices].mean(dim=-2)
        q = q.to(x.dtype)
        commitment = self.commitment_weight * (x - q).pow(2).flatten(1).mean(1)
        return x + (q - x).detach(), indices, commitment

    def accumulate(self, x: torch.Tensor, indices: torch.Tensor) -> None:
        """Add one micro-batch's assignments (``x [B, n, dim]``, ``indices [B, n, m]``) to the pending EMA statistics.

        Each of the ``m`` samples of a vector counts ``1/m`` towards its code.
        """
        x = x.detach().float()
        m = indices.shape[-1]
        flat_idx = indices.reshape(-1)
        flat_x = x.unsqueeze(-2).expand(*indices.shape, x.shape[-1]).reshape(-1, x.shape[-1])
        dev = self.codebook.device
        if self._pending_sum.device != dev:
            self._pending_sum, self._pending_count = self._pending_sum.to(dev), self._pending_count.to(dev)
        self._pending_count = self._pending_count.index_add(0, flat_idx, torch.full_like(flat_idx, 1.0 / m, dtype=torch.float32))
        self._pending_sum = self._pending_sum.index_add(0, flat_idx, flat_x / m)
        if not bool(self.initted) or self.dead_code_threshold > 0:
            self._pending_x.append(x.reshape(-1, x.shape[-1]))

    @torch.no_grad()
    def update(self, generator: torch.Generator | None = None) -> None:
        """Apply the pending statistics as one EMA step (Laplace-smoothed counts, as in VQ-VAE) and clear them.

        The first update of a data-initialised codebook instead sets every code to one of the
        pending input vectors, drawn with ``generator`` (with replacement when there are fewer
        vectors than codes).
        """
        if not bool(self.initted) and self._pending_x:
            xs = torch.cat(self._pending_x).to(self.codebook.device)
            if len(xs) >= self.codebook_size:
                pick = torch.randperm(len(xs), generator=generator)[: self.codebook_size]
            else:
                pick = torch.randint(len(xs), (self.codebook_size,), generator=generator)
            self.codebook.copy_(xs[pick.to(xs.device)])
            self.embed_sum.copy_(self.codebook)
            self.cluster_size.fill_(1.0)
            self.initted.fill_(True)
            self._clear()
            return
        d = self.decay
        self.cluster_size.mul_(d).add_(self._pending_count.to(self.cluster_size.device), alpha=1 - d)
        self.embed_sum.mul_(d).add_(self._pending_sum.to(self.embed_sum.device), alpha=1 - d)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (total + self.codebook_size * self.eps) * total
        self.codebook.copy_(self.embed_sum / smoothed.unsqueeze(-1))
        self._expire_dead_codes(generator)
        self._clear()

    @torch.no_grad()
    def _expire_dead_codes(self, generator: torch.Generator | None) -> int:
        """Re-initialise every code whose EMA count is below ``dead_code_threshold`` to a vector of
        this step's batch (as vector-quantize-pytorch's ``threshold_ema_dead_code``); its count
        restarts at the threshold. Returns how many codes were replaced."""
        if self.dead_code_threshold <= 0 or not self._pending_x:
            return 0
        dead = (self.cluster_size < self.dead_code_threshold).nonzero(as_tuple=True)[0]
        if not len(dead):
            return 0
        xs = torch.cat(self._pending_x).to(self.codebook.device)
        pick = torch.randint(len(xs), (len(dead),), generator=generator).to(xs.device)
        self.codebook[dead] = xs[pick]
        self.cluster_size[dead] = self.dead_code_threshold
        self.embed_sum[dead] = xs[pick] * self.dead_code_threshold
        return int(len(dead))

    def _clear(self) -> None:
        self._pending_count = torch.zeros_like(self._pending_count)
        self._pending_sum = torch.zeros_like(self._pending_sum)
        self._pending_x = []


class VIP(BankMethod):
    """VIP as a bank method: run ``r`` owns a prompt ``P_r``, a contextualiser and a codebook.

    ``initial``: one ``[n, d]`` prompt per run; ``seeds[r]`` seeds run ``r``'s modules, codebook
    and code draws. Trained by gradient: ``P`` and the contextualiser; by EMA: the codebook.

    Example::

        m = VIP(bb, [init_prompt(bb, 8, "shallow", seed=s) for s in (0, 1)], seeds=[0, 1], cfg=VIPConfig())
        m.prompts(run_ids, task_ids, enc).shape   # [B, 8, d]
        m.code_usage(run_ids, enc).shape           # [K]: lookups per code
    """

    name = "vip"
    # code draws, EMA statistics and the EMA step are per run and per step: under torchrun VIP runs
    # are sharded by run (ipt_core.train.distributed), never split by rows
    row_parallel = False
    prompt_kind = "shallow"

    def __init__(self, backbone: Backbone, initial: Sequence[torch.Tensor], seeds: Sequence[int], cfg: VIPConfig = VIPConfig()):
        super().__init__()
        if not initial or len(initial) != len(seeds):
            raise ValueError("VIP needs one initial prompt and one seed per run (at least one run)")
        d = backbone.hidden_size
        for p in initial:
            if tuple(p.shape) != (cfg.n_tokens, d):
                raise ValueError(f"VIP prompts must be [{cfg.n_tokens}, {d}], got {tuple(p.shape)}")
        self.cfg = cfg
        self.seeds = [int(s) for s in seeds]
        self._embedding = (backbone.input_embeddings(),)  # not a submodule: frozen, the backbone's
        self.sigma = float(backbone.input_embeddings().weight.detach().float().std())
        self.params = nn.ParameterList([nn.Parameter(p.detach().clone().float()) for p in initial])
        ctxs, vqs = [], []
        for s in self.seeds:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(s)
                ctxs.append(Contextualiser(d, cfg.ctx_dim, cfg.ctx_layers, cfg.ctx_heads, cfg.ctx_ff))
            vqs.append(SampledVectorQuantize(d, cfg.codebook_size, num_samples=cfg.num_samples, decay=cfg.decay,
                                             commitment_weight=cfg.commitment_weight, temperature=cfg.temperature,
                                             seed=s + 7919, dead_code_threshold=cfg.dead_code_threshold))
        self.contextualisers = nn.ModuleList(ctxs)
        self.quantisers = nn.ModuleList(vqs)
        self._train_gen = [torch.Generator().manual_seed(s * 2 + 1) for s in self.seeds]
        self._eval_gen = [torch.Generator().manual_seed(s * 2 + 2) for s in self.seeds]
        self._pending: list[tuple[int, torch.Tensor, torch.Tensor | None, torch.Tensor]] = []
        self._rows_seen = [0] * len(self.seeds)

    def train(self, mode: bool = True) -> "VIP":
        """Entering eval mode reseeds the evaluation draws: every evaluation sees the same ones."""
        if not mode:
            self._eval_gen = [torch.Generator().manual_seed(s * 2 + 2) for s in self.seeds]
        return super().train(mode)

    # --- the bank's interface -----------------------------------------------------------------
    def run_parameters(self, r: int) -> list[nn.Parameter]:
        return [self.params[r], *self.contextualisers[r].parameters()]

    def generators(self) -> dict[str, torch.Generator]:
        """Each run's training and evaluation code draws (their states go into a checkpoint)."""
        return {f"{kind}.{r}": g for kind, gens in (("train", self._train_gen), ("eval", self._eval_gen))
                for r, g in enumerate(gens)}

    def trainable_params(self, r: int, *, with_codebook: bool = True) -> int:
        """Numbers learned by run ``r``: gradient-trained, plus the EMA-learned codebook unless told not to."""
        n = sum(p.numel() for p in self.run_parameters(r))
        return n + (self.quantisers[r].codebook.numel() if with_codebook else 0)

    def _uniforms(self, r: int, rows: int, device) -> torch.Tensor | None:
        if not self.training and self.cfg.eval_mode == "expected":
            return None
        gen = self._train_gen[r] if self.training else self._eval_gen[r]
        # one draw per row, in the run's row order: the stream does not depend on micro-batching
        u = [torch.rand((self.cfg.n_tokens, self.cfg.num_samples), generator=gen) for _ in range(rows)]
        return torch.stack(u).to(device)

    def _run_rows(self, r: int, rows: torch.Tensor, emb: torch.Tensor, mask: torch.Tensor):
        """Contextualise and quantise run ``r``'s rows: prompt ``[b, n, d]``, context, codes, commitment."""
        width = int(mask[rows].sum(1).max())  # trim to this run's own longest row
        p = self.params[r].unsqueeze(0).expand(len(rows), -1, -1)
        c = self.contextualisers[r](p / self.sigma, emb[rows, :width] / self.sigma, mask[rows, :width])
        q, idx, commit = self.quantisers[r](c, self._uniforms(r, len(rows), c.device))
        return p + self.sigma * q, c, idx, commit

    def prompts(self, run_ids: torch.Tensor, task_ids: torch.Tensor | None, enc: Encoded) -> torch.Tensor:
        """``P + q`` per row: ``[B, n, d]``. In training mode the codes and commitment losses are
        kept for ``extra_loss``."""
        emb = self._embedding[0](enc.input_ids).float()
        mask = enc.attention_mask
        parts, order = [], []
        for r in torch.unique(run_ids).tolist():
            rows = (run_ids == r).nonzero(as_tuple=True)[0]
            prompt, c, idx, commit = self._run_rows(r, rows, emb, mask)
            parts.append(prompt)
            order.append(rows)
            if self.training:
                self._pending.append((r, c, idx, commit))
        out = torch.cat(parts)
        inverse = torch.empty_like(torch.cat(order))
        inverse[torch.cat(order)] = torch.arange(len(inverse), device=inverse.device)
        return out[inverse]

    def extra_loss(self, run_ids: torch.Tensor, task_ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """This micro-batch's share of each run's commitment loss (its rows' sum / the step's rows): ``[R]``.

        Also adds the micro-batch's code assignments to each run's EMA statistics, and applies a
        run's EMA update once all of its rows of the step have been seen.
        """
        out = torch.zeros_like(counts)
        for r, c, idx, commit in self._pending:
            out = out.index_add(0, torch.tensor([r], device=counts.device), (commit.sum() / counts[r]).reshape(1).to(out.dtype))
            if idx is not None:
                self.quantisers[r].accumulate(c, idx)
            self._rows_seen[r] += len(commit)
            if self._rows_seen[r] >= int(counts[r].item()):
                self.quantisers[r].update(self._train_gen[r])
                self._rows_seen[r] = 0
        self._pending = []
        return out

    # --- inspection ---------------------------------------------------------------------------
    def code_usage(self, run_ids: torch.Tensor, enc: Encoded) -> torch.Tensor:
        """Codebook lookups of these rows, all of one run: ``[K]`` counts (expected mode: summed probabilities)."""
        runs = torch.unique(run_ids).tolist()
        if len(runs) != 1:
            raise ValueError(f"code_usage takes the rows of one run, got runs {runs}")
        r = runs[0]
        with torch.no_grad():
            emb = self._embedding[0](enc.input_ids).float()
            rows = torch.arange(len(run_ids), device=run_ids.device)
            _, c, idx, _ = self._run_rows(r, rows, emb, enc.attention_mask)
            K = self.cfg.codebook_size
            if idx is None:
                return self.quantisers[r].probabilities(c).reshape(-1, K).sum(0).cpu()
            return torch.bincount(idx.reshape(-1), minlength=K).float().cpu()

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        """Run ``r``'s prompt, contextualiser (``ctx.*``) and codebook (``vq.*``)."""
        state = {"prompt": self.params[r].detach().clone()}
        state |= {f"ctx.{k}": v.detach().clone() for k, v in self.contextualisers[r].state_dict().items()}
        state |= {f"vq.{k}": v.detach().clone() for k, v in self.quantisers[r].state_dict().items()}
        return state

    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.params[r].copy_(state["prompt"])
        self.contextualisers[r].load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("ctx.")})
        self.quantisers[r].load_state_dict({k[3:]: v for k, v in state.items() if k.startswith("vq.")})
