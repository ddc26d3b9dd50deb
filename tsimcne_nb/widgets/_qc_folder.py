"""Rebuild a :class:`~tsimcne_nb.qc.QCReport` from the files ``tsimcne-nb qc`` writes.

The folder holds the ranked groups (``report.csv``), the suggested tags
(``exclusion_list.csv``) and the image properties with the 2-D map
(``properties.parquet``), but no images: the caller passes the dataset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import as_dataset
from tsimcne_nb.errors import DataError
from tsimcne_nb.qc.report import QCReport

_FILES = ("report.csv", "exclusion_list.csv", "properties.parquet")


def _ints(text: Any) -> np.ndarray:
    if not isinstance(text, str):
        return np.empty(0, np.int64)
    return np.asarray([int(v) for v in text.split()], np.int64)


def _words(text: Any) -> list[str]:
    return text.split() if isinstance(text, str) else []


def _detail(text: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not isinstance(text, str):
        return out
    for part in text.split("; "):
        if "=" in part:
            key, value = part.split("=", 1)
            try:
                out[key] = float(value)
            except ValueError:
                out[key] = value
    return out


def _of(frame: pd.DataFrame, experiment: str, name: str) -> pd.DataFrame:
    if "experiment" not in frame.columns:
        return frame
    have = sorted(set(frame["experiment"].astype(str)))
    if experiment not in have and len(frame):
        raise DataError(f"{name} has no experiment {experiment!r}; it has {have}: pass experiment=.")
    return frame[frame["experiment"].astype(str) == experiment].drop(columns="experiment")


def report_from_folder(folder: str | os.PathLike, dataset: Any, experiment: str = "none") -> QCReport:
    """The :class:`QCReport` of one experiment in a ``tsimcne-nb qc`` output folder."""
    folder = Path(folder)
    missing = [f for f in _FILES if not (folder / f).exists()]
    if missing:
        subs = [p.name for p in folder.iterdir() if (p / "report.csv").exists()] if folder.is_dir() else []
        hint = f" It has one folder per map: open one of {subs}." if subs else ""
        raise FileNotFoundError(
            f"{folder} is not a `tsimcne-nb qc` output folder ({', '.join(missing)} missing).{hint}"
        )
    dataset = as_dataset(dataset)
    props = _of(pd.read_parquet(folder / "properties.parquet"), experiment, "properties.parquet")
    props = props.sort_values("index").reset_index(drop=True) if "index" in props else props
    if len(props) != len(dataset):
        raise DataError(
            f"the QC map in {folder} has {len(props)} points but the dataset has {len(dataset)} "
            "images; pass the dataset that was checked (for an injected experiment, its injected copy)."
        )
    if not {"x", "y"} <= set(props.columns):
        raise DataError(f"{folder / 'properties.parquet'} has no map (x, y columns).")
    embedding = props[["x", "y"]].to_numpy(np.float64)
    properties = props.drop(columns=[c for c in ("index", "x", "y", "qc_injected") if c in props])
    table = _of(pd.read_csv(folder / "report.csv"), experiment, "report.csv")
    groups = pd.DataFrame(
        {
            "rank": table["rank"].astype(np.int64).to_numpy(),
            "kind": table["kind"].astype(str).to_numpy(),
            "size": table["size"].astype(np.int64).to_numpy(),
            "members": [_ints(m) for m in table["members"]],
            "score": table["score"].astype(float).to_numpy(),
            "evidence": table["evidence"].astype(float).to_numpy(),
            "detail": [_detail(d) for d in table.get("detail", [""] * len(table))],
            "confirmed_by": [_words(c) for c in table.get("confirmed_by", [""] * len(table))],
            "examples": [_ints(e) for e in table.get("examples", [""] * len(table))],
        }
    )
    report = QCReport(dataset=dataset, embedding=embedding, groups=groups,
                      properties=properties.reset_index(drop=True), config={"source": str(folder)})
    excl = _of(pd.read_csv(folder / "exclusion_list.csv"), experiment, "exclusion_list.csv")
    if len(excl):
        idx = excl["index"].to_numpy(np.int64)
        report.tags.loc[idx, "tag"] = excl["tag"].astype(str).to_numpy()
        report.tags.loc[idx, "group"] = excl["group"].fillna(0).astype(np.int64).to_numpy()
        report.tags.loc[idx, "reason"] = excl["reason"].fillna("").astype(str).to_numpy()
    return report
