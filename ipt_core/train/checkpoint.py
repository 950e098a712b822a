"""Resumable banks: the complete state of ``train_bank``'s loop in safetensors + JSON, written atomically.

A checkpoint is two files in the bank's checkpoint directory, both named by the step they hold::

    step-00000050.safetensors   every tensor: the method's state_dict, Adam's moments, each run's
                                sampler generator and remaining epoch order, torch's global (and
                                CUDA) RNG, the method's own generators, each run's best-dev state
    step-00000050.json          everything else (active/status/best/curves/step, Adam's param
                                groups), the bank's fingerprint and the sha256 of the tensor file

Each file is written under a temporary name, fsynced and renamed into place, the JSON last, and
older checkpoints are deleted only after that; so a process killed at any point leaves the
previous checkpoint (or the new one) complete. A checkpoint that fails to parse or check in any
way (bad JSON, nesting deep enough to overflow the parser, a wrong type at any depth, a checksum or
fingerprint that does not match, tensors of the wrong shape or dtype) is logged and ignored: the
bank resumes from an older valid one or starts from step 0, which is slower but never wrong, and
never a crash. Nothing is ever unpickled.

The experiment layer names a bank's directory after the specs of the runs it computes
(:func:`bank_dir`), so resubmitting the same request finds its checkpoint, and removes it once
the results are in the store.

Example::

    ckpt = bank_dir(store, [specs[i] for i in todo])
    results = train_bank(bb, tasks, method, runs, checkpoint_dir=ckpt)
    for ...: store.put(...)
    discard(ckpt)
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ipt_core.store.atomic import (  # save() turns their OSError into a warning
    fsync_dir,
    write_bytes,
)

log = logging.getLogger("ipt_core.train.checkpoint")

FORMAT = 1
MAX_JSON_BYTES = 256 * 1024 * 1024  # a bank's curves and scores are far smaller; bigger is not ours
_NAME_RE = re.compile(r"^step-(\d{8})\.json$")


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable or inconsistent (the message names the file and field)."""


# --------------------------------------------------------------------------------------------------
# fingerprint


def _tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dim() == 0:
        t = t.reshape(1)
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def fingerprint(runs: Sequence[Any], tasks: Sequence[Any], method: torch.nn.Module, *, device_type: str,
                max_rows: int) -> str:
    """sha256 of what decides a bank's trajectory: run configs, task names and data, the method's class,
    config (its ``config_json()``) and prompt kind, its state names, shapes and *initial values*, the
    device type and the micro-batch size.

    The initial values are hashed so that two banks with the same shapes but other initial prompts
    (another init, another source prompt) never share a checkpoint; micro-batching and the device
    change float summation order, so a checkpoint is not resumed under another one either.
    """
    h = hashlib.sha256()
    state = method.state_dict()
    doc = {
        "format": FORMAT,
        "runs": [cfg.to_json() for cfg in runs],
        "tasks": [[t.name, t.data_hash()] for t in tasks],
        "method": f"{type(method).__module__}.{type(method).__qualname__}",
        "config": method.config_json(),
        "kind": method.prompt_kind,
        "state": [[k, list(v.shape), str(v.dtype)] for k, v in state.items()],
        "device": device_type,
        "max_rows": max_rows,
    }
    h.update(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode())
    for v in state.values():
        h.update(_tensor_bytes(v))
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# the loop state


@dataclass
class LoopState:
    """The bank loop's Python-side state at the end of ``step`` (restored into the loop's lists)."""

    step: int
    elapsed: float
    active: list[bool]
    status: list[str]
    best: list[dict]  # {"acc", "loss", "step", "state": {name: tensor}, ["dev": per-task scores]}
    since_best: list[int]
    dev_curves: list[list]
    loss_curves: list[list]


def _doc_checksum(doc: dict) -> str:
    body = {k: v for k, v in doc.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _sha256_file(path: Path) -> tuple[bytes, str]:
    data = path.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def save(directory: Path, fp: str, state: LoopState, *, method: torch.nn.Module, optimizer, samplers,
         device: torch.device) -> Path | None:
    """Write the checkpoint of ``state.step``; then delete older ones. Returns the JSON's path.

    A write that fails (disk full, ...) is logged as a warning and returns None: the run goes on, and
    the previous checkpoint stays valid.
    """
    import safetensors.torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}

    def put(name: str, t: torch.Tensor) -> None:
        # own contiguous CPU storage: safetensors refuses views and shared memory
        tensors[name] = t.detach().cpu().clone(memory_format=torch.contiguous_format)

    for k, v in method.state_dict().items():
        put(f"method/{k}", v)
    generators = method.generators()
    for k, g in generators.items():
        put(f"gen/{k}", g.get_state())
    optim_json = None
    if optimizer is not None:
        sd = optimizer.state_dict()
        optim_json = {
            "param_groups": [{k: v for k, v in g.items()} for g in sd["param_groups"]],
            "state": {},
        }
        for idx, st in sd["state"].items():
            names = []
            for name, v in st.items():
                if not isinstance(v, torch.Tensor):
                    raise CheckpointError(f"optimizer state {idx}.{name} is a {type(v).__name__}, not a tensor")
                put(f"optim/{idx}/{name}", v)
                names.append(name)
            optim_json["state"][str(idx)] = names
    for r, s in enumerate(samplers):
        put(f"sampler/{r}/gen", s.gen.get_state())
        put(f"sampler/{r}/order", torch.tensor(s.order, dtype=torch.int64))
    put("rng/torch", torch.get_rng_state())
    if device.type == "cuda":
        put("rng/cuda", torch.cuda.get_rng_state(device))
    best_json = []
    for r, b in enumerate(state.best):
        for k, v in b["state"].items():
            put(f"best/{r}/{k}", v)
        best_json.append({k: v for k, v in b.items() if k != "state"} | {"state": sorted(b["state"])})

    stem = f"step-{state.step:08d}"
    tpath, jpath = directory / f"{stem}.safetensors", directory / f"{stem}.json"
    blob = safetensors.torch.save(tensors)
    doc = {
        "format": FORMAT,
        "fingerprint": fp,
        "step": state.step,
        "elapsed": state.elapsed,
        "active": state.active,
        "status": state.status,
        "since_best": state.since_best,
        "dev_curves": state.dev_curves,
        "loss_curves": state.loss_curves,
        "best": best_json,
        "optimizer": optim_json,
        "generators": sorted(generators),
        "cuda_rng": device.type == "cuda",
        "tensor_file": tpath.name,
        "tensor_sha256": hashlib.sha256(blob).hexdigest(),
    }
    doc["checksum"] = _doc_checksum(doc)
    try:
        write_bytes(tpath, blob)
        # Python's json writes floats by repr and reads them back bit for bit (inf/NaN too)
        write_bytes(jpath, json.dumps(doc).encode())
        fsync_dir(directory)
    except OSError as e:
        # a checkpoint only saves time: a full disk must not end the run; the previous one stays valid
        log.warning("cannot write checkpoint %s (%s); training goes on, the previous checkpoint (if any) "
                    "stays valid", jpath, e)
        if not jpath.exists():
            tpath.unlink(missing_ok=True)
        return None
    for old in directory.iterdir():
        if old.name not in (tpath.name, jpath.name) and (old.name.startswith("step-") or old.name.startswith(".tmp-")):
            try:
                old.unlink()
            except OSError:
                pass
    return jpath


def _candidates(directory: Path) -> list[Path]:
    try:
        names = [p for p in directory.iterdir() if _NAME_RE.match(p.name)]
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(names, key=lambda p: p.name, reverse=True)


def _read(jpath: Path, fp: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """Parse and verify one checkpoint; CheckpointError naming the file and what is wrong."""
    import safetensors.torch

    try:
        size = jpath.stat().st_size
        if size > MAX_JSON_BYTES:
            raise CheckpointError(f"{jpath}: {size} bytes, more than a checkpoint's JSON holds ({MAX_JSON_BYTES})")
        doc = json.loads(jpath.read_bytes())
    except (OSError, ValueError, UnicodeError) as e:
        raise CheckpointError(f"{jpath}: not readable JSON ({e})") from None
    except RecursionError:  # '[' * 100000: must not end every resume in a crash
        raise CheckpointError(f"{jpath}: JSON nested too deeply to parse") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{jpath}: field 'format' is {doc.get('format') if isinstance(doc, dict) else doc!r}, "
                              f"expected {FORMAT}")
    if doc.get("checksum") != _doc_checksum(doc):
        raise CheckpointError(f"{jpath}: field 'checksum' does not match the file's content (edited or damaged)")
    if doc.get("fingerprint") != fp:
        raise CheckpointError(f"{jpath}: field 'fingerprint' belongs to another bank (other runs, tasks, method, "
                              f"initial values, device or micro-batch size)")
    tpath = jpath.with_name(str(doc.get("tensor_file")))
    if tpath.parent != jpath.parent:
        raise CheckpointError(f"{jpath}: field 'tensor_file' points outside the checkpoint directory")
    try:
        data, digest = _sha256_file(tpath)
    except OSError as e:
        raise CheckpointError(f"{jpath}: its tensor file {tpath.name} cannot be read ({e})") from None
    if digest != doc.get("tensor_sha256"):
        raise CheckpointError(f"{tpath}: sha256 {digest[:12]}... != field 'tensor_sha256' of {jpath.name}")
    try:
        tensors = safetensors.torch.load(data)
    except Exception as e:  # safetensors raises its own error types on a malformed header
        raise CheckpointError(f"{tpath}: not a safetensors file ({e})") from None
    return doc, tensors


def _num(v: Any) -> bool:
    """A JSON number (inf too: an untried run's best dev accuracy starts at -inf), not a bool."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _same_kind(a: Any, b: Any) -> bool:
    if _num(b) or b is None:
        return _num(a) or a is None
    if isinstance(b, (tuple, list)):
        return isinstance(a, list) and len(a) == len(b) and all(_same_kind(x, y) for x, y in zip(a, b))
    return type(a) is type(b)


def _check_gen_state(t: torch.Tensor, gen: torch.Generator, name: str, where: Path) -> None:
    want = gen.get_state()
    if t.dtype != want.dtype or t.shape != want.shape:
        raise CheckpointError(f"{where}: tensor {name!r} is not a state of this kind of random generator")


def _need(tensors: dict, name: str, where: Path) -> torch.Tensor:
    if name not in tensors:
        raise CheckpointError(f"{where}: tensor {name!r} is missing")
    return tensors[name]


def load(directory: Path | None, fp: str, *, method: torch.nn.Module, optimizer, samplers,
         device: torch.device) -> LoopState | None:
    """Restore the newest valid checkpoint of this bank into ``method``, ``optimizer``, ``samplers`` and
    the global RNG, and return the loop state; None (nothing changed) when there is none.

    Everything is read and checked before anything is changed, so a bad checkpoint leaves the bank
    as it was (it then starts from step 0).
    """
    if directory is None:
        return None
    for jpath in _candidates(Path(directory)):
        try:
            doc, tensors = _read(jpath, fp)
            plan = _plan(doc, tensors, jpath, method, optimizer, samplers)
            state = _loop_state(doc, tensors, device)
        except CheckpointError as e:
            log.warning("ignoring checkpoint: %s", e)
            continue
        except Exception as e:  # noqa: BLE001 - a malformation _plan did not foresee: ignored, never a crash
            log.warning("ignoring checkpoint: %s: malformed (%s: %s)", jpath, type(e).__name__, str(e)[:200])
            continue
        saved = _snapshot(method, optimizer, samplers)
        try:
            _apply(plan, doc, tensors, method=method, optimizer=optimizer, samplers=samplers, device=device)
        except Exception as e:  # noqa: BLE001 - put the bank back as it was, then try an older checkpoint
            _restore(saved, method, optimizer, samplers)
            log.warning("ignoring checkpoint: %s: cannot be applied (%s: %s)", jpath, type(e).__name__, str(e)[:200])
            continue
        # a warning so that the CLI (no logging set up) says it on stderr: the user sees the resume
        log.warning("resuming bank from checkpoint %s (step %d)", jpath, doc["step"])
        return state
    return None


def _loop_state(doc: dict, tensors: dict, device: torch.device) -> LoopState:
    """The loop state of a checked checkpoint (built before anything is applied: it may still raise)."""
    best = []
    for r, b in enumerate(doc["best"]):
        st = {k: tensors[f"best/{r}/{k}"].to(device) for k in b["state"]}
        best.append({k: v for k, v in b.items() if k != "state"} | {"state": st})
    return LoopState(
        step=int(doc["step"]), elapsed=float(doc["elapsed"]), active=list(doc["active"]),
        status=list(doc["status"]), best=best, since_best=list(doc["since_best"]),
        dev_curves=[[tuple(p) for p in c] for c in doc["dev_curves"]],
        loss_curves=[[tuple(p) for p in c] for c in doc["loss_curves"]],
    )


def _snapshot(method, optimizer, samplers) -> dict:
    """What :func:`_apply` changes, copied, so that a failure half-way can be undone."""
    import copy

    return {"method": {k: v.detach().clone() for k, v in method.state_dict().items()},
            "gens": {k: g.get_state() for k, g in method.generators().items()},
            "optim": copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None,
            "groups": [dict(g) for g in optimizer.param_groups] if optimizer is not None else None,
            "samplers": [(s.gen.get_state(), list(s.order)) for s in samplers],
            "rng": torch.get_rng_state()}


def _restore(saved: dict, method, optimizer, samplers) -> None:
    method.load_state_dict(saved["method"])
    for k, g in method.generators().items():
        g.set_state(saved["gens"][k])
    if optimizer is not None:
        old = list(optimizer.param_groups)
        optimizer.load_state_dict(saved["optim"])
        for i, (o, before) in enumerate(zip(old, saved["groups"])):
            o.clear()
            o.update(before)
            optimizer.param_groups[i] = o  # the bank holds references to these dicts
    for s, (g, order) in zip(samplers, saved["samplers"]):
        s.gen.set_state(g)
        s.order = order
    torch.set_rng_state(saved["rng"])


def _plan(doc: dict, tensors: dict, where: Path, method, optimizer, samplers) -> dict:
    """Check that the checkpoint fits this bank in every detail; returns the optimizer state dict to load."""
    R = len(samplers)
    for name in ("active", "status", "since_best", "dev_curves", "loss_curves", "best"):
        if not isinstance(doc.get(name), list) or len(doc[name]) != R:
            raise CheckpointError(f"{where}: field {name!r} is not a list of {R} runs")
    if not isinstance(doc.get("step"), int) or isinstance(doc["step"], bool) or doc["step"] < 1:
        raise CheckpointError(f"{where}: field 'step' is {doc.get('step')!r}")
    if not _num(doc.get("elapsed")):
        raise CheckpointError(f"{where}: field 'elapsed' is not a number")
    if not all(isinstance(a, bool) for a in doc["active"]) or not all(isinstance(a, str) for a in doc["status"]):
        raise CheckpointError(f"{where}: field 'active' or 'status' holds a value of the wrong type")
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in doc["since_best"]):
        raise CheckpointError(f"{where}: field 'since_best' holds a value that is not an integer")
    for name in ("dev_curves", "loss_curves"):
        for c in doc[name]:
            if not isinstance(c, list) or any(not isinstance(p, list) or len(p) != 2 or not all(_num(x) for x in p)
                                              for p in c):
                raise CheckpointError(f"{where}: field {name!r} is not a list of (step, value) pairs per run")
    for r, b in enumerate(doc["best"]):
        if (not isinstance(b, dict) or not _num(b.get("acc")) or not _num(b.get("loss"))
                or not (b.get("step") is None or _num(b.get("step")))
                or ("dev" in b and not isinstance(b["dev"], dict))):
            raise CheckpointError(f"{where}: field best[{r}] is malformed")
    for k in ("rng/torch", "rng/cuda"):
        if k in tensors and (tensors[k].dtype != torch.uint8 or tensors[k].dim() != 1):
            raise CheckpointError(f"{where}: tensor {k!r} is not a random generator state")
    for k, v in method.state_dict().items():
        t = _need(tensors, f"method/{k}", where)
        if t.shape != v.shape or t.dtype != v.dtype:
            raise CheckpointError(f"{where}: tensor 'method/{k}' is {tuple(t.shape)} {t.dtype}, the method's "
                                  f"{tuple(v.shape)} {v.dtype}")
    gens = method.generators()
    if not isinstance(doc.get("generators"), list) or not all(isinstance(k, str) for k in doc["generators"]) \
            or sorted(doc["generators"]) != sorted(gens):
        raise CheckpointError(f"{where}: field 'generators' does not match the method's generators")
    for k in doc["generators"]:
        _check_gen_state(_need(tensors, f"gen/{k}", where), gens[k], f"gen/{k}", where)
    for r in range(R):
        _check_gen_state(_need(tensors, f"sampler/{r}/gen", where), samplers[r].gen, f"sampler/{r}/gen", where)
        order = _need(tensors, f"sampler/{r}/order", where)
        n = getattr(samplers[r], "n", None)
        if order.dtype != torch.int64 or order.dim() != 1 or (
                n is not None and order.numel() and (int(order.min()) < 0 or int(order.max()) >= n)):
            raise CheckpointError(f"{where}: tensor 'sampler/{r}/order' is not an order of the run's {n} rows")
        b = doc["best"][r]
        if not isinstance(b, dict) or not isinstance(b.get("state"), list):
            raise CheckpointError(f"{where}: field best[{r}] is malformed")
        for k in b["state"]:
            _need(tensors, f"best/{r}/{k}", where)
    _need(tensors, "rng/torch", where)
    if doc.get("cuda_rng"):
        _need(tensors, "rng/cuda", where)
    if (optimizer is None) != (doc.get("optimizer") is None):
        raise CheckpointError(f"{where}: field 'optimizer' does not match the bank (with or without an optimizer)")
    if optimizer is None:
        return {}
    oj = doc["optimizer"]
    if not isinstance(oj, dict) or not isinstance(oj.get("state", {}), dict):
        raise CheckpointError(f"{where}: field 'optimizer' is malformed")
    groups = oj.get("param_groups")
    if not isinstance(groups, list) or len(groups) != len(optimizer.param_groups):
        raise CheckpointError(f"{where}: field 'optimizer.param_groups' has another number of groups")
    for g, mine in zip(groups, optimizer.param_groups):
        if not isinstance(g, dict) or not isinstance(g.get("params"), list) or len(g["params"]) != len(mine["params"]):
            raise CheckpointError(f"{where}: field 'optimizer.param_groups' has another number of parameters")
        for k, v in mine.items():  # every hyper-parameter of ours, of the same JSON type (lr a number, ...)
            if k != "params" and k in g and not _same_kind(g[k], v):
                raise CheckpointError(f"{where}: field 'optimizer.param_groups.{k}' has the wrong type")
    params = [p for g in optimizer.param_groups for p in g["params"]]
    n_params = len(params)
    state = {}
    for idx, names in oj.get("state", {}).items():
        if not idx.isdigit() or int(idx) >= n_params or not isinstance(names, list) \
                or not all(isinstance(n, str) for n in names):
            raise CheckpointError(f"{where}: field 'optimizer.state' is malformed")
        state[int(idx)] = {n: _need(tensors, f"optim/{idx}/{n}", where) for n in names}
        param = params[int(idx)]
        for n, t in state[int(idx)].items():  # Adam's moments have their parameter's shape; its step is a scalar
            if t.dim() and t.shape != param.shape:
                raise CheckpointError(f"{where}: tensor 'optim/{idx}/{n}' has shape {tuple(t.shape)}, its parameter "
                                      f"{tuple(param.shape)}")
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g) for g in groups]
    return {"state": state, "param_groups": groups}


def _apply(plan: dict, doc: dict, tensors: dict, *, method, optimizer, samplers, device: torch.device) -> None:
    method.load_state_dict({k[len("method/"):]: v for k, v in tensors.items() if k.startswith("method/")})
    gens = method.generators()
    for k in doc["generators"]:
        gens[k].set_state(tensors[f"gen/{k}"])
    if optimizer is not None:
        # load_state_dict makes new group dicts; the bank holds references to the old ones
        # (to stop a run by setting its lr to 0), so the loaded values are copied back into them
        old = list(optimizer.param_groups)
        optimizer.load_state_dict(plan)
        for i, (o, n) in enumerate(zip(old, optimizer.param_groups)):
            o.update(n)
            optimizer.param_groups[i] = o
    for r, s in enumerate(samplers):
        s.gen.set_state(tensors[f"sampler/{r}/gen"])
        s.order = tensors[f"sampler/{r}/order"].tolist()
    torch.set_rng_state(tensors["rng/torch"])
    if doc.get("cuda_rng") and device.type == "cuda":
        torch.cuda.set_rng_state(tensors["rng/cuda"], device)


# --------------------------------------------------------------------------------------------------
# the experiment layer


def bank_key(specs: Sequence[dict]) -> str:
    """The checkpoint key of a bank that computes the results of ``specs`` (in order)."""
    from ipt_core.store.keys import spec_key

    return spec_key({"kind": "bank_checkpoint", "format": FORMAT, "specs": list(specs)})


def bank_dir(store, specs: Sequence[dict]) -> Path | None:
    """The checkpoint directory of the bank computing ``specs`` (None when ``store`` is None or there
    are no specs: no checkpoints). Call :func:`discard` once its results are stored; until then a
    crash, cancel or ``kill -9`` leaves it for the same request to resume.
    """
    if store is None or not specs:
        return None
    return store.checkpoint_dir(bank_key(specs))


def discard(directory: Path | None) -> None:
    """Remove a bank's checkpoint directory (its results are stored)."""
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
