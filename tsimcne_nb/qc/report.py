"""The QC report: :func:`qc_report` runs the detectors on a map and its features and ranks the
suspicious groups in a :class:`QCReport` (thumbnail cards, editable tags, an exclusion list,
export).

The paper (section 5, Figure 6) shows that t-SimCNE puts perturbed duplicates of one image,
and images with black artefacts, into one small cluster of the 2-D map where they are easy to
spot.  The detectors (:mod:`tsimcne_nb.qc.detectors`) turn that into candidates.

Group scores share one scale so that groups found by different detectors can be
ranked together: each detector measures, in natural-log units, *how much closer*
the members are to each other than expected (2-D density over the neighbourhood's
density; odds of a member's neighbours being members over an ordinary
neighbourhood's; within-group feature distance below the typical nearest-neighbour
distance; distance from the median in robust standard deviations), and the report ranks by
``evidence = score * log2(1 + size)`` so that a large tight group outranks a single
tight pair.  Groups found by several detectors are merged and their evidence added.

Nothing here is domain-blind flagging: image properties are scores to colour the
map by, and their outlier score only ranks candidates for a human to look at
(grayscale is no defect in microscopy, so saturation is not even measured).  The report
takes a map and features; :func:`tsimcne_nb.pipelines.qc.qc_to_directory` builds them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_open
from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.qc._common import (
    KINDS,
    TAGS,
    _check_metric,
    _evidence,
    _jaccard,
    _read,
)
from tsimcne_nb.qc.detectors.duplicates import exact_duplicates, near_duplicate_groups
from tsimcne_nb.qc.detectors.feature_clusters import _feature_knn, find_feature_clusters
from tsimcne_nb.qc.detectors.outliers import property_outliers
from tsimcne_nb.qc.detectors.tight_clusters import find_tight_clusters
from tsimcne_nb.qc.properties import image_properties
from tsimcne_nb.validation import check_embedding, check_features
from tsimcne_nb.viz.palette import category_colors

if TYPE_CHECKING:  # annotations only: the modules stay light to import
    from matplotlib.figure import Figure

__all__ = ['QCReport', 'qc_report']


def _merge_groups(frames: Mapping[str, pd.DataFrame], max_overlap: float) -> pd.DataFrame:
    """One table of all detectors' groups, overlapping groups merged, ranked by evidence."""
    rows: list[dict[str, Any]] = []
    for kind, df in frames.items():
        for _, r in df.iterrows():
            detail = {k: r[k] for k in df.columns if k not in ("group", "size", "members", "score")}
            rows.append({
                "kind": kind, "size": int(r["size"]), "members": np.asarray(r["members"], np.int64),
                "score": float(r["score"]), "evidence": _evidence(r["score"], int(r["size"])),
                "detail": detail,
            })
    rows.sort(key=lambda r: (-r["evidence"], -r["size"]))
    merged: list[dict[str, Any]] = []
    for r in rows:
        for m in merged:
            # Jaccard, not overlap of the smaller: a near-duplicate pair inside a large
            # cluster is its own finding, not evidence that the whole cluster is suspicious
            if _jaccard(r["members"], m["members"]) > max_overlap:
                # the same images, found again by another detector: more evidence, same group
                m["evidence"] += r["evidence"]
                m["confirmed_by"].append(r["kind"])
                break
        else:
            merged.append({**r, "confirmed_by": []})
    merged.sort(key=lambda r: (-r["evidence"], -r["size"]))
    out = pd.DataFrame(merged,
                       columns=["kind", "size", "members", "score", "evidence", "detail", "confirmed_by"])
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def _examples(members: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    if len(members) <= k:
        return np.asarray(members)
    return np.sort(rng.choice(members, size=k, replace=False))


@dataclass
class QCReport:
    """Suspicious groups of a dataset, ranked, with tags a user can edit.

    Made by :func:`qc_report`; the parameters are its results.

    Parameters
    ----------
    dataset : ImageDataset
        The dataset checked.
    embedding : numpy.ndarray or None
        Its 2-D map, (N, 2), or None when the report was made from features only.
    groups : pandas.DataFrame
        The ranked groups (see ``groups`` below).
    properties : pandas.DataFrame
        Per-image properties (see ``properties`` below).
    tags : pandas.DataFrame, optional
        Initial tags (default: every image untagged).
    config : dict
        The settings of :func:`qc_report` (kept in exports).

    Attributes
    ----------
    groups
        DataFrame, best first: ``rank``, ``kind`` (one of :data:`KINDS`), ``size``,
        ``score`` (the detector's log-ratio), ``evidence`` (``score * log2(1 + size)``,
        summed over detectors that found the same images; the ranking key),
        ``members`` (int array), ``examples`` (up to 8 member indices), ``confirmed_by``
        (other detectors that found the same group), ``detail`` (detector columns).
    tags
        DataFrame indexed by image position with column ``tag`` (one of :data:`TAGS`),
        ``group`` (rank of the group that suggested it, 0 = none) and ``reason``.
        Suggested by :meth:`suggest_tags`; edit with :meth:`tag` or directly.
    properties
        :func:`image_properties` of the dataset.
    """

    dataset: ImageDataset
    embedding: np.ndarray | None
    groups: pd.DataFrame
    properties: pd.DataFrame
    tags: pd.DataFrame = field(default=None)  # type: ignore[assignment]
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.tags is None:
            n = len(self.dataset)
            self.tags = pd.DataFrame(
                {"tag": np.full(n, "keep", dtype=object), "group": np.zeros(n, np.int64),
                 "reason": np.full(n, "", dtype=object)},
                index=pd.RangeIndex(n, name="index"),
            )

    def __repr__(self) -> str:
        kinds = self.groups["kind"].value_counts().to_dict() if len(self.groups) else {}
        return f"QCReport({self.dataset!r}, groups={len(self.groups)} {kinds}, excluded={len(self.exclusion_list())})"

    # -------------------------------------------------------------- tags
    def tag(self, indices: Iterable[int] | np.ndarray, name: str, reason: str = "by hand") -> QCReport:
        """Tag the images at ``indices`` with ``name``.

        The signature is the explorer's, ``tag(indices, name)``, so a selection moves between
        the two unchanged.

        Parameters
        ----------
        indices : iterable of int
            Image indices (positions in the dataset).
        name : {"duplicate", "artefact", "keep"}
            The tag.
        reason : str
            Why (kept in ``tags["reason"]``; tags set here count as a person's decision).

        Returns
        -------
        QCReport
            ``self``.
        """
        if name not in TAGS:
            raise ConfigError(f"unknown tag {name!r}; use one of {', '.join(TAGS)}.")
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self.tags)):
            raise DataError(f"image indices must lie in [0, {len(self.tags)}); got {idx.min()}..{idx.max()}.")
        self.tags.loc[idx, "tag"] = name
        self.tags.loc[idx, "reason"] = reason
        return self

    def _manual(self, idx: np.ndarray) -> np.ndarray:
        # a tag set through tag() (any reason) is a person's decision; suggestions record
        # the detector's kind as their reason, and untouched images an empty reason
        reasons = self.tags["reason"].to_numpy()[idx]
        return np.array([bool(r) and not str(r).startswith(KINDS) for r in reasons], dtype=bool)

    def suggest_tags(self, top: int | None = None, min_evidence: float = 10.0) -> QCReport:
        """Pre-fill tags from the groups with ``evidence >= min_evidence`` (and rank <= ``top``).

        Exact and near-duplicate groups, and tight or feature clusters whose members
        are near-identical in feature space (``feature_confirmation > 0``), are tagged
        'duplicate' except the member closest to the group's feature centre (or the
        first), which is kept.  Other tight clusters and property outliers are tagged
        'artefact': a suggestion to look at, not a verdict.  Earlier (better) groups win
        where groups share images.  Tags set with :meth:`tag` (by hand, or in a
        :class:`~tsimcne_nb.widgets.QCReview`) are not overwritten.

        Parameters
        ----------
        top : int, optional
            Only the ``top`` ranked groups.
        min_evidence : float
            Smallest evidence of a group whose members are tagged.
        """
        sel = self.groups[self.groups["evidence"] >= min_evidence]
        if top is not None:
            sel = sel[sel["rank"] <= top]
        for _, g in sel[::-1].iterrows():  # worst first so that the best group's tag wins
            kinds = [g["kind"], *g["confirmed_by"]]
            conf = g["detail"].get("feature_confirmation", np.nan) if isinstance(g["detail"], dict) else np.nan
            dup = bool({"exact-duplicate", "near-duplicate"} & set(kinds)) or (
                g["kind"] in ("tight-cluster", "feature-cluster") and np.isfinite(conf) and conf > 0
            )
            members = np.asarray(g["members"], np.int64)
            free = members[~self._manual(members)]
            if dup:
                keep_one = free[:1]
                self.tags.loc[free, ["tag", "group", "reason"]] = ["duplicate", int(g["rank"]), g["kind"]]
                self.tags.loc[keep_one, ["tag", "reason"]] = ["keep", f"{g['kind']} (kept copy)"]
            else:
                self.tags.loc[free, ["tag", "group", "reason"]] = ["artefact", int(g["rank"]), g["kind"]]
        return self

    def exclusion_list(self) -> pd.DataFrame:
        """Images tagged 'duplicate' or 'artefact': ``index`` (position), ``source_index``
        (the dataset's ``index`` metadata column), ``tag``, ``group``, ``reason``."""
        t = self.tags[self.tags["tag"] != "keep"]
        out = t.reset_index()
        out.insert(1, "source_index", self.dataset.metadata["index"].to_numpy()[out["index"].to_numpy()])
        return out

    def to_explorer_tags(self, explorer: Any) -> Any:
        """Push the 'duplicate' and 'artefact' tags into an explorer widget.

        Any object with a ``tag(indices, name)`` method works (duck typing; the signature
        :class:`tsimcne_nb.widgets.explorer.Explorer` and :meth:`tag` share).  Returns the
        explorer.

        Parameters
        ----------
        explorer : Explorer
            The explorer to tag.
        """
        if not callable(getattr(explorer, "tag", None)):
            raise ConfigError(
                f"{type(explorer).__name__} has no tag(indices, name) method; pass an Explorer widget."
            )
        for name in ("duplicate", "artefact"):
            idx = np.flatnonzero(self.tags["tag"].to_numpy() == name)
            if idx.size:  # an explorer refuses to tag nothing; a report may have no such images
                explorer.tag(idx.tolist(), name)
        return explorer

    # ------------------------------------------------------------ export
    def table(self) -> pd.DataFrame:
        """The groups as a flat table (members and examples as space-separated strings)."""
        df = self.groups.copy()
        for col in ("members", "examples"):
            df[col] = [" ".join(map(str, m)) for m in df[col]]
        df["confirmed_by"] = [" ".join(c) for c in df["confirmed_by"]]
        df["detail"] = [
            "; ".join(f"{k}={_fmt(v)}" for k, v in d.items()) if isinstance(d, dict) else "" for d in df["detail"]
        ]
        df.insert(1, "synthetic", bool(self.dataset.synthetic))
        return df

    def export(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write :meth:`table` as CSV, atomically; refuses to replace a file unless ``overwrite``.

        Parameters
        ----------
        path : str or os.PathLike
            The CSV file.
        overwrite : bool
            Replace an existing file.
        """
        return _write_csv(self.table(), path, overwrite)

    def export_exclusion_list(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write :meth:`exclusion_list` as CSV, atomically.

        Parameters
        ----------
        path : str or os.PathLike
            The CSV file.
        overwrite : bool
            Replace an existing file.
        """
        return _write_csv(self.exclusion_list(), path, overwrite)

    # ----------------------------------------------------------- figures
    def cards(self, top: int = 6, per_group: int = 8, fig: Any = None) -> Figure:
        """Thumbnail cards of the ``top`` groups: one row per group, ``per_group`` images.

        Parameters
        ----------
        top : int
            Groups shown.
        per_group : int
            Images per group.
        fig : matplotlib.figure.Figure or SubFigure, optional
            Draw into this figure.
        """
        import matplotlib.pyplot as plt

        g = self.groups.head(top)
        rows = max(len(g), 1)
        if fig is None:
            fig = plt.figure(figsize=(1.05 * per_group, 1.25 * rows + 0.4))
        axes = fig.subplots(rows, per_group, squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        if not len(g):
            axes[0, 0].text(0, 0.5, "no suspicious groups found", fontsize=9)
        for r, (_, row) in enumerate(g.iterrows()):
            ex = np.asarray(row["examples"], np.int64)[:per_group]
            for c, img in enumerate(_read(self.dataset, ex)):
                axes[r, c].imshow(img, interpolation="nearest")
                axes[r, c].set_title(str(ex[c]), fontsize=6)
            extra = f" +{'+'.join(row['confirmed_by'])}" if row["confirmed_by"] else ""
            detail = row["detail"] if isinstance(row["detail"], dict) else {}
            if "property" in detail:  # say which properties, not just "property-outlier"
                extra += f" ({detail['property']})"
            axes[r, 0].text(0, 1.35, f"#{row['rank']} {row['kind']}{extra}  n={row['size']}  "
                            f"evidence={row['evidence']:.1f}", transform=axes[r, 0].transAxes,
                            fontsize=7, ha="left", va="bottom")
        return fig

    def figure(self, top: int = 6, per_group: int = 8) -> Figure:
        """The map with the top groups numbered (left) and their thumbnail cards (right).

        Parameters
        ----------
        top : int
            Groups shown.
        per_group : int
            Images per group.
        """
        import matplotlib.pyplot as plt

        rows = max(min(top, len(self.groups)), 1)
        fig = plt.figure(figsize=(5 + 1.05 * per_group, max(5.0, 1.25 * rows + 0.8)))
        left, right = fig.subfigures(1, 2, width_ratios=[5, 1.05 * per_group])  # type: ignore[misc]  # matplotlib's stubs type the 1x2 result as one SubFigure
        ax = left.subplots()
        if self.embedding is not None:
            emb = np.asarray(self.embedding)
            ax.scatter(emb[:, 0], emb[:, 1], s=2, c="0.75", linewidths=0, rasterized=True)
            shown = self.groups.head(top)
            palette = category_colors(max(len(shown), 1))
            for r, (_, row) in enumerate(shown.iterrows()):
                pts = emb[np.asarray(row["members"], np.int64)]
                ax.scatter(pts[:, 0], pts[:, 1], s=5, color=palette[r], linewidths=0)
                cx, cy = np.median(pts, axis=0)
                ax.annotate(f"#{row['rank']}", (cx, cy), fontsize=9, weight="bold", color=palette[r],
                            xytext=(6, 6), textcoords="offset points")
        ax.set_axis_off()
        ax.set_aspect("equal", adjustable="datalim")
        self.cards(top=top, per_group=per_group, fig=right)
        fig.suptitle(f"quality control of {self.dataset.title} (n={len(self.dataset)}): "
                     f"top {rows} suspicious groups", fontsize=10)
        return fig


def _fmt(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def _write_csv(df: pd.DataFrame, path: str | os.PathLike, overwrite: bool) -> Path:
    with atomic_open(path, "w", overwrite=overwrite) as fh:
        df.to_csv(fh, index=False)
    return Path(path)


def qc_report(
    dataset: ImageDataset,
    embedding: Any = None,
    features: Any = None,
    *,
    min_size: int = 5,
    n_neighbors: int = 10,
    near_duplicate_threshold: float | None = None,
    metric: str = "cosine",
    z_threshold: float = 5.0,
    max_overlap: float = 0.5,
    properties: pd.DataFrame | None = None,
    suggest: bool = True,
    min_evidence: float = 10.0,
    examples: int = 8,
    random_state: int | None = 0,
) -> QCReport:
    """Run every detector and rank the suspicious groups.

    Parameters
    ----------
    dataset : ImageDataset
        The images.
    embedding : array-like
        (N, 2) map of the dataset (t-SimCNE's ``embedding_``); None skips tight clusters.
    features : array-like
        (N, F) backbone features; None skips near-duplicates, feature clusters and the
        feature-space confirmation of tight clusters.
    min_size : int
        Smallest tight cluster or feature cluster.
    n_neighbors : int
        Neighbours per image in the feature graph (:func:`find_feature_clusters`, and the
        feature-space confirmation of tight clusters); the search runs once for both.
    near_duplicate_threshold, metric : float, optional
        See :func:`near_duplicate_groups`.
    z_threshold : float
        Robust z beyond which an image property is an outlier (see :func:`property_outliers`).
    max_overlap : float
        Groups of different detectors whose Jaccard index (shared images over images in
        either) exceeds this are merged into one (evidence added, ``confirmed_by``
        lists them).
    properties : pandas.DataFrame, optional
        Precomputed :func:`image_properties` (computed when None).
    suggest : bool
        Pre-fill :attr:`QCReport.tags` with :meth:`QCReport.suggest_tags`.
    min_evidence : float
        The smallest evidence of a group whose members are tagged by ``suggest``.
    examples : int
        Example members kept per group for the cards.
    random_state : int, optional
        Seed of the detectors' subsamples and of the example members.
    """
    dataset = as_dataset(dataset)
    n = len(dataset)
    emb = None if embedding is None else check_embedding(embedding, n, dim=2)
    feats = None if features is None else check_features(features, n)
    props = image_properties(dataset) if properties is None else properties
    if len(props) != n:
        raise DataError(f"properties has {len(props)} rows but the dataset has {n} images.")
    frames: dict[str, pd.DataFrame] = {"exact-duplicate": exact_duplicates(dataset)}
    if feats is not None:
        frames["near-duplicate"] = near_duplicate_groups(
            feats, threshold=near_duplicate_threshold, metric=metric, random_state=random_state)
    # one feature-neighbour search serves the tight clusters' confirmation and the feature clusters
    knn = None if feats is None else _feature_knn(feats, n_neighbors, _check_metric(metric))
    if emb is not None:
        frames["tight-cluster"] = find_tight_clusters(
            emb, feats, min_size=min_size, metric=metric, random_state=random_state, knn=knn)
    if feats is not None and n > max(min_size, n_neighbors):
        frames["feature-cluster"] = find_feature_clusters(
            feats, k=n_neighbors, min_size=min_size, metric=metric, random_state=random_state, knn=knn)
    frames["property-outlier"] = property_outliers(props, z_threshold=z_threshold, max_overlap=max_overlap)
    groups = _merge_groups(frames, max_overlap)
    rng = np.random.default_rng(random_state)
    groups["examples"] = [_examples(m, examples, rng) for m in groups["members"]]
    config = {"min_size": min_size, "n_neighbors": n_neighbors,
              "near_duplicate_threshold": near_duplicate_threshold,
              "metric": metric, "z_threshold": z_threshold, "max_overlap": max_overlap,
              "min_evidence": min_evidence, "random_state": random_state}
    report = QCReport(dataset=dataset, embedding=emb, groups=groups, properties=props, config=config)
    if suggest:
        report.suggest_tags(min_evidence=min_evidence)
    return report
