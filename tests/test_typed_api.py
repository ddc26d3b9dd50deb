"""The typed public API (issue 12, item 5): numpydoc ``name : type`` entries, ``py.typed``, and
the type checker's file list (``scripts/test.sh`` runs mypy on it)."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

numpydoc = pytest.importorskip("numpydoc.docscrape")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from check_docs import public_names  # noqa: E402

import tsimcne_nb  # noqa: E402

#: API modules left out of the check (none: the widgets are checked since issue 14 was merged)
SKIP_MODULES: tuple[str, ...] = ()


def _doc(obj):
    if inspect.isclass(obj):
        return numpydoc.ClassDoc(obj, config={"show_class_members": False})
    return numpydoc.FunctionDoc(obj)


def _entries(obj) -> dict[str, str]:
    """parameter name -> numpydoc type of its entry (a dataclass's fields may be documented
    as Attributes)."""
    import dataclasses

    out = {}
    doc = _doc(obj)
    sections = ["Attributes", "Parameters"] if dataclasses.is_dataclass(obj) else ["Parameters"]
    for p in [p for s in sections for p in doc[s]]:
        for name in p.name.split(","):
            out[name.strip().lstrip("*")] = p.type.strip()
    return out


def _parameters(obj) -> list[str]:
    sig = inspect.signature(obj.__init__ if inspect.isclass(obj) else obj)
    return [n for n, p in sig.parameters.items()
            if n not in ("self", "cls") and not n.startswith("_")
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def _api_objects():
    """(qualified name, object) of every public function, class and public method of the
    modules on the API pages."""
    modules = []
    for rst in sorted((ROOT / "docs" / "api").glob("*.rst")):
        modules += re.findall(r"automodule:: (\S+)", rst.read_text())
    for name in modules:
        if name.startswith(SKIP_MODULES):
            continue
        module = importlib.import_module(name)
        for obj_name in public_names(module):
            obj = getattr(module, obj_name)
            if inspect.isclass(obj):
                yield f"{name}.{obj_name}", obj
                for meth_name, meth in vars(obj).items():
                    if not meth_name.startswith("_") and inspect.isfunction(meth):
                        yield f"{name}.{obj_name}.{meth_name}", meth
            elif inspect.isfunction(obj):
                yield f"{name}.{obj_name}", obj


def test_top_level_names_document_every_parameter_with_a_type():
    missing = []
    for name, module in tsimcne_nb._LAZY.items():
        obj = getattr(importlib.import_module(module), name)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue  # data (METHODS, ...) is documented with a #: comment
        entries = _entries(obj)
        for p in _parameters(obj):
            if p not in entries:
                missing.append(f"tsimcne_nb.{name}: no entry for {p}")
            elif not entries[p]:
                missing.append(f"tsimcne_nb.{name}: {p} has no type")
    assert not missing, "\n".join(missing)


def test_every_public_parameter_has_a_typed_entry():
    problems = []
    for qual, obj in _api_objects():
        if not obj.__doc__:
            continue
        entries = _entries(obj)
        problems += [f"{qual}: {p} has no type" for p, typ in entries.items() if not typ]
        problems += [f"{qual}: no entry for {p}" for p in _parameters(obj) if p not in entries]
    assert not problems, "\n".join(problems)


def test_the_checks_can_fail():
    def f(a: int, b: str = "x") -> None:
        """Doc.

        Parameters
        ----------
        a
            No type.
        """

    assert _entries(f) == {"a": ""}
    assert _parameters(f) == ["a", "b"]


def test_py_typed_is_shipped():
    assert (ROOT / "tsimcne_nb" / "py.typed").is_file()
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"tsimcne_nb" = \[[^\]]*"py\.typed"', text)


def test_type_checker_covers_the_public_modules():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    files = config["tool"]["mypy"]["files"]
    assert all((ROOT / f).is_file() for f in files), [f for f in files if not (ROOT / f).is_file()]
    # every module a top-level name lives in is type-checked
    wanted = {module.replace(".", "/") for module in tsimcne_nb._LAZY.values()}
    have = {f.removesuffix(".py").removesuffix("/__init__") for f in files}
    assert not wanted - have, f"not type-checked: {sorted(wanted - have)}"
    assert "mypy" in (ROOT / "scripts" / "test.sh").read_text()
