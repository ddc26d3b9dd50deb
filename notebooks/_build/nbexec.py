"""Execute the tutorial notebooks at smoke size; write executed copies for the documentation.

The smoke size (300 images, 2 + 1 + 1 epochs) is what ``tests/test_notebooks.py`` runs: each
notebook's ``parameters`` cell gets the smoke values appended (what papermill does with
``-p``).  No real dataset is used (``TSIMCNE_DATA`` points at an empty folder), so the dataset
notebooks run on SYNTHETIC stand-in files and say so.

``python notebooks/_build/nbexec.py --out docs/tutorials`` writes ``<name>.ipynb`` there for
every notebook whose executed copy is missing or stale.  A copy is stamped with the SHA-256 of
the notebook's source and the smoke parameters (``metadata.tsimcne_docs``), so a copy made from
an older notebook is executed again; copies are never edited by hand.  The test suite writes
the same copies while it executes the notebooks (``TSIMCNE_DOCS_NOTEBOOKS=docs/tutorials``), so
``scripts/test.sh`` does not execute them twice.
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NB_DIR = ROOT / "notebooks"

#: smoke size: a few hundred images, 4 epochs in all
SMOKE = {"DATA_ROOT": None, "BUDGET": "quick", "DEVICE": "cpu", "SUBSET": 300, "SEED": 0,
         "EPOCHS": (2, 1, 1)}
#: further small-size knobs, only for notebooks that define them
SMOKE_EXTRA = {
    "DOWNLOAD": False,
    "STANDIN_N": 300,
    "N_IMAGES": 300,
    "SIZE": 32,
    "N_DUPLICATES": 20,
    "N_ARTEFACTS": 15,
    "METHODS": ("tsne-pixels", "tsimcne-default", "tsimcne-rot90"),
    "CACHE_DIR": None,
    "ABLATION_METHODS": ("tsimcne-randrot", "tsimcne-randrot-nocrop"),
    "CIFAR_METHODS": ("tsimcne-default", "tsimcne-rot90"),
}
CELL_TIMEOUT = 600  # s; a smoke cell takes seconds, this only catches hangs
STAMP = "tsimcne_docs"
#: version of the docs copies' format (what for_docs does): a new one makes old copies stale
FORMAT = 3


def notebooks() -> list[Path]:
    """The tutorial notebooks, sorted by name."""
    return sorted(NB_DIR.glob("*.ipynb"))


def read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


def assigned_names(source: str) -> set[str]:
    tree = ast.parse(source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def smoke_values(nb) -> dict:
    defined = assigned_names(parameters_cell(nb).source)
    return {**SMOKE, **{k: v for k, v in SMOKE_EXTRA.items() if k in defined}}


def smoke_source(nb) -> str:
    """The parameters cell with the smoke values appended (later assignments win)."""
    lines = [f"{k} = {v!r}" for k, v in smoke_values(nb).items()]
    return (parameters_cell(nb).source + "\n\n# smoke parameters injected by tests/test_notebooks.py\n"
            + "\n".join(lines))


def source_digest(path: Path) -> str:
    """SHA-256 of a notebook's cells (type and source), the smoke parameters and :data:`FORMAT`."""
    nb = read(path)
    payload = {"format": FORMAT, "cells": [[c.cell_type, c.source] for c in nb.cells],
               "smoke": {k: repr(v) for k, v in smoke_values(nb).items()}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def smoke_environment(data_dir: Path, tmp_dir: Path) -> dict[str, str]:
    """Environment of a smoke kernel: the package from this checkout, one thread, no real data."""
    return {
        "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "TSIMCNE_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "TSIMCNE_DATA": str(data_dir),
        "TMPDIR": str(tmp_dir),
    }


def prepare(path: Path):
    """The notebook with the smoke values in its parameters cell, ready to execute."""
    nb = read(path)
    parameters_cell(nb).source = smoke_source(nb)
    return nb


def execute(nb, workdir: Path, timeout: int = CELL_TIMEOUT):
    """Run a prepared notebook in ``workdir``, in place (the kernel inherits ``os.environ``).

    The widgets' final state is stored in the notebook, and each tqdm progress bar's text
    fallback is set to the bar's final state (:func:`settle_progress_bars`).
    """
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3", store_widget_state=True,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    settle_progress_bars(nb)
    return nb


_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _final_bar_text(states: dict, model_id: str) -> str | None:
    """The text of a tqdm notebook bar in its stored (final) state, as tqdm prints it.

    tqdm's notebook bar is an HBox of an HTML (description and percentage), a
    FloatProgress and an HTML (counts, times, rate); ``None`` if ``model_id`` is not one.
    """
    import html

    box = states.get(model_id, {})
    children = box.get("state", {}).get("children") or []
    if box.get("model_name") != "HBoxModel" or len(children) != 3:
        return None
    parts = [states.get(str(c).removeprefix("IPY_MODEL_"), {}) for c in children]
    if [p.get("model_name") for p in parts] != ["HTMLModel", "FloatProgressModel", "HTMLModel"]:
        return None
    left, bar, right = (p.get("state", {}) for p in parts)
    total, value = float(bar.get("max") or 0), float(bar.get("value") or 0)
    filled = round(10 * value / total) if total > 0 else 0
    text = (f"{html.unescape(str(left.get('value', '')))}|{'█' * filled}{' ' * (10 - filled)}|"
            f"{html.unescape(str(right.get('value', '')))}")
    return text.replace("\u2007", " ")  # tqdm pads its HTML with figure spaces


def settle_progress_bars(nb) -> int:
    """Set each tqdm progress bar's ``text/plain`` to the bar's final state; return how many.

    A notebook bar's text fallback is written when the bar is first displayed (0 %), so
    static renderers (nbconvert, GitHub, the docs) would show every bar frozen at its start.
    The final state comes from the widget state nbclient stored
    (``store_widget_state=True``); bars without stored state are left as they are.
    """
    states = nb.metadata.get("widgets", {}).get(_WIDGET_STATE, {}).get("state", {})
    n = 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            view = out.get("data", {}).get(_WIDGET_VIEW)
            if not view or not _is_progress_bar(out):
                continue
            text = _final_bar_text(states, str(view.get("model_id", "")))
            if text is not None:
                out["data"]["text/plain"] = text
                n += 1
    return n


def for_docs(executed, path: Path):
    """A copy of an executed notebook for the documentation, stamped with its source digest.

    Widget state is dropped (the pages show each widget's static PNG fallback, which the
    widgets put in their outputs); tqdm's progress-bar widgets become their text, which
    :func:`execute` set to the bar's final state (a bar whose state was not stored would
    show 0 %, so it is dropped); a note at the top says how the page was made.
    """
    import nbformat

    nb = copy.deepcopy(executed)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [_bar_as_text(o) for o in cell.outputs
                            if not _is_progress_bar(o) or not _at_start(o)]
    nb.metadata[STAMP] = {"source": f"notebooks/{path.name}", "source_sha256": source_digest(path),
                          "smoke": {k: repr(v) for k, v in smoke_values(nb).items()}}
    size = ", ".join(f"{k}={v!r}" for k, v in smoke_values(nb).items() if k in ("SUBSET", "EPOCHS",
                                                                                 "N_IMAGES"))
    note = nbformat.v4.new_markdown_cell(
        "```{note}\n"
        f"This page is `notebooks/{path.name}` executed when the documentation was built, at "
        f"smoke size ({size}) on **synthetic** data (the embedded synthetic blood cells, or "
        "synthetic stand-in files in the real dataset's format). Its maps and numbers show what "
        "the notebook produces, not what the method achieves: run it with its default parameters "
        "(or `BUDGET = \"paper\"` on a GPU) for that. Interactive widgets are shown as their "
        "static images.\n```"
    )
    note.metadata["tags"] = ["docs-note"]
    nb.cells.insert(1, note)
    return nb


_PROGRESS = re.compile(r"^.*\d+%\|.*\|.*\[.*\]\s*$", re.S)


def _is_progress_bar(output) -> bool:
    """A tqdm notebook progress bar: a widget view whose text fallback is the bar."""
    data = output.get("data", {})
    text = data.get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return ("application/vnd.jupyter.widget-view+json" in data and "image/png" not in data
            and bool(_PROGRESS.match(text)))


def _bar_text(output) -> str:
    text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else text


def _at_start(output) -> bool:
    """Whether a progress bar's text still shows its first display (0 %, nothing done)."""
    return bool(re.search(r"(?:^|\s)0%\|", _bar_text(output)))


def _bar_as_text(output):
    """A settled progress bar as a plain-text output; any other output unchanged."""
    import nbformat

    if not _is_progress_bar(output):
        return output
    return nbformat.v4.new_output("display_data", data={"text/plain": _bar_text(output)})


def is_fresh(copy_path: Path, source: Path) -> bool:
    """Whether ``copy_path`` is an executed copy of the current ``source``."""
    if not copy_path.is_file():
        return False
    try:
        stamp = read(copy_path).metadata.get(STAMP, {})
    except Exception:  # noqa: BLE001 - a damaged copy is simply stale
        return False
    return stamp.get("source_sha256") == source_digest(source)


def write_for_docs(executed, path: Path, out_dir: Path) -> Path:
    import nbformat

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / path.name
    tmp = target.with_suffix(".ipynb.part")
    nbformat.write(for_docs(executed, path), tmp)
    os.replace(tmp, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "tutorials",
                        help="folder of the executed copies (default docs/tutorials)")
    parser.add_argument("--force", action="store_true", help="execute even fresh copies again")
    parser.add_argument("names", nargs="*", help="notebook names (default: all)")
    args = parser.parse_args(argv)
    paths = [p for p in notebooks() if not args.names or p.stem in args.names]
    stale = [p for p in paths if args.force or not is_fresh(args.out / p.name, p)]
    for p in paths:
        if p not in stale:
            print(f"{p.name}: executed copy is up to date")
    for p in stale:
        with tempfile.TemporaryDirectory(prefix="tsimcne-docs-") as tmp:
            tmp = Path(tmp)
            for sub in ("no-data-here", "tmp", "work"):
                (tmp / sub).mkdir()
            os.environ.update(smoke_environment(tmp / "no-data-here", tmp / "tmp"))
            os.environ.pop("MPLBACKEND", None)
            t0 = time.perf_counter()
            executed = execute(prepare(p), tmp / "work")
            target = write_for_docs(executed, p, args.out)
            print(f"{p.name}: executed in {time.perf_counter() - t0:.0f} s -> {target}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
