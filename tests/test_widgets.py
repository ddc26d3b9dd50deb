"""Python-side logic of the widgets (no browser): selection, paging, tags, export, linking."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError

jscatter = pytest.importorskip("jscatter")

from tsimcne_nb.widgets.explorer import (  # noqa: E402
    NEW_CATEGORY,
    PREVIEW_KEY,
    Explorer,
)
from tsimcne_nb.widgets.gallery import AugmentationGallery  # noqa: E402
from tsimcne_nb.widgets.linked import LinkedExplorer  # noqa: E402
from tsimcne_nb.widgets.thumbnails import ThumbnailCache, png_data_uri  # noqa: E402


def _blobs(n_per: int = 100, seed: int = 0, size: int = 12):
    """Three well-separated random blobs with random images (random data, synthetic)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n_per)
    xy = rng.normal(size=(3 * n_per, 2)) + np.array([[0, 0], [20, 0], [0, 20]])[labels]
    images = rng.integers(0, 256, size=(3 * n_per, size, size, 3), dtype=np.uint8)
    meta = pd.DataFrame(
        {"batch": rng.choice(["b1", "b2"], 3 * n_per), "score": rng.random(3 * n_per)}
    )
    ds = ImageDataset(images, labels, ["red", "green", "blue"], meta, name="blobs", synthetic=True)
    return xy, ds


def _decode(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


@pytest.fixture
def blobs():
    return _blobs()


@pytest.fixture
def explorer(blobs):
    xy, ds = blobs
    return Explorer(xy, ds, page_size=10)


# ------------------------------------------------------------------ selection
def test_browser_selection_updates_selected_and_panel(explorer, blobs):
    _, ds = blobs
    sel = np.arange(100, 125)
    explorer.scatter.widget.selection = sel.astype(np.uint32)  # as a lasso in the browser does
    np.testing.assert_array_equal(explorer.selected, sel)
    p = explorer.panel
    assert (p.n_selected, p.n_pages, p.page) == (25, 3, 0)
    assert [it["index"] for it in p.items] == list(range(100, 110))
    assert {it["label"] for it in p.items} == {"green"}
    np.testing.assert_array_equal(_decode(p.items[3]["src"]), ds.images[103])


def test_paging_and_clamp(explorer):
    explorer.select(np.arange(0, 25))
    explorer.panel.page = 2
    assert [it["index"] for it in explorer.panel.items] == list(range(20, 25))
    explorer.panel.page = 7  # past the end: clamped to the last page
    assert explorer.panel.page == 2
    explorer.select([3, 4])  # a new selection starts at page 0
    assert explorer.panel.page == 0 and [it["index"] for it in explorer.panel.items] == [3, 4]


def test_sample_mode(explorer):
    explorer.select(np.arange(0, 200))
    explorer.panel.mode = "sample"
    first = [it["index"] for it in explorer.panel.items]
    assert len(first) == 10 and set(first) <= set(range(200))
    assert first != list(range(10))
    explorer.panel.resample += 1
    second = [it["index"] for it in explorer.panel.items]
    assert len(second) == 10 and second != first
    explorer.panel.resample -= 1  # same seed, same sample
    assert [it["index"] for it in explorer.panel.items] == first
    explorer.panel.mode = "bogus"  # invalid mode from the front-end is refused
    assert explorer.panel.mode == "sample"


def test_large_selection_encodes_only_one_page():
    rng = np.random.default_rng(1)
    n = 10_000
    images = rng.integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)
    ex = Explorer(rng.normal(size=(n, 2)), images, page_size=100)
    assert len(ex.cache) == 0  # nothing encoded up front
    ex.scatter.widget.selection = np.arange(n, dtype=np.uint32)
    assert ex.panel.n_selected == n and len(ex.panel.items) == 100
    assert ex.cache.misses == 100 and len(ex.cache) == 100


def test_select_from_python(explorer):
    explorer.select([5, 1, 5, 250])
    np.testing.assert_array_equal(explorer.selected, [1, 5, 250])
    np.testing.assert_array_equal(np.sort(explorer.scatter.widget.selection), [1, 5, 250])
    mask = np.zeros(300, bool)
    mask[[7, 8]] = True
    explorer.select(mask)
    np.testing.assert_array_equal(explorer.selected, [7, 8])
    explorer.select(None)
    assert len(explorer.selected) == 0 and explorer.panel.items == []
    with pytest.raises(DataError, match=r"\[0, 299\]"):
        explorer.select([300])
    with pytest.raises(DataError, match="integer"):
        explorer.select([0.5])


def test_selection_frame(explorer):
    explorer.select([0, 150])
    frame = explorer.selection_frame()
    assert list(frame["index"]) == [0, 150]
    assert list(frame["label_name"]) == ["red", "green"]
    assert {"x", "y", "label", "tags", "batch", "score", "source_index", "split", "new"} <= set(
        frame
    )
    np.testing.assert_allclose(frame[["x", "y"]].to_numpy(), explorer._xy[[0, 150]])


def test_click_on_thumbnail_focuses_point(explorer):
    explorer.select([10, 11, 12])
    explorer._on_panel_msg(explorer.panel, {"type": "click", "index": 11}, [])
    assert explorer.focused == 11 and explorer.panel.focused == 11
    assert explorer.scatter.widget.hovering == 11
    (rect,) = explorer.scatter.annotations()["annotations"]
    assert rect.x_start < rect.x_end
    np.testing.assert_array_equal(explorer.selected, [10, 11, 12])  # selection unchanged


def test_hover_preview_is_encoded_lazily(explorer, blobs, monkeypatch):
    _, ds = blobs
    sent = []
    monkeypatch.setattr(explorer.scatter.widget, "send", sent.append)
    assert 42 not in explorer.cache
    event = {"type": "tooltip", "index": 42, "preview": PREVIEW_KEY, "properties": ["class"]}
    explorer.scatter.widget._handle_custom_msg(
        {**event, "type": explorer.scatter.widget.event_types["TOOLTIP"]}, []
    )
    (msg,) = sent
    assert msg["index"] == 42 and msg["properties"] == {"class": "red"}
    np.testing.assert_array_equal(_decode(msg["preview"]), ds.images[42])
    assert 42 in explorer.cache
    assert PREVIEW_KEY not in explorer.scatter.widget.data  # no image column


# ----------------------------------------------------------------------- tags
def test_tags_several_per_point_and_show_tags(explorer):
    explorer.select(np.arange(0, 5))
    explorer.tag_selection("odd")
    explorer.tag([0, 1], "first")
    assert set(explorer.tags) == {"odd", "first"}
    frame = explorer.selection_frame([0, 3, 200])
    assert list(frame["tags"]) == ["odd;first", "odd", ""]
    explorer.show_tags()
    assert explorer.color_by == "tag" and explorer.toolbar.legend_title == "tag"
    tag_col = explorer.scatter.widget.data["color"]
    assert tag_col[0] == "first" and tag_col[3] == "odd" and tag_col[200] == "untagged"
    explorer.untag("first", [1])
    np.testing.assert_array_equal(explorer.tags["first"], [0])
    explorer.show_colors()
    assert explorer.color_by == "label" and explorer.scatter.widget.data["color"][0] == "red"


def test_tag_errors(explorer):
    with pytest.raises(DataError, match="selection is empty"):
        explorer.tag_selection("x")
    with pytest.raises(ConfigError, match="tag name"):
        explorer.tag([1], "")
    with pytest.warns(DeprecationWarning, match="old order"):
        explorer.tag("old", [1])  # tag(name, indices), the order before the QC report's
    np.testing.assert_array_equal(explorer.tags["old"], [1])
    with pytest.raises(ConfigError, match="no tag named"):
        explorer.untag("missing")


# --------------------------------------------------------------------- export
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_tags_and_selection(explorer, tmp_path, suffix):
    explorer.tag([1, 2], "a")
    explorer.tag([2, 200], "b")
    path = explorer.export(tmp_path / f"tags{suffix}")
    read = pd.read_csv if suffix == ".csv" else pd.read_parquet
    frame = read(path)
    assert list(frame["index"]) == [1, 2, 200]
    assert list(frame["tag:a"]) == [True, True, False] and list(frame["tag:b"]) == [
        False,
        True,
        True,
    ]
    with pytest.raises(FileExistsError, match="overwrite=True"):
        explorer.export(path)
    explorer.select([7])
    explorer.export(path, what="selection", overwrite=True)
    assert list(read(path)["index"]) == [7]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left


def test_export_errors(explorer, tmp_path):
    with pytest.raises(DataError, match="no tags"):
        explorer.export(tmp_path / "t.csv")
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        explorer.export(tmp_path / "t.xlsx", what="selection")
    with pytest.raises(ConfigError, match="what must be"):
        explorer.export(tmp_path / "t.csv", what="everything")


# --------------------------------------------------------------------- colour
def test_color_by_metadata_and_scores(blobs):
    xy, ds = blobs
    ex = Explorer(xy, ds, color_by="batch")
    assert set(ex.scatter.widget.data["color"].cat.categories) == {"b1", "b2"}
    scores = np.linspace(0, 1, len(xy))
    ex2 = Explorer(xy, ds, color_by=scores)
    np.testing.assert_allclose(ex2.scatter.widget.data["color"], scores)
    with pytest.raises(ConfigError, match="nor a column"):
        Explorer(xy, ds, color_by="nope")
    with pytest.raises(DataError, match="one value per point"):
        Explorer(xy, ds, color_by=scores[:-1])


def test_input_errors(blobs):
    xy, ds = blobs
    with pytest.raises(DataError, match=r"shape \(N, 2\)"):
        Explorer(np.zeros((300, 3)), ds)
    with pytest.raises(DataError, match="one point per image"):
        Explorer(xy[:-1], ds)
    bad = xy.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        Explorer(bad, ds)
    with pytest.raises(ConfigError, match="page_size"):
        Explorer(xy, ds, page_size=0)
    with pytest.raises(ConfigError, match="mode"):
        Explorer(xy, ds, mode="all")


# ------------------------------------------------------------------- linking
def test_linked_explorer_syncs_selection_and_hover(blobs):
    xy, ds = blobs
    linked = LinkedExplorer([xy, xy[:, ::-1] * 2], ds, titles=["A", "B"])
    a, b = linked.explorers
    b.scatter.widget.selection = np.array([3, 4, 5], np.uint32)  # lasso on the second map
    np.testing.assert_array_equal(a.selected, [3, 4, 5])
    np.testing.assert_array_equal(linked.selected, [3, 4, 5])
    assert [it["index"] for it in linked.panel.items] == [3, 4, 5]
    a.scatter.widget.hovering = 9
    assert b.scatter.widget.hovering == 9
    linked.select([1])
    np.testing.assert_array_equal(b.selected, [1])
    linked.tag_selection("t")
    b.show_tags()
    assert b.scatter.widget.data["color"][1] == "t"
    frame = linked.selection_frame()
    assert frame.loc[0, "x1"] == pytest.approx(xy[1, 1] * 2)
    assert a.cache is b.cache
    with pytest.raises(ConfigError, match="one title per map"):
        LinkedExplorer([xy, xy], ds, titles=["only one"])


# -------------------------------------------------------------- out of sample
class _Model:
    def __init__(self):
        self.seen = None

    def transform(self, images):
        self.seen = np.asarray(images)
        return np.tile([[40.0, 40.0]], (len(images), 1))


def test_add_points(explorer, blobs):
    _, ds = blobs
    model = _Model()
    new = ds.images[:4][:, ::-1]  # flipped copies as "new" images
    idx = explorer.add_points(new, model)
    np.testing.assert_array_equal(idx, [300, 301, 302, 303])
    np.testing.assert_array_equal(model.seen, new)
    np.testing.assert_array_equal(explorer.selected, idx)
    assert explorer.scatter.widget.points.shape[0] == 304
    assert explorer.scatter.widget.data["class"][301] == NEW_CATEGORY
    assert NEW_CATEGORY in explorer.scatter.widget.data["color"].cat.categories
    np.testing.assert_array_equal(_decode(explorer.panel.items[1]["src"]), new[1])
    frame = explorer.selection_frame()
    assert frame["new"].all() and (frame["label_name"] == NEW_CATEGORY).all()


def test_add_points_errors(explorer, blobs):
    _, ds = blobs
    with pytest.raises(ConfigError, match="transform"):
        explorer.add_points(ds.images[:2])

    class Bad:
        def transform(self, images):
            return np.zeros((len(images), 3))

    with pytest.raises(DataError, match="transform"):
        explorer.add_points(ds.images[:2], Bad())
    with pytest.raises(DataError, match="resize"):
        explorer.add_points(np.zeros((2, 5, 5, 3), np.uint8), _Model())


# ---------------------------------------------------------------- thumbnails
def test_thumbnail_cache_is_bounded_lru():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(50, 6, 6, 3), dtype=np.uint8)
    cache = ThumbnailCache(images, size=None, maxsize=5)
    uris = cache.get_many(range(20))
    assert len(cache) == 5 and len(set(uris)) == 20
    assert [i for i in range(20) if i in cache] == [15, 16, 17, 18, 19]
    cache.get(15)  # touch: 16 is now the oldest
    cache.get(30)
    assert 16 not in cache and 15 in cache
    np.testing.assert_array_equal(_decode(cache.get(3)), images[3])
    with pytest.raises(ConfigError, match="maxsize"):
        ThumbnailCache(images, maxsize=0)


class _IncreasingOnly:
    """An h5py-like image source: refuses index arrays that are not strictly increasing."""

    def __init__(self, arr: np.ndarray):
        self.arr, self.shape, self.dtype = arr, arr.shape, arr.dtype

    def __len__(self):
        return len(self.arr)

    def __getitem__(self, key):
        if isinstance(key, np.ndarray) and key.size > 1 and np.any(np.diff(key) <= 0):
            raise TypeError("indices must be increasing (h5py)")
        return self.arr[key]


def test_lazy_sources_are_read_in_increasing_order(blobs):
    """Thumbnails and the explorer read a lazy source through the one sorted-read helper."""
    xy, ds = blobs
    lazy = _IncreasingOnly(ds.images)
    idx = np.array([7, 2, 7, 0, 299])
    with pytest.raises(TypeError):
        lazy[idx]  # the naive read fails on such a source
    cache = ThumbnailCache(lazy, size=None)
    np.testing.assert_array_equal(cache._read(idx), ds.images[idx])
    lazy_ds = ImageDataset(lazy, ds.labels, ds.class_names, ds.metadata, name="lazy blobs", synthetic=True)
    assert lazy_ds.is_lazy
    ex = Explorer(xy, lazy_ds, page_size=10)
    np.testing.assert_array_equal(ex._read_images(idx), ds.images[idx])
    assert [_decode(u).tolist() for u in cache.get_many([5, 1])] == [
        ds.images[5].tolist(), ds.images[1].tolist()]


def test_thumbnails_shrink_large_images():
    img = np.random.default_rng(0).integers(0, 256, (200, 100, 3), dtype=np.uint8)
    assert _decode(png_data_uri(img, 56)).shape == (56, 28, 3)
    assert _decode(png_data_uri(img[:20, :20], 56)).shape == (20, 20, 3)


# ------------------------------------------------------------------- gallery
def test_gallery_renders_distinct_views_per_preset(blobs):
    pytest.importorskip("torch")
    _, ds = blobs
    g = AugmentationGallery(ds, n_views=6, n_images=2)
    from tsimcne_nb.nn.augmentations import make_augmentation

    assert g._factory is make_augmentation  # the training code's augmentation by default
    views = g.views
    assert set(views) == {"default", "rot90", "randrot"}
    for v in views.values():
        assert v.shape == (2, 6, 12, 12, 3) and v.dtype == np.uint8
        flat = v[0].reshape(6, -1)
        assert len({row.tobytes() for row in flat}) == 6  # six different views
    rows = g._view.rows
    assert len(rows) == 3 * 2 and all(len(r["views"]) == 6 for r in rows)
    before = views["default"].copy()
    g.redraw()
    assert not np.array_equal(before, g.views["default"])
    assert g._view.generation == 1


def test_gallery_strength_overrides_reach_the_augmentation(blobs):
    _, ds = blobs
    calls = []

    class Stub:
        def __init__(self, preset, size, **kw):
            calls.append((preset, size, kw))

        def __call__(self, images, generator=None):
            import torch

            x = images.permute(0, 3, 1, 2).float() / 255
            return x * torch.rand(x.shape[0], 1, 1, 1, generator=generator)

    g = AugmentationGallery(
        ds, presets=("default",), n_views=3, indices=[0, 5], augmentation_factory=Stub
    )
    calls.clear()
    g.set_strength(crop_scale_min=0.5, grayscale_p=0.0)
    (preset, size, kw) = calls[-1]
    assert preset == "default" and size == 12
    assert kw["crop_scale"] == (0.5, 1.0) and kw["grayscale_p"] == 0.0
    np.testing.assert_allclose(kw["fill"], ds.border_color())
    widget = g.widget
    assert g._sliders["crop_scale_min"].value == 0.5
    g._sliders["grayscale_p"].value = 0.4  # moving a slider redraws with that strength
    assert calls[-1][2]["grayscale_p"] == pytest.approx(0.4)
    g.reset()
    assert "grayscale_p" not in calls[-1][2]
    assert widget is g.widget
    with pytest.raises(ConfigError, match="unknown strength"):
        g.set_strength(blur=1.0)
    with pytest.raises(ConfigError, match=r"must lie in"):
        g.set_strength(hue=2.0)
    with pytest.raises(DataError, match="indices"):
        AugmentationGallery(ds, indices=[1000], augmentation_factory=Stub)
    with pytest.raises(ConfigError, match="presets"):
        AugmentationGallery(ds, presets="default", augmentation_factory=Stub)


# ------------------------------------------------------------ static fallback
def _png_pixels(bundle) -> np.ndarray:
    assert "application/vnd.jupyter.widget-view+json" in bundle
    return np.asarray(Image.open(io.BytesIO(bundle["image/png"])).convert("RGB"))


def test_static_fallback_mimebundles(explorer, blobs):
    xy, ds = blobs
    px = _png_pixels(explorer._repr_mimebundle_())
    assert px.std() > 5  # a drawn map, not a blank image
    linked = LinkedExplorer([xy, -xy], ds)
    assert _png_pixels(linked._repr_mimebundle_()).shape[1] > px.shape[1] * 0.9
    g = AugmentationGallery(ds, presets=("default",), n_views=2, n_images=1)
    assert _png_pixels(g._repr_mimebundle_()).std() > 5


# ------------------------------------------------- colours: one palette, stable
def test_second_tag_keeps_the_tag_colour_map(explorer):
    """Issue 14 fix 2: a second tag must not recolour the untagged points."""
    explorer.show_tags()
    explorer.tag([0, 1], "a")
    explorer.tag([2], "b")
    colors = explorer.scatter.color()
    assert colors["by"] == "color"
    layer = explorer.color_layer()
    assert layer.colors["untagged"] == "#d0d0d0"
    # jupyter-scatter got the explicit map (tag a, tag b, untagged), not its own palette
    sent = [tuple(round(v, 3) for v in c[:3]) for c in explorer.scatter.widget.color]
    assert (round(0xD0 / 255, 3),) * 3 in sent and len(sent) == 3


def test_add_points_keeps_class_colours_and_puts_new_last(explorer, blobs):
    """Issue 14 fix 3: adding points must not change the classes' colours."""
    before = dict(explorer.color_layer().colors)
    explorer.add_points(blobs[1].images[:3], _Model())
    after = explorer.color_layer().colors
    assert list(after)[-1] == NEW_CATEGORY
    assert {k: after[k] for k in before} == before
    assert [e["name"] for e in explorer.toolbar.legend] == ["red", "green", "blue", "new"]


def test_live_and_static_use_one_palette_beyond_8_classes():
    """Issue 14 fix 4: 12 classes get the same colours live and in the PNG."""
    from tsimcne_nb.viz.palette import category_hex

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(12), 20)
    xy = np.c_[labels * 10.0, rng.normal(size=240)]
    ds = ImageDataset(rng.integers(0, 256, (240, 8, 8, 3), dtype=np.uint8), labels,
                      [f"c{i:02d}" for i in range(12)], synthetic=True)
    ex = Explorer(xy, ds)
    assert list(ex.color_layer().colors.values()) == category_hex(12)
    png = np.asarray(Image.open(io.BytesIO(ex.static_png())).convert("RGB")).reshape(-1, 3)
    seen = {"#{:02x}{:02x}{:02x}".format(*p) for p in np.unique(png, axis=0)}
    assert set(category_hex(12)) <= seen


def test_color_by_assignment_recolours(explorer):
    """Issue 14 fix 4: `ex.color_by = "score"` recolours (it was silently ignored)."""
    explorer.color_by = "score"
    assert explorer.scatter.widget.data["color"].dtype.kind == "f"
    assert explorer.toolbar.color_by == "score" and explorer.toolbar.colorbar["stops"]
    explorer.toolbar.color_by = "batch"  # the toolbar's menu
    assert explorer.color_by == "batch" and explorer.toolbar.legend_title == "batch"
    with pytest.raises(ConfigError, match="nor a column"):
        explorer.color_by = "blur"


def test_focus_clears_when_the_selection_moves_on(explorer):
    explorer.select([10, 11])
    explorer.focus(11)
    explorer.select([20, 21])
    assert explorer.focused == -1 and explorer.panel.focused == -1
    assert explorer.scatter.annotations()["annotations"] == []
    explorer.focus(20)
    explorer._on_panel_msg(explorer.panel, {"type": "click", "index": 20}, [])  # second click
    assert explorer.focused == -1


# ----------------------------------------------------------- toolbar, search
def test_toolbar_messages_tag_search_legend_export(explorer, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = explorer._on_toolbar_msg
    msg(explorer.toolbar, {"type": "tag", "name": "x"}, [])
    assert explorer.toolbar.status_error and "empty" in explorer.toolbar.status
    msg(explorer.toolbar, {"type": "legend", "name": "green", "add": False}, [])
    np.testing.assert_array_equal(explorer.selected, np.arange(100, 200))
    msg(explorer.toolbar, {"type": "legend", "name": "blue", "add": True}, [])
    np.testing.assert_array_equal(explorer.selected, np.arange(100, 300))
    msg(explorer.toolbar, {"type": "tag", "name": "gb", "key": "1"}, [])
    assert len(explorer.tags["gb"]) == 200 and explorer.toolbar.tags == ["gb"]
    assert explorer.tag_frame()["why"].iloc[0] == "toolbar key 1"
    msg(explorer.toolbar, {"type": "search", "query": "score > 0.5 and label == red"}, [])
    expect = np.flatnonzero((explorer._column("score") > 0.5) & (explorer._column("label") == "red"))
    np.testing.assert_array_equal(explorer.selected, expect)
    assert explorer.toolbar.n_matches == len(expect)
    msg(explorer.toolbar, {"type": "search", "query": "score >"}, [])
    assert explorer.toolbar.query_error and explorer.toolbar.n_matches == -1
    msg(explorer.toolbar, {"type": "export", "path": "out.csv", "what": "tags"}, [])
    assert (tmp_path / "out.csv").exists() and "wrote" in explorer.toolbar.status
    msg(explorer.toolbar, {"type": "export", "path": "out.csv", "what": "tags"}, [])
    assert explorer.toolbar.status_error and "overwrite" in explorer.toolbar.status
    msg(explorer.toolbar, {"type": "clear"}, [])
    assert len(explorer.selected) == 0


@pytest.mark.parametrize(
    "query, expect",
    [
        ("label == red", lambda f: f["label"] == "red"),
        ("red or blue", lambda f: f["label"].isin(["red", "blue"])),
        ("not batch:b1 and score <= 0.3", lambda f: (f["batch"] != "b1") & (f["score"] <= 0.3)),
        ("(score > 0.9 or score < 0.1) and label != 'green'",
         lambda f: ((f["score"] > 0.9) | (f["score"] < 0.1)) & (f["label"] != "green")),
        ("index >= 295", lambda f: f["index"] >= 295),
    ],
)
def test_search_matches_pandas(explorer, query, expect):
    frame = explorer.selection_frame(np.arange(300)).rename(columns={"label_name": "label_s"})
    frame["label"] = frame["label_s"]
    np.testing.assert_array_equal(explorer.search(query), np.flatnonzero(expect(frame)))


@pytest.mark.parametrize(
    "query, match",
    [("", "empty"), ("score >", "ends too early"), ("__import__('os')", "unexpected"),
     ("nosuch > 1", "no column"), ("batch > 1", "text"), ("score == high", "numeric"),
     ("(red", "parenthes"), ("purple", "neither a label nor a tag")],
)
def test_search_errors_are_clear(explorer, query, match):
    with pytest.raises(ConfigError, match=match):
        explorer.search(query)


def test_search_tag_and_added_column(explorer):
    explorer.tag([3, 4], "odd one")
    np.testing.assert_array_equal(explorer.search('tag == "odd one"'), [3, 4])
    explorer.add_column("blur", np.arange(300) / 100)
    np.testing.assert_array_equal(explorer.search("blur > 2.95"), [296, 297, 298, 299])
    assert "blur" in explorer.color_options and "blur" in explorer.selection_frame([1])


# ---------------------------------------------------- review file, static out
def test_review_roundtrip_with_provenance(explorer, blobs, tmp_path):
    xy, ds = blobs
    explorer.user = "ana"
    explorer.tag([1, 2], "blurry", why="out of focus")
    explorer.tag([5], "keep", origin="suggested", why="tight-cluster")
    explorer.select([7, 8])
    path = explorer.save_review(tmp_path / "data.review.parquet")
    with pytest.raises(FileExistsError):
        explorer.save_review(path)
    fresh = Explorer(xy, ds)
    frame = fresh.load_review(path)
    assert set(frame.columns) >= {"who", "when", "why", "origin", "kind", "source_index"}
    np.testing.assert_array_equal(fresh.tags["blurry"], [1, 2])
    np.testing.assert_array_equal(fresh.selected, [7, 8])
    prov = fresh.tag_frame().set_index(["name", "index"])
    assert prov.loc[("blurry", 1), "who"] == "ana" and prov.loc[("blurry", 1), "origin"] == "hand"
    assert prov.loc[("keep", 5), "origin"] == "suggested"
    assert prov.loc[("blurry", 2), "when"].endswith("+00:00")
    other = Explorer(xy[:100], ds.images[:100])
    with pytest.raises(DataError, match="300 points"):
        other.load_review(path)


def test_static_png_and_html_show_colouring_selection_and_tags(explorer, tmp_path):
    plain = np.asarray(Image.open(io.BytesIO(explorer.static_png())))
    explorer.select(np.arange(100, 110))
    explorer.tag_selection("checked")
    png = np.asarray(Image.open(io.BytesIO(explorer.static_png())))
    assert png.shape[0] > plain.shape[0]  # a strip of the selected thumbnails under the map
    page = explorer.save_html(tmp_path / "view.html").read_text()
    assert "<script" not in page and page.count("data:image/png;base64,") == 1 + 10
    assert "checked" in page and "10 selected" in page and "green" in page
    with pytest.raises(FileExistsError):
        explorer.save_html(tmp_path / "view.html")


def test_panel_order_by_distance_and_page_size(explorer):
    explorer.select(np.arange(0, 100))
    centre = explorer._xy[:100].mean(axis=0)
    explorer.panel.order = "distance"
    shown = [it["index"] for it in explorer.panel.items]
    d = np.linalg.norm(explorer._xy[shown] - centre, axis=1)
    assert np.all(np.diff(d) >= 0) and len(shown) == 10
    explorer.panel.order = "nonsense"
    assert explorer.panel.order == "distance"


def test_add_panel(explorer):
    import ipywidgets as w

    extra = w.HTML("explain")
    explorer.add_panel(extra, title="Explain")
    side = explorer.widget.children[-1].children[1]
    assert extra in side.children[-1].children
    late = w.HTML("late")
    explorer.add_panel(late)
    assert late in side.children[-1].children
    with pytest.raises(ConfigError, match="ipywidgets"):
        explorer.add_panel("not a widget")


def test_add_points_survives_the_front_end_clearing_the_selection(explorer, blobs):
    """jupyter-scatter's front-end drops the selection after new data: the new points stay selected."""
    idx = explorer.add_points(blobs[1].images[:3], _Model())
    explorer.scatter.widget.selection = np.empty(0, np.uint32)  # what the browser sends back
    np.testing.assert_array_equal(explorer.selected, idx)
    explorer.scatter.widget.selection = np.empty(0, np.uint32)  # a user's clear is obeyed
    assert len(explorer.selected) == 0
