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

from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.widgets._panel import ExplorerPanel
from tsimcne_nb.widgets.explain_render import _esc, _fmt, summary_html
from tsimcne_nb.widgets.selection_stats import (
    SelectionSummary,
    _MapStats,
    explain_selection,
)

__all__ = ["SelectionExplainer", "SelectionSummary", "explain_selection"]

#: the large view's size in pixels
LARGE_SIZE = 192


class SelectionExplainer(ExplorerPanel):
    """A panel that explains the explorer's current selection and shows the focused image large.

    Parameters
    ----------
    explorer : Explorer
        A :class:`~tsimcne_nb.widgets.Explorer`.
    properties : str or pandas.DataFrame or None
        ``"auto"`` computes :func:`tsimcne_nb.qc.image_properties` of the dataset
        once (a few seconds per 100k small images); a DataFrame with one row per
        image passes precomputed ones (e.g. from a QC report); ``None`` leaves them out.
    k : int
        Map neighbours per point for the kNN purity.
    columns : list of str or None
        Metadata columns to compare too; default every numeric metadata column.

    Notes
    -----
    The panel observes ``explorer.scatter.widget.selection`` and
    ``explorer.panel.focused``: it updates on each lasso and thumbnail click.
    Points added with ``Explorer.add_points`` count as unlabelled and have no
    properties.
    """

    TITLE = "explain the selection"

    def __init__(
        self,
        explorer: Any,
        properties: str | pd.DataFrame | None = "auto",
        k: int = 15,
        columns: list[str] | None = None,
    ) -> None:
        from tsimcne_nb.data.core import as_dataset

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
            from tsimcne_nb.qc.properties import image_properties

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
        self.summary: SelectionSummary  # set by the update() at the end of __init__
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
        # the widget's current value, not change["new"]: an observer that runs before this one
        # may set the selection again inside the same notification (the explorer re-selects
        # points it just added when jupyter-scatter's front-end clears them), and the outer
        # change would then describe a selection that no longer exists
        new = self.explorer.scatter.widget.selection
        sel = np.empty(0, np.int64) if new is None else np.unique(np.asarray(new, np.int64))
        self._explain(sel)

    def _on_focus(self, change: dict) -> None:
        if self._large is not None:
            self._large.value = self.large_view_html(int(change["new"]))

    def large_view_html(self, index: int) -> str:
        """HTML of one point's image (large), label, tags and metadata; a hint for ``index < 0``.

        Parameters
        ----------
        index : int
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
