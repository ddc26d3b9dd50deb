"""The ``tsimcne-nb qc`` pipeline: build the maps and features QC needs (training a
t-SimCNE or the pixel t-SNE baseline), run the detectors and write the result folder.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb._io import atomic_open, atomic_write_json, preflight_outputs
from tsimcne_nb._threads import choose_num_threads
from tsimcne_nb.data.core import ImageDataset, as_dataset, synthetic_title
from tsimcne_nb.errors import ConfigError
from tsimcne_nb.qc.perturb import _inject, injected_mask, parse_inject
from tsimcne_nb.qc.report import QCReport, _write_csv, qc_report
from tsimcne_nb.qc.scoring import recovery_scores

__all__ = ['MAP_METHODS', 'qc_to_directory']


def _map_from_model(dataset: ImageDataset, model: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """The map and features of ``dataset`` from an already fitted TSimCNE (no training).

    The model's own training map is used when it was trained on exactly these images
    (same dataset fingerprint); other images are placed on its map with ``transform``.
    """
    fitted_fp = ((getattr(model, "manifest_", None) or {}).get("dataset") or {}).get("fingerprint")
    train_emb = getattr(model, "embedding_", None)
    if fitted_fp is not None and fitted_fp == dataset.fingerprint() and train_emb is not None:
        emb, placement = np.asarray(train_emb, np.float32), "training map"
    else:
        emb, placement = np.asarray(model.transform(dataset), np.float32), "transform (out-of-sample)"
    feats = np.asarray(model.features(dataset), np.float32)
    return emb, feats, {"device": str(getattr(model, "device_", "cpu")), "placement": placement}


def _load_model(model: Any) -> Any:
    if not isinstance(model, (str, os.PathLike)):
        if not all(callable(getattr(model, a, None)) for a in ("transform", "features")):
            raise ConfigError(
                f"model must be a fitted TSimCNE or the path of one saved with .save(); got {type(model).__name__}."
            )
        return model
    path = Path(model)
    if not path.is_file():
        raise FileNotFoundError(
            f"no saved model at {path}; `tsimcne-nb fit --out DIR` writes DIR/model.pt, "
            "TSimCNE.save(path) any path."
        )
    from tsimcne_nb.estimators import TSimCNE

    return TSimCNE.load(path)


def _make_map(
    dataset: ImageDataset, map_method: str, *, augment: str, budget: str, device: str,
    random_state: int | None, num_threads: int | str | None, progress: bool, model: Any = None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    if model is not None:
        return _map_from_model(dataset, model)
    if map_method == "tsne-pixels":
        from tsimcne_nb.eval.baselines import tsne_pixels

        emb, feats = tsne_pixels(dataset, random_state=random_state,
                                 n_jobs=choose_num_threads(num_threads), return_features=True)
        return emb, feats, {"device": "cpu"}
    from tsimcne_nb.estimators import TSimCNE

    model = TSimCNE(augment=augment, budget=budget, random_state=random_state, device=device,
                    num_threads=num_threads, progress=progress).fit(dataset)
    emb = np.asarray(model.embedding_, np.float32)
    feats = np.asarray(model.features(dataset), np.float32)
    return emb, feats, {"device": str(getattr(model, "device_", device))}


#: the maps that :func:`qc_to_directory` can search for tight clusters (``map_method``)
MAP_METHODS = ("tsimcne", "tsne-pixels")


def _parse_map_methods(map_method: str | Sequence[str]) -> list[str]:
    items = map_method.split(",") if isinstance(map_method, str) else list(map_method)
    methods = [str(m).strip() for m in items if str(m).strip()]
    bad = [m for m in methods if m not in MAP_METHODS]
    if bad or not methods:
        raise ConfigError(
            f"map_method must be one or more of {', '.join(MAP_METHODS)} (comma-separated); "
            f"got {map_method!r}."
        )
    if len(set(methods)) != len(methods):
        raise ConfigError(f"map_method names a map twice: {map_method!r}.")
    return methods


def qc_to_directory(
    dataset: ImageDataset,
    out_dir: str | os.PathLike,
    *,
    inject: str | Mapping[str, int] | None = None,
    augment: str = "randrot",
    map_method: str | Sequence[str] = "tsimcne",
    budget: str = "quick",
    device: str = "auto",
    random_state: int | None = 0,
    num_threads: int | str | None = "auto",
    overwrite: bool = False,
    progress: bool = True,
    model: Any = None,
) -> str:
    """The ``tsimcne-nb qc`` command: map, detect, report, write.

    Without ``inject``, the dataset itself is mapped and checked.  With ``inject``
    (``'duplicates:100,artefacts:50'`` or a dict), each kind is injected into its own
    copy of the dataset and gets its own map (as in the paper), and ``recovery.json``
    records precision and recall of the top-ranked group for each.

    Files written to ``out_dir`` (refused if any exists, unless ``overwrite``):
    ``report.csv`` (ranked groups; an ``experiment`` column names the injection),
    ``exclusion_list.csv`` (suggested tags, to review), ``qc_figure.png`` (map and
    thumbnail cards per experiment), ``properties.parquet`` (image properties, and the
    2-D map as ``x``/``y``), ``manifest.json`` and, with injection, ``recovery.json``.

    ``model`` (a fitted :class:`TSimCNE` or the path of a saved one, e.g. the
    ``model.pt`` of ``tsimcne-nb fit``) skips training: its training map is used when
    it was trained on these very images, otherwise ``transform`` places them on it; its
    ``features`` feed the feature-space detectors.  Not with ``inject`` (each injected
    copy needs a map trained on it) and only with ``map_method='tsimcne'``.

    ``map_method`` may name several maps (``'tsimcne,tsne-pixels'``): each then gets
    these files in its own subfolder ``out_dir/<map>/``, ``out_dir/recovery.json``
    holds all recovery figures, and the returned text prints them side by side.

    Returns
    -------
    str
        What was written, and the recovery figures when images were injected.
    """
    dataset = as_dataset(dataset)
    kinds = parse_inject(inject)
    methods = _parse_map_methods(map_method)
    if augment not in ("default", "rot90", "randrot"):
        raise ConfigError(f"augment must be 'default', 'rot90' or 'randrot'; got {augment!r}.")
    if "tsne-pixels" in methods:
        choose_num_threads(num_threads)  # validate now, not after minutes of work
    if model is not None:
        if kinds:
            raise ConfigError(
                "inject and model do not go together: each injected copy of the data needs a map "
                "trained on it. Drop model (to train) or inject (to check the data as it is)."
            )
        if methods != ["tsimcne"]:
            raise ConfigError(f"model is a t-SimCNE model; it cannot make a {', '.join(methods)} map.")
    out = Path(out_dir)
    names = ["report.csv", "exclusion_list.csv", "qc_figure.png", "properties.parquet", "manifest.json"]
    if kinds:
        names.append("recovery.json")
    folders = [out] if len(methods) == 1 else [out / m for m in methods]
    targets = names if len(methods) == 1 else [f"{m}/{n}" for m in methods for n in names]
    if len(methods) > 1 and kinds:
        targets.append("recovery.json")
    preflight_outputs(out, targets, overwrite=overwrite)  # before any work, not after training
    if model is not None:
        model = _load_model(model)
    results = {
        m: _qc_one(dataset, folder, kinds, augment=augment, map_method=m, budget=budget, device=device,
                   random_state=random_state, num_threads=num_threads, overwrite=overwrite,
                   progress=progress, model=model)
        for m, folder in zip(methods, folders, strict=True)
    }
    if len(methods) == 1:
        return results[methods[0]][0]
    lines = [f"QC reports ({', '.join(methods)} maps) written to {', '.join(map(str, folders))}"]
    if kinds:
        recovery = {m: rec for m, (_, rec) in results.items()}
        atomic_write_json(out / "recovery.json", recovery, overwrite=overwrite)
        lines.append(_recovery_table(recovery, kinds, synthetic=dataset.synthetic))
    return "\n".join(lines)


def _recovery_table(recovery: Mapping[str, Mapping[str, Any]], kinds: Mapping[str, int], synthetic: bool) -> str:
    """Precision / recall of each map side by side, one row per injection."""
    methods = list(recovery)
    head = f"{synthetic_title('top-ranked group', synthetic):<34}" + "".join(
        f"{m + ' map':>20}" for m in methods)
    rows = [head]
    for kind, count in kinds.items():
        cells = "".join(
            f"{'P ' + format(recovery[m][kind]['precision'], '.2f') + '  R ' + format(recovery[m][kind]['recall'], '.2f'):>20}"
            for m in methods)
        rows.append(f"{f'{count} injected {kind}':<34}{cells}")
    return "\n".join(rows)


def _qc_one(
    dataset: ImageDataset, out: Path, kinds: Mapping[str, int], *, augment: str, map_method: str,
    budget: str, device: str, random_state: int | None, num_threads: int | str | None, overwrite: bool,
    progress: bool, model: Any = None,
) -> tuple[str, dict[str, Any]]:
    """One map method of :func:`qc_to_directory`: returns (message, recovery)."""
    out.mkdir(parents=True, exist_ok=True)
    experiments = [("none", dataset)] if not kinds else [
        (kind, _inject(dataset, kind, count, random_state)) for kind, count in kinds.items()
    ]
    reports: dict[str, QCReport] = {}
    recovery: dict[str, Any] = {}
    timings: dict[str, float] = {}
    device_info: Any = None
    for kind, ds in experiments:
        t0 = time.perf_counter()
        emb, feats, info = _make_map(ds, map_method, augment=augment, budget=budget, device=device,
                                     random_state=random_state, num_threads=num_threads, progress=progress,
                                     model=model)
        device_info = info["device"]
        placement = info.get("placement", "trained here")
        timings[f"map_{kind}_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        rep = qc_report(ds, emb, feats, random_state=random_state)
        timings[f"detect_{kind}_s"] = round(time.perf_counter() - t0, 3)
        reports[kind] = rep
        if kind != "none":
            truth = injected_mask(ds, "duplicate" if kind == "duplicates" else "artefact")
            recovery[kind] = {**recovery_scores(rep, truth, top=1), "count": kinds[kind],
                              "map_method": map_method, "definition": "members of the top-ranked group"}

    tables, excl, props = [], [], []
    for kind, rep in reports.items():
        t = rep.table()
        t.insert(0, "experiment", kind)
        tables.append(t)
        e = rep.exclusion_list()
        e.insert(0, "experiment", kind)
        excl.append(e)
        p = rep.properties.copy()
        p.insert(0, "experiment", kind)
        p.insert(1, "index", np.arange(len(p)))
        if rep.embedding is not None:
            p["x"], p["y"] = rep.embedding[:, 0], rep.embedding[:, 1]
        if "qc_injected" in rep.dataset.metadata:
            p["qc_injected"] = rep.dataset.metadata["qc_injected"].to_numpy()
        props.append(p)
    _write_csv(pd.concat(tables, ignore_index=True), out / "report.csv", overwrite)
    _write_csv(pd.concat(excl, ignore_index=True), out / "exclusion_list.csv", overwrite)
    with atomic_open(out / "properties.parquet", "wb", overwrite=overwrite) as fh:
        pd.concat(props, ignore_index=True).to_parquet(fh, index=False)
    _save_reports_figure(reports, out / "qc_figure.png", overwrite)
    if kinds:
        atomic_write_json(out / "recovery.json", recovery, overwrite=overwrite)
    manifest = _manifest(dataset, kinds, map_method, augment, budget, random_state, device_info, timings, recovery)
    if model is not None:  # the map came from a fitted model: say which and how it was placed
        manifest["config"]["model"] = {"placement": placement,
                                       "manifest": getattr(model, "manifest_", None)}
    atomic_write_json(out / "manifest.json", manifest, overwrite=overwrite)
    lines = [f"QC report ({map_method} map) written to {out}"
             + (f" (map from the given model: {placement})" if model is not None else "")]
    for kind, rec in recovery.items():
        lines.append(
            f"  {kind} ({rec['count']} injected): precision {rec['precision']:.3f}, "
            f"recall {rec['recall']:.3f} (top-ranked group)"
        )
    return "\n".join(lines), recovery


def _save_reports_figure(reports: Mapping[str, QCReport], path: Path, overwrite: bool) -> None:
    import io

    import matplotlib.pyplot as plt

    figs = [rep.figure() for rep in reports.values()]
    if len(figs) == 1:
        fig = figs[0]
    else:  # stack the experiments' figures as images: one panel per experiment
        fig = plt.figure(figsize=(max(f.get_figwidth() for f in figs), sum(f.get_figheight() for f in figs)))
        axes = fig.subplots(len(figs), 1, squeeze=False)[:, 0]
        for ax, (kind, f) in zip(axes, zip(reports, figs, strict=True), strict=True):
            buf = io.BytesIO()
            f.savefig(buf, format="png", dpi=110)
            buf.seek(0)
            ax.imshow(plt.imread(buf))
            ax.set_axis_off()
            ax.set_title(f"experiment: {kind} injected", fontsize=10)
            plt.close(f)
        fig.tight_layout()
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)


def _manifest(dataset: ImageDataset, kinds: Mapping[str, int], map_method: str, augment: str, budget: str,
              random_state: int | None, device: Any, timings: dict[str, float], recovery: dict[str, Any]
              ) -> dict[str, Any]:
    from tsimcne_nb.manifest import build_manifest

    return build_manifest(
        kind="qc-report",
        config={"inject": dict(kinds), "map_method": map_method, "augment": augment, "budget": budget,
                "random_state": random_state},
        dataset=dataset, seed=random_state, device=device, timings=timings,
        extra={"recovery": recovery} if recovery else None,
    )
