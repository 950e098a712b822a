"""Distributed banks on ``torch.distributed``: the same commands on several processes, GPUs or machines.

``torchrun --nproc-per-node N -m ipt_core <command> ...`` (or ``python -m torch.distributed.run``,
multi-node with ``--nnodes``/``--rdzv-*``) starts N copies of the CLI; :func:`init_from_env` joins
them into one process group from torchrun's environment (``WORLD_SIZE``, ``RANK``,
``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``): backend ``nccl`` with device ``cuda:LOCAL_RANK``
on GPUs, ``gloo`` on CPU. Without torchrun (``WORLD_SIZE`` unset or 1) nothing here does anything:
every helper is a no-op and :func:`train_bank_on_ranks` is ``ipt_core.train.bank.train_bank``.

Every rank runs the whole command (same suite, same backbone, same specs, same seeds), so every
rank builds the same bank; :func:`train_bank_on_ranks` (what the experiments call: the bank loop's
distributed entry; ``ipt_core.train.bank`` never imports this module) then splits the work one of two
ways:

- **runs** (independent runs: PT, IST, ATTEMPT, VIP, MSF with many auto-encoders). Rank ``k``
  trains runs ``k, k+W, k+2W, ...`` through the ordinary single-process loop on a
  :class:`RunSubset` view of the full method (only its runs' rows are computed; no gradient
  traffic), then every rank receives every run's :class:`~ipt_core.train.bank.RunResult` (metrics as JSON
  and the best-dev state as raw tensor bytes, broadcast by the owner as ``uint8`` tensors) and
  loads each run's best state into its method, as the single-process loop does.
- **rows** (data parallel: a method with ``shared_parameters()``, or fewer runs than ranks for a
  method marked ``row_parallel``, e.g. one MSF auto-encoder or one multi-task ATTEMPT run). Every
  rank draws the same full step batch (the samplers are seeded per run), sorts it as the
  single-process loop does and keeps its contiguous slice of rows (:class:`RowParallel`, the loop's
  row strategy, ``ipt_core.train.loop.rows``); the row losses are divided by
  the *global* per-run row counts, so after backward an all-reduce (SUM) of the gradients (and of
  the per-run loss sums) gives every rank the single-process gradient before clipping, and every
  rank takes the same optimiser step. Dev and test evaluation are split across ranks (strided)
  and the predictions all-gathered. Cancellation is agreed by all ranks every step (all-reduce MAX).

The mode is chosen by :func:`choose_mode`; ``IPT_DIST_MODE=runs|rows`` forces one (benchmarks,
tests). VIP is never trained row-parallel: its EMA codebook, its code draws (a per-run generator,
one draw per row in the run's row order) and the once-per-step EMA update are per run, so VIP runs
are sharded by run and each codebook lives on exactly one rank, its owner, and reaches the others
with the run's state (``vq.*`` buffers) at the end. The codebooks are therefore consistent by
ownership, with no EMA statistics to all-reduce.

Results equal a single-process run's up to float reassociation (gradient sums in another order,
other rows beside a run's rows in a micro-batch): loss curves agree to ~1e-6 relative, states to
~1e-4 after a few steps (Adam turns float noise in near-zero gradient entries into steps of up to
lr; VIP's attention key bias, whose exact gradient is zero, only to ~lr), and scores are the same
unless a prediction sits on a tie (tests/test_distributed.py).

Writes to the store happen once: :class:`RankZeroStore` (what the CLI uses under torchrun) lets
rank 0 read and write and broadcasts its answers, so every rank takes the same branch (found /
not found) and sees the same entry. Nothing is pickled: collectives carry tensors, and structured
data travels as JSON encoded to ``uint8`` tensors.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.distributed as dist

from ipt_core.errors import InputError
from ipt_core.store import Store
from ipt_core.store.entry import StoreError
from ipt_core.train import bank
from ipt_core.train.dist_comm import (
    all_reduce,
    any_rank,
    broadcast_bytes,
    broadcast_json,
    comm_device,
    is_distributed,
    is_main,
    rank,
    world,
)
from ipt_core.train.loop.rows import LocalRows

MODES = ("auto", "runs", "rows")


# --------------------------------------------------------------------------------------------------
# the bank


def choose_mode(method, n_runs: int, n_ranks: int) -> str:
    """``"runs"`` (shard independent runs) or ``"rows"`` (data parallel) for a bank.

    Shared parameters need rows. Otherwise runs, unless there are fewer runs than ranks and the
    method is ``row_parallel`` (its prompts are a function of its parameters and the row alone:
    PT, MSF, IST, ATTEMPT; not VIP, whose code draws and EMA codebook are per run).
    ``IPT_DIST_MODE`` (``auto``/``runs``/``rows``) overrides the automatic choice.
    """
    forced = os.environ.get("IPT_DIST_MODE", "auto") or "auto"
    if forced not in MODES:
        raise InputError(f"IPT_DIST_MODE must be one of {MODES}, got {forced!r}")
    row_ok = bool(method.row_parallel)
    name = type(method).__name__
    if list(method.shared_parameters()):
        if not row_ok:
            raise ValueError(f"method {name!r} has shared parameters but is not row_parallel: it cannot train distributed")
        return "rows"
    if forced == "rows":
        if not row_ok:
            raise InputError(f"IPT_DIST_MODE=rows: method {name!r} cannot train row-parallel (set IPT_DIST_MODE=runs)")
        return "rows"
    if forced == "runs":
        return "runs"
    return "rows" if (n_runs < n_ranks and row_ok) else "runs"


def train_bank_on_ranks(backbone, tasks, method, runs, **kwargs) -> list:
    """``ipt_core.train.bank.train_bank`` across torchrun's ranks (the same call, the same results); in one
    process it is that function itself.

    Every rank must call it with the same bank (it is a collective) and gets the full list of
    results, in run order, with every run's best state loaded into ``method``.
    """
    runs = list(runs)
    if not is_distributed() or not runs:  # no runs: the loop's own error
        return bank.train_bank(backbone, tasks, method, runs, **kwargs)
    W, k = world(), rank()
    mode = choose_mode(method, len(runs), W)
    kw = _rank_kwargs(kwargs)
    if mode == "rows":
        cancel = kw.get("should_cancel")
        if cancel is not None:
            kw["should_cancel"] = lambda: any_rank(bool(cancel()))
        return bank.train_bank(backbone, tasks, method, runs, rows=RowParallel(k, W), **kw)
    owned = list(range(k, len(runs), W))
    local = []
    if owned:
        local = bank.train_bank(backbone, tasks, RunSubset(method, owned, len(runs)), [runs[r] for r in owned], **kw)
    results = gather_results(local, owned, runs)
    with torch.no_grad():
        for r, res in enumerate(results):  # as the single-process loop leaves it: best states loaded
            if r not in owned:
                method.load_run_state(r, res.state)
    return results


def _rank_kwargs(kwargs: dict) -> dict:
    kw = dict(kwargs)
    if not is_main():
        kw["progress"] = None  # progress from rank 0 only
    if kw.get("checkpoint_dir") is not None:
        # every rank resumes its own loop (its runs, or its identical copy of the state)
        d = Path(kw["checkpoint_dir"]) / f"rank{rank()}-of-{world()}"
        d.mkdir(parents=True, exist_ok=True)
        kw["checkpoint_dir"] = d
    return kw


class RunSubset:
    """A view of a bank method restricted to some of its runs: local run ``i`` is global run ``owned[i]``.

    The full method stays whole (same parameters, same random streams); only the owned runs' rows
    are computed and only their parameters reach the optimiser. It answers the whole bank-method
    contract (``ipt_core.methods.base``); ``state_dict`` and other module attributes are the
    full method's.

    Example::

        view = RunSubset(method, [1, 3], n_runs=4)
        view.prompts(torch.tensor([0, 1]), task_ids, enc)   # rows of global runs 1 and 3
    """

    def __init__(self, method, owned: Sequence[int], n_runs: int):
        self.method = method
        self.owned = list(owned)
        self.n_runs = n_runs
        self._map = torch.tensor(self.owned, dtype=torch.long)

    def __getattr__(self, name: str):  # state_dict, load_state_dict, training... of the whole method
        if name in ("method", "owned", "n_runs", "_map"):
            raise AttributeError(name)
        return getattr(self.method, name)

    @property
    def prompt_kind(self) -> str:
        return self.method.prompt_kind

    @property
    def shared_lr(self):
        return self.method.shared_lr

    @property
    def shared_max_grad_norm(self):
        return self.method.shared_max_grad_norm

    def generators(self):
        return self.method.generators()

    def config_json(self):
        return self.method.config_json()

    def to(self, device):
        self.method.to(device)
        self._map = self._map.to(device)
        return self

    def train(self, mode: bool = True):
        self.method.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def run_parameters(self, r: int):
        return self.method.run_parameters(self.owned[r])

    def shared_parameters(self):
        return self.method.shared_parameters()

    def prompts(self, run_ids, task_ids, enc):
        return self.method.prompts(self._map.to(run_ids.device)[run_ids], task_ids, enc)

    def extra_loss(self, run_ids, task_ids, counts):
        m = self._map.to(run_ids.device)
        full = torch.ones(self.n_runs, device=counts.device, dtype=counts.dtype)  # other runs: no rows here
        full[m] = counts
        out = self.method.extra_loss(m[run_ids], task_ids, full)
        return None if out is None else out[m]

    def run_state(self, r: int):
        return self.method.run_state(self.owned[r])

    def load_run_state(self, r: int, state) -> None:
        self.method.load_run_state(self.owned[r], state)


class RowParallel(LocalRows):
    """The row strategy of a row-parallel (data-parallel) bank (``ipt_core.train.loop.rows``); see the module docstring."""

    def __init__(self, rank_: int, world_: int):
        self.rank = rank_
        self.world = world_

    def local_rows(self, batch: list) -> list:
        """This rank's contiguous slice of the (sorted) step batch."""
        n = len(batch)
        return batch[n * self.rank // self.world : n * (self.rank + 1) // self.world]

    def reduce_step(self, run_loss_sum: torch.Tensor, params: Sequence[torch.Tensor]) -> None:
        """Sum the per-run losses and the gradients over ranks, in place.

        A parameter keeps ``grad is None`` only when it got no gradient on any rank (Adam then skips
        it, as it would in one process); otherwise a missing local gradient counts as zeros.
        """
        dev = comm_device()
        params = list(params)
        if params:
            has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
            all_reduce(has, "max")
            live = [p for p, h in zip(params, has.tolist()) if h > 0]
        else:
            live = []
        for p in live:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        flat = torch.cat([run_loss_sum.detach().reshape(-1).float().to(dev)]
                         + [p.grad.reshape(-1).float().to(dev) for p in live])
        all_reduce(flat, "sum")
        n = run_loss_sum.numel()
        run_loss_sum.copy_(flat[:n].view_as(run_loss_sum))
        o = n
        for p in live:
            p.grad.copy_(flat[o : o + p.numel()].view_as(p.grad))
            o += p.numel()

    def evaluate(self, fn: Callable[[list], tuple[np.ndarray, np.ndarray]], rows: Sequence) -> tuple[np.ndarray, np.ndarray]:
        """``fn(rows)`` computed as ``fn`` of every ``world``-th row on each rank, then all-gathered."""
        n = len(rows)
        preds, losses = fn([rows[i] for i in range(self.rank, n, self.world)] if n else [])
        if n == 0:
            return preds, losses
        width = math.ceil(n / self.world)
        dev = comm_device()
        buf = torch.zeros((2, width), dtype=torch.float64)
        buf[0, : len(preds)] = torch.from_numpy(np.asarray(preds, dtype=np.float64))
        buf[1, : len(losses)] = torch.from_numpy(np.asarray(losses, dtype=np.float64))
        buf = buf.to(dev)
        parts = [torch.empty_like(buf) for _ in range(self.world)]
        dist.all_gather(parts, buf)
        out_p = np.empty(n, dtype=np.int64)
        out_l = np.empty(n, dtype=np.float64)
        for k, part in enumerate(parts):
            part = part.cpu().numpy()
            m = len(range(k, n, self.world))
            out_p[k::self.world] = part[0, :m].astype(np.int64)
            out_l[k::self.world] = part[1, :m]
        return out_p, out_l


# --------------------------------------------------------------------------------------------------
# results across ranks (JSON + raw tensor bytes; nothing pickled)


def _encode_results(results: Sequence, owned: Sequence[int]) -> bytes:
    items, chunks, offset = [], [], 0
    for r, res in zip(owned, results):
        tensors = []
        for name, t in res.state.items():
            t = t.detach().cpu().contiguous()
            raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
            tensors.append([name, str(t.dtype).removeprefix("torch."), list(t.shape), offset, len(raw)])
            chunks.append(raw)
            offset += len(raw)
        items.append({
            "run": r, "status": res.status, "best_step": res.best_step, "dev_acc": res.dev_acc, "dev_f1": res.dev_f1,
            "test_acc": res.test_acc, "test_f1": res.test_f1, "per_task": res.per_task,
            "dev_curve": res.dev_curve, "loss_curve": res.loss_curve, "seconds": res.seconds,
            "cpu_seconds": res.cpu_seconds, "test_pred": res.test_pred, "state": tensors,
        })
    head = json.dumps(items).encode()
    return len(head).to_bytes(8, "little") + head + b"".join(chunks)


def _decode_results(blob: bytes, runs: Sequence) -> list[tuple[int, Any]]:
    n = int.from_bytes(blob[:8], "little")
    items = json.loads(blob[8 : 8 + n].decode())
    data = blob[8 + n :]
    out = []
    for it in items:
        state = {}
        for name, dtype, shape, off, size in it["state"]:
            dt = getattr(torch, dtype)
            if size:
                t = torch.frombuffer(bytearray(data[off : off + size]), dtype=torch.uint8).view(dt).reshape(shape)
            else:
                t = torch.empty(shape, dtype=dt)
            state[name] = t.clone()
        out.append((it["run"], bank.RunResult(
            config=runs[it["run"]], status=it["status"], best_step=it["best_step"], dev_acc=it["dev_acc"],
            dev_f1=it["dev_f1"], test_acc=it["test_acc"], test_f1=it["test_f1"], per_task=it["per_task"],
            dev_curve=[tuple(x) for x in it["dev_curve"]], loss_curve=[tuple(x) for x in it["loss_curve"]],
            state=state, seconds=it["seconds"], cpu_seconds=it.get("cpu_seconds"), test_pred=it["test_pred"],
        )))
    return out


def gather_results(local: Sequence, owned: Sequence[int], runs: Sequence) -> list:
    """Every run's ``RunResult`` on every rank, in run order; ``local`` are this rank's ``owned`` runs.

    Each rank broadcasts its runs' results once: JSON metadata plus the states' raw bytes in one
    ``uint8`` tensor (two collectives per rank; no pickle).
    """
    by_run: dict[int, Any] = {}
    mine = _encode_results(local, owned)
    for k in range(world()):
        blob = broadcast_bytes(mine if k == rank() else None, src=k)
        if k == rank():
            by_run.update(zip(owned, local))
        else:
            by_run.update(_decode_results(blob, runs))
    missing = [r for r in range(len(runs)) if r not in by_run]
    if missing:
        raise RuntimeError(f"distributed bank: no result for runs {missing}")
    return [by_run[r] for r in range(len(runs))]


# --------------------------------------------------------------------------------------------------
# the store


class RankZeroStore:
    """A ``Store`` for a distributed command: rank 0 decides and writes, the others follow.

    ``get``/``query`` are answered by rank 0 and broadcast (found or not, which keys), so every rank
    takes the same branch even while rank 0 is writing; ``put`` is done by rank 0 alone, then the
    others read the entry it wrote (keys are deterministic from specs). Every rank must make the
    same calls in the same order (they do: every rank runs the same command). The store folder must
    be shared by all nodes (a network filesystem) for a multi-node run. Other attributes are the
    wrapped store's.

    Example::

        store = RankZeroStore(Store(root)) if is_distributed() else Store(root)
    """

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name: str):
        if name == "_store":
            raise AttributeError(name)
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"RankZeroStore({self._store!r})"

    def _follow(self, key: str):
        entry = self._store.get(key)
        if entry is None:
            raise StoreError(f"rank {rank()}: cannot read store entry {key} that rank 0 has in {self._store.root}: "
                             "a distributed run needs a store folder shared by every node")
        return entry

    def get(self, spec_or_key):
        entry = self._store.get(spec_or_key) if is_main() else None
        key = broadcast_json(entry.key if entry is not None else None)
        if key is None:
            return None
        return entry if is_main() else self._follow(key)

    def query(self, kind: str | None = None, **where):
        found = self._store.query(kind, **where) if is_main() else None
        keys = broadcast_json([e.key for e in found] if found is not None else None)
        return found if is_main() else [self._follow(k) for k in keys]

    def put(self, kind, spec, meta, tensors=None, *, command=None):
        entry, error = None, None
        if is_main():
            try:
                entry = self._store.put(kind, spec, meta, tensors, command=command)
            except Exception as exc:  # every rank must learn that the write failed
                error = exc
        answer = broadcast_json({"key": entry.key} if entry is not None else {"error": f"{type(error).__name__}: {error}"})
        if error is not None:
            raise error
        if "error" in answer:
            raise StoreError(f"rank 0 could not write the entry: {answer['error']}")
        return entry if is_main() else self._follow(answer["key"])

    def memo(self, kind, spec, compute, *, command=None):
        """``Store.memo`` through this store's ``get``/``put``: rank 0 decides, every rank computes or not alike."""
        return Store.memo(self, kind, spec, compute, command=command)

    def delete(self, key: str) -> bool:
        done = self._store.delete(key) if is_main() else False
        return bool(broadcast_json(done))


def shared_store(store):
    """``store`` wrapped in :class:`RankZeroStore` under torchrun, unchanged otherwise."""
    return RankZeroStore(store) if is_distributed() else store
