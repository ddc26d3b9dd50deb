"""Detector: groups of images that are unusually close in a feature space
(closure of feature k-NN neighbourhoods).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.qc._common import (
    _check_metric,
    _evidence,
    _from_search_distance,
    _group_frame,
    _knn_distances,
    _overlap_of_smaller,
    _prepare,
    _typical_nn_distance,
)
from tsimcne_nb.validation import check_features, check_int

__all__ = ['feature_closure', 'feature_confirmation', 'find_feature_clusters']


def feature_confirmation(
    features: Any,
    groups: Iterable[Sequence[int]],
    metric: str = "cosine",
    typical: float | None = None,
    random_state: int | None = 0,
) -> np.ndarray:
    """Are a group's members near-identical in feature space?

    ``log(typical / inner)``, where ``typical`` is the dataset's median nearest-neighbour
    distance and ``inner`` the median, over members, of the distance from a member to
    its nearest *other member*.  Above 0: each member has a copy closer than most
    images' nearest neighbour (duplicates, including a chain of copies that differ by
    a continuous crop); well below 0: the members are ordinary images.  The median keeps a
    few stray members from hiding a core of copies.  Used to tell 'duplicate' from
    'artefact' when tags are suggested; see :func:`feature_closure` for whether the
    group stands apart from the rest of the data.
    """
    metric = _check_metric(metric)
    x = _prepare(check_features(features), metric)
    if typical is None:
        typical = _typical_nn_distance(x, metric, random_state=random_state)
    floor = max(typical, 1e-12) * 1e-3
    out = []
    for members in groups:
        m = np.asarray(members, dtype=np.int64)
        if len(m) < 2:
            out.append(np.nan)
            continue
        inner = float(np.median(_from_search_distance(_knn_distances(x[m], 1)[0][:, 0], metric)))
        out.append(float(np.log(max(typical, 1e-12) / max(inner, floor))))
    return np.asarray(out, dtype=np.float64)


def _feature_knn(features: np.ndarray, k: int, metric: str) -> np.ndarray:
    """(N, k) indices of every image's k nearest other images in feature space."""
    check_int("k (neighbours per image)", k)
    x = _prepare(features, metric)
    k = min(int(k), len(x) - 1)
    return _knn_distances(x, k)[1]


def _closure_log_odds(knn: np.ndarray, members: np.ndarray, scratch: np.ndarray | None = None) -> float:
    # members' neighbour edges that stay inside the group vs. those that leave it; a
    # reused all-False ``scratch`` mask keeps thousands of candidates O(group), not O(N)
    inside = np.zeros(len(knn), dtype=bool) if scratch is None else scratch
    inside[members] = True
    n_in = int(inside[knn[members]].sum())
    inside[members] = False
    n_out = knn[members].size - n_in
    return float(np.log((n_in + 0.5) / (n_out + 0.5)))


def _ordinary_closure(
    x: np.ndarray, knn: np.ndarray, sizes: Iterable[int], samples: int, rng: np.random.Generator
) -> dict[int, float]:
    """Median closure log-odds of ordinary groups: an image and its nearest neighbours.

    One neighbour query of the largest size serves every size (the s-ball is the prefix
    of the largest ball), so this costs ``samples`` queries, not one per group.
    """
    from sklearn.neighbors import NearestNeighbors

    sizes = sorted({int(s) for s in sizes})
    if not sizes:
        return {}
    seeds = rng.choice(len(x), size=min(samples, len(x)), replace=False)
    ball = NearestNeighbors(n_neighbors=min(max(sizes), len(x))).fit(x).kneighbors(x[seeds])[1]
    scratch = np.zeros(len(knn), dtype=bool)
    return {s: float(np.median([_closure_log_odds(knn, b[:s], scratch) for b in ball])) for s in sizes}


def feature_closure(
    features: Any,
    groups: Iterable[Sequence[int]],
    k: int = 10,
    metric: str = "cosine",
    samples: int = 32,
    random_state: int | None = 0,
    knn: np.ndarray | None = None,
) -> np.ndarray:
    """How much more a group keeps to itself in feature space than an ordinary group.

    Every image's ``k`` nearest neighbours in feature space are edges of a graph.  The
    *closure* of a group is the log-odds ``log((inside + 0.5) / (outside + 0.5))`` of
    its members' edges staying inside the group.  An ordinary group of the same size
    (an image and its nearest neighbours, ``samples`` of them at random) also keeps
    many edges inside, so the score is the group's closure minus the median closure of
    ordinary groups of its size: about 0 for an ordinary neighbourhood, 3 or more for
    a set of images whose neighbours are almost only one another (perturbed duplicates
    of one image: 98% of their neighbours are other copies on the synthetic data).

    Parameters
    ----------
    features
        (N, F) features.
    groups
        Member indices of each group.
    k, metric
        Neighbour graph: ``k`` neighbours by ``'cosine'`` or ``'euclidean'`` distance.
    samples
        Ordinary groups drawn per size for the reference.
    knn
        Precomputed (N, k) neighbour indices (from a previous call), to save the search.

    Returns
    -------
    numpy.ndarray
        One score per group (NaN for groups of fewer than 2 members).
    """
    metric = _check_metric(metric)
    feats = check_features(features)
    check_int("k (neighbours per image)", k)
    groups = [np.asarray(m, dtype=np.int64) for m in groups]
    if knn is None:
        knn = _feature_knn(feats, k, metric)
    sizes = [len(m) for m in groups if len(m) >= 2]
    ref = _ordinary_closure(_prepare(feats, metric), knn, sizes, samples, np.random.default_rng(random_state))
    scratch = np.zeros(len(knn), dtype=bool)
    return np.asarray(
        [_closure_log_odds(knn, m, scratch) - ref[len(m)] if len(m) >= 2 else np.nan for m in groups],
        dtype=np.float64,
    )


def find_feature_clusters(
    features: Any,
    k: int = 10,
    min_size: int = 5,
    max_size: int | None = None,
    min_score: float = 1.0,
    max_overlap: float = 0.5,
    metric: str = "cosine",
    random_state: int | None = 0,
    knn: np.ndarray | None = None,
) -> pd.DataFrame:
    """Small groups of images that keep to themselves in the backbone's feature space.

    The 2-D map is a drawing of the features' neighbour graph; this finds the groups
    the map *should* collapse, whether or not a short training run has drawn them
    tight.  Candidates are connected components of the shared-nearest-neighbour graph:
    two images are linked when each is among the other's ``k`` nearest neighbours and
    they share at least ``t`` of them, for every ``t`` from 1 to ``k`` (a loose and a
    strict linking, and all in between).  Components of ``min_size`` to ``max_size``
    images are scored by :func:`feature_closure`; those scoring at least ``min_score``
    are kept, and of groups sharing more than ``max_overlap`` of the smaller one (a group
    and its own core, found at a stricter ``t``) only the one with the most evidence.

    Parameters
    ----------
    features
        (N, F) backbone features (:meth:`TSimCNE.features`).
    k
        Neighbours per image in the graph.
    min_size, max_size
        Group sizes considered; ``max_size`` defaults to ``max(100, 5% of N)`` so that
        whole classes are not reported.
    min_score, max_overlap, metric, random_state
        See above and :func:`feature_closure`.
    knn
        Precomputed (N, k) neighbour indices of these features (shared with
        :func:`find_tight_clusters` in :func:`qc_report`, so the search runs once).

    Returns
    -------
    pandas.DataFrame
        ``group``, ``size``, ``members``, ``score`` (:func:`feature_closure`),
        ``closure`` (fraction of the members' neighbours that are members),
        ``min_shared`` (the ``t`` the group was found at), ``feature_confirmation``.
    """
    from scipy.sparse import coo_matrix, csr_matrix
    from scipy.sparse.csgraph import connected_components

    metric = _check_metric(metric)
    feats = check_features(features)
    n = len(feats)
    if not isinstance(min_size, (int, np.integer)) or min_size < 2:
        raise ConfigError(f"min_size must be an integer >= 2; got {min_size!r}.")
    check_int("k (neighbours per image)", k)
    if n <= max(min_size, k):
        raise DataError(f"find_feature_clusters needs more than max(min_size, k) images; got {n}.")
    max_size = int(max_size) if max_size is not None else max(100, int(0.05 * n))
    columns = ["group", "size", "members", "score", "closure", "min_shared", "feature_confirmation"]
    if knn is None:
        knn = _feature_knn(feats, k, metric)
    kk = knn.shape[1]
    adj = csr_matrix((np.ones(n * kk, dtype=np.int32), (np.repeat(np.arange(n), kk), knn.ravel())),
                     shape=(n, n))
    mutual = adj.multiply(adj.T).tocoo()
    i, j = mutual.row[mutual.row < mutual.col], mutual.col[mutual.row < mutual.col]
    shared = np.asarray(adj[i].multiply(adj[j]).sum(axis=1)).ravel()
    candidates: dict[bytes, tuple[np.ndarray, int]] = {}
    for t in range(1, kk + 1):
        e = shared >= t
        if not e.any():
            break
        _, lab = connected_components(
            coo_matrix((np.ones(int(e.sum()), np.int8), (i[e], j[e])), shape=(n, n)), directed=False)
        sizes = np.bincount(lab)
        order = np.argsort(lab, kind="stable")  # members of component c: order[bounds[c]:bounds[c+1]]
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        for c in np.flatnonzero((sizes >= min_size) & (sizes <= max_size)):
            members = order[bounds[c] : bounds[c + 1]]
            candidates.setdefault(members.tobytes(), (members, t))
    if not candidates:
        return _group_frame([], columns)
    cands = list(candidates.values())
    scores = feature_closure(feats, [m for m, _ in cands], k=kk, metric=metric,
                             random_state=random_state, knn=knn)
    rows = []
    inside = np.zeros(n, dtype=bool)
    for (members, t), sc in zip(cands, scores, strict=True):
        if sc >= min_score:
            inside[members] = True
            rows.append({"size": len(members), "members": members, "score": float(sc),
                         "closure": float(inside[knn[members]].mean()), "min_shared": t})
            inside[members] = False
    rows.sort(key=lambda r: (-_evidence(r["score"], r["size"]), -r["size"]))
    # the components at a strict t are pieces of those at a looser t: keep the best-scored
    # version of each group (overlap = shared / smaller group), not its core as a second row
    kept: list[dict[str, Any]] = []
    for r in rows:
        if all(_overlap_of_smaller(r["members"], o["members"]) <= max_overlap for o in kept):
            kept.append(r)
    conf = feature_confirmation(feats, [r["members"] for r in kept], metric=metric, random_state=random_state)
    for r, c in zip(kept, conf, strict=True):
        r["feature_confirmation"] = float(c)
    return _group_frame(kept, columns)
