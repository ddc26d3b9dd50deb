"""The data feed: uint8 images on the training device (or streamed from a lazy
source through pinned memory) and batched, gradient-free inference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tsimcne_nb._indices import take_rows
from tsimcne_nb.data.core import ImageDataset

#: images per forward pass in transform/features (no gradients, so larger than training)
_INFER_BATCH = 1024


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
        else:  # a lazy (h5py) source: read sorted, restore the order
            block = take_rows(self._host, idx)
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
