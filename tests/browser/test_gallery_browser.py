"""The AugmentationGallery in a real JupyterLab + headless Chromium."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

GALLERY = ".tsimcne-gallery"
N_VIEWS = 8
PRESETS = ("default", "rot90", "randrot")

ROWS_JS = """() => [...document.querySelectorAll('.tsimcne-gallery .tsimcne-gallery-row')].map(tr => ({
  preset: tr.dataset.preset,
  index: Number(tr.dataset.index),
  views: [...tr.querySelectorAll('img[data-preset]')].map(i => i.src),
  loaded: [...tr.querySelectorAll('img')].every(i => i.complete && i.naturalWidth > 0),
}))"""


def _rows(page):
    page.wait_for_function(
        "() => [...document.querySelectorAll('.tsimcne-gallery img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )
    return page.evaluate(ROWS_JS)


def test_gallery_renders_distinct_views_and_redraws(widgets_nb, artifacts):
    page = widgets_nb.page
    page.wait_for_selector(f'{GALLERY}[data-n-rows="6"][data-generation="0"]', timeout=120_000)
    rows = _rows(page)
    assert sorted({r["preset"] for r in rows}) == sorted(PRESETS)
    for r in rows:
        assert r["loaded"]
        assert len(r["views"]) == N_VIEWS
        assert len(set(r["views"])) == N_VIEWS  # N different augmented views of one image
    # what the browser shows is what Python computed
    first = rows[0]
    expected = widgets_nb.run_json(
        f"[gallery._view.rows[0]['views'][k] == {first['views']!r}[k] for k in range({N_VIEWS})]"
    )
    assert all(expected)
    page.locator(GALLERY).screenshot(path=str(artifacts / "gallery.png"))

    page.get_by_role("button", name="redraw").click()
    page.wait_for_selector(f'{GALLERY}[data-generation="1"]')
    again = _rows(page)
    assert len(again) == 6
    assert all(a["views"] != b["views"] for a, b in zip(rows, again, strict=True))
    assert widgets_nb.run_json("gallery.generation") == 1
