"""The tutorial notebooks: built from their sources, stored clean, each runs at a smoke size.

The notebooks are generated from ``notebooks/src/*.py`` (jupytext percent format) by
``notebooks/_build/build.py``; the committed ``.ipynb`` files must equal what the sources
produce, and the sources may import only the public API of ``tsimcne_nb``.

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
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NB_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NB_DIR.glob("*.ipynb"))
NAMES = [p.stem for p in NOTEBOOKS]

# the smoke parameters and the executor are shared with the documentation build
sys.path.insert(0, str(NB_DIR / "_build"))
import build  # noqa: E402
import nbexec  # noqa: E402

#: every notebook exposes these knobs in its parameters cell
REQUIRED_PARAMETERS = ("DATA_ROOT", "BUDGET", "DEVICE", "SUBSET", "SEED", "EPOCHS")
SMOKE, SMOKE_EXTRA, smoke_source = nbexec.SMOKE, nbexec.SMOKE_EXTRA, nbexec.smoke_source
#: set (by scripts/test.sh) to a folder: executed notebooks are also written there for the docs
DOCS_COPIES = os.environ.get("TSIMCNE_DOCS_NOTEBOOKS")

STANDIN = "THIS RUN USES SYNTHETIC STAND-IN"
#: text each notebook's outputs must contain (beyond "no error" and "a figure")
EXPECT: dict[str, tuple[str, ...]] = {
    "00_quickstart": ("knn_accuracy", "t-SNE of pixels", "loaded model gives the same map: True",
                      "kNN on the map agrees", "150 selected; kNN purity",
                      "feature-space neighbours are also map neighbours",
                      "selection of 150 points restored"),
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


_parameters_cell = nbexec.parameters_cell
_assigned_names = nbexec.assigned_names


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


# ------------------------------------------------------------------ sources
SOURCES = build.sources()
#: sub-module imports the sources may use besides ``tsimcne_nb`` and ``tsimcne_nb.widgets``
#: (none: since the layered layout, ``compare`` is a top-level name like the rest)
PUBLIC_SUBMODULE_IMPORTS: dict[str, set[str]] = {}


def test_every_notebook_has_a_source():
    assert [p.stem for p in SOURCES] == NAMES


def test_notebooks_equal_what_their_sources_produce():
    stale = build.differences()
    assert not stale, (f"notebooks differ from their sources: {stale}; edit notebooks/src/*.py "
                       "and run python notebooks/_build/build.py")


def test_build_check_names_a_changed_notebook(tmp_path):
    """The comparison fails on an edited notebook, an edited source and a missing source."""
    src, nbs = tmp_path / "src", tmp_path / "nbs"
    src.mkdir()
    nbs.mkdir()
    for name in ("00_quickstart", "02_bloodmnist"):
        (src / f"{name}.py").write_bytes((NB_DIR / "src" / f"{name}.py").read_bytes())
        (nbs / f"{name}.ipynb").write_bytes((NB_DIR / f"{name}.ipynb").read_bytes())
    assert build.differences(src, nbs) == []
    # a notebook edited by hand (here: one more sentence in its last cell)
    text = (nbs / "02_bloodmnist.ipynb").read_text()
    (nbs / "02_bloodmnist.ipynb").write_text(text.replace("Licence: CC BY 4.0.", "Licence: CC BY."))
    assert build.differences(src, nbs) == ["02_bloodmnist.ipynb"]
    # a source edited without rebuilding
    (src / "00_quickstart.py").write_text((src / "00_quickstart.py").read_text() + "\n# %%\n1 + 1\n")
    assert build.differences(src, nbs) == ["00_quickstart.ipynb", "02_bloodmnist.ipynb"]
    # a notebook without a source
    (nbs / "extra.ipynb").write_text("{}")
    assert "extra.ipynb (no source src/extra.py)" in build.differences(src, nbs)


def test_build_check_exit_status(monkeypatch, capsys):
    assert build.main(["--check"]) == 0
    monkeypatch.setattr(build, "differences", lambda: ["05_pcam.ipynb"])
    assert build.main(["--check"]) == 1
    assert "notebooks/05_pcam.ipynb" in capsys.readouterr().out


def test_conversion_is_deterministic_and_keeps_tags():
    source = (NB_DIR / "src" / "05_pcam.py").read_text()
    nb1, nb2 = build.to_notebook(source), build.to_notebook(source)
    assert nb1 == nb2
    assert [c["id"] for c in nb1.cells] == [f"cell-{i:02d}" for i in range(len(nb1.cells))]
    tagged = [c for c in nb1.cells if c.metadata.get("tags")]
    assert [c.metadata["tags"] for c in tagged] == [["parameters"]]
    assert all(set(c.metadata) <= {"tags"} for c in nb1.cells)  # no jupytext metadata


def _private_imports(source: str) -> list[str]:
    """Imports and attributes of ``tsimcne_nb`` in ``source`` that are not its public API."""
    import tsimcne_nb
    import tsimcne_nb.widgets

    public = {"tsimcne_nb": set(tsimcne_nb.__all__),
              "tsimcne_nb.widgets": set(tsimcne_nb.widgets.__all__), **PUBLIC_SUBMODULE_IMPORTS}
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))
    bad = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            bad += [a.name for a in node.names
                    if a.name.startswith("tsimcne_nb.") and a.name not in ("tsimcne_nb.widgets",)]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tsimcne_nb":
            allowed = public.get(node.module)
            bad += [f"{node.module}.{a.name}" for a in node.names
                    if allowed is None or a.name not in allowed]
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "tsimcne_nb" and node.attr not in public["tsimcne_nb"]):
            bad.append(f"tsimcne_nb.{node.attr}")
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_sources_import_only_the_public_api(path):
    bad = _private_imports(path.read_text())
    assert not bad, (f"{path.name} uses {bad}: import from tsimcne_nb (add the name to the "
                     "lazy map in tsimcne_nb/__init__.py if it is missing)")


def test_public_api_check_can_fail():
    assert _private_imports("from tsimcne_nb._torch_utils import resolve_device") == [
        "tsimcne_nb._torch_utils.resolve_device"]
    assert _private_imports("from tsimcne_nb import figures\nimport tsimcne_nb.qc") == [
        "tsimcne_nb.figures", "tsimcne_nb.qc"]
    assert _private_imports("import tsimcne_nb\ntsimcne_nb.budgets.resolve_budget('quick')") == [
        "tsimcne_nb.budgets"]
    assert _private_imports("from tsimcne_nb.widgets import Explorer\n"
                            "from tsimcne_nb import TSimCNE, load_tutorial_dataset") == []


def test_sources_pass_ruff():
    import shutil
    import subprocess

    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install ruff)")
    res = subprocess.run([ruff, "check", "--no-cache", str(NB_DIR / "src")], capture_output=True,
                         text=True, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr


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
        if "load_tutorial_dataset(" in cell.source:
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
    assert ns["dataset"].synthetic
    assert ns["dataset"].name.startswith("synthetic-standin-") and "SYNTHETIC" in ns["TAG"]
    out = capsys.readouterr().out
    assert "The real data is not there" in out and "THIS RUN USES SYNTHETIC STAND-IN DATA" in out
    # the stand-ins went to a temporary folder, never into the data folder
    assert not any(data.iterdir()) and any(scratch.iterdir())


def test_standins_left_in_the_data_folder_are_not_taken_for_real(tmp_path, monkeypatch, capsys):
    from tsimcne_nb.data.standins import write_standin_files

    write_standin_files("pathmnist", tmp_path, n=45)
    monkeypatch.setenv("TSIMCNE_DATA", str(tmp_path))
    ns = _run_until_loaded(NB_DIR / "04_pathmnist.ipynb", DEVICE="cpu")
    assert "The real data is not there" not in capsys.readouterr().out  # loaded from the folder
    assert len(ns["dataset"]) == 45
    assert ns["dataset"].synthetic and ns["dataset"].name.startswith("synthetic-standin-")


# ------------------------------------------------------------------ execution
@pytest.mark.notebooks
@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs(path, tmp_path, monkeypatch):
    import nbformat

    nb = nbexec.prepare(path)
    # the kernel inherits this environment: the package from the checkout, one thread,
    # and an empty data folder so that no real dataset on this machine is picked up;
    # stand-in files and outputs written to temporary folders are removed with tmp_path
    (tmp_path / "tmp").mkdir()
    for key, value in nbexec.smoke_environment(tmp_path / "no-data-here", tmp_path / "tmp").items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    t0 = time.perf_counter()
    try:
        nbexec.execute(nb, work, timeout=CELL_TIMEOUT)
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
    if path.stem == "00_quickstart":
        # the training's progress bars show their final state in the saved notebook
        bars = [nbexec._bar_text(o) for c in nb.cells for o in c.get("outputs", [])
                if nbexec._is_progress_bar(o)]
        assert len(bars) == 3, f"expected one bar per training stage; got {bars}"
        assert all("100%|██████████|" in b for b in bars), bars
    if DOCS_COPIES:  # only a notebook that ran and showed what it should goes into the docs
        nbexec.write_for_docs(nb, path, ROOT / DOCS_COPIES)


# ------------------------------------------------------------------ executed copies for the docs
def test_docs_copies_are_stamped_and_stale_ones_detected(tmp_path, monkeypatch):
    """An executed copy carries its source's digest; a changed notebook makes it stale."""
    import nbformat

    src = tmp_path / "nbs" / "00_quickstart.ipynb"
    src.parent.mkdir()
    src.write_bytes((NB_DIR / "00_quickstart.ipynb").read_bytes())
    executed = nbexec.prepare(src)  # stands in for an executed notebook
    executed.metadata["widgets"] = {"state": {}}
    view = {"model_id": "x", "version_major": 2, "version_minor": 0}
    cell = next(c for c in executed.cells if c.cell_type == "code" and "Explorer(" in c.source)
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": view,
            "text/plain": "TSimCNE stage 1/3:   0%|          | 0/2 [00:00<?, ?step/s]"}),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": view, "image/png": "iVBORw0KGgo=",
            "text/plain": "VBox(children=(...))"}),
    ]
    out = nbexec.write_for_docs(executed, src, tmp_path / "docs")
    copy = nbformat.read(out, as_version=4)
    assert "widgets" not in copy.metadata  # the pages show the widgets' static images
    outputs = next(c for c in copy.cells if c.cell_type == "code" and "Explorer(" in c.source).outputs
    assert len(outputs) == 1 and "image/png" in outputs[0]["data"]  # the frozen progress bar is gone
    assert copy.metadata["tsimcne_docs"]["source_sha256"] == nbexec.source_digest(src)
    assert "synthetic" in copy.cells[1].source and "smoke size" in copy.cells[1].source
    assert nbexec.is_fresh(out, src)
    nb = nbformat.read(src, as_version=4)
    nb.cells[-1].source += "\nOne more sentence."
    nbformat.write(nb, src)
    assert not nbexec.is_fresh(out, src)
    # and a change of the smoke parameters makes it stale too
    nbformat.write(nbformat.read(NB_DIR / "00_quickstart.ipynb", as_version=4), src)
    assert nbexec.is_fresh(out, src)
    monkeypatch.setitem(nbexec.SMOKE, "SUBSET", 301)
    assert not nbexec.is_fresh(out, src)


@pytest.mark.notebooks
def test_progress_bars_show_their_final_state(tmp_path, monkeypatch):
    """An executed notebook, its nbconvert export and its docs copy show a tqdm bar finished."""
    import nbformat
    from nbconvert import MarkdownExporter

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "Python 3",
                                                           "language": "python"}})
    params = nbformat.v4.new_code_cell("SUBSET = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(
        "from tqdm.auto import tqdm\n"
        "for _ in tqdm(range(7), desc='demo stage 1/1', unit='step'):\n"
        "    pass")]
    src = tmp_path / "tiny.ipynb"
    nbformat.write(nb, src)
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    executed = nbexec.execute(nbexec.read(src), tmp_path, timeout=120)

    (bar,) = executed.cells[1].outputs
    assert "application/vnd.jupyter.widget-view+json" in bar["data"]  # still the live widget
    text = bar["data"]["text/plain"]
    assert text.startswith("demo stage 1/1: 100%|██████████| 7/7 ["), text
    # the stored widget state holds the final value too (for renderers that draw widgets)
    states = executed.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(s["model_name"] == "FloatProgressModel" and s["state"]["value"] == 7
               for s in states.values())
    # a static export (nbconvert) shows the final state, not 0 %
    body, _ = MarkdownExporter().from_notebook_node(executed)
    assert "100%|██████████| 7/7" in body and "0/7" not in body
    # the docs copy keeps the bar as its final text, without widget state
    copy = nbexec.for_docs(executed, src)
    (out,) = next(c for c in copy.cells if c.cell_type == "code" and "tqdm" in c.source).outputs
    assert out["data"] == {"text/plain": text}
