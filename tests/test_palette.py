"""One palette: figures, static PNGs and the live explorer colour a class alike."""

from __future__ import annotations

import numpy as np
import pytest

from tsimcne_nb.viz.palette import OKABE_ITO, category_colors, category_hex, to_hex


@pytest.mark.parametrize("n", [0, 1, 5, 8, 9, 12, 20, 21, 40])
def test_category_colors_are_distinct_rgb(n):
    cols = category_colors(n)
    assert len(cols) == n
    assert all(len(c) == 3 and all(0.0 <= v <= 1.0 for v in c) for c in cols)
    assert len(set(category_hex(n))) == n


def test_up_to_eight_categories_use_okabe_ito_like_jupyter_scatter():
    assert category_hex(8) == [h.lower() for h in OKABE_ITO]
    assert to_hex((1.0, 0.5, 0.0, 0.3)) == "#ff8000"


def test_negative_count_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        category_colors(-1)


@pytest.mark.parametrize("n", [4, 12])
def test_figure_and_explorer_png_use_the_same_colours(n):
    from tsimcne_nb.viz.figures import class_colors
    from tsimcne_nb.widgets.explorer import render_map_png

    assert [to_hex(c) for c in class_colors(n)] == category_hex(n)
    # a map whose points of class i all sit in one column: the PNG pixel there has colour i
    xy = np.array([[i, 0.0] for i in range(n) for _ in range(50)])
    labels = np.repeat([f"c{i:02d}" for i in range(n)], 50)
    png = render_map_png(xy, labels, size=400)
    from io import BytesIO

    from PIL import Image

    img = np.asarray(Image.open(BytesIO(png)).convert("RGB"))
    seen = {"#{:02x}{:02x}{:02x}".format(*px) for px in img.reshape(-1, 3)}
    missing = [h for h in category_hex(n) if h not in seen]
    assert not missing, f"classes drawn in colours outside the palette: {missing}"
