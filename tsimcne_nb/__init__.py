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

# public name -> module that defines it (imported on first access).  The layers are
# described in docs/ARCHITECTURE.md; sub-packages (tsimcne_nb.qc, ...) are not shadowed by a
# function of the same name.
_LAZY = {
    "ImageDataset": "tsimcne_nb.data.core",
    "load_dataset": "tsimcne_nb.data.registry",
    "list_datasets": "tsimcne_nb.data.registry",
    "make_synthetic_blood": "tsimcne_nb.data.synthetic.generator",
    "TSimCNE": "tsimcne_nb.estimators",
    "Augmentation": "tsimcne_nb.nn.augmentations.module",
    "make_augmentation": "tsimcne_nb.nn.augmentations.presets",
    "knn_accuracy": "tsimcne_nb.eval.metrics",
    "silhouette": "tsimcne_nb.eval.metrics",
    "linear_probe": "tsimcne_nb.eval.metrics",
    "evaluate": "tsimcne_nb.eval.metrics",
    "per_class_report": "tsimcne_nb.eval.metrics",
    "contact_sheet": "tsimcne_nb.viz.figures",
    "plot_map": "tsimcne_nb.viz.figures",
    "make_backbone": "tsimcne_nb.nn.models",
    "describe_datasets": "tsimcne_nb.data.registry",
    "qc_report": "tsimcne_nb.qc.report",
    "QCReport": "tsimcne_nb.qc.report",
    "SimCLR": "tsimcne_nb.estimators",
    "BYOL": "tsimcne_nb.estimators",
    "fit_to_directory": "tsimcne_nb.pipelines.fit",
    "KNNCallback": "tsimcne_nb.eval.callbacks",
    "SnapshotCallback": "tsimcne_nb.train.callbacks",
    "EarlyStopping": "tsimcne_nb.train.callbacks",
    # what the tutorial notebooks use, so that they import nothing but these names
    "load_tutorial_dataset": "tsimcne_nb.data.tutorial_data",
    "iter_chunks": "tsimcne_nb.data.core",
    "resolve_budget": "tsimcne_nb.train.budgets",
    "resolve_device": "tsimcne_nb.train.device",
    "tsne_pixels": "tsimcne_nb.eval.baselines",
    "plot_panels": "tsimcne_nb.viz.figures",
    "callouts": "tsimcne_nb.viz.overlays",
    "thumbnail_grid_over_map": "tsimcne_nb.viz.overlays",
    "inject_duplicates": "tsimcne_nb.qc.perturb",
    "inject_artefacts": "tsimcne_nb.qc.perturb",
    "injected_mask": "tsimcne_nb.qc.perturb",
    "recovery_scores": "tsimcne_nb.qc.scoring",
    "compare": "tsimcne_nb.eval.compare",
    "METHODS": "tsimcne_nb.eval.compare",
    "DEFAULT_METHODS": "tsimcne_nb.eval.compare",
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
