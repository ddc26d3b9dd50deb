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

SGD with momentum 0.9 and weight decay 5e-4 on all parameters, re-created per stage;
``lr = 0.03 * batch_size / 256`` (the global batch under DDP).

Data path
---------
The uint8 images live on the training device as one tensor when they fit (always for
28 px data); each epoch is a random permutation (``drop_last`` so batch norm always
sees full batches), and each batch is augmented as a whole on the device
(:mod:`tsimcne_nb.augmentations`).  There are no DataLoader workers.  Lazy (h5)
datasets are streamed batch by batch through pinned host memory.

Reproducibility
---------------
Every random number flows from explicit generators re-seeded from
``(random_state, stage, epoch)`` at every epoch, and the learning rate is a pure
function of the step.  A run resumed from a checkpoint therefore ends at exactly the
same model as an uninterrupted run (bitwise on the CPU with the same thread count).
"""

from __future__ import annotations

import inspect
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.exceptions import NotFittedError as _SkNotFittedError

from tsimcne_nb import _torch_utils as tu
from tsimcne_nb import distributed as dist_utils
from tsimcne_nb._io import atomic_open, atomic_write_json, check_can_write, preflight_outputs
from tsimcne_nb.budgets import Budget, auto_learning_rate, lr_at, resolve_budget
from tsimcne_nb.callbacks import (
    CallbackContext,
    EarlyStopping,
    KNNCallback,
    SnapshotCallback,
    StopTraining,
    run_callbacks,
)
from tsimcne_nb.datasets.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError, ModelFileError, TSimCNEError

__all__ = [
    "TSimCNE",
    "SimCLR",
    "BYOL",
    "Stage",
    "NotFittedError",
    "StopTraining",
    "KNNCallback",
    "SnapshotCallback",
    "EarlyStopping",
    "fit_to_directory",
    "list_checkpoints",
    "convert_legacy_file",
]

#: images per forward pass in transform/features (no gradients, so larger than training)
_INFER_BATCH = 1024
#: images ``CallbackContext.embed()`` returns (a fixed random subsample)
_CALLBACK_SAMPLE = 2000
#: on CUDA, phase timings synchronise on every n-th step only (sync costs throughput)
_TIMING_SAMPLE_EVERY = 20
#: checkpoints kept in checkpoint_dir
_KEEP_CHECKPOINTS = 2
#: file format version of save()/checkpoints (2: data-only, :mod:`tsimcne_nb.modelfile`)
_FORMAT = 2
#: what fit_to_directory writes into its folder
FIT_OUTPUTS = ("model.pt", "embedding.parquet", "metrics.json", "manifest.json", "map.png")
#: keys every checkpoint holds
_CHECKPOINT_KEYS = ("kind", "stage_index", "epoch_done", "global_epoch", "model", "optimizer",
                    "history", "seed", "compat", "rng")

# Stream ids of _derive_seed: each source of randomness gets its own generator.
_S_INIT, _S_PERM, _S_AUG, _S_PREPARE, _S_SAMPLE = range(5)


class NotFittedError(TSimCNEError, _SkNotFittedError):
    """``transform``/``features``/``save`` was called before ``fit``."""


class TrainingOutOfMemoryError(TSimCNEError, MemoryError):
    """The accelerator ran out of memory; the message suggests a smaller batch."""


# --------------------------------------------------------------------------- helpers
def _derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for one random stream, independent across ``keys``."""
    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(2, np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def _cpu_generator(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _device_generator(seed: int, device: torch.device) -> torch.Generator:
    g = torch.Generator(device=device) if device.type in ("cuda", "mps") else torch.Generator()
    g.manual_seed(seed)
    return g


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def _check_float(name: str, value: Any, *, positive: bool = True, below: float | None = None) -> float:
    ok = isinstance(value, (int, float, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value)) and (float(value) > 0 if positive else float(value) >= 0)
    if ok and below is not None:
        ok = float(value) < below
    if not ok:
        rule = "> 0" if positive else ">= 0"
        if below is not None:
            rule += f" and < {below}"
        raise ConfigError(f"{name} must be a finite number {rule}; got {value!r}.")
    return float(value)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if inner is None:
            return model
        model = inner


# --------------------------------------------------------------------------- data
class _ImageFeed:
    """uint8 NHWC images for one device: resident there as one tensor, or streamed.

    ``take(idx)`` returns the images at ``idx`` (in that order) on the device.
    """

    def __init__(self, images: Any, device: torch.device, on_device: bool | str = "auto"):
        self.device = device
        self.n = len(images)
        self.image_shape = tuple(images.shape[1:])
        lazy = not isinstance(images, np.ndarray)
        if on_device == "auto":
            on_device = (not lazy) and self._fits(int(np.prod(images.shape)), device)
        self.on_device = bool(on_device)
        if self.on_device:
            arr = images if not lazy else ImageDataset(images).to_numpy()
            self._resident = torch.from_numpy(np.ascontiguousarray(arr)).to(device)
            self._host = None
        else:
            self._resident = None
            self._host = images

    @staticmethod
    def _fits(nbytes: int, device: torch.device) -> bool:
        if device.type == "cpu":
            return True  # already in memory; torch.from_numpy shares it
        if device.type == "cuda":
            free, _total = torch.cuda.mem_get_info(device)
            return nbytes <= 0.25 * free  # leave the rest to activations
        return nbytes <= 2 * 2**30

    def take(self, idx: np.ndarray) -> torch.Tensor:
        if self._resident is not None:
            return self._resident[torch.as_tensor(idx, device=self.device)]
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self._host, np.ndarray):
            block = self._host[idx]
        else:  # h5py wants increasing indices: read sorted, restore the order
            order = np.argsort(idx, kind="stable")
            block = np.empty((len(idx), *self.image_shape), np.uint8)
            block[order] = np.asarray(self._host[idx[order]])
        t = torch.from_numpy(np.ascontiguousarray(block))
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)


def _to_input(images_u8: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1], as the augmentation produces."""
    x = images_u8.permute(0, 3, 1, 2).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@torch.no_grad()
def _infer(
    model: torch.nn.Module,
    feed: _ImageFeed,
    indices: np.ndarray,
    what: str,
    channels_last: bool,
    batch: int = _INFER_BATCH,
) -> np.ndarray:
    """``model(x)`` (what='output') or ``model.features(x)`` for ``indices``, fp32, eval mode."""
    was_training = model.training
    model.eval()
    try:
        fn = model.features if what == "features" else model
        out = [
            fn(_to_input(feed.take(indices[s : s + batch]), channels_last)).float().cpu()
            for s in range(0, len(indices), batch)
        ]
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.float32, copy=False)


# --------------------------------------------------------------------------- timing
class _PhaseTimer:
    """Wall time per phase of a training step.

    On CUDA the phases are measured (with synchronisation) on every n-th step only and
    scaled to the measured total, because synchronising every step slows training.
    """

    PHASES = ("data", "augment", "forward", "backward", "step")

    def __init__(self, device: torch.device):
        self._sync = torch.cuda.synchronize if device.type == "cuda" else None
        self._every = _TIMING_SAMPLE_EVERY if self._sync else 1
        self.sums = dict.fromkeys(self.PHASES, 0.0)
        self.sampled_time = 0.0
        self.total = 0.0
        self.steps = 0
        self._on = False
        self._t = 0.0

    def start(self) -> None:
        self._on = self.steps % self._every == 0
        self.steps += 1
        if self._on and self._sync:
            self._sync()
        self._t = time.perf_counter()

    def mark(self, phase: str) -> None:
        if not self._on:
            return
        if self._sync:
            self._sync()
        now = time.perf_counter()
        self.sums[phase] += now - self._t
        self.sampled_time += now - self._t
        self._t = now

    def summary(self) -> dict[str, float]:
        scale = self.total / self.sampled_time if self.sampled_time > 0 else 0.0
        out = {k: round(v * scale, 4) for k, v in self.sums.items()}
        out["train_steps_total"] = round(self.total, 4)
        out["steps"] = self.steps
        return out


# --------------------------------------------------------------------------- stages
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


# --------------------------------------------------------------------------- checkpoints
def list_checkpoints(checkpoint_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files in ``checkpoint_dir``, oldest first."""
    d = Path(checkpoint_dir)
    if not d.is_dir():
        return []
    return sorted(d.glob("ckpt-*.pt"))


def _write_checkpoint(checkpoint_dir: Path, global_epoch: int, state: dict[str, Any]) -> Path:
    from tsimcne_nb.modelfile import write_file

    path = checkpoint_dir / f"ckpt-{global_epoch:06d}.pt"
    write_file(path, "checkpoint", state, overwrite=True)  # data only; atomic
    for old in list_checkpoints(checkpoint_dir)[:-_KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    return path


def _rng_states() -> dict[str, Any]:
    """Global RNG states.  Training draws only from explicit generators re-seeded per epoch,
    so these are not needed for an exact resume; they are stored so that code running
    after a resumed fit (in the same process) sees the same global state as after an
    uninterrupted one."""
    import random

    states = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),  # noqa: NPY002
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _read_checkpoint(path: Path, kind: str) -> dict[str, Any]:
    """One checkpoint, read without unpickling; ModelFileError if unreadable or incomplete."""
    from tsimcne_nb.modelfile import read_file

    state = read_file(path, "checkpoint")
    missing = [k for k in _CHECKPOINT_KEYS if k not in state]
    if missing:
        raise ModelFileError(f"{path} is incomplete (no {', '.join(missing)}); it cannot be resumed from.")
    if state["kind"] != kind:
        raise ConfigError(
            f"{path} is a {state['kind']} checkpoint, not {kind}; use another checkpoint_dir."
        )
    return state


def _set_rng_states(states: dict[str, Any]) -> None:
    import random

    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])  # noqa: NPY002
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# --------------------------------------------------------------------------- the loop
class _Trainer:
    """Runs a list of stages: batches, augmentation, forward, loss, backward, SGD, schedule,
    callbacks, checkpoints, progress, timings.  Method-specific parts come from the
    estimator: ``_loss(net, x)`` and ``_after_step(model, step, total)``.
    """

    def __init__(self, est: _ContrastiveLearner, model: torch.nn.Module, feed: _ImageFeed,
                 aug: torch.nn.Module, cfg: dict[str, Any], labels: np.ndarray | None):
        self.est = est
        self.model = model
        self.feed = feed
        self.aug = aug
        self.cfg = cfg
        self.labels = labels
        self.device: torch.device = cfg["device"]
        self.dist: dist_utils.DistInfo = cfg["dist"]
        self.seed: int = cfg["seed"]
        self.batch: int = cfg["batch_size"]  # global batch
        self.amp_dtype: torch.dtype | None = cfg["amp_dtype"]
        self.history: list[dict[str, Any]] = []
        self.timer = _PhaseTimer(self.device)
        self.stopped = False
        self.global_epoch = 0
        self.extra_time = {"callbacks": 0.0, "checkpoints": 0.0}
        scaler_on = self.amp_dtype == torch.float16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=scaler_on) if scaler_on else None
        self.callbacks = list(cfg["callbacks"])
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
        return torch.optim.SGD(
            params, lr=stage.lr, momentum=self.cfg["momentum"], weight_decay=self.cfg["weight_decay"]
        )

    def _net(self) -> torch.nn.Module:
        """The module the forward pass goes through (DDP / compile wrapped), rebuilt per stage
        because the set of trainable parameters (and the output layer) changes."""
        net = self.model
        if self.dist.is_distributed:
            net = dist_utils.wrap_ddp(net, self.device, sync_batchnorm=False)
        if self.cfg["compile"]:
            net = torch.compile(net)
        return net

    def _prepare(self, stage: Stage) -> None:
        if stage.prepare is None:
            return
        gen = _cpu_generator(_derive_seed(self.seed, _S_PREPARE, stage.number))
        stage.prepare(self.model, gen)
        self.model.to(self.device)
        if self.cfg["channels_last"]:
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
        if not self.cfg["channels_last"]:
            x = x.contiguous()
        t.mark("augment")
        with self._autocast():
            loss = self.est._loss(net, x)
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
            self.est._after_step(self.model, step, total)
            if bar is not None:
                bar.update(1)
        mean_loss = float(dist_utils.all_reduce_mean(loss_sum / max(spe, 1)))  # one sync per epoch
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
        every = self.cfg["checkpoint_every"]
        if not every or self.global_epoch % every or not self.dist.is_main:
            return
        t0 = time.perf_counter()
        state = {
            "format": _FORMAT,
            "kind": type(self.est).__name__,
            "stage_index": stage_i,
            "epoch_done": epoch_done,
            "global_epoch": self.global_epoch,
            "model": _unwrap(self.model).state_dict(),
            "optimizer": opt.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "history": list(self.history),
            "seed": self.seed,
            "compat": self.cfg["compat"],
            "rng": _rng_states(),
        }
        _write_checkpoint(Path(self.cfg["checkpoint_dir"]), self.global_epoch, state)
        self.extra_time["checkpoints"] += time.perf_counter() - t0

    def _callbacks(self, stage: Stage, epoch_done: int) -> bool:
        every = self.cfg["callbacks_every"] or 1
        if not self.callbacks or (epoch_done % every and epoch_done != stage.epochs):
            return False
        t0 = time.perf_counter()
        model = self.model

        def embed() -> np.ndarray:
            what = self.est._transform_what
            return _infer(model, self.feed, self.sample_idx, what, self.cfg["channels_last"])

        ctx = CallbackContext(
            stage=stage.number, epoch=epoch_done, global_epoch=self.global_epoch, model=model,
            estimator=self.est, history=self._history_frame(), indices=self.sample_idx,
            labels=None if self.labels is None else self.labels[self.sample_idx],
            stage_epochs=stage.epochs, _embed=embed,
        )
        stop = run_callbacks(self.callbacks, ctx)
        self.extra_time["callbacks"] += time.perf_counter() - t0
        return stop

    # ---------------------------------------------------------------- the run
    def run(self, stages: list[Stage], resume_state: dict[str, Any] | None = None) -> None:
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
        if not self.cfg["progress"] or not self.dist.is_main:
            return None
        from tqdm.auto import tqdm

        spe = self.steps_per_epoch
        return tqdm(
            total=stage.epochs * spe, initial=first_epoch * spe, unit="step", leave=True,
            desc=f"{type(self.est).__name__} stage {stage.number}/{self.cfg['n_stages']}",
        )


# --------------------------------------------------------------------------- estimators
class _ContrastiveLearner:
    """Shared machinery of :class:`TSimCNE`, :class:`SimCLR` and :class:`BYOL`.

    Subclasses define ``_build_model``, ``_stages``, ``_loss`` and what ``transform``
    returns (``_transform_what``).
    """

    _kind = "contrastive"
    _transform_what = "output"

    # ---------------------------------------------------------------- sklearn API
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor parameters, verbatim (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> _ContrastiveLearner:
        """Set constructor parameters (scikit-learn convention); returns self."""
        valid = self._param_names()
        for key, value in params.items():
            if key not in valid:
                raise ConfigError(f"unknown parameter {key!r}; valid parameters: {valid}.")
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            k: v.default for k, v in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{k}={v!r}" for k, v in self.get_params().items()
            if not (isinstance(v, type(defaults.get(k))) and v == defaults.get(k))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _check_fitted(self) -> None:
        if getattr(self, "model_", None) is None:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(images) first "
                f"(or {type(self).__name__}.load(path) for a saved model)."
            )

    # ---------------------------------------------------------------- config
    def _epochs(self, budget: Budget) -> tuple[int, ...]:
        raise NotImplementedError

    def _resolve(self, dataset: ImageDataset) -> dict[str, Any]:
        """Validate every parameter against the data; return the resolved configuration."""
        budget = resolve_budget(self.budget)
        epochs = self._epochs(budget)
        size = self._image_size(dataset)
        n = len(dataset)
        if n < 2:
            raise DataError(
                f"contrastive training needs at least 2 images (negatives come from the batch); got {n}."
            )
        batch = budget.batch_size if self.batch_size is None else _check_int("batch_size", self.batch_size, 2)
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
        if self.learning_rate == "auto":
            lr = auto_learning_rate(batch)  # the global batch: all ranks together
        else:
            lr = _check_float("learning_rate", self.learning_rate)
        warmup = budget.warmup_epochs if self.warmup_epochs is None else _check_int(
            "warmup_epochs", self.warmup_epochs, 0
        )
        device = tu.resolve_device(self.device)
        if info.is_distributed and device.type == "cuda":
            device = torch.device("cuda", info.local_rank % torch.cuda.device_count())
        amp = tu.autocast_dtype(device, self.precision)
        if self.data_on_device not in ("auto", True, False):
            raise ConfigError(f"data_on_device must be 'auto', True or False; got {self.data_on_device!r}.")
        every = None if self.callbacks_every is None else _check_int("callbacks_every", self.callbacks_every, 1)
        ck_every = None if self.checkpoint_every is None else _check_int(
            "checkpoint_every", self.checkpoint_every, 1
        )
        if (ck_every or self.resume) and self.checkpoint_dir is None:
            raise ConfigError(
                "checkpoint_every / resume need checkpoint_dir=... (a folder for the checkpoints)."
            )
        callbacks = self.callbacks or []
        if callable(callbacks):
            callbacks = [callbacks]
        if not isinstance(callbacks, (list, tuple)):
            raise ConfigError(f"callbacks must be a list of callables f(ctx) -> bool | None; got {callbacks!r}.")
        for cb in callbacks:
            if not callable(cb):
                raise ConfigError(f"callbacks must be callables f(ctx) -> bool | None; got {cb!r}.")
        _check_float("momentum", self.momentum, positive=False, below=1.0)
        _check_float("weight_decay", self.weight_decay, positive=False)
        cfg = {
            "budget": budget, "epochs": epochs, "batch_size": batch, "lr": lr, "warmup": warmup,
            "image_size": size, "device": device, "dist": info, "amp_dtype": amp,
            "momentum": float(self.momentum), "weight_decay": float(self.weight_decay),
            "callbacks": callbacks, "callbacks_every": every, "checkpoint_every": ck_every,
            "checkpoint_dir": self.checkpoint_dir, "channels_last": bool(self.channels_last),
            "compile": bool(self.compile), "progress": bool(self.progress),
            "backbone": self._backbone_choice(budget, size),
        }
        cfg.update(self._resolve_extra(budget, cfg))
        return cfg

    def _resolve_extra(self, budget: Budget, cfg: dict[str, Any]) -> dict[str, Any]:
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

    def _make_augmentation(self, dataset: ImageDataset, size: int) -> torch.nn.Module:
        from tsimcne_nb.augmentations import Augmentation, make_augmentation

        aug = self.augment
        needs_fill = aug == "randrot" or (
            isinstance(aug, Augmentation) and aug.to_config().get("fill") is None
            and float(aug.to_config().get("rotation_degrees") or 0) > 0
        )
        if not isinstance(aug, (str, Augmentation)):
            raise ConfigError(
                f"augment must be a preset name ('default', 'rot90', 'randrot') or an Augmentation; got {aug!r}."
            )
        fill = dataset.border_color() if needs_fill else None
        return make_augmentation(aug, size, fill=fill)

    # ---------------------------------------------------------------- hooks
    def _build_model(self, cfg: dict[str, Any]) -> torch.nn.Module:
        raise NotImplementedError

    def _stages(self, cfg: dict[str, Any]) -> list[Stage]:
        raise NotImplementedError

    def _loss(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _after_step(self, model: torch.nn.Module, step: int, total: int) -> None:
        return None

    # ---------------------------------------------------------------- fit
    def fit(self, X: Any, y: Any = None) -> _ContrastiveLearner:
        """Train on images.

        Parameters
        ----------
        X : ImageDataset, array (N, H, W, 3) uint8, or torch tensor
            Square images.  Grayscale, RGBA and float inputs are converted
            (:func:`~tsimcne_nb.datasets.core.validate_images`).
        y : array (N,), optional
            Labels; only callbacks (e.g. :class:`KNNCallback`) use them.

        Returns
        -------
        self
        """
        dataset = as_dataset(X, y)
        self._fit(dataset)
        return self

    def fit_transform(self, X: Any, y: Any = None) -> np.ndarray:
        """:meth:`fit`, then the embedding of the training images (``embedding_``)."""
        self.fit(X, y)
        return self.embedding_

    def _fit(self, dataset: ImageDataset) -> None:
        cfg = self._resolve(dataset)
        threads = tu.configure_threads(self.num_threads)
        device = cfg["device"]
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        resume_state = self._load_resume_state(cfg, dataset)
        seed = self._seed(resume_state)
        cfg["seed"] = seed
        cfg["compat"] = self._compat(cfg, dataset, seed)
        if resume_state is not None:
            self._check_compat(resume_state["compat"], cfg["compat"])
        aug = self._make_augmentation(dataset, cfg["image_size"])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_derive_seed(seed, _S_INIT))
            model = self._build_model(cfg)
        model.to(device)
        if cfg["channels_last"]:
            model.to(memory_format=torch.channels_last)
        if cfg["dist"].is_distributed:
            model = dist_utils.convert_sync_batchnorm(model, device)
        feed = _ImageFeed(dataset.images, device, self.data_on_device)
        stages = self._stages(cfg)
        cfg["n_stages"] = len(stages)
        trainer = _Trainer(self, model, feed, aug, cfg, dataset.labels)
        t0 = time.perf_counter()
        try:
            trainer.run(stages, resume_state)
        except torch.cuda.OutOfMemoryError as exc:
            raise TrainingOutOfMemoryError(
                f"{device} ran out of memory with batch_size={cfg['batch_size']} at "
                f"{cfg['image_size']} px. Use a smaller batch_size (e.g. {max(2, cfg['batch_size'] // 2)}), "
                "precision='bf16', or a smaller backbone."
            ) from exc
        train_time = time.perf_counter() - t0
        self._finish(dataset, cfg, model, aug, feed, trainer, train_time, threads)

    def _seed(self, resume_state: dict[str, Any] | None) -> int:
        if resume_state is not None:
            theirs = int(resume_state["seed"])
            if self.random_state is not None and _check_int("random_state", self.random_state, 0) != theirs:
                raise ConfigError(
                    f"the checkpoint in {self.checkpoint_dir} was made with random_state={theirs} "
                    f"(--seed {theirs}), not {self.random_state}: resuming it with another seed would give "
                    f"a run that is neither. Resume with random_state={theirs} (--seed {theirs}), or start "
                    "a new run in another folder (without resume)."
                )
            return theirs
        if self.random_state is None:
            return int(np.random.SeedSequence().entropy % (2**31))
        return _check_int("random_state", self.random_state, 0)

    def _compat(self, cfg: dict[str, Any], dataset: ImageDataset, seed: int) -> dict[str, Any]:
        """What must not change between a checkpoint and its resumption."""
        aug = self.augment
        return {
            "kind": type(self).__name__, "dataset": dataset.fingerprint(), "seed": seed,
            "epochs": list(cfg["epochs"]), "batch_size": cfg["batch_size"], "lr": cfg["lr"],
            "backbone": str(cfg["backbone"]) if isinstance(cfg["backbone"], str) else "module",
            "warmup": cfg["warmup"], "momentum": cfg["momentum"], "weight_decay": cfg["weight_decay"],
            "precision": str(cfg["amp_dtype"]).replace("torch.", "") if cfg["amp_dtype"] else "fp32",
            "augment": aug if isinstance(aug, str) else getattr(aug, "to_config", lambda: repr(aug))(),
            **self._resolve_extra(cfg["budget"], cfg),
        }

    def _check_compat(self, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
        """Refuse to resume a checkpoint made with other settings; name every difference."""
        from tsimcne_nb.modelfile import _decode, _encode

        ours = _decode(_encode(ours, {}), {})  # the form a checkpoint stores (tuples kept)
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

    def _load_resume_state(self, cfg: dict[str, Any], dataset: ImageDataset) -> dict[str, Any] | None:
        if not self.resume:
            return None
        ckpts = list_checkpoints(cfg["checkpoint_dir"])
        if not ckpts:
            warnings.warn(
                f"resume=True but {cfg['checkpoint_dir']} holds no checkpoint; training from the start.",
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
                    f"the newest checkpoint(s) in {cfg['checkpoint_dir']} cannot be used ("
                    + " | ".join(unreadable)
                    + f"); resuming from {path.name} (epoch {state['global_epoch']}), the newest "
                    "readable one.",
                    stacklevel=3,
                )
            return state
        raise ModelFileError(
            f"resume=True but no checkpoint in {cfg['checkpoint_dir']} can be read: "
            + " | ".join(unreadable)
            + ". Nothing was trained or written. Remove or convert them, or train from the start "
            "(resume=False; on the command line: without --resume)."
        )

    def _finish(self, dataset, cfg, model, aug, feed, trainer, train_time, threads) -> None:
        from tsimcne_nb.manifest import build_manifest

        self.model_ = model
        self.augmentation_ = aug
        self.image_size_ = cfg["image_size"]
        self.random_state_ = cfg["seed"]
        self.batch_size_ = cfg["batch_size"]
        self.learning_rate_ = cfg["lr"]
        self.total_epochs_ = tuple(cfg["epochs"])
        self.backbone_ = cfg["backbone"] if isinstance(cfg["backbone"], str) else "module"
        self.device_ = cfg["device"]
        self.stopped_early_ = trainer.stopped
        self.history_ = trainer._history_frame()
        t_embed = time.perf_counter()
        self.embedding_ = _infer(
            model, feed, np.arange(feed.n), self._transform_what, cfg["channels_last"]
        )
        timings = trainer.timer.summary()
        timings.update({k: round(v, 4) for k, v in trainer.extra_time.items()})
        timings["embed"] = round(time.perf_counter() - t_embed, 4)
        timings["total"] = round(train_time + timings["embed"], 4)
        self.timings_ = timings
        self.n_images_ = len(dataset)
        self.manifest_ = build_manifest(
            kind=self._kind, config=self._config_for_manifest(), dataset=dataset,
            seed=cfg["seed"], device=tu.describe_device(cfg["device"]), timings=timings,
            extra={
                "resolved": {
                    "budget": cfg["budget"].name, "total_epochs": list(cfg["epochs"]),
                    "batch_size": cfg["batch_size"], "learning_rate": cfg["lr"],
                    "warmup_epochs": cfg["warmup"], "backbone": self.backbone_,
                    "precision": str(cfg["amp_dtype"]).replace("torch.", "") if cfg["amp_dtype"] else "fp32",
                    "threads": threads, "world_size": cfg["dist"].world_size,
                    "data_on_device": feed.on_device, "augmentation": aug.to_config(),
                    **{k: v for k, v in self._resolve_extra(cfg["budget"], cfg).items()},
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
                v = v.to_config() if hasattr(v, "to_config") else type(v).__name__
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

    # ---------------------------------------------------------------- save / load
    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write the fitted model to one file (atomic; refuses to overwrite by default).

        The file holds the weights, the parameters, the augmentation, the image size,
        the manifest, the history and the training embedding, in a data-only format
        (:mod:`tsimcne_nb.modelfile`: safetensors + JSON, with a checksum) that cannot
        run code when it is opened.  A custom backbone module is stored as its weights
        only; :meth:`load` then needs a fresh instance of it (``backbone=...``).
        """
        from tsimcne_nb.modelfile import write_file

        self._check_fitted()
        path = check_can_write(path, overwrite)
        params = self._config_for_manifest()
        arch = self._arch()
        if isinstance(self.backbone, torch.nn.Module):
            cls = type(self.backbone)
            arch["custom_backbone"] = f"{cls.__module__}.{cls.__qualname__}"
        payload = {
            "format": _FORMAT,
            "class": type(self).__name__,
            "params": params,
            "arch": arch,
            "state_dict": {k: v.detach().cpu() for k, v in _unwrap(self.model_).state_dict().items()},
            "augmentation": self.augmentation_.to_config(),
            "image_size": self.image_size_,
            "manifest": self.manifest_,
            "history": self.history_.to_dict(orient="list"),
            "timings": self.timings_,
            "embedding": np.asarray(self.embedding_),
            "fitted": {
                "random_state_": self.random_state_, "batch_size_": self.batch_size_,
                "learning_rate_": self.learning_rate_, "total_epochs_": list(self.total_epochs_),
                "backbone_": self.backbone_, "stopped_early_": self.stopped_early_,
                "n_images_": self.n_images_,
            },
        }
        return write_file(path, "model", payload, overwrite=overwrite)

    def _arch(self) -> dict[str, Any]:
        return {}

    @classmethod
    def load(
        cls,
        path: str | os.PathLike,
        device: str = "auto",
        *,
        backbone: torch.nn.Module | None = None,
        allow_pickle: bool = False,
    ) -> _ContrastiveLearner:
        """Load a model written by :meth:`save` (GPU-trained models load on a CPU too).

        Opening the file runs no code: it holds only data (:mod:`tsimcne_nb.modelfile`),
        and its checksum is verified, so a damaged file is refused.

        Parameters
        ----------
        path : path
            The file (e.g. the ``model.pt`` of ``tsimcne-nb fit``).
        device : str
            Where to put the model (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
        backbone : torch.nn.Module, optional
            A fresh instance of the custom backbone module the model was trained with
            (only for such models; its weights are replaced by the saved ones).
        allow_pickle : bool
            Also read a model written by an older tsimcne-nb with ``torch.save`` (a
            pickle).  Unpickling RUNS CODE the file contains: only for files whose
            source you trust, once, to convert them (save the loaded model again, or
            ``tsimcne-nb convert OLD NEW --trust``).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        ModelFileError
            The file is not a model, is damaged, or is an old pickle (without
            ``allow_pickle``).
        DataError
            The file holds another kind of model (e.g. SimCLR for ``TSimCNE.load``).
        """
        from tsimcne_nb.modelfile import is_legacy_pickle, load_legacy_pickle, read_file

        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved model at {path}")
        dev = tu.resolve_device(device)
        if allow_pickle and is_legacy_pickle(path):
            payload = load_legacy_pickle(path, map_location="cpu")
            if not isinstance(payload, dict) or "class" not in payload:
                raise ModelFileError(f"{path} is a pickle but not a model saved by tsimcne-nb.")
        else:
            payload = read_file(path, "model")
        return cls._from_payload(payload, path, dev, backbone)

    @classmethod
    def _from_payload(cls, payload: dict[str, Any], path: Path, dev: torch.device,
                      backbone: torch.nn.Module | None) -> _ContrastiveLearner:
        from tsimcne_nb.augmentations import Augmentation

        if payload.get("class") != cls.__name__:
            raise DataError(
                f"{path} holds a {payload.get('class')} model; load it with {payload.get('class')}.load."
            )
        missing = [k for k in ("params", "arch", "state_dict", "augmentation", "image_size", "manifest",
                               "history", "timings", "embedding", "fitted") if k not in payload]
        if missing:
            raise ModelFileError(f"{path} is incomplete (no {', '.join(missing)}); it cannot be loaded.")
        arch = dict(payload["arch"])
        custom = arch.get("custom_backbone")
        if custom is not None and "model_object" not in payload and backbone is None:
            raise ConfigError(
                f"{path} was trained with a custom backbone module ({custom}); files hold weights, "
                "never code, so pass a fresh instance of it: "
                f"{cls.__name__}.load(path, backbone=MyBackbone(...))."
            )
        if backbone is not None and not isinstance(backbone, torch.nn.Module):
            raise ConfigError(f"backbone must be a torch.nn.Module; got {type(backbone).__name__}.")
        params = dict(payload["params"])
        params["callbacks"] = None
        if isinstance(params.get("budget"), dict):
            params["budget"] = Budget(**{**params["budget"], "total_epochs": tuple(params["budget"]["total_epochs"])})
        if isinstance(params.get("augment"), dict):
            params["augment"] = Augmentation.from_config(params["augment"])
        if custom is not None or "model_object" in payload:
            params["backbone"] = backbone
        est = cls(**{k: v for k, v in params.items() if k in cls._param_names()})
        for k, v in payload["fitted"].items():
            setattr(est, k, tuple(v) if k == "total_epochs_" else v)
        est.image_size_ = payload["image_size"]
        if "model_object" in payload and backbone is None:  # an old pickle, trusted by the caller
            model = payload["model_object"]
        else:
            if custom is not None or (backbone is not None and "model_object" in payload):
                arch["backbone"] = backbone
            model = est._rebuild(arch, est.image_size_)
            try:
                model.load_state_dict(payload["state_dict"])
            except RuntimeError as exc:
                raise ModelFileError(
                    f"the weights in {path} do not fit the architecture they describe"
                    + (" (is the backbone module the one it was trained with?)" if backbone is not None else "")
                    + f": {str(exc).splitlines()[0]}"
                ) from exc
        model.to(dev)
        if est.channels_last:
            model.to(memory_format=torch.channels_last)
        model.eval()
        est.model_ = model
        est.device_ = dev
        est.augmentation_ = Augmentation.from_config(payload["augmentation"])
        est.manifest_ = payload["manifest"]
        est.history_ = pd.DataFrame(payload["history"])
        est.timings_ = payload["timings"]
        emb = payload["embedding"]
        est.embedding_ = np.asarray(emb.cpu().numpy() if isinstance(emb, torch.Tensor) else emb, np.float32)
        return est

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        raise NotImplementedError


# --------------------------------------------------------------------------- t-SimCNE
class TSimCNE(_ContrastiveLearner):
    """t-SimCNE: a ResNet trained with a contrastive Cauchy loss to output a 2-D map.

    Parameters
    ----------
    augment : {"randrot", "rot90", "default"} or Augmentation
        Augmentation preset (paper, Section 4) or a custom
        :class:`~tsimcne_nb.augmentations.Augmentation`.  ``"randrot"`` fills rotated
        corners with the dataset's border colour.
    budget : {"paper", "quick"} or Budget
        Defaults for the knobs left at None (:mod:`tsimcne_nb.budgets`).  ``"paper"`` is
        the published recipe: epochs (1000, 50, 450), batch 1024, stage-3 lr / 1000,
        10 warm-up epochs, ResNet18 with a small stem for <= 32 px images and the
        torchvision ResNet18 for larger ones (as the paper did for 96 px PCam).
        ``"quick"`` is a CPU-sized schedule: epochs (45, 4, 30), batch 256, a 16-wide
        ResNet18 (``"resnet18_narrow"``), stage-3 lr * 0.3, 2 warm-up epochs.  It trades
        map quality for ~300x less compute; see :data:`tsimcne_nb.budgets.QUICK` and
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
        (see :func:`tsimcne_nb.models.make_backbone`) or a module.
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
        CPU threads for torch (:func:`tsimcne_nb._torch_utils.configure_threads`).
    random_state : int, optional
        Seed of every random choice; None draws one (kept in ``random_state_``).
    progress : bool
        Show a progress bar per stage (notebook-aware) with loss and images/s.
    callbacks : list of callables, optional
        ``f(ctx)`` called every ``callbacks_every`` epochs (see :mod:`tsimcne_nb.callbacks`);
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
        The trained :class:`~tsimcne_nb.models.ContrastiveNet`.
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
        e = tuple(_check_int(f"total_epochs[{i}]", v, 0) for i, v in enumerate(epochs))
        if sum(e) == 0:
            raise ConfigError(f"total_epochs {tuple(epochs)} trains nothing; give at least one epoch.")
        if e[1] + e[2] == 0:
            raise ConfigError(
                f"total_epochs {tuple(epochs)} never trains the {self.output_dim}-D output: stages 2 and 3 "
                "cannot both have 0 epochs."
            )
        return e  # type: ignore[return-value]

    def _resolve_extra(self, budget: Budget, cfg: dict[str, Any]) -> dict[str, Any]:
        factor = budget.stage3_lr_factor if self.stage3_lr_factor is None else _check_float(
            "stage3_lr_factor", self.stage3_lr_factor
        )
        return {
            "stage3_lr_factor": factor,
            "projection_hidden": _check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": _check_int("output_dim", self.output_dim, 1),
            "pretrain_dim": _check_int("pretrain_dim", self.pretrain_dim, 1),
        }

    def _build_model(self, cfg: dict[str, Any]) -> torch.nn.Module:
        from tsimcne_nb.models import ContrastiveNet, ProjectionHead, make_backbone

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
        from tsimcne_nb.losses import cauchy_infonce

        z1, z2 = net(x).chunk(2)
        return cauchy_infonce(z1, z2)

    def _arch(self) -> dict[str, Any]:
        m = _unwrap(self.model_)
        return {
            "backbone": self.backbone_, "hidden": m.head.hidden, "in_features": m.head.in_features,
            "out_dim": m.out_dim, "pretrain_dim": self.pretrain_dim,
        }

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        from tsimcne_nb.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(arch["backbone"])
        head = ProjectionHead(bb.out_features, hidden=arch["hidden"], out_dim=arch["out_dim"])
        return ContrastiveNet(bb, head)


# --------------------------------------------------------------------------- SimCLR
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
    Other parameters
        As :class:`TSimCNE`.
    """

    _kind = "simclr-model"
    _transform_what = "features"

    def __init__(
        self,
        augment: str | Any = "randrot",
        budget: str | Budget = "paper",
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
        return (_check_int("epochs", e, 1),)

    def _resolve_extra(self, budget: Budget, cfg: dict[str, Any]) -> dict[str, Any]:
        return {
            "projection_hidden": _check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": _check_int("output_dim", self.output_dim, 1),
            "temperature": _check_float("temperature", self.temperature),
        }

    def _build_model(self, cfg: dict[str, Any]) -> torch.nn.Module:
        from tsimcne_nb.models import ContrastiveNet, ProjectionHead, make_backbone

        bb = make_backbone(cfg["backbone"])
        head = ProjectionHead(bb.out_features, hidden=cfg["projection_hidden"], out_dim=cfg["output_dim"])
        return ContrastiveNet(bb, head)

    def _stages(self, cfg: dict[str, Any]) -> list[Stage]:
        return [Stage(1, cfg["epochs"][0], cfg["lr"], cfg["warmup"], "all")]

    def _loss(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        from tsimcne_nb.losses import simclr_infonce

        z1, z2 = net(x).chunk(2)
        return simclr_infonce(z1, z2, temperature=float(self.temperature))

    def _arch(self) -> dict[str, Any]:
        m = _unwrap(self.model_)
        return {"backbone": self.backbone_, "hidden": m.head.hidden, "out_dim": m.out_dim}

    _rebuild = TSimCNE._rebuild


# --------------------------------------------------------------------------- BYOL
class BYOL(_ContrastiveLearner):
    """BYOL feature learner (the paper's other baseline): online network + predictor,
    EMA target network, no negatives.

    The target's EMA momentum rises from ``target_momentum`` to 1 with a cosine
    schedule over the training steps, as in BYOL.  ``transform`` returns the online
    backbone features.  Optimiser: the same SGD + warm-up/cosine schedule as
    :class:`SimCLR` (BYOL's LARS is not used).

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
    Other parameters
        As :class:`TSimCNE`.
    """

    _kind = "byol-model"
    _transform_what = "features"

    def __init__(
        self,
        augment: str | Any = "randrot",
        budget: str | Budget = "paper",
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

    def _resolve_extra(self, budget: Budget, cfg: dict[str, Any]) -> dict[str, Any]:
        return {
            "projection_hidden": _check_int("projection_hidden", self.projection_hidden, 1),
            "output_dim": _check_int("output_dim", self.output_dim, 1),
            "target_momentum": _check_float("target_momentum", self.target_momentum, below=1.0 + 1e-12),
        }

    def _build_model(self, cfg: dict[str, Any]) -> torch.nn.Module:
        from tsimcne_nb.models import BYOLNet, make_backbone

        return BYOLNet(make_backbone(cfg["backbone"]), hidden=cfg["projection_hidden"], out_dim=cfg["output_dim"])

    def _stages(self, cfg: dict[str, Any]) -> list[Stage]:
        return [Stage(1, cfg["epochs"][0], cfg["lr"], cfg["warmup"], "all")]

    def _loss(self, net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        from tsimcne_nb.losses import byol_loss

        x1, x2 = x.chunk(2)
        return byol_loss(*net(x1, x2))

    def _after_step(self, model: torch.nn.Module, step: int, total: int) -> None:
        base = float(self.target_momentum)
        tau = 1.0 - (1.0 - base) * (math.cos(math.pi * (step + 1) / total) + 1.0) / 2.0
        _unwrap(model).update_target(min(max(tau, 0.0), 1.0))

    def _arch(self) -> dict[str, Any]:
        return {"backbone": self.backbone_, "hidden": self.projection_hidden, "out_dim": self.output_dim}

    def _rebuild(self, arch: dict[str, Any], image_size: int) -> torch.nn.Module:
        from tsimcne_nb.models import BYOLNet, make_backbone

        return BYOLNet(make_backbone(arch["backbone"]), hidden=arch["hidden"], out_dim=arch["out_dim"])


# --------------------------------------------------------------------------- directory
def fit_to_directory(
    dataset: ImageDataset,
    out_dir: str | os.PathLike,
    *,
    augment: str = "randrot",
    budget: str = "quick",
    total_epochs: Sequence[int] | None = None,
    backbone: str | None = None,
    batch_size: int | None = None,
    precision: str = "auto",
    checkpoint_every: int | None = None,
    resume: bool = False,
    device: str = "auto",
    random_state: int | None = 0,
    num_threads: int | str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    **params: Any,
) -> str:
    """Train t-SimCNE on ``dataset`` and write everything a user needs into ``out_dir``.

    ``**params`` are further :class:`TSimCNE` parameters (e.g. ``stage3_lr_factor``,
    ``warmup_epochs``, ``learning_rate``, ``callbacks``).

    Writes ``model.pt`` (:meth:`TSimCNE.save`: data only, cannot run code when opened;
    see :mod:`tsimcne_nb.modelfile`), ``embedding.parquet`` (columns x, y,
    label, label_name, index, split), ``metrics.json`` (kNN accuracy, silhouette,
    training time), ``manifest.json`` and ``map.png``; checkpoints go to
    ``out_dir/checkpoints`` when ``checkpoint_every`` is set.  Under torchrun only
    rank 0 writes.

    Returns
    -------
    str
        A short human-readable summary.

    Before any training, ``out_dir`` is checked (:func:`tsimcne_nb._io.preflight_outputs`):
    it must be a folder that can be created and written, and none of the files above may
    exist unless ``overwrite`` is set.  With ``resume``, results of the run being resumed
    may be replaced only when ``out_dir/checkpoints`` holds checkpoints to resume from;
    results without checkpoints are refused (resuming would retrain from the start).

    When metrics cannot be computed (no labels, one class, too few images for the kNN
    protocol), model, embedding, manifest and map are still written and ``metrics.json``
    says why the metrics are missing (``metrics_missing``).

    Raises
    ------
    FileExistsError
        One of the output files exists and ``overwrite`` is not set (see above for ``resume``).
    ConfigError
        ``out_dir`` is a file, or cannot be created or written.
    """
    out = Path(out_dir)
    model_path = out / "model.pt"
    has_checkpoints = bool(list_checkpoints(out / "checkpoints"))
    if resume and not overwrite and not has_checkpoints:
        done = [n for n in FIT_OUTPUTS if (out / n).exists()]
        if done:
            raise FileExistsError(
                f"resume: {out} holds results ({', '.join(done)}) but no checkpoints to resume from "
                f"({out / 'checkpoints'} is empty or missing), so resuming would train from the start "
                "and replace them. Nothing was changed. Use another folder (--out), or --overwrite "
                "(overwrite=True) to train again and replace them."
            )
    if not isinstance(dataset, ImageDataset):
        dataset = as_dataset(dataset)
    ckpt_dir = out / "checkpoints" if (checkpoint_every or resume) else None
    replace = overwrite or (resume and has_checkpoints)
    preflight_outputs(out, FIT_OUTPUTS, overwrite=replace)  # before any training
    est = TSimCNE(
        augment=augment, budget=budget, total_epochs=total_epochs, backbone=backbone,
        batch_size=batch_size, precision=precision, device=device, random_state=random_state,
        num_threads=num_threads, progress=progress, checkpoint_dir=ckpt_dir,
        checkpoint_every=checkpoint_every, resume=resume, **params,
    )
    est.fit(dataset)
    if not dist_utils.is_main_process():
        return f"rank {dist_utils.get_rank()}: done"
    metrics = _metrics(est.embedding_, dataset)
    metrics.update({
        "train_time_s": est.timings_["total"], "n_images": len(dataset), "dataset": dataset.name,
        "synthetic": dataset.synthetic, "epochs_run": int(len(est.history_)),
    })
    est.save(model_path, overwrite=replace)
    _write_embedding_table(out / "embedding.parquet", est.embedding_, dataset, replace)
    atomic_write_json(out / "metrics.json", metrics, overwrite=replace)
    atomic_write_json(out / "manifest.json", {**est.manifest_, "metrics": metrics}, overwrite=replace)
    _write_map(out / "map.png", est.embedding_, dataset, metrics, est, replace)
    knn = metrics.get("knn_accuracy")
    sil = metrics.get("silhouette")
    scores = (
        f"kNN accuracy {knn:.3f}, silhouette {sil:.3f}"
        if knn is not None and np.isfinite(knn) else f"no metrics ({metrics.get('metrics_missing')})"
    )
    return (
        f"t-SimCNE on {dataset.title} ({len(dataset)} images, {len(est.history_)} epochs, "
        f"{metrics['train_time_s']:.0f} s): {scores}. Wrote {out}/model.pt, embedding.parquet, "
        "metrics.json, manifest.json, map.png"
    )


def _metrics(embedding: np.ndarray, dataset: ImageDataset) -> dict[str, Any]:
    """kNN accuracy and silhouette, or None for both and ``metrics_missing`` saying why.

    Never raises for data the metrics cannot handle: what was trained is written anyway.
    """
    labels = dataset.labels
    if labels is None:
        reason = "the dataset has no labels; kNN accuracy and silhouette need labels"
    elif len(np.unique(labels)) < 2:
        reason = "all images have one class; kNN accuracy and silhouette need at least 2 classes"
    else:
        from tsimcne_nb.evaluation import evaluate

        try:
            return {k: float(v) for k, v in evaluate(embedding, labels, random_state=0).items()}
        except (TSimCNEError, ValueError) as exc:
            reason = (
                f"the metrics could not be computed on these {len(labels)} images "
                f"({str(exc).strip()}); the kNN protocol holds out 10 % of the images per class "
                "and needs enough images of every class"
            )
    return {"knn_accuracy": None, "silhouette": None, "metrics_missing": reason,
            "note": "metrics missing: " + reason}


def _write_embedding_table(path: Path, embedding: np.ndarray, dataset: ImageDataset, overwrite: bool) -> None:
    meta = dataset.metadata
    table = pd.DataFrame({
        "x": embedding[:, 0],
        "y": embedding[:, 1] if embedding.shape[1] > 1 else np.zeros(len(embedding), np.float32),
        "label": dataset.labels if dataset.labels is not None else np.full(len(dataset), -1, np.int64),
        "label_name": pd.Series(dataset.label_names, dtype=str),
        "index": meta["index"].to_numpy(),
        "split": meta["split"].astype(str).to_numpy(),
    })
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        table.to_parquet(fh, index=False)


def _write_map(path: Path, embedding, dataset: ImageDataset, metrics, est: TSimCNE, overwrite: bool) -> None:
    from tsimcne_nb.figures import plot_map

    title = f"t-SimCNE ({est.augment if isinstance(est.augment, str) else 'custom'} augm.) of {dataset.title}"
    if metrics.get("knn_accuracy") is not None:
        title += f"\nkNN {metrics['knn_accuracy']:.3f}, silhouette {metrics['silhouette']:.3f}"
    fig = plot_map(
        embedding[:, :2], labels=dataset.labels, class_names=dataset.class_names, title=title,
        path=path, overwrite=overwrite,
    )
    import matplotlib.pyplot as plt

    plt.close(fig)


# --------------------------------------------------------------------------- old files
def convert_legacy_file(old: str | os.PathLike, new: str | os.PathLike, overwrite: bool = False) -> str:
    """Convert a model or checkpoint written by an older tsimcne-nb (a ``torch.save`` pickle).

    THIS UNPICKLES ``old``, WHICH RUNS ANY CODE IT CONTAINS: call it only for files
    whose source you trust (``tsimcne-nb convert OLD NEW --trust``).  ``new`` is written
    in the data-only format (:mod:`tsimcne_nb.modelfile`), atomically.

    Returns
    -------
    str
        What was converted, for printing.
    """
    from tsimcne_nb.modelfile import load_legacy_pickle, write_file

    old, new = Path(old), Path(new)
    check_can_write(new, overwrite)
    payload = load_legacy_pickle(old, map_location="cpu")
    if isinstance(payload, dict) and payload.get("class") in ("TSimCNE", "SimCLR", "BYOL"):
        est_cls = {"TSimCNE": TSimCNE, "SimCLR": SimCLR, "BYOL": BYOL}[payload["class"]]
        est = est_cls._from_payload(payload, old, torch.device("cpu"), None)
        if "model_object" in payload:  # a pickled custom module: keep its weights only
            est.backbone = _unwrap(est.model_).backbone
        est.save(new, overwrite=overwrite)
        return f"converted the {payload['class']} model {old} to {new} (data-only format)"
    if isinstance(payload, dict) and all(k in payload for k in _CHECKPOINT_KEYS):
        write_file(new, "checkpoint", payload, overwrite=overwrite)
        return f"converted the checkpoint {old} to {new} (data-only format)"
    raise ModelFileError(
        f"{old} is a pickle but neither a tsimcne-nb model nor a checkpoint "
        f"(it holds a {type(payload).__name__}); nothing was written."
    )
