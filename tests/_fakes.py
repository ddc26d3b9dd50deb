"""Small files in the exact formats of the real datasets, written at test time.

No dataset can be downloaded on the test machines, so every loader is tested on
these.  Each writer mirrors one real format (DATASETS.md) through the package's own
format writers (:mod:`tsimcne_nb.data.formats`, which also write the notebooks'
stand-ins): MedMNIST npz, PCam HDF5 (optionally gzipped), AML-Cytomorphology RGBA
TIFF folders, CIFAR-10 pickles; plus plain image folders.  Pixel values are random: these files test
reading, not learning.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tsimcne_nb.data.formats import (
    pcam_file_name,
    write_cifar_batch,
    write_cifar_meta,
    write_medmnist_npz,
    write_pcam_h5,
    write_rgba_tiff,
)


def medmnist_arrays(
    counts: Sequence[int] = (6, 3, 4),
    size: int = 28,
    n_classes: int = 8,
    label_dtype: type = np.uint8,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The six arrays of a MedMNIST npz: images (N, S, S, 3) uint8, labels (N, 1)."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in zip(("train", "val", "test"), counts, strict=True):
        out[f"{split}_images"] = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        out[f"{split}_labels"] = (np.arange(n) % n_classes).reshape(n, 1).astype(label_dtype)
    return out


def write_medmnist(path: Path, **kwargs) -> dict[str, np.ndarray]:
    """Write ``path`` (e.g. ``bloodmnist.npz``) like the official files (np.savez_compressed)."""
    arrays = medmnist_arrays(**kwargs)
    write_medmnist_npz(path, arrays, overwrite=True)
    return arrays


def write_pcam(
    root: Path,
    counts: dict[str, int] | None = None,
    gz: bool = False,
    size: int = 96,
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The six ``camelyonpatch_level_2_split_*_{x,y}.h5`` (``x`` (N,S,S,3), ``y`` (N,1,1,1) uint8)."""
    counts = counts or {"train": 8, "valid": 4, "test": 4}
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, n in counts.items():
        x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        y = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1, 1, 1)
        data[split] = (x, y)
        for kind, arr in (("x", x), ("y", y)):
            write_pcam_h5(root / pcam_file_name(split, kind), kind, arr, overwrite=True, gz=gz)
    return data


def write_leukemia(
    root: Path,
    counts: dict[str, int] | None = None,
    size: int = 24,
    seed: int = 0,
) -> Path:
    """``root/AML-Cytomorphology_LMU/<ABBR>/<ABBR>_NNNN.tiff`` RGBA TIFFs, one ``.tiff.tiff``.

    Also the ``annotations.dat`` and ``abbreviations.txt`` the release holds.  The
    real images are 400x400; ``size`` keeps the test fast.
    """
    counts = counts or {"NGS": 3, "LYT": 2, "EOS": 2, "BAS": 1, "EBO": 1}
    rng = np.random.default_rng(seed)
    folder = root / "AML-Cytomorphology_LMU"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "annotations.dat").write_text("NGS/NGS_0001.tiff NGS\n")
    (folder / "abbreviations.txt").write_text("NGS\tNeutrophil (segmented)\n")
    first = True
    for abbr, n in counts.items():
        d = folder / abbr
        d.mkdir(exist_ok=True)
        for i in range(1, n + 1):
            rgba = rng.integers(0, 256, (size, size, 4), dtype=np.uint8)
            rgba[..., 3] = 255
            # the release has at least one file with a doubled extension
            suffix = ".tiff.tiff" if first else ".tiff"
            first = False
            write_rgba_tiff(d / f"{abbr}_{i:04d}{suffix}", rgba, overwrite=True)
    return folder


def cifar_batches(n_per_batch: int = 4, seed: int = 0) -> dict[str, tuple[np.ndarray, list[int]]]:
    rng = np.random.default_rng(seed)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    return {
        n: (rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
            [int(v) for v in rng.integers(0, 10, n_per_batch)])
        for n in names
    }


def write_cifar10(root: Path, n_per_batch: int = 4, seed: int = 0) -> dict:
    """``root/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` as pickles.

    Same keys and layout as the official release (rows of 3072 = R, G, B planes).
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    batches = cifar_batches(n_per_batch, seed)
    for name, (data, labels) in batches.items():
        write_cifar_batch(folder / name, data, labels, name,
                          [f"img_{i}.png" for i in range(len(labels))], overwrite=True)
    write_cifar_meta(folder / "batches.meta", ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                               "frog", "horse", "ship", "truck"],
                     n_per_batch, overwrite=True)
    return batches


def cifar_tar_bytes(tmp: Path, n_per_batch: int = 2) -> bytes:
    """``cifar-10-python.tar.gz`` content holding a small ``cifar-10-batches-py``."""
    src = tmp / "cifar_src"
    write_cifar10(src, n_per_batch)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return buf.getvalue()


def write_image_folder(
    root: Path,
    classes: dict[str, int] | None = None,
    size: int | dict[str, int] = 16,
    fmt: str = "png",
    seed: int = 0,
) -> Path:
    """``root/<class>/img_<i>.<fmt>``; with ``classes={"": n}`` a flat folder."""
    from PIL import Image

    classes = {"a": 3, "b": 2} if classes is None else classes
    rng = np.random.default_rng(seed)
    for cls, n in classes.items():
        d = root / cls if cls else root
        d.mkdir(parents=True, exist_ok=True)
        s = size[cls] if isinstance(size, dict) else size
        for i in range(n):
            img = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
            Image.fromarray(img).save(d / f"img_{i}.{fmt}")
    return root


def serve_loopback(handler, **attrs):
    """Run an HTTP server with ``handler`` on a free loopback port for the duration of a fixture.

    Yields the server; ``attrs`` become attributes the handler reads (files, requests, ...) and
    ``server.base`` is its ``http://127.0.0.1:PORT`` address. Nothing leaves the machine.
    """
    import threading
    from http.server import ThreadingHTTPServer

    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    for key, value in attrs.items():
        setattr(srv, key, value)
    srv.base = f"http://127.0.0.1:{srv.server_address[1]}"
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
