"""Quality control on given maps and features: perturbations (:mod:`~tsimcne_nb.qc.perturb`),
image properties (:mod:`~tsimcne_nb.qc.properties`), detectors (:mod:`tsimcne_nb.qc.detectors`),
the report (:mod:`~tsimcne_nb.qc.report`) and scoring against ground truth
(:mod:`~tsimcne_nb.qc.scoring`).  QC never trains: :mod:`tsimcne_nb.pipelines.qc` builds the maps."""

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
    INJECT_KINDS,
    inject_artefacts,
    inject_duplicates,
    injected_mask,
    parse_inject,
)
from tsimcne_nb.qc.properties import PROPERTY_RESOLUTION, image_properties, robust_z
from tsimcne_nb.qc.report import KINDS, TAGS, QCReport, qc_report
from tsimcne_nb.qc.scoring import qc_experiment, recovery_scores

__all__ = [
    "INJECT_KINDS", "KINDS", "PROPERTY_RESOLUTION", "QCReport", "TAGS",
    "duplicate_pairs_at_thresholds", "exact_duplicates", "feature_closure", "feature_confirmation",
    "find_feature_clusters", "find_tight_clusters", "image_properties", "inject_artefacts",
    "inject_duplicates", "injected_mask", "near_duplicate_groups", "pairs_figure", "parse_inject",
    "property_outliers", "qc_experiment", "qc_report", "recovery_scores", "robust_z",
]
