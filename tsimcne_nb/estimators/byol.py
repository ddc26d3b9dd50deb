"""The :class:`BYOL` feature learner (Grill et al., 2020)."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from typing import Any

import torch

from tsimcne_nb.estimators._docstrings import with_shared_parameters
from tsimcne_nb.estimators.base import _ContrastiveLearner
from tsimcne_nb.estimators.simclr import SimCLR
from tsimcne_nb.train.budgets import DEFAULT_BUDGET, Budget
from tsimcne_nb.train.config import Stage, TrainConfig, TrainingStrategy
from tsimcne_nb.train.feed import _unwrap
from tsimcne_nb.validation import check_float, check_int

__all__ = ['BYOL']


# --------------------------------------------------------------------------- BYOL
@with_shared_parameters
class BYOL(_ContrastiveLearner):
    """BYOL feature learner (the paper's other baseline): online network + predictor,
    EMA target network, no negatives.

    The target's EMA momentum rises from ``target_momentum`` to 1 with a cosine
    schedule over the training steps, as in BYOL.  ``transform`` returns the online
    backbone features.  Optimiser: the budget's (or ``optimizer``'s) SGD or AdamW with the
    same warm-up/cosine schedule as :class:`SimCLR` (BYOL's LARS is not used).

    Parameters
    ----------
    epochs : int, optional
        Default: the budget's stage-1 epochs.
    projection_hidden : int
        Hidden width of projector and predictor (BYOL: 4096; default 1024 here for small images).
    output_dim : int
        Projection dimension (256).
    target_momentum : float
        Starting EMA momentum of the target (0.996).
    %(shared_parameters)s
    """

    _kind = "byol-model"
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
        output_dim: int = 256,
        target_momentum: float = 0.996,
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
        self.target_momentum = target_momentum
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

    _epochs = SimCLR._epochs

    def _resolve_extra(self, budget: Budget) -> dict[str, Any]:
        return {
            "projection_hidden": check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": check_int("output_dim", self.output_dim, 1),
            "target_momentum": check_float("target_momentum", self.target_momentum, below=1.0 + 1e-12),
        }

    def _build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        from tsimcne_nb.nn.models import BYOLNet, make_backbone

        return BYOLNet(make_backbone(cfg.backbone), hidden=cfg.extra["projection_hidden"],
                       out_dim=cfg.extra["output_dim"])

    def _strategy(self, cfg: TrainConfig) -> TrainingStrategy:
        stages = (Stage(1, cfg.epochs[0], cfg.lr, cfg.warmup, "all"),)
        update = functools.partial(_update_target, base=float(cfg.extra["target_momentum"]))
        return TrainingStrategy(type(self).__name__, stages, _byol_loss, after_step=update,
                                embed=self._transform_what, estimator=self)

    def _arch(self) -> dict[str, Any]:
        return {"backbone": self.backbone_, "hidden": self.projection_hidden, "out_dim": self.output_dim}

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        from tsimcne_nb.nn.models import BYOLNet, make_backbone

        return BYOLNet(make_backbone(arch["backbone"]), hidden=arch["hidden"], out_dim=arch["out_dim"])


def _byol_loss(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """BYOL's loss of a batch of two views (online predictions against the target)."""
    from tsimcne_nb.nn.losses import byol_loss

    x1, x2 = x.chunk(2)
    return byol_loss(*net(x1, x2))


def _update_target(model: torch.nn.Module, step: int, total: int, base: float) -> None:
    """BYOL's per-step hook: move the target network towards the online one (cosine schedule
    of the momentum from ``base`` to 1)."""
    tau = 1.0 - (1.0 - base) * (math.cos(math.pi * (step + 1) / total) + 1.0) / 2.0
    _unwrap(model).update_target(min(max(tau, 0.0), 1.0))
