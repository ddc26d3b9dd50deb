"""Manifests: what produced a saved map (versions, config, data, seed, device, timings)."""

from __future__ import annotations

import datetime as _dt
import platform
import sys
from importlib import metadata
from typing import Any

_PACKAGES = (
    "tsimcne-nb", "torch", "torchvision", "numpy", "scikit-learn", "openTSNE", "pandas",
)


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    """Python, platform and the versions of the packages that shape a result (None: absent)."""
    out: dict[str, str | None] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in (*_PACKAGES, *extra):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def build_manifest(
    *,
    kind: str,
    config: dict[str, Any],
    dataset: Any = None,
    seed: int | None = None,
    device: dict[str, Any] | str | None = None,
    timings: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A JSON-able manifest.

    Parameters
    ----------
    kind
        What was made, e.g. ``"tsimcne-model"``, ``"comparison"``, ``"qc-report"``.
    config
        The parameters that made it, verbatim.
    dataset
        An :class:`~tsimcne_nb.data.core.ImageDataset` (its ``summary()`` with the
        content fingerprint is stored) or an already-made summary dict.
    """
    if dataset is not None and hasattr(dataset, "summary"):
        dataset = dataset.summary()
    return {
        "kind": kind,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "config": config,
        "dataset": dataset,
        "seed": seed,
        "device": device,
        "timings": timings or {},
        **(extra or {}),
    }
