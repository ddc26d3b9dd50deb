"""The documentation's own checks: scripts/check_docs.py finds pages without their outputs.

The site itself is built by ``scripts/docs.sh`` (after the tests, in ``scripts/test.sh``), which
runs check_docs.py on the real pages; these tests show that the check can fail.
"""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_docs = _load("check_docs", ROOT / "scripts" / "check_docs.py")


def _cell(source: str, output: str, tags: str = "") -> str:
    return (f'<div class="cell{tags} docutils container"><div class="cell_input docutils container">'
            f"<pre>{source}</pre></div>"
            f'<div class="cell_output docutils container">{output}</div></div>')


def _site(tmp_path: Path, quickstart_cells: list[str], binder: bool = True) -> Path:
    html = tmp_path / "html"
    (html / "tutorials" / "_images").mkdir(parents=True)
    (html / "tutorials" / "_images" / "map.png").write_bytes(b"\x89PNG")
    link = '<a href="https://mybinder.org/v2/gh/o/r/main?urlpath=lab">Binder</a>' if binder else ""
    body = "".join(quickstart_cells)
    (html / "tutorials" / "00_quickstart.html").write_text(
        f"<html><body><p>synthetic data</p>{link}{body}</body></html>")
    return html


GOOD = [
    _cell("N_IMAGES = 3000", "", " tag_parameters"),
    _cell("figures.plot_map(embedding, ...)", '<img src="_images/map.png"/>'),
    _cell("metrics = evaluate(embedding, ...)", "<table><tr><td>0.9</td></tr></table>"),
    _cell("explorer = Explorer(embedding, dataset)", '<img src="_images/map.png"/>'),
]


def test_check_docs_accepts_a_complete_quickstart(tmp_path):
    assert check_docs.check(_site(tmp_path, GOOD)) == []


def test_check_docs_names_what_is_missing(tmp_path):
    no_table = [*GOOD[:2], _cell("metrics = evaluate(embedding, ...)", "<pre>text only</pre>"), GOOD[3]]
    problems = check_docs.check(_site(tmp_path / "a", no_table))
    assert problems == ["00_quickstart.html: the metrics table is missing (no <table in the output "
                        "of the cell with 'metrics = evaluate(')"]
    widget_json = [*GOOD[:3], _cell("explorer = Explorer(embedding, dataset)",
                                    '<script type="application/vnd.jupyter.widget-view+json">{}</script>')]
    problems = check_docs.check(_site(tmp_path / "b", widget_json, binder=False))
    assert any("no Binder link" in p for p in problems)
    assert any("live-widget JSON" in p for p in problems)
    assert any("the explorer's static image is missing" in p for p in problems)
    broken = [*GOOD[:3], _cell("explorer = Explorer(embedding, dataset)", '<img src="_images/gone.png"/>')]
    assert any("gone.png is missing" in p for p in check_docs.check(_site(tmp_path / "c", broken)))


def test_public_names_and_api_coverage(tmp_path):
    mod = types.ModuleType("fake_mod")
    exec("def shown():\n    'doc'\n\ndef _hidden():\n    pass\n\nclass Also:\n    pass\n", mod.__dict__)
    assert sorted(check_docs.public_names(mod)) == ["Also", "shown"]
    mod.__all__ = ["shown"]
    assert check_docs.public_names(mod) == ["shown"]
    # an API page without an entry for a public object is reported
    src, html = tmp_path / "src", tmp_path / "html"
    (src / "api").mkdir(parents=True)
    (html / "api").mkdir(parents=True)
    (src / "api" / "errors.rst").write_text(".. automodule:: tsimcne_nb.errors\n")
    (html / "api" / "errors.html").write_text('<dt id="tsimcne_nb.errors.DataError"></dt>')
    problems = check_docs.check_api(html, src)
    assert problems and all("tsimcne_nb.errors." in p for p in problems)
    assert not any(p.endswith("DataError (give it a docstring, or a #: comment for data)") for p in problems)
