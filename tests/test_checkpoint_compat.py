"""A checkpoint written before the issue-12 refactor (trainer with a 30-key dict, estimator
methods called by the loop) still resumes, and ends at the same map as the old code's
uninterrupted run, bitwise.  The files were written once by the pre-refactor code (main at
613ad5e, ``tsimcne_nb.training.TSimCNE``, one thread): never regenerate them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.estimators import TSimCNE

DATA = Path(__file__).parent / "data"


def _images() -> np.ndarray:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 8)
    noise = rng.integers(-20, 21, (32, 16, 16, 3))
    return np.clip((labels * 60 + 20)[:, None, None, None] + noise, 0, 255).astype(np.uint8)


def _old_quick():
    """The quick budget the checkpoint was made with.  Issue 16 changed ``"quick"`` (AdamW, no
    random grayscale, 70 stage-1 epochs); the checkpoint stores neither setting, which resume reads as SGD and no
    overrides, so the resuming estimator names the old budget."""
    from dataclasses import replace

    from tsimcne_nb.train.budgets import QUICK

    return replace(QUICK, name="quick", total_epochs=(45, 4, 30), optimizer="sgd",
                   augment_overrides=())


def _est(folder: Path, **kw) -> TSimCNE:
    params = dict(budget=_old_quick(), total_epochs=(1, 1, 1), batch_size=16, backbone="resnet18_w4",
                  projection_hidden=16, pretrain_dim=8, random_state=0, progress=False,
                  device="cpu", num_threads=1, checkpoint_dir=folder, resume=True)
    params.update(kw)
    return TSimCNE(**params)


def test_old_checkpoint_resumes_to_the_old_map(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    # the old run's checkpoint after epoch 2 of 3 (stage 2 done)
    shutil.copy(DATA / "checkpoint_pre_issue12.pt", folder / "ckpt-000002.pt")
    est = _est(folder).fit(_images())
    assert len(est.history_) == 3  # two epochs from the checkpoint, one trained now
    expected = np.load(DATA / "checkpoint_pre_issue12_final_embedding.npy")
    np.testing.assert_array_equal(est.embedding_, expected)


def test_old_checkpoint_with_other_settings_is_refused_clearly(tmp_path):
    folder = tmp_path / "ck"
    folder.mkdir()
    shutil.copy(DATA / "checkpoint_pre_issue12.pt", folder / "ckpt-000002.pt")
    with pytest.raises(ConfigError, match="different settings or data.*batch_size"):
        _est(folder, batch_size=8).fit(_images())
