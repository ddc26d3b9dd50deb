"""Explain a selection of the map: what is in it, how it differs, how well the map keeps it together.

For the explorer's current selection :class:`SelectionExplainer` shows, beside the map,

* its **class make-up**: count and share of each class in the selection against the
  class's share of the whole data (so an over-represented class stands out);
* **histograms of image properties** (:func:`tsimcne_nb.qc.image_properties`:
  brightness, contrast, sharpness, entropy, near-black share, and every numeric
  metadata or score column) of the selection against the rest of the data;
* its **kNN purity on the map**: the share of each selected point's ``k`` nearest map
  neighbours that are selected too, and that carry its label;
* a **large view** of the focused image (the thumbnail last clicked) with its label,
  metadata and tags.

It observes the explorer's selection and focus traitlets, so it updates on every
lasso and click without polling.  It stays fast on large maps: the properties, the
histogram bins and each column's histogram over *all* points are computed once; the
rest's histogram is then the all-points histogram minus the selection's (exact, no
subsample, O(selection) per update), and the map's nearest neighbours come from a
k-d tree built once, queried only for the selected points.

:func:`explain_selection` is the computation alone, for scripts and tests.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError, DataError

__all__ = ["SelectionExplainer", "SelectionSummary", "explain_selection"]

#: bins of every property histogram
N_BINS = 24
#: classes listed in the make-up (the rest are summed as "other")
MAX_CLASSES = 12
#: the kNN purity of a larger selection is the mean over this many of its points (a
#: seeded random sample): 5,000 queries take ~50 ms, all 200k of a map several seconds
MAX_PURITY_POINTS = 5000
#: the large view's size in pixels
LARGE_SIZE = 192


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
        raise DataError(f"the selection must be integer positions or a boolean mask; got {sel.dtype}.")
    if sel.min() < 0 or sel.max() >= n:
        raise DataError(f"selected positions must lie in [0, {n - 1}]; got [{sel.min()}, {sel.max()}].")
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
    embedding
        ``(N, 2)`` map coordinates.
    selected
        Integer positions or an ``(N,)`` boolean mask.
    labels
        ``(N,)`` integer labels, -1 for none; default all unlabelled.
    label_names
        Name per label value; default ``"0"``, ``"1"``...
    columns
        ``N``-row DataFrame of numeric columns to compare (image properties, scores).
    k
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
def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    return f"{v:.3g}"


def classes_svg(summary: SelectionSummary, colors: list[str], width: int = 340) -> str:
    """Horizontal bars: each class's share of the selection; a black tick at its share of all data.

    Parameters
    ----------
    summary
        From :func:`explain_selection`.
    colors
        Hex colour per label value (the explorer's palette).
    width
        Width in pixels.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    rows = summary.classes.head(MAX_CLASSES)
    bar_h, name_w, text_w = 16, 110, 120
    bar_w = width - name_w - text_w
    h = bar_h * len(rows) + 4
    parts = [
        f'<svg class="tsimcne-classes" width="{width}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">'
    ]
    for r, row in enumerate(rows.itertuples()):
        y = 2 + r * bar_h
        colour = colors[row.label] if 0 <= row.label < len(colors) else "#808080"
        w_sel = max(1.0, row.share * bar_w)
        x_all = name_w + row.share_all * bar_w
        parts.append(
            f'<g class="tsimcne-class" data-name="{_esc(row.name)}" data-count="{row.count}">'
            f"<title>{_esc(row.name)}: {row.count} selected ({row.share:.1%}); "
            f"{row.share_all:.1%} of all data</title>"
            f'<text x="{name_w - 4}" y="{y + 12}" text-anchor="end">{_esc(str(row.name)[:16])}</text>'
            f'<rect x="{name_w}" y="{y + 2}" width="{w_sel:.1f}" height="{bar_h - 4}" fill="{colour}"/>'
            f'<line x1="{x_all:.1f}" x2="{x_all:.1f}" y1="{y}" y2="{y + bar_h}" stroke="#000" stroke-width="2"/>'
            f'<text x="{name_w + bar_w + 4}" y="{y + 12}">{row.count} · {row.share:.0%} '
            f"(all {row.share_all:.0%})</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(
    name: str,
    edges: np.ndarray,
    selected: np.ndarray,
    rest: np.ndarray,
    color: str = "#D55E00",
    width: int = 170,
    height: int = 56,
) -> str:
    """One property: the selection's (coloured) and the rest's (grey) distributions, each normalised.

    Parameters
    ----------
    name
        The column's name (title and ``data-column``).
    edges
        Bin edges (``len(selected) + 1``).
    selected, rest
        Counts per bin.
    color
        Colour of the selection.
    width, height
        Size in pixels.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    nb = len(selected)
    bw = width / nb
    ps = selected / max(selected.sum(), 1)
    pr = rest / max(rest.sum(), 1)
    top = max(ps.max(initial=0), pr.max(initial=0)) or 1.0
    parts = [
        f'<svg class="tsimcne-hist" data-column="{_esc(name)}" width="{width}" height="{height + 12}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="9" font-family="sans-serif">'
    ]
    for i in range(nb):
        hr = pr[i] / top * height
        parts.append(
            f'<rect x="{i * bw:.1f}" y="{height - hr:.1f}" width="{bw:.1f}" height="{hr:.1f}" fill="#bbb"/>'
        )
    pts = []
    for i in range(nb):
        y = height - ps[i] / top * height
        pts.append(f"{i * bw:.1f},{y:.1f} {(i + 1) * bw:.1f},{y:.1f}")
    parts.append(
        f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="2"/>'
    )
    parts.append(
        f'<text x="0" y="{height + 10}">{_fmt(edges[0])}</text>'
        f'<text x="{width}" y="{height + 10}" text-anchor="end">{_fmt(edges[-1])}</text></svg>'
    )
    return "".join(parts)


def summary_html(summary: SelectionSummary, colors: list[str], title: str = "") -> str:
    """The whole explanation as HTML (the live panel's content and its static fallback).

    Parameters
    ----------
    summary
        From :func:`explain_selection`.
    colors
        Hex colour per label value.
    title
        Heading (e.g. the data set's name).

    Returns
    -------
    str
        A ``<div class="tsimcne-explain-summary">``.
    """
    s = summary
    head = f"<b>{_esc(title)}</b> " if title else ""
    if s.n_selected == 0:
        return (
            f'<div class="tsimcne-explain-summary" data-n-selected="0">{head}'
            "<i>Nothing selected: lasso points on the map to explain them here.</i></div>"
        )
    out = [
        f'<div class="tsimcne-explain-summary" data-n-selected="{s.n_selected}">',
        f"{head}<b>{s.n_selected}</b> of {s.n_total} points selected "
        f"({s.n_selected / s.n_total:.1%})",
        '<div class="tsimcne-explain-h">class make-up (bar: share of the selection; '
        "tick: share of all data)</div>",
        classes_svg(s, colors),
        f'<div class="tsimcne-purity" data-inside="{s.purity_inside:.4f}" '
        f'data-label="{s.purity_label:.4f}">'
        f"<b>kNN purity on the map</b> (k={s.k}"
        + (f", {len(s.knn_points)} sampled points" if len(s.knn_points) < s.n_selected else "")
        + f"): {s.purity_inside:.0%} of a selected point's "
        f"neighbours are selected (random set: {s.expected_inside:.0%}); "
        f"{_fmt(100 * s.purity_label)}% share its label.</div>",
    ]
    if s.histograms:
        out.append(
            '<div class="tsimcne-explain-h">properties: selection (line) against the rest (grey)</div>'
            '<div style="display:flex;flex-wrap:wrap;gap:6px">'
        )
        for col, (edges, h_sel, h_rest) in s.histograms.items():
            m_sel, m_rest = s.medians[col]
            out.append(
                f'<div class="tsimcne-hist-box"><div>{_esc(col)}: median {_fmt(m_sel)} '
                f"vs {_fmt(m_rest)}</div>{histogram_svg(col, edges, h_sel, h_rest)}</div>"
            )
        out.append("</div>")
    out.append("</div>")
    return "".join(out)


# ------------------------------------------------------------------- widget
class SelectionExplainer:
    """A panel that explains the explorer's current selection and shows the focused image large.

    Parameters
    ----------
    explorer
        A :class:`~tsimcne_nb.widgets.Explorer`.
    properties
        ``"auto"`` computes :func:`tsimcne_nb.qc.image_properties` of the dataset
        once (a few seconds per 100k small images); a DataFrame with one row per
        image passes precomputed ones (e.g. from a QC report); ``None`` leaves them out.
    k
        Map neighbours per point for the kNN purity.
    columns
        Metadata columns to compare too; default every numeric metadata column.

    Notes
    -----
    The panel observes ``explorer.scatter.widget.selection`` and
    ``explorer.panel.focused``: it updates on each lasso and thumbnail click.
    Points added with ``Explorer.add_points`` count as unlabelled and have no
    properties.
    """

    def __init__(
        self,
        explorer: Any,
        properties: str | pd.DataFrame | None = "auto",
        k: int = 15,
        columns: list[str] | None = None,
    ) -> None:
        from tsimcne_nb.datasets.core import as_dataset

        self.explorer = explorer
        self.properties = properties
        self.k = k
        self.columns = columns
        if int(k) < 1:
            raise ConfigError(f"k must be >= 1; got {k}.")
        self._dataset = as_dataset(explorer.dataset)
        n = len(self._dataset)
        if isinstance(properties, str):
            if properties != "auto":
                raise ConfigError(
                    f"properties must be 'auto', a DataFrame or None; got {properties!r}."
                )
            from tsimcne_nb.qc import image_properties

            props = image_properties(self._dataset)
        elif properties is None:
            props = pd.DataFrame(index=range(n))
        elif isinstance(properties, pd.DataFrame):
            if len(properties) != n:
                raise DataError(
                    f"properties must have one row per image ({n}); got {len(properties)}."
                )
            props = properties.reset_index(drop=True)
        else:
            raise ConfigError(
                f"properties must be 'auto', a DataFrame or None; got {type(properties).__name__}."
            )
        meta = self._dataset.metadata
        if columns is None:
            numeric = [
                c
                for c in meta.columns
                if c != "index" and pd.api.types.is_numeric_dtype(meta[c]) and c not in props
            ]
        else:
            missing = [c for c in columns if c not in meta.columns]
            if missing:
                raise ConfigError(
                    f"columns {missing} are not in the metadata; it has {list(meta.columns)}."
                )
            numeric = list(columns)
        self._columns = pd.concat(
            [props.reset_index(drop=True), meta[numeric].reset_index(drop=True)], axis=1
        )
        self._colors = _label_colors(self._dataset.labels, list(self._dataset.class_names or []))
        self._stats: _MapStats | None = None
        self._n_stats = -1
        self.summary: SelectionSummary | None = None
        self._summary_html: Any = None
        self._large: Any = None
        self._widget: Any = None
        self._attached = False
        explorer.scatter.widget.observe(self._on_selection, names=["selection"])
        explorer.panel.observe(self._on_focus, names=["focused"])
        self.update()

    # -------------------------------------------------------------- compute
    def _map_stats(self) -> _MapStats:
        ex = self.explorer
        n = ex.n_points
        if self._stats is None or self._n_stats != n:
            # rebuilt only when add_points changed the map
            n_base = len(self._dataset)
            xy = np.asarray(ex.embedding, dtype=np.float64)
            labels = self._dataset.labels
            lab = np.full(n_base, -1, np.int64) if labels is None else np.asarray(labels, np.int64)
            cols = self._columns
            if n > n_base:
                extra = ex.selection_frame(np.arange(n_base, n))
                xy = np.concatenate([xy, extra[["x", "y"]].to_numpy(np.float64)])
                lab = np.concatenate([lab, np.full(n - n_base, -1, np.int64)])
                cols = cols.reindex(range(n))
            self._stats = _MapStats(xy, lab, list(self._dataset.class_names or []), cols, self.k)
            self._n_stats = n
        return self._stats

    def update(self) -> SelectionSummary:
        """Recompute the summary of ``explorer.selected`` and redraw (the observers call this).

        Returns
        -------
        SelectionSummary
        """
        return self._explain(np.asarray(self.explorer.selected, np.int64))

    def _explain(self, sel: np.ndarray) -> SelectionSummary:
        self.summary = self._map_stats().summarize(sel)
        if self._summary_html is not None:
            self._summary_html.value = self.html()
        return self.summary

    def html(self) -> str:
        """The current explanation as HTML."""
        return summary_html(self.summary, self._colors, self._dataset.title)

    def _on_selection(self, change: dict) -> None:
        # from the change itself: not relying on the explorer's observer having run first
        new = change["new"]
        sel = np.empty(0, np.int64) if new is None else np.unique(np.asarray(new, np.int64))
        self._explain(sel)

    def _on_focus(self, change: dict) -> None:
        if self._large is not None:
            self._large.value = self.large_view_html(int(change["new"]))

    def large_view_html(self, index: int) -> str:
        """HTML of one point's image (large), label, tags and metadata; a hint for ``index < 0``.

        Parameters
        ----------
        index
            Position in the map.

        Returns
        -------
        str
        """
        if index < 0:
            return (
                '<div class="tsimcne-large" data-index="-1"><i>Click a thumbnail to see '
                "the image large here.</i></div>"
            )
        from tsimcne_nb.widgets.thumbnails import png_data_uri

        row = self.explorer.selection_frame([index]).iloc[0]
        img = _read_image(self.explorer, self._dataset, int(index))
        skip = {"index", "x", "y", "label", "new"}
        fields = "".join(
            f"<tr><th>{_esc(k)}</th><td>{_fmt(v) if isinstance(v, float) else _esc(v)}</td></tr>"
            for k, v in row.items()
            if k not in skip and not (isinstance(v, float) and np.isnan(v))
        )
        props = ""
        if index < len(self._columns):
            props = "".join(
                f"<tr><th>{_esc(k)}</th><td>{_fmt(float(v))}</td></tr>"
                for k, v in self._columns.iloc[int(index)].items()
                if k not in row.index and pd.notna(v)
            )
        pic = (
            f'<img src="{png_data_uri(img)}" width="{LARGE_SIZE}" height="{LARGE_SIZE}" '
            f'style="image-rendering:pixelated;object-fit:contain" alt="image {index}">'
            if img is not None
            else "<i>(an added image)</i>"
        )
        return (
            f'<div class="tsimcne-large" data-index="{index}" data-label="{_esc(row["label_name"])}">'
            f"<div><b>#{index}</b> {_esc(row['label_name'])}</div>{pic}"
            f'<table style="font-size:11px;text-align:left">{fields}{props}</table></div>'
        )

    # -------------------------------------------------------------- display
    @property
    def widget(self):
        """The panel: the explanation beside the large view (ipywidgets)."""
        if self._widget is None:
            import ipywidgets as w

            self._summary_html = w.HTML(
                self.html(), layout=w.Layout(flex="1 1 360px", min_width="360px")
            )
            self._large = w.HTML(
                self.large_view_html(int(self.explorer.panel.focused)),
                layout=w.Layout(flex="0 0 auto", min_width=f"{LARGE_SIZE + 20}px"),
            )
            # wraps: the large view goes under the explanation in a narrow column
            self._widget = w.HBox(
                [self._summary_html, self._large],
                layout=w.Layout(width="100%", align_items="flex-start", flex_flow="row wrap"),
            )
            self._widget.add_class("tsimcne-explain")
        return self._widget

    def attach(self, title: str = "explain the selection") -> Any:
        """Put this panel into the explorer's own layout (``Explorer.add_panel``), once.

        Parameters
        ----------
        title
            Shown above the panel.

        Returns
        -------
        Explorer
            The explorer, to display it.

        Raises
        ------
        ConfigError
            If this explorer has no ``add_panel``; use :meth:`with_explorer` then.
        """
        add = getattr(self.explorer, "add_panel", None)
        if add is None:
            raise ConfigError(
                "this Explorer has no add_panel: display panel.with_explorer() instead."
            )
        if not self._attached:
            add(self.widget, title=title)
            self._attached = True
        return self.explorer

    def with_explorer(self):
        """The explorer (map and thumbnails) with this panel under it, as one widget.

        Works with any explorer; :meth:`attach` puts the panel inside the explorer's
        own layout instead, where the explorer has ``add_panel``.
        """
        import ipywidgets as w

        return w.VBox([self.explorer.widget, self.widget], layout=w.Layout(width="100%"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        data = dict((bundle[0] if isinstance(bundle, tuple) else bundle) or {})
        # nbconvert keeps no widget state: the same explanation as static HTML
        data["text/html"] = self.html()
        data.setdefault("text/plain", repr(self))
        return data

    def __repr__(self) -> str:
        s = self.summary
        return (
            f"SelectionExplainer({s.n_selected} of {s.n_total} selected, "
            f"kNN purity {s.purity_inside:.2f}, k={s.k})"
        )


def _read_image(explorer: Any, dataset: Any, index: int) -> np.ndarray | None:
    """One image of the map: the dataset's, or an added one where the explorer can read it."""
    if index < len(dataset):
        return np.asarray(dataset.images[index])
    read = getattr(explorer, "read_images", None)
    return None if read is None else np.asarray(read([index]))[0]


def _label_colors(labels: np.ndarray | None, names: list[str]) -> list[str]:
    """Hex colour per label value, as the explorer colours its classes.

    The explorer's class column is a pandas categorical of the names present (sorted),
    coloured with :func:`tsimcne_nb.viz.palette.category_hex` in that order.
    """
    from tsimcne_nb.viz.palette import category_hex

    present = sorted({names[i] for i in np.unique(labels) if 0 <= i < len(names)}) if labels is not None else []
    pal = category_hex(max(len(present), 1))
    pos = {name: j for j, name in enumerate(present)}
    return [pal[pos[nm]] if nm in pos else "#808080" for nm in names]
