"""Shared pieces of the QC detectors: tag and kind names, input checks, distance
helpers and the QC metadata columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError

__all__ = ['KINDS', 'TAGS']

#: tags a user can give an image in :attr:`QCReport.tags`
TAGS = ("duplicate", "artefact", "keep")
#: group kinds in :attr:`QCReport.groups`
KINDS = ("tight-cluster", "feature-cluster", "near-duplicate", "exact-duplicate", "property-outlier")
#: score given to byte-identical groups: as if 1000x closer than typical neighbours
EXACT_SCORE = float(np.log(1000.0))
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _check_metric(metric: str) -> str:
    if metric not in ("cosine", "euclidean"):
        raise ConfigError(f"metric must be 'cosine' or 'euclidean'; got {metric!r}.")
    return metric


def _prepare(features: np.ndarray, metric: str) -> np.ndarray:
    """Rows scaled to unit length for cosine distance, so Euclidean search can be used."""
    if metric == "cosine":
        norm = np.linalg.norm(features, axis=1, keepdims=True)
        if np.any(norm == 0):
            raise DataError(
                f"{int(np.sum(norm == 0))} feature vectors are all zero: cosine distance is "
                "undefined for them. Use metric='euclidean'."
            )
        return (features / norm).astype(np.float32)
    return features.astype(np.float32)


def _to_search_radius(threshold: float, metric: str) -> float:
    # unit vectors: |a - b|^2 = 2 (1 - cos) = 2 * cosine distance
    return float(np.sqrt(2.0 * threshold)) if metric == "cosine" else float(threshold)


def _from_search_distance(d: np.ndarray, metric: str) -> np.ndarray:
    return d**2 / 2.0 if metric == "cosine" else d


# =========================================================== perturbations
def _with_qc_columns(metadata: pd.DataFrame) -> pd.DataFrame:
    md = metadata.copy()
    if "qc_injected" not in md:
        md["qc_injected"] = ""
    if "qc_source" not in md:
        md["qc_source"] = -1
    if "qc_group" not in md:
        md["qc_group"] = -1
    md["qc_injected"] = md["qc_injected"].astype(object).fillna("").astype(str)
    md["qc_source"] = md["qc_source"].astype(np.int64)
    md["qc_group"] = md["qc_group"].astype(np.int64)
    return md


def _next_group(md: pd.DataFrame) -> int:
    return int(md["qc_group"].max()) + 1 if len(md) else 0


# =============================================================== detectors
def _group_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    if len(df):
        df = df.sort_values(["score", "size"], ascending=False, kind="stable").reset_index(drop=True)
    df["group"] = np.arange(len(df))
    return df[["group", *[c for c in columns if c != "group"]]]


def _knn_distances(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(x) - 1)
    dist, idx = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return dist[:, 1:], idx[:, 1:]


def _typical_nn_distance(
    x: np.ndarray, metric: str, sample: int = 2000, random_state: int | None = 0
) -> float:
    """Median distance of an image to its nearest other image (on a sample of queries).

    Queries are a random sample so that this stays O(sample * N) for 100k+ images.
    """
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(random_state)
    q = rng.choice(len(x), size=min(sample, len(x)), replace=False)
    dist, _ = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x[q])
    return float(np.median(_from_search_distance(dist[:, 1], metric)))


def _median_pairwise(x: np.ndarray, metric: str, cap: int = 200, rng: np.random.Generator | None = None) -> float:
    if len(x) > cap:
        rng = rng or np.random.default_rng(0)
        x = x[rng.choice(len(x), size=cap, replace=False)]
    if len(x) < 2:
        return 0.0
    sq = np.sum(x.astype(np.float64) ** 2, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x.astype(np.float64) @ x.T.astype(np.float64), 0)
    d = _from_search_distance(np.sqrt(d2), metric)
    iu = np.triu_indices(len(x), 1)
    return float(np.median(d[iu]))


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    return len(np.intersect1d(a, b, assume_unique=True)) / max(min(len(a), len(b)), 1)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter) if inter else 0.0


def _read(dataset: ImageDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    if not dataset.is_lazy:
        return np.asarray(dataset.images)[idx]
    return dataset.subset(idx).images


# ================================================================= report
def _evidence(score: float, size: int) -> float:
    return max(float(score), 0.0) * float(np.log2(1 + size))
