"""The command line's conventions: the help and JSON outputs documented field by field.

``docs/cli-outputs.md`` documents every JSON file that ``fit``, ``compare`` and ``qc`` write;
these tests run each command on a tiny dataset and fail when a field is written that the page
does not document (so the page cannot drift from the code).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tsimcne_nb.cli import COMMANDS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cli-outputs.md"
COMMON = ["--device", "cpu", "--num-threads", "1", "--no-progress"]


# ------------------------------------------------------------------ version and help
def test_python_m_help_lists_every_command_with_an_example():
    out = subprocess.run([sys.executable, "-m", "tsimcne_nb", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(COMMANDS), "every sub-command needs a line in COMMANDS"
    lines = out.splitlines()
    for name, (text, example) in COMMANDS.items():
        i = next((i for i, line in enumerate(lines) if line.split()[:1] == [name]), None)
        assert i is not None, f"--help does not list {name}"
        assert text in lines[i]
        assert lines[i + 1].strip() == f"e.g. {example}"
        assert example.startswith(f"tsimcne-nb {name}")
        # the example parses (argparse exits on an unknown option)
        build_parser().parse_args(example.split()[1:])
    assert "--version" in out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "commands:" in capsys.readouterr().out


# ------------------------------------------------------------------ documented JSON fields
def _doc_sections() -> dict[str, set[str]]:
    """Heading path ("## fit / ### metrics.json") -> the backticked names of its table rows."""
    sections: dict[str, set[str]] = {}
    h2 = h3 = ""
    for line in DOC.read_text().splitlines():
        if line.startswith("## "):
            h2, h3 = line[3:], ""
        elif line.startswith("### "):
            h3 = line[4:]
        m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if m:
            sections.setdefault(f"{h2} / {h3}", set()).add(m.group(1))
    return sections


def _fields(command: str, *files: str) -> set[str]:
    """The common fields plus those documented for ``files`` of ``tsimcne-nb command``."""
    sections = _doc_sections()
    out: set[str] = set(sections.get(" / ", set()))  # the common fields, before any heading
    for f in files:
        key = f"`tsimcne-nb {command}` / `{f}`"
        assert key in sections, f"docs/cli-outputs.md has no section {key!r}"
        out |= sections[key]
    return out


def _undocumented(obj: dict, documented: set[str], prefix: str = "") -> list[str]:
    """Keys of ``obj`` not documented; nested objects whose fields are documented are checked too."""
    missing = []
    for key, value in obj.items():
        name = f"{prefix}{key}"
        generic = re.sub(r"^[^.]+", "<kind>", name) if prefix == "" else name
        children = [d for d in documented if d.startswith(f"{name}.") or d.startswith(f"{name}[]")]
        if name not in documented and not children and generic not in documented:
            if not any(d.startswith(f"{generic}.") for d in documented):
                missing.append(name)
                continue
        if isinstance(value, dict) and children:
            missing += _undocumented(value, documented, f"{name}.")
        elif isinstance(value, dict) and any(d.startswith("<kind>.") for d in documented) and not prefix:
            missing += [f"{name}.{k}" for k in value if f"<kind>.{k}" not in documented]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            # records are documented once, as the items of `runs`
            missing += [f"{name}[].{k}" for item in value for k in item
                        if f"{name}[].{k}" not in documented and f"runs[].{k}" not in documented]
    return sorted(set(missing))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    labels = np.arange(160) % 4
    images = np.clip((labels * 60 + 20)[:, None, None, None]
                     + rng.integers(-20, 21, (160, 16, 16, 3)), 0, 255).astype(np.uint8)
    np.savez(tmp / "cells.npz", images=images, labels=labels)
    data = ["--dataset", f"npz:{tmp / 'cells.npz'}"]
    assert main(["fit", *data, "--epochs", "1,1,1", "--batch-size", "32", "--backbone",
                 "resnet18_w4", "--out", str(tmp / "fit"), *COMMON]) == 0
    assert main(["compare", *data, "--methods", "tsne-pixels", "--seeds", "0,1",
                 "--out", str(tmp / "compare"), *COMMON]) == 0
    assert main(["qc", *data, "--inject", "duplicates:8,artefacts:4", "--map", "tsne-pixels",
                 "--out", str(tmp / "qc"), *COMMON]) == 0
    assert main(["qc", *data, "--model", str(tmp / "fit" / "model.pt"),
                 "--out", str(tmp / "qc-model"), *COMMON]) == 0
    return tmp


def _read(path: Path) -> dict:
    return json.loads(path.read_text())


def test_fit_json_fields_are_documented(outputs):
    assert _undocumented(_read(outputs / "fit" / "metrics.json"), _fields("fit", "metrics.json")) == []
    assert _undocumented(_read(outputs / "fit" / "manifest.json"),
                         _fields("fit", "manifest.json")) == []


def test_compare_json_fields_are_documented(outputs):
    fields = _fields("compare", "metrics/<method>.json")
    metrics = _read(outputs / "compare" / "metrics" / "tsne-pixels.json")
    assert len(metrics["runs"]) == 2 and metrics["summary"]["knn_accuracy"]["sd"] is not None
    assert _undocumented(metrics, fields) == []
    manifest = _read(outputs / "compare" / "manifest.json")
    assert manifest["kind"] == "comparison"
    assert _undocumented(manifest, _fields("compare", "manifest.json",
                                           "metrics/<method>.json")) == []


def test_qc_json_fields_are_documented(outputs):
    recovery = _read(outputs / "qc" / "recovery.json")
    assert set(recovery) == {"duplicates", "artefacts"}
    assert _undocumented(recovery, _fields("qc", "recovery.json")) == []
    fields = _fields("qc", "manifest.json")
    for run in ("qc", "qc-model"):
        assert _undocumented(_read(outputs / run / "manifest.json"), fields) == [], run


def test_the_check_itself_finds_an_undocumented_field():
    fields = _fields("fit", "metrics.json")
    assert _undocumented({"knn_accuracy": 0.5, "brand_new": 1}, fields) == ["brand_new"]
    assert _undocumented({"dataset": {"name": "x", "colour": 1}}, _fields("qc", "manifest.json")) \
        == ["dataset.colour"]
