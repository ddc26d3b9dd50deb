"""Sphinx configuration of the tsimcne-nb documentation: ``bash scripts/docs.sh`` builds it."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tsimcne_nb  # noqa: E402

project = "tsimcne-nb"
author = "The tsimcne-nb developers"
copyright = "the tsimcne-nb developers"  # noqa: A001 - Sphinx's name
version = release = tsimcne_nb.__version__

extensions = [
    "sphinx.ext.autodoc",
    "numpydoc",
    "myst_nb",
]

exclude_patterns = ["_build", "_generated", "**.ipynb_checkpoints", "tutorials/*.part"]
root_doc = "index"

# -- API reference ---------------------------------------------------------------------------
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
autodoc_mock_imports: list[str] = []
numpydoc_show_class_members = False
numpydoc_xref_param_type = False
numpydoc_attributes_as_param_list = False
# numpydoc reports a malformed docstring (e.g. an unknown section) as a Python warning, which
# sphinx -W does not see: make it an error so that a broken docstring fails the build
warnings.filterwarnings("error", category=UserWarning, module="numpydoc")

# -- Markdown and notebooks -------------------------------------------------------------------
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
# the tutorials are executed before the build (notebooks/_build/nbexec.py, or by the tests),
# at smoke size on synthetic data; the build only renders them
nb_execution_mode = "off"
# widgets are shown as their static PNG fallback (the live widget needs a kernel)
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js: dict = {}
nb_merge_streams = True

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"tsimcne-nb {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []

# Binder: each tutorial page links to the notebook running on mybinder.org (binder/ holds the
# environment).  The repository is set here or by TSIMCNE_DOCS_REPOSITORY ("owner/name").
binder_repository = os.environ.get("TSIMCNE_DOCS_REPOSITORY", "OWNER/tsimcne-nb")
binder_ref = os.environ.get("TSIMCNE_DOCS_REF", "main")


def binder_url(notebook: str) -> str:
    return (f"https://mybinder.org/v2/gh/{binder_repository}/{binder_ref}"
            f"?urlpath=lab/tree/notebooks/{notebook}")


def _add_binder_link(app, doctree, docname: str) -> None:
    """Put a "Launch on Binder" link at the top of every tutorial page."""
    from docutils import nodes

    if not docname.startswith("tutorials/") or docname == "tutorials/index":
        return
    name = docname.split("/", 1)[1] + ".ipynb"
    para = nodes.paragraph(classes=["binder-link"])
    para += nodes.Text("Run this notebook yourself: ")
    para += nodes.reference("", f"launch {name} on Binder", refuri=binder_url(name))
    para += nodes.Text(" (JupyterLab in the browser, CPU; set the parameters cell for a full run)"
                       " or open notebooks/" + name + " in your own Jupyter.")
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None:
        doctree.insert(0, para)
    else:
        title = next(iter(section.findall(nodes.title)), None)
        section.insert(section.index(title) + 1 if title is not None else 0, para)


def _write_cli_help(app) -> None:
    """docs/_generated/cli-*.txt: the --help of the command and of each sub-command, as run now."""
    from tsimcne_nb.cli import COMMANDS

    out = Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for name in ("", *COMMANDS):
        args = [sys.executable, "-m", "tsimcne_nb", *([name] if name else []), "--help"]
        text = subprocess.run(args, capture_output=True, text=True, check=True, env=env,
                              cwd=ROOT).stdout
        target = out / f"cli-{name or 'main'}.txt"
        if not target.exists() or target.read_text() != text:  # unchanged files: no rebuild
            target.write_text(text)


def _write_datasets_table(app) -> None:
    """docs/_generated/datasets-table.md: every dataset of the registry, its files and licence."""
    from tsimcne_nb.data.registry import list_datasets

    def cell(text: str) -> str:
        return str(text).replace("|", "\\|")

    rows = ["| name | licence | download | what | files | folder under the data folder |",
            "|---|---|---|---|---|---|"]
    for d in list_datasets():
        rows.append(f"| `{cell(d.name)}` | {cell(d.licence)} | {cell(d.download)} | "
                    f"{cell(d.description)} | `{cell(d.files)}` | "
                    f"{'`' + d.folder + '/`' if d.folder else '-'} |")
    target = Path(app.srcdir) / "_generated" / "datasets-table.md"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(rows) + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def _write_toplevel_names(app) -> None:
    """docs/_generated/toplevel.rst: the names ``tsimcne_nb`` exports, linked to their modules."""
    rows = [".. list-table:: Top-level names", "   :header-rows: 1", "", "   * - name",
            "     - defined in"]
    for name, module in sorted(tsimcne_nb._LAZY.items(), key=lambda kv: kv[0].lower()):
        rows += [f"   * - :py:obj:`tsimcne_nb.{name} <{module}.{name}>`", f"     - ``{module}``"]
    target = Path(app.srcdir) / "_generated" / "toplevel.rst"
    target.parent.mkdir(exist_ok=True)
    text = "\n".join(rows) + "\n"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def setup(app):
    app.connect("builder-inited", _write_toplevel_names)
    app.connect("builder-inited", _write_cli_help)
    app.connect("builder-inited", _write_datasets_table)
    app.connect("doctree-resolved", _add_binder_link)
    return {"parallel_read_safe": True}
