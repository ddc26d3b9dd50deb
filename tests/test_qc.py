"""Quality control: perturbations, detectors, report, recovery scores, qc_to_directory.

All on constructed data with known answers; no training.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tsimcne_nb import qc
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.pipelines.qc import qc_to_directory
from tsimcne_nb.qc import report as report_module


# ----------------------------------------------------------------- helpers
def _blobs_with_planted(seed: int = 1, n_per_blob: int = 400, planted: int = 30):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-30, 30, size=(5, 2))
    x = np.concatenate([c + rng.normal(0, 3, size=(n_per_blob, 2)) for c in centers])
    tight = centers[2] + np.array([2.0, 1.0]) + rng.normal(0, 0.08, size=(planted, 2))
    emb = np.concatenate([x, tight]).astype(np.float32)
    truth = np.zeros(len(emb), dtype=bool)
    truth[-planted:] = True
    return emb, truth


def _random_dataset(n: int = 120, size: int = 16, seed: int = 0, name: str = "random") -> ImageDataset:
    """Random-looking images: smooth colour blobs, so that properties vary realistically."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    cy, cx = rng.uniform(0.2, 0.8, size=(2, n, 1, 1))
    r = rng.uniform(0.15, 0.4, size=(n, 1, 1))
    blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r**2))
    colour = rng.uniform(60, 230, size=(n, 1, 1, 3))
    bg = rng.uniform(150, 240, size=(n, 1, 1, 3))
    img = bg * (1 - blob[..., None]) + colour * blob[..., None] + rng.normal(0, 6, size=(n, size, size, 3))
    images = np.clip(img, 0, 255).astype(np.uint8)
    return ImageDataset(images, labels=np.arange(n) % 3, name=name, synthetic=True)


class _LazyImages:
    """A minimal lazy array-like (like an h5py dataset) around a numpy array."""

    def __init__(self, arr: np.ndarray) -> None:
        self._arr = arr
        self.shape = arr.shape
        self.dtype = arr.dtype

    def __len__(self) -> int:
        return len(self._arr)

    def __getitem__(self, item):
        return self._arr[item]


# ----------------------------------------------------------- tight clusters
def test_planted_tight_cluster_is_ranked_first_and_recovered():
    emb, truth = _blobs_with_planted()
    df = qc.find_tight_clusters(emb, min_size=5)
    assert len(df) >= 1
    assert list(df["score"]) == sorted(df["score"], reverse=True)
    scores = qc.recovery_scores(df, truth, top=1)
    assert scores["precision"] >= 0.9
    assert scores["recall"] >= 0.9
    assert df.loc[0, "density_ratio"] > 10
    assert np.isnan(df.loc[0, "feature_confirmation"])


def test_tight_cluster_without_planted_group_scores_low():
    emb, truth = _blobs_with_planted()
    clean = emb[~truth]
    df = qc.find_tight_clusters(clean, min_size=5)
    planted = qc.find_tight_clusters(emb, min_size=5)
    # random density fluctuations of Gaussian blobs are far less tight than the planted group
    assert len(df) == 0 or df["score"].max() < planted["score"].max() - 1.0


def test_tight_cluster_feature_confirmation():
    emb, truth = _blobs_with_planted()
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(len(emb), 16)).astype(np.float32)
    feats[truth] = feats[truth][0] + rng.normal(0, 0.01, size=(truth.sum(), 16))  # near-identical
    df = qc.find_tight_clusters(emb, feats, min_size=5)
    top = df.loc[0]
    assert truth[top["members"]].mean() >= 0.9
    assert top["feature_confirmation"] > 2  # far closer than typical nearest neighbours
    # a random group of the same size is not confirmed
    other = qc.feature_confirmation(feats, [np.flatnonzero(~truth)[:30]])
    assert other[0] < 0


def test_tight_cluster_input_errors():
    with pytest.raises(DataError, match=r"shape \(N, 2\)"):
        qc.find_tight_clusters(np.zeros((50, 3)))
    with pytest.raises(DataError, match="NaN"):
        qc.find_tight_clusters(np.full((50, 2), np.nan))
    with pytest.raises(ConfigError, match="min_size"):
        qc.find_tight_clusters(np.random.default_rng(0).normal(size=(50, 2)), min_size=1)
    with pytest.raises(DataError, match="rows"):
        qc.find_tight_clusters(np.random.default_rng(0).normal(size=(50, 2)), np.zeros((49, 4)))


# ---------------------------------------------------------- feature clusters
def _classes_with_planted(seed: int = 0, n_classes: int = 5, per_class: int = 200, planted: int = 30):
    """Gaussian classes in 16-d plus ``planted`` perturbed copies of one point near a class.

    The copies are no closer to each other than images of a class are (noise 0.5 vs class
    spread 1.0 in 16 dimensions), so distance thresholds alone miss them, but each copy's
    nearest neighbours are other copies.
    """
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(n_classes, 16))
    x = np.concatenate([c + rng.normal(0, 1.0, size=(per_class, 16)) for c in centres])
    source = centres[1] + rng.normal(0, 1.0, size=16) * 2.5
    copies = source + rng.normal(0, 0.5, size=(planted, 16))
    feats = np.concatenate([x, copies]).astype(np.float32)
    truth = np.zeros(len(feats), dtype=bool)
    truth[-planted:] = True
    return feats, truth


def test_feature_clusters_recover_planted_copies():
    feats, truth = _classes_with_planted()
    df = qc.find_feature_clusters(feats, k=10, metric="euclidean")
    assert len(df) >= 1
    scores = qc.recovery_scores(df, truth, top=1)
    assert scores["precision"] >= 0.9 and scores["recall"] >= 0.9
    top = df.loc[0]
    assert top["score"] > 2.5 and top["closure"] > 0.9
    assert top["feature_confirmation"] > 0  # each copy's nearest copy is closer than typical neighbours
    # a distance threshold alone finds only a few of the copies: they are as far apart as class members
    assert qc.recovery_scores(qc.near_duplicate_groups(feats, metric="euclidean"), truth)["recall"] < 0.5
    # the classes themselves are too big to be reported, and nothing natural scores near the copies
    assert df["size"].max() <= 100
    # the copies' core, found again at a stricter linking, is not a second group
    members = [set(m.tolist()) for m in df["members"]]
    assert all(len(a & b) <= 0.5 * min(len(a), len(b)) for i, a in enumerate(members) for b in members[i + 1:])
    clean = qc.find_feature_clusters(feats[~truth], k=10, metric="euclidean")
    assert len(clean) == 0 or clean["score"].max() < top["score"] - 1.0


def test_feature_closure_is_relative_to_ordinary_neighbourhoods():
    from sklearn.neighbors import NearestNeighbors

    feats, truth = _classes_with_planted()
    ball = NearestNeighbors(n_neighbors=30).fit(feats).kneighbors(feats[:1])[1][0]  # an image + 29 NN
    rng = np.random.default_rng(1)
    scattered = rng.choice(np.flatnonzero(~truth), size=30, replace=False)
    planted, ordinary, random_set = qc.feature_closure(
        feats, [np.flatnonzero(truth), ball, scattered], metric="euclidean")
    assert planted > 2.5
    assert abs(ordinary) < 1.0
    assert random_set < -1.0
    # a precomputed neighbour graph gives the same answer
    knn = report_module._feature_knn(feats, 10, "euclidean")
    again = qc.feature_closure(feats, [np.flatnonzero(truth)], metric="euclidean", knn=knn)
    assert again[0] == pytest.approx(planted)
    with pytest.raises(ConfigError, match="k \\(neighbours"):
        qc.feature_closure(feats, [ball], k=0)
    with pytest.raises(ConfigError, match="min_size"):
        qc.find_feature_clusters(feats, min_size=1)
    with pytest.raises(DataError, match="more than"):
        qc.find_feature_clusters(feats[:8], k=10)


def test_tight_cluster_needs_feature_support():
    # the same map cluster, once with features that agree and once with features that do not
    emb, truth = _blobs_with_planted()
    rng = np.random.default_rng(3)
    agree = rng.normal(size=(len(emb), 16)).astype(np.float32)
    agree[truth] = agree[truth][0] + rng.normal(0, 0.05, size=(truth.sum(), 16))
    disagree = rng.normal(size=(len(emb), 16)).astype(np.float32)
    a = qc.find_tight_clusters(emb, agree, min_size=5)
    d = qc.find_tight_clusters(emb, disagree, min_size=5)
    pick = lambda df: df.loc[[truth[m].mean() > 0.9 for m in df["members"]]].iloc[0]  # noqa: E731
    ga, gd = pick(a), pick(d)
    assert ga["score"] == pytest.approx(min(ga["map_score"], ga["feature_closure"]))
    assert gd["feature_closure"] < 0.5 < ga["feature_closure"]
    assert gd["score"] < ga["score"] - 1.0


# ---------------------------------------------------------- near duplicates
def _features_with_copies(seed: int = 0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(400, 32)).astype(np.float32)
    f[1:6] = f[0] + rng.normal(0, 0.01, size=(5, 32))  # a group of 6 near-copies
    f[100] = f[50] + rng.normal(0, 0.01, size=32)  # one near-duplicate pair
    f[200] = f[150]  # an identical pair (cosine distance 0)
    return f


def test_near_duplicate_groups_recovers_planted_copies():
    f = _features_with_copies()
    df = qc.near_duplicate_groups(f)
    groups = {tuple(sorted(m)) for m in df["members"]}
    assert (0, 1, 2, 3, 4, 5) in groups
    assert (50, 100) in groups
    assert (150, 200) in groups
    assert len(groups) == 3
    # the explicit threshold below the copies' distance finds only the identical pair
    tiny = qc.near_duplicate_groups(f, threshold=1e-9)
    assert {tuple(sorted(m)) for m in tiny["members"]} == {(150, 200)}
    with pytest.raises(ConfigError, match="threshold"):
        qc.near_duplicate_groups(f, threshold=-1)
    with pytest.raises(ConfigError, match="metric"):
        qc.near_duplicate_groups(f, metric="manhattan")


def test_near_duplicate_groups_euclidean_metric():
    f = _features_with_copies()
    df = qc.near_duplicate_groups(f, threshold=0.2, metric="euclidean")
    assert (0, 1, 2, 3, 4, 5) in {tuple(sorted(m)) for m in df["members"]}
    assert (df["max_distance"] <= 0.2).all()


def test_duplicate_pairs_table_is_monotone():
    f = _features_with_copies()
    table = qc.duplicate_pairs_at_thresholds(f, examples=3)
    assert len(table) == 7
    for col in ("n_pairs", "n_images"):
        assert np.all(np.diff(table[col].to_numpy()) >= 0), col
    assert table["n_pairs"].iloc[0] >= 1 + 1 + 15  # identical pair, near pair, 6 choose 2 = 15
    prev = -np.inf
    for _, row in table.iterrows():  # examples are the pairs added at each threshold
        for _, _, d in row["examples"]:
            assert prev < d <= row["threshold"] + 1e-9
        prev = row["threshold"]
    with pytest.raises(ConfigError, match="increasing"):
        qc.duplicate_pairs_at_thresholds(f, thresholds=[0.2, 0.1])


def test_pairs_figure_draws_rows():
    ds = _random_dataset(60)
    f = ds.images.reshape(len(ds), -1).astype(np.float32)
    f[1] = f[0]
    table = qc.duplicate_pairs_at_thresholds(f, thresholds=[0.001, 0.01], examples=2)
    fig = qc.pairs_figure(ds, table, per_threshold=2)
    assert len(fig.axes) == 2 * 4
    assert "synthetic" in fig._suptitle.get_text()
    with pytest.raises(DataError, match="duplicate_pairs_at_thresholds"):
        qc.pairs_figure(ds, pd.DataFrame({"x": [1]}))


def test_exact_duplicates_by_hash():
    ds = _random_dataset(50)
    images = ds.images.copy()
    images[10] = images[3]
    images[20] = images[3]
    images[40] = images[7]
    images[41, 0, 0, 0] = images[8, 0, 0, 0] ^ 1  # differs by one bit from a copy: not exact
    images[41, 1:] = images[8, 1:]
    images[41, 0, 1:] = images[8, 0, 1:]
    df = qc.exact_duplicates(ImageDataset(images))
    assert [sorted(m.tolist()) for m in df["members"]] == [[3, 10, 20], [7, 40]]
    lazy = qc.exact_duplicates(ImageDataset(_LazyImages(images)))
    assert [sorted(m.tolist()) for m in lazy["members"]] == [[3, 10, 20], [7, 40]]


# ---------------------------------------------------------- image properties
def test_image_properties_on_constructed_images():
    size = 16
    black = np.zeros((size, size, 3), np.uint8)
    constant = np.full((size, size, 3), 128, np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    checker = np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[..., None], 3, axis=-1)
    # the checkerboard blurred by a 3x3 box filter (wrap-around borders)
    c = checker.astype(np.float64)
    blurred = sum(np.roll(np.roll(c, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    blurred = np.rint(blurred).astype(np.uint8)
    half = np.full((size, size, 3), 200, np.uint8)
    half[: size // 2] = 0
    ds = ImageDataset(np.stack([black, constant, checker, blurred, half]))
    p = qc.image_properties(ds)
    assert list(p.columns) == ["brightness", "contrast", "sharpness", "entropy", "near_black", "outlier_score"]
    assert p.loc[0, "brightness"] == 0
    assert p.loc[1, "brightness"] == pytest.approx(128 / 255, abs=1e-3)
    assert p.loc[1, "contrast"] == 0
    assert p.loc[1, "entropy"] == 0
    assert p.loc[0, "entropy"] == 0
    assert p.loc[2, "entropy"] == pytest.approx(1.0)  # two equally frequent grey levels
    assert p.loc[2, "sharpness"] > 10 * p.loc[3, "sharpness"]
    assert p.loc[4, "near_black"] == pytest.approx(0.5)
    assert p.loc[0, "near_black"] == 1.0
    assert p.loc[1, "near_black"] == 0.0
    lazy = qc.image_properties(ImageDataset(_LazyImages(ds.images)))
    pd.testing.assert_frame_equal(lazy, p)
    with pytest.raises(ConfigError, match="black_level"):
        qc.image_properties(ds, black_level=300)


def test_robust_z_and_property_outliers():
    rng = np.random.default_rng(0)
    props = pd.DataFrame({
        "brightness": rng.normal(0.6, 0.05, 300), "near_black": np.zeros(300),
    })
    props.loc[[5, 9], "brightness"] = 0.05  # two very dark images
    props.loc[[7, 8, 11], "near_black"] = 0.2  # three images with black regions
    z = qc.robust_z(props)
    assert abs(z["brightness"].median()) < 1e-9
    assert np.all(np.isfinite(z.to_numpy()))
    groups = qc.property_outliers(props, z_threshold=5)
    found = {r["property"]: sorted(r["members"].tolist()) for _, r in groups.iterrows()}
    assert found == {"low brightness": [5, 9], "high near_black": [7, 8, 11]}
    with pytest.raises(ConfigError, match="z_threshold"):
        qc.property_outliers(props, z_threshold=0)


def test_property_outliers_on_several_properties_form_one_clean_group():
    # black blobs make images dark-pixelled *and* sharp-edged; some natural images are sharp too
    rng = np.random.default_rng(0)
    n = 400
    props = pd.DataFrame({"sharpness": rng.normal(0.02, 0.002, n), "near_black": np.zeros(n)})
    artefacts = np.arange(20, 40)
    sharp_only = np.arange(100, 108)
    props.loc[artefacts, "near_black"] = rng.uniform(0.1, 0.25, len(artefacts))
    props.loc[artefacts, "sharpness"] = rng.uniform(0.05, 0.08, len(artefacts))
    props.loc[sharp_only, "sharpness"] = rng.uniform(0.04, 0.06, len(sharp_only))
    groups = qc.property_outliers(props, z_threshold=5)
    found = {r["property"]: sorted(r["members"].tolist()) for _, r in groups.iterrows()}
    both = [v for k, v in found.items() if "near_black" in k and "sharpness" in k]
    assert both == [artefacts.tolist()]
    assert found["high sharpness"] == sharp_only.tolist()
    assert len(found) == 2
    # a group confirmed by two properties scores the sum of both
    top = groups.loc[groups["property"].str.contains("near_black")].iloc[0]
    assert top["score"] > groups.loc[groups["property"] == "high sharpness", "score"].iloc[0]


def test_merge_keeps_a_small_group_inside_a_large_one_apart():
    big = pd.DataFrame({"group": [0], "size": [100], "members": [np.arange(100)], "score": [1.0]})
    pair = pd.DataFrame({"group": [0], "size": [2], "members": [np.array([3, 4])], "score": [2.0]})
    same = pd.DataFrame({"group": [0], "size": [90], "members": [np.arange(5, 95)], "score": [0.5]})
    merged = report_module._merge_groups({"tight-cluster": big, "near-duplicate": pair, "feature-cluster": same}, 0.5)
    assert len(merged) == 2  # the pair stays its own finding; the 90 images are the same group
    top = merged.iloc[0]
    assert top["kind"] == "tight-cluster" and top["confirmed_by"] == ["feature-cluster"]
    assert top["evidence"] == pytest.approx(1.0 * np.log2(101) + 0.5 * np.log2(91))
    assert merged.iloc[1]["kind"] == "near-duplicate" and merged.iloc[1]["confirmed_by"] == []


# ------------------------------------------------------------ perturbations
def test_inject_duplicates_deterministic_with_flags():
    ds = _random_dataset(80)
    a = qc.inject_duplicates(ds, k=25, source_index=7, random_state=3)
    b = qc.inject_duplicates(ds, k=25, source_index=7, random_state=3)
    c = qc.inject_duplicates(ds, k=25, source_index=7, random_state=4)
    assert len(a) == 105 and len(ds) == 80
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images[80:], c.images[80:])
    np.testing.assert_array_equal(a.images[:80], ds.images)
    md = a.metadata
    assert (md["qc_injected"].iloc[80:] == "duplicate").all() and (md["qc_injected"].iloc[:80] == "").all()
    assert (md["qc_source"].iloc[80:] == 7).all() and (md["qc_source"].iloc[:80] == -1).all()
    assert md["qc_group"].iloc[80:].nunique() == 1 and (md["qc_group"].iloc[:80] == -1).all()
    assert md["index"].is_unique
    assert (a.labels[80:] == ds.labels[7]).all()
    assert a.synthetic and "duplicates" in a.name
    # copies resemble their source far more than other images do
    src = ds.images[7].astype(float)
    d_copies = np.abs(a.images[80:].astype(float) - src).mean()
    d_others = np.abs(ds.images.astype(float) - src).mean()
    assert d_copies < 0.5 * d_others
    assert not np.any([np.array_equal(img, ds.images[7]) for img in a.images[80:]])  # perturbed
    mask = qc.injected_mask(a, "duplicate")
    assert mask.sum() == 25 and mask[80:].all()


def test_inject_duplicates_errors_and_random_source():
    ds = _random_dataset(30)
    d = qc.inject_duplicates(ds, k=3, random_state=0)
    assert 0 <= d.metadata["qc_source"].iloc[-1] < 30
    with pytest.raises(ConfigError, match="positive integer"):
        qc.inject_duplicates(ds, k=0)
    with pytest.raises(ConfigError, match="source_index"):
        qc.inject_duplicates(ds, k=3, source_index=30)
    with pytest.raises(ConfigError, match="crop_scale"):
        qc.inject_duplicates(ds, k=3, crop_scale=(0.9, 0.5))


@pytest.mark.parametrize("shape", ["blob", "stroke", "corner", "mixed"])
def test_inject_artefacts_paints_black(shape):
    ds = _random_dataset(60, size=28)
    a = qc.inject_artefacts(ds, m=12, random_state=5, shape=shape)
    b = qc.inject_artefacts(ds, m=12, random_state=5, shape=shape)
    np.testing.assert_array_equal(a.images, b.images)
    assert len(a) == len(ds)
    mask = qc.injected_mask(a, "artefact")
    assert mask.sum() == 12
    changed = np.any(a.images != ds.images, axis=-1)  # (N, H, W) pixels that were painted
    assert not changed[~mask].any()
    assert np.all(a.images[changed] == 0)  # every painted pixel is pure black
    cover = (a.images[mask] == 0).all(axis=-1).mean(axis=(1, 2))
    assert np.all(cover >= 0.08) and np.all(cover <= 0.3)
    md = a.metadata
    np.testing.assert_array_equal(md.loc[mask, "qc_source"].to_numpy(), np.flatnonzero(mask))
    assert np.all(md.loc[mask, "qc_coverage"] > 0.08)


def test_inject_artefacts_append_mode_and_errors():
    ds = _random_dataset(40)
    a = qc.inject_artefacts(ds, m=5, mode="append", random_state=1)
    assert len(a) == 45
    np.testing.assert_array_equal(a.images[:40], ds.images)
    src = a.metadata["qc_source"].iloc[40:].to_numpy()
    np.testing.assert_array_equal(a.labels[40:], ds.labels[src])
    assert a.metadata["index"].is_unique
    with pytest.raises(ConfigError, match="only 40"):
        qc.inject_artefacts(ds, m=41)
    with pytest.raises(ConfigError, match="shape"):
        qc.inject_artefacts(ds, m=3, shape="star")
    with pytest.raises(ConfigError, match="mode"):
        qc.inject_artefacts(ds, m=3, mode="overwrite")
    with pytest.raises(ConfigError, match="coverage"):
        qc.inject_artefacts(ds, m=3, coverage=(0.3, 0.1))


def test_both_injections_stack_into_separate_groups():
    ds = _random_dataset(40)
    both = qc.inject_artefacts(qc.inject_duplicates(ds, k=4, random_state=0), m=3, random_state=0)
    md = both.metadata
    assert set(md["qc_injected"]) >= {"duplicate", "artefact"}
    assert md.loc[md["qc_injected"] == "duplicate", "qc_group"].iloc[0] != md.loc[
        md["qc_injected"] == "artefact", "qc_group"].iloc[0]


# ---------------------------------------------------------- recovery scores
def test_recovery_scores_math():
    truth = np.zeros(10, dtype=bool)
    truth[[1, 2, 3, 4]] = True
    groups = [np.array([1, 2, 3, 8]), np.array([4, 9]), np.array([0])]
    s1 = qc.recovery_scores(groups, truth, top=1)
    assert s1["precision"] == pytest.approx(3 / 4) and s1["recall"] == pytest.approx(3 / 4)
    s2 = qc.recovery_scores(groups, truth, top=2)  # union {1, 2, 3, 4, 8, 9}
    assert s2["precision"] == pytest.approx(4 / 6) and s2["recall"] == 1.0
    assert s2["n_flagged"] == 6 and s2["n_hit"] == 4 and s2["n_true"] == 4
    assert qc.recovery_scores([], truth)["precision"] == 0.0
    with pytest.raises(DataError, match="boolean"):
        qc.recovery_scores(groups, truth.astype(int))
    with pytest.raises(DataError, match="no image"):
        qc.recovery_scores(groups, np.zeros(10, bool))
    with pytest.raises(ConfigError, match="top"):
        qc.recovery_scores(groups, truth, top=0)


def test_parse_inject():
    assert qc.parse_inject("duplicates:100,artefacts:50") == {"duplicates": 100, "artefacts": 50}
    assert qc.parse_inject(" artefacts : 7 ") == {"artefacts": 7}
    assert qc.parse_inject({"duplicates": 3}) == {"duplicates": 3}
    assert qc.parse_inject(None) == {}
    for bad, msg in [
        ("duplicate:100", "unknown injection kind"),
        ("blur:3", "unknown injection kind"),
        ("duplicates:abc", "positive integer"),
        ("duplicates:0", "positive integer"),
        ("duplicates:-5", "positive integer"),
        ("duplicates:1.5", "positive integer"),
        ("duplicates", "cannot parse"),
        ("duplicates:1:2", "cannot parse"),
        ("duplicates:1,duplicates:2", "twice"),
        ({"duplicates": True}, "positive integer"),
        (5, "string, a dict"),
    ]:
        with pytest.raises(ConfigError, match=msg) as info:
            qc.parse_inject(bad)
        assert "duplicates:100,artefacts:50" in str(info.value)  # the valid syntax is shown


# ------------------------------------------------------------------ report
def _report_fixture():
    emb, truth = _blobs_with_planted(n_per_blob=60, planted=30)
    n = len(emb)
    ds = _random_dataset(n)
    images = ds.images.copy()
    images[5] = images[4]  # one exact duplicate pair
    ds = ImageDataset(images, labels=ds.labels, name="random", synthetic=True)
    return ds, emb, truth


def test_qc_report_ranks_tags_and_exports(tmp_path):
    ds, emb, truth = _report_fixture()
    report = qc.qc_report(ds, emb, min_evidence=1.0)
    g = report.groups
    assert list(g["rank"]) == list(range(1, len(g) + 1))
    assert set(g["kind"]) <= set(report_module.KINDS)
    assert list(g["evidence"]) == sorted(g["evidence"], reverse=True)
    top = g.iloc[0]
    assert top["kind"] == "tight-cluster"
    assert qc.recovery_scores(report, truth, top=1)["recall"] >= 0.9
    assert set(top["examples"]) <= set(top["members"])
    assert {tuple(sorted(m)) for m in g.loc[g["kind"] == "exact-duplicate", "members"]} == {(4, 5)}
    # suggested tags: the exact pair keeps one copy; the tight cluster is suggested for review
    assert report.tags.loc[4, "tag"] == "keep" and report.tags.loc[5, "tag"] == "duplicate"
    assert set(report.tags["tag"]) <= set(report_module.TAGS)
    assert (report.tags.loc[np.flatnonzero(truth), "tag"] != "keep").mean() >= 0.9
    excl = report.exclusion_list()
    assert set(excl["index"]) == set(np.flatnonzero(report.tags["tag"] != "keep"))
    assert {"index", "source_index", "tag", "group", "reason"} <= set(excl.columns)
    # tags are editable, and hand-set tags survive a new suggestion
    report.tag([0, 1], "artefact")
    report.tag([5], "keep")
    report.suggest_tags(min_evidence=1.0)
    assert report.tags.loc[5, "tag"] == "keep" and report.tags.loc[0, "tag"] == "artefact"
    with pytest.raises(ConfigError, match="unknown tag"):
        report.tag([0], "junk")
    with pytest.raises(DataError, match="indices"):
        report.tag([len(ds)], "keep")
    # export: atomic CSV, never overwrites silently
    path = report.export(tmp_path / "report.csv")
    back = pd.read_csv(path)
    assert len(back) == len(g) and back["synthetic"].all()
    assert [int(v) for v in str(back.loc[0, "members"]).split()] == list(top["members"])
    with pytest.raises(FileExistsError, match="overwrite=True"):
        report.export(tmp_path / "report.csv")
    report.export(tmp_path / "report.csv", overwrite=True)
    report.export_exclusion_list(tmp_path / "excl.csv")
    assert len(pd.read_csv(tmp_path / "excl.csv")) == len(report.exclusion_list())


def test_report_figures_and_explorer_tags():
    import matplotlib.pyplot as plt

    ds, emb, _ = _report_fixture()
    report = qc.qc_report(ds, emb, min_evidence=1.0)
    fig = report.cards(top=3, per_group=4)
    assert len(fig.axes) == 3 * 4
    plt.close(fig)
    fig = report.figure(top=3, per_group=4)
    assert "synthetic" in fig._suptitle.get_text()
    plt.close(fig)

    class FakeExplorer:
        def __init__(self):
            self.calls = {}

        def tag(self, indices, name, /):  # positional: the shared tag(indices, name)
            self.calls[name] = list(indices)

    ex = report.to_explorer_tags(FakeExplorer())
    assert set(ex.calls) == {"duplicate", "artefact"}
    assert sorted(ex.calls["duplicate"] + ex.calls["artefact"]) == sorted(report.exclusion_list()["index"])
    with pytest.raises(ConfigError, match="tag"):
        report.to_explorer_tags(object())


def test_qc_report_input_errors():
    ds, emb, _ = _report_fixture()
    with pytest.raises(DataError, match="embedding has"):
        qc.qc_report(ds, emb[:-1])
    with pytest.raises(DataError, match="features has"):
        qc.qc_report(ds, emb, np.zeros((3, 4)))


def test_qc_experiment_plumbing():
    ds = _random_dataset(150)
    seen = {}

    def map_fn(d):
        # a stand-in map in which injected images land together, as t-SimCNE puts them
        rng = np.random.default_rng(0)
        emb = rng.normal(0, 10, size=(len(d), 2))
        inj = qc.injected_mask(d)
        emb[inj] = rng.normal(0, 0.05, size=(inj.sum(), 2)) + 3
        seen["n"] = len(d)
        return emb, d.images.reshape(len(d), -1).astype(np.float32)

    r = qc.qc_experiment(ds, "duplicates", 20, map_fn, random_state=0)
    assert seen["n"] == 170
    assert r["kind"] == "duplicates" and r["count"] == 20
    assert r["recall"] >= 0.9 and r["precision"] >= 0.9
    assert isinstance(r["report"], qc.QCReport)
    with pytest.raises(ConfigError, match="unknown injection kind"):
        qc.qc_experiment(ds, "blur", 3, map_fn)


# --------------------------------------------------------- qc_to_directory
def test_qc_to_directory_tsne_pixels_end_to_end(tmp_path):
    ds = _random_dataset(150, size=16)
    out = qc_to_directory(ds, tmp_path / "qc", inject="duplicates:10,artefacts:5",
                             map_method="tsne-pixels", num_threads=1, progress=False)
    files = {p.name for p in (tmp_path / "qc").iterdir()}
    assert files == {"report.csv", "exclusion_list.csv", "qc_figure.png", "properties.parquet",
                     "manifest.json", "recovery.json"}
    rec = json.loads((tmp_path / "qc" / "recovery.json").read_text())
    assert set(rec) == {"duplicates", "artefacts"}
    for r in rec.values():
        assert 0 <= r["precision"] <= 1 and 0 <= r["recall"] <= 1
    manifest = json.loads((tmp_path / "qc" / "manifest.json").read_text())
    assert manifest["kind"] == "qc-report" and manifest["dataset"]["synthetic"] is True
    props = pd.read_parquet(tmp_path / "qc" / "properties.parquet")
    assert len(props) == 160 + 150 and {"x", "y", "qc_injected", "experiment"} <= set(props.columns)
    report = pd.read_csv(tmp_path / "qc" / "report.csv")
    assert set(report["experiment"]) <= {"duplicates", "artefacts"}
    with pytest.raises(FileExistsError, match="overwrite"):
        qc_to_directory(ds, tmp_path / "qc", map_method="tsne-pixels", num_threads=1)
    with pytest.raises(ConfigError, match="duplicates:100"):
        qc_to_directory(ds, tmp_path / "other", inject="dupes:3", map_method="tsne-pixels")
    with pytest.raises(ConfigError, match="map_method"):
        qc_to_directory(ds, tmp_path / "other", map_method="umap")
    assert not (tmp_path / "other").exists()  # bad configuration fails before anything is written
    assert out.splitlines()[0] == f"QC report (tsne-pixels map) written to {tmp_path / 'qc'}"
    for kind, r in rec.items():  # the summary repeats what recovery.json holds
        assert f"{kind} ({r['count']} injected): precision {r['precision']:.3f}" in out


def _fake_tsimcne(calls: list):
    class FakeTSimCNE:
        def __init__(self, **params):
            calls.append(params)
            self.device_ = "cpu"

        def fit(self, d):
            rng = np.random.default_rng(0)
            self.embedding_ = rng.normal(0, 10, size=(len(d), 2)).astype(np.float32)
            inj = qc.injected_mask(d)
            self.embedding_[inj] = rng.normal(0, 0.05, size=(inj.sum(), 2)) + 3
            return self

        def features(self, d):
            return d.images.reshape(len(d), -1).astype(np.float32)

    return FakeTSimCNE


def test_qc_to_directory_tsimcne_plumbing(tmp_path, monkeypatch):
    """map_method='tsimcne' calls TSimCNE(...).fit(d), .embedding_ and .features(d) (faked: no training)."""
    import sys
    import types

    calls = []
    monkeypatch.setitem(sys.modules, "tsimcne_nb.estimators", types.SimpleNamespace(TSimCNE=_fake_tsimcne(calls)))
    ds = _random_dataset(150, size=16)
    qc_to_directory(ds, tmp_path, inject={"duplicates": 15}, map_method="tsimcne", augment="rot90",
                       budget="quick", device="cpu", random_state=2, num_threads=1, progress=False)
    assert calls == [{"augment": "rot90", "budget": "quick", "random_state": 2, "device": "cpu",
                      "num_threads": 1, "progress": False}]
    rec = json.loads((tmp_path / "recovery.json").read_text())
    assert rec["duplicates"]["recall"] >= 0.9 and rec["duplicates"]["precision"] >= 0.9


def test_qc_to_directory_several_maps_side_by_side(tmp_path, monkeypatch):
    import sys
    import types

    monkeypatch.setitem(sys.modules, "tsimcne_nb.estimators", types.SimpleNamespace(TSimCNE=_fake_tsimcne([])))
    ds = _random_dataset(150, size=16)
    out = qc_to_directory(ds, tmp_path / "qc", inject="duplicates:15,artefacts:5",
                             map_method="tsimcne,tsne-pixels", num_threads=1, progress=False)
    for m in ("tsimcne", "tsne-pixels"):
        assert (tmp_path / "qc" / m / "report.csv").exists() and (tmp_path / "qc" / m / "recovery.json").exists()
    rec = json.loads((tmp_path / "qc" / "recovery.json").read_text())
    assert set(rec) == {"tsimcne", "tsne-pixels"} and set(rec["tsimcne"]) == {"duplicates", "artefacts"}
    for m in rec:  # each folder's own recovery.json agrees with the combined one
        assert json.loads((tmp_path / "qc" / m / "recovery.json").read_text()) == rec[m]
    lines = out.splitlines()
    assert "tsimcne map" in lines[1] and "tsne-pixels map" in lines[1] and "(synthetic)" in lines[1]
    dup = rec["tsimcne"]["duplicates"], rec["tsne-pixels"]["duplicates"]
    assert lines[2].startswith("15 injected duplicates")
    assert lines[2].split()[3:] == ["P", f"{dup[0]['precision']:.2f}", "R", f"{dup[0]['recall']:.2f}",
                                    "P", f"{dup[1]['precision']:.2f}", "R", f"{dup[1]['recall']:.2f}"]
    # refused before any work when one of the subfolders' files exists; bad lists are refused
    with pytest.raises(FileExistsError, match="overwrite"):
        qc_to_directory(ds, tmp_path / "qc", map_method="tsne-pixels,tsimcne", num_threads=1)
    with pytest.raises(ConfigError, match="twice"):
        qc_to_directory(ds, tmp_path / "x", map_method="tsimcne,tsimcne")
    with pytest.raises(ConfigError, match="one or more of"):
        qc_to_directory(ds, tmp_path / "x", map_method="tsimcne,umap")


def test_to_explorer_tags_skips_empty_tags():
    """An explorer refuses an empty tag list; a report without artefacts must still push its duplicates."""
    from tsimcne_nb.data.core import ImageDataset
    from tsimcne_nb.qc.report import qc_report

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(30, 16, 16, 3), dtype=np.uint8)
    images[10] = images[3]  # one exact duplicate pair, nothing else
    ds = ImageDataset(images, labels=np.zeros(30, dtype=int))
    report = qc_report(ds)

    class StrictExplorer:
        def __init__(self):
            self.calls = {}

        def tag(self, indices, name, /):  # positional: the shared tag(indices, name)
            if len(indices) == 0:
                raise ValueError("nothing to tag")
            self.calls[name] = list(indices)

    ex = report.to_explorer_tags(StrictExplorer())
    assert "artefact" not in ex.calls
    assert set(ex.calls.get("duplicate", [])) & {3, 10}


def test_qc_to_directory_reuses_a_fitted_model(tmp_path):
    """--model: no training; the model's own map for its training images, transform for others."""
    from tsimcne_nb.estimators import TSimCNE

    ds = _random_dataset(96, size=16)
    model = TSimCNE(budget="quick", total_epochs=(1, 1, 1), batch_size=32, backbone="resnet18_w4",
                    projection_hidden=32, pretrain_dim=8, random_state=0, progress=False,
                    device="cpu").fit(ds)
    path = model.save(tmp_path / "model.pt")
    out = qc_to_directory(ds, tmp_path / "same", model=path, progress=False)
    assert "map from the given model: training map" in out
    props = pd.read_parquet(tmp_path / "same" / "properties.parquet")
    np.testing.assert_allclose(props[["x", "y"]].to_numpy(), model.embedding_, rtol=1e-6)
    manifest = json.loads((tmp_path / "same" / "manifest.json").read_text())
    assert manifest["config"]["model"]["placement"] == "training map"
    assert manifest["config"]["model"]["manifest"]["dataset"]["fingerprint"] == ds.fingerprint()
    # other images (here: a subset) are placed on the model's map with transform
    sub = ds.subset(np.arange(60))
    out = qc_to_directory(sub, tmp_path / "other", model=model, progress=False)
    assert "transform (out-of-sample)" in out
    props = pd.read_parquet(tmp_path / "other" / "properties.parquet")
    np.testing.assert_allclose(props[["x", "y"]].to_numpy(), model.transform(sub), rtol=1e-5, atol=1e-5)
    with pytest.raises(ConfigError, match="inject and model"):
        qc_to_directory(ds, tmp_path / "x", model=path, inject="duplicates:5")
    with pytest.raises(ConfigError, match="cannot make a tsne-pixels map"):
        qc_to_directory(ds, tmp_path / "x", model=path, map_method="tsne-pixels")
    with pytest.raises(FileNotFoundError, match="model.pt"):
        qc_to_directory(ds, tmp_path / "x", model=tmp_path / "missing.pt")
    with pytest.raises(ConfigError, match="fitted TSimCNE"):
        qc_to_directory(ds, tmp_path / "x", model=object())
    assert not (tmp_path / "x").exists()


def test_cli_qc_with_model(tmp_path, capsys):
    from tsimcne_nb.cli import main
    from tsimcne_nb.data.registry import load_dataset
    from tsimcne_nb.estimators import TSimCNE

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "cells.npz", images=rng.integers(0, 256, size=(64, 16, 16, 3), dtype=np.uint8),
             labels=np.arange(64) % 4)
    ds = load_dataset(f"npz:{tmp_path / 'cells.npz'}")
    TSimCNE(budget="quick", total_epochs=(1, 0, 1), batch_size=32, backbone="resnet18_w4",
            projection_hidden=32, pretrain_dim=8, random_state=0, progress=False,
            device="cpu").fit(ds).save(tmp_path / "model.pt")
    argv = ["qc", "--dataset", f"npz:{tmp_path / 'cells.npz'}", "--model", str(tmp_path / "model.pt")]
    assert main([*argv, "--out", str(tmp_path / "qc")]) == 0
    assert "map from the given model: training map" in capsys.readouterr().out
    assert (tmp_path / "qc" / "report.csv").exists()
    assert main([*argv, "--inject", "duplicates:5", "--out", str(tmp_path / "qc2")]) == 1
    assert "inject and model" in capsys.readouterr().err
    argv[-1] = str(tmp_path / "missing.pt")
    assert main([*argv, "--out", str(tmp_path / "qc3")]) == 1
    err = capsys.readouterr().err
    assert "missing.pt" in err and "Traceback" not in err


def test_qc_report_searches_feature_neighbours_once(monkeypatch):
    emb, truth = _blobs_with_planted(n_per_blob=60, planted=30)
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(len(emb), 16)).astype(np.float32)
    feats[truth] = feats[truth][0] + rng.normal(0, 0.05, size=(truth.sum(), 16))
    ds = _random_dataset(len(emb))
    calls = []
    real = report_module._feature_knn
    monkeypatch.setattr(report_module, "_feature_knn", lambda *a, **kw: calls.append(a[1]) or real(*a, **kw))
    report = qc.qc_report(ds, emb, feats, n_neighbors=8)
    assert calls == [8]
    assert {"tight-cluster", "feature-cluster"} <= {report.groups.loc[0, "kind"], *report.groups.loc[0, "confirmed_by"]}
    # a shared neighbour graph gives the detectors the same answer as their own search
    knn = real(feats, 10, "cosine")
    for own, shared in [(qc.find_tight_clusters(emb, feats), qc.find_tight_clusters(emb, feats, knn=knn)),
                        (qc.find_feature_clusters(feats), qc.find_feature_clusters(feats, knn=knn))]:
        pd.testing.assert_frame_equal(own.drop(columns="members"), shared.drop(columns="members"))
    with pytest.raises(ConfigError, match="k \\(neighbours"):
        qc.qc_report(ds, emb, feats, n_neighbors=0)
