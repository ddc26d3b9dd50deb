"""How the composite widgets show themselves: the live widget plus a static PNG fallback."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any


class StaticFallbackDisplay:
    """Mixin for objects with a ``widget`` (ipywidgets) and a ``static_png()`` method.

    Jupyter shows the live widget; nbconvert and static HTML, which keep no widget state,
    show the PNG that travels in the same output instead of nothing.
    """

    # What the mixin uses of its host, declared for the type checker only.
    if TYPE_CHECKING:

        @property
        def widget(self) -> Any: ...

        def static_png(self) -> bytes: ...

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        bundle = self.widget._repr_mimebundle_(include=include, exclude=exclude, **kwargs)
        data = dict((bundle[0] if isinstance(bundle, tuple) else bundle) or {})
        data["image/png"] = self.static_png()
        data.setdefault("text/plain", repr(self))
        return data

    def display(self) -> None:
        """Display the widget (same as leaving it as the last expression of a cell)."""
        from IPython.display import display

        display(self)
