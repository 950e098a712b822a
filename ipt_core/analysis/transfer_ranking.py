"""How well a similarity measure ranks source tasks for a target: the transfer literature's ranking metrics.

For one target, every source ``s`` has an observed *gain* ``g_s`` (test accuracy of prompt tuning
started from the source's prompt minus that of the default initialisation) and a measure's predicted
*score* ``p_s`` (e.g. the cosine of the two prompts). With ``S`` sources, ``g* = max_s g_s`` the
oracle's best gain and ``top_k`` the ``k`` sources with the highest scores:

- **Spearman** rho of (gains, scores) and its p-value (``scipy.stats.spearmanr``, average ranks for ties).
- **NDCG@k** (Järvelin & Kekäläinen 2002, used for source selection by Vu et al. 2020/2022 "SPoT",
  Poth et al. 2021 and Lin et al. 2024): relevance ``r_s = g_s - min_s g_s`` (the worst source is 0),
  ``DCG@k = sum_{i=1..k} r_(i) / log2(i + 1)`` over the predicted order, ``NDCG@k = DCG@k / IDCG@k``
  with the ideal order by gain. Why the shift: DCG needs non-negative relevance and gains are negative
  where transfer hurts; clipping at 0 would erase the order among harmful sources, and the shift
  equals "target accuracy after transfer minus the worst source's", so it drops the offset of the
  default run (and of the base accuracy, which makes NDCG on raw accuracies near 1 for any order).
  Undefined (NaN) when all gains are equal.
- **Regret@k** (Poth et al. 2021): ``best_k = max_{s in top_k} g_s``; ``regret_abs = g* - best_k``
  (in the gains' units, accuracy fractions here); ``regret_rel = regret_abs / g*`` where ``g* > 0``,
  NaN where ``g* <= 0`` (no source helps: a share of a non-positive gain means nothing; read
  ``regret_abs``). Note: Poth et al. divide by the oracle's target *score*, not its gain; the
  relative regret of a gain is larger and grows without bound as ``g*`` approaches 0.
- **Top-k oracle share** (Vu et al. 2022, SPoT's "share of the oracle's gain reached by trying the
  top-k sources"): ``best_k / g*`` for ``k = 1..S`` (NaN where ``g* <= 0``), beside the oracle
  (all 1) and a random order's exact expectation ``E[max of a uniform random k-subset] / g*``.
  Pooled over targets as SPoT does: the mean of ``best_k`` over the mean of ``g*`` (a ratio of
  means); the mean of per-target ratios is dominated by targets whose best gain is one test example.

Ties in the scores: the order inside a tied group is taken as uniformly random and NDCG, Regret and
the share are their exact expectations over it (for NDCG each tied position gets the group's mean
relevance, McSherry & Najork 2008). So a constant measure scores exactly the random-order baseline.
``k`` larger than ``S`` is read as ``S`` (trying every source).

``ranking_report`` pools these over targets (mean over targets, a bootstrap 95% interval resampling
targets) and puts the random-order expectation of every metric beside them.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

ALPHA = 0.05


# --------------------------------------------------------------------------------------------------
# checks and the tie-aware core


def _check(gains: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    g, p = np.asarray(gains, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if g.ndim != 1 or p.ndim != 1:
        raise ValueError(f"gains and scores must be 1-D (got shapes {g.shape} and {p.shape})")
    if len(g) != len(p):
        raise ValueError(f"gains and scores differ in length ({len(g)} vs {len(p)}): one score per source")
    if len(g) < 2:
        raise ValueError(f"fewer than 2 sources ({len(g)}): nothing to rank")
    for name, x in (("gains", g), ("scores", p)):
        bad = np.flatnonzero(~np.isfinite(x))
        if len(bad):
            raise ValueError(f"{name} are not all finite (NaN or inf at positions {bad.tolist()})")
    return g, p


def _check_k(k: Any, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer (got {k!r})")
    return int(min(k, n))


def _groups(gains: np.ndarray, scores: np.ndarray) -> list[np.ndarray]:
    """The gains of the sources, grouped by equal score, highest score first."""
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    cuts = np.flatnonzero(np.diff(s) != 0) + 1
    return [gains[idx] for idx in np.split(order, cuts)]


def _expected_max_subset(values: np.ndarray, m: int, floor: float = -math.inf) -> float:
    """E[max(floor, max of a uniform random m-subset of values)], exactly.

    With ``v_1 <= ... <= v_n`` the max of the subset is ``v_j`` with probability C(j-1, m-1) / C(n, m).
    """
    v = np.sort(values)
    n = len(v)
    total = math.comb(n, m)
    return float(sum(math.comb(j - 1, m - 1) / total * max(floor, float(v[j - 1])) for j in range(m, n + 1)))


def _expected_best(groups: list[np.ndarray], k: int) -> float:
    """E[best gain among the top k] when each tied group's order is uniformly random."""
    best, left = -math.inf, k
    for grp in groups:
        if len(grp) <= left:
            best, left = max(best, float(grp.max())), left - len(grp)
            if left == 0:
                return best
        else:
            return _expected_max_subset(grp, left, best)
    return best


def _dcg(rel_by_position: np.ndarray, k: int) -> float:
    return float(np.sum(rel_by_position[:k] / np.log2(np.arange(2, k + 2))))


# --------------------------------------------------------------------------------------------------
# the metrics of one target


def spearman_per_target(gains: Any, scores: Any) -> tuple[float, float]:
    """Spearman's rho of the sources' gains and the measure's scores, and its two-sided p-value.

    ``scipy.stats.spearmanr`` (average ranks for ties; its p-value is the t approximation, rough for a
    handful of sources, NaN for 2). Where either input is constant rho is undefined: returns ``(nan, nan)``.

    Example:
        >>> spearman_per_target([0.03, 0.01, -0.02], [0.9, 0.5, 0.1])[0]
        1.0
    """
    g, p = _check(gains, scores)
    if np.ptp(g) == 0 or np.ptp(p) == 0:
        return float("nan"), float("nan")
    from scipy.stats import spearmanr  # here: the app's first page must not load scipy

    r = spearmanr(g, p)
    return float(r.statistic), float(r.pvalue)


def ndcg_at_k(gains: Any, scores: Any, k: int | None = None) -> float:
    """NDCG@k of the predicted order, relevance = gain minus the worst source's gain.

    ``DCG@k = sum_{i<=k} r_(i) / log2(i + 1)`` with ``r_s = g_s - min g`` (so the worst source is 0:
    gains may be negative, DCG needs relevance >= 0; see the module docstring for why a shift and not a
    clip), divided by the DCG@k of the order by gain. Tied scores: expectation over their order.
    ``k=None`` (or k > S) ranks all sources. NaN where all gains are equal. A perfect predictor gives 1.

    Example:
        >>> ndcg_at_k([4, 2, 1, -1], [0.9, 0.5, 0.3, 0.1], k=2)
        1.0
    """
    g, p = _check(gains, scores)
    k = len(g) if k is None else _check_k(k, len(g))
    rel = g - g.min()
    ideal = _dcg(np.sort(rel)[::-1], k)
    if ideal == 0:
        return float("nan")
    predicted = np.concatenate([np.full(len(grp), grp.mean() - g.min()) for grp in _groups(g, p)])
    return _dcg(predicted, k) / ideal


def regret_at_k(gains: Any, scores: Any, k: int) -> dict:
    """Regret@k (Poth et al. 2021) of trying the k best-scored sources instead of the oracle's best.

    Returns ``{"regret_abs", "regret_rel", "best_top_k", "oracle"}`` with ``oracle = g* = max g``,
    ``best_top_k`` = the best gain among the top-k predicted (its expectation over tied scores),
    ``regret_abs = g* - best_top_k`` (>= 0, the gains' units) and ``regret_rel = regret_abs / g*`` where
    ``g* > 0``, NaN where ``g* <= 0`` (no source helps; read ``regret_abs``). A perfect predictor gives 0.

    Example:
        >>> regret_at_k([4, 2, 1, -1], [0.1, 0.9, 0.5, 0.3], k=1)
        {'regret_abs': 2.0, 'regret_rel': 0.5, 'best_top_k': 2.0, 'oracle': 4.0}
    """
    g, p = _check(gains, scores)
    k = _check_k(k, len(g))
    oracle, best = float(g.max()), _expected_best(_groups(g, p), k)
    regret = max(oracle - best, 0.0)  # >= 0 by construction; max() only guards the rounding of a sum
    return {"regret_abs": regret, "regret_rel": regret / oracle if oracle > 0 else float("nan"),
            "best_top_k": best, "oracle": oracle}


def random_best_at_k(gains: Any, k: int) -> float:
    """The exact expected best gain among k sources drawn uniformly at random without replacement.

    ``sum_j C(j-1, k-1) / C(S, k) * g_(j)`` over the gains sorted ascending (no sampling).

    Example:
        >>> round(random_best_at_k([4, 2, 1, -1], 2), 4)  # pairs' maxima: 1, 2, 4, 2, 4, 4 -> 17 / 6
        2.8333
    """
    g, _ = _check(gains, np.zeros(np.shape(gains)))
    return _expected_max_subset(g, _check_k(k, len(g)))


def topk_oracle_share(gains: Any, scores: Any) -> dict:
    """The share of the oracle's gain reached by trying the top-k predicted sources, k = 1..S (SPoT).

    Returns ``{"k", "best", "share", "random_best", "random", "oracle", "oracle_gain"}``: per k, the
    best gain among the top k (expectation over tied scores), ``share = best / g*``, the random
    order's exact expectation ``random = E[best of a random k-subset] / g*``, and the oracle's curve
    (all 1). Shares are NaN where ``g* <= 0`` (no source helps: read ``best`` and ``random_best``).
    ``share[-1]`` and ``random[-1]`` are 1; ``random[0]`` is mean(g) / g*.

    Example:
        >>> topk_oracle_share([4, 2, 1, -1], [0.9, 0.5, 0.3, 0.1])["share"]
        [1.0, 1.0, 1.0, 1.0]
    """
    g, p = _check(gains, scores)
    groups, oracle = _groups(g, p), float(g.max())
    ks = list(range(1, len(g) + 1))
    best = [_expected_best(groups, k) for k in ks]
    rand = [_expected_max_subset(g, k) for k in ks]

    def share(x: float) -> float:
        return x / oracle if oracle > 0 else float("nan")

    return {"k": ks, "best": best, "share": [share(b) for b in best], "random_best": rand,
            "random": [share(r) for r in rand], "oracle": [1.0] * len(ks), "oracle_gain": oracle}


def chance_metrics(gains: Any, ks: Iterable[int] = (1, 3, 5)) -> dict:
    """The random order's expected value of every metric of ``target_metrics`` for these gains.

    Spearman's rho is 0 in expectation over random orders (its p-value: None); NDCG@k is
    ``mean(r) * sum_{i<=k} 1/log2(i+1) / IDCG@k``; Regret@k and share@k use ``random_best_at_k``.
    Equal to ``target_metrics`` of a constant score (all sources tied).

    Example:
        >>> chance_metrics([4, 2, 1, -1], ks=(1,))["share@1"]  # mean / max = 1.5 / 4
        0.375
    """
    g, _ = _check(gains, np.zeros(np.shape(gains)))
    out = target_metrics(g, np.zeros(len(g)), ks)
    out["spearman"], out["p_value"] = (0.0 if np.ptp(g) > 0 else None), None
    return out


def target_metrics(gains: Any, scores: Any, ks: Iterable[int] = (1, 3, 5)) -> dict:
    """Every metric of one target as a JSON-ready dict (None where undefined).

    Keys: ``n_sources, oracle_gain, spearman, p_value, ndcg`` (all sources), and per k in ``ks``:
    ``ndcg@k, regret_abs@k, regret_rel@k, share@k, best@k`` (the best gain among the top k).

    Example:
        >>> target_metrics([4, 2, 1, -1], [0.9, 0.5, 0.3, 0.1], ks=(1,))["regret_abs@1"]
        0.0
    """
    g, p = _check(gains, scores)
    rho, pv = spearman_per_target(g, p)
    out = {"n_sources": len(g), "oracle_gain": float(g.max()), "spearman": _num(rho), "p_value": _num(pv),
           "ndcg": _num(ndcg_at_k(g, p))}
    for k in ks:
        r = regret_at_k(g, p, k)
        out[f"ndcg@{k}"] = _num(ndcg_at_k(g, p, k))
        out[f"regret_abs@{k}"] = _num(r["regret_abs"])
        out[f"regret_rel@{k}"] = _num(r["regret_rel"])
        out[f"share@{k}"] = _num(r["best_top_k"] / r["oracle"]) if r["oracle"] > 0 else None
        out[f"best@{k}"] = _num(r["best_top_k"])
    return out


# --------------------------------------------------------------------------------------------------
# over targets


def _num(x: Any) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _finite(row: Mapping, key: str) -> float | None:
    v = row.get(key)
    if v is None:
        return None
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"row {dict(row)!r}: {key} is not finite ({v})")
    return v


def _per_target(rows: Sequence[Mapping], measure: str) -> tuple[dict, int]:
    """{target: (sources, mean gains, mean scores)}: gains and scores averaged over seeds; rows whose
    gain or measure is None are left out (counted)."""
    cells: dict = defaultdict(list)
    seen, skipped = set(), 0
    for r in rows:
        g, s = _finite(r, "gain"), _finite(r, measure)
        if g is None or s is None:
            skipped += 1
            continue
        key = (r["target"], r["source"], r.get("seed"))
        if key in seen:
            raise ValueError(f"two rows for target {key[0]!r}, source {key[1]!r}, seed {key[2]!r}")
        seen.add(key)
        cells[(r["target"], r["source"])].append((g, s))
    out: dict = {}
    for (t, src), vals in cells.items():
        srcs, gs, ss = out.setdefault(t, ([], [], []))
        srcs.append(src)
        gs.append(float(np.mean([v[0] for v in vals])))
        ss.append(float(np.mean([v[1] for v in vals])))
    return out, skipped


def _pool(per_target: Mapping[str, Mapping], keys: Sequence[str], n_boot: int, seed: int) -> dict:
    targets = list(per_target)
    vals = np.array([[np.nan if per_target[t][k] is None else per_target[t][k] for k in keys] for t in targets],
                    dtype=np.float64).reshape(len(targets), len(keys))
    boots = None
    if n_boot > 0 and len(targets) >= 2:
        idx = np.random.default_rng(seed).integers(0, len(targets), size=(n_boot, len(targets)))
        boots = vals[idx]  # [n_boot, T, metric]: every metric sees the same resamples
    out = {}
    for j, k in enumerate(keys):
        col = vals[:, j]
        n = int(np.isfinite(col).sum())
        entry = {"mean": float(np.nanmean(col)) if n else None, "n": n, "ci_low": None, "ci_high": None}
        if boots is not None and n >= 2:
            b = boots[:, :, j]
            counts = np.isfinite(b).sum(1)
            means = np.nansum(b, 1)[counts > 0] / counts[counts > 0]
            entry["ci_low"], entry["ci_high"] = (float(x) for x in np.percentile(means, [2.5, 97.5]))
        out[k] = entry
    return out


def pooled_share_curve(curves: Mapping[str, Mapping]) -> dict:
    """The top-k oracle-share curve pooled over targets as SPoT pools it, k = 1..S (S: the fewest
    sources of any target): the mean over targets of the best gain among the top k, over the mean of
    the oracle's gains (a ratio of means; a mean of per-target ratios explodes where a target's best
    gain is one test example). ``{"k", "share", "random", "n_targets"}``; empty where the mean
    oracle gain is not positive.

    Example:
        >>> pooled_share_curve({"t": {"best": [.1, .3], "random_best": [0., .3], "oracle_gain": .3},
        ...                     "u": {"best": [.1, .1], "random_best": [.05, .1], "oracle_gain": .1}})
        {'k': [1, 2], 'share': [0.5, 1.0], 'random': [0.125, 1.0], 'n_targets': 2}
    """
    usable = [c for c in curves.values() if c.get("best")]
    oracle = float(np.mean([c["oracle_gain"] for c in usable])) if usable else 0.0
    if not usable or oracle <= 0:
        return {"k": [], "share": [], "random": [], "n_targets": len(usable)}
    s = min(len(c["best"]) for c in usable)
    return {"k": list(range(1, s + 1)),
            "share": [float(np.mean([c["best"][i] for c in usable]) / oracle) for i in range(s)],
            "random": [float(np.mean([c["random_best"][i] for c in usable]) / oracle) for i in range(s)],
            "n_targets": len(usable)}


def _pool_shares(per_target: Mapping[str, Mapping], ks: Sequence[int], n_boot: int, seed: int) -> dict:
    """``share@k`` pooled as a ratio of means (SPoT): mean best@k over mean oracle gain, with the
    bootstrap of ``_pool`` (the same resamples of targets); None where the mean oracle gain is <= 0."""
    targets = list(per_target)
    best = np.array([[per_target[t][f"best@{k}"] for k in ks] for t in targets], dtype=np.float64).reshape(len(targets), len(ks))
    oracle = np.array([per_target[t]["oracle_gain"] for t in targets], dtype=np.float64)
    idx = np.random.default_rng(seed).integers(0, len(targets), size=(n_boot, len(targets))) \
        if n_boot > 0 and len(targets) >= 2 else None
    out = {}
    for j, k in enumerate(ks):
        mean_o = oracle.mean() if len(targets) else 0.0
        entry = {"mean": float(best[:, j].mean() / mean_o) if mean_o > 0 else None, "n": len(targets),
                 "ci_low": None, "ci_high": None, "pooling": "ratio of means"}
        if idx is not None and entry["mean"] is not None:
            o = oracle[idx].mean(1)
            ratios = best[:, j][idx].mean(1)[o > 0] / o[o > 0]
            if len(ratios):
                entry["ci_low"], entry["ci_high"] = (float(x) for x in np.percentile(ratios, [2.5, 97.5]))
        out[f"share@{k}"] = entry
    return out


def ranking_report(rows: Sequence[Mapping], measure: str, *, k: Sequence[int] = (1, 3, 5),
                   n_boot: int = 1000, seed: int = 0) -> dict:
    """Spearman, NDCG, Regret@k and top-k share of ``measure`` per target, pooled, and beside chance.

    ``rows``: ``{"target", "source", "gain", measure: score}`` (optionally ``"seed"``; e.g. the pairs of
    ``map_quality.correlations`` with ``measure="sim_prompt"``). Gains and scores are averaged over seeds
    per (target, source) first; rows whose gain or score is None are left out; targets left with fewer
    than 2 sources are listed in ``targets_skipped``. ``pooled[metric]`` is the mean over targets where
    it is defined (``share@k``: SPoT's ratio of means, mean best@k over mean oracle gain, since a
    per-target ratio explodes where the best gain is one test example), with a percentile bootstrap
    95% interval resampling targets with replacement
    (``numpy.random.default_rng(seed)``; None with fewer than 2 targets or ``n_boot=0``).
    ``n_significant`` counts targets with Spearman p < 0.05. ``chance`` holds the same for a random
    order (expected values; its ``n_significant`` is the nominal 0.05 * targets). Plain JSON throughout.

    Example:
        >>> rows = [{"target": "t", "source": s, "gain": g, "cos": c}
        ...         for s, g, c in [("a", .04, .9), ("b", .01, .5), ("c", -.02, .1)]]
        >>> ranking_report(rows, "cos", k=(1,))["pooled"]["regret_abs@1"]["mean"]
        0.0
    """
    ks = [_check_k(x, math.inf) for x in k]
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 0:
        raise ValueError(f"n_boot must be a non-negative integer (got {n_boot!r})")
    grouped, skipped_rows = _per_target(rows, measure)
    per, chance, curves, skipped = {}, {}, {}, []
    for t, (srcs, gs, ss) in grouped.items():
        if len(srcs) < 2:
            skipped.append(t)
            continue
        per[t] = target_metrics(gs, ss, ks)
        order = np.argsort(-np.asarray(ss), kind="stable")
        per[t]["best_source"] = srcs[int(np.argmax(gs))]
        per[t]["top_predicted"] = srcs[int(order[0])]
        chance[t] = chance_metrics(gs, ks)
        c = topk_oracle_share(gs, ss)
        curves[t] = {"share": [_num(x) for x in c["share"]], "random": [_num(x) for x in c["random"]],
                     "best": c["best"], "random_best": c["random_best"], "oracle_gain": c["oracle_gain"]}
    keys = ["spearman", "ndcg"] + [f"{m}@{x}" for x in ks for m in ("ndcg", "regret_abs", "regret_rel", "best")]
    n_sig = sum(1 for m in per.values() if m["p_value"] is not None and m["p_value"] < ALPHA)
    return {"measure": measure, "k": ks, "alpha": ALPHA, "n_boot": int(n_boot), "seed": int(seed),
            "n_targets": len(per), "n_rows_skipped": skipped_rows, "targets_skipped": skipped,
            "per_target": per, "share_curves": curves, "share_curve": pooled_share_curve(curves),
            "pooled": _pool(per, keys, int(n_boot), seed) | _pool_shares(per, ks, int(n_boot), seed),
            "n_significant": n_sig,
            "chance": {"per_target": chance,
                       "pooled": _pool(chance, keys, int(n_boot), seed) | _pool_shares(chance, ks, int(n_boot), seed),
                       "n_significant": ALPHA * len(per)}}
