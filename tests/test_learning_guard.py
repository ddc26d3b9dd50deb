"""Regression guard: a short training on small SYNTHETIC data must beat t-SNE of its pixels.

A change that breaks learning (a loss with the wrong sign, views that are not augmented, a
stage that trains nothing, a learning rate of 0) or that loses the quick budget's quality leaves
a map at or below the trivial baseline; this test fails then. It is a guard, not a benchmark:
map quality is measured in ``benchmarks/map_quality.py``.

Measured when the quick budget changed (issue 16: AdamW, no random grayscale; synthetic-blood,
4 classes, 600 images, epochs 15/2/8, batch 128, 1 thread; 5-fold kNN, k = 15), with the
budget before it (SGD) for comparison:

==============  ==================  ==================  ==================
run             map kNN             silhouette          feature kNN
==============  ==================  ==================  ==================
seed 0          0.873 (SGD 0.777)   0.385 (SGD 0.186)   0.913 (SGD 0.872)
seed 1          0.863 (SGD 0.717)   0.408 (SGD 0.178)   0.900 (SGD 0.848)
seed 2          0.910 (SGD 0.657)   0.475 (SGD 0.167)   0.903 (SGD 0.802)
t-SNE of pixels 0.845               0.149
==============  ==================  ==================  ==================

The test trains seed 0 and computes t-SNE of the pixels in the same run. The map must beat it
by ``KNN_MARGIN`` on kNN (seed 0: +0.028; the worst seed above: +0.018) and by
``SILHOUETTE_MARGIN`` on silhouette (seed 0: +0.236), and stay above fixed floors far above what
a broken run gives. The pixel map's silhouette moved from 0.149 to 0.175 with the BLAS thread
count, which the silhouette margin leaves room for.
"""

from __future__ import annotations

import pytest
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
from tsimcne_nb.estimators import TSimCNE
from tsimcne_nb.eval.baselines import tsne_pixels

CLASSES = ["band", "monocyte", "blast", "lymphocyte"]
KNN_MARGIN = 0.01
SILHOUETTE_MARGIN = 0.15
MIN_KNN = 0.75  # chance: 0.25
MIN_SILHOUETTE = 0.25


def _cv_knn(Y, labels) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(15), Y, labels, cv=folds).mean())


@pytest.mark.slow
def test_short_training_beats_tsne_of_pixels():
    ds = make_synthetic_blood(n=600, random_state=0, classes=CLASSES)
    pixels = tsne_pixels(ds, random_state=0, n_jobs=1)
    px_knn, px_sil = _cv_knn(pixels, ds.labels), float(silhouette_score(pixels, ds.labels))
    model = TSimCNE(budget="quick", total_epochs=(15, 2, 8), batch_size=128, random_state=0,
                    num_threads=1, progress=False, device="cpu")
    Y = model.fit_transform(ds)
    knn, sil = _cv_knn(Y, ds.labels), float(silhouette_score(Y, ds.labels))
    report = (f"map kNN {knn:.3f} / silhouette {sil:.3f}; t-SNE of pixels {px_knn:.3f} / "
              f"{px_sil:.3f}; needed margins {KNN_MARGIN} / {SILHOUETTE_MARGIN}")
    assert knn >= px_knn + KNN_MARGIN and knn >= MIN_KNN, report
    assert sil >= px_sil + SILHOUETTE_MARGIN and sil >= MIN_SILHOUETTE, report
