"""Leukemia: AML-Cytomorphology_LMU (Matek et al. 2019, The Cancer Imaging Archive).

18,365 single white-blood-cell images, 400x400 RGBA TIFF, one folder per class
(``AML-Cytomorphology_LMU/<ABBR>/<ABBR>_NNNN.tiff``; some files end in
``.tiff.tiff``).  The download is manual (about 11 GB).  The paper resized to
28x28 and merged the classes with fewer than 80 cells into ``OTH``, leaving 7.

Resizing 18k TIFFs takes minutes, so the resized array is cached as an npz next
to the data (keyed by size and the list of files).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_open
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.data.download import LEUKEMIA_URL
from tsimcne_nb.data.loaders.custom import read_image
from tsimcne_nb.data.resize import _size_hw
from tsimcne_nb.errors import ConfigError, DataError, DatasetNotFoundError

FOLDER = "AML-Cytomorphology_LMU"

#: image counts of the official release (DATASETS.md); used by merge_counts="paper"
PAPER_COUNTS: dict[str, int] = {
    "NGS": 8484, "LYT": 3937, "MYO": 3268, "MON": 1789, "EOS": 424, "NGB": 109,
    "BAS": 79, "EBO": 78, "PMO": 70, "MYB": 42, "MOB": 26, "PMB": 18, "MMZ": 15,
    "KSC": 15, "LYA": 11,
}

ABBREVIATIONS: dict[str, str] = {
    "NGS": "neutrophil (segmented)", "LYT": "lymphocyte (typical)", "MYO": "myeloblast",
    "MON": "monocyte", "EOS": "eosinophil", "NGB": "neutrophil (band)", "BAS": "basophil",
    "EBO": "erythroblast", "PMO": "promyelocyte", "MYB": "myelocyte", "MOB": "monoblast",
    "PMB": "promyelocyte (bilobed)", "MMZ": "metamyelocyte", "KSC": "smudge cell",
    "LYA": "lymphocyte (atypical)", "OTH": "other (merged rare classes)",
}

MERGED = "OTH"
_CACHE_VERSION = 1


def manual_download_message(searched: Path) -> str:
    """How to get AML-Cytomorphology_LMU by hand, and where to put it."""
    return (
        f"leukemia: the folder {FOLDER} was not found in {searched}.\n"
        "This dataset must be downloaded by hand (about 11 GB): get 'AML-Cytomorphology_LMU' from "
        f"The Cancer Imaging Archive ({LEUKEMIA_URL}), unpack it and pass root=/--data-root "
        f"pointing at the folder that contains {FOLDER} (or at {FOLDER} itself). Expected layout: "
        f"{FOLDER}/<ABBR>/<ABBR>_NNNN.tiff, one sub-folder per class (NGS, LYT, MYO, ...)."
    )


def find_folder(root: str | os.PathLike) -> Path:
    """``root`` itself or ``root/AML-Cytomorphology_LMU``, whichever holds the class folders."""
    root = Path(root).expanduser()
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if root.is_dir() and (root.name == FOLDER or any(
        d.is_dir() and any(d.glob("*.tif*")) for d in root.iterdir()
    )):
        return root
    raise DatasetNotFoundError(manual_download_message(root))


def scan(folder: Path) -> list[tuple[str, Path]]:
    """``(abbr, file)`` for every ``<ABBR>/*.tif*`` below ``folder``, sorted."""
    files = []
    for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files += [(d.name, f) for f in sorted(d.glob("*.tif*")) if f.is_file()]
    if not files:
        raise DataError(
            f"{folder} holds no class sub-folders with TIFF images. Expected layout: "
            f"{FOLDER}/<ABBR>/<ABBR>_NNNN.tiff (one sub-folder per cell type: NGS, LYT, MYO, MON, "
            "EOS, ...), as unpacked from The Cancer Imaging Archive."
        )
    return files


def class_counts(abbrs: list[str], merge_counts: str | dict[str, int]) -> dict[str, int]:
    """The count of each abbreviation present that decides merging and class order."""
    observed = pd.Series(abbrs).value_counts().to_dict()
    if isinstance(merge_counts, dict):
        return {a: int(merge_counts.get(a, observed[a])) for a in observed}
    if merge_counts == "paper":
        unknown = sorted(set(observed) - set(PAPER_COUNTS))
        if unknown:
            warnings.warn(
                f"leukemia: classes {unknown} are not in the official release; their observed "
                "counts decide whether they are merged.",
                stacklevel=3,
            )
        return {a: PAPER_COUNTS.get(a, observed[a]) for a in observed}
    if merge_counts == "observed":
        return {a: int(c) for a, c in observed.items()}
    raise ConfigError(
        f"leukemia: merge_counts must be 'paper' (the official counts), 'observed' (the files "
        f"present) or a dict abbr -> count; got {merge_counts!r}"
    )


def class_mapping(counts: dict[str, int], merge: bool, min_count: int) -> tuple[dict[str, str], list[str]]:
    """Map each abbreviation to its class (itself or ``OTH``) and list the classes in order.

    Classes are ordered by descending count (the paper's table order), ``OTH`` last.
    """
    mapping = {a: (a if not merge or c >= min_count else MERGED) for a, c in counts.items()}
    named = sorted({m for m in mapping.values() if m != MERGED}, key=lambda a: (-counts[a], a))
    return mapping, named + ([MERGED] if MERGED in mapping.values() else [])


def _read_cached(path: Path, rel: list[str]) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["version"]) != _CACHE_VERSION or list(npz["files"]) != rel:
                return None
            return npz["images"]
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt, never trusted
        return None


def load_leukemia(
    root: str | os.PathLike,
    size: int = 28,
    merge: bool = True,
    min_count: int = 80,
    merge_counts: str | dict[str, int] = "paper",
    cache: bool = True,
    progress: bool = True,
    download: bool = False,
) -> ImageDataset:
    """Load AML-Cytomorphology_LMU, resized, with the paper's 7-class merge.

    Parameters
    ----------
    root
        The folder holding ``AML-Cytomorphology_LMU``, or that folder itself.
    size
        Side length after resizing (antialiased); the paper used 28.
    merge
        Merge rare classes into ``OTH`` (True, the paper) or keep all 15.
    min_count
        Classes with fewer images than this are merged (the paper: 80).
    merge_counts
        Where the class counts come from: ``"paper"`` (default: the official counts
        in DATASETS.md, so a partial copy gets the same classes as the paper),
        ``"observed"`` (the files present) or a dict abbreviation -> count.
    cache
        Keep the resized images in ``<folder>/.tsimcne_nb_<size>px.npz`` (rebuilt
        when the file list changes; skipped with a warning if the folder is
        read-only).
    progress
        tqdm bar while reading TIFFs.
    download
        Not possible (manual download from TCIA): raises DatasetNotFoundError
        with instructions when the folder is missing.

    Returns
    -------
    ImageDataset
        Metadata: ``index``, ``split`` ("all"), ``source_file`` (relative path),
        ``abbr`` (original class) and ``description``.
    """
    try:
        min_count = int(min_count)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"leukemia: min_count must be an integer; got {min_count!r}") from exc
    h, w = _size_hw(size)
    try:
        folder = find_folder(root)
    except DatasetNotFoundError:
        if download:
            raise DatasetNotFoundError(
                manual_download_message(Path(root).expanduser())
                + "\n(download=True cannot fetch it: TCIA requires its own download tool.)"
            ) from None
        raise
    files = scan(folder)
    abbrs = [a for a, _ in files]
    rel = [str(f.relative_to(folder)) for _, f in files]
    mapping, classes = class_mapping(class_counts(abbrs, merge_counts), bool(merge), min_count)

    cache_path = folder / f".tsimcne_nb_{h}x{w}px.npz"
    images = _read_cached(cache_path, rel) if cache and cache_path.exists() else None
    if images is None:
        from tqdm.auto import tqdm

        images = np.empty((len(files), h, w, 3), np.uint8)
        for i, (_, f) in enumerate(tqdm(files, desc=f"leukemia: resizing to {h}x{w}",
                                        disable=not progress, leave=False)):
            images[i] = read_image(f, (h, w))
        if cache:
            try:
                with atomic_open(cache_path, "wb", overwrite=True) as fh:
                    np.savez(fh, images=images, files=np.asarray(rel), version=_CACHE_VERSION)
            except OSError as exc:
                warnings.warn(
                    f"leukemia: could not write the cache {cache_path} ({exc}); images are "
                    "resized again next time. Pass cache=False to silence this.",
                    stacklevel=2,
                )
    index = {c: k for k, c in enumerate(classes)}
    labels = np.asarray([index[mapping[a]] for a in abbrs], np.int64)
    meta = pd.DataFrame({
        "index": np.arange(len(files)),
        "split": "all",
        "source_file": rel,
        "abbr": abbrs,
        "description": [ABBREVIATIONS.get(a, a) for a in abbrs],
    })
    name = "leukemia" if (h, w) == (28, 28) else f"leukemia_{h}"
    if not merge:
        name += "-all-classes"
    return ImageDataset(images=images, labels=labels, class_names=classes, metadata=meta, name=name)
