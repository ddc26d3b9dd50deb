"""Check the built documentation: the tutorials show their outputs, not empty cells.

Run by ``scripts/docs.sh`` after ``sphinx-build``: ``python3 scripts/check_docs.py
docs/_build/html``.  Fails (exit 1, naming what is missing) unless

* the quickstart page shows the trained map (an image in the output of the ``plot_map`` cell),
  the explorer's static image (an image in the output of the ``Explorer(...)`` cell) and the
  metrics table (an HTML table in the output of the ``evaluate`` cell);
* every tutorial page links to Binder, says that it ran on synthetic data, shows at least one
  image, and carries no live-widget JSON (widgets are shown as their static images);
* every image a page refers to exists in the build;
* the API reference documents every public object: each name in a documented module's
  ``__all__`` (or, without one, each public function and class it defines) has an entry.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: quickstart cell (a snippet of its source) -> what its output must contain
QUICKSTART = {
    "plot_map(embedding": ("<img", "the trained map"),
    "explorer = Explorer(": ("<img", "the explorer's static image"),
    "metrics = evaluate(": ("<table", "the metrics table"),
}


def _cells(page: str) -> list[tuple[str, str]]:
    """(input HTML, output HTML) of every code cell of a myst-nb page."""
    out = []
    for chunk in re.split(r'<div class="cell(?: tag_[^" ]+)* docutils container"', page)[1:]:
        parts = re.split(r'<div class="cell_output docutils container[^"]*"', chunk, maxsplit=1)
        out.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return out


def _text(html: str) -> str:
    import html as h

    return h.unescape(re.sub(r"<[^>]+>", "", html))


def check(html_dir: Path) -> list[str]:
    problems = []
    tutorials = sorted((html_dir / "tutorials").glob("*.html"))
    tutorials = [p for p in tutorials if p.stem not in ("index", "genindex", "search")]
    if not any(p.stem == "00_quickstart" for p in tutorials):
        return [f"no tutorials/00_quickstart.html in {html_dir}"]
    for page_path in tutorials:
        page = page_path.read_text(encoding="utf-8")
        name = page_path.name
        if "mybinder.org/v2/gh/" not in page:
            problems.append(f"{name}: no Binder link")
        if "synthetic" not in _text(page).lower():
            problems.append(f"{name}: does not say it ran on synthetic data")
        if "application/vnd.jupyter.widget-view+json" in page:
            problems.append(f"{name}: carries live-widget JSON instead of the static image")
        images = re.findall(r'<img[^>]+src="([^"]+)"', page)
        if not images:
            problems.append(f"{name}: shows no image")
        for src in images:
            if not src.startswith(("data:", "http")) and not (page_path.parent / src).is_file():
                problems.append(f"{name}: image {src} is missing from the build")
        if page_path.stem == "00_quickstart":
            cells = _cells(page)
            for snippet, (tag, what) in QUICKSTART.items():
                hits = [o for i, o in cells if snippet in _text(i)]
                if not hits:
                    problems.append(f"{name}: no cell with {snippet!r}")
                elif tag not in hits[0]:
                    problems.append(f"{name}: {what} is missing (no {tag} in the output of the "
                                    f"cell with {snippet!r})")
    return problems


def public_names(module) -> list[str]:
    """``module.__all__``, or the public functions and classes the module itself defines."""
    import inspect

    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, v in vars(module).items() if not n.startswith("_")
            and (inspect.isfunction(v) or inspect.isclass(v))
            and getattr(v, "__module__", None) == module.__name__]


def check_api(html_dir: Path, source_dir: Path) -> list[str]:
    """Every public object of every module of docs/api/*.rst has an entry in its page."""
    import importlib

    sys.path.insert(0, str(ROOT))
    problems = []
    for rst in sorted((source_dir / "api").glob("*.rst")):
        page = html_dir / "api" / f"{rst.stem}.html"
        html = page.read_text(encoding="utf-8") if page.is_file() else ""
        for name in re.findall(r"automodule:: (\S+)", rst.read_text()):
            module = importlib.import_module(name)
            for obj in public_names(module):
                if f'id="{name}.{obj}"' not in html:
                    problems.append(f"api/{page.name}: no entry for {name}.{obj} (give it a "
                                    "docstring, or a #: comment for data)")
    return problems


def main(argv: list[str]) -> int:
    html_dir = Path(argv[0] if argv else "docs/_build/html")
    problems = check(html_dir) + check_api(html_dir, ROOT / "docs")
    for p in problems:
        print(f"check_docs: {p}", file=sys.stderr)
    if not problems:
        print(f"check_docs: {html_dir}: the tutorials show their maps, widget images and tables")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
