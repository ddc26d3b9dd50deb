"""Training budgets and the learning-rate schedule of t-SimCNE.

A *budget* bundles the schedule knobs that belong together (epochs per stage, batch
size, stage-3 learning-rate factor, warm-up, backbone).  Every knob can still be
overridden one by one on :class:`~tsimcne_nb.estimators.TSimCNE`.

This module has no torch import: the schedule is a pure function of the step, which
is what makes checkpoints resume exactly (nothing but the position is stored).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from tsimcne_nb.errors import ConfigError

#: learning rate for a batch of 256 images (the paper's linear scaling rule)
BASE_LR_PER_256 = 0.03

#: AdamW learning rate for a batch of 256 images, scaled with the square root of the batch
#: (Adam's usual rule; linear scaling is SGD's).  Measured on the quick budget (docs/quick-budget.md).
ADAMW_LR_PER_256 = 2e-3

#: the optimisers a budget or an estimator can name
OPTIMIZERS = ("sgd", "adamw")

#: images up to this side length use the small-stem ResNet (3x3 stride-1 conv, no max-pool)
SMALL_IMAGE_MAX = 32


@dataclass(frozen=True)
class Budget:
    """A named set of schedule defaults.

    Attributes
    ----------
    name : str
        ``"paper"`` or ``"quick"``.
    total_epochs : tuple of int
        Epochs of stage 1 (128-d pre-training), stage 2 (new 2-D output layer only)
        and stage 3 (everything, lower learning rate).
    batch_size : int
        Images per step (each is augmented twice, so the network sees twice as many).
    stage3_lr_factor : float
        Stage 3 learning rate relative to stages 1 and 2.
    warmup_epochs : int
        Linear warm-up length in stages 1 and 3.
    backbone_small, backbone_large : str
        Backbone for images of side <= 32 px and for larger ones.
    optimizer : {"sgd", "adamw"}
        SGD with momentum (the paper's) or AdamW; it also picks the automatic learning rate
        (:func:`auto_learning_rate`).
    augment_overrides : tuple of (str, value) pairs
        :class:`~tsimcne_nb.nn.augmentations.Augmentation` settings applied on top of a preset
        *name* (``augment="randrot"``, ...), e.g. ``(("grayscale_p", 0.0),)``; an Augmentation
        object is used as given.  A mapping is accepted and stored as sorted pairs.
    """

    name: str
    total_epochs: tuple[int, int, int]
    batch_size: int
    stage3_lr_factor: float
    warmup_epochs: int
    backbone_small: str
    backbone_large: str
    optimizer: str = "sgd"
    augment_overrides: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # a model file stores the budget as JSON: lists come back where tuples went in
        object.__setattr__(self, "total_epochs", tuple(int(e) for e in self.total_epochs))
        pairs = self.augment_overrides
        settings = dict(pairs.items() if isinstance(pairs, Mapping) else pairs)  # last one wins
        for key in ("size", "fill"):
            if key in settings:
                raise ConfigError(
                    f"augment_overrides cannot set {key!r}: the image size and the corner colour "
                    "come from the data."
                )
        object.__setattr__(self, "augment_overrides", tuple(sorted(
            (str(k), tuple(v) if isinstance(v, list) else v) for k, v in settings.items()
        )))

    def backbone_for(self, image_size: int) -> str:
        """The default backbone name for square images of side ``image_size``.

        Parameters
        ----------
        image_size : int
            Side of the training images.
        """
        return self.backbone_small if image_size <= SMALL_IMAGE_MAX else self.backbone_large

    def augment_settings(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The augmentation settings a preset name gets under this budget: the budget's
        overrides, with ``overrides`` (a caller's own, e.g. an ablation row's) on top.

        Parameters
        ----------
        overrides : mapping, optional
            Settings that win over the budget's.
        """
        return {**dict(self.augment_overrides), **dict(overrides or {})}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The paper's recipe, exactly: 1000 + 50 + 450 epochs, batch 1024, stage-3 lr / 1000,
#: 10 warm-up epochs, ResNet18 with the small stem for <= 32 px (the paper used the
#: unmodified torchvision ResNet18 for 96 px PCam; that is what ``backbone_large`` is).
PAPER = Budget(
    name="paper",
    total_epochs=(1000, 50, 450),
    batch_size=1024,
    stage3_lr_factor=1e-3,
    warmup_epochs=10,
    backbone_small="resnet18_small",
    backbone_large="resnet18",
)

#: A CPU-sized schedule, tuned on the embedded synthetic data (docs/quick-budget.md): 3,000
#: synthetic 28 px images train in about 9 minutes on two idle cores (526 s measured).
#: What it trades away: ~14x fewer epochs (104 instead of 1500), a 16-wide ResNet18 (about
#: 1/16 of the FLOPs, 128-d features), a smaller batch (256: more steps in few epochs), 2
#: warm-up epochs, and a stage-3 learning rate of lr * 0.3 instead of lr / 1000: with so few
#: epochs the paper's tiny stage-3 rate leaves the map almost where stage 2 put it (measured:
#: lr * 0.1 and lr * 0.3 beat lr / 1000, lr * 1.0 breaks the map).  Three changes of issue 16
#: make the most of the few steps: AdamW (2e-3) instead of SGD, 70 stage-1 epochs instead of 45
#: (the rest of the 10-minute limit), and no random grayscale on
#: top of the preset (the stain colour separates cell types; in the paper's own ablation,
#: removing grayscale changed kNN by -0.8 to +1.2 points on its microscopy sets).  Maps are
#: coarser than the paper's; use ``"paper"`` on a GPU for publication figures.
QUICK = Budget(
    name="quick",
    total_epochs=(70, 4, 30),
    batch_size=256,
    stage3_lr_factor=0.3,
    warmup_epochs=2,
    backbone_small="resnet18_narrow",
    backbone_large="resnet18_narrow",
    optimizer="adamw",
    augment_overrides=(("grayscale_p", 0.0),),
)

BUDGETS: dict[str, Budget] = {b.name: b for b in (PAPER, QUICK)}

#: the one default budget of the estimators (``TSimCNE()``, ``SimCLR()``, ``BYOL()``), the
#: pipelines and the command line (``--budget``): ``"quick"``, minutes on a CPU.  Pass
#: ``budget="paper"`` (``--budget paper``) for the published recipe, which wants a GPU.
DEFAULT_BUDGET = "quick"


def resolve_budget(budget: str | Budget) -> Budget:
    """Look up a budget by name (``"paper"`` or ``"quick"``) or pass a :class:`Budget` through.

    Parameters
    ----------
    budget : str or Budget
        A budget or its name (``"paper"``, ``"quick"``).
    """
    if isinstance(budget, Budget):
        return budget
    if isinstance(budget, str) and budget in BUDGETS:
        return BUDGETS[budget]
    raise ConfigError(
        f"unknown budget {budget!r}; use one of {sorted(BUDGETS)} (or set total_epochs, "
        "batch_size, ... directly)."
    )


def auto_learning_rate(batch_size: int, optimizer: str = "sgd") -> float:
    """The automatic peak learning rate of a batch size.

    SGD: the paper's linear scaling rule, ``0.03 * batch_size / 256``.  AdamW:
    ``2e-3 * sqrt(batch_size / 256)``.

    Parameters
    ----------
    batch_size : int
        The global batch size.
    optimizer : {"sgd", "adamw"}
        The optimiser the rate is for.
    """
    if optimizer == "adamw":
        return ADAMW_LR_PER_256 * math.sqrt(batch_size / 256)
    if optimizer != "sgd":
        raise ConfigError(f"unknown optimizer {optimizer!r}; use one of {list(OPTIMIZERS)}.")
    return BASE_LR_PER_256 * batch_size / 256


def lr_at(step: int, total_steps: int, warmup_steps: int, base_lr: float) -> float:
    """Learning rate of optimisation step ``step`` (0-based) within one stage.

    Linear warm-up from 0: ``base_lr * (step + 1) / warmup_steps`` for the first
    ``warmup_steps`` steps (the first step already moves, the last warm-up step
    reaches ``base_lr``), then half-cosine decay towards 0 over the remaining steps:
    ``base_lr * (1 + cos(pi * (step - warmup_steps) / (total_steps - warmup_steps))) / 2``.
    ``warmup_steps`` is capped at ``total_steps``.

    Parameters
    ----------
    step : int
        0-based step within the stage.
    total_steps : int
        Steps of the stage.
    warmup_steps : int
        Linear warm-up steps.
    base_lr : float
        Peak learning rate.
    """
    if total_steps <= 0:
        raise ConfigError(f"total_steps must be positive; got {total_steps}.")
    warmup_steps = min(max(int(warmup_steps), 0), total_steps)
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    decay = total_steps - warmup_steps
    progress = (step - warmup_steps) / decay
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
