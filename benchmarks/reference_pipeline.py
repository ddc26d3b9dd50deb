"""The original t-SimCNE data path, rebuilt as the reference for the throughput benchmark.

What t-SimCNE 0.3.12 (``tsimcne/tsimcne.py``, ``tsimcne/imagedistortions.py``)
does, step by step, and what this module reproduces:

* the user's dataset returns ``(PIL.Image, label)`` (torchvision / MedMNIST style);
* ``TransformedPairDataset`` calls the per-image torchvision transform twice per
  item and returns ``((view1, view2), label)``;
* the transform is ``Compose([RandomResizedCrop(size, scale=(0.2, 1)),
  RandomHorizontalFlip(), RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
  RandomGrayscale(p=0.2), ToTensor()])`` (PIL, no normalisation);
* ``DataLoader(batch_size=..., num_workers=8, shuffle=True)``: no pinned memory,
  no persistent workers (so workers restart every epoch), last batch kept;
* the training step stacks ``torch.vstack((view1, view2))`` into one fp32 2B batch.

The medical follow-up (``berenslab/medical-t-simcne``, ``scripts/mnist.py``) added,
before the crop: ``RandomApply([rotate 90])`` (p = 0.5), ``RandomRotation(45,
fill=<dataset border colour>)`` (nearest-neighbour: torchvision's default), and
``RandomVerticalFlip()`` after the horizontal flip.  ``augment="rot90"`` and
``"randrot"`` reproduce those.

Synthetic random images are used when this file is run as a script; nothing is
downloaded.  Run ``python benchmarks/reference_pipeline.py --help``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms import functional as TF

AUGMENTS = ("default", "rot90", "randrot", "none")


class ArrayPILDataset(Dataset):
    """uint8 ``(N, H, W, 3)`` images (+ labels) served as ``(PIL.Image, label)``, like torchvision datasets."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None) -> None:
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(
                f"images must be uint8 (N, H, W, 3); got {images.dtype} {images.shape}."
            )
        self.images = images
        self.labels = (
            np.zeros(len(images), np.int64) if labels is None else np.asarray(labels, np.int64)
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.images[i]), int(self.labels[i])


class TransformedPairDataset(Dataset):
    """Two independent per-image augmentations of each item: ``((view1, view2), label)``."""

    def __init__(self, dataset: Dataset, transform: Any) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        img, label = self.dataset[i]
        return (self.transform(img), self.transform(img)), label


class _Rotate90:
    """``lambda img: TF.rotate(img, 90)`` of the medical code, as a picklable class."""

    def __call__(self, img: Image.Image) -> Image.Image:
        return TF.rotate(img, 90)


def reference_transform(
    size: int, augment: str = "default", fill: Sequence[float] | None = None
) -> T.Compose:
    """The per-image torchvision transform of the original code for one view.

    Parameters
    ----------
    size : int
        Output size.
    augment : {"default", "rot90", "randrot", "none"}
        ``"none"`` is the original's test-time transform (``ToTensor`` only).
    fill : 3 numbers in [0, 255], optional
        Corner colour of the random rotation (``"randrot"``); default black.
    """
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augment {augment!r}; use one of {AUGMENTS}.")
    if augment == "none":
        return T.Compose([T.ToTensor()])
    steps: list[Any] = []
    if augment in ("rot90", "randrot"):
        steps.append(T.RandomApply([_Rotate90()], p=0.5))
    if augment == "randrot":
        fill_ints = [0, 0, 0] if fill is None else [int(round(float(v))) for v in fill]
        steps.append(T.RandomRotation(45, fill=fill_ints))
    steps += [T.RandomResizedCrop(size=size, scale=(0.2, 1.0)), T.RandomHorizontalFlip()]
    if augment in ("rot90", "randrot"):
        steps.append(T.RandomVerticalFlip())
    steps += [
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.ToTensor(),
    ]
    return T.Compose(steps)


def make_reference_loader(
    images_uint8: np.ndarray,
    batch_size: int,
    augment: str = "default",
    num_workers: int = 8,
    seed: int | None = 0,
    labels: np.ndarray | None = None,
    fill: Sequence[float] | None = None,
    shuffle: bool = True,
    **dl_kwargs: Any,
) -> DataLoader:
    """The original t-SimCNE training loader over an in-memory uint8 image array.

    Yields ``((view1, view2), labels)`` with views float32 ``(B, 3, S, S)`` in [0, 1].
    ``num_workers=8`` and no pinned memory / persistent workers are the
    original's defaults; ``dl_kwargs`` go to ``DataLoader`` like the original's
    ``dl_kwargs``.  ``seed`` seeds the shuffling and (through the DataLoader's
    per-worker seeds) the augmentations; with ``num_workers=0`` the global torch
    RNG draws the augmentations, so it is seeded too.
    """
    images_uint8 = np.asarray(images_uint8)
    size = int(images_uint8.shape[1])
    ds = TransformedPairDataset(
        ArrayPILDataset(images_uint8, labels), reference_transform(size, augment, fill)
    )
    gen = None
    if seed is not None:
        gen = torch.Generator().manual_seed(int(seed))
        if num_workers == 0:
            torch.manual_seed(int(seed))
    return DataLoader(
        ds,
        batch_size=batch_size,
        num_workers=num_workers,
        shuffle=shuffle,
        generator=gen,
        **dl_kwargs,
    )


def stack_views(batch) -> torch.Tensor:
    """The original training step's ``torch.vstack((view1, view2))``: one (2B, 3, S, S) batch."""
    (v1, v2), _labels = batch
    return torch.vstack((v1, v2))


# --------------------------------------------------------------------------- benchmark
def _time_reference(images: np.ndarray, batch_size: int, augment: str, num_workers: int) -> float:
    loader = make_reference_loader(images, batch_size, augment, num_workers=num_workers, seed=0)
    t = time.perf_counter()
    n = 0
    for batch in loader:  # one epoch, including the per-epoch worker start-up of the original
        n += stack_views(batch).shape[0] // 2
    return n / (time.perf_counter() - t)


def _time_batched(images: np.ndarray, batch_size: int, augment: str, device: str) -> float:
    from tsimcne_nb.nn.augmentations import make_augmentation, two_views

    aug = make_augmentation(augment, images.shape[1], fill=(128.0, 128.0, 128.0))
    x = torch.from_numpy(images).to(device)
    g = torch.Generator().manual_seed(0)
    two_views(aug, x[:batch_size], g)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t = time.perf_counter()
    for start in range(0, len(x), batch_size):
        two_views(aug, x[start : start + batch_size], g)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(x) / (time.perf_counter() - t)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Images per second (two views each) of the original loader vs the batched augmentation."""
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--n", type=int, default=4096, help="synthetic random images")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--augment", default="default", choices=AUGMENTS[:3])
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (a.n, a.size, a.size, 3), dtype=np.uint8)  # synthetic
    result = {
        "data": f"synthetic random uint8 {a.n}x{a.size}x{a.size}x3",
        "augment": a.augment,
        "batch_size": a.batch_size,
        "torch_threads": a.threads,
        "reference_num_workers": a.num_workers,
        "reference_images_per_s": round(
            _time_reference(images, a.batch_size, a.augment, a.num_workers), 1
        ),
        "batched_device": a.device,
        "batched_images_per_s": round(_time_batched(images, a.batch_size, a.augment, a.device), 1),
    }
    result["speedup"] = round(result["batched_images_per_s"] / result["reference_images_per_s"], 2)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
