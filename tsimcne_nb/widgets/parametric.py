"""What only a parametric map can show: an image's augmentations, its feature neighbours, new images.

t-SimCNE's map is a network: it was trained on augmented views and it can place images it
never saw.  :class:`ParametricPanel`, beside an :class:`~tsimcne_nb.widgets.Explorer`, shows
for the focused image (the thumbnail last clicked)

* its **training augmentations**: an :class:`~tsimcne_nb.widgets.AugmentationGallery`
  bound to the model's own augmentation object (``TSimCNE.augmentation_``);
* its ``k`` **nearest neighbours in the network's feature space** next to its ``k``
  nearest neighbours **on the map**, the shared ones outlined, with the overlap
  against the map-wide distribution of overlaps (a low overlap is where the 2-D map
  distorts the features); a button selects the feature neighbours on the map so
  you see where they landed;
* a file **upload** (and :meth:`ParametricPanel.place` from Python): new images are
  placed with ``model.transform`` through ``Explorer.add_points`` and highlighted.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.widgets._panel import ExplorerPanel

__all__ = ["ParametricPanel", "feature_neighbours"]

_METRICS = ("cosine", "euclidean")
#: thumbnails of the neighbour rows, in pixels
NEIGHBOUR_SIZE = 48


def _prepare(features: np.ndarray, metric: str) -> np.ndarray:
    x: np.ndarray = np.asarray(features, dtype=np.float32)
    if metric == "cosine":
        norm = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.where(norm > 0, norm, 1.0)
    return x


def feature_neighbours(
    features: np.ndarray, query: Sequence[int] | np.ndarray, k: int = 15, metric: str = "cosine"
) -> np.ndarray:
    """The ``k`` nearest neighbours (itself excluded) of some points in a feature space.

    Brute force in blocks of the data: exact, and for one query about 50 ms on 200k
    points of 512 features.

    Parameters
    ----------
    features : numpy.ndarray
        ``(N, F)`` features (e.g. ``TSimCNE.features(images)``).
    query : sequence of int or numpy.ndarray
        Positions of the points whose neighbours are wanted.
    k : int
        Neighbours per point.
    metric : str
        ``"cosine"`` or ``"euclidean"``.

    Returns
    -------
    ndarray
        ``(len(query), k)`` positions, nearest first.
    """
    if metric not in _METRICS:
        raise ConfigError(f"metric must be one of {_METRICS}; got {metric!r}.")
    return _knn(_prepare(features, metric), query, k, metric)


def _knn(x: np.ndarray, query: Any, k: int, metric: str) -> np.ndarray:
    """:func:`feature_neighbours` on features already :func:`_prepare`-d."""
    q = np.asarray(query, dtype=np.int64).reshape(-1)
    n = len(x)
    k = min(int(k), n - 1)
    if k < 1:
        raise DataError(f"need at least 2 points with features for neighbours; got {n}.")
    xq = x[q]
    best_d = np.full((len(q), 0), np.inf, np.float32)
    best_i = np.empty((len(q), 0), np.int64)
    block = 65536
    sq = (x * x).sum(axis=1) if metric == "euclidean" else None
    for start in range(0, n, block):
        xb = x[start : start + block]
        dots = xq @ xb.T
        if metric == "cosine":
            d = 1.0 - dots
        else:
            assert sq is not None  # computed above for the euclidean metric
            d = sq[start : start + block][None, :] - 2 * dots  # + |q|^2: same for every candidate
        idx = np.arange(start, start + len(xb))
        d[q[:, None] == idx[None, :]] = np.inf  # not itself
        cand_d = np.concatenate([best_d, d], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(idx, d.shape)], axis=1)
        keep = np.argpartition(cand_d, min(k, cand_d.shape[1] - 1), axis=1)[:, :k]
        best_d = np.take_along_axis(cand_d, keep, axis=1)
        best_i = np.take_along_axis(cand_i, keep, axis=1)
    order = np.argsort(best_d, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, axis=1)


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _decode_upload(content: bytes, shape: tuple[int, ...], name: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(bytes(content)))
        img.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{name!r} is not an image PIL can read (PNG, JPEG, TIFF...).") from exc
    h, w = shape[:2]
    # the map's images all have one size: add_points needs it (bilinear, like transform's resize)
    rgb = img.convert("RGB").resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


class ParametricPanel(ExplorerPanel):
    """Augmentations, feature-space vs map neighbours and placing new images, for the focused point.

    Parameters
    ----------
    explorer : Explorer
        A :class:`~tsimcne_nb.widgets.Explorer`.
    model : TSimCNE or None
        The fitted ``TSimCNE`` that made the map (default ``explorer.model``): its
        ``augmentation_`` for the gallery, ``features`` for the neighbours (unless
        ``features`` is given) and ``transform`` for new images.
    features : numpy.ndarray or None
        Precomputed ``(N, F)`` backbone features of the dataset's images; default
        ``model.features(dataset)``, computed once at the first click.
    k : int
        Neighbours in each space.
    metric : str
        Feature-space metric, ``"cosine"`` or ``"euclidean"``.
    n_views : int
        Augmented views in the gallery.
    baseline : int
        Points sampled once to show the map-wide distribution of overlaps (0: none).
    random_state : int or None
        Seed of the baseline sample and the gallery.

    Notes
    -----
    The panel observes ``explorer.panel.focused``: a click on a thumbnail (or
    ``explorer.focus(i)``) shows that point.
    """

    TITLE = "what only a parametric map shows"

    def __init__(
        self,
        explorer: Any,
        model: Any = None,
        features: np.ndarray | None = None,
        k: int = 15,
        metric: str = "cosine",
        n_views: int = 8,
        baseline: int = 200,
        random_state: int | None = 0,
    ) -> None:
        from tsimcne_nb.data.core import as_dataset

        self.explorer = explorer
        # duck-typed: any fitted estimator with features/transform/augmentation_
        self.model: Any = model if model is not None else getattr(explorer, "model", None)
        self.features = features
        self.k = k
        self.metric = metric
        self.n_views = n_views
        self.baseline = baseline
        self.random_state = random_state
        if metric not in _METRICS:
            raise ConfigError(f"metric must be one of {_METRICS}; got {metric!r}.")
        if int(k) < 1:
            raise ConfigError(f"k must be >= 1; got {k}.")
        self._dataset = as_dataset(explorer.dataset)
        n = len(self._dataset)
        if features is not None:
            f = np.asarray(features)
            if f.ndim != 2 or len(f) != n:
                raise DataError(
                    f"features must be (N, F) with one row per image ({n}); got shape {f.shape}."
                )
            self._features: np.ndarray | None = f
        else:
            if self.model is None or not callable(getattr(self.model, "features", None)):
                raise ConfigError(
                    "ParametricPanel needs features: pass features= (N, F) or a fitted model "
                    "with a features(images) method (model= here or Explorer(..., model=))."
                )
            self._features = None  # computed at the first click
        self._extra_features: list[np.ndarray] = []
        self._prepared: np.ndarray | None = None  # normalised once, not per click
        self._tree: Any = None
        self._n_tree = -1
        self._baseline: np.ndarray | None = None
        self.gallery: Any = None
        self.index = -1
        self.result: dict[str, Any] | None = None
        self._widget: Any = None
        self._attached = False
        self._info: Any = None
        self._gallery_box: Any = None
        self._status: Any = None
        explorer.panel.observe(self._on_focus, names=["focused"])

    # ------------------------------------------------------------- compute
    def _all_features(self) -> np.ndarray:
        """Prepared (normalised for cosine) features of every point that has them."""
        if self._features is None:
            self._features = np.asarray(self.model.features(self._dataset))
        if self._prepared is None:
            self._prepared = _prepare(np.concatenate([self._features, *self._extra_features]), self.metric)
        return self._prepared

    def _map_xy(self) -> np.ndarray:
        ex = self.explorer
        xy = np.asarray(ex.embedding, dtype=np.float64)
        n_base, n = len(xy), ex.n_points
        if n > n_base:
            extra = ex.selection_frame(np.arange(n_base, n))
            xy = np.concatenate([xy, extra[["x", "y"]].to_numpy(np.float64)])
        return xy

    def _map_tree(self):
        from scipy.spatial import cKDTree

        n = self.explorer.n_points
        if self._tree is None or self._n_tree != n:
            self._xy = self._map_xy()
            self._tree = cKDTree(self._xy)
            self._n_tree = n
        return self._tree

    def _map_neighbours(self, query: np.ndarray, k: int, n_feat: int) -> np.ndarray:
        tree = self._map_tree()
        # a few extra: neighbours without features (added by hand) are skipped
        kk = min(k + 1 + (len(self._xy) - n_feat), len(self._xy))
        _, nbr = tree.query(self._xy[query], k=kk)
        nbr = np.asarray(nbr).reshape(len(query), -1)
        out = []
        for q, row in zip(query, nbr, strict=True):
            row = row[(row != q) & (row < n_feat)]
            out.append(row[:k])
        return np.asarray(out)

    def neighbours(self, index: int) -> dict[str, Any]:
        """Feature-space and map neighbours of one point and their overlap.

        Parameters
        ----------
        index : int
            Position in the map.

        Returns
        -------
        dict
            ``feature`` and ``map`` (``k`` positions each, nearest first), ``shared``
            (positions in both), ``overlap`` (``len(shared) / k``) and ``k``.
        """
        index = int(index)
        if not 0 <= index < self.explorer.n_points:
            raise DataError(f"index must lie in [0, {self.explorer.n_points - 1}]; got {index}.")
        feats = self._all_features()
        if index >= len(feats):
            raise DataError(
                f"point {index} has no features: it was added with Explorer.add_points outside "
                "this panel. Add images with ParametricPanel.place to get their features."
            )
        k = min(int(self.k), len(feats) - 1)
        f_nn = _knn(feats, [index], k, self.metric)[0]
        m_nn = self._map_neighbours(np.array([index]), k, len(feats))[0]
        shared = np.intersect1d(f_nn, m_nn)
        return {
            "index": index,
            "feature": f_nn,
            "map": m_nn,
            "shared": shared,
            "overlap": len(shared) / k,
            "k": k,
        }

    def baseline_overlaps(self) -> np.ndarray:
        """Overlaps of ``baseline`` random points (computed once): what is typical on this map.

        Returns
        -------
        ndarray
            One overlap in [0, 1] per sampled point.
        """
        if self._baseline is None:
            feats = self._all_features()
            n = len(feats)
            m = min(int(self.baseline), n)
            if m < 1:
                self._baseline = np.empty(0)
                return self._baseline
            rng = np.random.default_rng(self.random_state)
            q = np.sort(rng.choice(n, size=m, replace=False))
            k = min(int(self.k), n - 1)
            f_nn = _knn(feats, q, k, self.metric)
            m_nn = self._map_neighbours(q, k, n)
            self._baseline = np.array(
                [len(np.intersect1d(a, b)) / k for a, b in zip(f_nn, m_nn, strict=True)]
            )
        return self._baseline

    # ------------------------------------------------------------- actions
    def show(self, index: int) -> dict[str, Any]:
        """Show one point: its augmentations, its two neighbour rows and the overlap.

        Parameters
        ----------
        index : int
            Position in the map.

        Returns
        -------
        dict
            As :meth:`neighbours`.
        """
        self.result = self.neighbours(index)
        self.index = int(index)
        if index < len(self._dataset) and self._can_augment():
            from tsimcne_nb.widgets.gallery import AugmentationGallery

            if self.gallery is None:
                self.gallery = AugmentationGallery.from_model(
                    self.model,
                    self._dataset,
                    indices=[index],
                    n_views=int(self.n_views),
                    random_state=self.random_state,
                )
                if self._gallery_box is not None:
                    self._gallery_box.children = [self.gallery.widget]
            else:
                self.gallery.show_images([index])
        if self._info is not None:
            self._info.value = self.html()
        return self.result

    def _can_augment(self) -> bool:
        m = self.model
        return m is not None and (
            getattr(m, "augmentation_", None) is not None or getattr(m, "augment", None) is not None
        )

    def select_feature_neighbours(self) -> np.ndarray:
        """Select the shown point and its feature neighbours on the map (where did they land?).

        Returns
        -------
        ndarray
            The selected positions.
        """
        if self.result is None:
            raise DataError("no point shown yet: click a thumbnail (or call show(index)) first.")
        idx = np.unique(np.r_[self.result["index"], self.result["feature"]])
        self.explorer.select(idx)
        return idx

    def place(self, images: Any, names: Sequence[str] | None = None) -> np.ndarray:
        """Place new images on the map with ``model.transform`` and highlight (select) them.

        Parameters
        ----------
        images : numpy.ndarray or ImageDataset
            uint8 ``(M, H, W, 3)`` in the map's image size.
        names : sequence of str or None
            Shown in the status line (e.g. the uploaded file names).

        Returns
        -------
        ndarray
            The new points' positions in the map.
        """
        if self.model is None or not callable(getattr(self.model, "transform", None)):
            raise ConfigError(
                "placing images needs a fitted model with transform(images): pass model= to the panel."
            )
        feats = self._all_features()  # before the map grows: features stay row-aligned
        # add_points selects the new points and keeps them selected when jupyter-scatter's
        # front-end answers the new data with an empty selection
        new = self.explorer.add_points(images, model=self.model)
        if callable(getattr(self.model, "features", None)) and len(feats) == new[0]:
            self._extra_features.append(np.asarray(self.model.features(np.asarray(images))))
            self._prepared = None
        if self._status is not None:
            what = ", ".join(names) if names else f"{len(new)} image(s)"
            self._status.value = (
                f'<span class="tsimcne-placed" data-indices="{",".join(map(str, new))}">'
                f"placed {_esc(what)} as point(s) {', '.join(map(str, new))} (selected, "
                "category 'new')</span>"
            )
        return new

    def _on_upload(self, change: dict) -> None:
        files = change["new"]
        if not files:
            return
        try:
            shape = tuple(self._dataset.image_shape)
            imgs = np.stack([_decode_upload(f["content"], shape, f["name"]) for f in files])
            self.place(imgs, names=[f["name"] for f in files])
        except (DataError, ConfigError) as exc:
            if self._status is not None:
                self._status.value = f'<span class="tsimcne-error">{_esc(exc)}</span>'
            else:
                raise

    def _on_focus(self, change: dict) -> None:
        i = int(change["new"])
        if i < 0:
            return
        try:
            self.show(i)
        except DataError as exc:
            if self._info is not None:
                self._info.value = f'<div class="tsimcne-param"><i>{_esc(exc)}</i></div>'

    # ------------------------------------------------------------- display
    def _thumb_row(self, idx: np.ndarray, shared: np.ndarray, kind: str) -> str:
        from tsimcne_nb.widgets.thumbnails import png_data_uri

        names = self.explorer.selection_frame(idx)["label_name"].tolist() if len(idx) else []
        cells = []
        for i, name in zip(idx, names, strict=True):
            is_shared = bool(np.isin(i, shared))
            img = self._image(int(i))
            src = png_data_uri(img, NEIGHBOUR_SIZE) if img is not None else ""
            border = "#009E73" if is_shared else "transparent"
            cells.append(
                f'<img class="tsimcne-nn tsimcne-nn-{kind}" data-index="{int(i)}" '
                f'data-shared="{int(is_shared)}" src="{src}" width="{NEIGHBOUR_SIZE}" '
                f'height="{NEIGHBOUR_SIZE}" title="#{int(i)} {_esc(name)}" alt="#{int(i)}" '
                f'style="display:inline-block;image-rendering:pixelated;border:3px solid {border};margin:1px">'
            )
        return "".join(cells)

    def _image(self, i: int) -> np.ndarray | None:
        from tsimcne_nb.widgets.explain import _read_image

        return _read_image(self.explorer, self._dataset, i)

    def _overlap_svg(self, overlap: float, k: int, width: int = 260, height: int = 50) -> str:
        base = self.baseline_overlaps()
        bins = np.linspace(0, 1, k + 2)  # one bin per count 0..k
        counts = np.histogram(base, bins=bins)[0] if len(base) else np.zeros(k + 1)
        top = max(counts.max(), 1)
        bw = width / (k + 1)
        parts = [
            f'<svg class="tsimcne-overlap" data-overlap="{overlap:.4f}" width="{width}" '
            f'height="{height + 12}" xmlns="http://www.w3.org/2000/svg" font-size="9" '
            'font-family="sans-serif">'
        ]
        for j, c in enumerate(counts):
            h = c / top * height
            parts.append(
                f'<rect x="{j * bw:.1f}" y="{height - h:.1f}" width="{bw - 1:.1f}" '
                f'height="{h:.1f}" fill="#bbb"/>'
            )
        x = (round(overlap * k) + 0.5) * bw
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height}" stroke="#D55E00" stroke-width="3"/>'
            f'<text x="0" y="{height + 10}">0 shared</text>'
            f'<text x="{width}" y="{height + 10}" text-anchor="end">{k} shared</text></svg>'
        )
        return "".join(parts)

    def html(self) -> str:
        """The neighbour rows and the overlap figure of the shown point, as HTML."""
        r = self.result
        if r is None:
            return (
                '<div class="tsimcne-param" data-index="-1"><i>Click a thumbnail to see its '
                "training augmentations and its neighbours in feature space and on the map."
                "</i></div>"
            )
        k, n_shared = r["k"], len(r["shared"])
        base = self.baseline_overlaps()
        typical = (
            f" (typical on this map: {np.median(base) * k:.0f} of {k})" if len(base) else ""
        )
        return (
            f'<div class="tsimcne-param" data-index="{r["index"]}" data-shared="{n_shared}">'
            f"<b>#{r['index']}</b>: {n_shared} of its {k} nearest neighbours in the network's "
            f"feature space are also among its {k} nearest on the map{typical}. "
            "Shared ones are outlined in green."
            f'<div><b>feature space</b> ({self.metric})</div>'
            f'<div class="tsimcne-nn-row">{self._thumb_row(r["feature"], r["shared"], "feature")}</div>'
            '<div><b>map</b></div>'
            f'<div class="tsimcne-nn-row">{self._thumb_row(r["map"], r["shared"], "map")}</div>'
            "<div>overlap of this point (line) among random points of the map (grey)</div>"
            f"{self._overlap_svg(r['overlap'], k)}</div>"
        )

    @property
    def widget(self):
        """The panel: neighbours and overlap, the gallery, and the upload (ipywidgets)."""
        if self._widget is None:
            import ipywidgets as w

            self._info = w.HTML(self.html())
            select = w.Button(
                description="select feature neighbours on the map",
                tooltip="where did the network's nearest neighbours land on the map?",
                layout=w.Layout(width="auto"),
            )
            select.on_click(lambda _b: self.result is not None and self.select_feature_neighbours())
            upload = w.FileUpload(
                accept="image/*", multiple=True, description="place images", layout=w.Layout(width="auto")
            )
            upload.observe(self._on_upload, names=["value"])
            self._status = w.HTML("")
            self._gallery_box = w.VBox([self.gallery.widget] if self.gallery is not None else [])
            self._widget = w.VBox(
                [
                    self._info,
                    w.HBox([select, upload, self._status], layout=w.Layout(align_items="center")),
                    w.HTML(
                        "<b>training augmentations</b> of the clicked image, drawn by the "
                        "model's own augmentation object"
                    ),
                    self._gallery_box,
                ],
                layout=w.Layout(width="100%"),
            )
            self._widget.add_class("tsimcne-parametric")
        return self._widget

    def __repr__(self) -> str:
        shown = "nothing shown" if self.result is None else (
            f"#{self.index}: {len(self.result['shared'])} of {self.result['k']} neighbours shared"
        )
        return f"ParametricPanel(k={self.k}, metric={self.metric!r}, {shown})"
