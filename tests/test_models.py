"""Backbones, projection head, ContrastiveNet and BYOLNet."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.nn.models import BYOLNet, ContrastiveNet, ProjectionHead, make_backbone


def make_contrastive_net(backbone, *, out_dim=128, hidden=1024, width=None) -> ContrastiveNet:
    # what the estimators build: a backbone plus a projection head
    bb = make_backbone(backbone, width=width)
    return ContrastiveNet(bb, ProjectionHead(bb.out_features, hidden=hidden, out_dim=out_dim))


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("name", "size", "feats"),
    [
        ("resnet18_small", 28, 512),
        ("resnet18_small", 32, 512),
        ("resnet18", 96, 512),
        ("resnet18_narrow", 28, 128),
        ("resnet18_narrow", 96, 128),
        ("resnet18_w8", 32, 64),
    ],
)
def test_backbone_output_shapes(name, size, feats):
    bb = make_backbone(name)
    assert bb.out_features == feats
    with torch.no_grad():
        out = bb.eval()(torch.randn(2, 3, size, size))
    assert out.shape == (2, feats)


def test_small_stem_is_resnet18_with_3x3_stride1_and_no_maxpool():
    small = make_backbone("resnet18_small")
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert small.conv1.padding == (1, 1)
    assert isinstance(small.maxpool, nn.Identity)
    stock = make_backbone("resnet18")
    assert stock.conv1.kernel_size == (7, 7) and isinstance(stock.maxpool, nn.MaxPool2d)
    # Only the first conv differs: 64*3*(7*7 - 3*3) parameters.
    assert _n_params(stock) - _n_params(small) == 64 * 3 * (49 - 9)
    # The written-out narrow ResNet at width 64 is architecturally the torchvision one.
    from tsimcne_nb.nn.models import _ResNet

    assert _n_params(_ResNet(64)) == _n_params(small)
    # The small stem keeps the full 28x28 resolution in stage 1 (no stride, no pool).
    feats = {}

    def hook(module, inputs, output):
        feats["l1"] = output.shape

    small.layer1.register_forward_hook(hook)
    with torch.no_grad():
        small.eval()(torch.randn(1, 3, 28, 28))
    assert feats["l1"][-2:] == (28, 28)


def test_width_and_in_channels():
    bb = make_backbone("resnet18_small", width=8, in_channels=1)
    assert bb.out_features == 64
    with torch.no_grad():
        assert bb.eval()(torch.randn(2, 1, 28, 28)).shape == (2, 64)
    assert make_backbone("resnet18_narrow", width=32).out_features == 256


def test_backbone_errors():
    with pytest.raises(ConfigError, match="valid names:.*resnet18_small"):
        make_backbone("resnet50_tiny")
    with pytest.raises(ConfigError, match="width"):
        make_backbone("resnet18_small", width=0)
    with pytest.raises(ConfigError, match="disagree"):
        make_backbone("resnet18_w32", width=16)
    with pytest.raises(ConfigError, match="name"):
        make_backbone(42)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="probe input"):
        make_backbone(nn.Sequential(nn.Flatten(), nn.Linear(5, 3)))  # cannot take images
    with pytest.raises(ConfigError, match="returned shape"):
        make_backbone(_Weird())


class _Weird(nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))[:, :, None]  # 3-D output: neither features nor maps


def test_custom_module_backbones():
    flat = nn.Sequential(nn.Conv2d(3, 7, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    bb = make_backbone(flat)
    assert bb is flat and bb.out_features == 7
    maps = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5))
    bb2 = make_backbone(maps)
    assert bb2.out_features == 5
    # The probe must not disturb batch-norm statistics or the training flag.
    assert maps.training and maps[1].num_batches_tracked.item() == 0
    assert bb2(torch.randn(3, 3, 28, 28)).shape == (3, 5)

    class WithAttr(nn.Module):
        out_features = 11

        def forward(self, x):
            raise AssertionError("no probe needed")

    assert make_backbone(WithAttr()).out_features == 11


def test_projection_head_structure():
    head = ProjectionHead(512, hidden=1024, out_dim=128)
    kinds = [type(m) for m in head.layers]
    assert kinds == [nn.Linear, nn.ReLU, nn.Linear]
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in head.modules())
    assert head.out_dim == 128 and head(torch.randn(4, 512)).shape == (4, 128)


def test_replace_output_gives_fresh_standard_normal_layer():
    head = ProjectionHead(64, hidden=1024, out_dim=128)
    old = head.output_layer
    new = head.replace_output(2, generator=torch.Generator().manual_seed(0))
    assert new is head.output_layer and new is not old
    assert (new.in_features, new.out_features) == (1024, 2)
    w = new.weight.detach()
    assert w.numel() == 2048
    assert abs(float(w.std()) - 1.0) < 0.06  # N(0, 1), not PyTorch's ~0.018 default
    assert abs(float(w.mean())) < 0.08
    assert new.bias.detach().abs().max().item() <= 1 / 32 + 1e-6  # default bias bound 1/sqrt(1024)
    assert head(torch.randn(3, 64)).shape == (3, 2)
    # Reproducible with a seeded generator.
    h2 = ProjectionHead(64, hidden=1024, out_dim=128)
    w2 = h2.replace_output(2, generator=torch.Generator().manual_seed(0)).weight
    assert torch.equal(w, w2.detach())
    with pytest.raises(ConfigError, match="out_dim"):
        head.replace_output(0)


def test_freeze_all_but_output_and_unfreeze():
    net = make_contrastive_net("resnet18_w4", out_dim=128, hidden=32)
    net.replace_output(2)
    params = net.freeze_all_but_output()
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"head.layers.2.weight", "head.layers.2.bias"}
    assert len(params) == 2 and all(p.requires_grad for p in params)
    assert net.training  # stage 2 keeps batch norm in train mode
    # Gradients reach only the output layer.
    net(torch.randn(4, 3, 28, 28)).sum().backward()
    assert all(p.grad is None for n, p in net.named_parameters() if n not in trainable)
    assert net.output_layer.weight.grad is not None
    net.unfreeze_all()
    assert all(p.requires_grad for p in net.parameters())
    assert len(net.trainable_parameters()) == len(list(net.parameters()))


def test_contrastive_net_api():
    net = make_contrastive_net("resnet18_w4", out_dim=16, hidden=32)
    x = torch.randn(3, 3, 32, 32)
    net.eval()
    with torch.no_grad():
        assert net.features(x).shape == (3, 32)
        z = net(x)
        assert z.shape == (3, 16) and torch.equal(net.embed(x), z)
    assert net.out_dim == 16
    custom = ContrastiveNet(nn.Sequential(nn.Flatten(), nn.Linear(12, 4)), nn.Linear(4, 2))
    assert custom.output_layer is custom.head
    with pytest.raises(ConfigError, match="ProjectionHead"):
        custom.replace_output(2)


@pytest.mark.parametrize("backbone", ["resnet18_narrow", "resnet18"])
def test_channels_last_and_bf16_autocast(backbone):
    net = make_contrastive_net(backbone, width=4, out_dim=2, hidden=16)
    net = net.to(memory_format=torch.channels_last)
    size = 96 if backbone == "resnet18" else 28
    x = torch.randn(4, 3, size, size).to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = net(x)
    assert z.shape == (4, 2) and z.dtype == torch.bfloat16
    z.float().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())


def test_byol_net():
    bb = make_backbone("resnet18_w4")
    net = BYOLNet(bb, hidden=32, out_dim=8)
    x1, x2 = torch.randn(2, 4, 3, 28, 28)
    p1, p2, t1, t2 = net(x1, x2)
    assert p1.shape == p2.shape == t1.shape == t2.shape == (4, 8)
    assert not t1.requires_grad and p1.requires_grad
    assert not any(p.requires_grad for p in net.target_backbone.parameters())
    # EMA: momentum 1 keeps the target, momentum 0 copies the online network.
    with torch.no_grad():
        for p in net.backbone.parameters():
            p.add_(1.0)
    before = [p.clone() for p in net.target_backbone.parameters()]
    net.update_target(1.0)
    assert all(
        torch.equal(a, b) for a, b in zip(before, net.target_backbone.parameters(), strict=True)
    )
    net.update_target(0.5)
    for b0, t, o in zip(
        before, net.target_backbone.parameters(), net.backbone.parameters(), strict=True
    ):
        assert torch.allclose(t, 0.5 * b0 + 0.5 * o)
    net.update_target(0.0)
    assert all(
        torch.equal(t, o)
        for t, o in zip(net.target_backbone.parameters(), net.backbone.parameters(), strict=True)
    )
    with pytest.raises(ConfigError, match="momentum"):
        net.update_target(1.5)
    with pytest.raises(DataError, match="differ in shape"):
        net(x1, x2[:2])
