"""ParametricPanel: augmentations of the clicked image, feature vs map neighbours, placing images."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError

jscatter = pytest.importorskip("jscatter")
pytest.importorskip("torch")

from tsimcne_nb.widgets.explorer import Explorer  # noqa: E402
from tsimcne_nb.widgets.parametric import ParametricPanel, feature_neighbours  # noqa: E402

N_PER = 40


def _blobs():
    rng = np.random.default_rng(0)
    xy = np.r_[rng.normal(size=(N_PER, 2)), rng.normal(size=(N_PER, 2)) + 20]
    images = rng.integers(0, 256, size=(2 * N_PER, 12, 12, 3), dtype=np.uint8)
    ds = ImageDataset(images, np.repeat([0, 1], N_PER), ["a", "b"], name="blobs", synthetic=True)
    return xy, ds


class StubModel:
    """A stand-in for a fitted TSimCNE (synthetic): the map is the first two features."""

    def __init__(self, xy):
        from tsimcne_nb.nn.augmentations import make_augmentation

        self.augmentation_ = make_augmentation("randrot", 12, rotation_degrees=30.0)
        self.xy = xy

    def features(self, X):
        if isinstance(X, ImageDataset):  # the map's own images: the map plus a little noise
            f = self.xy + np.random.default_rng(1).normal(scale=0.01, size=self.xy.shape)
            f[0] = [20.0, 20.0]  # point 0 looks like blob B to the network, sits in A on the map
            return f
        imgs = as_dataset(X).images
        return np.full((len(imgs), 2), 20.0)  # new images: blob B

    def transform(self, X):
        return np.full((len(as_dataset(X).images), 2), 20.0) + 0.5


@pytest.fixture
def setup():
    xy, ds = _blobs()
    model = StubModel(xy)
    ex = Explorer(xy, ds, model=model, page_size=10)
    return ex, model


def test_feature_neighbours_match_brute_force():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 5))
    for metric in ("euclidean", "cosine"):
        nn = feature_neighbours(x, [3, 7], k=6, metric=metric)
        if metric == "euclidean":
            d = ((x[[3, 7], None] - x[None]) ** 2).sum(-1)
        else:
            u = x / np.linalg.norm(x, axis=1, keepdims=True)
            d = 1 - u[[3, 7]] @ u.T
        d[0, 3] = d[1, 7] = np.inf
        np.testing.assert_array_equal(nn, np.argsort(d, axis=1)[:, :6])
    with pytest.raises(ConfigError, match="metric"):
        feature_neighbours(x, [0], metric="l1")


def test_click_shows_augmentations_and_where_the_map_distorts(setup):
    ex, model = setup
    panel = ParametricPanel(ex, metric="euclidean", k=10, baseline=30)
    w = panel.widget
    assert "Click a thumbnail" in panel._info.value
    ex.focus(5)  # what a click on a thumbnail does
    r = panel.result
    assert r["index"] == 5 and r["overlap"] >= 0.6  # map and features agree here
    assert panel.gallery.preset_names == ["model"]
    assert panel.gallery.strengths()["rotation_degrees"] == 30.0  # the model's own object
    assert panel.gallery.image_indices.tolist() == [5]
    assert panel._gallery_box.children == (panel.gallery.widget,)
    ex.focus(0)
    r = panel.result
    assert r["overlap"] == 0.0  # features say blob B, the map says blob A
    assert (r["feature"] >= N_PER).all() and (r["map"] < N_PER).all()
    assert panel.gallery.image_indices.tolist() == [0]
    assert 'data-index="0"' in panel._info.value and 'data-shared="0"' in panel._info.value
    assert panel._info.value.count("tsimcne-nn-feature") == 10
    assert np.median(panel.baseline_overlaps()) > 0.5  # point 0 is the odd one out
    sel = panel.select_feature_neighbours()
    assert ex.selected.tolist() == sel.tolist() and 0 in sel
    assert w is panel.widget
    assert "#0: 0 of 10" in repr(panel)


def test_place_from_python_and_by_upload(setup):
    ex, model = setup
    panel = ParametricPanel(ex, metric="euclidean", k=5, baseline=0)
    assert panel.widget is not None
    n = ex.n_points
    new = panel.place(np.zeros((2, 12, 12, 3), np.uint8))
    assert new.tolist() == [n, n + 1] and ex.n_points == n + 2
    assert ex.selected.tolist() == new.tolist()  # highlighted
    ex.scatter.widget.selection = np.array([], np.uint32)  # the front-end's answer to new data
    assert ex.selected.tolist() == new.tolist()  # ... is undone once
    ex.scatter.widget.selection = np.array([], np.uint32)  # a user's clear is not
    assert ex.selected.tolist() == []
    r = panel.neighbours(n)  # an added point has features too: its neighbours are in blob B
    assert all(i >= N_PER or i == 0 for i in r["feature"])  # (point 0's features are B's)
    buf = io.BytesIO()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(buf, format="PNG")  # another size: resized
    panel._on_upload({"new": [{"name": "cell.png", "content": memoryview(buf.getvalue())}]})
    assert ex.n_points == n + 3 and ex.selected.tolist() == [n + 2]
    assert "cell.png" in panel._status.value and 'data-indices="' + str(n + 2) in panel._status.value
    panel._on_upload({"new": [{"name": "notes.txt", "content": b"hello"}]})
    assert "tsimcne-error" in panel._status.value and ex.n_points == n + 3


def test_errors(setup):
    ex, model = setup
    with pytest.raises(ConfigError, match="needs features"):
        ParametricPanel(Explorer(ex.embedding, ex.dataset))
    with pytest.raises(DataError, match="one row per image"):
        ParametricPanel(ex, features=np.zeros((3, 4)))
    with pytest.raises(ConfigError, match="metric"):
        ParametricPanel(ex, metric="l1")
    panel = ParametricPanel(ex, features=np.random.default_rng(0).normal(size=(2 * N_PER, 4)))
    with pytest.raises(DataError, match="click a thumbnail"):
        panel.select_feature_neighbours()
    ex.add_points(np.zeros((1, 12, 12, 3), np.uint8))  # not through the panel: no features
    with pytest.raises(DataError, match="no features"):
        panel.neighbours(ex.n_points - 1)


def test_with_a_real_fitted_model():
    from tsimcne_nb import TSimCNE

    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    model = TSimCNE(budget="quick", total_epochs=(0, 1, 0), batch_size=16, backbone="resnet18_w4",
                    projection_hidden=8, pretrain_dim=4, random_state=0, progress=False,
                    device="cpu").fit(images)
    ds = ImageDataset(images, np.repeat([0, 1], 16), ["a", "b"], name="random", synthetic=True)
    ex = Explorer(model.transform(images), ds, model=model)
    panel = ParametricPanel(ex, k=5, n_views=3, baseline=8)
    r = panel.show(3)
    assert len(r["feature"]) == 5 and len(r["map"]) == 5 and 3 not in r["feature"]
    aug = model.augmentation_
    s = panel.gallery.strengths()
    assert s["rotation_degrees"] == aug.rotation_degrees and s["jitter_p"] == aug.jitter_p
    assert panel.gallery.views["model"].shape == (1, 3, 8, 8, 3)
    new = panel.place(images[:2])
    np.testing.assert_allclose(ex.selection_frame(new)[["x", "y"]], model.transform(images[:2]), rtol=1e-5)


def test_attach_uses_the_explorers_add_panel(setup):
    ex, model = setup
    panel = ParametricPanel(ex, k=5, baseline=0)
    calls = []
    ex.add_panel = lambda widget, title="": calls.append((widget, title))
    assert panel.attach(title="parametric") is ex
    assert calls == [(panel.widget, "parametric")]
