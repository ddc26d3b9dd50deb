"""Numpy rasterisation of 2-D maps: the static PNG of a map (fast for a million points).

The one raster helper of the package: the widgets' static fallback (nbconvert, static
HTML) and :meth:`~tsimcne_nb.widgets.explorer.Explorer.save_html` draw through it, in the
palette of :mod:`tsimcne_nb.viz.palette`, so the picture and the live map agree.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from tsimcne_nb.viz.palette import category_colors

__all__ = ["render_map_png"]

#: category of points that carry no tag (drawn light grey in a tag view)
UNTAGGED = "untagged"
#: outline colour of selected points (the live map's selection is drawn the same way)
SELECTION_COLOR = (0, 0, 0)


def _hex_rgb(h: str) -> tuple[float, float, float]:
    return (int(h[1:3], 16) / 255, int(h[3:5], 16) / 255, int(h[5:7], 16) / 255)


def render_map_png(
    xy: np.ndarray,
    values: pd.Series | np.ndarray | None = None,
    size: int = 480,
    title: str = "",
    colors: Mapping[str, str] | None = None,
    selected: np.ndarray | None = None,
    strip: Sequence[np.ndarray] = (),
    legend_title: str = "",
) -> bytes:
    """PNG of a 2-D map, rasterised with numpy (fast for a million points).

    Parameters
    ----------
    xy : numpy.ndarray
        ``(N, 2)`` coordinates.
    values : pandas.Series or numpy.ndarray, optional
        One value per point.  Categorical (or text) values are coloured by ``colors``
        (default: :func:`~tsimcne_nb.viz.palette.category_colors` over the categories,
        ``untagged`` light grey) and listed in a legend; numeric ones with viridis.
    size : int
        Height (and width) of the map in pixels.
    title : str
        Drawn above the map.
    colors : mapping of str to str, optional
        ``{category: "#rrggbb"}``: the live explorer passes its own map here, so the
        static picture and the live map agree.
    selected : numpy.ndarray, optional
        Indices of selected points: drawn larger, outlined and on top.
    strip : sequence of numpy.ndarray
        uint8 ``(H, W, 3)`` images (e.g. the selected points' thumbnails) shown in a row
        under the map.
    legend_title : str
        Heading of the legend (what the map is coloured by).

    Returns
    -------
    bytes
        The PNG file.
    """
    from PIL import Image, ImageDraw

    xy = np.asarray(xy, dtype=np.float64)
    pad = 12
    legend_w = 0
    rgb = np.full((len(xy), 3), 0.2)
    legend: list[tuple[str, tuple[float, float, float]]] = []
    if values is not None:
        ser = pd.Series(values).reset_index(drop=True)
        if isinstance(ser.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(ser):
            cat = pd.Categorical(ser)
            names = [str(c) for c in cat.categories]
            if colors is not None:
                missing = [c for c in names if c not in colors]
                if missing:
                    raise ValueError(f"colors has no colour for the categories {missing[:5]}.")
                pal = np.asarray([_hex_rgb(colors[c]) for c in names]).reshape(-1, 3)
            elif UNTAGGED in names:  # tag view: tags in colour, the rest light grey
                tagged = [c for c in names if c != UNTAGGED]
                tp = category_colors(max(len(tagged), 1))
                pal = np.asarray(
                    [(0.82, 0.82, 0.82) if c == UNTAGGED else tp[tagged.index(c)] for c in names]
                )
            else:
                pal = np.asarray(category_colors(max(len(names), 1)))
            codes = np.asarray(cat.codes)
            rgb = np.where(codes[:, None] >= 0, pal[np.maximum(codes, 0)], 0.5)
            present = set(np.unique(codes[codes >= 0]).tolist())
            legend = [(n, tuple(pal[i])) for i, n in enumerate(names) if i in present][:20]
            legend_w = 150 if legend else 0
        else:
            from matplotlib import colormaps

            v = ser.to_numpy(dtype=np.float64)
            lo, hi = np.nanmin(v), np.nanmax(v)
            rgb = colormaps["viridis"]((v - lo) / (hi - lo if hi > lo else 1.0))[:, :3]
    strip = [np.asarray(im, dtype=np.uint8) for im in strip]
    thumb = 48
    per_row = max(1, (size + legend_w - 2 * pad) // (thumb + 4))
    strip = strip[: 2 * per_row]
    strip_h = (-(-len(strip) // per_row)) * (thumb + 4) + 16 if strip else 0
    canvas = np.full((size + strip_h, size + legend_w, 3), 255, dtype=np.uint8)
    sel = np.zeros(len(xy), bool)
    if selected is not None and len(selected):
        sel[np.asarray(selected, np.int64)] = True
    if len(xy):
        lo = xy.min(axis=0)
        span = np.maximum(xy.max(axis=0) - lo, 1e-12)
        scale = (size - 2 * pad - 1) / span.max()
        px = ((xy - lo) * scale + pad + (size - 2 * pad - span * scale) / 2).astype(np.int64)
        cols = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)

        def dots(mask: np.ndarray, offsets: range, colour: np.ndarray) -> None:
            for dx in offsets:
                for dy in offsets:
                    canvas[
                        np.clip(size - 1 - px[mask, 1] - dy, 0, size - 1),
                        np.clip(px[mask, 0] + dx, 0, size - 1 + legend_w),
                    ] = colour

        # 2x2 dots so that sparse maps are visible; later points are drawn on top
        dots(~sel, range(2), cols[~sel])
        if sel.any():  # selected points on top: an outline, then the point in its colour
            dots(sel, range(-2, 4), np.asarray(SELECTION_COLOR, np.uint8))
            dots(sel, range(0, 2), cols[sel])
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((pad, 2), title, fill=(0, 0, 0))
    y0 = pad
    if legend and legend_title:
        draw.text((size + 4, y0 - 10), legend_title[:22], fill=(0, 0, 0))
        y0 += 6
    for i, (name, col) in enumerate(legend):
        y = y0 + 14 * i
        c = tuple(int(round(255 * v)) for v in col)
        draw.rectangle([size + 4, y + 2, size + 12, y + 10], fill=c)
        draw.text((size + 16, y), name[:18], fill=(0, 0, 0))
    if strip:
        draw.text((pad, size), f"selected: {int(sel.sum()) or len(strip)} points", fill=(0, 0, 0))
        for k, im in enumerate(strip):
            t = Image.fromarray(im[..., :3]).resize((thumb, thumb), Image.Resampling.NEAREST)
            row, col_ = divmod(k, per_row)
            img.paste(t, (pad + col_ * (thumb + 4), size + 14 + row * (thumb + 4)))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
