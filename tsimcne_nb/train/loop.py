"""Training: the :class:`TSimCNE` estimator, the :class:`SimCLR` and :class:`BYOL` feature
learners, and :func:`fit_to_directory` (the ``tsimcne-nb fit`` command).

One training loop (:class:`_Trainer`) serves all three: a method is a list of
:class:`Stage` objects plus a loss.  t-SimCNE (Böhm et al., ICLR 2023; see
``RECIPE.md``) has three stages, all with the Cauchy InfoNCE loss:

1. 128-d output, every parameter, linear warm-up then cosine decay (per step);
2. a fresh ``Linear(hidden, 2)`` output layer initialised N(0, 1), only it trains (the
   model stays in train mode, so batch-norm statistics keep updating, as in the
   reference), same learning rate, no warm-up;
3. every parameter, learning rate times ``stage3_lr_factor``, warm-up then cosine.

SGD with momentum 0.9 and weight decay 5e-4 on all parameters (the paper's), or AdamW with the
same weight decay (decoupled) where the config says so, re-created per stage;
``lr = 0.03 * batch_size / 256`` for SGD (the global batch under DDP).

Data path
---------
The uint8 images live on the training device as one tensor when they fit (always for
28 px data); each epoch is a random permutation (``drop_last`` so batch norm always
sees full batches), and each batch is augmented as a whole on the device
(:mod:`tsimcne_nb.nn.augmentations`).  There are no DataLoader workers.  Lazy (h5)
datasets are streamed batch by batch through pinned host memory.

Reproducibility
---------------
Every random number flows from explicit generators re-seeded from
``(random_state, stage, epoch)`` at every epoch, and the learning rate is a pure
function of the step.  A run resumed from a checkpoint therefore ends at exactly the
same model as an uninterrupted run (bitwise on the CPU with the same thread count).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from tsimcne_nb.errors import TSimCNEError
from tsimcne_nb.nn import collectives
from tsimcne_nb.train import distributed as dist_utils
from tsimcne_nb.train.budgets import lr_at
from tsimcne_nb.train.callbacks import (
    CallbackContext,
    run_callbacks,
)
from tsimcne_nb.train.checkpoints import _FORMAT, _write_checkpoint
from tsimcne_nb.train.config import Stage, TrainConfig, TrainingStrategy
from tsimcne_nb.train.feed import _ImageFeed, _infer, _unwrap
from tsimcne_nb.train.seeds import (
    _S_AUG,
    _S_PERM,
    _S_PREPARE,
    _S_SAMPLE,
    _cpu_generator,
    _derive_seed,
    _device_generator,
    _rng_states,
    _set_rng_states,
)
from tsimcne_nb.train.timers import _PhaseTimer

#: images ``CallbackContext.embed()`` returns (a fixed random subsample)
_CALLBACK_SAMPLE = 2000


# --------------------------------------------------------------------------- the loop
class _Trainer:
    """Runs the stages of a :class:`~tsimcne_nb.train.config.TrainingStrategy`: batches,
    augmentation, forward, loss, backward, SGD, schedule, callbacks, checkpoints, progress,
    timings.  Everything method-specific comes from the strategy; every setting from the
    frozen :class:`~tsimcne_nb.train.config.TrainConfig`.
    """

    def __init__(self, strategy: TrainingStrategy, model: torch.nn.Module, feed: _ImageFeed,
                 aug: torch.nn.Module, cfg: TrainConfig, labels: np.ndarray | None):
        if cfg.seed is None:
            raise ValueError("the TrainConfig has no seed yet (dataclasses.replace(cfg, seed=...))")
        self.strategy = strategy
        self.model = model
        self.feed = feed
        self.aug = aug
        self.cfg = cfg
        self.labels = labels
        self.device: torch.device = cfg.device
        self.dist: dist_utils.DistInfo = cfg.dist
        self.seed: int = cfg.seed
        self.batch: int = cfg.batch_size  # global batch
        self.amp_dtype: torch.dtype | None = cfg.amp_dtype
        self.history: list[dict[str, Any]] = []
        self.timer = _PhaseTimer(self.device)
        self.stopped = False
        self.global_epoch = 0
        self.extra_time = {"callbacks": 0.0, "checkpoints": 0.0}
        scaler_on = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=scaler_on) if scaler_on else None
        self.callbacks = list(cfg.callbacks)
        rng = np.random.default_rng(_derive_seed(self.seed, _S_SAMPLE))
        n = feed.n
        self.sample_idx = np.sort(rng.choice(n, size=min(n, _CALLBACK_SAMPLE), replace=False))

    # ---------------------------------------------------------------- helpers
    @property
    def steps_per_epoch(self) -> int:
        return self.feed.n // self.batch

    def _epoch_batches(self, stage: int, epoch: int) -> list[np.ndarray]:
        # The same permutation on every rank (it depends on seed, stage and epoch only);
        # each rank takes its contiguous slice of every global batch.
        perm = np.random.default_rng(_derive_seed(self.seed, _S_PERM, stage, epoch)).permutation(
            self.feed.n
        )
        return dist_utils.shard_indices(
            self.batch, self.dist.rank, self.dist.world_size, perm, drop_last=True
        )

    def _make_optimizer(self, stage: Stage) -> torch.optim.Optimizer:
        m = self.model
        if stage.trainable == "output":
            params = m.freeze_all_but_output()
        else:
            params = m.unfreeze_all() if hasattr(m, "unfreeze_all") else list(m.parameters())
            params = [p for p in params if p.requires_grad]
        if self.cfg.optimizer == "adamw":
            return torch.optim.AdamW(params, lr=stage.lr, weight_decay=self.cfg.weight_decay)
        return torch.optim.SGD(
            params, lr=stage.lr, momentum=self.cfg.momentum, weight_decay=self.cfg.weight_decay
        )

    def _net(self) -> torch.nn.Module:
        """The module the forward pass goes through (DDP / compile wrapped), rebuilt per stage
        because the set of trainable parameters (and the output layer) changes."""
        net = self.model
        if self.dist.is_distributed:
            net = dist_utils.wrap_ddp(net, self.device, sync_batchnorm=False)
        if self.cfg.compile:
            net = torch.compile(net)
        return net

    def _prepare(self, stage: Stage) -> None:
        if stage.prepare is None:
            return
        gen = _cpu_generator(_derive_seed(self.seed, _S_PREPARE, stage.number))
        stage.prepare(self.model, gen)
        self.model.to(self.device)
        if self.cfg.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _autocast(self):
        if self.amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    # ---------------------------------------------------------------- one step
    def _two_views(self, images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Both views of this rank's images, drawn as slices of the *global* batch's views.

        The random parameters are drawn for all 2 x global-batch views (cheap: a few numbers
        per view) from a generator that is the same on every rank, and each rank applies
        its rows.  So K processes augment exactly as one process would, and a DDP run
        matches a single-device run up to floating-point summation order.
        """
        b, h, w = images.shape[:3]  # uint8 NHWC
        world = self.dist.world_size
        params = self.aug.sample_params(2 * b * world, gen, h, w)
        if world > 1:
            mine = torch.arange(b, device=gen.device) + self.dist.rank * b
            rows = torch.cat([mine, mine + b * world])
            params = {k: v[rows] for k, v in params.items()}
        return self.aug.apply(torch.cat([images, images]), params)

    def _train_step(self, net, opt, idx: np.ndarray, gen: torch.Generator, lr: float) -> torch.Tensor:
        t = self.timer
        t.start()
        images = self.feed.take(idx)
        t.mark("data")
        x = self._two_views(images, gen)  # (2b, 3, S, S): view-1 rows, then view-2 rows
        if not self.cfg.channels_last:
            x = x.contiguous()
        t.mark("augment")
        with self._autocast():
            loss = self.strategy.loss(net, x)
        t.mark("forward")
        opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        t.mark("backward")
        for group in opt.param_groups:
            group["lr"] = lr
        if self.scaler is not None:
            self.scaler.step(opt)
            self.scaler.update()
        else:
            opt.step()
        t.mark("step")
        return loss.detach()

    # ---------------------------------------------------------------- one epoch
    def _run_epoch(self, stage: Stage, epoch: int, net, opt, bar) -> dict[str, Any]:
        batches = self._epoch_batches(stage.number, epoch)
        spe = len(batches)
        total = stage.epochs * spe
        # the same on every rank: each rank uses its rows of the global batch's draws
        gen = _device_generator(_derive_seed(self.seed, _S_AUG, stage.number, epoch), self.device)
        loss_sum = torch.zeros((), device=self.device)
        t0 = time.perf_counter()
        lr = 0.0
        for b, idx in enumerate(batches):
            step = epoch * spe + b
            lr = lr_at(step, total, stage.warmup_epochs * spe, stage.lr)
            loss_sum += self._train_step(net, opt, idx, gen, lr)
            if self.strategy.after_step is not None:
                self.strategy.after_step(self.model, step, total)
            if bar is not None:
                bar.update(1)
        mean_loss = float(collectives.all_reduce_mean(loss_sum / max(spe, 1)))  # one sync per epoch
        if not math.isfinite(mean_loss):
            raise TSimCNEError(
                f"the loss became {mean_loss} in stage {stage.number}, epoch {epoch + 1}. Lower the "
                "learning rate (learning_rate=...) or use precision='fp32'."
            )
        elapsed = time.perf_counter() - t0
        self.timer.total += elapsed
        row = {
            "stage": stage.number,
            "epoch": epoch + 1,
            "loss": mean_loss,
            "lr": lr,
            "images_per_s": spe * self.batch / elapsed if elapsed > 0 else float("nan"),
            "time": elapsed,
        }
        if bar is not None:
            bar.set_postfix(loss=f"{mean_loss:.4f}", img_s=f"{row['images_per_s']:.0f}")
        return row

    # ---------------------------------------------------------------- epoch end
    def _history_frame(self) -> pd.DataFrame:
        cols = ["stage", "epoch", "loss", "lr", "images_per_s", "time"]
        return pd.DataFrame(self.history, columns=cols)

    def _checkpoint(self, stage_i: int, epoch_done: int, opt) -> None:
        every = self.cfg.checkpoint_every
        if not every or self.global_epoch % every or not self.dist.is_main:
            return
        t0 = time.perf_counter()
        state = {
            "format": _FORMAT,
            "kind": self.strategy.name,
            "stage_index": stage_i,
            "epoch_done": epoch_done,
            "global_epoch": self.global_epoch,
            "model": _unwrap(self.model).state_dict(),
            "optimizer": opt.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "history": list(self.history),
            "seed": self.seed,
            "compat": self.cfg.compat,
            "rng": _rng_states(),
        }
        _write_checkpoint(Path(self.cfg.checkpoint_dir), self.global_epoch, state)
        self.extra_time["checkpoints"] += time.perf_counter() - t0

    def _callbacks(self, stage: Stage, epoch_done: int) -> bool:
        every = self.cfg.callbacks_every or 1
        if not self.callbacks or (epoch_done % every and epoch_done != stage.epochs):
            return False
        t0 = time.perf_counter()
        model = self.model

        def embed() -> np.ndarray:
            what = self.strategy.embed
            return _infer(model, self.feed, self.sample_idx, what, self.cfg.channels_last)

        ctx = CallbackContext(
            stage=stage.number, epoch=epoch_done, global_epoch=self.global_epoch, model=model,
            estimator=self.strategy.estimator, history=self._history_frame(), indices=self.sample_idx,
            labels=None if self.labels is None else self.labels[self.sample_idx],
            stage_epochs=stage.epochs, _embed=embed,
        )
        stop = run_callbacks(self.callbacks, ctx)
        self.extra_time["callbacks"] += time.perf_counter() - t0
        return stop

    # ---------------------------------------------------------------- the run
    def run(self, resume_state: dict[str, Any] | None = None) -> None:
        stages = self.strategy.stages
        start_stage, start_epoch, opt_state = 0, 0, None
        if resume_state is not None:
            start_stage = resume_state["stage_index"]
            start_epoch = resume_state["epoch_done"]
            for st in stages[: start_stage + 1]:
                self._prepare(st)  # re-create the architecture of that stage
            _unwrap(self.model).load_state_dict(resume_state["model"])
            opt_state = resume_state["optimizer"]
            self.history = list(resume_state["history"])
            self.global_epoch = resume_state["global_epoch"]
            if self.scaler is not None and resume_state.get("scaler"):
                self.scaler.load_state_dict(resume_state["scaler"])
            _set_rng_states(resume_state["rng"])
        self.model.train()
        for si in range(start_stage, len(stages)):
            stage = stages[si]
            resumed_here = resume_state is not None and si == start_stage
            if not resumed_here:
                self._prepare(stage)
            first_epoch = start_epoch if resumed_here else 0
            if stage.epochs == 0 or first_epoch >= stage.epochs:
                continue
            opt = self._make_optimizer(stage)
            if resumed_here and opt_state is not None:
                opt.load_state_dict(opt_state)
            net = self._net()
            bar = self._progress_bar(stage, first_epoch)
            try:
                for epoch in range(first_epoch, stage.epochs):
                    self.history.append(self._run_epoch(stage, epoch, net, opt, bar))
                    self.global_epoch += 1
                    self._checkpoint(si, epoch + 1, opt)
                    if self._callbacks(stage, epoch + 1):
                        self.stopped = True
                        return
            finally:
                if bar is not None:
                    bar.close()

    def _progress_bar(self, stage: Stage, first_epoch: int):
        if not self.cfg.progress or not self.dist.is_main:
            return None
        from tqdm.auto import tqdm

        spe = self.steps_per_epoch
        return tqdm(
            total=stage.epochs * spe, initial=first_epoch * spe, unit="step", leave=True,
            desc=f"{self.strategy.name} stage {stage.number}/{self.cfg.n_stages}",
        )
