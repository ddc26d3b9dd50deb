"""Tests of the synthetic blood-smear generator ``tsimcne_nb.data.synthetic``."""

from __future__ import annotations

import numpy as np
import pytest

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.data.synthetic.cells import CLASS_NAMES
from tsimcne_nb.data.synthetic.generator import _main, make_synthetic_blood
from tsimcne_nb.errors import ConfigError

K = len(CLASS_NAMES)


@pytest.fixture(scope="module")
def ds300() -> ImageDataset:
    """300 synthetic images (30 per class), shared by the statistics tests."""
    return make_synthetic_blood(n=300, size=28, random_state=3)


# ----------------------------------------------------------------------------- basics
def test_shapes_dtypes_and_metadata(ds300):
    ds = ds300
    assert isinstance(ds, ImageDataset)
    assert ds.name == "synthetic-blood"
    assert ds.synthetic is True
    assert ds.images.shape == (300, 28, 28, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (300,)
    assert list(ds.class_names) == list(CLASS_NAMES)
    meta = ds.metadata
    for col in ("index", "split", "class_name", "angle", "flip", "dx", "dy", "cell_radius",
                "n_lobes", "azure", "eosin", "hue", "blur", "noise", "n_rbc"):
        assert col in meta.columns, col
    assert (meta["index"].to_numpy() == np.arange(300)).all()
    assert set(meta["split"]) == {"all"}
    assert (meta["class_name"].to_numpy() == ds.label_names).all()
    # images are not blank and use a realistic dynamic range
    assert ds.images.std() > 20
    assert "synthetic" in (make_synthetic_blood.__doc__ or "").lower()


def test_balanced_and_all_classes(ds300):
    counts = np.bincount(ds300.labels, minlength=K)
    assert (counts == 300 // K).all(), counts
    # any block of K consecutive images starting at a multiple of K holds each class once
    for start in range(0, 300, K):
        assert sorted(ds300.labels[start : start + K]) == list(range(K))


def test_deterministic_same_seed_identical_bytes():
    a = make_synthetic_blood(n=24, random_state=5)
    b = make_synthetic_blood(n=24, random_state=5)
    assert a.images.tobytes() == b.images.tobytes()
    assert (a.labels == b.labels).all()
    assert a.metadata.equals(b.metadata)


@pytest.mark.parametrize("size", [28, 13])
def test_image_i_independent_of_n(size):
    # 70 crosses the internal batch boundary (64); 1, 30 and 66 end inside batches.
    # size 13 renders on a 65-pixel canvas: odd array lengths exercise numpy's loop tails
    big = make_synthetic_blood(n=70, size=size, random_state=2)
    for n in (1, 30, 66):
        small = make_synthetic_blood(n=n, size=size, random_state=2)
        assert small.images.tobytes() == big.images[:n].tobytes(), n
        assert (small.labels == big.labels[:n]).all()
        assert small.metadata.equals(big.metadata.iloc[:n].reset_index(drop=True))


def test_different_seeds_differ():
    a = make_synthetic_blood(n=12, random_state=0)
    b = make_synthetic_blood(n=12, random_state=1)
    assert a.images.shape == b.images.shape
    # every single image differs, not just a few
    diff = np.abs(a.images.astype(int) - b.images.astype(int)).reshape(12, -1).mean(axis=1)
    assert (diff > 3).all(), diff


@pytest.mark.parametrize("size", [8, 13, 64, 96])
def test_size_option(size):
    ds = make_synthetic_blood(n=4, size=size, random_state=0)
    assert ds.images.shape == (4, size, size, 3)
    assert ds.images.std() > 10


def test_render_size_not_a_multiple_of_size():
    a = make_synthetic_blood(n=6, size=28, render_size=70, random_state=0)
    b = make_synthetic_blood(n=6, size=28, render_size=56, random_state=0)
    assert a.images.shape == (6, 28, 28, 3)
    # same scene, rendered on another canvas: close but not identical
    d = np.abs(a.images.astype(int) - b.images.astype(int)).mean()
    assert 0 < d < 12, d


def test_classes_subset_and_weights():
    ds = make_synthetic_blood(n=40, classes=["monocyte", "lymphocyte"], random_state=0)
    assert ds.class_names == ["monocyte", "lymphocyte"]
    assert np.bincount(ds.labels).tolist() == [20, 20]
    assert set(ds.metadata["class_name"]) == {"monocyte", "lymphocyte"}
    w = make_synthetic_blood(n=200, classes=["band", "blast"], class_weights=[0.9, 0.1])
    frac = (w.labels == 0).mean()
    assert 0.8 < frac < 0.97, frac
    d = make_synthetic_blood(n=30, classes=["band", "blast"], class_weights={"blast": 1.0})
    assert (d.labels == 1).all()


# ----------------------------------------------------------------------------- orientation
def test_orientation_uniform_and_independent_of_class():
    ds = make_synthetic_blood(n=600, size=8, random_state=11)
    ang = ds.metadata["angle"].to_numpy()
    assert ang.min() >= 0 and ang.max() < 360
    counts = np.histogram(ang, bins=8, range=(0, 360))[0]
    expected = len(ang) / 8
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 24.3, counts  # 7 degrees of freedom, p ~ 0.001
    # the mean direction of every class is close to zero (no preferred orientation)
    rad = np.deg2rad(ang)
    for c in range(K):
        m = ds.labels == c
        resultant = np.hypot(np.cos(rad[m]).mean(), np.sin(rad[m]).mean())
        assert resultant < 0.35, (CLASS_NAMES[c], resultant)
    flips = ds.metadata["flip"].to_numpy()
    assert set(np.unique(flips)) == {-1, 1}
    jitter = np.hypot(ds.metadata["dx"], ds.metadata["dy"])
    assert jitter.max() > 0.05 and jitter.max() <= 0.13 + 1e-9


# ----------------------------------------------------------------------------- class statistics
def _image_stats(ds: ImageDataset) -> dict[str, np.ndarray]:
    im = ds.images.astype(np.float64)
    r, b = im[..., 0], im[..., 2]
    s = im.shape[1]
    yy, xx = np.mgrid[:s, :s]
    disk = np.hypot(yy - (s - 1) / 2, xx - (s - 1) / 2) < 0.32 * s
    return {
        # area of bluish/purple pixels: white cell cytoplasm and nuclei (red cells are pink)
        "blue_area": ((b - r) > 12).sum(axis=(1, 2)),
        # area of dark pixels: nuclei, dense granules
        "dark_area": (im.mean(-1) < 110).sum(axis=(1, 2)),
        # red minus blue in the central disk: eosinophil granules are orange-red
        "redness": ((r - b) * disk).sum(axis=(1, 2)) / disk.sum(),
        "centre_brightness": (im.mean(-1) * disk).sum(axis=(1, 2)) / disk.sum(),
    }


def _class_mean(ds: ImageDataset, stats: dict[str, np.ndarray], key: str, cls: str) -> float:
    return float(stats[key][ds.labels == ds.class_names.index(cls)].mean())


def test_classes_differ_as_designed(ds300):
    st = _image_stats(ds300)

    def m(key: str, cls: str) -> float:
        return _class_mean(ds300, st, key, cls)

    # lymphocytes are small, monocytes large
    assert m("blue_area", "lymphocyte") < 0.75 * m("blue_area", "monocyte")
    # eosinophils are redder than neutrophils
    assert m("redness", "eosinophil") > m("redness", "neutrophil") + 20
    # basophil granules darken the cell compared to a neutrophil's pale cytoplasm
    assert m("centre_brightness", "basophil") < m("centre_brightness", "neutrophil") - 10
    # blasts: big nucleus with high N/C ratio, far more dark area than a small erythroblast
    assert m("dark_area", "blast") > 2 * m("dark_area", "erythroblast")
    # platelets: no white cell, hardly any dark area, the brightest centre
    assert m("dark_area", "platelets") < 0.3 * m("dark_area", "lymphocyte")
    bright = {c: m("centre_brightness", c) for c in CLASS_NAMES}
    assert max(bright, key=bright.get) == "platelets"


def test_pixel_knn_is_informative_but_imperfect():
    # like real blood data: pixels carry class information (far above the 10% chance
    # level) but rotation, clutter and stain variation keep raw-pixel kNN well below 100%
    from sklearn.model_selection import cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    ds = make_synthetic_blood(n=500, size=28, random_state=4)
    x = ds.images.reshape(len(ds), -1).astype(np.float32)
    acc = cross_val_score(KNeighborsClassifier(15), x, ds.labels, cv=5).mean()
    assert 0.35 < acc < 0.88, acc


def test_within_class_variation(ds300):
    meta = ds300.metadata
    neut = meta[meta["class_name"] == "neutrophil"]
    assert neut["n_lobes"].nunique() >= 3  # lobe counts vary
    for cls in CLASS_NAMES:
        sub = ds300.images[ds300.labels == ds300.class_names.index(cls)].astype(np.float64)
        # images of one class are far from identical
        assert sub.std(axis=0).mean() > 10, cls
    assert meta["azure"].std() > 0.05 and meta["blur"].std() > 0.05


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_bad_n(n):
    with pytest.raises(ConfigError, match="n must be a positive integer"):
        make_synthetic_blood(n=n)


@pytest.mark.parametrize("size", [7, 0, 28.0])
def test_bad_size(size):
    with pytest.raises(ConfigError, match="size must be an integer >= 8"):
        make_synthetic_blood(n=2, size=size)


def test_unknown_class_lists_valid_ones():
    with pytest.raises(ConfigError) as exc:
        make_synthetic_blood(n=2, classes=["neutrophil", "megakaryocyte"])
    msg = str(exc.value)
    assert "megakaryocyte" in msg
    for name in CLASS_NAMES:
        assert name in msg


def test_bad_classes_empty_and_duplicates():
    with pytest.raises(ConfigError, match="empty"):
        make_synthetic_blood(n=2, classes=[])
    with pytest.raises(ConfigError, match="duplicates"):
        make_synthetic_blood(n=2, classes=["band", "band"])


@pytest.mark.parametrize(
    "weights, match",
    [([1.0, 2.0], "one weight per class"), ([1.0, -1.0, 1.0], ">= 0"),
     ([0.0, 0.0, 0.0], "not all zero"), ({"blast": 1.0}, "not among the classes")],
)
def test_bad_class_weights(weights, match):
    with pytest.raises(ConfigError, match=match):
        make_synthetic_blood(n=2, classes=["band", "lymphocyte", "monocyte"],
                             class_weights=weights)


@pytest.mark.parametrize("seed", [-1, 1.5, None])
def test_bad_random_state(seed):
    with pytest.raises(ConfigError, match="random_state must be a non-negative integer"):
        make_synthetic_blood(n=2, random_state=seed)


def test_bad_render_size():
    with pytest.raises(ConfigError, match="render_size must be an integer >= size"):
        make_synthetic_blood(n=2, size=28, render_size=20)


# ----------------------------------------------------------------------------- sheet
def test_sheet_written_and_not_overwritten(tmp_path, capsys):
    out = tmp_path / "sheet.png"
    _main(["--sheet", str(out), "--size", "16", "--per-class", "2"])
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    with pytest.raises(FileExistsError):
        _main(["--sheet", str(out), "--size", "16", "--per-class", "2"])
    _main(["--sheet", str(out), "--size", "16", "--per-class", "3", "--overwrite"])
    assert out.read_bytes() != data
    assert "wrote" in capsys.readouterr().out
