"""ImageNet ResNet weights for the baseline rows: where torchvision keeps them, the
published hashes, an opt-in download and a check of any weights file before use.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import os
import re
import urllib.error
from pathlib import Path
from typing import Any

from tsimcne_nb.errors import ConfigError, DataError, DatasetNotFoundError, DownloadError

__all__ = ['imagenet_weights_file', 'download_imagenet_weights', 'check_weights_file', 'published_hash_prefix', 'is_published_imagenet_file', 'resnet_label']

#: torchvision names of the ImageNet models of the paper and their weights enums
_ARCHS = {
    "resnet18": ("resnet18", "ResNet18_Weights", "ResNet18"),
    "resnet152": ("resnet152", "ResNet152_Weights", "ResNet152"),
}


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
