"""Synthetic blood-smear images (not real microscopy): :func:`make_synthetic_blood`."""

from tsimcne_nb.data.synthetic.cells import CLASS_NAMES
from tsimcne_nb.data.synthetic.generator import make_synthetic_blood

__all__ = ["CLASS_NAMES", "make_synthetic_blood"]
