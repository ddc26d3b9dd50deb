"""The rows a comparison can run: :class:`Method` and the registry of the paper's
methods (t-SNE of pixels / of ResNet, SimCLR or BYOL features, and t-SimCNE variants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

__all__ = ['Method', 'augment_for', 'budget_for']


@dataclass(frozen=True)
class Method:
    """One row of the comparison.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"tsne-simclr-rot90"``.
    label : str
        Row label as in the paper's tables.
    kind : str
        ``"tsne-pixels"``, ``"tsne-resnet"``, ``"tsne-simclr"``, ``"tsne-byol"`` or ``"tsimcne"``.
    augment : str or None
        Augmentation preset of the self-supervised methods.
    overrides : dict
        Augmentation overrides (the Table 4 ablations), e.g. ``{"crop": False}``.
    arch : str or None
        ResNet architecture of the ImageNet baselines.
    """

    name: str
    label: str
    kind: str
    augment: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    arch: str | None = None

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "augment": self.augment, "overrides": dict(self.overrides),
                "arch": self.arch}


def _registry() -> dict[str, Method]:
    m: list[Method] = [
        Method("tsimcne-default", "t-SimCNE default augm.", "tsimcne", "default"),
        Method("tsimcne-rot90", "t-SimCNE +90° rot.", "tsimcne", "rot90"),
        Method("tsimcne-randrot", "t-SimCNE +rand. rot.", "tsimcne", "randrot"),
        Method("tsimcne-randrot-nocrop", "t-SimCNE +rand. rot., no crops", "tsimcne", "randrot",
               {"crop": False}),
        Method("tsimcne-randrot-nojitter", "t-SimCNE +rand. rot., no color jitter", "tsimcne",
               "randrot", {"jitter_p": 0.0}),
        Method("tsimcne-randrot-nogray", "t-SimCNE +rand. rot., no grayscaling", "tsimcne",
               "randrot", {"grayscale_p": 0.0}),
        Method("tsne-simclr", "t-SNE of SimCLR default", "tsne-simclr", "default"),
        Method("tsne-simclr-rot90", "t-SNE of SimCLR +90°", "tsne-simclr", "rot90"),
        Method("tsne-simclr-randrot", "t-SNE of SimCLR +rand.", "tsne-simclr", "randrot"),
        Method("tsne-byol", "t-SNE of BYOL default", "tsne-byol", "default"),
        Method("tsne-byol-rot90", "t-SNE of BYOL +90°", "tsne-byol", "rot90"),
        Method("tsne-byol-randrot", "t-SNE of BYOL +rand.", "tsne-byol", "randrot"),
        Method("tsne-pixels", "t-SNE pixel space", "tsne-pixels"),
        Method("tsne-resnet18", "t-SNE ResNet18 (ImageNet)", "tsne-resnet", arch="resnet18"),
        Method("tsne-resnet152", "t-SNE ResNet152 (ImageNet)", "tsne-resnet", arch="resnet152"),
    ]
    return {x.name: x for x in m}


def augment_for(method: Method, dataset: Any, budget: Any) -> Any:
    """The ``augment`` argument a method's learner gets: its preset name, or with overrides an
    Augmentation that holds the budget's overrides under the method's own.

    Parameters
    ----------
    method : Method
        The comparison row.
    dataset : ImageDataset
        The data (its image size).
    budget : str or Budget
        The budget the learner trains with.
    """
    if not method.overrides:
        return method.augment  # a preset name: the estimator adds the budget's overrides
    from tsimcne_nb.nn.augmentations import make_augmentation
    from tsimcne_nb.train.budgets import resolve_budget

    size = int(dataset.image_shape[0])
    # An Augmentation is used as given, so the budget's overrides go in here, under the
    # method's (compare's ablation passes a budget without any: see budget_for).
    # fill stays None: the trainer sets the dataset's border colour itself; a method with
    # overrides names its preset (Method.augment is None only without augmentation)
    settings = resolve_budget(budget).augment_settings(method.overrides)
    return make_augmentation(cast(str, method.augment), size, **settings)


def budget_for(experiment: str | None, budget: Any) -> Any:
    """The budget the methods train with.  The ablation removes one augmentation from the
    paper's full set (Table 4), so a budget's own augmentation overrides (quick: no
    grayscale) are dropped there: otherwise "all" would already lack grayscale and the
    "no grayscaling" row would repeat it.

    Parameters
    ----------
    experiment : str or None
        The named experiment of the comparison, if any.
    budget : str or Budget
        The budget the comparison was given.
    """
    from dataclasses import replace

    from tsimcne_nb.train.budgets import resolve_budget

    resolved = resolve_budget(budget)
    if experiment == "ablation" and resolved.augment_overrides:
        return replace(resolved, augment_overrides=())
    return budget
