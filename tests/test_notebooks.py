"""The tutorial notebooks: stored clean, and each runs top to bottom at a smoke size.

Execution (``@pytest.mark.notebooks``) replaces the source of each notebook's
``parameters`` cell by its defaults plus the smoke parameters below (what
papermill does with ``-p``), runs every cell with nbclient in a temporary
working directory, and checks that the outputs a reader relies on are there.
No real dataset is present (``TSIMCNE_DATA`` points at an empty folder), so the
dataset notebooks run on SYNTHETIC stand-in files and must say so.

Run only these: ``python -m pytest tests/test_notebooks.py -m notebooks``.
"""

from __future__ import annotations

import ast
import os
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]

#: every notebook exposes these knobs in its parameters cell
REQUIRED_PARAMETERS = ("DATA_ROOT", "BUDGET", "DEVICE", "SUBSET", "SEED", "EPOCHS")

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

STANDIN = "THIS RUN USES SYNTHETIC STAND-IN"
#: text each notebook's outputs must contain (beyond "no error" and "a figure")
EXPECT: dict[str, tuple[str, ...]] = {
    "00_quickstart": ("knn_accuracy", "t-SNE of pixels", "loaded model gives the same map: True",
                      "kNN on the map agrees"),
    "01_leukemia": (STANDIN, "metrics of your map", "paper kNN %", "EBO (erythroblast) cells"),
    "02_bloodmnist": (STANDIN, "metrics of your map", "paper kNN %"),
    "03_dermamnist": (STANDIN, "metrics of your map", "paper kNN %", "melanocytic nevi"),
    "04_pathmnist": (STANDIN, "metrics of your map", "paper kNN %", "debris group"),
    "05_pcam": (STANDIN, "metrics of your map", "paper kNN %", "violet tint explained"),
    "baselines": (STANDIN, "paper kNN %", "t-SNE pixel space"),
    "quality_control": (STANDIN, "precision", "recall", "exclusion list"),
    "augmentations": (STANDIN, "no crops", "SYNTHETIC STAND-IN CIFAR-10"),
}
#: notebooks that show an interactive widget (with its PNG fallback)
WIDGETS = {"00_quickstart", "01_leukemia", "02_bloodmnist", "03_dermamnist", "04_pathmnist",
           "05_pcam", "baselines", "quality_control", "augmentations"}

CELL_TIMEOUT = 600  # s; a smoke cell takes seconds, this only catches hangs


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def _parameters_cell(nb):
    cells = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


def _assigned_names(source: str) -> set[str]:
    tree = ast.parse(source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


def smoke_source(nb) -> str:
    """The parameters cell with the smoke values appended (later assignments win)."""
    cell = _parameters_cell(nb)
    defined = _assigned_names(cell.source)
    values = {**SMOKE, **{k: v for k, v in SMOKE_EXTRA.items() if k in defined}}
    lines = [f"{k} = {v!r}" for k, v in values.items()]
    return cell.source + "\n\n# smoke parameters injected by tests/test_notebooks.py\n" + "\n".join(lines)


def _texts(nb) -> str:
    """All text the executed notebook shows: streams, text/plain, text/html, errors."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out.get("text", ""))
            data = out.get("data", {})
            for mime in ("text/plain", "text/html", "text/markdown"):
                if mime in data:
                    v = data[mime]
                    parts.append("".join(v) if isinstance(v, list) else v)
    return "\n".join(parts)


def _mimes(nb) -> set[str]:
    return {m for c in nb.cells for o in c.get("outputs", []) for m in o.get("data", {})}


# ------------------------------------------------------------------ stored notebooks
def test_there_are_notebooks():
    assert {"00_quickstart", "01_leukemia", "02_bloodmnist", "03_dermamnist", "04_pathmnist",
            "05_pcam", "baselines", "quality_control", "augmentations"} <= set(NAMES)
    assert set(NAMES) == set(EXPECT), "every notebook needs its expected outputs in EXPECT"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_stored_clean_with_parameters(path):
    import nbformat

    nb = _read(path)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {i} has stored outputs: clear them"
            assert cell.execution_count is None, f"{path.name} cell {i} has an execution count"
    params = _parameters_cell(nb)
    assert nb.cells.index(params) <= 2, "the parameters cell belongs near the top"
    missing = set(REQUIRED_PARAMETERS) - _assigned_names(params.source)
    assert not missing, f"{path.name}: parameters cell lacks {sorted(missing)}"
    # every code cell is valid Python once IPython magics are removed
    for cell in nb.cells:
        if cell.cell_type == "code":
            ast.parse("\n".join(line for line in cell.source.splitlines()
                                if not line.lstrip().startswith(("%", "!"))))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_no_absolute_paths(path):
    nb = _read(path)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert not re.search(r"""["'](/home/|/work/|/root/|/Users/|[A-Za-z]:\\)""", code)


def test_smoke_source_overrides_defaults():
    nb = _read(NB_DIR / "05_pcam.ipynb")
    ns: dict = {}
    exec(smoke_source(nb), ns)
    assert ns["SUBSET"] == 300 and ns["EPOCHS"] == (2, 1, 1) and ns["SIZE"] == 32
    assert "N_IMAGES" not in ns  # knobs are injected only where the notebook defines them


def test_readme_lists_every_notebook():
    readme = (NB_DIR / "README.md").read_text()
    for name in NAMES:
        assert f"{name}.ipynb" in readme, f"notebooks/README.md does not list {name}.ipynb"


# ------------------------------------------------------------------ data-loading cells
def _run_until_loaded(path: Path, **overrides) -> dict:
    """Run the parameters, set-up and data cells of a notebook in-process (no kernel)."""
    nb = _read(path)
    params = _parameters_cell(nb)
    source = params.source + "\n" + "\n".join(f"{k} = {v!r}" for k, v in overrides.items())
    ns: dict = {"display": lambda *a, **k: None}
    exec(source, ns)
    for cell in nb.cells[nb.cells.index(params) + 1:]:
        if cell.cell_type != "code":
            continue
        exec("\n".join(line for line in cell.source.splitlines()
                       if not line.lstrip().startswith("%")), ns)
        if "load_dataset(NAME" in cell.source:
            return ns
    raise AssertionError(f"{path.name} has no data-loading cell")


def test_paper_budget_without_data_is_an_error(tmp_path, monkeypatch):
    from tsimcne_nb.errors import DatasetNotFoundError

    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="bloodmnist"):
        _run_until_loaded(NB_DIR / "02_bloodmnist.ipynb", BUDGET="paper", DEVICE="cpu")


def test_quick_budget_without_data_uses_marked_standins(tmp_path, monkeypatch, capsys):
    import tempfile

    data, scratch = tmp_path / "data", tmp_path / "scratch"
    data.mkdir()
    scratch.mkdir()
    monkeypatch.setenv("TSIMCNE_DATA", str(data))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ns = _run_until_loaded(NB_DIR / "02_bloodmnist.ipynb", DEVICE="cpu", STANDIN_N=64)
    assert ns["STANDIN"] is True and ns["dataset"].synthetic
    assert ns["dataset"].name.startswith("synthetic-standin-") and "SYNTHETIC" in ns["TAG"]
    assert "THIS RUN USES SYNTHETIC STAND-IN DATA" in capsys.readouterr().out
    # the stand-ins went to a temporary folder, never into the data folder
    assert not any(data.iterdir()) and any(scratch.iterdir())


def test_standins_left_in_the_data_folder_are_not_taken_for_real(tmp_path, monkeypatch, capsys):
    from tsimcne_nb.datasets.standins import write_standin_files

    write_standin_files("pathmnist", tmp_path, n=45)
    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path))
    ns = _run_until_loaded(NB_DIR / "04_pathmnist.ipynb", DEVICE="cpu")
    assert "The real data is not there" not in capsys.readouterr().out  # loaded from the folder
    assert len(ns["dataset"]) == 45
    assert ns["STANDIN"] is True and ns["dataset"].synthetic


# ------------------------------------------------------------------ execution
@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    nb = _read(path)
    _parameters_cell(nb).source = smoke_source(nb)
    # the kernel inherits this environment: the package from the checkout, one thread,
    # and an empty data folder so that no real dataset on this machine is picked up
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("TSIMCNE_NUM_THREADS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path / "no-data-here"))
    monkeypatch.delenv("MPLBACKEND", raising=False)
    # stand-in files and outputs written to temporary folders are removed with tmp_path
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    t0 = time.perf_counter()
    try:
        client.execute()
    finally:
        # keep the executed notebook for a look when something fails
        nbformat.write(nb, tmp_path / f"{path.stem}.executed.ipynb")
    seconds = time.perf_counter() - t0
    print(f"{path.name}: {seconds:.0f} s")

    text = _texts(nb)
    for expected in EXPECT[path.stem]:
        assert expected in text, f"{path.name}: no output contains {expected!r}"
    mimes = _mimes(nb)
    assert "image/png" in mimes, f"{path.name} shows no figure"
    if path.stem in WIDGETS:
        assert "application/vnd.jupyter.widget-view+json" in mimes, f"{path.name} shows no widget"
