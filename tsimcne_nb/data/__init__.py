"""Data layer: the :class:`ImageDataset` object and loaders for every dataset of the paper."""

from tsimcne_nb.data.core import ImageDataset, as_dataset

__all__ = ["ImageDataset", "as_dataset"]
