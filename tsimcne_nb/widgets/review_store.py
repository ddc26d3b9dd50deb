"""Tags and selections that survive the kernel: one parquet file next to the data.

One row per (point, tag) and per selected point, with who set it, when (UTC), why, and
an explicit ``origin`` column: ``"hand"`` for a person's decision, ``"suggested"`` for a
tag a detector proposed (e.g. :meth:`QCReport.suggest_tags`) that nobody has confirmed.
Written atomically; reloaded into a new :class:`~tsimcne_nb.widgets.explorer.Explorer`
(:meth:`~tsimcne_nb.widgets.explorer.Explorer.load_review`) or
:class:`~tsimcne_nb.widgets.qc_review.QCReview`.
"""

from __future__ import annotations

import getpass
import io
import os
import pathlib
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_write_bytes, check_can_write
from tsimcne_nb.errors import ConfigError, DataError

__all__ = ["COLUMNS", "ORIGINS", "current_user", "now_utc", "read_review", "write_review"]

#: columns of a review file, in order
COLUMNS = ("index", "source_index", "kind", "name", "origin", "who", "when", "why", "n_points")
#: values of the ``origin`` column
ORIGINS = ("hand", "suggested")
#: values of the ``kind`` column
KINDS = ("tag", "selection")


def current_user() -> str:
    """The login name recorded as ``who`` (``TSIMCNE_USER`` overrides it)."""
    name = os.environ.get("TSIMCNE_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except Exception:  # no login name (some containers): say so rather than fail
        return "unknown"


def now_utc() -> str:
    """The current time, ISO 8601 in UTC to the second (the ``when`` column)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def write_review(frame: pd.DataFrame, path: str | os.PathLike, overwrite: bool = False) -> pathlib.Path:
    """Write a review table (columns :data:`COLUMNS`) to parquet, atomically.

    Refuses to replace an existing file unless ``overwrite=True``.

    Parameters
    ----------
    frame : pandas.DataFrame
        The review table.
    path : str or os.PathLike
        The parquet file to write.
    overwrite : bool
        Replace an existing file.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise ConfigError(f"a review file is parquet: name it *.parquet (got {path.name!r}).")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"review table lacks the columns {missing}.")
    check_can_write(path, overwrite)
    buf = io.BytesIO()
    frame.loc[:, list(COLUMNS)].to_parquet(buf, index=False)
    return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)


def read_review(path: str | os.PathLike, n_points: int | None = None) -> pd.DataFrame:
    """Read and check a review file written by :func:`write_review`.

    Parameters
    ----------
    path : str or os.PathLike
        The parquet file.
    n_points : int, optional
        Number of points of the map it is loaded into; a file written for a map of
        another size is refused (its indices would mean other images).

    Returns
    -------
    pandas.DataFrame
        The rows, columns :data:`COLUMNS`.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no review file at {path}; save one with explorer.save_review(path).")
    frame = pd.read_parquet(path)
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"{path.name} is not a review file (columns {missing} are missing); write it with "
            "Explorer.save_review."
        )
    bad = sorted(set(frame["origin"]) - set(ORIGINS))
    if bad:
        raise DataError(f"{path.name}: origin must be one of {ORIGINS}; found {bad}.")
    if n_points is not None and len(frame):
        sizes = set(frame["n_points"].astype(int))
        if sizes != {int(n_points)}:
            raise DataError(
                f"{path.name} was written for a map of {', '.join(map(str, sorted(sizes)))} points but this one has "
                f"{n_points}; load it into an explorer of the same data."
            )
        idx = frame["index"].to_numpy(np.int64)
        if idx.min() < 0 or idx.max() >= n_points:
            raise DataError(f"{path.name} has point indices outside [0, {n_points}).")
    return frame
