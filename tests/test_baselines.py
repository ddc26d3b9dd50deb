"""Tests of tsimcne_nb.eval.baselines: t-SNE baselines, ResNet features, trainers, the cache."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import DataError, DatasetNotFoundError
from tsimcne_nb.eval import baselines, feature_cache
from tsimcne_nb.eval import weights as wfiles

training = importlib.import_module("tsimcne_nb.estimators")


@pytest.fixture
def ds() -> ImageDataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 30)
    images = (labels[:, None, None, None] * 70 + rng.integers(0, 40, (90, 8, 8, 3))).astype(np.uint8)
    return ImageDataset(images, labels, class_names=["a", "b", "c"], name="toy", synthetic=True)


class FakeLearner:
    """Stands in for training.SimCLR/BYOL/TSimCNE: records calls, returns features of the pixels."""

    calls: list[dict] = []

    def __init__(self, augment="randrot", budget="paper", random_state=None, device="auto",
                 progress=True):
        self.augment, self.budget, self.random_state = augment, budget, random_state
        self.device, self.progress = device, progress

    def fit(self, dataset):
        type(self).calls.append({"cls": type(self).__name__, "augment": self.augment,
                                 "budget": self.budget, "seed": self.random_state,
                                 "device": self.device, "n": len(dataset)})
        return self

    def transform(self, dataset):
        rng = np.random.default_rng(self.random_state)
        mean = dataset.to_numpy().reshape(len(dataset), -1, 3).mean(axis=1) / 255.0
        return np.hstack([mean, rng.normal(scale=0.01, size=(len(dataset), 13))]).astype(np.float32)

    def fit_transform(self, dataset):
        return self.fit(dataset).transform(dataset)[:, :2]


class FakeNoProgress:
    """A trainer without a ``progress`` parameter: it must not be passed one."""

    def __init__(self, augment, budget, random_state, device):
        self.random_state = random_state

    def fit(self, dataset):
        return self

    def transform(self, dataset):
        return np.zeros((len(dataset), 4), np.float32) + np.arange(len(dataset))[:, None]


@pytest.fixture
def fakes(monkeypatch):
    FakeLearner.calls = []
    for name in ("SimCLR", "BYOL", "TSimCNE"):
        monkeypatch.setattr(training, name, type(name, (FakeLearner,), {}))
    return FakeLearner.calls


# ------------------------------------------------------------------- cache
def test_cache_key_covers_method_config_data_seed(ds):
    k = feature_cache.cache_key("m", {"a": 1}, ds, 0)
    assert k == feature_cache.cache_key("m", {"a": 1}, ds, 0)
    other = ImageDataset(ds.images[::-1].copy(), ds.labels, name="toy")
    assert len({
        k,
        feature_cache.cache_key("m2", {"a": 1}, ds, 0),
        feature_cache.cache_key("m", {"a": 2}, ds, 0),
        feature_cache.cache_key("m", {"a": 1}, ds, 1),
        feature_cache.cache_key("m", {"a": 1}, other, 0),
    }) == 5


def test_feature_cache_hits_and_files(ds, tmp_path):
    cache = feature_cache.FeatureCache(tmp_path / "c")
    n_calls = []

    def compute():
        n_calls.append(1)
        return np.arange(6, dtype=np.float32).reshape(3, 2)

    a = cache.get_or_compute("m", {"x": 1}, ds, 0, compute)
    b = cache.get_or_compute("m", {"x": 1}, ds, 0, compute)
    np.testing.assert_array_equal(a, b)
    assert len(n_calls) == 1 and (cache.hits, cache.misses) == (1, 1)
    assert [e[0] for e in cache.log] == ["miss", "hit"]
    files = sorted(p.suffix for p in (tmp_path / "c").iterdir())
    assert files == [".json", ".npy"]  # no temporary files left behind
    # a fresh cache object on the same folder also hits
    again = feature_cache.FeatureCache(tmp_path / "c")
    again.get_or_compute("m", {"x": 1}, ds, 0, compute)
    assert again.hits == 1 and len(n_calls) == 1
    # disabled cache computes every time
    off = feature_cache.FeatureCache(None)
    off.get_or_compute("m", {"x": 1}, ds, 0, compute)
    off.get_or_compute("m", {"x": 1}, ds, 0, compute)
    assert len(n_calls) == 3 and off.misses == 2


def test_damaged_cache_file_is_recomputed(ds, tmp_path):
    cache = feature_cache.FeatureCache(tmp_path)
    key = feature_cache.cache_key("m", {}, ds, 0)
    (tmp_path / f"{key}.npy").write_bytes(b"not an array")
    out = cache.get_or_compute("m", {}, ds, 0, lambda: np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(out, np.ones((2, 2)))
    assert cache.misses == 1


# ------------------------------------------------------------------- t-SNE
def test_tsne_pixels_shape_seed_and_cache(ds, tmp_path, monkeypatch):
    cache = feature_cache.FeatureCache(tmp_path)
    emb = baselines.tsne_pixels(ds, random_state=0, n_jobs=1, cache=cache)
    assert emb.shape == (90, 2) and emb.dtype == np.float32
    # classes differ in brightness: pixel t-SNE separates them
    from tsimcne_nb.eval.metrics import knn_accuracy

    assert knn_accuracy(emb, ds.labels) > 0.9
    calls = []
    monkeypatch.setattr(baselines, "tsne_of", lambda *a, **k: calls.append(1))
    again = baselines.tsne_pixels(ds, random_state=0, n_jobs=1, cache=cache)
    np.testing.assert_array_equal(again, emb)
    assert calls == [] and cache.hits == 1


def test_tsne_pixels_pca_branches(ds, monkeypatch):
    seen = []
    monkeypatch.setattr(baselines, "tsne_of",
                        lambda X, **k: seen.append(X.shape) or np.zeros((len(X), 2), np.float32))
    baselines.tsne_pixels(ds)  # 8*8*3 = 192 <= threshold: raw pixels
    baselines.tsne_pixels(ds, pca_dim=10, pca_threshold=100)  # in-memory PCA
    baselines.tsne_pixels(ds, pca_dim=10, pca_threshold=100, max_in_memory=0)  # chunked PCA
    assert seen == [(90, 192), (90, 10), (90, 10)]


def test_tsne_of_seeded_and_validation():
    X = np.random.default_rng(0).normal(size=(80, 5))
    a = baselines.tsne_of(X, random_state=1, n_jobs=1)
    b = baselines.tsne_of(X, random_state=1, n_jobs=1)
    np.testing.assert_allclose(a, b)
    with pytest.raises(DataError, match="NaN"):
        baselines.tsne_of(np.full((10, 3), np.nan))
    with pytest.raises(DataError, match=r"\(N, d\)"):
        baselines.tsne_of(np.zeros(10))


# ----------------------------------------------------------------- ResNets
def test_missing_imagenet_weights_error_names_file_and_folder(ds, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    for arch, fname in (("resnet18", "resnet18-f37072fd.pth"), ("resnet152", "resnet152-394f9c45.pth")):
        with pytest.raises(DatasetNotFoundError) as info:
            baselines.imagenet_features(ds, arch=arch)
        msg = str(info.value)
        assert fname in msg
        assert str(tmp_path / "hub" / "checkpoints") in msg
        assert "weights=PATH" in msg and "weights=None" in msg
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        baselines.imagenet_features(ds, weights=tmp_path / "nope.pth")


def test_imagenet_features_random_init_and_weight_files(ds, tmp_path, monkeypatch):
    import torch
    import torchvision

    small = ds.subset(np.arange(0, 90, 6))  # 15 images keep the forward passes short
    kw = {"resize": 40, "crop": 32, "device": "cpu", "batch_size": 8}
    f0 = baselines.imagenet_features(small, weights=None, random_state=5, **kw)
    assert f0.shape == (15, 512) and f0.dtype == np.float32
    np.testing.assert_allclose(
        baselines.imagenet_features(small, weights=None, random_state=5, **kw), f0, rtol=1e-5
    )
    assert not np.allclose(baselines.imagenet_features(small, weights=None, random_state=6, **kw), f0)
    # a state-dict file is really loaded: the weights of random init seed 5, saved, give f0
    torch.manual_seed(5)
    state = torchvision.models.resnet18(weights=None).state_dict()
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    torch.save(state, hub / "checkpoints" / "resnet18-f37072fd.pth")
    f_path = baselines.imagenet_features(small, weights=hub / "checkpoints" / "resnet18-f37072fd.pth",
                                         random_state=0, **kw)
    np.testing.assert_allclose(f_path, f0, rtol=1e-4, atol=1e-5)
    # and 'imagenet' reads that same file from the (patched) torch hub cache
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    f_hub = baselines.imagenet_features(small, weights="imagenet", random_state=0, **kw)
    np.testing.assert_allclose(f_hub, f0, rtol=1e-4, atol=1e-5)


def test_resnet_labels_and_bad_options(ds):
    assert wfiles.resnet_label("resnet18", None) == "ResNet18 (random init, NOT ImageNet)"
    assert wfiles.resnet_label("resnet152", "imagenet") == "ResNet152 (ImageNet)"
    assert wfiles.resnet_label("resnet18", "/x/my.pth") == "ResNet18 (weights: my.pth)"
    from tsimcne_nb.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown arch"):
        baselines.imagenet_features(ds, arch="vgg16", weights=None)
    with pytest.raises(ConfigError, match="crop"):
        baselines.imagenet_features(ds, weights=None, resize=32, crop=64)
    with pytest.raises(DataError, match="ImageDataset"):
        baselines.imagenet_features(np.zeros((4, 8, 8, 3), np.uint8), weights=None)


# ------------------------------------------------------- trained learners
def test_learners_follow_the_training_contract(ds, fakes, tmp_path):
    cache = feature_cache.FeatureCache(tmp_path)
    f = baselines.simclr_features(ds, augment="rot90", budget="quick", random_state=3,
                                  device="cpu", cache=cache)
    assert f.shape == (90, 16) and f.dtype == np.float32
    b = baselines.byol_features(ds, augment="default", random_state=1, device="cpu", cache=cache)
    m = baselines.tsimcne_map(ds, augment="randrot", budget="quick", random_state=2, cache=cache)
    assert b.shape == (90, 16) and m.shape == (90, 2) and m.dtype == np.float32
    assert [(c["cls"], c["augment"], c["budget"], c["seed"]) for c in fakes] == [
        ("SimCLR", "rot90", "quick", 3), ("BYOL", "default", "quick", 1),
        ("TSimCNE", "randrot", "quick", 2),
    ]
    # cached: nothing is trained again, same arrays come back
    np.testing.assert_array_equal(
        baselines.simclr_features(ds, augment="rot90", budget="quick", random_state=3,
                                  device="cpu", cache=cache), f)
    baselines.tsimcne_map(ds, augment="randrot", budget="quick", random_state=2, cache=cache)
    assert len(fakes) == 3 and cache.hits == 2
    # a different seed or augmentation is a different key
    baselines.simclr_features(ds, augment="rot90", budget="quick", random_state=4, cache=cache)
    baselines.simclr_features(ds, augment="randrot", budget="quick", random_state=3, cache=cache)
    assert len(fakes) == 5
    # so is another definition of a budget with the same name (the quick budget changed in
    # issue 16: results of the earlier one must not come back from the cache)
    from dataclasses import replace

    from tsimcne_nb.train.budgets import QUICK

    earlier_quick = replace(QUICK, total_epochs=(45, 4, 30), optimizer="sgd", augment_overrides=())
    baselines.simclr_features(ds, augment="rot90", budget=earlier_quick, random_state=3, cache=cache)
    assert len(fakes) == 6
    baselines.simclr_features(ds, augment="rot90", budget=QUICK, random_state=3, cache=cache)
    assert len(fakes) == 6  # the object equal to "quick" is the same key as the name


def test_learner_kwargs_filtered_to_signature(ds, monkeypatch):
    monkeypatch.setattr(training, "SimCLR", FakeNoProgress)
    f = baselines.simclr_features(ds, random_state=0)  # would fail if progress= were passed
    assert f.shape == (90, 4)


def test_bad_learner_output_rejected(ds, monkeypatch):
    class Bad(FakeLearner):
        def transform(self, dataset):
            return np.full((len(dataset), 4), np.nan, np.float32)

        def fit_transform(self, dataset):
            return np.zeros((len(dataset), 3), np.float32)

    monkeypatch.setattr(training, "SimCLR", Bad)
    monkeypatch.setattr(training, "TSimCNE", Bad)
    with pytest.raises(DataError, match="NaN"):
        baselines.simclr_features(ds)
    with pytest.raises(DataError, match="expected"):
        baselines.tsimcne_map(ds)
