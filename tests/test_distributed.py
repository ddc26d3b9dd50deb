"""Multi-process training support.

The key test starts two real processes (gloo backend, CPU), gives each half of a fixed
batch, runs a tiny ContrastiveNet with batch norm wrapped by ``wrap_ddp`` through the
gathered contrastive losses and checks that loss, gradients and batch-norm running
statistics equal the single-process ones on the whole batch (float64, tight tolerance).

This file doubles as the worker script: ``python tests/test_distributed.py --worker ...``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.nn import collectives as C
from tsimcne_nb.nn.losses import cauchy_infonce, simclr_infonce
from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead
from tsimcne_nb.train import distributed as D

REPO = Path(__file__).resolve().parents[1]
WORLD = 2
# (loss name, global batch size): 8 splits 4 + 4; 7 splits 4 + 3 (unequal shards).
SCENARIOS = [("cauchy", 8), ("simclr", 8), ("cauchy", 7)]


def _tiny_net() -> ContrastiveNet:
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
    )
    backbone.out_features = 4
    return ContrastiveNet(backbone, ProjectionHead(4, hidden=8, out_dim=2)).double()


def _data(n: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(1)
    x1 = torch.randn(n, 3, 6, 6, generator=g, dtype=torch.float64)
    x2 = torch.randn(n, 3, 6, 6, generator=g, dtype=torch.float64)
    perm = np.random.default_rng(2).permutation(n)
    return x1, x2, perm


def _shard(n: int, rank: int, perm: np.ndarray) -> np.ndarray:
    # The one global batch of n images; for odd n it is the (unequally split) tail batch.
    batch = n + n % WORLD
    (idx,) = D.shard_indices(batch, rank, WORLD, perm, drop_last=False)
    return idx


def _step(model: torch.nn.Module, x1: torch.Tensor, x2: torch.Tensor, loss_name: str):
    b = x1.shape[0]
    z = model(torch.cat([x1, x2]))  # both views as one batch, as in training
    loss = {"cauchy": cauchy_infonce, "simclr": simclr_infonce}[loss_name](z[:b], z[b:])
    loss.backward()
    return loss


def _results(net: ContrastiveNet, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    out = {"loss": loss.detach()}
    for name, p in net.named_parameters():
        out["grad." + name] = p.grad.detach().clone()
    for name, buf in net.named_buffers():
        out["buf." + name] = buf.detach().clone()
    return out


def _worker(rank: int, port: int, outdir: Path) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    info = D.init_from_env(timeout_s=60)
    assert info.is_distributed and info.world_size == WORLD and info.backend == "gloo"
    try:
        for k, (loss_name, n) in enumerate(SCENARIOS):
            x1, x2, perm = _data(n)
            idx = _shard(n, rank, perm)
            ddp = D.wrap_ddp(_tiny_net(), "cpu")
            loss = _step(ddp, x1[idx], x2[idx], loss_name)
            torch.save(_results(ddp.module, loss), outdir / f"rank{rank}_{k}.pt")
            D.barrier()
    finally:
        D.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_results(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("ddp")
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", TSIMCNE_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", str(r), str(port), str(outdir)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(WORLD)
    ]
    # Measured 8-35 s on the shared 2-core box (two cold torch imports dominate); the
    # limit only guards against a hang.
    deadline = time.monotonic() + 120
    logs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
            logs.append(out.decode(errors="replace"))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("the two gloo worker processes did not finish within 120 s")
    for p, log in zip(procs, logs, strict=True):
        assert p.returncode == 0, f"worker failed:\n{log[-3000:]}"
    return outdir


@pytest.mark.slow  # starts two Python processes
@pytest.mark.parametrize("k", range(len(SCENARIOS)))
def test_two_processes_equal_single_process(two_process_results, k):
    loss_name, n = SCENARIOS[k]
    ranks = [torch.load(two_process_results / f"rank{r}_{k}.pt") for r in range(WORLD)]
    net = _tiny_net()
    x1, x2, perm = _data(n)
    # The single process sees the ranks' shards concatenated in rank order.
    order = np.concatenate([_shard(n, r, perm) for r in range(WORLD)])
    assert sorted(order.tolist()) == list(range(n))
    single = _results(net, _step(net, x1[order], x2[order], loss_name))

    # Mean of the per-rank loss values is the global loss.
    mean_loss = sum(r["loss"] for r in ranks) / WORLD
    assert torch.allclose(mean_loss, single["loss"], rtol=1e-10, atol=1e-12)
    for key, ref in single.items():
        if key == "loss":
            continue
        for r in ranks:
            # Gradients after DDP averaging and synced batch-norm statistics.
            assert torch.allclose(r[key], ref, rtol=1e-9, atol=1e-12), (key, r[key], ref)
    # Guard against a vacuous pass: gradients are not all zero.
    assert any(single[k].abs().sum() > 0 for k in single if k.startswith("grad."))


@pytest.mark.slow
def test_without_gathering_the_loss_differs(two_process_results):
    # The ranks' loss values are not each equal to the global loss: gathering matters.
    ranks = [torch.load(two_process_results / f"rank{r}_0.pt") for r in range(WORLD)]
    assert not torch.allclose(ranks[0]["loss"], ranks[1]["loss"])


def test_single_process_helpers():
    x = torch.randn(3, 2, requires_grad=True)
    assert C.gather_with_grad(x) is x
    assert not C.is_distributed() and C.get_rank() == 0 and C.get_world_size() == 1
    assert D.is_main_process()
    D.barrier()  # no-op
    model = torch.nn.Linear(2, 2)
    assert D.wrap_ddp(model, "cpu") is model
    assert C.gather_sizes(5) == (5,)
    assert float(C.all_reduce_mean(torch.tensor(2.5))) == 2.5


def test_init_from_env_single_and_errors(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    info = D.init_from_env()
    assert info == D.DistInfo() and info.is_main and not info.is_distributed
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two' is not an integer"):
        D.init_from_env()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ConfigError, match="RANK=2 is outside"):
        D.init_from_env()
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(ConfigError, match="MASTER_ADDR, MASTER_PORT is not set"):
        D.init_from_env()
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "1")
    with pytest.raises(ConfigError, match="unknown distributed backend"):
        D.init_from_env(backend="carrier-pigeon")


def test_shard_indices_union_is_single_process_batch():
    perm = np.random.default_rng(0).permutation(103)
    shards = [D.shard_indices(12, r, 3, perm) for r in range(3)]
    assert all(len(s) == 103 // 12 for s in shards)
    for b in range(len(shards[0])):
        joined = np.concatenate([shards[r][b] for r in range(3)])
        assert np.array_equal(joined, perm[b * 12 : (b + 1) * 12])
        assert all(len(shards[r][b]) == 4 for r in range(3))
    tail = [D.shard_indices(12, r, 3, perm, drop_last=False)[-1] for r in range(3)]
    assert np.array_equal(np.concatenate(tail), perm[96:])
    with pytest.raises(ConfigError, match="not divisible by 3"):
        D.shard_indices(10, 0, 3, perm)
    with pytest.raises(ConfigError, match="rank must be"):
        D.shard_indices(12, 3, 3, perm)
    with pytest.raises(ConfigError, match="1-D integer"):
        D.shard_indices(12, 0, 3, perm.astype(float))
    with pytest.raises(ConfigError, match="drop_last=True"):
        D.shard_indices(4, 0, 4, np.arange(5), drop_last=False)


def test_convert_sync_batchnorm_cpu_keeps_parameters():
    net = _tiny_net()
    bn = net.backbone[1]
    converted = C.convert_sync_batchnorm(net, "cpu")
    new_bn = converted.backbone[1]
    assert type(new_bn).__name__ == "_GatherBatchNorm"
    assert new_bn.weight is bn.weight and new_bn.running_mean is bn.running_mean
    # Outside a process group it behaves like ordinary batch norm.
    x = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    ref = torch.nn.functional.batch_norm(x, None, None, bn.weight, bn.bias, training=True)
    assert torch.allclose(new_bn(x), ref)


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "--worker":
    _worker(int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]))
