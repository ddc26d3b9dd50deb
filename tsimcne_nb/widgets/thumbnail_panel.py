"""The explorer's grid of selected images: an anywidget whose front-end is ``thumbnail_panel.js``."""

from __future__ import annotations

import pathlib

import anywidget
import traitlets


class ThumbnailPanel(anywidget.AnyWidget):
    """The grid of selected images (front-end in ``thumbnail_panel.js``).

    All state lives here in Python; the browser receives only the current page
    (``items``: dicts with ``index``, ``label``, ``tags`` and ``src``, a PNG data URI).
    """

    _esm = pathlib.Path(__file__).parent / "thumbnail_panel.js"

    items = traitlets.List(traitlets.Dict()).tag(sync=True)
    n_selected = traitlets.Int(0).tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    n_pages = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(100).tag(sync=True)
    mode = traitlets.Unicode("page").tag(sync=True)
    resample = traitlets.Int(0).tag(sync=True)
    focused = traitlets.Int(-1).tag(sync=True)
    thumbnail_size = traitlets.Int(56).tag(sync=True)
    height = traitlets.Int(500).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    #: shown before anything is selected: how to select (the real gesture)
    hint = traitlets.Unicode("").tag(sync=True)
    #: "index" (dataset order) or "distance" (nearest to the selection's centre first)
    order = traitlets.Unicode("index").tag(sync=True)

