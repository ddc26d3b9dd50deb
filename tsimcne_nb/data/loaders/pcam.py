"""PatchCamelyon (PCam) read lazily from its HDF5 files.

The six files ``camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5`` (or
their distributed ``.h5.gz``, decompressed once next to them) are opened with
h5py; images are read in chunks on access (:class:`H5ImageArray`), so the 7 GB
training split is never whole in memory.  Labels (N bytes) are read eagerly.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._indices import take_rows
from tsimcne_nb.data.core import CHUNK, ImageDataset
from tsimcne_nb.data.download import (
    _PCAM_PUBLISHED_MD5,
    PCAM_SPLITS,
    download_file,
    gunzip_file,
    md5_matches,
    pcam_filename,
    pcam_url,
    raise_not_found,
)
from tsimcne_nb.errors import ConfigError, DataError

CLASS_NAMES = ["no metastasis", "metastasis"]
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}


def _normalise_key(key: Any, n: int) -> tuple[str, Any]:
    """Classify a numpy-style index: ('int', i) | ('slice', (start, stop, step)) | ('array', idx)."""
    if isinstance(key, (int, np.integer)):
        i = int(key)
        if i < -n or i >= n:
            raise IndexError(f"index {i} out of range for {n} images")
        return "int", i % n
    if isinstance(key, slice):
        return "slice", key.indices(n)
    if isinstance(key, tuple):
        raise IndexError("only the first (image) axis can be indexed on a lazy image array")
    idx = np.asarray(key)
    if idx.dtype == np.bool_:
        if idx.shape != (n,):
            raise IndexError(f"boolean index must have shape ({n},); got {idx.shape}")
        idx = np.flatnonzero(idx)
    if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
        raise IndexError(f"unsupported index {key!r}: use an int, a slice or a 1-D index array")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise IndexError(f"index out of range for {n} images")
    return "array", idx % n if idx.size else idx


class LazyImageArray:
    """Base of the lazy array-likes: ``shape``, ``dtype``, ``len`` and numpy-style indexing.

    Subclasses implement :meth:`_read_range` (contiguous ``start:stop``) and may
    override :meth:`_read_sorted` (sorted unique indices).
    """

    dtype = np.dtype(np.uint8)
    shape: tuple[int, ...]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def _read_range(self, start: int, stop: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read_sorted(self, idx: np.ndarray) -> np.ndarray:
        """Read sorted unique indices window by window: dense windows as one range."""
        out = np.empty((len(idx), *self.shape[1:]), self.dtype)
        pos = 0
        while pos < len(idx):
            window = idx[pos : pos + CHUNK]
            lo, hi = int(window[0]), int(window[-1]) + 1
            if hi - lo <= 4 * len(window):
                out[pos : pos + len(window)] = self._read_range(lo, hi)[window - lo]
            else:
                out[pos : pos + len(window)] = self._read_points(window)
            pos += len(window)
        return out

    def _read_points(self, idx: np.ndarray) -> np.ndarray:
        return np.stack([self._read_range(int(i), int(i) + 1)[0] for i in idx])

    def __getitem__(self, key: Any) -> np.ndarray:
        n = len(self)
        kind, k = _normalise_key(key, n)
        if kind == "int":
            return self._read_range(k, k + 1)[0]
        if kind == "slice":
            start, stop, step = k
            if step == 1:
                if stop <= start:
                    return np.empty((0, *self.shape[1:]), self.dtype)
                return np.concatenate(
                    [self._read_range(s, min(s + CHUNK, stop)) for s in range(start, stop, CHUNK)]
                )
            k = np.arange(start, stop, step)
        idx = k
        if idx.size == 0:
            return np.empty((0, *self.shape[1:]), self.dtype)
        # h5py wants increasing unique indices: read sorted, then restore the order asked for
        return take_rows(self._read_sorted, idx)


class H5ImageArray(LazyImageArray):
    """Images in an HDF5 dataset, read on access in chunks.

    Parameters
    ----------
    path
        The ``.h5`` file.
    key
        Name of the dataset inside it (``"x"`` for PCam).

    The file is opened on first access and reopened after pickling (DataLoader
    workers), so the object is cheap to copy.
    """

    def __init__(self, path: str | os.PathLike, key: str = "x") -> None:
        self.path = Path(path)
        self.key = key
        self._file = None
        ds = self._dataset()
        self.shape = tuple(int(s) for s in ds.shape)
        self.dtype = np.dtype(ds.dtype)
        if len(self.shape) != 4 or self.shape[-1] != 3 or self.dtype != np.uint8:
            raise DataError(
                f"{self.path}['{key}'] must be uint8 images of shape (N, H, W, 3); got dtype "
                f"{self.dtype} shape {self.shape}. Is this the right file?"
            )

    def _dataset(self):
        if self._file is None:
            self._file = open_h5(self.path)
        try:
            return self._file[self.key]
        except KeyError as exc:
            raise DataError(
                f"{self.path} has no dataset '{self.key}' (found: {', '.join(self._file.keys())})."
            ) from exc

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        try:
            return self._dataset()[start:stop]
        except OSError as exc:
            raise DataError(
                f"reading images {start}:{stop} of {self.path} failed ({exc}); the file is "
                "damaged. Delete it (and its .h5.gz) and download it again."
            ) from exc

    def _read_points(self, idx: np.ndarray) -> np.ndarray:
        return self._dataset()[idx]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"] = None
        return state

    def __repr__(self) -> str:
        return f"H5ImageArray({str(self.path)!r}, key={self.key!r}, shape={self.shape})"


class ResizedImageArray(LazyImageArray):
    """A lazy view of ``base`` with every image resized (per chunk, on access)."""

    def __init__(self, base: Any, size: int | Sequence[int]) -> None:
        from tsimcne_nb.data.resize import _size_hw

        self.base = base
        self.size = _size_hw(size)
        self.shape = (len(base), *self.size, 3)

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        from tsimcne_nb.data.resize import resize_images

        return resize_images(np.asarray(self.base[start:stop]), self.size)

    def _read_points(self, idx: np.ndarray) -> np.ndarray:
        from tsimcne_nb.data.resize import resize_images

        return resize_images(np.asarray(self.base[idx]), self.size)


class ConcatImageArray(LazyImageArray):
    """Several lazy arrays of the same image shape, end to end."""

    def __init__(self, parts: Sequence[Any]) -> None:
        if not parts:
            raise DataError("ConcatImageArray needs at least one part")
        shapes = {tuple(p.shape[1:]) for p in parts}
        if len(shapes) > 1:
            raise DataError(f"cannot concatenate images of shapes {sorted(shapes)}")
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in parts])
        self.shape = (int(self.offsets[-1]), *shapes.pop())

    def _read_range(self, start: int, stop: int) -> np.ndarray:
        blocks = []
        for p, off in zip(self.parts, self.offsets[:-1], strict=True):
            lo, hi = max(start - off, 0), min(stop - off, len(p))
            if lo < hi:
                blocks.append(np.asarray(p[int(lo) : int(hi)]))
        return np.concatenate(blocks) if blocks else np.empty((0, *self.shape[1:]), self.dtype)

    def _read_points(self, idx: np.ndarray) -> np.ndarray:
        part = np.searchsorted(self.offsets, idx, side="right") - 1
        out = np.empty((len(idx), *self.shape[1:]), self.dtype)
        for j, p in enumerate(self.parts):
            sel = part == j
            if sel.any():
                out[sel] = np.asarray(p[idx[sel] - self.offsets[j]])
        return out


def open_h5(path: str | os.PathLike):
    """Open an HDF5 file read-only; a damaged file raises :class:`DataError`."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(
            f"{path} cannot be opened as HDF5 ({exc}); the file is damaged or incomplete (an "
            "interrupted download or decompression?). Delete it and download it again"
            f" ({pcam_url(*_split_kind(path)) if _split_kind(path) else 'from the source'})."
        ) from exc


def _split_kind(path: str | os.PathLike) -> tuple[str, str] | None:
    name = Path(path).name
    for s in PCAM_SPLITS:
        for k in ("x", "y"):
            if name.startswith(pcam_filename(s, k)):
                return s, k
    return None


def _ensure_h5(root: Path, split: str, kind: str, download: bool, expected: list[str]) -> Path:
    h5 = root / pcam_filename(split, kind)
    if h5.exists():
        return h5
    gz = h5.with_name(h5.name + ".gz")
    if not gz.exists():
        if not download:
            raise_not_found(
                "pcam", root, expected, ["https://zenodo.org/records/2546921"],
                extra="Plain .h5 files or the distributed .h5.gz files both work (the .gz are "
                "decompressed once, next to them; about 8 GB in all).",
            )
        download_file(pcam_url(split, kind), gz, md5=None)
        if not md5_matches(gz, _PCAM_PUBLISHED_MD5[(split, kind)]):
            warnings.warn(
                f"{gz.name}: MD5 differs from the published checksums (which are known to be "
                "partly wrong for PCam); using the file anyway.",
                stacklevel=3,
            )
    return gunzip_file(gz, h5)


def read_labels(path: Path) -> np.ndarray:
    """The labels (0/1) of a PCam ``*_y.h5`` file as an int64 vector."""
    with open_h5(path) as f:
        if "y" not in f:
            raise DataError(f"{path} has no dataset 'y' (found: {', '.join(f.keys())}).")
        try:
            y = np.asarray(f["y"][()])
        except OSError as exc:
            raise DataError(
                f"reading labels from {path} failed ({exc}); the file is damaged. Delete it and "
                "download it again."
            ) from exc
    return y.reshape(len(y), -1)[:, 0].astype(np.int64) if y.ndim > 1 else y.astype(np.int64)


def load_pcam(
    root: str | os.PathLike,
    split: str = "all",
    size: int | Sequence[int] | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load PatchCamelyon lazily.

    Parameters
    ----------
    root
        Folder with the six ``camelyonpatch_level_2_split_*_{x,y}.h5`` files (or ``.h5.gz``).
    split
        ``"all"`` (train+valid+test, one lazy array), ``"train"``, ``"valid"`` (or
        ``"val"``) or ``"test"``.
    size
        Resize the 96 px patches on access (e.g. 32 or 64); None keeps 96.
    download
        Fetch missing ``.h5.gz`` files from zenodo record 2546921.

    Returns
    -------
    ImageDataset
        With lazy images (:class:`H5ImageArray` or a concatenation of them).
    """
    split = SPLIT_ALIASES.get(split, split)
    if split not in ("all", *PCAM_SPLITS):
        raise ConfigError(f"pcam: split must be 'all', 'train', 'valid' or 'test'; got {split!r}")
    root = Path(root).expanduser()
    parts = PCAM_SPLITS if split == "all" else (split,)
    expected = [pcam_filename(s, k) + "[.gz]" for s in parts for k in ("x", "y")]
    arrays, labels, meta = [], [], []
    for s in parts:
        x_path = _ensure_h5(root, s, "x", download, expected)
        y_path = _ensure_h5(root, s, "y", download, expected)
        x = H5ImageArray(x_path, "x")
        y = read_labels(y_path)
        if len(y) != len(x):
            raise DataError(
                f"{x_path.name} holds {len(x)} images but {y_path.name} holds {len(y)} labels; "
                "one of the files is damaged or from another split. Download both again."
            )
        if y.size and (y.min() < 0 or y.max() > 1):
            raise DataError(f"{y_path}: PCam labels must be 0 or 1; got values in [{y.min()}, {y.max()}].")
        arrays.append(x)
        labels.append(y)
        meta.append(pd.DataFrame({"index": np.arange(len(x)), "split": s, "source_file": x_path.name}))
    images: Any = arrays[0] if len(arrays) == 1 else ConcatImageArray(arrays)
    if size is not None:
        images = ResizedImageArray(images, size)
    name = "pcam" if split == "all" else f"pcam-{split}"
    if size is not None:
        name += f"_{images.shape[1]}"
    return ImageDataset(
        images=images,
        labels=np.concatenate(labels),
        class_names=list(CLASS_NAMES),
        metadata=pd.concat(meta, ignore_index=True),
        name=name,
    )
