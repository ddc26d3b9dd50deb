"""Widget latencies in a real browser (headless Chromium, software WebGL via SwiftShader).

Measures, in JupyterLab on 127.0.0.1:

* lasso release -> thumbnails visible (every <img> of the panel decoded), for a
  rectangle selection of 100 and of 1,000 points (page of 100 thumbnails), and of
  1,000 points with page_size=1000 (all 1,000 thumbnails at once); cold cache;
* time to first draw of the map for 100k and 1M points (software rendering: a
  GPU browser is much faster);
* Python-side construction time of the Explorer for those sizes.

Usage::

    TSIMCNE_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/widgets_latency.py [--reps 5] [--skip-render]

Needs /usr/bin/chromium.  Prints one line per number.
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
sizes = [100, 1000, 1000]
labels = np.repeat(np.arange(3), sizes)
centers = np.array([[0.0, 0.0], [30.0, 0.0], [15.0, 26.0]])
xy = (rng.normal(size=(len(labels), 2)) * 2 + centers[labels]).astype("float32")
images = rng.integers(0, 256, (len(labels), 28, 28, 3), dtype=np.uint8)
ds = ImageDataset(images, labels, ["A (100)", "B (1000)", "C (1000)"], name="synthetic blobs",
                  synthetic=True)
ex = Explorer(xy, ds, page_size=PAGE_SIZE, height=420)
ex.scatter.legend(False)
ex.scatter.lasso(type="rectangle")
ex.scatter.mouse("lasso");"""

LATENCY_JS = """
() => {
  window.__tUp = null;
  window.addEventListener('pointerup', () => { window.__tUp = performance.now(); },
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


def _pixels(page):
    from PIL import Image

    png = page.locator(CANVAS).first.screenshot()
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)


def _mask(px, cluster):
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    if cluster == 0:
        return (b - r > 30) & (b > g + 8)
    if cluster == 1:
        return (r - b > 60) & (r > g + 20)
    return (g - r > 40) & (g > b + 8)


def lasso_latency(browser, lab, page_size: int, reps: int) -> dict[str, list[float]]:
    cells = [SETUP.replace("PAGE_SIZE", str(page_size)), "ex"]
    ctx, nb = make_page(browser, lab, cells, f"latency_{page_size}.ipynb", timeout_ms=180_000)
    page = nb.page
    try:
        page.locator(".tsimcne-panel").wait_for(state="visible")
        deadline = time.monotonic() + 120
        while True:
            px = _pixels(page)
            if all(_mask(px, c).sum() > 30 for c in range(3)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("map not drawn")
            page.wait_for_timeout(200)
        box = page.locator(CANVAS).first.bounding_box()
        out: dict[str, list[float]] = {}
        for cluster, n in ((0, 100), (1, 1000)):
            ys, xs = np.nonzero(_mask(px, cluster))
            w, h = xs.max() - xs.min(), ys.max() - ys.min()
            x0, y0 = float(xs.min() - max(10, 0.3 * w)), float(ys.min() - max(10, 0.3 * h))
            x1, y1 = float(xs.max() + max(10, 0.3 * w)), float(ys.max() + max(10, 0.3 * h))
            times = []
            for _ in range(reps):
                nb.run("ex.select(None); ex.cache.clear()")  # cold: every thumbnail encoded anew
                page.wait_for_selector('.tsimcne-panel[data-n-selected="0"]')
                page.evaluate(LATENCY_JS)
                page.mouse.move(box["x"] + x0, box["y"] + y0)
                page.mouse.down()
                page.mouse.move(box["x"] + x0 + 1, box["y"] + y0 + 1)
                page.mouse.move(box["x"] + x1, box["y"] + y1, steps=10)
                page.wait_for_timeout(80)
                page.mouse.up()
                page.wait_for_function(VISIBLE_JS, arg=n, polling="raf")
                sel = nb.run("print(len(ex.selected))").strip()
                if sel != str(n):
                    raise RuntimeError(f"selected {sel} points, expected {n}")
                times.append(page.evaluate("() => window.__tVis - window.__tUp"))
            shown = min(n, page_size)
            out[
                f"lasso release -> {shown} thumbnails visible ({n} selected, page_size={page_size})"
            ] = times
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
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument(
        "--skip-render", action="store_true", help="skip the 100k/1M render timings"
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        sys.exit("/usr/bin/chromium is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    for n in (100_000, 1_000_000):
        print(
            f"python: Explorer construction, {n:>9,} points: {python_build_time(n):.2f} s",
            flush=True,
        )
    with tempfile.TemporaryDirectory() as tmp:
        lab = LabServer(Path(tmp))
        pw = sync_playwright().start()
        try:
            lab.wait_ready()
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            for page_size in (100, 1000):
                for name, times in lasso_latency(browser, lab, page_size, args.reps).items():
                    print(
                        f"{name}: median {statistics.median(times):.0f} ms, "
                        f"min {min(times):.0f} ms, max {max(times):.0f} ms (n={len(times)})",
                        flush=True,
                    )
            if not args.skip_render:
                for n in (100_000, 1_000_000):
                    print(
                        f"browser: first draw of {n:>9,} points: {render_time(browser, lab, n):.1f} s "
                        "(cell run -> points on the canvas, software WebGL)",
                        flush=True,
                    )
            browser.close()
        finally:
            pw.stop()
            lab.stop()


if __name__ == "__main__":
    main()
