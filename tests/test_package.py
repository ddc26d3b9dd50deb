"""Package-level behaviour: fast import, lazy public names, the CLI's argument handling."""

from __future__ import annotations

import subprocess
import sys

import pytest

import tsimcne_nb
from tsimcne_nb.cli import _parse_epochs, main, parse_options
from tsimcne_nb.errors import TSimCNEError


def test_import_is_fast_and_light():
    code = (
        "import time, sys; t = time.perf_counter(); import tsimcne_nb; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'openTSNE', 'jscatter', 'matplotlib', 'torchvision') if m in sys.modules]; "
        "print(dt); print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, heavy = out.stdout.strip().split("\n") + [""] * (2 - len(out.stdout.strip().split("\n")))
    assert float(dt) < 1.0
    assert heavy == "", f"import tsimcne_nb pulled in heavy modules: {heavy}"


def test_lazy_attribute_unknown_name():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = tsimcne_nb.nope


def test_lazy_attribute_resolves():
    from tsimcne_nb.data.core import ImageDataset

    assert tsimcne_nb.ImageDataset is ImageDataset


def test_parse_options_casts_numbers():
    assert parse_options(["size=64", "labels=7", "split=test", "min-count=0.5"]) == {
        "size": 64, "labels": 7, "split": "test", "min_count": 0.5,
    }
    with pytest.raises(TSimCNEError, match="KEY=VALUE"):
        parse_options(["size"])


def test_parse_epochs():
    assert _parse_epochs("10,2,5") == (10, 2, 5)
    assert _parse_epochs(None) is None
    with pytest.raises(TSimCNEError, match="three"):
        _parse_epochs("10,2")
    with pytest.raises(TSimCNEError, match="integers"):
        _parse_epochs("a,b,c")


def test_cli_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == tsimcne_nb.__version__
    assert main([]) == 2


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "tsimcne_nb", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == tsimcne_nb.__version__


def test_citation_changelog_and_version_agree():
    import re
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]
    version = re.search(r'^version = "([^"]+)"', (root / "pyproject.toml").read_text(), re.M).group(1)
    assert version == tsimcne_nb.__version__
    cff = yaml.safe_load((root / "CITATION.cff").read_text(encoding="utf-8"))
    assert cff["cff-version"] == "1.2.0" and cff["version"] == version
    for key in ("message", "title", "authors"):
        assert cff[key], key
    titles = {ref["title"]: ref for ref in cff["references"]}
    tsimcne = titles["Unsupervised visualization of image datasets using contrastive learning"]
    assert [a["family-names"] for a in tsimcne["authors"]] == ["Böhm", "Berens", "Kobak"]
    assert tsimcne["year"] == 2023 and cff["preferred-citation"]["title"] == tsimcne["title"]
    assert "Self-supervised Visualisation of Microscopy Datasets" in titles
    changelog = (root / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{version}]" in changelog and "## [Unreleased]" in changelog
