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

import functools
import hashlib
import http.client
import inspect
import json
import os
import re
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from tsimcne_nb._io import atomic_open, atomic_write_json
from tsimcne_nb.errors import ConfigError, DataError, DatasetNotFoundError, DownloadError

__all__ = [
    "FeatureCache",
    "cache_key",
    "describe_augment",
    "tsne_of",
    "tsne_pixels",
    "imagenet_features",
    "imagenet_weights_file",
    "download_imagenet_weights",
    "check_weights_file",
    "published_hash_prefix",
    "is_published_imagenet_file",
    "resnet_label",
    "simclr_features",
    "byol_features",
    "tsimcne_map",
]

#: torchvision names of the ImageNet models of the paper and their weights enums
_ARCHS = {
    "resnet18": ("resnet18", "ResNet18_Weights", "ResNet18"),
    "resnet152": ("resnet152", "ResNet152_Weights", "ResNet152"),
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------- cache
def _version() -> str:
    from tsimcne_nb import __version__

    return __version__


def describe_augment(augment: Any) -> Any:
    """A JSON-able description of an augmentation argument (for cache keys and manifests)."""
    if augment is None or isinstance(augment, (str, int, float, bool)):
        return augment
    if isinstance(augment, dict):
        return {str(k): describe_augment(v) for k, v in sorted(augment.items())}
    if isinstance(augment, (list, tuple)):
        return [describe_augment(v) for v in augment]
    if hasattr(augment, "to_config"):
        return describe_augment(augment.to_config())
    if isinstance(augment, np.generic):
        return augment.item()
    return repr(augment)


def cache_key(method: str, config: dict[str, Any], dataset: Any, seed: int | None) -> str:
    """Hex key of (method, config, dataset fingerprint, seed, package version)."""
    fp = dataset.fingerprint() if hasattr(dataset, "fingerprint") else str(dataset)
    payload = json.dumps(
        {"method": method, "config": describe_augment(config), "dataset": fp, "seed": seed,
         "version": _version()},
        sort_keys=True, default=repr,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


class FeatureCache:
    """A folder of computed features and embeddings, one ``.npy`` per key.

    Parameters
    ----------
    cache_dir
        Folder to keep the arrays in (created on first write).  ``None`` disables
        caching: everything is computed, nothing stored.

    Attributes
    ----------
    hits, misses : int
        How many lookups found / did not find their array.
    log : list of (str, str, str)
        ``("hit" | "miss", method, key)`` per lookup, in order.

    Notes
    -----
    A key covers the method, its configuration, the dataset's content
    fingerprint, the seed and the package version, so a changed dataset or
    setting never returns a stale array.  Arrays are written atomically; a
    ``.json`` file next to each records what made it.
    """

    def __init__(self, cache_dir: str | os.PathLike | None):
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.hits = 0
        self.misses = 0
        self.log: list[tuple[str, str, str]] = []

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.cache_dir)!r}, hits={self.hits}, misses={self.misses})"

    def path(self, key: str) -> Path | None:
        return None if self.cache_dir is None else self.cache_dir / f"{key}.npy"

    def load(self, key: str) -> np.ndarray | None:
        p = self.path(key)
        if p is None or not p.exists():
            return None
        try:
            return np.load(p, allow_pickle=False)
        except (OSError, ValueError):  # a damaged file is recomputed, not trusted
            return None

    def save(self, key: str, array: np.ndarray, info: dict[str, Any] | None = None) -> Path | None:
        p = self.path(key)
        if p is None:
            return None
        with atomic_open(p, "wb", overwrite=True) as fh:  # same key = same content
            np.save(fh, np.asarray(array), allow_pickle=False)
        if info is not None:
            atomic_write_json(p.with_suffix(".json"), info, overwrite=True)
        return p

    def get_or_compute(
        self,
        method: str,
        config: dict[str, Any],
        dataset: Any,
        seed: int | None,
        compute: Callable[[], np.ndarray],
    ) -> np.ndarray:
        """The cached array for this key, or ``compute()`` (stored for next time)."""
        key = cache_key(method, config, dataset, seed)
        arr = self.load(key)
        if arr is not None:
            self.hits += 1
            self.log.append(("hit", method, key))
            return arr
        self.misses += 1
        self.log.append(("miss", method, key))
        arr = compute()
        fp = dataset.fingerprint() if hasattr(dataset, "fingerprint") else None
        self.save(key, arr, {"method": method, "config": describe_augment(config),
                             "dataset": fp, "seed": seed, "version": _version(),
                             "shape": list(np.shape(arr))})
        return arr


def _cached(cache: FeatureCache | None, method: str, config: dict[str, Any], dataset: Any,
            seed: int | None, compute: Callable[[], np.ndarray]) -> np.ndarray:
    if cache is None:
        return compute()
    return cache.get_or_compute(method, config, dataset, seed, compute)


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
            "tsimcne_nb.datasets.core.as_dataset(images, labels)."
        )


def _check_features(features: Any) -> np.ndarray:
    X = np.asarray(features)
    if X.ndim != 2 or X.shape[0] < 2:
        raise DataError(f"features must have shape (N, d) with N >= 2; got {X.shape}.")
    if not np.issubdtype(X.dtype, np.number):
        raise DataError(f"features must be numeric; got dtype {X.dtype}.")
    X = X.astype(np.float32, copy=False)
    if not np.all(np.isfinite(X)):
        raise DataError(
            "features contain NaN or infinite values (a diverged network?); they cannot be embedded."
        )
    return X


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
    features
        (N, d) array.
    random_state
        Seed of openTSNE (initialisation and neighbour search).
    n_jobs
        Threads; ``"auto"`` follows ``TSIMCNE_NUM_THREADS`` or the idle cores.

    Returns
    -------
    numpy.ndarray
        (N, 2) float32 embedding in input order.
    """
    import warnings

    import openTSNE

    X = _check_features(features)
    with warnings.catch_warnings():
        # openTSNE lowers the perplexity itself for small N and warns; that is expected there
        warnings.filterwarnings("ignore", message=".*[Pp]erplexity.*")
        emb = openTSNE.TSNE(random_state=random_state, n_jobs=_n_jobs(n_jobs)).fit(X)
    return np.asarray(emb, dtype=np.float32)


def _pixels(dataset: Any) -> np.ndarray:
    from tsimcne_nb.datasets.core import iter_chunks

    n = len(dataset)
    d = int(np.prod(dataset.image_shape))
    out = np.empty((n, d), np.float32)
    for start, block in iter_chunks(dataset.images):
        out[start : start + len(block)] = block.reshape(len(block), -1) / np.float32(255.0)
    return out


def _pca_chunked(dataset: Any, n_components: int, random_state: int | None) -> np.ndarray:
    """PCA of the flattened pixels without holding them all in memory (IncrementalPCA)."""
    from sklearn.decomposition import IncrementalPCA

    from tsimcne_nb.datasets.core import iter_chunks

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


def tsne_pixels(
    dataset: Any,
    random_state: int | None = 0,
    pca_dim: int | None = 100,
    pca_threshold: int = 10000,
    n_jobs: int | str = "auto",
    cache: FeatureCache | None = None,
    max_in_memory: int = 500_000_000,
) -> np.ndarray:
    """t-SNE of the images in pixel space.

    Parameters
    ----------
    dataset
        An :class:`~tsimcne_nb.datasets.core.ImageDataset`.
    random_state
        Seed of PCA and t-SNE.
    pca_dim
        Reduce to this many principal components first when the pixel dimension
        ``H*W*3`` exceeds ``pca_threshold`` (PCam's 96x96x3 = 27648 does; 28x28x3
        does not).  ``None`` never reduces.
    pca_threshold
        Pixel dimension above which PCA is applied.
    n_jobs
        openTSNE threads.
    cache
        Optional :class:`FeatureCache`.
    max_in_memory
        Above this many pixel values the PCA is computed in chunks
        (IncrementalPCA), never holding all pixels in memory.

    Returns
    -------
    numpy.ndarray
        (N, 2) float32.
    """
    _check_dataset(dataset)
    d = int(np.prod(dataset.image_shape))
    use_pca = pca_dim is not None and d > pca_threshold
    config = {"pca_dim": pca_dim if use_pca else None}

    def compute() -> np.ndarray:
        if use_pca and len(dataset) * d > max_in_memory:
            X = _pca_chunked(dataset, int(pca_dim), random_state)
        else:
            X = _pixels(dataset)
            if use_pca:
                from sklearn.decomposition import PCA

                k = min(int(pca_dim), X.shape[0], X.shape[1])
                X = PCA(n_components=k, random_state=random_state).fit_transform(X)
        return tsne_of(X, random_state=random_state, n_jobs=n_jobs)

    return _cached(cache, "tsne-pixels", config, dataset, random_state, compute)


# ----------------------------------------------------------- ImageNet ResNets
def _weights_enum(arch: str) -> Any:
    import torchvision.models as tvm

    if arch not in _ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; use one of {sorted(_ARCHS)}.")
    return getattr(tvm, _ARCHS[arch][1]).IMAGENET1K_V1


def imagenet_weights_file(arch: str = "resnet18") -> Path:
    """Where torchvision keeps the ImageNet weights of ``arch`` (they may be missing).

    Parameters
    ----------
    arch
        ``"resnet18"`` or ``"resnet152"``.

    Returns
    -------
    pathlib.Path
        ``torch.hub.get_dir()/checkpoints/<file name of torchvision's URL>``.
    """
    import torch

    url = _weights_enum(arch).url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def published_hash_prefix(arch: str = "resnet18") -> str:
    """The SHA-256 prefix torchvision publishes for the ImageNet weights of ``arch``.

    torchvision names its weight files ``<arch>-<first hex digits of the SHA-256>.pth``;
    ``torch.hub`` checks a download against that prefix.

    Parameters
    ----------
    arch
        ``"resnet18"`` or ``"resnet152"``.

    Returns
    -------
    str
        Lower-case hex digits, e.g. ``"f37072fd"``.
    """
    from torch.hub import HASH_REGEX

    name = os.path.basename(_weights_enum(arch).url.split("?")[0])
    match = HASH_REGEX.search(name)
    if not match or not match.group(1):
        raise ConfigError(f"torchvision's file name {name!r} for {arch} carries no hash prefix.")
    return match.group(1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return _sha256(Path(path))


def is_published_imagenet_file(arch: str, path: str | os.PathLike) -> bool:
    """Whether ``path`` is byte for byte torchvision's ImageNet weights of ``arch``.

    Parameters
    ----------
    arch
        ``"resnet18"`` or ``"resnet152"``.
    path
        A weights file.

    Returns
    -------
    bool
        True when the file's SHA-256 starts with :func:`published_hash_prefix`.
    """
    p = Path(path)
    if not p.is_file():
        return False
    st = p.stat()
    return _sha256_cached(str(p.resolve()), st.st_size, st.st_mtime_ns).startswith(
        published_hash_prefix(arch))


def download_imagenet_weights(arch: str = "resnet18", progress: bool = True) -> Path:
    """Fetch torchvision's ImageNet weights of ``arch`` into the torch hub cache.

    Uses torchvision's weights API (``ResNet18_Weights.IMAGENET1K_V1.get_state_dict``
    with ``check_hash=True``), so the file lands where torchvision itself looks
    (``torch.hub.get_dir()/checkpoints``) and is checked against the SHA-256 prefix
    in torchvision's file name.  A file already there is not downloaded again.

    Parameters
    ----------
    arch
        ``"resnet18"`` or ``"resnet152"``.
    progress
        Show torch.hub's progress bar.

    Returns
    -------
    pathlib.Path
        The weights file (:func:`imagenet_weights_file`).

    Raises
    ------
    DownloadError
        The downloaded file does not have the published hash (nothing is kept).
    DatasetNotFoundError
        The download failed (e.g. no internet); the message says which file to put where.
    """
    path = imagenet_weights_file(arch)
    if path.exists():
        return path
    enum = _weights_enum(arch)
    try:
        enum.get_state_dict(progress=progress, check_hash=True)
    except RuntimeError as exc:
        match = re.search(r'invalid hash value \(expected "([0-9a-f]*)", got "([0-9a-f]*)"\)', str(exc))
        if match is None:
            raise
        raise DownloadError(
            f"the ImageNet weights of {arch} downloaded from {enum.url} have the wrong hash: "
            f"{path.name} must have a SHA-256 starting with {match.group(1)} (torchvision's "
            f"published hash) but the download's is {match.group(2)}. Nothing was saved to "
            f"{path.parent}. The download was damaged or the server sent another file; try "
            "again, or put the file there by hand."
        ) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise DatasetNotFoundError(
            _missing_weights_message(arch) + f" (The download from {enum.url} failed: "
            f"{exc.__class__.__name__}: {exc}.)"
        ) from exc
    if not path.exists():  # pragma: no cover - torchvision changed where it stores weights
        raise DownloadError(f"torchvision downloaded the {arch} weights but not to {path}.")
    return path


def _missing_weights_message(arch: str) -> str:
    path = imagenet_weights_file(arch)
    url = _weights_enum(arch).url
    return (
        f"ImageNet weights for {arch} are not available offline: expected the file "
        f"{path.name} in {path.parent} (torch.hub.get_dir()/checkpoints). Pass download=True "
        f"(--download) to fetch it through torchvision, or download {url} on a machine with "
        f"internet and copy it to {path}; or pass weights=PATH to a {arch} state-dict file; or "
        f"weights=None for a randomly initialised {arch} (then it is NOT the paper's ImageNet "
        "baseline, and is labelled so)."
    )


@functools.lru_cache(maxsize=4)
def _expected_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    import torch
    import torchvision.models as tvm

    with torch.device("meta"):  # shapes only: no memory, no initialisation
        model = getattr(tvm, _ARCHS[arch][0])(weights=None)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def check_weights_file(path: str | os.PathLike, arch: str = "resnet18") -> dict[str, Any]:
    """Load a weights file and check that it is a torchvision ``arch`` state dict.

    Every parameter and buffer of the torchvision model must be there with its shape
    (``num_batches_tracked`` may be missing, as in torchvision's own older files) and
    nothing else; a ``{"state_dict": ...}`` checkpoint is unwrapped.

    Parameters
    ----------
    path
        The file (``torch.save`` of a state dict).
    arch
        ``"resnet18"`` or ``"resnet152"``.

    Returns
    -------
    dict
        The state dict, ready for ``model.load_state_dict``.

    Raises
    ------
    DataError
        The file cannot be read as a state dict, or it is not a ``arch`` (the message
        names the file, the missing / unexpected / mis-shaped keys, and the architecture
        it looks like).
    """
    import torch

    if arch not in _ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; use one of {sorted(_ARCHS)}.")
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same clear message
        raise DataError(
            f"{path} could not be read as a PyTorch state dict ({exc.__class__.__name__}: "
            f"{str(exc)[:200]}). Pass a file written by torch.save(model.state_dict(), path) "
            f"for a torchvision {arch}."
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise DataError(f"{path} holds a {type(state).__name__}, not a state dict of tensors; "
                        f"save one with torch.save(model.state_dict(), path) for a torchvision {arch}.")
    problems = _state_problems(state, arch)
    if problems:
        hint = ""
        if all(k.startswith("module.") for k in state):
            hint = (" Its keys start with 'module.' (saved from DataParallel/DDP): save "
                    "model.module.state_dict() instead.")
        else:
            like = [a for a in _ARCHS if a != arch and not _state_problems(state, a)]
            if like:
                hint = f" It is a {like[0]} state dict: use arch={like[0]!r}."
        raise DataError(f"{path} is not a torchvision {arch} state dict: {problems}.{hint}")
    return state


def _state_problems(state: dict[str, Any], arch: str) -> str:
    expected = _expected_shapes(arch)
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} instead of {expected[k]}" for k in expected
              if k in state and tuple(state[k].shape) != expected[k]]
    parts = []
    for what, keys in (("expected keys missing", missing), ("unexpected keys", unexpected),
                       ("keys with another shape", shapes)):
        if keys:
            parts.append(f"{len(keys)} {what} (e.g. {', '.join(keys[:3])})")
    return "; ".join(parts)


def resnet_label(arch: str = "resnet18", weights: Any = "imagenet") -> str:
    """Readable label of a ResNet baseline, saying plainly when it is *not* ImageNet-trained.

    Parameters
    ----------
    arch
        ``"resnet18"`` or ``"resnet152"``.
    weights
        ``"imagenet"``, ``None`` (random initialisation) or a file path; a file that is
        byte for byte torchvision's published ImageNet weights is labelled ImageNet.

    Returns
    -------
    str
        E.g. ``"ResNet18 (ImageNet)"``, ``"ResNet18 (random init, NOT ImageNet)"``,
        ``"ResNet18 (weights: my.pth)"``.
    """
    if arch not in _ARCHS:
        raise ConfigError(f"unknown arch {arch!r}; use one of {sorted(_ARCHS)}.")
    name = _ARCHS[arch][2]
    if weights is None:
        return f"{name} (random init, NOT ImageNet)"
    if isinstance(weights, str) and weights == "imagenet":
        return f"{name} (ImageNet)"
    if is_published_imagenet_file(arch, weights):
        return f"{name} (ImageNet)"
    return f"{name} (weights: {Path(weights).name})"


def _load_state_dict(arch: str, weights: Any) -> dict[str, Any] | None:
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        path = imagenet_weights_file(arch)
        if not path.exists():
            raise DatasetNotFoundError(_missing_weights_message(arch))
    else:
        path = Path(weights)
        if not path.exists():
            raise DatasetNotFoundError(
                f"weights file {path} does not exist; pass the path of a {arch} state dict, "
                "'imagenet' (torch hub cache) or None (random init)."
            )
    return check_weights_file(path, arch)


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
    dataset
        An :class:`~tsimcne_nb.datasets.core.ImageDataset`.
    arch
        ``"resnet18"`` (512-d) or ``"resnet152"`` (2048-d).
    weights
        ``"imagenet"``: torchvision's ``IMAGENET1K_V1`` weights from the local torch
        hub cache (downloaded only with ``download=True``; a missing file raises
        :class:`~tsimcne_nb.errors.DatasetNotFoundError` naming the file and
        folder).  A path: a state-dict file, checked by :func:`check_weights_file`.
        ``None``: random initialisation (seeded by ``random_state``) -- *not* an
        ImageNet baseline; see :func:`resnet_label`.
    device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    batch_size
        Images per forward pass.
    resize, crop
        Preprocessing sizes (the paper: 256 and 224).
    random_state
        Seed of the random initialisation when ``weights=None``.
    cache
        Optional :class:`FeatureCache`.
    download
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

    from tsimcne_nb._torch_utils import resolve_device
    from tsimcne_nb.datasets.core import iter_chunks

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
    config = {"augment": describe_augment(augment), "budget": describe_augment(budget),
              **{k: describe_augment(v) for k, v in kwargs.items()}}

    def compute() -> np.ndarray:
        from tsimcne_nb import training

        cls = getattr(training, kind)
        est = cls(**_accepted_kwargs(cls, {
            "augment": augment, "budget": budget, "random_state": random_state,
            "device": device, "progress": progress, **kwargs,
        }))
        feats = est.fit(dataset).transform(dataset)
        return _check_features(feats)

    return _cached(cache, f"{kind.lower()}-features", config, dataset, random_state, compute)


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

    Trains :class:`tsimcne_nb.training.SimCLR` (``augment``, ``budget``,
    ``random_state``, ``device`` and any further keyword arguments are passed on)
    and returns its ``transform`` of the dataset, (N, 512) float32.
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
    """512-d representation of BYOL trained on ``dataset`` (see :func:`simclr_features`)."""
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

    Trains :class:`tsimcne_nb.training.TSimCNE` with ``augment``, ``budget``,
    ``random_state``, ``device`` (and any further keyword arguments) and returns
    ``fit_transform(dataset)``.
    """
    _check_dataset(dataset)
    config = {"augment": describe_augment(augment), "budget": describe_augment(budget),
              **{k: describe_augment(v) for k, v in kwargs.items()}}

    def compute() -> np.ndarray:
        from tsimcne_nb.training import TSimCNE

        est = TSimCNE(**_accepted_kwargs(TSimCNE, {
            "augment": augment, "budget": budget, "random_state": random_state,
            "device": device, "progress": progress, **kwargs,
        }))
        emb = np.asarray(est.fit_transform(dataset), dtype=np.float32)
        if emb.shape != (len(dataset), 2):
            raise DataError(f"t-SimCNE returned shape {emb.shape}; expected ({len(dataset)}, 2).")
        return emb

    return _cached(cache, "tsimcne-map", config, dataset, random_state, compute)
