"""Review a QC report group by group in the explorer: its thumbnails, its place on the map, a tag.

:class:`QCReview` composes an :class:`~tsimcne_nb.widgets.explorer.Explorer` with a group
picker and three tag buttons (plain ipywidgets: no JavaScript of its own).  Picking a group
selects its members on the map, so the explorer's thumbnail panel shows them as cards with
their current tags; a button tags the whole group in the report *and* in the explorer, so
that :meth:`QCReport.exclusion_list` and ``explorer.export()`` agree.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.qc.report import TAGS, QCReport
from tsimcne_nb.widgets._display import StaticFallbackDisplay

#: reason recorded in the report for tags set in the review
REVIEW_REASON = "review"


class QCReview(StaticFallbackDisplay):
    """Step through the ranked groups of a :class:`~tsimcne_nb.qc.QCReport`.

    Parameters
    ----------
    report : QCReport
        The report; it must carry the 2-D map (``qc_report(dataset, embedding, ...)``).
    explorer : Explorer or None
        An existing :class:`Explorer` of the same map to drive; None makes one coloured by
        label, with the report's suggested tags already pushed into it.
    top : int
        Groups offered in the picker (best first).
    color_by : str or array-like
        For a new explorer: ``"tags"`` (default: the map coloured by suggested tag), an
        image property of the report (``"near_black"``, ``"sharpness"``, ... : a colour
        layer) or anything :class:`Explorer` takes (``"label"``, a metadata column, an
        array).
    **explorer_options : object
        Passed to the new :class:`Explorer` (``height``, ``title``, ...).

    Examples
    --------
    >>> review = QCReview(report)          # doctest: +SKIP
    >>> review                             # pick a group, look, tag it   # doctest: +SKIP
    >>> review.tag_group("duplicate", rank=1)                              # doctest: +SKIP
    >>> report.export_exclusion_list("exclude.csv")                        # doctest: +SKIP
    """

    def __init__(
        self, report: Any, explorer: Any = None, top: int = 20, color_by: Any = "tags", **explorer_options: Any
    ) -> None:
        self.report = report
        self.explorer = explorer
        self.top = top
        self.color_by = color_by
        if not isinstance(report, QCReport):
            raise ConfigError(f"report must be a QCReport (from tsimcne_nb.qc.qc_report); got {type(report).__name__}.")
        if report.embedding is None:
            raise ConfigError(
                "this report has no 2-D map to show; make it with qc_report(dataset, embedding, features)."
            )
        if not isinstance(top, (int, np.integer)) or top < 1:
            raise ConfigError(f"top must be a positive integer; got {top!r}.")
        if explorer is None:
            from tsimcne_nb.widgets.explorer import Explorer

            explorer_options.setdefault("title", "QC review")
            colour = "label" if isinstance(color_by, str) and color_by in ("tags", "tag") else color_by
            if isinstance(color_by, str) and color_by in report.properties.columns:
                colour = "label"
            explorer = Explorer(report.embedding, report.dataset, color_by=colour, **explorer_options)
            # every image property is a colour layer, searchable too (`blur > 2`)
            for col in report.properties.columns:
                if col not in explorer.color_options and col != "values":
                    explorer.add_column(str(col), report.properties[col].to_numpy())
            if isinstance(color_by, str) and color_by in report.properties.columns:
                explorer.color_by = color_by
            self._push_tags(report, explorer)
            if isinstance(color_by, str) and color_by in ("tags", "tag"):
                explorer.show_tags()
            self.explorer = explorer
        elif explorer.n_points < len(report.dataset):
            raise ConfigError(
                f"the explorer shows {explorer.n_points} points but the report covers "
                f"{len(report.dataset)} images; pass an explorer of the same map."
            )
        self._groups = report.groups.head(int(top)).reset_index(drop=True)
        self._rank: int | None = None
        self._widget: Any = None
        self._picker: Any = None
        self._status: Any = None
        if len(self._groups):
            self.show_group(int(self._groups.loc[0, "rank"]))

    @classmethod
    def from_folder(
        cls, folder: str | os.PathLike, dataset: Any, experiment: str = "none", **options: Any
    ) -> QCReview:
        """Review what ``tsimcne-nb qc`` wrote to ``folder`` (its groups, map, properties and
        suggested tags), with the images of ``dataset``.

        Parameters
        ----------
        folder : str or os.PathLike
            The command's output folder (``report.csv``, ``exclusion_list.csv``,
            ``properties.parquet``); for several maps, one map's subfolder.
        dataset : ImageDataset
            The images that were checked (the folder holds no images).
        experiment : str
            With ``--inject``, which experiment to open (``duplicates``, ``artefacts``);
            the images must then be that injected copy.
        **options
            Passed to :class:`QCReview` (``top``, ``color_by``, ``height``, ...).
        """
        from tsimcne_nb.widgets._qc_folder import report_from_folder

        return cls(report_from_folder(folder, dataset, experiment), **options)

    @staticmethod
    def _push_tags(report: QCReport, explorer: Any) -> None:
        """The report's tags into the explorer: suggestions marked as such, decisions as hand-set."""
        tags = report.tags["tag"].to_numpy()
        reasons = report.tags["reason"].to_numpy()
        for name in ("duplicate", "artefact"):
            idx = np.flatnonzero(tags == name)
            if not idx.size:  # an explorer refuses to tag nothing
                continue
            manual = report._manual(idx)
            for mask, origin in ((~manual, "suggested"), (manual, "hand")):
                for why in sorted(set(reasons[idx[mask]])):
                    sub = idx[mask][reasons[idx[mask]] == why]
                    explorer.tag(sub, name, why=str(why), origin=origin)

    def save_review(self, path: str | os.PathLike, overwrite: bool = False) -> Any:
        """Save the tags (who/when/why, hand-set or suggested) and selection to parquet
        (:meth:`Explorer.save_review`); reload with :meth:`load_review`.

        Parameters
        ----------
        path : str or os.PathLike
            The parquet file to write.
        overwrite : bool
            Replace an existing file.
        """
        return self.explorer.save_review(path, overwrite=overwrite)

    def load_review(self, path: str | os.PathLike) -> Any:
        """Load a review file: its duplicate/artefact/keep tags go into the report (hand-set
        ones as decisions that suggestions never overwrite) and into the explorer.

        Parameters
        ----------
        path : str or os.PathLike
            A review file written by :meth:`save_review` or :meth:`Explorer.save_review`.
        """
        frame = self.explorer.load_review(path, select=False)
        rows = frame[(frame["kind"] == "tag") & frame["name"].isin(TAGS)]
        for (name, origin, why), part in rows.groupby(["name", "origin", "why"], sort=False):
            idx = part["index"].to_numpy(np.int64)
            idx = idx[idx < len(self.report.tags)]
            if origin == "hand":
                self.report.tag(idx, name, reason=str(why) or REVIEW_REASON)
            else:  # a suggestion stays one: the report keeps the detector's reason
                self.report.tags.loc[idx, ["tag", "reason"]] = [name, str(why)]
            for other in TAGS:  # one QC tag per image, as in the report
                if other != name and other in self.explorer.tags:
                    self.explorer.untag(other, idx)
        self._update_status()
        return frame

    # ------------------------------------------------------------ actions
    def _group(self, rank: int | None) -> Any:
        rank = self._rank if rank is None else rank
        hit = self._groups[self._groups["rank"] == rank]
        if rank is None or not len(hit):
            ranks = list(self._groups["rank"])
            raise ConfigError(f"no group of rank {rank!r} among the reviewed groups (ranks {ranks[:1]}..{ranks[-1:]}).")
        return hit.iloc[0]

    def show_group(self, rank: int) -> QCReview:
        """Select the members of group ``rank`` on the map; the panel shows their thumbnails.

        Parameters
        ----------
        rank : int
            The group's rank in the picker (0 is the best).
        """
        g = self._group(rank)
        self._rank = int(g["rank"])
        self.explorer.select(np.asarray(g["members"], np.int64))
        if self._picker is not None and self._picker.value != self._rank:
            self._picker.value = self._rank
        self._update_status()
        return self

    @property
    def current(self) -> int | None:
        """Rank of the group on show (None when the report has no groups)."""
        return self._rank

    def tag_group(self, tag: str, rank: int | None = None) -> np.ndarray:
        """Tag every member of group ``rank`` (default: the one on show) as ``tag``.

        ``tag`` is 'duplicate', 'artefact' or 'keep'.  The report's tag (reason
        ``'review'``; never overwritten by later suggestions) and the explorer's tags are
        both updated; a member leaves the other two tags in the explorer.  Returns the
        members.

        Parameters
        ----------
        tag : {'duplicate', 'artefact', 'keep'}
            The tag.
        rank : int or None
            The group's rank; default the group on show.
        """
        if tag not in TAGS:
            raise ConfigError(f"unknown tag {tag!r}; use one of {', '.join(TAGS)}.")
        g = self._group(rank)
        members = np.asarray(g["members"], np.int64)
        self.report.tag(members, tag, reason=REVIEW_REASON)
        for other in TAGS:
            if other != tag and other in self.explorer.tags:
                self.explorer.untag(other, members)
        self.explorer.tag(members, tag, why=f"{REVIEW_REASON}: group #{g['rank']} {g['kind']}")
        self._update_status()
        return members

    # ------------------------------------------------------------ display
    def _describe(self, g: Any) -> str:
        detail = g["detail"] if isinstance(g["detail"], dict) else {}
        what = detail.get("property", "")
        conf = ", ".join(g["confirmed_by"]) if len(g["confirmed_by"]) else ""
        members = np.asarray(g["members"], np.int64)
        tags = self.report.tags["tag"].to_numpy()[members]
        # only tags someone (or a detector) set: an untouched image is "keep" by default,
        # and counting those would report decisions nobody made
        reasons = self.report.tags["reason"].to_numpy()[members]
        manual = self.report._manual(members)
        set_ = np.array([bool(r) for r in reasons], dtype=bool)

        def tally(mask: np.ndarray) -> str:
            return ", ".join(f"{t} {int((tags[mask] == t).sum())}" for t in TAGS if (tags[mask] == t).any())

        parts = [f"#{g['rank']} {g['kind']}" + (f" ({what})" if what else ""), f"{g['size']} images",
                 f"evidence {g['evidence']:.1f}"]
        if conf:
            parts.append(f"also found by {conf}")
        by_hand, suggested = tally(manual), tally(set_ & ~manual)
        if by_hand:
            parts.append(f"tagged: {by_hand}")
        if suggested:
            parts.append(f"suggested: {suggested}")
        if not by_hand and not suggested:
            parts.append("not tagged yet")
        return " · ".join(parts)

    def _update_status(self) -> None:
        if self._status is not None and self._rank is not None:
            self._status.value = self._describe(self._group(self._rank))

    @property
    def widget(self) -> Any:
        """Picker, tag buttons and status line above the explorer."""
        if self._widget is None:
            import ipywidgets as w

            options = [(f"#{r['rank']} {r['kind']} ({r['size']} images, evidence {r['evidence']:.1f})",
                        int(r["rank"])) for _, r in self._groups.iterrows()]
            self._picker = w.Dropdown(options=options or [("no suspicious groups", -1)],
                                      value=self._rank if self._rank is not None else -1,
                                      description="group", layout=w.Layout(width="440px"))
            self._picker.observe(self._on_pick, names="value")
            buttons = []
            for tag in TAGS:
                b = w.Button(description=f"tag group: {tag}", tooltip=f"tag every image of this group '{tag}'",
                             disabled=not len(self._groups))
                b.on_click(lambda _b, t=tag: self.tag_group(t))
                buttons.append(b)
            self._status = w.HTML()
            self._update_status()
            self._widget = w.VBox([w.HBox([self._picker, *buttons]), self._status, self.explorer.widget])
        return self._widget

    def _on_pick(self, change: dict) -> None:
        if change["new"] in set(self._groups["rank"]):
            self.show_group(int(change["new"]))

    def static_png(self, size: int = 480) -> bytes:
        """The explorer's static map (the fallback where widgets do not render).

        Parameters
        ----------
        size : int
            Width and height of the map in pixels.
        """
        return self.explorer.static_png(size)

    def __repr__(self) -> str:
        return f"QCReview(groups={len(self._groups)}, current={self._rank}, explorer={self.explorer!r})"
