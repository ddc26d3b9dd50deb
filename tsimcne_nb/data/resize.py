"""The one image resize of the package: PIL resampling of uint8 RGB images.

Two filters are used, on purpose:

* ``"lanczos"`` (the default) where datasets are *loaded* at a size (folders, files,
  PCam, digits, leukemia): the sharpest antialiasing for the usual down-sampling, as
  MedMNIST+ itself was made;
* ``"bilinear"`` in :meth:`ImageDataset.resize <tsimcne_nb.data.core.ImageDataset.resize>`,
  which a fitted model uses to bring images of another size to its training size
  (antialiased bilinear, as torchvision's ``Resize``).

Changing either would change loaded datasets or transformed maps, so both stay; they share
this function and differ only in ``method``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tsimcne_nb.errors import ConfigError

__all__ = ["RESAMPLING", "resize_images"]

#: resampling method name -> PIL filter name
RESAMPLING = {"lanczos": "LANCZOS", "bilinear": "BILINEAR"}


def _size_hw(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        hw = (int(size), int(size))
    else:
        try:
            hw = tuple(int(s) for s in size)  # type: ignore[union-attr]
        except (TypeError, ValueError):
            hw = ()
    if len(hw) != 2 or min(hw) < 1:
        raise ConfigError(f"size must be a positive int or (height, width); got {size!r}")
    return hw  # type: ignore[return-value]


def resize_images(images: np.ndarray, size: int | Sequence[int], method: str = "lanczos") -> np.ndarray:
    """Resize uint8 ``(N, H, W, 3)`` images with PIL's antialiasing resampling.

    Parameters
    ----------
    images : numpy.ndarray
        uint8, shape ``(N, H, W, 3)``.
    size : int or (int, int)
        Side of square output images, or ``(height, width)``.
    method : {"lanczos", "bilinear"}
        PIL filter (see the module docstring for which part of the package uses which).

    Returns
    -------
    numpy.ndarray
        uint8, shape ``(N, height, width, 3)``; ``images`` itself when already that size.
    """
    from PIL import Image

    if method not in RESAMPLING:
        raise ConfigError(f"method must be one of {sorted(RESAMPLING)}; got {method!r}.")
    resample = getattr(Image.Resampling, RESAMPLING[method])
    h, w = _size_hw(size)
    if images.shape[1:3] == (h, w):
        return images
    out = np.empty((len(images), h, w, 3), np.uint8)
    for i, img in enumerate(images):
        out[i] = np.asarray(Image.fromarray(img).resize((w, h), resample))
    return out
