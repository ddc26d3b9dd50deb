"""Per-image properties (brightness, contrast, black fraction, ...) and robust z-scores."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset, as_dataset, iter_chunks
from tsimcne_nb.errors import ConfigError
from tsimcne_nb.qc._common import _LUMA

__all__ = ['image_properties', 'robust_z']


def image_properties(dataset: ImageDataset, black_level: int = 25) -> pd.DataFrame:
    """Per-image scores to colour the map by (and to rank outliers, never to flag alone).

    Computed on luma (0.299 R + 0.587 G + 0.114 B, scaled to [0, 1]) in chunks, so lazy
    datasets are never loaded whole.  Saturation is deliberately absent: grayscale is
    no defect in microscopy.

    Returns
    -------
    pandas.DataFrame
        One row per image, with the columns:

        brightness
            Mean luma.
        contrast
            Standard deviation of luma.
        sharpness
            Variance of the 4-neighbour Laplacian of luma: low = blurred (the usual "blur"
            score; a sharp checkerboard scores far higher than a blurred one).
        entropy
            Shannon entropy (bits) of the 256-bin luma histogram: 0 for a constant image.
        near_black
            Fraction of pixels with luma below ``black_level`` (0-255 units).
        outlier_score
            Largest robust z-score over the five columns (see :func:`robust_z`): for ranking.
    """
    dataset = as_dataset(dataset)
    if not 0 <= black_level <= 255:
        raise ConfigError(f"black_level must be in [0, 255]; got {black_level!r}.")
    n = len(dataset)
    out = {k: np.empty(n) for k in ("brightness", "contrast", "sharpness", "entropy", "near_black")}
    for start, block in iter_chunks(dataset.images, 1024):
        luma8 = np.rint(block.astype(np.float32) @ _LUMA).astype(np.int64)  # (b, H, W)
        b = len(block)
        sl = slice(start, start + b)
        flat = luma8.reshape(b, -1)
        luma = flat / 255.0
        out["brightness"][sl] = luma.mean(axis=1)
        out["contrast"][sl] = luma.std(axis=1)
        lum2 = luma8 / 255.0
        if lum2.shape[1] >= 3 and lum2.shape[2] >= 3:
            lap = (lum2[:, 1:-1, :-2] + lum2[:, 1:-1, 2:] + lum2[:, :-2, 1:-1] + lum2[:, 2:, 1:-1]
                   - 4 * lum2[:, 1:-1, 1:-1])
            out["sharpness"][sl] = lap.reshape(b, -1).var(axis=1)
        else:
            out["sharpness"][sl] = 0.0
        hist = np.bincount((np.arange(b)[:, None] * 256 + flat).ravel(), minlength=b * 256)
        p = hist.reshape(b, 256) / flat.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["entropy"][sl] = -np.sum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
        out["near_black"][sl] = (flat < black_level).mean(axis=1)
    df = pd.DataFrame(out)
    df["entropy"] = df["entropy"].clip(lower=0.0)  # -0.0 from the sum for constant images
    df["outlier_score"] = robust_z(df).abs().max(axis=1)
    return df


#: smallest difference of each property that counts as one unit of robust z: the
#: resolution below which differences are not meaningful.  Without it a property that is
#: 0 for most images (near_black) has a MAD of 0 and any dark pixel is a 10-sigma event.
PROPERTY_RESOLUTION = {
    "brightness": 0.01, "contrast": 0.005, "entropy": 0.05, "near_black": 0.015,
}


def robust_z(values: pd.DataFrame | np.ndarray, resolution: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Robust z-scores: ``(x - median) / scale`` per column.

    ``scale = max(1.4826 * MAD, resolution[column])``; where that is 0 (a column
    that is constant for most images, and has no resolution entry) the mean absolute
    deviation times 1.2533 is used (the usual "modified z-score" fallback).  A
    constant column gives z = 0.  ``resolution`` defaults to
    :data:`PROPERTY_RESOLUTION` (the columns of :func:`image_properties`).
    """
    df = pd.DataFrame(values).astype(np.float64)
    res = PROPERTY_RESOLUTION if resolution is None else resolution
    med = df.median()
    dev = (df - med).abs()
    floor = pd.Series({c: float(res.get(str(c), 0.0)) for c in df.columns}, dtype=np.float64)
    scale = np.maximum(1.4826 * dev.median(), floor)
    fallback = 1.2533 * dev.mean()
    scale = scale.where(scale > 0, fallback)
    z = (df - med) / scale.where(scale > 0, np.inf)
    return z.fillna(0.0)
