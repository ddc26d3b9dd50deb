"""QCReview: a QC report's groups reviewed in the explorer (Python side, no browser)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsimcne_nb import qc
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.pipelines.qc import qc_to_directory
from tsimcne_nb.qc.report import TAGS

pytest.importorskip("jscatter")

from tsimcne_nb.widgets import QCReview  # noqa: E402
from tsimcne_nb.widgets.explorer import Explorer  # noqa: E402


@pytest.fixture
def report():
    """Three blobs of random (synthetic) images, a planted tight group and an exact duplicate pair."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 80)
    xy = rng.normal(0, 3, size=(240, 2)) + np.array([[0, 0], [30, 0], [0, 30]])[labels]
    planted = np.arange(200, 225)
    xy[planted] = np.array([4.0, 4.0]) + rng.normal(0, 0.05, size=(len(planted), 2))
    images = rng.integers(0, 256, size=(240, 12, 12, 3), dtype=np.uint8)
    images[11] = images[10]
    ds = ImageDataset(images, labels, ["a", "b", "c"], pd.DataFrame({"batch": ["x"] * 240}),
                      name="blobs", synthetic=True)
    rep = qc.qc_report(ds, xy, min_evidence=1.0)
    assert len(rep.groups) >= 2
    return rep


def _members(report, rank):
    return np.sort(np.asarray(report.groups.loc[report.groups["rank"] == rank, "members"].iloc[0]))


def test_review_shows_the_top_group_and_moves_between_groups(report):
    review = QCReview(report, top=5)
    assert review.current == 1
    np.testing.assert_array_equal(review.explorer.selected, _members(report, 1))
    # the panel shows the group's thumbnails, with the suggested tags as captions
    items = review.explorer.panel.items
    assert {it["index"] for it in items} <= set(_members(report, 1).tolist()) and items
    assert any(it["tags"] for it in items)
    review.show_group(2)
    assert review.current == 2
    np.testing.assert_array_equal(review.explorer.selected, _members(report, 2))
    with pytest.raises(ConfigError, match="no group of rank 99"):
        review.show_group(99)


def test_tag_group_updates_report_and_explorer_together(report, tmp_path):
    review = QCReview(report)
    members = review.tag_group("keep")
    assert (report.tags.loc[members, "tag"] == "keep").all()
    assert (report.tags.loc[members, "reason"] == "review").all()
    assert set(members) <= set(review.explorer.tags["keep"])
    for other in ("duplicate", "artefact"):  # a kept image leaves the other tags
        assert not set(members) & set(review.explorer.tags.get(other, []))
    assert not set(members) & set(report.exclusion_list()["index"])
    # a later suggestion does not undo the review
    report.suggest_tags(min_evidence=1.0)
    assert (report.tags.loc[members, "tag"] == "keep").all()
    # retag as duplicates: the exclusion list and the explorer agree
    review.tag_group("duplicate")
    assert set(members) <= set(report.exclusion_list()["index"])
    assert set(members) <= set(review.explorer.tags["duplicate"]) and "keep" not in review.explorer.tags
    with pytest.raises(ConfigError, match="unknown tag"):
        review.tag_group("junk")


def test_widget_picker_and_buttons_drive_the_review(report):
    review = QCReview(report)
    w = review.widget
    picker, *buttons = w.children[0].children
    assert [b.description for b in buttons] == [f"tag group: {t}" for t in TAGS]
    picker.value = 2
    assert review.current == 2
    np.testing.assert_array_equal(review.explorer.selected, _members(report, 2))
    buttons[TAGS.index("artefact")].click()
    assert (report.tags.loc[_members(report, 2), "tag"] == "artefact").all()
    assert f"tagged: artefact {len(_members(report, 2))}" in w.children[1].value
    review.show_group(1)  # Python -> picker
    assert picker.value == 1
    bundle = review._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle and bundle["image/png"][:4] == b"\x89PNG"


def test_review_input_errors(report):
    with pytest.raises(ConfigError, match="QCReport"):
        QCReview(report.groups)
    no_map = qc.qc_report(report.dataset, None, min_evidence=1.0)
    with pytest.raises(ConfigError, match="no 2-D map"):
        QCReview(no_map)
    with pytest.raises(ConfigError, match="top"):
        QCReview(report, top=0)
    small = Explorer(report.embedding[:100], report.dataset.images[:100])
    with pytest.raises(ConfigError, match="same map"):
        QCReview(report, explorer=small)
    # an existing explorer of the same map is driven, not replaced
    ex = Explorer(report.embedding, report.dataset)
    assert QCReview(report, explorer=ex).explorer is ex


def test_colour_layers(report):
    bright = QCReview(report, color_by="brightness")
    assert not bright.explorer._showing_tags()
    assert bright.explorer.color_by == "brightness"
    np.testing.assert_allclose(
        bright.explorer.scatter.widget.data["color"], report.properties["brightness"].to_numpy()
    )
    # every image property is a colour layer and a search column
    assert set(report.properties.columns) <= set(bright.explorer.color_options)
    assert QCReview(report).explorer._showing_tags()  # default: coloured by suggested tag
    by_label = QCReview(report, color_by="label")
    assert not by_label.explorer._showing_tags()
    with pytest.raises(ConfigError, match="color_by"):
        QCReview(report, color_by="no such column")


def test_review_opens_a_qc_command_folder(report, tmp_path):
    """Issue 14 fix 6: what `tsimcne-nb qc` writes opens in QCReview (with the images)."""
    out = tmp_path / "qc"
    qc_to_directory(report.dataset, out, map_method="tsne-pixels", num_threads=1, progress=False)
    review = QCReview.from_folder(out, report.dataset, height=300)
    rep = review.report
    written = pd.read_csv(out / "report.csv")
    assert list(rep.groups["rank"]) == list(written["rank"]) and len(rep.groups)
    assert list(rep.groups.loc[0, "members"]) == [int(v) for v in written.loc[0, "members"].split()]
    props = pd.read_parquet(out / "properties.parquet")
    np.testing.assert_allclose(rep.embedding, props[["x", "y"]].to_numpy())
    excl = pd.read_csv(out / "exclusion_list.csv")
    assert sorted(rep.exclusion_list()["index"]) == sorted(excl["index"])
    # suggestions arrive in the explorer marked as suggestions, not as decisions
    prov = review.explorer.tag_frame()
    assert len(prov) == len(excl) and set(prov["origin"]) <= {"suggested"}
    with pytest.raises(DataError, match="dataset that was checked"):
        QCReview.from_folder(out, report.dataset.images[:10])
    with pytest.raises(FileNotFoundError, match="not a `tsimcne-nb qc` output folder"):
        QCReview.from_folder(tmp_path, report.dataset)


def test_status_reports_only_touched_tags(report):
    """Issue 14 fix 6: an untouched group is not reported as 'keep 22'."""
    report.tags["tag"] = "keep"
    report.tags["reason"] = ""  # nobody touched anything, no suggestions
    review = QCReview(report)
    g = review._groups.iloc[0]
    assert "not tagged yet" in review._describe(g) and "keep" not in review._describe(g)
    review.tag_group("keep")
    assert f"tagged: keep {g['size']}" in review._describe(g)


def test_review_file_roundtrip_into_a_new_review(report, tmp_path):
    review = QCReview(report)
    members = review.tag_group("artefact", rank=2)
    path = review.save_review(tmp_path / "qc.review.parquet")
    fresh_report = qc.qc_report(report.dataset, report.embedding, min_evidence=1.0)
    fresh = QCReview(fresh_report).load_review(path)
    assert len(fresh)
    assert (fresh_report.tags.loc[members, "tag"] == "artefact").all()
    assert fresh_report._manual(members).all()  # hand-set: later suggestions keep off
