"""The explorer's tags: set, remove, show provenance, export, save and reload; its static PNG
and HTML page (a mixin).

Tag membership is ``_tags`` (name -> sorted point indices); who/when/why/origin of every
(point, tag) pair is ``_tag_info`` (name -> DataFrame indexed by point).  Both dicts are
shared by reference between the maps of a :class:`LinkedExplorer`.
"""

from __future__ import annotations

import io
import pathlib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_write_bytes, check_can_write
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.widgets._validate import _validate_indices

if TYPE_CHECKING:
    from tsimcne_nb.widgets.explorer import Explorer
from tsimcne_nb.widgets.colouring import UNTAGGED
from tsimcne_nb.widgets.review_store import (
    ORIGINS,
    current_user,
    now_utc,
    read_review,
    write_review,
)

_INFO = ["who", "when", "why", "origin"]


class TaggingMixin:
    """Tag methods of :class:`~tsimcne_nb.widgets.explorer.Explorer`."""

    _tags: dict[str, np.ndarray]
    _tag_info: dict[str, pd.DataFrame]
    _selected: np.ndarray
    user: str | None

    _metadata: pd.DataFrame

    # What the mixin uses of its host, declared for the type checker only.
    if TYPE_CHECKING:

        @property
        def n_points(self) -> int: ...

        def _on_tags_changed(self) -> None: ...

        def selection_frame(self, indices: Any = None) -> pd.DataFrame: ...

        def select(self, indices: Any) -> Explorer: ...

    def _check_tag_name(self, name: Any) -> str:
        if not isinstance(name, str) or not name.strip() or name == UNTAGGED or ";" in name:
            raise ConfigError(
                f"tag name must be a non-empty string without ';' and not {UNTAGGED!r}; got {name!r}."
            )
        return name.strip()

    def tag(
        self, indices: Any, name: Any = None, *, why: str = "", origin: str = "hand",
        who: str | None = None,
    ) -> np.ndarray:
        """Add the points ``indices`` to tag ``name`` (the QC report's order: ``tag(indices, name)``).

        Parameters
        ----------
        indices : array_like of int or bool, or None
            Positions in the map (or a boolean mask); None tags the current selection
            (as :meth:`tag_selection` does).
        name : str
            The tag.  A point can carry several tags.
        why : str
            Why (kept in :meth:`tag_frame` and the review file).
        origin : {"hand", "suggested"}
            A person's decision, or a detector's suggestion nobody has confirmed.
        who : str, optional
            Who tagged (default: the explorer's ``user``, else the login name).

        Returns
        -------
        numpy.ndarray
            All points now carrying the tag.

        Notes
        -----
        The old order ``tag(name, indices)`` is still accepted (a string first) and warns.
        """
        if isinstance(indices, str) and not isinstance(name, str):
            warnings.warn(
                "Explorer.tag(name, indices) is the old order; write tag(indices, name) as "
                "QCReport.tag does.",
                DeprecationWarning,
                stacklevel=2,
            )
            indices, name = name, indices
        name = self._check_tag_name(name)
        if origin not in ORIGINS:
            raise ConfigError(f"origin must be one of {ORIGINS}; got {origin!r}.")
        idx = self._selected if indices is None else _validate_indices(indices, self.n_points)
        if len(idx) == 0:
            raise DataError(
                f"nothing to tag as {name!r}: the selection is empty. Select points on the map "
                "(lasso: hold Shift and drag, or the lasso button) or pass indices."
            )
        self._tags[name] = np.union1d(self._tags.get(name, np.empty(0, np.int64)), idx)
        info = pd.DataFrame(
            {"who": who or self.user or current_user(), "when": now_utc(), "why": str(why),
             "origin": origin},
            index=pd.Index(idx, name="index"),
        )
        old = self._tag_info.get(name)
        if old is not None:
            info = pd.concat([old.drop(index=idx, errors="ignore"), info]).sort_index()
        self._tag_info[name] = info
        self._on_tags_changed()
        return self._tags[name].copy()

    def tag_selection(self, name: str, why: str = "") -> np.ndarray:
        """Tag the current selection as ``name`` (what a tag button or number key does)."""
        return self.tag(None, name, why=why)

    def untag(self, name: str, indices: Any = None) -> None:
        """Remove ``indices`` (default: all points) from tag ``name``."""
        if name not in self._tags:
            raise ConfigError(f"no tag named {name!r}; existing tags: {list(self._tags)}.")
        if indices is None:
            keep = np.empty(0, np.int64)
        else:
            keep = np.setdiff1d(self._tags[name], _validate_indices(indices, self.n_points))
        if len(keep):
            self._tags[name] = keep
            self._tag_info[name] = self._tag_info[name].loc[keep]
        else:
            del self._tags[name]
            self._tag_info.pop(name, None)
        self._on_tags_changed()

    @property
    def tags(self) -> dict[str, np.ndarray]:
        """Tag name -> sorted point indices (a copy)."""
        return {k: v.copy() for k, v in self._tags.items()}

    def tag_frame(self) -> pd.DataFrame:
        """One row per (point, tag): ``index``, ``name``, ``who``, ``when``, ``why``, ``origin``."""
        parts = [
            info.reset_index().assign(name=name) for name, info in self._tag_info.items() if len(info)
        ]
        if not parts:
            return pd.DataFrame(columns=["index", "name", *_INFO])
        return pd.concat(parts, ignore_index=True).loc[:, ["index", "name", *_INFO]]

    def _tags_of(self, idx: np.ndarray) -> list[str]:
        if not self._tags:
            return [""] * len(idx)
        member = {name: np.isin(idx, t) for name, t in self._tags.items()}
        return [";".join(name for name in self._tags if member[name][j]) for j in range(len(idx))]

    # ------------------------------------------------------------ files
    def export(
        self, path: str | pathlib.Path, what: str = "tags", overwrite: bool = False
    ) -> pathlib.Path:
        """Write the tagged points or the selection to CSV or parquet (by suffix), atomically.

        ``what="tags"``: every tagged point with its ``tags`` and one boolean column
        ``tag:NAME`` per tag.  ``what="selection"``: :meth:`selection_frame`.
        Refuses to replace an existing file unless ``overwrite=True``.
        """
        path = pathlib.Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".parquet", ".pq"):
            raise ConfigError(f"cannot export to {path.name!r}: use a .csv or .parquet file name.")
        if what == "selection":
            if not len(self._selected):
                raise DataError("the selection is empty: select points before exporting it.")
            frame = self.selection_frame()
        elif what == "tags":
            if not self._tags:
                raise DataError(
                    "there are no tags to export: tag points first (explorer.tag(indices, name))."
                )
            idx = np.unique(np.concatenate(list(self._tags.values())))
            frame = self.selection_frame(idx)
            for name, t in self._tags.items():
                frame[f"tag:{name}"] = np.isin(idx, t)
        else:
            raise ConfigError(f"what must be 'tags' or 'selection'; got {what!r}.")
        check_can_write(path, overwrite)
        buf = io.BytesIO()
        if suffix == ".csv":
            buf.write(frame.to_csv(index=False).encode("utf-8"))
        else:
            frame.to_parquet(buf, index=False)
        return atomic_write_bytes(path, buf.getvalue(), overwrite=overwrite)

    def review_frame(self) -> pd.DataFrame:
        """The tags (with provenance) and the current selection as one table (see :meth:`save_review`)."""
        tags = self.tag_frame().assign(kind="tag")
        sel = pd.DataFrame(
            {"index": self._selected, "name": "selection", "who": self.user or current_user(),
             "when": now_utc(), "why": "", "origin": "hand", "kind": "selection"}
        )
        frame = pd.concat([tags, sel], ignore_index=True) if len(sel) else tags
        idx = frame["index"].to_numpy(np.int64)
        src = self._metadata["source_index"].to_numpy()
        frame["source_index"] = src[idx] if len(idx) else np.empty(0, np.int64)
        frame["n_points"] = self.n_points
        frame["index"] = idx
        return frame

    def save_review(self, path: str | pathlib.Path, overwrite: bool = False) -> pathlib.Path:
        """Save the tags (who/when/why/origin) and the selection to a parquet file.

        Keep it next to the data (e.g. ``bloodmnist.review.parquet``); reload it with
        :meth:`load_review` into a new explorer, or into a :class:`QCReview`.  Refuses to
        replace an existing file unless ``overwrite=True``.
        """
        return write_review(self.review_frame(), path, overwrite=overwrite)

    def load_review(self, path: str | pathlib.Path, select: bool = True) -> pd.DataFrame:
        """Load a file written by :meth:`save_review`: its tags are added (with their
        provenance) and, with ``select=True``, its selection becomes the selection.

        Returns the file's rows.
        """
        frame = read_review(path, n_points=self.n_points)
        tags = frame[frame["kind"] == "tag"]
        for name, rows in tags.groupby("name", sort=False):
            name = self._check_tag_name(name)
            idx = rows["index"].to_numpy(np.int64)
            self._tags[name] = np.union1d(self._tags.get(name, np.empty(0, np.int64)), idx)
            info = rows.set_index(pd.Index(idx, name="index"))[_INFO].astype(object)
            old = self._tag_info.get(name)
            if old is not None:
                info = pd.concat([old.drop(index=idx, errors="ignore"), info])
            self._tag_info[name] = info.sort_index()
        self._on_tags_changed()
        sel = frame.loc[frame["kind"] == "selection", "index"].to_numpy(np.int64)
        if select and len(sel):
            self.select(sel)
        return frame

    # ------------------------------------------------------------ static output
    def static_png(self, size: int = 480) -> bytes:
        """PNG of the map as shown: colouring, legend, selection and a strip of its thumbnails.

        Parameters
        ----------
        size : int
            Width and height of the map in pixels.
        """
        from tsimcne_nb.widgets.static_page import explorer_png

        return explorer_png(self, size)

    def save_html(self, path: str | pathlib.Path, overwrite: bool = False) -> pathlib.Path:
        """Write a self-contained HTML page of the current view (no scripts, no network).

        It shows the map in the live palette with the selection, the legend, the tags
        and the selected thumbnails.  Refuses to replace a file unless ``overwrite``.

        Parameters
        ----------
        path : str or pathlib.Path
            The HTML file to write.
        overwrite : bool
            Replace an existing file.
        """
        from tsimcne_nb.widgets.static_page import save_html

        return save_html(self, path, overwrite=overwrite)
