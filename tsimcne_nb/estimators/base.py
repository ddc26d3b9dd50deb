"""The estimator base class shared by :class:`~tsimcne_nb.TSimCNE`, :class:`SimCLR` and
:class:`BYOL`: parameter validation, fitting through the trainer, transform, save and load.
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import replace
from typing import Any, cast

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError as _SkNotFittedError

from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError, ModelFileError, TSimCNEError
from tsimcne_nb.estimators.persist import _ModelFileMixin
from tsimcne_nb.nn import collectives
from tsimcne_nb.train import device as tu
from tsimcne_nb.train import distributed as dist_utils
from tsimcne_nb.train.budgets import OPTIMIZERS, Budget, auto_learning_rate, resolve_budget
from tsimcne_nb.train.checkpoints import _read_checkpoint, list_checkpoints
from tsimcne_nb.train.config import TrainConfig, TrainingStrategy
from tsimcne_nb.train.feed import _ImageFeed, _infer
from tsimcne_nb.train.loop import _Trainer
from tsimcne_nb.train.seeds import _S_INIT, _derive_seed
from tsimcne_nb.validation import check_float, check_int, seed_from_random_state

__all__ = ['NotFittedError']



class NotFittedError(TSimCNEError, _SkNotFittedError):
    """``transform``/``features``/``save`` was called before ``fit``."""


class TrainingOutOfMemoryError(TSimCNEError, MemoryError):
    """The accelerator ran out of memory; the message suggests a smaller batch."""


# --------------------------------------------------------------------------- estimators
class _ContrastiveLearner(_ModelFileMixin, TransformerMixin, BaseEstimator):
    """Shared machinery of :class:`TSimCNE`, :class:`SimCLR` and :class:`BYOL`: scikit-learn
    estimators (``BaseEstimator`` + ``TransformerMixin``).

    Subclasses define ``__init__`` (the parameters, stored verbatim), ``_build_model``,
    ``_strategy`` (stages, loss and per-step hook for the training loop) and what
    ``transform`` returns (``_transform_what``).
    """

    _kind = "contrastive"
    _transform_what = "output"

    # ---------------------------------------------------------------- sklearn API
    # get_params / set_params / clone / repr / the HTML repr come from BaseEstimator: the
    # parameter list is written once, as the arguments of each estimator's __init__.
    def set_params(self, **params: Any) -> _ContrastiveLearner:
        """Set constructor parameters (scikit-learn convention); returns self.

        An unknown name raises :class:`~tsimcne_nb.errors.ConfigError` (a ``ValueError``,
        as scikit-learn raises) naming the valid parameters.
        """
        valid = self._get_param_names()
        unknown = [k for k in params if k not in valid]
        if unknown:
            raise ConfigError(f"unknown parameter {unknown[0]!r}; valid parameters: {valid}.")
        return super().set_params(**params)

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once :meth:`fit` or :meth:`load` made ``model_``
        (:func:`sklearn.utils.validation.check_is_fitted`)."""
        return getattr(self, "model_", None) is not None

    def _check_fitted(self) -> None:
        if getattr(self, "model_", None) is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(images) first "
                f"(or {type(self).__name__}.load(path) for a saved model)."
            )

    # ---------------------------------------------------------------- config
    def _epochs(self, budget: Budget) -> tuple[int, ...]:
        raise NotImplementedError

    def _resolve(self, dataset: ImageDataset) -> TrainConfig:
        """Validate every parameter against the data; return the resolved configuration."""
        budget = resolve_budget(self.budget)
        epochs = self._epochs(budget)
        size = self._image_size(dataset)
        n = len(dataset)
        if n < 2:
            raise DataError(
                f"contrastive training needs at least 2 images (negatives come from the batch); got {n}."
            )
        batch = budget.batch_size if self.batch_size is None else check_int("batch_size", self.batch_size, 2)
        if batch > n:
            warnings.warn(
                f"batch_size {batch} is larger than the dataset ({n} images); using batch_size={n}.",
                stacklevel=3,
            )
            batch = n
        info = dist_utils.init_from_env()
        if batch % info.world_size:
            raise ConfigError(
                f"batch_size {batch} is not divisible by the {info.world_size} processes; "
                f"use a multiple of {info.world_size}."
            )
        optimizer = budget.optimizer if self.optimizer is None else self.optimizer
        if optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {list(OPTIMIZERS)} (or None for the budget's, "
                f"{budget.optimizer!r}); got {optimizer!r}."
            )
        if self.learning_rate == "auto":
            lr = auto_learning_rate(batch, optimizer)  # the global batch: all ranks together
        else:
            lr = check_float("learning_rate", self.learning_rate)
        warmup = budget.warmup_epochs if self.warmup_epochs is None else check_int(
            "warmup_epochs", self.warmup_epochs, 0
        )
        device = tu.resolve_device(self.device)
        if info.is_distributed and device.type == "cuda":
            device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
        amp = tu.autocast_dtype(device, self.precision)
        if self.data_on_device not in ("auto", True, False):
            raise ConfigError(f"data_on_device must be 'auto', True or False; got {self.data_on_device!r}.")
        every = None if self.callbacks_every is None else check_int("callbacks_every", self.callbacks_every, 1)
        ck_every = None if self.checkpoint_every is None else check_int(
            "checkpoint_every", self.checkpoint_every, 1
        )
        if (ck_every or self.resume) and self.checkpoint_dir is None:
            raise ConfigError(
                "checkpoint_every / resume need checkpoint_dir=... (a folder for the checkpoints)."
            )
        callbacks = self.callbacks or []
        if callable(callbacks):
            callbacks = [callbacks]
        for cb in callbacks if isinstance(callbacks, (list, tuple)) else []:
            # callbacks start fresh at every fit (a reused one would add to its old history)
            if callable(getattr(cb, "reset", None)):
                cb.reset()
        if not isinstance(callbacks, (list, tuple)):
            raise ConfigError(f"callbacks must be a list of callables f(ctx) -> bool | None; got {callbacks!r}.")
        for cb in callbacks:
            if not callable(cb):
                raise ConfigError(f"callbacks must be callables f(ctx) -> bool | None; got {cb!r}.")
        check_float("momentum", self.momentum, positive=False, below=1.0)
        check_float("weight_decay", self.weight_decay, positive=False)
        return TrainConfig(
            budget=budget, epochs=epochs, batch_size=batch, lr=lr, warmup=warmup,
            image_size=size, device=device, dist=info, amp_dtype=amp,
            momentum=float(self.momentum), weight_decay=float(self.weight_decay),
            callbacks=tuple(callbacks), callbacks_every=every, checkpoint_every=ck_every,
            checkpoint_dir=self.checkpoint_dir, channels_last=bool(self.channels_last),
            compile=bool(self.compile), progress=bool(self.progress),
            backbone=self._backbone_choice(budget, size), extra=self._resolve_extra(budget),
            optimizer=optimizer,
        )

    def _resolve_extra(self, budget: Budget) -> dict[str, Any]:
        """Method-specific settings, validated (``TrainConfig.extra``)."""
        return {}

    def _backbone_choice(self, budget: Budget, size: int) -> Any:
        if self.backbone is None:
            return budget.backbone_for(size)
        if isinstance(self.backbone, (str, torch.nn.Module)):
            return self.backbone
        raise ConfigError(f"backbone must be a name or a torch.nn.Module; got {self.backbone!r}.")

    @staticmethod
    def _image_size(dataset: ImageDataset) -> int:
        h, w = dataset.image_shape[:2]
        if h != w:
            raise DataError(
                f"t-SimCNE trains on square images; these are {h}x{w}. Centre-crop them to a square "
                f"(images[:, top:top+S, left:left+S]) or resize them (dataset.resize({min(h, w)})) first."
            )
        return int(h)

    def _make_augmentation(
        self, dataset: ImageDataset, size: int, budget: Budget | None = None
    ) -> torch.nn.Module:
        """The training augmentation: a preset name with the budget's overrides, or the
        Augmentation given (used as it is)."""
        from tsimcne_nb.nn.augmentations import Augmentation, make_augmentation

        aug = self.augment
        needs_fill = aug == "randrot" or (
            isinstance(aug, Augmentation) and aug.to_config().get("fill") is None
            and float(aug.to_config().get("rotation_degrees") or 0) > 0
        )
        if not isinstance(aug, (str, Augmentation)):
            raise ConfigError(
                f"augment must be a preset name ('default', 'rot90', 'randrot') or an Augmentation; got {aug!r}."
            )
        fill = dataset.border_color().tolist() if needs_fill else None
        if isinstance(aug, Augmentation):
            return make_augmentation(aug, size, fill=fill)
        budget = resolve_budget(self.budget) if budget is None else budget
        return make_augmentation(aug, size, fill=fill, **budget.augment_settings())

    # ---------------------------------------------------------------- hooks
    def _build_model(self, cfg: TrainConfig) -> torch.nn.Module:
        raise NotImplementedError

    def _strategy(self, cfg: TrainConfig) -> TrainingStrategy:
        """What the training loop runs: stages, loss and per-step hook of this method."""
        raise NotImplementedError

    # ---------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None) -> _ContrastiveLearner:
        """Train on images.

        Parameters
        ----------
        X : ImageDataset, array (N, H, W, 3) uint8, or torch tensor
            Square images.  Grayscale, RGBA and float inputs are converted
            (:func:`~tsimcne_nb.validation.validate_images`).
        y : array (N,), optional
            Labels; only callbacks (e.g. :class:`KNNCallback`) use them.

        Returns
        -------
        self
        """
        dataset = as_dataset(X, y)
        with tu.restored_process_state():
            self._fit(dataset)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """:meth:`fit`, then the embedding of the training images (``embedding_``)."""
        self.fit(X, y)
        return self.embedding_

    def _fit(self, dataset: ImageDataset) -> None:
        cfg = self._resolve(dataset)
        threads = tu.configure_threads(self.num_threads)
        device = cfg.device
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        resume_state = self._load_resume_state(cfg, dataset)
        seed = self._seed(resume_state)
        cfg = replace(cfg, seed=seed)
        cfg = replace(cfg, compat=self._compat(cfg, dataset, seed))
        if resume_state is not None:
            self._check_compat(resume_state["compat"], dict(cfg.compat or {}))
        aug = self._make_augmentation(dataset, cfg.image_size, cfg.budget)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_derive_seed(seed, _S_INIT))
            model = self._build_model(cfg)
        model.to(device)
        if cfg.channels_last:
            model.to(memory_format=torch.channels_last)
        if cfg.dist.is_distributed:
            model = collectives.convert_sync_batchnorm(model, device)
        feed = _ImageFeed(dataset.images, device, self.data_on_device)
        strategy = self._strategy(cfg)
        cfg = replace(cfg, n_stages=len(strategy.stages))
        trainer = _Trainer(strategy, model, feed, aug, cfg, dataset.labels)
        t0 = time.perf_counter()
        try:
            trainer.run(resume_state)
        except torch.cuda.OutOfMemoryError as exc:
            raise TrainingOutOfMemoryError(
                f"{device} ran out of memory with batch_size={cfg.batch_size} at "
                f"{cfg.image_size} px. Use a smaller batch_size (e.g. {max(2, cfg.batch_size // 2)}), "
                "precision='bf16', or a smaller backbone."
            ) from exc
        train_time = time.perf_counter() - t0
        self._finish(dataset, cfg, model, aug, feed, trainer, train_time, threads)

    def _seed(self, resume_state: dict[str, Any] | None) -> int:
        if resume_state is not None:
            theirs = int(resume_state["seed"])
            ours = seed_from_random_state(self.random_state)
            if ours is not None and ours != theirs:
                raise ConfigError(
                    f"the checkpoint in {self.checkpoint_dir} was made with random_state={theirs} "
                    f"(--seed {theirs}), not {self.random_state}: resuming it with another seed would give "
                    f"a run that is neither. Resume with random_state={theirs} (--seed {theirs}), or start "
                    "a new run in another folder (without resume)."
                )
            return theirs
        seed = seed_from_random_state(self.random_state)
        if seed is None:
            entropy = cast(int, np.random.SeedSequence().entropy)  # an int when none is given
            return int(entropy % (2**31))
        return seed

    def _compat(self, cfg: TrainConfig, dataset: ImageDataset, seed: int) -> dict[str, Any]:
        """What must not change between a checkpoint and its resumption."""
        aug = self.augment
        return {
            "kind": type(self).__name__, "dataset": dataset.fingerprint(), "seed": seed,
            "epochs": list(cfg.epochs), "batch_size": cfg.batch_size, "lr": cfg.lr,
            "backbone": str(cfg.backbone) if isinstance(cfg.backbone, str) else "module",
            "warmup": cfg.warmup, "momentum": cfg.momentum, "weight_decay": cfg.weight_decay,
            "optimizer": cfg.optimizer,
            "augment_overrides": dict(cfg.budget.augment_overrides) if isinstance(aug, str) else {},
            "precision": str(cfg.amp_dtype).replace("torch.", "") if cfg.amp_dtype else "fp32",
            "augment": aug if isinstance(aug, str) else getattr(aug, "to_config", lambda: repr(aug))(),
            **cfg.extra,
        }

    def _check_compat(self, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
        """Refuse to resume a checkpoint made with other settings; name every difference."""
        from tsimcne_nb.modelfile import _decode, _encode

        ours = _decode(_encode(ours, {}), {})  # the form a checkpoint stores (tuples kept)
        # checkpoints from before these settings existed were all made with SGD and presets as
        # they are
        theirs = {"optimizer": "sgd", "augment_overrides": {}, **theirs}
        diffs = [k for k in theirs if theirs[k] != ours.get(k)]
        if diffs:
            what = "; ".join(
                f"{k}: checkpoint {'(another dataset)' if k == 'dataset' else theirs[k]!r}, "
                f"now {'(this dataset)' if k == 'dataset' else ours.get(k)!r}" for k in diffs
            )
            raise ConfigError(
                f"the checkpoint in {self.checkpoint_dir} was made with different settings or data "
                f"({what}). Resume with the checkpoint's settings, use another checkpoint folder, or "
                "start over without resume."
            )

    def _load_resume_state(self, cfg: TrainConfig, dataset: ImageDataset) -> dict[str, Any] | None:
        if not self.resume:
            return None
        if cfg.checkpoint_dir is None:  # _resolve refuses resume without a folder
            return None
        ckpts = list_checkpoints(cfg.checkpoint_dir)
        if not ckpts:
            warnings.warn(
                f"resume=True but {cfg.checkpoint_dir} holds no checkpoint; training from the start.",
                stacklevel=3,
            )
            return None
        unreadable: list[str] = []
        for path in reversed(ckpts):  # newest first; a damaged one falls back to the one before
            try:
                state = _read_checkpoint(path, type(self).__name__)
            except ModelFileError as exc:
                unreadable.append(f"{path.name}: {exc}")
                continue
            if unreadable:
                warnings.warn(
                    f"the newest checkpoint(s) in {cfg.checkpoint_dir} cannot be used ("
                    + " | ".join(unreadable)
                    + f"); resuming from {path.name} (epoch {state['global_epoch']}), the newest "
                    "readable one.",
                    stacklevel=3,
                )
            return state
        raise ModelFileError(
            f"resume=True but no checkpoint in {cfg.checkpoint_dir} can be read: "
            + " | ".join(unreadable)
            + ". Nothing was trained or written. Remove or convert them, or train from the start "
            "(resume=False; on the command line: without --resume)."
        )

    def _finish(self, dataset, cfg, model, aug, feed, trainer, train_time, threads) -> None:
        from tsimcne_nb.manifest import build_manifest

        self.model_ = model
        self.augmentation_ = aug
        self.image_size_ = cfg.image_size
        self.random_state_ = cfg.seed
        self.batch_size_ = cfg.batch_size
        self.learning_rate_ = cfg.lr
        self.total_epochs_ = tuple(cfg.epochs)
        self.backbone_ = cfg.backbone if isinstance(cfg.backbone, str) else "module"
        self.device_ = cfg.device
        self.stopped_early_ = trainer.stopped
        self.history_ = trainer._history_frame()
        t_embed = time.perf_counter()
        self.embedding_ = _infer(
            model, feed, np.arange(feed.n), self._transform_what, cfg.channels_last
        )
        timings = trainer.timer.summary()
        timings.update({k: round(v, 4) for k, v in trainer.extra_time.items()})
        timings["embed"] = round(time.perf_counter() - t_embed, 4)
        timings["total"] = round(train_time + timings["embed"], 4)
        self.timings_ = timings
        self.n_images_ = len(dataset)
        self.manifest_ = build_manifest(
            kind=self._kind, config=self._config_for_manifest(), dataset=dataset,
            seed=cfg.seed, device=tu.describe_device(cfg.device), timings=timings,
            extra={
                "resolved": {
                    "budget": cfg.budget.name, "total_epochs": list(cfg.epochs),
                    "batch_size": cfg.batch_size, "learning_rate": cfg.lr,
                    "optimizer": cfg.optimizer, "warmup_epochs": cfg.warmup, "backbone": self.backbone_,
                    "precision": str(cfg.amp_dtype).replace("torch.", "") if cfg.amp_dtype else "fp32",
                    "threads": threads, "world_size": cfg.dist.world_size,
                    "data_on_device": feed.on_device, "augmentation": aug.to_config(),
                    **cfg.extra,
                },
                "stopped_early": trainer.stopped,
                "epochs_run": len(self.history_),
            },
        )

    def _config_for_manifest(self) -> dict[str, Any]:
        out = {}
        for k, v in self.get_params().items():
            if k == "callbacks":
                v = None if v is None else [type(c).__name__ for c in (v if isinstance(v, list) else [v])]
            elif isinstance(v, Budget):
                v = v.to_dict()
            elif isinstance(v, torch.nn.Module):
                v = getattr(v, "to_config", lambda m=v: type(m).__name__)()
            elif isinstance(v, (os.PathLike,)):
                v = str(v)
            out[k] = v
        return out

    # ---------------------------------------------------------------- inference
    def _inference_feed(self, X: Any) -> _ImageFeed:
        dataset = X if isinstance(X, ImageDataset) else as_dataset(X)
        h, w = dataset.image_shape[:2]
        if (h, w) != (self.image_size_, self.image_size_):
            if h != w:
                raise DataError(
                    f"the model was trained on {self.image_size_}x{self.image_size_} images; these are "
                    f"{h}x{w}. Centre-crop them to a square first; square images are resized automatically."
                )
            dataset = dataset.resize(self.image_size_)
        device = next(self.model_.parameters()).device
        return _ImageFeed(dataset.images, device, "auto")

    def transform(self, X: Any) -> np.ndarray:
        """Embed new images without augmentation, in input order.

        Images of another square size are resized (bilinear) to the training size.

        Returns
        -------
        ndarray, float32 (N, d)
        """
        self._check_fitted()
        feed = self._inference_feed(X)
        return _infer(self.model_, feed, np.arange(feed.n), self._transform_what, self._cl())

    def features(self, X: Any) -> np.ndarray:
        """Backbone features ``h`` (N, F) of images, without augmentation, in input order."""
        self._check_fitted()
        feed = self._inference_feed(X)
        return _infer(self.model_, feed, np.arange(feed.n), "features", self._cl())

    def _cl(self) -> bool:
        return bool(self.channels_last)
