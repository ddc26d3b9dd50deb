"""Scoring QC against known ground truth: recovery of injected problems, and one
perturbation experiment (inject, map with a given function, detect, score).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.qc.perturb import _inject, injected_mask
from tsimcne_nb.qc.report import QCReport, qc_report
from tsimcne_nb.validation import check_embedding, check_features

__all__ = ['qc_experiment', 'recovery_scores']


# ================================================================ scoring
def _groups_list(report_or_groups: Any) -> list[np.ndarray]:
    if isinstance(report_or_groups, QCReport):
        report_or_groups = report_or_groups.groups
    if isinstance(report_or_groups, pd.DataFrame):
        if "members" not in report_or_groups:
            raise DataError("the groups table needs a 'members' column (from qc_report or a detector).")
        return [np.asarray(m, np.int64) for m in report_or_groups["members"]]
    return [np.asarray(m, np.int64) for m in report_or_groups]


def recovery_scores(report_or_groups: Any, truth_mask: Any, top: int = 1) -> dict[str, float]:
    """Precision and recall of the ``top`` best-ranked groups against the injected images.

    The *flagged* images are the union of the members of the first ``top`` groups in
    rank order (a :class:`QCReport`, a groups DataFrame in rank order, or a list of
    index arrays).  ``top=1`` (default) asks the strict question of the paper's
    experiment: is the single most suspicious group the injected one?

    Returns
    -------
    dict
        ``precision`` = injected among flagged / flagged (0 when nothing is flagged),
        ``recall`` = injected among flagged / injected, plus ``n_flagged``, ``n_true``,
        ``n_hit`` and ``top``.
    """
    groups = _groups_list(report_or_groups)
    truth = np.asarray(truth_mask)
    if truth.dtype != np.bool_:
        raise DataError("truth_mask must be a boolean array with one entry per image (e.g. injected_mask(ds)).")
    if not isinstance(top, (int, np.integer)) or top < 1:
        raise ConfigError(f"top must be a positive integer; got {top!r}.")
    n_true = int(truth.sum())
    if n_true == 0:
        raise DataError("truth_mask marks no image; recovery is undefined without injected images.")
    flagged = np.unique(np.concatenate(groups[:top])) if groups else np.empty(0, np.int64)
    if flagged.size and flagged.max() >= len(truth):
        raise DataError(f"group members reach index {flagged.max()} but truth_mask has {len(truth)} entries.")
    hit = int(truth[flagged].sum()) if flagged.size else 0
    return {
        "precision": hit / len(flagged) if len(flagged) else 0.0,
        "recall": hit / n_true,
        "n_flagged": int(len(flagged)), "n_true": n_true, "n_hit": hit, "top": int(top),
    }


def _split_map_output(out: Any, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    if isinstance(out, tuple):
        if len(out) != 2:
            raise DataError("map_fn must return an (N, 2) embedding or a tuple (embedding, features).")
        emb, feats = out
    else:
        emb, feats = out, None
    return check_embedding(emb, n, dim=2), None if feats is None else check_features(feats, n)


def qc_experiment(
    dataset: ImageDataset,
    kind: str,
    count: int,
    map_fn: Callable[[ImageDataset], Any],
    random_state: int | None = 0,
    top: int = 1,
    **report_options: Any,
) -> dict[str, Any]:
    """One perturbation experiment: inject, map, detect, score.

    Parameters
    ----------
    dataset
        Clean dataset.
    kind, count
        ``'duplicates'`` or ``'artefacts'`` and how many.
    map_fn
        ``map_fn(perturbed_dataset)`` -> ``(N, 2)`` embedding or ``(embedding,
        features)``, e.g. ``lambda d: (m := TSimCNE(...).fit(d)).embedding_, m.features(d)``.
    top
        Groups counted as flagged (see :func:`recovery_scores`).
    report_options
        Passed to :func:`qc_report`.

    Returns
    -------
    dict
        :func:`recovery_scores` plus ``kind``, ``count`` and ``report`` (the QCReport).
    """
    perturbed = _inject(as_dataset(dataset), kind, int(count), random_state)
    emb, feats = _split_map_output(map_fn(perturbed), len(perturbed))
    report = qc_report(perturbed, emb, feats, random_state=random_state, **report_options)
    truth = injected_mask(perturbed, "duplicate" if kind == "duplicates" else "artefact")
    return {**recovery_scores(report, truth, top=top), "kind": kind, "count": int(count), "report": report}
