"""tsimcne-nb: Jupyter-first t-SimCNE for (medical) image datasets.

t-SimCNE (Böhm et al., ICLR 2023) trains a ResNet with a contrastive loss whose
output is two-dimensional, so the network itself draws the map.

Heavy dependencies (torch, openTSNE, jupyter-scatter) are imported only by the
modules that use them; ``import tsimcne_nb`` stays fast.  Public names are
resolved lazily through :func:`__getattr__`.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (imported on first access).  Sub-modules
# (tsimcne_nb.compare, tsimcne_nb.qc, ...) are not shadowed by a function of the
# same name: ``from tsimcne_nb.compare import compare``.
_LAZY = {
    "ImageDataset": "tsimcne_nb.datasets.core",
    "load_dataset": "tsimcne_nb.datasets.registry",
    "list_datasets": "tsimcne_nb.datasets.registry",
    "make_synthetic_blood": "tsimcne_nb.synthetic",
    "TSimCNE": "tsimcne_nb.training",
    "Augmentation": "tsimcne_nb.augmentations",
    "make_augmentation": "tsimcne_nb.augmentations",
    "knn_accuracy": "tsimcne_nb.evaluation",
    "silhouette": "tsimcne_nb.evaluation",
    "linear_probe": "tsimcne_nb.evaluation",
    "evaluate": "tsimcne_nb.evaluation",
    "per_class_report": "tsimcne_nb.evaluation",
    "contact_sheet": "tsimcne_nb.figures",
    "plot_map": "tsimcne_nb.figures",
    "make_backbone": "tsimcne_nb.models",
    "describe_datasets": "tsimcne_nb.datasets.registry",
    "qc_report": "tsimcne_nb.qc",
    "QCReport": "tsimcne_nb.qc",
    "SimCLR": "tsimcne_nb.training",
    "BYOL": "tsimcne_nb.training",
    "fit_to_directory": "tsimcne_nb.training",
    "KNNCallback": "tsimcne_nb.callbacks",
    "SnapshotCallback": "tsimcne_nb.callbacks",
    "EarlyStopping": "tsimcne_nb.callbacks",
    # what the tutorial notebooks use, so that they import nothing but these names
    "load_tutorial_dataset": "tsimcne_nb.datasets.tutorial_data",
    "iter_chunks": "tsimcne_nb.datasets.core",
    "resolve_budget": "tsimcne_nb.budgets",
    "resolve_device": "tsimcne_nb._torch_utils",
    "tsne_pixels": "tsimcne_nb.baselines",
    "plot_panels": "tsimcne_nb.figures",
    "callouts": "tsimcne_nb.figures",
    "thumbnail_grid_over_map": "tsimcne_nb.figures",
    "inject_duplicates": "tsimcne_nb.qc",
    "inject_artefacts": "tsimcne_nb.qc",
    "injected_mask": "tsimcne_nb.qc",
    "recovery_scores": "tsimcne_nb.qc",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tsimcne_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return __all__
