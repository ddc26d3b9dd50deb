"""Detectors: exact duplicates (identical bytes) and near-duplicates (feature
distance below a threshold), with the pairs-at-thresholds review figure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import CHUNK, ImageDataset, as_dataset, iter_chunks
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.qc._common import (
    EXACT_SCORE,
    _check_metric,
    _from_search_distance,
    _group_frame,
    _median_pairwise,
    _prepare,
    _read,
    _to_search_radius,
    _typical_nn_distance,
)
from tsimcne_nb.validation import check_features

__all__ = ['duplicate_pairs_at_thresholds', 'exact_duplicates', 'near_duplicate_groups', 'pairs_figure']


def _graph_groups(
    n: int, i: np.ndarray, j: np.ndarray, min_size: int
) -> list[np.ndarray]:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, comp = connected_components(g, directed=False)
    sizes = np.bincount(comp)
    big = np.flatnonzero(sizes >= min_size)
    order = np.argsort(comp, kind="stable")
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    return [order[bounds[c] : bounds[c + 1]] for c in big]


def _pairs_within(x: np.ndarray, threshold: float, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs i < j closer than ``threshold``: a sparse radius graph, never an N x N matrix."""
    from sklearn.neighbors import NearestNeighbors

    radius = _to_search_radius(threshold, metric)
    g = NearestNeighbors(radius=radius).fit(x).radius_neighbors_graph(x, mode="distance").tocoo()
    keep = g.row < g.col
    i, j, d = g.row[keep], g.col[keep], g.data[keep]
    # explicit zeros (identical vectors) are dropped by sparse storage: add them back
    return i.astype(np.int64), j.astype(np.int64), _from_search_distance(d, metric)


def _zero_distance_pairs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # rows that are bit-identical give distance 0, which scipy's sparse graph drops
    _, inv, counts = np.unique(x, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    ii, jj = [], []
    for g in np.flatnonzero(counts > 1):
        mem = np.flatnonzero(inv == g)
        ii.append(np.repeat(mem[0], len(mem) - 1))
        jj.append(mem[1:])
    if not ii:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(ii), np.concatenate(jj)


def near_duplicate_groups(
    features: Any,
    threshold: float | None = None,
    metric: str = "cosine",
    min_size: int = 2,
    auto_factor: float = 0.5,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Groups of images whose features are closer than ``threshold``.

    Pairs closer than the threshold come from a radius-neighbours graph (sparse: only
    the pairs found are stored, so 100k+ images need no N x N matrix), and groups are
    its connected components (single linkage: a chain of close pairs is one group).

    Parameters
    ----------
    features
        (N, F) features, e.g. the backbone's (:meth:`TSimCNE.features`).
    threshold
        Distance below which two images count as near-duplicates.  None: ``auto_factor``
        times the dataset's median nearest-neighbour distance.  Look at example pairs
        at several thresholds with :func:`duplicate_pairs_at_thresholds` and
        :func:`pairs_figure` to choose one.
    metric
        ``'cosine'`` (1 - cosine similarity) or ``'euclidean'``.
    min_size
        Smallest group reported.

    Returns
    -------
    pandas.DataFrame
        ``group``, ``size``, ``members``, ``score`` (``log(typical / median within-group
        distance)``), ``median_distance``, ``max_distance`` (largest pair distance in
        the group's graph), ``threshold``.  Best score first.
    """
    metric = _check_metric(metric)
    x = _prepare(check_features(features), metric)
    typical = _typical_nn_distance(x, metric, random_state=random_state)
    if threshold is None:
        threshold = auto_factor * typical
    if not np.isfinite(threshold) or threshold < 0:
        raise ConfigError(f"threshold must be a finite distance >= 0; got {threshold!r}.")
    i, j, d = _pairs_within(x, float(threshold), metric)
    zi, zj = _zero_distance_pairs(x)
    i, j = np.concatenate([i, zi]), np.concatenate([j, zj])
    d = np.concatenate([d, np.zeros(len(zi))])
    columns = ["group", "size", "members", "score", "median_distance", "max_distance", "threshold"]
    rows = []
    rng = np.random.default_rng(random_state)
    floor = max(typical, 1e-12) * 1e-3
    comp_of = np.full(len(x), -1)
    groups = _graph_groups(len(x), i, j, max(min_size, 2))
    for gi, members in enumerate(groups):
        comp_of[members] = gi
    edge_group = comp_of[i]
    for gi, members in enumerate(groups):
        inner = _median_pairwise(x[members], metric, rng=rng)
        rows.append({
            "size": len(members), "members": members,
            "score": float(np.log(max(typical, 1e-12) / max(inner, floor))),
            "median_distance": inner, "max_distance": float(d[edge_group == gi].max()),
            "threshold": float(threshold),
        })
    return _group_frame(rows, columns)


def duplicate_pairs_at_thresholds(
    features: Any,
    thresholds: Sequence[float] | None = None,
    metric: str = "cosine",
    examples: int = 8,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """How many pairs, images and groups each candidate threshold would call duplicates.

    Parameters
    ----------
    features
        (N, F) features.
    thresholds
        Increasing distances; None: (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0) times the
        median nearest-neighbour distance.
    metric
        ``'cosine'`` or ``'euclidean'``.
    examples
        Random example pairs kept per threshold, drawn from the pairs that threshold
        adds to the previous one (the pairs a user must judge to accept it).

    Returns
    -------
    pandas.DataFrame
        One row per threshold: ``threshold``, ``n_pairs``, ``n_images`` (in any pair),
        ``n_groups`` (connected components), ``largest_group``, ``examples`` (list of
        ``(i, j, distance)``).  Counts never decrease with the threshold.
    """
    metric = _check_metric(metric)
    x = _prepare(check_features(features), metric)
    if thresholds is None:
        typical = _typical_nn_distance(x, metric, random_state=random_state)
        thresholds = [f * typical for f in (0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0)]
    th = np.asarray(list(thresholds), dtype=np.float64)
    if th.ndim != 1 or len(th) == 0 or not np.all(np.isfinite(th)) or np.any(th < 0):
        raise ConfigError(f"thresholds must be a non-empty list of distances >= 0; got {thresholds!r}.")
    if np.any(np.diff(th) <= 0):
        raise ConfigError(f"thresholds must be strictly increasing; got {list(th)}.")
    i, j, d = _pairs_within(x, float(th[-1]), metric)
    zi, zj = _zero_distance_pairs(x)
    i, j = np.concatenate([i, zi]), np.concatenate([j, zj])
    d = np.concatenate([d, np.zeros(len(zi))])
    rng = np.random.default_rng(random_state)
    rows = []
    prev = -np.inf
    for t in th:
        sel = d <= t
        groups = _graph_groups(len(x), i[sel], j[sel], 2)
        new = np.flatnonzero(sel & (d > prev))
        pick = rng.choice(new, size=min(examples, len(new)), replace=False) if len(new) else new
        pick = pick[np.argsort(d[pick])]
        rows.append({
            "threshold": float(t), "n_pairs": int(sel.sum()),
            "n_images": int(len(np.unique(np.concatenate([i[sel], j[sel]])))),
            "n_groups": len(groups), "largest_group": max((len(g) for g in groups), default=0),
            "examples": [(int(i[p]), int(j[p]), float(d[p])) for p in pick],
        })
        prev = t
    return pd.DataFrame(rows)


def pairs_figure(dataset: ImageDataset, pairs_df: pd.DataFrame, per_threshold: int = 4) -> Any:
    """Example pairs at each threshold of :func:`duplicate_pairs_at_thresholds`, one row each.

    Each pair is shown as two thumbnails side by side, titled with its distance; a row
    with too few new pairs stays partly empty.  Returns a matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    dataset = as_dataset(dataset)
    if not {"threshold", "examples"} <= set(pairs_df.columns):
        raise DataError(
            "pairs_df must be the table from duplicate_pairs_at_thresholds (columns "
            "'threshold' and 'examples')."
        )
    if per_threshold < 1:
        raise ConfigError(f"per_threshold must be >= 1; got {per_threshold!r}.")
    rows = max(len(pairs_df), 1)
    fig, axes = plt.subplots(rows, 2 * per_threshold, figsize=(1.1 * 2 * per_threshold, 1.3 * rows),
                             squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for r, (_, row) in enumerate(pairs_df.iterrows()):
        axes[r, 0].text(-0.15, 0.5, f"≤ {row['threshold']:.3g}\n{row.get('n_pairs', '')} pairs",
                        transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7)
        for c, (i, j, dist) in enumerate(list(row["examples"])[:per_threshold]):
            imgs = _read(dataset, [i, j])
            for s, img in enumerate(imgs):
                ax = axes[r, 2 * c + s]
                ax.imshow(img, interpolation="nearest")
                ax.set_title(f"{(i, j)[s]}" + (f"  d={dist:.3g}" if s == 0 else ""), fontsize=6)
    fig.suptitle(f"near-duplicate pairs per threshold ({dataset.title})", fontsize=9)
    fig.tight_layout()
    return fig


def exact_duplicates(dataset: ImageDataset) -> pd.DataFrame:
    """Groups of byte-identical images (BLAKE2b hash of each image's pixels).

    Returns
    -------
    pandas.DataFrame
        ``group``, ``size``, ``members``, ``score`` (a constant, :data:`EXACT_SCORE`),
        ``hash``.  Larger groups first.
    """
    dataset = as_dataset(dataset)
    digests = np.empty(len(dataset), dtype=object)
    for start, block in iter_chunks(dataset.images, CHUNK):
        block = np.ascontiguousarray(block)
        for k in range(len(block)):
            digests[start + k] = hashlib.blake2b(block[k].tobytes(), digest_size=16).hexdigest()
    codes, uniq = pd.factorize(digests)
    counts = np.bincount(codes)
    rows = []
    for c in np.flatnonzero(counts > 1):
        members = np.flatnonzero(codes == c)
        rows.append({"size": len(members), "members": members, "score": EXACT_SCORE, "hash": uniq[c]})
    return _group_frame(rows, ["group", "size", "members", "score", "hash"])
