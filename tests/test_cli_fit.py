"""``tsimcne-nb fit`` and :func:`fit_to_directory`: the five outputs, overwrite and resume rules."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tsimcne_nb.cli import main
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.estimators import TSimCNE
from tsimcne_nb.pipelines.fit import fit_to_directory
from tsimcne_nb.train.checkpoints import list_checkpoints

OUTPUTS = ("model.pt", "embedding.parquet", "metrics.json", "manifest.json", "map.png")


def _images(n: int = 240, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    base = (labels * 60 + 20)[:, None, None, None]
    images = np.clip(base + rng.integers(-20, 21, size=(n, size, size, 3)), 0, 255).astype(np.uint8)
    return images, labels


@pytest.fixture
def npz_path(tmp_path):
    images, labels = _images()
    path = tmp_path / "cells.npz"
    np.savez(path, images=images, labels=labels, class_names=np.array(["a", "b", "c", "d"]))
    return path


def _fit_args(npz_path, out, *extra):
    return [
        "fit", "--dataset", f"npz:{npz_path}", "--epochs", "1,1,1", "--batch-size", "32",
        "--subset", "200", "--backbone", "resnet18_w4", "--device", "cpu", "--num-threads", "1",
        "--no-progress", "--out", str(out), *extra,
    ]


def test_cli_fit_writes_all_outputs_and_refuses_to_overwrite(npz_path, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(_fit_args(npz_path, out)) == 0
    assert "kNN accuracy" in capsys.readouterr().out
    for name in OUTPUTS:
        assert (out / name).is_file(), name
    table = pd.read_parquet(out / "embedding.parquet")
    assert list(table.columns) == ["x", "y", "label", "label_name", "index", "split"]
    assert len(table) == 200 and np.isfinite(table[["x", "y"]].to_numpy()).all()
    assert set(table["label_name"]) == {"a", "b", "c", "d"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["knn_accuracy"] <= 1.0 and -1.0 <= metrics["silhouette"] <= 1.0
    assert metrics["train_time_s"] > 0 and metrics["n_images"] == 200
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["resolved"]["total_epochs"] == [1, 1, 1] and manifest["seed"] == 0
    model = TSimCNE.load(out / "model.pt", device="cpu")
    np.testing.assert_allclose(model.embedding_[:, 0], table["x"].to_numpy())
    before = (out / "model.pt").stat().st_mtime_ns

    # a second run without --overwrite fails cleanly and leaves the results alone
    assert main(_fit_args(npz_path, out)) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "--overwrite" in err
    assert (out / "model.pt").stat().st_mtime_ns == before


def test_fit_to_directory_with_checkpoints_and_resume(tmp_path):
    images, labels = _images(n=96)
    ds = ImageDataset(images, labels, name="toy")
    kwargs = dict(total_epochs=(1, 1, 1), backbone="resnet18_w4", batch_size=32, device="cpu",
                  num_threads=1, progress=False)
    summary = fit_to_directory(ds, tmp_path, checkpoint_every=1, **kwargs)
    assert "toy" in summary and "synthetic" not in summary
    assert len(list_checkpoints(tmp_path / "checkpoints")) == 2
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fit_to_directory(ds, tmp_path, **kwargs)
    first = pd.read_parquet(tmp_path / "embedding.parquet")
    # resuming a finished run re-creates the same results from its last checkpoint
    fit_to_directory(ds, tmp_path, checkpoint_every=1, resume=True, **kwargs)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "embedding.parquet"), first)


def test_fit_to_directory_synthetic_and_unlabelled(tmp_path):
    images, _ = _images(n=64)
    synthetic = ImageDataset(images, np.arange(64) % 2, name="fake", synthetic=True)
    kwargs = dict(total_epochs=(0, 1, 0), backbone="resnet18_w4", batch_size=32, device="cpu",
                  progress=False)
    assert "synthetic" in fit_to_directory(synthetic, tmp_path / "s", **kwargs)
    assert json.loads((tmp_path / "s" / "metrics.json").read_text())["synthetic"] is True
    before = (tmp_path / "s" / "model.pt").stat().st_mtime_ns
    fit_to_directory(synthetic, tmp_path / "s", overwrite=True, **{**kwargs, "random_state": 1})
    assert (tmp_path / "s" / "model.pt").stat().st_mtime_ns != before
    summary = fit_to_directory(ImageDataset(images), tmp_path / "u", **kwargs)
    assert "no metrics" in summary
    metrics = json.loads((tmp_path / "u" / "metrics.json").read_text())
    assert metrics["knn_accuracy"] is None
    assert (pd.read_parquet(tmp_path / "u" / "embedding.parquet")["label"] == -1).all()


def test_cli_fit_schedule_options_reach_the_estimator(npz_path, tmp_path):
    out = tmp_path / "adam"
    assert main(_fit_args(npz_path, out, "--optimizer", "adamw", "--lr", "0.001",
                          "--stage3-lr-factor", "0.5", "--warmup-epochs", "0")) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    resolved = manifest["resolved"]
    assert resolved["optimizer"] == "adamw" and resolved["learning_rate"] == pytest.approx(1e-3)
    assert resolved["stage3_lr_factor"] == pytest.approx(0.5) and resolved["warmup_epochs"] == 0
    with pytest.raises(SystemExit):  # argparse refuses an unknown optimiser before any work
        main(_fit_args(npz_path, tmp_path / "bad", "--optimizer", "lamb"))
    assert not (tmp_path / "bad").exists()
