"""Tests of tsimcne_nb.viz.figures: content, PNG writing, overwrite protection, validation."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba
from PIL import Image

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import DataError
from tsimcne_nb.viz import figures, overlays


@pytest.fixture
def ds() -> ImageDataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [30, 30, 30, 4])
    # each class has its own mean colour so images are recognisable in the figures
    images = (labels[:, None, None, None] * 60 + rng.integers(0, 30, (94, 12, 12, 3))).astype(np.uint8)
    return ImageDataset(images, labels, class_names=["red", "green", "blue", "rare"], name="toy",
                        synthetic=True)


@pytest.fixture
def emb(ds) -> np.ndarray:
    rng = np.random.default_rng(1)
    return (rng.normal(size=(len(ds), 2)) + 5 * ds.labels[:, None]).astype(np.float32)


def _is_png(path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_contact_sheet_rows_title_and_png(ds, tmp_path):
    path = tmp_path / "sheet.png"
    fig = figures.contact_sheet(ds, n_per_class=5, path=path)
    axes = fig.get_axes()
    assert len(axes) == 4  # one row per class
    assert [ax.get_ylabel().split("\n")[0] for ax in axes] == ["red", "green", "blue", "rare"]
    assert "(n=4)" in axes[3].get_ylabel()
    assert "synthetic" in fig._suptitle.get_text()
    # row image holds the chosen images: the strip of class 'blue' has its mean colour
    strip = axes[2].get_images()[0].get_array()
    assert strip.shape[0] == 12
    assert 120 <= float(np.asarray(strip)[:, :12].mean()) <= 150
    w, h = _is_png(path)
    assert w > 100 and h > 100


def test_contact_sheet_refuses_overwrite(ds, tmp_path):
    path = tmp_path / "sheet.png"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        figures.contact_sheet(ds, path=path)
    assert path.read_bytes() == b"keep me"
    figures.contact_sheet(ds, path=path, overwrite=True)
    _is_png(path)


def test_contact_sheet_max_classes_and_unlabelled(ds):
    fig = figures.contact_sheet(ds, n_per_class=3, max_classes=2)
    assert len(fig.get_axes()) == 2
    assert "first 2 shown" in fig._suptitle.get_text()
    unlabelled = ImageDataset(ds.images, None, name="nolabels")
    fig = figures.contact_sheet(unlabelled, n_per_class=4, max_classes=3, title="mine")
    assert len(fig.get_axes()) == 3
    assert fig._suptitle.get_text() == "mine"  # not synthetic: no tag


def test_contact_sheet_rejects_arrays():
    with pytest.raises(DataError, match="ImageDataset"):
        figures.contact_sheet(np.zeros((4, 8, 8, 3), np.uint8))


def test_plot_map_colours_and_other(ds, emb, tmp_path):
    fig = figures.plot_map(emb, ds.labels, ds.class_names, other_threshold=10, title="T",
                           path=tmp_path / "map.png")
    ax = fig.get_axes()[0]
    assert ax.get_title() == "T"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["red", "green", "blue", "other"]
    colors = ax.collections[0].get_facecolors()
    n_black = int(np.sum(np.all(np.isclose(colors, to_rgba("black")), axis=1)))
    assert n_black == 4  # exactly the 4 points of the small class
    _is_png(tmp_path / "map.png")
    fig2 = figures.plot_map(emb, ds.labels, ds.class_names)  # no threshold: no 'other'
    legend2 = [t.get_text() for t in fig2.get_axes()[0].get_legend().get_texts()]
    assert legend2 == ["red", "green", "blue", "rare"]


def test_plot_map_validation(emb):
    with pytest.raises(DataError, match=r"\(N, 2\)"):
        figures.plot_map(np.zeros((5, 3)))
    with pytest.raises(DataError, match="NaN"):
        figures.plot_map(np.full((5, 2), np.nan))
    with pytest.raises(DataError, match="one entry per point"):
        figures.plot_map(emb, np.zeros(3, int))
    with pytest.raises(DataError, match="class name"):
        figures.plot_map(emb, np.arange(len(emb)) % 3, class_names=["a"])


def test_plot_panels(ds, emb, tmp_path):
    fig = figures.plot_panels({"A\nkNN 90%": emb, "B": -emb, "C": emb * 2}, ds.labels,
                              ds.class_names, ncols=2, path=tmp_path / "p.png")
    visible = [ax for ax in fig.get_axes() if ax.get_visible()]
    assert [ax.get_title() for ax in visible] == ["A\nkNN 90%", "B", "C"]
    # one legend for the whole figure, outside the grid, and none on the panels
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in visible)
    _is_png(tmp_path / "p.png")
    with pytest.raises(FileExistsError):
        figures.plot_panels([("A", emb)], path=tmp_path / "p.png")
    with pytest.raises(DataError, match="no panels"):
        figures.plot_panels({})


def test_thumbnail_grid(ds, emb, tmp_path):
    fig = overlays.thumbnail_grid_over_map(emb, ds, grid=5, min_count=3, path=tmp_path / "g.png")
    ax = fig.get_axes()[0]
    X = emb.astype(np.float64)
    span = max(np.ptp(X[:, 0]), np.ptp(X[:, 1]))
    lo = (X.min(0) + X.max(0)) / 2 - span / 2
    ij = np.clip(np.floor((X - lo) / (span / 5)).astype(int), 0, 4)
    counts = np.bincount(ij[:, 0] * 5 + ij[:, 1], minlength=25)
    assert len(ax.get_images()) == int(np.sum(counts >= 3))
    assert "synthetic" in ax.get_title()
    _is_png(tmp_path / "g.png")
    # a high threshold shows fewer images
    fig2 = overlays.thumbnail_grid_over_map(emb, ds, grid=5, min_count=20)
    assert len(fig2.get_axes()[0].get_images()) == int(np.sum(counts >= 20))
    with pytest.raises(DataError, match="points but the dataset"):
        overlays.thumbnail_grid_over_map(emb[:10], ds)


def test_callouts_coordinates_indices_selection(ds, emb, tmp_path):
    from matplotlib.offsetbox import AnnotationBbox

    fig = overlays.callouts(emb, ds, [(0.0, 0.0), (15.0, 15.0)], n_images=2, path=tmp_path / "c.png")
    boxes = [a for a in fig.get_axes()[0].artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 2
    # the strip near (15, 15) shows images of class 'rare' or 'blue' (the blobs there)
    strip = boxes[1].offsetbox.get_data()
    assert strip.shape == (12, 2 * 12 + 1, 3)
    _is_png(tmp_path / "c.png")
    fig = overlays.callouts(emb, ds, np.array([0, 50, 90]))
    assert len([a for a in fig.get_axes()[0].artists if isinstance(a, AnnotationBbox)]) == 3
    fig = overlays.callouts(emb, ds, ds.labels == 1, n_images=4)
    boxes = [a for a in fig.get_axes()[0].artists if isinstance(a, AnnotationBbox)]
    assert len(boxes) == 1
    # every image of a 'green' selection has the green class's brightness (60 + noise)
    data = boxes[0].offsetbox.get_data()
    for j in range(4):
        assert 60 <= data[:, j * 13 : j * 13 + 12].mean() <= 90


def test_callouts_validation(ds, emb):
    with pytest.raises(DataError, match="boolean selection"):
        overlays.callouts(emb, ds, np.ones(5, bool))
    with pytest.raises(DataError, match="empty"):
        overlays.callouts(emb, ds, np.zeros(len(ds), bool))
    with pytest.raises(DataError, match="indices must lie"):
        overlays.callouts(emb, ds, np.array([1000]))
    with pytest.raises(DataError, match="points must be"):
        overlays.callouts(emb, ds, np.zeros((2, 3)))
