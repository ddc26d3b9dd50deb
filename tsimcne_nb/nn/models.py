"""Networks: ResNet backbones, the t-SimCNE projection head, the contrastive net and BYOL.

Architecture (RECIPE.md, "Network"): a ResNet18 backbone gives ``h`` (512-d after global
average pooling); a projection head Linear(512, 1024) -> ReLU -> Linear(1024, out_dim) with no
batch norm gives ``z``.  For 28x28 and 32x32 images the first convolution is 3x3 with stride 1
and there is no max-pool ("small stem"); for 96x96 the paper used torchvision's unmodified
ResNet18 (``"resnet18"``).  ``"resnet18_narrow"`` is the small-stem ResNet18 with base width
16 (128-d features, ~16x fewer FLOPs) for CPU runs.

All modules work with ``channels_last`` inputs and under ``torch.autocast``.
"""

from __future__ import annotations

import copy
import re

import torch
from torch import nn

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.validation import check_int

__all__ = [
    "BACKBONES",
    "make_backbone",
    "ProjectionHead",
    "ContrastiveNet",
    "MLP",
    "BYOLNet",
]

#: Backbone names accepted by :func:`make_backbone` (plus ``"resnet18_w<N>"``).
BACKBONES: dict[str, str] = {
    "resnet18_small": "ResNet18, 3x3 stride-1 first conv, no max-pool (28/32 px); 512-d",
    "resnet18": "torchvision ResNet18 without fc (ImageNet stem, for 96 px); 512-d",
    "resnet18_narrow": "small-stem ResNet18 with base width 16 (CPU runs); 128-d",
    "resnet18_w<N>": "small-stem ResNet18 with base width N; 8N-d",
}

_DEFAULT_WIDTH = {"resnet18_small": 64, "resnet18": 64, "resnet18_narrow": 16}


class _ResNet(nn.Module):
    """ResNet18 (BasicBlock, [2, 2, 2, 2]) with a configurable stem and base width.

    Written out because torchvision's ``ResNet`` hard-codes the widths 64-512; it reuses
    torchvision's ``BasicBlock`` and its weight initialisation so that width 64 is
    architecturally identical to the torchvision model.
    """

    def __init__(self, width: int = 64, *, small_stem: bool = True, in_channels: int = 3):
        super().__init__()
        from torchvision.models.resnet import BasicBlock

        self.small_stem = small_stem
        if small_stem:
            self.conv1 = nn.Conv2d(in_channels, width, 3, stride=1, padding=1, bias=False)
            self.maxpool: nn.Module = nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        layers = []
        inplanes = width
        for i, planes in enumerate([width, 2 * width, 4 * width, 8 * width]):
            stride = 1 if i == 0 else 2
            downsample = None
            if stride != 1 or inplanes != planes:
                downsample = nn.Sequential(
                    nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(planes),
                )
            layers.append(
                nn.Sequential(
                    BasicBlock(inplanes, planes, stride, downsample),
                    BasicBlock(planes, planes),
                )
            )
            inplanes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.out_features = 8 * width
        for m in self.modules():
            # torchvision's ResNet initialisation.
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def _torchvision_resnet18(*, small_stem: bool, in_channels: int) -> nn.Module:
    from torchvision.models import resnet18

    model = resnet18(weights=None)
    if small_stem:
        model.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    elif in_channels != 3:
        model.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.fc = nn.Identity()
    model.out_features = 512
    return model


class _PooledBackbone(nn.Module):
    """Wraps a user module that returns feature maps: adds global average pooling."""

    def __init__(self, module: nn.Module, out_features: int):
        super().__init__()
        self.module = module
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.module(x)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1)


def _valid_names() -> str:
    return ", ".join(sorted(BACKBONES))


def make_backbone(
    name: str | nn.Module = "resnet18_small",
    *,
    width: int | None = None,
    in_channels: int = 3,
) -> nn.Module:
    """A backbone mapping images (B, C, H, W) to features (B, F) after global average pooling.

    Parameters
    ----------
    name : str or nn.Module
        ``"resnet18_small"`` (default; 28/32 px), ``"resnet18"`` (torchvision stem; 96 px),
        ``"resnet18_narrow"`` (base width 16, for CPUs) or ``"resnet18_w<N>"`` (small stem,
        base width N).  An ``nn.Module`` is used as is; if it lacks ``out_features`` the
        feature size is found by a forward pass on a (2, in_channels, 32, 32) input, and a
        module that returns (B, C, H, W) maps gets global average pooling added.
    width : int, optional
        Base width (channels of the first stage; features are ``8 * width``).  Defaults to
        64, or 16 for ``"resnet18_narrow"``.
    in_channels : int
        Image channels (3 for RGB).

    Returns
    -------
    nn.Module
        With an integer attribute ``out_features``.  Weights are randomly initialised.

    Raises
    ------
    ConfigError
        Unknown name, bad width, or a module whose output cannot be used as features.
    """
    in_channels = check_int("in_channels", in_channels)
    if isinstance(name, nn.Module):
        if width is not None:
            raise ConfigError("width= only applies to the named ResNet backbones, not a module.")
        return _adopt_module(name, in_channels)
    if not isinstance(name, str):
        raise ConfigError(
            f"backbone must be a name ({_valid_names()}) or a torch.nn.Module; got {type(name)}."
        )
    key = name.lower()
    m = re.fullmatch(r"resnet18_w(\d+)", key)
    if m:
        if width is not None and width != int(m.group(1)):
            raise ConfigError(f"backbone {name!r} and width={width} disagree; give one of them.")
        width = int(m.group(1))
        key = "resnet18_small"
    if key not in _DEFAULT_WIDTH:
        raise ConfigError(f"unknown backbone {name!r}; valid names: {_valid_names()}.")
    width = _DEFAULT_WIDTH[key] if width is None else check_int("width", width)
    small_stem = key != "resnet18"
    if width == 64:
        return _torchvision_resnet18(small_stem=small_stem, in_channels=in_channels)
    return _ResNet(width, small_stem=small_stem, in_channels=in_channels)


def _adopt_module(module: nn.Module, in_channels: int) -> nn.Module:
    out = getattr(module, "out_features", None)
    if isinstance(out, int) and not isinstance(out, bool) and out > 0:
        return module
    try:
        p = next(module.parameters())
        device, dtype = p.device, p.dtype
    except StopIteration:
        device, dtype = torch.device("cpu"), torch.float32
    was_training = module.training
    module.eval()  # so the probe does not touch batch-norm running statistics
    try:
        with torch.no_grad():
            y = module(torch.zeros(2, in_channels, 32, 32, device=device, dtype=dtype))
    except Exception as exc:
        raise ConfigError(
            f"the backbone module failed on a (2, {in_channels}, 32, 32) probe input ({exc}); give it an "
            "integer attribute `out_features` (the feature size) so no probe is needed."
        ) from exc
    finally:
        module.train(was_training)
    if not isinstance(y, torch.Tensor):
        raise ConfigError(
            f"the backbone module must return a tensor; it returned {type(y).__name__}."
        )
    if y.dim() == 2:
        module.out_features = int(y.shape[1])
        return module
    if y.dim() == 4:
        return _PooledBackbone(module, int(y.shape[1]))
    raise ConfigError(
        f"the backbone module returned shape {tuple(y.shape)}; it must return (B, F) "
        "features or (B, C, H, W) maps (which get global average pooling)."
    )


class ProjectionHead(nn.Module):
    """Linear(in, hidden) -> ReLU -> Linear(hidden, out_dim); no batch norm (as in t-SimCNE).

    Parameters
    ----------
    in_features : int
        Backbone feature size (512 for ResNet18).
    hidden : int
        Hidden width (1024 in the paper).
    out_dim : int
        Output dimension (128 in stage 1, 2 afterwards).
    """

    def __init__(self, in_features: int, hidden: int = 1024, out_dim: int = 128):
        super().__init__()
        self.in_features = check_int("in_features", in_features)
        self.hidden = check_int("hidden", hidden)
        self.layers = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, check_int("out_dim", out_dim)),
        )

    @property
    def out_dim(self) -> int:
        """Current output dimension."""
        return self.layers[-1].out_features

    @property
    def output_layer(self) -> nn.Linear:
        """The last Linear layer."""
        return self.layers[-1]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.layers(h)

    def replace_output(
        self, out_dim: int, *, std: float = 1.0, generator: torch.Generator | None = None
    ) -> nn.Linear:
        """Swap the last layer for a fresh ``Linear(hidden, out_dim)`` (t-SimCNE stage 2).

        The weight is drawn from N(0, std^2) with ``std = 1`` as in the reference package
        (``last_lin_std=1``); the bias keeps PyTorch's default uniform(+-1/sqrt(hidden))
        initialisation, as the reference does (it only re-initialises the weight).  The
        large weights spread the initial 2-D output over a range of ~10, which the Cauchy
        kernel needs.

        Parameters
        ----------
        out_dim : int
            New output dimension (2 for a 2-D map).
        std : float
            Standard deviation of the weight initialisation.
        generator : torch.Generator, optional
            For reproducible initialisation (a CPU generator).

        Returns
        -------
        nn.Linear
            The new layer (on the old layer's device and dtype, requiring gradients).
        """
        out_dim = check_int("out_dim", out_dim)
        if not (isinstance(std, (int, float)) and std > 0):
            raise ConfigError(f"std must be a positive number; got {std!r}.")
        old = self.layers[-1]
        new = nn.Linear(self.hidden, out_dim)
        with torch.no_grad():
            new.weight.copy_(torch.randn(new.weight.shape, generator=generator) * float(std))
            bound = 1.0 / self.hidden**0.5
            new.bias.copy_(torch.rand(new.bias.shape, generator=generator) * (2 * bound) - bound)
        new = new.to(device=old.weight.device, dtype=old.weight.dtype)
        self.layers[-1] = new
        return new


class ContrastiveNet(nn.Module):
    """Backbone followed by a projection head: ``h = backbone(x)``, ``z = head(h)``.

    Both views of a batch should be passed as one 2B batch so batch-norm statistics are
    shared, as in the reference code.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``z`` for images ``x`` (B, C, H, W)."""
        return self.head(self.backbone(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone features ``h`` (B, F) — the representation used for t-SNE/linear probes."""
        return self.backbone(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Output ``z`` (B, out_dim); the same as calling the module."""
        return self.forward(x)

    @property
    def out_dim(self) -> int:
        """Output dimension of the head."""
        return self.output_layer.out_features

    @property
    def output_layer(self) -> nn.Linear:
        """The head's last Linear layer (replaced between t-SimCNE stages 1 and 2)."""
        layer = getattr(self.head, "output_layer", None)
        if layer is None:
            linears = [m for m in self.head.modules() if isinstance(m, nn.Linear)]
            if not linears:
                raise ConfigError("the projection head has no Linear layer to act as output.")
            layer = linears[-1]
        return layer

    def replace_output(
        self, out_dim: int, *, std: float = 1.0, generator: torch.Generator | None = None
    ) -> nn.Linear:
        """See :meth:`ProjectionHead.replace_output`."""
        if not isinstance(self.head, ProjectionHead):
            raise ConfigError("replace_output needs the head to be a ProjectionHead.")
        return self.head.replace_output(out_dim, std=std, generator=generator)

    def freeze_all_but_output(self) -> list[nn.Parameter]:
        """Only the output layer requires gradients (t-SimCNE stage 2); returns those parameters.

        The module's train/eval mode is not changed: the reference keeps the model in
        train mode in stage 2, so batch-norm running statistics keep updating.
        """
        self.requires_grad_(False)
        layer = self.output_layer
        layer.requires_grad_(True)
        return list(layer.parameters())

    def unfreeze_all(self) -> list[nn.Parameter]:
        """Every parameter requires gradients again (stage 3); returns them."""
        self.requires_grad_(True)
        return list(self.parameters())

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Parameters that currently require gradients (for building an optimizer)."""
        return [p for p in self.parameters() if p.requires_grad]


class MLP(nn.Module):
    """BYOL's projector/predictor: Linear -> BatchNorm1d -> ReLU -> Linear."""

    def __init__(self, in_features: int, hidden: int = 4096, out_dim: int = 256):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(
                check_int("in_features", in_features),
                check_int("hidden", hidden),
            ),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, check_int("out_dim", out_dim)),
        )
        self.out_features = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class BYOLNet(nn.Module):
    """BYOL (Grill et al. 2020): online backbone + projector + predictor, EMA target.

    Parameters
    ----------
    backbone : nn.Module
        With ``out_features`` (see :func:`make_backbone`).
    hidden : int
        Hidden width of projector and predictor (4096 in BYOL; smaller is fine for small
        images and CPUs).
    out_dim : int
        Projection dimension (256 in BYOL).

    Notes
    -----
    The target network is a deep copy of backbone + projector that never requires
    gradients; :meth:`update_target` moves it towards the online weights.  The target runs
    in the same train/eval mode as the online network (batch statistics in training, as in
    BYOL).  Its buffers (batch-norm running statistics) are copied from the online network
    at each update.
    """

    def __init__(self, backbone: nn.Module, *, hidden: int = 4096, out_dim: int = 256):
        super().__init__()
        feats = getattr(backbone, "out_features", None)
        if not isinstance(feats, int):
            backbone = make_backbone(backbone)
            feats = backbone.out_features
        self.backbone = backbone
        self.projector = MLP(feats, hidden, out_dim)
        self.predictor = MLP(out_dim, hidden, out_dim)
        self.target_backbone = copy.deepcopy(self.backbone).requires_grad_(False)
        self.target_projector = copy.deepcopy(self.projector).requires_grad_(False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Online backbone features ``h`` (B, F)."""
        return self.backbone(x)

    def forward(
        self, x1: torch.Tensor, x2: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(p1, p2, t1, t2)`` for two view batches; feed them to :func:`~tsimcne_nb.nn.losses.byol_loss`.

        Both views go through each network as one 2B batch.
        """
        if x1.shape != x2.shape:
            raise DataError(
                f"the two views differ in shape: {tuple(x1.shape)} vs {tuple(x2.shape)}."
            )
        b = x1.shape[0]
        x = torch.cat([x1, x2], dim=0)
        p = self.predictor(self.projector(self.backbone(x)))
        with torch.no_grad():
            t = self.target_projector(self.target_backbone(x))
        return p[:b], p[b:], t[:b], t[b:]

    @torch.no_grad()
    def update_target(self, momentum: float) -> None:
        """EMA step: ``target = momentum * target + (1 - momentum) * online``.

        BYOL raises the momentum from 0.996 to 1 with a cosine schedule; the caller
        passes the current value.
        """
        if not (isinstance(momentum, (int, float)) and 0.0 <= momentum <= 1.0):
            raise ConfigError(f"momentum must be in [0, 1]; got {momentum!r}.")
        for online, target in (
            (self.backbone, self.target_backbone),
            (self.projector, self.target_projector),
        ):
            for po, pt in zip(online.parameters(), target.parameters(), strict=True):
                pt.mul_(momentum).add_(po.detach(), alpha=1.0 - momentum)
            for bo, bt in zip(online.buffers(), target.buffers(), strict=True):
                bt.copy_(bo)
