"""Detector: images whose properties are far from the rest (robust z-scores)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.qc._common import _evidence, _group_frame, _jaccard
from tsimcne_nb.qc.properties import robust_z

__all__ = ['property_outliers']


def property_outliers(
    properties: pd.DataFrame, z_threshold: float = 5.0, min_size: int = 1, max_overlap: float = 0.5
) -> pd.DataFrame:
    """Groups of images that are outliers on the same image properties.

    First one group per property and direction: the images beyond ``z_threshold``
    robust z (:func:`robust_z`).  Groups that share most of their images (Jaccard index
    above ``max_overlap``) describe one kind of image seen through several properties
    (a black blob is dark *and* sharp-edged): they become one group of the images
    flagged by all of them, and what is left of each (images flagged by only one, e.g.
    naturally sharp images) stays a group of its own.  This keeps an artefact group
    free of the images that merely share one of its properties.

    ``score`` = sum over the group's properties of ``log(median |z| of the members)``
    (at least ``log(z_threshold)`` per property); ``property`` names them, e.g. ``'high
    near_black + high sharpness'``.
    """
    if z_threshold <= 0:
        raise ConfigError(f"z_threshold must be > 0; got {z_threshold!r}.")
    cols = [c for c in properties.columns if c != "outlier_score"]
    z = robust_z(properties[cols])
    absz = {c: np.abs(z[c].to_numpy()) for c in cols}

    def row(members: np.ndarray, props: list[tuple[str, str]]) -> dict[str, Any]:
        # log of how many typical deviations out the members lie: the analogue of the other
        # detectors' "how many times denser / closer than typical"; the threshold only
        # decides membership (log(z / threshold) squashed a 12-sigma black blob to 0.9)
        score = sum(float(np.log(np.median(absz[c][members]))) for _, c in props)
        return {"size": len(members), "members": members, "score": score,
                "property": " + ".join(f"{w} {c}" for w, c in props)}

    single = []
    for c in cols:
        for sign, word in ((1, "high"), (-1, "low")):
            members = np.flatnonzero((sign * z[c]).to_numpy() > z_threshold)
            if len(members) >= min_size:
                single.append({**row(members, [(word, c)]), "_props": [(word, c)]})
    single.sort(key=lambda r: (-_evidence(r["score"], r["size"]), -r["size"]))
    groups: list[dict[str, Any]] = []  # each with "_props": the (direction, property) pairs
    for r in single:
        props = r["_props"]
        for g in groups:
            if _jaccard(r["members"], g["members"]) > max_overlap:
                common = np.intersect1d(g["members"], r["members"], assume_unique=True)
                rest = np.setdiff1d(r["members"], common, assume_unique=True)
                left = np.setdiff1d(g["members"], common, assume_unique=True)
                g_props = g["_props"]
                g.clear()
                g.update(row(common, g_props + props), _props=g_props + props)
                if len(left) >= min_size:
                    groups.append({**row(left, g_props), "_props": g_props})
                if len(rest) >= min_size:
                    groups.append({**row(rest, props), "_props": props})
                break
        else:
            groups.append(r)
    rows = [{k: v for k, v in g.items() if k != "_props"} for g in groups]
    return _group_frame(rows, ["group", "size", "members", "score", "property"])
