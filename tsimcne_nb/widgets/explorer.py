"""Interactive map explorer: a jupyter-scatter WebGL map linked to a thumbnail panel.

Lasso/rectangle-select points on the map and their images appear as a labelled
grid (paged, or a random sample for large selections); click a thumbnail to mark
its point on the map; hover a point to see its image.  Selections can be tagged,
exported, set from Python, and linked across several maps of the same images.

Thumbnails are encoded lazily (only the current page, and a hovered point) into
a small LRU cache: no image column is ever precomputed for all points, so the
explorer works on PCam-sized data and maps of a million points.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_write_bytes, check_can_write
from tsimcne_nb.datasets.core import ImageDataset, as_dataset, validate_images
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.viz.palette import UNTAGGED_COLOR, category_hex
from tsimcne_nb.viz.raster import UNTAGGED, render_map_png
from tsimcne_nb.widgets._display import StaticFallbackDisplay
from tsimcne_nb.widgets._validate import _validate_embedding, _validate_indices
from tsimcne_nb.widgets.thumbnail_panel import ThumbnailPanel
from tsimcne_nb.widgets.thumbnails import ThumbnailCache, answer_tooltip

#: name of the (virtual) tooltip preview column: answered by encoding on hover
PREVIEW_KEY = "__tsimcne_thumbnail__"
#: category given to points added with :meth:`Explorer.add_points`
NEW_CATEGORY = "new"

_SAMPLE_MODES = ("page", "sample")


class Explorer(StaticFallbackDisplay):
    """A WebGL map of an embedding linked to a grid of the selected images.

    Parameters
    ----------
    embedding
        float ``(N, 2)`` coordinates, one per image, in the dataset's order.
    dataset
        :class:`~tsimcne_nb.datasets.core.ImageDataset` (or a bare uint8
        ``(N, H, W, 3)`` array).
    color_by
        ``"label"`` (class names), the name of a metadata column, or an array of
        ``N`` values (numeric with more than 12 distinct values: continuous
        viridis scale; otherwise categories).
    model
        Anything with ``transform(images) -> (M, 2)`` (e.g. a fitted ``TSimCNE``);
        used by :meth:`add_points`.
    thumbnail_size
        Size in pixels of a thumbnail in the panel (and the long side above which
        images are shrunk before sending).
    page_size
        Thumbnails per page; also the sample size in ``"sample"`` mode.
    mode
        ``"page"`` (page through the selection) or ``"sample"`` (random sample).
    height
        Height of the map and the panel in pixels.
    tooltip
        Show the image (and class) of the hovered point.
    cache_size
        Number of encoded thumbnails kept (LRU).
    title
        Shown above the map.
    random_state
        Seed of the sample mode.
    thumbnail_cache
        Share a :class:`ThumbnailCache` between explorers of the same images.
    show_panel
        False hides the thumbnail panel (used by :class:`LinkedExplorer`).
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
    ) -> None:
        self.embedding = embedding
        self.dataset = dataset
        self.color_by = color_by
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
        self._metadata = self._dataset.metadata.rename(columns={"index": "source_index"})
        self._is_new = np.zeros(n, dtype=bool)
        self._tags: dict[str, np.ndarray] = {}
        self._selected = np.empty(0, dtype=np.int64)
        self._focused = -1
        self._quiet = False
        self._color_column = self._resolve_color(color_by)
        # `is None`, not `or`: an empty cache has len 0 and is falsy
        self._cache = (
            ThumbnailCache(self._read_images, size=max(int(thumbnail_size), 28), maxsize=cache_size)
            if thumbnail_cache is None
            else thumbnail_cache
        )
        self._scatter = self._build_scatter()
        self._panel = ThumbnailPanel(
            page_size=int(page_size),
            mode=mode,
            thumbnail_size=int(thumbnail_size),
            height=int(height),
        )
        self._panel.observe(self._on_panel_change, names=["page", "mode", "resample"])
        self._panel.on_msg(self._on_panel_msg)
        self._scatter.widget.observe(self._on_selection, names=["selection"])
        self._widget: Any = None

    # ------------------------------------------------------------ data frame
    def _resolve_color(self, color_by: Any) -> tuple[str, Any]:
        """Return ``(kind, values)`` with kind in {"label", "metadata", "values"}."""
        n = len(self._xy)
        if isinstance(color_by, str):
            if color_by == "label":
                return ("label", None)
            if color_by in self._metadata.columns or color_by == "index":
                col = "source_index" if color_by == "index" else color_by
                return ("metadata", col)
            raise ConfigError(
                f"color_by={color_by!r} is neither 'label' nor a metadata column; choose one of "
                f"{['label', *map(str, self._metadata.columns)]} or pass an array of {n} values."
            )
        values = np.asarray(color_by)
        if values.ndim != 1 or len(values) != n:
            raise DataError(
                f"color_by array must have one value per point, shape ({n},); got shape {values.shape}."
            )
        return ("values", values)

    def _color_series(self) -> pd.Series:
        kind, val = self._color_column
        n = len(self._xy)
        if kind == "label":
            return pd.Series(self._label_name, dtype="category")
        if kind == "metadata":
            ser = self._metadata[val].reset_index(drop=True)
        else:
            ser = pd.Series(val)
        if len(ser) < n:  # points added later: continue the column
            ser = pd.concat([ser, pd.Series([None] * (n - len(ser)))], ignore_index=True)
        if pd.api.types.is_numeric_dtype(ser) and ser.nunique() > 12:
            num = ser.astype(np.float64)
            # new points have no score: show them at the low end (they are selected anyway)
            return num.fillna(np.nanmin(num.to_numpy()) if num.notna().any() else 0.0)
        cat = ser.astype(str).where(~self._is_new, NEW_CATEGORY)
        return cat.astype("category")

    def _tag_series(self) -> pd.Series:
        out = np.full(len(self._xy), UNTAGGED, dtype=object)
        for name, idx in self._tags.items():  # later tags are drawn on top of earlier ones
            out[idx] = name
        return pd.Series(out, dtype="category")

    def _frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "x": self._xy[:, 0],
                "y": self._xy[:, 1],
                "class": pd.Series(
                    np.where(self._is_new, NEW_CATEGORY, self._label_name), dtype="category"
                ),
                "color": self._color_series(),
                "tag": self._tag_series(),
            }
        )

    def _read_images(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64)
        base = indices < self._n_base
        out = np.empty((len(indices), *self._dataset.image_shape), dtype=np.uint8)
        if base.any():
            bi = indices[base]
            if self._dataset.is_lazy:  # h5py wants increasing indices
                order = np.argsort(bi, kind="stable")
                block = np.asarray(self._dataset.images[bi[order]])
                tmp = np.empty_like(block)
                tmp[order] = block
                out[base] = tmp
            else:
                out[base] = self._dataset.images[bi]
        if (~base).any():
            out[~base] = self._extra_images[indices[~base] - self._n_base]
        return out

    def _build_scatter(self):
        import jscatter

        df = self._frame()
        sc = jscatter.Scatter(
            data=df,
            x="x",
            y="y",
            color_by="color",
            height=int(self.height),
            legend=True,
            axes=False,
            lasso_initiator=True,
        )
        self._df = df
        sc.color(
            map="viridis" if not isinstance(df["color"].dtype, pd.CategoricalDtype) else "auto"
        )
        if self.tooltip:
            sc.tooltip(
                True,
                # colour by label would list the class twice
                properties=["class"] if self._color_column[0] == "label" else ["color", "class"],
                preview=PREVIEW_KEY,
                preview_type="image",
                preview_image_size="contain",
                preview_image_height=max(int(self.thumbnail_size) * 2, 96),
            )
        widget = sc.widget
        # the hover preview is encoded when the browser asks for it, never stored per point
        widget._handle_tooltip = self._handle_tooltip
        widget.layout.flex = "1 1 60%"
        widget.layout.min_width = "320px"
        return sc

    def _handle_tooltip(self, event: dict) -> None:
        answer_tooltip(self._scatter.widget, self._cache, event, PREVIEW_KEY)

    # ----------------------------------------------------------- selection
    def _on_selection(self, change: dict) -> None:
        new = change["new"]
        self._selected = (
            np.empty(0, np.int64) if new is None else np.unique(np.asarray(new, dtype=np.int64))
        )
        self._quiet = True  # page reset and redraw in one go, not twice
        try:
            self._panel.page = 0
        finally:
            self._quiet = False
        self._update_panel()

    def _on_panel_change(self, change: dict) -> None:
        if self._quiet:
            return
        if change["name"] == "mode" and change["new"] not in _SAMPLE_MODES:
            self._panel.mode = change["old"]
            return
        self._update_panel()

    def _on_panel_msg(self, _widget: Any, content: dict, _buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "click":
            self.focus(int(content["index"]))

    def _page_indices(self) -> np.ndarray:
        sel = self._selected
        ps = int(self._panel.page_size)
        if self._panel.mode == "sample":
            if len(sel) <= ps:
                return sel
            rng = np.random.default_rng(
                [self.random_state or 0, int(self._panel.resample), len(sel)]
            )
            return np.sort(rng.choice(sel, size=ps, replace=False))
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

    def _tags_of(self, idx: np.ndarray) -> list[str]:
        if not self._tags:
            return [""] * len(idx)
        member = {name: np.isin(idx, t) for name, t in self._tags.items()}
        return [";".join(name for name in self._tags if member[name][j]) for j in range(len(idx))]

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
        """The thumbnail panel widget."""
        return self._panel

    @property
    def cache(self) -> ThumbnailCache:
        return self._cache

    @property
    def n_points(self) -> int:
        return len(self._xy)

    def select(self, indices: Any) -> Explorer:
        """Set the selection from Python (integer positions or a boolean mask); the view follows.

        ``None`` or an empty list clears the selection.
        """
        idx = _validate_indices(indices, self.n_points)
        self._scatter.selection(idx.astype(np.uint32))
        return self

    def focus(self, index: int) -> Explorer:
        """Mark one point on the map (box + hover highlight), as a click on its thumbnail does."""
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

    @property
    def focused(self) -> int:
        """Index of the point last focused (clicked thumbnail), or -1."""
        return self._focused

    def selection_frame(self, indices: Any = None) -> pd.DataFrame:
        """DataFrame of the selected points (or of ``indices``).

        Columns: ``index`` (position in the map), ``x``, ``y``, ``label`` (-1 for
        none), ``label_name``, ``new`` (added by :meth:`add_points`), ``tags``
        (``;``-separated) and the dataset's metadata columns (its ``index`` column
        renamed ``source_index``).
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
        return pd.concat([frame, extra], axis=1)

    # ----------------------------------------------------------------- tags
    def tag(self, name: str, indices: Any = None) -> np.ndarray:
        """Add the points ``indices`` (default: the current selection) to tag ``name``.

        A point can carry several tags.  Returns the tag's indices.
        """
        if not isinstance(name, str) or not name.strip() or name == UNTAGGED or ";" in name:
            raise ConfigError(
                f"tag name must be a non-empty string without ';' and not {UNTAGGED!r}; got {name!r}."
            )
        idx = self._selected if indices is None else _validate_indices(indices, self.n_points)
        if len(idx) == 0:
            raise DataError(
                f"nothing to tag as {name!r}: the selection is empty. Select points on the map "
                "(lasso/rectangle) or pass indices=."
            )
        self._tags[name] = np.union1d(self._tags.get(name, np.empty(0, np.int64)), idx)
        self._refresh_tags()
        return self._tags[name].copy()

    def untag(self, name: str, indices: Any = None) -> None:
        """Remove ``indices`` (default: all points) from tag ``name``."""
        if name not in self._tags:
            raise ConfigError(f"no tag named {name!r}; existing tags: {list(self._tags)}.")
        if indices is None:
            del self._tags[name]
        else:
            keep = np.setdiff1d(self._tags[name], _validate_indices(indices, self.n_points))
            if len(keep):
                self._tags[name] = keep
            else:
                del self._tags[name]
        self._refresh_tags()

    @property
    def tags(self) -> dict[str, np.ndarray]:
        """Tag name -> sorted point indices (a copy)."""
        return {k: v.copy() for k, v in self._tags.items()}

    def _refresh_tags(self) -> None:
        self._df["tag"] = self._tag_series()
        if self._showing_tags():
            self._scatter.color(by="tag")
        self._update_panel()

    def _showing_tags(self) -> bool:
        return self._scatter.color().get("by") == "tag"

    def show_tags(self) -> Explorer:
        """Colour the map by tag (a point with several tags shows the latest one)."""
        self._df["tag"] = self._tag_series()
        self._scatter.color(by="tag", map=self._tag_colors())
        return self

    def _tag_colors(self) -> dict[str, str]:
        cats = list(self._df["tag"].cat.categories)
        tags = [c for c in cats if c != UNTAGGED]
        pal = category_hex(max(len(tags), 1))
        out = {t: pal[i] for i, t in enumerate(tags)}
        out[UNTAGGED] = UNTAGGED_COLOR
        return {c: out[c] for c in cats}

    def show_colors(self) -> Explorer:
        """Back to the ``color_by`` colouring (after :meth:`show_tags`)."""
        is_cat = isinstance(self._df["color"].dtype, pd.CategoricalDtype)
        self._scatter.color(by="color", map="auto" if is_cat else "viridis")
        return self

    def export(
        self, path: str | pathlib.Path, what: str = "tags", overwrite: bool = False
    ) -> pathlib.Path:
        """Write the tagged points or the selection to CSV or parquet (by suffix), atomically.

        ``what="tags"``: every tagged point with its ``tags`` and one boolean column
        ``tag:NAME`` per tag.  ``what="selection"``: :meth:`selection_frame`.
        Refuses to replace an existing file unless ``overwrite=True``.
        """
        path = pathlib.Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise ConfigError(f"cannot export to {path.name!r}: use a .csv or .parquet file name.")
        if what == "selection":
            frame = self.selection_frame()
        elif what == "tags":
            if not self._tags:
                raise DataError(
                    "there are no tags to export: tag points first (explorer.tag(name))."
                )
            idx = np.unique(np.concatenate(list(self._tags.values())))
            frame = self.selection_frame(idx)
            for name, t in self._tags.items():
                frame[f"tag:{name}"] = np.isin(idx, t)
        else:
            raise ConfigError(f"what must be 'tags' or 'selection'; got {what!r}.")
        check_can_write(path, overwrite)
        buf = io.BytesIO()
        if suffix == ".csv":
            buf.write(frame.to_csv(index=False).encode("utf-8"))
        else:
            frame.to_parquet(buf, index=False)
        return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)

    # ------------------------------------------------------- out of sample
    def add_points(self, images: Any, model: Any = None, select: bool = True) -> np.ndarray:
        """Place new images on the map with ``model.transform(images)`` and highlight them.

        The new points get the category ``"new"`` (own colour) and, with
        ``select=True``, become the selection so their thumbnails show.  Returns
        their indices in the map.
        """
        model = model if model is not None else self.model
        if model is None or not callable(getattr(model, "transform", None)):
            raise ConfigError(
                "add_points needs a fitted model with a transform(images) method: pass "
                "model= here or to Explorer(..., model=)."
            )
        imgs = validate_images(images, "new images")
        imgs = np.asarray(imgs)
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
        showing_tags = self._showing_tags()
        self._df = self._frame()
        self._scatter.data(self._df)
        if showing_tags:
            self.show_tags()
        else:
            self.show_colors()
        new_idx = np.arange(start, start + m, dtype=np.int64)
        if select:
            self.select(new_idx)
        return new_idx

    # -------------------------------------------------------------- display
    @property
    def widget(self):
        """The ipywidgets layout: map (with toolbar) beside the thumbnail panel."""
        if self._widget is None:
            import ipywidgets as w

            self._panel.layout.flex = "1 1 40%"
            self._panel.layout.min_width = "260px"
            children = [self._scatter.show()]
            if self.show_panel:
                children.append(self._panel)
            row = w.HBox(children, layout=w.Layout(width="100%", align_items="flex-start"))
            parts = [w.HTML(f"<b>{self.title}</b>")] if self.title else []
            self._widget = w.VBox([*parts, row], layout=w.Layout(width="100%"))
        return self._widget

    def static_png(self, size: int = 480) -> bytes:
        """PNG of the map coloured as configured (the static fallback)."""
        by = "tag" if self._showing_tags() else "color"
        title = self.title or ""
        if self._dataset.synthetic:
            title = (title + " (synthetic data)").strip()
        return render_map_png(self._xy, self._df[by], size=size, title=title)

    def __repr__(self) -> str:
        return (
            f"Explorer(n_points={self.n_points}, selected={len(self._selected)}, "
            f"tags={list(self._tags)})"
        )
