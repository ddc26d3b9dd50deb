"""The ``tsimcne-nb fit`` pipeline: train a :class:`~tsimcne_nb.TSimCNE` and write
its result folder (model, embedding table, metrics, manifest, map figure).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_open, atomic_write_json, preflight_outputs
from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import TSimCNEError
from tsimcne_nb.estimators import TSimCNE
from tsimcne_nb.train import distributed as dist_utils
from tsimcne_nb.train.budgets import DEFAULT_BUDGET
from tsimcne_nb.train.checkpoints import list_checkpoints

__all__ = ['fit_to_directory']
#: what fit_to_directory writes into its folder
FIT_OUTPUTS = ("model.pt", "embedding.parquet", "metrics.json", "manifest.json", "map.png")


# --------------------------------------------------------------------------- directory
def fit_to_directory(
    dataset: ImageDataset,
    out_dir: str | os.PathLike,
    *,
    augment: str = "randrot",
    budget: str = DEFAULT_BUDGET,
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

    Writes ``model.pt`` (:meth:`TSimCNE.save`: data only, cannot run code when opened;
    see :mod:`tsimcne_nb.modelfile`), ``embedding.parquet`` (columns x, y,
    label, label_name, index, split), ``metrics.json`` (kNN accuracy, silhouette,
    training time), ``manifest.json`` and ``map.png``; checkpoints go to
    ``out_dir/checkpoints`` when ``checkpoint_every`` is set.  Under torchrun only
    rank 0 writes.

    Parameters
    ----------
    dataset : ImageDataset or array-like
        The images (and labels, for the metrics) to train on.
    out_dir : str or os.PathLike
        The result folder (created; see below for what it holds).
    augment : {"randrot", "rot90", "default"} or Augmentation
        Augmentation preset (paper, Section 4) or a custom
        :class:`~tsimcne_nb.nn.augmentations.Augmentation`.  ``"randrot"`` fills rotated
        corners with the dataset's border colour.
    budget : {"paper", "quick"} or Budget
        Defaults for the knobs left at None (:mod:`tsimcne_nb.train.budgets`).  ``"paper"`` is
        the published recipe: epochs (1000, 50, 450), batch 1024, stage-3 lr / 1000,
        10 warm-up epochs, ResNet18 with a small stem for <= 32 px images and the
        torchvision ResNet18 for larger ones (as the paper did for 96 px PCam).
        ``"quick"`` is a CPU-sized schedule: epochs (70, 4, 30), batch 256, a 16-wide
        ResNet18 (``"resnet18_narrow"``), AdamW, stage-3 lr * 0.3, 2 warm-up epochs, no
        random grayscale.  It trades map quality for ~230x less compute; see :data:`tsimcne_nb.train.budgets.QUICK` and
        ``docs/quick-budget.md``.  Default: :data:`tsimcne_nb.train.budgets.DEFAULT_BUDGET`
        (``"quick"``), the command line's default too.
    total_epochs : tuple of 3 int, optional
        Epochs of stages 1, 2 and 3.  A stage with 0 epochs is skipped (stage 2's new
        output layer is still made), but stages 2 and 3 cannot both be 0.
    backbone : str or nn.Module, optional
        ``"resnet18_small"``, ``"resnet18"``, ``"resnet18_narrow"``, ``"resnet18_w<N>"``
        (see :func:`tsimcne_nb.nn.models.make_backbone`) or a module.
    batch_size : int, optional
        Images per step over all processes (each image gives two views).  Lowered,
        with a warning, to the number of images if larger.
    precision : {"auto", "fp32", "bf16", "fp16"}
        ``"auto"``: bf16 autocast on CUDA and CPU, fp32 on MPS.  Losses are always fp32.
    device : str
        ``"auto"`` (CUDA, then MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``.
    num_threads : int or "auto"
        CPU threads for torch (:func:`tsimcne_nb.train.device.configure_threads`).
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        Seed of the run (default 0, so that a command-line run is reproducible).
    checkpoint_every : int, optional
        Write a checkpoint to ``out_dir/checkpoints`` every this many epochs.
    resume : bool
        Continue from the newest checkpoint in ``out_dir/checkpoints`` (see below).
    overwrite : bool
        Replace existing result files.
    progress : bool
        Show progress bars.
    **params : dict
        Further :class:`TSimCNE` parameters (e.g. ``stage3_lr_factor``, ``warmup_epochs``,
        ``learning_rate``, ``callbacks``).

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
    # under torchrun the process group must outlive fit (which leaves the process as it found
    # it): only rank 0 writes the folder below
    dist_utils.init_from_env()
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
        from tsimcne_nb.eval.metrics import evaluate

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
    from tsimcne_nb.viz.figures import plot_map

    title = f"t-SimCNE ({est.augment if isinstance(est.augment, str) else 'custom'} augm.) of {dataset.title}"
    if metrics.get("knn_accuracy") is not None:
        title += f"\nkNN {metrics['knn_accuracy']:.3f}, silhouette {metrics['silhouette']:.3f}"
    fig = plot_map(
        embedding[:, :2], labels=dataset.labels, class_names=dataset.class_names, title=title,
        path=path, overwrite=overwrite,
    )
    import matplotlib.pyplot as plt

    plt.close(fig)
