"""Issue 13: files that cannot run code, checks before training, resume that never destroys,
results kept when metrics fail, and careless inputs answered with clear errors.

Every refusal is checked to leave the files already there byte-identical (SHA-256 of
every file under the folder before and after).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from tsimcne_nb.cli import main
from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError, ModelFileError
from tsimcne_nb.estimators import TSimCNE
from tsimcne_nb.modelfile import read_file, write_file
from tsimcne_nb.pipelines.fit import FIT_OUTPUTS, fit_to_directory
from tsimcne_nb.train.checkpoints import list_checkpoints
from tsimcne_nb.validation import validate_images

FIT = dict(total_epochs=(1, 1, 1), backbone="resnet18_w4", batch_size=16, device="cpu",
           num_threads=1, progress=False, projection_hidden=32, pretrain_dim=8)


def _images(n: int = 48, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 4
    base = (labels * 60 + 20)[:, None, None, None]
    images = np.clip(base + rng.integers(-20, 21, size=(n, size, size, 3)), 0, 255).astype(np.uint8)
    return images, labels


@pytest.fixture(scope="module")
def dataset() -> ImageDataset:
    images, labels = _images()
    return ImageDataset(images, labels, name="toy")


@pytest.fixture(scope="module")
def fitted(tmp_path_factory, dataset) -> tuple[Path, TSimCNE]:
    """One tiny model, saved once: (folder with model.pt, the estimator)."""
    folder = tmp_path_factory.mktemp("fitted")
    fit_to_directory(dataset, folder, checkpoint_every=1, **FIT)
    return folder, TSimCNE.load(folder / "model.pt", device="cpu")


@pytest.fixture
def npz_path(tmp_path, dataset) -> Path:
    path = tmp_path / "toy.npz"
    np.savez(path, images=dataset.images, labels=dataset.labels)
    return path


def hashes(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (relative path -> digest)."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


class _Payload:
    """Unpickling this creates ``marker``: proof that code in a file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _write_evil(path: Path, marker: Path, raw_pickle: bool = False) -> None:
    content = {"class": "TSimCNE", "kind": "TSimCNE", "stage_index": 0, "payload": _Payload(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    if raw_pickle:
        path.write_bytes(pickle.dumps(content))
    else:
        torch.save(content, path)


def _cli_fit(npz: Path, out: Path, *extra: str) -> list[str]:
    return ["fit", "--dataset", f"npz:{npz}", "--epochs", "1,1,1", "--batch-size", "16",
            "--backbone", "resnet18_w4", "--device", "cpu", "--num-threads", "1", "--no-progress",
            "--out", str(out), *extra]


# ============================================================== 1. files that cannot run code
@pytest.mark.parametrize("raw_pickle", [False, True], ids=["torch.save", "pickle.dumps"])
def test_code_executing_model_and_checkpoint_are_refused_and_never_run(
    tmp_path, npz_path, capsys, raw_pickle
):
    """The must-show test: TSimCNE.load, `qc --model` and `fit --resume` refuse a crafted
    model file and a crafted checkpoint; the payload never runs; nothing changes on disk."""
    marker = tmp_path / "PAYLOAD_RAN"
    evil_model = tmp_path / "shared" / "model.pt"
    _write_evil(evil_model, marker, raw_pickle)
    run = tmp_path / "run"
    evil_ckpt = run / "checkpoints" / "ckpt-000099.pt"
    _write_evil(evil_ckpt, marker, raw_pickle)
    before_shared, before_run = hashes(tmp_path / "shared"), hashes(run)

    with pytest.raises(ModelFileError, match="is not a tsimcne-nb model file.*pickle") as err:
        TSimCNE.load(evil_model)
    assert "convert" in str(err.value) and "--trust" in str(err.value)
    assert not marker.exists()

    assert main(["qc", "--dataset", f"npz:{npz_path}", "--model", str(evil_model), "--device", "cpu",
                 "--no-progress", "--out", str(tmp_path / "qc")]) == 1
    assert "not a tsimcne-nb model file" in capsys.readouterr().err
    assert not marker.exists()

    assert main(_cli_fit(npz_path, run, "--resume", "--checkpoint-every", "1")) == 1
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "can be read" in err and "ckpt-000099.pt" in err
    assert not marker.exists()
    assert not (run / "model.pt").exists()
    assert hashes(tmp_path / "shared") == before_shared and hashes(run) == before_run

    # the payload is live: the unsafe loader this package no longer uses would have run it
    if raw_pickle:
        pickle.loads(evil_model.read_bytes())
    else:
        torch.load(evil_model, weights_only=False)
    assert marker.exists()


def test_real_command_line_refuses_a_crafted_model(tmp_path, npz_path):
    """The same through a separate `python -m tsimcne_nb qc --model` process."""
    import subprocess
    import sys

    import tsimcne_nb

    marker = tmp_path / "PAYLOAD_RAN"
    evil = tmp_path / "model.pt"
    _write_evil(evil, marker)
    before = evil.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(Path(tsimcne_nb.__file__).resolve().parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "tsimcne_nb", "qc", "--dataset", f"npz:{npz_path}", "--model", str(evil),
         "--device", "cpu", "--no-progress", "--out", str(tmp_path / "qc")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert "not a tsimcne-nb model file" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists() and evil.read_bytes() == before


def test_crafted_newest_checkpoint_falls_back_to_a_readable_one(tmp_path, dataset, fitted):
    folder, reference = fitted
    run = tmp_path / "run"

    def stop(ctx):  # a run stopped after its first checkpoint
        return ctx.global_epoch == 1

    fit_to_directory(dataset, run, checkpoint_every=1, callbacks=[stop], **FIT)
    marker = tmp_path / "PAYLOAD_RAN"
    _write_evil(run / "checkpoints" / "ckpt-000002.pt", marker)
    with pytest.warns(UserWarning, match=r"ckpt-000002.pt.*resuming from ckpt-000001.pt"):
        fit_to_directory(dataset, run, checkpoint_every=1, resume=True, **FIT)
    assert not marker.exists()
    resumed = TSimCNE.load(run / "model.pt", device="cpu")
    assert np.array_equal(resumed.embedding_, reference.embedding_)  # as the uninterrupted run


def _describe_cases(tmp_path: Path, model_path: Path) -> dict[str, tuple[Path, str]]:
    data = model_path.read_bytes()
    cases = {
        "tensor": (torch.save, "a PyTorch pickle written by torch.save"),
        "npz": (None, "a NumPy .npz archive"),
        "text": (None, "a text file"),
        "random": (None, "binary data of unknown kind"),
        "empty": (None, "an empty file"),
        "truncated": (None, "truncated"),
        "header-cut": (None, "truncated or damaged safetensors"),
        "flipped": (None, "damaged: its checksum does not match"),
        "checkpoint": (None, "is a tsimcne-nb training checkpoint ("),
        "png": (None, "a PNG image"),
    }
    out = {}
    for name, (_, expect) in cases.items():
        p = tmp_path / f"{name}.pt"
        if name == "tensor":
            torch.save(torch.zeros(3), p)
        elif name == "npz":
            with open(p, "wb") as fh:
                np.savez(fh, images=np.zeros((2, 4, 4, 3), np.uint8))
        elif name == "text":
            p.write_text("this is not a model\n")
        elif name == "random":
            p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
        elif name == "empty":
            p.write_bytes(b"")
        elif name == "truncated":
            p.write_bytes(data[: len(data) // 2])
        elif name == "header-cut":
            p.write_bytes(data[:40])
        elif name == "flipped":
            flipped = bytearray(data)
            flipped[-100] ^= 0x01  # one bit in the weights
            p.write_bytes(bytes(flipped))
        elif name == "checkpoint":
            write_file(p, "checkpoint", {"x": torch.zeros(2)})
        elif name == "png":
            from PIL import Image

            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(p, format="PNG")
        out[name] = (p, expect)
    return out


def test_loading_something_that_is_not_a_model_says_what_it_is(tmp_path, fitted):
    folder, _ = fitted
    for name, (path, expect) in _describe_cases(tmp_path, folder / "model.pt").items():
        before = path.read_bytes()
        with pytest.raises(ModelFileError) as err:
            TSimCNE.load(path, device="cpu")
        msg = str(err.value)
        assert expect in msg, (name, msg)
        assert str(path) in msg
        assert path.read_bytes() == before, name
    with pytest.raises(FileNotFoundError):
        TSimCNE.load(tmp_path / "missing.pt")
    with pytest.raises(ModelFileError, match="is a folder"):
        TSimCNE.load(tmp_path)


def test_model_file_is_data_only_with_a_checksum(fitted):
    folder, model = fitted
    head = (folder / "model.pt").read_bytes()[:8]
    n = int.from_bytes(head, "little")
    header = json.loads((folder / "model.pt").read_bytes()[8 : 8 + n])
    meta = header["__metadata__"]
    assert json.loads(meta["tsimcne_nb"])["kind"] == "model" and len(meta["tsimcne_nb_sha256"]) == 64
    from safetensors.torch import load_file

    tensors = load_file(folder / "model.pt")  # any safetensors reader opens it
    assert any(t.shape == model.embedding_.shape for t in tensors.values())
    ck = read_file(list_checkpoints(folder / "checkpoints")[-1], "checkpoint")
    assert ck["kind"] == "TSimCNE" and isinstance(ck["rng"]["numpy"][1], np.ndarray)
    assert ck["rng"]["numpy"][1].dtype == np.uint32


def _legacy_model_file(model: TSimCNE, path: Path) -> None:
    """A model file as tsimcne-nb 0.1 wrote it: one torch.save pickle."""
    torch.save({
        "format": 1, "class": "TSimCNE", "params": model._config_for_manifest(), "arch": model._arch(),
        "state_dict": {k: v.detach().cpu() for k, v in model.model_.state_dict().items()},
        "augmentation": model.augmentation_.to_config(), "image_size": model.image_size_,
        "manifest": model.manifest_, "history": model.history_.to_dict(orient="list"),
        "timings": model.timings_, "embedding": torch.from_numpy(model.embedding_),
        "fitted": {"random_state_": model.random_state_, "batch_size_": model.batch_size_,
                   "learning_rate_": model.learning_rate_, "total_epochs_": list(model.total_epochs_),
                   "backbone_": model.backbone_, "stopped_early_": model.stopped_early_,
                   "n_images_": model.n_images_},
    }, path)


def test_old_pickle_files_convert_only_when_trusted(tmp_path, fitted, dataset, capsys):
    folder, model = fitted
    old = tmp_path / "old.pt"
    _legacy_model_file(model, old)
    before = hashes(tmp_path)
    with pytest.raises(ModelFileError, match="convert"):
        TSimCNE.load(old)  # never automatic
    assert main(["convert", str(old), str(tmp_path / "new.pt")]) == 1
    assert "--trust" in capsys.readouterr().err
    assert hashes(tmp_path) == before and not (tmp_path / "new.pt").exists()
    # explicit, trusted paths
    direct = TSimCNE.load(old, allow_pickle=True, device="cpu")
    assert np.array_equal(direct.transform(dataset), model.transform(dataset))
    assert main(["convert", str(old), str(tmp_path / "new.pt"), "--trust"]) == 0
    assert "converted the TSimCNE model" in capsys.readouterr().out
    new = TSimCNE.load(tmp_path / "new.pt", device="cpu")
    assert np.array_equal(new.embedding_, model.embedding_)
    assert np.array_equal(new.transform(dataset), model.transform(dataset))
    # refuses to overwrite, and refuses a pickle that is no tsimcne-nb file
    assert main(["convert", str(old), str(tmp_path / "new.pt"), "--trust"]) == 1
    torch.save(torch.zeros(2), tmp_path / "tensor.pt")
    assert main(["convert", str(tmp_path / "tensor.pt"), str(tmp_path / "t2.pt"), "--trust"]) == 1
    assert "neither a tsimcne-nb model nor a checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "t2.pt").exists()


def test_old_checkpoint_converts(tmp_path, fitted):
    folder, _ = fitted
    state = read_file(list_checkpoints(folder / "checkpoints")[-1], "checkpoint")
    torch.save(state, tmp_path / "ckpt-000003.pt")  # as 0.1 wrote checkpoints
    assert main(["convert", str(tmp_path / "ckpt-000003.pt"), str(tmp_path / "c.pt"), "--trust"]) == 0
    back = read_file(tmp_path / "c.pt", "checkpoint")
    assert back["global_epoch"] == state["global_epoch"]
    for k in state["model"]:
        assert torch.equal(back["model"][k], state["model"][k])


# ============================================================== 2. preflight
def _no_training(monkeypatch):
    """Make any training attempt fail loudly: a preflight refusal must come first."""

    def boom(*a, **k):
        raise AssertionError("training started before the output folder was checked")

    monkeypatch.setattr(TSimCNE, "_fit", boom)


@pytest.mark.parametrize("command", ["fit", "compare", "qc"])
def test_preflight_refuses_before_training(tmp_path, npz_path, capsys, monkeypatch, command):
    _no_training(monkeypatch)
    import tsimcne_nb.pipelines.compare as compare_mod

    monkeypatch.setattr(compare_mod, "compare", lambda *a, **k: (_ for _ in ()).throw(
        AssertionError("compare started before the output folder was checked")))
    base = [command, "--dataset", f"npz:{npz_path}", "--device", "cpu", "--num-threads", "1",
            "--no-progress"]
    if command == "compare":
        base += ["--methods", "tsne-pixels"]
    # --out naming an existing file
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    assert main([*base, "--out", str(a_file)]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    assert a_file.read_text() == "keep me"
    # a path below a file cannot be created
    assert main([*base, "--out", str(a_file / "sub")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err
    # a folder holding an old result file: every existing file is named, all are kept
    old = tmp_path / "old"
    old.mkdir()
    name = {"fit": "metrics.json", "compare": "results.csv", "qc": "report.csv"}[command]
    (old / name).write_text('{"old": true}')
    (old / "manifest.json").write_text('{"old": true}')
    before = hashes(old)
    assert main([*base, "--out", str(old)]) == 1
    err = capsys.readouterr().err
    assert name in err and "manifest.json" in err and "--overwrite" in err
    assert hashes(old) == before
    # a place that cannot be written (even by root: /proc refuses new files)
    if Path("/proc/self").is_dir():
        assert main([*base, "--out", "/proc/tsimcne-nb-out"]) == 1
        assert "cannot write to the output folder" in capsys.readouterr().err
        assert not Path("/proc/tsimcne-nb-out").exists()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_preflight_refuses_a_read_only_folder(tmp_path, dataset, monkeypatch):
    _no_training(monkeypatch)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(ConfigError, match="cannot write to the output folder"):
            fit_to_directory(dataset, ro / "run", **FIT)
        assert not (ro / "run").exists()
    finally:
        ro.chmod(0o755)


def test_preflight_helper_creates_nothing_and_names_all(tmp_path):
    from tsimcne_nb._io import OutputExistsError, preflight_outputs

    out = tmp_path / "a" / "b"
    assert preflight_outputs(out, ["x.json", "metrics/y.json"]) == out
    assert not (tmp_path / "a").exists()  # checked, not created
    out.mkdir(parents=True)
    (out / "x.json").write_text("1")
    (out / "metrics").mkdir()
    (out / "metrics" / "y.json").write_text("2")
    with pytest.raises(OutputExistsError, match=r"x\.json, metrics/y\.json") as err:
        preflight_outputs(out, ["x.json", "metrics/y.json", "z.png"])
    assert isinstance(err.value, FileExistsError)
    preflight_outputs(out, ["x.json", "metrics/y.json"], overwrite=True)
    with pytest.raises(ConfigError, match="is a folder where a file will be written"):
        preflight_outputs(out, ["metrics"], overwrite=True)
    assert list(out.rglob(".tsimcne-nb-write-test*")) == []


# ============================================================== 3. resume that never destroys
def test_resume_with_results_but_no_checkpoints_refuses(tmp_path, dataset, monkeypatch):
    fit_to_directory(dataset, tmp_path, **FIT)  # no checkpoints
    before = hashes(tmp_path)
    _no_training(monkeypatch)
    with pytest.raises(FileExistsError, match="no checkpoints to resume from") as err:
        fit_to_directory(dataset, tmp_path, resume=True, **FIT)
    assert "Nothing was changed" in str(err.value)
    assert hashes(tmp_path) == before


def test_resume_with_another_seed_or_setting_is_refused(tmp_path, dataset, capsys, npz_path):
    run = tmp_path / "run"
    assert main(_cli_fit(npz_path, run, "--checkpoint-every", "1", "--seed", "3")) == 0
    before = hashes(run)
    assert main(_cli_fit(npz_path, run, "--resume", "--seed", "4")) == 1
    err = capsys.readouterr().err
    assert "random_state=3" in err and "--seed 3" in err
    assert main(_cli_fit(npz_path, run, "--resume", "--seed", "3", "--batch-size", "8")) == 1
    assert "batch_size: checkpoint 16, now 8" in capsys.readouterr().err
    assert hashes(run) == before
    ckdir = tmp_path / "ck"
    TSimCNE(random_state=0, checkpoint_dir=ckdir, checkpoint_every=1, budget="quick",
            **{k: v for k, v in FIT.items()}).fit(dataset)
    with pytest.raises(ConfigError, match="warmup: checkpoint"):
        TSimCNE(random_state=0, checkpoint_dir=ckdir, resume=True, budget="quick", warmup_epochs=0,
                **FIT).fit(dataset)
    # the same seed resumes (here: a finished run, re-created from its last checkpoint)
    assert main(_cli_fit(npz_path, run, "--resume", "--seed", "3", "--checkpoint-every", "1")) == 0


def test_truncated_newest_checkpoint_falls_back_and_says_so(tmp_path, dataset, fitted):
    _, reference = fitted
    run = tmp_path / "run"

    def stop(ctx):
        return ctx.global_epoch == 2

    fit_to_directory(dataset, run, checkpoint_every=1, callbacks=[stop], **FIT)  # stopped early
    for name in FIT_OUTPUTS:
        (run / name).unlink()  # as if it had been killed before writing results
    newest = list_checkpoints(run / "checkpoints")[-1]
    assert newest.name == "ckpt-000002.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    with pytest.warns(UserWarning, match=r"ckpt-000002.pt.*truncated.*resuming from ckpt-000001.pt"):
        fit_to_directory(dataset, run, checkpoint_every=1, resume=True, **FIT)
    resumed = TSimCNE.load(run / "model.pt", device="cpu")
    assert np.array_equal(resumed.embedding_, reference.embedding_)  # bitwise as uninterrupted


def test_resume_when_no_checkpoint_is_readable_refuses(tmp_path, dataset, monkeypatch):
    ck = tmp_path / "checkpoints"
    ck.mkdir()
    (ck / "ckpt-000001.pt").write_bytes(b"\x00" * 64)
    (ck / "ckpt-000002.pt").write_text("garbage")
    before = hashes(tmp_path)
    with pytest.raises(ModelFileError, match="no checkpoint .* can be read.*Nothing was trained"):
        fit_to_directory(dataset, tmp_path, resume=True, **FIT)
    assert hashes(tmp_path) == before


# ============================================================== 4. keep what was trained
@pytest.mark.parametrize("case", ["few", "one-class", "no-labels"])
def test_results_are_written_when_metrics_cannot_be_computed(tmp_path, case):
    images, labels = _images(n=16)
    if case == "one-class":
        labels = np.zeros(16, np.int64)
    ds = ImageDataset(images, None if case == "no-labels" else labels, name="tiny")
    summary = fit_to_directory(ds, tmp_path, **FIT)
    for name in FIT_OUTPUTS:
        assert (tmp_path / name).is_file(), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["knn_accuracy"] is None and metrics["silhouette"] is None
    reason = {"few": "could not be computed on these 16 images", "one-class": "one class",
              "no-labels": "no labels"}[case]
    assert reason in metrics["metrics_missing"], metrics
    assert "no metrics" in summary
    assert TSimCNE.load(tmp_path / "model.pt").embedding_.shape == (16, 2)


# ============================================================== 5. inputs
def test_16bit_folder_images_are_checked_like_a_16bit_npz(tmp_path):
    from PIL import Image

    from tsimcne_nb.data.loaders.custom import load_folder, load_npz

    deep = (np.arange(16 * 16).reshape(16, 16) * 200).astype(np.uint16)  # up to 51000
    for i in range(2):
        Image.fromarray(deep).save(tmp_path / f"{i}.png")
        Image.fromarray(deep).save(tmp_path / f"{i}.tif")
    np.savez(tmp_path / "deep.npz", images=np.stack([deep, deep]))
    with pytest.raises(DataError) as npz_err:
        load_npz(tmp_path / "deep.npz")
    with pytest.raises(DataError) as folder_err:
        load_folder(tmp_path)
    hint = "Rescale (e.g. 16-bit microscopy: images // 257) first."
    assert hint in str(npz_err.value) and hint in str(folder_err.value)
    assert "51000" in str(folder_err.value) and "cannot read" not in str(folder_err.value)
    # 16-bit files whose values fit in 8 bits load unchanged (not clipped, not rescaled)
    low = tmp_path / "low"
    low.mkdir()
    small = (np.arange(16 * 16).reshape(16, 16) % 200).astype(np.uint16)
    Image.fromarray(small).save(low / "a.png")
    Image.fromarray(small).save(low / "b.tif")
    ds = load_folder(low)
    assert ds.images.shape == (2, 16, 16, 3)
    np.testing.assert_array_equal(ds.images[0, ..., 0], small.astype(np.uint8))


def test_labels_far_apart_do_not_allocate_by_the_largest_value():
    import tracemalloc

    images = np.zeros((4, 8, 8, 3), np.uint8)
    tracemalloc.start()
    with pytest.warns(UserWarning, match="far apart"):
        ds = ImageDataset(images, np.array([0, 10**15, 7, 10**15]))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 10 * 2**20
    assert ds.class_names == ["0", "7", str(10**15)]
    assert ds.labels.tolist() == [0, 2, 1, 2] and ds.n_classes == 3
    # close labels keep their values and one name per value, as before
    assert ImageDataset(images, np.array([0, 5, 5, 2])).class_names == [str(i) for i in range(6)]
    with pytest.raises(DataError, match="no class name"):
        ImageDataset(images, np.array([0, 10**15, 1, 1]), class_names=["a", "b"])


def test_lists_of_pil_images_and_arrays_are_accepted_or_refused_clearly():
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(3)]
    pil = [Image.fromarray(a) for a in arrays]
    expect = np.stack(arrays)
    np.testing.assert_array_equal(ImageDataset(pil).images, expect)
    np.testing.assert_array_equal(ImageDataset(arrays).images, expect)
    np.testing.assert_array_equal(validate_images(tuple(torch.from_numpy(a) for a in arrays)), expect)
    gray = ImageDataset([Image.fromarray(a[..., 0]) for a in arrays]).images
    np.testing.assert_array_equal(gray[..., 2], expect[..., 0])
    palette = ImageDataset([Image.fromarray(a).convert("P") for a in arrays]).images
    assert palette.shape == (3, 8, 8, 3)
    with pytest.raises(DataError, match="different sizes .*8x8, 9x9"):
        ImageDataset([arrays[0], np.zeros((9, 9, 3), np.uint8)])
    with pytest.raises(DataError, match="element 1 of the list images is a str"):
        ImageDataset([arrays[0], "cell.png"])
    with pytest.raises(DataError, match="empty list"):
        ImageDataset([])
    with pytest.raises(DataError, match=r"one PIL image; pass a list of images \(\[image\]\)"):
        ImageDataset(pil[0])
    with pytest.raises(DataError, match="must be a numpy array .* got a str"):
        ImageDataset("cells/")


def test_a_single_image_without_batch_axis_is_named():
    with pytest.raises(DataError, match=r"one \(H, W, C\) image without a batch axis.*images\[None\]"):
        ImageDataset(np.zeros((28, 28, 3), np.uint8))
    assert ImageDataset(np.zeros((28, 28, 3), np.uint8)[None]).images.shape == (1, 28, 28, 3)
    with pytest.raises(DataError, match=r"images\[None\]"):
        ImageDataset(np.zeros((28, 28), np.uint8)[0])  # one row: not images at all


@pytest.mark.parametrize("argv, message", [
    (["fit", "--num-threads", "abc", "--out", "x"], "argument --num-threads: expected 'auto' or an integer"),
    (["fit", "--num-threads", "0", "--out", "x"], "argument --num-threads: expected 'auto' or an integer"),
    (["compare", "--seeds", "a,b", "--out", "x"], "argument --seeds: expected comma-separated integers"),
    (["compare", "--seeds", "-1", "--out", "x"], "argument --seeds"),
])
def test_bad_numbers_on_the_command_line_are_argparse_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage:" in err and "Traceback" not in err


def test_bad_thread_environment_variable_is_an_argparse_error(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("TSIMCNE_NUM_THREADS", "abc")
    with pytest.raises(SystemExit) as exc:
        main(["fit", "--out", str(tmp_path / "x")])
    assert exc.value.code == 2
    assert "TSIMCNE_NUM_THREADS: expected 'auto' or an integer >= 1; got 'abc'" in capsys.readouterr().err
    from tsimcne_nb._threads import choose_num_threads

    with pytest.raises(ConfigError, match="TSIMCNE_NUM_THREADS must be an integer >= 1 or 'auto'; got 'abc'"):
        choose_num_threads("auto")
    with pytest.raises(ConfigError, match="num_threads must be an integer >= 1"):
        choose_num_threads("abc")
    monkeypatch.setenv("TSIMCNE_NUM_THREADS", "2")
    assert choose_num_threads("auto") == 2


def test_fp16_on_cpu_warns_that_it_is_slow():
    from tsimcne_nb.train.device import autocast_dtype

    with pytest.warns(UserWarning, match="fp16.*CPU.*slower"):
        assert autocast_dtype(torch.device("cpu"), "fp16") == torch.float16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert autocast_dtype(torch.device("cpu"), "bf16") == torch.bfloat16
