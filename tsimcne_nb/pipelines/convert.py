"""``tsimcne-nb convert``: rewrite a legacy model file in the current format."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from tsimcne_nb._io import check_can_write
from tsimcne_nb.errors import ModelFileError
from tsimcne_nb.estimators import BYOL, SimCLR, TSimCNE
from tsimcne_nb.train.checkpoints import _CHECKPOINT_KEYS
from tsimcne_nb.train.feed import _unwrap

__all__ = ['convert_legacy_file']


# --------------------------------------------------------------------------- old files
def convert_legacy_file(old: str | os.PathLike, new: str | os.PathLike, overwrite: bool = False) -> str:
    """Convert a model or checkpoint written by an older tsimcne-nb (a ``torch.save`` pickle).

    THIS UNPICKLES ``old``, WHICH RUNS ANY CODE IT CONTAINS: call it only for files
    whose source you trust (``tsimcne-nb convert OLD NEW --trust``).  ``new`` is written
    in the data-only format (:mod:`tsimcne_nb.modelfile`), atomically.

    Returns
    -------
    str
        What was converted, for printing.
    """
    from tsimcne_nb.modelfile import load_legacy_pickle, write_file

    old, new = Path(old), Path(new)
    check_can_write(new, overwrite)
    payload = load_legacy_pickle(old, map_location="cpu")
    if isinstance(payload, dict) and payload.get("class") in ("TSimCNE", "SimCLR", "BYOL"):
        est_cls = {"TSimCNE": TSimCNE, "SimCLR": SimCLR, "BYOL": BYOL}[payload["class"]]
        est = est_cls._from_payload(payload, old, torch.device("cpu"), None)
        if "model_object" in payload:  # a pickled custom module: keep its weights only
            est.backbone = _unwrap(est.model_).backbone
        est.save(new, overwrite=overwrite)
        return f"converted the {payload['class']} model {old} to {new} (data-only format)"
    if isinstance(payload, dict) and all(k in payload for k in _CHECKPOINT_KEYS):
        write_file(new, "checkpoint", payload, overwrite=overwrite)
        return f"converted the checkpoint {old} to {new} (data-only format)"
    raise ModelFileError(
        f"{old} is a pickle but neither a tsimcne-nb model nor a checkpoint "
        f"(it holds a {type(payload).__name__}); nothing was written."
    )
