"""benchmarks/setup_reference_env.sh links the reference venv to PYTHON's own packages,
also when PYTHON is a virtual environment's interpreter (issue 16: it reached the base
interpreter's packages instead, so a venv-only torch was invisible)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "setup_reference_env.sh"


@pytest.mark.skipif(sys.platform == "win32", reason="a bash script")
def test_reference_venv_sees_the_packages_of_a_venv_interpreter(tmp_path):
    toolkit_env = tmp_path / "toolkit-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(toolkit_env)], check=True)
    py = toolkit_env / "bin" / "python"
    site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    # a module only the toolkit's venv has (stands in for its torch)
    Path(site, "only_in_toolkit_venv.py").write_text("VALUE = 42\n")
    ref = tmp_path / "ref"
    env = {**os.environ, "PYTHON": str(py)}
    out = subprocess.run(["bash", str(SCRIPT), "--link-only", str(ref)], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = subprocess.run(
        [str(ref / "bin" / "python"), "-c", "import only_in_toolkit_venv as m; print(m.VALUE)"],
        capture_output=True, text=True,
    )
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == "42"
    assert sysconfig.get_paths()["purelib"] != site  # the check above was not trivially true
