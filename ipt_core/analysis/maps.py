"""Task maps: 2-D projections, similarities, neighbours and clusterings of task vectors.

Pure functions over an ``[N, D]`` array of task vectors (flattened prompts, intrinsic vectors ...),
shaped like scikit-learn: ``random_state`` fixes randomness, inputs are array-likes. UMAP
(``umap-learn``) is imported only when asked for, because its first fit compiles with numba for
~20 s: the app therefore never calls it in a page; it runs ``python -m ipt_core umap`` as a
job, which stores the coordinates as a ``task_map_umap`` entry keyed by the vectors' fingerprint.

Example:
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(6, 10))
    >>> project(x).shape
    (6, 2)
    >>> sim = cosine_similarity(x); sim.shape, round(float(sim[0, 0]), 6)
    ((6, 6), 1.0)
    >>> sorted(cluster_order(sim)) == list(range(6))
    True
"""
from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ipt_core.errors import InputError, UnknownNameError

if TYPE_CHECKING:  # pandas and the store are only needed by some functions
    import pandas as pd

    from ipt_core.store import Store
    from ipt_core.store.entry import Entry

__all__ = [
    "project",
    "pca_2d",
    "cosine_similarity",
    "nearest_neighbours",
    "linkage",
    "cluster_order",
    "dendrogram_data",
    "vectors_fingerprint",
    "pt_config_id",
    "pt_config_label",
    "prompt_space",
    "umap_spec",
    "compute_umap_entry",
]

UMAP_CODE_VERSION = "umap-1"


def _as_matrix(vectors: Any, name: str = "vectors") -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D], got shape {x.shape}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return x


def project(vectors: Any, method: str = "pca", random_state: int = 0, *, n_neighbors: int = 15) -> np.ndarray:
    """2-D coordinates of ``vectors`` ``[N, D]`` -> ``[N, 2]`` (float64).

    ``"pca"``: the coordinates of :func:`pca_2d` (centred; a missing second component is padded
    with zeros when ``N`` or ``D`` is below 2). ``"umap"``: umap-learn with cosine distance,
    ``n_neighbors`` capped at ``N - 1``; needs ``N >= 4`` (imported lazily; its first fit compiles
    for ~20 s).

    Example:
        >>> project(np.eye(3), "pca").shape
        (3, 2)
    """
    x = _as_matrix(vectors)
    n = len(x)
    if method == "pca":
        return pca_2d(x, random_state)[0]
    if method == "umap":
        if n < 4:
            raise InputError(f"UMAP needs at least 4 tasks, got {n}")
        import umap  # lazy: importing it takes seconds and its first fit compiles

        nn = max(2, min(n_neighbors, n - 1))
        reducer = umap.UMAP(n_components=2, n_neighbors=nn, metric="cosine", random_state=random_state,
                            init="spectral" if n > nn + 1 else "random", n_jobs=1)
        return np.asarray(reducer.fit_transform(x), dtype=np.float64)
    raise ValueError(f"method must be 'pca' or 'umap', got {method!r}")


def pca_2d(vectors: Any, random_state: int = 0) -> tuple[np.ndarray, list[float]]:
    """scikit-learn PCA of ``vectors`` ``[N, D]`` (it centres them): ``(coords [N, 2] float64,
    explained variance ratio of PC1, PC2)``, the one PCA of the task maps.

    Degenerate inputs (one row, identical rows: nothing to spread out; ``N`` or ``D`` below 2) give
    zero columns and a ratio of 0 for them.

    Example:
        >>> coords, ratio = pca_2d([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
        >>> coords[:, 0].round(6).tolist(), ratio
        ([-2.0, 0.0, 2.0], [1.0, 0.0])
    """
    x = _as_matrix(vectors)
    n, d = x.shape
    if n == 1 or not np.ptp(x, axis=0).any():
        return np.zeros((n, 2)), [0.0, 0.0]
    from sklearn.decomposition import PCA

    k = min(2, n, d)
    p = PCA(n_components=k, random_state=random_state).fit(x)
    coords = p.transform(x)
    ratio = [float(r) for r in p.explained_variance_ratio_]
    if k < 2:
        coords = np.hstack([coords, np.zeros((n, 2 - k))])
        ratio += [0.0] * (2 - k)
    return np.asarray(coords, dtype=np.float64), ratio


def cosine_similarity(vectors: Any) -> np.ndarray:
    """Pairwise cosine similarity ``[N, N]`` of the rows of ``vectors`` ``[N, D]``.

    A zero row has similarity 0 to every row but 1 to itself.

    Example:
        >>> cosine_similarity([[1, 0], [0, 2], [1, 1]]).round(3).tolist()
        [[1.0, 0.0, 0.707], [0.0, 1.0, 0.707], [0.707, 0.707, 1.0]]
    """
    x = _as_matrix(vectors)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    sim = np.clip(unit @ unit.T, -1.0, 1.0)
    np.fill_diagonal(sim, 1.0)
    return sim


def nearest_neighbours(vectors: Any, names: Sequence[str], k: int = 5,
                       query: Iterable[str] | None = None) -> "pd.DataFrame":
    """The ``k`` most cosine-similar other tasks of each query task, in the ORIGINAL space.

    Returns a DataFrame with columns ``task, rank, neighbour, cosine`` (rank 1 = nearest), rows
    ordered by query then rank. ``query`` defaults to every task.

    Example:
        >>> nearest_neighbours([[1, 0], [1, 0.1], [0, 1]], ["a", "b", "c"], k=1)["neighbour"].tolist()
        ['b', 'a', 'b']
    """
    import pandas as pd

    x = _as_matrix(vectors)
    names = list(names)
    if len(names) != x.shape[0]:
        raise ValueError(f"{len(names)} names for {x.shape[0]} vectors")
    if len(set(names)) != len(names):
        raise ValueError("task names must be unique")
    index = {n: i for i, n in enumerate(names)}
    queries = names if query is None else list(query)
    unknown = [q for q in queries if q not in index]
    if unknown:
        raise UnknownNameError(f"unknown task(s) {unknown}")
    sim = cosine_similarity(x)
    rows = []
    for q in queries:
        i = index[q]
        others = [j for j in np.argsort(-sim[i], kind="stable") if j != i][: max(0, k)]
        for r, j in enumerate(others, 1):
            rows.append({"task": q, "rank": r, "neighbour": names[j], "cosine": float(sim[i, j])})
    return pd.DataFrame(rows, columns=["task", "rank", "neighbour", "cosine"])


def _condensed_distance(sim: Any) -> np.ndarray:
    from scipy.spatial.distance import squareform

    s = _as_matrix(sim, "sim")
    if s.shape[0] != s.shape[1]:
        raise ValueError(f"sim must be square, got shape {s.shape}")
    dist = np.clip(1.0 - (s + s.T) / 2.0, 0.0, 2.0)  # symmetric, non-negative cosine distance
    np.fill_diagonal(dist, 0.0)
    return squareform(dist, checks=False)


def linkage(sim: Any, method: str = "average") -> np.ndarray:
    """scipy's hierarchical-clustering linkage matrix ``[N-1, 4]`` of distance ``1 - sim``.

    Example:
        >>> linkage(np.eye(3)).shape
        (2, 4)
    """
    from scipy.cluster import hierarchy

    cond = _condensed_distance(sim)
    if len(cond) == 0:
        return np.zeros((0, 4))
    return hierarchy.linkage(cond, method=method)


def cluster_order(sim: Any, method: str = "average") -> list[int]:
    """A row order that puts similar tasks next to each other (optimal leaf ordering).

    Example:
        >>> cluster_order([[1, 0, .9], [0, 1, 0], [.9, 0, 1]])
        [1, 2, 0]
    """
    from scipy.cluster import hierarchy

    n = _as_matrix(sim, "sim").shape[0]
    if n <= 2:
        return list(range(n))
    z = linkage(sim, method)
    z = hierarchy.optimal_leaf_ordering(z, _condensed_distance(sim))
    return [int(i) for i in hierarchy.leaves_list(z)]


def dendrogram_data(sim: Any, names: Sequence[str], method: str = "average") -> dict:
    """Line segments of the dendrogram of ``1 - sim`` (scipy ``dendrogram(no_plot=True)``).

    Returns ``{"icoord", "dcoord", "leaves", "labels", "linkage"}``: ``icoord``/``dcoord`` are
    lists of 4-point U shapes (x at 5, 15, 25 ... for the leaves in ``labels`` order),
    ``linkage`` the ``[N-1, 4]`` merge table as a list of lists.

    Example:
        >>> d = dendrogram_data(np.eye(3), ["a", "b", "c"]); len(d["icoord"]), len(d["labels"])
        (2, 3)
    """
    from scipy.cluster import hierarchy

    names = list(names)
    n = _as_matrix(sim, "sim").shape[0]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for a {n}x{n} similarity")
    if n < 2:
        return {"icoord": [], "dcoord": [], "leaves": list(range(n)), "labels": names, "linkage": []}
    z = linkage(sim, method)
    if n > 2:
        z = hierarchy.optimal_leaf_ordering(z, _condensed_distance(sim))
    d = hierarchy.dendrogram(z, no_plot=True, labels=names)
    return {"icoord": [list(map(float, c)) for c in d["icoord"]], "dcoord": [list(map(float, c)) for c in d["dcoord"]],
            "leaves": [int(i) for i in d["leaves"]], "labels": list(d["ivl"]), "linkage": z.tolist()}


# --------------------------------------------------------------------------------------------------
# task vectors from store entries


def vectors_fingerprint(vectors: Any, names: Sequence[str]) -> str:
    """sha256 of task names and the float32 bytes of ``vectors``: keys a derived result (UMAP).

    Example:
        >>> len(vectors_fingerprint(np.zeros((2, 3)), ["a", "b"]))
        64
    """
    x = np.ascontiguousarray(_as_matrix(vectors), dtype=np.float32)
    h = hashlib.sha256(json.dumps([list(names), list(x.shape)]).encode())
    h.update(x.tobytes())
    return h.hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def pt_config_id(spec: dict, meta: dict | None = None) -> str:
    """A short id of everything but task and seed that decides a ``pt_run``: runs with the same id
    can be averaged over seeds and put on one map.

    Example:
        >>> pt_config_id({"backbone": {"spec": "encoder-sim"}, "config": {"steps": 2}}) == \\
        ...     pt_config_id({"backbone": {"spec": "encoder-sim"}, "config": {"steps": 2}, "seed": 3})
        True
    """
    meta = meta or {}
    doc = {"backbone": spec.get("backbone"), "config": spec.get("config"), "code_version": spec.get("code_version"),
           "k": meta.get("k"), "data_seed": meta.get("data_seed")}
    return hashlib.sha256(_canonical(doc)).hexdigest()[:12]


def pt_config_label(spec: dict, meta: dict | None = None) -> str:
    """A readable name of a PT configuration, e.g. ``"deep n=8 lr=0.01 steps=300 (encoder-sim)"``."""
    cfg = spec.get("config") or {}
    bb = (spec.get("backbone") or {}).get("spec", "?")
    meta = meta or {}
    label = f"{cfg.get('kind', '?')} n={cfg.get('n_tokens', '?')} lr={cfg.get('lr', '?')} steps={cfg.get('steps', '?')} ({bb})"
    if meta.get("k") is not None:
        label += f" k={meta['k']} data_seed={meta.get('data_seed')}"
    return label


def prompt_space(entries: Sequence["Entry"], tasks: Sequence[str] | None = None) -> tuple[list[str], list[str], np.ndarray]:
    """The raw prompt space of ``pt_run`` entries of ONE configuration: per task, the mean prompt
    over seeds, flattened. Returns ``(task names, families, vectors [T, n*d] or [T, L*n*d])``.

    Tasks are in the order of ``tasks`` (those with no run are left out), else sorted by name.
    Raises ValueError when the prompts do not all have one shape (mixed configurations).

    Example:
        >>> names, fams, x = prompt_space(store.query("pt_run"))   # doctest: +SKIP
    """
    by_task: dict[str, list] = {}
    family: dict[str, str] = {}
    shape = None
    # a fixed order of the seeds' prompts keeps the float mean, and so the fingerprint, reproducible
    for e in sorted(entries, key=lambda e: (str(e.meta.get("task")), str(e.meta.get("seed")), e.key)):
        t = e.meta.get("task") or e.spec.get("task")
        p = e.tensor("prompt").float().numpy()
        if shape is None:
            shape = p.shape
        elif p.shape != shape:
            raise InputError(f"prompts of different shapes {shape} and {p.shape}: pick one PT configuration")
        by_task.setdefault(t, []).append(p.reshape(-1).astype(np.float64))
        family[t] = e.meta.get("family", "")
    order = [t for t in tasks if t in by_task] if tasks is not None else sorted(by_task)
    if not order:
        return [], [], np.zeros((0, 0))
    x = np.stack([np.mean(by_task[t], axis=0) for t in order])
    return order, [family[t] for t in order], x


def umap_spec(fingerprint: str, *, random_state: int = 0, n_neighbors: int = 15) -> dict:
    """The store spec of the UMAP coordinates of the vectors with this fingerprint."""
    return {"method": "umap", "code_version": UMAP_CODE_VERSION, "vectors": fingerprint,
            "random_state": random_state, "n_neighbors": n_neighbors}


def compute_umap_entry(store: "Store", vectors: Any, names: Sequence[str], *, space: str = "", suite: str = "",
                       random_state: int = 0, n_neighbors: int = 15, command: str | None = None) -> "Entry":
    """Fit UMAP on ``vectors`` ``[N, D]`` and store ``[N, 2]`` coordinates as a ``task_map_umap``
    entry (meta ``tasks``, ``coords``); served from the store when already there."""
    fp = vectors_fingerprint(vectors, names)
    spec = umap_spec(fp, random_state=random_state, n_neighbors=n_neighbors)
    found = store.get(spec)
    if found is not None:
        return found
    coords = project(vectors, "umap", random_state, n_neighbors=n_neighbors)
    meta = {"tasks": list(names), "coords": [[float(a), float(b)] for a, b in coords], "space": space, "suite": suite}
    return store.put("task_map_umap", spec, meta, command=command)
