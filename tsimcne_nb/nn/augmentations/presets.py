"""Named augmentation presets and the two-view helper used by contrastive training."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.nn.augmentations.module import _PARAM_NAMES, Augmentation

__all__ = ['PRESETS', 'make_augmentation', 'two_views']

#: preset name -> parameter values that differ from the Augmentation defaults
PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "rot90": {"vflip_p": 0.5, "rot90": True},
    "randrot": {
        "vflip_p": 0.5,
        "rot90": True,
        "rotation_degrees": 45.0,
        "rotate_before_crop": True,
    },
}


def make_augmentation(
    preset: str | Augmentation, size: int, fill: Sequence[float] | None = None, **overrides: Any
) -> Augmentation:
    """Build an :class:`Augmentation` from a preset name and ablation overrides.

    Parameters
    ----------
    preset : {"default", "rot90", "randrot"} or Augmentation
        A name in :data:`PRESETS`, or an existing augmentation (then a copy is
        returned: its own ``size`` is kept, ``fill`` is used only if it has none).
    size : int
        Output size in pixels (normally the image size).
    fill : sequence of 3 floats in [0, 255], optional
        Corner colour for rotations, normally ``dataset.border_color()``.
    **overrides
        Any :class:`Augmentation` parameter, e.g. the paper's Table 4 ablations
        ``crop=False``, ``jitter_p=0``, ``grayscale_p=0``.

    Returns
    -------
    Augmentation
    """
    valid = [n for n in _PARAM_NAMES if n not in ("size", "fill")]
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ConfigError(f"unknown augmentation override(s) {unknown}; valid ones are {valid}.")
    if fill is not None and hasattr(fill, "tolist"):
        fill = fill.tolist()
    if isinstance(preset, Augmentation):
        cfg = preset.to_config()
        if cfg["fill"] is None and fill is not None:
            cfg["fill"] = [float(v) for v in fill]
        cfg.update(overrides)
        return Augmentation.from_config(cfg)
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ConfigError(
            f"unknown augmentation preset {preset!r}; use one of {sorted(PRESETS)} or an Augmentation."
        )
    kwargs: dict[str, Any] = copy.deepcopy(PRESETS[preset])
    kwargs.update(overrides)
    return Augmentation(
        size=size, fill=None if fill is None else tuple(float(v) for v in fill), **kwargs
    )


def two_views(
    aug: Augmentation, images: Any, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Two independent views of each image as one ``(2B, 3, S, S)`` batch ``[view1; view2]``.

    Both views come from one call (one grid_sample over the duplicated batch),
    so view ``i`` and view ``B + i`` are the positive pair of image ``i``.
    """
    x = Augmentation._to_float_nchw(images)
    x2 = torch.cat([x, x], dim=0)
    params = aug.sample_params(x2.shape[0], generator, x.shape[2], x.shape[3])
    return aug._apply(x2, params)
