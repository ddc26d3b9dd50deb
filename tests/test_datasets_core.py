"""Tests of tsimcne_nb.data.core: ImageDataset, validation, subsets, helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import DataError
from tsimcne_nb.validation import validate_images, validate_labels


class _Lazy:
    """Minimal lazy array-like (like H5ImageArray) over an in-memory array, counting reads."""

    def __init__(self, arr):
        self.arr, self.shape, self.dtype, self.reads = arr, arr.shape, arr.dtype, 0

    def __len__(self):
        return len(self.arr)

    def __getitem__(self, key):
        self.reads += 1
        if isinstance(key, np.ndarray):
            assert np.all(np.diff(key) > 0), "lazy reads must use increasing indices (h5py)"
        return self.arr[key]


# ---------------------------------------------------------------- validation
def test_validate_conversions(rng):
    imgs = rng.integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    np.testing.assert_array_equal(validate_images(imgs.astype(np.float32) / 255), imgs)
    np.testing.assert_array_equal(validate_images(imgs.astype(np.float64)), imgs)
    grey = validate_images(imgs[..., 0])
    assert grey.shape == (3, 5, 5, 3) and (grey[..., 2] == imgs[..., 0]).all()
    rgba = np.concatenate([imgs, np.zeros((3, 5, 5, 1), np.uint8)], axis=-1)
    np.testing.assert_array_equal(validate_images(rgba), imgs)
    np.testing.assert_array_equal(validate_images(imgs.astype(np.int64)), imgs)
    assert validate_images(np.ones((1, 2, 2), bool)).max() == 255


def test_validate_torch_nchw(rng):
    torch = pytest.importorskip("torch")
    imgs = rng.integers(0, 256, (2, 6, 6, 3), dtype=np.uint8)
    t = torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous()
    np.testing.assert_array_equal(validate_images(t), imgs)


@pytest.mark.parametrize(
    ("images", "pattern"),
    [
        (np.zeros((4, 4), np.uint8), "must have shape \\(N, H, W, C\\)"),
        (np.zeros((2, 3, 8, 8), np.uint8), "looks channels-first"),
        (np.zeros((2, 8, 8, 5), np.uint8), "1, 3 or 4 channels"),
        (np.zeros((0, 8, 8, 3), np.uint8), "is empty"),
        (np.full((2, 4, 4, 3), np.nan, np.float32), "NaN or infinite values \\(2 images"),
        (np.full((2, 4, 4, 3), -1.5, np.float32), "must lie in \\[0, 1\\] or \\[0, 255\\]"),
        (np.full((2, 4, 4, 3), 300, np.int32), "integer images must lie in \\[0, 255\\]"),
        (np.zeros((2, 4, 4, 3), np.complex64), "unsupported dtype complex64"),
    ],
)
def test_validate_images_errors(images, pattern):
    with pytest.raises(DataError, match=pattern):
        validate_images(images)


def test_validate_object_and_lazy_errors():
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((4, 4, 3)), np.zeros((5, 5, 3))
    with pytest.raises(DataError, match="dtype object"):
        validate_images(ragged)
    with pytest.raises(DataError, match="lazy images must be uint8 .* float32"):
        validate_images(_Lazy(np.zeros((2, 4, 4, 3), np.float32)))


def test_validate_labels():
    assert validate_labels(None, 3) is None
    out = validate_labels(np.array([[1], [0], [2]], np.uint8), 3)
    assert out.dtype == np.int64 and out.tolist() == [1, 0, 2]
    assert validate_labels(np.array([1.0, 0.0]), 2).tolist() == [1, 0]
    cases = [
        (np.zeros((3, 2)), 3, "one integer per image"),
        (np.zeros(4), 3, r"labels \(4\) do not match images \(3\)"),
        (np.array([0.0, np.nan]), 2, "NaN"),
        (np.array([0.5, 1.0]), 2, "non-integer floats"),
        (np.array(["a", "b"]), 2, "pd.factorize"),
        (np.array([0, -1]), 2, "must be >= 0"),
    ]
    for labels, n, pattern in cases:
        with pytest.raises(DataError, match=pattern):
            validate_labels(labels, n)


def test_dataset_construction_errors(tiny_images):
    images, labels = tiny_images
    with pytest.raises(DataError, match="label 3 has no class name"):
        ImageDataset(images, labels, class_names=["a", "b"])
    with pytest.raises(DataError, match="metadata has 2 rows but there are 40 images"):
        ImageDataset(images, labels, metadata=pd.DataFrame({"x": [1, 2]}))
    with pytest.raises(DataError, match="labels were given twice"):
        as_dataset(ImageDataset(images, labels), labels)


def test_defaults_and_summary(tiny_images):
    images, labels = tiny_images
    ds = as_dataset(images, labels, name="tiny")
    assert ds.class_names == ["0", "1", "2", "3"] and ds.n_classes == 4
    assert ds.metadata["index"].tolist() == list(range(40)) and set(ds.metadata["split"]) == {"all"}
    s = ds.summary()
    assert s["class_counts"] == [10, 10, 10, 10] and s["n"] == 40 and s["image_shape"] == [28, 28, 3]
    assert ds.label_names[15] == "1"
    assert as_dataset(ds) is ds
    unl = ImageDataset(images)
    assert unl.class_names == [] and (unl.label_names == "").all()


# -------------------------------------------------------------------- subsets
def test_subset_order_and_metadata(tiny_images):
    images, labels = tiny_images
    ds = ImageDataset(images, labels, metadata=pd.DataFrame({"tag": np.arange(40) * 2}))
    sub = ds.subset([5, 1, 30])
    np.testing.assert_array_equal(sub.images, images[[5, 1, 30]])
    assert sub.labels.tolist() == [0, 0, 3] and sub.metadata["tag"].tolist() == [10, 2, 60]
    assert sub.metadata["index"].tolist() == [5, 1, 30]
    mask = np.zeros(40, bool)
    mask[[3, 7]] = True
    assert ds.subset(mask).metadata["index"].tolist() == [3, 7]
    with pytest.raises(IndexError):
        ds.subset([40])


def test_subset_lazy_unsorted_with_repeats(tiny_images):
    images, labels = tiny_images
    lazy = _Lazy(images)
    ds = ImageDataset(lazy, labels)
    assert ds.is_lazy
    idx = [12, 3, 12, 0]
    sub = ds.subset(idx)
    np.testing.assert_array_equal(sub.images, images[idx])
    assert not sub.is_lazy and lazy.reads >= 1
    np.testing.assert_array_equal(ds.to_numpy(), images)


def test_stratified_subset(rng):
    labels = np.repeat(np.arange(3), [60, 30, 10])
    images = rng.integers(0, 256, (100, 4, 4, 3), dtype=np.uint8)
    ds = ImageDataset(images, labels)
    sub = ds.stratified_subset(20, random_state=1)
    assert len(sub) == 20
    assert np.bincount(sub.labels).tolist() == [12, 6, 2]
    assert np.all(np.diff(sub.metadata["index"]) > 0)  # source order kept
    again = ds.stratified_subset(20, random_state=1)
    assert again.metadata["index"].tolist() == sub.metadata["index"].tolist()
    # every class keeps at least one image even when tiny
    rare = ImageDataset(images, np.r_[np.zeros(99, int), 1])
    assert set(rare.stratified_subset(5).labels.tolist()) == {0, 1}
    assert ds.stratified_subset(500) is ds
    assert len(ImageDataset(images).stratified_subset(7)) == 7
    with pytest.raises(DataError, match="subset size must be positive"):
        ds.stratified_subset(0)


# -------------------------------------------------------------------- helpers
def _border_color_loop(images: np.ndarray) -> np.ndarray:
    """Reference: every border pixel of every image, one at a time."""
    total, count = np.zeros(3), 0
    for img in images:
        h, w = img.shape[:2]
        for y in range(h):
            for x in range(w):
                if y in (0, h - 1) or x in (0, w - 1):
                    total += img[y, x]
                    count += 1
    return total / count


def test_border_color_matches_loop(rng):
    images = rng.integers(0, 256, (7, 6, 9, 3), dtype=np.uint8)
    ds = ImageDataset(images)
    np.testing.assert_allclose(ds.border_color(), _border_color_loop(images), rtol=1e-6)
    assert ds.border_color().dtype == np.float32
    lazy = ImageDataset(_Lazy(images))
    np.testing.assert_allclose(lazy.border_color(), _border_color_loop(images), rtol=1e-6)
    # a white frame around black content: border colour is white
    framed = np.zeros((2, 5, 5, 3), np.uint8)
    framed[:, [0, -1]] = 255
    framed[:, :, [0, -1]] = 255
    np.testing.assert_allclose(ImageDataset(framed).border_color(), [255, 255, 255])


def test_resize(tiny_images):
    images, labels = tiny_images
    ds = ImageDataset(images, labels, name="t")
    small = ds.resize(14)
    assert small.image_shape == (14, 14, 3) and small.name == "t" and not small.is_lazy
    np.testing.assert_array_equal(small.labels, labels)
    assert ds.resize(28) is ds
    flat = ImageDataset(np.full((2, 10, 10, 3), 77, np.uint8)).resize((4, 6))
    assert flat.image_shape == (4, 6, 3) and (flat.images == 77).all()


def test_concatenate(tiny_images):
    images, labels = tiny_images
    a = ImageDataset(images[:10], labels[:10], class_names=list("abcd"),
                     metadata=pd.DataFrame({"split": ["train"] * 10}))
    b = ImageDataset(images[10:], labels[10:], class_names=list("abcd"),
                     metadata=pd.DataFrame({"split": ["test"] * 30}))
    ab = ImageDataset.concatenate([a, b], name="ab")
    np.testing.assert_array_equal(ab.images, images)
    assert ab.labels.tolist() == labels.tolist() and ab.name == "ab"
    assert ab.metadata["split"].tolist() == ["train"] * 10 + ["test"] * 30
    with pytest.raises(DataError, match="resize them to one size"):
        ImageDataset.concatenate([a, a.resize(14)])
    with pytest.raises(DataError, match="different class_names"):
        ImageDataset.concatenate([a, ImageDataset(images[:2], labels[:2])])
    with pytest.raises(DataError, match="labelled and unlabelled"):
        ImageDataset.concatenate([ImageDataset(images[:2], class_names=list("abcd")), a])
    with pytest.raises(DataError, match="at least one"):
        ImageDataset.concatenate([])


def test_fingerprint(tiny_images):
    images, labels = tiny_images
    fp = ImageDataset(images, labels).fingerprint()
    assert len(fp) == 16
    assert ImageDataset(images.copy(), labels.copy()).fingerprint() == fp
    assert ImageDataset(_Lazy(images), labels).fingerprint() == fp  # lazy read gives the same hash
    changed = images.copy()
    changed[0, 0, 0, 0] ^= 1
    assert ImageDataset(changed, labels).fingerprint() != fp
    assert ImageDataset(images, np.roll(labels, 1)).fingerprint() != fp
    assert ImageDataset(images).fingerprint() != fp


def test_title_marks_synthetic_data_once():
    images = np.zeros((4, 8, 8, 3), np.uint8)
    assert ImageDataset(images, name="cells", synthetic=True).title == "cells (synthetic)"
    assert ImageDataset(images, name="synthetic-blood", synthetic=True).title == "synthetic-blood"
    assert ImageDataset(images, name="bloodmnist").title == "bloodmnist"
