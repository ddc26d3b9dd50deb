"""Every dataset loader on small files written in the exact real formats (tests/_fakes.py)."""

from __future__ import annotations

import gzip
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _fakes import (  # noqa: E402
    medmnist_arrays,
    write_cifar10,
    write_image_folder,
    write_leukemia,
    write_medmnist,
    write_pcam,
)

from tsimcne_nb.data import registry  # noqa: E402
from tsimcne_nb.data.registry import describe_datasets, list_datasets, load_dataset  # noqa: E402
from tsimcne_nb.errors import ConfigError, DataError, DatasetNotFoundError  # noqa: E402


# ------------------------------------------------------------------ registry
def test_unknown_name_suggests_closest():
    with pytest.raises(ConfigError, match=r"unknown dataset 'bloodmnsit'.*Did you mean 'bloodmnist'") as e:
        load_dataset("bloodmnsit")
    assert "pathmnist" in str(e.value) and "folder:PATH" in str(e.value)


def test_unknown_option_names_valid_options(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown option\(s\) 'sise'.*valid options: size, split"):
        load_dataset("bloodmnist", root=tmp_path, sise=64)


def test_bad_option_values():
    with pytest.raises(ConfigError, match="must be true or false"):
        load_dataset("leukemia", merge="perhaps")
    with pytest.raises(ConfigError, match="must be an integer"):
        load_dataset("digits", size="big")


def test_describe_and_list():
    text = describe_datasets()
    names = [d.name for d in list_datasets()]
    assert names[:2] == ["synthetic-blood", "bloodmnist"]
    for n in names:
        assert n in text
    assert "camelyonpatch_level_2_split_" in text and "manual" in text and "CC BY-NC 4.0" in text


def test_default_root_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path))
    assert registry.data_home() == tmp_path
    write_medmnist(tmp_path / "medmnist" / "bloodmnist.npz")
    assert len(load_dataset("bloodmnist")) == 13
    monkeypatch.delenv("TSIMCNE_DATA")
    assert registry.data_home() == Path.home() / ".tsimcne_nb" / "data"


def test_registry_import_is_light():
    code = ("import sys, tsimcne_nb.data.registry as r; r.describe_datasets(); "
            "print(any(m in sys.modules for m in ('torch', 'h5py', 'PIL', 'sklearn')))")
    out = os.popen(f'"{sys.executable}" -c "{code}"').read().strip()
    assert out == "False"


def test_synthetic_blood_via_registry():
    pytest.importorskip("tsimcne_nb.data.synthetic")
    ds = load_dataset("synthetic-blood", n=60, size=16, random_state=1)
    assert len(ds) == 60 and ds.image_shape == (16, 16, 3) and ds.synthetic


# ------------------------------------------------------------------ MedMNIST
@pytest.mark.parametrize("label_dtype", [np.uint8, np.int64, np.int32])
def test_bloodmnist_all_splits(tmp_path, label_dtype):
    arrays = write_medmnist(tmp_path / "bloodmnist.npz", label_dtype=label_dtype)
    ds = load_dataset("bloodmnist", root=tmp_path)
    expected = np.concatenate([arrays[f"{s}_images"] for s in ("train", "val", "test")])
    np.testing.assert_array_equal(ds.images, expected)
    lab = np.concatenate([arrays[f"{s}_labels"][:, 0] for s in ("train", "val", "test")])
    np.testing.assert_array_equal(ds.labels, lab.astype(np.int64))
    assert ds.class_names[3] == "immature granulocytes" and len(ds.class_names) == 8
    assert list(ds.metadata["split"]) == ["train"] * 6 + ["val"] * 3 + ["test"] * 4
    assert list(ds.metadata["index"][6:9]) == [0, 1, 2]
    assert set(ds.metadata["source_file"]) == {"bloodmnist.npz"}
    assert ds.name == "bloodmnist"


def test_medmnist_size_and_split(tmp_path):
    arrays = write_medmnist(tmp_path / "medmnist" / "pathmnist_64.npz", size=64, n_classes=9)
    # root may be the common data folder: medmnist/ is found below it
    ds = load_dataset("pathmnist", root=tmp_path, size=64, split="test")
    np.testing.assert_array_equal(ds.images, arrays["test_images"])
    assert ds.image_shape == (64, 64, 3) and ds.name == "pathmnist_64-test"
    with pytest.raises(ConfigError, match="size must be one of 28, 64, 128, 224"):
        load_dataset("pathmnist", root=tmp_path, size=32)
    with pytest.raises(ConfigError, match="split must be"):
        load_dataset("pathmnist", root=tmp_path, size=64, split="validation")


def test_medmnist_renamed_file_wrong_size(tmp_path):
    write_medmnist(tmp_path / "bloodmnist_64.npz", size=28)
    with pytest.raises(DataError, match="28x28 px images but size=64"):
        load_dataset("bloodmnist", root=tmp_path, size=64)


def test_dermamnist_labels(tmp_path):
    arrays = write_medmnist(tmp_path / "dermamnist.npz", n_classes=7, counts=(14, 7, 7))
    ds2 = load_dataset("dermamnist", root=tmp_path)
    raw = np.concatenate([arrays[f"{s}_labels"][:, 0] for s in ("train", "val", "test")])
    np.testing.assert_array_equal(ds2.labels, (raw == 5).astype(int))
    assert ds2.class_names == ["other", "melanocytic nevi"]
    ds7 = load_dataset("dermamnist", root=tmp_path, labels="7")
    np.testing.assert_array_equal(ds7.labels, raw)
    assert ds7.class_names[5] == "melanocytic nevi" and ds7.n_classes == 7
    with pytest.raises(ConfigError, match="labels must be 2"):
        load_dataset("dermamnist", root=tmp_path, labels=3)


def test_medmnist_missing_file_message(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("dermamnist", root=tmp_path, size=128)
    msg = str(e.value)
    assert "dermamnist_128.npz" in msg and str(tmp_path) in msg
    assert "zenodo.org/records/10519652/files/dermamnist_128.npz" in msg
    assert "download=True" in msg and "--download" in msg


def test_medmnist_missing_key(tmp_path):
    arrays = medmnist_arrays()
    del arrays["val_labels"]
    np.savez(tmp_path / "bloodmnist.npz", **arrays)
    with pytest.raises(DataError, match=r"missing the key\(s\) val_labels") as e:
        load_dataset("bloodmnist", root=tmp_path)
    assert "bloodmnist.npz" in str(e.value)


def test_medmnist_label_count_mismatch(tmp_path):
    arrays = medmnist_arrays()
    arrays["train_labels"] = arrays["train_labels"][:-1]
    np.savez(tmp_path / "bloodmnist.npz", **arrays)
    with pytest.raises(DataError, match="train_images holds 6 images but train_labels holds 5"):
        load_dataset("bloodmnist", root=tmp_path)


def test_medmnist_truncated_npz(tmp_path):
    path = tmp_path / "bloodmnist.npz"
    write_medmnist(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged") as e:
        load_dataset("bloodmnist", root=tmp_path)
    assert "download it again" in str(e.value) and "zenodo.org" in str(e.value)


def test_medmnist_bad_label_values(tmp_path):
    arrays = medmnist_arrays()
    arrays["test_labels"][0, 0] = 9
    np.savez(tmp_path / "bloodmnist.npz", **arrays)
    with pytest.raises(DataError, match=r"labels must lie in 0..7"):
        load_dataset("bloodmnist", root=tmp_path)


# ---------------------------------------------------------------------- PCam
@pytest.mark.parametrize("gz", [False, True])
def test_pcam_lazy_all(tmp_path, gz):
    data = write_pcam(tmp_path, gz=gz)
    ds = load_dataset("pcam", root=tmp_path)
    assert ds.is_lazy and len(ds) == 16 and ds.image_shape == (96, 96, 3)
    x = np.concatenate([data[s][0] for s in ("train", "valid", "test")])
    y = np.concatenate([data[s][1].reshape(-1) for s in ("train", "valid", "test")])
    np.testing.assert_array_equal(ds.labels, y)
    np.testing.assert_array_equal(ds.to_numpy(), x)
    # int, slice with step, unsorted index array with repeats, boolean mask, negative
    np.testing.assert_array_equal(ds.images[9], x[9])
    np.testing.assert_array_equal(ds.images[1:15:3], x[1:15:3])
    idx = np.array([14, 2, 9, 2, 0])
    np.testing.assert_array_equal(ds.images[idx], x[idx])
    mask = np.arange(16) % 5 == 0
    np.testing.assert_array_equal(ds.images[mask], x[mask])
    np.testing.assert_array_equal(ds.images[-1], x[-1])
    np.testing.assert_array_equal(ds.images[6:10], x[6:10])  # across the train/valid boundary
    sparse = np.array([15, 0, 1])  # spread-out indices: read point-wise, not as one range
    np.testing.assert_array_equal(ds.images[sparse], x[sparse])
    assert ds.images[3:3].shape == (0, 96, 96, 3)
    np.testing.assert_array_equal(ds.subset([15, 3]).images, x[[15, 3]])
    assert ds.class_names == ["no metastasis", "metastasis"]
    assert list(ds.metadata["split"].unique()) == ["train", "valid", "test"]
    if gz:  # decompressed next to the .gz, which is kept
        assert (tmp_path / "camelyonpatch_level_2_split_train_x.h5").exists()
        assert (tmp_path / "camelyonpatch_level_2_split_train_x.h5.gz").exists()
    with pytest.raises(IndexError):
        ds.images[16]


def test_pcam_split_and_resize(tmp_path):
    data = write_pcam(tmp_path)
    ds = load_dataset("pcam", root=tmp_path, split="val", size=32)
    assert ds.is_lazy and ds.image_shape == (32, 32, 3) and len(ds) == 4
    from tsimcne_nb.data.resize import resize_images

    np.testing.assert_array_equal(ds.images[[3, 1]], resize_images(data["valid"][0][[3, 1]], 32))
    assert ds.name == "pcam-valid_32"


def test_pcam_missing(tmp_path):
    write_pcam(tmp_path, counts={"train": 2})
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("pcam", root=tmp_path)
    msg = str(e.value)
    assert "camelyonpatch_level_2_split_valid_x.h5" in msg and "zenodo.org/records/2546921" in msg
    assert "download=True" in msg


def test_pcam_truncated_h5(tmp_path):
    write_pcam(tmp_path, counts={"test": 4})
    path = tmp_path / "camelyonpatch_level_2_split_test_x.h5"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="damaged or incomplete") as e:
        load_dataset("pcam", root=tmp_path, split="test")
    assert "camelyonpatch_level_2_split_test_x.h5" in str(e.value)


def test_pcam_truncated_gz(tmp_path):
    write_pcam(tmp_path, counts={"test": 4}, gz=True)
    gz = tmp_path / "camelyonpatch_level_2_split_test_x.h5.gz"
    data = gz.read_bytes()
    gz.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="damaged") as e:
        load_dataset("pcam", root=tmp_path, split="test")
    assert "download it again" in str(e.value)
    assert not (tmp_path / "camelyonpatch_level_2_split_test_x.h5").exists()  # no partial output


def test_pcam_label_mismatch(tmp_path):
    import h5py

    write_pcam(tmp_path, counts={"test": 4})
    with h5py.File(tmp_path / "camelyonpatch_level_2_split_test_y.h5", "w") as f:
        f["y"] = np.zeros((3, 1, 1, 1), np.uint8)
    with pytest.raises(DataError, match="holds 4 images but .* holds 3 labels"):
        load_dataset("pcam", root=tmp_path, split="test")


def test_pcam_wrong_image_dtype(tmp_path):
    import h5py

    write_pcam(tmp_path, counts={"test": 2})
    with h5py.File(tmp_path / "camelyonpatch_level_2_split_test_x.h5", "w") as f:
        f["x"] = np.zeros((2, 8, 8, 3), np.float32)
    with pytest.raises(DataError, match="must be uint8 images .* got dtype float32"):
        load_dataset("pcam", root=tmp_path, split="test")


def test_h5_array_pickles(tmp_path):
    write_pcam(tmp_path, counts={"test": 3})
    ds = load_dataset("pcam", root=tmp_path, split="test")
    clone = pickle.loads(pickle.dumps(ds.images))
    np.testing.assert_array_equal(clone[0:3], ds.images[0:3])


# ------------------------------------------------------------------ leukemia
def test_leukemia_paper_merge(tmp_path):
    write_leukemia(tmp_path)
    ds = load_dataset("leukemia", root=tmp_path, progress=False)
    # paper counts: NGS, LYT, EOS stay; BAS (79) and EBO (78) < 80 -> OTH, last
    assert ds.class_names == ["NGS", "LYT", "EOS", "OTH"]
    assert ds.image_shape == (28, 28, 3) and len(ds) == 9
    assert (ds.label_names[ds.metadata["abbr"].isin(["BAS", "EBO"]).to_numpy()] == "OTH").all()
    assert any(s.endswith(".tiff.tiff") for s in ds.metadata["source_file"])
    ngs = ds.metadata[ds.metadata["abbr"] == "NGS"]
    assert (ngs["description"] == "neutrophil (segmented)").all() and len(ngs) == 3


def test_leukemia_options_and_root_forms(tmp_path):
    folder = write_leukemia(tmp_path, counts={"NGS": 3, "LYT": 2, "NGB": 1})
    # root may be the AML folder itself; all 15-class mode keeps every class
    ds = load_dataset("leukemia", root=folder, merge="false", size=12, cache=False, progress=False)
    assert ds.class_names == ["NGS", "LYT", "NGB"] and ds.image_shape == (12, 12, 3)
    obs = load_dataset("leukemia", root=tmp_path, merge_counts="observed", min_count=2,
                       cache=False, progress=False)
    assert obs.class_names == ["NGS", "LYT", "OTH"]
    with pytest.raises(ConfigError, match="merge_counts must be"):
        load_dataset("leukemia", root=tmp_path, merge_counts="guess", progress=False)


def test_leukemia_rgba_to_rgb_and_cache(tmp_path):
    from PIL import Image

    folder = write_leukemia(tmp_path, counts={"MON": 2}, size=28)
    ds = load_dataset("leukemia", root=tmp_path, progress=False)
    first = sorted((folder / "MON").glob("*.tif*"))[0]
    rgb = np.asarray(Image.open(first).convert("RGB"))
    np.testing.assert_array_equal(ds.images[0], rgb)  # same size: no resampling, alpha dropped
    cache = folder / ".tsimcne_nb_28x28px.npz"
    assert cache.exists()
    # the cache is used: replace a TIFF's pixels, the cached array is returned unchanged
    Image.fromarray(np.zeros((28, 28, 4), np.uint8), "RGBA").save(first, format="TIFF")
    again = load_dataset("leukemia", root=tmp_path, progress=False)
    np.testing.assert_array_equal(again.images, ds.images)
    # a new file invalidates it
    Image.fromarray(np.zeros((28, 28, 4), np.uint8), "RGBA").save(folder / "MON" / "MON_0099.tiff")
    third = load_dataset("leukemia", root=tmp_path, progress=False)
    assert len(third) == 3 and (third.images[0] == 0).all()


def test_leukemia_missing_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError) as e:
        load_dataset("leukemia", root=tmp_path, download=True)
    msg = str(e.value)
    assert "AML-Cytomorphology_LMU" in msg and "Cancer Imaging Archive" in msg
    assert "by hand" in msg and str(tmp_path) in msg


def test_leukemia_wrong_layout(tmp_path):
    folder = tmp_path / "AML-Cytomorphology_LMU"
    folder.mkdir()
    (folder / "NGS_0001.png").write_bytes(b"not a tiff")
    with pytest.raises(DataError, match="no class sub-folders with TIFF images.*Expected layout"):
        load_dataset("leukemia", root=tmp_path)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF")
def test_leukemia_damaged_tiff(tmp_path):
    folder = write_leukemia(tmp_path, counts={"NGS": 2})
    (folder / "NGS" / "NGS_0005.tiff").write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match="NGS_0005.tiff"):
        load_dataset("leukemia", root=tmp_path, progress=False)


# ------------------------------------------------------------------- CIFAR-10
def test_cifar10(tmp_path):
    batches = write_cifar10(tmp_path)
    ds = load_dataset("cifar10", root=tmp_path)
    assert len(ds) == 24 and ds.image_shape == (32, 32, 3)
    data, labels = batches["data_batch_2"]
    # row layout: 1024 red, 1024 green, 1024 blue values, row-major
    np.testing.assert_array_equal(ds.images[4, 0, 1], data[0, [1, 1025, 2049]])
    assert ds.labels[4:8].tolist() == labels
    assert ds.class_names[0] == "airplane" and ds.class_names[9] == "truck"
    test = load_dataset("cifar10", root=tmp_path / "cifar-10-batches-py", split="test")
    assert len(test) == 4 and set(test.metadata["split"]) == {"test"}


def test_cifar10_missing_and_malicious(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="(?s)cifar-10-batches-py/data_batch_1.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", root=tmp_path)
    write_cifar10(tmp_path)
    # a pickle that would call os.system must be refused, not executed
    evil = pickle.dumps({"data": os.getcwd, "labels": []}, protocol=2)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(evil)
    with pytest.raises(DataError, match="not a readable CIFAR-10 batch"):
        load_dataset("cifar10", root=tmp_path)


# --------------------------------------------------------------------- digits
def test_digits():
    ds = load_dataset("digits")
    assert len(ds) == 1797 and ds.image_shape == (8, 8, 3) and ds.n_classes == 10
    from sklearn.datasets import load_digits

    raw = load_digits().images[0]
    np.testing.assert_array_equal(ds.images[0, ..., 1], np.clip(raw * 16, 0, 255).astype(np.uint8))
    assert ds.images.max() == 255 and not ds.synthetic
    assert load_dataset("digits", size=32).image_shape == (32, 32, 3)


# --------------------------------------------------------------------- custom
def test_npz_custom(tmp_path):
    rng = np.random.default_rng(0)
    imgs = rng.random((5, 10, 10, 3)).astype(np.float32)
    np.savez(tmp_path / "mine.npz", images=imgs, labels=np.array([0, 1, 1, 0, 2]),
             class_names=np.array(["x", "y", "z"]))
    ds = load_dataset(f"npz:{tmp_path / 'mine.npz'}")
    assert ds.name == "mine" and ds.class_names == ["x", "y", "z"] and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, np.rint(imgs * 255).astype(np.uint8))
    write_medmnist(tmp_path / "med.npz")
    med = load_dataset(f"npz:{tmp_path / 'med.npz'}", size=14, dataset_name="m")
    assert len(med) == 13 and med.image_shape == (14, 14, 3) and med.name == "m"


def test_npz_custom_errors(tmp_path):
    np.savez(tmp_path / "a.npz", pictures=np.zeros((2, 4, 4, 3), np.uint8))
    with pytest.raises(DataError, match="has the keys pictures; expected 'images'"):
        load_dataset(f"npz:{tmp_path / 'a.npz'}")
    np.savez(tmp_path / "b.npz", images=np.zeros((2, 4, 4, 3), np.uint8), labels=np.zeros(3))
    with pytest.raises(DataError, match=r"labels \(3\) do not match images \(2\)"):
        load_dataset(f"npz:{tmp_path / 'b.npz'}")
    np.savez(tmp_path / "c.npz", images=np.full((2, 4, 4, 3), np.nan, np.float32))
    with pytest.raises(DataError, match="NaN"):
        load_dataset(f"npz:{tmp_path / 'c.npz'}")
    np.savez(tmp_path / "d.npz", images=np.zeros((2, 6, 6, 5), np.uint8))
    with pytest.raises(DataError, match="1, 3 or 4 channels"):
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    (tmp_path / "e.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="damaged or not an npz"):
        load_dataset(f"npz:{tmp_path / 'e.npz'}")
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}")


def test_folder_labelled_and_flat(tmp_path):
    root = write_image_folder(tmp_path / "cells", {"b_cls": 2, "a_cls": 3})
    (root / "a_cls" / "notes.txt").write_text("ignored")
    (root / "README.md").write_text("ignored")
    ds = load_dataset(f"folder:{root}")
    assert ds.class_names == ["a_cls", "b_cls"] and ds.labels.tolist() == [0, 0, 0, 1, 1]
    assert ds.metadata["source_file"].iloc[0] == os.path.join("a_cls", "img_0.png")
    flat = write_image_folder(tmp_path / "flat", {"": 4}, fmt="jpg")
    ds = load_dataset(f"folder:{flat}")
    assert ds.labels is None and len(ds) == 4 and ds.name == "flat"


def test_folder_sizes(tmp_path):
    root = write_image_folder(tmp_path / "mixed", {"a": 2, "b": 2}, size={"a": 16, "b": 20})
    with pytest.raises(DataError, match="different sizes .* pass size=S"):
        load_dataset(f"folder:{root}")
    ds = load_dataset(f"folder:{root}", size=12)
    assert ds.image_shape == (12, 12, 3) and len(ds) == 4


def test_folder_layout_errors(tmp_path):
    root = write_image_folder(tmp_path / "both", {"a": 2})
    write_image_folder(root, {"": 1})
    with pytest.raises(DataError, match="both loose images .* and sub-folders"):
        load_dataset(f"folder:{root}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("no images")
    with pytest.raises(DataError, match="contains no images"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DatasetNotFoundError):
        load_dataset(f"folder:{tmp_path / 'absent'}")


def test_from_arrays_and_tensors(tiny_images):
    from tsimcne_nb.data.loaders.custom import from_arrays

    images, labels = tiny_images
    ds = from_arrays(images, labels, class_names=list("abcd"), size=14)
    assert ds.image_shape == (14, 14, 3) and ds.class_names == list("abcd")
    torch = pytest.importorskip("torch")
    t = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    ds = from_arrays(t, torch.from_numpy(labels))
    np.testing.assert_array_equal(ds.images, images)
    with pytest.raises(DataError, match="different sizes"):
        from_arrays([images[0], images[0, :20]])
    assert from_arrays([images[0], images[0, :20]], size=10).image_shape == (10, 10, 3)


def test_gz_file_kept_and_gunzip_idempotent(tmp_path):
    from tsimcne_nb.data.download import gunzip_file

    src = tmp_path / "f.bin.gz"
    with gzip.open(src, "wb") as fh:
        fh.write(b"abc" * 1000)
    out = gunzip_file(src)
    assert out == tmp_path / "f.bin" and out.read_bytes() == b"abc" * 1000 and src.exists()
    assert gunzip_file(src) == out
