"""SelectionExplainer in a real JupyterLab + headless Chromium (issue 14, build 3).

A rectangle drag on the map around one cluster: the panel shows that cluster's class
make-up, its kNN purity and its property histograms; a click on a thumbnail shows the
image large with its label and metadata.
"""

from __future__ import annotations

import pytest

from ._mapdrive import select_cluster, wait_clusters
from .conftest import make_page

pytestmark = pytest.mark.browser

N_A, N_B = 150, 150
CELLS = [
    f"""\
import numpy as np
import pandas as pd
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.widgets import Explorer, SelectionExplainer

# two well-separated blobs of random (synthetic) images; blob A is 80 % "a", 20 % "b" and dark
rng = np.random.default_rng(0)
# points uniform in two discs (no stray outliers), side by side
r, t = np.sqrt(rng.random({N_A + N_B})), rng.random({N_A + N_B}) * 2 * np.pi
xy = (np.c_[r * np.cos(t), r * np.sin(t)] + np.r_[np.zeros(({N_A}, 2)), np.tile([4.0, 0.0], ({N_B}, 1))]).astype("float32")
labels = np.r_[np.where(np.arange({N_A}) < {int(0.8 * N_A)}, 0, 1), np.full({N_B}, 2)]
images = rng.integers(0, 256, size=({N_A + N_B}, 16, 16, 3), dtype=np.uint8)
images[:{N_A}] //= 4
meta = pd.DataFrame({{"score": rng.random({N_A + N_B}), "site": "s1"}})
ds = ImageDataset(images, labels, ["a", "b", "c"], meta, name="blobs", synthetic=True)
ex = Explorer(xy, ds, page_size=50, height=360)
ex.scatter.legend(False)
ex.scatter.lasso(type="rectangle")
ex.scatter.mouse("lasso")
explainer = SelectionExplainer(ex, k=10)
explainer.attach() if hasattr(ex, "add_panel") else explainer.with_explorer()""",
]
SUMMARY = ".tsimcne-explain .tsimcne-explain-summary"


def test_lasso_explains_the_selection_and_click_shows_it_large(chromium_browser, lab, artifacts):
    context, nb = make_page(chromium_browser, lab, CELLS, "explain_test.ipynb", 90_000)
    try:
        page = nb.page
        page.wait_for_selector(f'{SUMMARY}[data-n-selected="0"]', timeout=90_000)
        boxes = wait_clusters(page, 2)
        select_cluster(page, boxes[0])  # blob A, the left one
        page.wait_for_selector(f'{SUMMARY}:not([data-n-selected="0"])')
        page.wait_for_timeout(300)  # the rectangle's final selection
        sel = nb.run_json("ex.selected.tolist()")
        assert len(sel) >= 0.95 * N_A and max(sel) < N_A  # (nearly) all of blob A, nothing of B
        page.wait_for_selector(f'{SUMMARY}[data-n-selected="{len(sel)}"]')
        names = page.eval_on_selector_all(
            f"{SUMMARY} .tsimcne-class", "els => els.map(e => [e.dataset.name, Number(e.dataset.count)])"
        )
        n_a = sum(i < int(0.8 * N_A) for i in sel)
        assert names == [["a", n_a], ["b", len(sel) - n_a]]
        inside = float(page.get_attribute(f"{SUMMARY} .tsimcne-purity", "data-inside"))
        # (nearly) a whole isolated blob: (nearly) every neighbour is selected too
        assert inside > 0.9 and inside == pytest.approx(nb.run_json("explainer.summary.purity_inside"), abs=1e-4)
        cols = page.eval_on_selector_all(f"{SUMMARY} svg.tsimcne-hist", "els => els.map(e => e.dataset.column)")
        assert {"brightness", "contrast", "score"} <= set(cols)
        py = nb.run_json("[explainer.summary.n_selected, explainer.summary.medians['brightness'][0] < explainer.summary.medians['brightness'][1]]")
        assert py == [len(sel), True]  # the dark blob

        # click the third thumbnail: the large view shows that image, its label and metadata
        thumb = page.locator(".tsimcne-panel .tsimcne-thumb").nth(2)
        index = int(thumb.get_attribute("data-index"))
        thumb.click()
        page.wait_for_selector(f'.tsimcne-explain .tsimcne-large[data-index="{index}"] img')
        label = page.get_attribute(".tsimcne-explain .tsimcne-large", "data-label")
        assert label == ("a" if index < int(0.8 * N_A) else "b")
        assert "site" in page.inner_text(".tsimcne-explain .tsimcne-large")
        page.locator(".tsimcne-explain").screenshot(path=str(artifacts / "explain_panel.png"))
        page.screenshot(path=str(artifacts / "explain_page.png"))
        assert "Traceback" not in page.inner_text("body")
    except Exception:
        nb.page.screenshot(path=str(artifacts / "explain_failure.png"))
        raise
    finally:
        context.close()
