"""Contrastive losses: Cauchy InfoNCE (t-SimCNE), NT-Xent (SimCLR) and BYOL's loss.

Conventions shared by :func:`cauchy_infonce` and :func:`simclr_infonce`
-----------------------------------------------------------------------
``z1[i]`` and ``z2[i]`` are the two views of image ``i`` (B images, 2B points).  For every
one of the 2B points taken as anchor ``i`` with positive ``j``::

    l_i = -s(z_i, z_j) + log sum_{k != i} exp s(z_i, z_k)

and the loss is the mean of ``l_i`` over all 2B anchors (both views), which equals the
symmetric average used by the reference implementation.  ``s`` is the log Cauchy similarity
``-log(1 + ||a - b||^2)`` (t-SimCNE) or the cosine similarity divided by a temperature
(SimCLR).

Losses are computed in float32 (float64 inputs stay float64) with autocast disabled, so a
bf16/fp16 forward pass still gets an fp32 loss (the log-sum-exp over 2B terms is where low precision hurts).

Multi-process training
----------------------
With ``gather=None`` (default) the losses detect an initialised ``torch.distributed``
process group with more than one process and then gather all ranks' outputs with
:func:`tsimcne_nb.nn.collectives.gather_with_grad`: each rank uses its own points as anchors
and *all* 2N points of the global batch as candidates.  The value returned on each rank
is ``world_size * (sum of this rank's l_i) / (2N)``; its mean over ranks equals the
single-process loss on the concatenated batch, and DDP's gradient averaging turns the
per-rank gradients into exactly the single-process gradients (tested in
``tests/test_distributed.py``).  Pass ``gather=False`` when only some ranks compute a loss
(e.g. a validation loss on rank 0), otherwise the collective would wait forever.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from tsimcne_nb.errors import ConfigError, DataError

__all__ = ["cauchy_infonce", "simclr_infonce", "byol_loss"]

# Up to this many output dimensions the squared distances are computed from explicit
# differences (exact); above it from the |a|^2 + |b|^2 - 2ab expansion, which is a
# matmul (fast for 128-d) but loses digits to cancellation.
_DIRECT_DIST_MAX_DIM = 8


def _check_pair(z1: torch.Tensor, z2: torch.Tensor, name: str) -> None:
    if not (isinstance(z1, torch.Tensor) and isinstance(z2, torch.Tensor)):
        raise DataError(f"{name}: z1 and z2 must be torch tensors; got {type(z1)} and {type(z2)}.")
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise DataError(
            f"{name}: z1 and z2 must both have shape (batch, dim) and match; got "
            f"{tuple(z1.shape)} and {tuple(z2.shape)}. Pass the two views' outputs separately."
        )
    if z1.shape[0] < 1 or z1.shape[1] < 1:
        raise DataError(f"{name}: empty input of shape {tuple(z1.shape)}.")


def _upcast(z: torch.Tensor) -> torch.Tensor:
    # float32 at least; float64 stays float64 (exact checks and gradcheck use it).
    return z if z.dtype == torch.float64 else z.float()


def _no_autocast(device: torch.device):
    # Autocast would run cdist/matmul in bf16/fp16 even on fp32 inputs; switch it off.
    device_type = device.type if device.type in ("cuda", "cpu", "mps", "xpu") else "cpu"
    return torch.autocast(device_type=device_type, enabled=False)


def _gather_pairs(
    z1: torch.Tensor, z2: torch.Tensor, gather: bool | None
) -> tuple[torch.Tensor, torch.Tensor, int, int]:
    """All ranks' views (Z1, Z2), this rank's row offset into them, and the world size."""
    from tsimcne_nb.nn import collectives as D

    if gather is None:
        gather = D.is_distributed()
    if not gather or not D.is_distributed():
        return z1, z2, 0, 1
    sizes = D.gather_sizes(z1.shape[0], z1.device)
    # One gather for both views keeps rows i of Z1 and Z2 paired and halves the collectives.
    stacked = D.gather_with_grad(torch.stack([z1, z2], dim=1), sizes=sizes)
    offset = sum(sizes[: D.get_rank()])
    return stacked[:, 0], stacked[:, 1], offset, D.get_world_size()


def _contrastive(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gather: bool | None,
) -> torch.Tensor:
    with _no_autocast(z1.device):
        z1 = _upcast(z1)
        z2 = _upcast(z2)
        Z1, Z2, offset, world = _gather_pairs(z1, z2, gather)
        n_local = z1.shape[0]
        n_total = Z1.shape[0]
        points = torch.cat([Z1, Z2], dim=0)  # (2N, D), view-1 rows first
        anchors = torch.cat([z1, z2], dim=0)  # (2n, D), this rank's rows
        logits = sim(anchors, points)  # (2n, 2N)
        local = torch.arange(n_local, device=z1.device)
        self_idx = torch.cat([offset + local, n_total + offset + local])
        pos_idx = torch.cat([n_total + offset + local, offset + local])
        rows = torch.arange(2 * n_local, device=z1.device)
        pos = logits[rows, pos_idx]
        logits = logits.index_put((rows, self_idx), logits.new_tensor(float("-inf")))
        per_anchor = torch.logsumexp(logits, dim=1) - pos
        return per_anchor.sum() * (world / (2.0 * n_total))


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape[1] <= _DIRECT_DIST_MAX_DIM:
        # One (n, m) difference matrix per dimension: exact, and ~30% faster on the CPU than
        # materialising an (n, m, D) tensor.
        d2 = (a[:, 0, None] - b[None, :, 0]).square()
        for k in range(1, a.shape[1]):
            d2 = d2 + (a[:, k, None] - b[None, :, k]).square()
        return d2
    # Centre first (the loss is translation invariant; a constant shift leaves every distance
    # and every gradient unchanged) so the expansion cancels smaller numbers.
    c = b.detach().mean(dim=0, keepdim=True)
    a = a - c
    b = b - c
    d2 = a.square().sum(1, keepdim=True) + b.square().sum(1)[None, :] - 2.0 * (a @ b.T)
    return d2.clamp_min(0.0)


def cauchy_infonce(
    z1: torch.Tensor, z2: torch.Tensor, *, gather: bool | None = None
) -> torch.Tensor:
    """t-SimCNE's InfoNCE loss with the Cauchy similarity ``q(a, b) = 1 / (1 + ||a - b||^2)``.

    ``l_ij = -log q(z_i, z_j) + log sum_{k != i} q(z_i, z_k)``, averaged over all 2B anchors.

    Parameters
    ----------
    z1, z2 : Tensor, shape (B, D)
        Network outputs for the two views; row ``i`` of each is a positive pair.
        Any float dtype; computed in float32 (or float64 for float64 input).
    gather : bool, optional
        Gather all processes' outputs as negatives (see the module docstring).
        None (default): when ``torch.distributed`` is initialised with >1 process.

    Returns
    -------
    Tensor
        Scalar float32 loss (float64 for float64 input).
    """
    _check_pair(z1, z2, "cauchy_infonce")

    def log_q(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return -torch.log1p(_sq_dists(a, b))

    return _contrastive(z1, z2, log_q, gather)


def simclr_infonce(
    z1: torch.Tensor,
    z2: torch.Tensor,
    temperature: float = 0.5,
    *,
    gather: bool | None = None,
) -> torch.Tensor:
    """SimCLR's NT-Xent loss: InfoNCE with cosine similarity divided by ``temperature``.

    Parameters
    ----------
    z1, z2 : Tensor, shape (B, D)
        Network outputs for the two views; row ``i`` of each is a positive pair.
    temperature : float
        Softmax temperature (0.5 in SimCLR and the paper's baseline).
    gather : bool, optional
        As in :func:`cauchy_infonce`.

    Returns
    -------
    Tensor
        Scalar float32 loss (mean over 2B anchors).
    """
    _check_pair(z1, z2, "simclr_infonce")
    if not (isinstance(temperature, (int, float)) and temperature > 0):
        raise ConfigError(f"temperature must be a positive number; got {temperature!r}.")

    def cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (F.normalize(a, dim=1) @ F.normalize(b, dim=1).T) / float(temperature)

    return _contrastive(z1, z2, cos, gather)


def byol_loss(
    p1: torch.Tensor, p2: torch.Tensor, t1: torch.Tensor, t2: torch.Tensor
) -> torch.Tensor:
    """BYOL's symmetric loss: ``(2 - 2 cos(p1, t2)) + (2 - 2 cos(p2, t1))``, mean over the batch.

    ``p`` are the online network's predictions, ``t`` the target network's projections of
    the two views (detached here: no gradient flows into the target).  As in the BYOL
    paper the two directions are summed, so the loss lies in [0, 8].  It is a per-sample
    loss, so under DDP no gathering is needed: equal per-rank batches and DDP's gradient
    averaging already give the global mean.

    Returns
    -------
    Tensor
        Scalar float32 loss.
    """
    _check_pair(p1, p2, "byol_loss")
    _check_pair(t1, t2, "byol_loss")
    if p1.shape[0] != t1.shape[0]:
        raise DataError(
            f"byol_loss: predictions have {p1.shape[0]} rows but targets {t1.shape[0]}."
        )
    with _no_autocast(p1.device):

        def term(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            p = F.normalize(_upcast(p), dim=1)
            t = F.normalize(_upcast(t.detach()), dim=1)
            return 2.0 - 2.0 * (p * t).sum(dim=1)

        return (term(p1, t2) + term(p2, t1)).mean()


