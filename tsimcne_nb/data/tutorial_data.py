"""The tutorials' data loading: the real dataset if present, else marked SYNTHETIC stand-ins.

Every tutorial notebook has to run top to bottom on a machine without the paper's data (CI,
an offline laptop, a first look before an 11 GB download).  :func:`load_tutorial_dataset` is
the one call the notebooks make for that: it tries the real loader and, only when the files
are missing and stand-ins are allowed, writes small files in the dataset's exact format, filled
with synthetic images (:func:`tsimcne_nb.data.standins.write_standin_files`), and reads
them with the same loader.  Whatever it loads, stand-ins are never taken for the real data.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DatasetNotFoundError, DownloadError

__all__ = ["load_tutorial_dataset"]

#: prefix of the name of a dataset read from stand-in files
STANDIN_PREFIX = "synthetic-standin-"
#: datasets whose loader option ``size`` selects the published file (so the stand-in matches it)
_SIZED_FILES = ("bloodmnist", "pathmnist", "dermamnist")


def load_tutorial_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    standin: bool = True,
    standin_n: int = 2000,
    standin_root: str | os.PathLike | None = None,
    random_state: int = 0,
    verbose: bool = True,
    **options: Any,
) -> ImageDataset:
    """Load a dataset for a tutorial: the real files, else SYNTHETIC stand-ins in their format.

    First ``load_dataset(name, root=root, download=download, **options)``.  If the files are
    not there (or the download fails) and ``standin`` is true, small files in the dataset's
    exact on-disk format are written to a temporary folder, filled with synthetic blood-cell
    images, and read with the same loader; the reason and a banner saying
    ``THIS RUN USES SYNTHETIC STAND-IN DATA`` are printed.  Stand-in files found in the data
    folder itself (left there by an earlier run) are recognised by their README and treated the
    same way.  A stand-in dataset has ``synthetic=True`` and a name starting with
    ``synthetic-standin-``, so every figure title and table built from it says so.

    Parameters
    ----------
    name : str
        A dataset name of :func:`tsimcne_nb.load_dataset`.  Stand-ins exist for
        ``bloodmnist``, ``pathmnist``, ``dermamnist``, ``pcam``, ``leukemia`` and
        ``cifar10``; generated datasets (``synthetic-blood``) are generated with
        ``n=standin_n`` unless ``options`` give ``n``; any other name is loaded as is.
    root : str or os.PathLike or None, default=None
        Data folder, as in :func:`tsimcne_nb.load_dataset` (None: ``$TSIMCNE_DATA`` or
        ``~/.tsimcne_nb/data``).  Stand-ins are never written there.
    download : bool, default=False
        Download missing files where the source allows it.
    standin : bool, default=True
        Fall back to stand-ins when the real files are missing.  False (the notebooks pass
        ``BUDGET == "quick"``) re-raises the loader's error, which says where to get the data.
    standin_n : int, default=2000
        Number of stand-in images (all splits together), or of generated images.
    standin_root : str or os.PathLike or None, default=None
        Folder for the stand-in files; None: a new temporary folder.
    random_state : int, default=0
        Seed of the stand-in images (and of generated datasets).
    verbose : bool, default=True
        Print why stand-ins are used and the banner.  The marks on the dataset are set either
        way.
    **options
        Loader options for :func:`tsimcne_nb.load_dataset`, e.g. ``labels=7`` (DermaMNIST) or
        ``size=32`` (PCam); used for the real files and the stand-ins alike.

    Returns
    -------
    ImageDataset
        The real dataset, or the stand-in one with ``synthetic=True`` and the name
        ``synthetic-standin-<name>``.

    Raises
    ------
    DatasetNotFoundError
        The files are missing and ``standin`` is False (the message says where to get them).
    DownloadError
        The download failed and ``standin`` is False.
    ConfigError
        Unknown name or option, or a bad ``standin_n``.

    See Also
    --------
    tsimcne_nb.load_dataset : The loader, without the fallback.
    tsimcne_nb.data.standins.write_standin_files : The stand-in files themselves.

    Examples
    --------
    >>> from tsimcne_nb import load_tutorial_dataset
    >>> ds = load_tutorial_dataset("bloodmnist", standin_n=200)  # doctest: +SKIP
    The real data is not there: ...
    THIS RUN USES SYNTHETIC STAND-IN DATA ...
    >>> ds.synthetic, ds.name  # doctest: +SKIP
    (True, 'synthetic-standin-bloodmnist')
    """
    from tsimcne_nb.data.registry import _BY_NAME, load_dataset
    from tsimcne_nb.data.standins import STANDIN_NAMES, is_standin, write_standin_files

    if isinstance(standin_n, bool) or not isinstance(standin_n, numbers.Integral) or standin_n < 1:
        raise ConfigError(f"standin_n must be a positive int (number of stand-in images), "
                          f"got {standin_n!r}.")
    standin_n = int(standin_n)
    key = name.strip().lower() if isinstance(name, str) else name
    info = _BY_NAME.get(key) if isinstance(key, str) else None
    if info is not None and info.download == "built-in" and "n" in info.options:
        # generated on the fly: there are no files to miss
        return load_dataset(key, **{"n": standin_n, "random_state": random_state, **options})
    if key not in STANDIN_NAMES:
        return load_dataset(name, root=root, download=download, **options)

    data_root, written = root, False
    try:
        dataset = load_dataset(key, root=root, download=download, **options)
    except (DatasetNotFoundError, DownloadError) as err:
        if not standin:
            raise
        if verbose:
            print(f"The real data is not there:\n{err}\n")
        if standin_root is None:
            import tempfile

            standin_root = tempfile.mkdtemp(prefix="tsimcne-standin-")
        data_root, written = standin_root, True
        size = options.get("size") if key in _SIZED_FILES else None
        write_standin_files(key, data_root, n=standin_n, random_state=random_state, size=size)
        dataset = load_dataset(key, root=data_root, **options)

    # stand-in files (from this call or left in a data folder) are never taken for the real data
    if is_standin(key, data_root):
        dataset.synthetic = True
        if not dataset.name.startswith(STANDIN_PREFIX):
            dataset.name = STANDIN_PREFIX + dataset.name
        if verbose:
            print(_banner(key, info, written))
    return dataset


def _banner(key: str, info: Any, written_now: bool) -> str:
    """What a stand-in run prints: that it is synthetic, and how to get the real data."""
    import textwrap

    if info is not None and info.download == "yes":
        how = (f"pass download=True (DOWNLOAD = True in the notebooks) or put {info.files} "
               "into the data folder yourself.")
    else:
        files = info.files if info is not None else "the files"
        how = f"get {files} by hand (see the notebook or docs/datasets.md)."
    where = ("written to a temporary folder now" if written_now
             else "found in the data folder: delete them there to use the real data")
    text = (f"THIS RUN USES SYNTHETIC STAND-IN DATA: procedural blood cells written in the file "
            f"format of '{key}' ({where}). Its maps and numbers say NOTHING about the real "
            f"dataset.\nFor the real data: {how}")
    line = "=" * 78
    body = "\n".join(textwrap.fill(part, width=78) for part in text.split("\n"))
    return f"{line}\n{body}\n{line}"
