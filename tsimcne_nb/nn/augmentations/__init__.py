"""Batched, seeded image augmentations on the training device (torch only).

:class:`Augmentation` (:mod:`~tsimcne_nb.nn.augmentations.module`) is the module;
:data:`PRESETS`, :func:`make_augmentation` and :func:`two_views` (:mod:`~tsimcne_nb.nn.augmentations.presets`)
name and apply it; :mod:`~tsimcne_nb.nn.augmentations.ops` holds the tensor operations.
"""

from tsimcne_nb.nn.augmentations.module import Augmentation
from tsimcne_nb.nn.augmentations.ops import affine_grid
from tsimcne_nb.nn.augmentations.presets import PRESETS, make_augmentation, two_views

__all__ = ["Augmentation", "PRESETS", "affine_grid", "make_augmentation", "two_views"]
