"""The one dataset object passed around everywhere: :class:`ImageDataset`.

Images are uint8 ``(N, H, W, C)`` with C = 3 (RGB).  They can be an in-memory
numpy array, an ``np.memmap`` or any *array-like* with ``shape``, ``dtype``,
``__len__`` and numpy-style ``__getitem__`` (integer, slice, index array) such as
:class:`~tsimcne_nb.data.loaders.pcam.H5ImageArray`, so that large datasets (PCam's
7 GB training split) are read in chunks and never whole.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._indices import take_rows
from tsimcne_nb._io import array_fingerprint
from tsimcne_nb.errors import DataError
from tsimcne_nb.validation import _is_lazy, validate_images, validate_labels

#: images are processed in chunks of this many along the first axis when lazy
CHUNK = 4096
#: label values above this (and above 4x the number of classes) are renumbered, not
#: given one class name per value up to the largest
_MAX_DENSE_LABEL = 1024

#: the one word that marks synthetic (generated) data in every name, title and table
SYNTHETIC_LABEL = "synthetic"


def synthetic_title(text: str, synthetic: bool) -> str:
    """``text`` marked as synthetic, ``"<text> (synthetic)"``, where the data are synthetic and
    the text does not say so already; otherwise ``text`` unchanged.

    Every figure title, table header and report line of the package goes through this, so
    synthetic data are labelled the same way everywhere.
    """
    if synthetic and SYNTHETIC_LABEL not in text.lower():
        return f"{text} ({SYNTHETIC_LABEL})" if text else SYNTHETIC_LABEL
    return text


def iter_chunks(images: Any, chunk: int = CHUNK):
    """Yield ``(start, block)`` with ``block`` a numpy array of up to ``chunk`` images."""
    n = len(images)
    for start in range(0, n, chunk):
        yield start, np.asarray(images[start : start + chunk])


@dataclass
class ImageDataset:
    """Images, labels, class names and per-image metadata, with a name.

    Parameters
    ----------
    images
        uint8 array-like of shape (N, H, W, 3).  Grayscale, RGBA, float and torch
        inputs are converted (see :func:`validate_images`).
    labels
        Integer class per image, shape (N,), or None.
    class_names
        Name of each class index; defaults to ``["0", "1", ...]``.
    metadata
        DataFrame with one row per image; ``index`` (position in the source) and
        ``split`` columns are added when missing.
    name
        Short dataset name used in manifests, figures and cache keys.
    synthetic
        True for generated data: figures and reports say so.
    """

    images: Any
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    metadata: pd.DataFrame | None = None
    name: str = "custom"
    synthetic: bool = False
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.images = validate_images(self.images)
        n = len(self.images)
        self.labels = validate_labels(self.labels, n)
        if self.class_names is None:
            k = int(self.labels.max()) + 1 if self.labels is not None and n else 0
            if k > _MAX_DENSE_LABEL:
                values = np.unique(self.labels)
                if k > 4 * len(values):  # far apart: one name per value up to k would waste memory
                    warnings.warn(
                        f"label values are far apart ({len(values)} distinct, the largest {k - 1}); "
                        f"they are renumbered 0..{len(values) - 1} and the original values kept as "
                        "class names.",
                        stacklevel=3,
                    )
                    self.labels = np.searchsorted(values, self.labels).astype(np.int64)
                    k = len(values)
                    self.class_names = [str(v) for v in values]
            if self.class_names is None:
                self.class_names = [str(i) for i in range(k)]
        else:
            self.class_names = [str(c) for c in self.class_names]
            if self.labels is not None and n and self.labels.max() >= len(self.class_names):
                raise DataError(
                    f"label {int(self.labels.max())} has no class name: only {len(self.class_names)} "
                    "class_names given. Pass one name per class index."
                )
        if self.metadata is None:
            self.metadata = pd.DataFrame(index=pd.RangeIndex(n))
        elif len(self.metadata) != n:
            raise DataError(
                f"metadata has {len(self.metadata)} rows but there are {n} images; one row per image."
            )
        self.metadata = self.metadata.reset_index(drop=True)
        if "index" not in self.metadata:
            self.metadata.insert(0, "index", np.arange(n))
        if "split" not in self.metadata:
            self.metadata["split"] = "all"

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.images)

    @property
    def title(self) -> str:
        """The name for figure titles and messages, marked synthetic (once) where the data are."""
        return synthetic_title(self.name, self.synthetic)

    def __repr__(self) -> str:
        kind = "synthetic " if self.synthetic else ""
        return (
            f"ImageDataset({kind}{self.name!r}, n={len(self)}, image_shape={self.image_shape}, "
            f"classes={len(self.class_names)}, lazy={self.is_lazy})"
        )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def is_lazy(self) -> bool:
        return _is_lazy(self.images)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def label_names(self) -> np.ndarray:
        """Class name of each image (array of str); empty strings without labels."""
        if self.labels is None:
            return np.full(len(self), "", dtype=object)
        return np.asarray(self.class_names, dtype=object)[self.labels]

    def to_numpy(self) -> np.ndarray:
        """All images as one in-memory uint8 array (reads lazy data in chunks)."""
        if not self.is_lazy:
            return np.asarray(self.images)
        out = np.empty(self.images.shape, dtype=np.uint8)
        for start, block in iter_chunks(self.images):
            out[start : start + len(block)] = block
        return out

    def fingerprint(self) -> str:
        """Content hash of images and labels (cached): keys caches and manifests."""
        if self._fingerprint is None:
            self._fingerprint = array_fingerprint(self.images, self.labels)
        return self._fingerprint

    def summary(self) -> dict[str, Any]:
        """A JSON-able description for manifests."""
        counts = (
            np.bincount(self.labels, minlength=self.n_classes).tolist()
            if self.labels is not None
            else None
        )
        return {
            "name": self.name,
            "synthetic": self.synthetic,
            "n": len(self),
            "image_shape": list(self.image_shape),
            "class_names": list(self.class_names),
            "class_counts": counts,
            "fingerprint": self.fingerprint(),
        }

    # ----------------------------------------------------------------- subsets
    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> ImageDataset:
        """A new dataset of the images at ``indices`` (in that order), loaded into memory."""
        idx = np.asarray(indices)
        if idx.dtype == np.bool_:
            idx = np.flatnonzero(idx)
        idx = idx.astype(np.int64)
        if idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise IndexError(f"subset indices out of range for a dataset of {len(self)} images")
        if self.is_lazy:
            imgs = take_rows(self.images, idx, chunk=CHUNK) if idx.size else (
                np.empty((0, *self.image_shape), np.uint8))
        else:
            imgs = self.images[idx]
        return ImageDataset(
            images=imgs,
            labels=None if self.labels is None else self.labels[idx],
            class_names=list(self.class_names),
            metadata=self.metadata.iloc[idx].reset_index(drop=True),
            name=name or self.name,
            synthetic=self.synthetic,
        )

    def stratified_subset(
        self, n: int, random_state: int | None = 0, name: str | None = None
    ) -> ImageDataset:
        """``n`` images drawn so that class proportions are kept (every class keeps >= 1 image).

        Without labels, a uniform random subset.  Indices are returned sorted so the
        subset keeps the source order.
        """
        if n <= 0:
            raise DataError(f"subset size must be positive; got {n}.")
        if n >= len(self):
            return self
        rng = np.random.default_rng(random_state)
        if self.labels is None:
            idx = np.sort(rng.choice(len(self), size=n, replace=False))
            return self.subset(idx, name=name)
        classes, counts = np.unique(self.labels, return_counts=True)
        # largest-remainder allocation, at least one per class
        quota = counts / counts.sum() * n
        take = np.maximum(np.floor(quota).astype(int), 1)
        take = np.minimum(take, counts)
        rem = n - take.sum()
        if rem > 0:
            order = np.argsort(-(quota - np.floor(quota)))
            for i in order:
                if rem == 0:
                    break
                if take[i] < counts[i]:
                    take[i] += 1
                    rem -= 1
        while take.sum() > n:  # more classes than n: drop from the largest
            take[np.argmax(take)] -= 1
        chosen = [
            rng.choice(np.flatnonzero(self.labels == c), size=t, replace=False)
            for c, t in zip(classes, take, strict=True)
            if t > 0
        ]
        return self.subset(np.sort(np.concatenate(chosen)), name=name)

    # ----------------------------------------------------------------- helpers
    def border_color(self) -> np.ndarray:
        """Mean colour of all border pixels of all images, float32 RGB in [0, 255].

        The paper fills the corners of randomly rotated images with this
        dataset-wide colour.  Vectorised per chunk (no Python loop over images).
        """
        total = np.zeros(3, dtype=np.float64)
        count = 0
        for _, block in iter_chunks(self.images):
            b = block.astype(np.float64)
            # top and bottom rows, then left and right columns without the corners
            edges = (
                b[:, 0, :, :].sum(axis=(0, 1))
                + b[:, -1, :, :].sum(axis=(0, 1))
                + b[:, 1:-1, 0, :].sum(axis=(0, 1))
                + b[:, 1:-1, -1, :].sum(axis=(0, 1))
            )
            total += edges
            h, w = block.shape[1:3]
            count += len(block) * (2 * w + 2 * max(h - 2, 0))
        return (total / max(count, 1)).astype(np.float32)

    def resize(self, size: int | tuple[int, int], name: str | None = None) -> ImageDataset:
        """A new in-memory dataset with every image resized to ``size`` (antialiased bilinear,
        :func:`tsimcne_nb.data.resize.resize_images` with ``method="bilinear"``)."""
        from tsimcne_nb.data.resize import resize_images

        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(self.image_shape[:2]) == hw:
            return self
        out = np.empty((len(self), hw[0], hw[1], 3), np.uint8)
        for start, block in iter_chunks(self.images):
            out[start : start + len(block)] = resize_images(np.asarray(block), hw, method="bilinear")
        return ImageDataset(
            out, self.labels, list(self.class_names), self.metadata.copy(),
            name or self.name, self.synthetic,
        )

    @staticmethod
    def concatenate(datasets: Sequence[ImageDataset], name: str | None = None) -> ImageDataset:
        """Join datasets (e.g. the paper's train+val+test) into one in-memory dataset."""
        if not datasets:
            raise DataError("concatenate needs at least one dataset")
        first = datasets[0]
        for d in datasets[1:]:
            if d.image_shape != first.image_shape:
                raise DataError(
                    f"cannot concatenate images of shape {first.image_shape} and {d.image_shape}; "
                    "resize them to one size first (dataset.resize(size))."
                )
            if list(d.class_names) != list(first.class_names):
                raise DataError("cannot concatenate datasets with different class_names")
        has_labels = [d.labels is not None for d in datasets]
        if any(has_labels) and not all(has_labels):
            raise DataError("cannot concatenate labelled and unlabelled datasets")
        return ImageDataset(
            images=np.concatenate([d.to_numpy() for d in datasets]),
            labels=np.concatenate([d.labels for d in datasets]) if all(has_labels) else None,
            class_names=list(first.class_names),
            metadata=pd.concat([d.metadata for d in datasets], ignore_index=True),
            name=name or first.name,
            synthetic=any(d.synthetic for d in datasets),
        )


def as_dataset(data: Any, labels: Any = None, name: str = "custom") -> ImageDataset:
    """Return ``data`` if it is an :class:`ImageDataset`, else wrap arrays/tensors into one."""
    if isinstance(data, ImageDataset):
        if labels is not None:
            raise DataError("labels were given twice: the ImageDataset already carries its labels")
        return data
    return ImageDataset(images=data, labels=labels, name=name)
