"""Multi-process (DDP) training support: launch detection, gathering with gradients, sharding.

The design goal is that training on K processes with a global batch of N images gives
*the same loss and the same gradients* as training on one device with the N images.
Three pieces make that true:

1. :func:`shard_indices` splits each global batch into K contiguous slices, in rank order,
   so that concatenating the rank batches in rank order gives the single-process batch.
2. The contrastive losses (:mod:`tsimcne_nb.nn.losses`) gather all ranks' outputs with
   :func:`gather_with_grad` so every anchor still sees all 2N points as negatives, and scale
   their per-rank value so that DDP's gradient *averaging* yields the global gradient.
3. :func:`convert_sync_batchnorm` makes batch-norm statistics global over the N images
   (``torch.nn.SyncBatchNorm`` on GPUs; an exact gather-based version on the CPU, where
   PyTorch's SyncBatchNorm refuses to run).

Launch with ``torchrun --nproc-per-node K ...``; :func:`init_from_env` reads the
environment that torchrun sets.  Learning rates follow the paper's linear rule on the
*global* batch (:func:`tsimcne_nb.train.budgets.auto_learning_rate`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.nn.collectives import convert_sync_batchnorm, get_rank, is_distributed

__all__ = ['DistInfo', 'init_from_env', 'is_main_process', 'barrier', 'cleanup', 'shard_indices', 'wrap_ddp']


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run.

    Attributes
    ----------
    rank : int
        Global rank, 0 when not distributed.
    world_size : int
        Number of processes, 1 when not distributed.
    local_rank : int
        Rank on this machine; selects the GPU (``cuda:local_rank``).
    is_distributed : bool
        True when a process group with more than one process is initialised.
    backend : str or None
        ``"nccl"``, ``"gloo"``, ... or None when not distributed.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    is_distributed: bool = False
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that should write files and print)."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(
            f"environment variable {name}={raw!r} is not an integer; it is set by torchrun — "
            "launch with `torchrun --nproc-per-node K ...` or unset it."
        ) from exc


def init_from_env(backend: str | None = None, *, timeout_s: float | None = None) -> DistInfo:
    """Initialise ``torch.distributed`` from torchrun's environment if needed.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
    With ``WORLD_SIZE`` unset or 1 nothing is initialised and a single-process
    :class:`DistInfo` is returned.  If a process group already exists it is reused.

    Parameters
    ----------
    backend : str, optional
        ``"nccl"`` or ``"gloo"``; default nccl when CUDA is available, else gloo.
    timeout_s : float, optional
        Collective timeout in seconds (PyTorch's default when None).

    Returns
    -------
    DistInfo

    Raises
    ------
    ConfigError
        If the environment is inconsistent (non-integer values, rank out of range,
        missing ``MASTER_ADDR``/``MASTER_PORT``) or the backend is unknown.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(
            rank=dist.get_rank(),
            world_size=dist.get_world_size(),
            local_rank=_env_int("LOCAL_RANK", 0),
            is_distributed=dist.get_world_size() > 1,
            backend=str(dist.get_backend()),
        )
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1:
        raise ConfigError(f"WORLD_SIZE={world_size} must be >= 1.")
    if not 0 <= rank < world_size:
        raise ConfigError(
            f"RANK={rank} is outside [0, WORLD_SIZE={world_size}); launch with torchrun, which "
            "sets both consistently."
        )
    if world_size == 1:
        return DistInfo(rank=0, world_size=1, local_rank=local_rank)
    if not dist.is_available():
        raise ConfigError(
            "WORLD_SIZE > 1 but this PyTorch build has no torch.distributed support; "
            "install a standard PyTorch build or run with a single process."
        )
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} is not set; launch with "
            "`torchrun --nproc-per-node K ...`, which sets it."
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo", "mpi", "ucc", "xccl"):
        raise ConfigError(f"unknown distributed backend {backend!r}; use 'nccl' or 'gloo'.")
    if backend == "nccl" and torch.cuda.is_available():
        # Each process must own exactly one GPU before NCCL creates its communicator.
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    kwargs: dict[str, Any] = {}
    if timeout_s is not None:
        from datetime import timedelta

        kwargs["timeout"] = timedelta(seconds=float(timeout_s))
    dist.init_process_group(
        backend=backend, init_method="env://", rank=rank, world_size=world_size, **kwargs
    )
    return DistInfo(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        is_distributed=True,
        backend=backend,
    )


def is_main_process() -> bool:
    """True on rank 0 and in single-process runs."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for all processes; a no-op when not distributed."""
    if is_distributed():
        dist.barrier()


def cleanup() -> None:
    """Destroy the process group if one is initialised (safe to call twice)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_indices(
    n: int,
    rank: int,
    world_size: int,
    epoch_perm: np.ndarray,
    *,
    drop_last: bool = True,
) -> list[np.ndarray]:
    """This rank's part of every global batch of an epoch.

    The epoch's permutation (identical on all ranks: draw it from a generator seeded with
    the run seed and the epoch) is cut into consecutive global batches of ``n`` indices;
    rank ``r`` gets the ``r``-th of ``world_size`` contiguous slices of each.  Concatenating
    the ranks' slices in rank order therefore gives exactly the single-process batch, in
    the same order as :func:`gather_with_grad` concatenates outputs.

    Parameters
    ----------
    n : int
        Global batch size (images per step over all ranks); must be divisible by
        ``world_size``.
    rank, world_size : int
        This process and the number of processes.
    epoch_perm : array of int
        Permutation of the dataset indices for this epoch.
    drop_last : bool
        Drop a final incomplete global batch (the default, as in training).  If False it
        is split as evenly as possible (ranks may then differ by one image).

    Returns
    -------
    list of ndarray
        One int64 array per global batch.
    """
    if isinstance(world_size, bool) or int(world_size) != world_size or world_size < 1:
        raise ConfigError(f"world_size must be a positive integer; got {world_size!r}.")
    if not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, {world_size}); got {rank!r}.")
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ConfigError(f"global batch size n must be a positive integer; got {n!r}.")
    if n % world_size:
        raise ConfigError(
            f"global batch size {n} is not divisible by {world_size} processes; pick a batch "
            f"size that is a multiple of {world_size} (e.g. {n - n % world_size or world_size})."
        )
    perm = np.asarray(epoch_perm)
    if perm.ndim != 1 or not np.issubdtype(perm.dtype, np.integer):
        raise ConfigError("epoch_perm must be a 1-D integer array (a permutation of indices).")
    per = n // world_size
    out: list[np.ndarray] = []
    n_full = len(perm) // n
    for b in range(n_full):
        batch = perm[b * n : (b + 1) * n]
        out.append(batch[rank * per : (rank + 1) * per].astype(np.int64))
    rest = perm[n_full * n :]
    if len(rest) and not drop_last:
        if len(rest) < world_size:
            raise ConfigError(
                f"the last batch has {len(rest)} images for {world_size} processes; use "
                "drop_last=True so that no process gets an empty batch."
            )
        out.append(np.array_split(rest, world_size)[rank].astype(np.int64))
    return out


def wrap_ddp(
    model: torch.nn.Module,
    device: torch.device | str,
    *,
    sync_batchnorm: bool = True,
    **ddp_kwargs: Any,
) -> torch.nn.Module:
    """Wrap ``model`` in DistributedDataParallel (the model itself when not distributed).

    Parameters
    ----------
    model : nn.Module
        Already on ``device``.
    device : torch.device or str
        This rank's device (``cuda:local_rank`` or ``cpu``).
    sync_batchnorm : bool
        Convert batch norm with :func:`convert_sync_batchnorm` first, so that batch
        statistics cover the global batch as on a single device (default True).
    **ddp_kwargs
        Passed to ``DistributedDataParallel`` (e.g. ``find_unused_parameters=True`` if
        parts of the model are frozen in stage 2 — DDP then needs to know).

    Returns
    -------
    nn.Module
        The DDP wrapper; the (converted) model is its ``.module``.

    Notes
    -----
    DDP records which parameters require gradients when it is built.  Re-wrap after
    changing that or the module structure — i.e. at every t-SimCNE stage boundary, after
    ``replace_output`` and ``freeze_all_but_output``/``unfreeze_all`` — by wrapping
    ``ddp.module`` again (conversion is idempotent).
    """
    if not is_distributed():
        return model
    device = torch.device(device)
    if sync_batchnorm:
        model = convert_sync_batchnorm(model, device)
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return DistributedDataParallel(model, device_ids=[idx], output_device=idx, **ddp_kwargs)
    return DistributedDataParallel(model, **ddp_kwargs)
