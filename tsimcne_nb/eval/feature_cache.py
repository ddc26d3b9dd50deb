"""The on-disk cache of baseline features and maps (keyed by method, configuration,
dataset fingerprint and seed), so that a repeated comparison recomputes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tsimcne_nb._io import atomic_open, atomic_write_json

__all__ = ['FeatureCache', 'cache_key', 'describe_augment', 'describe_budget']


# ---------------------------------------------------------------------- cache
def _version() -> str:
    from tsimcne_nb import __version__

    return __version__


def describe_budget(budget: Any) -> Any:
    """The budget's every setting, for a cache key: a name alone would let a result trained
    under an earlier definition of that budget (e.g. ``"quick"`` before issue 16) be reused.

    Parameters
    ----------
    budget : str or Budget
        A budget or its name.
    """
    from tsimcne_nb.train.budgets import resolve_budget

    return describe_augment(resolve_budget(budget).to_dict())


def describe_augment(augment: Any) -> Any:
    """A JSON-able description of an augmentation argument (for cache keys and manifests).

    Parameters
    ----------
    augment : str, Augmentation or Budget
        What to describe for a cache key.
    """
    if augment is None or isinstance(augment, (str, int, float, bool)):
        return augment
    if isinstance(augment, dict):
        return {str(k): describe_augment(v) for k, v in sorted(augment.items())}
    if isinstance(augment, (list, tuple)):
        return [describe_augment(v) for v in augment]
    if hasattr(augment, "to_config"):
        return describe_augment(augment.to_config())
    if isinstance(augment, np.generic):
        return augment.item()
    return repr(augment)


def cache_key(method: str, config: dict[str, Any], dataset: Any, seed: int | None) -> str:
    """Hex key of (method, config, dataset fingerprint, seed, package version).

    Parameters
    ----------
    method : str
        Method name.
    config : dict
        Everything that changes the result.
    dataset : ImageDataset
        The data (its fingerprint is used).
    seed : int, optional
        The seed.
    """
    fp = dataset.fingerprint() if hasattr(dataset, "fingerprint") else str(dataset)
    payload = json.dumps(
        {"method": method, "config": describe_augment(config), "dataset": fp, "seed": seed,
         "version": _version()},
        sort_keys=True, default=repr,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class FeatureCache:
    """A folder of computed features and embeddings, one ``.npy`` per key.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Folder to keep the arrays in (created on first write).  ``None`` disables
        caching: everything is computed, nothing stored.

    Attributes
    ----------
    hits, misses : int
        How many lookups found / did not find their array.
    log : list of (str, str, str)
        ``("hit" | "miss", method, key)`` per lookup, in order.

    Notes
    -----
    A key covers the method, its configuration, the dataset's content
    fingerprint, the seed and the package version, so a changed dataset or
    setting never returns a stale array.  Arrays are written atomically; a
    ``.json`` file next to each records what made it.
    """

    def __init__(self, cache_dir: str | os.PathLike | None):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.hits = 0
        self.misses = 0
        self.log: list[tuple[str, str, str]] = []

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.cache_dir)!r}, hits={self.hits}, misses={self.misses})"

    def path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if p is None or not p.exists():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError):  # a damaged file is recomputed, not trusted
            return None

    def save(self, key: str, array: np.ndarray, info: dict[str, Any] | None = None) -> Path | None:
        p = self.path(key)
        if p is None:
            return None
        with atomic_open(p, "wb", overwrite=True) as fh:  # same key = same content
            np.save(fh, np.asarray(array), allow_pickle=False)
        if info is not None:
            atomic_write_json(p.with_suffix(".json"), info, overwrite=True)
        return p

    def get_or_compute(
        self,
        method: str,
        config: dict[str, Any],
        dataset: Any,
        seed: int | None,
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        """The cached array for this key, or ``compute()`` (stored for next time).

        Parameters
        ----------
        method : str
            Method name.
        config : dict
            Everything that changes the result.
        dataset : ImageDataset
            The data (its fingerprint is used).
        seed : int, optional
            The seed.
        compute : callable
            ``compute()`` -> array, called on a miss.
        """
        key = cache_key(method, config, dataset, seed)
        arr = self.load(key)
        if arr is not None:
            self.hits += 1
            self.log.append(("hit", method, key))
            return arr
        self.misses += 1
        self.log.append(("miss", method, key))
        arr = compute()
        fp = dataset.fingerprint() if hasattr(dataset, "fingerprint") else None
        self.save(key, arr, {"method": method, "config": describe_augment(config),
                             "dataset": fp, "seed": seed, "version": _version(),
                             "shape": list(np.shape(arr))})
        return arr


def _cached(cache: FeatureCache | None, method: str, config: dict[str, Any], dataset: Any,
            seed: int | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if cache is None:
        return compute()
    return cache.get_or_compute(method, config, dataset, seed, compute)
