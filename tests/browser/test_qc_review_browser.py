"""QCReview in a real JupyterLab + headless Chromium: the picker, the buttons and the cards work."""

from __future__ import annotations

import pytest

from .conftest import make_page

pytestmark = pytest.mark.browser

REVIEW = ".qc-review"
CELLS = [
    """\
import numpy as np
from tsimcne_nb import qc
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.widgets import QCReview

# three blobs of random (synthetic) images, one planted tight group of 25, one exact duplicate pair
rng = np.random.default_rng(0)
labels = np.repeat(np.arange(3), 80)
xy = rng.normal(0, 3, size=(240, 2)) + np.array([[0, 0], [30, 0], [0, 30]])[labels]
xy[200:225] = np.array([4.0, 4.0]) + rng.normal(0, 0.05, size=(25, 2))
images = rng.integers(0, 256, size=(240, 16, 16, 3), dtype=np.uint8)
images[11] = images[10]
ds = ImageDataset(images, labels, ["a", "b", "c"], name="synthetic blobs", synthetic=True)
report = qc.qc_report(ds, xy, min_evidence=1.0)
review = QCReview(report, height=360)
review.widget.add_class("qc-review");""",
    "review",
]


def _thumbs(page) -> int:
    return page.eval_on_selector_all(f"{REVIEW} .tsimcne-panel .tsimcne-thumb", "els => els.length")


def test_qc_review_picker_buttons_and_cards(chromium_browser, lab):
    context, nb = make_page(chromium_browser, lab, CELLS, "qc_review_test.ipynb", timeout_ms=90_000)
    try:
        page = nb.page
        page.wait_for_selector(f"{REVIEW} select")
        sizes = nb.run_json("[int(s) for s in report.groups['size']]")
        ranks = nb.run_json("[int(r) for r in report.groups['rank']]")
        assert len(ranks) >= 2
        # the top group's members are the selection: the panel shows them as cards
        page.wait_for_function(
            f"() => document.querySelectorAll('{REVIEW} .tsimcne-panel .tsimcne-thumb').length === {sizes[0]}"
        )
        assert "Traceback" not in page.inner_text("body")
        # a click on a real button tags the whole group in the kernel's report
        page.locator(f"{REVIEW} button", has_text="tag group: keep").click()
        page.wait_for_function(
            f"() => document.querySelector('{REVIEW} .widget-html-content').innerText"
            f".includes('tagged: keep {sizes[0]}')"
        )
        first = nb.run_json("sorted(set(report.tags.loc[report.groups.loc[0, 'members'], 'tag']))")
        assert first == ["keep"]
        # picking another group in the dropdown moves the selection and the cards
        page.locator(f"{REVIEW} .widget-dropdown select").select_option(value=None, index=1)
        page.wait_for_function(
            f"() => document.querySelectorAll('{REVIEW} .tsimcne-panel .tsimcne-thumb').length === {sizes[1]}"
        )
        assert nb.run_json("review.current") == ranks[1]
        assert nb.run_json("sorted(int(i) for i in review.explorer.selected)") == nb.run_json(
            "sorted(int(i) for i in report.groups.loc[1, 'members'])"
        )
    finally:
        context.close()
