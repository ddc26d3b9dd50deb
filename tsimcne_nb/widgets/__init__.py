"""Interactive notebook widgets: :class:`Explorer`, :class:`LinkedExplorer`, :class:`AugmentationGallery`,
:class:`QCReview`, and the panels beside the explorer: :class:`SelectionExplainer` (explain a
selection) and :class:`ParametricPanel` (what only a parametric map can show).

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
    "ParametricPanel": "tsimcne_nb.widgets.parametric",
    "QCReview": "tsimcne_nb.widgets.qc_review",
    "SelectionExplainer": "tsimcne_nb.widgets.explain",
    "explain_selection": "tsimcne_nb.widgets.explain",
    "feature_neighbours": "tsimcne_nb.widgets.parametric",
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
