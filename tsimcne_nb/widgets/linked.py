"""Several maps of the same images side by side, with one selection, hover and tag set."""

from __future__ import annotations

import io
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError
from tsimcne_nb.widgets._display import StaticFallbackDisplay
from tsimcne_nb.widgets.explorer import Explorer
from tsimcne_nb.widgets.thumbnail_panel import ThumbnailPanel


class LinkedExplorer(StaticFallbackDisplay):
    """Several maps of the same images side by side, with synced selection and hover.

    Parameters
    ----------
    embeddings : sequence of array-like
        A list of ``(N, 2)`` embeddings of the same ``N`` images (e.g. t-SimCNE and
        t-SNE of pixels).
    dataset : ImageDataset or numpy.ndarray
        The images, as for :class:`Explorer`.
    titles : sequence of str or None
        One title per map.
    **kwargs : object
        Passed to each :class:`Explorer` (``color_by``, ``height``, ...).
    """

    def __init__(
        self,
        embeddings: Sequence[Any],
        dataset: ImageDataset | np.ndarray,
        titles: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        self.embeddings = embeddings
        self.dataset = dataset
        self.titles = titles
        self.kwargs = kwargs
        if len(embeddings) < 2:
            raise ConfigError(
                f"LinkedExplorer needs at least two embeddings; got {len(embeddings)}."
            )
        if titles is not None and len(titles) != len(embeddings):
            raise ConfigError(
                f"got {len(titles)} titles for {len(embeddings)} embeddings; pass one title per map."
            )
        if "show_panel" in kwargs or "thumbnail_cache" in kwargs:
            raise ConfigError("show_panel/thumbnail_cache are set by LinkedExplorer itself.")
        first = Explorer(embeddings[0], dataset, title=titles[0] if titles else "", **kwargs)
        self.explorers = [first]
        for i, emb in enumerate(embeddings[1:], start=1):
            ex = Explorer(
                emb,
                first._dataset,
                title=titles[i] if titles else "",
                thumbnail_cache=first.cache,
                show_panel=False,
                **kwargs,
            )
            # one tag set (and its provenance) for all maps of the same images
            ex._tags = first._tags
            ex._tag_info = first._tag_info
            first._tag_listeners.append(ex._refresh_tags)
            self.explorers.append(ex)
        import jscatter

        # jupyter-scatter's own linking: selection and hover follow across the maps
        self._grid = jscatter.compose(
            [(ex.scatter, ex.title or "&nbsp;") for ex in self.explorers],
            sync_selection=True,
            sync_hover=True,
            row_height=int(kwargs.get("height", 500)) + 30,
        )
        self._widget: Any = None

    @property
    def selected(self) -> np.ndarray:
        """The shared selection (indices, sorted)."""
        return self.explorers[0].selected

    def select(self, indices: Any) -> LinkedExplorer:
        """Select ``indices`` on every map.

        Parameters
        ----------
        indices : array-like of int or bool, or None
            As for :meth:`Explorer.select`.
        """
        self.explorers[0].select(indices)
        return self

    def selection_frame(self) -> pd.DataFrame:
        """As :meth:`Explorer.selection_frame`, plus ``x{i}``/``y{i}`` of every map."""
        frame = self.explorers[0].selection_frame()
        for i, ex in enumerate(self.explorers):
            frame[f"x{i}"] = ex._xy[frame["index"].to_numpy(), 0]
            frame[f"y{i}"] = ex._xy[frame["index"].to_numpy(), 1]
        return frame

    def tag(self, indices: Any, name: Any = None, **kwargs: Any) -> np.ndarray:
        """Tag points on every map (as :meth:`Explorer.tag`; one tag set for all maps).

        Parameters
        ----------
        indices : array-like of int or bool
            Points to tag, as for :meth:`Explorer.tag`.
        name : str
            The tag.
        """
        return self.explorers[0].tag(indices, name, **kwargs)

    def tag_selection(self, name: str, why: str = "") -> np.ndarray:
        """Tag the current selection (as :meth:`Explorer.tag_selection`).

        Parameters
        ----------
        name : str
            The tag.
        why : str
            Free-text reason stored with the tag.
        """
        return self.explorers[0].tag_selection(name, why=why)

    def show_tags(self) -> LinkedExplorer:
        """Colour every map by tag."""
        for ex in self.explorers:
            ex.show_tags()
        return self

    def export(self, path: str | pathlib.Path, what: str = "tags", overwrite: bool = False):
        """Write the tags or the selection (as :meth:`Explorer.export`).

        Parameters
        ----------
        path : str or pathlib.Path
            A ``.csv`` or ``.parquet`` file.
        what : {'tags', 'selection'}
            What to write.
        overwrite : bool
            Replace an existing file.
        """
        return self.explorers[0].export(path, what=what, overwrite=overwrite)

    @property
    def panel(self) -> ThumbnailPanel:
        """The shared thumbnail panel."""
        return self.explorers[0].panel

    @property
    def widget(self):
        """Toolbar, the maps side by side (each with its title), and the shared thumbnail panel."""
        if self._widget is None:
            import ipywidgets as w

            self.panel.layout.width = "100%"
            first = self.explorers[0]
            self._widget = w.VBox([first.toolbar, self._grid, self.panel, *first._extra_panels])
            self._widget.add_class("tsimcne-explorer")
        return self._widget

    def static_png(self, size: int = 360) -> bytes:
        from PIL import Image

        pngs = [Image.open(io.BytesIO(ex.static_png(size))) for ex in self.explorers]
        out = Image.new("RGB", (sum(p.width for p in pngs), max(p.height for p in pngs)), "white")
        x = 0
        for p in pngs:
            out.paste(p, (x, 0))
            x += p.width
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()

    def __repr__(self) -> str:
        return f"LinkedExplorer(maps={len(self.explorers)}, selected={len(self.selected)})"
