"""CIFAR-10 in torchvision's format (``cifar-10-batches-py``), read without torchvision.

The batches are Python pickles.  They are read with a restricted unpickler that
only builds dicts, lists, strings, bytes and numpy arrays, so a tampered file
cannot run code.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.data.download import (
    CIFAR10_ARCHIVE,
    CIFAR10_MD5,
    CIFAR10_URL,
    download_file,
    raise_not_found,
    safe_extract_tar,
)
from tsimcne_nb.errors import ConfigError, DataError

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_FILES = ["test_batch"]
META_FILE = "batches.meta"
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"disallowed object {module}.{name}")


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            obj = _SafeUnpickler(fh, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"{path} is not a readable CIFAR-10 batch ({exc.__class__.__name__}: {exc}); it is "
            f"damaged or not CIFAR-10. Delete {path.parent} and download {CIFAR10_URL} again."
        ) from exc
    if not isinstance(obj, dict):
        raise DataError(f"{path} does not hold a dict; it is not a CIFAR-10 batch file.")
    # keys are str (Python 3 pickles, or py2 pickles read as latin1) or bytes
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    if "data" not in d or "labels" not in d:
        raise DataError(f"{path} lacks 'data' or 'labels' (found: {sorted(d)}); not a CIFAR-10 batch.")
    data = np.asarray(d["data"])
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(
            f"{path}: 'data' must be uint8 of shape (N, 3072); got {data.dtype} {data.shape}."
        )
    if len(data) != len(labels):
        raise DataError(f"{path}: {len(data)} images but {len(labels)} labels.")
    # rows are stored channel-major (1024 R, 1024 G, 1024 B): to NHWC
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def find_folder(root: Path) -> Path | None:
    """``root/cifar-10-batches-py`` or ``root`` itself, whichever holds all batch files (else None)."""
    for cand in (root / FOLDER, root):
        if all((cand / f).exists() for f in (*TRAIN_FILES, *TEST_FILES)):
            return cand
    return None


def load_cifar10(
    root: str | os.PathLike, split: str = "all", download: bool = False
) -> ImageDataset:
    """Load CIFAR-10 from ``root/cifar-10-batches-py`` (torchvision's layout).

    Parameters
    ----------
    root
        Folder holding ``cifar-10-batches-py`` (or that folder itself).
    split
        ``"all"`` (50,000 train then 10,000 test), ``"train"`` or ``"test"``.
    download
        Fetch and safely extract ``cifar-10-python.tar.gz`` (MD5-checked) if missing.
    """
    if split not in ("all", "train", "test"):
        raise ConfigError(f"cifar10: split must be 'all', 'train' or 'test'; got {split!r}")
    root = Path(root).expanduser()
    folder = find_folder(root)
    if folder is None:
        if not download:
            raise_not_found(
                "cifar10", root, [f"{FOLDER}/{f}" for f in (*TRAIN_FILES, *TEST_FILES, META_FILE)],
                [CIFAR10_URL],
            )
        archive = download_file(CIFAR10_URL, root / CIFAR10_ARCHIVE, md5=CIFAR10_MD5)
        safe_extract_tar(archive, root)
        folder = find_folder(root)
        if folder is None:
            raise DataError(f"{archive} did not contain {FOLDER}; delete it and download it again.")
    names = list(CLASS_NAMES)
    if (folder / META_FILE).exists():
        meta_d = _load_pickle(folder / META_FILE)
        raw = meta_d.get("label_names")
        if raw is not None:
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in raw]
    groups = {"train": TRAIN_FILES, "test": TEST_FILES}
    parts = ("train", "test") if split == "all" else (split,)
    images, labels, metas = [], [], []
    for s in parts:
        start = 0
        for f in groups[s]:
            x, y = _read_batch(folder / f)
            images.append(x)
            labels.append(y)
            metas.append(pd.DataFrame({"index": np.arange(start, start + len(x)), "split": s,
                                       "source_file": f}))
            start += len(x)
    return ImageDataset(
        images=np.concatenate(images),
        labels=np.concatenate(labels),
        class_names=names,
        metadata=pd.concat(metas, ignore_index=True),
        name="cifar10" if split == "all" else f"cifar10-{split}",
    )
