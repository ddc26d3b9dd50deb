"""Hostile-input suite (issue 13): property-based tests over the loaders, the model-file
reader and the estimator's input checks.

Each property feeds random shapes, dtypes, values, files, truncations and bit flips
and asserts that the call either succeeds with a well-formed result or raises a
:class:`~tsimcne_nb.errors.TSimCNEError` with a message: never another exception.

The examples are drawn deterministically (``derandomize=True``) so CI runs the same
inputs every time; ``HOSTILE_EXAMPLES`` sums the budget (the README quotes it).  A
new property (or a case that once broke something) is added here, so the suite grows.
"""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsimcne_nb.errors import ModelFileError, TSimCNEError

#: examples per property (deterministic); see HOSTILE_EXAMPLES
EXAMPLES = {
    "validate_images": 200,
    "image_lists": 100,
    "validate_labels": 150,
    "image_dataset": 100,
    "npz_content": 80,
    "npz_bytes": 60,
    "model_random_bytes": 80,
    "model_truncated": 60,
    "model_bit_flips": 80,
    "estimator_params": 150,
    "transform_inputs": 80,
}
#: hostile inputs the property tests try (sum of their example budgets)
HOSTILE_EXAMPLES = sum(EXAMPLES.values())


def _settings(name: str):
    return settings(
        max_examples=EXAMPLES[name], deadline=None, database=None, derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                               HealthCheck.filter_too_much],
    )


def _ok_or_clear_error(fn, *args, **kwargs):
    """Call ``fn``: return its result, or None after a TSimCNEError with a message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)
    except TSimCNEError as exc:
        assert len(str(exc)) > 20, f"unhelpful message: {exc!r}"
        return None


DTYPES = st.sampled_from([
    np.uint8, np.uint16, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64,
    np.bool_, np.complex64, np.dtype("U3"),
])


@st.composite
def arrays(draw, max_dims: int = 5, max_side: int = 6):
    dtype = np.dtype(draw(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=max_dims, min_side=0, max_side=max_side))
    return draw(hnp.arrays(dtype, shape))


def _check_images(out) -> None:
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8
    assert out.ndim == 4 and out.shape[-1] == 3 and min(out.shape) >= 1


# ------------------------------------------------------------------ image and label checks
@_settings("validate_images")
@given(arrays())
def test_validate_images_on_random_arrays(arr):
    from tsimcne_nb.validation import validate_images

    out = _ok_or_clear_error(validate_images, arr)
    if out is not None:
        _check_images(out)
        assert len(out) == len(arr)


@st.composite
def image_lists(draw):
    from PIL import Image

    items = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["array", "pil", "tensor", "junk"]))
        if kind == "junk":
            items.append(draw(st.sampled_from([None, "cell.png", 3, [1, 2], b"\x00"])))
            continue
        arr = draw(arrays(max_dims=4, max_side=5))
        if kind == "array":
            items.append(arr)
        elif kind == "tensor":
            import torch

            with np.errstate(over="ignore", invalid="ignore"):
                items.append(torch.from_numpy(arr.astype(np.float32)) if arr.dtype.kind in "fiub"
                             else arr)
        else:
            try:
                items.append(Image.fromarray(arr))
            except Exception:  # noqa: BLE001 - PIL cannot hold every array; then pass the array
                items.append(arr)
    return items


@_settings("image_lists")
@given(image_lists())
def test_lists_of_images_are_accepted_or_refused_clearly(items):
    from tsimcne_nb.validation import validate_images

    out = _ok_or_clear_error(validate_images, items)
    if out is not None:
        _check_images(out)
        assert len(out) == len(items)


@_settings("validate_labels")
@given(arrays(max_dims=3, max_side=8), st.integers(0, 8))
def test_validate_labels_on_random_arrays(labels, n):
    from tsimcne_nb.validation import validate_labels

    out = _ok_or_clear_error(validate_labels, labels, n)
    if out is not None:
        assert out.dtype == np.int64 and out.shape == (n,) and (out >= 0).all()


@_settings("image_dataset")
@given(
    st.integers(1, 6),
    hnp.arrays(np.int64, st.integers(0, 7), elements=st.integers(-3, 2**62)),
    st.one_of(st.none(), st.lists(st.text(max_size=3), max_size=5)),
)
def test_image_dataset_with_random_labels_and_names(n, labels, class_names):
    from tsimcne_nb.data.core import ImageDataset

    images = np.zeros((n, 5, 5, 3), np.uint8)
    ds = _ok_or_clear_error(ImageDataset, images, labels, class_names)
    if ds is not None:
        # never one name per value up to a huge label: at most 1024, or one per distinct label
        assert len(ds) == n and len(ds.class_names) <= max(1024, len(labels), len(class_names or []))
        if ds.labels is not None:
            assert ds.labels.max() < len(ds.class_names)


# ------------------------------------------------------------------ npz files
KEYS = st.sampled_from(["images", "labels", "class_names", "train_images", "train_labels",
                        "val_images", "val_labels", "test_images", "test_labels", "junk"])


@_settings("npz_content")
@given(st.dictionaries(KEYS, arrays(max_dims=4, max_side=5), max_size=7))
def test_load_npz_on_random_content(content):
    from tsimcne_nb.data.loaders.custom import load_npz

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.npz"
        np.savez(path, **content)
        ds = _ok_or_clear_error(load_npz, path)
    if ds is not None:
        _check_images(ds.images)


@_settings("npz_bytes")
@given(st.one_of(st.binary(max_size=512), st.integers(0, 10_000).map(lambda k: ("cut", k))))
def test_load_npz_on_random_bytes_and_truncated_files(data):
    from tsimcne_nb.data.loaders.custom import load_npz

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.npz"
        if isinstance(data, tuple):  # a valid npz cut after k bytes
            buf = io.BytesIO()
            np.savez_compressed(buf, images=np.arange(4 * 8 * 8 * 3, dtype=np.uint8).reshape(4, 8, 8, 3),
                                labels=np.arange(4))
            full = buf.getvalue()
            path.write_bytes(full[: data[1] % len(full)])
        else:
            path.write_bytes(data)
        with pytest.raises(TSimCNEError) as err:
            load_npz(path)
    assert str(path) in str(err.value)


# ------------------------------------------------------------------ model files
@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    from tsimcne_nb.estimators import TSimCNE

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    m = TSimCNE(budget="quick", total_epochs=(0, 1, 0), batch_size=16, backbone="resnet18_w4",
                projection_hidden=8, pretrain_dim=4, random_state=0, progress=False,
                device="cpu").fit(images)
    return m.save(tmp_path_factory.mktemp("model") / "model.pt")


def _load_expecting_refusal(path: Path) -> None:
    from tsimcne_nb.estimators import TSimCNE

    with pytest.raises(ModelFileError) as err:
        TSimCNE.load(path, device="cpu")
    assert str(path) in str(err.value)  # the message names the file, then what it is


@_settings("model_random_bytes")
@given(st.one_of(st.binary(max_size=256),
                 st.binary(min_size=8, max_size=8).map(lambda b: b + b"{" + b"x" * 40),
                 st.text(max_size=64).map(str.encode)))
def test_random_bytes_are_not_a_model(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.pt"
        path.write_bytes(data)
        _load_expecting_refusal(path)


@_settings("model_truncated")
@given(st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_model_files_are_refused(model_file, fraction):
    data = model_file.read_bytes()
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.pt"
        path.write_bytes(data[: int(fraction * len(data))])
        _load_expecting_refusal(path)


@_settings("model_bit_flips")
@given(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 7))
def test_any_flipped_bit_is_reported_as_damage(model_file, where, bit):
    data = bytearray(model_file.read_bytes())
    data[int(where * len(data))] ^= 1 << bit
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "model.pt"
        path.write_bytes(bytes(data))
        _load_expecting_refusal(path)


# ------------------------------------------------------------------ the estimator's checks
ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.sampled_from([10**9, -(10**9)]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.lists(st.integers(-1, 3), max_size=4), st.tuples(st.integers(-1, 3), st.integers(-1, 3),
                                                         st.integers(-1, 3)),
)
PARAMS = st.sampled_from([
    "augment", "budget", "total_epochs", "batch_size", "learning_rate", "stage3_lr_factor",
    "warmup_epochs", "backbone", "projection_hidden", "output_dim", "pretrain_dim", "momentum",
    "weight_decay", "device", "precision", "num_threads", "random_state", "callbacks",
    "callbacks_every", "checkpoint_every", "data_on_device",
])


@_settings("estimator_params")
@given(st.dictionaries(PARAMS, ODD_VALUES, min_size=1, max_size=3))
def test_estimator_parameter_checks(params):
    """Odd parameter values are refused with a ConfigError before any training."""
    from tsimcne_nb.data.core import ImageDataset
    from tsimcne_nb.estimators import TSimCNE

    ds = ImageDataset(np.zeros((8, 8, 8, 3), np.uint8))
    base = dict(budget="quick", total_epochs=(0, 1, 0), batch_size=4, backbone="resnet18_w4",
                device="cpu", progress=False)
    est = TSimCNE(**{**base, **params})

    def check():
        cfg = est._resolve(ds)
        import tsimcne_nb.train.device as tu

        tu.choose_num_threads(est.num_threads)
        est._seed(None)
        est._make_augmentation(ds, cfg["image_size"])
        return cfg

    _ok_or_clear_error(check)


@pytest.fixture(scope="module")
def fitted_model():
    from tsimcne_nb.estimators import TSimCNE

    rng = np.random.default_rng(1)
    return TSimCNE(budget="quick", total_epochs=(0, 1, 0), batch_size=16, backbone="resnet18_w4",
                   projection_hidden=8, pretrain_dim=4, random_state=0, progress=False,
                   device="cpu").fit(rng.integers(0, 256, (32, 8, 8, 3), dtype=np.uint8))


@_settings("transform_inputs")
@given(st.one_of(arrays(max_dims=5, max_side=9), image_lists()))
def test_transform_on_random_inputs(fitted_model, X):
    out = _ok_or_clear_error(fitted_model.transform, X)
    if out is not None:
        assert out.dtype == np.float32 and out.shape == (len(X), 2)


def test_readme_quotes_the_number_of_hostile_inputs():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"**{HOSTILE_EXAMPLES} generated hostile inputs**" in readme
