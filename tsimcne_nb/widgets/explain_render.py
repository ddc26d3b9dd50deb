"""HTML/SVG of a :class:`~tsimcne_nb.widgets.selection_stats.SelectionSummary`.

Plain strings (no matplotlib): they render in the live panel, in nbconvert's HTML and in a saved
page alike.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np

from tsimcne_nb.widgets.selection_stats import SelectionSummary

__all__ = ["classes_svg", "histogram_svg", "summary_html"]

#: classes listed in the make-up (the rest are summed as "other")
MAX_CLASSES = 12


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    return f"{v:.3g}"


def classes_svg(summary: SelectionSummary, colors: list[str], width: int = 340) -> str:
    """Horizontal bars: each class's share of the selection; a black tick at its share of all data.

    Parameters
    ----------
    summary : SelectionSummary
        From :func:`explain_selection`.
    colors : list of str
        Hex colour per label value (the explorer's palette).
    width : int
        Width in pixels.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    rows = summary.classes.head(MAX_CLASSES)
    bar_h, name_w, text_w = 16, 110, 120
    bar_w = width - name_w - text_w
    h = bar_h * len(rows) + 4
    parts = [
        f'<svg class="tsimcne-classes" width="{width}" height="{h}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="11" font-family="sans-serif">'
    ]
    for r, row in enumerate(rows.itertuples()):
        y = 2 + r * bar_h
        colour = colors[row.label] if 0 <= row.label < len(colors) else "#808080"
        w_sel = max(1.0, row.share * bar_w)
        x_all = name_w + row.share_all * bar_w
        parts.append(
            f'<g class="tsimcne-class" data-name="{_esc(row.name)}" data-count="{row.count}">'
            f"<title>{_esc(row.name)}: {row.count} selected ({row.share:.1%}); "
            f"{row.share_all:.1%} of all data</title>"
            f'<text x="{name_w - 4}" y="{y + 12}" text-anchor="end">{_esc(str(row.name)[:16])}</text>'
            f'<rect x="{name_w}" y="{y + 2}" width="{w_sel:.1f}" height="{bar_h - 4}" fill="{colour}"/>'
            f'<line x1="{x_all:.1f}" x2="{x_all:.1f}" y1="{y}" y2="{y + bar_h}" stroke="#000" stroke-width="2"/>'
            f'<text x="{name_w + bar_w + 4}" y="{y + 12}">{row.count} · {row.share:.0%} '
            f"(all {row.share_all:.0%})</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(
    name: str,
    edges: np.ndarray,
    selected: np.ndarray,
    rest: np.ndarray,
    color: str = "#D55E00",
    width: int = 170,
    height: int = 56,
) -> str:
    """One property: the selection's (coloured) and the rest's (grey) distributions, each normalised.

    Parameters
    ----------
    name : str
        The column's name (title and ``data-column``).
    edges : numpy.ndarray
        Bin edges (``len(selected) + 1``).
    selected, rest : numpy.ndarray
        Counts per bin.
    color : str
        Colour of the selection.
    width, height : int
        Size in pixels.

    Returns
    -------
    str
        An ``<svg>`` element.
    """
    nb = len(selected)
    bw = width / nb
    ps = selected / max(selected.sum(), 1)
    pr = rest / max(rest.sum(), 1)
    top = max(ps.max(initial=0), pr.max(initial=0)) or 1.0
    parts = [
        f'<svg class="tsimcne-hist" data-column="{_esc(name)}" width="{width}" height="{height + 12}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="9" font-family="sans-serif">'
    ]
    for i in range(nb):
        hr = pr[i] / top * height
        parts.append(
            f'<rect x="{i * bw:.1f}" y="{height - hr:.1f}" width="{bw:.1f}" height="{hr:.1f}" fill="#bbb"/>'
        )
    pts = []
    for i in range(nb):
        y = height - ps[i] / top * height
        pts.append(f"{i * bw:.1f},{y:.1f} {(i + 1) * bw:.1f},{y:.1f}")
    parts.append(
        f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="2"/>'
    )
    parts.append(
        f'<text x="0" y="{height + 10}">{_fmt(edges[0])}</text>'
        f'<text x="{width}" y="{height + 10}" text-anchor="end">{_fmt(edges[-1])}</text></svg>'
    )
    return "".join(parts)


def summary_html(summary: SelectionSummary, colors: list[str], title: str = "") -> str:
    """The whole explanation as HTML (the live panel's content and its static fallback).

    Parameters
    ----------
    summary : SelectionSummary
        From :func:`explain_selection`.
    colors : list of str
        Hex colour per label value.
    title : str
        Heading (e.g. the data set's name).

    Returns
    -------
    str
        A ``<div class="tsimcne-explain-summary">``.
    """
    s = summary
    head = f"<b>{_esc(title)}</b> " if title else ""
    if s.n_selected == 0:
        return (
            f'<div class="tsimcne-explain-summary" data-n-selected="0">{head}'
            "<i>Nothing selected: lasso points on the map to explain them here.</i></div>"
        )
    out = [
        f'<div class="tsimcne-explain-summary" data-n-selected="{s.n_selected}">',
        f"{head}<b>{s.n_selected}</b> of {s.n_total} points selected "
        f"({s.n_selected / s.n_total:.1%})",
        '<div class="tsimcne-explain-h">class make-up (bar: share of the selection; '
        "tick: share of all data)</div>",
        classes_svg(s, colors),
        f'<div class="tsimcne-purity" data-inside="{s.purity_inside:.4f}" '
        f'data-label="{s.purity_label:.4f}">'
        f"<b>kNN purity on the map</b> (k={s.k}"
        + (f", {len(s.knn_points)} sampled points" if len(s.knn_points) < s.n_selected else "")
        + f"): {s.purity_inside:.0%} of a selected point's "
        f"neighbours are selected (random set: {s.expected_inside:.0%}); "
        f"{_fmt(100 * s.purity_label)}% share its label.</div>",
    ]
    if s.histograms:
        out.append(
            '<div class="tsimcne-explain-h">properties: selection (line) against the rest (grey)</div>'
            '<div style="display:flex;flex-wrap:wrap;gap:6px">'
        )
        for col, (edges, h_sel, h_rest) in s.histograms.items():
            m_sel, m_rest = s.medians[col]
            out.append(
                f'<div class="tsimcne-hist-box"><div>{_esc(col)}: median {_fmt(m_sel)} '
                f"vs {_fmt(m_rest)}</div>{histogram_svg(col, edges, h_sel, h_rest)}</div>"
            )
        out.append("</div>")
    out.append("</div>")
    return "".join(out)


# ------------------------------------------------------------------- widget
