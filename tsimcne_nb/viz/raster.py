"""Numpy rasterisation of 2-D maps: the static PNG of a map (fast for a million points).

The one raster helper of the package: the widgets' static fallback (nbconvert, static
HTML) and :meth:`~tsimcne_nb.widgets.explorer.Explorer.save_html` draw through it, in the
palette of :mod:`tsimcne_nb.viz.palette`, so the picture and the live map agree.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from tsimcne_nb.viz.palette import category_colors

__all__ = ["render_map_png"]

#: category of points that carry no tag (drawn light grey in a tag view)
UNTAGGED = "untagged"


def render_map_png(
    xy: np.ndarray,
    values: pd.Series | np.ndarray | None = None,
    size: int = 480,
    title: str = "",
) -> bytes:
    """PNG of a 2-D map, rasterised with numpy (fast for a million points).

    Categorical ``values`` are coloured with the explorer's palette and listed in
    a legend; numeric ones with viridis.  Used as the static fallback wherever no
    widget front-end runs (nbconvert, static HTML).
    """
    from PIL import Image, ImageDraw

    xy = np.asarray(xy, dtype=np.float64)
    pad = 12
    legend_w = 0
    rgb = np.full((len(xy), 3), 0.2)
    legend: list[tuple[str, tuple[float, float, float]]] = []
    if values is not None:
        ser = pd.Series(values)
        if isinstance(ser.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(ser):
            cat = pd.Categorical(ser)
            pal = np.asarray(category_colors(max(len(cat.categories), 1)))
            names = [str(c) for c in cat.categories]
            if UNTAGGED in names:  # tag view: tags in colour, the rest light grey
                tagged = [c for c in names if c != UNTAGGED]
                tp = category_colors(max(len(tagged), 1))
                pal = np.asarray(
                    [(0.82, 0.82, 0.82) if c == UNTAGGED else tp[tagged.index(c)] for c in names]
                )
            codes = cat.codes
            rgb = np.where(codes[:, None] >= 0, pal[np.maximum(codes, 0)], 0.5)
            legend = [(str(c), tuple(pal[i])) for i, c in enumerate(cat.categories)][:20]
            legend_w = 140 if legend else 0
        else:
            from matplotlib import colormaps

            v = ser.to_numpy(dtype=np.float64)
            lo, hi = np.nanmin(v), np.nanmax(v)
            rgb = colormaps["viridis"]((v - lo) / (hi - lo if hi > lo else 1.0))[:, :3]
    canvas = np.full((size, size + legend_w, 3), 255, dtype=np.uint8)
    if len(xy):
        lo = xy.min(axis=0)
        span = np.maximum(xy.max(axis=0) - lo, 1e-12)
        scale = (size - 2 * pad - 1) / span.max()
        px = ((xy - lo) * scale + pad + (size - 2 * pad - span * scale) / 2).astype(np.int64)
        cols = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
        # 2x2 dots so that sparse maps are visible; later points are drawn on top
        for dx in (0, 1):
            for dy in (0, 1):
                canvas[
                    np.clip(size - 1 - px[:, 1] - dy, 0, size - 1),
                    np.clip(px[:, 0] + dx, 0, size - 1),
                ] = cols
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    if title:
        draw.text((pad, 2), title, fill=(0, 0, 0))
    for i, (name, col) in enumerate(legend):
        y = pad + 14 * i
        c = tuple(int(255 * v) for v in col)
        draw.rectangle([size + 4, y + 2, size + 12, y + 10], fill=c)
        draw.text((size + 16, y), name[:18], fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
