"""Are ATTEMPT and VIP degenerate? ATTEMPT's attention entropy relative to uniform (1 = uniform:
the heatmap carries no similarity signal) and VIP's codebook usage (codes used, perplexity).
``compare --json`` reports them under ``diagnostics``.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

if TYPE_CHECKING:  # pragma: no cover
    from ipt_core.store.entry import Entry


def attention_entropy(weights: torch.Tensor) -> float:
    """Mean over rows of the entropy of each row's attention ``[B, C]`` divided by ``log C`` (1 = uniform).

    Example::

        attention_entropy(torch.full((2, 4), 0.25))   # 1.0
    """
    w = weights.float().clamp_min(0)
    h = -(w * w.clamp_min(1e-12).log()).sum(-1)
    return float((h / math.log(w.shape[-1])).mean()) if w.shape[-1] > 1 else 0.0


def codebook_stats(counts) -> dict:
    """Codes used (any lookup), perplexity ``exp(H(usage))`` and codebook size of lookup counts ``[K]``.

    Example::

        codebook_stats([2, 2, 0, 0])   # {"codes_used": 2, "perplexity": 2.0, "codebook_size": 4}
    """
    c = np.asarray(counts, dtype=float)
    p = c / max(c.sum(), 1e-12)
    nz = p[p > 0]
    return {"codes_used": int((c > 0).sum()), "perplexity": float(np.exp(-(nz * np.log(nz)).sum())) if len(nz) else 0.0,
            "codebook_size": int(len(c))}


def diagnostics(attempt_entries: Sequence["Entry"], vip_entries: Sequence["Entry"]) -> dict:
    """Is ATTEMPT's attention informative and is VIP's codebook alive? Means over runs of
    ``attention_entropy`` (1 = uniform) and of ``codes_used`` / ``perplexity`` on the test rows."""
    out: dict = {}
    ents = [h for e in attempt_entries for h in e.meta.get("attention_entropy", [])]
    if ents:
        out["attempt"] = {"entropy_vs_uniform": float(np.mean(ents)), "max_entropy_vs_uniform": float(np.max(ents)),
                          "temperature": attempt_entries[0].spec["config"].get("temperature"), "runs": len(ents)}
    stats = [codebook_stats(e.meta["codebook_usage"]) for e in vip_entries]
    if stats:
        out["vip"] = {"codes_used": float(np.mean([s["codes_used"] for s in stats])),
                      "min_codes_used": int(min(s["codes_used"] for s in stats)),
                      "perplexity": float(np.mean([s["perplexity"] for s in stats])),
                      "codebook_size": stats[0]["codebook_size"], "runs": len(stats),
                      "dead_code_threshold": vip_entries[0].spec["config"].get("dead_code_threshold")}
    return out
