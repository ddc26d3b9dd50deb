"""Tensor operations of the batched augmentation: affine sampling grids, luma,
hue rotation and the parameter checks.
"""

from __future__ import annotations

from typing import Any

import torch

from tsimcne_nb.errors import ConfigError

__all__ = ['affine_grid']

#: ITU-R 601-2 luma weights, as PIL's ``convert("L")``
_LUMA = (0.299, 0.587, 0.114)

#: sampling matrices (output -> input, x = column, y = row) of torch.rot90(img, k, dims=(-2, -1))
_ROT90 = torch.tensor(
    [[[1, 0], [0, 1]], [[0, -1], [1, 0]], [[-1, 0], [0, -1]], [[0, 1], [-1, 0]]],
    dtype=torch.float64,
)

#: number of attempts of torchvision's RandomResizedCrop.get_params before its fallback
_CROP_ATTEMPTS = 10


def _prob(name: str, value: Any) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise ConfigError(f"{name} must be a probability in [0, 1]; got {value!r}.")


def _pair(name: str, value: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a pair (low, high) of numbers; got {value!r}.") from exc
    return lo, hi


def affine_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``F.affine_grid(theta, (B, C, height, width), align_corners=False)``, computed faster.

    torch's version first materialises a (B, H, W, 3) base grid (most of the
    geometric cost on the CPU); one (H*W, 3) x (3, 2B) matrix product gives the same
    grid.
    """
    B = theta.shape[0]
    dt, dev = theta.dtype, theta.device
    xs = (torch.arange(width, dtype=dt, device=dev) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=dt, device=dev) * 2 + 1) / height - 1
    base = torch.stack(
        [xs.view(1, width).expand(height, width), ys.view(height, 1).expand(height, width)], -1
    )
    base = torch.cat([base, torch.ones(height, width, 1, dtype=dt, device=dev)], -1)
    grid = base.view(height * width, 3) @ theta.permute(2, 0, 1).reshape(3, B * 2)
    return grid.view(height, width, B, 2).permute(2, 0, 1, 3).contiguous()


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma of (B, 3, H, W) -> (B, 1, H, W)."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return _LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b


def _shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift the hue of (B, 3, H, W) images by ``shift`` (B,) turns via HSV, vectorised."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    delta = maxc - minc
    grey = delta == 0
    sat = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    d = torch.where(grey, torch.ones_like(delta), delta)
    rc, gc, bc = (maxc - r) / d, (maxc - g) / d, (maxc - b) / d
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(grey, torch.zeros_like(h), h)
    h = torch.remainder(h / 6.0 + shift.view(-1, 1, 1), 1.0)
    # hsv -> rgb: c_n = v - v s clamp(min(k, 4 - k), 0, 1), k = (n + 6 h) mod 6, n = 5, 3, 1
    n = torch.tensor([5.0, 3.0, 1.0], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    kk = torch.remainder(n + 6.0 * h.unsqueeze(1), 6.0)
    w = torch.clamp(torch.minimum(kk, 4.0 - kk), 0.0, 1.0)
    v = maxc.unsqueeze(1)
    return (v - v * sat.unsqueeze(1) * w).clamp_(0.0, 1.0)
