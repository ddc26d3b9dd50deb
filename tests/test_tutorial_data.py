"""load_tutorial_dataset: the real files when present, else marked SYNTHETIC stand-ins."""

from __future__ import annotations

import tempfile

import pytest

import tsimcne_nb
from tsimcne_nb.data.standins import README_NAME, write_standin_files
from tsimcne_nb.data.tutorial_data import load_tutorial_dataset
from tsimcne_nb.errors import ConfigError, DatasetNotFoundError


def _real_files(name: str, root, n: int = 48, **kw):
    """Files in the real format without the stand-in README: what the loader sees as real data."""
    folder = write_standin_files(name, root, n=n, **kw)
    (folder / README_NAME.format(name=name)).unlink()
    return folder


def test_exported_at_top_level():
    assert tsimcne_nb.load_tutorial_dataset is load_tutorial_dataset
    assert "load_tutorial_dataset" in tsimcne_nb.__all__


def test_real_files_are_loaded_as_they_are(tmp_path, capsys):
    _real_files("bloodmnist", tmp_path)
    standins = tmp_path / "standins"
    ds = load_tutorial_dataset("bloodmnist", root=tmp_path, standin_root=standins)
    assert len(ds) == 48 and not ds.synthetic and not ds.name.startswith("synthetic-standin-")
    assert capsys.readouterr().out == ""  # nothing to warn about
    assert not standins.exists()  # no stand-ins written


def test_missing_files_fall_back_to_marked_standins(tmp_path, capsys):
    data, standins = tmp_path / "data", tmp_path / "standins"
    data.mkdir()
    ds = load_tutorial_dataset("bloodmnist", root=data, standin_n=40, standin_root=standins,
                               random_state=3)
    assert ds.synthetic and ds.name == "synthetic-standin-bloodmnist" and len(ds) == 40
    assert not any(data.iterdir())  # never written into the data folder
    assert (standins / "medmnist" / README_NAME.format(name="bloodmnist")).is_file()
    out = " ".join(capsys.readouterr().out.split())  # the banner is wrapped at 78 characters
    # why (the loader's message names the missing file), what, and how to get the real data
    assert "The real data is not there" in out and "bloodmnist.npz" in out
    assert "THIS RUN USES SYNTHETIC STAND-IN DATA" in out and "'bloodmnist'" in out
    assert "download=True" in out and "written to a temporary folder" in out


def test_standins_go_to_a_new_temporary_folder_by_default(tmp_path, monkeypatch, capsys):
    data, scratch = tmp_path / "data", tmp_path / "scratch"
    data.mkdir()
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    ds = load_tutorial_dataset("pathmnist", root=data, standin_n=45, verbose=False)
    assert ds.synthetic and len(ds) == 45
    assert [p.name.startswith("tsimcne-standin-") for p in scratch.iterdir()] == [True]
    assert capsys.readouterr().out == ""  # verbose=False: marked, but silent


def test_without_standins_the_loader_error_is_raised(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dermamnist"):
        load_tutorial_dataset("dermamnist", root=tmp_path, standin=False)


def test_standins_left_in_the_data_folder_are_marked(tmp_path, capsys):
    write_standin_files("cifar10", tmp_path, n=40)
    ds = load_tutorial_dataset("cifar10", root=tmp_path)
    assert ds.synthetic and ds.name.startswith("synthetic-standin-") and len(ds) == 40
    out = " ".join(capsys.readouterr().out.split())
    assert "The real data is not there" not in out
    assert "found in the data folder: delete them there" in out


def test_loader_options_reach_the_real_loader_and_the_standins(tmp_path):
    ds = load_tutorial_dataset("dermamnist", root=tmp_path / "none", standin_n=70, labels=7,
                               standin_root=tmp_path / "s", verbose=False)
    assert ds.n_classes == 7 and ds.synthetic
    # MedMNIST's size picks the file: the stand-in is written at that size too
    ds64 = load_tutorial_dataset("bloodmnist", root=tmp_path / "none", standin_n=40, size=64,
                                 standin_root=tmp_path / "s64", verbose=False)
    assert ds64.image_shape[:2] == (64, 64)
    assert (tmp_path / "s64" / "medmnist" / "bloodmnist_64.npz").is_file()


def test_manual_download_says_so(tmp_path, capsys):
    load_tutorial_dataset("leukemia", root=tmp_path / "none", standin_n=40,
                          standin_root=tmp_path / "s", progress=False)
    out = " ".join(capsys.readouterr().out.split())
    assert "'leukemia'" in out and "by hand" in out and "AML-Cytomorphology_LMU" in out


def test_generated_dataset_needs_no_files(tmp_path, capsys):
    ds = load_tutorial_dataset("synthetic-blood", root=tmp_path, standin_n=30, random_state=1)
    assert len(ds) == 30 and ds.synthetic and not ds.name.startswith("synthetic-standin-")
    assert not any(tmp_path.iterdir()) and capsys.readouterr().out == ""


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100"])
def test_bad_standin_n_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="standin_n must be a positive int"):
        load_tutorial_dataset("bloodmnist", standin_n=bad)


def test_unknown_name_is_the_loader_error():
    with pytest.raises(ConfigError):
        load_tutorial_dataset("bloodmnistt")
