"""What the explorer colours its map by, and with which colours (the one palette).

A colour layer is a column of values, one per point: class labels, tags, a metadata or
score column.  Categories get a fixed order (the dataset's class order first, the rest
sorted, the explorer's own categories ``new`` and ``untagged`` last) and an explicit
colour from :mod:`tsimcne_nb.viz.palette`, and the same ``{category: colour}`` map goes to
the live map (jupyter-scatter) and to the static PNG, so the two never disagree and adding
points or tags never changes the colour of an existing class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsimcne_nb.viz.palette import MISSING_COLOR, NUMERIC_CMAP, UNTAGGED_COLOR, category_hex

#: category of points added with :meth:`Explorer.add_points`
NEW_CATEGORY = "new"
#: category of points without a tag, in the tag layer
UNTAGGED = "untagged"
#: category of a missing value
MISSING = "(missing)"
#: colour of added points: magenta is in neither Okabe-Ito nor tab20, so "new" never
#: looks like a class
NEW_COLOR = "#ff00ff"
#: numeric columns with more distinct values than this are drawn on a continuous scale
MAX_CATEGORIES = 12

_SPECIAL = {NEW_CATEGORY: NEW_COLOR, UNTAGGED: UNTAGGED_COLOR, MISSING: MISSING_COLOR}


@dataclass
class ColorLayer:
    """One colour layer: values ready for jupyter-scatter and the colours to draw them in.

    Attributes
    ----------
    name : str
        What the map is coloured by (the legend's title).
    values : pandas.Series
        Categorical (fixed category order) or float Series, one value per point.
    colors : dict of str to str
        ``{category: "#rrggbb"}`` in category order (empty for numeric layers).
    norm : tuple of (float, float) or None
        ``(min, max)`` of a numeric layer.
    """

    name: str
    values: pd.Series
    colors: dict[str, str] = field(default_factory=dict)
    norm: tuple[float, float] | None = None

    @property
    def categorical(self) -> bool:
        """True for a categorical layer (a legend of swatches), False for a numeric one."""
        return isinstance(self.values.dtype, pd.CategoricalDtype)

    def legend(self) -> list[dict]:
        """Legend entries: ``name``, ``color`` and ``count`` per category present."""
        if not self.categorical:
            return []
        counts = self.values.value_counts(sort=False)
        return [
            {"name": c, "color": col, "count": int(counts.get(c, 0))}
            for c, col in self.colors.items()
            if counts.get(c, 0) > 0
        ]

    def colorbar(self) -> dict:
        """``{"min", "max", "stops"}`` of a numeric layer (stops: 5 hex colours)."""
        if self.categorical or self.norm is None:
            return {}
        from matplotlib import colormaps

        from tsimcne_nb.viz.palette import to_hex

        cmap = colormaps[NUMERIC_CMAP]
        return {
            "min": float(self.norm[0]),
            "max": float(self.norm[1]),
            "stops": [to_hex(cmap(t)) for t in np.linspace(0, 1, 5)],
        }


def category_layer(
    name: str,
    values: Sequence | np.ndarray | pd.Series,
    first: Sequence[str] = (),
    is_new: np.ndarray | None = None,
) -> ColorLayer:
    """A categorical layer with a stable order and explicit colours.

    ``first`` lists categories in the order they are coloured (the dataset's classes);
    other values follow sorted; ``new`` (points where ``is_new``), ``untagged`` and
    missing values come last in their own fixed colours.

    Parameters
    ----------
    name : str
        The layer's name (legend title).
    values : sequence or numpy.ndarray or pandas.Series
        One value per point.
    first : sequence of str
        Categories coloured first, in this order.
    is_new : numpy.ndarray or None
        Boolean mask of points added by :meth:`Explorer.add_points`.
    """
    # factorise once and relabel the codes: string conversion of a million values is slow
    # (factorize, not Categorical: it does not sort, so mixed types such as 1 and "a" work)
    codes, uniques = pd.factorize(pd.Series(values).to_numpy(), use_na_sentinel=True)
    names = [str(c) for c in uniques]
    codes = np.asarray(codes, dtype=np.int64)
    used = np.zeros(len(names), bool)
    used[np.unique(codes[codes >= 0])] = True
    new_mask = None if is_new is None else np.asarray(is_new, bool)
    present = {n for n, u in zip(names, used, strict=True) if u}
    if (codes < 0).any():
        present.add(MISSING)
    if new_mask is not None and new_mask.any():
        present.add(NEW_CATEGORY)
    ordinary = [str(c) for c in first if str(c) not in _SPECIAL]
    ordinary += sorted(c for c in present - set(ordinary) if c not in _SPECIAL)
    special = [c for c in _SPECIAL if c in present]
    cats = ordinary + special
    pal = category_hex(max(len(ordinary), 1))
    colors = {c: pal[i] for i, c in enumerate(ordinary)}
    colors.update({c: _SPECIAL[c] for c in special})
    where = {c: i for i, c in enumerate(cats)}
    lut = np.asarray([where.get(n, -1) for n in names], dtype=np.int64)
    out = np.full(len(codes), where.get(MISSING, -1), dtype=np.int64)
    out[codes >= 0] = lut[codes[codes >= 0]]
    if new_mask is not None and new_mask.any():
        out[new_mask] = where[NEW_CATEGORY]
    return ColorLayer(name, pd.Series(pd.Categorical.from_codes(out, categories=cats)), colors)


def make_layer(
    name: str,
    values: Sequence | np.ndarray | pd.Series,
    first: Sequence[str] = (),
    is_new: np.ndarray | None = None,
) -> ColorLayer:
    """Categorical or numeric layer, chosen from the values.

    Numbers with more than :data:`MAX_CATEGORIES` distinct values get a continuous scale
    (added points, which have no value, are drawn at its low end: they are selected
    anyway); everything else is categorical (:func:`category_layer`).

    Parameters
    ----------
    name : str
        The layer's name (legend title).
    values : sequence or numpy.ndarray or pandas.Series
        One value per point.
    first : sequence of str
        Categories coloured first, in this order.
    is_new : numpy.ndarray or None
        Boolean mask of points added by :meth:`Explorer.add_points`.
    """
    ser = pd.Series(values).reset_index(drop=True)
    if (
        pd.api.types.is_numeric_dtype(ser)
        and not pd.api.types.is_bool_dtype(ser)
        and ser.nunique() > MAX_CATEGORIES
    ):
        num = ser.astype(np.float64)
        lo = float(np.nanmin(num)) if num.notna().any() else 0.0
        hi = float(np.nanmax(num)) if num.notna().any() else 1.0
        return ColorLayer(name, num.fillna(lo), {}, (lo, hi if hi > lo else lo + 1.0))
    return category_layer(name, ser, first=first, is_new=is_new)
