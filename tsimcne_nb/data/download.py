"""Downloading dataset files: resumable, checksummed, atomic.

Every download streams into ``<dest>.part`` (kept when interrupted and resumed
with an HTTP ``Range`` request next time, where the server supports it), is
checked against its MD5 when one is known, and only then renamed to ``dest``.
A failed download never leaves a half-written file under the final name.

Also holds the sources of the datasets (URLs and MD5s from
``shared/reference/DATASETS.md``) and the messages that tell users how to get
the files by hand.
"""

from __future__ import annotations

import gzip
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from tsimcne_nb._io import atomic_open, md5sum
from tsimcne_nb.errors import DataError, DatasetNotFoundError, DownloadError

CHUNK_BYTES = 1 << 20

# ----------------------------------------------------------------- sources
MEDMNIST_FLAGS = ("bloodmnist", "pathmnist", "dermamnist")
MEDMNIST_SIZES = (28, 64, 128, 224)
MEDMNIST_RECORD = "https://zenodo.org/records/10519652/files/{file}?download=1"

#: MD5 of every MedMNIST file this package reads, keyed by (flag, size)
MEDMNIST_MD5: dict[tuple[str, int], str] = {
    ("bloodmnist", 28): "7053d0359d879ad8a5505303e11de1dc",
    ("bloodmnist", 64): "2b94928a2ae4916078ca51e05b6b800b",
    ("bloodmnist", 128): "adace1e0ed228fccda1f39692059dd4c",
    ("bloodmnist", 224): "b718ff6835fcbdb22ba9eacccd7b2601",
    ("pathmnist", 28): "a8b06965200029087d5bd730944a56c1",
    ("pathmnist", 64): "55aa9c1e0525abe5a6b9d8343a507616",
    ("pathmnist", 128): "ac42d08fb904d92c244187169d1fd1d9",
    ("pathmnist", 224): "2c51a510bcdc9cf8ddb2af93af1eadec",
    ("dermamnist", 28): "0744692d530f8e62ec473284d019b0c7",
    ("dermamnist", 64): "b70a2f5635c6199aeaa28c31d7202e1f",
    ("dermamnist", 128): "2defd784463fa5243564e855ed717de1",
    ("dermamnist", 224): "8974907d8e169bef5f5b96bc506ae45d",
}


def medmnist_filename(flag: str, size: int) -> str:
    """``bloodmnist.npz`` for 28 px, ``bloodmnist_64.npz`` for larger sizes."""
    return f"{flag}.npz" if size == 28 else f"{flag}_{size}.npz"


def medmnist_url(flag: str, size: int) -> str:
    """The zenodo URL of a MedMNIST file (MedMNIST v3 record)."""
    return MEDMNIST_RECORD.format(file=medmnist_filename(flag, size))


PCAM_SPLITS = ("train", "valid", "test")
PCAM_RECORD = "https://zenodo.org/records/2546921/files/{file}?download=1"


def pcam_filename(split: str, kind: str) -> str:
    """``camelyonpatch_level_2_split_<split>_<kind>.h5`` (kind ``x`` or ``y``)."""
    return f"camelyonpatch_level_2_split_{split}_{kind}.h5"


def pcam_url(split: str, kind: str) -> str:
    """The zenodo URL of a gzipped PCam file."""
    return PCAM_RECORD.format(file=pcam_filename(split, kind) + ".gz")


# MD5s of the .h5.gz files as published (torchvision, PCam README). The valid and
# test entries are known to be swapped there, so each valid/test file accepts both
# and a mismatch only warns (DATASETS.md).
_PCAM_PUBLISHED_MD5 = {
    ("train", "x"): {"1571f514728f59376b705fc836ff4b63"},
    ("train", "y"): {"35c2d7259d906cfc8143347bb8e05be7"},
    ("valid", "x"): {"d5b63470df7cfa627aeec8b9dc0c066e", "d8c2d60d490dbd479f8199bdfa0cf6ec"},
    ("test", "x"): {"d5b63470df7cfa627aeec8b9dc0c066e", "d8c2d60d490dbd479f8199bdfa0cf6ec"},
    ("valid", "y"): {"2b85f58b927af9964a4c15b8f7e8f179", "60a7035772fbdb7f34eb86d4420cf66a"},
    ("test", "y"): {"2b85f58b927af9964a4c15b8f7e8f179", "60a7035772fbdb7f34eb86d4420cf66a"},
}

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_ARCHIVE = "cifar-10-python.tar.gz"

LEUKEMIA_URL = (
    "https://www.cancerimagingarchive.net/collection/aml-cytomorphology_lmu/"
)


# ------------------------------------------------------------------ messages
def not_found_message(
    dataset: str,
    folder: str | os.PathLike,
    expected: Sequence[str],
    urls: Sequence[str] = (),
    downloadable: bool = True,
    extra: str = "",
) -> str:
    """The text of a :class:`DatasetNotFoundError`: what is missing, where, how to get it."""
    lines = [
        f"{dataset}: files not found in {Path(folder).expanduser()}.",
        "Expected: " + ", ".join(expected) + ".",
    ]
    if urls:
        lines.append("Source: " + " ; ".join(urls))
    if downloadable:
        lines.append(
            "Pass download=True (--download on the command line) to fetch them, or download them "
            f"by hand and put them into {Path(folder).expanduser()} (or pass root=/--data-root "
            "pointing at the folder that holds them)."
        )
    if extra:
        lines.append(extra)
    return "\n".join(lines)


def raise_not_found(*args, **kwargs) -> None:
    """Raise :class:`~tsimcne_nb.errors.DatasetNotFoundError` with :func:`not_found_message`."""
    raise DatasetNotFoundError(not_found_message(*args, **kwargs))


def _manual_hint(dest: Path, url: str) -> str:
    return (
        f"Download {url} by hand (e.g. in a browser) and save it as {dest.name} in "
        f"{dest.parent}, then run again without download."
    )


# ------------------------------------------------------------------ download
def _open(url: str, start: int, timeout: float):
    request = urllib.request.Request(url, headers={"User-Agent": "tsimcne-nb"})
    if start > 0:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) URLs only


def download_file(
    url: str,
    dest: str | os.PathLike,
    md5: str | Iterable[str] | None = None,
    timeout: float = 60.0,
    strict_md5: bool = True,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``dest``, resumably, check its MD5 and rename it into place.

    Parameters
    ----------
    url
        http(s) URL of the file.
    dest
        Final path.  If it already exists (and matches ``md5`` when given) nothing is
        downloaded.
    md5
        Expected MD5 hex digest, or several accepted digests, or None (no check).
    timeout
        Seconds to wait for the server on connect and on each read.
    strict_md5
        If True a mismatch raises :class:`DownloadError` and the bad file is moved
        aside to ``<dest>.bad`` (never installed); if False it only warns (PCam,
        whose published checksums are partly swapped).
    progress
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``dest``.

    Raises
    ------
    DownloadError
        Offline, server error, or MD5 mismatch; the message names the file, the URL
        and the folder to put the file in by hand.
    """
    dest = Path(dest).expanduser()
    accepted = None if md5 is None else ({md5} if isinstance(md5, str) else set(md5))
    if dest.exists():
        if accepted is None or md5sum(dest) in accepted or not strict_md5:
            return dest
        raise DownloadError(
            f"{dest} exists but its MD5 {md5sum(dest)} is not the expected {sorted(accepted)}: the "
            f"file is damaged or a different version. Delete it and download again ({url})."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    start = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, start, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start > 0:
            # the .part holds the whole file already (or is bogus): verify below / restart
            response = None
        else:
            raise DownloadError(
                f"downloading {dest.name} failed: the server answered HTTP {exc.code} "
                f"({exc.reason}) for {url}. {_manual_hint(dest, url)}"
            ) from exc
    except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(
            f"downloading {dest.name} failed: cannot reach {url} ({reason}). Are you offline or "
            f"behind a proxy? {_manual_hint(dest, url)}"
        ) from exc

    if response is not None:
        with response:
            status = getattr(response, "status", 200)
            if start > 0 and status != 206:
                start = 0  # the server ignored the Range request: start over
            total = response.headers.get("Content-Length")
            total = int(total) + start if total is not None else None
            bar = None
            if progress:
                from tqdm.auto import tqdm

                bar = tqdm(
                    total=total, initial=start, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=dest.name, leave=False,
                )
            try:
                with open(part, "ab" if start > 0 else "wb") as fh:
                    while True:
                        try:
                            block = response.read(CHUNK_BYTES)
                        except (TimeoutError, OSError, http.client.HTTPException) as exc:
                            raise DownloadError(
                                f"downloading {dest.name} was interrupted ({exc}); the partial file "
                                f"{part} is kept and the next try resumes it. "
                                f"{_manual_hint(dest, url)}"
                            ) from exc
                        if not block:
                            break
                        fh.write(block)
                        if bar is not None:
                            bar.update(len(block))
            finally:
                if bar is not None:
                    bar.close()
            size = part.stat().st_size
            if total is not None and size < total:
                raise DownloadError(
                    f"downloading {dest.name} ended early ({size} of {total} bytes); the partial "
                    f"file {part} is kept and the next try resumes it. {_manual_hint(dest, url)}"
                )

    if accepted is not None:
        got = md5sum(part)
        if got not in accepted:
            if strict_md5:
                bad = dest.with_name(dest.name + ".bad")
                os.replace(part, bad)
                raise DownloadError(
                    f"downloaded {dest.name} has MD5 {got}, expected {sorted(accepted)[0]}: the "
                    f"file is damaged or changed on the server. It was not installed (kept as "
                    f"{bad} for inspection; delete it). Try again, or {_manual_hint(dest, url)}"
                )
            warnings.warn(
                f"{dest.name}: MD5 {got} differs from the published {sorted(accepted)}; using the "
                "file anyway (the published checksums of this dataset are known to be unreliable).",
                stacklevel=2,
            )
    os.replace(part, dest)
    return dest


# ----------------------------------------------------------------- archives
def gunzip_file(src: str | os.PathLike, dest: str | os.PathLike | None = None) -> Path:
    """Decompress ``src`` (``x.gz``) to ``dest`` (default ``x``) by streaming, atomically.

    The ``.gz`` is kept.  A truncated or corrupt archive raises :class:`DataError`
    and leaves no partial output.
    """
    src = Path(src)
    dest = Path(dest) if dest is not None else src.with_suffix("")
    if dest.exists():
        return dest
    try:
        with gzip.open(src, "rb") as fin, atomic_open(dest, "wb") as fout:
            shutil.copyfileobj(fin, fout, CHUNK_BYTES)
    except (EOFError, OSError, zlib.error) as exc:
        if isinstance(exc, FileExistsError):
            raise
        raise DataError(
            f"{src} is damaged ({exc.__class__.__name__}: {exc}); it cannot be decompressed. "
            "Delete it and download it again."
        ) from exc
    return dest


def safe_extract_tar(archive: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Extract a tar archive into ``folder``, refusing members that escape it.

    Links, devices and absolute or ``..`` paths are rejected (a tar from the
    internet must not write outside the data folder).
    """
    archive, folder = Path(archive), Path(folder).resolve()
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for m in members:
                target = (folder / m.name).resolve()
                if not (m.isfile() or m.isdir()) or (
                    target != folder and folder not in target.parents
                ):
                    raise DataError(
                        f"{archive} contains an unsafe member {m.name!r} (link or path outside "
                        "the target folder); refusing to extract it. Delete the archive and "
                        "download it again from the official source."
                    )
            for m in members:
                target = folder / m.name
                if m.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                fin = tar.extractfile(m)
                assert fin is not None
                with fin, atomic_open(target, "wb", overwrite=True) as fout:
                    shutil.copyfileobj(fin, fout, CHUNK_BYTES)
    except (tarfile.TarError, EOFError, zlib.error) as exc:
        raise DataError(
            f"{archive} is damaged ({exc}); delete it and download it again."
        ) from exc


def md5_matches(path: str | os.PathLike, accepted: Iterable[str]) -> bool:
    """True if the MD5 of ``path`` is one of ``accepted``."""
    return md5sum(path) in set(accepted)


