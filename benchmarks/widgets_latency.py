"""Widget latencies in a real browser (headless Chromium, software WebGL via SwiftShader).

Measures, in JupyterLab on 127.0.0.1, for maps of 3k, 200k and 1M points (two small
clusters of 100 and 1,000 points, one isolated probe point, the rest one large blob):

* lasso release -> thumbnails visible (every <img> of the panel decoded), for a rectangle
  selection of 100 and of 1,000 points (page of 100 thumbnails); cold thumbnail cache;
* hover -> image preview: the pointer reaches the probe point -> its tooltip shows the image;
* tag keypress -> recoloured map: key ``1`` over the map (coloured by tag) -> the tagged
  cluster's pixels change on the canvas;
* search -> highlighted: Enter in the search field (``label == c1000``) -> the 1,000 points
  are highlighted on the canvas (and the panel shows them);
* Python-side construction time of the Explorer, and time to first draw.

Canvas changes are found by polling screenshots of a small clip of the canvas, so those
latencies are upper bounds with a granularity of one screenshot (reported alongside).

Usage::

    TSIMCNE_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/widgets_latency.py [--reps 3] [--sizes 3000,200000,1000000]

Needs /usr/bin/chromium.  Prints one line per number and a Markdown table at the end.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.browser.conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    LabServer,
    NotebookPage,
    make_page,
    write_notebook,
)

CANVAS = ".jupyter-widgets canvas"

SETUP = """\
import numpy as np
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.widgets import Explorer
rng = np.random.default_rng(0)
n_total = N_TOTAL
sizes = [n_total - 1101, 100, 1000, 1]
labels = np.repeat(np.arange(4), sizes)
centers = np.array([[0.0, 10.0], [30.0, 1.0], [30.0, 13.0], [40.0, 7.0]])  # inside the blob's extent
spread = np.array([4.0, 1.0, 1.5, 0.0])[labels][:, None]
xy = (rng.normal(size=(n_total, 2)) * spread + centers[labels]).astype("float32")
images = rng.integers(0, 256, (n_total, 16, 16, 3), dtype=np.uint8)  # 768 MB at 1M
ds = ImageDataset(images, labels, ["blob", "c100", "c1000", "probe"], name="synthetic blobs",
                  synthetic=True)
ex = Explorer(xy, ds, page_size=100, height=420)
ex.scatter.size(4)
ex.scatter.opacity(1.0)  # not density-scaled: the 100-point cluster and the probe stay visible
ex.tag([0], "t")  # the first tag button (key 1)
ex.scatter.lasso(type="rectangle");"""

#: Okabe-Ito colours of the four classes (the explorer's palette, in class order)
COLOURS = {"blob": "#56B4E9", "c100": "#E69F00", "c1000": "#009E73", "probe": "#F0E442"}

LATENCY_JS = """
(kind) => {
  window.__t0 = null;
  window.addEventListener(kind, () => { window.__t0 = performance.now(); },
                          { capture: true, once: true });
}
"""

VISIBLE_JS = """
(n) => {
  const root = document.querySelector('.tsimcne-panel');
  if (!root || root.dataset.nSelected !== String(n)) return false;
  const imgs = [...root.querySelectorAll('.tsimcne-thumb img')];
  if (imgs.length === 0 || !imgs.every(i => i.complete && i.naturalWidth > 0)) return false;
  window.__tVis = performance.now();
  return true;
}
"""

PREVIEW_JS = """
() => {
  const ok = [...document.querySelectorAll('.jupyter-widgets div')]
    .some(d => (d.style.backgroundImage || '').includes('data:image/png'));
  if (ok) window.__tVis = performance.now();
  return ok;
}
"""


def _canvas(page):
    idx = page.eval_on_selector_all(
        CANVAS, "els => els.map((e, i) => [i, e.clientWidth]).filter(([i, w]) => w > 200).map(([i]) => i)"
    )
    return page.locator(CANVAS).nth(idx[0])


def _pixels(page, clip=None):
    from PIL import Image

    if clip is None:
        png = _canvas(page).screenshot()
    else:
        png = page.screenshot(clip=clip)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _near(px, hexcol, tol=40):
    want = np.array([int(hexcol[k : k + 2], 16) for k in (1, 3, 5)])
    return np.abs(px - want).max(axis=-1) < tol


def _box(mask, margin=0.3):
    ys, xs = np.nonzero(mask)
    w, h = xs.max() - xs.min(), ys.max() - ys.min()
    mx, my = max(10, margin * w), max(10, margin * h)
    return float(xs.min() - mx), float(ys.min() - my), float(xs.max() + mx), float(ys.max() + my)


def _wait_change(page, clip, before, t_start, timeout=60.0):
    """Poll screenshots of ``clip`` until it differs from ``before``; return (ms, granularity)."""
    shots = []
    while True:
        t = time.monotonic()
        px = _pixels(page, clip)
        shots.append(time.monotonic() - t)
        if np.abs(px - before).max() > 40 and (px != before).any(axis=-1).mean() > 0.02:
            return (time.monotonic() - t_start) * 1000, statistics.median(shots) * 1000
        if time.monotonic() - t_start > timeout:
            raise RuntimeError("the canvas did not change")


def interaction_latency(browser, lab, n_total: int, reps: int) -> dict[str, list[float]]:
    """Lasso, hover, tag key and search latencies on a map of ``n_total`` points."""
    cells = [SETUP.replace("N_TOTAL", str(n_total)), "ex"]
    ctx, nb = make_page(browser, lab, cells, f"latency_{n_total}.ipynb", timeout_ms=300_000)
    page = nb.page
    out: dict[str, list[float]] = {}
    try:
        page.locator(".tsimcne-panel").wait_for(state="visible", timeout=300_000)
        deadline = time.monotonic() + 300
        while True:
            px = _pixels(page)
            if all(_near(px, COLOURS[c]).sum() > 3 for c in ("c100", "c1000", "probe")):
                break
            if time.monotonic() > deadline:
                page.screenshot(path=f"/tmp/latency-not-drawn-{n_total}.png")
                raise RuntimeError("map not drawn")
            page.wait_for_timeout(300)
        canvas = _canvas(page)
        box = canvas.bounding_box()
        ox, oy = box["x"], box["y"]

        def clip_of(b):
            x0, y0, x1, y1 = b
            return {"x": ox + max(0, x0), "y": oy + max(0, y0),
                    "width": min(box["width"], x1) - max(0, x0),
                    "height": min(box["height"], y1) - max(0, y0)}

        # --- lasso -> thumbnails
        nb.run("ex.scatter.mouse('lasso')")
        for name, n in (("c100", 100), ("c1000", 1000)):
            x0, y0, x1, y1 = _box(_near(px, COLOURS[name]))
            h, w = px.shape[:2]  # press and release on the canvas, not beside it
            x0, y0, x1, y1 = max(x0, 2), max(y0, 2), min(x1, w - 3), min(y1, h - 3)
            times = []
            for _ in range(reps):
                nb.run("ex.select(None); ex.cache.clear()")  # cold: every thumbnail encoded anew
                page.wait_for_selector('.tsimcne-panel[data-n-selected="0"]')
                page.evaluate(LATENCY_JS, "pointerup")
                page.mouse.move(ox + x0, oy + y0)
                page.mouse.down()
                page.mouse.move(ox + x0 + 1, oy + y0 + 1)
                page.mouse.move(ox + x1, oy + y1, steps=10)
                page.wait_for_timeout(80)
                page.mouse.up()
                try:
                    page.wait_for_function(VISIBLE_JS, arg=n, polling="raf", timeout=60_000)
                except Exception:
                    page.screenshot(path=f"/tmp/latency-lasso-{n_total}-{n}.png")
                    sel = nb.run("print(len(ex.selected))").strip()
                    raise RuntimeError(f"lasso of {n} points: {sel} selected") from None
                sel = nb.run("print(len(ex.selected))").strip()
                if sel != str(n):
                    raise RuntimeError(f"selected {sel} points, expected {n}")
                times.append(page.evaluate("() => window.__tVis - window.__t0"))
            out[f"lasso -> {min(n, 100)} thumbnails ({n} selected)"] = times
        nb.run("ex.scatter.mouse('panZoom'); ex.select(None)")

        # --- hover -> preview (the isolated probe point)
        ys, xs = np.nonzero(_near(px, COLOURS["probe"]))
        hx, hy = float(np.median(xs)), float(np.median(ys))
        times = []
        for _ in range(reps):
            page.mouse.move(ox + 5, oy + box["height"] - 5)  # away: the tooltip hides
            page.wait_for_timeout(600)
            nb.run("ex.cache.clear()")
            page.mouse.move(ox + hx - 12, oy + hy - 12)
            page.evaluate(LATENCY_JS, "pointermove")
            page.mouse.move(ox + hx, oy + hy, steps=3)
            page.wait_for_function(PREVIEW_JS, polling="raf", timeout=60_000)
            times.append(page.evaluate("() => window.__tVis - window.__t0"))
        out["hover -> image preview"] = times
        page.mouse.move(ox + 5, oy + box["height"] - 5)

        # --- tag keypress -> recoloured map (coloured by tag; c100 selected)
        nb.run("ex.color_by = 'tag'")
        page.wait_for_timeout(1500)
        c100 = clip_of(_box(_near(px, COLOURS["c100"]), margin=0.05))
        times, gran = [], []
        for _ in range(reps):
            nb.run("ex.untag('t', np.arange(1, len(xy))); ex.select(np.flatnonzero(labels == 1))")
            page.wait_for_selector('.tsimcne-panel[data-n-selected="100"]')
            page.mouse.move(ox + 5, oy + 5)  # over the map, off the clusters
            page.wait_for_timeout(1500)  # the selection highlight is drawn
            before = _pixels(page, c100)
            t0 = time.monotonic()
            page.keyboard.press("1")
            ms, g = _wait_change(page, c100, before, t0)
            if nb.run("print(len(ex.tags['t']))").strip() != "101":
                raise RuntimeError("key 1 did not tag the selection")
            times.append(ms)
            gran.append(g)
        out["tag key 1 -> recoloured map"] = times
        out["  (screenshot granularity of the tag-key timing)"] = gran
        nb.run("ex.color_by = 'label'; ex.select(None)")
        page.wait_for_timeout(1500)

        # --- search -> highlighted
        c1000 = clip_of(_box(_near(px, COLOURS["c1000"]), margin=0.05))
        times, gran, dom = [], [], []
        for _ in range(reps):
            nb.run("ex.select(None)")
            page.wait_for_selector('.tsimcne-panel[data-n-selected="0"]')
            page.wait_for_timeout(1500)
            page.fill(".tsimcne-search", "label == c1000")
            before = _pixels(page, c1000)
            t0 = time.monotonic()
            page.press(".tsimcne-search", "Enter")
            page.wait_for_selector('.tsimcne-panel[data-n-selected="1000"]', timeout=120_000)
            dom.append((time.monotonic() - t0) * 1000)
            ms, g = _wait_change(page, c1000, before, t0)
            times.append(ms)
            gran.append(g)
        out["search -> 1000 selected in the panel"] = dom
        out["search -> highlighted on the map"] = times
        out["  (screenshot granularity of the search timing)"] = gran
        return out
    finally:
        ctx.close()


def render_time(browser, lab, n: int) -> float:
    cells = [
        "import numpy as np\n"
        "from tsimcne_nb.widgets import Explorer\n"
        "rng = np.random.default_rng(0)\n"
        f"n = {n}\n"
        "lab = rng.integers(0, 5, n)\n"
        "xy = (rng.normal(size=(n, 2)) + 6 * np.c_[np.cos(lab * 1.3), np.sin(lab * 1.3)]).astype('float32')\n"
        "from tsimcne_nb.data.core import ImageDataset\n"
        "ds = ImageDataset(np.zeros((n, 4, 4, 3), np.uint8), lab)\n"
        "ex = Explorer(xy, ds, height=420)\n"
        "ex.scatter.legend(False);",
    ]
    cells.append("ex")
    write_notebook(lab.root / f"render_{n}.ipynb", cells)
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(300_000)
    nb = NotebookPage(page, lab, f"render_{n}.ipynb")
    try:
        page.goto(f"{lab.url}/lab/tree/render_{n}.ipynb?reset&token={lab.token}")
        idle = (
            "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
            " const k = w && w.sessionContext && w.sessionContext.session"
            " && w.sessionContext.session.kernel;"
            " return !!(k && k.connectionStatus === 'connected' && k.status === 'idle'); }"
        )
        page.wait_for_function(idle)
        # run the set-up cell only, then time the display cell on its own
        page.evaluate(
            "() => window.jupyterapp.commands.execute('notebook:run-cell-and-select-next')"
        )
        nb.run("ex.select(None)")  # queued behind the set-up cell: returns when it is done
        t0 = time.monotonic()
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-cell')")
        page.locator(CANVAS).first.wait_for(state="visible")
        while True:
            px = _pixels(page)
            if (px.sum(axis=-1) < 600).sum() > 500:
                return time.monotonic() - t0
            if time.monotonic() - t0 > 300:
                raise RuntimeError("map not drawn in 300 s")
            page.wait_for_timeout(100)
    finally:
        ctx.close()


def python_build_time(n: int) -> float:
    import jscatter  # noqa: F401 - imported before timing: the first import takes seconds

    from tsimcne_nb.widgets.explorer import Explorer

    rng = np.random.default_rng(0)
    xy = rng.normal(size=(n, 2)).astype("float32")
    images = np.zeros((n, 4, 4, 3), np.uint8)
    t0 = time.perf_counter()
    ex = Explorer(xy, images)
    ex.scatter.widget  # noqa: B018 - the widget is built lazily
    return time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="3000,200000,1000000",
                        help="comma-separated map sizes (points)")
    args = parser.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    if not CHROMIUM.exists():
        sys.exit("/usr/bin/chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    table: dict[str, dict[int, str]] = {}
    for n in sizes:
        t = python_build_time(n)
        print(f"python: Explorer construction, {n:>9,} points: {t:.2f} s", flush=True)
        table.setdefault("Explorer construction (Python)", {})[n] = f"{t:.2f} s"
    with tempfile.TemporaryDirectory() as tmp:
        lab = LabServer(Path(tmp))
        pw = sync_playwright().start()
        try:
            lab.wait_ready()
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            for n in sizes:
                t = render_time(browser, lab, n)
                print(f"browser: first draw of {n:>9,} points: {t:.1f} s (cell run -> points "
                      "on the canvas, software WebGL)", flush=True)
                table.setdefault("first draw (cell run -> points on the canvas)", {})[n] = f"{t:.1f} s"
                for name, times in interaction_latency(browser, lab, n, args.reps).items():
                    med = statistics.median(times)
                    print(f"{n:>9,} points: {name}: median {med:.0f} ms, min {min(times):.0f} ms, "
                          f"max {max(times):.0f} ms (n={len(times)})", flush=True)
                    table.setdefault(name, {})[n] = f"{med:.0f} ms"
            browser.close()
        finally:
            pw.stop()
            lab.stop()
    print()
    print("| median of " + str(args.reps) + " | " + " | ".join(f"{n:,} points" for n in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name, row in table.items():
        print(f"| {name.strip()} | " + " | ".join(row.get(n, "-") for n in sizes) + " |")


if __name__ == "__main__":
    main()
