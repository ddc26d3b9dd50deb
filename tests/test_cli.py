"""The command line end to end: datasets, preview, and error reporting (fit/compare/qc have their own)."""

from __future__ import annotations

import numpy as np
import pytest

from tsimcne_nb.cli import main


def _write_npz(path, n=40, size=16, classes=4):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % classes
    np.savez(path, images=images, labels=labels)
    return path


def test_datasets_lists_every_dataset(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in ("synthetic-blood", "bloodmnist", "pathmnist", "dermamnist", "pcam", "leukemia",
                 "cifar10", "digits", "npz:PATH", "folder:PATH"):
        assert name in out, name
    assert "bloodmnist.npz" in out and "camelyonpatch_level_2_split" in out


def test_preview_writes_a_png_and_refuses_to_overwrite(tmp_path, capsys):
    npz = _write_npz(tmp_path / "cells.npz")
    out = tmp_path / "sheet.png"
    assert main(["preview", f"npz:{npz}", "--out", str(out), "--per-class", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    before = out.stat().st_mtime_ns
    assert main(["preview", f"npz:{npz}", "--out", str(out)]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before
    assert main(["preview", f"npz:{npz}", "--out", str(out), "--overwrite"]) == 0


def test_preview_of_synthetic_default(tmp_path):
    out = tmp_path / "synthetic.png"
    assert main(["preview", "synthetic-blood", "--option", "n=50", "--out", str(out), "--per-class", "2"]) == 0
    assert out.stat().st_size > 1000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["preview", "bloodmnistt", "--out", "x.png"], "bloodmnist"),  # suggests the closest name
        (["preview", "npz:/nonexistent/file.npz", "--out", "x.png"], "file.npz"),
        (["preview", "synthetic-blood", "--option", "colour=red", "--out", "x.png"], "colour"),
        (["fit", "--epochs", "1,2", "--out", "x"], "three"),
    ],
)
def test_errors_are_reported_without_traceback(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "error:" in err and message in err
    assert "Traceback" not in err
