"""Atomic writers: nothing is lost, nothing half-written, ordinary permissions."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from tsimcne_nb._io import array_fingerprint, atomic_open, atomic_write_json, atomic_write_text


def test_refuses_to_overwrite_and_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "first")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        atomic_write_text(p, "second")
    assert p.read_text() == "first"
    atomic_write_text(p, "second", overwrite=True)
    assert p.read_text() == "second"


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    p = tmp_path / "b.bin"
    with pytest.raises(RuntimeError), atomic_open(p) as fh:
        fh.write(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        p = atomic_write_json(tmp_path / "m.json", {"a": np.float32(1.5)})
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644  # not mkstemp's private 0600
    assert p.read_text().strip() == '{\n  "a": 1.5\n}'


def test_fingerprint_depends_on_content_shape_and_dtype():
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert array_fingerprint(a) == array_fingerprint(a.copy())
    assert array_fingerprint(a) != array_fingerprint(a.reshape(3, 2, 4))
    assert array_fingerprint(a) != array_fingerprint(a.astype(np.int16))
    b = a.copy()
    b[1, 2, 3] += 1
    assert array_fingerprint(a) != array_fingerprint(b)
