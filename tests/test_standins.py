"""SYNTHETIC stand-in files: the real loaders read them, and they say they are synthetic."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from tsimcne_nb.data.registry import load_dataset
from tsimcne_nb.data.standins import (
    README_NAME,
    STANDIN_NAMES,
    is_standin,
    load_standin,
    standin_classes,
    write_standin_files,
)
from tsimcne_nb.errors import ConfigError

# small but enough for every class (>= 4 images each)
N = {"bloodmnist": 40, "pathmnist": 45, "dermamnist": 40, "pcam": 16, "leukemia": 40, "cifar10": 48}
OPTS = {"leukemia": {"progress": False, "cache": False}}


@pytest.mark.parametrize("name", STANDIN_NAMES)
def test_real_loader_reads_standin(tmp_path, name):
    folder = write_standin_files(name, tmp_path, n=N[name], random_state=1)
    ds = load_dataset(name, root=tmp_path, **OPTS.get(name, {}))
    assert len(ds) == N[name]
    # the returned folder works as root too
    again = load_dataset(name, root=folder, **OPTS.get(name, {}))
    np.testing.assert_array_equal(np.asarray(again.images[:]), np.asarray(ds.images[:]))
    readme = (folder / README_NAME.format(name=name)).read_text()
    assert "SYNTHETIC" in readme and "NOT THE REAL DATA" in readme
    # every class of the real dataset is present (leukemia: after the paper's merge)
    assert set(np.unique(ds.labels)) == set(range(ds.n_classes))
    # images are drawn cells, not constant or noise: each image has structure but is not flat
    x = np.asarray(ds.images[:]).astype(np.float32)
    assert x.std(axis=(1, 2, 3)).min() > 5


def test_medmnist_format(tmp_path):
    folder = write_standin_files("bloodmnist", tmp_path, n=60)
    with np.load(folder / "bloodmnist.npz") as npz:
        assert sorted(npz.files) == sorted(
            f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")
        )
        assert npz["train_images"].shape[1:] == (28, 28, 3)
        assert npz["train_images"].dtype == np.uint8
        assert npz["train_labels"].shape == (len(npz["train_images"]), 1)
        counts = [len(npz[f"{s}_images"]) for s in ("train", "val", "test")]
    assert sum(counts) == 60 and counts[0] > counts[2] > 0 and counts[1] > 0
    ds = load_dataset("bloodmnist", root=tmp_path)
    assert ds.class_names == [real for real, _ in standin_classes("bloodmnist")]


def test_medmnist_larger_size_file_name(tmp_path):
    folder = write_standin_files("pathmnist", tmp_path, n=40, size=64)
    assert (folder / "pathmnist_64.npz").exists()
    ds = load_dataset("pathmnist", root=tmp_path, size=64)
    assert ds.image_shape == (64, 64, 3) and ds.n_classes == 9


def test_dermamnist_is_imbalanced_like_the_real_data(tmp_path):
    write_standin_files("dermamnist", tmp_path, n=200)
    binary = load_dataset("dermamnist", root=tmp_path)
    seven = load_dataset("dermamnist", root=tmp_path, labels=7)
    assert binary.class_names == ["other", "melanocytic nevi"]
    # melanocytic nevi are 67% of the real data; the stand-in follows the real frequencies
    assert 0.5 < binary.labels.mean() < 0.8
    assert np.bincount(seven.labels).argmax() == 5


def test_pcam_format(tmp_path):
    import h5py

    folder = write_standin_files("pcam", tmp_path, n=20)
    for split in ("train", "valid", "test"):
        with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_x.h5", "r") as f:
            assert f["x"].shape[1:] == (96, 96, 3) and f["x"].dtype == np.uint8
            n = f["x"].shape[0]
        with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_y.h5", "r") as f:
            assert f["y"].shape == (n, 1, 1, 1) and f["y"].dtype == np.uint8
    ds = load_dataset("pcam", root=tmp_path)
    assert ds.is_lazy and ds.image_shape == (96, 96, 3)
    assert list(ds.metadata["split"].unique()) == ["train", "valid", "test"]


def test_leukemia_format_and_merge(tmp_path):
    from PIL import Image

    folder = write_standin_files("leukemia", tmp_path, n=60)
    base = folder / "AML-Cytomorphology_LMU"
    files = sorted(base.glob("*/*.tif*"))
    assert len(files) == 60
    assert sum(f.name.endswith(".tiff.tiff") for f in files) == 1
    with Image.open(files[0]) as im:
        assert im.mode == "RGBA" and im.size == (64, 64)
    assert (base / "annotations.dat").exists() and (base / "abbreviations.txt").exists()
    ds = load_dataset("leukemia", root=tmp_path, progress=False, cache=False)
    # rare classes (BAS, EBO, PMO: < 80 cells in the real release) are merged into OTH
    assert ds.class_names == ["NGS", "LYT", "MYO", "MON", "EOS", "NGB", "OTH"]
    oth = ds.metadata.loc[ds.labels == ds.class_names.index("OTH"), "abbr"]
    assert set(oth) == {"BAS", "EBO", "PMO"}


def test_cifar10_format(tmp_path):
    folder = write_standin_files("cifar10", tmp_path, n=60)
    base = folder / "cifar-10-batches-py"
    with open(base / "data_batch_1", "rb") as fh:
        batch = pickle.load(fh)
    assert batch["data"].dtype == np.uint8 and batch["data"].shape[1] == 3072
    assert len(batch["labels"]) == len(batch["data"])
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.image_shape == (32, 32, 3) and ds.n_classes == 10
    assert (ds.metadata["split"] == "test").sum() == 10
    # the channel-major rows decode to the images that were drawn (R plane first)
    row = batch["data"][0]
    np.testing.assert_array_equal(ds.images[0][..., 0].ravel(), row[:1024])


def test_deterministic_and_seeded(tmp_path):
    a = write_standin_files("bloodmnist", tmp_path / "a", n=40, random_state=3)
    b = write_standin_files("bloodmnist", tmp_path / "b", n=40, random_state=3)
    c = write_standin_files("bloodmnist", tmp_path / "c", n=40, random_state=4)
    with np.load(a / "bloodmnist.npz") as fa, np.load(b / "bloodmnist.npz") as fb, \
            np.load(c / "bloodmnist.npz") as fc:
        np.testing.assert_array_equal(fa["train_images"], fb["train_images"])
        assert not np.array_equal(fa["train_images"], fc["train_images"])


def test_refuses_to_overwrite_then_overwrites(tmp_path):
    folder = write_standin_files("bloodmnist", tmp_path, n=40, random_state=0)
    before = (folder / "bloodmnist.npz").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_standin_files("bloodmnist", tmp_path, n=40, random_state=1)
    assert (folder / "bloodmnist.npz").read_bytes() == before
    write_standin_files("bloodmnist", tmp_path, n=40, random_state=1, overwrite=True)
    assert (folder / "bloodmnist.npz").read_bytes() != before


def test_never_overwrites_real_files(tmp_path):
    # a real-looking file already there and no stand-in README: refuse, write nothing
    (tmp_path / "medmnist").mkdir()
    (tmp_path / "medmnist" / "bloodmnist.npz").write_bytes(b"real data")
    with pytest.raises(FileExistsError):
        load_standin("bloodmnist", root=tmp_path, n=40)
    assert (tmp_path / "medmnist" / "bloodmnist.npz").read_bytes() == b"real data"
    assert not (tmp_path / "medmnist" / README_NAME.format(name="bloodmnist")).exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "imagenet"}, "no stand-in for dataset 'imagenet'"),
        ({"name": "bloodmnist", "n": 10}, "n must be an integer >= 32"),
        ({"name": "bloodmnist", "n": 40.5}, "n must be an integer"),
        ({"name": "bloodmnist", "size": 30}, "28, 64, 128, 224"),
        ({"name": "cifar10", "size": 64}, "32x32 images only"),
        ({"name": "pcam", "size": 4}, "size must be an integer >= 8"),
        ({"name": "pcam", "random_state": -1}, "random_state must be a non-negative integer"),
    ],
)
def test_bad_arguments_raise_config_error(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        write_standin_files(root=tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())


def test_load_standin_marks_synthetic(tmp_path):
    ds = load_standin("dermamnist", root=tmp_path, n=40, labels=7)
    assert ds.synthetic is True
    assert ds.name == "synthetic-standin-dermamnist-7class"
    assert "synthetic" in repr(ds)
    assert ds.n_classes == 7
    # second call reuses the files (no FileExistsError) and gives the same data
    again = load_standin("dermamnist", root=tmp_path, n=40, labels=7)
    np.testing.assert_array_equal(again.images, ds.images)


def test_load_standin_temp_folder():
    ds = load_standin("pcam", n=12, size=32)
    assert ds.synthetic and ds.name.startswith("synthetic-standin-pcam")
    assert ds.image_shape == (32, 32, 3)


def test_is_standin(tmp_path, monkeypatch):
    assert not is_standin("bloodmnist", tmp_path)
    folder = write_standin_files("bloodmnist", tmp_path, n=40)
    assert is_standin("bloodmnist", tmp_path)  # the common data folder
    assert is_standin("bloodmnist", folder)  # the dataset's own folder
    assert not is_standin("pathmnist", tmp_path)  # another MedMNIST file in the same folder
    assert not is_standin("synthetic-blood", tmp_path)
    # root=None: the default data folder ($TSIMCNE_DATA)
    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path))
    assert is_standin("bloodmnist")
    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path / "elsewhere"))
    assert not is_standin("bloodmnist")
