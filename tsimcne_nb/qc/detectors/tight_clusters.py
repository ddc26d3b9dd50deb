"""Detector: tight clusters in the 2-D map, confirmed in feature space."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.qc._common import (
    _group_frame,
    _knn_distances,
    _overlap_of_smaller,
)
from tsimcne_nb.qc.detectors.feature_clusters import feature_closure, feature_confirmation
from tsimcne_nb.validation import check_embedding, check_features

__all__ = ['find_tight_clusters']


def find_tight_clusters(
    embedding: Any,
    features: Any = None,
    min_size: int = 5,
    max_size: int | None = None,
    eps_quantiles: Sequence[float] = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2),
    min_llr: float = 10.0,
    max_overlap: float = 0.5,
    metric: str = "cosine",
    random_state: int | None = 0,
    knn: np.ndarray | None = None,
) -> pd.DataFrame:
    """Groups of the 2-D map that are much denser than their neighbourhood.

    Candidates come from DBSCAN (``min_samples = min_size``) run at several ``eps``,
    each a quantile (``eps_quantiles``) of the distribution of every point's distance to
    its ``min_size``-th nearest neighbour, so that both point-like collapses (perturbed
    duplicates) and small islands are found whatever the map's scale.  Each candidate
    with ``min_size <= size <= max_size`` is scored by comparing densities:

    - inside: points within the group's radius (the 90th percentile of member
      distances to the members' median point) per area;
    - neighbourhood: points in the ring from that radius out by ``max(radius,
      3 * median k-NN distance)``, per area, (+0.5 so empty rings stay finite) and at
      least 5% of the map's median density (so that a gap around an ordinary island
      does not make it infinitely suspicious).

    ``map_score = log(inside / neighbourhood)`` (how much tighter the group is than its
    neighbourhood); with ``features``, ``score = min(map_score, feature_closure)``
    (see :func:`feature_closure`): a group must also keep to itself in feature space,
    otherwise ``score = map_score``.  ``llr`` is the Poisson log-likelihood ratio of seeing that many
    points where the neighbourhood's density predicts ``expected``, used to drop
    random fluctuations (``llr < min_llr``).  Overlapping candidates from different
    ``eps`` are reduced to the best-scored one (overlap = shared / smaller size).

    Parameters
    ----------
    embedding
        (N, 2) map.
    features
        Optional (N, F) backbone features: adds ``feature_closure`` and
        ``feature_confirmation`` (see :func:`feature_closure`,
        :func:`feature_confirmation`) and makes the score need both.
    min_size, max_size
        Group sizes considered; ``max_size`` defaults to ``max(100, 5% of N)`` so that
        whole classes are not reported.
    eps_quantiles, min_llr, max_overlap
        See above.
    metric
        Feature distance for the confirmation.
    knn
        Precomputed (N, k) feature-neighbour indices for :func:`feature_closure`
        (computed with k = 10 when None).
    random_state
        Seed for the sampling in the feature confirmation.

    Returns
    -------
    pandas.DataFrame
        One row per group, best first: ``group``, ``size``, ``members`` (int array),
        ``score``, ``density_ratio``, ``llr``, ``expected``, ``radius``,
        ``compactness`` (log of the map's median k-NN distance over the group's),
        ``feature_confirmation``, ``feature_closure`` (NaN without features),
        ``map_score``.
    """
    from scipy.spatial import cKDTree
    from sklearn.cluster import DBSCAN

    emb = check_embedding(embedding, dim=2)
    n = len(emb)
    if not isinstance(min_size, (int, np.integer)) or min_size < 2:
        raise ConfigError(f"min_size must be an integer >= 2; got {min_size!r}.")
    if n <= min_size:
        raise DataError(f"find_tight_clusters needs more than min_size={min_size} points; got {n}.")
    max_size = int(max_size) if max_size is not None else max(100, int(0.05 * n))
    if max_size < min_size:
        raise ConfigError(f"max_size ({max_size}) must be >= min_size ({min_size}).")
    feats = None
    if features is not None:
        feats = check_features(features, n)
    columns = [
        "group", "size", "members", "score", "density_ratio", "llr", "expected", "radius",
        "compactness", "feature_confirmation", "feature_closure", "map_score",
    ]
    dk, _ = _knn_distances(emb, min_size)
    dk = dk[:, -1]
    typical_dk = float(np.median(dk))
    if typical_dk <= 0:
        raise DataError(
            "more than half of the map's points coincide with their neighbours; the map looks "
            "degenerate (did training diverge?)."
        )
    median_density = min_size / (np.pi * typical_dk**2)
    tree = cKDTree(emb)
    candidates: dict[bytes, np.ndarray] = {}
    for q in eps_quantiles:
        eps = float(np.quantile(dk, q))
        if eps <= 0:
            eps = typical_dk * 1e-3
        db = DBSCAN(eps=eps, min_samples=min_size).fit(emb)
        core = np.zeros(n, dtype=bool)
        core[db.core_sample_indices_] = True
        labels = db.labels_
        for lab in np.unique(labels[labels >= 0]):
            # core points only: border points are the neighbourhood's points that touch the group
            members = np.flatnonzero((labels == lab) & core)
            if min_size <= len(members) <= max_size:
                candidates.setdefault(members.tobytes(), members)

    rows = []
    floor_r = typical_dk * 1e-3
    def density_scan(members: np.ndarray) -> dict[str, Any]:
        pts = emb[members]
        centre = np.median(pts, axis=0)
        dist = np.linalg.norm(pts - centre, axis=1)
        radius = max(float(np.quantile(dist, 0.9)), floor_r)
        width = max(radius, 3 * typical_dk)
        n_in = len(tree.query_ball_point(centre, radius))
        n_out = len(tree.query_ball_point(centre, radius + width)) - n_in
        area_in = np.pi * radius**2
        dens_bg = max((n_out + 0.5) / (np.pi * ((radius + width) ** 2 - radius**2)), 0.05 * median_density)
        expected = dens_bg * area_in
        llr = n_in * np.log(n_in / expected) - (n_in - expected) if n_in > expected else 0.0
        return {"centre": centre, "dist": dist, "radius": radius, "n_in": n_in, "dens_bg": dens_bg,
                "expected": expected, "ratio": n_in / area_in / dens_bg, "llr": float(llr)}

    for members in candidates.values():
        sc = density_scan(members)
        if sc["llr"] < min_llr:
            continue
        # trim to the most significant disc around the centre (a circular scan statistic):
        # drops neighbourhood points that DBSCAN attached at the group's rim
        order = np.argsort(sc["dist"], kind="stable")
        cnt = np.arange(1, len(order) + 1, dtype=np.float64)
        lam = np.maximum(sc["dens_bg"] * np.pi * np.maximum(sc["dist"][order], floor_r) ** 2, 1e-12)
        prefix_llr = np.where(cnt > lam, cnt * np.log(cnt / lam) - (cnt - lam), 0.0)
        prefix_llr[: min_size - 1] = -np.inf
        best = int(np.argmax(prefix_llr)) + 1
        # a circle only fits round groups: trimming more than a fifth means an elongated
        # group (e.g. duplicates that differ by a continuous crop), which is kept whole
        if 0.8 * len(members) <= best < len(members):
            members = np.sort(members[order[:best]])
            sc = density_scan(members)
            if sc["llr"] < min_llr:
                continue
        inner_dk = _knn_distances(emb[members], min(min_size, len(members) - 1))[0][:, -1]
        compact = float(np.log(typical_dk / max(float(np.median(inner_dk)), floor_r)))
        rows.append({
            "size": len(members), "members": members, "score": float(np.log(sc["ratio"])),
            "density_ratio": float(sc["ratio"]), "llr": sc["llr"], "expected": float(sc["expected"]),
            "radius": sc["radius"], "compactness": compact, "feature_confirmation": np.nan,
            "feature_closure": np.nan, "map_score": float(np.log(sc["ratio"])),
        })
    # the same group is found at several eps (a core, the whole group, the group plus some
    # surroundings): keep the most significant version, which balances size and tightness
    rows.sort(key=lambda r: (-r["llr"], -r["size"]))
    kept: list[dict[str, Any]] = []
    for r in rows:
        if all(_overlap_of_smaller(r["members"], o["members"]) <= max_overlap for o in kept):
            kept.append(r)
    if feats is not None and kept:
        groups = [r["members"] for r in kept]
        conf = feature_confirmation(feats, groups, metric=metric, random_state=random_state)
        closure = feature_closure(feats, groups, metric=metric, random_state=random_state, knn=knn)
        for r, c, cl in zip(kept, conf, closure, strict=True):
            r["feature_confirmation"] = float(c)
            r["feature_closure"] = float(cl)
            # confirmed in feature space: a group is as suspicious as the weaker of its two
            # signals, so a dense patch of the map that the features see as an ordinary
            # neighbourhood (a compact class, a short run's uneven drawing) ranks low
            r["score"] = min(r["score"], float(cl))
    return _group_frame(kept, columns)
