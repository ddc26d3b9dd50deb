"""SYNTHETIC stand-in files in the exact on-disk formats of the paper's datasets.

The tutorial notebooks must run top to bottom on machines without the real
data (CI, a laptop offline, a first look before an 11 GB download).  For that,
:func:`write_standin_files` writes small files that the *real* loaders read
unchanged -- MedMNIST ``.npz``, PCam HDF5, AML-Cytomorphology RGBA TIFF folders,
CIFAR-10 pickles -- so every line of a notebook, including the data loading,
is exercised.

**The content is synthetic.**  Every image is drawn by
:func:`tsimcne_nb.data.synthetic.make_synthetic_blood` (procedural blood-smear
cells), whatever the dataset: a "PathMNIST" or "PCam" stand-in shows blood
cells with PathMNIST's/PCam's class count, class names, image size and file
layout, not tissue.  Maps, kNN accuracies and silhouettes computed on stand-ins
say nothing about the real dataset.  Each folder written carries a
``SYNTHETIC_STANDIN_<name>_README.txt`` saying so, and :func:`load_standin` returns a
dataset with ``synthetic=True`` and a name starting with ``synthetic-standin-``.

Layout: files go where :func:`tsimcne_nb.load_dataset` looks first when given
``root`` (its per-dataset sub-folder), so both ``load_dataset(name, root=root)``
and ``load_dataset(name, root=<returned folder>)`` read them:

========== ============================================================
name       files written below ``root``
========== ============================================================
bloodmnist ``medmnist/bloodmnist.npz`` (or ``bloodmnist_<size>.npz``)
pathmnist  ``medmnist/pathmnist.npz`` (or ``pathmnist_<size>.npz``)
dermamnist ``medmnist/dermamnist.npz`` (or ``dermamnist_<size>.npz``)
pcam       ``pcam/camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5``
leukemia   ``leukemia/AML-Cytomorphology_LMU/<ABBR>/<ABBR>_NNNN.tiff``
cifar10    ``cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}``
========== ============================================================
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsimcne_nb._io import atomic_write_text, check_can_write
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.data.formats import (
    pcam_file_name,
    write_cifar_batch,
    write_cifar_meta,
    write_medmnist_npz,
    write_pcam_h5,
    write_rgba_tiff,
)
from tsimcne_nb.errors import ConfigError

__all__ = [
    "STANDIN_NAMES", "README_NAME", "is_standin", "load_standin", "standin_classes",
    "write_standin_files",
]

#: the file in every stand-in folder that says the content is synthetic (``{name}`` = dataset;
#: one per dataset because the three MedMNIST stand-ins share the ``medmnist`` folder)
README_NAME = "SYNTHETIC_STANDIN_{name}_README.txt"

# Which synthetic-blood class draws each class of the real dataset, in the real label
# order, and the relative class frequency (from the official counts, so the stand-ins
# are as imbalanced as the real data, but with at least _MIN_PER_CLASS images).
# For the blood datasets the mapping is meaningful; for PathMNIST, DermaMNIST, PCam and
# CIFAR-10 it is arbitrary: only the number of classes matters.
_SPEC: dict[str, dict[str, Any]] = {
    "bloodmnist": {
        "folder": "medmnist", "size": 28, "splits": (11959, 1712, 3421),
        "classes": [("basophil", "basophil", 1218), ("eosinophil", "eosinophil", 3117),
                    ("erythroblast", "erythroblast", 1551),
                    ("immature granulocytes", "immature granulocyte", 2895),
                    ("lymphocyte", "lymphocyte", 1214), ("monocyte", "monocyte", 1420),
                    ("neutrophil", "neutrophil", 3329), ("platelet", "platelets", 2348)],
    },
    "pathmnist": {
        "folder": "medmnist", "size": 28, "splits": (89996, 10004, 7180),
        "classes": [("adipose", "neutrophil", 10407), ("background", "platelets", 10566),
                    ("debris", "erythroblast", 11512), ("lymphocytes", "lymphocyte", 12557),
                    ("mucus", "eosinophil", 8896), ("smooth muscle", "band", 13536),
                    ("normal colon mucosa", "monocyte", 8763),
                    ("cancer-associated stroma", "basophil", 10446),
                    ("colorectal adenocarcinoma epithelium", "blast", 14317)],
    },
    "dermamnist": {
        "folder": "medmnist", "size": 28, "splits": (7007, 1003, 2005),
        "classes": [("actinic keratoses", "eosinophil", 327),
                    ("basal cell carcinoma", "basophil", 514),
                    ("benign keratosis-like lesions", "monocyte", 1099),
                    ("dermatofibroma", "platelets", 115), ("melanoma", "blast", 1113),
                    ("melanocytic nevi", "lymphocyte", 6705),
                    ("vascular lesions", "erythroblast", 142)],
    },
    "pcam": {
        "folder": "pcam", "size": 96, "splits": (262144, 32768, 32768),
        "classes": [("no metastasis", "lymphocyte", 1), ("metastasis", "blast", 1)],
    },
    "leukemia": {
        # the real images are 400x400; 64 px keeps the stand-in small (the loader resizes)
        "folder": "leukemia", "size": 64, "splits": None,
        "classes": [("NGS", "neutrophil", 8484), ("LYT", "lymphocyte", 3937),
                    ("MYO", "blast", 3268), ("MON", "monocyte", 1789),
                    ("EOS", "eosinophil", 424), ("NGB", "band", 109),
                    ("BAS", "basophil", 79), ("EBO", "erythroblast", 78),
                    ("PMO", "immature granulocyte", 70)],
    },
    "cifar10": {
        "folder": "cifar10", "size": 32, "splits": (50000, 10000),
        "classes": [(c, s, 1) for c, s in zip(
            ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"),
            ("neutrophil", "band", "eosinophil", "basophil", "lymphocyte", "monocyte", "blast",
             "immature granulocyte", "erythroblast", "platelets"), strict=True)],
    },
}

#: dataset names :func:`write_standin_files` knows
STANDIN_NAMES: tuple[str, ...] = tuple(_SPEC)

_MIN_PER_CLASS = 4
_MEDMNIST_SIZES = (28, 64, 128, 224)


def standin_classes(name: str) -> list[tuple[str, str]]:
    """``(real class name, synthetic-blood class drawn for it)`` for each class of ``name``."""
    return [(real, syn) for real, syn, _ in _spec(name)["classes"]]


def _spec(name: Any) -> dict[str, Any]:
    key = str(name).strip().lower()
    if key not in _SPEC:
        raise ConfigError(
            f"no stand-in for dataset {name!r}; stand-ins exist for: {', '.join(STANDIN_NAMES)}."
        )
    return _SPEC[key]


def _counts(weights: Sequence[float], n: int) -> np.ndarray:
    """Split ``n`` into per-class counts proportional to ``weights``, each >= _MIN_PER_CLASS."""
    w = np.asarray(weights, dtype=np.float64)
    k = len(w)
    extra = n - _MIN_PER_CLASS * k
    share = w / w.sum() * extra
    counts = np.floor(share).astype(np.int64)
    # hand the rounding remainder to the largest fractional parts (deterministic)
    rest = extra - int(counts.sum())
    counts[np.argsort(-(share - counts), kind="stable")[:rest]] += 1
    return counts + _MIN_PER_CLASS


def _split_counts(total: int, proportions: Sequence[int]) -> list[int]:
    p = np.asarray(proportions, dtype=np.float64)
    sizes = np.floor(p / p.sum() * total).astype(np.int64)
    sizes[0] += total - int(sizes.sum())
    return [int(s) for s in sizes]


def _draw(spec: dict[str, Any], n: int, size: int, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic images and real-dataset labels, classes mixed in a random order."""
    from tsimcne_nb.data.synthetic.generator import make_synthetic_blood

    counts = _counts([c for _, _, c in spec["classes"]], n)
    images, labels = [], []
    for k, ((_, syn, _), m) in enumerate(zip(spec["classes"], counts, strict=True)):
        # one seed per class: the generator seeds image i from (random_state, i), so
        # drawing every class with the same seed would repeat poses across classes
        ds = make_synthetic_blood(
            n=int(m), size=size, classes=[syn], random_state=random_state * 1000 + k,
            # small images: the generator's default canvas (a multiple of size, >= 56 px,
            # keeps thin lobe strands); large ones: render at size, 4x cheaper than 2x
            render_size=None if size < 56 else size,
        )
        images.append(ds.images)
        labels.append(np.full(int(m), k, dtype=np.int64))
    x, y = np.concatenate(images), np.concatenate(labels)
    order = np.random.default_rng(random_state).permutation(len(y))
    return x[order], y[order]


def _readme(name: str, spec: dict[str, Any], n: int, size: int, files: list[str]) -> str:
    pairs = "\n".join(f"  {real:<40} <- synthetic '{syn}'" for real, syn, _ in spec["classes"])
    return (
        f"SYNTHETIC STAND-IN for the dataset '{name}' -- NOT THE REAL DATA.\n\n"
        f"These {n} images ({size}x{size} px) were drawn by tsimcne_nb.data.synthetic."
        "make_synthetic_blood\n(procedural blood-smear cells) and written in the exact file "
        f"format of '{name}' so that\nthe real loader, tsimcne_nb.load_dataset('{name}', root=...), "
        "reads them. Only the file\nformat, class count, class names and image size are "
        f"{name}'s. Maps and metrics computed\non these files say nothing about the real "
        "dataset. Delete this folder and put the real\nfiles here to use the real data.\n\n"
        f"Classes (real name <- synthetic class drawn for it):\n{pairs}\n\nFiles:\n"
        + "\n".join(f"  {f}" for f in files) + "\n"
    )


def _check_args(n: Any, size: Any, random_state: Any, spec: dict[str, Any], name: str) -> tuple[int, int, int]:
    k = len(spec["classes"])
    n_min = max(_MIN_PER_CLASS * k, 12)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < n_min:
        raise ConfigError(
            f"n must be an integer >= {n_min} for the {name} stand-in ({k} classes, at least "
            f"{_MIN_PER_CLASS} images each); got {n!r}."
        )
    if size is None:
        size = spec["size"]
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ConfigError(f"size must be an integer >= 8 (image side in pixels); got {size!r}.")
    if spec["folder"] == "medmnist" and size not in _MEDMNIST_SIZES:
        raise ConfigError(
            f"{name}: size must be one of {', '.join(map(str, _MEDMNIST_SIZES))} (the sizes "
            f"MedMNIST files exist in); got {size}."
        )
    if name == "cifar10" and size != 32:
        raise ConfigError(f"cifar10: the pickle format holds 32x32 images only; got size={size}.")
    if (isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))
            or random_state < 0):
        raise ConfigError(f"random_state must be a non-negative integer; got {random_state!r}.")
    return int(n), int(size), int(random_state)


def write_standin_files(
    name: str,
    root: str | os.PathLike,
    n: int = 600,
    random_state: int = 0,
    size: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write SYNTHETIC stand-in files in the exact format of a paper dataset.

    The images are synthetic blood cells (:func:`tsimcne_nb.data.synthetic.make_synthetic_blood`)
    labelled with the dataset's classes; the files are read by the real loader.
    They exist so that notebooks and pipelines can run without the real data;
    numbers computed on them say nothing about the real dataset.

    Parameters
    ----------
    name
        ``"bloodmnist"``, ``"pathmnist"``, ``"dermamnist"``, ``"pcam"``, ``"leukemia"``
        or ``"cifar10"`` (:data:`STANDIN_NAMES`).
    root
        Data folder.  Files go to its per-dataset sub-folder (``medmnist/``,
        ``pcam/``, ``leukemia/``, ``cifar10/``), where
        ``load_dataset(name, root=root)`` looks first.
    n
        Number of images in all (all splits together); classes follow the real
        class frequencies with at least 4 images each.
    random_state
        Seed; the same arguments write identical images.
    size
        Image side in pixels.  Default: the real size (28 for MedMNIST, 96 for
        PCam, 32 for CIFAR-10) except Leukemia, written at 64 px instead of the
        real 400 px to stay small (the loader resizes to 28 anyway).  MedMNIST
        allows 28, 64, 128, 224 (the file is then ``<flag>_<size>.npz``).
    overwrite
        Replace existing files; otherwise an existing file raises FileExistsError.

    Returns
    -------
    Path
        The dataset folder written (``root/medmnist``, ``root/pcam``,
        ``root/leukemia`` or ``root/cifar10``); it holds a
        ``SYNTHETIC_STANDIN_<name>_README.txt``.

    Raises
    ------
    ConfigError
        Unknown name, ``n`` too small for the classes, bad ``size`` or ``random_state``.
    FileExistsError
        A file exists and ``overwrite`` is False.

    Examples
    --------
    >>> folder = write_standin_files("bloodmnist", "/tmp/data", n=200)  # doctest: +SKIP
    >>> ds = load_dataset("bloodmnist", root="/tmp/data")               # doctest: +SKIP
    """
    spec = _spec(name)
    name = str(name).strip().lower()
    n, size, random_state = _check_args(n, size, random_state, spec, name)
    folder = Path(root).expanduser() / spec["folder"]
    planned = _planned_files(name, folder, size)
    for path in [*planned, folder / README_NAME.format(name=name)]:
        check_can_write(path, overwrite)  # refuse before writing anything
    images, labels = _draw(spec, n, size, random_state)
    folder.mkdir(parents=True, exist_ok=True)
    writer = {"pcam": _write_pcam, "leukemia": _write_leukemia, "cifar10": _write_cifar10}.get(
        name, _write_medmnist
    )
    files = writer(name, spec, folder, images, labels, overwrite)
    atomic_write_text(folder / README_NAME.format(name=name), _readme(name, spec, n, size, files), overwrite=overwrite)
    return folder


def _planned_files(name: str, folder: Path, size: int) -> list[Path]:
    if name in ("bloodmnist", "pathmnist", "dermamnist"):
        return [folder / (f"{name}.npz" if size == 28 else f"{name}_{size}.npz")]
    if name == "pcam":
        return [folder / f"camelyonpatch_level_2_split_{s}_{k}.h5"
                for s in ("train", "valid", "test") for k in ("x", "y")]
    if name == "cifar10":
        return [folder / "cifar-10-batches-py" / f
                for f in (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")]
    return [folder / "AML-Cytomorphology_LMU" / "annotations.dat"]


def _write_medmnist(name: str, spec: dict[str, Any], folder: Path, images: np.ndarray,
                    labels: np.ndarray, overwrite: bool) -> list[str]:
    size = images.shape[1]
    fname = f"{name}.npz" if size == 28 else f"{name}_{size}.npz"
    sizes = _split_counts(len(images), spec["splits"])
    arrays, start = {}, 0
    for split, m in zip(("train", "val", "test"), sizes, strict=True):
        arrays[f"{split}_images"] = images[start : start + m]
        # the official files hold labels as (N, 1) uint8
        arrays[f"{split}_labels"] = labels[start : start + m].astype(np.uint8).reshape(-1, 1)
        start += m
    write_medmnist_npz(folder / fname, arrays, overwrite=overwrite)
    return [fname]


def _write_pcam(name: str, spec: dict[str, Any], folder: Path, images: np.ndarray,
                labels: np.ndarray, overwrite: bool) -> list[str]:
    sizes = _split_counts(len(images), spec["splits"])
    files, start = [], 0
    for split, m in zip(("train", "valid", "test"), sizes, strict=True):
        x = images[start : start + m]
        y = labels[start : start + m].astype(np.uint8).reshape(-1, 1, 1, 1)
        start += m
        for kind, arr in (("x", x), ("y", y)):
            fname = pcam_file_name(split, kind)
            write_pcam_h5(folder / fname, kind, arr, overwrite=overwrite)
            files.append(fname)
    return files


def _write_leukemia(name: str, spec: dict[str, Any], folder: Path, images: np.ndarray,
                    labels: np.ndarray, overwrite: bool) -> list[str]:
    base = folder / "AML-Cytomorphology_LMU"
    abbrs = [real for real, _, _ in spec["classes"]]
    numbers = dict.fromkeys(abbrs, 0)
    files, notes = [], []
    for img, lab in zip(images, labels, strict=True):
        abbr = abbrs[int(lab)]
        numbers[abbr] += 1
        # the release stores RGBA TIFFs and has at least one doubled extension
        suffix = ".tiff.tiff" if not files else ".tiff"
        rel = f"{abbr}/{abbr}_{numbers[abbr]:04d}{suffix}"
        write_rgba_tiff(base / rel, img, overwrite=overwrite)
        files.append(f"AML-Cytomorphology_LMU/{rel}")
        notes.append(f"{rel} {abbr}")
    atomic_write_text(base / "annotations.dat", "\n".join(notes) + "\n", overwrite=overwrite)
    from tsimcne_nb.data.loaders.leukemia import ABBREVIATIONS

    atomic_write_text(
        base / "abbreviations.txt",
        "".join(f"{a}\t{ABBREVIATIONS.get(a, a)}\n" for a in abbrs), overwrite=overwrite,
    )
    counts = ", ".join(f"{a} {c}" for a, c in numbers.items())
    return [f"AML-Cytomorphology_LMU/<ABBR>/<ABBR>_NNNN.tiff: {len(files)} files ({counts})",
            "AML-Cytomorphology_LMU/annotations.dat", "AML-Cytomorphology_LMU/abbreviations.txt"]


def _write_cifar10(name: str, spec: dict[str, Any], folder: Path, images: np.ndarray,
                   labels: np.ndarray, overwrite: bool) -> list[str]:
    base = folder / "cifar-10-batches-py"
    n_train, n_test = _split_counts(len(images), spec["splits"])
    train_parts = np.array_split(np.arange(n_train), 5)
    batches = [(f"data_batch_{i + 1}", idx) for i, idx in enumerate(train_parts)]
    batches.append(("test_batch", np.arange(n_train, n_train + n_test)))
    files = []
    for fname, idx in batches:
        # rows of 3072 bytes: the R, G and B planes one after another (channel-major)
        data = np.ascontiguousarray(images[idx].transpose(0, 3, 1, 2).reshape(len(idx), -1))
        write_cifar_batch(base / fname, data, labels[idx], f"{fname} (SYNTHETIC stand-in)",
                          [f"synthetic_standin_{i}.png" for i in idx], overwrite=overwrite)
        files.append(f"cifar-10-batches-py/{fname}")
    write_cifar_meta(base / "batches.meta", [real for real, _, _ in spec["classes"]],
                     len(batches[0][1]), overwrite=overwrite)
    return [*files, "cifar-10-batches-py/batches.meta"]


def is_standin(name: str, root: str | os.PathLike | None = None) -> bool:
    """True if the files ``load_dataset(name, root=root)`` reads are SYNTHETIC stand-ins.

    Looks for the ``SYNTHETIC_STANDIN_<name>_README.txt`` that :func:`write_standin_files`
    puts next to them, in the folder the registry resolves ``root`` to (``root/<sub-folder>``
    when it exists, else ``root``; ``None``: the default data folder).  Use it after loading
    so that stand-ins left in a data folder are never mistaken for the real data.
    """
    from tsimcne_nb.data.registry import data_home

    key = str(name).strip().lower()
    if key not in _SPEC:
        return False  # only the paper's datasets have stand-ins
    sub = _SPEC[key]["folder"]
    if root is None:
        folder = data_home() / sub
    else:
        root = Path(root).expanduser()
        folder = root / sub if (root / sub).is_dir() else root
    return (folder / README_NAME.format(name=key)).is_file()


def load_standin(
    name: str,
    root: str | os.PathLike | None = None,
    n: int = 600,
    random_state: int = 0,
    size: int | None = None,
    **options: Any,
) -> ImageDataset:
    """Write stand-in files (unless present) and read them with the real loader.

    The result is marked ``synthetic=True`` and named ``synthetic-standin-<name>``
    so that every figure and table built from it says it is synthetic.

    Parameters
    ----------
    name
        One of :data:`STANDIN_NAMES`.
    root
        Data folder for the files; None writes to a new temporary folder.
    n, random_state, size
        As in :func:`write_standin_files`.
    **options
        Loader options passed to :func:`tsimcne_nb.load_dataset` (e.g. ``labels=7``
        for DermaMNIST, ``size=32`` for PCam).

    Returns
    -------
    ImageDataset
        Read through ``load_dataset(name, root=...)``.
    """
    import tempfile

    from tsimcne_nb.data.registry import load_dataset

    spec = _spec(name)
    key = str(name).strip().lower()
    if root is None:
        root = tempfile.mkdtemp(prefix=f"tsimcne_nb-standin-{key}-")
    folder = Path(root).expanduser() / spec["folder"]
    if not (folder / README_NAME.format(name=key)).exists() or not all(
        p.exists() for p in _planned_files(key, folder, size or spec["size"])
    ):
        write_standin_files(key, root, n=n, random_state=random_state, size=size)
    if key in ("bloodmnist", "pathmnist", "dermamnist") and size is not None:
        options.setdefault("size", size)
    if key == "leukemia":
        options.setdefault("progress", False)
    ds = load_dataset(key, root=root, **options)
    ds.synthetic = True
    ds.name = f"synthetic-standin-{ds.name}"
    return ds
