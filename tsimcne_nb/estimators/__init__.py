"""The estimators: :class:`TSimCNE` (2-D maps), :class:`SimCLR` and :class:`BYOL` (features).
Only estimators train; result folders are written by :mod:`tsimcne_nb.pipelines`."""

from tsimcne_nb.estimators.byol import BYOL
from tsimcne_nb.estimators.simclr import SimCLR
from tsimcne_nb.estimators.tsimcne import TSimCNE

__all__ = ["BYOL", "SimCLR", "TSimCNE"]
