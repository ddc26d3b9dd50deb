"""Quality control on given maps and features: perturbations (:mod:`~tsimcne_nb.qc.perturb`),
image properties (:mod:`~tsimcne_nb.qc.properties`), detectors (:mod:`tsimcne_nb.qc.detectors`),
the report (:mod:`~tsimcne_nb.qc.report`) and scoring against ground truth
(:mod:`~tsimcne_nb.qc.scoring`).  QC never trains: :mod:`tsimcne_nb.pipelines.qc` builds the maps.

The package re-exports the public functions of its modules (``from tsimcne_nb import qc;
qc.qc_report(...)``); constants stay in their modules (e.g. :data:`tsimcne_nb.qc.report.TAGS`).
"""

from tsimcne_nb.qc.detectors.duplicates import (
    duplicate_pairs_at_thresholds,
    exact_duplicates,
    near_duplicate_groups,
    pairs_figure,
)
from tsimcne_nb.qc.detectors.feature_clusters import (
    feature_closure,
    feature_confirmation,
    find_feature_clusters,
)
from tsimcne_nb.qc.detectors.outliers import property_outliers
from tsimcne_nb.qc.detectors.tight_clusters import find_tight_clusters
from tsimcne_nb.qc.perturb import (
    inject_artefacts,
    inject_duplicates,
    injected_mask,
    parse_inject,
)
from tsimcne_nb.qc.properties import image_properties, robust_z
from tsimcne_nb.qc.report import QCReport, qc_report
from tsimcne_nb.qc.scoring import qc_experiment, recovery_scores

__all__ = [
    "QCReport",
    "duplicate_pairs_at_thresholds", "exact_duplicates", "feature_closure", "feature_confirmation",
    "find_feature_clusters", "find_tight_clusters", "image_properties", "inject_artefacts",
    "inject_duplicates", "injected_mask", "near_duplicate_groups", "pairs_figure", "parse_inject",
    "property_outliers", "qc_experiment", "qc_report", "recovery_scores", "robust_z",
]
