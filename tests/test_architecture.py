"""The package's layers import only downwards (docs/ARCHITECTURE.md), and no module is too long.

The import graph is read from the source with :mod:`ast`, including imports inside functions
(the lazy ones), so a deferred import cannot hide an upward arrow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tsimcne_nb"

#: layer of each top-level part of the package; an import may only point to a lower number or
#: within the same part.  eval, qc and viz share a tier in the docs; within it viz (drawing only)
#: sits below eval and qc, which do not import each other, and widgets sit on top of the tier.
RANK = {
    "_foundation": 0,  # errors, _io, manifest, modelfile, _threads, validation, _order
    "data": 1,
    "nn": 2,
    "train": 3,
    "estimators": 4,
    "viz": 5,
    "eval": 6,
    "qc": 6,
    "widgets": 7,
    "pipelines": 8,
    "cli": 9,
    "__main__": 10,
}

#: parts that work on given maps and features: they must never reach the training machinery
#: (the issue's rule: "no import of train/estimators from qc, eval metrics or viz")
NO_TRAINING = ("qc", "viz", "eval.metrics")
TRAINING = ("train", "estimators")

#: the longest a module may be (lines); nothing is exempt since issue 14 split widgets/explorer.py
MAX_LINES = 600
TOO_LONG_ALLOWED: set[str] = set()


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["tsimcne_nb", *parts])] = path
    return out


def _part(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        # tsimcne_nb/__init__.py: __version__ and a lazy name map (resolved in _graph), no
        # imports of its own: importing __version__ from it is importing from the foundation
        return "_package"
    if parts[0] in RANK:
        return parts[0]
    return "_foundation"


def _imports(path: Path, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, imported module) for every import statement, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("tsimcne_nb")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if not name.startswith("tsimcne_nb"):
                continue
            found.append((node.lineno, name))
            # `from tsimcne_nb.x import y` may import the sub-module x.y
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def _lazy_names() -> dict[str, str]:
    """The top-level lazy name map: ``from tsimcne_nb import TSimCNE`` imports its module."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_LAZY":
            return {f"tsimcne_nb.{k}": v for k, v in ast.literal_eval(node.value).items()}
    raise AssertionError("tsimcne_nb/__init__.py has no _LAZY map")


def _graph() -> list[tuple[str, int, str]]:
    mods = _modules()
    lazy = _lazy_names()
    edges = []
    for mod, path in mods.items():
        for line, target in _imports(path, mod, path.name == "__init__.py"):
            target = lazy.get(target, target)
            # keep only names that are modules (not functions imported from one)
            while target not in mods and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in mods and target != mod:
                edges.append((mod, line, target))
    return edges


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == f"tsimcne_nb.{p}" or module.startswith(f"tsimcne_nb.{p}.") for p in prefixes)


def test_the_graph_is_read():
    edges = _graph()
    # sanity: the walker sees top-level, lazy (in-function) and package imports
    assert ("tsimcne_nb.data.registry", "tsimcne_nb.data.loaders.medmnist") in {(a, b) for a, _, b in edges}
    assert any(a == "tsimcne_nb.cli" and b.startswith("tsimcne_nb.pipelines") for a, _, b in edges)
    assert len(edges) > 100


def _upward(edges) -> list[str]:
    out = []
    for mod, line, target in edges:
        a, b = _part(mod), _part(target)
        if a == "_package" or a == b or b == "_package":
            continue
        if RANK[b] >= RANK[a]:
            out.append(f"{mod}:{line} imports {target} ({a} -> {b})")
    return out


def _reaches_training(edges) -> list[str]:
    return [f"{mod}:{line} imports {target}" for mod, line, target in edges
            if _within(mod, NO_TRAINING) and _within(target, TRAINING)]


def test_layers_import_only_downwards():
    upward = _upward(_graph())
    assert not upward, "imports against the layer order:\n" + "\n".join(upward)


def test_qc_viz_and_metrics_never_reach_training():
    bad = _reaches_training(_graph())
    assert not bad, "\n".join(bad)


def test_the_rules_can_fail(tmp_path):
    # an upward import planted inside a function of a copy of a QC module is found and reported
    planted = tmp_path / "properties.py"
    source = _modules()["tsimcne_nb.qc.properties"].read_text()
    planted.write_text(source + "\n\ndef _bad():\n    from tsimcne_nb.train import loop\n"
                       "    from tsimcne_nb.pipelines.fit import fit_to_directory\n")
    edges = [("tsimcne_nb.qc.properties", line, t)
             for line, t in _imports(planted, "tsimcne_nb.qc.properties", False)]
    n = len(source.splitlines())
    assert ("tsimcne_nb.qc.properties", n + 4, "tsimcne_nb.train.loop") in edges
    assert ("tsimcne_nb.qc.properties", n + 5, "tsimcne_nb.pipelines.fit") in edges
    assert _reaches_training([e for e in edges if e[2] == "tsimcne_nb.train.loop"])
    assert _upward([e for e in edges if e[2] == "tsimcne_nb.pipelines.fit"])
    # siblings of one tier do not import each other either
    assert _upward([("tsimcne_nb.qc.report", 1, "tsimcne_nb.eval.metrics")])
    assert not _upward([("tsimcne_nb.pipelines.qc", 1, "tsimcne_nb.qc.report")])


@pytest.mark.parametrize("module", sorted(_modules()))
def test_no_module_is_over_600_lines(module):
    path = _modules()[module]
    rel = path.relative_to(PACKAGE).as_posix()
    n = len(path.read_text().splitlines())
    if rel in TOO_LONG_ALLOWED:
        pytest.skip(f"{rel} ({n} lines) is split by issue 14")
    assert n <= MAX_LINES, f"{rel} has {n} lines; split it by concern (limit {MAX_LINES})"
