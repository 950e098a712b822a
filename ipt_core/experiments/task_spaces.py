"""Map quality of a suite's task spaces, measured against chance and two model-only baselines.

    python -m ipt_core map-quality --suite demo [--json] [--uncentred] [--no-layer-norm]

Spaces come from the store (the newest ``task_map`` of the suite: raw prompt, intrinsic, IST;
ATTEMPT's attention rows when a comparison of the suite has them). The baselines need only the
frozen model, forward passes of the tasks' training inputs, cached in the store as
``task_text_embedding`` entries (one per task):

- ``text``: the mean frozen sentence embedding of the task's training inputs (a task2vec-like
  reference every analyst would ask for);
- ``zero_shot_profile``: the frozen model's zero-shot label distribution over every label name
  of the suite (softmax of the backbone's scores), averaged over the task's training inputs.

Nothing trains. ``--no-compute`` uses only baselines already stored (the shipped results carry
the demo's).
"""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Sequence

import numpy as np
import torch

from ipt_core.analysis import map_quality as mq
from ipt_core.backbones import Backbone
from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.store import Store
from ipt_core.store.entry import Entry
from ipt_core.tasks import Suite, Task

EMBED_VERSION = "task-text-embedding-1"


def text_embedding_spec(backbone: Backbone, task: Task, vocab: Sequence[str]) -> dict:
    """Everything that decides a task's text embedding and zero-shot profile."""
    return {"method": "task_text_embedding", "code_version": EMBED_VERSION, "backbone": backbone.identity(),
            "task": task.name, "task_data": task.data_hash(), "vocabulary": list(vocab)}


def _embed_task(backbone: Backbone, task: Task, vocab: Sequence[str], device, batch_size: int = 64) -> dict:
    """Mean pooled frozen features ``[d]`` and mean zero-shot label distribution ``[V]`` of the train inputs."""
    from ipt_core.experiments.baselines import frozen_features

    examples = list(task.split("train"))
    feats = frozen_features(backbone, examples, device=device, batch_size=batch_size)
    table = backbone.label_table([SimpleNamespace(name="__vocabulary__", labels=tuple(vocab))])
    probs = []
    with torch.no_grad():
        for i in range(0, len(examples), batch_size):
            enc = backbone.collate(examples[i:i + batch_size]).to(device)
            ids = torch.zeros(enc.input_ids.shape[0], dtype=torch.long, device=enc.input_ids.device)
            probs.append(torch.softmax(backbone.logits(enc, ids, table).float(), dim=-1).cpu())
    return {"text": torch.from_numpy(np.asarray(feats, dtype=np.float32).mean(0)),
            "zero_shot_profile": torch.cat(probs).mean(0)}


def text_embeddings(store: Store, backbone: Backbone, tasks: Sequence[Task], *, device=None,
                    read_only: Sequence[Store] = (), command: str | None = None) -> list[Entry]:
    """One ``task_text_embedding`` entry per task (computed where missing, forward passes only)."""
    from ipt_core.train.bank import pick_device

    dev = pick_device(device)
    backbone.to(dev)
    vocab = mq.label_vocabulary(tasks)
    vh = mq.vocabulary_hash(vocab)
    out = []
    for t in tasks:
        spec = text_embedding_spec(backbone, t, vocab)
        e = next((e for s in [store, *read_only] if (e := s.get(spec)) is not None), None)
        if e is None:
            t0 = time.time()
            tensors = _embed_task(backbone, t, vocab, dev)
            meta = {"task": t.name, "family": t.type, "task_data": t.data_hash(), "backbone_spec": backbone.spec,
                    "vocabulary": vh, "n_labels": len(vocab), "n_inputs": len(t.split("train")),
                    "seconds": time.time() - t0}
            e = store.put(mq.TEXT_KIND, spec, meta, tensors, command=command)
        out.append(e)
    return out


def collect_spaces(stores: Sequence[Store], suite: Suite) -> tuple[dict, dict, dict, Entry | None]:
    """``(spaces, families, layers, task_map entry)`` of a suite from the stores (see map_quality_report)."""
    fams = {t.name: t.type for t in suite.tasks}
    tm = mq.latest_task_map(stores, suite.name, suite.names())
    spaces: dict = {}
    layers: dict = {}
    if tm is not None:
        spaces, tm_fams, layers = mq.task_map_spaces(stores, tm)
        fams = {**tm_fams, **fams}
    att = mq.attention_space(stores, suite.name)
    if att is not None:
        spaces["attention"] = att
    return spaces, fams, layers, tm


def map_quality_report(stores: Sequence[Store], suite: Suite, *, backbone: str | Backbone = DEFAULT_BACKBONE,
                       device=None, compute: bool = True, centre: bool = True, layer_norm: bool = True,
                       command: str | None = None) -> dict:
    """The map-quality report of a suite (see :func:`ipt_core.analysis.map_quality.quality_report`), with the
    text and zero-shot-profile baselines (computed into ``stores[0]`` where missing and
    ``compute``; else read from the stores)."""
    spaces, fams, layers, tm = collect_spaces(stores, suite)
    tasks = list(suite.tasks)
    spec = backbone if isinstance(backbone, str) else backbone.spec
    have = mq.stored_baselines(stores, tasks, spec)
    if compute and (not have or len(have["text"][1]) < len(tasks)):  # load the model only when some are missing
        from ipt_core.experiments.context import cached_backbone
        from ipt_core.train.bank import pick_device

        bb = backbone if isinstance(backbone, Backbone) else cached_backbone(backbone, str(pick_device(device)))
        text_embeddings(stores[0], bb, tasks, device=device, read_only=stores[1:], command=command)
        spec = bb.spec
    base = mq.stored_baselines(stores, tasks, spec)
    report = mq.quality_report(spaces, fams, base, centre=centre, layers=layers if layer_norm else None)
    report.update({"suite": suite.name, "task_map": tm.key if tm is not None else None,
                   "layer_norm": layer_norm, "layers": {k: v for k, v in layers.items() if v},
                   "backbone": spec})
    if not spaces:
        report["note"] = "no task_map in the store for this suite: run python -m ipt_core pipeline --suite " + suite.name
    return report


def format_report(r: dict) -> str:
    """A plain-text table of a map-quality report."""
    lines = [f"suite {r['suite']}: {r['n_tasks']} tasks, chance {r['chance_nn1']:.3f} "
             f"({'centred' if r['centred'] else 'uncentred'} cosine)" if r.get("chance_nn1") is not None else
             f"suite {r['suite']}: no spaces",
             f"{'space':>20} {'tasks':>6} {'nn1':>6} {'nn3':>6} {'chance':>7} {'trust':>6}"]
    for group in ("spaces", "baselines"):
        for name, q in r.get(group, {}).items():
            tw = q.get("trustworthiness")
            lines.append(f"{name + (' (baseline)' if group == 'baselines' else ''):>20} {q['n_tasks']:>6} "
                         f"{q['nn1_family']:>6.3f} {q['nn3_family']:>6.3f} {q['chance']:>7.3f} "
                         f"{'n/a' if tw is None else format(tw, '.3f'):>6}")
    if r.get("best_space"):
        lines.append(f"best space: {r['best_space']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# reproducing commands


