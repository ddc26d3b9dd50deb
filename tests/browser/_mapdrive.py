"""Mouse helpers for the panel tests: find drawn clusters on the map canvas and drag a rectangle.

Clusters are found by position, not colour (the palette may change): the test maps put
well-separated clusters side by side on a white background.
"""

from __future__ import annotations

import io
import time

import numpy as np
from PIL import Image

CANVAS = ".jupyter-widgets canvas"


def map_canvas(page, nth: int = 0):
    """The nth scatter canvas wider than 200 px (jupyter-scatter also draws small ones)."""
    idx = page.eval_on_selector_all(
        CANVAS,
        "els => els.map((e, i) => [i, e.clientWidth]).filter(([i, w]) => w > 200).map(([i]) => i)",
    )
    return page.locator(CANVAS).nth(idx[nth])


def canvas_pixels(page, nth: int = 0) -> np.ndarray:
    png = map_canvas(page, nth).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def wait_clusters(page, n_clusters: int = 2, timeout_s: float = 90, nth: int = 0) -> list[tuple]:
    """Poll until the canvas shows ``n_clusters`` groups of drawn pixels split along x.

    Returns one ``(x0, y0, x1, y1)`` pixel box per cluster, left to right.
    """
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{CANVAS}')].some(c => c.clientWidth > 200)",
        timeout=timeout_s * 1000,
    )
    deadline = time.monotonic() + timeout_s
    while True:
        px = canvas_pixels(page, nth)
        ys, xs = np.nonzero(px.sum(axis=-1) < 600)  # drawn (not white) pixels
        if len(xs) > 100:
            cols = np.unique(xs)
            d = np.diff(cols)
            # the n - 1 widest gaps between drawn columns split the clusters (a stray point
            # joins its neighbour); they must be clearly wider than gaps inside a cluster
            gaps = np.sort(np.argsort(d)[::-1][: n_clusters - 1])
            if len(d) >= n_clusters - 1 and d[gaps].min() > 20:
                bounds = np.split(cols, gaps + 1)
                boxes = []
                for b in bounds:
                    m = (xs >= b[0]) & (xs <= b[-1])
                    boxes.append((xs[m].min(), ys[m].min(), xs[m].max(), ys[m].max()))
                return boxes
        if time.monotonic() > deadline:
            raise AssertionError("the map's clusters were not drawn within the time limit")
        page.wait_for_timeout(250)


def drag_rectangle(page, box, x0, y0, x1, y1) -> None:
    """Press, move in steps, pause, release (BROWSER-TESTING.md says why each step)."""
    ox, oy = box["x"], box["y"]
    x0, y0, x1, y1 = (float(v) for v in (x0, y0, x1, y1))
    page.mouse.move(ox + x0, oy + y0)
    page.mouse.down()
    page.mouse.move(ox + x0 + 1, oy + y0 + 1)  # the lasso starts at the first move
    page.mouse.move(ox + x1, oy + y1, steps=12)
    page.wait_for_timeout(100)  # >= 50 ms after the last move before releasing
    page.mouse.up()


def select_cluster(page, cluster_box, nth: int = 0, margin: float = 0.3) -> None:
    """Drag a rectangle around one cluster's pixel box, with a margin."""
    x0, y0, x1, y1 = cluster_box
    mx, my = max(10, margin * (x1 - x0)), max(10, margin * (y1 - y0))
    box = map_canvas(page, nth).bounding_box()
    # the drag must start and end on the canvas, whatever the margin
    w, h = box["width"] - 3, box["height"] - 3
    drag_rectangle(
        page, box, max(x0 - mx, 3), max(y0 - my, 3), min(x1 + mx, w), min(y1 + my, h)
    )
