"""The numpydoc entries of the parameters TSimCNE, SimCLR and BYOL share, written once.

Each estimator's docstring lists its own parameters and ends its Parameters section with the
line ``%(shared_parameters)s``; :func:`with_shared_parameters` puts these entries there when the
class is defined, so ``help()``, Sphinx and the typed-API test all see one full section.
"""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T", bound=type)

#: numpydoc entries (indented as in a class docstring), in the order they are listed
SHARED_PARAMETERS: dict[str, str] = {
    "augment": (
        '    augment : {"randrot", "rot90", "default"} or Augmentation\n'
        "        Augmentation preset (paper, Section 4) or a custom\n"
        '        :class:`~tsimcne_nb.nn.augmentations.Augmentation`.  ``"randrot"`` fills rotated\n'
        "        corners with the dataset's border colour.  A preset name gets the budget's\n"
        '        ``augment_overrides`` on top (``"quick"``: no random grayscale, which keeps the\n'
        "        stain colour; ``\"paper\"``: none); an Augmentation is used as given.\n"
    ),
    "budget": (
        '    budget : {"paper", "quick"} or Budget\n'
        '        Defaults for the knobs left at None (:mod:`tsimcne_nb.train.budgets`).  ``"paper"`` is\n'
        "        the published recipe: epochs (1000, 50, 450), batch 1024, stage-3 lr / 1000,\n"
        "        10 warm-up epochs, ResNet18 with a small stem for <= 32 px images and the\n"
        "        torchvision ResNet18 for larger ones (as the paper did for 96 px PCam).\n"
        '        ``"quick"`` is a CPU-sized schedule: epochs (70, 4, 30), batch 256, a 16-wide\n'
        '        ResNet18 (``"resnet18_narrow"``), AdamW, stage-3 lr * 0.3, 2 warm-up epochs, no\n'
        "        random grayscale.  It trades map quality for ~230x less compute; see\n"
        "        :data:`tsimcne_nb.train.budgets.QUICK` and ``docs/quick-budget.md``.  Default: :data:`tsimcne_nb.train.budgets.DEFAULT_BUDGET`\n"
        '        (``"quick"``), the command line\'s default too.\n'
    ),
    "batch_size": (
        "    batch_size : int, optional\n"
        "        Images per step over all processes (each image gives two views).  Lowered,\n"
        "        with a warning, to the number of images if larger.\n"
    ),
    "learning_rate": (
        '    learning_rate : float or "auto"\n'
        "        Peak learning rate (of stages 1 and 2 for t-SimCNE, of the one stage for SimCLR and\n"
        '        BYOL); ``"auto"``: ``0.03 * batch_size / 256`` for SGD, ``2e-3 * sqrt(batch_size / 256)``\n'
        "        for AdamW.\n"
    ),
    "warmup_epochs": (
        "    warmup_epochs : int, optional\n"
        "        Linear warm-up of stages 1 and 3 (stage 2 has none).\n"
    ),
    "backbone": (
        "    backbone : str or nn.Module, optional\n"
        '        ``"resnet18_small"``, ``"resnet18"``, ``"resnet18_narrow"``, ``"resnet18_w<N>"``\n'
        "        (see :func:`tsimcne_nb.nn.models.make_backbone`) or a module.\n"
    ),
    "momentum": (
        "    momentum : float\n"
        "        SGD momentum (0.9, as the reference; unused by AdamW).\n"
    ),
    "weight_decay": (
        "    weight_decay : float\n"
        "        Weight decay on all parameters (5e-4, as the reference; decoupled under AdamW).\n"
    ),
    "optimizer": (
        '    optimizer : {"sgd", "adamw"}, optional\n'
        "        SGD with momentum (the paper's) or AdamW (decoupled weight decay; ``momentum`` unused).\n"
        "        Default: the budget's (``\"paper\"``: SGD, ``\"quick\"``: see\n"
        "        :data:`tsimcne_nb.train.budgets.QUICK`).\n"
    ),
    "device": (
        "    device : str\n"
        '        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.\n'
    ),
    "precision": (
        '    precision : {"auto", "fp32", "bf16", "fp16"}\n'
        '        ``"auto"``: bf16 autocast on CUDA and CPU, fp32 on MPS.  Losses are always fp32.\n'
    ),
    "channels_last": (
        "    channels_last : bool\n"
        "        Use the channels-last memory layout (faster convolutions on CPU and GPU).\n"
    ),
    "compile": (
        "    compile : bool\n"
        "        Run the network through ``torch.compile`` (CUDA; compile time is minutes).\n"
    ),
    "num_threads": (
        '    num_threads : int or "auto"\n'
        "        CPU threads for torch (:func:`tsimcne_nb.train.device.configure_threads`).\n"
    ),
    "random_state": (
        "    random_state : int, numpy.random.Generator, numpy.random.RandomState or None\n"
        "        Seed of every random choice; None draws one (kept in ``random_state_``).  A Generator\n"
        "        or RandomState is turned into a seed by one draw\n"
        "        (:func:`tsimcne_nb.validation.seed_from_random_state`), so the same generator state\n"
        "        gives the same run.\n"
    ),
    "progress": (
        "    progress : bool\n"
        "        Show a progress bar per stage (notebook-aware) with loss and images/s.\n"
    ),
    "callbacks": (
        "    callbacks : list of callables, optional\n"
        "        ``f(ctx)`` called every ``callbacks_every`` epochs (see :mod:`tsimcne_nb.train.callbacks`);\n"
        "        returning True stops the run cleanly.\n"
    ),
    "callbacks_every": (
        "    callbacks_every : int, optional\n"
        "        Call the callbacks every this many epochs of a stage (default every epoch; the\n"
        "        last epoch of each stage always).\n"
    ),
    "checkpoint_dir": (
        "    checkpoint_dir : path, optional\n"
        "        Folder for checkpoints (the last two are kept).\n"
    ),
    "checkpoint_every": (
        "    checkpoint_every : int, optional\n"
        "        Write a checkpoint every this many epochs (counted over all stages).\n"
    ),
    "resume": (
        "    resume : bool\n"
        "        Continue from the last checkpoint in ``checkpoint_dir``; the result equals an\n"
        "        uninterrupted run.\n"
    ),
    "data_on_device": (
        '    data_on_device : "auto" or bool\n'
        '        Keep all images on the training device (``"auto"``: when they take at most a\n'
        "        quarter of the free GPU memory; always on the CPU; lazy datasets stream).\n"
    ),
}


def with_shared_parameters(cls: T) -> T:
    """Class decorator: replace ``%(shared_parameters)s`` in the docstring by the shared entries.

    Parameters
    ----------
    cls : type
        An estimator class whose docstring holds the marker line.

    Returns
    -------
    type
        The same class, its ``__doc__`` completed.
    """
    marker = "    %(shared_parameters)s\n"
    doc = cls.__doc__
    if doc is None:  # python -OO strips docstrings
        return cls
    if marker not in doc:
        raise RuntimeError(f"{cls.__name__}'s docstring has no shared-parameters marker")
    cls.__doc__ = doc.replace(marker, "".join(SHARED_PARAMETERS.values()))
    return cls
