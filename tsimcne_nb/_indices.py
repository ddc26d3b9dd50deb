"""Read rows of an array-like at arbitrary indices, in increasing index order.

h5py (lazy datasets: PCam, MedMNIST+ on disk) accepts only increasing, unique indices; a
random batch, a subset or the images of a figure come in any order, with repeats.  This is
the one place that reads them sorted and puts the rows back in the order asked for.
numpy only: importable by every layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["take_rows"]


def take_rows(source: Any, indices: Any, chunk: int | None = None) -> np.ndarray:
    """``source[indices]`` in the caller's order, reading ``source`` with sorted unique indices.

    Parameters
    ----------
    source : array-like or callable
        Anything indexable with an increasing integer array (a numpy array, an h5py dataset, a
        lazy image array); rows are ``source[i]``.  A callable is called with the sorted unique
        indices instead and returns their rows (a reader of an on-disk format).
    indices : array-like of int
        Rows to take, in any order, repeats allowed.
    chunk : int, optional
        Read at most this many rows per access (bounds the memory of one read of a lazy source).

    Returns
    -------
    numpy.ndarray
        ``len(indices)`` rows, row ``k`` being ``source[indices[k]]``.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    read = source if callable(source) else source.__getitem__
    if idx.size == 0:
        return np.asarray(read(idx))
    order = np.argsort(idx, kind="stable")
    uniq, inverse = np.unique(idx[order], return_inverse=True)
    if chunk is None:
        block = np.asarray(read(uniq))
    else:
        block = np.concatenate([np.asarray(read(uniq[s : s + chunk])) for s in range(0, len(uniq), chunk)])
    out = np.empty((len(idx), *block.shape[1:]), block.dtype)
    out[order] = block[inverse]
    return out
