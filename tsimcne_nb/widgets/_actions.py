"""What the explorer's toolbar does, callable from Python too (a mixin of Explorer).

Colouring (the one palette, the same map for the live view and the PNG), the legend,
search, selecting a class, zoom, clear, extra columns, and the toolbar's messages.
"""

from __future__ import annotations

import pathlib
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.validation import validate_images
from tsimcne_nb.viz.palette import NUMERIC_CMAP, category_hex
from tsimcne_nb.widgets._validate import _validate_embedding
from tsimcne_nb.widgets.colouring import NEW_CATEGORY, ColorLayer, category_layer, make_layer
from tsimcne_nb.widgets.search import search_mask

if TYPE_CHECKING:
    from tsimcne_nb.data.core import ImageDataset
    from tsimcne_nb.widgets.explorer import Explorer
    from tsimcne_nb.widgets.toolbar import ExplorerToolbar


class ActionsMixin:
    """Toolbar actions of :class:`~tsimcne_nb.widgets.explorer.Explorer`."""

    # What the mixin uses of its host (Explorer sets them in __init__), declared for the
    # type checker only.
    model: Any
    _dataset: ImageDataset
    _xy: np.ndarray
    _extra_images: np.ndarray | None
    _label: np.ndarray
    _label_name: np.ndarray
    _class_order: list[str]
    _metadata: pd.DataFrame
    _columns: dict[str, pd.Series]
    _is_new: np.ndarray
    _tags: dict[str, np.ndarray]
    _tag_listeners: list[Any]
    _selected: np.ndarray
    _reselect: tuple[np.ndarray, float] | None
    _color_name: str
    _layer: ColorLayer
    _toolbar: ExplorerToolbar
    _df: pd.DataFrame
    _scatter: Any  # a jscatter.Scatter (jupyter-scatter ships no type information)

    if TYPE_CHECKING:

        @property
        def n_points(self) -> int: ...

        @property
        def color_options(self) -> list[str]: ...

        def _resolve_color(self, color_by: Any) -> str: ...

        def _column(self, name: str) -> pd.Series: ...

        def _frame(self) -> pd.DataFrame: ...

        def _update_panel(self) -> None: ...

        def select(self, indices: Any) -> Explorer: ...

        def tag_selection(self, name: str, why: str = "") -> np.ndarray: ...

        def export(
            self, path: str | pathlib.Path, what: str = "tags", overwrite: bool = False
        ) -> pathlib.Path: ...

    # ------------------------------------------------------------ colours
    def color_layer(self, name: str | None = None) -> ColorLayer:
        """The colour layer ``name`` (default: the one shown): values, colours, legend."""
        name = self._color_name if name is None else self._resolve_color(name)
        values = self._column(name)
        if name == "label":
            return category_layer("label", values, first=self._class_order)
        if name == "tag":
            return category_layer("tag", values, first=list(self._tags))
        return make_layer(name, values, is_new=self._is_new)

    def _apply_colors(self) -> None:
        layer = self.color_layer()
        self._layer = layer
        self._df["color"] = layer.values.array
        if layer.categorical:
            # an explicit {category: colour} map every time: jupyter-scatter falls back to its
            # own palette when a new category (a second tag, "new" points) outgrows the old map
            self._scatter.color(by="color", map=dict(layer.colors))
        else:
            self._scatter.color(by="color", map=NUMERIC_CMAP, norm=layer.norm)
        self._sync_toolbar()

    def _sync_toolbar(self) -> None:
        layer = getattr(self, "_layer", None)
        tb = self._toolbar
        # tag i has colour i of the palette (the tag layer's order), without building the layer
        tag_pal = category_hex(max(len(self._tags), 1))
        with tb.hold_sync():
            tb.color_options = self.color_options
            tb.color_by = self._color_name
            tb.tags = list(self._tags)
            tb.tag_colors = {t: tag_pal[i] for i, t in enumerate(self._tags)}
            if layer is not None:
                tb.legend_title = layer.name
                tb.legend = layer.legend()
                tb.colorbar = layer.colorbar()
            tb.n_selected = len(self._selected)

    def _on_toolbar_color(self, change: dict) -> None:
        if change["new"] != self._color_name:
            try:
                self.color_by = change["new"]
            except (ConfigError, DataError) as err:
                self._status(str(err), error=True)

    def show_tags(self):
        """Colour the map by tag (a point with several tags shows the latest one)."""
        self.color_by = "tag"
        return self

    def show_colors(self):
        """Back to the colouring shown before :meth:`show_tags`."""
        self.color_by = self._last_colors
        return self

    def _showing_tags(self) -> bool:
        return self._color_name == "tag"

    def _on_tags_changed(self) -> None:
        self._refresh_tags()
        for listener in self._tag_listeners:
            listener()

    def _refresh_tags(self) -> None:
        if self._showing_tags():
            self._apply_colors()
        else:
            self._sync_toolbar()
        self._update_panel()

    def add_column(self, name: str, values: Any) -> None:
        """Add a column (e.g. a QC score) to colour by, search and export.

        Parameters
        ----------
        name : str
            Column name (not ``label``, ``tag`` or an existing metadata column).
        values : array_like
            One value per point of the map.
        """
        if not isinstance(name, str) or not name or name in ("label", "tag", "values") or (
            name in self._metadata.columns
        ):
            raise ConfigError(
                f"column name {name!r} is taken or empty; existing: {self.color_options}."
            )
        values = pd.Series(np.asarray(values)).reset_index(drop=True)
        if len(values) != self.n_points:
            raise DataError(
                f"column {name!r} has {len(values)} values but the map has {self.n_points} points."
            )
        self._columns[name] = values
        self._sync_toolbar()

    # ------------------------------------------------------------ finding
    def search(self, query: str, select: bool = True) -> np.ndarray:
        """Points matching ``query`` (e.g. ``"blur > 2"``, ``"label == neutrophil and tag:keep"``).

        The query language is parsed safely (never evaluated as Python); see
        :mod:`tsimcne_nb.widgets.search`.  With ``select=True`` the matches become the
        selection: highlighted on the map, in the panel, and in :attr:`selected`.

        Returns
        -------
        numpy.ndarray
            Sorted indices of the matching points.
        """
        names = ["label", "new", *self._metadata.columns, *self._columns]
        columns = {c: self._column(c) for c in names if c != "new"}
        columns["new"] = pd.Series(self._is_new)
        columns["index"] = pd.Series(np.arange(self.n_points))
        hits = np.flatnonzero(search_mask(query, columns, self._tags, self.n_points))
        self._toolbar.query = query
        self._toolbar.query_error = ""
        self._toolbar.n_matches = len(hits)
        if select:
            self.select(hits)
        return hits

    def select_category(self, name: str, add: bool = False, layer: str | None = None):
        """Select the points of category ``name`` of the colour layer (what a legend click does).

        ``add=True`` (shift-click) adds them to the current selection.
        """
        values = self.color_layer(layer).values
        if not isinstance(values.dtype, pd.CategoricalDtype):
            raise ConfigError("the map is coloured by a numeric column: no categories to select.")
        if name not in values.cat.categories:
            raise ConfigError(
                f"no category {name!r} in {self._color_name!r}; there are "
                f"{list(values.cat.categories)[:12]}."
            )
        idx = np.flatnonzero(values.to_numpy() == name)
        if add:
            idx = np.union1d(self._selected, idx)
        return self.select(idx)

    def zoom_to_selection(self, padding: float = 0.2):
        """Zoom the map to the selection (to everything when nothing is selected)."""
        to = self._selected.tolist() if len(self._selected) else None
        self._scatter.zoom(to=to, animation=300, padding=padding)
        return self

    def clear(self):
        """Clear the selection and the focus mark."""
        self.unfocus()
        return self.select([])

    # ------------------------------------------------------- out of sample
    def add_points(self, images: Any, model: Any = None, select: bool = True) -> np.ndarray:
        """Place new images on the map with ``model.transform(images)`` and highlight them.

        The new points get the category ``"new"`` (its own colour, after the classes, so
        the classes keep theirs) and, with ``select=True``, become the selection so
        their thumbnails show.  Returns their indices in the map.
        """
        model = model if model is not None else self.model
        if model is None or not callable(getattr(model, "transform", None)):
            raise ConfigError(
                "add_points needs a fitted model with a transform(images) method: pass "
                "model= here or to Explorer(..., model=)."
            )
        imgs = np.asarray(validate_images(images, "new images"))
        if imgs.shape[1:] != tuple(self._dataset.image_shape):
            raise DataError(
                f"new images have shape {imgs.shape[1:]} but the map's images are "
                f"{tuple(self._dataset.image_shape)}; resize them first."
            )
        xy = _validate_embedding(model.transform(imgs), len(imgs), name="model.transform(images)")
        start = self.n_points
        self._extra_images = (
            imgs if self._extra_images is None else np.concatenate([self._extra_images, imgs])
        )
        m = len(imgs)
        self._xy = np.concatenate([self._xy, xy])
        self._label = np.concatenate([self._label, np.full(m, -1, np.int64)])
        self._label_name = np.concatenate([self._label_name, np.full(m, NEW_CATEGORY, object)])
        self._is_new = np.concatenate([self._is_new, np.ones(m, bool)])
        new_meta = pd.DataFrame({"source_index": np.full(m, -1), "split": NEW_CATEGORY})
        self._metadata = pd.concat([self._metadata, new_meta], ignore_index=True)
        self._df = self._frame()
        # one update of data and colours: every view of this explorer redraws from it
        with self._scatter.widget.hold_sync():
            self._scatter.data(self._df)
            self._apply_colors()
        new_idx = np.arange(start, start + m, dtype=np.int64)
        if select:
            self.select(new_idx)
            # jupyter-scatter's front-end clears the selection once it has drawn new data; the
            # first such clear (within a few seconds) is answered by selecting the points again
            self._reselect = (new_idx, time.monotonic() + 5.0)
        return new_idx

    # ------------------------------------------------------------ toolbar
    def _status(self, text: str, error: bool = False) -> None:
        with self._toolbar.hold_sync():
            self._toolbar.status = text
            self._toolbar.status_error = error

    def _on_toolbar_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        try:
            if kind == "tag":
                name = str(content.get("name", ""))
                n = len(self._selected)
                self.tag_selection(name, why=f"toolbar{' key ' + content['key'] if 'key' in content else ''}")
                self._status(f"tagged {n} points '{name}'")
            elif kind == "search":
                try:
                    hits = self.search(str(content.get("query", "")))
                except ConfigError as err:
                    self._toolbar.query_error = str(err)
                    self._toolbar.n_matches = -1
                    return
                self._status(f"{len(hits)} points match")
            elif kind == "legend":
                self.select_category(str(content.get("name")), add=bool(content.get("add")))
            elif kind == "export":
                path = pathlib.Path(str(content.get("path") or self._toolbar.export_path))
                what = "selection" if content.get("what") == "selection" else "tags"
                out = self.export(path, what=what)
                self._toolbar.export_path = str(path)
                self._status(f"wrote {out}")
            elif kind == "zoom":
                self.zoom_to_selection()
            elif kind == "clear":
                self.clear()
        except (ConfigError, DataError, FileExistsError, OSError) as err:
            # the user clicked: say what went wrong where they look, not in a log
            self._status(str(err), error=True)
