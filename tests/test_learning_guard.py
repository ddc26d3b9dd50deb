"""Regression guard: a one-minute training on small SYNTHETIC data must still learn a map.

A change that breaks learning (a loss with the wrong sign, views that are not augmented, a
stage that trains nothing, a learning rate of 0) leaves a map near chance; this test fails
then. It is a guard, not a benchmark: map quality is measured in
``benchmarks/map_quality.py``.

The margins, measured when the guard was written (synthetic-blood, 4 classes, 600 images,
epochs 15/2/8, batch 128, 1 thread; 5-fold kNN, k = 15):

==========  ==========  ==========  ==========  =================
run         map kNN     silhouette  feature kNN t-SNE of pixels
==========  ==========  ==========  ==========  =================
seed 0      0.777       0.186       0.872       0.845 / 0.149
seed 1      0.717       0.178       0.848
seed 2      0.657       0.167       0.802
==========  ==========  ==========  ==========  =================

At this one-minute budget the map is *not* above t-SNE of pixels on kNN accuracy (issue 16
asks for that of the quick budget; it is not reached, see docs/quick-budget.md). It is above it
on silhouette in every seed, but by too little to be a stable test: the pixel map's silhouette
itself moved from 0.149 to 0.175 with the BLAS thread count. So the guard uses fixed bars far
above what a broken run gives (a learning rate of 1e-7 instead of 0.015: see the commit that
added this test): kNN >= 0.60 (chance: 0.25) and silhouette >= 0.12 (seed 0: margins 0.18 and
0.07).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import silhouette_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
from tsimcne_nb.estimators import TSimCNE

CLASSES = ["band", "monocyte", "blast", "lymphocyte"]
MIN_KNN = 0.60
MIN_SILHOUETTE = 0.12


def _cv_knn(Y: np.ndarray, labels: np.ndarray) -> float:
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(15), Y, labels, cv=folds).mean())


@pytest.mark.slow
def test_one_minute_training_still_learns_a_map():
    ds = make_synthetic_blood(n=600, random_state=0, classes=CLASSES)
    model = TSimCNE(budget="quick", total_epochs=(15, 2, 8), batch_size=128, random_state=0,
                    num_threads=1, progress=False, device="cpu")
    Y = model.fit_transform(ds)
    knn = _cv_knn(Y, ds.labels)
    sil = silhouette_score(Y, ds.labels)
    report = f"map kNN {knn:.3f} (needs >= {MIN_KNN}), silhouette {sil:.3f} (needs >= {MIN_SILHOUETTE})"
    assert knn >= MIN_KNN, report
    assert sil >= MIN_SILHOUETTE, report
