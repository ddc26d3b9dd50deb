"""Writers of the on-disk formats of the paper's datasets (DATASETS.md), one per format.

The synthetic stand-in files (:mod:`tsimcne_nb.data.standins`) and the test suite's fake
files (``tests/_fakes.py``) are written by these same functions, so what the loaders are
tested on is what the stand-ins contain.  Every write is atomic and refuses to overwrite
unless asked (:mod:`tsimcne_nb._io`).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tsimcne_nb._io import atomic_open, check_can_write

__all__ = [
    "pcam_file_name",
    "write_cifar_batch",
    "write_cifar_meta",
    "write_medmnist_npz",
    "write_pcam_h5",
    "write_rgba_tiff",
]


def write_medmnist_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray],
                       overwrite: bool = False) -> Path:
    """A MedMNIST ``.npz``: ``{train,val,test}_{images,labels}`` with ``np.savez_compressed``
    (the official files hold labels as ``(N, 1)`` uint8)."""
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        np.savez_compressed(fh, **arrays)
    return Path(path)


def pcam_file_name(split: str, kind: str) -> str:
    """``camelyonpatch_level_2_split_<split>_<kind>.h5`` (``kind`` ``"x"`` or ``"y"``)."""
    return f"camelyonpatch_level_2_split_{split}_{kind}.h5"


def write_pcam_h5(path: str | os.PathLike, key: str, array: np.ndarray, overwrite: bool = False,
                  gz: bool = False) -> Path:
    """One PCam HDF5 file holding ``array`` under ``key`` (``"x"``: images ``(N, S, S, 3)``,
    ``"y"``: labels ``(N, 1, 1, 1)`` uint8), chunked one image at a time and gzip-compressed
    like the real files; ``gz=True`` writes the whole file gzipped as ``path + ".gz"``
    (the form Zenodo serves)."""
    import h5py

    path = Path(path)
    if gz:
        check_can_write(str(path) + ".gz", overwrite)
        buf = io.BytesIO()
        with h5py.File(buf, "w") as f:
            f.create_dataset(key, data=array, chunks=(1, *array.shape[1:]), compression="gzip")
        with atomic_open(str(path) + ".gz", "wb", overwrite=overwrite) as fh:
            fh.write(gzip.compress(buf.getvalue()))
        return Path(str(path) + ".gz")
    with atomic_open(path, "w+b", overwrite=overwrite) as fh, h5py.File(fh, "w") as f:
        f.create_dataset(key, data=array, chunks=(1, *array.shape[1:]), compression="gzip")
    return path


def write_rgba_tiff(path: str | os.PathLike, image: np.ndarray, overwrite: bool = False) -> Path:
    """One AML-Cytomorphology image: an RGBA TIFF (an RGB ``image`` gets an opaque alpha)."""
    from PIL import Image

    if image.shape[-1] == 3:
        image = np.concatenate([image, np.full((*image.shape[:2], 1), 255, np.uint8)], axis=-1)
    buf = io.BytesIO()
    Image.fromarray(image, "RGBA").save(buf, format="TIFF")
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fh.write(buf.getvalue())
    return Path(path)


def write_cifar_batch(path: str | os.PathLike, data: np.ndarray, labels: Sequence[int],
                      batch_label: str, filenames: Sequence[str], overwrite: bool = False) -> Path:
    """One CIFAR-10 python batch (a protocol-2 pickle, as released): ``data`` holds rows of
    3072 bytes, the R, G and B planes one after another."""
    obj = {"batch_label": batch_label, "labels": [int(v) for v in labels], "data": data,
           "filenames": list(filenames)}
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        pickle.dump(obj, fh, protocol=2)
    return Path(path)


def write_cifar_meta(path: str | os.PathLike, label_names: Sequence[str], num_cases_per_batch: int,
                     overwrite: bool = False) -> Path:
    """CIFAR-10's ``batches.meta`` pickle."""
    meta = {"num_cases_per_batch": int(num_cases_per_batch), "num_vis": 3072,
            "label_names": list(label_names)}
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        pickle.dump(meta, fh, protocol=2)
    return Path(path)
