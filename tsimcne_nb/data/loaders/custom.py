"""Your own data: arrays/tensors, ``.npz`` files and image folders.

* arrays or torch tensors, with optional labels: :func:`from_arrays`
* ``.npz`` with ``images`` (+ optional ``labels``, ``class_names``), or the six
  MedMNIST keys: :func:`load_npz` (``npz:PATH`` in :func:`load_dataset`)
* a folder of images: one sub-folder per class (labelled) or a flat folder
  (unlabelled): :func:`load_folder` (``folder:PATH``)
"""

from __future__ import annotations

import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.data.resize import resize_images
from tsimcne_nb.errors import DataError, DatasetNotFoundError
from tsimcne_nb.validation import validate_images

#: file endings read as images in folders (anything else is ignored)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".ppm")


def read_image(path: Path, size: int | Sequence[int] | None = None) -> np.ndarray:
    """One image file as RGB uint8 (H, W, 3), alpha dropped, optionally resized."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
                # 16-bit / 32-bit: checked as a 16-bit array is (values above 255 are refused
                # with the same hint), never clipped at 255
                deep = validate_images(np.asarray(im)[None], name=f"16-bit image {path}")
                im = Image.fromarray(deep[0])
            im = im.convert("RGB")
            arr = np.asarray(im, dtype=np.uint8)
            return arr if size is None else resize_images(arr[None], size)[0]
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(
            f"cannot read the image {path} ({exc.__class__.__name__}: {exc}); the file is damaged "
            "or not an image. Remove or replace it."
        ) from exc


def is_image_file(path: Path) -> bool:
    """Whether ``path`` is a visible file with an image ending (:data:`IMAGE_SUFFIXES`)."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def from_arrays(
    images: Any,
    labels: Any = None,
    class_names: Sequence[str] | None = None,
    name: str = "custom",
    size: int | Sequence[int] | None = None,
) -> ImageDataset:
    """Wrap numpy arrays or torch tensors (NHWC or NCHW) into an :class:`ImageDataset`.

    ``size`` resizes all images to one size.  See
    :func:`~tsimcne_nb.validation.validate_images` for the accepted inputs.
    """
    if isinstance(images, (list, tuple)) and images and hasattr(images[0], "shape"):
        shapes = {tuple(np.shape(im)) for im in images}
        if len(shapes) > 1:
            if size is None:
                raise DataError(
                    f"images have different sizes ({', '.join(map(str, sorted(shapes)[:3]))}, ...); "
                    "pass size=S to resize them all to S x S."
                )
            images = np.stack([resize_images(validate_images(np.asarray(im)[None]), size)[0]
                               for im in images])
    arr = validate_images(images)
    if size is not None:
        arr = resize_images(arr, size)
    return ImageDataset(images=arr, labels=labels, class_names=class_names, name=name)


def load_npz(
    path: str | os.PathLike, size: int | Sequence[int] | None = None, name: str | None = None
) -> ImageDataset:
    """Load ``images`` (+ ``labels``, ``class_names``) or the six MedMNIST keys from an npz.

    MedMNIST-style files are concatenated train+val+test (the ``split``
    metadata column says which).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DatasetNotFoundError(f"npz file {path} does not exist; check the path.")
    name = name or path.stem
    medmnist_keys = {f"{s}_{k}" for s in ("train", "val", "test") for k in ("images", "labels")}
    try:
        with np.load(path, allow_pickle=False) as npz:
            keys = set(npz.files)
            if "images" in keys:
                images = npz["images"]
                labels = npz["labels"] if "labels" in keys else None
                class_names = ([str(c) for c in np.atleast_1d(npz["class_names"])]
                               if "class_names" in keys else None)
                for what, arr in (("images", images), ("labels", labels)):
                    if arr is not None and arr.ndim == 0:
                        raise DataError(
                            f"{path}: '{what}' is a single value (shape ()); expected one "
                            f"{'image' if what == 'images' else 'label'} per row."
                        )
                meta = pd.DataFrame({"index": np.arange(len(images)), "split": "all",
                                     "source_file": path.name})
            elif medmnist_keys <= keys:
                images, labels, metas = [], [], []
                for s in ("train", "val", "test"):
                    img, lab = npz[f"{s}_images"], npz[f"{s}_labels"]
                    if len(img) != len(lab):
                        raise DataError(
                            f"{path}: {s}_images holds {len(img)} images but {s}_labels holds "
                            f"{len(lab)} labels; there must be one label per image."
                        )
                    images.append(img)
                    labels.append(np.asarray(lab).reshape(len(lab), -1)[:, 0])
                    metas.append(pd.DataFrame({"index": np.arange(len(img)), "split": s,
                                               "source_file": path.name}))
                images, labels = np.concatenate(images), np.concatenate(labels)
                meta = pd.concat(metas, ignore_index=True)
                class_names = None
            else:
                raise DataError(
                    f"{path} has the keys {', '.join(sorted(keys)) or '(none)'}; expected 'images' "
                    "(optionally 'labels' and 'class_names') or MedMNIST's train_images, "
                    "train_labels, val_images, val_labels, test_images, test_labels. Save with "
                    "np.savez(path, images=images, labels=labels)."
                )
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise DataError(
            f"{path} is damaged or not an npz file ({exc.__class__.__name__}: {exc}). Recreate it "
            "with np.savez(path, images=images, labels=labels)."
        ) from exc
    except (TypeError, IndexError) as exc:  # 0-d or oddly shaped arrays under the right keys
        raise DataError(
            f"{path} holds arrays of unexpected shapes ({exc}); expected 'images' (N, H, W[, C]) and "
            "'labels' (N,) or MedMNIST's keys. Save with np.savez(path, images=images, labels=labels)."
        ) from exc
    if labels is not None and len(labels) != len(images):
        raise DataError(
            f"{path}: labels ({len(labels)}) do not match images ({len(images)}); there must be "
            "exactly one label per image."
        )
    arr = validate_images(images, name=f"images in {path.name}")
    if size is not None:
        arr = resize_images(arr, size)
    return ImageDataset(images=arr, labels=labels, class_names=class_names, metadata=meta, name=name)


def load_folder(
    path: str | os.PathLike,
    size: int | Sequence[int] | None = None,
    name: str | None = None,
) -> ImageDataset:
    """Load a folder of images.

    Two layouts are read:

    * ``path/<class>/<image>`` - one sub-folder per class (sorted names give the
      class indices); images anywhere below a class folder count.
    * ``path/<image>`` - a flat folder: unlabelled.

    Files whose ending is not an image ending are ignored.  Images of different
    sizes need ``size`` (resized with antialiasing); otherwise a :class:`DataError`
    says so.
    """
    from tqdm.auto import tqdm

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"image folder {root} does not exist or is not a folder.")
    name = name or root.name
    loose = sorted(p for p in root.iterdir() if is_image_file(p))
    class_dirs = sorted(
        d for d in root.iterdir()
        if d.is_dir() and not d.name.startswith(".") and any(is_image_file(p) for p in d.rglob("*"))
    )
    if loose and class_dirs:
        raise DataError(
            f"{root} holds both loose images ({len(loose)}, e.g. {loose[0].name}) and sub-folders "
            f"with images ({', '.join(d.name for d in class_dirs[:5])}). Use one layout: either one "
            "sub-folder per class (labelled), or all images directly in the folder (unlabelled)."
        )
    if class_dirs:
        files, labels = [], []
        for k, d in enumerate(class_dirs):
            found = sorted(p for p in d.rglob("*") if is_image_file(p))
            files += found
            labels += [k] * len(found)
        class_names: list[str] | None = [d.name for d in class_dirs]
        lab: np.ndarray | None = np.asarray(labels, np.int64)
    elif loose:
        files, class_names, lab = loose, None, None
    else:
        raise DataError(
            f"{root} contains no images (endings {', '.join(IMAGE_SUFFIXES)}). Expected either one "
            "sub-folder per class holding images, or images directly in the folder."
        )
    imgs = [read_image(p, size) for p in tqdm(files, desc=f"reading {root.name}", leave=False,
                                               disable=len(files) < 500)]
    shapes = {im.shape for im in imgs}
    if len(shapes) > 1:
        sizes = sorted(shapes)
        raise DataError(
            f"images in {root} have different sizes (e.g. {sizes[0][1]}x{sizes[0][0]} and "
            f"{sizes[-1][1]}x{sizes[-1][0]}); pass size=S (--option size=S) to resize them all "
            "to S x S."
        )
    meta = pd.DataFrame({
        "index": np.arange(len(files)),
        "split": "all",
        "source_file": [str(p.relative_to(root)) for p in files],
    })
    return ImageDataset(images=np.stack(imgs), labels=lab, class_names=class_names,
                        metadata=meta, name=name)
