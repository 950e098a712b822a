"""Intrinsic prompt tuning (IPT, Qin et al.): find the subspace task prompts share, then tune in it.

Stage 1, multi-task subspace finding (MSF): an auto-encoder over the training tasks' PT prompts.
``Proj``: a linear map of the flattened prompt (``D = n*d``, or ``L*n*d`` for deep prompts) to an
intrinsic vector of ``d_I`` numbers; ``Proj_b``: ``Linear(d_I -> h) -> tanh -> Linear(h -> D)``.
Loss = the task loss of the frozen model run with the *reconstructed* prompt + ``alpha`` *
MSE(reconstruction, prompt); batches mix all training tasks. Several auto-encoders (dimensions,
seeds) train together in one bank, one run each.

Prompts are normalised before the auto-encoder: centred on the training tasks' mean prompt and
divided by a scale (one for shallow prompts; one per layer for deep prompts, whose layers' hidden
states live at different scales). The official code has no normalisation; without it the deep
prompts' largest layers dominate the MSE.

Stage 2, intrinsic subspace tuning (IST): ``Proj_b`` frozen; per task train only ``z`` in
``R^{d_I}``; prompt = ``Proj_b(z)``. A *random subspace* control is the same decoder never trained;
a *linear subspace* is the top-d_I principal directions of the normalised training prompts
(prompt = mean + V z), the question being whether the auto-encoder's non-linearity buys anything.

IST trains ``u`` with ``z = offset + scale * u`` (:class:`Subspace`): with ``coords="spread"`` the
offset and scale are the mean and per-coordinate spread of the training prompts' intrinsic vectors
under the subspace's own encoder, so ``u = 0`` is their centroid and one unit of ``u`` is one
standard deviation of where they lie. The paper's ``coords="raw"`` (offset 0, scale 1, ``z`` from N(0, 0.02)) starts near the
origin while the trained encoder puts tasks at |z| ~ 14 per coordinate: Adam at lr 0.05 moves
``z`` at most 0.05 a step, so 40 steps cannot reach the region where the tasks live.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ipt_core.backbones import Encoded
from ipt_core.config.ipt import NORMS, MSFConfig
from ipt_core.errors import InputError
from ipt_core.methods.base import BankMethod

CODE_VERSION = "ipt-1"


class PromptNormaliser(nn.Module):
    """Centre on the mean prompt and divide by a per-layer (or global) scale.

    ``prompts``: ``[T, n, d]`` or ``[T, L, n, d]``; ``forward`` gives ``[T, D]`` flattened.
    """

    def __init__(self, prompts: torch.Tensor, norm: str = "layer"):
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        self.shape = tuple(prompts.shape[1:])
        mean = prompts.mean(0)
        centred = prompts - mean
        if norm == "none":  # the official code: the raw prompts
            mean, scale = torch.zeros_like(mean), torch.ones(*([1] * (prompts.dim() - 1)))
        elif prompts.dim() == 4 and norm == "layer":
            scale = centred.pow(2).mean(dim=(0, 2, 3)).sqrt().clamp_min(1e-6).view(-1, 1, 1)  # [L, 1, 1]
        else:
            scale = centred.pow(2).mean().sqrt().clamp_min(1e-6).reshape(*([1] * (prompts.dim() - 1)))
        self.register_buffer("mean", mean)
        self.register_buffer("scale", scale.expand_as(mean).clone())

    @property
    def dim(self) -> int:
        return int(torch.tensor(self.shape).prod())

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        return ((prompts - self.mean) / self.scale).flatten(1)

    def inverse(self, flat: torch.Tensor) -> torch.Tensor:
        return flat.view(-1, *self.shape) * self.scale + self.mean


class SubspaceAutoencoder(nn.Module):
    """``Proj`` (D -> d_I) and ``Proj_b`` (d_I -> h -> tanh -> D) over normalised, flattened prompts.

    Example::

        ae = SubspaceAutoencoder(dim=6 * 8 * 384, d_intrinsic=16, hidden=256, seed=0)
        z = ae.encode(x)          # [T, 16]
        x_hat = ae.decode(z)      # [T, 18432]
    """

    def __init__(self, dim: int, d_intrinsic: int, hidden: int = 256, seed: int = 0):
        super().__init__()
        if d_intrinsic < 1 or d_intrinsic > dim:
            raise InputError(f"d_I must be between 1 and the prompt size {dim}, got {d_intrinsic}")
        gen_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self.proj = nn.Linear(dim, d_intrinsic)
            self.up = nn.Linear(d_intrinsic, hidden)
            self.out = nn.Linear(hidden, dim)
        finally:
            torch.random.set_rng_state(gen_state)
        self.d_intrinsic = d_intrinsic

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.up(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


class LinearSubspace(nn.Module):
    """The top-``d_I`` principal directions of normalised, flattened training prompts ``[T, D]``.

    ``decode(z) = centre + z V`` (``V``: ``[d_I, D]``, orthonormal rows). Centred prompts of T tasks
    span at most T - 1 directions: rows of ``V`` past that rank are zero (``rank`` says how many are
    real), so a ``d_I`` above it tunes in the same space as ``d_I = rank``. At ``d_I = T - 1`` every
    training prompt is reconstructed exactly: ``decode(encode(x_t)) = x_t``.
    """

    def __init__(self, targets: torch.Tensor, d_intrinsic: int):
        super().__init__()
        if d_intrinsic < 1:
            raise InputError(f"d_I must be at least 1, got {d_intrinsic}")
        targets = targets.double()
        centre = targets.mean(0)
        _, s, vh = torch.linalg.svd(targets - centre, full_matrices=False)
        rank = int((s > s[0] * 1e-6).sum()) if len(s) and s[0] > 0 else 0
        k = min(d_intrinsic, rank)
        basis = torch.zeros(d_intrinsic, targets.shape[1], dtype=torch.float64)
        basis[:k] = vh[:k]
        self.register_buffer("centre", centre.float())
        self.register_buffer("basis", basis.float())
        self.d_intrinsic = d_intrinsic
        self.rank = k

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.centre) @ self.basis.T

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.centre + z @ self.basis


class Subspace(nn.Module):
    """A frozen subspace IST tunes in: ``prompt = normaliser.inverse(decoder.decode(offset + scale * u))``.

    ``decoder``: a :class:`SubspaceAutoencoder` (found or random) or a :class:`LinearSubspace`;
    ``offset``/``scale`` (``[d_I]``): where ``u = 0`` lies and one unit of ``u`` per coordinate (see
    the module's note on ``coords``).
    """

    def __init__(self, decoder: nn.Module, normaliser: PromptNormaliser, offset: torch.Tensor | None = None,
                 scale: torch.Tensor | None = None):
        super().__init__()
        d = decoder.d_intrinsic
        self.decoder = decoder
        self.normaliser = normaliser
        self.register_buffer("offset", torch.zeros(d) if offset is None else offset.detach().float().reshape(d).clone())
        self.register_buffer("scale", torch.ones(d) if scale is None else scale.detach().float().reshape(d).clone())

    @property
    def d_intrinsic(self) -> int:
        return self.decoder.d_intrinsic

    def intrinsic(self, u: torch.Tensor) -> torch.Tensor:
        """The intrinsic vectors ``z`` of tuned coordinates ``u`` (``[..., d_I]``)."""
        return self.offset + self.scale * u

    def prompts(self, u: torch.Tensor) -> torch.Tensor:
        """``[N, *prompt_shape]`` prompts of ``[N, d_I]`` coordinates."""
        return self.normaliser.inverse(self.decoder.decode(self.intrinsic(u)))


def spread_of(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, std)`` per coordinate of the training tasks' intrinsic vectors ``[T, d_I]``; a
    coordinate they do not vary along (a linear subspace's dimensions past its rank) gets scale 0."""
    z = z.detach().float()
    std = z.std(0, unbiased=False) if z.shape[0] > 1 else torch.ones(z.shape[1])
    return z.mean(0), torch.where(std > 1e-6 * std.max().clamp_min(1e-12), std, torch.zeros_like(std))


class SubspaceFinding(BankMethod):
    """MSF as a bank method: run ``r`` is auto-encoder ``r``; a row of task ``t`` gets ``AE_r(P_t)``.

    ``train_prompts``: ``[T, *prompt_shape]``, one PT prompt per training task, in the bank's
    task order (the bank's tasks must be exactly these, in this order).
    """

    name = "msf"
    # a row's prompt depends on the parameters and the row alone: torchrun may train it data-parallel
    row_parallel = True
    # a random auto-encoder reconstructs noise: scoring it on dev costs every training task's dev rows for nothing
    eval_at_start = False
    # the subspace is judged by IST on seen and unseen tasks; the reconstructed prompts' dev score is
    # kept as its diagnostic, and their test score (every training task's test rows) is not computed
    score_test = False

    def __init__(self, train_prompts: torch.Tensor, dims: Sequence[int], seeds: Sequence[int], cfg: MSFConfig, kind: str):
        super().__init__()
        self.prompt_kind = kind
        self.cfg = cfg
        self.task_loss_weight = 1.0 if cfg.task_loss else 0.0
        self.normaliser = PromptNormaliser(train_prompts.float(), cfg.norm)
        self.register_buffer("targets", self.normaliser(train_prompts.float()))  # [T, D]
        self.aes = nn.ModuleList(
            SubspaceAutoencoder(self.normaliser.dim, d, cfg.hidden, seed=s) for d, s in zip(dims, seeds)
        )
        self._recon: torch.Tensor | None = None

    def run_parameters(self, r: int) -> list[nn.Parameter]:
        return list(self.aes[r].parameters())

    def prompts(self, run_ids: torch.Tensor, task_ids: torch.Tensor, enc: Encoded | None) -> torch.Tensor:
        # every auto-encoder reconstructs every training prompt once per step (T is small), then rows gather
        recon = torch.stack([ae(self.targets) for ae in self.aes])  # [R, T, D]
        self._recon = recon
        flat = recon[run_ids, task_ids]
        return self.normaliser.inverse(flat)

    def reconstruction_loss(self) -> torch.Tensor:
        """alpha * MSE(reconstruction, prompt) per run, over all training prompts: ``[R]``."""
        recon = self._recon if self._recon is not None else torch.stack([ae(self.targets) for ae in self.aes])
        return self.cfg.alpha * (recon - self.targets.unsqueeze(0)).pow(2).mean(dim=(1, 2))

    def extra_loss(self, run_ids: torch.Tensor, task_ids: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """This micro-batch's share of each run's reconstruction loss (its rows / the step's rows)."""
        share = torch.zeros_like(counts).index_add_(0, run_ids, torch.ones_like(run_ids, dtype=counts.dtype)) / counts
        return self.reconstruction_loss() * share

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.aes[r].state_dict().items()}

    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        self.aes[r].load_state_dict(state)


class IntrinsicTuning(BankMethod):
    """IST as a bank method: run ``r`` trains ``u_r``; prompt = ``subspaces[g_r].prompts(u_r)``, every subspace frozen.

    ``groups[r]`` picks run ``r``'s :class:`Subspace`, so runs of several dimensions and of found,
    linear and random subspaces share a bank. ``u`` starts at N(0, ``init_std``) (or ``init_u``).
    """

    name = "ist"
    # a row's prompt depends on the parameters and the row alone: torchrun may train it data-parallel
    row_parallel = True

    def __init__(self, subspaces: Sequence[Subspace], groups: Sequence[int], seeds: Sequence[int], kind: str,
                 init_std: float = 0.02, init_u: Sequence[torch.Tensor | None] | None = None):
        super().__init__()
        self.prompt_kind = kind
        self.subspaces = nn.ModuleList(subspaces)
        for p in self.parameters():
            p.requires_grad_(False)
        self.groups = list(groups)
        us = []
        for r, (g, s) in enumerate(zip(groups, seeds)):
            given = init_u[r] if init_u is not None else None
            if given is not None:
                us.append(nn.Parameter(given.detach().clone().float()))
            else:
                gen = torch.Generator().manual_seed(s)
                us.append(nn.Parameter(torch.randn(self.subspaces[g].d_intrinsic, generator=gen) * init_std))
        self.z = nn.ParameterList(us)  # the tuned coordinates u (named z: checkpoints and run states say "z")
        self.register_buffer("_group_of_run", torch.tensor(self.groups, dtype=torch.long))

    def run_parameters(self, r: int) -> list[nn.Parameter]:
        return [self.z[r]]

    def run_intrinsic(self, r: int) -> torch.Tensor:
        """Run ``r``'s intrinsic vector ``z = offset + scale * u`` (``[d_I]``)."""
        return self.subspaces[self.groups[r]].intrinsic(self.z[r])

    def run_prompts(self, runs: Sequence[int]) -> torch.Tensor:
        """The prompts of the given runs: ``[len(runs), *prompt_shape]``."""
        out = [None] * len(runs)
        for g in sorted({self.groups[r] for r in runs}):
            idx = [i for i, r in enumerate(runs) if self.groups[r] == g]
            p = self.subspaces[g].prompts(torch.stack([self.z[runs[i]] for i in idx]))
            for j, i in enumerate(idx):
                out[i] = p[j]
        return torch.stack(out)

    def prompts(self, run_ids: torch.Tensor, task_ids: torch.Tensor | None, enc: Encoded | None) -> torch.Tensor:
        unique, inverse = torch.unique(run_ids, return_inverse=True)
        return self.run_prompts(unique.tolist())[inverse]

    def run_state(self, r: int) -> dict[str, torch.Tensor]:
        return {"z": self.z[r].detach().clone()}

    def load_run_state(self, r: int, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.z[r].copy_(state["z"])
