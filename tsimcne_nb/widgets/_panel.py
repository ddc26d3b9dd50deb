"""What every side panel of the explorer shares: attaching to it, showing with it, a static form.

A panel (:class:`~tsimcne_nb.widgets.explain.SelectionExplainer`,
:class:`~tsimcne_nb.widgets.parametric.ParametricPanel`) observes an explorer and has an
ipywidget (``widget``) plus a static HTML form (``html()``) for nbconvert, which keeps no
widget state. Subclasses set ``explorer`` and ``_attached = False`` in ``__init__`` and name
their default title in ``TITLE``.
"""

from __future__ import annotations

from typing import Any

from tsimcne_nb.errors import ConfigError


class ExplorerPanel:
    """Base of the explorer's side panels (not used on its own)."""

    #: title shown above the panel by :meth:`attach`
    TITLE = ""
    explorer: Any
    _attached: bool

    @property
    def widget(self) -> Any:  # pragma: no cover - every panel defines it
        raise NotImplementedError

    def html(self) -> str:  # pragma: no cover - every panel defines it
        raise NotImplementedError

    def attach(self, title: str | None = None) -> Any:
        """Put this panel into the explorer's own layout (``Explorer.add_panel``), once.

        Parameters
        ----------
        title : str, optional
            Shown above the panel (default: the panel's ``TITLE``).

        Returns
        -------
        Explorer
            The explorer, to display it.

        Raises
        ------
        ConfigError
            If this explorer has no ``add_panel``; use :meth:`with_explorer` then.
        """
        add = getattr(self.explorer, "add_panel", None)
        if add is None:
            raise ConfigError(
                "this Explorer has no add_panel: display panel.with_explorer() instead."
            )
        if not self._attached:
            add(self.widget, title=self.TITLE if title is None else title)
            self._attached = True
        return self.explorer

    def with_explorer(self) -> Any:
        """The explorer (map and thumbnails) with this panel under it, as one widget.

        Works with any explorer; :meth:`attach` puts the panel inside the explorer's
        own layout instead, where the explorer has ``add_panel``.
        """
        import ipywidgets as w

        return w.VBox([self.explorer.widget, self.widget], layout=w.Layout(width="100%"))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        data = dict((bundle[0] if isinstance(bundle, tuple) else bundle) or {})
        data["text/html"] = self.html()  # nbconvert keeps no widget state
        data.setdefault("text/plain", repr(self))
        return data
