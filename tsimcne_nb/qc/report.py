"""Quality control: find duplicates and artefacts in a dataset, automatically and by eye.

The paper (section 5, Figure 6) shows that t-SimCNE puts perturbed duplicates of one
image, and images with black artefacts, into one small cluster of the 2-D map where
they are easy to spot.  This module turns that observation into a workflow:

1. **Perturbation experiments** (:func:`inject_duplicates`, :func:`inject_artefacts`)
   plant known problems into a copy of a dataset, with ground-truth flags in the
   metadata (``qc_injected``, ``qc_source``, ``qc_group``), so that detection can be
   measured (:func:`recovery_scores`, :func:`qc_experiment`).
2. **Detectors**: tight clusters of the 2-D map (:func:`find_tight_clusters`,
   confirmed in the backbone's feature space by :func:`feature_closure`), groups that
   keep to themselves in the features' neighbour graph (:func:`find_feature_clusters`),
   near-duplicates in a feature space (:func:`near_duplicate_groups`,
   :func:`duplicate_pairs_at_thresholds`, :func:`pairs_figure`), byte-identical
   images (:func:`exact_duplicates`) and per-image properties
   (:func:`image_properties`) with a robust outlier score.
3. **A report** (:func:`qc_report` -> :class:`QCReport`): ranked suspicious groups,
   thumbnail cards to inspect them, editable tags, an exclusion list and export.
4. :func:`qc_to_directory`, the ``tsimcne-nb qc`` command.

Group scores share one scale so that groups found by different detectors can be
ranked together: each detector measures, in natural-log units, *how much closer*
the members are to each other than expected (2-D density over the neighbourhood's
density; odds of a member's neighbours being members over an ordinary
neighbourhood's; within-group feature distance below the typical nearest-neighbour
distance; distance from the median in robust standard deviations), and the report ranks by
``evidence = score * log2(1 + size)`` so that a large tight group outranks a single
tight pair.  Groups found by several detectors are merged and their evidence added.

Nothing here is domain-blind flagging: image properties are scores to colour the
map by, and their outlier score only ranks candidates for a human to look at
(grayscale is no defect in microscopy, so saturation is not even measured).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_open, atomic_write_json, preflight_outputs
from tsimcne_nb.datasets.core import CHUNK, ImageDataset, as_dataset, iter_chunks
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.viz.palette import category_colors

#: tags a user can give an image in :attr:`QCReport.tags`
TAGS = ("duplicate", "artefact", "keep")
#: group kinds in :attr:`QCReport.groups`
KINDS = ("tight-cluster", "feature-cluster", "near-duplicate", "exact-duplicate", "property-outlier")
#: injection kinds understood by :func:`parse_inject` / :func:`qc_to_directory`
INJECT_KINDS = ("duplicates", "artefacts")
#: score given to byte-identical groups: as if 1000x closer than typical neighbours
EXACT_SCORE = float(np.log(1000.0))
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


# =============================================================== validation
def _check_random_state(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is not None and not isinstance(random_state, (int, np.integer)):
        raise ConfigError(f"random_state must be an int or None; got {random_state!r}.")
    return np.random.default_rng(random_state)


def _check_embedding(embedding: Any, n: int | None = None) -> np.ndarray:
    emb = np.asarray(embedding, dtype=np.float64)
    if emb.ndim != 2 or emb.shape[1] != 2:
        raise DataError(
            f"embedding must have shape (N, 2) (one 2-D point per image); got shape {emb.shape}."
        )
    if n is not None and len(emb) != n:
        raise DataError(
            f"embedding has {len(emb)} points but the dataset has {n} images; pass the map of "
            "this dataset, in the dataset's order."
        )
    if not np.all(np.isfinite(emb)):
        raise DataError("embedding contains NaN or infinite values; check the map that made it.")
    return emb


def _check_features(features: Any, n: int | None = None, name: str = "features") -> np.ndarray:
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2:
        raise DataError(f"{name} must have shape (N, F); got shape {x.shape}.")
    if n is not None and len(x) != n:
        raise DataError(
            f"{name} has {len(x)} rows but there are {n} images; pass one feature vector per image."
        )
    if len(x) < 2:
        raise DataError(f"{name} needs at least 2 rows to compare images; got {len(x)}.")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{name} contains NaN or infinite values.")
    return x


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


def _bilinear_crops(image: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Crop ``boxes`` (k, 4: y0, x0, h, w in pixels) from one image, resized back to its size.

    Vectorised bilinear sampling at pixel centres (no per-copy Python loop).
    """
    h_img, w_img = image.shape[:2]
    src = image.astype(np.float32)
    y0, x0, bh, bw = (boxes[:, i : i + 1] for i in range(4))
    ys = y0 + (np.arange(h_img) + 0.5) * bh / h_img - 0.5  # (k, H)
    xs = x0 + (np.arange(w_img) + 0.5) * bw / w_img - 0.5  # (k, W)
    ys = np.clip(ys, 0, h_img - 1)
    xs = np.clip(xs, 0, w_img - 1)
    y_lo = np.floor(ys).astype(np.int64)
    x_lo = np.floor(xs).astype(np.int64)
    y_hi = np.minimum(y_lo + 1, h_img - 1)
    x_hi = np.minimum(x_lo + 1, w_img - 1)
    wy = (ys - y_lo)[:, :, None, None]
    wx = (xs - x_lo)[:, None, :, None]

    def gather(yi: np.ndarray, xi: np.ndarray) -> np.ndarray:
        return src[yi[:, :, None], xi[:, None, :]]  # (k, H, W, 3)

    top = gather(y_lo, x_lo) * (1 - wx) + gather(y_lo, x_hi) * wx
    bottom = gather(y_hi, x_lo) * (1 - wx) + gather(y_hi, x_hi) * wx
    return top * (1 - wy) + bottom * wy


def _colour_jitter(images: np.ndarray, jitter: float, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast and saturation factors drawn from [1 - jitter, 1 + jitter] per image."""
    if jitter == 0:
        return images
    k = len(images)
    b, c, s = (rng.uniform(1 - jitter, 1 + jitter, size=(k, 1, 1, 1)) for _ in range(3))
    x = images * b
    luma = (x @ _LUMA)[..., None]
    x = (x - luma.mean(axis=(1, 2), keepdims=True)) * c + luma.mean(axis=(1, 2), keepdims=True)
    gray = (x @ _LUMA)[..., None]
    return gray + (x - gray) * s


def inject_duplicates(
    dataset: ImageDataset,
    k: int = 100,
    source_index: int | None = None,
    crop_scale: tuple[float, float] = (0.8, 1.0),
    noise_std: float = 8.0,
    jitter: float = 0.15,
    random_state: int | None = 0,
) -> ImageDataset:
    """Append ``k`` perturbed copies of one image (the paper's duplicate experiment).

    Each copy is a random crop (area fraction drawn from ``crop_scale``, aspect ratio
    from [3/4, 4/3]) resized back to the image size (bilinear), then colour-jittered
    (brightness, contrast and saturation factors in [1 - jitter, 1 + jitter]) and given
    Gaussian pixel noise of standard deviation ``noise_std`` (in 0-255 units).  The
    paper added 100 such copies to BloodMNIST.  numpy only.

    Parameters
    ----------
    dataset
        The dataset to copy; it is not modified.
    k
        Number of copies to append.
    source_index
        Position of the image to duplicate; a random image when None.
    crop_scale, noise_std, jitter
        Strength of the perturbations (see above).
    random_state
        Seed: the same seed gives the same copies.

    Returns
    -------
    ImageDataset
        The images of ``dataset`` followed by the ``k`` copies (label = the source's
        label).  Metadata columns: ``qc_injected`` ('' or 'duplicate'), ``qc_source``
        (position of the duplicated image, -1 otherwise) and ``qc_group`` (id of this
        injection, -1 otherwise).  The copies' ``index`` continues after the largest
        existing ``index`` so that it stays unique.
    """
    dataset = as_dataset(dataset)
    n = len(dataset)
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k (number of duplicates) must be a positive integer; got {k!r}.")
    lo, hi = (float(v) for v in crop_scale)
    if not 0 < lo <= hi <= 1:
        raise ConfigError(f"crop_scale must satisfy 0 < low <= high <= 1; got {crop_scale!r}.")
    if noise_std < 0 or not 0 <= jitter < 1:
        raise ConfigError(
            f"noise_std must be >= 0 and jitter in [0, 1); got noise_std={noise_std!r}, jitter={jitter!r}."
        )
    rng = _check_random_state(random_state)
    if source_index is None:
        source_index = int(rng.integers(n))
    if not isinstance(source_index, (int, np.integer)) or not -n <= source_index < n:
        raise ConfigError(f"source_index must be an image position in [0, {n}); got {source_index!r}.")
    source_index = int(source_index) % n
    image = np.asarray(dataset.images[source_index : source_index + 1])[0]
    h, w = image.shape[:2]
    area = rng.uniform(lo, hi, size=k) * h * w
    log_ratio = rng.uniform(np.log(3 / 4), np.log(4 / 3), size=k)
    bh = np.clip(np.sqrt(area / np.exp(log_ratio)), 1, h)
    bw = np.clip(np.sqrt(area * np.exp(log_ratio)), 1, w)
    y0 = rng.uniform(0, 1, size=k) * (h - bh)
    x0 = rng.uniform(0, 1, size=k) * (w - bw)
    copies = _bilinear_crops(image, np.stack([y0, x0, bh, bw], axis=1))
    copies = _colour_jitter(copies, float(jitter), rng)
    if noise_std > 0:
        copies = copies + rng.normal(0, noise_std, size=copies.shape)
    copies = np.clip(np.rint(copies), 0, 255).astype(np.uint8)

    md = _with_qc_columns(dataset.metadata)
    group = _next_group(md)
    new = pd.DataFrame([md.iloc[source_index].to_dict()] * k)
    start = int(md["index"].max()) + 1 if len(md) else 0
    new["index"] = np.arange(start, start + k)
    new["qc_injected"] = "duplicate"
    new["qc_source"] = source_index
    new["qc_group"] = group
    labels = None
    if dataset.labels is not None:
        labels = np.concatenate([dataset.labels, np.full(k, dataset.labels[source_index])])
    return ImageDataset(
        images=np.concatenate([dataset.to_numpy(), copies]),
        labels=labels,
        class_names=list(dataset.class_names),
        metadata=pd.concat([md, new], ignore_index=True),
        name=f"{dataset.name}+duplicates",
        synthetic=dataset.synthetic,
    )


def _coverage_mask(
    make: Callable[[float], np.ndarray], target: float, hi: float, iters: int = 14
) -> np.ndarray:
    """Bisect the size parameter of a monotone mask family to cover ``target`` of the image."""
    lo_s, hi_s = 0.0, hi
    mask = make(hi_s)
    for _ in range(iters):
        mid = 0.5 * (lo_s + hi_s)
        m = make(mid)
        if m.mean() < target:
            lo_s = mid
        else:
            hi_s, mask = mid, m
    return mask


def _artefact_mask(shape: str, h: int, w: int, coverage: float, rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    yy, xx = (yy + 0.5) / h, (xx + 0.5) / w  # unit square coordinates
    if shape == "blob":
        # an irregular blob: the union of 2-4 rotated ellipses around a common centre
        cy, cx = rng.uniform(0.2, 0.8, size=2)
        parts = []
        for _ in range(int(rng.integers(2, 5))):
            oy, ox = rng.normal(0, 0.08, size=2)
            a, b = rng.uniform(0.5, 1.0), rng.uniform(0.25, 0.7)
            t = rng.uniform(0, np.pi)
            dy, dx = yy - cy - oy, xx - cx - ox
            u = dx * np.cos(t) + dy * np.sin(t)
            v = -dx * np.sin(t) + dy * np.cos(t)
            parts.append((u / a) ** 2 + (v / b) ** 2)
        field_ = np.min(parts, axis=0)
        return _coverage_mask(lambda s: field_ <= s**2, coverage, 2.0)
    if shape == "stroke":
        p = rng.uniform(0.05, 0.95, size=2)
        ang = rng.uniform(0, np.pi)
        length = rng.uniform(0.6, 1.0)
        d = np.array([np.sin(ang), np.cos(ang)]) * length / 2
        a_pt, b_pt = p - d, p + d
        ab = b_pt - a_pt
        t = np.clip(((yy - a_pt[0]) * ab[0] + (xx - a_pt[1]) * ab[1]) / (ab @ ab), 0, 1)
        dist = np.hypot(yy - (a_pt[0] + t * ab[0]), xx - (a_pt[1] + t * ab[1]))
        return _coverage_mask(lambda s: dist <= s, coverage, 1.5)
    if shape == "corner":
        cy, cx = (0.0, 1.0)[int(rng.integers(2))], (0.0, 1.0)[int(rng.integers(2))]
        dist = np.hypot(yy - cy, xx - cx)
        return _coverage_mask(lambda s: dist <= s, coverage, 1.5)
    raise ConfigError(f"unknown artefact shape {shape!r}; use 'blob', 'stroke', 'corner' or 'mixed'.")


def inject_artefacts(
    dataset: ImageDataset,
    m: int = 50,
    random_state: int | None = 0,
    shape: str = "blob",
    coverage: tuple[float, float] = (0.10, 0.25),
    mode: str = "replace",
) -> ImageDataset:
    """Paint black artefacts onto ``m`` random images (the paper's artefact experiment).

    Each chosen image gets a pure black (RGB 0, 0, 0) region covering a fraction of the
    image drawn uniformly from ``coverage``:

    - ``'blob'``: an irregular blob, the union of 2-4 random ellipses (default; like a
      dust particle or a dead region of the sensor);
    - ``'stroke'``: a thick straight stroke (a hair or pen mark);
    - ``'corner'``: a quarter disc occluding one corner (a vignette or slide edge);
    - ``'mixed'``: one of the three at random per image.

    numpy only.

    Parameters
    ----------
    dataset
        The dataset to copy; it is not modified.
    m
        Number of images to paint.
    random_state
        Seed: the same seed gives the same images and masks.
    shape, coverage
        See above.
    mode
        ``'replace'`` (default, as in the paper): the chosen images are replaced by
        their painted versions, the dataset keeps its size.  ``'append'``: painted
        copies are appended and the originals stay.

    Returns
    -------
    ImageDataset
        Metadata columns ``qc_injected`` ('artefact' on painted images), ``qc_source``
        (the position of the original image) and ``qc_group`` (id of this injection),
        and ``qc_coverage`` (fraction of the image painted black, 0 elsewhere).
    """
    dataset = as_dataset(dataset)
    n = len(dataset)
    if mode not in ("replace", "append"):
        raise ConfigError(f"mode must be 'replace' or 'append'; got {mode!r}.")
    if not isinstance(m, (int, np.integer)) or m < 1:
        raise ConfigError(f"m (number of artefact images) must be a positive integer; got {m!r}.")
    if m > n:
        raise ConfigError(f"cannot paint artefacts on {m} images: the dataset has only {n}.")
    lo, hi = (float(v) for v in coverage)
    if not 0 < lo <= hi < 1:
        raise ConfigError(f"coverage must satisfy 0 < low <= high < 1; got {coverage!r}.")
    shapes = ("blob", "stroke", "corner")
    if shape not in (*shapes, "mixed"):
        raise ConfigError(f"unknown artefact shape {shape!r}; use 'blob', 'stroke', 'corner' or 'mixed'.")
    rng = _check_random_state(random_state)
    chosen = np.sort(rng.choice(n, size=m, replace=False))
    images = dataset.to_numpy().copy() if mode == "replace" else dataset.to_numpy()
    h, w = dataset.image_shape[:2]
    painted = images[chosen].copy()
    cover = np.zeros(m)
    for j in range(m):  # one mask per image; masks are tiny, the loop is over m (~50) images
        kind = shapes[int(rng.integers(3))] if shape == "mixed" else shape
        mask = _artefact_mask(kind, h, w, rng.uniform(lo, hi), rng)
        painted[j][mask] = 0
        cover[j] = mask.mean()

    md = _with_qc_columns(dataset.metadata)
    if "qc_coverage" not in md:
        md["qc_coverage"] = 0.0
    group = _next_group(md)
    labels = dataset.labels
    if mode == "replace":
        images[chosen] = painted
        md.loc[chosen, "qc_injected"] = "artefact"
        md.loc[chosen, "qc_source"] = chosen
        md.loc[chosen, "qc_group"] = group
        md.loc[chosen, "qc_coverage"] = cover
    else:
        new = md.iloc[chosen].copy().reset_index(drop=True)
        start = int(md["index"].max()) + 1
        new["index"] = np.arange(start, start + m)
        new["qc_injected"] = "artefact"
        new["qc_source"] = chosen
        new["qc_group"] = group
        new["qc_coverage"] = cover
        images = np.concatenate([images, painted])
        md = pd.concat([md, new], ignore_index=True)
        if labels is not None:
            labels = np.concatenate([labels, labels[chosen]])
    return ImageDataset(
        images=images,
        labels=labels,
        class_names=list(dataset.class_names),
        metadata=md,
        name=f"{dataset.name}+artefacts",
        synthetic=dataset.synthetic,
    )


def injected_mask(dataset: ImageDataset, kind: str | None = None) -> np.ndarray:
    """Boolean mask of injected images (``kind`` 'duplicate'/'artefact', or any when None)."""
    if "qc_injected" not in dataset.metadata:
        return np.zeros(len(dataset), dtype=bool)
    col = dataset.metadata["qc_injected"].astype(str).to_numpy()
    return col == kind if kind is not None else col != ""


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
    x = _prepare(_check_features(features), metric)
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


def _check_k(k: Any) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise ConfigError(f"k (neighbours per image) must be a positive integer; got {k!r}.")
    return int(k)


def _feature_knn(features: np.ndarray, k: int, metric: str) -> np.ndarray:
    """(N, k) indices of every image's k nearest other images in feature space."""
    _check_k(k)
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
    feats = _check_features(features)
    _check_k(k)
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
    feats = _check_features(features)
    n = len(feats)
    if not isinstance(min_size, (int, np.integer)) or min_size < 2:
        raise ConfigError(f"min_size must be an integer >= 2; got {min_size!r}.")
    _check_k(k)
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


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> float:
    return len(np.intersect1d(a, b, assume_unique=True)) / max(min(len(a), len(b)), 1)


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter) if inter else 0.0


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

    emb = _check_embedding(embedding)
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
        feats = _check_features(features, n)
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
    x = _prepare(_check_features(features), metric)
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
    x = _prepare(_check_features(features), metric)
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


def _read(dataset: ImageDataset, idx: Sequence[int] | np.ndarray) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    if not dataset.is_lazy:
        return np.asarray(dataset.images)[idx]
    return dataset.subset(idx).images


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


def property_outliers(
    properties: pd.DataFrame, z_threshold: float = 5.0, min_size: int = 1, max_overlap: float = 0.5
) -> pd.DataFrame:
    """Groups of images that are outliers on the same image properties.

    First one group per property and direction: the images beyond ``z_threshold``
    robust z (:func:`robust_z`).  Groups that share most of their images (Jaccard index
    above ``max_overlap``) describe one kind of image seen through several properties
    (a black blob is dark *and* sharp-edged): they become one group of the images
    flagged by all of them, and what is left of each (images flagged by only one, e.g.
    naturally sharp images) stays a group of its own.  This keeps an artefact group
    free of the images that merely share one of its properties.

    ``score`` = sum over the group's properties of ``log(median |z| of the members)``
    (at least ``log(z_threshold)`` per property); ``property`` names them, e.g. ``'high
    near_black + high sharpness'``.
    """
    if z_threshold <= 0:
        raise ConfigError(f"z_threshold must be > 0; got {z_threshold!r}.")
    cols = [c for c in properties.columns if c != "outlier_score"]
    z = robust_z(properties[cols])
    absz = {c: np.abs(z[c].to_numpy()) for c in cols}

    def row(members: np.ndarray, props: list[tuple[str, str]]) -> dict[str, Any]:
        # log of how many typical deviations out the members lie: the analogue of the other
        # detectors' "how many times denser / closer than typical"; the threshold only
        # decides membership (log(z / threshold) squashed a 12-sigma black blob to 0.9)
        score = sum(float(np.log(np.median(absz[c][members]))) for _, c in props)
        return {"size": len(members), "members": members, "score": score,
                "property": " + ".join(f"{w} {c}" for w, c in props)}

    single = []
    for c in cols:
        for sign, word in ((1, "high"), (-1, "low")):
            members = np.flatnonzero((sign * z[c]).to_numpy() > z_threshold)
            if len(members) >= min_size:
                single.append({**row(members, [(word, c)]), "_props": [(word, c)]})
    single.sort(key=lambda r: (-_evidence(r["score"], r["size"]), -r["size"]))
    groups: list[dict[str, Any]] = []  # each with "_props": the (direction, property) pairs
    for r in single:
        props = r["_props"]
        for g in groups:
            if _jaccard(r["members"], g["members"]) > max_overlap:
                common = np.intersect1d(g["members"], r["members"], assume_unique=True)
                rest = np.setdiff1d(r["members"], common, assume_unique=True)
                left = np.setdiff1d(g["members"], common, assume_unique=True)
                g_props = g["_props"]
                g.clear()
                g.update(row(common, g_props + props), _props=g_props + props)
                if len(left) >= min_size:
                    groups.append({**row(left, g_props), "_props": g_props})
                if len(rest) >= min_size:
                    groups.append({**row(rest, props), "_props": props})
                break
        else:
            groups.append(r)
    rows = [{k: v for k, v in g.items() if k != "_props"} for g in groups]
    return _group_frame(rows, ["group", "size", "members", "score", "property"])


# ================================================================= report
def _evidence(score: float, size: int) -> float:
    return max(float(score), 0.0) * float(np.log2(1 + size))


def _merge_groups(frames: Mapping[str, pd.DataFrame], max_overlap: float) -> pd.DataFrame:
    """One table of all detectors' groups, overlapping groups merged, ranked by evidence."""
    rows = []
    for kind, df in frames.items():
        for _, r in df.iterrows():
            detail = {k: r[k] for k in df.columns if k not in ("group", "size", "members", "score")}
            rows.append({
                "kind": kind, "size": int(r["size"]), "members": np.asarray(r["members"], np.int64),
                "score": float(r["score"]), "evidence": _evidence(r["score"], int(r["size"])),
                "detail": detail,
            })
    rows.sort(key=lambda r: (-r["evidence"], -r["size"]))
    merged: list[dict[str, Any]] = []
    for r in rows:
        for m in merged:
            # Jaccard, not overlap of the smaller: a near-duplicate pair inside a large
            # cluster is its own finding, not evidence that the whole cluster is suspicious
            if _jaccard(r["members"], m["members"]) > max_overlap:
                # the same images, found again by another detector: more evidence, same group
                m["evidence"] += r["evidence"]
                m["confirmed_by"].append(r["kind"])
                break
        else:
            merged.append({**r, "confirmed_by": []})
    merged.sort(key=lambda r: (-r["evidence"], -r["size"]))
    out = pd.DataFrame(merged,
                       columns=["kind", "size", "members", "score", "evidence", "detail", "confirmed_by"])
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _examples(members: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if len(members) <= k:
        return np.asarray(members)
    return np.sort(rng.choice(members, size=k, replace=False))


@dataclass
class QCReport:
    """Suspicious groups of a dataset, ranked, with tags a user can edit.

    Attributes
    ----------
    groups
        DataFrame, best first: ``rank``, ``kind`` (one of :data:`KINDS`), ``size``,
        ``score`` (the detector's log-ratio), ``evidence`` (``score * log2(1 + size)``,
        summed over detectors that found the same images; the ranking key),
        ``members`` (int array), ``examples`` (up to 8 member indices), ``confirmed_by``
        (other detectors that found the same group), ``detail`` (detector columns).
    tags
        DataFrame indexed by image position with column ``tag`` (one of :data:`TAGS`),
        ``group`` (rank of the group that suggested it, 0 = none) and ``reason``.
        Suggested by :meth:`suggest_tags`; edit with :meth:`tag` or directly.
    properties
        :func:`image_properties` of the dataset.
    """

    dataset: ImageDataset
    embedding: np.ndarray | None
    groups: pd.DataFrame
    properties: pd.DataFrame
    tags: pd.DataFrame = field(default=None)  # type: ignore[assignment]
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tags is None:
            n = len(self.dataset)
            self.tags = pd.DataFrame(
                {"tag": np.full(n, "keep", dtype=object), "group": np.zeros(n, np.int64),
                 "reason": np.full(n, "", dtype=object)},
                index=pd.RangeIndex(n, name="index"),
            )

    def __repr__(self) -> str:
        kinds = self.groups["kind"].value_counts().to_dict() if len(self.groups) else {}
        return f"QCReport({self.dataset!r}, groups={len(self.groups)} {kinds}, excluded={len(self.exclusion_list())})"

    # -------------------------------------------------------------- tags
    def tag(self, indices: Iterable[int] | np.ndarray, tag: str, reason: str = "by hand") -> QCReport:
        """Set ``tag`` ('duplicate', 'artefact' or 'keep') on images at ``indices``."""
        if tag not in TAGS:
            raise ConfigError(f"unknown tag {tag!r}; use one of {', '.join(TAGS)}.")
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.tags)):
            raise DataError(f"image indices must lie in [0, {len(self.tags)}); got {idx.min()}..{idx.max()}.")
        self.tags.loc[idx, "tag"] = tag
        self.tags.loc[idx, "reason"] = reason
        return self

    def _manual(self, idx: np.ndarray) -> np.ndarray:
        # a tag set through tag() (any reason) is a person's decision; suggestions record
        # the detector's kind as their reason, and untouched images an empty reason
        reasons = self.tags["reason"].to_numpy()[idx]
        return np.array([bool(r) and not str(r).startswith(KINDS) for r in reasons], dtype=bool)

    def suggest_tags(self, top: int | None = None, min_evidence: float = 10.0) -> QCReport:
        """Pre-fill tags from the groups with ``evidence >= min_evidence`` (and rank <= ``top``).

        Exact and near-duplicate groups, and tight or feature clusters whose members
        are near-identical in feature space (``feature_confirmation > 0``), are tagged
        'duplicate' except the member closest to the group's feature centre (or the
        first), which is kept.  Other tight clusters and property outliers are tagged
        'artefact': a suggestion to look at, not a verdict.  Earlier (better) groups win
        where groups share images.  Tags set with :meth:`tag` (by hand, or in a
        :class:`~tsimcne_nb.widgets.QCReview`) are not overwritten.
        """
        sel = self.groups[self.groups["evidence"] >= min_evidence]
        if top is not None:
            sel = sel[sel["rank"] <= top]
        for _, g in sel[::-1].iterrows():  # worst first so that the best group's tag wins
            kinds = [g["kind"], *g["confirmed_by"]]
            conf = g["detail"].get("feature_confirmation", np.nan) if isinstance(g["detail"], dict) else np.nan
            dup = bool({"exact-duplicate", "near-duplicate"} & set(kinds)) or (
                g["kind"] in ("tight-cluster", "feature-cluster") and np.isfinite(conf) and conf > 0
            )
            members = np.asarray(g["members"], np.int64)
            free = members[~self._manual(members)]
            if dup:
                keep_one = free[:1]
                self.tags.loc[free, ["tag", "group", "reason"]] = ["duplicate", int(g["rank"]), g["kind"]]
                self.tags.loc[keep_one, ["tag", "reason"]] = ["keep", f"{g['kind']} (kept copy)"]
            else:
                self.tags.loc[free, ["tag", "group", "reason"]] = ["artefact", int(g["rank"]), g["kind"]]
        return self

    def exclusion_list(self) -> pd.DataFrame:
        """Images tagged 'duplicate' or 'artefact': ``index`` (position), ``source_index``
        (the dataset's ``index`` metadata column), ``tag``, ``group``, ``reason``."""
        t = self.tags[self.tags["tag"] != "keep"]
        out = t.reset_index()
        out.insert(1, "source_index", self.dataset.metadata["index"].to_numpy()[out["index"].to_numpy()])
        return out

    def to_explorer_tags(self, explorer: Any) -> Any:
        """Push the 'duplicate' and 'artefact' tags into an explorer widget.

        Any object with a ``tag(name, indices)`` method works (duck typing; e.g.
        :class:`tsimcne_nb.widgets.explorer.Explorer`).  Returns the explorer.
        """
        if not callable(getattr(explorer, "tag", None)):
            raise ConfigError(
                f"{type(explorer).__name__} has no tag(name, indices) method; pass an Explorer widget."
            )
        for name in ("duplicate", "artefact"):
            idx = np.flatnonzero(self.tags["tag"].to_numpy() == name)
            if idx.size:  # an explorer refuses to tag nothing; a report may have no such images
                explorer.tag(name, idx.tolist())
        return explorer

    # ------------------------------------------------------------ export
    def table(self) -> pd.DataFrame:
        """The groups as a flat table (members and examples as space-separated strings)."""
        df = self.groups.copy()
        for col in ("members", "examples"):
            df[col] = [" ".join(map(str, m)) for m in df[col]]
        df["confirmed_by"] = [" ".join(c) for c in df["confirmed_by"]]
        df["detail"] = [
            "; ".join(f"{k}={_fmt(v)}" for k, v in d.items()) if isinstance(d, dict) else "" for d in df["detail"]
        ]
        df.insert(1, "synthetic", bool(self.dataset.synthetic))
        return df

    def export(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write :meth:`table` as CSV, atomically; refuses to replace a file unless ``overwrite``."""
        return _write_csv(self.table(), path, overwrite)

    def export_exclusion_list(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write :meth:`exclusion_list` as CSV, atomically."""
        return _write_csv(self.exclusion_list(), path, overwrite)

    # ----------------------------------------------------------- figures
    def cards(self, top: int = 6, per_group: int = 8, fig: Any = None) -> Any:
        """Thumbnail cards of the ``top`` groups: one row per group, ``per_group`` images."""
        import matplotlib.pyplot as plt

        g = self.groups.head(top)
        rows = max(len(g), 1)
        if fig is None:
            fig = plt.figure(figsize=(1.05 * per_group, 1.25 * rows + 0.4))
        axes = fig.subplots(rows, per_group, squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        if not len(g):
            axes[0, 0].text(0, 0.5, "no suspicious groups found", fontsize=9)
        for r, (_, row) in enumerate(g.iterrows()):
            ex = np.asarray(row["examples"], np.int64)[:per_group]
            for c, img in enumerate(_read(self.dataset, ex)):
                axes[r, c].imshow(img, interpolation="nearest")
                axes[r, c].set_title(str(ex[c]), fontsize=6)
            extra = f" +{'+'.join(row['confirmed_by'])}" if row["confirmed_by"] else ""
            detail = row["detail"] if isinstance(row["detail"], dict) else {}
            if "property" in detail:  # say which properties, not just "property-outlier"
                extra += f" ({detail['property']})"
            axes[r, 0].text(0, 1.35, f"#{row['rank']} {row['kind']}{extra}  n={row['size']}  "
                            f"evidence={row['evidence']:.1f}", transform=axes[r, 0].transAxes,
                            fontsize=7, ha="left", va="bottom")
        return fig

    def figure(self, top: int = 6, per_group: int = 8) -> Any:
        """The map with the top groups numbered (left) and their thumbnail cards (right)."""
        import matplotlib.pyplot as plt

        rows = max(min(top, len(self.groups)), 1)
        fig = plt.figure(figsize=(5 + 1.05 * per_group, max(5.0, 1.25 * rows + 0.8)))
        left, right = fig.subfigures(1, 2, width_ratios=[5, 1.05 * per_group])
        ax = left.subplots()
        if self.embedding is not None:
            emb = np.asarray(self.embedding)
            ax.scatter(emb[:, 0], emb[:, 1], s=2, c="0.75", linewidths=0, rasterized=True)
            shown = self.groups.head(top)
            palette = category_colors(max(len(shown), 1))
            for r, (_, row) in enumerate(shown.iterrows()):
                pts = emb[np.asarray(row["members"], np.int64)]
                ax.scatter(pts[:, 0], pts[:, 1], s=5, color=palette[r], linewidths=0)
                cx, cy = np.median(pts, axis=0)
                ax.annotate(f"#{row['rank']}", (cx, cy), fontsize=9, weight="bold", color=palette[r],
                            xytext=(6, 6), textcoords="offset points")
        ax.set_axis_off()
        ax.set_aspect("equal", adjustable="datalim")
        self.cards(top=top, per_group=per_group, fig=right)
        fig.suptitle(f"quality control of {self.dataset.title} (n={len(self.dataset)}): "
                     f"top {rows} suspicious groups", fontsize=10)
        return fig


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def _write_csv(df: pd.DataFrame, path: str | os.PathLike, overwrite: bool) -> Path:
    with atomic_open(path, "w", overwrite=overwrite) as fh:
        df.to_csv(fh, index=False)
    return Path(path)


def qc_report(
    dataset: ImageDataset,
    embedding: Any = None,
    features: Any = None,
    *,
    min_size: int = 5,
    n_neighbors: int = 10,
    near_duplicate_threshold: float | None = None,
    metric: str = "cosine",
    z_threshold: float = 5.0,
    max_overlap: float = 0.5,
    properties: pd.DataFrame | None = None,
    suggest: bool = True,
    min_evidence: float = 10.0,
    examples: int = 8,
    random_state: int | None = 0,
) -> QCReport:
    """Run every detector and rank the suspicious groups.

    Parameters
    ----------
    dataset
        The images.
    embedding
        (N, 2) map of the dataset (t-SimCNE's ``embedding_``); None skips tight clusters.
    features
        (N, F) backbone features; None skips near-duplicates, feature clusters and the
        feature-space confirmation of tight clusters.
    min_size
        Smallest tight cluster or feature cluster.
    n_neighbors
        Neighbours per image in the feature graph (:func:`find_feature_clusters`, and the
        feature-space confirmation of tight clusters); the search runs once for both.
    near_duplicate_threshold, metric
        See :func:`near_duplicate_groups`.
    z_threshold
        Robust z beyond which an image property is an outlier (see :func:`property_outliers`).
    max_overlap
        Groups of different detectors whose Jaccard index (shared images over images in
        either) exceeds this are merged into one (evidence added, ``confirmed_by``
        lists them).
    properties
        Precomputed :func:`image_properties` (computed when None).
    suggest, min_evidence
        Pre-fill :attr:`QCReport.tags` with :meth:`QCReport.suggest_tags`.
    examples
        Example members kept per group for the cards.
    """
    dataset = as_dataset(dataset)
    n = len(dataset)
    emb = None if embedding is None else _check_embedding(embedding, n)
    feats = None if features is None else _check_features(features, n)
    props = image_properties(dataset) if properties is None else properties
    if len(props) != n:
        raise DataError(f"properties has {len(props)} rows but the dataset has {n} images.")
    frames: dict[str, pd.DataFrame] = {"exact-duplicate": exact_duplicates(dataset)}
    if feats is not None:
        frames["near-duplicate"] = near_duplicate_groups(
            feats, threshold=near_duplicate_threshold, metric=metric, random_state=random_state)
    # one feature-neighbour search serves the tight clusters' confirmation and the feature clusters
    knn = None if feats is None else _feature_knn(feats, n_neighbors, _check_metric(metric))
    if emb is not None:
        frames["tight-cluster"] = find_tight_clusters(
            emb, feats, min_size=min_size, metric=metric, random_state=random_state, knn=knn)
    if feats is not None and n > max(min_size, n_neighbors):
        frames["feature-cluster"] = find_feature_clusters(
            feats, k=n_neighbors, min_size=min_size, metric=metric, random_state=random_state, knn=knn)
    frames["property-outlier"] = property_outliers(props, z_threshold=z_threshold, max_overlap=max_overlap)
    groups = _merge_groups(frames, max_overlap)
    rng = np.random.default_rng(random_state)
    groups["examples"] = [_examples(m, examples, rng) for m in groups["members"]]
    config = {"min_size": min_size, "n_neighbors": n_neighbors,
              "near_duplicate_threshold": near_duplicate_threshold,
              "metric": metric, "z_threshold": z_threshold, "max_overlap": max_overlap,
              "min_evidence": min_evidence, "random_state": random_state}
    report = QCReport(dataset=dataset, embedding=emb, groups=groups, properties=props, config=config)
    if suggest:
        report.suggest_tags(min_evidence=min_evidence)
    return report


# ================================================================ scoring
def _groups_list(report_or_groups: Any) -> list[np.ndarray]:
    if isinstance(report_or_groups, QCReport):
        report_or_groups = report_or_groups.groups
    if isinstance(report_or_groups, pd.DataFrame):
        if "members" not in report_or_groups:
            raise DataError("the groups table needs a 'members' column (from qc_report or a detector).")
        return [np.asarray(m, np.int64) for m in report_or_groups["members"]]
    return [np.asarray(m, np.int64) for m in report_or_groups]


def recovery_scores(report_or_groups: Any, truth_mask: Any, top: int = 1) -> dict[str, float]:
    """Precision and recall of the ``top`` best-ranked groups against the injected images.

    The *flagged* images are the union of the members of the first ``top`` groups in
    rank order (a :class:`QCReport`, a groups DataFrame in rank order, or a list of
    index arrays).  ``top=1`` (default) asks the strict question of the paper's
    experiment: is the single most suspicious group the injected one?

    Returns
    -------
    dict
        ``precision`` = injected among flagged / flagged (0 when nothing is flagged),
        ``recall`` = injected among flagged / injected, plus ``n_flagged``, ``n_true``,
        ``n_hit`` and ``top``.
    """
    groups = _groups_list(report_or_groups)
    truth = np.asarray(truth_mask)
    if truth.dtype != np.bool_:
        raise DataError("truth_mask must be a boolean array with one entry per image (e.g. injected_mask(ds)).")
    if not isinstance(top, (int, np.integer)) or top < 1:
        raise ConfigError(f"top must be a positive integer; got {top!r}.")
    n_true = int(truth.sum())
    if n_true == 0:
        raise DataError("truth_mask marks no image; recovery is undefined without injected images.")
    flagged = np.unique(np.concatenate(groups[:top])) if groups else np.empty(0, np.int64)
    if flagged.size and flagged.max() >= len(truth):
        raise DataError(f"group members reach index {flagged.max()} but truth_mask has {len(truth)} entries.")
    hit = int(truth[flagged].sum()) if flagged.size else 0
    return {
        "precision": hit / len(flagged) if len(flagged) else 0.0,
        "recall": hit / n_true,
        "n_flagged": int(len(flagged)), "n_true": n_true, "n_hit": hit, "top": int(top),
    }


def parse_inject(inject: str | Mapping[str, int] | None) -> dict[str, int]:
    """``'duplicates:100,artefacts:50'`` or ``{'duplicates': 100}`` -> ``{kind: count}``.

    Raises :class:`ConfigError` on unknown kinds, repeated kinds and counts that are
    not positive integers.
    """
    syntax = "use 'duplicates:N', 'artefacts:M' or both, comma-separated, e.g. 'duplicates:100,artefacts:50'"
    if inject is None:
        return {}
    if isinstance(inject, Mapping):
        items = [(str(k), v) for k, v in inject.items()]
    elif isinstance(inject, str):
        items = []
        for part in inject.split(","):
            part = part.strip()
            if part.count(":") != 1:
                raise ConfigError(f"cannot parse {part!r} in inject={inject!r}; {syntax}.")
            kind, count = (s.strip() for s in part.split(":"))
            items.append((kind, count))
    else:
        raise ConfigError(f"inject must be a string, a dict or None; got {type(inject).__name__}; {syntax}.")
    out: dict[str, int] = {}
    for kind, count in items:
        if kind not in INJECT_KINDS:
            raise ConfigError(f"unknown injection kind {kind!r}; {syntax}.")
        if kind in out:
            raise ConfigError(f"injection kind {kind!r} is given twice; {syntax}.")
        value: int | None = None
        if isinstance(count, str) and count.strip().isdigit():
            value = int(count)
        elif isinstance(count, (int, np.integer)) and not isinstance(count, bool):
            value = int(count)
        if value is None or value < 1:
            raise ConfigError(f"count for {kind!r} must be a positive integer; got {count!r}; {syntax}.")
        out[kind] = value
    if not out:
        raise ConfigError(f"inject={inject!r} names no injection; {syntax}.")
    return out


def _inject(dataset: ImageDataset, kind: str, count: int, random_state: int | None) -> ImageDataset:
    if kind == "duplicates":
        return inject_duplicates(dataset, k=count, random_state=random_state)
    if kind == "artefacts":
        return inject_artefacts(dataset, m=count, random_state=random_state)
    raise ConfigError(f"unknown injection kind {kind!r}; use one of {', '.join(INJECT_KINDS)}.")


def _split_map_output(out: Any, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(out, tuple):
        if len(out) != 2:
            raise DataError("map_fn must return an (N, 2) embedding or a tuple (embedding, features).")
        emb, feats = out
    else:
        emb, feats = out, None
    return _check_embedding(emb, n), None if feats is None else _check_features(feats, n)


def qc_experiment(
    dataset: ImageDataset,
    kind: str,
    count: int,
    map_fn: Callable[[ImageDataset], Any],
    random_state: int | None = 0,
    top: int = 1,
    **report_options: Any,
) -> dict[str, Any]:
    """One perturbation experiment: inject, map, detect, score.

    Parameters
    ----------
    dataset
        Clean dataset.
    kind, count
        ``'duplicates'`` or ``'artefacts'`` and how many.
    map_fn
        ``map_fn(perturbed_dataset)`` -> ``(N, 2)`` embedding or ``(embedding,
        features)``, e.g. ``lambda d: (m := TSimCNE(...).fit(d)).embedding_, m.features(d)``.
    top
        Groups counted as flagged (see :func:`recovery_scores`).
    report_options
        Passed to :func:`qc_report`.

    Returns
    -------
    dict
        :func:`recovery_scores` plus ``kind``, ``count`` and ``report`` (the QCReport).
    """
    perturbed = _inject(as_dataset(dataset), kind, int(count), random_state)
    emb, feats = _split_map_output(map_fn(perturbed), len(perturbed))
    report = qc_report(perturbed, emb, feats, random_state=random_state, **report_options)
    truth = injected_mask(perturbed, "duplicate" if kind == "duplicates" else "artefact")
    return {**recovery_scores(report, truth, top=top), "kind": kind, "count": int(count), "report": report}


# ================================================================ to disk
def _num_threads(num_threads: int | str | None) -> int:
    if num_threads in (None, "auto"):
        env = os.environ.get("TSIMCNE_NUM_THREADS")
        return max(1, int(env)) if env else max(1, (os.cpu_count() or 2) - 1)
    try:
        n = int(num_threads)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"num_threads must be a positive integer or 'auto'; got {num_threads!r}.") from exc
    if n < 1:
        raise ConfigError(f"num_threads must be a positive integer or 'auto'; got {num_threads!r}.")
    return n


def tsne_pixels_map(
    dataset: ImageDataset, random_state: int | None = 0, n_jobs: int = 1, n_components: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """t-SNE (openTSNE defaults) of the pixels after PCA to ``n_components``; returns
    ``(embedding, pca_features)``.  The paper's pixel-space baseline, used as a cheap map."""
    from openTSNE import TSNE
    from sklearn.decomposition import PCA

    x = dataset.to_numpy().reshape(len(dataset), -1).astype(np.float32) / 255.0
    k = min(n_components, x.shape[1], len(x) - 1)
    feats = PCA(n_components=k, random_state=random_state).fit_transform(x).astype(np.float32)
    emb = TSNE(n_jobs=n_jobs, random_state=random_state, verbose=False).fit(feats)
    return np.asarray(emb, dtype=np.float32), feats


def _map_from_model(dataset: ImageDataset, model: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The map and features of ``dataset`` from an already fitted TSimCNE (no training).

    The model's own training map is used when it was trained on exactly these images
    (same dataset fingerprint); other images are placed on its map with ``transform``.
    """
    fitted_fp = ((getattr(model, "manifest_", None) or {}).get("dataset") or {}).get("fingerprint")
    train_emb = getattr(model, "embedding_", None)
    if fitted_fp is not None and fitted_fp == dataset.fingerprint() and train_emb is not None:
        emb, placement = np.asarray(train_emb, np.float32), "training map"
    else:
        emb, placement = np.asarray(model.transform(dataset), np.float32), "transform (out-of-sample)"
    feats = np.asarray(model.features(dataset), np.float32)
    return emb, feats, {"device": str(getattr(model, "device_", "cpu")), "placement": placement}


def _load_model(model: Any) -> Any:
    if not isinstance(model, (str, os.PathLike)):
        if not all(callable(getattr(model, a, None)) for a in ("transform", "features")):
            raise ConfigError(
                f"model must be a fitted TSimCNE or the path of one saved with .save(); got {type(model).__name__}."
            )
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"no saved model at {path}; `tsimcne-nb fit --out DIR` writes DIR/model.pt, "
            "TSimCNE.save(path) any path."
        )
    from tsimcne_nb.training import TSimCNE

    return TSimCNE.load(path)


def _make_map(
    dataset: ImageDataset, map_method: str, *, augment: str, budget: str, device: str,
    random_state: int | None, num_threads: int | str | None, progress: bool, model: Any = None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    if model is not None:
        return _map_from_model(dataset, model)
    if map_method == "tsne-pixels":
        emb, feats = tsne_pixels_map(dataset, random_state=random_state, n_jobs=_num_threads(num_threads))
        return emb, feats, {"device": "cpu"}
    from tsimcne_nb.training import TSimCNE

    model = TSimCNE(augment=augment, budget=budget, random_state=random_state, device=device,
                    num_threads=num_threads, progress=progress).fit(dataset)
    emb = np.asarray(model.embedding_, np.float32)
    feats = np.asarray(model.features(dataset), np.float32)
    return emb, feats, {"device": str(getattr(model, "device_", device))}


#: the maps that :func:`qc_to_directory` can search for tight clusters (``map_method``)
MAP_METHODS = ("tsimcne", "tsne-pixels")


def _parse_map_methods(map_method: str | Sequence[str]) -> list[str]:
    items = map_method.split(",") if isinstance(map_method, str) else list(map_method)
    methods = [str(m).strip() for m in items if str(m).strip()]
    bad = [m for m in methods if m not in MAP_METHODS]
    if bad or not methods:
        raise ConfigError(
            f"map_method must be one or more of {', '.join(MAP_METHODS)} (comma-separated); "
            f"got {map_method!r}."
        )
    if len(set(methods)) != len(methods):
        raise ConfigError(f"map_method names a map twice: {map_method!r}.")
    return methods


def qc_to_directory(
    dataset: ImageDataset,
    out_dir: str | os.PathLike,
    *,
    inject: str | Mapping[str, int] | None = None,
    augment: str = "randrot",
    map_method: str | Sequence[str] = "tsimcne",
    budget: str = "quick",
    device: str = "auto",
    random_state: int | None = 0,
    num_threads: int | str | None = "auto",
    overwrite: bool = False,
    progress: bool = True,
    model: Any = None,
) -> str:
    """The ``tsimcne-nb qc`` command: map, detect, report, write.

    Without ``inject``, the dataset itself is mapped and checked.  With ``inject``
    (``'duplicates:100,artefacts:50'`` or a dict), each kind is injected into its own
    copy of the dataset and gets its own map (as in the paper), and ``recovery.json``
    records precision and recall of the top-ranked group for each.

    Files written to ``out_dir`` (refused if any exists, unless ``overwrite``):
    ``report.csv`` (ranked groups; an ``experiment`` column names the injection),
    ``exclusion_list.csv`` (suggested tags, to review), ``qc_figure.png`` (map and
    thumbnail cards per experiment), ``properties.parquet`` (image properties, and the
    2-D map as ``x``/``y``), ``manifest.json`` and, with injection, ``recovery.json``.

    ``model`` (a fitted :class:`TSimCNE` or the path of a saved one, e.g. the
    ``model.pt`` of ``tsimcne-nb fit``) skips training: its training map is used when
    it was trained on these very images, otherwise ``transform`` places them on it; its
    ``features`` feed the feature-space detectors.  Not with ``inject`` (each injected
    copy needs a map trained on it) and only with ``map_method='tsimcne'``.

    ``map_method`` may name several maps (``'tsimcne,tsne-pixels'``): each then gets
    these files in its own subfolder ``out_dir/<map>/``, ``out_dir/recovery.json``
    holds all recovery figures, and the returned text prints them side by side.

    Returns
    -------
    str
        What was written, and the recovery figures when images were injected.
    """
    dataset = as_dataset(dataset)
    kinds = parse_inject(inject)
    methods = _parse_map_methods(map_method)
    if augment not in ("default", "rot90", "randrot"):
        raise ConfigError(f"augment must be 'default', 'rot90' or 'randrot'; got {augment!r}.")
    if "tsne-pixels" in methods:
        _num_threads(num_threads)  # validate now, not after minutes of work
    if model is not None:
        if kinds:
            raise ConfigError(
                "inject and model do not go together: each injected copy of the data needs a map "
                "trained on it. Drop model (to train) or inject (to check the data as it is)."
            )
        if methods != ["tsimcne"]:
            raise ConfigError(f"model is a t-SimCNE model; it cannot make a {', '.join(methods)} map.")
    out = Path(out_dir)
    names = ["report.csv", "exclusion_list.csv", "qc_figure.png", "properties.parquet", "manifest.json"]
    if kinds:
        names.append("recovery.json")
    folders = [out] if len(methods) == 1 else [out / m for m in methods]
    targets = names if len(methods) == 1 else [f"{m}/{n}" for m in methods for n in names]
    if len(methods) > 1 and kinds:
        targets.append("recovery.json")
    preflight_outputs(out, targets, overwrite=overwrite)  # before any work, not after training
    if model is not None:
        model = _load_model(model)
    results = {
        m: _qc_one(dataset, folder, kinds, augment=augment, map_method=m, budget=budget, device=device,
                   random_state=random_state, num_threads=num_threads, overwrite=overwrite,
                   progress=progress, model=model)
        for m, folder in zip(methods, folders, strict=True)
    }
    if len(methods) == 1:
        return results[methods[0]][0]
    lines = [f"QC reports ({', '.join(methods)} maps) written to {', '.join(map(str, folders))}"]
    if kinds:
        recovery = {m: rec for m, (_, rec) in results.items()}
        atomic_write_json(out / "recovery.json", recovery, overwrite=overwrite)
        lines.append(_recovery_table(recovery, kinds, synthetic=dataset.synthetic))
    return "\n".join(lines)


def _recovery_table(recovery: Mapping[str, Mapping[str, Any]], kinds: Mapping[str, int], synthetic: bool) -> str:
    """Precision / recall of each map side by side, one row per injection."""
    methods = list(recovery)
    head = f"{'top-ranked group' + (' (SYNTHETIC data)' if synthetic else ''):<34}" + "".join(
        f"{m + ' map':>20}" for m in methods)
    rows = [head]
    for kind, count in kinds.items():
        cells = "".join(
            f"{'P ' + format(recovery[m][kind]['precision'], '.2f') + '  R ' + format(recovery[m][kind]['recall'], '.2f'):>20}"
            for m in methods)
        rows.append(f"{f'{count} injected {kind}':<34}{cells}")
    return "\n".join(rows)


def _qc_one(
    dataset: ImageDataset, out: Path, kinds: Mapping[str, int], *, augment: str, map_method: str,
    budget: str, device: str, random_state: int | None, num_threads: int | str | None, overwrite: bool,
    progress: bool, model: Any = None,
) -> tuple[str, dict[str, Any]]:
    """One map method of :func:`qc_to_directory`: returns (message, recovery)."""
    out.mkdir(parents=True, exist_ok=True)
    experiments = [("none", dataset)] if not kinds else [
        (kind, _inject(dataset, kind, count, random_state)) for kind, count in kinds.items()
    ]
    reports: dict[str, QCReport] = {}
    recovery: dict[str, Any] = {}
    timings: dict[str, float] = {}
    device_info: Any = None
    for kind, ds in experiments:
        t0 = time.perf_counter()
        emb, feats, info = _make_map(ds, map_method, augment=augment, budget=budget, device=device,
                                     random_state=random_state, num_threads=num_threads, progress=progress,
                                     model=model)
        device_info = info["device"]
        placement = info.get("placement", "trained here")
        timings[f"map_{kind}_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        rep = qc_report(ds, emb, feats, random_state=random_state)
        timings[f"detect_{kind}_s"] = round(time.perf_counter() - t0, 3)
        reports[kind] = rep
        if kind != "none":
            truth = injected_mask(ds, "duplicate" if kind == "duplicates" else "artefact")
            recovery[kind] = {**recovery_scores(rep, truth, top=1), "count": kinds[kind],
                              "map_method": map_method, "definition": "members of the top-ranked group"}

    tables, excl, props = [], [], []
    for kind, rep in reports.items():
        t = rep.table()
        t.insert(0, "experiment", kind)
        tables.append(t)
        e = rep.exclusion_list()
        e.insert(0, "experiment", kind)
        excl.append(e)
        p = rep.properties.copy()
        p.insert(0, "experiment", kind)
        p.insert(1, "index", np.arange(len(p)))
        if rep.embedding is not None:
            p["x"], p["y"] = rep.embedding[:, 0], rep.embedding[:, 1]
        if "qc_injected" in rep.dataset.metadata:
            p["qc_injected"] = rep.dataset.metadata["qc_injected"].to_numpy()
        props.append(p)
    _write_csv(pd.concat(tables, ignore_index=True), out / "report.csv", overwrite)
    _write_csv(pd.concat(excl, ignore_index=True), out / "exclusion_list.csv", overwrite)
    with atomic_open(out / "properties.parquet", "wb", overwrite=overwrite) as fh:
        pd.concat(props, ignore_index=True).to_parquet(fh, index=False)
    _save_reports_figure(reports, out / "qc_figure.png", overwrite)
    if kinds:
        atomic_write_json(out / "recovery.json", recovery, overwrite=overwrite)
    manifest = _manifest(dataset, kinds, map_method, augment, budget, random_state, device_info, timings, recovery)
    if model is not None:  # the map came from a fitted model: say which and how it was placed
        manifest["config"]["model"] = {"placement": placement,
                                       "manifest": getattr(model, "manifest_", None)}
    atomic_write_json(out / "manifest.json", manifest, overwrite=overwrite)
    lines = [f"QC report ({map_method} map) written to {out}"
             + (f" (map from the given model: {placement})" if model is not None else "")]
    for kind, rec in recovery.items():
        lines.append(
            f"  {kind} ({rec['count']} injected): precision {rec['precision']:.3f}, "
            f"recall {rec['recall']:.3f} (top-ranked group)"
        )
    return "\n".join(lines), recovery


def _save_reports_figure(reports: Mapping[str, QCReport], path: Path, overwrite: bool) -> None:
    import io

    import matplotlib.pyplot as plt

    figs = [rep.figure() for rep in reports.values()]
    if len(figs) == 1:
        fig = figs[0]
    else:  # stack the experiments' figures as images: one panel per experiment
        fig = plt.figure(figsize=(max(f.get_figwidth() for f in figs), sum(f.get_figheight() for f in figs)))
        axes = fig.subplots(len(figs), 1, squeeze=False)[:, 0]
        for ax, (kind, f) in zip(axes, zip(reports, figs, strict=True), strict=True):
            buf = io.BytesIO()
            f.savefig(buf, format="png", dpi=110)
            buf.seek(0)
            ax.imshow(plt.imread(buf))
            ax.set_axis_off()
            ax.set_title(f"experiment: {kind} injected", fontsize=10)
            plt.close(f)
        fig.tight_layout()
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def _manifest(dataset: ImageDataset, kinds: Mapping[str, int], map_method: str, augment: str, budget: str,
              random_state: int | None, device: Any, timings: dict[str, float], recovery: dict[str, Any]
              ) -> dict[str, Any]:
    from tsimcne_nb.manifest import build_manifest

    return build_manifest(
        kind="qc-report",
        config={"inject": dict(kinds), "map_method": map_method, "augment": augment, "budget": budget,
                "random_state": random_state},
        dataset=dataset, seed=random_state, device=device, timings=timings,
        extra={"recovery": recovery} if recovery else None,
    )


__all__ = [
    "INJECT_KINDS", "KINDS", "TAGS", "QCReport", "duplicate_pairs_at_thresholds", "exact_duplicates",
    "feature_closure", "feature_confirmation", "find_feature_clusters", "find_tight_clusters",
    "image_properties", "inject_artefacts",
    "inject_duplicates", "injected_mask", "near_duplicate_groups", "pairs_figure", "parse_inject",
    "MAP_METHODS", "property_outliers", "qc_experiment", "qc_report", "qc_to_directory", "recovery_scores", "robust_z",
    "tsne_pixels_map",
]
