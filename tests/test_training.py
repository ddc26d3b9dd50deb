"""Tests of the training core: schedule, stages, determinism, resume, save/load, errors.

Everything runs on the CPU with tiny images (16 px), a 4-wide ResNet18 and a few epochs.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError as SkNotFittedError

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError, DataError, TSimCNEError
from tsimcne_nb.estimators import BYOL, SimCLR, TSimCNE
from tsimcne_nb.estimators.base import NotFittedError, TrainingOutOfMemoryError
from tsimcne_nb.eval.callbacks import KNNCallback
from tsimcne_nb.train.budgets import PAPER, QUICK, Budget, auto_learning_rate, lr_at, resolve_budget
from tsimcne_nb.train.callbacks import (
    CallbackContext,
    EarlyStopping,
    SnapshotCallback,
    StopTraining,
)
from tsimcne_nb.train.checkpoints import list_checkpoints
from tsimcne_nb.train.loop import _Trainer

N, SIZE, BATCH = 64, 16, 16


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """64 random 16x16 images in 4 classes, each class with its own mean brightness."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), N // 4)
    base = (labels * 60 + 20)[:, None, None, None]
    images = np.clip(base + rng.integers(-20, 21, size=(N, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    return images, labels


def tiny(**kw) -> TSimCNE:
    params = dict(
        budget="quick", total_epochs=(2, 1, 1), batch_size=BATCH, backbone="resnet18_w4",
        projection_hidden=32, pretrain_dim=8, random_state=0, progress=False, device="cpu",
    )
    params.update(kw)
    return TSimCNE(**params)


def params_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


# ----------------------------------------------------------------------------- schedule
def test_lr_at_follows_warmup_then_cosine():
    base, total, warm = 0.1, 20, 5
    lrs = [lr_at(s, total, warm, base) for s in range(total)]
    for s in range(warm):  # linear from 0: the s-th step uses base * (s + 1) / warm
        assert lrs[s] == pytest.approx(base * (s + 1) / warm)
    assert lrs[warm - 1] == pytest.approx(base)
    for s in range(warm, total):
        expected = base * 0.5 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
        assert lrs[s] == pytest.approx(expected)
    assert np.all(np.diff(lrs[warm:]) <= 0)  # decays monotonically
    assert 0 < lrs[-1] < 0.02 * base  # nearly 0 at the end of the stage
    # no warm-up: the first step is at the peak
    assert lr_at(0, 10, 0, base) == pytest.approx(base)
    # warm-up longer than the stage is capped
    assert lr_at(2, 3, 10, base) == pytest.approx(base)


def test_lr_at_rejects_empty_stage():
    with pytest.raises(ConfigError):
        lr_at(0, 0, 0, 0.1)


def test_budgets_and_auto_lr():
    assert PAPER.total_epochs == (1000, 50, 450) and PAPER.batch_size == 1024
    assert QUICK.total_epochs == (70, 4, 30) and QUICK.batch_size == 256
    assert PAPER.stage3_lr_factor == pytest.approx(1e-3) and PAPER.warmup_epochs == 10
    assert PAPER.backbone_for(28) == "resnet18_small" and PAPER.backbone_for(96) == "resnet18"
    assert auto_learning_rate(1024) == pytest.approx(0.12)
    assert resolve_budget("quick") is QUICK
    custom = Budget("mine", (1, 1, 1), 8, 0.5, 0, "resnet18_w4", "resnet18_w4")
    assert resolve_budget(custom) is custom
    with pytest.raises(ConfigError, match="unknown budget"):
        resolve_budget("fast")


def test_adamw_optimizer_its_auto_rate_and_manifest(data, monkeypatch):
    images, _ = data
    assert auto_learning_rate(256, "adamw") == pytest.approx(2e-3)
    assert auto_learning_rate(1024, "adamw") == pytest.approx(4e-3)  # sqrt scaling
    assert auto_learning_rate(1024, "sgd") == pytest.approx(0.12)  # linear (the paper's)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        auto_learning_rate(256, "lamb")
    made: list[str] = []
    for cls in (torch.optim.AdamW, torch.optim.SGD):
        def record(self, *a, _orig=cls.__init__, _name=cls.__name__, **k):
            made.append(_name)
            _orig(self, *a, **k)
        monkeypatch.setattr(cls, "__init__", record)
    m = tiny(optimizer="adamw").fit(images)
    assert made == ["AdamW"] * 3  # one per stage, no SGD
    assert m.learning_rate_ == pytest.approx(2e-3 * (BATCH / 256) ** 0.5)
    assert m.manifest_["resolved"]["optimizer"] == "adamw"
    made.clear()
    s = tiny(optimizer="sgd").fit(images)
    assert made == ["SGD"] * 3 and s.manifest_["resolved"]["optimizer"] == "sgd"
    assert not np.allclose(m.embedding_, s.embedding_)
    # None follows the budget
    custom = Budget("adam-budget", (1, 1, 1), BATCH, 0.3, 0, "resnet18_w4", "resnet18_w4",
                    optimizer="adamw")
    made.clear()
    tiny(budget=custom, total_epochs=None).fit(images)
    assert made == ["AdamW"] * 3


def test_budget_augment_overrides_apply_to_preset_names_only(data, tmp_path):
    images, _ = data
    from tsimcne_nb.nn.augmentations import make_augmentation

    assert dict(QUICK.augment_overrides) == {"grayscale_p": 0.0} and PAPER.augment_overrides == ()
    m = tiny(augment="randrot").fit(images)
    assert m.manifest_["resolved"]["augmentation"]["grayscale_p"] == 0.0
    assert m.manifest_["resolved"]["augmentation"]["rotation_degrees"] == 45.0  # the preset stays
    p = tiny(budget="paper", total_epochs=(1, 1, 1), augment="randrot").fit(images)
    assert p.manifest_["resolved"]["augmentation"]["grayscale_p"] == 0.2  # the paper's
    given = make_augmentation("randrot", SIZE, grayscale_p=0.5)
    g = tiny(augment=given).fit(images)
    assert g.manifest_["resolved"]["augmentation"]["grayscale_p"] == 0.5  # used as given
    # a mapping is stored as sorted pairs, and a custom budget round-trips through a model file
    custom = Budget("mine", (1, 1, 1), BATCH, 0.5, 0, "resnet18_w4", "resnet18_w4",
                    augment_overrides={"hue": 0.05, "grayscale_p": 0.0})
    assert custom.augment_overrides == (("grayscale_p", 0.0), ("hue", 0.05))
    # a caller's own settings go on top of the budget's (an ablation row, a harness modifier)
    assert custom.augment_settings({"hue": 0.1, "crop": False}) == {
        "grayscale_p": 0.0, "hue": 0.1, "crop": False}
    assert custom.augment_settings() == {"grayscale_p": 0.0, "hue": 0.05}
    # repeated keys: the last wins (not the sort order); JSON lists come back as tuples (hashable)
    again = Budget("mine", (1, 1, 1), BATCH, 0.5, 0, "resnet18_w4", "resnet18_w4",
                   augment_overrides=[("hue", 0.1), ("crop_scale", [0.3, 1.0]), ("hue", 0.05)])
    assert again.augment_overrides == (("crop_scale", (0.3, 1.0)), ("hue", 0.05))
    hash(again)
    with pytest.raises(ConfigError, match="cannot set 'fill'"):
        Budget("bad", (1, 1, 1), BATCH, 0.5, 0, "resnet18_w4", "resnet18_w4",
               augment_overrides={"fill": (0, 0, 0)})
    c = tiny(budget=custom, total_epochs=None).fit(images)
    assert c.manifest_["resolved"]["augmentation"]["hue"] == 0.05
    c.save(tmp_path / "m.pt")
    assert TSimCNE.load(tmp_path / "m.pt").budget == custom


def test_history_lr_matches_the_schedule(data):
    images, _ = data
    m = tiny(total_epochs=(3, 1, 2), warmup_epochs=1, stage3_lr_factor=0.25, optimizer="sgd").fit(images)
    spe = N // BATCH
    base = 0.03 * BATCH / 256
    h = m.history_
    assert list(h["stage"]) == [1, 1, 1, 2, 3, 3]

    def expected(step, epochs, warm, peak):
        total, w = epochs * spe, warm * spe
        if step < w:
            return peak * (step + 1) / w
        return peak * 0.5 * (1 + math.cos(math.pi * (step - w) / (total - w)))

    # the history's lr is the one of each epoch's last step
    want = [expected((e + 1) * spe - 1, 3, 1, base) for e in range(3)]
    want += [expected(spe - 1, 1, 0, base)]  # stage 2: no warm-up, same lr
    want += [expected((e + 1) * spe - 1, 2, 1, base * 0.25) for e in range(2)]
    np.testing.assert_allclose(h["lr"].to_numpy(), want, rtol=1e-12)
    assert m.learning_rate_ == pytest.approx(base)
    assert set(h.columns) >= {"stage", "epoch", "loss", "lr", "images_per_s", "time"}
    assert np.isfinite(h["loss"]).all() and (h["images_per_s"] > 0).all()


# ----------------------------------------------------------------------------- stages
def test_stage2_trains_only_the_new_output_layer(data):
    images, _ = data
    snaps: dict[tuple[int, int], dict] = {}

    def grab(ctx: CallbackContext):
        snaps[(ctx.stage, ctx.epoch)] = {
            "params": params_of(ctx.model),
            "bn": ctx.model.backbone.state_dict()["bn1.running_mean"].clone()
            if "bn1.running_mean" in ctx.model.backbone.state_dict()
            else next(b.clone() for n, b in ctx.model.named_buffers() if n.endswith("running_mean")),
        }

    m = tiny(total_epochs=(1, 2, 1), callbacks=[grab]).fit(images)
    end1, s2e1, s2e2, end3 = snaps[(1, 1)], snaps[(2, 1)], snaps[(2, 2)], snaps[(3, 1)]
    out_keys = {"head.layers.2.weight", "head.layers.2.bias"}
    assert end1["params"]["head.layers.2.weight"].shape == (8, 32)  # 128-d stand-in (pretrain_dim)
    assert s2e1["params"]["head.layers.2.weight"].shape == (2, 32)
    for key, value in end1["params"].items():
        if key not in out_keys:
            torch.testing.assert_close(s2e2["params"][key], value, rtol=0, atol=0)
    changed = [k for k in out_keys if not torch.equal(s2e1["params"][k], s2e2["params"][k])]
    assert changed, "the new output layer must train in stage 2"
    # the model stays in train mode in stage 2: batch-norm statistics keep moving
    assert not torch.equal(end1["bn"], s2e2["bn"])
    # stage 3 trains everything again
    assert not torch.equal(end3["params"]["backbone.conv1.weight"], s2e2["params"]["backbone.conv1.weight"])
    assert m.embedding_.shape == (N, 2) and m.embedding_.dtype == np.float32


def test_stage2_output_layer_is_initialised_n01(data):
    images, _ = data
    m = tiny(total_epochs=(1, 0, 0), output_dim=2)
    with pytest.raises(ConfigError, match="stages 2 and 3"):
        m.fit(images)
    m = tiny(total_epochs=(1, 0, 1), output_dim=64, projection_hidden=256, learning_rate=1e-12)
    m.fit(images)
    w = m.model_.head.layers[2].weight.detach()
    assert w.shape == (64, 256)
    # N(0, 1): with 16k draws the sample std is within a few percent of 1
    assert abs(float(w.std()) - 1.0) < 0.05 and abs(float(w.mean())) < 0.05


# ----------------------------------------------------------------------------- determinism
def test_same_seed_gives_bitwise_identical_embedding(data):
    images, _ = data
    a = tiny().fit_transform(images)
    b = tiny().fit_transform(images)
    c = tiny(random_state=1).fit_transform(images)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_random_state_none_draws_and_records_a_seed(data):
    images, _ = data
    m = tiny(random_state=None, total_epochs=(0, 1, 0)).fit(images)
    assert isinstance(m.random_state_, int)
    assert m.manifest_["seed"] == m.random_state_
    again = tiny(random_state=m.random_state_, total_epochs=(0, 1, 0)).fit(images)
    assert np.array_equal(m.embedding_, again.embedding_)


def test_transform_keeps_input_order(data):
    images, _ = data
    m = tiny().fit(images)
    perm = np.random.default_rng(1).permutation(N)
    out = m.transform(images[perm])
    np.testing.assert_allclose(out, m.embedding_[perm], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(m.transform(images), m.embedding_, rtol=0, atol=0)
    feats = m.features(images[perm])
    assert feats.shape == (N, 32) and feats.dtype == np.float32


def test_streamed_and_device_resident_data_give_the_same_model(data):
    images, _ = data

    class Lazy:  # an array-like that is not a numpy array, like an h5py dataset
        def __init__(self, arr):
            self.arr, self.shape, self.dtype = arr, arr.shape, arr.dtype

        def __len__(self):
            return len(self.arr)

        def __getitem__(self, idx):
            idx_arr = np.asarray(idx) if not isinstance(idx, slice) else None
            if idx_arr is not None and idx_arr.ndim == 1:
                assert np.all(np.diff(idx_arr) > 0), "lazy arrays must be read in increasing order"
            return self.arr[idx]

    resident = tiny(data_on_device=True).fit(images)
    streamed = tiny(data_on_device=False).fit(images)
    lazy = tiny().fit(ImageDataset(Lazy(images)))
    assert resident.manifest_["resolved"]["data_on_device"] is True
    assert lazy.manifest_["resolved"]["data_on_device"] is False
    assert np.array_equal(resident.embedding_, streamed.embedding_)
    assert np.array_equal(resident.embedding_, lazy.embedding_)


# ----------------------------------------------------------------------------- save / load
def test_save_load_roundtrip(data, tmp_path):
    images, labels = data
    m = tiny().fit(images, labels)
    path = m.save(tmp_path / "model.pt")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        m.save(path)
    m.save(path, overwrite=True)
    loaded = TSimCNE.load(path, device="cpu")
    assert np.array_equal(loaded.transform(images), m.transform(images))
    assert np.array_equal(loaded.embedding_, m.embedding_)
    pd.testing.assert_frame_equal(loaded.history_, m.history_)
    assert loaded.manifest_["dataset"]["fingerprint"] == m.manifest_["dataset"]["fingerprint"]
    assert loaded.image_size_ == SIZE and loaded.get_params()["total_epochs"] == (2, 1, 1)
    assert loaded.augmentation_.to_config() == m.augmentation_.to_config()
    with pytest.raises(DataError, match="TSimCNE.load"):
        SimCLR.load(path)  # wrong class
    with pytest.raises(FileNotFoundError):
        TSimCNE.load(tmp_path / "missing.pt")


def test_save_load_custom_budget_and_augmentation(data, tmp_path):
    from tsimcne_nb.nn.augmentations import make_augmentation

    images, _ = data
    budget = Budget("mine", (1, 1, 1), BATCH, 0.5, 0, "resnet18_w4", "resnet18_w4")
    aug = make_augmentation("rot90", SIZE, jitter_p=0.0)
    m = tiny(budget=budget, total_epochs=None, augment=aug).fit(images)
    assert m.total_epochs_ == (1, 1, 1)
    loaded = TSimCNE.load(m.save(tmp_path / "m.pt"))
    assert loaded.budget == budget
    assert np.array_equal(loaded.transform(images), m.embedding_)


def test_custom_backbone_module_roundtrips(data, tmp_path):
    images, _ = data
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
    m = tiny(backbone=backbone, total_epochs=(1, 1, 0)).fit(images)
    assert m.features(images).shape == (N, 8)
    path = m.save(tmp_path / "custom.pt")
    with pytest.raises(ConfigError, match="custom backbone module"):
        TSimCNE.load(path)  # files hold no code: the module must be given
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
    loaded = TSimCNE.load(path, backbone=fresh)
    assert np.array_equal(loaded.transform(images), m.embedding_)


def test_transform_resizes_other_square_sizes_and_refuses_non_square(data):
    images, _ = data
    m = tiny().fit(images)
    big = np.repeat(np.repeat(images, 2, axis=1), 2, axis=2)  # 32x32
    assert m.transform(big).shape == (N, 2)
    with pytest.raises(DataError, match="square"):
        m.transform(images[:, :, :12])


# ----------------------------------------------------------------------------- resume
@pytest.mark.parametrize("stop_at", [3, 4])  # 3: resume at a stage boundary, 4: mid-stage
def test_resume_ends_at_the_same_model(data, tmp_path, stop_at):
    images, _ = data
    epochs = (2, 1, 2)
    full = tiny(total_epochs=epochs).fit(images)

    def stop(ctx):
        return ctx.global_epoch == stop_at

    ckdir = tmp_path / "ck"
    first = tiny(total_epochs=epochs, checkpoint_dir=ckdir, checkpoint_every=2, callbacks=[stop])
    first.fit(images)
    assert first.stopped_early_ and len(first.history_) == stop_at
    assert len(list_checkpoints(ckdir)) <= 2
    resumed = tiny(total_epochs=epochs, checkpoint_dir=ckdir, checkpoint_every=2, resume=True)
    resumed.fit(images)
    a, b = full.model_.state_dict(), resumed.model_.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert np.array_equal(full.embedding_, resumed.embedding_)
    np.testing.assert_array_equal(full.history_["loss"], resumed.history_["loss"])


def test_checkpoints_keep_the_last_two(data, tmp_path):
    images, _ = data
    tiny(total_epochs=(2, 1, 2), checkpoint_dir=tmp_path, checkpoint_every=1).fit(images)
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["ckpt-000004.pt", "ckpt-000005.pt"]


def test_resume_refuses_changed_settings(data, tmp_path):
    images, _ = data
    tiny(checkpoint_dir=tmp_path, checkpoint_every=1).fit(images)
    with pytest.raises(ConfigError, match="different settings"):
        tiny(checkpoint_dir=tmp_path, resume=True, batch_size=8).fit(images)


def test_resume_refuses_another_optimizer_and_reads_old_checkpoints_as_sgd(data, tmp_path):
    images, _ = data
    tiny(optimizer="sgd", checkpoint_dir=tmp_path, checkpoint_every=1).fit(images)
    with pytest.raises(ConfigError, match="optimizer: checkpoint 'sgd', now 'adamw'"):
        tiny(optimizer="adamw", checkpoint_dir=tmp_path, resume=True).fit(images)
    # a checkpoint written before the setting existed has no "optimizer": it was SGD
    theirs = {"seed": 0}
    m = tiny(optimizer="adamw", checkpoint_dir=tmp_path)
    with pytest.raises(ConfigError, match="optimizer: checkpoint 'sgd', now 'adamw'"):
        m._check_compat(theirs, {"seed": 0, "optimizer": "adamw", "augment_overrides": {}})
    with pytest.raises(ConfigError, match="augment_overrides: checkpoint {}"):
        m._check_compat(theirs, {"seed": 0, "optimizer": "sgd",
                                 "augment_overrides": {"grayscale_p": 0.0}})
    m._check_compat(theirs, {"seed": 0, "optimizer": "sgd", "augment_overrides": {}})  # no error


def test_resume_without_checkpoint_warns_and_trains(data, tmp_path):
    images, _ = data
    with pytest.warns(UserWarning, match="no checkpoint"):
        m = tiny(total_epochs=(0, 1, 0), checkpoint_dir=tmp_path / "empty", resume=True).fit(images)
    assert len(m.history_) == 1


# ----------------------------------------------------------------------------- callbacks
def test_callbacks_knn_snapshot_and_stop(data):
    images, labels = data
    knn, snap = KNNCallback(), SnapshotCallback()
    calls = []

    def record(ctx):
        calls.append((ctx.stage, ctx.epoch))
        assert isinstance(ctx.history, pd.DataFrame) and len(ctx.history) == ctx.global_epoch

    m = tiny(total_epochs=(2, 1, 3), callbacks=[knn, snap, record], callbacks_every=2).fit(images, labels)
    assert calls == [(1, 2), (2, 1), (3, 2), (3, 3)]  # every 2nd epoch + every stage end
    assert [(r["stage"], r["epoch"]) for r in knn.scores_] == [(2, 1), (3, 2), (3, 3)]
    assert all(0.0 <= r["knn_accuracy"] <= 1.0 for r in knn.scores_)
    assert knn.to_frame().shape[0] == 3
    assert [s[2].shape for s in snap.snapshots_] == [(N, 2)] * 3
    np.testing.assert_allclose(snap.snapshots_[-1][2], m.embedding_, atol=1e-6)

    def stopper(ctx):
        if ctx.stage == 2:
            raise StopTraining("enough")

    stopped = tiny(total_epochs=(1, 2, 1), callbacks=[stopper]).fit(images)
    assert stopped.stopped_early_ and len(stopped.history_) == 2
    assert stopped.embedding_.shape == (N, 2)


def test_knn_callback_without_labels_warns(data):
    images, _ = data
    with pytest.warns(UserWarning, match="labels"):
        tiny(total_epochs=(0, 1, 0), callbacks=[KNNCallback()]).fit(images)


def test_early_stopping_counts_calls_without_improvement():
    es = EarlyStopping(patience=2, min_delta=0.01)

    def ctx(stage, loss):
        return CallbackContext(
            stage=stage, epoch=1, global_epoch=1, model=None, estimator=None,
            history=pd.DataFrame({"loss": [loss]}), indices=np.arange(1), labels=None, stage_epochs=9,
        )

    assert es(ctx(1, 5.0)) is False  # stage 1 is not watched by default
    assert es(ctx(3, 5.0)) is False
    assert es(ctx(3, 4.0)) is False  # improved
    assert es(ctx(3, 3.995)) is False  # within min_delta: no improvement (1)
    assert es(ctx(3, 4.5)) is True  # (2) -> stop
    assert es.stopped_at_ == (3, 1)
    with pytest.raises(ConfigError):
        EarlyStopping(mode="up")
    with pytest.raises(ConfigError):
        EarlyStopping(patience=0)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"total_epochs": (0, 0, 0)}, "trains nothing"),
        ({"total_epochs": (1, -1, 1)}, "total_epochs"),
        ({"total_epochs": (1, 1)}, "three integers"),
        ({"total_epochs": 5}, "three integers"),
        ({"batch_size": 1}, "batch_size"),
        ({"batch_size": -4}, "batch_size"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"stage3_lr_factor": 0}, "stage3_lr_factor"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"momentum": 1.5}, "momentum"),
        ({"weight_decay": -1e-4}, "weight_decay"),
        ({"output_dim": 0}, "output_dim"),
        ({"budget": "fast"}, "unknown budget"),
        ({"augment": "sideways"}, "augmentation preset"),
        ({"augment": 3}, "augment"),
        ({"backbone": "vgg"}, "backbone"),
        ({"precision": "int8"}, "precision"),
        ({"device": "tpu"}, "device"),
        ({"data_on_device": "maybe"}, "data_on_device"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"checkpoint_every": 2}, "checkpoint_dir"),
        ({"resume": True}, "checkpoint_dir"),
        ({"callbacks_every": 0}, "callbacks_every"),
        ({"callbacks": [42]}, "callables"),
        ({"random_state": -1}, "random_state"),
        ({"optimizer": "lamb"}, "optimizer must be one of"),
    ],
)
def test_bad_parameters_raise_config_error(data, kwargs, match):
    images, _ = data
    with pytest.raises(ConfigError, match=match):
        tiny(**kwargs).fit(images)


def test_bad_data_raises_data_error(data):
    images, labels = data
    with pytest.raises(DataError, match="at least 2 images"):
        tiny().fit(images[:1])
    with pytest.raises(DataError, match="square"):
        tiny().fit(images[:, :, :12])
    with pytest.raises(DataError, match="twice"):
        tiny().fit(ImageDataset(images, labels), labels)
    with pytest.raises(DataError):
        tiny().fit(np.zeros((4, 16), np.uint8))


def test_batch_larger_than_data_is_lowered_with_a_warning(data):
    images, _ = data
    with pytest.warns(UserWarning, match="larger than the dataset"):
        m = tiny(batch_size=1024, total_epochs=(0, 1, 0)).fit(images[:10])
    assert m.batch_size_ == 10
    assert m.learning_rate_ == pytest.approx(auto_learning_rate(10, QUICK.optimizer))


def test_grayscale_and_rgba_images_are_accepted(data):
    images, _ = data
    gray = images[..., 0]
    rgba = np.concatenate([images, np.full((*images.shape[:3], 1), 255, np.uint8)], axis=-1)
    assert tiny(total_epochs=(0, 1, 0)).fit_transform(gray).shape == (N, 2)
    assert tiny(total_epochs=(0, 1, 0)).fit_transform(rgba).shape == (N, 2)


def test_one_class_trains(data):
    images, _ = data
    m = tiny(total_epochs=(0, 1, 0)).fit(images, np.zeros(N, int))
    assert m.embedding_.shape == (N, 2)


def test_out_of_memory_suggests_a_smaller_batch(data, monkeypatch):
    images, _ = data

    def boom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(_Trainer, "_train_step", boom)
    with pytest.raises(TrainingOutOfMemoryError, match="smaller batch_size") as info:
        tiny().fit(images)
    assert isinstance(info.value, TSimCNEError)


def test_not_fitted_errors():
    m = tiny()
    for call in (lambda: m.transform(np.zeros((2, 16, 16, 3), np.uint8)), lambda: m.features(
        np.zeros((2, 16, 16, 3), np.uint8)), lambda: m.save("x.pt")):
        with pytest.raises(NotFittedError, match="fit"):
            call()
    with pytest.raises(SkNotFittedError):
        m.transform(np.zeros((2, 16, 16, 3), np.uint8))


def test_params_are_stored_verbatim_and_settable():
    epochs = [3, 2, 1]
    m = TSimCNE(total_epochs=epochs, learning_rate="auto")
    assert m.total_epochs is epochs and m.get_params()["learning_rate"] == "auto"
    assert m.set_params(batch_size=8) is m and m.batch_size == 8
    with pytest.raises(ConfigError, match="unknown parameter"):
        m.set_params(epochs=3)
    assert "batch_size=8" in repr(m)


def test_manifest_and_timings(data):
    images, labels = data
    m = tiny().fit(ImageDataset(images, labels, name="tiny"))
    man = m.manifest_
    assert man["kind"] == "tsimcne-model" and man["seed"] == 0
    assert man["dataset"]["name"] == "tiny" and man["dataset"]["n"] == N
    assert man["resolved"]["total_epochs"] == [2, 1, 1] and man["resolved"]["batch_size"] == BATCH
    assert man["resolved"]["precision"] == "bfloat16"  # 'auto' on the CPU
    assert man["versions"]["torch"]
    for phase in ("data", "augment", "forward", "backward", "step", "total"):
        assert m.timings_[phase] >= 0
    assert m.timings_["forward"] > 0 and m.timings_["steps"] == 4 * (N // BATCH)


def test_fp32_precision_runs(data):
    images, _ = data
    m = tiny(precision="fp32", channels_last=False, total_epochs=(1, 1, 0)).fit(images)
    assert m.manifest_["resolved"]["precision"] == "fp32"
    assert np.isfinite(m.embedding_).all()


def test_progress_bar_does_not_break_fitting(data, capsys):
    images, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tqdm's notebook fallback warning
        tiny(progress=True, total_epochs=(0, 1, 0)).fit(images)
    assert "stage 2/3" in capsys.readouterr().err


# ----------------------------------------------------------------------------- baselines
def test_simclr_learns_backbone_features_and_roundtrips(data, tmp_path):
    images, _ = data
    s = SimCLR(budget="quick", epochs=2, batch_size=BATCH, backbone="resnet18_w4",
               projection_hidden=32, random_state=0, progress=False, device="cpu")
    feats = s.fit_transform(images)
    assert feats.shape == (N, 32) and s.model_.out_dim == 128
    assert list(s.history_["stage"]) == [1, 1]
    loaded = SimCLR.load(s.save(tmp_path / "s.pt"))
    assert np.array_equal(loaded.transform(images), feats)
    with pytest.raises(ConfigError, match="temperature"):
        SimCLR(temperature=0, budget="quick", epochs=1, batch_size=BATCH, device="cpu",
               progress=False).fit(images)


def test_byol_updates_the_target_by_ema(data):
    images, _ = data
    b = BYOL(budget="quick", epochs=2, batch_size=BATCH, backbone="resnet18_w4",
             projection_hidden=32, output_dim=16, random_state=0, progress=False, device="cpu")
    before = None

    def grab(ctx):
        nonlocal before
        if before is None:  # after the first epoch
            before = {k: v.clone() for k, v in ctx.model.target_backbone.state_dict().items()}

    b.set_params(callbacks=[grab], callbacks_every=1)
    feats = b.fit_transform(images)
    assert feats.shape == (N, 32)
    online = dict(b.model_.backbone.named_parameters())
    target = dict(b.model_.target_backbone.named_parameters())
    assert all(not p.requires_grad for p in target.values())
    assert not torch.equal(online["conv1.weight"], target["conv1.weight"])  # EMA lags behind
    assert before is not None and not torch.equal(before["conv1.weight"], target["conv1.weight"])


# ----------------------------------------------------------------------------- DDP
DDP_KW = dict(total_epochs=(1, 1, 1), precision="fp32", random_state=0)


def _ddp_worker(rank: int, port: int, outdir: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE="2", LOCAL_RANK=str(rank))
    from tsimcne_nb.train import distributed as D

    images = _ddp_data()
    try:
        m = tiny(**DDP_KW, checkpoint_dir=f"{outdir}/ck{rank}", checkpoint_every=3).fit(images)
        np.save(f"{outdir}/emb{rank}.npy", m.embedding_)
    finally:
        D.cleanup()


def _ddp_data() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(N, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.mark.slow  # starts two Python processes (~10-30 s on the shared 2-core box)
def test_two_process_ddp_matches_one_process(tmp_path):
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1", TSIMCNE_NUM_THREADS="1")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    procs = [
        subprocess.Popen([sys.executable, __file__, "--ddp-worker", str(r), str(port), str(tmp_path)],
                         cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for r in range(2)
    ]
    logs = [p.communicate(timeout=180)[0].decode(errors="replace") for p in procs]
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, log[-3000:]
    single = tiny(**DDP_KW).fit(_ddp_data()).embedding_
    e0, e1 = np.load(tmp_path / "emb0.npy"), np.load(tmp_path / "emb1.npy")
    np.testing.assert_array_equal(e0, e1)  # every rank ends with the same model
    # same global batches, augmentations, batch-norm statistics and gradients as one process
    # (up to float summation order, amplified a little over 12 SGD steps: measured 0.3% of
    # the map's extent; another seed differs by tens of percent)
    scale = float(np.abs(single).max())
    np.testing.assert_allclose(e0, single, rtol=0, atol=0.02 * scale)
    other = tiny(**{**DDP_KW, "random_state": 1}).fit(_ddp_data()).embedding_
    assert np.abs(other - single).max() > 0.2 * scale
    assert list_checkpoints(tmp_path / "ck0") and not list_checkpoints(tmp_path / "ck1")  # rank 0 writes


if __name__ == "__main__":
    import sys

    if sys.argv[1] == "--ddp-worker":
        _ddp_worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
