"""Interactive map explorer: a jupyter-scatter WebGL map linked to a thumbnail panel.

Select points on the map (hold Shift and drag for a lasso, or use the lasso button) and
their images appear as a labelled grid (paged, sortable by distance to the selection's
centre, or a random sample); click a thumbnail to mark its point; hover a point to see
its image.  A toolbar tags the selection (buttons, keys 1-9), colours the map by any
column, searches (``blur > 2``), exports, zooms and clears; the legend selects a class.
Tags and the selection persist to a parquet file (:meth:`Explorer.save_review`).

Thumbnails are encoded lazily (only the current page, and a hovered point) into a small
LRU cache: no image column is ever precomputed for all points, so the explorer works on
PCam-sized data and maps of a million points.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._indices import take_rows
from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.viz.raster import render_map_png  # noqa: F401 - its old home; imported from here
from tsimcne_nb.widgets._actions import ActionsMixin
from tsimcne_nb.widgets._display import StaticFallbackDisplay
from tsimcne_nb.widgets._tagging import TaggingMixin
from tsimcne_nb.widgets._validate import _validate_embedding, _validate_indices
from tsimcne_nb.widgets.colouring import NEW_CATEGORY, UNTAGGED, category_layer
from tsimcne_nb.widgets.thumbnail_panel import ThumbnailPanel
from tsimcne_nb.widgets.thumbnails import ThumbnailCache, answer_tooltip
from tsimcne_nb.widgets.toolbar import ExplorerToolbar

__all__ = ["ACTION_KEYS", "EMPTY_HINT", "PREVIEW_KEY", "Explorer"]

#: name of the (virtual) tooltip preview column: answered by encoding on hover
PREVIEW_KEY = "__tsimcne_thumbnail__"
#: what selects and adds to a selection: Shift+drag draws a lasso (as every tutorial says;
#: jupyter-scatter 1.0.1 alone needs its lasso button or a long press), Cmd/Meta+drag adds
#: to the selection, Alt+drag removes from it
ACTION_KEYS = {"lasso": "shift", "merge": "meta", "remove": "alt"}
#: the panel's hint before anything is selected
EMPTY_HINT = (
    "No selection: hold Shift and drag on the map to draw a lasso (or use the lasso button "
    "in the map's toolbar, or press and hold). Click a legend entry to select a class."
)

_SAMPLE_MODES = ("page", "sample")
_ORDERS = ("index", "distance")


class Explorer(ActionsMixin, TaggingMixin, StaticFallbackDisplay):
    """A WebGL map of an embedding linked to a grid of the selected images.

    Parameters
    ----------
    embedding : array-like of shape (N, 2)
        float ``(N, 2)`` coordinates, one per image, in the dataset's order.
    dataset : ImageDataset or numpy.ndarray
        :class:`~tsimcne_nb.data.core.ImageDataset` (or a bare uint8
        ``(N, H, W, 3)`` array).
    color_by : str or sequence or numpy.ndarray
        ``"label"`` (class names), ``"tag"``, the name of a metadata column, or an
        array of ``N`` values (numeric with more than 12 distinct values: continuous
        viridis scale; otherwise categories).  Assigning ``explorer.color_by`` later
        recolours the map.
    model : TSimCNE or None
        Anything with ``transform(images) -> (M, 2)`` (e.g. a fitted ``TSimCNE``);
        used by :meth:`add_points`.
    thumbnail_size : int
        Size in pixels of a thumbnail in the panel (and the long side above which
        images are shrunk before sending); the panel has a size control too.
    page_size : int
        Thumbnails per page; also the sample size in ``"sample"`` mode.
    mode : str
        ``"page"`` (page through the selection) or ``"sample"`` (random sample).
    height : int
        Height of the map and the panel in pixels.
    tooltip : bool
        Show the image (and class) of the hovered point.
    cache_size : int
        Number of encoded thumbnails kept (LRU).
    title : str
        Shown above the map.
    random_state : int or None
        Seed of the sample mode.
    thumbnail_cache : ThumbnailCache or None
        Share a :class:`ThumbnailCache` between explorers of the same images.
    show_panel : bool
        False hides the thumbnail panel (used by :class:`LinkedExplorer`).
    user : str or None
        Recorded as ``who`` for tags set in this explorer (default: the login name).
    """

    def __init__(
        self,
        embedding: Any,
        dataset: ImageDataset | np.ndarray,
        color_by: str | Sequence | np.ndarray = "label",
        model: Any = None,
        thumbnail_size: int = 56,
        page_size: int = 100,
        mode: str = "page",
        height: int = 500,
        tooltip: bool = True,
        cache_size: int = 2048,
        title: str = "",
        random_state: int | None = 0,
        thumbnail_cache: ThumbnailCache | None = None,
        show_panel: bool = True,
        user: str | None = None,
    ) -> None:
        self.embedding = embedding
        self.dataset = dataset
        self.model = model
        self.thumbnail_size = thumbnail_size
        self.page_size = page_size
        self.mode = mode
        self.height = height
        self.tooltip = tooltip
        self.cache_size = cache_size
        self.title = title
        self.random_state = random_state
        self.thumbnail_cache = thumbnail_cache
        self.show_panel = show_panel
        self.user = user

        if int(page_size) < 1:
            raise ConfigError(f"page_size must be >= 1; got {page_size}.")
        if int(thumbnail_size) < 8:
            raise ConfigError(f"thumbnail_size must be >= 8 pixels; got {thumbnail_size}.")
        if mode not in _SAMPLE_MODES:
            raise ConfigError(f"mode must be one of {_SAMPLE_MODES}; got {mode!r}.")
        self._dataset = as_dataset(dataset)
        n = len(self._dataset)
        self._xy = _validate_embedding(embedding, n)
        self._n_base = n
        self._extra_images: np.ndarray | None = None
        labels = self._dataset.labels
        self._label = np.full(n, -1, np.int64) if labels is None else labels.copy()
        self._label_name = np.asarray(self._dataset.label_names, dtype=object)
        self._class_order = [str(c) for c in self._dataset.class_names or []]
        self._metadata = self._dataset.metadata.rename(columns={"index": "source_index"})
        self._columns: dict[str, pd.Series] = {}
        self._is_new = np.zeros(n, dtype=bool)
        self._tags: dict[str, np.ndarray] = {}
        self._tag_info: dict[str, pd.DataFrame] = {}
        self._tag_listeners: list[Any] = []
        self._selected = np.empty(0, dtype=np.int64)
        self._reselect: tuple[np.ndarray, float] | None = None
        self._focused = -1
        self._quiet = False
        self._color_name = self._resolve_color(color_by)
        self._last_colors = self._color_name if self._color_name != "tag" else "label"
        # `is None`, not `or`: an empty cache has len 0 and is falsy
        self._cache = (
            ThumbnailCache(self._read_images, size=max(int(thumbnail_size), 28), maxsize=cache_size)
            if thumbnail_cache is None
            else thumbnail_cache
        )
        self._toolbar = ExplorerToolbar()
        self._toolbar.on_msg(self._on_toolbar_msg)
        self._toolbar.observe(self._on_toolbar_color, names=["color_by"])
        self._df = self._frame()
        self._scatter = self._build_scatter()
        self._panel = ThumbnailPanel(
            page_size=int(page_size),
            mode=mode,
            thumbnail_size=int(thumbnail_size),
            height=int(height),
            hint=EMPTY_HINT,
        )
        self._panel.observe(
            self._on_panel_change, names=["page", "mode", "resample", "order", "page_size"]
        )
        self._panel.on_msg(self._on_panel_msg)
        self._scatter.widget.observe(self._on_selection, names=["selection"])
        self._extra_panels: list[Any] = []
        self._side: Any = None
        self._widget: Any = None
        self._apply_colors()
        self._sync_toolbar()

    # ------------------------------------------------------------ data frame
    def _resolve_color(self, color_by: Any) -> str:
        """The column name to colour by (an array becomes the column ``"values"``)."""
        n = len(self._xy)
        if isinstance(color_by, str):
            name = "source_index" if color_by == "index" else color_by
            if name in ("label", "tag") or name in self._metadata.columns or name in self._columns:
                return name
            raise ConfigError(
                f"color_by={color_by!r} is neither 'label', 'tag' nor a column; choose one of "
                f"{self.color_options} or pass an array of {n} values."
            )
        values = np.asarray(color_by)
        if values.ndim != 1 or len(values) != n:
            raise DataError(
                f"color_by array must have one value per point, shape ({n},); got shape {values.shape}."
            )
        self._columns["values"] = pd.Series(values)
        return "values"

    @property
    def color_options(self) -> list[str]:
        """What the map can be coloured by: label, tag, metadata and added columns."""
        meta = [str(c) for c in self._metadata.columns]
        return ["label", "tag", *meta, *[c for c in self._columns if c not in meta]]

    @property
    def color_by(self) -> str:
        """What the map is coloured by; assign a column name (or an array) to recolour."""
        return self._color_name

    @color_by.setter
    def color_by(self, value: Any) -> None:
        if not hasattr(self, "_scatter"):  # during __init__ (sklearn-style parameter)
            return
        self._color_name = self._resolve_color(value)
        if self._color_name != "tag":
            self._last_colors = self._color_name
        self._apply_colors()

    def _column(self, name: str) -> pd.Series:
        """Values of a searchable / colourable column, one per point (NaN for added points)."""
        n = len(self._xy)
        if name == "label":
            return pd.Series(np.where(self._is_new, NEW_CATEGORY, self._label_name))
        if name == "tag":
            out = np.full(n, UNTAGGED, dtype=object)
            for tag, idx in self._tags.items():  # later tags are drawn on top of earlier ones
                out[idx] = tag
            return pd.Series(out)
        ser = self._columns[name] if name in self._columns else self._metadata[name]
        ser = ser.reset_index(drop=True)
        if len(ser) < n:  # points added later: continue the column
            ser = pd.concat([ser, pd.Series([np.nan] * (n - len(ser)))], ignore_index=True)
        return ser

    def _frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": self._xy[:, 0],
                "y": self._xy[:, 1],
                "class": category_layer(
                    "class", self._column("label"), first=self._class_order
                ).values.array,
                "color": np.zeros(len(self._xy), np.float32),
            }
        )

    def _read_images(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        base = indices < self._n_base
        out = np.empty((len(indices), *self._dataset.image_shape), dtype=np.uint8)
        if base.any():
            bi = indices[base]
            if self._dataset.is_lazy:  # h5py wants increasing, unique indices
                out[base] = take_rows(self._dataset.images, bi)
            else:
                out[base] = self._dataset.images[bi]
        if (~base).any():
            assert self._extra_images is not None  # points past the dataset come from add_points
            out[~base] = self._extra_images[indices[~base] - self._n_base]
        return out

    def _build_scatter(self):
        import jscatter

        sc = jscatter.Scatter(
            data=self._df,
            x="x",
            y="y",
            height=int(self.height),
            # the explorer's toolbar shows the legend: clickable, titled, off the data
            legend=False,
            axes=False,
            lasso_initiator=True,
        )
        sc.options(regl_scatterplot_options={"actionKeyMap": dict(ACTION_KEYS)})
        if self.tooltip:
            sc.tooltip(
                True,
                properties=["class", "color"],
                preview=PREVIEW_KEY,
                preview_type="image",
                preview_image_size="contain",
                preview_image_height=max(int(self.thumbnail_size) * 2, 96),
            )
        widget = sc.widget
        # jupyter-scatter reads a preview from a column of its data frame and has no public
        # hook for computed previews; answering its tooltip request ourselves keeps the
        # previews lazy (one encoded image per hover, never a column of N images)
        widget._handle_tooltip = self._handle_tooltip
        widget.layout.flex = "1 1 60%"
        widget.layout.min_width = "320px"
        return sc

    def _handle_tooltip(self, event: dict) -> None:
        answer_tooltip(self._scatter.widget, self._cache, event, PREVIEW_KEY)

    # ----------------------------------------------------------- selection
    def _on_selection(self, change: dict) -> None:
        new = change["new"]
        pending, self._reselect = self._reselect, None
        if pending is not None and (new is None or len(new) == 0) and time.monotonic() < pending[1]:
            self.select(pending[0])  # see add_points: the front-end dropped the new points
            return
        self._selected = (
            np.empty(0, np.int64) if new is None else np.unique(np.asarray(new, dtype=np.int64))
        )
        if self._focused >= 0 and not np.isin(self._focused, self._selected):
            self.unfocus()  # the box marked a thumbnail that is no longer shown
        self._quiet = True  # page reset and redraw in one go, not twice
        try:
            self._panel.page = 0
        finally:
            self._quiet = False
        self._update_panel()
        self._toolbar.n_selected = len(self._selected)

    def _on_panel_change(self, change: dict) -> None:
        if self._quiet:
            return
        if change["name"] == "mode" and change["new"] not in _SAMPLE_MODES:
            self._panel.mode = change["old"]
            return
        if change["name"] == "order" and change["new"] not in _ORDERS:
            self._panel.order = change["old"]
            return
        if change["name"] == "page_size" and int(change["new"]) < 1:
            self._panel.page_size = change["old"]
            return
        self._update_panel()

    def _on_panel_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "click":
            index = int(content["index"])
            if index == self._focused:  # a second click on the marked thumbnail unmarks it
                self.unfocus()
            else:
                self.focus(index)

    def _ordered_selection(self) -> np.ndarray:
        sel = self._selected
        if self._panel.order == "distance" and len(sel) > 1:
            d = np.linalg.norm(self._xy[sel] - self._xy[sel].mean(axis=0), axis=1)
            return sel[np.argsort(d, kind="stable")]
        return sel

    def _page_indices(self) -> np.ndarray:
        sel = self._ordered_selection()
        ps = int(self._panel.page_size)
        if self._panel.mode == "sample":
            if len(sel) <= ps:
                return sel
            rng = np.random.default_rng(
                [self.random_state or 0, int(self._panel.resample), len(sel)]
            )
            pick = np.sort(rng.choice(len(sel), size=ps, replace=False))
            return sel[pick]  # keeps the panel's order (index or distance)
        page = int(self._panel.page)
        return sel[page * ps : (page + 1) * ps]

    def _update_panel(self) -> None:
        if not self.show_panel:
            return
        n_sel = len(self._selected)
        ps = int(self._panel.page_size)
        n_pages = max(1, -(-n_sel // ps))
        if self._panel.page >= n_pages:
            self._panel.page = n_pages - 1  # re-enters via the observer; that call draws
            return
        if self._panel.page < 0:
            self._panel.page = 0
            return
        idx = self._page_indices()
        srcs = self._cache.get_many(idx)
        tags = self._tags_of(idx)
        items = [
            {"index": int(i), "label": str(self._label_name_of(i)), "tags": t, "src": s}
            for i, s, t in zip(idx, srcs, tags, strict=True)
        ]
        with self._panel.hold_sync():
            self._panel.n_pages = n_pages
            self._panel.n_selected = n_sel
            self._panel.items = items

    def _label_name_of(self, i: int) -> str:
        return NEW_CATEGORY if self._is_new[i] else self._label_name[i]

    @property
    def selected(self) -> np.ndarray:
        """Indices (positions in the map, sorted) of the currently selected points."""
        return self._selected.copy()

    @property
    def scatter(self):
        """The underlying :class:`jscatter.Scatter` (for styling: ``.size()``, ``.opacity()``...)."""
        return self._scatter

    @property
    def panel(self) -> ThumbnailPanel:
        """The thumbnail panel widget (its ``focused`` traitlet is the marked point)."""
        return self._panel

    @property
    def toolbar(self) -> ExplorerToolbar:
        """The toolbar and legend widget."""
        return self._toolbar

    @property
    def cache(self) -> ThumbnailCache:
        """The :class:`ThumbnailCache` of encoded thumbnails."""
        return self._cache

    @property
    def n_points(self) -> int:
        """Number of points on the map (dataset images plus added points)."""
        return len(self._xy)

    @property
    def images(self) -> Any:
        """The dataset's images (array-like); see :meth:`read_images` for added points too."""
        return self._dataset.images

    def read_images(self, indices: Any) -> np.ndarray:
        """uint8 ``(len(indices), H, W, 3)`` images of points ``indices`` (added points too).

        Parameters
        ----------
        indices : array-like of int
            Positions in the map.
        """
        return self._read_images(_validate_indices(indices, self.n_points))

    def select(self, indices: Any) -> Explorer:
        """Set the selection from Python (integer positions or a boolean mask); the view follows.

        ``None`` or an empty list clears the selection.

        Parameters
        ----------
        indices : array-like of int or bool, or None
            Integer positions, an ``(N,)`` boolean mask, or ``None`` to clear.
        """
        idx = _validate_indices(indices, self.n_points)
        self._scatter.selection(idx.astype(np.uint32))
        return self

    def focus(self, index: int) -> Explorer:
        """Mark one point on the map (box + hover highlight), as a click on its thumbnail does.

        The mark goes when the selection no longer contains the point, on a second click
        of the thumbnail, or with :meth:`unfocus`.

        Parameters
        ----------
        index : int
            Position in the map.
        """
        from jscatter.annotations import Rect

        index = int(_validate_indices([index], self.n_points)[0])
        x, y = (float(v) for v in self._xy[index])
        span = float(np.ptp(self._xy, axis=0).max()) or 1.0
        r = 0.02 * span
        self._focused = index
        self._scatter.annotations(
            [Rect(x - r, x + r, y - r, y + r, line_color="#e4572e", line_width=2)]
        )
        self._scatter.widget.hovering = index
        self._panel.focused = index
        return self

    def unfocus(self) -> Explorer:
        """Remove the mark set by :meth:`focus` (box on the map, frame in the panel)."""
        self._focused = -1
        self._scatter.annotations([])
        self._panel.focused = -1
        return self

    @property
    def focused(self) -> int:
        """Index of the point last focused (clicked thumbnail), or -1."""
        return self._focused

    def selection_frame(self, indices: Any = None) -> pd.DataFrame:
        """DataFrame of the selected points (or of ``indices``).

        Columns: ``index`` (position in the map), ``x``, ``y``, ``label`` (-1 for
        none), ``label_name``, ``new`` (added by :meth:`add_points`), ``tags``
        (``;``-separated), the dataset's metadata columns (its ``index`` column
        renamed ``source_index``) and columns added with :meth:`add_column`.

        Parameters
        ----------
        indices : array-like of int or None
            Positions in the map; default the current selection.
        """
        idx = self._selected if indices is None else _validate_indices(indices, self.n_points)
        meta = self._metadata.reindex(idx).reset_index(drop=True)
        frame = pd.DataFrame(
            {
                "index": idx,
                "x": self._xy[idx, 0],
                "y": self._xy[idx, 1],
                "label": self._label[idx],
                "label_name": [self._label_name_of(i) for i in idx],
                "new": self._is_new[idx],
                "tags": self._tags_of(idx),
            }
        )
        extra = meta.drop(columns=[c for c in meta.columns if c in frame.columns])
        cols = {c: self._column(c).to_numpy()[idx] for c in self._columns if c not in frame}
        return pd.concat([frame, extra, pd.DataFrame(cols)], axis=1)

    # -------------------------------------------------------------- display
    def add_panel(self, widget: Any, title: str = "") -> Explorer:
        """Place an extra ipywidget beside the thumbnails (under them), e.g. an explanation
        of the selection; panels observe ``explorer.scatter.widget`` (``selection``) and
        ``explorer.panel`` (``focused``).

        Parameters
        ----------
        widget : ipywidgets.Widget
            The panel.
        title : str
            Shown above it.

        Returns
        -------
        Explorer
            self
        """
        import ipywidgets as w

        if not isinstance(widget, w.DOMWidget):
            raise ConfigError(f"add_panel needs an ipywidgets widget; got {type(widget).__name__}.")
        box = w.VBox([*([w.HTML(f"<b>{title}</b>")] if title else []), widget])
        box.add_class("tsimcne-extra-panel")
        self._extra_panels.append(box)
        if self._side is not None:
            self._side.children = (*self._side.children, box)
        return self

    @property
    def widget(self):
        """The ipywidgets layout: toolbar and legend above the map beside the thumbnail panel."""
        if self._widget is None:
            import ipywidgets as w

            side = [self._panel] if self.show_panel else []
            self._side = w.VBox(
                [*side, *self._extra_panels],
                layout=w.Layout(flex="1 1 40%", min_width="260px", overflow="auto"),
            )
            row = w.HBox(
                [self._scatter.show(), self._side],
                layout=w.Layout(width="100%", align_items="flex-start"),
            )
            parts = [w.HTML(f"<b>{self.title}</b>")] if self.title else []
            self._widget = w.VBox([*parts, self._toolbar, row], layout=w.Layout(width="100%"))
            self._widget.add_class("tsimcne-explorer")
        return self._widget

    def __repr__(self) -> str:
        return (
            f"Explorer(n_points={self.n_points}, selected={len(self._selected)}, "
            f"tags={list(self._tags)}, color_by={self._color_name!r})"
        )
