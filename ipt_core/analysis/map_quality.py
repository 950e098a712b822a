"""Task similarity that is not saturated, and how good a task map is, measured.

Deep prompts of different tasks share one large common component (the scale and direction of the
hidden states each layer sees), so the plain cosine of two flattened prompts is ~1 for every pair
and a map of them shows nothing. Here every space is prepared the same way before cosines, PCA
and neighbours: optional **per-layer normalisation** (each layer's block of a deep prompt divided
by that layer's RMS norm over the tasks, so no layer dominates by scale), then **centring** on the
mean task vector (what every task shares is removed; what is left is what tells tasks apart).
``centre=False`` keeps the uncentred view.

Map quality is the share of tasks whose nearest neighbours (cosine, in the prepared space) are
of their own family, against the chance level of the suite's family sizes; and the
trustworthiness (scikit-learn) of a 2-D projection, i.e. how far its neighbourhoods are real.

Pure numpy / scikit-learn over ``[N, D]`` arrays; no store, no model.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> common = rng.normal(size=50) * 10
    >>> x = common + np.repeat(rng.normal(size=(3, 50)), 4, axis=0) + rng.normal(size=(12, 50)) * 0.1
    >>> fams = [f for f in "abc" for _ in range(4)]
    >>> round(float(similarity(x, centre=False)[0, 5]), 2) > 0.9       # saturated
    True
    >>> round(float(similarity(x)[0, 5]), 2) < 0.5                     # centred: families stand out
    True
    >>> neighbour_agreement(similarity(x), fams, 1), round(chance_agreement(fams), 3)
    (1.0, 0.273)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ipt_core.analysis.maps import pca_2d

__all__ = [
    "prepare", "similarity", "neighbour_agreement", "chance_agreement", "pca", "trustworthiness",
    "space_quality", "quality_report", "best_space", "robust_range", "off_diagonal", "correlations", "pair_rows",
    "correlate",
]

KS = (1, 3)


def _matrix(vectors: Any, name: str = "vectors") -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array [N, D], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def prepare(vectors: Any, *, centre: bool = True, layers: int | None = None) -> np.ndarray:
    """``[N, D]`` -> ``[N, D]``: per-layer normalised (``layers`` equal blocks of each row, e.g. the
    L layers of a flattened deep prompt ``[L, n, d]``), then centred on the mean row (``centre``).

    Per-layer normalisation divides block ``l`` of every row by the RMS over tasks of that block's
    norm, so tasks keep their relative sizes within a layer and every layer weighs the same.

    Example:
        >>> prepare([[1.0, 2.0], [3.0, 4.0]]).tolist()
        [[-1.0, -1.0], [1.0, 1.0]]
        >>> prepare([[1.0, 100.0], [3.0, 300.0]], centre=False, layers=2).round(3).tolist()
        [[0.447, 0.447], [1.342, 1.342]]
    """
    x = _matrix(vectors).copy()
    n, dim = x.shape
    if layers is not None and layers > 1:
        if dim % layers:
            raise ValueError(f"{dim} numbers per task do not split into {layers} layers")
        blocks = x.reshape(n, layers, dim // layers)
        rms = np.sqrt((np.linalg.norm(blocks, axis=2) ** 2).mean(axis=0))  # [L]
        blocks = blocks / np.where(rms > 0, rms, 1.0)[None, :, None]
        x = blocks.reshape(n, dim)
    if centre:
        x = x - x.mean(axis=0, keepdims=True)
    return x


def similarity(vectors: Any, *, centre: bool = True, layers: int | None = None) -> np.ndarray:
    """Pairwise cosine ``[N, N]`` of the :func:`prepare`-d rows (1 on the diagonal; a zero row
    has cosine 0 to the others)."""
    x = prepare(vectors, centre=centre, layers=layers)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 1e-12 * max(1.0, float(norms.max())))
    sim = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def off_diagonal(sim: Any) -> np.ndarray:
    """The off-diagonal entries of a square matrix, flattened."""
    s = np.asarray(sim, dtype=float)
    return s[~np.eye(len(s), dtype=bool)]


def _neighbours(sim: np.ndarray, k: int) -> np.ndarray:
    """Indices ``[N, k]`` of each row's k most similar other rows (stable order on ties)."""
    s = np.array(sim, dtype=float)
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def neighbour_agreement(sim: Any, families: Sequence[str], k: int = 1) -> float:
    """Mean over tasks of the share of its ``k`` nearest neighbours (by ``sim``) of its own family.

    ``k = 1``: the share of tasks whose nearest neighbour is of their family.

    Example:
        >>> neighbour_agreement([[1, .9, 0], [.9, 1, 0], [0, .2, 1]], ["a", "a", "b"], 1)
        0.6666666666666666
    """
    s = np.asarray(sim, dtype=float)
    fam = np.asarray(list(families))
    n = len(fam)
    if s.shape != (n, n):
        raise ValueError(f"a {s.shape} similarity for {n} families")
    if n < 2:
        raise ValueError("neighbours need at least two tasks")
    k = min(k, n - 1)
    nb = _neighbours(s, k)
    return float((fam[nb] == fam[:, None]).mean())


def chance_agreement(families: Sequence[str]) -> float:
    """The expected :func:`neighbour_agreement` of random neighbours (any k):
    mean over tasks of ``(size of its family - 1) / (N - 1)``.

    Example:
        >>> chance_agreement(["a", "a", "b", "b"])
        0.3333333333333333
    """
    fam = list(families)
    n = len(fam)
    if n < 2:
        raise ValueError("chance needs at least two tasks")
    sizes = {f: fam.count(f) for f in set(fam)}
    return float(np.mean([(sizes[f] - 1) / (n - 1) for f in fam]))


def pca(vectors: Any, *, centre: bool = True, layers: int | None = None,
        random_state: int = 0) -> tuple[np.ndarray, list[float]]:
    """:func:`~ipt_core.analysis.maps.pca_2d` of the prepared vectors: ``(coords [N, 2], explained
    variance ratio of PC1, PC2)``.

    PCA centres on its own; ``centre`` only matters through the per-layer normalisation, kept for
    symmetry with :func:`similarity`. Degenerate inputs (one row, identical rows, D = 1) give
    zero columns and a ratio of 0 for them.
    """
    return pca_2d(prepare(vectors, centre=centre, layers=layers), random_state)


def trustworthiness(vectors: Any, coords: Any, *, n_neighbors: int = 3, centre: bool = True,
                    layers: int | None = None) -> float | None:
    """scikit-learn's ``trustworthiness`` of the 2-D ``coords`` against the prepared vectors
    (cosine neighbourhoods, as the neighbour tables use); 1 = every map neighbour is a real one.
    ``n_neighbors`` is capped below N / 2; None when N < 4."""
    from sklearn.manifold import trustworthiness as tw

    x = prepare(vectors, centre=centre, layers=layers)
    c = np.asarray(coords, dtype=float)
    n = len(x)
    k = min(n_neighbors, (n - 1) // 2)
    if n < 4 or k < 1:
        return None
    metric = "cosine" if np.linalg.norm(x, axis=1).min() > 0 else "euclidean"
    return float(tw(x, c, n_neighbors=k, metric=metric))


def space_quality(vectors: Any, families: Sequence[str], *, centre: bool = True, layers: int | None = None,
                  coords: Any = None, ks: Sequence[int] = KS) -> dict:
    """Neighbour-family agreement at each k, chance, and the trustworthiness of a 2-D map.

    ``coords`` None: the PCA of the prepared vectors (its explained variance is reported too).
    Keys: ``n_tasks, nn{k}_family, chance, trustworthiness, explained_variance`` (PCA only).
    """
    x = _matrix(vectors)
    fam = list(families)
    if len(fam) != len(x):
        raise ValueError(f"{len(fam)} families for {len(x)} vectors")
    sim = similarity(x, centre=centre, layers=layers)
    out: dict[str, Any] = {"n_tasks": len(x)}
    for k in ks:
        out[f"nn{k}_family"] = neighbour_agreement(sim, fam, k)
    out["chance"] = chance_agreement(fam)
    if coords is None:
        coords, ratio = pca(x, centre=centre, layers=layers)
        out["explained_variance"] = ratio
    out["trustworthiness"] = trustworthiness(x, coords, centre=centre, layers=layers)
    off = off_diagonal(sim)
    out["cosine_range"] = [float(off.min()), float(off.max())] if len(off) else None
    return out


def quality_report(spaces: Mapping[str, tuple[Any, Sequence[str]]], families: Mapping[str, str],
                   baselines: Mapping[str, tuple[Any, Sequence[str]]] | None = None, *, centre: bool = True,
                   layers: Mapping[str, int | None] | None = None) -> dict:
    """The map-quality JSON of several spaces: ``{"spaces": {name: {...}}, "baselines": {...},
    "chance_nn1", "chance_nn3", "n_tasks", "centred", "best_space"}``.

    ``spaces`` / ``baselines``: name -> ``(vectors [N_s, D_s], task names)``; ``families``: task ->
    family. The top-level chance is that of all tasks named anywhere; each space carries its own
    (a space may hold fewer tasks, e.g. only those with an IST solution).
    """
    layers = layers or {}
    everyone: dict[str, str] = {}
    out: dict[str, Any] = {"spaces": {}, "baselines": {}, "centred": centre}
    for group, items in (("spaces", spaces), ("baselines", baselines or {})):
        for name, (vectors, names) in items.items():
            names = list(names)
            if len(names) < 2:
                continue
            fams = [families.get(t, "") for t in names]
            everyone.update(zip(names, fams))
            out[group][name] = space_quality(vectors, fams, centre=centre, layers=layers.get(name))
    fams_all = list(everyone.values())
    c = chance_agreement(fams_all) if len(fams_all) >= 2 else None
    out.update({"n_tasks": len(fams_all), "chance_nn1": c, "chance_nn3": c, "best_space": best_space(out)})
    return out


def best_space(report: Mapping) -> str | None:
    """The space with the highest nn1 agreement above its chance (ties: nn3, then trustworthiness)."""
    best, key = None, None
    for name, q in (report.get("spaces") or {}).items():
        k = (q["nn1_family"] - q["chance"], q.get("nn3_family", 0) - q["chance"], q.get("trustworthiness") or 0)
        if key is None or k > key:
            best, key = name, k
    return best


def robust_range(values: Any, *, q: float = 0.25, reach: float = 2.0, pad: float = 0.08) -> tuple[float, float]:
    """Axis limits that an outlier does not set: the ``q``..``1-q`` quantile span widened by
    ``reach`` spans on each side, clipped to the data's own range, plus ``pad`` of margin.

    Example:
        >>> lo, hi = robust_range([0, 1, 2, 3, 4, 5, 6, 7, 8, 100]); bool(hi < 30)
        True
        >>> robust_range([0.0, 1.0])
        (-0.08, 1.08)
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return (-1.0, 1.0)
    lo_q, hi_q = np.quantile(v, [q, 1 - q])
    span = hi_q - lo_q
    lo, hi = max(float(v.min()), lo_q - reach * span), min(float(v.max()), hi_q + reach * span)
    if hi <= lo:
        lo, hi = float(v.min()) - 0.5, float(v.max()) + 0.5
    m = (hi - lo) * pad
    return (round(lo - m, 12), round(hi + m, 12))


# --------------------------------------------------------------------------------------------------
# transfer: does similarity predict the gain of a source prompt?


def _spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float | None, float | None]:
    from scipy.stats import spearmanr

    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    r = spearmanr(x, y)
    return float(r.statistic), float(r.pvalue)


def correlations(transfers: Sequence[Mapping], spaces: dict, families: dict, layers: dict | None = None,
                 *, metric: str = "gain") -> tuple[dict, list[dict]]:
    """Spearman of ``metric`` (of ``transfer`` entries' metas) against the (centred) cosine of source and target, per space.

    Returns ``({space: {"spearman", "p_value", "n_pairs", "per_target_mean", "per_target"}}, pairs)``
    where ``pairs`` are the long-form rows ``target, source, same_family, gain, dev_gain,
    sim_<space>...`` (None where a space lacks one of the two tasks: the rows are JSON).
    """
    layers = layers or {}
    sims = {name: (similarity(x, layers=layers.get(name)), list(names))
            for name, (x, names) in spaces.items() if len(names) >= 2}
    pairs = pair_rows(transfers, sims, families)
    return correlate(pairs, list(sims), metric=metric), pairs


def pair_rows(transfers: Sequence[Mapping], sims: Mapping[str, tuple[Any, Sequence[str]]],
              families: Mapping[str, str]) -> list[dict]:
    """Long-form rows ``target, source, same_family, gain, dev_gain, sim_<name>...`` of ``transfer``
    metas, with ``sims[name] = (matrix [N, N], task names)`` read at ``[target, source]`` (None where
    a measure lacks one of the two tasks)."""
    index = {name: ({n: i for i, n in enumerate(names)}, np.asarray(m, dtype=np.float64))
             for name, (m, names) in sims.items()}
    pairs = []
    for m in transfers:
        t = m["target"]
        for r in m["runs"]:
            row = {"target": t, "source": r["source"], "same_family": families.get(t) == families.get(r["source"]),
                   "gain": r["gain"], "dev_gain": r["dev_gain"]}
            for name, (idx, sim) in index.items():
                row[f"sim_{name}"] = float(sim[idx[t], idx[r["source"]]]) if t in idx and r["source"] in idx else None
            pairs.append(row)
    return pairs


def correlate(pairs: Sequence[Mapping], names: Sequence[str], *, metric: str = "gain") -> dict:
    """``{name: {"spearman", "p_value", "n_pairs", "per_target_mean", "per_target"}}``: Spearman of
    ``metric`` against ``sim_<name>`` over all pairs that have both, and per target."""
    out = {}
    for name in names:
        sel = [p for p in pairs if p.get(f"sim_{name}") is not None and p.get(metric) is not None]
        rho, pv = _spearman([p[f"sim_{name}"] for p in sel], [p[metric] for p in sel])
        per = {}
        for t in dict.fromkeys(p["target"] for p in sel):
            ts = [p for p in sel if p["target"] == t]
            per[t] = _spearman([p[f"sim_{name}"] for p in ts], [p[metric] for p in ts])[0]
        vals = [v for v in per.values() if v is not None]
        out[name] = {"spearman": rho, "p_value": pv, "n_pairs": len(sel),
                     "per_target_mean": float(np.mean(vals)) if vals else None, "per_target": per}
    return out


# --------------------------------------------------------------------------------------------------
# spaces of a suite, read from store entries (no model, no training: the page uses these)

TEXT_KIND = "task_text_embedding"
SPACE_NAMES = {"prompt": "raw prompt space", "intrinsic": "intrinsic space (Proj of the prompts)",
               "ist": "intrinsic space (IST solutions)", "attention": "ATTEMPT attention",
               "text": "text baseline (mean frozen embedding of the inputs)",
               "zero_shot_profile": "zero-shot-score profile (frozen model's scores of every label)"}


def _finite_rows(x: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    keep = np.isfinite(x).all(axis=1)
    return x[keep], [n for n, k in zip(names, keep) if k]


def prompt_layers(stores: Sequence[Any], task_map: Any) -> int | None:
    """The number of layers of the deep prompts behind a ``task_map`` entry (None: shallow or unknown).

    Read from one of the ``pt_run`` entries of the PT configuration its ``ipt_dims`` source used.
    """
    if task_map.meta.get("prompt_kind") != "deep":
        return None
    src = next((e for s in stores if (e := s.get(task_map.spec.get("source", ""))) is not None), None) \
        if task_map.spec.get("source") else None
    cfg = ((src.spec.get("settings") or {}).get("pt") if src is not None else None)
    names = set(task_map.meta.get("tasks") or [])
    for s in stores:
        for e in s.query("pt_run", task=lambda t: t in names):
            if cfg is None or e.spec.get("config") == cfg:
                shape = tuple(e.tensor("prompt").shape)
                return int(shape[0]) if len(shape) == 3 else None
    return None


def task_map_spaces(stores: Sequence[Any], task_map: Any) -> tuple[dict, dict, dict]:
    """``(spaces, families, layers)`` of a ``task_map`` entry: name -> ``(vectors, task names)``
    (tasks without a vector in a space, NaN rows, left out), task -> family, name -> layers."""
    names = list(task_map.meta["tasks"])
    fams = dict(zip(names, task_map.meta.get("families") or [""] * len(names)))
    spaces = {}
    for sp in task_map.meta.get("spaces", []):
        if sp in task_map.tensor_names:
            x = task_map.tensor(sp).float().numpy().reshape(len(names), -1).astype(np.float64)
            spaces[sp] = _finite_rows(x, names)
    layers = {"prompt": prompt_layers(stores, task_map)} if "prompt" in spaces else {}
    return spaces, fams, layers


def latest_task_map(stores: Sequence[Any], suite_name: str, task_names: Sequence[str] | None = None) -> Any:
    """The newest ``task_map`` entry of a suite in the first store that has one (None: none)."""
    wanted = set(task_names or [])
    for s in stores:
        cands = [e for e in s.query("task_map") if e.meta.get("suite") == suite_name
                 and (not wanted or set(e.meta.get("tasks", [])) <= wanted)]
        if cands:
            return max(cands, key=lambda e: e.created)
    return None


def attention_space(stores: Sequence[Any], suite_name: str) -> tuple[np.ndarray, list[str]] | None:
    """ATTEMPT's attention rows (target -> sources) of the newest comparison of a suite with two or
    more targets, as a space: ``(weights [T, S + 1], targets)``; None when there is none."""
    for s in stores:
        cands = [e for e in s.query("method_compare") if e.meta.get("suite") == suite_name
                 and (e.meta.get("attempt_attention") or {}).get("targets")
                 and len(e.meta["attempt_attention"]["targets"]) >= 2]
        if cands:
            att = max(cands, key=lambda e: e.created).meta["attempt_attention"]
            return np.asarray(att["weights"], dtype=np.float64), list(att["targets"])
    return None


def label_vocabulary(tasks: Sequence[Any]) -> list[str]:
    """Every label name of ``tasks``, sorted, without duplicates: the axes of the zero-shot profile."""
    return sorted({lab for t in tasks for lab in t.labels})


def vocabulary_hash(vocab: Sequence[str]) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(list(vocab)).encode()).hexdigest()[:16]


def stored_baselines(stores: Sequence[Any], tasks: Sequence[Any], backbone: str) -> dict:
    """The text and zero-shot-profile baselines of ``tasks`` from ``task_text_embedding`` entries
    of backbone spec ``backbone`` (matched on the task's data hash and the label vocabulary of
    ``tasks``): name -> ``(vectors, task names)``, only tasks that have one; {} below two tasks."""
    vh = vocabulary_hash(label_vocabulary(tasks))
    found: dict[str, Any] = {}
    for s in stores:
        for e in s.query(TEXT_KIND):
            m = e.meta
            if m.get("backbone_spec") == backbone and m.get("vocabulary") == vh and m.get("task") not in found:
                found[m["task"]] = (m.get("task_data"), e)
    text, prof, names = [], [], []
    for t in tasks:
        hit = found.get(t.name)
        if hit is None or hit[0] != t.data_hash():
            continue
        ts = hit[1].tensors()
        text.append(ts["text"].double().numpy())
        prof.append(ts["zero_shot_profile"].double().numpy())
        names.append(t.name)
    if len(names) < 2:
        return {}
    return {"text": (np.stack(text), names), "zero_shot_profile": (np.stack(prof), names)}
