"""The ``tsimcne-nb compare`` pipeline: run :func:`~tsimcne_nb.eval.compare.compare` and
write its result folder (tables, figure, manifest, embeddings).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tsimcne_nb.errors import ConfigError
from tsimcne_nb.eval.compare import (
    _METRIC_LABELS,
    EXPERIMENTS,
    _resolve_methods,
    _resolve_seeds,
    compare,
)

__all__ = ['compare_to_directory']


_OUTPUTS = ("results.csv", "results.md", "figure.png", "manifest.json", "embeddings.npz")


def compare_to_directory(
    dataset: Any,
    out_dir: str | os.PathLike,
    *,
    methods: Sequence[str] | str | None = None,
    seeds: Sequence[int] | int = (0,),
    experiment: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    budget: Any = "quick",
    device: str = "auto",
    random_state: int = 0,
    num_threads: int | str = "auto",
    overwrite: bool = False,
    progress: bool = True,
    resnet_weights: Any = "auto",
    download_weights: bool = False,
) -> str:
    """Run :func:`compare` and write everything to ``out_dir``.

    Writes ``results.csv`` (one row per method and seed), ``results.md`` (the
    tables and notes), ``figure.png`` (one map per method; not for the linear
    experiment), ``embeddings.npz`` (``<method>__seed<k>`` arrays), ``manifest.json``
    and ``metrics/<method>.json``.  Existing files are never replaced unless
    ``overwrite=True`` (checked before any work is done).  ``cache_dir``
    defaults to ``out_dir/cache``.

    Returns
    -------
    str
        The Markdown tables followed by the output folder, for printing.
    """
    from tsimcne_nb._io import atomic_open, atomic_write_json, atomic_write_text, preflight_outputs
    from tsimcne_nb.manifest import build_manifest
    from tsimcne_nb.train.device import configure_threads, describe_device, resolve_device

    out = Path(out_dir)
    if experiment is not None and experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; use one of {sorted(EXPERIMENTS)}.")
    names = _resolve_methods(methods, experiment)
    # fail before hours of training, not after
    preflight_outputs(out, [*_OUTPUTS, *(f"metrics/{m}.json" for m in names)], overwrite=overwrite)
    threads = configure_threads(num_threads)
    dev = resolve_device(device)
    cache_dir = out / "cache" if cache_dir is None else Path(cache_dir)
    t0 = time.perf_counter()
    result = compare(dataset, methods=names, seeds=seeds, budget=budget, device=str(dev),
                     cache_dir=cache_dir, progress=progress, resnet_weights=resnet_weights,
                     download_weights=download_weights,
                     experiment=experiment, random_state=random_state, n_jobs=threads)
    elapsed = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    df = result.metrics()
    atomic_write_text(out / "results.csv", df.to_csv(index=False), overwrite=overwrite)
    md = result.to_markdown()
    atomic_write_text(out / "results.md", md, overwrite=overwrite)
    if result.embeddings:
        result.figure(path=out / "figure.png", overwrite=overwrite)
        with atomic_open(out / "embeddings.npz", "wb", overwrite=overwrite) as fh:
            np.savez_compressed(fh, **{f"{m}__seed{s}": e for (m, s), e in result.embeddings.items()})
    for m in result.methods:
        recs = [r for r in result.records if r["method"] == m]
        summary = {k: {"mean": float(np.nanmean([r[k] for r in recs])),
                       "sd": float(np.nanstd([r[k] for r in recs], ddof=1)) if len(recs) > 1 else None}
                   for k in _METRIC_LABELS if k in recs[0] and np.isfinite(
                       np.asarray([r[k] for r in recs], dtype=float)).any()}
        atomic_write_json(out / "metrics" / f"{m}.json",
                          {"method": m, "label": recs[0]["label"], "runs": recs, "summary": summary},
                          overwrite=overwrite)
    config = {"methods": names, "seeds": _resolve_seeds(seeds), "experiment": experiment,
              "budget": budget if isinstance(budget, str) else repr(budget),
              "random_state": random_state, "resnet_weights": str(resnet_weights),
              "download_weights": bool(download_weights),
              "cache_dir": str(cache_dir), "num_threads": threads}
    manifest = build_manifest(
        kind="comparison", config=config, dataset=dataset, seed=random_state,
        device=describe_device(dev), timings={"total_seconds": round(elapsed, 3)},
        extra={"notes": result.notes, "records": result.records},
    )
    atomic_write_json(out / "manifest.json", manifest, overwrite=overwrite)
    return md + f"\nwrote {out.resolve()}\n"
