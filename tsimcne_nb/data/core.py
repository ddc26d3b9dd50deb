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

from tsimcne_nb._io import array_fingerprint
from tsimcne_nb.errors import DataError

#: images are processed in chunks of this many along the first axis when lazy
CHUNK = 4096
#: label values above this (and above 4x the number of classes) are renumbered, not
#: given one class name per value up to the largest
_MAX_DENSE_LABEL = 1024


def _is_lazy(images: Any) -> bool:
    return not isinstance(images, np.ndarray)


def iter_chunks(images: Any, chunk: int = CHUNK):
    """Yield ``(start, block)`` with ``block`` a numpy array of up to ``chunk`` images."""
    n = len(images)
    for start in range(0, n, chunk):
        yield start, np.asarray(images[start : start + chunk])


def _image_from_element(el: Any, i: int, name: str) -> np.ndarray:
    """One element of a list of images as an (H, W, C) array (C = 3, or the source depth)."""
    if type(el).__module__.startswith("PIL.") and hasattr(el, "mode"):
        if el.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            arr = np.asarray(el)  # keep the depth: 16-bit values are checked like a 16-bit array
        elif el.mode in ("L", "RGB", "RGBA"):
            arr = np.asarray(el)
        else:
            arr = np.asarray(el.convert("RGB"))
    elif hasattr(el, "detach") and hasattr(el, "cpu"):
        arr = el.detach().cpu().numpy()
        if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            arr = np.moveaxis(arr, 0, -1)  # torch CHW -> HWC
    elif isinstance(el, np.ndarray):
        arr = el
    else:
        raise DataError(
            f"element {i} of the list {name} is a {type(el).__name__}; a list of images must hold "
            "PIL images or (H, W) / (H, W, C) arrays or tensors."
        )
    if arr.dtype == object or arr.ndim not in (2, 3):
        raise DataError(
            f"element {i} of the list {name} has shape {arr.shape} and dtype {arr.dtype}; each image "
            "must be (H, W) or (H, W, C)."
        )
    if arr.ndim == 2:
        arr = arr[..., None]
    c = arr.shape[-1]
    if c == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif c == 4:
        arr = arr[..., :3]
    elif c != 3:
        raise DataError(
            f"element {i} of the list {name} has shape {arr.shape}; images need 1, 3 or 4 channels "
            "in the last axis."
        )
    return arr


def _stack_list(images: Sequence[Any], name: str) -> np.ndarray:
    """A list/tuple of PIL images, arrays or tensors -> one (N, H, W, 3) array."""
    if len(images) == 0:
        raise DataError(f"{name} is an empty list; pass at least one image.")
    arrays = [_image_from_element(el, i, name) for i, el in enumerate(images)]
    shapes = sorted({a.shape[:2] for a in arrays})
    if len(shapes) > 1:
        raise DataError(
            f"the images in the list {name} have different sizes ({', '.join(f'{h}x{w}' for h, w in shapes[:3])}"
            f"{', ...' if len(shapes) > 3 else ''}); resize them to one size first "
            "(tsimcne_nb.data.loaders.custom.from_arrays(images, size=S) does it)."
        )
    return np.stack(arrays)


def validate_images(images: Any, name: str = "images") -> Any:
    """Check images are uint8 (N, H, W, 3); convert the common fixable cases.

    Accepted and converted: torch tensors; lists or tuples of PIL images, arrays or
    tensors of one size; (N, H, W) grayscale (replicated to RGB); (N, H, W, 1)
    (replicated); (N, H, W, 4) RGBA (alpha dropped); float arrays in [0, 1] or
    [0, 255] (scaled/rounded to uint8); integer arrays within [0, 255].  A single
    (H, W, 3) image without a batch axis is refused with a message saying so
    (``images[None]``).  Everything else raises :class:`DataError` with a message
    that says how to fix it.
    """
    if isinstance(images, (list, tuple)):
        images = _stack_list(images, name)
    elif type(images).__module__.startswith("PIL.") and hasattr(images, "mode"):
        raise DataError(
            f"{name} is one PIL image; pass a list of images ([image]) or an array "
            "(np.asarray(image)[None])."
        )
    elif not (isinstance(images, np.ndarray) or hasattr(images, "__array__") or all(
        hasattr(images, a) for a in ("shape", "dtype", "__len__", "__getitem__")
    )):
        raise DataError(
            f"{name} must be a numpy array (N, H, W, 3), a torch tensor, a list of images or an "
            f"array-like with shape, dtype and indexing; got a {type(images).__name__}."
        )
    if hasattr(images, "detach") and hasattr(images, "cpu"):  # torch.Tensor, without importing torch
        images = images.detach().cpu().numpy()
        if images.ndim == 4 and images.shape[1] in (1, 3, 4) and images.shape[-1] not in (1, 3, 4):
            images = np.moveaxis(images, 1, -1)  # torch NCHW -> NHWC
    if _is_lazy(images):
        shape = tuple(getattr(images, "shape", ()))
        dtype = np.dtype(getattr(images, "dtype", "O"))
        if len(shape) != 4 or shape[-1] != 3 or dtype != np.uint8:
            raise DataError(
                f"lazy {name} must be uint8 with shape (N, H, W, 3); got dtype {dtype} shape {shape}. "
                "Wrap the source so that it yields RGB uint8 images, or load it into a numpy array."
            )
        return images
    arr = np.asarray(images)
    if arr.dtype == object:
        raise DataError(
            f"{name} has dtype object (images of different sizes?). Resize all images to one size "
            "and stack them into a (N, H, W, 3) uint8 array."
        )
    if arr.ndim == 3 and arr.shape[-1] in (3, 4) and min(arr.shape[:2]) > 4:
        raise DataError(
            f"{name} has shape {arr.shape}: one (H, W, C) image without a batch axis? Pass "
            f"images[None] (shape (1, {', '.join(map(str, arr.shape))})) for one image. Grayscale "
            "images are (N, H, W) with a width above 4."
        )
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(
            f"{name} must have shape (N, H, W, C) (or (N, H, W) for grayscale); got shape {arr.shape}. "
            "A single image needs a leading batch axis: images[None]."
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty (shape {arr.shape}); pass at least one image.")
    if 0 in arr.shape:
        raise DataError(f"{name} has shape {arr.shape}: images need at least one pixel and channel.")
    c = arr.shape[-1]
    if c not in (1, 3, 4):
        if arr.shape[1] in (1, 3, 4):
            raise DataError(
                f"{name} looks channels-first, shape {arr.shape}; pass channels-last (N, H, W, C): "
                "np.moveaxis(images, 1, -1)."
            )
        raise DataError(
            f"{name} must have 1, 3 or 4 channels in the last axis; got shape {arr.shape}."
        )
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            bad = int(np.count_nonzero(~np.isfinite(arr).reshape(len(arr), -1).all(axis=1)))
            raise DataError(
                f"{name} contains NaN or infinite values ({bad} images affected). "
                "Remove or repair those images first."
            )
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0 or hi > 255:
            raise DataError(
                f"float {name} must lie in [0, 1] or [0, 255]; got values in [{lo:g}, {hi:g}]. "
                "Undo any normalisation (mean/std) before passing images."
            )
        scale = 255.0 if hi <= 1.0 else 1.0
        arr = np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif np.issubdtype(arr.dtype, np.integer):
        if arr.dtype != np.uint8:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi > 255:
                raise DataError(
                    f"integer {name} must lie in [0, 255] for uint8 images; got dtype {arr.dtype} with "
                    f"values in [{lo}, {hi}]. Rescale (e.g. 16-bit microscopy: images // 257) first."
                )
            arr = arr.astype(np.uint8)
    else:
        raise DataError(f"{name} has unsupported dtype {arr.dtype}; pass uint8 (or float in [0, 1]).")
    if c == 1:
        arr = np.repeat(arr, 3, axis=-1)
    elif c == 4:
        arr = arr[..., :3]
    return arr


def validate_labels(labels: Any, n: int) -> np.ndarray | None:
    """Return labels as int64 (N,) or None; raise DataError on mismatch or bad values."""
    if labels is None:
        return None
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().numpy()
    lab = np.asarray(labels)
    if lab.ndim == 0:
        raise DataError(
            f"labels must be one integer per image, shape (N,); got a single value ({lab!r}). "
            "Pass a list or array with one label per image."
        )
    if lab.ndim > 1:
        if lab.size != lab.shape[0]:
            raise DataError(
                f"labels must be one integer per image, shape (N,) or (N, 1); got shape {lab.shape}. "
                "Multi-label data: pick one column (labels[:, k])."
            )
        lab = lab.reshape(-1)
    if len(lab) != n:
        raise DataError(
            f"labels ({len(lab)}) do not match images ({n}): there must be exactly one label per image."
        )
    if np.issubdtype(lab.dtype, np.floating):
        if not np.all(np.isfinite(lab)):
            raise DataError("labels contain NaN or infinite values; use an integer class per image.")
        if not np.all(lab == np.round(lab)):
            raise DataError("labels must be integer class indices; got non-integer floats.")
    elif not (np.issubdtype(lab.dtype, np.integer) or lab.dtype == np.bool_):
        raise DataError(
            f"labels must be integer class indices; got dtype {lab.dtype}. Strings: "
            "codes, names = pd.factorize(labels) and pass class_names=list(names)."
        )
    lab = lab.astype(np.int64)
    if lab.size and lab.min() < 0:
        raise DataError(f"labels must be >= 0; got minimum {lab.min()}.")
    return lab


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
        if self.synthetic and "synthetic" not in self.name.lower():
            return f"synthetic {self.name}"
        return self.name

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
            # h5py needs increasing indices: read sorted, then restore the requested order
            order = np.argsort(idx, kind="stable")
            sorted_idx = idx[order]
            uniq, inverse = np.unique(sorted_idx, return_inverse=True)
            block = np.concatenate(
                [np.asarray(self.images[uniq[s : s + CHUNK]]) for s in range(0, len(uniq), CHUNK)]
            ) if len(uniq) else np.empty((0, *self.image_shape), np.uint8)
            imgs = np.empty((len(idx), *self.image_shape), np.uint8)
            imgs[order] = block[inverse]
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
        """A new in-memory dataset with every image resized to ``size`` (antialiased bilinear)."""
        from PIL import Image

        hw = (size, size) if isinstance(size, int) else tuple(size)
        if tuple(self.image_shape[:2]) == hw:
            return self
        out = np.empty((len(self), hw[0], hw[1], 3), np.uint8)
        for start, block in iter_chunks(self.images):
            for j, img in enumerate(block):
                out[start + j] = np.asarray(
                    Image.fromarray(img).resize((hw[1], hw[0]), Image.Resampling.BILINEAR)
                )
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
