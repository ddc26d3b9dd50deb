"""Training checkpoints: one file per finished epoch, the newest few kept,
read back only with ``weights_only`` loading (never unpickled).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tsimcne_nb.errors import ConfigError, ModelFileError

__all__ = ['list_checkpoints']
#: checkpoints kept in checkpoint_dir
_KEEP_CHECKPOINTS = 2
#: file format version of save()/checkpoints (2: data-only, :mod:`tsimcne_nb.modelfile`)
_FORMAT = 2
#: keys every checkpoint holds
_CHECKPOINT_KEYS = ("kind", "stage_index", "epoch_done", "global_epoch", "model", "optimizer",
                    "history", "seed", "compat", "rng")


# --------------------------------------------------------------------------- checkpoints
def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files in ``checkpoint_dir``, oldest first."""
    d = Path(checkpoint_dir)
    if not d.is_dir():
        return []
    return sorted(d.glob("ckpt-*.pt"))


def _write_checkpoint(checkpoint_dir: Path, global_epoch: int, state: dict[str, Any]) -> Path:
    from tsimcne_nb.modelfile import write_file

    path = checkpoint_dir / f"ckpt-{global_epoch:06d}.pt"
    write_file(path, "checkpoint", state, overwrite=True)  # data only; atomic
    for old in list_checkpoints(checkpoint_dir)[:-_KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def _read_checkpoint(path: Path, kind: str) -> dict[str, Any]:
    """One checkpoint, read without unpickling; ModelFileError if unreadable or incomplete."""
    from tsimcne_nb.modelfile import read_file

    state = read_file(path, "checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ModelFileError(f"{path} is incomplete (no {', '.join(missing)}); it cannot be resumed from.")
    if state["kind"] != kind:
        raise ConfigError(
            f"{path} is a {state['kind']} checkpoint, not {kind}; use another checkpoint_dir."
        )
    return state
