"""The :class:`TSimCNE` estimator: a ResNet whose 2-D output is the map
(Böhm et al., ICLR 2023).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.estimators.base import _ContrastiveLearner
from tsimcne_nb.train.budgets import Budget
from tsimcne_nb.train.feed import _unwrap
from tsimcne_nb.train.loop import Stage
from tsimcne_nb.validation import check_float, check_int

__all__ = ['TSimCNE']


# --------------------------------------------------------------------------- t-SimCNE
class TSimCNE(_ContrastiveLearner):
    """t-SimCNE: a ResNet trained with a contrastive Cauchy loss to output a 2-D map.

    Parameters
    ----------
    augment : {"randrot", "rot90", "default"} or Augmentation
        Augmentation preset (paper, Section 4) or a custom
        :class:`~tsimcne_nb.nn.augmentations.Augmentation`.  ``"randrot"`` fills rotated
        corners with the dataset's border colour.
    budget : {"paper", "quick"} or Budget
        Defaults for the knobs left at None (:mod:`tsimcne_nb.train.budgets`).  ``"paper"`` is
        the published recipe: epochs (1000, 50, 450), batch 1024, stage-3 lr / 1000,
        10 warm-up epochs, ResNet18 with a small stem for <= 32 px images and the
        torchvision ResNet18 for larger ones (as the paper did for 96 px PCam).
        ``"quick"`` is a CPU-sized schedule: epochs (45, 4, 30), batch 256, a 16-wide
        ResNet18 (``"resnet18_narrow"``), stage-3 lr * 0.3, 2 warm-up epochs.  It trades
        map quality for ~300x less compute; see :data:`tsimcne_nb.train.budgets.QUICK` and
        ``docs/quick-budget.md``.
    total_epochs : tuple of 3 int, optional
        Epochs of stages 1, 2 and 3.  A stage with 0 epochs is skipped (stage 2's new
        output layer is still made), but stages 2 and 3 cannot both be 0.
    batch_size : int, optional
        Images per step over all processes (each image gives two views).  Lowered,
        with a warning, to the number of images if larger.
    learning_rate : float or "auto"
        Peak learning rate of stages 1 and 2; ``"auto"`` = ``0.03 * batch_size / 256``.
    stage3_lr_factor : float, optional
        Stage 3 learning rate relative to ``learning_rate``.
    warmup_epochs : int, optional
        Linear warm-up of stages 1 and 3 (stage 2 has none).
    backbone : str or nn.Module, optional
        ``"resnet18_small"``, ``"resnet18"``, ``"resnet18_narrow"``, ``"resnet18_w<N>"``
        (see :func:`tsimcne_nb.nn.models.make_backbone`) or a module.
    projection_hidden : int
        Hidden width of the projection head (1024).
    output_dim : int
        Dimension of the map (2).
    pretrain_dim : int
        Output dimension in stage 1 (128).
    momentum, weight_decay : float
        SGD settings (0.9, 5e-4; weight decay on all parameters, as the reference).
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"``: bf16 autocast on CUDA and CPU, fp32 on MPS.  Losses are always fp32.
    channels_last : bool
        Use the channels-last memory layout (faster convolutions on CPU and GPU).
    compile : bool
        Run the network through ``torch.compile`` (CUDA; compile time is minutes).
    num_threads : int or "auto"
        CPU threads for torch (:func:`tsimcne_nb.train.device.configure_threads`).
    random_state : int, optional
        Seed of every random choice; None draws one (kept in ``random_state_``).
    progress : bool
        Show a progress bar per stage (notebook-aware) with loss and images/s.
    callbacks : list of callables, optional
        ``f(ctx)`` called every ``callbacks_every`` epochs (see :mod:`tsimcne_nb.train.callbacks`);
        returning True stops the run cleanly.
    callbacks_every : int, optional
        Call the callbacks every this many epochs of a stage (default every epoch; the
        last epoch of each stage always).
    checkpoint_dir : path, optional
        Folder for checkpoints (the last two are kept).
    checkpoint_every : int, optional
        Write a checkpoint every this many epochs (counted over all stages).
    resume : bool
        Continue from the last checkpoint in ``checkpoint_dir``; the result equals an
        uninterrupted run.
    data_on_device : "auto" or bool
        Keep all images on the training device (``"auto"``: when they take at most a
        quarter of the free GPU memory; always on the CPU; lazy datasets stream).

    Attributes
    ----------
    embedding_ : ndarray, float32 (N, output_dim)
        The map of the training images, in input order.
    model_ : torch.nn.Module
        The trained :class:`~tsimcne_nb.nn.models.ContrastiveNet`.
    history_ : pandas.DataFrame
        One row per epoch: stage, epoch, loss, lr (at the epoch's last step),
        images_per_s (images, each augmented twice), time (s).
    timings_ : dict
        Seconds per phase (data, augment, forward, backward, step), callbacks,
        checkpoints, embed, total.
    manifest_ : dict
        Versions, parameters, resolved settings, dataset fingerprint, seed, device, timings.
    image_size_ : int
        Side length of the training images; ``transform`` resizes other sizes to it.
    random_state_ : int
        The seed actually used.
    stopped_early_ : bool
        True when a callback stopped the run (if that happened in stage 1, the
        embedding has ``pretrain_dim`` columns).

    Notes
    -----
    Metrics (kNN accuracy, silhouette) need labels with at least two classes; training
    does not need labels at all.  Non-square images are refused with a
    :class:`~tsimcne_nb.errors.DataError` (crop them first); ``transform`` resizes
    square images of another size to the training size.
    """

    _kind = "tsimcne-model"

    def __init__(
        self,
        augment: str | Any = "randrot",
        budget: str | Budget = "paper",
        total_epochs: Sequence[int] | None = None,
        batch_size: int | None = None,
        learning_rate: float | str = "auto",
        stage3_lr_factor: float | None = None,
        warmup_epochs: int | None = None,
        backbone: str | torch.nn.Module | None = None,
        projection_hidden: int = 1024,
        output_dim: int = 2,
        pretrain_dim: int = 128,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        device: str = "auto",
        precision: str = "auto",
        channels_last: bool = True,
        compile: bool = False,
        num_threads: int | str = "auto",
        random_state: int | None = None,
        progress: bool = True,
        callbacks: list[Callable] | None = None,
        callbacks_every: int | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None,
        resume: bool = False,
        data_on_device: str | bool = "auto",
    ):
        self.augment = augment
        self.budget = budget
        self.total_epochs = total_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.stage3_lr_factor = stage3_lr_factor
        self.warmup_epochs = warmup_epochs
        self.backbone = backbone
        self.projection_hidden = projection_hidden
        self.output_dim = output_dim
        self.pretrain_dim = pretrain_dim
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.device = device
        self.precision = precision
        self.channels_last = channels_last
        self.compile = compile
        self.num_threads = num_threads
        self.random_state = random_state
        self.progress = progress
        self.callbacks = callbacks
        self.callbacks_every = callbacks_every
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.data_on_device = data_on_device

    def _epochs(self, budget: Budget) -> tuple[int, int, int]:
        epochs = budget.total_epochs if self.total_epochs is None else self.total_epochs
        if isinstance(epochs, (int, np.integer)) or len(epochs) != 3:
            raise ConfigError(
                f"total_epochs must be three integers (stage 1, 2, 3), e.g. (1000, 50, 450); got {epochs!r}."
            )
        e = tuple(check_int(f"total_epochs[{i}]", v, 0) for i, v in enumerate(epochs))
        if sum(e) == 0:
            raise ConfigError(f"total_epochs {tuple(epochs)} trains nothing; give at least one epoch.")
        if e[1] + e[2] == 0:
            raise ConfigError(
                f"total_epochs {tuple(epochs)} never trains the {self.output_dim}-D output: stages 2 and 3 "
                "cannot both have 0 epochs."
            )
        return e  # type: ignore[return-value]

    def _resolve_extra(self, budget: Budget, cfg: dict[str, Any]) -> dict[str, Any]:
        factor = budget.stage3_lr_factor if self.stage3_lr_factor is None else check_float(
            "stage3_lr_factor", self.stage3_lr_factor
        )
        return {
            "stage3_lr_factor": factor,
            "projection_hidden": check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": check_int("output_dim", self.output_dim, 1),
            "pretrain_dim": check_int("pretrain_dim", self.pretrain_dim, 1),
        }

    def _build_model(self, cfg: dict[str, Any]) -> torch.nn.Module:
        from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(cfg["backbone"])
        head = ProjectionHead(bb.out_features, hidden=cfg["projection_hidden"], out_dim=cfg["pretrain_dim"])
        return ContrastiveNet(bb, head)

    def _stages(self, cfg: dict[str, Any]) -> list[Stage]:
        e1, e2, e3 = cfg["epochs"]
        lr, warm, out_dim = cfg["lr"], cfg["warmup"], cfg["output_dim"]

        def new_output(model: torch.nn.Module, gen: torch.Generator) -> None:
            _unwrap(model).replace_output(out_dim, std=1.0, generator=gen)

        return [
            Stage(1, e1, lr, warm, "all"),
            Stage(2, e2, lr, 0, "output", prepare=new_output),
            Stage(3, e3, lr * cfg["stage3_lr_factor"], warm, "all"),
        ]

    def _loss(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        from tsimcne_nb.nn.losses import cauchy_infonce

        z1, z2 = net(x).chunk(2)
        return cauchy_infonce(z1, z2)

    def _arch(self) -> dict[str, Any]:
        m = _unwrap(self.model_)
        return {
            "backbone": self.backbone_, "hidden": m.head.hidden, "in_features": m.head.in_features,
            "out_dim": m.out_dim, "pretrain_dim": self.pretrain_dim,
        }

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(arch["backbone"])
        head = ProjectionHead(bb.out_features, hidden=arch["hidden"], out_dim=arch["out_dim"])
        return ContrastiveNet(bb, head)
