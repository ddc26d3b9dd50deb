"""Checks of what users pass to the widgets: embeddings and point indices."""

from __future__ import annotations

from typing import Any

import numpy as np

from tsimcne_nb.errors import DataError


def _validate_embedding(
    embedding: Any, n: int | None = None, name: str = "embedding"
) -> np.ndarray:
    emb = np.asarray(embedding)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise DataError(
            f"{name} must have shape (N, 2) (one 2-D point per image); got shape {emb.shape}."
        )
    if not np.issubdtype(emb.dtype, np.number):
        raise DataError(f"{name} must be numeric; got dtype {emb.dtype}.")
    emb = emb.astype(np.float32)
    if not np.all(np.isfinite(emb)):
        raise DataError(
            f"{name} contains NaN or infinite coordinates ({int((~np.isfinite(emb)).any(1).sum())} "
            "points); remove those points or recompute the embedding."
        )
    if n is not None and len(emb) != n:
        raise DataError(
            f"{name} has {len(emb)} points but the dataset has {n} images; pass one point per image "
            "in the dataset's order."
        )
    return emb


def _validate_indices(indices: Any, n: int) -> np.ndarray:
    idx = np.asarray(indices if indices is not None else [])
    if idx.dtype == np.bool_:
        if idx.shape != (n,):
            raise DataError(f"a boolean mask must have shape ({n},); got {idx.shape}.")
        return np.flatnonzero(idx).astype(np.int64)
    if idx.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(idx.dtype, np.integer):
        raise DataError(
            f"indices must be integer positions (or a boolean mask); got dtype {idx.dtype}."
        )
    idx = idx.reshape(-1).astype(np.int64)
    if idx.min() < 0 or idx.max() >= n:
        raise DataError(
            f"indices must lie in [0, {n - 1}] (positions in the map); got values in "
            f"[{idx.min()}, {idx.max()}]."
        )
    return np.unique(idx)
