"""Explain a selection: class make-up, property histograms, kNN purity, large view (issue 14)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.widgets.explain import _MapStats, explain_selection


def _two_blobs(n_per=200, seed=0):
    """Blob A (labels 80 % 0, 20 % 1) far from blob B (all 2); a column 0 in A and 1 in B."""
    rng = np.random.default_rng(seed)
    xy = np.r_[rng.normal(size=(n_per, 2)), rng.normal(size=(n_per, 2)) + 50]
    labels = np.r_[np.where(np.arange(n_per) < 0.8 * n_per, 0, 1), np.full(n_per, 2)]
    cols = pd.DataFrame({"flag": np.r_[np.zeros(n_per), np.ones(n_per)], "noise": rng.random(2 * n_per)})
    return xy, labels, cols


def test_make_up_purity_and_histograms_of_a_whole_blob():
    xy, labels, cols = _two_blobs()
    s = explain_selection(xy, np.arange(200), labels, ["a", "b", "c"], cols, k=10)
    assert s.n_selected == 200 and s.n_total == 400
    assert s.classes["name"].tolist() == ["a", "b"]
    assert s.classes["count"].tolist() == [160, 40]
    np.testing.assert_allclose(s.classes["share_all"], [0.4, 0.1])
    np.testing.assert_allclose(s.classes["enrichment"], [2.0, 2.0])
    assert s.purity_inside == 1.0  # the blob is far from the other: all neighbours inside
    assert s.expected_inside == 0.5
    # labels are mixed inside the blob: same-label share is near 0.8^2 + 0.2^2 = 0.68
    assert 0.55 < s.purity_label < 0.8
    edges, h_sel, h_rest = s.histograms["flag"]
    assert h_sel[0] == 200 and h_sel[1:].sum() == 0
    assert h_rest[-1] == 200 and h_rest[:-1].sum() == 0
    assert s.medians["flag"] == (0.0, pytest.approx(edges[-1], abs=(edges[1] - edges[0])))
    # selection + rest = all, for every column
    for _e, hs, hr in s.histograms.values():
        assert hs.sum() + hr.sum() == 400


def test_half_a_blob_is_less_pure_and_a_mask_works():
    xy, labels, cols = _two_blobs()
    half = np.zeros(400, bool)
    half[:200] = xy[:200, 0] < 0  # the left half of blob A
    s = explain_selection(xy, half, labels, ["a", "b", "c"], cols, k=10)
    assert s.n_selected == half.sum()
    assert 0.5 < s.purity_inside < 1.0  # points at the cut have outside neighbours
    assert np.all((s.knn_inside >= 0) & (s.knn_inside <= 1))
    empty = explain_selection(xy, [], labels, ["a", "b", "c"], cols)
    assert empty.n_selected == 0 and np.isnan(empty.purity_inside) and empty.classes.empty


def test_errors():
    xy, labels, cols = _two_blobs()
    with pytest.raises(DataError, match=r"\(N, 2\)"):
        explain_selection(xy[:, :1], [0])
    with pytest.raises(DataError, match="lie in"):
        explain_selection(xy, [400])
    with pytest.raises(DataError, match="boolean"):
        explain_selection(xy, np.ones(3, bool))
    with pytest.raises(DataError, match="has no name"):
        explain_selection(xy, [0], labels, ["a"])
    with pytest.raises(ConfigError, match="k must"):
        explain_selection(xy, [0], k=0)


def test_fast_for_1000_points_of_a_200k_map():
    rng = np.random.default_rng(1)
    n = 200_000
    xy = rng.normal(size=(n, 2))
    labels = rng.integers(0, 10, n)
    cols = pd.DataFrame(rng.random((n, 8)), columns=[f"p{i}" for i in range(8)])
    stats = _MapStats(xy, labels, [str(i) for i in range(10)], cols, k=15)  # once per map
    sel = np.sort(rng.choice(n, 1000, replace=False))
    stats.summarize(sel)
    t0 = time.perf_counter()
    s = stats.summarize(sel)
    dt = time.perf_counter() - t0
    print(f"summarize 1000 of 200k points, 8 columns: {dt * 1000:.1f} ms")
    assert s.n_selected == 1000 and len(s.histograms) == 8
    assert dt < 0.5  # ~20 ms idle; generous for a loaded 2-core machine
    big = np.arange(0, n, 2)  # half the map: the purity is measured on a sample
    t0 = time.perf_counter()
    s = stats.summarize(big)
    dt = time.perf_counter() - t0
    print(f"summarize 100k of 200k points: {dt * 1000:.0f} ms")
    assert len(s.knn_points) == 5000 and np.isin(s.knn_points, big).all()
    assert s.classes["count"].sum() == len(big)  # the make-up and histograms use all points
    assert sum(h.sum() for h in s.histograms["p0"][1:]) == n
    assert 0.3 < s.purity_inside < 0.7  # every other point of a random map
    assert dt < 3.0


# ------------------------------------------------------------------ widget
jscatter = pytest.importorskip("jscatter")


@pytest.fixture
def explorer():
    from tsimcne_nb.widgets.explorer import Explorer

    xy, labels, _ = _two_blobs(n_per=60)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(120, 12, 12, 3), dtype=np.uint8)
    images[:60] //= 4  # blob A is dark: its brightness histogram sits low
    meta = pd.DataFrame({"score": np.r_[np.zeros(60), np.ones(60)], "site": ["s1"] * 120})
    ds = ImageDataset(images, labels, ["a", "b", "c"], meta, name="blobs", synthetic=True)
    return Explorer(xy, ds, page_size=10)


def test_explainer_follows_the_explorers_selection_and_focus(explorer):
    from tsimcne_nb.widgets.explain import SelectionExplainer

    ex = explorer
    exp = SelectionExplainer(ex, k=5)
    assert exp.summary.n_selected == 0
    w = exp.widget
    assert "Nothing selected" in exp._summary_html.value
    ex.scatter.widget.selection = np.arange(60)  # what a lasso in the browser sends
    assert exp.summary.n_selected == 60
    assert exp.summary.classes["name"].tolist() == ["a", "b"]  # class names, not image names
    assert exp.summary.classes["count"].tolist() == [48, 12]
    assert {"brightness", "contrast", "sharpness", "score"} <= set(exp.summary.histograms)
    assert "site" not in exp.summary.histograms  # not numeric
    med_sel, med_rest = exp.summary.medians["brightness"]
    assert med_sel < med_rest  # the dark blob
    assert 'data-n-selected="60"' in exp._summary_html.value
    assert 'data-name="a"' in exp._summary_html.value
    ex.focus(7)
    assert 'data-index="7"' in exp._large.value and "<img" in exp._large.value
    assert ">a<" in exp._large.value or 'data-label="a"' in exp._large.value
    ex.tag(indices=[7], name="odd")  # keywords: the argument order changes in issue 14
    ex.focus(8)
    ex.focus(7)
    assert "odd" in exp._large.value  # its tags
    bundle = exp._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "tsimcne-explain-summary" in bundle["text/html"]
    assert w is exp.widget
    assert "60 of 120" in repr(exp)


def test_explainer_properties_options(explorer):
    from tsimcne_nb.widgets.explain import SelectionExplainer

    exp = SelectionExplainer(explorer, properties=None, columns=["score"])
    explorer.select(np.arange(10))
    exp.update()
    assert list(exp.summary.histograms) == ["score"]
    given = pd.DataFrame({"blur": np.arange(120.0)})
    exp = SelectionExplainer(explorer, properties=given, columns=[])
    assert list(exp.update().histograms) == ["blur"]
    with pytest.raises(DataError, match="one row per image"):
        SelectionExplainer(explorer, properties=given.iloc[:5])
    with pytest.raises(ConfigError, match="not in the metadata"):
        SelectionExplainer(explorer, columns=["nope"])
    with pytest.raises(ConfigError, match="properties must"):
        SelectionExplainer(explorer, properties="all")


def test_attach_uses_the_explorers_add_panel(explorer):
    from tsimcne_nb.widgets.explain import SelectionExplainer

    exp = SelectionExplainer(explorer, properties=None)
    calls = []
    if not hasattr(explorer, "add_panel"):
        with pytest.raises(ConfigError, match="with_explorer"):
            exp.attach()
        explorer.add_panel = lambda widget, title="": calls.append((widget, title))
    else:
        real = explorer.add_panel
        explorer.add_panel = lambda widget, title="": calls.append((widget, title)) or real(widget, title)
    assert exp.attach() is explorer
    exp.attach()  # once only
    assert calls == [(exp.widget, "explain the selection")]


def test_explainer_follows_a_selection_set_again_inside_the_same_notification():
    # after add_points the explorer re-selects the new points when jupyter-scatter's front-end
    # clears the selection; the explainer must describe the re-selected points, not the clear
    import time

    from tsimcne_nb import make_synthetic_blood
    from tsimcne_nb.widgets import Explorer, SelectionExplainer

    ds = make_synthetic_blood(n=60, random_state=0)
    ex = Explorer(np.random.default_rng(0).normal(size=(60, 2)), ds)
    expl = SelectionExplainer(ex, properties=None)
    idx = np.arange(10)
    ex.select(idx)
    ex._reselect = (idx, time.monotonic() + 5)  # what add_points leaves pending
    ex.scatter.widget.selection = np.array([], dtype=int)  # the front-end's clear after new data
    assert len(ex.selected) == 10
    assert expl.summary.n_selected == 10
