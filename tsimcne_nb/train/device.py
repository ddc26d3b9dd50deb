"""Device, precision, thread-count and seeding decisions in one place.

Imported only by modules that already need torch.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from tsimcne_nb._threads import choose_num_threads  # noqa: F401  (re-exported: the one thread policy)
from tsimcne_nb.errors import ConfigError

#: measured: forward + backward of the quick budget's ResNet18 (16 wide), batch 64 at 28 px,
#: one thread, on the 2-core development CPU: fp32 0.18 s, bf16 0.09 s, fp16 2.44 s
_FP16_CPU_SLOWDOWN = "measured ~14x slower than fp32 and ~28x slower than bf16 for a small ResNet"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then Apple's MPS, then the CPU; anything else is validated."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'."
        ) from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} was asked for but CUDA is not available here; use 'cpu'.")
    if dev.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ConfigError(f"device {device!r} was asked for but MPS is not available here; use 'cpu'.")
    return dev


def configure_threads(requested: int | str | None = "auto") -> int:
    """Apply :func:`choose_num_threads` to torch and return the number used."""
    n = choose_num_threads(requested)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = plain fp32).

    ``"auto"``: bf16 on CUDA (Ampere+) and on CPU (measured ~2.5x faster for
    small ResNets on the 2-core dev CPU), fp32 on MPS.
    """
    if precision not in ("auto", "fp32", "bf16", "fp16"):
        raise ConfigError(f"unknown precision {precision!r}; use 'auto', 'fp32', 'bf16' or 'fp16'.")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if device.type == "cpu":
            warnings.warn(
                "precision='fp16' on a CPU: CPUs have no fast float16 kernels, so training is far "
                f"slower there ({_FP16_CPU_SLOWDOWN}) than with 'bf16' or 'fp32'. Use precision='auto' "
                "(bf16 on CPUs) unless you need fp16.",
                stacklevel=3,
            )
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16
    return None


def describe_device(device: torch.device) -> dict[str, Any]:
    """Name and basic facts of a device, for manifests."""
    info: dict[str, Any] = {"type": device.type, "str": str(device)}
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        info["name"] = torch.cuda.get_device_name(idx)
        info["memory_gib"] = round(torch.cuda.get_device_properties(idx).total_memory / 2**30, 1)
    elif device.type == "cpu":
        info["threads"] = torch.get_num_threads()
        info["cores"] = os.cpu_count()
    return info
