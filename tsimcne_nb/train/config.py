"""What the training loop is given: a typed, frozen :class:`TrainConfig` (every setting
resolved and validated by an estimator) and a :class:`TrainingStrategy` (what to train: the
stages, the loss of a batch of two views, an optional per-step hook).

The loop (:class:`tsimcne_nb.train.loop._Trainer`) reads nothing else, so it calls no
private method of an estimator, and a new method is a new strategy, not a subclass of the loop.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from tsimcne_nb.train.budgets import Budget
from tsimcne_nb.train.distributed import DistInfo

__all__ = ["Stage", "TrainConfig", "TrainingStrategy"]


@dataclass
class Stage:
    """One stage of a training schedule.

    Attributes
    ----------
    number : int
        1-based stage number (what history and callbacks show).
    epochs : int
        Epochs of this stage (0 skips its training but still runs ``prepare``).
    lr : float
        Peak learning rate.
    warmup_epochs : int
        Linear warm-up length.
    trainable : {"all", "output"}
        Which parameters the stage's optimizer updates.
    prepare : callable, optional
        ``prepare(model, generator)`` changes the architecture at the stage start
        (t-SimCNE stage 2: the new 2-D output layer); it is re-run on resume.
    """

    number: int
    epochs: int
    lr: float
    warmup_epochs: int
    trainable: str = "all"
    prepare: Callable[[torch.nn.Module, torch.Generator], None] | None = field(
        default=None, repr=False
    )


def _frozen(mapping: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class TrainConfig:
    """The resolved settings of one training run (read-only).

    Attributes
    ----------
    budget : Budget
        The budget the defaults came from.
    epochs : tuple of int
        Epochs per stage.
    batch_size : int
        Images per step over all processes.
    lr : float
        Peak learning rate (stage 1).
    warmup : int
        Warm-up epochs.
    image_size : int
        Side of the (square) training images.
    device : torch.device
        The training device.
    dist : DistInfo
        Rank and world size (one process: rank 0 of 1).
    amp_dtype : torch.dtype or None
        Autocast dtype; None for fp32.
    momentum, weight_decay : float
        SGD momentum (unused by AdamW) and weight decay (decoupled for AdamW).
    optimizer : {"sgd", "adamw"}
        The optimiser, re-created at every stage.
    callbacks : tuple of callable
        ``f(ctx)`` called every ``callbacks_every`` epochs.
    callbacks_every, checkpoint_every : int or None
        Periods in epochs (None: every epoch / no checkpoints).
    checkpoint_dir : str or os.PathLike or None
        Folder of the checkpoints.
    channels_last, compile, progress : bool
        Memory layout, ``torch.compile``, progress bars.
    backbone : str or torch.nn.Module
        The backbone choice.
    extra : Mapping[str, Any]
        Method-specific settings (e.g. ``stage3_lr_factor``, ``temperature``), read-only; they
        are part of what a checkpoint must match to be resumed.
    seed : int or None
        The seed of the run (set once known, with :func:`dataclasses.replace`).
    compat : Mapping[str, Any] or None
        What must not change between a checkpoint and its resumption.
    n_stages : int or None
        Number of stages (for progress bars).
    """

    budget: Budget
    epochs: tuple[int, ...]
    batch_size: int
    lr: float
    warmup: int
    image_size: int
    device: torch.device
    dist: DistInfo
    amp_dtype: torch.dtype | None
    momentum: float
    weight_decay: float
    callbacks: tuple[Callable[..., Any], ...]
    callbacks_every: int | None
    checkpoint_every: int | None
    checkpoint_dir: str | os.PathLike[str] | None
    channels_last: bool
    compile: bool
    progress: bool
    backbone: Any
    extra: Mapping[str, Any] = field(default_factory=lambda: _frozen(None))
    optimizer: str = "sgd"
    seed: int | None = None
    compat: Mapping[str, Any] | None = None
    n_stages: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "epochs", tuple(int(e) for e in self.epochs))
        object.__setattr__(self, "callbacks", tuple(self.callbacks))
        object.__setattr__(self, "extra", _frozen(self.extra))


@dataclass(frozen=True)
class TrainingStrategy:
    """What to train, handed to the training loop by an estimator.

    Attributes
    ----------
    name : str
        The method's name (the estimator class): written into checkpoints as their ``kind``
        and shown in progress bars.
    stages : tuple of Stage
        The stages, in order.
    loss : callable
        ``loss(net, x)`` -> scalar tensor, for a batch ``x`` of two views stacked on dim 0.
    after_step : callable or None
        ``after_step(model, step, total_steps)`` after every optimiser step (BYOL's target
        update); None for none.
    embed : {"output", "features"}
        What the callbacks' ``ctx.embed()`` returns.
    estimator : object
        The estimator being fitted, handed to callbacks as ``ctx.estimator`` (read-only use).
    """

    name: str
    stages: tuple[Stage, ...]
    loss: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor]
    after_step: Callable[[torch.nn.Module, int, int], None] | None = None
    embed: str = "output"
    estimator: Any = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
