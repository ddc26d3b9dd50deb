"""Interactive notebook widgets: :class:`Explorer`, :class:`LinkedExplorer`, :class:`AugmentationGallery`,
:class:`QCReview`.

Imported lazily so that ``import tsimcne_nb`` does not load jupyter-scatter or torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Explorer": "tsimcne_nb.widgets.explorer",
    "LinkedExplorer": "tsimcne_nb.widgets.linked",
    "ThumbnailPanel": "tsimcne_nb.widgets.thumbnail_panel",
    "render_map_png": "tsimcne_nb.viz.raster",
    "AugmentationGallery": "tsimcne_nb.widgets.gallery",
    "QCReview": "tsimcne_nb.widgets.qc_review",
    "ThumbnailCache": "tsimcne_nb.widgets.thumbnails",
    "png_data_uri": "tsimcne_nb.widgets.thumbnails",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tsimcne_nb.widgets' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
