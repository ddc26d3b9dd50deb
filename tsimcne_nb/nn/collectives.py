"""Collective operations the losses and batch norm need under DDP: rank and world
size, all-gather *with* gradients, a mean all-reduce and an exact gather-based
batch norm for the CPU.  They work (as identities) without a process group, so the
nn layer does not depend on how training was launched (:mod:`tsimcne_nb.train.distributed`).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from tsimcne_nb.errors import ConfigError

__all__ = ['is_distributed', 'get_rank', 'get_world_size', 'gather_sizes', 'gather_with_grad', 'all_reduce_mean', 'convert_sync_batchnorm']


def is_distributed() -> bool:
    """True when a process group with more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward routes every rank's gradient back to the rank that owns the rows.

    Rank r's local loss depends on all gathered rows, so the gradient of the *sum* of all
    ranks' losses with respect to rank r's rows is the sum over ranks of their upstream
    gradients at those rows: an all_reduce(sum) followed by taking this rank's slice.
    Combined with DDP's division by the world size this reproduces the single-process
    gradient exactly (see :mod:`tsimcne_nb.nn.losses` for the loss scaling).
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
