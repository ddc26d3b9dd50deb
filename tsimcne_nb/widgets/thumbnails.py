"""Lazy PNG thumbnails for the widgets: encode on demand, keep a small LRU cache.

The widgets never precompute an image column for all points (PCam has 327k
images): a thumbnail is encoded the first time the browser needs it (a page of
the selection panel, a hover preview) and the last ``maxsize`` encodings are kept.
"""

from __future__ import annotations

import base64
import io
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from tsimcne_nb._indices import take_rows
from tsimcne_nb.errors import ConfigError


def encode_png(image: np.ndarray, size: int | None = None) -> bytes:
    """PNG bytes of one uint8 ``(H, W, 3)`` image.

    Parameters
    ----------
    image : numpy.ndarray
        uint8 RGB image.
    size : int or None
        When the image is larger than ``size`` pixels on its long side it is
        shrunk (antialiased) to fit; smaller images are sent at native resolution
        and scaled up by the browser (``image-rendering: pixelated``), which keeps
        28x28 MedMNIST thumbnails to a few hundred bytes.
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    if size is not None and max(img.size) > size:
        scale = size / max(img.size)
        new = (max(1, round(img.size[0] * scale)), max(1, round(img.size[1] * scale)))
        img = img.resize(new, Image.Resampling.BILINEAR, reducing_gap=2.0)
    buf = io.BytesIO()
    # compress_level=1: thumbnails are tiny, encoding speed matters more than bytes
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_data_uri(image: np.ndarray, size: int | None = None) -> str:
    """``data:image/png;base64,...`` URI of one uint8 RGB image (see :func:`encode_png`).

    Parameters
    ----------
    image : numpy.ndarray
        uint8 ``(H, W, 3)`` image.
    size : int or None
        As for :func:`encode_png`: shrink to fit ``size`` pixels; ``None`` keeps the image.
    """
    return "data:image/png;base64," + base64.b64encode(encode_png(image, size)).decode("ascii")


class ThumbnailCache:
    """LRU cache of PNG data URIs, encoded lazily from an image source.

    Parameters
    ----------
    images : array-like or callable
        Array-like of uint8 ``(N, H, W, 3)`` images (numpy, memmap, h5py-backed),
        or a callable ``f(indices) -> (len(indices), H, W, 3)`` array.
    size : int or None
        Long side in pixels above which images are shrunk (see :func:`encode_png`).
    maxsize : int
        Number of encoded thumbnails kept; the least recently used are dropped.
    """

    def __init__(
        self,
        images: Any | Callable[[np.ndarray], np.ndarray],
        size: int | None = 56,
        maxsize: int = 2048,
    ) -> None:
        if int(maxsize) < 1:
            raise ConfigError(f"cache maxsize must be >= 1; got {maxsize}.")
        self.images = images
        self.size = size
        self.maxsize = int(maxsize)
        self._cache: OrderedDict[int, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, index: int) -> bool:
        return int(index) in self._cache

    def clear(self) -> None:
        self._cache.clear()

    def _read(self, indices: np.ndarray) -> np.ndarray:
        if callable(self.images) and not hasattr(self.images, "__getitem__"):
            return np.asarray(self.images(indices))
        if isinstance(self.images, np.ndarray):
            return self.images[indices]
        # lazy (h5py) sources need increasing, unique indices; index, never call, the source
        return take_rows(self.images.__getitem__, indices)

    def get(self, index: int) -> str:
        """Data URI of image ``index`` (encoded now unless cached).

        Parameters
        ----------
        index : int
            Position of the image.
        """
        return self.get_many([index])[0]

    def get_many(self, indices: Iterable[int]) -> list[str]:
        """Data URIs of ``indices`` in that order; the missing ones are read in one batch.

        Parameters
        ----------
        indices : iterable of int
            Positions of the images.
        """
        idx = [int(i) for i in indices]
        missing = sorted({i for i in idx if i not in self._cache})
        self.hits += len(idx) - len([i for i in idx if i in missing])
        self.misses += len(missing)
        fresh: dict[int, str] = {}
        if missing:
            block = self._read(np.asarray(missing, dtype=np.int64))
            for i, img in zip(missing, block, strict=True):
                fresh[i] = png_data_uri(img, self.size)
        out = []
        for i in idx:
            if i in fresh:
                uri = fresh[i]
                self._cache[i] = uri
            else:
                cached = self._cache.get(i)
                if cached is None:  # evicted by this very call (more indices than maxsize)
                    cached = png_data_uri(self._read(np.asarray([i]))[0], self.size)
                uri = cached
                self._cache[i] = uri
            self._cache.move_to_end(i)
            while len(self._cache) > self.maxsize:
                self._cache.popitem(last=False)
            out.append(uri)
        return out


def answer_tooltip(widget: Any, cache: ThumbnailCache, event: dict, preview_key: str) -> None:
    """Answer a jupyter-scatter tooltip request, encoding the hovered image on demand.

    jupyter-scatter 1.0.1 reads a tooltip's image from a column of its data frame; the
    explorer names a virtual column ``preview_key`` instead and encodes only the hovered
    point, so no image column is ever built for all points.

    Parameters
    ----------
    widget : jscatter.Scatter
        The scatter widget asking.
    cache : ThumbnailCache
        Encodes the hovered image.
    event : dict
        The front-end's tooltip request message.
    preview_key : str
        Name of the virtual image column.
    """
    from jscatter.widget import get_record

    index = int(event["index"])
    record = get_record(widget.data, index)
    preview = event.get("preview")
    if preview == preview_key:
        preview_value = cache.get(index)
    elif preview is not None:
        preview_value = record[preview]
    else:
        preview_value = None
    props = [p for p in event.get("properties", []) if p in record.index]
    widget.send(
        {
            "type": event["type"],
            "index": index,
            "preview": preview_value,
            "properties": record[props].to_dict(),
        }
    )
