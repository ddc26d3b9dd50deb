"""The :class:`SimCLR` feature learner (Chen et al., 2020)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, cast

import torch

from tsimcne_nb.estimators._docstrings import with_shared_parameters
from tsimcne_nb.estimators.base import _ContrastiveLearner
from tsimcne_nb.estimators.tsimcne import TSimCNE
from tsimcne_nb.train.budgets import DEFAULT_BUDGET, Budget
from tsimcne_nb.train.config import Stage, TrainConfig, TrainingStrategy
from tsimcne_nb.train.feed import _unwrap
from tsimcne_nb.validation import check_float, check_int

__all__ = ['SimCLR']


# --------------------------------------------------------------------------- SimCLR
@with_shared_parameters
class SimCLR(_ContrastiveLearner):
    """SimCLR feature learner (the paper's baseline): cosine InfoNCE, T = 0.5, 128-d, one stage.

    Same backbones, augmentations, data path, loop, callbacks and checkpoints as
    :class:`TSimCNE`.  ``transform`` returns the backbone features ``h`` (512-d for
    ResNet18), which the paper embeds with t-SNE.

    Parameters
    ----------
    epochs : int, optional
        Default: the budget's stage-1 epochs (1000 for ``"paper"``).
    temperature : float
        Softmax temperature (0.5).
    projection_hidden : int
        Hidden width of the projection head (1024).
    output_dim : int
        Dimension of the projection where the loss is computed (128, as the paper's SimCLR).
    %(shared_parameters)s
    """

    _kind = "simclr-model"
    _transform_what = "features"

    def __init__(
        self,
        augment: str | Any = "randrot",
        budget: str | Budget = DEFAULT_BUDGET,
        epochs: int | None = None,
        batch_size: int | None = None,
        learning_rate: float | str = "auto",
        warmup_epochs: int | None = None,
        backbone: str | torch.nn.Module | None = None,
        projection_hidden: int = 1024,
        output_dim: int = 128,
        temperature: float = 0.5,
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
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.warmup_epochs = warmup_epochs
        self.backbone = backbone
        self.projection_hidden = projection_hidden
        self.output_dim = output_dim
        self.temperature = temperature
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

    def _epochs(self, budget: Budget) -> tuple[int]:
        e = budget.total_epochs[0] if self.epochs is None else self.epochs
        return (check_int("epochs", e, 1),)

    def _resolve_extra(self, budget: Budget) -> dict[str, Any]:
        return {
            "projection_hidden": check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": check_int("output_dim", self.output_dim, 1),
            "temperature": check_float("temperature", self.temperature),
        }

    def _build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(cfg.backbone)
        head = ProjectionHead(cast(int, bb.out_features), hidden=cfg.extra["projection_hidden"],
                              out_dim=cfg.extra["output_dim"])
        return ContrastiveNet(bb, head)

    def _strategy(self, cfg: TrainConfig) -> TrainingStrategy:
        stages = (Stage(1, cfg.epochs[0], cfg.lr, cfg.warmup, "all"),)
        loss = functools.partial(_simclr_loss, temperature=float(cfg.extra["temperature"]))
        return TrainingStrategy(type(self).__name__, stages, loss, embed=self._transform_what,
                                estimator=self)

    def _arch(self) -> dict[str, Any]:
        m = _unwrap(self.model_)
        return {"backbone": self.backbone_, "hidden": m.head.hidden, "out_dim": m.out_dim}

    _rebuild = TSimCNE._rebuild


def _simclr_loss(net: torch.nn.Module, x: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's loss of a batch of two views: InfoNCE with cosine similarity / temperature."""
    from tsimcne_nb.nn.losses import simclr_infonce

    z1, z2 = net(x).chunk(2)
    return simclr_infonce(z1, z2, temperature=temperature)
