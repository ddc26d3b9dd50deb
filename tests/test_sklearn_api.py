"""TSimCNE, SimCLR and BYOL are scikit-learn estimators (issue 12, item 3), and ``fit`` leaves
the process as it found it."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SkNotFittedError
from sklearn.utils import estimator_checks as sk_checks
from sklearn.utils.validation import check_is_fitted

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.estimators import BYOL, SimCLR, TSimCNE
from tsimcne_nb.eval.callbacks import KNNCallback
from tsimcne_nb.train.budgets import DEFAULT_BUDGET
from tsimcne_nb.train.callbacks import EarlyStopping, SnapshotCallback

N, SIZE, BATCH = 48, 16, 16


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), N // 3)
    base = (labels * 80 + 20)[:, None, None, None]
    images = np.clip(base + rng.integers(-20, 21, size=(N, SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    return images, labels


def tiny(**kw) -> TSimCNE:
    params = dict(
        budget="quick", total_epochs=(1, 1, 1), batch_size=BATCH, backbone="resnet18_w4",
        projection_hidden=16, pretrain_dim=8, random_state=0, progress=False, device="cpu",
        num_threads=1,
    )
    params.update(kw)
    return TSimCNE(**params)


@pytest.fixture(scope="module")
def fitted(data) -> TSimCNE:
    return tiny().fit(data[0])


@pytest.mark.parametrize("cls", [TSimCNE, SimCLR, BYOL])
def test_params_are_written_once_and_cloned(cls):
    est = cls(random_state=3, batch_size=8)
    params = est.get_params(deep=False)
    assert params == est.get_params(deep=True)
    assert params["random_state"] == 3 and params["budget"] == DEFAULT_BUDGET
    copy = clone(est)
    assert type(copy) is cls and copy is not est and copy.get_params() == params
    assert est.set_params(batch_size=16) is est and est.batch_size == 16
    with pytest.raises(ConfigError, match="unknown parameter 'batch'"):
        est.set_params(batch=16)
    assert "batch_size=16" in repr(est)
    assert cls.__name__ in est._repr_html_()
    with pytest.raises(SkNotFittedError):
        check_is_fitted(est)


@pytest.mark.parametrize("check", [
    "check_no_attributes_set_in_init", "check_get_params_invariance", "check_set_params",
    "check_parameters_default_constructible", "check_estimator_cloneable",
    "check_estimator_repr", "check_do_not_raise_errors_in_init_or_set_params",
])
@pytest.mark.parametrize("cls", [TSimCNE, SimCLR, BYOL])
def test_sklearn_estimator_checks_that_need_no_fit(cls, check):
    # The other checks of sklearn.utils.estimator_checks fit on small 2-D float tables; these
    # estimators train a CNN on images (N, H, W, 3), so they are not run (see the tests below
    # for fit, clone, pickling and check_is_fitted on images instead).
    getattr(sk_checks, check)(cls.__name__, cls())


def test_fitted_estimator_is_fitted_cloned_and_pickled(fitted, data):
    check_is_fitted(fitted)
    unfitted = clone(fitted)
    with pytest.raises(SkNotFittedError):
        check_is_fitted(unfitted)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(data[0][:5]), fitted.transform(data[0][:5]))


def test_random_state_accepts_generators_deterministically(data):
    from tsimcne_nb.validation import seed_from_random_state

    assert seed_from_random_state(np.random.default_rng(5)) == seed_from_random_state(
        np.random.default_rng(5))
    assert seed_from_random_state(np.random.RandomState(5)) == np.random.RandomState(5).randint(2**31 - 1)
    with pytest.raises(ConfigError, match="Generator"):
        seed_from_random_state("five")
    a = tiny(random_state=np.random.default_rng(7), total_epochs=(0, 1, 0)).fit(data[0][:32])
    b = tiny(random_state=np.random.default_rng(7), total_epochs=(0, 1, 0)).fit(data[0][:32])
    assert a.random_state_ == b.random_state_ == seed_from_random_state(np.random.default_rng(7))
    np.testing.assert_array_equal(a.embedding_, b.embedding_)


def test_fit_restores_threads_and_tf32_flags(data):
    before = torch.get_num_threads()
    flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.set_num_threads(2)
        est = tiny(num_threads=1, total_epochs=(0, 1, 0))
        seen = []
        est.set_params(callbacks=[lambda ctx: seen.append(torch.get_num_threads())])
        est.fit(data[0][:32])
        assert seen and set(seen) == {1}  # training ran on the thread count asked for ...
        assert torch.get_num_threads() == 2  # ... and fit put the caller's back
        assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == flags
        assert not torch.distributed.is_initialized()
    finally:
        torch.set_num_threads(before)


def test_callbacks_start_fresh_at_every_fit(data):
    knn, snap, stop = KNNCallback(), SnapshotCallback(), EarlyStopping(patience=50)
    est = tiny(total_epochs=(0, 2, 0), callbacks=[knn, snap, stop])
    est.fit(data[0], data[1])
    first = (len(knn.scores_), len(snap.snapshots_))
    assert first == (2, 2)
    est.fit(data[0], data[1])
    assert (len(knn.scores_), len(snap.snapshots_)) == first  # not doubled
