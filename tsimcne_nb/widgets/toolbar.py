"""The explorer's toolbar and legend: act on the map without typing Python.

An anywidget (front-end in ``toolbar.js``).  The browser only reports what the user did
(``model.send`` messages: a tag button or number key, a legend click, a search, export,
zoom, clear); the :class:`~tsimcne_nb.widgets.explorer.Explorer` does it in Python and
sends the new state back through the traitlets below.

Keyboard (while the pointer is over the explorer, or focus is inside it, and no text
field has focus): ``1``-``9`` tag the selection with the first nine tags, ``Escape``
clears the selection, ``z`` zooms to it.
"""

from __future__ import annotations

import pathlib

import anywidget
import traitlets


class ExplorerToolbar(anywidget.AnyWidget):
    """Tag buttons, new-tag field, colour-by menu, search, export, zoom, clear, full screen,
    and the clickable legend of the current colouring.

    All state is owned by Python; see the module docstring for the messages it sends.
    """

    _esm = pathlib.Path(__file__).parent / "toolbar.js"

    #: tag names, in button order (keys 1-9 press the first nine)
    tags = traitlets.List(traitlets.Unicode()).tag(sync=True)
    #: tag name -> "#rrggbb" (the colours of the tag layer)
    tag_colors = traitlets.Dict().tag(sync=True)
    #: what the map can be coloured by, and what it is coloured by now
    color_options = traitlets.List(traitlets.Unicode()).tag(sync=True)
    color_by = traitlets.Unicode("label").tag(sync=True)
    #: legend entries ``{"name", "color", "count"}`` (categorical layers) and its title
    legend = traitlets.List(traitlets.Dict()).tag(sync=True)
    legend_title = traitlets.Unicode("").tag(sync=True)
    #: ``{"min", "max", "stops"}`` of a numeric layer, else empty
    colorbar = traitlets.Dict().tag(sync=True)
    #: the last search and its outcome
    query = traitlets.Unicode("").tag(sync=True)
    query_error = traitlets.Unicode("").tag(sync=True)
    n_matches = traitlets.Int(-1).tag(sync=True)
    n_selected = traitlets.Int(0).tag(sync=True)
    #: export target typed by the user (``.csv`` or ``.parquet``)
    export_path = traitlets.Unicode("tags.csv").tag(sync=True)
    #: one line of feedback (what was tagged, written, or what went wrong)
    status = traitlets.Unicode("").tag(sync=True)
    status_error = traitlets.Bool(False).tag(sync=True)
