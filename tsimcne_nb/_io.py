"""Atomic, non-destructive file writing and fingerprints.

Nothing a user made is lost: every writer here writes to a temporary file in the
target folder and renames it into place (atomic on POSIX and Windows), and
refuses to replace an existing file unless ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return mask


def check_can_write(path: str | os.PathLike, overwrite: bool) -> Path:
    """Return ``path`` as a Path; raise FileExistsError if it exists and ``overwrite`` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"{path} already exists and would be overwritten. Pass overwrite=True "
            "(--overwrite on the command line) to replace it, or choose another path."
        )
    return path


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike, mode: str = "wb", overwrite: bool = False
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; on success rename it to ``path``.

    If the block raises, the temporary file is removed and ``path`` is untouched.
    """
    path = check_can_write(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); give it the permissions a plain open() would
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = False) -> Path:
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), overwrite=overwrite)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return repr(obj)


def atomic_write_json(path: str | os.PathLike, obj: Any, overwrite: bool = False) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default)
    return atomic_write_text(path, text + "\n", overwrite=overwrite)


def array_fingerprint(*arrays: Any, chunk: int = 4096) -> str:
    """SHA-256 (hex, first 16 chars) of arrays' shapes, dtypes and contents.

    Works on anything that slices to numpy (np.memmap, h5py datasets, lazy arrays)
    in chunks along the first axis, so large on-disk data is never loaded whole.
    """
    h = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            h.update(b"None")
            continue
        shape = tuple(arr.shape)
        h.update(repr((shape, str(arr.dtype))).encode())
        n = shape[0] if shape else 0
        if not shape:
            h.update(np.ascontiguousarray(np.asarray(arr)).tobytes())
        for start in range(0, n, chunk):
            h.update(np.ascontiguousarray(np.asarray(arr[start : start + chunk])).tobytes())
    return h.hexdigest()[:16]


def md5sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
