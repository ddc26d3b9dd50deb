"""notebooks/00_quickstart.ipynb run in a real JupyterLab + headless Chromium: its widgets render.

The notebook runs at the smoke size of tests/test_notebooks.py (300 synthetic images, 2 + 1 + 1
epochs); the test waits for its last cell, then checks that the augmentation gallery shows its
views and that the Explorer's WebGL map and thumbnail panel are drawn.
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import NotebookPage

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "notebooks" / "00_quickstart.ipynb"


def _smoke_notebook(dest: Path) -> None:
    """Write the quickstart with the smoke parameters that tests/test_notebooks.py injects."""
    import nbformat

    spec = importlib.util.spec_from_file_location("_nbtests", ROOT / "tests" / "test_notebooks.py")
    nbtests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nbtests)
    nb = nbformat.read(QUICKSTART, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = nbtests.smoke_source(nb)
    nbformat.write(nb, str(dest))


def _big_canvases(page):
    return page.eval_on_selector_all(
        ".jupyter-widgets canvas",
        "els => els.filter(e => e.clientWidth > 200).length",
    )


def test_quickstart_widgets_render(chromium_browser, lab, artifacts):
    name = "00_quickstart.ipynb"
    _smoke_notebook(lab.root / name)
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        nb = NotebookPage(page, lab, name)
        nb.open_and_run_all()
        # the last cell has run once the kernel knows the out-of-sample result
        page.wait_for_function(
            "() => document.body.innerText.includes('kNN on the map agrees')", timeout=300_000
        )
        assert "Traceback" not in page.inner_text("body")

        # augmentation gallery: 3 presets x 2 images, 6 distinct views each (the parametric
        # panel's own gallery of the focused image is checked below)
        page.wait_for_selector(".tsimcne-gallery .tsimcne-view img")
        rows = page.eval_on_selector_all(
            ".tsimcne-gallery .tsimcne-gallery-row",
            "trs => trs.filter(tr => !tr.closest('.tsimcne-parametric'))"
            ".map(tr => [...tr.querySelectorAll('.tsimcne-view img')].map(i => i.src))",
        )
        assert len(rows) == 6
        assert all(len(r) == 6 and len(set(r)) == 6 for r in rows)

        # the Explorer: a drawn WebGL map (not blank) next to the thumbnail panel
        page.wait_for_function(
            "() => [...document.querySelectorAll('.jupyter-widgets canvas')]"
            ".some(c => c.clientWidth > 200)"
        )
        assert _big_canvases(page) >= 1
        canvases = page.locator(".jupyter-widgets canvas")
        big = next(
            canvases.nth(i)
            for i in range(canvases.count())
            if canvases.nth(i).evaluate("c => c.clientWidth") > 200
        )
        big.scroll_into_view_if_needed()
        for _ in range(100):  # the first WebGL draw in software takes a few seconds
            px = np.asarray(Image.open(io.BytesIO(big.screenshot())).convert("RGB")).astype(float)
            if px.std() > 5:
                break
            page.wait_for_timeout(200)
        assert px.std() > 5, "the map canvas stayed blank"
        # the notebook placed 30 new images last (selected): the panel shows their thumbnails
        panel = page.locator(".tsimcne-panel").first
        panel.wait_for(state="visible")
        page.wait_for_function(
            "() => document.querySelectorAll('.tsimcne-panel img').length >= 20"
        )
        # the explain panel describes the 30 placed images, not the front-end's transient
        # empty selection after new data (SelectionExplainer reads the current selection)
        page.wait_for_selector(".tsimcne-explain-summary[data-n-selected='30']", state="attached")
        # the parametric panel: the focused image's augmentations, its feature-space and map
        # neighbours, and the status line of the placed images
        param = page.locator(".tsimcne-parametric").first
        param.scroll_into_view_if_needed()
        page.wait_for_selector(".tsimcne-parametric .tsimcne-view img", state="attached")
        assert page.locator(".tsimcne-parametric img.tsimcne-nn-feature").count() >= 10
        assert page.locator(".tsimcne-parametric img.tsimcne-nn-map").count() >= 10
        placed = page.locator(".tsimcne-parametric .tsimcne-placed").first
        assert len(placed.get_attribute("data-indices").split(",")) == 30
        page.screenshot(path=str(artifacts / "quickstart.png"), full_page=True)
    finally:
        context.close()
