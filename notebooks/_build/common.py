"""Helpers for building the tutorial notebooks (cells, shared snippets)."""

from __future__ import annotations

import textwrap

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def md(text: str):
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str, tags: list[str] | None = None):
    c = new_code_cell(textwrap.dedent(text).strip("\n"))
    if tags:
        c.metadata["tags"] = tags
    return c


def params(text: str):
    return code(text, tags=["parameters"])


def save(cells, path: str) -> None:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nb.metadata["language_info"] = {"name": "python"}
    for c in nb.cells:
        c.pop("id", None)
    nb.nbformat, nb.nbformat_minor = 4, 5
    # nbformat 4.5 wants cell ids: deterministic ones keep diffs small
    for i, c in enumerate(nb.cells):
        c["id"] = f"cell-{i:02d}"
    nbformat.validate(nb)
    with open(path, "w", encoding="utf-8") as fh:
        nbformat.write(nb, fh)


SETUP = '''
%matplotlib inline
from dataclasses import replace

import numpy as np
import pandas as pd

import tsimcne_nb
from tsimcne_nb.train.device import resolve_device
from tsimcne_nb.train.budgets import resolve_budget

# The budget fixes the schedule; EPOCHS (if given) overrides only the epochs of the three stages.
budget = resolve_budget(BUDGET)
if EPOCHS is not None:
    budget = replace(budget, name=f"{budget.name}-epochs-{'-'.join(map(str, EPOCHS))}",
                     total_epochs=tuple(int(e) for e in EPOCHS))
print(f"tsimcne_nb {tsimcne_nb.__version__}")
print(f"budget '{budget.name}': epochs {budget.total_epochs}, batch size {budget.batch_size}, "
      f"backbone {budget.backbone_small} (<= 32 px) / {budget.backbone_large} (larger)")
print("device:", resolve_device(DEVICE))
'''


def load_cell(name_expr: str, options: str = "", standin_options: str = "") -> str:
    """Code that loads dataset ``name_expr`` (a Python expression) with the real loader, or
    SYNTHETIC stand-ins when the files are absent (quick budget only)."""
    opt = f", {options}" if options else ""
    sopt = f", {standin_options}" if standin_options else ""
    return f'''
from tsimcne_nb import load_dataset
from tsimcne_nb.data.standins import is_standin, write_standin_files
from tsimcne_nb.errors import DatasetNotFoundError, DownloadError

NAME = {name_expr}
data_root = DATA_ROOT
try:
    dataset = load_dataset(NAME, root=data_root, download=DOWNLOAD{opt})
except (DatasetNotFoundError, DownloadError) as err:
    if BUDGET != "quick":
        raise  # the paper budget is meant for the real data: get it first (see above)
    print(f"The real data is not there:\\n{{err}}\\n")
    # Write small files in the EXACT format of the real dataset, filled with SYNTHETIC images,
    # and read them with the same loader: every cell below runs, but on synthetic data.
    import tempfile

    data_root = tempfile.mkdtemp(prefix="tsimcne-standin-")
    write_standin_files(NAME, data_root, n=STANDIN_N, random_state=SEED{sopt})
    dataset = load_dataset(NAME, root=data_root{opt})

# stand-in files (from this run or left in a data folder) are never taken for the real data
STANDIN = is_standin(NAME, data_root)
if STANDIN:
    dataset.synthetic = True
    dataset.name = "synthetic-standin-" + dataset.name
    print("=" * 78)
    print("THIS RUN USES SYNTHETIC STAND-IN DATA: procedural blood cells written in the file")
    print(f"format of '{{NAME}}'. Its maps and numbers say NOTHING about the real dataset.")
    print("=" * 78)

if SUBSET is not None and SUBSET < len(dataset):
    dataset = dataset.stratified_subset(int(SUBSET), random_state=SEED)
'''


TAG_AND_SUMMARY = '''
# every title says so when the data is synthetic
TAG = " [SYNTHETIC stand-in data]" if dataset.synthetic else ""
print(dataset)
pd.Series(np.bincount(dataset.labels, minlength=dataset.n_classes), index=dataset.class_names,
          name="images per class")
'''


def paper_frame(rows: dict[str, tuple[float, float]]) -> str:
    """Python source of a dict: method -> (kNN %, silhouette) from RECIPE.md."""
    lines = ",\n    ".join(f'"{k}": ({v[0]!r}, {v[1]!r})' for k, v in rows.items())
    return "{\n    " + lines + ",\n}"
