"""Losses against naive, loop-based evaluations of their formulas."""

from __future__ import annotations

import math

import pytest
import torch

from tsimcne_nb.nn.losses import byol_loss, cauchy_infonce, simclr_infonce


def _naive(z1: torch.Tensor, z2: torch.Tensor, sim) -> float:
    """Mean over all 2B anchors of -s(i, pos) + log sum_{k != i} exp s(i, k), with loops."""
    z = torch.cat([z1, z2]).double()
    b = z1.shape[0]
    total = 0.0
    for i in range(2 * b):
        j = i + b if i < b else i - b
        denom = 0.0
        for k in range(2 * b):
            if k != i:
                denom += math.exp(sim(z[i], z[k]))
        total += -sim(z[i], z[j]) + math.log(denom)
    return total / (2 * b)


def _log_cauchy(a: torch.Tensor, b: torch.Tensor) -> float:
    return math.log(1.0 / (1.0 + float(((a - b) ** 2).sum())))


def _cos_over_t(t: float):
    def sim(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(a @ b / (a.norm() * b.norm())) / t

    return sim


@pytest.mark.parametrize("dim", [2, 16])  # both distance code paths (direct and expansion)
def test_cauchy_matches_naive_formula(dim):
    g = torch.Generator().manual_seed(dim)
    z1 = torch.randn(5, dim, generator=g, dtype=torch.float64) * 3
    z2 = torch.randn(5, dim, generator=g, dtype=torch.float64) * 3
    got = float(cauchy_infonce(z1, z2))
    assert got == pytest.approx(_naive(z1, z2, _log_cauchy), rel=1e-5)


def test_simclr_matches_naive_nt_xent():
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(6, 8, generator=g, dtype=torch.float64)
    z2 = torch.randn(6, 8, generator=g, dtype=torch.float64)
    for t in (0.5, 0.1):
        assert float(simclr_infonce(z1, z2, temperature=t)) == pytest.approx(
            _naive(z1, z2, _cos_over_t(t)), rel=1e-5
        )


def test_simclr_matches_torch_cross_entropy_form():
    # Independent formulation: NT-Xent as cross-entropy over the 2B x 2B similarity matrix.
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(2, 7, 5, generator=g)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    logits = z @ z.T / 0.5
    logits.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(7, 14), torch.arange(0, 7)])
    expected = torch.nn.functional.cross_entropy(logits, target)
    assert torch.allclose(simclr_infonce(z1, z2), expected, atol=1e-6)


@pytest.mark.parametrize("loss", [cauchy_infonce, simclr_infonce])
def test_symmetric_in_views_and_batch_order(loss):
    g = torch.Generator().manual_seed(3)
    z1, z2 = torch.randn(2, 9, 4, generator=g)
    ref = loss(z1, z2)
    assert torch.allclose(loss(z2, z1), ref, atol=1e-6)
    perm = torch.randperm(9, generator=g)
    assert torch.allclose(loss(z1[perm], z2[perm]), ref, atol=1e-6)
    # Breaking the pairing must change the loss (the test can fail).
    assert not torch.allclose(loss(z1[perm], z2), ref, atol=1e-4)


@pytest.mark.parametrize("dim", [2, 128])
def test_cauchy_translation_invariant(dim):
    g = torch.Generator().manual_seed(4)
    z1, z2 = torch.randn(2, 16, dim, generator=g) * 5
    shift = torch.randn(1, dim, generator=g) * 100
    assert torch.allclose(cauchy_infonce(z1 + shift, z2 + shift), cauchy_infonce(z1, z2), atol=1e-4)


@pytest.mark.parametrize("loss", [cauchy_infonce, simclr_infonce])
def test_aligned_pairs_have_lower_loss_than_random(loss):
    g = torch.Generator().manual_seed(5)
    z1 = torch.randn(32, 2, generator=g) * 10
    aligned = loss(z1, z1 + 0.01 * torch.randn(32, 2, generator=g))
    random = loss(z1, torch.randn(32, 2, generator=g) * 10)
    assert float(aligned) < float(random) - 0.5


def test_cauchy_gradient_matches_double_precision_autograd():
    g = torch.Generator().manual_seed(6)
    z = torch.randn(2, 8, 2, generator=g, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda a: cauchy_infonce(a[0], a[1]).double(), (z,))


def test_bf16_autocast_inputs_give_fp32_loss_and_finite_grads():
    g = torch.Generator().manual_seed(7)
    lin = torch.nn.Linear(16, 2)
    x = torch.randn(64, 16, generator=g)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = lin(x) * 50  # large spread, as in late t-SimCNE training
        assert z.dtype == torch.bfloat16
        losses = [cauchy_infonce(z[:32], z[32:]), simclr_infonce(z[:32], z[32:])]
    for loss in losses:
        assert loss.dtype == torch.float32
        lin.zero_grad()
        loss.backward(retain_graph=True)
        assert torch.isfinite(loss)
        assert all(torch.isfinite(p.grad).all() for p in lin.parameters())
        assert lin.weight.grad.abs().sum() > 0


def test_identical_points_are_finite():
    z = torch.zeros(4, 2, requires_grad=True)
    loss = cauchy_infonce(z, z.clone())
    loss.backward()
    # All points coincide: every q is 1, so l_i = log(2B - 1).
    assert loss.item() == pytest.approx(math.log(7), rel=1e-6)
    assert torch.isfinite(z.grad).all()


def test_byol_loss_values():
    p = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    # Same directions -> 0; opposite directions -> 4 per term, 8 in total.
    assert byol_loss(p, p, p * 3, p * 3).item() == pytest.approx(0.0, abs=1e-6)
    assert byol_loss(p, p, -p, -p).item() == pytest.approx(8.0, abs=1e-6)
    t = torch.tensor([[0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    loss = byol_loss(p, p, t, t)  # orthogonal -> 2 per term
    assert loss.item() == pytest.approx(4.0, abs=1e-6)
    loss.backward()
    assert t.grad is None  # no gradient into the target network
    assert p.grad is not None


