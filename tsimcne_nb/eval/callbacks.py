"""Training callbacks that measure the map: :class:`KNNCallback` (kNN accuracy and
silhouette every few epochs).  Here rather than in :mod:`tsimcne_nb.train.callbacks` because it
uses the evaluation metrics, which sit above the training layer.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tsimcne_nb.train.callbacks import Callback, CallbackContext


class KNNCallback(Callback):
    """Record the kNN accuracy (k = 15, stratified 9:1 split) and silhouette of each snapshot.

    Parameters
    ----------
    stages : tuple of int
        Stages to evaluate in (default 2 and 3, where the output is 2-D).
    verbose : bool
        Print a line per evaluation.

    Attributes
    ----------
    scores_ : list of dict
        ``{"stage", "epoch", "global_epoch", "knn_accuracy", "silhouette"}`` per call.
    """

    def __init__(self, stages: tuple[int, ...] = (2, 3), verbose: bool = False):
        self.stages = stages
        self.verbose = verbose
        self.scores_: list[dict[str, Any]] = []
        self._warned = False

    def __call__(self, ctx: CallbackContext) -> None:
        if ctx.stage not in self.stages:
            return None
        if ctx.labels is None or len(np.unique(ctx.labels)) < 2:
            if not self._warned:
                warnings.warn(
                    "KNNCallback needs labels with at least 2 classes; nothing is recorded.",
                    stacklevel=2,
                )
                self._warned = True
            return None
        from tsimcne_nb.eval.metrics import evaluate

        metrics = evaluate(ctx.embed(), ctx.labels, random_state=0)
        row = {"stage": ctx.stage, "epoch": ctx.epoch, "global_epoch": ctx.global_epoch, **metrics}
        self.scores_.append(row)
        if self.verbose:
            print(
                f"stage {ctx.stage} epoch {ctx.epoch}: kNN {metrics['knn_accuracy']:.3f} "
                f"silhouette {metrics['silhouette']:.3f}"
            )
        return None

    def to_frame(self):
        """The scores as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.scores_)
