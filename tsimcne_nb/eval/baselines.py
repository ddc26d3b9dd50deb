"""The paper's baselines, each giving an (N, 2) float32 map of one ImageDataset.

* :func:`tsne_pixels` -- t-SNE of the flattened pixels (PCA to 100 dimensions
  first when the images are large, as the paper did for PCam).
* :func:`imagenet_features` + :func:`tsne_of` -- t-SNE of ImageNet ResNet18 /
  ResNet152 features (resize 256, centre-crop 224, ImageNet normalisation).
* :func:`simclr_features` / :func:`byol_features` + :func:`tsne_of` -- t-SNE of
  the 512-d representation of a SimCLR / BYOL network trained on the dataset.
* :func:`tsimcne_map` -- t-SimCNE itself.

t-SNE is openTSNE with its default settings, seeded.

Every function accepts ``cache=`` (a :class:`FeatureCache`): results are stored
on disk as ``.npy`` keyed by a hash of (method, its configuration, the dataset's
content fingerprint, the seed, the package version), so repeating a comparison
recomputes nothing.

ImageNet weights are read from the local torch hub cache.  With ``download=True``
they are fetched the torchvision way (``ResNet18_Weights.IMAGENET1K_V1.get_state_dict``,
into ``torch.hub.get_dir()/checkpoints``, checked against the SHA-256 prefix that
torchvision publishes in the file name); without it nothing goes to the internet, and
a missing file raises an error that says which file to put where, or use
``weights=PATH`` or ``weights=None`` (random initialisation, labelled as such).  Every
weights file is checked (architecture, expected keys and shapes) before it is used.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from tsimcne_nb.errors import ConfigError, DataError, DatasetNotFoundError
from tsimcne_nb.eval.feature_cache import FeatureCache, _cached, describe_augment, describe_budget
from tsimcne_nb.eval.weights import (
    _ARCHS,
    _load_state_dict,
    _missing_weights_message,
    download_imagenet_weights,
    imagenet_weights_file,
)
from tsimcne_nb.validation import check_features

__all__ = ['tsne_of', 'tsne_pixels', 'imagenet_features', 'simclr_features', 'byol_features', 'tsimcne_map']

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ------------------------------------------------------------------- helpers
def _n_jobs(n_jobs: int | str | None) -> int:
    """openTSNE threads: an int (-1: all cores), or ``"auto"``: the thread policy of training
    (:func:`tsimcne_nb._threads.choose_num_threads`)."""
    from tsimcne_nb._threads import choose_num_threads

    if n_jobs == -1:
        return -1
    return choose_num_threads(n_jobs)


def _check_dataset(dataset: Any) -> None:
    if not (hasattr(dataset, "images") and hasattr(dataset, "fingerprint")):
        raise DataError(
            "baselines need an ImageDataset; wrap arrays with "
            "tsimcne_nb.data.core.as_dataset(images, labels)."
        )


def _accepted_kwargs(cls: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Keep only the keyword arguments ``cls.__init__`` accepts (all if it takes **kwargs)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return kwargs
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return kwargs
    return {k: v for k, v in kwargs.items() if k in params}


# --------------------------------------------------------------------- t-SNE
def tsne_of(features: Any, random_state: int | None = 0, n_jobs: int | str = "auto") -> np.ndarray:
    """openTSNE with its default settings (the paper), seeded.

    Parameters
    ----------
    features : array-like
        (N, d) array.
    random_state : int, optional
        Seed of openTSNE (initialisation and neighbour search).
    n_jobs : int or str
        Threads; ``"auto"`` follows ``TSIMCNE_NUM_THREADS`` or the idle cores.

    Returns
    -------
    numpy.ndarray
        (N, 2) float32 embedding in input order.
    """
    import warnings

    import openTSNE

    X = check_features(features)
    with warnings.catch_warnings():
        # openTSNE lowers the perplexity itself for small N and warns; that is expected there
        warnings.filterwarnings("ignore", message=".*[Pp]erplexity.*")
        emb = openTSNE.TSNE(random_state=random_state, n_jobs=_n_jobs(n_jobs)).fit(X)
    return np.asarray(emb, dtype=np.float32)


def _pixels(dataset: Any) -> np.ndarray:
    from tsimcne_nb.data.core import iter_chunks

    n = len(dataset)
    d = int(np.prod(dataset.image_shape))
    out = np.empty((n, d), np.float32)
    for start, block in iter_chunks(dataset.images):
        out[start : start + len(block)] = block.reshape(len(block), -1) / np.float32(255.0)
    return out


def _pca_chunked(dataset: Any, n_components: int, random_state: int | None) -> np.ndarray:
    """PCA of the flattened pixels without holding them all in memory (IncrementalPCA)."""
    from sklearn.decomposition import IncrementalPCA

    from tsimcne_nb.data.core import iter_chunks

    # IncrementalPCA needs at least n_components rows per batch
    chunk = max(4096, n_components)
    ipca = IncrementalPCA(n_components=n_components)
    for _, block in iter_chunks(dataset.images, chunk):
        if len(block) >= n_components:
            ipca.partial_fit(block.reshape(len(block), -1).astype(np.float32) / 255.0)
    out = np.empty((len(dataset), n_components), np.float32)
    for start, block in iter_chunks(dataset.images, chunk):
        flat = block.reshape(len(block), -1).astype(np.float32) / 255.0
        out[start : start + len(block)] = ipca.transform(flat)
    return out


@overload
def tsne_pixels(
    dataset: Any, random_state: int | None = ..., pca_dim: int | None = ...,
    pca_threshold: int = ..., n_jobs: int | str = ..., cache: FeatureCache | None = ...,
    max_in_memory: int = ..., return_features: Literal[False] = ...,
) -> np.ndarray: ...


@overload
def tsne_pixels(
    dataset: Any, random_state: int | None = ..., pca_dim: int | None = ...,
    pca_threshold: int = ..., n_jobs: int | str = ..., cache: FeatureCache | None = ...,
    max_in_memory: int = ..., *, return_features: Literal[True],
) -> tuple[np.ndarray, np.ndarray]: ...


def tsne_pixels(
    dataset: Any,
    random_state: int | None = 0,
    pca_dim: int | None = 100,
    pca_threshold: int = 10000,
    n_jobs: int | str = "auto",
    cache: FeatureCache | None = None,
    max_in_memory: int = 500_000_000,
    return_features: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """t-SNE of the images in pixel space: the package's one "t-SNE of pixels" baseline.

    openTSNE's defaults on the flattened pixels scaled to [0, 1]; only images with more than
    ``pca_threshold`` pixel values (PCam's 96x96x3) are first reduced to ``pca_dim``
    principal components.  The comparison (``tsne-pixels`` rows) and the QC pipeline's
    ``tsne-pixels`` map both use this function.

    Parameters
    ----------
    dataset : ImageDataset or array-like
        An :class:`~tsimcne_nb.data.core.ImageDataset`.
    random_state : int, optional
        Seed of PCA and t-SNE.
    pca_dim : int, optional
        Reduce to this many principal components first when the pixel dimension
        ``H*W*3`` exceeds ``pca_threshold`` (PCam's 96x96x3 = 27648 does; 28x28x3
        does not).  ``None`` never reduces.
    pca_threshold : int
        Pixel dimension above which PCA is applied.
    n_jobs : int or str
        openTSNE threads.
    cache : FeatureCache, optional
        Optional :class:`FeatureCache`.
    max_in_memory : int
        Above this many pixel values the PCA is computed in chunks
        (IncrementalPCA), never holding all pixels in memory.
    return_features : bool
        Also return the features t-SNE saw (pixels, or their principal components), e.g. as
        the feature space of QC's detectors.  Not cached.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, numpy.ndarray)
        (N, 2) float32 map; with ``return_features``, ``(map, features)``.
    """
    _check_dataset(dataset)
    d = int(np.prod(dataset.image_shape))
    use_pca = pca_dim is not None and d > pca_threshold
    config = {"pca_dim": pca_dim if use_pca else None}

    def features() -> np.ndarray:
        if pca_dim is not None and use_pca and len(dataset) * d > max_in_memory:
            return _pca_chunked(dataset, int(pca_dim), random_state)
        X = _pixels(dataset)
        if pca_dim is not None and use_pca:
            from sklearn.decomposition import PCA

            k = min(int(pca_dim), X.shape[0], X.shape[1])
            X = PCA(n_components=k, random_state=random_state).fit_transform(X)
        return X

    if return_features:
        X = np.asarray(features(), dtype=np.float32)
        return tsne_of(X, random_state=random_state, n_jobs=n_jobs), X

    def compute() -> np.ndarray:
        return tsne_of(features(), random_state=random_state, n_jobs=n_jobs)

    return _cached(cache, "tsne-pixels", config, dataset, random_state, compute)


def imagenet_features(
    dataset: Any,
    arch: str = "resnet18",
    weights: Any = "imagenet",
    device: str = "auto",
    batch_size: int = 128,
    resize: int = 256,
    crop: int = 224,
    random_state: int | None = 0,
    cache: FeatureCache | None = None,
    download: bool = False,
) -> np.ndarray:
    """Penultimate-layer features of a torchvision ResNet (the paper's ImageNet baselines).

    Images are resized to ``resize`` x ``resize`` (bilinear, antialiased),
    centre-cropped to ``crop``, scaled to [0, 1] and ImageNet-normalised, then
    passed through the network without its fc layer.

    Parameters
    ----------
    dataset : ImageDataset or array-like
        An :class:`~tsimcne_nb.data.core.ImageDataset`.
    arch : str
        ``"resnet18"`` (512-d) or ``"resnet152"`` (2048-d).
    weights : str, path or None
        ``"imagenet"``: torchvision's ``IMAGENET1K_V1`` weights from the local torch
        hub cache (downloaded only with ``download=True``; a missing file raises
        :class:`~tsimcne_nb.errors.DatasetNotFoundError` naming the file and
        folder).  A path: a state-dict file, checked by :func:`check_weights_file`.
        ``None``: random initialisation (seeded by ``random_state``) -- *not* an
        ImageNet baseline; see :func:`resnet_label`.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    batch_size : int
        Images per forward pass.
    resize, crop : int
        Preprocessing sizes (the paper: 256 and 224).
    random_state : int, optional
        Seed of the random initialisation when ``weights=None``.
    cache : FeatureCache, optional
        Optional :class:`FeatureCache`.
    download : bool
        With ``weights="imagenet"``: fetch missing weights through torchvision's
        weights API (:func:`download_imagenet_weights`, hash-checked).

    Returns
    -------
    numpy.ndarray
        (N, 512) or (N, 2048) float32.
    """
    _check_dataset(dataset)
    if arch not in _ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; use one of {sorted(_ARCHS)}.")
    if not (isinstance(weights, (str, os.PathLike)) or weights is None):
        raise ConfigError(f"weights must be 'imagenet', a file path or None; got {weights!r}.")
    if int(crop) > int(resize):
        raise ConfigError(f"crop ({crop}) must not exceed resize ({resize}).")
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be >= 1; got {batch_size}.")
    # fail early (before any cache lookup) when the weights are missing; download them here
    if isinstance(weights, str) and weights == "imagenet" and not imagenet_weights_file(arch).exists():
        if not download:
            raise DatasetNotFoundError(_missing_weights_message(arch))
        download_imagenet_weights(arch)
    wdesc = None if weights is None else (
        "imagenet" if weights == "imagenet" else f"file:{Path(weights).resolve()}"
    )
    config = {"arch": arch, "weights": wdesc, "resize": int(resize), "crop": int(crop)}
    seed = random_state if weights is None else None

    def compute() -> np.ndarray:
        return _resnet_forward(dataset, arch, weights, device, int(batch_size), int(resize),
                               int(crop), random_state)

    return _cached(cache, f"imagenet-features-{arch}", config, dataset, seed, compute)


def _resnet_forward(dataset: Any, arch: str, weights: Any, device: str, batch_size: int,
                    resize: int, crop: int, random_state: int | None) -> np.ndarray:
    import torch
    import torch.nn.functional as F
    import torchvision.models as tvm

    from tsimcne_nb.data.core import iter_chunks
    from tsimcne_nb.train.device import resolve_device

    dev = resolve_device(device)
    state = _load_state_dict(arch, weights)
    if random_state is not None:
        torch.manual_seed(random_state)  # reproducible random init when weights=None
    model = getattr(tvm, _ARCHS[arch][0])(weights=None)
    if state is not None:
        model.load_state_dict(state)
    model.fc = torch.nn.Identity()
    model.eval().to(dev)
    mean = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
    top = (resize - crop) // 2
    out = np.empty((len(dataset), model_dim(arch)), np.float32)
    with torch.inference_mode():
        for start, block in iter_chunks(dataset.images, batch_size):
            x = torch.from_numpy(np.ascontiguousarray(block)).to(dev)
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = F.interpolate(x, size=(resize, resize), mode="bilinear", align_corners=False,
                              antialias=True)
            x = x[:, :, top : top + crop, top : top + crop]
            x = (x - mean) / std
            out[start : start + len(block)] = model(x).float().cpu().numpy()
    return out


def model_dim(arch: str) -> int:
    """Feature dimension of ``arch`` without its fc layer."""
    return {"resnet18": 512, "resnet152": 2048}[arch]


# ------------------------------------------------------- self-supervised ones
def _learner_features(kind: str, dataset: Any, augment: Any, budget: Any, random_state: int | None,
                      device: str, cache: FeatureCache | None, progress: bool,
                      **kwargs: Any) -> np.ndarray:
    _check_dataset(dataset)
    config = _learner_config(augment, budget, kwargs)

    def compute() -> np.ndarray:
        est = _make_learner(kind, augment, budget, random_state, device, progress, kwargs)
        feats = est.fit(dataset).transform(dataset)
        return check_features(feats)

    return _cached(cache, f"{kind.lower()}-features", config, dataset, random_state, compute)


def _learner_config(augment: Any, budget: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """What changes a trained learner's result, for its cache key."""
    return {"augment": describe_augment(augment), "budget": describe_budget(budget),
            **{k: describe_augment(v) for k, v in kwargs.items()}}


def _make_learner(kind: str, augment: Any, budget: Any, random_state: int | None, device: str,
                  progress: bool, kwargs: dict[str, Any]) -> Any:
    """The estimator ``kind`` ("SimCLR", "BYOL", "TSimCNE") with the arguments it accepts."""
    from tsimcne_nb import estimators

    cls = getattr(estimators, kind)
    return cls(**_accepted_kwargs(cls, {
        "augment": augment, "budget": budget, "random_state": random_state,
        "device": device, "progress": progress, **kwargs,
    }))


def simclr_features(
    dataset: Any,
    augment: Any = "default",
    budget: Any = "quick",
    random_state: int | None = 0,
    device: str = "auto",
    cache: FeatureCache | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> np.ndarray:
    """512-d representation (before the projection head) of SimCLR trained on ``dataset``.

    Trains :class:`tsimcne_nb.estimators.SimCLR` (``augment``, ``budget``,
    ``random_state``, ``device`` and any further keyword arguments are passed on)
    and returns its ``transform`` of the dataset, (N, 512) float32.

    Parameters
    ----------
    dataset : ImageDataset or array-like
        The images.
    augment : str or Augmentation
        Augmentation preset or object.
    budget : str or Budget
        Training budget.
    random_state : int, optional
        Seed of the training run.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    cache : FeatureCache, optional
        Cache the result (keyed by method, configuration, dataset and seed).
    progress : bool
        Show progress bars.
    **kwargs : dict
        Further estimator parameters.

    Returns
    -------
    numpy.ndarray
        (N, 512) float32 features.
    """
    return _learner_features("SimCLR", dataset, augment, budget, random_state, device, cache,
                             progress, **kwargs)


def byol_features(
    dataset: Any,
    augment: Any = "default",
    budget: Any = "quick",
    random_state: int | None = 0,
    device: str = "auto",
    cache: FeatureCache | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> np.ndarray:
    """512-d representation of BYOL trained on ``dataset`` (see :func:`simclr_features`).

    Parameters
    ----------
    dataset : ImageDataset or array-like
        The images.
    augment : str or Augmentation
        Augmentation preset or object.
    budget : str or Budget
        Training budget.
    random_state : int, optional
        Seed of the training run.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    cache : FeatureCache, optional
        Cache the result (keyed by method, configuration, dataset and seed).
    progress : bool
        Show progress bars.
    **kwargs : dict
        Further estimator parameters.

    Returns
    -------
    numpy.ndarray
        (N, 512) float32 features.
    """
    return _learner_features("BYOL", dataset, augment, budget, random_state, device, cache,
                             progress, **kwargs)


def tsimcne_map(
    dataset: Any,
    augment: Any = "randrot",
    budget: Any = "quick",
    random_state: int | None = 0,
    device: str = "auto",
    cache: FeatureCache | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> np.ndarray:
    """The t-SimCNE map of ``dataset``, (N, 2) float32.

    Trains :class:`tsimcne_nb.estimators.TSimCNE` with ``augment``, ``budget``,
    ``random_state``, ``device`` (and any further keyword arguments) and returns
    ``fit_transform(dataset)``.

    Parameters
    ----------
    dataset : ImageDataset or array-like
        The images.
    augment : str or Augmentation
        Augmentation preset or object.
    budget : str or Budget
        Training budget.
    random_state : int, optional
        Seed of the training run.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    cache : FeatureCache, optional
        Cache the result (keyed by method, configuration, dataset and seed).
    progress : bool
        Show progress bars.
    **kwargs : dict
        Further estimator parameters.

    Returns
    -------
    numpy.ndarray
        (N, 2) float32 map.
    """
    _check_dataset(dataset)
    config = _learner_config(augment, budget, kwargs)

    def compute() -> np.ndarray:
        est = _make_learner("TSimCNE", augment, budget, random_state, device, progress, kwargs)
        emb = np.asarray(est.fit_transform(dataset), dtype=np.float32)
        if emb.shape != (len(dataset), 2):
            raise DataError(f"t-SimCNE returned shape {emb.shape}; expected ({len(dataset)}, 2).")
        return emb

    return _cached(cache, "tsimcne-map", config, dataset, random_state, compute)
