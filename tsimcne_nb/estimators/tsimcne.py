"""The :class:`TSimCNE` estimator: a ResNet whose 2-D output is the map
(Böhm et al., ICLR 2023).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import torch

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.estimators._docstrings import with_shared_parameters
from tsimcne_nb.estimators.base import _ContrastiveLearner
from tsimcne_nb.train.budgets import DEFAULT_BUDGET, Budget
from tsimcne_nb.train.config import Stage, TrainConfig, TrainingStrategy
from tsimcne_nb.train.feed import _unwrap
from tsimcne_nb.validation import check_float, check_int

__all__ = ['TSimCNE']


# --------------------------------------------------------------------------- t-SimCNE
@with_shared_parameters
class TSimCNE(_ContrastiveLearner):
    """t-SimCNE: a ResNet trained with a contrastive Cauchy loss to output a 2-D map.

    Parameters
    ----------
    total_epochs : tuple of 3 int, optional
        Epochs of stages 1, 2 and 3.  A stage with 0 epochs is skipped (stage 2's new
        output layer is still made), but stages 2 and 3 cannot both be 0.
    stage3_lr_factor : float, optional
        Stage 3 learning rate relative to ``learning_rate``.
    projection_hidden : int
        Hidden width of the projection head (1024).
    output_dim : int
        Dimension of the map (2).
    pretrain_dim : int
        Output dimension in stage 1 (128).
    %(shared_parameters)s

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
        budget: str | Budget = DEFAULT_BUDGET,
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
        optimizer: str | None = None,
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
        self.optimizer = optimizer
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

    def _resolve_extra(self, budget: Budget) -> dict[str, Any]:
        factor = budget.stage3_lr_factor if self.stage3_lr_factor is None else check_float(
            "stage3_lr_factor", self.stage3_lr_factor
        )
        return {
            "stage3_lr_factor": factor,
            "projection_hidden": check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": check_int("output_dim", self.output_dim, 1),
            "pretrain_dim": check_int("pretrain_dim", self.pretrain_dim, 1),
        }

    def _build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(cfg.backbone)
        head = ProjectionHead(cast(int, bb.out_features), hidden=cfg.extra["projection_hidden"],
                              out_dim=cfg.extra["pretrain_dim"])
        return ContrastiveNet(bb, head)

    def _strategy(self, cfg: TrainConfig) -> TrainingStrategy:
        e1, e2, e3 = cfg.epochs
        lr, warm, out_dim = cfg.lr, cfg.warmup, cfg.extra["output_dim"]

        def new_output(model: torch.nn.Module, gen: torch.Generator) -> None:
            _unwrap(model).replace_output(out_dim, std=1.0, generator=gen)

        stages = (
            Stage(1, e1, lr, warm, "all"),
            Stage(2, e2, lr, 0, "output", prepare=new_output),
            Stage(3, e3, lr * cfg.extra["stage3_lr_factor"], warm, "all"),
        )
        return TrainingStrategy(type(self).__name__, stages, _cauchy_loss,
                                embed=self._transform_what, estimator=self)

    def _arch(self) -> dict[str, Any]:
        m = _unwrap(self.model_)
        return {
            "backbone": self.backbone_, "hidden": m.head.hidden, "in_features": m.head.in_features,
            "out_dim": m.out_dim, "pretrain_dim": self.pretrain_dim,
        }

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(arch["backbone"])
        head = ProjectionHead(cast(int, bb.out_features), hidden=arch["hidden"], out_dim=arch["out_dim"])
        return ContrastiveNet(bb, head)


def _cauchy_loss(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """t-SimCNE's loss of a batch of two views: Cauchy InfoNCE of the network's outputs."""
    from tsimcne_nb.nn.losses import cauchy_infonce

    z1, z2 = net(x).chunk(2)
    return cauchy_infonce(z1, z2)
