"""Static figures: contact sheets, maps, the paper's Figures 2, 4 and 5.

Every function returns a :class:`matplotlib.figure.Figure` made *without*
pyplot (``matplotlib.figure.Figure`` directly), so nothing depends on a GUI
backend or a display: on a headless machine it renders with Agg, in Jupyter the
returned figure is shown inline, and figures made in a loop are not kept alive
by pyplot's global state.  Pass ``ax=`` to draw into your own axes instead.

With ``path=`` the figure is also written as a PNG atomically (temporary file +
rename, :func:`tsimcne_nb._io.atomic_open`); an existing file is never replaced
unless ``overwrite=True``.

matplotlib is imported inside the functions: ``import tsimcne_nb`` stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tsimcne_nb._indices import take_rows
from tsimcne_nb._io import atomic_open, check_can_write
from tsimcne_nb.data.core import synthetic_title
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.validation import check_embedding, validate_labels
from tsimcne_nb.viz.palette import OTHER_COLOR as _OTHER_HEX
from tsimcne_nb.viz.palette import category_colors

__all__ = ['class_colors', 'contact_sheet', 'plot_map', 'plot_panels', 'save_figure']

#: colour of the merged small classes ("other"), as in the paper's Figure 2
OTHER_COLOR = (*(int(_OTHER_HEX[i : i + 2], 16) / 255 for i in (1, 3, 5)), 1.0)


# ------------------------------------------------------------------ helpers
def _new_figure(figsize: tuple[float, float], dpi: int = 100) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=dpi, layout="constrained")


def save_figure(fig: Any, path: str | os.PathLike, overwrite: bool = False, dpi: int = 150) -> str:
    """Write ``fig`` as PNG to ``path`` atomically; refuse to replace a file unless ``overwrite``."""
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    return str(path)


def _precheck(path: str | os.PathLike | None, overwrite: bool) -> None:
    # fail before doing the work, not after
    if path is not None:
        check_can_write(path, overwrite)


def class_colors(n_classes: int) -> list[tuple[float, float, float, float]]:
    """RGBA colour per class index: :func:`tsimcne_nb.viz.palette.category_colors` (the
    palette the explorer uses too), with alpha 1."""
    return [(*rgb, 1.0) for rgb in category_colors(n_classes)]


def _legend_groups(
    labels: np.ndarray, class_names: Sequence[str] | None, other_threshold: int | None
) -> tuple[np.ndarray, list[str], list[tuple[float, ...]]]:
    """Map each point to a drawing group; groups are classes, small ones merged into 'other'.

    Returns (group of each point, group names, group colours); the last group is
    'other' when any class is below ``other_threshold``.  Colours follow the class
    index, so one class has the same colour in every figure.
    """
    n_classes = int(labels.max()) + 1
    names = list(class_names) if class_names is not None else [str(i) for i in range(n_classes)]
    if len(names) < n_classes:
        raise DataError(
            f"label {n_classes - 1} has no class name: only {len(names)} class_names given."
        )
    counts = np.bincount(labels, minlength=n_classes)
    colors = class_colors(len(names))
    small = np.zeros(n_classes, bool)
    if other_threshold is not None:
        small = (counts < other_threshold) & (counts > 0)
    present = [c for c in range(n_classes) if counts[c] > 0 and not small[c]]
    group_of_class = np.full(n_classes, -1)
    for g, c in enumerate(present):
        group_of_class[c] = g
    gnames = [names[c] for c in present]
    gcolors = [colors[c] for c in present]
    if small.any():
        group_of_class[small] = len(present)
        gnames.append("other")
        gcolors.append(OTHER_COLOR)
    return group_of_class[labels], gnames, gcolors


def _default_size(n: int) -> float:
    # fewer points -> bigger dots; 20 at <=150 points, 0.5 at >=6000
    return float(np.clip(3000.0 / max(n, 1), 0.5, 20.0))


# ----------------------------------------------------------- contact sheet
def contact_sheet(
    dataset: Any,
    n_per_class: int = 10,
    max_classes: int = 10,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    title: str | None = None,
    random_state: int | None = 0,
) -> Any:
    """A labelled grid of example images: one row per class, the class name on the left.

    Parameters
    ----------
    dataset
        An :class:`~tsimcne_nb.data.core.ImageDataset`.
    n_per_class
        Images per row (fewer when a class has fewer images).
    max_classes
        At most this many rows (the first classes by index).  Unlabelled data
        gives ``max_classes`` rows of random images.
    path
        If given, the PNG is written there (atomically).
    overwrite
        Replace an existing file at ``path``.
    title
        Figure title; by default the dataset's name, size and number of classes.
        "synthetic" is always added for synthetic datasets.
    random_state
        Seed of the image choice.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if not hasattr(dataset, "images") or not hasattr(dataset, "class_names"):
        raise DataError(
            "contact_sheet needs an ImageDataset; wrap arrays with "
            "tsimcne_nb.data.core.as_dataset(images, labels)."
        )
    if int(n_per_class) < 1 or int(max_classes) < 1:
        raise ConfigError(
            f"n_per_class and max_classes must be >= 1; got {n_per_class} and {max_classes}."
        )
    _precheck(path, overwrite)
    rng = np.random.default_rng(random_state)
    n = len(dataset)
    rows: list[tuple[str, np.ndarray]] = []
    if dataset.labels is None:
        idx = np.sort(rng.choice(n, size=min(n, n_per_class * max_classes), replace=False))
        for r in range(0, len(idx), n_per_class):
            rows.append(("", idx[r : r + n_per_class]))
    else:
        classes = [c for c in range(dataset.n_classes) if np.any(dataset.labels == c)]
        for c in classes[:max_classes]:
            members = np.flatnonzero(dataset.labels == c)
            pick = np.sort(rng.choice(members, size=min(len(members), n_per_class), replace=False))
            name = dataset.class_names[c]
            rows.append((f"{name}\n(n={len(members)})", pick))
    all_idx = np.concatenate([r[1] for r in rows])
    images = take_rows(dataset.images, all_idx)  # one read of all chosen images
    h, w = dataset.image_shape[:2]
    gap = max(1, w // 14)
    fig = _new_figure((max(4.0, 0.75 * n_per_class + 1.8), 0.75 * len(rows) + 0.9))
    axes = fig.subplots(len(rows), 1, squeeze=False)[:, 0]
    pos = 0
    for ax, (name, idx) in zip(axes, rows, strict=True):
        # one strip per row, white gaps between images: far faster than one axes per image
        strip = np.full((h, n_per_class * (w + gap) - gap, 3), 255, np.uint8)
        for j in range(len(idx)):
            strip[:, j * (w + gap) : j * (w + gap) + w] = images[pos + j]
        pos += len(idx)
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    if title is None:
        title = f"{dataset.name}: {n} images, {dataset.n_classes} classes"
        if dataset.labels is not None and dataset.n_classes > max_classes:
            title += f" (first {max_classes} shown)"
    title = synthetic_title(title, getattr(dataset, "synthetic", False))
    fig.suptitle(title, fontsize=11)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


# --------------------------------------------------------------------- maps
def plot_map(
    embedding: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    ax: Any = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    other_threshold: int | None = None,
    s: float | None = None,
    legend: bool = True,
) -> Any:
    """Scatter plot of a 2-D map, coloured by class, with a legend.

    Parameters
    ----------
    embedding
        (N, 2) array.
    labels
        Integer class per point, or None (all grey).
    class_names
        Name of each class index (legend entries).
    title
        Axes title.
    ax
        Draw into these axes; by default a new figure.
    path, overwrite
        Write the figure as PNG (atomically; refuses to overwrite by default).
    other_threshold
        Classes with fewer points than this are drawn in black and merged into one
        legend entry "other" (the paper's Figure 2 'OTH').
    s
        Marker size; by default it shrinks with N.
    legend
        Draw the legend.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the axes.
    """
    X = check_embedding(embedding, dim=2)
    y = validate_labels(labels, len(X))
    _precheck(path, overwrite)
    if ax is None:
        fig = _new_figure((6.0, 5.0))
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    size = _default_size(len(X)) if s is None else float(s)
    rasterized = len(X) > 5000  # keeps PDFs/SVGs of large maps small
    if y is None:
        ax.scatter(X[:, 0], X[:, 1], s=size, c="0.4", lw=0, rasterized=rasterized)
    else:
        group, gnames, gcolors = _legend_groups(y, class_names, other_threshold)
        # shuffle the drawing order so no class is systematically painted over
        order = np.random.default_rng(0).permutation(len(X))
        cols = np.asarray(gcolors)[group[order]]
        ax.scatter(X[order, 0], X[order, 1], s=size, c=cols, lw=0, rasterized=rasterized)
        if legend:
            from matplotlib.lines import Line2D

            handles = [
                Line2D([], [], ls="", marker="o", ms=6, color=c, label=nm)
                for nm, c in zip(gnames, gcolors, strict=True)
            ]
            ax.legend(
                handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
                fontsize=8, handletextpad=0.2,
            )
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=10)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


def plot_panels(
    panels: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    ncols: int | None = None,
    other_threshold: int | None = None,
    suptitle: str | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    panel_size: float = 3.2,
    s: float | None = None,
) -> Any:
    """Several maps side by side, one legend (the paper's Figure 2).

    Parameters
    ----------
    panels
        Mapping ``title -> embedding`` or a sequence of ``(title, embedding)``;
        the titles usually carry the metrics (``"t-SimCNE\\nkNN 94.4%, sil 0.34"``).
        An object with a ``panels()`` method (a comparison result) is accepted.
    labels
        Class of each point, shared by all panels (same points, same order).
    class_names, other_threshold, s
        As in :func:`plot_map`.
    ncols
        Panels per row (default: up to 4).
    suptitle
        Figure title.
    path, overwrite
        Write the figure as PNG.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if hasattr(panels, "panels") and callable(panels.panels):
        panels = panels.panels()
    items = list(panels.items()) if isinstance(panels, Mapping) else list(panels)
    if not items:
        raise DataError("plot_panels got no panels; pass {title: embedding, ...}.")
    for it in items:
        if not (isinstance(it, (tuple, list)) and len(it) == 2):
            raise DataError(
                "panels must be a mapping title -> embedding or a list of (title, embedding) pairs."
            )
    _precheck(path, overwrite)
    n = len(items)
    ncols = min(n, 4) if ncols is None else max(1, int(ncols))
    nrows = int(np.ceil(n / ncols))
    fig = _new_figure((panel_size * ncols + 1.6, panel_size * nrows + 0.5))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for i, (ax, (t, emb)) in enumerate(zip(axes, items, strict=False)):
        plot_map(
            emb, labels, class_names=class_names, title=str(t), ax=ax,
            other_threshold=other_threshold, s=s, legend=(i == 0),
        )
    for ax in axes[n:]:
        ax.set_visible(False)
    # One legend for the whole figure, outside the grid: a legend attached to a panel makes
    # the constrained layout widen that panel's column and leaves gaps in the grid.
    panel_legend = axes[0].get_legend()
    if panel_legend is not None:
        handles = panel_legend.legend_handles
        texts = [t.get_text() for t in panel_legend.get_texts()]
        panel_legend.remove()
        fig.legend(handles, texts, loc="outside right center", frameon=False, markerscale=2)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig
