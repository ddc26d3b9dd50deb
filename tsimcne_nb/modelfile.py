"""Model and checkpoint files that hold only data: they cannot run code when opened.

A file is a `safetensors <https://github.com/huggingface/safetensors>`_ container:
the tensors (weights, optimizer buffers, the training embedding, random-number
states) as raw little-endian arrays, and everything else (parameters, architecture,
manifest, history) as JSON in the container's metadata.  Reading it parses JSON and
copies bytes; nothing is unpickled, so a crafted file cannot execute anything.

The metadata also records a SHA-256 checksum over the JSON and every tensor's name,
dtype, shape and bytes, so a damaged file is reported as damaged instead of loading
into a garbage map.  A file that is not one of ours (a tensor saved with
``torch.save``, an npz, text, random bytes, a truncated file) is refused with one
:class:`~tsimcne_nb.errors.ModelFileError` saying what the file looks like and what
was expected.

Files written by tsimcne-nb before this format (``torch.save`` pickles) are never
unpickled automatically: :func:`load_legacy_pickle` does it only when the caller
says it trusts the file (``TSimCNE.load(path, allow_pickle=True)`` or
``tsimcne-nb convert OLD NEW --trust``), and the result can be saved in this format.

The file names stay ``model.pt`` and ``checkpoints/ckpt-NNNNNN.pt``: only the
content changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tsimcne_nb._io import atomic_write_bytes
from tsimcne_nb.errors import ModelFileError

__all__ = [
    "FORMAT",
    "KINDS",
    "write_file",
    "read_file",
    "describe_file",
    "is_legacy_pickle",
    "load_legacy_pickle",
]

#: version of the data-only file format (1 was the torch.save pickle)
FORMAT = 2
#: what a file can hold
KINDS = {"model": "a tsimcne-nb model file (TSimCNE.save, the model.pt of `tsimcne-nb fit`)",
         "checkpoint": "a tsimcne-nb training checkpoint (checkpoints/ckpt-NNNNNN.pt)"}
_META_KEY = "tsimcne_nb"
_SUM_KEY = "tsimcne_nb_sha256"
#: a safetensors header larger than this is not believed (real ones are a few MB at most)
_MAX_HEADER = 100 * 2**20
#: numpy dtypes stored through a wider torch dtype (torch/safetensors lack them)
_WIDEN = {np.dtype(np.uint32): torch.int64, np.dtype(np.uint16): torch.int32}


# --------------------------------------------------------------------------- tree codec
def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; tensors and arrays go to ``tensors`` and are referenced."""
    if isinstance(obj, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().cpu().contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        if obj.dtype == object:
            raise TypeError("object arrays cannot be stored in a data-only file")
        key = f"t{len(tensors)}"
        arr = np.ascontiguousarray(obj)
        wide = _WIDEN.get(arr.dtype)
        t = torch.from_numpy(arr.astype(np.int64) if wide is torch.int64 else
                             arr.astype(np.int32) if wide is torch.int32 else arr.copy())
        tensors[key] = t.contiguous()
        return {"__ndarray__": key, "dtype": str(arr.dtype)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _encode(v, tensors) for k, v in obj.items()}
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, torch.dtype):
        return str(obj)
    return repr(obj)  # as the JSON manifests do: informative, never executable


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if "__ndarray__" in obj:
        return tensors[obj["__ndarray__"]].numpy().astype(np.dtype(obj["dtype"]))
    if "__tuple__" in obj:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if "__dict__" in obj:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
    return {k: _decode(v, tensors) for k, v in obj.items()}


def _checksum(meta_json: str, tensors: Mapping[str, torch.Tensor]) -> str:
    h = hashlib.sha256(meta_json.encode("utf-8"))
    for key in sorted(tensors):
        t = tensors[key]
        h.update(repr((key, str(t.dtype), tuple(t.shape))).encode())
        if t.numel():
            h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- write / read
def write_file(path: str | os.PathLike, kind: str, tree: Mapping[str, Any], overwrite: bool = False) -> Path:
    """Write ``tree`` (nested dicts/lists/tuples of plain values, tensors and arrays) to ``path``.

    Parameters
    ----------
    path : path
        The file; written atomically (temporary file + rename).
    kind : {"model", "checkpoint"}
        What the file holds; :func:`read_file` checks it.
    tree : mapping
        The content.  Objects that are neither plain values, containers, tensors nor
        arrays are stored as their ``repr`` text.
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    Path
        ``path``.
    """
    from safetensors.torch import save

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}; got {kind!r}")
    tensors: dict[str, torch.Tensor] = {}
    encoded = _encode(dict(tree), tensors)
    meta_json = json.dumps({"kind": kind, "format": FORMAT, "tree": encoded})  # order kept
    data = save(tensors, metadata={_META_KEY: meta_json, _SUM_KEY: _checksum(meta_json, tensors)})
    return atomic_write_bytes(path, data, overwrite=overwrite)


def read_file(path: str | os.PathLike, kind: str) -> dict[str, Any]:
    """Read a file written by :func:`write_file`, checking that it holds ``kind``.

    Nothing is unpickled.

    Returns
    -------
    dict
        The tree given to :func:`write_file` (tensors on the CPU; arrays as numpy).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ModelFileError
        The file is not a tsimcne-nb file of this kind, is damaged (checksum) or
        truncated, or is an old pickle file (the message says how to convert it).
    """
    from safetensors.torch import load

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no file at {path}; expected {KINDS[kind]}.")
    if path.is_dir():
        raise ModelFileError(f"{path} is a folder; expected {KINDS[kind]}.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"cannot read {path} ({exc.strerror or exc}); expected {KINDS[kind]}.") from exc
    header = _parse_header(data)
    if header is None:
        raise ModelFileError(_not_ours(path, kind, _describe_bytes(data, path)))
    meta = header.get("__metadata__") or {}
    if _META_KEY not in meta or _SUM_KEY not in meta:
        raise ModelFileError(_not_ours(path, kind, "a safetensors file not written by tsimcne-nb"))
    n_header = struct.unpack("<Q", data[:8])[0]
    payload_len = len(data) - 8 - n_header
    ends = [int(v["data_offsets"][1]) for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    if max(ends, default=0) > payload_len:
        raise ModelFileError(
            f"{path} is truncated: it holds {payload_len} of the {max(ends)} bytes of weights its "
            f"header promises (an interrupted copy or download?). Copy it again from its source"
            + (", or resume from an older checkpoint." if kind == "checkpoint" else ".")
        )
    try:
        tensors = load(data)
        info = json.loads(meta[_META_KEY])
    except Exception as exc:  # noqa: BLE001 - any parse failure means a damaged file
        raise ModelFileError(f"{path} is damaged ({type(exc).__name__}: {exc}); expected {KINDS[kind]}.") from exc
    if _checksum(meta[_META_KEY], tensors) != meta[_SUM_KEY]:
        raise ModelFileError(
            f"{path} is damaged: its checksum does not match its content (bytes changed after it "
            "was written). Do not use it; copy it again from its source or retrain."
        )
    if not isinstance(info, dict) or info.get("kind") not in KINDS:
        raise ModelFileError(_not_ours(path, kind, "a tsimcne-nb file of unknown kind"))
    if info["kind"] != kind:
        raise ModelFileError(f"{path} is {KINDS[info['kind']]}; expected {KINDS[kind]}.")
    if int(info.get("format", 0)) > FORMAT:
        raise ModelFileError(
            f"{path} was written by a newer tsimcne-nb (file format {info['format']}, this version "
            f"reads up to {FORMAT}); upgrade tsimcne-nb."
        )
    try:
        tree = _decode(info["tree"], tensors)
    except Exception as exc:  # noqa: BLE001 - a consistent checksum but a broken tree
        raise ModelFileError(f"{path} is damaged ({type(exc).__name__}: {exc}); expected {KINDS[kind]}.") from exc
    if not isinstance(tree, dict):
        raise ModelFileError(_not_ours(path, kind, "a tsimcne-nb file without content"))
    return tree


def _parse_header(data: bytes) -> dict[str, Any] | None:
    """The safetensors header of ``data``, or None when ``data`` is no safetensors file."""
    if len(data) < 10:
        return None
    n = struct.unpack("<Q", data[:8])[0]
    if n < 2 or n > _MAX_HEADER or n > len(data) - 8 or data[8:9] != b"{":
        return None
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return header if isinstance(header, dict) else None


def _not_ours(path: Path, kind: str, what: str) -> str:
    msg = f"{path} is not {KINDS[kind]}: it looks like {what}."
    if is_legacy_pickle(path):
        msg += (
            " If it is a model or checkpoint written by an older tsimcne-nb and you trust its "
            f"source (a pickle can run code), convert it once: `tsimcne-nb convert {path} NEW --trust` "
            "(or TSimCNE.load(path, allow_pickle=True) and save it again)."
        )
    return msg


# --------------------------------------------------------------------------- what is this file?
def describe_file(path: str | os.PathLike) -> str:
    """A few words on what ``path`` looks like (for error messages); never unpickles."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        return f"an unreadable file ({exc.strerror or exc})"
    return _describe_bytes(head, path)


def _describe_bytes(head: bytes, path: Path | None = None) -> str:
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        names: list[str] = []
        if path is not None:
            try:
                with zipfile.ZipFile(path) as zf:
                    names = zf.namelist()
            except (zipfile.BadZipFile, OSError, ValueError):
                return "a damaged or truncated zip archive (an .npz or a torch.save file?)"
        if any(n.endswith("data.pkl") for n in names):
            return "a PyTorch pickle written by torch.save (a tensor, a state dict, or an old tsimcne-nb file)"
        if names and all(n.endswith(".npy") for n in names):
            return "a NumPy .npz archive (arrays " + ", ".join(n[:-4] for n in names[:5]) + ")"
        return "a zip archive"
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle"
    for magic, what in ((b"\x93NUMPY", "a NumPy .npy array"), (b"\x89PNG", "a PNG image"),
                        (b"\xff\xd8\xff", "a JPEG image"), (b"\x89HDF", "an HDF5 file"),
                        (b"\x1f\x8b", "a gzip file"), (b"II*\x00", "a TIFF image"),
                        (b"MM\x00*", "a TIFF image")):
        if head.startswith(magic):
            return what
    if len(head) >= 9 and head[8:9] == b"{":
        return "a truncated or damaged safetensors file"
    try:
        text = head[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of unknown kind"
    if text.isprintable() or all(c.isprintable() or c in "\r\n\t" for c in text):
        first = text.strip().splitlines()[0][:40] if text.strip() else ""
        return f"a text file (starting {first!r})"
    return "binary data of unknown kind"


def is_legacy_pickle(path: str | os.PathLike) -> bool:
    """True if ``path`` looks like a ``torch.save`` pickle (zip with ``data.pkl``, or a raw pickle)."""
    return _describe_bytes_head(Path(path)).startswith(("a PyTorch pickle", "a Python pickle"))


def _describe_bytes_head(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return ""
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                if any(n.endswith("data.pkl") for n in zf.namelist()):
                    return "a PyTorch pickle"
        except (zipfile.BadZipFile, OSError, ValueError):
            return ""
        return ""
    return _describe_bytes(head)


def load_legacy_pickle(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Unpickle an old (``torch.save``) tsimcne-nb file.  THIS RUNS CODE THE FILE CONTAINS.

    Only for files whose source you trust, once, to convert them
    (``tsimcne-nb convert OLD NEW --trust``).  Nothing calls it unless told to.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no file at {path}")
    if not is_legacy_pickle(path):
        raise ModelFileError(
            f"{path} is not an old pickle model or checkpoint: it looks like {describe_file(path)}."
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - a damaged pickle can raise anything
        raise ModelFileError(f"cannot unpickle {path} ({type(exc).__name__}: {exc}).") from exc
