"""The one input-validation module: images, labels, maps and other embeddings,
feature matrices, integers, floats and seeds.

Every public entry point checks its inputs here, so one kind of input is accepted (and
refused, with the same :class:`~tsimcne_nb.errors.DataError` or
:class:`~tsimcne_nb.errors.ConfigError` message saying what is wrong and how to fix it)
everywhere.  numpy only: importable by every layer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tsimcne_nb.errors import ConfigError, DataError

__all__ = [
    "check_embedding",
    "check_features",
    "check_float",
    "check_int",
    "check_labels_for_scoring",
    "check_rng",
    "check_seed",
    "validate_images",
    "validate_labels",
]


def _is_lazy(images: Any) -> bool:
    return not isinstance(images, np.ndarray)


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
            f"labels ({len(lab)}) do not match images ({n}): there must be exactly one label per "
            "image (one entry per point of a map)."
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


def check_labels_for_scoring(labels: Any, n: int, min_classes: int = 2) -> np.ndarray:
    """Labels to score a map with (any hashable values, e.g. strings), one per point.

    Unlike :func:`validate_labels` (class indices stored in a dataset) these may be names;
    at least ``min_classes`` distinct values are needed to score class separation.
    """
    if labels is None:
        raise DataError(
            "these metrics need class labels, but labels is None. Pass one integer label per point "
            "(dataset.labels); unlabelled data cannot be scored this way."
        )
    if hasattr(labels, "detach") and hasattr(labels, "cpu"):
        labels = labels.detach().cpu().numpy()
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"labels must be one label per point, shape (N,); got shape {y.shape}.")
    if len(y) != n:
        raise DataError(
            f"labels ({len(y)}) do not match the number of points ({n}): pass exactly one label "
            "per row of the embedding, in the same order."
        )
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise DataError("labels contain NaN or infinite values; drop unlabelled points first.")
    n_classes = len(np.unique(y))
    if n_classes < min_classes:
        raise DataError(
            f"labels contain {n_classes} class(es); at least {min_classes} are needed to score class "
            "separation. Check that the labels were loaded (not all zeros)."
        )
    return y


def check_embedding(embedding: Any, n: int | None = None, dim: int | None = None,
                    name: str = "embedding") -> np.ndarray:
    """A finite, non-empty numeric ``(N, d)`` array as float64 (``dim=2``: a map).

    Parameters
    ----------
    embedding : array-like or torch.Tensor
        One row per point.
    n : int, optional
        Required number of rows (the number of images it belongs to).
    dim : int, optional
        Required number of columns (2 for a map).
    name : str
        What to call it in error messages.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(N, d)``.
    """
    if hasattr(embedding, "detach") and hasattr(embedding, "cpu"):  # torch tensor, no torch import
        embedding = embedding.detach().cpu().numpy()
    X = np.asarray(embedding)
    want = "(N, 2)" if dim == 2 else "(N, d)" if dim is None else f"(N, {dim})"
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise DataError(f"{name} must be a numeric array of shape {want} (a map is (N, 2)); "
                        f"got dtype {X.dtype}.")
    if X.ndim != 2 or (dim is not None and X.shape[1] != dim):
        hint = ("Higher-dimensional features need a 2-D embedding first (e.g. "
                "tsimcne_nb.eval.baselines.tsne_of(features))." if dim == 2 and X.ndim == 2 else
                "A single point needs a leading axis: x[None]; a flat vector: x.reshape(-1, 2).")
        raise DataError(f"{name} must have shape {want} (one row per image); got shape {X.shape}. {hint}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {X.shape}); pass at least one point per row.")
    if n is not None and len(X) != n:
        raise DataError(
            f"{name} has {len(X)} points but the dataset has {n} images; pass the map of "
            "this dataset, in the dataset's order."
        )
    X = X.astype(np.float64, copy=False)
    if not np.all(np.isfinite(X)):
        bad = int(np.count_nonzero(~np.isfinite(X).all(axis=1)))
        raise DataError(
            f"{name} contains NaN or infinite values in {bad} of {len(X)} rows. "
            "A diverged training run gives NaNs: retrain (lower learning rate) or drop those rows."
        )
    return X


def check_features(features: Any, n: int | None = None, name: str = "features") -> np.ndarray:
    """A finite numeric ``(N, d)`` feature matrix with ``N >= 2``, as float32."""
    if hasattr(features, "detach") and hasattr(features, "cpu"):
        features = features.detach().cpu().numpy()
    x = np.asarray(features)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise DataError(f"{name} must be numeric, shape (N, d); got dtype {x.dtype}.")
    x = x.astype(np.float32, copy=False)
    if x.ndim != 2:
        raise DataError(f"{name} must have shape (N, d); got shape {x.shape}.")
    if n is not None and len(x) != n:
        raise DataError(
            f"{name} has {len(x)} rows but there are {n} images; pass one feature vector per image."
        )
    if len(x) < 2:
        raise DataError(f"{name} needs at least 2 rows to compare images; got {len(x)}.")
    if not np.all(np.isfinite(x)):
        raise DataError(
            f"{name} contain NaN or infinite values (a diverged network?); drop or recompute them."
        )
    return x


def check_int(name: str, value: Any, minimum: int = 1) -> int:
    """An integer (not a bool) ``>= minimum``; ``minimum=1`` reads "a positive integer"."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        rule = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ConfigError(f"{name} must be {rule}; got {value!r}.")
    return int(value)


def check_float(name: str, value: Any, *, positive: bool = True, below: float | None = None) -> float:
    """A finite number ``> 0`` (``positive=False``: ``>= 0``), optionally ``< below``."""
    ok = isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (float(value) > 0 if positive else float(value) >= 0)
    if ok and below is not None:
        ok = float(value) < below
    if not ok:
        rule = "> 0" if positive else ">= 0"
        if below is not None:
            rule += f" and < {below}"
        raise ConfigError(f"{name} must be a finite number {rule}; got {value!r}.")
    return float(value)


def check_seed(random_state: Any) -> int | None:
    """An integer seed or None (for functions that hand the seed on, e.g. to scikit-learn)."""
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        return int(random_state)
    raise ConfigError(f"random_state must be an integer or None; got {random_state!r}.")


def check_rng(random_state: Any) -> np.random.Generator:
    """A numpy Generator: given one, or seeded from an int (None: fresh entropy)."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is not None and (not isinstance(random_state, (int, np.integer))
                                     or isinstance(random_state, bool)):
        raise ConfigError(f"random_state must be an int or None; got {random_state!r}.")
    return np.random.default_rng(random_state)
