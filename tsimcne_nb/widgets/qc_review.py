"""Review a QC report group by group in the explorer: its thumbnails, its place on the map, a tag.

:class:`QCReview` composes an :class:`~tsimcne_nb.widgets.explorer.Explorer` with a group
picker and three tag buttons (plain ipywidgets: no JavaScript of its own).  Picking a group
selects its members on the map, so the explorer's thumbnail panel shows them as cards with
their current tags; a button tags the whole group in the report *and* in the explorer, so
that :meth:`QCReport.exclusion_list` and ``explorer.export()`` agree.
"""

from __future__ import annotations

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
    report
        The report; it must carry the 2-D map (``qc_report(dataset, embedding, ...)``).
    explorer
        An existing :class:`Explorer` of the same map to drive; None makes one coloured by
        label, with the report's suggested tags already pushed into it.
    top
        Groups offered in the picker (best first).
    color_by
        For a new explorer: ``"tags"`` (default: the map coloured by suggested tag), an
        image property of the report (``"near_black"``, ``"sharpness"``, ... : a colour
        layer) or anything :class:`Explorer` takes (``"label"``, a metadata column, an
        array).
    **explorer_options
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
            colour = color_by
            if isinstance(color_by, str) and color_by in report.properties.columns:
                colour = report.properties[color_by].to_numpy()  # an image property as colour layer
            elif isinstance(color_by, str) and color_by == "tags":
                colour = "label"
            explorer = Explorer(report.embedding, report.dataset, color_by=colour, **explorer_options)
            report.to_explorer_tags(explorer)
            if isinstance(color_by, str) and color_by == "tags":
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

    # ------------------------------------------------------------ actions
    def _group(self, rank: int | None) -> Any:
        rank = self._rank if rank is None else rank
        hit = self._groups[self._groups["rank"] == rank]
        if rank is None or not len(hit):
            ranks = list(self._groups["rank"])
            raise ConfigError(f"no group of rank {rank!r} among the reviewed groups (ranks {ranks[:1]}..{ranks[-1:]}).")
        return hit.iloc[0]

    def show_group(self, rank: int) -> QCReview:
        """Select the members of group ``rank`` on the map; the panel shows their thumbnails."""
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
        """
        if tag not in TAGS:
            raise ConfigError(f"unknown tag {tag!r}; use one of {', '.join(TAGS)}.")
        g = self._group(rank)
        members = np.asarray(g["members"], np.int64)
        self.report.tag(members, tag, reason=REVIEW_REASON)
        for other in TAGS:
            if other != tag and other in self.explorer.tags:
                self.explorer.untag(other, members)
        self.explorer.tag(tag, members)
        self._update_status()
        return members

    # ------------------------------------------------------------ display
    def _describe(self, g: Any) -> str:
        detail = g["detail"] if isinstance(g["detail"], dict) else {}
        what = detail.get("property", "")
        conf = ", ".join(g["confirmed_by"]) if len(g["confirmed_by"]) else ""
        counts = self.report.tags["tag"].to_numpy()[np.asarray(g["members"], np.int64)]
        tally = ", ".join(f"{t} {int((counts == t).sum())}" for t in TAGS if (counts == t).any())
        parts = [f"#{g['rank']} {g['kind']}" + (f" ({what})" if what else ""), f"{g['size']} images",
                 f"evidence {g['evidence']:.1f}"]
        if conf:
            parts.append(f"also found by {conf}")
        parts.append(f"tags now: {tally}")
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
        """The explorer's static map (the fallback where widgets do not render)."""
        return self.explorer.static_png(size)

    def __repr__(self) -> str:
        return f"QCReview(groups={len(self._groups)}, current={self._rank}, explorer={self.explorer!r})"
