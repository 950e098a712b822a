"""torch.distributed's process group and the few collectives the distributed bank and store use.

Every helper is a no-op (or the identity) without torchrun (``WORLD_SIZE`` unset or 1), so the
same code runs in one process. Collectives carry tensors only; structured data travels as JSON
encoded to ``uint8`` tensors (nothing is pickled). ``ipt_core.train.distributed`` re-exports all of it.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch
import torch.distributed as dist


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (torchrun sets it), 1 when absent."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init_from_env(device: str | None = None) -> bool:
    """Join torchrun's process group when ``WORLD_SIZE > 1``; returns whether distributed.

    Backend ``nccl`` (and ``torch.cuda.set_device(LOCAL_RANK)``, so ``cuda`` means this rank's GPU)
    when CUDA is present and ``device`` is not ``cpu``; ``gloo`` otherwise. ``IPT_DIST_BACKEND``
    overrides the backend. Idempotent.

    Example::

        # torchrun --nproc-per-node 2 script.py
        init_from_env()        # True; rank(), world() -> 0..1, 2
    """
    if dist.is_available() and dist.is_initialized():
        return is_distributed()
    if env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 but this PyTorch build has no torch.distributed")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = torch.cuda.is_available() and not (device or "auto").startswith("cpu")
    backend = os.environ.get("IPT_DIST_BACKEND") or ("nccl" if want_cuda else "gloo")
    if backend == "nccl":
        torch.cuda.set_device(local_rank % max(1, torch.cuda.device_count()))
    dist.init_process_group(backend=backend)
    return is_distributed()


def shutdown() -> None:
    """Leave the process group (a no-op when there is none)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world() -> int:
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if is_distributed() else 0


def is_main() -> bool:
    """Rank 0 (or not distributed): the process that prints, reports progress and writes."""
    return rank() == 0


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def comm_device() -> torch.device:
    """Where collective tensors must live: this rank's GPU under nccl, else the CPU."""
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


def all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """All-reduce ``t`` in place (``sum``/``max``/``min``) and return it; identity when not distributed."""
    if not is_distributed():
        return t
    dev = comm_device()
    buf = t if t.device == dev else t.to(dev)
    dist.all_reduce(buf, op=getattr(dist.ReduceOp, _OPS[op]))
    if buf is not t:
        t.copy_(buf)
    return t


def any_rank(flag: bool) -> bool:
    """True when ``flag`` is true on any rank (a collective: every rank must call it)."""
    if not is_distributed():
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=comm_device())
    return bool(all_reduce(t, "max").item() > 0)


def broadcast_bytes(data: bytes | None, src: int = 0) -> bytes:
    """``data`` of rank ``src`` on every rank, as a ``uint8`` tensor (no pickle)."""
    if not is_distributed():
        return data or b""
    dev = comm_device()
    n = torch.tensor([len(data) if rank() == src else 0], dtype=torch.int64, device=dev)
    dist.broadcast(n, src)
    size = int(n.item())
    if rank() == src:
        buf = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(dev) if size else torch.zeros(0, dtype=torch.uint8, device=dev)
    else:
        buf = torch.empty(size, dtype=torch.uint8, device=dev)
    if size:
        dist.broadcast(buf, src)
    return data if rank() == src else bytes(buf.cpu().numpy().tobytes())


def broadcast_json(obj: Any, src: int = 0) -> Any:
    """A JSON value of rank ``src`` on every rank."""
    data = json.dumps(obj).encode() if rank() == src else None
    return json.loads(broadcast_bytes(data, src).decode())


