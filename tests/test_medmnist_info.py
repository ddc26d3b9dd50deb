"""The project's MedMNIST table against the ``medmnist`` package's ``INFO`` (when installed).

tsimcne_nb keeps its own table of MedMNIST URLs, MD5s, split sizes, label names and licences
(``tsimcne_nb.data.download`` / ``.medmnist`` / ``.registry``): importing ``medmnist``
creates ``~/.medmnist`` and pulls in torch, and its dataset classes reject small files. This
test reads ``medmnist.INFO`` in a subprocess whose home is a temporary folder (so the import's
side effects stay there) and reports every difference, so that a new MedMNIST release that
changes a file is caught. ``medmnist`` is in the ``dev`` extra, so the test command runs it.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from tsimcne_nb.data.download import MEDMNIST_FLAGS, MEDMNIST_MD5, MEDMNIST_SIZES, medmnist_url
from tsimcne_nb.data.loaders.medmnist import CLASS_NAMES, OFFICIAL_COUNTS
from tsimcne_nb.data.registry import list_datasets

#: label names the project shortens on purpose (for legends): (flag, index) -> medmnist's name
SHORTENED = {
    ("bloodmnist", 3): "immature granulocytes(myelocytes, metamyelocytes and promyelocytes)",
    ("dermamnist", 0): "actinic keratoses and intraepithelial carcinoma",
}


def drift(info: dict) -> list[str]:
    """Every difference between ``medmnist.INFO`` (as a dict) and the project's table."""
    licences = {d.name: d.licence for d in list_datasets()}
    problems = []
    for flag in MEDMNIST_FLAGS:
        if flag not in info:
            problems.append(f"{flag}: not in medmnist.INFO")
            continue
        theirs = info[flag]
        for size in MEDMNIST_SIZES:
            suffix = "" if size == 28 else f"_{size}"
            if theirs.get(f"url{suffix}") != medmnist_url(flag, size):
                problems.append(f"{flag} {size} px: URL {medmnist_url(flag, size)} but medmnist has "
                                f"{theirs.get(f'url{suffix}')}")
            if theirs.get(f"MD5{suffix}") != MEDMNIST_MD5[(flag, size)]:
                problems.append(f"{flag} {size} px: MD5 {MEDMNIST_MD5[(flag, size)]} but medmnist has "
                                f"{theirs.get(f'MD5{suffix}')}")
        counts = tuple(theirs.get("n_samples", {}).get(s) for s in ("train", "val", "test"))
        if counts != OFFICIAL_COUNTS[flag]:
            problems.append(f"{flag}: split sizes {OFFICIAL_COUNTS[flag]} but medmnist has {counts}")
        labels = theirs.get("label", {})
        if sorted(map(int, labels)) != list(range(len(CLASS_NAMES[flag]))):
            problems.append(f"{flag}: {len(CLASS_NAMES[flag])} classes but medmnist has labels "
                            f"{sorted(labels, key=int)}")
        for i, ours in enumerate(CLASS_NAMES[flag]):
            official = labels.get(str(i))
            expected = SHORTENED.get((flag, i), ours)
            if official != expected or not official.startswith(ours):
                problems.append(f"{flag} label {i}: {ours!r} but medmnist has {official!r}")
        if theirs.get("license") != licences[flag]:
            problems.append(f"{flag}: licence {licences[flag]!r} but medmnist has {theirs.get('license')!r}")
        if theirs.get("n_channels") != 3:
            problems.append(f"{flag}: the loaders expect RGB; medmnist has n_channels={theirs.get('n_channels')}")
    return problems


@pytest.fixture(scope="module")
def medmnist_info(tmp_path_factory) -> dict:
    if importlib.util.find_spec("medmnist") is None:  # never imported here: side effects
        pytest.skip("medmnist is not installed (pip install -e '.[dev]' installs it)")
    home = tmp_path_factory.mktemp("home")
    code = ("import json, medmnist; "
            "print(json.dumps({'version': medmnist.__version__, 'INFO': medmnist.INFO}))")
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"medmnist {data['version']}")
    return data["INFO"]


def test_table_matches_medmnist_info(medmnist_info):
    assert drift(medmnist_info) == []


def test_drift_is_reported(medmnist_info):
    """The comparison can fail: each kind of change to INFO is named."""
    info = copy.deepcopy(medmnist_info)
    info["bloodmnist"]["MD5_64"] = "0" * 32
    info["pathmnist"]["n_samples"]["val"] += 1
    info["dermamnist"]["label"]["5"] = "nevus"
    info["dermamnist"]["license"] = "CC BY 4.0"
    info["bloodmnist"]["url_224"] = "https://example.org/bloodmnist_224.npz"
    problems = drift(info)
    assert len(problems) == 5, problems
    for text in ("bloodmnist 64 px: MD5", "pathmnist: split sizes", "dermamnist label 5",
                 "dermamnist: licence", "bloodmnist 224 px: URL"):
        assert any(p.startswith(text) for p in problems), (text, problems)
    del info["pathmnist"]
    assert "pathmnist: not in medmnist.INFO" in drift(info)
