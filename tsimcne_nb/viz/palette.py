"""The one categorical palette of tsimcne-nb.

Figures (matplotlib), the static PNG of a map and the live explorer (jupyter-scatter) all
colour category ``i`` of ``n`` with ``category_colors(n)[i]``, so a class has the same colour
in every picture. Up to 8 categories: the Okabe-Ito colours (colour-blind safe, and the ones
jupyter-scatter picks by default); 9 or 10: matplotlib's tab10; up to 20: tab20 (its light/dark
pairs are hard to tell apart, so it is used only where ten colours do not suffice); beyond that,
hues spread by the golden ratio so neighbouring indices stay far apart.

This module imports only numpy at import time (matplotlib lazily), so widgets can use it.
"""

from __future__ import annotations

__all__ = [
    "MISSING_COLOR",
    "NUMERIC_CMAP",
    "OKABE_ITO",
    "OTHER_COLOR",
    "UNTAGGED_COLOR",
    "category_colors",
    "category_hex",
    "to_hex",
]

#: The Okabe-Ito palette, in jupyter-scatter's order.
OKABE_ITO = ("#56B4E9", "#E69F00", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000")
#: Colour of the "other" group (rare classes folded together in a figure legend).
OTHER_COLOR = "#000000"
#: Colour of points without a tag when a map is coloured by tag.
UNTAGGED_COLOR = "#d0d0d0"
#: Colour of points without a value (NaN, missing category).
MISSING_COLOR = "#808080"
#: Colour map of numeric values (scores, image properties).
NUMERIC_CMAP = "viridis"

RGB = tuple[float, float, float]


def _hex_to_rgb(h: str) -> RGB:
    return (int(h[1:3], 16) / 255, int(h[3:5], 16) / 255, int(h[5:7], 16) / 255)


def to_hex(rgb: tuple[float, ...]) -> str:
    """``#rrggbb`` of an RGB(A) tuple with components in [0, 1] (alpha is dropped).

    Parameters
    ----------
    rgb : tuple of float
        RGB or RGBA components in [0, 1].
    """
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * float(v)) for v in rgb[:3]))


def category_colors(n: int) -> list[RGB]:
    """RGB colours (components in [0, 1]) of categories ``0 .. n-1``.

    Parameters
    ----------
    n : int
        Number of categories (0 gives an empty list).

    Returns
    -------
    list of tuple of float
        ``n`` distinct colours; the first ``min(n, 8)`` are the Okabe-Ito colours when
        ``n <= 8``.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"the number of categories must be >= 0; got {n}.")
    if n <= len(OKABE_ITO):
        return [_hex_to_rgb(h) for h in OKABE_ITO[:n]]
    if n <= 20:
        from matplotlib import colormaps

        cmap = colormaps["tab10" if n <= 10 else "tab20"]
        return [tuple(float(v) for v in cmap(i)[:3]) for i in range(n)]  # type: ignore[misc]
    import colorsys

    golden = 0.618033988749895
    out: list[RGB] = []
    for i in range(n):
        lightness = (0.45, 0.6, 0.35)[i % 3]
        out.append(colorsys.hls_to_rgb((i * golden) % 1.0, lightness, 0.75))
    return out


def category_hex(n: int) -> list[str]:
    """``category_colors(n)`` as ``#rrggbb`` strings (what jupyter-scatter takes).

    Parameters
    ----------
    n : int
        Number of categories.
    """
    return [to_hex(c) for c in category_colors(n)]
