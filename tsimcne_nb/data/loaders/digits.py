"""scikit-learn's 8x8 handwritten digits as a tiny real (not synthetic) smoke-test set.

1,797 images embedded in scikit-learn, so it works offline.  The 0..16 grey
levels are scaled by 16 (clipped to 255) and replicated to RGB.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset


def load_digits(size: int | Sequence[int] | None = None) -> ImageDataset:
    """Load ``sklearn.datasets.load_digits`` as RGB uint8 images.

    Parameters
    ----------
    size
        Resize the 8x8 images (antialiased), e.g. 32 so that a ResNet sees enough
        pixels; None keeps 8x8.
    """
    from sklearn.datasets import load_digits as _sk_load_digits

    from tsimcne_nb.data.resize import resize_images

    bunch = _sk_load_digits()
    grey = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)
    images = np.repeat(grey[..., None], 3, axis=-1)
    name = "digits"
    if size is not None:
        images = resize_images(images, size)
        name = f"digits_{images.shape[1]}"
    return ImageDataset(
        images=images,
        labels=bunch.target.astype(np.int64),
        class_names=[str(c) for c in bunch.target_names],
        metadata=pd.DataFrame({"index": np.arange(len(images)), "split": "all",
                               "source_file": "sklearn.datasets.load_digits"}),
        name=name,
    )
