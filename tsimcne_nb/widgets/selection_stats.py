"""The computation behind :class:`~tsimcne_nb.widgets.explain.SelectionExplainer`.

What a selection of the map holds and how it differs from the rest: its class make-up, histograms
of per-image columns against the rest (the all-points histogram minus the selection's: exact and
O(selection) per update) and its kNN purity on the map (a k-d tree built once). numpy, pandas
and scipy only; no widget code, so scripts and tests use :func:`explain_selection` directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError, DataError

__all__ = ["MAX_PURITY_POINTS", "N_BINS", "SelectionSummary", "explain_selection"]

#: bins of every property histogram
N_BINS = 24
#: the kNN purity of a larger selection is the mean over this many of its points (a
#: seeded random sample): 5,000 queries take ~50 ms, all 200k of a map several seconds
MAX_PURITY_POINTS = 5000


@dataclass
class SelectionSummary:
    """What :func:`explain_selection` found out about one selection.

    Attributes
    ----------
    n_selected, n_total : int
        Selection size and number of points in the map.
    classes : pandas.DataFrame
        One row per class present in the selection, most frequent first: ``label``,
        ``name``, ``count``, ``share`` (of the selection), ``share_all`` (of all
        points) and ``enrichment`` (``share / share_all``).
    knn_points : ndarray
        The selected points the purity was measured on: all of them, or a seeded random
        sample of :data:`MAX_PURITY_POINTS` for larger selections.
    knn_inside : ndarray
        Per point of ``knn_points``: share of its ``k`` nearest map neighbours that are selected.
    knn_same_label : ndarray
        Per point of ``knn_points``: share of its ``k`` nearest map neighbours with its
        label (NaN for unlabelled points).
    expected_inside : float
        ``knn_inside`` expected of a random set of this size (``n_selected / n_total``).
    histograms : dict
        Column -> ``(edges, selected_counts, rest_counts)``.
    medians : dict
        Column -> ``(median of the selection, median of the rest)``.
    k : int
        Neighbours per point.
    """

    n_selected: int
    n_total: int
    classes: pd.DataFrame
    knn_points: np.ndarray
    knn_inside: np.ndarray
    knn_same_label: np.ndarray
    expected_inside: float
    histograms: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    medians: dict[str, tuple[float, float]] = field(default_factory=dict)
    k: int = 15

    @property
    def purity_inside(self) -> float:
        """Mean of :attr:`knn_inside` (NaN for an empty selection)."""
        return float(np.mean(self.knn_inside)) if len(self.knn_inside) else float("nan")

    @property
    def purity_label(self) -> float:
        """Mean of :attr:`knn_same_label` over labelled points (NaN if none)."""
        v = self.knn_same_label[~np.isnan(self.knn_same_label)]
        return float(v.mean()) if len(v) else float("nan")


class _MapStats:
    """Everything about the whole map that one selection's summary reuses."""

    def __init__(
        self,
        xy: np.ndarray,
        labels: np.ndarray,
        label_names: list[str],
        columns: pd.DataFrame | None,
        k: int,
    ) -> None:
        from scipy.spatial import cKDTree

        self.xy = xy
        self.labels = labels
        self.label_names = label_names
        self.k = min(int(k), max(len(xy) - 1, 1))
        self.tree = cKDTree(xy)
        self.counts_all = np.bincount(labels[labels >= 0], minlength=len(label_names))
        self.values: dict[str, np.ndarray] = {}
        self.edges: dict[str, np.ndarray] = {}
        self.hist_all: dict[str, np.ndarray] = {}
        if columns is not None:
            for col in columns.columns:
                v = pd.to_numeric(columns[col], errors="coerce").to_numpy(np.float64)
                finite = v[np.isfinite(v)]
                if len(finite) == 0 or finite.min() == finite.max():
                    continue  # nothing to compare
                # 0.5-99.5 percentiles: one extreme value must not squeeze every bar into one bin
                lo, hi = np.percentile(finite, [0.5, 99.5])
                if lo == hi:
                    lo, hi = finite.min(), finite.max()
                edges = np.linspace(lo, hi, N_BINS + 1)
                self.values[str(col)] = v
                self.edges[str(col)] = edges
                self.hist_all[str(col)] = self._hist(v, edges)

    @staticmethod
    def _hist(v: np.ndarray, edges: np.ndarray) -> np.ndarray:
        v = v[np.isfinite(v)]
        # values beyond the range count in the outer bins, so that all - selection = rest
        return np.histogram(np.clip(v, edges[0], edges[-1]), bins=edges)[0]

    def summarize(self, sel: np.ndarray) -> SelectionSummary:
        n = len(self.xy)
        names = self.label_names
        lab = self.labels[sel]
        counts = np.bincount(lab[lab >= 0], minlength=len(names))
        n_unlab = int(np.sum(lab < 0))
        rows = []
        for c in np.argsort(-counts, kind="stable"):
            if counts[c] == 0:
                break
            share_all = self.counts_all[c] / n
            rows.append(
                {
                    "label": int(c),
                    "name": str(names[c]),
                    "count": int(counts[c]),
                    "share": counts[c] / len(sel),
                    "share_all": share_all,
                    "enrichment": (counts[c] / len(sel)) / share_all if share_all else np.nan,
                }
            )
        if n_unlab:
            n_unlab_all = int(np.sum(self.labels < 0))
            rows.append(
                {
                    "label": -1,
                    "name": "unlabelled",
                    "count": n_unlab,
                    "share": n_unlab / len(sel),
                    "share_all": n_unlab_all / n,
                    "enrichment": (n_unlab / len(sel)) / (n_unlab_all / n),
                }
            )
        classes = pd.DataFrame(
            rows, columns=["label", "name", "count", "share", "share_all", "enrichment"]
        )
        pts = sel
        if len(sel) > MAX_PURITY_POINTS:
            rng = np.random.default_rng(len(sel))
            pts = np.sort(rng.choice(sel, MAX_PURITY_POINTS, replace=False))
        if len(pts) and self.k >= 1:
            # k + 1: the nearest neighbour of a point is itself
            _, nbr = self.tree.query(self.xy[pts], k=self.k + 1)
            nbr = np.asarray(nbr).reshape(len(pts), -1)[:, 1:]
            mask = np.zeros(n, dtype=bool)
            mask[sel] = True
            inside = mask[nbr].mean(axis=1)
            lab_p = self.labels[pts]
            same = (self.labels[nbr] == lab_p[:, None]).mean(axis=1)
            same = np.where(lab_p >= 0, same, np.nan)
        else:
            inside = np.empty(0)
            same = np.empty(0)
        hists, medians = {}, {}
        for col, v in self.values.items():
            edges = self.edges[col]
            h_sel = self._hist(v[sel], edges)
            h_rest = self.hist_all[col] - h_sel
            hists[col] = (edges, h_sel, h_rest)
            vs = v[sel]
            vs = vs[np.isfinite(vs)]
            centres = (edges[:-1] + edges[1:]) / 2
            # the rest's median from its histogram: exact to a bin, without touching N values
            medians[col] = (
                float(np.median(vs)) if len(vs) else float("nan"),
                _hist_median(centres, h_rest),
            )
        return SelectionSummary(
            n_selected=len(sel),
            n_total=n,
            classes=classes,
            knn_points=pts,
            knn_inside=inside,
            knn_same_label=same,
            expected_inside=len(sel) / n if n else float("nan"),
            histograms=hists,
            medians=medians,
            k=self.k,
        )


def _hist_median(centres: np.ndarray, counts: np.ndarray) -> float:
    total = counts.sum()
    if total <= 0:
        return float("nan")
    return float(centres[np.searchsorted(np.cumsum(counts), total / 2)])


def _check_xy(embedding: Any) -> np.ndarray:
    xy = np.asarray(embedding, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise DataError(
            f"the embedding must be a finite (N, 2) array of map coordinates; got shape {xy.shape}."
        )
    return xy


def _check_selection(selected: Any, n: int) -> np.ndarray:
    sel = np.asarray(selected).reshape(-1)
    if sel.dtype == bool:
        if len(sel) != n:
            raise DataError(f"a boolean selection needs {n} entries; got {len(sel)}.")
        return np.flatnonzero(sel)
    if sel.size == 0:
        return np.empty(0, np.int64)
    if not np.issubdtype(sel.dtype, np.integer):
        raise DataError(
            f"the selection must be integer positions or a boolean mask; got {sel.dtype}."
        )
    if sel.min() < 0 or sel.max() >= n:
        raise DataError(
            f"selected positions must lie in [0, {n - 1}]; got [{sel.min()}, {sel.max()}]."
        )
    return np.unique(sel.astype(np.int64))


def explain_selection(
    embedding: Any,
    selected: Any,
    labels: Any = None,
    label_names: Any = None,
    columns: pd.DataFrame | None = None,
    k: int = 15,
) -> SelectionSummary:
    """Class make-up, property histograms and map kNN purity of one selection.

    Parameters
    ----------
    embedding : array-like of shape (N, 2)
        ``(N, 2)`` map coordinates.
    selected : array-like of int or bool
        Integer positions or an ``(N,)`` boolean mask.
    labels : array-like of int or None
        ``(N,)`` integer labels, -1 for none; default all unlabelled.
    label_names : sequence of str or None
        Name per label value; default ``"0"``, ``"1"``...
    columns : pandas.DataFrame or None
        ``N``-row DataFrame of numeric columns to compare (image properties, scores).
    k : int
        Map neighbours per point for the purity.

    Returns
    -------
    SelectionSummary
    """
    xy = _check_xy(embedding)
    n = len(xy)
    if int(k) < 1:
        raise ConfigError(f"k must be >= 1; got {k}.")
    lab = np.full(n, -1, np.int64) if labels is None else np.asarray(labels, dtype=np.int64)
    if lab.shape != (n,):
        raise DataError(f"labels must have one entry per point ({n}); got shape {lab.shape}.")
    names = (
        [str(i) for i in range(int(lab.max()) + 1 if n else 0)]
        if label_names is None
        else [str(x) for x in label_names]
    )
    if n and lab.max() >= len(names):
        raise DataError(f"label {lab.max()} has no name: label_names has {len(names)} entries.")
    if columns is not None and len(columns) != n:
        raise DataError(f"columns must have one row per point ({n}); got {len(columns)}.")
    return _MapStats(xy, lab, names, columns, k).summarize(_check_selection(selected, n))


# ------------------------------------------------------------------ rendering
