"""Honest static output of an explorer: a PNG and a self-contained HTML page.

Both show what the live view shows: the current colouring in the live palette (the same
``{category: colour}`` map), the selection outlined, the legend, the tags, and a strip of
the selected thumbnails.  Used where no widget front-end runs (nbconvert, static HTML)
and by :meth:`Explorer.save_html`.
"""

from __future__ import annotations

import base64
import html
import pathlib
from typing import Any

import numpy as np

from tsimcne_nb._io import atomic_write_text, check_can_write
from tsimcne_nb.viz.raster import render_map_png

#: thumbnails of the selection shown in the static outputs
STRIP_SIZE = 16


def _title(explorer: Any) -> str:
    ds = explorer._dataset
    title = explorer.title or ds.title
    if ds.synthetic and "synthetic" not in title.lower():
        title = f"{title} (synthetic data)"
    return title


def _strip_indices(explorer: Any) -> np.ndarray:
    return explorer._ordered_selection()[:STRIP_SIZE]


def explorer_png(explorer: Any, size: int = 480) -> bytes:
    """PNG of the map as shown (see the module docstring).

    Parameters
    ----------
    explorer : Explorer
        The explorer to draw.
    size : int
        Width and height of the map in pixels.
    """
    layer = explorer.color_layer()
    strip_idx = _strip_indices(explorer)
    strip = list(explorer.read_images(strip_idx)) if len(strip_idx) else []
    return render_map_png(
        explorer._xy,
        layer.values,
        size=size,
        title=_title(explorer),
        colors=layer.colors if layer.categorical else None,
        selected=explorer.selected,
        strip=strip,
        legend_title=layer.name,
    )


def explorer_html(explorer: Any, size: int = 640) -> str:
    """A self-contained HTML page (no scripts, no network) of the explorer's current view.

    Parameters
    ----------
    explorer : Explorer
        The explorer to draw.
    size : int
        Width and height of the map in pixels.
    """
    png = base64.b64encode(explorer_png(explorer, size)).decode("ascii")
    esc = html.escape
    layer = explorer.color_layer()
    legend = "".join(
        f'<li><span style="display:inline-block;width:10px;height:10px;background:{esc(e["color"])}">'
        f"</span> {esc(str(e['name']))} ({e['count']})</li>"
        for e in layer.legend()
    )
    tags = "".join(
        f"<tr><td>{esc(name)}</td><td>{len(idx)}</td></tr>" for name, idx in explorer.tags.items()
    )
    idx = _strip_indices(explorer)
    thumbs = "".join(
        f'<figure><img src="{uri}" width="64" height="64" alt="#{i}">'
        f"<figcaption>#{i} {esc(str(explorer._label_name_of(i)))}</figcaption></figure>"
        for i, uri in zip(idx, explorer.cache.get_many(idx), strict=True)
    )
    n_sel = len(explorer.selected)
    title = esc(_title(explorer) or "tsimcne-nb explorer")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; margin: 16px; }}
figure {{ display: inline-block; margin: 2px; text-align: center; font-size: 10px; }}
img {{ image-rendering: pixelated; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 2px 6px; }}
</style></head>
<body>
<h1>{title}</h1>
<p>{explorer.n_points} points, coloured by <b>{esc(layer.name)}</b>; {n_sel} selected
(outlined). A static snapshot of the live explorer.</p>
<img class="map" src="data:image/png;base64,{png}" alt="the map">
<h2>Legend: {esc(layer.name)}</h2><ul class="legend">{legend}</ul>
<h2>Tags</h2><table class="tags"><tr><th>tag</th><th>points</th></tr>{tags}</table>
<h2>Selection ({n_sel} points{", first " + str(len(idx)) if n_sel > len(idx) else ""})</h2>
<div class="strip">{thumbs}</div>
</body></html>
"""


def save_html(explorer: Any, path: str | pathlib.Path, overwrite: bool = False) -> pathlib.Path:
    """Write :func:`explorer_html` to ``path`` atomically (refuses to overwrite unless asked).

    Parameters
    ----------
    explorer : Explorer
        The explorer to draw.
    path : str or pathlib.Path
        The HTML file to write.
    overwrite : bool
        Replace an existing file.
    """
    path = pathlib.Path(path)
    if path.suffix.lower() not in (".html", ".htm"):
        from tsimcne_nb.errors import ConfigError

        raise ConfigError(f"save_html writes an .html file; got {path.name!r}.")
    check_can_write(path, overwrite)
    return atomic_write_text(path, explorer_html(explorer), overwrite=overwrite)
