"""Rows per second of one forward(+backward) at several chunk sizes on this machine (the CPU micro-batch choice).

    PYTHONPATH=. python bench/chunk_size.py
"""
import time

import torch

from ipt_core.config.backbone import DEFAULT_BACKBONE
from ipt_core.experiments.context import cached_backbone
from ipt_core.methods.pt import init_prompt
from ipt_core.tasks import load_suite

bb = cached_backbone(DEFAULT_BACKBONE, "cpu")
s = load_suite("demo")
exs = [e for t in s.tasks for e in t.train][:512]
tasks=[s.tasks[0]]
lt = bb.label_table(tasks)
p = init_prompt(bb, 8, "deep", seed=0).requires_grad_(True)
for n in (16, 32, 64):
    t0=time.time(); rows=0
    for c in range(0, 512, n):
        chunk = exs[c:c+n]; enc = bb.collate(chunk)
        tid = torch.zeros(len(chunk), dtype=torch.long)
        lg = bb.logits(enc, tid, lt, p.unsqueeze(0).expand(len(chunk), *p.shape), "deep")
        lg.float().logsumexp(-1).sum().backward(); rows += len(chunk)
    print("train chunk", n, rows/(time.time()-t0), "rows/s")
for n in (16, 32, 64, 128):
    t0=time.time()
    with torch.no_grad():
        for c in range(0, 512, n):
            chunk = exs[c:c+n]; enc = bb.collate(chunk)
            tid = torch.zeros(len(chunk), dtype=torch.long)
            bb.logits(enc, tid, lt, p.unsqueeze(0).expand(len(chunk), *p.shape), "deep")
    print("eval chunk", n, 512/(time.time()-t0), "rows/s")
