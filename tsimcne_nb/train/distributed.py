"""Multi-process (DDP) training support: launch detection, gathering with gradients, sharding.

The design goal is that training on K processes with a global batch of N images gives
*the same loss and the same gradients* as training on one device with the N images.
Three pieces make that true:

1. :func:`shard_indices` splits each global batch into K contiguous slices, in rank order,
   so that concatenating the rank batches in rank order gives the single-process batch.
2. The contrastive losses (:mod:`tsimcne_nb.losses`) gather all ranks' outputs with
   :func:`gather_with_grad` so every anchor still sees all 2N points as negatives, and scale
   their per-rank value so that DDP's gradient *averaging* yields the global gradient.
3. :func:`convert_sync_batchnorm` makes batch-norm statistics global over the N images
   (``torch.nn.SyncBatchNorm`` on GPUs; an exact gather-based version on the CPU, where
   PyTorch's SyncBatchNorm refuses to run).

Launch with ``torchrun --nproc-per-node K ...``; :func:`init_from_env` reads the
environment that torchrun sets.  Learning rates follow the paper's linear rule on the
*global* batch (:func:`scale_learning_rate`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from tsimcne_nb.errors import ConfigError

__all__ = [
    "DistInfo",
    "init_from_env",
    "is_distributed",
    "get_rank",
    "get_world_size",
    "is_main_process",
    "barrier",
    "cleanup",
    "gather_sizes",
    "gather_with_grad",
    "all_reduce_mean",
    "scale_learning_rate",
    "shard_indices",
    "convert_sync_batchnorm",
    "wrap_ddp",
]


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


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


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


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward routes every rank's gradient back to the rank that owns the rows.

    Rank r's local loss depends on all gathered rows, so the gradient of the *sum* of all
    ranks' losses with respect to rank r's rows is the sum over ranks of their upstream
    gradients at those rows: an all_reduce(sum) followed by taking this rank's slice.
    Combined with DDP's division by the world size this reproduces the single-process
    gradient exactly (see :mod:`tsimcne_nb.losses` for the loss scaling).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:  # type: ignore[override]
        rank = dist.get_rank()
        ctx.rank = rank
        ctx.sizes = sizes
        max_n = max(sizes)
        x = x.contiguous()
        if x.shape[0] < max_n:
            pad = x.new_zeros((max_n - x.shape[0], *x.shape[1:]))
            x_padded = torch.cat([x, pad], dim=0)
        else:
            x_padded = x
        bufs = [torch.empty_like(x_padded) for _ in sizes]
        dist.all_gather(bufs, x_padded)
        return torch.cat([b[:n] for b, n in zip(bufs, sizes, strict=True)], dim=0)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        grad = grad_out.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None


def gather_sizes(n: int, device: torch.device | str = "cpu") -> tuple[int, ...]:
    """Every rank's value of ``n`` (e.g. its batch size), in rank order; ``(n,)`` if not distributed.

    ``device`` must be one the backend can communicate on (a CUDA device for nccl).
    """
    if not is_distributed():
        return (int(n),)
    if dist.get_backend() == "nccl" and torch.device(device).type == "cpu":
        device = torch.device("cuda", torch.cuda.current_device())
    t = torch.tensor([int(n)], dtype=torch.long, device=device)
    out = [torch.zeros_like(t) for _ in range(dist.get_world_size())]
    dist.all_gather(out, t)
    return tuple(int(o.item()) for o in out)


def gather_with_grad(
    x: torch.Tensor,
    *,
    sizes: tuple[int, ...] | None = None,
    equal_sizes: bool = False,
) -> torch.Tensor:
    """Concatenate ``x`` from all ranks along dim 0, in rank order, keeping gradients.

    The identity when not distributed.  Ranks may hold different numbers of rows
    (they are padded for the collective) unless ``equal_sizes=True`` promises equal
    sizes, which saves one tiny collective per call.

    Parameters
    ----------
    x : Tensor
        This rank's rows, shape (n_r, ...).
    sizes : tuple of int, optional
        Every rank's row count, if already known (from :func:`gather_sizes`).
    equal_sizes : bool
        Skip the size exchange; every rank must then hold the same number of rows.

    Returns
    -------
    Tensor
        Shape (sum_r n_r, ...); rows ``sum(n[:rank]) : sum(n[:rank+1])`` are this rank's ``x``.
    """
    if not is_distributed():
        return x
    if sizes is None:
        if equal_sizes:
            sizes = (x.shape[0],) * dist.get_world_size()
        else:
            sizes = gather_sizes(x.shape[0], x.device)
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) != dist.get_world_size() or sizes[dist.get_rank()] != x.shape[0]:
        raise ConfigError(
            f"sizes={sizes} does not match world size {dist.get_world_size()} and this "
            f"rank's {x.shape[0]} rows; get them from gather_sizes()."
        )
    return _GatherWithGrad.apply(x, sizes)


def all_reduce_mean(x: torch.Tensor | float) -> torch.Tensor:
    """Mean of a (detached) value over ranks, for logging; the value itself when not distributed."""
    t = torch.as_tensor(x).detach().clone()
    if not is_distributed():
        return t
    if t.device.type == "cpu" and dist.get_backend() == "nccl":
        t = t.cuda()
    t = t.float() if not t.is_floating_point() else t
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t / dist.get_world_size()


def scale_learning_rate(base_lr_per_256: float, global_batch: int) -> float:
    """The paper's linear rule: ``lr = base_lr_per_256 * global_batch / 256``.

    Use the *global* batch (per-process batch times the number of processes): with the
    gathered loss, K processes with B/K images each optimise the same objective as one
    device with B images, so they need the same learning rate.

    Parameters
    ----------
    base_lr_per_256 : float
        Learning rate for a batch of 256 (t-SimCNE: 0.03).
    global_batch : int
        Images per optimisation step over all processes.

    Returns
    -------
    float
    """
    if not np.isfinite(base_lr_per_256) or base_lr_per_256 <= 0:
        raise ConfigError(f"base_lr_per_256 must be a positive number; got {base_lr_per_256!r}.")
    if isinstance(global_batch, bool) or int(global_batch) != global_batch or global_batch < 1:
        raise ConfigError(f"global_batch must be a positive integer; got {global_batch!r}.")
    return float(base_lr_per_256) * int(global_batch) / 256.0


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


class _GatherBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training statistics cover the batches of all ranks (exact, any device).

    PyTorch's SyncBatchNorm only runs on accelerators; this gathers the input with
    :func:`gather_with_grad` instead, which costs memory proportional to the global batch
    but gives identical statistics and gradients to one device with the whole batch.
    Used for CPU (gloo) runs and tests.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2-D input (got {input.dim()}-D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(x)
        dims = [0] + list(range(2, x.dim()))
        x_all = gather_with_grad(x)
        mean = x_all.mean(dim=dims)
        var = x_all.var(dim=dims, unbiased=False)
        if self.track_running_stats and self.running_mean is not None:
            count = x_all.numel() // x_all.shape[1]
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    self.momentum
                    if self.momentum is not None
                    else 1.0 / float(self.num_batches_tracked)
                )
                unbiased = var.detach() * count / max(count - 1, 1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
        shape = [1, -1] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """Make batch-norm statistics global over all ranks, keeping single-device semantics.

    On CUDA this is ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``; on the CPU (where
    SyncBatchNorm refuses to run) batch-norm layers are replaced by an exact gather-based
    equivalent.  Parameters and buffers are carried over.  Call before :func:`wrap_ddp`.
    """
    device = torch.device(device)
    if device.type != "cpu":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return _convert_gather_bn(model)


def _convert_gather_bn(module: torch.nn.Module) -> torch.nn.Module:
    out = module
    if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, _GatherBatchNorm
    ):
        out = _GatherBatchNorm(
            module.num_features,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        if module.track_running_stats:
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.training = module.training
    for name, child in module.named_children():
        out.add_module(name, _convert_gather_bn(child))
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
