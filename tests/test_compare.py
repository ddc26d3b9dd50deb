"""Tests of tsimcne_nb.eval.compare: the runner, its tables, cache reuse, experiments, outputs."""

from __future__ import annotations

import importlib
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.eval import baselines
from tsimcne_nb.eval import weights as wfiles

# ``tsimcne_nb.eval.compare`` as an attribute is the lazily exported function; get the module
cmp = importlib.import_module("tsimcne_nb.eval.compare")
compare_to_directory = importlib.import_module("tsimcne_nb.pipelines.compare").compare_to_directory
training = importlib.import_module("tsimcne_nb.estimators")


class FakeLearner:
    """Stands in for the trainers; the 2-D 'map' and features follow the mean image colour."""

    calls: list[dict] = []

    def __init__(self, augment="randrot", budget="paper", random_state=None, device="auto",
                 progress=True):
        self.augment, self.budget, self.random_state = augment, budget, random_state

    def fit(self, dataset):
        aug = self.augment.to_config() if hasattr(self.augment, "to_config") else self.augment
        type(self).calls.append({"cls": type(self).__name__, "augment": aug,
                                 "budget": self.budget, "seed": self.random_state})
        return self

    def transform(self, dataset):
        rng = np.random.default_rng(self.random_state)
        mean = dataset.to_numpy().reshape(len(dataset), -1, 3).mean(axis=1) / 255.0
        return np.hstack([mean, rng.normal(scale=0.05, size=(len(dataset), 5))]).astype(np.float32)

    def fit_transform(self, dataset):
        self.fit(dataset)
        rng = np.random.default_rng(self.random_state)
        return (dataset.labels[:, None] * 3.0 + rng.normal(size=(len(dataset), 2))).astype(np.float32)


@pytest.fixture
def fakes(monkeypatch):
    FakeLearner.calls = []
    for name in ("SimCLR", "BYOL", "TSimCNE"):
        monkeypatch.setattr(training, name, type(name, (FakeLearner,), {}))
    return FakeLearner.calls


@pytest.fixture
def ds() -> ImageDataset:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), [40, 40, 10])
    images = (labels[:, None, None, None] * 70 + rng.integers(0, 60, (90, 8, 8, 3))).astype(np.uint8)
    return ImageDataset(images, labels, class_names=["a", "b", "c"], name="toy", synthetic=True)


def _fast_tsne(monkeypatch, counter: list | None = None):
    """Replace openTSNE by a seeded projection (the real one is tested in test_baselines)."""

    def fake(X, random_state=0, n_jobs=1):
        if counter is not None:
            counter.append(X.shape)
        rng = np.random.default_rng(random_state)
        return (np.asarray(X)[:, :2] * 10 + rng.normal(scale=0.1, size=(len(X), 2))).astype(np.float32)

    monkeypatch.setattr(baselines, "tsne_of", fake)


def test_registry_names():
    for name in ("tsne-pixels", "tsne-resnet18", "tsne-resnet152", "tsne-simclr", "tsne-byol",
                 "tsimcne-default", "tsimcne-rot90", "tsimcne-randrot", "tsne-simclr-rot90"):
        assert name in cmp.METHODS
    assert set(cmp.DEFAULT_METHODS) <= set(cmp.METHODS)
    for methods, _ in cmp.EXPERIMENTS.values():
        assert set(methods) <= set(cmp.METHODS)


def test_compare_real_tsne_and_table_layout(ds, fakes):
    res = cmp.compare(ds, methods=["tsne-pixels", "tsimcne-randrot", "tsne-simclr"], seeds=(0, 1),
                      progress=False, n_jobs=1)
    assert len(res.records) == 6
    assert set(res.embeddings) == {(m, s) for m in res.methods for s in (0, 1)}
    assert all(e.shape == (90, 2) and e.dtype == np.float32 for e in res.embeddings.values())
    assert [c["cls"] for c in fakes] == ["TSimCNE", "TSimCNE", "SimCLR", "SimCLR"]
    assert [c["seed"] for c in fakes] == [0, 1, 0, 1]
    table = res.table()
    assert list(table.index) == ["t-SNE pixel space", "t-SimCNE +rand. rot.", "t-SNE of SimCLR default"]
    assert list(table.columns) == [("kNN accuracy (%)", "toy (synthetic)"),
                                   ("silhouette", "toy (synthetic)")]
    # every cell is mean ± sd over the seeds of the records
    m = res.metrics()
    for meth, label in zip(res.methods, table.index, strict=True):
        knn = m.loc[m.method == meth, "knn_accuracy"].to_numpy() * 100
        sil = m.loc[m.method == meth, "silhouette"].to_numpy()
        assert table.loc[label, ("kNN accuracy (%)", "toy (synthetic)")] == \
            f"{knn.mean():.1f} ± {knn.std(ddof=1):.1f}"
        assert table.loc[label, ("silhouette", "toy (synthetic)")] == \
            f"{sil.mean():.2f} ± {sil.std(ddof=1):.2f}"
    single = res.table("knn_accuracy")
    assert list(single.columns) == ["toy (synthetic)"]
    md = res.to_markdown()
    assert "| method | toy (synthetic) |" in md and "synthetic" in md.splitlines()[0]
    assert "mean ± sd" in md


def test_figure_panels_titles_and_other(ds, fakes, monkeypatch, tmp_path):
    _fast_tsne(monkeypatch)
    res = cmp.compare(ds, methods=["tsne-simclr", "tsimcne-default"], progress=False)
    fig = res.figure(path=tmp_path / "f.png", other_threshold=20)
    axes = [a for a in fig.get_axes() if a.get_visible()]
    assert len(axes) == 2
    for ax, rec in zip(axes, res.records, strict=True):
        assert f"kNN {100 * rec['knn_accuracy']:.1f}%" in ax.get_title()
        assert f"sil {rec['silhouette']:.2f}" in ax.get_title()
    legends = [[t.get_text() for t in leg.get_texts()] for leg in fig.legends]
    assert legends and legends[0][-1] == "other"  # class 'c' (10 points) merged
    assert (tmp_path / "f.png").stat().st_size > 1000
    with pytest.raises(FileExistsError):
        res.figure(path=tmp_path / "f.png")


def test_cached_comparison_recomputes_nothing(ds, fakes, monkeypatch, tmp_path):
    tsne_calls: list = []
    _fast_tsne(monkeypatch, tsne_calls)
    methods = ["tsne-pixels", "tsne-simclr", "tsne-byol", "tsimcne-rot90"]
    first = cmp.compare(ds, methods=methods, cache_dir=tmp_path, progress=False)
    n_fit, n_tsne = len(fakes), len(tsne_calls)
    assert n_fit == 3 and n_tsne == 3
    assert not any(r["cached"] for r in first.records)
    second = cmp.compare(ds, methods=methods, cache_dir=tmp_path, progress=False)
    assert len(fakes) == n_fit and len(tsne_calls) == n_tsne  # nothing trained or embedded again
    assert all(r["cached"] for r in second.records)
    for key, emb in first.embeddings.items():
        np.testing.assert_array_equal(second.embeddings[key], emb)
    # a new seed computes only that seed
    cmp.compare(ds, methods=["tsne-simclr"], seeds=(0, 1), cache_dir=tmp_path, progress=False)
    assert len(fakes) == n_fit + 1


def test_resnet_rows_fall_back_to_labelled_random_init(ds, monkeypatch, tmp_path):
    _fast_tsne(monkeypatch)
    monkeypatch.setattr(wfiles, "imagenet_weights_file", lambda arch: tmp_path / f"{arch}-x.pth")
    seen = []

    def fake_features(dataset, arch, weights, **kw):
        seen.append((arch, weights))
        return np.random.default_rng(0).normal(size=(len(dataset), 8)).astype(np.float32)

    monkeypatch.setattr(baselines, "imagenet_features", fake_features)
    with pytest.warns(UserWarning, match="NOT the paper's ImageNet baseline"):
        res = cmp.compare(ds, methods=["tsne-resnet18", "tsne-resnet152"], progress=False)
    assert seen == [("resnet18", None), ("resnet152", None)]
    assert list(res.table().index) == ["t-SNE ResNet18 (random init, NOT ImageNet)",
                                       "t-SNE ResNet152 (random init, NOT ImageNet)"]
    assert "resnet18-x.pth" in res.to_markdown()
    # explicit None: random init without a warning; a present file: ImageNet
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cmp.compare(ds, methods=["tsne-resnet18"], resnet_weights=None, progress=False)
    # a present file is checked before its row is labelled ImageNet: an empty one is refused,
    # a torchvision resnet18 state dict is used
    (tmp_path / "resnet18-x.pth").write_bytes(b"")
    with pytest.raises(DataError, match="resnet18-x.pth could not be read"):
        cmp.compare(ds, methods=["tsne-resnet18"], progress=False)
    import torch
    import torchvision

    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "resnet18-x.pth")
    res = cmp.compare(ds, methods=["tsne-resnet18"], progress=False)
    assert seen[-1] == ("resnet18", "imagenet")
    assert res.records[0]["label"] == "t-SNE ResNet18 (ImageNet)"


def test_ablation_passes_augmentation_overrides(ds, fakes):
    res = cmp.compare(ds, experiment="ablation", progress=False)
    assert len(res.records) == 4
    augs = [c["augment"] for c in fakes]
    assert augs[0] == "randrot"
    assert augs[1]["crop"] is False and augs[1]["rotation_degrees"] == 45.0
    assert augs[2]["jitter_p"] == 0.0 and augs[2]["crop"] is True
    assert augs[3]["grayscale_p"] == 0.0
    assert "Table 4" in res.to_markdown()
    # the ablation starts from the paper's full set: the quick budget's own override (no
    # grayscale) is dropped, so "no grayscaling" differs from "all" in that one setting
    assert [c["augment"]["grayscale_p"] for c in fakes[1:]] == [0.2, 0.2, 0.0]
    assert all(c["budget"].augment_overrides == () for c in fakes)
    assert {c["budget"].optimizer for c in fakes} == {"adamw"}  # the rest of quick stays
    assert "overrides {'grayscale_p': 0.0} are not applied" in " ".join(res.notes)
    # outside the ablation the budget is passed on as it is
    fakes.clear()
    cmp.compare(ds, methods=["tsimcne-randrot"], progress=False)
    assert fakes[0]["budget"] == "quick"


# unpenalised logistic regression on separable data never "converges": expected here
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_linear_experiment_splits(ds, fakes):
    res = cmp.compare(ds, experiment="linear", progress=False)
    assert [r["method"] for r in res.records] == ["tsne-simclr", "tsne-simclr-rot90",
                                                  "tsne-simclr-randrot"]
    assert all(r["linear_accuracy"] > 0.9 for r in res.records)  # colour encodes the class
    assert any("80/20" in n for n in res.notes)
    assert list(res.table().columns.get_level_values(0)) == ["linear accuracy (%)"]
    with pytest.raises(DataError, match="no 2-D maps"):
        res.figure()
    split = np.where(np.arange(90) % 5 == 0, "test", np.where(np.arange(90) % 5 == 1, "val", "train"))
    meta = pd.DataFrame({"split": split})
    with_splits = ImageDataset(ds.images, ds.labels, ds.class_names, meta, name="toy")
    res = cmp.compare(with_splits, experiment="linear", methods=["tsne-simclr"], progress=False)
    assert any("train+val split (72 images)" in n and "test split (18 images)" in n
               for n in res.notes)
    with pytest.raises(ConfigError, match="evaluates features"):
        cmp.compare(ds, experiment="linear", methods=["tsimcne-default"], progress=False)


def test_compare_to_directory_outputs_and_overwrite(ds, fakes, monkeypatch, tmp_path):
    _fast_tsne(monkeypatch)
    out = tmp_path / "out"
    text = compare_to_directory(ds, out, methods=["tsne-simclr", "tsimcne-randrot"],
                                    seeds=(0, 1), progress=False, device="cpu", num_threads=1)
    assert "kNN accuracy" in text and str(out.resolve()) in text
    for f in ("results.csv", "results.md", "figure.png", "manifest.json", "embeddings.npz",
              "metrics/tsne-simclr.json", "metrics/tsimcne-randrot.json"):
        assert (out / f).exists(), f
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 4 and set(csv.method) == {"tsne-simclr", "tsimcne-randrot"}
    man = json.loads((out / "manifest.json").read_text())
    assert man["kind"] == "comparison" and man["dataset"]["synthetic"] is True
    assert man["config"]["seeds"] == [0, 1]
    met = json.loads((out / "metrics" / "tsne-simclr.json").read_text())
    assert met["summary"]["knn_accuracy"]["mean"] == pytest.approx(
        csv.loc[csv.method == "tsne-simclr", "knn_accuracy"].mean())
    npz = np.load(out / "embeddings.npz")
    assert sorted(npz.files) == ["tsimcne-randrot__seed0", "tsimcne-randrot__seed1",
                                 "tsne-simclr__seed0", "tsne-simclr__seed1"]
    assert (out / "cache").is_dir()  # default cache location
    n_fit = len(fakes)
    with pytest.raises(FileExistsError, match="overwrite"):
        compare_to_directory(ds, out, methods=["tsne-simclr"], progress=False, num_threads=1)
    assert len(fakes) == n_fit  # refused before any work
    compare_to_directory(ds, out, methods=["tsne-simclr", "tsimcne-randrot"], seeds=(0, 1),
                             progress=False, overwrite=True, num_threads=1)
    assert len(fakes) == n_fit  # all from the cache


def test_validation(ds):
    with pytest.raises(ConfigError, match="unknown method"):
        cmp.compare(ds, methods=["tsne-umap"], progress=False)
    with pytest.raises(ConfigError, match="unknown experiment"):
        cmp.compare(ds, experiment="table9", progress=False)
    with pytest.raises(ConfigError, match="seeds"):
        cmp.compare(ds, methods=["tsne-pixels"], seeds=(), progress=False)
    with pytest.raises(ConfigError, match="twice"):
        cmp.compare(ds, methods=["tsne-pixels", "tsne-pixels"], progress=False)
    with pytest.raises(DataError, match="ImageDataset"):
        cmp.compare(np.zeros((4, 8, 8, 3)), methods=["tsne-pixels"], progress=False)
    with pytest.raises(ConfigError, match="unknown metric"):
        cmp.ComparisonResult("x", [{"method": "m", "label": "m", "seed": 0}], {}).table("accuracy")


def test_combine_tables(ds, fakes, monkeypatch):
    _fast_tsne(monkeypatch)
    a = cmp.compare(ds, methods=["tsne-simclr"], progress=False)
    other = ImageDataset(ds.images, ds.labels, ds.class_names, name="other")
    b = cmp.compare(other, methods=["tsne-simclr"], progress=False)
    t = cmp.combine_tables([a, b])
    assert list(t.columns) == ["toy (synthetic)", "other"]
    assert list(t.index) == ["t-SNE of SimCLR default"]
