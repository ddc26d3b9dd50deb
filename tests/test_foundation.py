"""The one-source-of-truth primitives of issue 12: sorted reads, input checks, resize, the
synthetic label and the file-format writers shared by the stand-ins and the tests."""

from __future__ import annotations

import numpy as np
import pytest

from tsimcne_nb._indices import take_rows
from tsimcne_nb.data.core import ImageDataset, synthetic_title
from tsimcne_nb.data.resize import resize_images
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.validation import (
    check_embedding,
    check_features,
    check_int,
    check_rng,
    check_seed,
)


class IncreasingOnly:
    """An h5py-like source: refuses indices that are not strictly increasing."""

    def __init__(self, data: np.ndarray):
        self.data = data
        self.reads = 0

    def __getitem__(self, idx):
        idx = np.asarray(idx)
        if idx.ndim == 1 and idx.size > 1 and np.any(np.diff(idx) <= 0):
            raise TypeError("indices must be increasing")
        self.reads += 1
        return self.data[idx]


def test_take_rows_restores_the_order_asked_for():
    data = np.arange(30).reshape(10, 3)
    idx = [7, 2, 7, 0, 9, 2]
    src = IncreasingOnly(data)
    with pytest.raises(TypeError):
        src[np.asarray(idx)]  # the naive read fails on such a source
    np.testing.assert_array_equal(take_rows(src, idx), data[idx])
    np.testing.assert_array_equal(take_rows(src, idx, chunk=2), data[idx])
    np.testing.assert_array_equal(take_rows(lambda u: data[u], idx), data[idx])
    assert take_rows(data, []).shape == (0, 3)


def test_subset_keeps_the_order_asked_for():
    images = np.random.default_rng(0).integers(0, 256, (12, 4, 4, 3), dtype=np.uint8)
    ds = ImageDataset(images)
    idx = [5, 1, 5, 11]
    np.testing.assert_array_equal(ds.subset(idx).images, images[idx])


def test_checks_say_what_is_wrong():
    assert check_embedding(np.zeros((3, 2)), n=3, dim=2).dtype == np.float64
    with pytest.raises(DataError, match=r"shape \(N, 2\)"):
        check_embedding(np.zeros((3, 5)), dim=2)
    with pytest.raises(DataError, match="has 3 points but the dataset has 4"):
        check_embedding(np.zeros((3, 2)), n=4)
    with pytest.raises(DataError, match="NaN"):
        check_embedding(np.array([[0.0, np.nan]]))
    assert check_features(np.ones((4, 7))).dtype == np.float32
    with pytest.raises(DataError, match="at least 2 rows"):
        check_features(np.ones((1, 7)))
    with pytest.raises(DataError, match="numeric"):
        check_features(np.array([["a", "b"], ["c", "d"]]))
    assert check_int("k", 3) == 3
    for bad in (0, True, 2.5, "3"):
        with pytest.raises(ConfigError, match="k must be a positive integer"):
            check_int("k", bad)
    with pytest.raises(ConfigError, match=">= 2"):
        check_int("batch_size", 1, 2)
    assert check_seed(np.int64(4)) == 4 and check_seed(None) is None
    with pytest.raises(ConfigError, match="random_state"):
        check_seed(1.5)
    g = np.random.default_rng(0)
    assert check_rng(g) is g
    assert check_rng(3).integers(100) == np.random.default_rng(3).integers(100)


def test_one_resize_two_filters():
    img = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    lanczos, bilinear = resize_images(img, 8), resize_images(img, 8, method="bilinear")
    assert lanczos.shape == bilinear.shape == (2, 8, 8, 3)
    assert not np.array_equal(lanczos, bilinear)  # the method argument is really used
    # ImageDataset.resize is the bilinear one (what a fitted model applies to other sizes)
    np.testing.assert_array_equal(ImageDataset(img).resize(8).images, bilinear)
    assert resize_images(img, 16) is img
    with pytest.raises(ConfigError, match="method"):
        resize_images(img, 8, method="nearest")


def test_synthetic_label_is_one_word_added_once():
    assert synthetic_title("cells", True) == "cells (synthetic)"
    assert synthetic_title("synthetic-blood", True) == "synthetic-blood"
    assert synthetic_title("cells", False) == "cells"
    images = np.zeros((2, 4, 4, 3), np.uint8)
    assert ImageDataset(images, name="cells", synthetic=True).title == "cells (synthetic)"


def test_fakes_and_standins_share_the_format_writers(tmp_path):
    import _fakes

    from tsimcne_nb.data import formats

    # the test fakes write through the package's writers: refusing to overwrite is theirs too
    _fakes.write_medmnist(tmp_path / "bloodmnist.npz")
    with pytest.raises(FileExistsError):
        formats.write_medmnist_npz(tmp_path / "bloodmnist.npz", {"x": np.zeros(1)})
    from tsimcne_nb.data import standins

    assert standins.write_medmnist_npz is formats.write_medmnist_npz
    assert _fakes.write_medmnist_npz is formats.write_medmnist_npz
