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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from tsimcne_nb.errors import ConfigError, TSimCNEError


class OutputExistsError(TSimCNEError, FileExistsError):
    """Files a command would write already exist (and ``overwrite`` was not given)."""


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


def preflight_outputs(
    out_dir: str | os.PathLike, names: Sequence[str], overwrite: bool = False
) -> Path:
    """Check, before any work, that ``out_dir`` can take the files ``names``.

    The one check ``fit``, ``compare`` and ``qc`` run before training: ``out_dir`` is not
    a file, it can be created and written (a probe file is made and removed in the
    nearest existing folder on each path), and none of ``names`` (paths relative to
    ``out_dir``) exists unless ``overwrite``.  Every existing file is named at once.
    Nothing is created and nothing that exists is changed.

    Parameters
    ----------
    out_dir : path
        The output folder.
    names : sequence of str
        Every file the command will write, relative to ``out_dir`` (``"metrics/a.json"``).
    overwrite : bool
        Existing files may be replaced.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    OutputExistsError
        Some of ``names`` exist and ``overwrite`` is False (also a FileExistsError).
    ConfigError
        ``out_dir`` (or a folder on its path) is a file, a target is a folder, or the
        folder cannot be created or written.
    """
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(
            f"the output folder {out} exists and is a file, not a folder. Choose a folder path "
            "(--out DIR: a new folder, or an existing one without these results)."
        )
    anc = out
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if anc.exists() and not anc.is_dir():
        raise ConfigError(f"cannot create the output folder {out}: {anc} is a file, not a folder.")
    targets = [out / n for n in names]
    folders = [t for t in targets if t.is_dir()]
    if folders:
        raise ConfigError(
            f"{', '.join(map(str, folders))} {'is a folder' if len(folders) == 1 else 'are folders'} "
            "where a file will be written; move it away or choose another output folder."
        )
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        shown = ", ".join(str(t.relative_to(out)) for t in existing)
        raise OutputExistsError(
            f"{out} already holds {shown}; a file that already exists is never replaced without "
            "--overwrite (overwrite=True). Nothing was written. Pass --overwrite to replace them, "
            "or choose another output folder."
        )
    try:  # probe the nearest existing folder of each place a file goes; create nothing
        for folder in sorted({t.parent for t in targets} | {out}):
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent
            if not folder.is_dir():
                raise NotADirectoryError(20, f"{folder} is a file, not a folder")
            fd, probe = tempfile.mkstemp(prefix=".tsimcne-nb-write-test.", dir=folder)
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"cannot write to the output folder {out} ({exc.strerror or exc}). Choose a folder you "
            "can write to (--out DIR), or fix its permissions."
        ) from exc
    return out


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
