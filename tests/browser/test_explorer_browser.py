"""The Explorer in a real JupyterLab + headless Chromium (WebGL via SwiftShader)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from .conftest import N_PER_CLUSTER

pytestmark = pytest.mark.browser

CANVAS = ".jupyter-widgets canvas"
PANEL = ".explorer-main .tsimcne-panel"


def _map_canvases(page) -> list:
    """The scatter plots' canvases (jupyter-scatter also draws small ones, e.g. histograms)."""
    idx = page.eval_on_selector_all(
        CANVAS,
        "els => els.map((e, i) => [i, e.clientWidth]).filter(([i, w]) => w > 200).map(([i]) => i)",
    )
    return [page.locator(CANVAS).nth(i) for i in idx]


def _canvas_pixels(page) -> np.ndarray:
    png = _map_canvases(page)[0].screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _wait_drawn(page, timeout_s: float = 60) -> np.ndarray:
    """Poll the canvas until the three coloured clusters are drawn (first draw is slow)."""
    page.locator(CANVAS).first.wait_for(state="visible")
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{CANVAS}')].some(c => c.clientWidth > 200)"
    )
    deadline = _now() + timeout_s
    while True:
        px = _canvas_pixels(page)
        if _cluster_mask(px, 0).sum() > 50 and _cluster_mask(px, 1).sum() > 50:
            return px
        if _now() > deadline:
            raise AssertionError("the scatter canvas was not drawn within the time limit")
        page.wait_for_timeout(200)


def _now() -> float:
    import time

    return time.monotonic()


def _cluster_mask(px: np.ndarray, cluster: int) -> np.ndarray:
    """Pixels of one cluster by its colour (Okabe-Ito blue, orange, green, blended on white)."""
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    if cluster == 0:  # #56B4E9
        return (b - r > 30) & (b > g + 8)
    if cluster == 1:  # #E69F00
        return (r - b > 60) & (r > g + 20)
    return (g - r > 40) & (g > b + 8)  # #009E73


def _drag_rectangle(page, box, x0, y0, x1, y1) -> None:
    """Press, move in steps, pause, release: see BROWSER-TESTING.md for why each step."""
    ox, oy = box["x"], box["y"]
    x0, y0, x1, y1 = (float(v) for v in (x0, y0, x1, y1))
    page.mouse.move(ox + x0, oy + y0)
    page.mouse.down()
    page.mouse.move(ox + x0 + 1, oy + y0 + 1)  # the lasso starts at the first move
    page.mouse.move(ox + x1, oy + y1, steps=12)
    page.wait_for_timeout(100)  # >= 50 ms after the last move before releasing
    page.mouse.up()


def _panel_indices(page) -> list[int]:
    return page.eval_on_selector_all(
        f"{PANEL} .tsimcne-thumb", "els => els.map(e => Number(e.dataset.index))"
    )


def _thumbs_loaded(page) -> bool:
    return page.eval_on_selector_all(
        f"{PANEL} .tsimcne-thumb img",
        "els => els.length > 0 && els.every(i => i.complete && i.naturalWidth > 0)",
    )


@pytest.fixture(scope="module")
def drawn(widgets_nb):
    page = widgets_nb.page
    page.locator(PANEL).wait_for(state="visible", timeout=120_000)
    return _wait_drawn(page)


def test_canvas_is_drawn(widgets_nb, drawn, artifacts):
    px = drawn
    assert px.std() > 5  # not a blank canvas
    masks = [_cluster_mask(px, c) for c in range(3)]
    assert all(m.sum() > 50 for m in masks)  # each cluster visible in its colour
    # the clusters are drawn where the data puts them: A left of B, C above both
    cx = [np.argwhere(m)[:, 1].mean() for m in masks]
    cy = [np.argwhere(m)[:, 0].mean() for m in masks]
    assert cx[0] < cx[2] < cx[1] and cy[2] < min(cy[0], cy[1])
    Image.fromarray(px.astype(np.uint8)).save(artifacts / "explorer-map.png")


def test_rectangle_selection_shows_cluster_thumbnails(widgets_nb, drawn, artifacts):
    page = widgets_nb.page
    ys, xs = np.nonzero(_cluster_mask(drawn, 0))
    w, h = xs.max() - xs.min(), ys.max() - ys.min()
    mx, my = max(10, 0.3 * w), max(10, 0.3 * h)
    box = _map_canvases(page)[0].bounding_box()
    _drag_rectangle(page, box, xs.min() - mx, ys.min() - my, xs.max() + mx, ys.max() + my)
    page.wait_for_selector(f'{PANEL}[data-n-selected="{N_PER_CLUSTER}"][data-n-items="100"]')
    page.wait_for_function(
        """() => [...document.querySelectorAll('.explorer-main .tsimcne-panel .tsimcne-thumb img')]
                 .every(i => i.complete && i.naturalWidth > 0)"""
    )
    shown = _panel_indices(page)
    assert len(shown) == 100 and all(0 <= i < N_PER_CLUSTER for i in shown)
    assert _thumbs_loaded(page)
    # the kernel's selection is exactly the cluster inside the rectangle
    selected = widgets_nb.run_json("ex.selected.tolist()")
    assert selected == list(range(N_PER_CLUSTER))
    page.screenshot(path=str(artifacts / "explorer-rectangle-selection.png"))

    # paging: the next page shows the next 100 of the cluster
    page.click(f"{PANEL} .tsimcne-next")
    page.wait_for_selector(f'{PANEL}[data-page="1"]')
    page.wait_for_function(
        "() => document.querySelector('.explorer-main .tsimcne-panel .tsimcne-thumb').dataset.index === '100'"
    )
    assert widgets_nb.run_json("ex.panel.page") == 1


def test_selection_from_python_updates_view(widgets_nb, drawn, artifacts):
    page = widgets_nb.page
    before = _canvas_pixels(page)
    widgets_nb.run("ex.select(np.arange(1000, 1010))")
    page.wait_for_selector(f'{PANEL}[data-n-selected="10"][data-n-items="10"]')
    assert _panel_indices(page) == list(range(1000, 1010))
    page.wait_for_function(
        """() => [...document.querySelectorAll('.explorer-main .tsimcne-panel .tsimcne-thumb img')]
                 .every(i => i.complete && i.naturalWidth > 0)"""
    )
    # the map redraws: the earlier selection's highlight is gone, the new one shows
    deadline = _now() + 20
    while np.abs(_canvas_pixels(page) - before).max() < 40:
        assert _now() < deadline, "the map did not change after selecting from Python"
        page.wait_for_timeout(100)
    page.screenshot(path=str(artifacts / "explorer-python-selection.png"))


def test_click_thumbnail_focuses_point(widgets_nb, drawn):
    page = widgets_nb.page
    widgets_nb.run("ex.select([3, 4, 5])")
    page.wait_for_selector(f'{PANEL}[data-n-selected="3"]')
    page.click(f'{PANEL} .tsimcne-thumb[data-index="4"]')
    page.wait_for_selector(f'{PANEL} .tsimcne-thumb.tsimcne-focused[data-index="4"]')
    assert widgets_nb.run_json("[ex.focused, int(ex.scatter.widget.hovering)]") == [4, 4]


def test_hover_shows_image_preview(widgets_nb, drawn, artifacts):
    """Hovering a point asks the kernel for its thumbnail (encoded lazily) and shows it."""
    page = widgets_nb.page
    mask = _cluster_mask(drawn, 1)
    ys, xs = np.nonzero(mask)
    # an isolated point at the cluster's fringe: the farthest coloured pixel from the centre
    k = np.argmax((xs - xs.mean()) ** 2 + (ys - ys.mean()) ** 2)
    x, y = float(xs[k]), float(ys[k])
    box = _map_canvases(page)[0].bounding_box()
    page.mouse.move(box["x"] + x - 30, box["y"] + y - 30)
    page.mouse.move(box["x"] + x, box["y"] + y, steps=8)
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jupyter-widgets div')]
                 .some(d => (d.style.backgroundImage || '').includes('data:image/png'))""",
        timeout=30_000,
    )
    hovered, cached, label = widgets_nb.run_json(
        "[int(ex.scatter.widget.hovering), int(ex.scatter.widget.hovering) in ex.cache, "
        "int(ds.labels[int(ex.scatter.widget.hovering)])]"
    )
    assert hovered >= 0 and cached and label == 1
    page.screenshot(path=str(artifacts / "explorer-hover.png"))


def test_linked_maps_share_the_selection(widgets_nb, drawn, artifacts):
    page = widgets_nb.page
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{CANVAS}')].filter(c => c.clientWidth > 200).length >= 3",
        timeout=120_000,
    )
    map_b = _map_canvases(page)[-1]  # the linked view is the notebook's last output
    map_b.scroll_into_view_if_needed()
    deadline = _now() + 60
    while True:
        px = np.asarray(Image.open(io.BytesIO(map_b.screenshot())).convert("RGB")).astype(np.int16)
        if _cluster_mask(px, 2).sum() > 50:
            break
        if _now() > deadline:
            page.screenshot(path=str(artifacts / "linked-not-drawn.png"))
            raise AssertionError("the second linked map was not drawn")
        page.wait_for_timeout(200)
    ys, xs = np.nonzero(_cluster_mask(px, 2))
    mx, my = max(10, 0.3 * np.ptp(xs)), max(10, 0.3 * np.ptp(ys))
    h, w = px.shape[:2]
    _drag_rectangle(
        page,
        map_b.bounding_box(),
        max(2, xs.min() - mx),
        max(2, ys.min() - my),
        min(w - 3, xs.max() + mx),
        min(h - 3, ys.max() + my),
    )
    try:
        page.wait_for_selector(
            f'.explorer-linked .tsimcne-panel[data-n-selected="{N_PER_CLUSTER}"][data-n-items="100"]'
        )
    except Exception:
        page.screenshot(path=str(artifacts / "linked-failed.png"))
        n = widgets_nb.run_json("[len(e.selected) for e in linked.explorers]")
        raise AssertionError(f"linked selection not shown; kernel selection sizes {n}") from None
    a, b = widgets_nb.run_json(
        "[linked.explorers[0].selected.tolist(), linked.explorers[1].selected.tolist()]"
    )
    cluster_c = list(range(2 * N_PER_CLUSTER, 3 * N_PER_CLUSTER))
    assert a == cluster_c and b == cluster_c
    page.screenshot(path=str(artifacts / "linked-selection.png"))
