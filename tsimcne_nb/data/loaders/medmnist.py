"""MedMNIST v2/v3 loaders (BloodMNIST, PathMNIST, DermaMNIST), read with numpy.

The files are the official ``<flag>.npz`` (28 px) and ``<flag>_<size>.npz``
(64, 128, 224 px) with the keys ``{train,val,test}_{images,labels}``.  The
``medmnist`` package is not used: its classes assert the official sample counts
and create ``~/.medmnist`` at import time.  The tables here and in
:mod:`tsimcne_nb.data.download` (URLs, MD5s, split sizes, label names) are compared
with ``medmnist.INFO`` by ``tests/test_medmnist_info.py`` (``medmnist`` is in the ``dev`` extra).
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.data.download import (
    MEDMNIST_FLAGS,
    MEDMNIST_MD5,
    MEDMNIST_SIZES,
    download_file,
    medmnist_filename,
    medmnist_url,
    raise_not_found,
)
from tsimcne_nb.errors import ConfigError, DataError

SPLITS = ("train", "val", "test")

CLASS_NAMES: dict[str, list[str]] = {
    "bloodmnist": [
        "basophil", "eosinophil", "erythroblast", "immature granulocytes",
        "lymphocyte", "monocyte", "neutrophil", "platelet",
    ],
    "pathmnist": [
        "adipose", "background", "debris", "lymphocytes", "mucus", "smooth muscle",
        "normal colon mucosa", "cancer-associated stroma", "colorectal adenocarcinoma epithelium",
    ],
    "dermamnist": [
        "actinic keratoses", "basal cell carcinoma", "benign keratosis-like lesions",
        "dermatofibroma", "melanoma", "melanocytic nevi", "vascular lesions",
    ],
}

#: official train / val / test sizes (for information; small files are accepted)
OFFICIAL_COUNTS = {
    "bloodmnist": (11959, 1712, 3421),
    "pathmnist": (89996, 10004, 7180),
    "dermamnist": (7007, 1003, 2005),
}

#: the paper's binary DermaMNIST: melanocytic nevi (class 5) versus everything else
DERMA_NEVUS = 5
DERMA_BINARY_NAMES = ["other", "melanocytic nevi"]

_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def read_medmnist_npz(path: str | os.PathLike, url: str | None = None) -> dict[str, np.ndarray]:
    """Read the six arrays of a MedMNIST npz, with clear errors for missing keys and damage."""
    path = Path(path)
    again = f" Delete it and download it again ({url})." if url else " Delete it and recreate it."
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            missing = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels") if f"{s}_{k}" not in keys]
            if missing:
                raise DataError(
                    f"{path} is missing the key(s) {', '.join(missing)} (found: "
                    f"{', '.join(sorted(keys)) or 'none'}). A MedMNIST file holds train_images, "
                    "train_labels, val_images, val_labels, test_images and test_labels." + again
                )
            arrays = {f"{s}_{k}": npz[f"{s}_{k}"] for s in SPLITS for k in ("images", "labels")}
    except DataError:
        raise
    except _DAMAGED as exc:
        raise DataError(
            f"{path} is damaged or not a complete npz file ({exc.__class__.__name__}: {exc})."
            + again
        ) from exc
    for s in SPLITS:
        n_img, n_lab = len(arrays[f"{s}_images"]), len(arrays[f"{s}_labels"])
        if n_img != n_lab:
            raise DataError(
                f"{path}: {s}_images holds {n_img} images but {s}_labels holds {n_lab} labels; "
                "there must be one label per image." + again
            )
    return arrays


def load_medmnist(
    flag: str,
    root: str | os.PathLike,
    size: int = 28,
    split: str = "all",
    labels: int | None = None,
    download: bool = False,
) -> ImageDataset:
    """Load BloodMNIST, PathMNIST or DermaMNIST from ``root/<flag>[_<size>].npz``.

    Parameters
    ----------
    flag
        ``"bloodmnist"``, ``"pathmnist"`` or ``"dermamnist"``.
    root
        Folder holding the npz file.
    size
        28, 64, 128 or 224 (which file to read).
    split
        ``"all"`` (the paper's train+val+test, in that order), ``"train"``,
        ``"val"`` or ``"test"``.
    labels
        DermaMNIST only: 2 (default; the paper's melanocytic nevi versus other) or 7.
    download
        Fetch the file from zenodo if missing (MD5-checked).

    Returns
    -------
    ImageDataset
        Metadata columns ``index`` (position within its split), ``split`` and
        ``source_file``.
    """
    if flag not in MEDMNIST_FLAGS:
        raise ConfigError(f"unknown MedMNIST flag {flag!r}; valid: {', '.join(MEDMNIST_FLAGS)}")
    try:
        size = int(size)
    except (TypeError, ValueError):
        size = -1
    if size not in MEDMNIST_SIZES:
        raise ConfigError(
            f"{flag}: size must be one of {', '.join(map(str, MEDMNIST_SIZES))} (the sizes MedMNIST "
            "is published in); to get another size, load one of these and call dataset.resize(size)."
        )
    if split not in ("all", *SPLITS):
        raise ConfigError(f"{flag}: split must be 'all', 'train', 'val' or 'test'; got {split!r}")
    if flag == "dermamnist":
        labels = 2 if labels is None else labels
        if labels not in (2, 7):
            raise ConfigError(
                f"dermamnist: labels must be 2 (the paper's melanocytic nevi vs other) or 7; got {labels!r}"
            )
    elif labels is not None:
        raise ConfigError(f"{flag}: the labels option applies to dermamnist only")

    root = Path(root).expanduser()
    fname = medmnist_filename(flag, size)
    path, url = root / fname, medmnist_url(flag, size)
    if not path.exists():
        if download:
            download_file(url, path, md5=MEDMNIST_MD5[(flag, size)])
        else:
            raise_not_found(flag, root, [fname], [url])
    arrays = read_medmnist_npz(path, url)

    parts = SPLITS if split == "all" else (split,)
    images, labs, meta = [], [], []
    for s in parts:
        img = arrays[f"{s}_images"]
        if img.ndim >= 3 and img.shape[1:3] != (size, size):
            raise DataError(
                f"{path} holds {img.shape[1]}x{img.shape[2]} px images but size={size} expects "
                f"{size}x{size}; the file was probably renamed. Use the official "
                f"{medmnist_filename(flag, size)}."
            )
        images.append(img)
        labs.append(np.asarray(arrays[f"{s}_labels"]).reshape(len(img), -1)[:, 0] if len(img) else
                    np.zeros(0, np.int64))
        meta.append(pd.DataFrame({"index": np.arange(len(img)), "split": s, "source_file": fname}))
    if len({im.shape[1:] for im in images}) > 1:
        raise DataError(f"{path}: the splits hold images of different shapes; the file is not MedMNIST.")
    y = np.concatenate(labs)
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: labels must be integers; got dtype {y.dtype}.")
    names = list(CLASS_NAMES[flag])
    if y.size and (y.min() < 0 or y.max() >= len(names)):
        raise DataError(
            f"{path}: labels must lie in 0..{len(names) - 1} for {flag}; got values in "
            f"[{y.min()}, {y.max()}]."
        )
    name = flag if size == 28 else f"{flag}_{size}"
    if flag == "dermamnist" and labels == 2:
        y = (y == DERMA_NEVUS).astype(np.int64)
        names = list(DERMA_BINARY_NAMES)
    elif flag == "dermamnist":
        name += "-7class"
    if split != "all":
        name += f"-{split}"
    return ImageDataset(
        images=np.concatenate(images) if len(images) > 1 else images[0],
        labels=y,
        class_names=names,
        metadata=pd.concat(meta, ignore_index=True),
        name=name,
    )
