"""ParametricPanel in a real JupyterLab + headless Chromium (issue 14, build 4).

A click on a thumbnail shows that image's training augmentations (the model's own
augmentation object) and its feature-space vs map neighbours; the button selects the
feature neighbours on the map; an image chosen in the upload widget is placed on the map.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from .conftest import make_page

pytestmark = pytest.mark.browser

N_PER = 40
CELLS = [
    f"""\
import numpy as np
from tsimcne_nb.nn.augmentations import make_augmentation
from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.widgets import Explorer, ParametricPanel

rng = np.random.default_rng(0)
xy = np.r_[rng.normal(size=({N_PER}, 2)), rng.normal(size=({N_PER}, 2)) + 20]
images = rng.integers(0, 256, size=({2 * N_PER}, 16, 16, 3), dtype=np.uint8)  # random (synthetic)
ds = ImageDataset(images, np.repeat([0, 1], {N_PER}), ["a", "b"], name="blobs", synthetic=True)

class StubModel:
    \"\"\"A synthetic stand-in for a fitted TSimCNE: features = the map, except point 0's.\"\"\"
    augmentation_ = make_augmentation("randrot", 16, rotation_degrees=30.0)
    def features(self, X):
        if isinstance(X, ImageDataset):
            f = xy + np.random.default_rng(1).normal(scale=0.01, size=xy.shape)
            f[0] = [20.0, 20.0]  # the network puts point 0 with blob B; the map with A
            return f
        return np.full((len(as_dataset(X).images), 2), 20.0)
    def transform(self, X):
        return np.full((len(as_dataset(X).images), 2), 20.5)

ex = Explorer(xy, ds, model=StubModel(), page_size=40, height=300)
ex.scatter.legend(False)
panel = ParametricPanel(ex, metric="euclidean", k=10, n_views=4, baseline=40)
ex.select(np.arange({N_PER}))  # set-up: blob A's thumbnails are shown
panel.attach() if hasattr(ex, "add_panel") else panel.with_explorer()""",
]
PARAM = ".tsimcne-parametric"


def test_click_augmentations_neighbours_and_upload(chromium_browser, lab, artifacts):
    context, nb = make_page(chromium_browser, lab, CELLS, "parametric_test.ipynb", 90_000)
    try:
        page = nb.page
        page.wait_for_selector(f'{PARAM} .tsimcne-param[data-index="-1"]', timeout=90_000)
        page.wait_for_selector('.tsimcne-panel .tsimcne-thumb[data-index="0"] img')
        page.click('.tsimcne-panel .tsimcne-thumb[data-index="0"]')
        # point 0: its feature neighbours are all in blob B, its map neighbours in A
        page.wait_for_selector(f'{PARAM} .tsimcne-param[data-index="0"][data-shared="0"]')
        feat = page.eval_on_selector_all(
            f"{PARAM} img.tsimcne-nn-feature", "els => els.map(e => Number(e.dataset.index))"
        )
        assert len(feat) == 10 and all(i >= N_PER for i in feat)
        # the gallery shows image 0 augmented by the model's own augmentation
        page.wait_for_selector(f'{PARAM} .tsimcne-gallery-row[data-preset="model"][data-index="0"]')
        assert nb.run_json("panel.gallery.strengths()['rotation_degrees']") == 30.0
        page.screenshot(path=str(artifacts / "parametric_page.png"), full_page=True)

        page.click(f"{PARAM} button:has-text('select feature neighbours on the map')")
        page.wait_for_selector(f'.tsimcne-panel[data-n-selected="{len(feat) + 1}"]')
        assert nb.run_json("ex.selected.tolist()") == sorted([0, *feat])

        buf = io.BytesIO()
        Image.new("RGB", (24, 24), (220, 30, 30)).save(buf, format="PNG")
        # the upload button opens the file chooser, as for a user
        with page.expect_file_chooser() as chooser:
            page.click(f"{PARAM} .widget-upload")
        chooser.value.set_files(
            files=[{"name": "dropped.png", "mimeType": "image/png", "buffer": buf.getvalue()}]
        )
        page.wait_for_selector(f"{PARAM} .tsimcne-placed[data-indices='{2 * N_PER}']")
        assert nb.run_json("[ex.n_points, ex.selected.tolist()]") == [2 * N_PER + 1, [2 * N_PER]]
        page.locator(PARAM).screenshot(path=str(artifacts / "parametric_panel.png"))
        assert "Traceback" not in page.inner_text("body")
    except Exception:
        nb.page.screenshot(path=str(artifacts / "parametric_failure.png"))
        raise
    finally:
        context.close()
