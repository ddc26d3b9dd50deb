"""Shared test set-up.

Tests run on the CPU with one torch thread: on the 2-core CI machine two threads
collapse when anything else is busy (see tsimcne_nb._threads).
"""

from __future__ import annotations

import os

os.environ.setdefault("TSIMCNE_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture
def tiny_images(rng) -> tuple[np.ndarray, np.ndarray]:
    """40 random 28x28 RGB uint8 images in 4 classes (random data, for shape/API tests)."""
    images = rng.integers(0, 256, size=(40, 28, 28, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 10)
    return images, labels
