"""Perturbations for QC experiments: inject near-duplicates and artefacts into a
dataset (the ground truth is kept in the metadata).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError
from tsimcne_nb.qc._common import _LUMA, _next_group, _with_qc_columns
from tsimcne_nb.validation import check_rng

__all__ = ['INJECT_KINDS', 'inject_artefacts', 'inject_duplicates', 'injected_mask', 'parse_inject']
#: injection kinds understood by :func:`parse_inject` / :func:`qc_to_directory`
INJECT_KINDS = ("duplicates", "artefacts")


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
    rng = check_rng(random_state)
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
    rng = check_rng(random_state)
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
