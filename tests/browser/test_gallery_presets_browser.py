"""AugmentationGallery sliders in a real JupyterLab + headless Chromium (issue 14, fix 5).

The sliders show the values of the preset picked above them (randrot rotates +-45 degrees,
so its rotation slider reads 45), an edit changes only that preset, and no label or button
is cut off.
"""

from __future__ import annotations

import pytest

from .conftest import make_page

pytestmark = pytest.mark.browser

ROOT = ".tsimcne-gallery-widget"
CELLS = [
    """\
import numpy as np
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.widgets import AugmentationGallery

rng = np.random.default_rng(0)
images = rng.integers(0, 256, size=(10, 16, 16, 3), dtype=np.uint8)  # random (synthetic) images
ds = ImageDataset(images, np.arange(10) % 2, ["a", "b"], name="random", synthetic=True)
gallery = AugmentationGallery(ds, n_views=4, indices=[2])
gallery""",
]

READOUT_JS = """(k) => {
  const el = document.querySelector(`.tsimcne-gallery-widget .tsimcne-strength-${k} .widget-readout`);
  return el ? parseFloat(el.textContent) : null;
}"""

CLIPPED_JS = """() => {
  const root = document.querySelector('.tsimcne-gallery-widget');
  const els = [...root.querySelectorAll('.widget-label, button')];
  return els.filter(e => e.offsetWidth > 0 && e.scrollWidth > e.clientWidth + 1)
            .map(e => e.textContent.trim());
}"""


def _readout(page, k):
    return page.evaluate(READOUT_JS, k)


def test_sliders_follow_the_picked_preset_and_edit_only_it(chromium_browser, lab, artifacts):
    context, nb = make_page(chromium_browser, lab, CELLS, "gallery_presets_test.ipynb", 90_000)
    try:
        page = nb.page
        page.wait_for_selector(f"{ROOT} .tsimcne-preset-picker button", timeout=90_000)
        assert _readout(page, "rotation_degrees") == 0.0  # "default": no rotation
        page.locator(f"{ROOT} .tsimcne-preset-picker button", has_text="randrot").click()
        page.wait_for_function(f"() => ({READOUT_JS})('rotation_degrees') === 45")
        page.wait_for_selector('.tsimcne-gallery tr.tsimcne-active[data-preset="randrot"]')
        assert nb.run_json("gallery.preset") == "randrot"

        # type a new value into the slider's readout, as a user does, and press Enter
        readout = page.locator(f"{ROOT} .tsimcne-strength-rotation_degrees .widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type("30")
        page.keyboard.press("Enter")
        page.wait_for_function(
            "() => document.querySelector('.tsimcne-gallery .tsimcne-note')"
            ".textContent.includes('randrot: rotation_degrees=30')"
        )
        assert nb.run_json("gallery.overrides") == {
            "default": {}, "rot90": {}, "randrot": {"rotation_degrees": 30.0}
        }
        page.locator(f"{ROOT} .tsimcne-preset-picker button", has_text="rot90").click()
        page.wait_for_function(f"() => ({READOUT_JS})('rotation_degrees') === 0")
        page.locator(f"{ROOT} .tsimcne-preset-picker button", has_text="randrot").click()
        page.wait_for_function(f"() => ({READOUT_JS})('rotation_degrees') === 30")

        assert page.evaluate(CLIPPED_JS) == []  # every label and button reads in full
        page.locator(ROOT).screenshot(path=str(artifacts / "gallery_presets.png"))
        assert "Traceback" not in page.inner_text("body")
    finally:
        context.close()
