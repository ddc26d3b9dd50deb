"""Figures that put images on a map: a thumbnail grid over the map (Figure 5b of
the paper) and call-outs of the images near chosen points.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tsimcne_nb._indices import take_rows
from tsimcne_nb.data.core import synthetic_title
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.validation import check_embedding
from tsimcne_nb.viz.figures import (
    _default_size,
    _new_figure,
    _precheck,
    class_colors,
    plot_map,
    save_figure,
)

__all__ = ["thumbnail_grid_over_map", "callouts"]


# ---------------------------------------------------------------- Figure 5b
def _read_images(dataset: Any, idx: np.ndarray) -> np.ndarray:
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size == 0:
        return np.empty((0, *dataset.image_shape), np.uint8)
    return take_rows(dataset.images, idx)


def _check_pair(embedding: Any, dataset: Any) -> np.ndarray:
    X = check_embedding(embedding, dim=2)
    if not hasattr(dataset, "images"):
        raise DataError("dataset must be an ImageDataset (the images to show).")
    if len(dataset) != len(X):
        raise DataError(
            f"embedding has {len(X)} points but the dataset {len(dataset)} images; pass the map "
            "of exactly this dataset (same order)."
        )
    return X


def thumbnail_grid_over_map(
    embedding: Any,
    dataset: Any,
    grid: int = 10,
    min_count: int | None = None,
    ax: Any = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    title: str | None = None,
    show_points: bool = True,
    frame_width: float = 2.0,
) -> Any:
    """One image per grid square of the map (the paper's Figure 5b).

    A ``grid x grid`` lattice of square cells covers the map; in each cell with at
    least ``min_count`` points the image of the point closest to the cell centre
    is drawn, framed in its class colour.  Cells with fewer points stay empty.

    Parameters
    ----------
    embedding
        (N, 2) map of ``dataset``.
    dataset
        The :class:`~tsimcne_nb.data.core.ImageDataset` that was embedded.
    grid
        Cells per side (the paper: 10).
    min_count
        Minimum points in a cell to show an image.  Default ``max(1, N // 3000)``,
        i.e. about 100 for PCam's 327k images as in the paper.
    ax, path, overwrite, title
        As in :func:`plot_map`.
    show_points
        Draw the map faintly underneath.
    frame_width
        Line width of the class-coloured frames.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Rectangle

    X = _check_pair(embedding, dataset)
    if int(grid) < 1:
        raise ConfigError(f"grid must be >= 1; got {grid}.")
    grid = int(grid)
    _precheck(path, overwrite)
    n = len(X)
    min_count = max(1, n // 3000) if min_count is None else int(min_count)
    span = float(max(np.ptp(X[:, 0]), np.ptp(X[:, 1]), 1e-12))
    centre = (X.min(axis=0) + X.max(axis=0)) / 2
    lo = centre - span / 2
    cell = span / grid
    ij = np.clip(np.floor((X - lo) / cell).astype(int), 0, grid - 1)
    flat = ij[:, 0] * grid + ij[:, 1]
    counts = np.bincount(flat, minlength=grid * grid)
    chosen_cells = np.flatnonzero(counts >= min_count)
    picks = []
    for cidx in chosen_cells:
        members = np.flatnonzero(flat == cidx)
        cc = lo + (np.array([cidx // grid, cidx % grid]) + 0.5) * cell
        picks.append(members[np.argmin(((X[members] - cc) ** 2).sum(axis=1))])
    picks = np.asarray(picks, dtype=np.int64)
    images = _read_images(dataset, picks)
    if ax is None:
        fig = _new_figure((7.0, 6.5))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    labels = getattr(dataset, "labels", None)
    colors = class_colors(max(dataset.n_classes, 1)) if labels is not None else None
    if show_points:
        ax.scatter(X[:, 0], X[:, 1], s=_default_size(n) / 2, c="0.85", lw=0, rasterized=n > 5000)
    pad = 0.06 * cell
    for p, img in zip(picks, images, strict=True):
        cidx = flat[p]
        x0, y0 = lo + np.array([cidx // grid, cidx % grid]) * cell
        ax.imshow(img, extent=(x0 + pad, x0 + cell - pad, y0 + pad, y0 + cell - pad),
                  interpolation="nearest", zorder=2)
        color = colors[labels[p]] if colors is not None else "0.3"
        ax.add_patch(Rectangle((x0 + pad, y0 + pad), cell - 2 * pad, cell - 2 * pad, fill=False,
                               ec=color, lw=frame_width, zorder=3))
    ax.set_xlim(lo[0], lo[0] + span)
    ax.set_ylim(lo[1], lo[1] + span)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if labels is not None:
        from matplotlib.lines import Line2D

        present = np.unique(labels[picks]) if len(picks) else []
        handles = [Line2D([], [], ls="", marker="s", mfc="none", mec=colors[c], mew=2, ms=8,
                          label=dataset.class_names[c]) for c in present]
        if handles:
            ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5),
                      frameon=False, fontsize=8)
    if title is None:
        title = (f"{getattr(dataset, 'name', '')}: one image per {grid}x{grid} cell "
                 f"with >= {min_count} points")
    title = synthetic_title(title, getattr(dataset, "synthetic", False))
    ax.set_title(title, fontsize=10)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


# ---------------------------------------------------------------- Figure 4
def _callout_groups(
    X: np.ndarray, points: Any, n_images: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(anchor xy, indices of the images shown) for each callout."""
    n = len(X)
    arr = np.asarray(points)
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    if arr.dtype == np.bool_:
        if arr.shape != (n,):
            raise DataError(
                f"a boolean selection must have one entry per point, shape ({n},); got {arr.shape}."
            )
        sel = np.flatnonzero(arr)
        if sel.size == 0:
            raise DataError("the boolean selection is empty; select at least one point.")
        centroid = X[sel].mean(axis=0)
        anchor = X[sel[np.argmin(((X[sel] - centroid) ** 2).sum(axis=1))]]
        shown = np.sort(rng.choice(sel, size=min(n_images, sel.size), replace=False))
        return [(anchor, shown)]
    if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer):
        if arr.size == 0:
            raise DataError("no points given; pass indices, (x, y) pairs or a boolean selection.")
        if arr.min() < -n or arr.max() >= n:
            raise DataError(f"point indices must lie in [0, {n}); got {arr.min()}..{arr.max()}.")
        anchors = X[arr]
    elif arr.ndim == 2 and arr.shape[1] == 2 and np.issubdtype(arr.dtype, np.number):
        if not np.all(np.isfinite(arr)):
            raise DataError("callout coordinates must be finite numbers.")
        anchors = arr.astype(np.float64)
    else:
        raise DataError(
            "points must be integer indices (shape (k,)), coordinates (shape (k, 2)) or a boolean "
            f"selection (shape ({n},)); got dtype {arr.dtype} shape {arr.shape}."
        )
    for a in anchors:
        d = ((X - a) ** 2).sum(axis=1)
        shown = np.argsort(d, kind="stable")[:n_images]  # the images nearest the chosen point
        groups.append((X[shown[0]] if arr.ndim == 1 else a, shown))
    return groups


def callouts(
    embedding: Any,
    dataset: Any,
    points: Any,
    n_images: int = 3,
    ax: Any = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    title: str | None = None,
    other_threshold: int | None = None,
    zoom: float | None = None,
    random_state: int | None = 0,
) -> Any:
    """The map with image call-outs at chosen places (the paper's Figure 4).

    Parameters
    ----------
    embedding
        (N, 2) map of ``dataset``.
    dataset
        The embedded :class:`~tsimcne_nb.data.core.ImageDataset`.
    points
        Where to call out; one of

        * coordinates ``[(x, y), ...]`` -- the ``n_images`` points nearest each;
        * integer indices ``[i, j, ...]`` -- the point and its nearest neighbours;
        * a boolean selection of length N (e.g. from the Explorer widget) -- one
          call-out with ``n_images`` random members, anchored at its central point.

        Nothing is hard-coded: pick places from your own map.
    n_images
        Images per call-out.
    ax, path, overwrite, title, other_threshold
        As in :func:`plot_map`.
    zoom
        Image magnification (default: about 0.5 inch per image).
    random_state
        Seed for the members shown of a boolean selection.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    X = _check_pair(embedding, dataset)
    if int(n_images) < 1:
        raise ConfigError(f"n_images must be >= 1; got {n_images}.")
    _precheck(path, overwrite)
    groups = _callout_groups(X, points, int(n_images), np.random.default_rng(random_state))
    if ax is None:
        fig = _new_figure((8.0, 7.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    plot_map(X, dataset.labels, dataset.class_names, ax=ax, other_threshold=other_threshold,
             title=title)
    h, w = dataset.image_shape[:2]
    gap = max(1, w // 14)
    zoom = (0.5 * fig.dpi / w) if zoom is None else float(zoom)
    centre = (X.min(axis=0) + X.max(axis=0)) / 2
    for anchor, shown in groups:
        imgs = _read_images(dataset, shown)
        strip = np.full((h, len(imgs) * (w + gap) - gap, 3), 255, np.uint8)
        for j, img in enumerate(imgs):
            strip[:, j * (w + gap) : j * (w + gap) + w] = img
        # place the strip outside the map, in the direction of the anchor from the centre
        direction = np.asarray(anchor) - centre
        norm = float(np.hypot(*direction)) or 1.0
        ux, uy = direction / norm
        # kept inside the axes (boxes outside are clipped by the figure edge)
        box_xy = (float(np.clip(0.5 + 0.6 * ux, 0.12, 0.88)), float(np.clip(0.5 + 0.6 * uy, 0.08, 0.92)))
        ab = AnnotationBbox(
            OffsetImage(strip, zoom=zoom, interpolation="nearest"), tuple(anchor),
            xybox=box_xy, xycoords="data", boxcoords="axes fraction",
            arrowprops={"arrowstyle": "-", "color": "0.2", "lw": 0.8}, pad=0.15,
            bboxprops={"ec": "0.3"}, annotation_clip=False,
        )
        ax.add_artist(ab)
    if getattr(dataset, "synthetic", False):
        ax.set_title(synthetic_title(title or "", True), fontsize=10)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig
