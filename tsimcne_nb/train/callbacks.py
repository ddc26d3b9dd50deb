"""Callbacks: watch (and stop) a training run while it happens.

A callback is any callable ``f(ctx) -> bool | None`` taking a :class:`CallbackContext`.
It is called every ``callbacks_every`` epochs (every epoch by default) and after the
last epoch of each stage.  Returning ``True`` or raising :class:`StopTraining` stops
the run cleanly: the estimator is still fitted with the model as it is then.

``ctx.embed()`` returns the current output for a fixed subsample of up to 2,000
training images (the same images every time, ``ctx.indices``), without augmentation,
in eval mode: for t-SimCNE in stages 2 and 3 that is the 2-D map, in stage 1 the
``pretrain_dim``-d output; for SimCLR and BYOL the backbone features.

Under DDP every rank calls the callbacks (they must decide the same way on all ranks,
which holds for anything computed from ``ctx``: every rank has the same model).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tsimcne_nb.errors import ConfigError, TSimCNEError


class StopTraining(TSimCNEError):
    """Raise inside a callback to stop training cleanly (the run counts as finished)."""


@dataclass
class CallbackContext:
    """What a callback sees.

    Attributes
    ----------
    stage : int
        Current stage (1, 2 or 3 for t-SimCNE; 1 for SimCLR/BYOL).
    epoch : int
        Epochs finished in this stage (1-based: 1 after the first epoch).
    global_epoch : int
        Epochs finished over all stages.
    model : torch.nn.Module
        The network being trained (not DDP-wrapped).
    estimator : object
        The estimator running the fit.
    history : pandas.DataFrame
        One row per finished epoch (stage, epoch, loss, lr, images_per_s, time).
    indices : ndarray
        Positions (in the training data) of the images ``embed()`` returns.
    labels : ndarray or None
        Labels of those images.
    stage_epochs : int
        Number of epochs of the current stage.
    """

    stage: int
    epoch: int
    global_epoch: int
    model: Any
    estimator: Any
    history: Any
    indices: np.ndarray
    labels: np.ndarray | None
    stage_epochs: int
    _embed: Callable[[], np.ndarray] = field(repr=False, default=None)  # type: ignore[assignment]
    _cache: np.ndarray | None = field(repr=False, default=None)

    def embed(self) -> np.ndarray:
        """The current output for the fixed subsample, float32 (n, d); computed once per epoch."""
        if self._cache is None:
            self._cache = self._embed()
        return self._cache

    @property
    def is_stage_end(self) -> bool:
        return self.epoch == self.stage_epochs


class Callback:
    """Base class (optional: plain functions work too)."""

    def __call__(self, ctx: CallbackContext) -> bool | None:  # pragma: no cover - interface
        raise NotImplementedError


class SnapshotCallback(Callback):
    """Keep the 2-D snapshots (to animate how the map forms).

    Attributes
    ----------
    snapshots_ : list of (stage, epoch, ndarray)
    """

    def __init__(self, stages: tuple[int, ...] = (2, 3)):
        self.stages = stages
        self.snapshots_: list[tuple[int, int, np.ndarray]] = []

    def __call__(self, ctx: CallbackContext) -> None:
        if ctx.stage in self.stages:
            self.snapshots_.append((ctx.stage, ctx.epoch, np.array(ctx.embed(), copy=True)))
        return None


class EarlyStopping(Callback):
    """Stop when a monitored value has not improved for ``patience`` calls.

    Parameters
    ----------
    monitor : str or callable
        ``"loss"`` (the epoch's mean training loss from the history, lower is better)
        or a function ``ctx -> float`` (e.g. a kNN accuracy) with ``mode="max"``.
    patience : int
        Calls without improvement before stopping.
    min_delta : float
        Smallest change that counts as an improvement.
    mode : {"min", "max"}
    stages : tuple of int
        Stages watched (default: 3, the last t-SimCNE stage; use ``(1,)`` for SimCLR/BYOL).
        The count restarts at every stage.
    """

    def __init__(
        self,
        monitor: str | Callable[[CallbackContext], float] = "loss",
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "min",
        stages: tuple[int, ...] = (3,),
    ):
        if mode not in ("min", "max"):
            raise ConfigError(f"mode must be 'min' or 'max'; got {mode!r}.")
        if patience < 1:
            raise ConfigError(f"patience must be >= 1; got {patience}.")
        if not (callable(monitor) or monitor == "loss"):
            raise ConfigError(f"monitor must be 'loss' or a function ctx -> float; got {monitor!r}.")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.mode = mode
        self.stages = stages
        self.best_: float | None = None
        self.wait_ = 0
        self._stage: int | None = None
        self.stopped_at_: tuple[int, int] | None = None

    def _value(self, ctx: CallbackContext) -> float:
        if callable(self.monitor):
            return float(self.monitor(ctx))
        return float(ctx.history["loss"].iloc[-1])

    def __call__(self, ctx: CallbackContext) -> bool:
        if ctx.stage not in self.stages:
            return False
        if ctx.stage != self._stage:
            self._stage, self.best_, self.wait_ = ctx.stage, None, 0
        value = self._value(ctx)
        sign = 1.0 if self.mode == "min" else -1.0
        if self.best_ is None or sign * (self.best_ - value) > self.min_delta:
            self.best_, self.wait_ = value, 0
            return False
        self.wait_ += 1
        if self.wait_ >= self.patience:
            self.stopped_at_ = (ctx.stage, ctx.epoch)
            return True
        return False


def run_callbacks(callbacks: list[Callable], ctx: CallbackContext) -> bool:
    """Call every callback; True when one asked to stop (all are still called)."""
    stop = False
    for cb in callbacks:
        try:
            stop = bool(cb(ctx)) or stop
        except StopTraining:
            stop = True
    return stop
