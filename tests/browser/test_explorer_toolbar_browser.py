"""Issue 14 builds in a real JupyterLab + headless Chromium: act on the map without code.

Toolbar tag buttons and number keys, the new-tag field, search, colour-by menu, export,
zoom, clear, the panel's order / size / page controls, a review file reloaded into a new
explorer, and the self-contained HTML page.  Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import make_page
from .test_explorer_review_browser import CELLS, N, _canvas, _drawn, _mask, _pixels, _wait

pytestmark = pytest.mark.browser

EX = ".ex-main"


@pytest.fixture(scope="module")
def nb(chromium_browser, lab):
    context, nb = make_page(chromium_browser, lab, CELLS[:2], "explorer_toolbar.ipynb",
                            timeout_ms=120_000)
    try:
        nb.page.locator(f"{EX} .tsimcne-panel").wait_for(state="visible", timeout=120_000)
        nb.drawn = _drawn(nb.page, "ex-main")
        yield nb
    finally:
        context.close()


def _select_class(page, name: str, n: int) -> None:
    page.locator(f'{EX} .tsimcne-legend-item[data-name="{name}"]').click()
    page.wait_for_selector(f'{EX} .tsimcne-panel[data-n-selected="{n}"]')


def test_tag_with_new_tag_field_and_number_key(nb, artifacts):
    page = nb.page
    cell_types = "() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.model.type)"
    types_before = page.evaluate(cell_types)
    _select_class(page, "cluster A", N)
    page.fill(f"{EX} .tsimcne-new-tag", "reviewed")
    page.click(f"{EX} .tsimcne-add-tag")
    page.wait_for_selector(f'{EX} .tsimcne-tag-button[data-tag="reviewed"]')
    assert nb.run_json("ex.tags['reviewed'].tolist()") == list(range(N))
    # another class, then key 1 with the pointer over the map: the first tag button
    _select_class(page, "cluster B", N)
    box = _canvas(page, "ex-main").bounding_box()
    # over the map, between the clusters (a hovered point would open its tooltip)
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.55)
    page.keyboard.press("1")
    _wait(lambda: nb.run_json("len(ex.tags['reviewed'])") == 2 * N, 15, "key 1 to tag")
    assert page.evaluate(cell_types) == types_before  # JupyterLab did not take the key
    assert "tagged 500 points 'reviewed'" in page.inner_text(f"{EX} .tsimcne-status")
    assert nb.run_json("ex.tag_frame()['why'].iloc[-1]") == "toolbar key 1"
    page.screenshot(path=str(artifacts / "build1-tag-key.png"))


def test_colour_by_menu_shows_tags_in_their_colours(nb, artifacts):
    page = nb.page
    page.select_option(f"{EX} .tsimcne-color-by", "tag")
    legend_names = f"""() => [...document.querySelectorAll('{EX} .tsimcne-legend-item')]
                          .map(e => e.dataset.name).join(',')"""
    try:
        page.wait_for_function(f"() => ({legend_names})() === 'reviewed,untagged'")
        assert nb.run_json("ex.color_by") == "tag"

        def grey_c():
            px = _pixels(page, "ex-main")
            return _mask(px, "grey").sum() > 50 and _mask(px, "green").sum() < 10

        _wait(grey_c, 30, "untagged cluster C in grey")
    finally:
        _canvas(page, "ex-main").screenshot(path=str(artifacts / "build1-colour-by-tag.png"))
        page.select_option(f"{EX} .tsimcne-color-by", "label")
        page.wait_for_function(f"() => ({legend_names})().startsWith('cluster A')")


def test_search_highlights_and_selects(nb, artifacts):
    page = nb.page
    before = _pixels(page, "ex-main")
    page.fill(f"{EX} .tsimcne-search", "blur > 2")
    page.press(f"{EX} .tsimcne-search", "Enter")
    page.wait_for_selector(f'{EX} .tsimcne-toolbar[data-n-matches="{N}"]')
    page.wait_for_selector(f'{EX} .tsimcne-panel[data-n-selected="{N}"]')
    assert nb.run_json("ex.selected.tolist()") == list(range(2 * N, 3 * N))
    _wait(lambda: np.abs(_pixels(page, "ex-main") - before).max() > 40, 20, "the highlight")
    page.screenshot(path=str(artifacts / "build2-search.png"))
    # a bad query explains itself and leaves the selection alone
    page.fill(f"{EX} .tsimcne-search", "blur >")
    page.press(f"{EX} .tsimcne-search", "Enter")
    page.wait_for_selector(f"{EX} .tsimcne-query-error")
    assert "ends too early" in page.inner_text(f"{EX} .tsimcne-matches")
    assert nb.run_json("len(ex.selected)") == N


def test_export_zoom_and_clear_buttons(nb, artifacts):
    page = nb.page
    page.fill(f"{EX} .tsimcne-export-path", "review-tags.csv")
    page.click(f"{EX} .tsimcne-export")
    page.wait_for_function(
        f"() => document.querySelector('{EX} .tsimcne-status').innerText.includes('wrote')"
    )
    rows = nb.run_json("len(__import__('pandas').read_csv('review-tags.csv'))")
    assert rows == 2 * N
    page.click(f"{EX} .tsimcne-export")  # again: refused, not overwritten
    page.wait_for_selector(f"{EX} .tsimcne-status.tsimcne-error")
    # zoom to the selection (cluster C from the search): it fills more of the map
    area = _mask(_pixels(page, "ex-main"), "green").sum()
    page.click(f"{EX} .tsimcne-zoom")
    _wait(lambda: _mask(_pixels(page, "ex-main"), "green").sum() > 2 * area, 20, "the zoom")
    page.screenshot(path=str(artifacts / "build1-zoom.png"))
    page.click(f"{EX} .tsimcne-clear")
    page.wait_for_selector(f'{EX} .tsimcne-panel[data-n-selected="0"]')
    assert nb.run_json("len(ex.selected)") == 0
    nb.run("ex.zoom_to_selection()")  # nothing selected: back to the whole map


def test_panel_order_size_and_page_jump(nb, artifacts):
    page = nb.page
    _select_class(page, "cluster A", N)
    page.select_option(f"{EX} .tsimcne-order", "distance")
    page.wait_for_selector(f'{EX} .tsimcne-panel[data-order="distance"]')
    expect = nb.run_json(
        "np.argsort(np.linalg.norm(xy[:500] - xy[:500].mean(0), axis=1), kind='stable')[:5].tolist()"
    )
    page.wait_for_function(
        f"""() => [...document.querySelectorAll('{EX} .tsimcne-thumb')].slice(0, 5)
                 .map(e => e.dataset.index).join(',') === '{",".join(map(str, expect))}'"""
    )
    page.fill(f"{EX} .tsimcne-page-field", "4")
    page.press(f"{EX} .tsimcne-page-field", "Enter")
    page.wait_for_selector(f'{EX} .tsimcne-panel[data-page="3"]')
    assert nb.run_json("ex.panel.page") == 3
    page.locator(f"{EX} .tsimcne-size").fill("96")
    page.wait_for_selector(f'{EX} .tsimcne-panel[data-thumbnail-size="96"]')
    width = page.eval_on_selector(f"{EX} .tsimcne-thumb img", "e => e.width")
    assert width == 96
    page.screenshot(path=str(artifacts / "build3-panel-controls.png"))


def test_review_file_reloads_into_a_new_explorer(nb, artifacts):
    page = nb.page
    nb.run(
        "ex.select(np.arange(10, 20)); ex.save_review('blobs.review.parquet', overwrite=True)\n"
        "ex_new = Explorer(xy, ds, height=300); ex_new.load_review('blobs.review.parquet')\n"
        "ex_new.widget.add_class('ex-reloaded')"
    )
    # show the new explorer in a new cell, as a user would
    page.evaluate(
        """async () => { const nb = window.jupyterapp.shell.currentWidget;
             nb.content.activeCellIndex = nb.content.widgets.length - 1;
             await window.jupyterapp.commands.execute('notebook:insert-cell-below');
             nb.content.activeCell.model.sharedModel.setSource('ex_new');
             await window.jupyterapp.commands.execute('notebook:run-cell'); }"""
    )
    page.wait_for_selector('.ex-reloaded .tsimcne-panel[data-n-selected="10"]', timeout=60_000)
    assert nb.run_json("sorted(ex_new.tags)") == ["reviewed"]
    assert nb.run_json("ex_new.tag_frame()['origin'].unique().tolist()") == ["hand"]
    page.locator(".ex-reloaded").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "build5-reloaded.png"))


def test_save_html_is_self_contained(nb, lab, chromium_browser, artifacts):
    nb.run("ex.select(np.arange(1000, 1012)); ex.save_html('view.html', overwrite=True)")
    path = lab.root / "view.html"
    context = chromium_browser.new_context(offline=True, viewport={"width": 1000, "height": 1100})
    try:
        page = context.new_page()
        page.goto(path.as_uri())
        page.wait_for_function(
            "() => [...document.images].length > 1 && [...document.images].every(i => i.complete && i.naturalWidth > 0)"
        )
        assert page.locator(".strip img").count() == 12
        assert "cluster C" in page.inner_text(".legend")
        assert "reviewed" in page.inner_text(".tags")
        page.screenshot(path=str(artifacts / "build6-save-html.png"), full_page=True)
    finally:
        context.close()
