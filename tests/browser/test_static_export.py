"""Static fallback: an executed notebook exported by nbconvert shows the map and gallery as PNGs.

No browser needed, but a kernel is: it lives beside the browser tests (same marker).
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.browser

CELLS = [
    "import numpy as np\n"
    "from tsimcne_nb.widgets import AugmentationGallery, Explorer\n"
    "rng = np.random.default_rng(0)\n"
    "images = rng.integers(0, 256, (60, 12, 12, 3), dtype=np.uint8)\n"
    "xy = rng.normal(size=(60, 2))",
    "Explorer(xy, images)",
    "AugmentationGallery(images, presets=('default',), n_views=3, n_images=1)",
]


def test_nbconvert_html_contains_pngs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    from nbconvert import HTMLExporter

    from .conftest import REPO

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    # the kernel imports tsimcne_nb from the repo
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    client = nbclient.NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    for cell in nb.cells[1:]:
        (out,) = [o for o in cell.outputs if o.output_type in ("execute_result", "display_data")]
        assert "image/png" in out.data and "application/vnd.jupyter.widget-view+json" in out.data
    nb.metadata.pop("widgets", None)  # as saved without widget state
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert html.count("data:image/png;base64,") >= 2
