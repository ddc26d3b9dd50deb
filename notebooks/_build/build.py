"""Write the tutorial notebooks from their percent-format sources: ``python notebooks/_build/build.py``.

Each ``notebooks/src/<name>.py`` (jupytext "percent" format: ``# %%`` starts a code cell,
``# %% [markdown]`` a markdown cell written as comments, ``# %% tags=["parameters"]`` a tagged
cell) becomes ``notebooks/<name>.ipynb``, stored without outputs.  The sources are the files to
edit and review; ruff checks them like any other Python file.

The conversion is deterministic: cell ids are ``cell-NN``, the notebook metadata is fixed, and
only a cell's ``tags`` are kept, so the same source always gives the same bytes.

``--check`` writes nothing: it exits with status 1 and names every notebook that differs from
what its source produces (or has no source, or is missing), as ``tests/test_notebooks.py`` does.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"
SRC_DIR = NB_DIR / "src"

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}


def sources(src_dir: Path = SRC_DIR) -> list[Path]:
    """The percent-format sources, sorted by name."""
    return sorted(src_dir.glob("*.py"))


def to_notebook(text: str):
    """The notebook (``nbformat`` 4.5, no outputs) that a percent-format source describes."""
    import jupytext
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    parsed = jupytext.reads(text, fmt="py:percent")
    cells = []
    for i, cell in enumerate(parsed.cells):
        if cell.cell_type == "code":
            new = new_code_cell(cell.source)
        elif cell.cell_type == "markdown":
            new = new_markdown_cell(cell.source)
        else:
            raise ValueError(f"cell {i}: only code and markdown cells are supported, "
                             f"not {cell.cell_type!r}")
        # jupytext adds its own metadata; a notebook keeps only the tags (nbexec needs
        # "parameters"), so that the output depends on nothing but the source text
        tags = cell.metadata.get("tags")
        if tags:
            new.metadata["tags"] = list(tags)
        new["id"] = f"cell-{i:02d}"  # nbformat 4.5 wants ids: fixed ones keep diffs small
        cells.append(new)
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    nbformat.validate(nb)
    return nb


def render(source: Path) -> str:
    """The text of the ``.ipynb`` file that ``source`` produces."""
    import nbformat

    return nbformat.writes(to_notebook(source.read_text(encoding="utf-8"))) + "\n"


def differences(src_dir: Path = SRC_DIR, nb_dir: Path = NB_DIR) -> list[str]:
    """Names of the notebooks in ``nb_dir`` that differ from what ``src_dir`` produces.

    A notebook without a source and a source without its notebook count as differences.
    """
    srcs = {p.stem: p for p in sources(src_dir)}
    nbs = {p.stem: p for p in nb_dir.glob("*.ipynb")}
    out = []
    for name in sorted(set(srcs) | set(nbs)):
        if name not in srcs:
            out.append(f"{name}.ipynb (no source {src_dir.name}/{name}.py)")
        elif name not in nbs:
            out.append(f"{name}.ipynb (missing: run python notebooks/_build/build.py)")
        elif nbs[name].read_text(encoding="utf-8") != render(srcs[name]):
            out.append(f"{name}.ipynb")
    return out


def write(source: Path, nb_dir: Path = NB_DIR) -> Path:
    """Write ``nb_dir/<name>.ipynb`` from ``source`` atomically (a temporary file, then rename)."""
    target = nb_dir / f"{source.stem}.ipynb"
    tmp = target.with_suffix(".ipynb.part")
    tmp.write_text(render(source), encoding="utf-8")
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 and name the notebooks that differ from their source")
    args = parser.parse_args(argv)
    if args.check:
        stale = differences()
        for line in stale:
            print(f"differs from its source: notebooks/{line}")
        if stale:
            print("Edit notebooks/src/*.py (not the .ipynb) and run: python notebooks/_build/build.py")
            return 1
        print(f"all {len(sources())} notebooks match their sources")
        return 0
    for src in sources():
        print(f"{src.relative_to(ROOT)} -> {write(src).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
