"""Issue 14 in a real JupyterLab + headless Chromium: the fixes and the review toolbar.

Each test drives the mouse and keyboard as a user does and keeps a screenshot in
test-artifacts/. The fix tests use only calls that the pre-issue explorer also had
(``ex.tag(name, indices)``, ``show_tags``, ``add_points``, ``color_by``), so they show
the old behaviour failing rather than a missing method.
"""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from .conftest import make_page

pytestmark = pytest.mark.browser

N = 500  # points per cluster
CELLS = [
    f"""\
import numpy as np
import pandas as pd
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.widgets import Explorer

rng = np.random.default_rng(0)
labels = np.repeat(np.arange(3), {N})
centers = np.array([[0.0, 0.0], [30.0, 0.0], [15.0, 26.0]])
xy = (rng.normal(size=(3 * {N}, 2)) * 2 + centers[labels]).astype("float32")
images = rng.integers(0, 256, (3 * {N}, 16, 16, 3), dtype=np.uint8)  # random: synthetic
blur = labels + rng.random(3 * {N})  # cluster C alone has blur > 2
ds = ImageDataset(images, labels, ["cluster A", "cluster B", "cluster C"],
                  pd.DataFrame({{"blur": blur}}), name="synthetic blobs", synthetic=True)
ex = Explorer(xy, ds, page_size=100, height=420)
ex.widget.add_class("ex-main");""",
    "ex",
    """\
# class names in which "new" sorts between the classes (basophil < neutrophil < new < platelet)
ds2 = ImageDataset(images, labels, ["basophil", "neutrophil", "platelet"], synthetic=True)
ex2 = Explorer(xy, ds2, page_size=50, height=300)
ex2.widget.add_class("ex-two")
class Model:  # places new images between the clusters
    def transform(self, imgs):
        return np.tile([[15.0, 9.0]], (len(imgs), 1)) + rng.normal(size=(len(imgs), 2)) * 0.5
ex2""",
    "ex2  # the same explorer shown a second time",
    """\
labels12 = np.repeat(np.arange(12), 150)
xy12 = np.c_[labels12 * 6.0, rng.normal(size=1800) * 0.6].astype("float32")
ds12 = ImageDataset(rng.integers(0, 256, (1800, 8, 8, 3), dtype=np.uint8), labels12,
                    [f"class {i:02d}" for i in range(12)], synthetic=True)
ex12 = Explorer(xy12, ds12, height=260)
ex12.widget.add_class("ex-twelve")
ex12""",
]


# ------------------------------------------------------------------ helpers
def _canvas(page, scope: str, nth: int = 0):
    sel = f".{scope} canvas"
    idx = page.eval_on_selector_all(
        sel, "els => els.map((e, i) => [i, e.clientWidth]).filter(([i, w]) => w > 200).map(([i]) => i)"
    )
    assert len(idx) > nth, f"no map canvas #{nth} in .{scope}"
    return page.locator(sel).nth(idx[nth])


def _pixels(page, scope: str, nth: int = 0) -> np.ndarray:
    png = _canvas(page, scope, nth).screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _mask(px: np.ndarray, colour: str) -> np.ndarray:
    """Pixels of a colour (point colours blended on white): blue, orange, green, grey, focus."""
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    if colour == "blue":  # #56B4E9
        return (b - r > 30) & (b > g + 8)
    if colour == "orange":  # #E69F00
        return (r - b > 60) & (r > g + 20)
    if colour == "green":  # #009E73
        return (g - r > 40) & (g > b + 8)
    if colour == "grey":  # #d0d0d0 (untagged)
        return (np.abs(r - g) < 10) & (np.abs(g - b) < 10) & (r < 235) & (r > 150)
    if colour == "focus":  # #e4572e
        return (r > 190) & (g > 60) & (g < 130) & (b < 90)
    raise ValueError(colour)


def _near(px: np.ndarray, hexcol: str, tol: int = 40) -> np.ndarray:
    want = np.array([int(hexcol[k : k + 2], 16) for k in (1, 3, 5)])
    return np.abs(px - want).max(axis=-1) < tol


def _wait(predicate, timeout_s: float = 30, what: str = "condition", page=None, shot=None):
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            if page is not None and shot is not None:
                page.screenshot(path=str(shot))
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _drawn(page, scope: str, nth: int = 0) -> np.ndarray:
    out: list[np.ndarray] = []

    def drawn() -> bool:
        px = _pixels(page, scope, nth)
        out[:] = [px]
        return _mask(px, "blue").sum() > 50 and _mask(px, "orange").sum() > 50

    _wait(drawn, timeout_s=90, what=f"the map in .{scope} to be drawn")
    return out[0]


def _bbox(mask: np.ndarray, margin: float = 0.3) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    w, h = np.ptp(xs), np.ptp(ys)
    mx, my = max(10, margin * w), max(10, margin * h)
    return xs.min() - mx, ys.min() - my, xs.max() + mx, ys.max() + my


@pytest.fixture(scope="module")
def nb(chromium_browser, lab):
    context, nb = make_page(chromium_browser, lab, CELLS, "explorer_review.ipynb", timeout_ms=120_000)
    try:
        nb.page.locator(".ex-main .tsimcne-panel").wait_for(state="visible", timeout=120_000)
        nb.drawn = _drawn(nb.page, "ex-main")
        yield nb
    finally:
        context.close()


def _reset(nb) -> None:
    nb.run("ex.select([]); ex.color_by = 'label'")


# ----------------------------------------------------------- fix 1: gesture
def test_empty_state_names_the_gesture_that_works(nb):
    status = nb.page.inner_text(".ex-main .tsimcne-panel .tsimcne-status")
    assert "hold Shift and drag" in status


def test_shift_drag_draws_a_lasso(nb, artifacts):
    page = nb.page
    x0, y0, x1, y1 = _bbox(_mask(nb.drawn, "blue"))
    box = _canvas(page, "ex-main").bounding_box()
    ox, oy = box["x"], box["y"]
    page.keyboard.down("Shift")
    page.mouse.move(ox + x0, oy + y0)
    page.mouse.down()
    page.mouse.move(ox + x0 + 1, oy + y0 + 1)  # the lasso starts at the first move
    # a freehand lasso keeps one point per 10 ms (throttled): move in steps, pausing
    corners = [(x1, y0), (x1, y1), (x0, y1), (x0, y0 + 8)]
    prev = (x0, y0)
    for cx, cy in corners:
        for t in np.linspace(0.25, 1.0, 4):
            page.mouse.move(ox + prev[0] + t * (cx - prev[0]), oy + prev[1] + t * (cy - prev[1]))
            page.wait_for_timeout(40)
        prev = (cx, cy)
    page.wait_for_timeout(100)
    page.mouse.up()
    page.keyboard.up("Shift")
    try:
        page.wait_for_selector(f'.ex-main .tsimcne-panel[data-n-selected="{N}"]', timeout=20_000)
    finally:
        page.screenshot(path=str(artifacts / "fix1-shift-drag-lasso.png"))
    assert nb.run_json("ex.selected.tolist()") == list(range(N))


# ------------------------------------------------- fix 2: tag colour map kept
def test_second_tag_keeps_untagged_points_grey(nb, artifacts):
    page = nb.page
    _reset(nb)
    c_box = _bbox(_mask(nb.drawn, "green"), margin=0.0)
    nb.run("ex.show_tags(); ex.tag(np.arange(0, 500), 'first')")
    nb.run("ex.tag(np.arange(500, 1000), 'second')")

    def cluster_c_grey():
        px = _pixels(page, "ex-main")
        x0, y0, x1, y1 = (int(v) for v in c_box)
        region = px[max(y0, 0) : y1, max(x0, 0) : x1]
        return _mask(region, "grey").sum() > 50 and _mask(region, "green").sum() < 10

    try:
        _wait(cluster_c_grey, 30, "the untagged cluster to stay grey after a second tag")
    finally:
        page.screenshot(path=str(artifacts / "fix2-second-tag.png"))
    nb.run("ex.untag('first'); ex.untag('second')")


# ------------------------------- fix 3: two displays, add_points, class colours
def test_add_points_keeps_both_displays_and_class_colours(nb, artifacts):
    page = nb.page
    first = _drawn(page, "ex-two", 0)
    _drawn(page, "ex-two", 1)
    x0, y0, x1, y1 = (int(v) for v in _bbox(_mask(first, "green"), margin=0.0))
    nb.run("new_idx = ex2.add_points(images[:30], Model())")

    def both_updated():
        a, b = _pixels(page, "ex-two", 0), _pixels(page, "ex-two", 1)
        if a.shape != b.shape or np.abs(a - b).mean() > 8:
            return False  # the two displays disagree
        # the added points are drawn (magenta) and platelet, the third class, keeps its green
        region = a[max(y0, 0) : y1, max(x0, 0) : x1]
        return (
            _near(a, "#ff00ff", 60).sum() > 20
            and _mask(region, "green").sum() > 50
            and _near(region, "#F0E442", 40).sum() < 10
        )

    try:
        _wait(both_updated, 30, "both displays to show the added points in the old colours")
    finally:
        _canvas(page, "ex-two", 0).screenshot(path=str(artifacts / "fix3-display-1.png"))
        _canvas(page, "ex-two", 1).screenshot(path=str(artifacts / "fix3-display-2.png"))
    legends = page.eval_on_selector_all(
        ".ex-two .tsimcne-legend",
        "els => els.map(l => [...l.querySelectorAll('.tsimcne-legend-item')].map(e => e.dataset.name))",
    )
    assert legends == [["basophil", "neutrophil", "platelet", "new"]] * 2  # "new" last, both


# -------------------------------------------- fix 4: palette, legend, colour-by
def test_twelve_classes_live_in_the_static_palette(nb, artifacts):
    page = nb.page
    canvas = _canvas(page, "ex-twelve")
    canvas.scroll_into_view_if_needed()
    expected = nb.run_json("__import__('tsimcne_nb.viz.palette', fromlist=['_']).category_hex(12)")
    assert len(expected) == 12

    def colours_match():
        px = np.asarray(Image.open(io.BytesIO(canvas.screenshot())).convert("RGB")).astype(int)
        # class i (its column, left to right) is drawn in the static palette's colour i
        xs = []
        for hexcol in expected:
            ys_, xs_ = np.nonzero(_near(px, hexcol, tol=12))
            if len(xs_) < 15:
                return False
            xs.append(np.median(xs_))
        return bool(np.all(np.diff(xs) > 0))

    try:
        _wait(colours_match, 60, "the live map to use the static palette for 12 classes")
    finally:
        canvas.screenshot(path=str(artifacts / "fix4-twelve-classes.png"))


def test_legend_is_titled_off_the_map_and_selects_classes(nb, artifacts):
    page = nb.page
    _reset(nb)
    legend = page.locator(".ex-main .tsimcne-legend")
    assert legend.locator(".tsimcne-legend-title").inner_text() == "label"
    lb, cb = legend.bounding_box(), _canvas(page, "ex-main").bounding_box()
    assert lb["y"] + lb["height"] <= cb["y"] + 1  # above the map, not over the data
    legend.locator('[data-name="cluster B"]').click()
    page.wait_for_selector(f'.ex-main .tsimcne-panel[data-n-selected="{N}"]')
    assert nb.run_json("ex.selected.tolist()") == list(range(N, 2 * N))
    legend.locator('[data-name="cluster C"]').click(modifiers=["Shift"])
    page.wait_for_selector(f'.ex-main .tsimcne-panel[data-n-selected="{2 * N}"]')
    assert nb.run_json("ex.selected.tolist()") == list(range(N, 3 * N))
    page.screenshot(path=str(artifacts / "fix4-legend-click.png"))


def test_assigning_color_by_recolours(nb, artifacts):
    page = nb.page
    _reset(nb)
    nb.run("ex.color_by = 'blur'")

    def recoloured():
        px = _pixels(page, "ex-main")
        return _near(px, "#56B4E9").sum() < 20 and _near(px, "#E69F00").sum() < 20

    try:
        _wait(recoloured, 30, "the map to be recoloured by blur")
    finally:
        _canvas(page, "ex-main").screenshot(path=str(artifacts / "fix4-color-by-blur.png"))
    assert page.inner_text(".ex-main .tsimcne-legend-title") == "blur"
    nb.run("ex.color_by = 'label'")


def test_full_screen_keeps_the_thumbnail_panel(nb, artifacts):
    page = nb.page
    page.locator('.ex-main button[title="Full Screen"]').first.click()
    try:
        page.wait_for_function("() => !!document.fullscreenElement", timeout=10_000)
        inside = page.evaluate(
            """() => { const f = document.fullscreenElement;
                 return [!!f.querySelector('.tsimcne-panel'), !!f.querySelector('canvas')]; }"""
        )
        page.screenshot(path=str(artifacts / "fix4-full-screen.png"))
        assert inside == [True, True]
    finally:
        page.evaluate("() => document.fullscreenElement && document.exitFullscreen()")


def test_focus_box_clears_with_a_new_selection(nb, artifacts):
    page = nb.page
    _reset(nb)
    nb.run("ex.select([3, 4, 5])")
    page.wait_for_selector('.ex-main .tsimcne-panel[data-n-selected="3"]')
    page.click('.ex-main .tsimcne-thumb[data-index="4"]')
    page.wait_for_selector(".ex-main .tsimcne-thumb.tsimcne-focused")
    _wait(lambda: _mask(_pixels(page, "ex-main"), "focus").sum() > 20, 20, "the focus box")
    nb.run("ex.select(np.arange(600, 610))")
    page.wait_for_selector('.ex-main .tsimcne-panel[data-n-selected="10"]')
    try:
        _wait(lambda: _mask(_pixels(page, "ex-main"), "focus").sum() < 5, 20, "the box to clear")
    finally:
        page.screenshot(path=str(artifacts / "fix4-focus-cleared.png"))
    assert page.locator(".ex-main .tsimcne-thumb.tsimcne-focused").count() == 0
