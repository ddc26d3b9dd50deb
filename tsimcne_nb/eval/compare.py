"""Baselines and t-SimCNE in one protocol: the paper's Tables 2-5 for any dataset.

>>> result = compare(dataset, methods=["tsne-pixels", "tsimcne-randrot"], seeds=(0, 1))
>>> result.table()          # rows: method, columns: dataset; 'mean ± sd' over seeds
>>> result.figure()         # one map per method, metrics in each title (Figure 2)

Every method's features and maps go through a :class:`~tsimcne_nb.eval.feature_cache.FeatureCache`
(``cache_dir=``), so a repeated comparison recomputes nothing.  The metrics are the
paper's (:mod:`tsimcne_nb.eval.metrics`); the kNN split seed is ``random_state``
(0, as in the paper's code), independent of the method seeds.

Named experiments (:data:`EXPERIMENTS`): ``"ablation"`` (Table 4), ``"linear"``
(Table 5, linear evaluation of SimCLR features) and ``"cifar-control"``
(rotations on natural images).

ImageNet weights are downloaded only with ``download_weights=True`` (through
torchvision's weights API, hash-checked).  With ``resnet_weights="auto"`` (the
default) the ResNet rows use ImageNet weights when they are in the local torch
hub cache (or were just downloaded) and otherwise a *randomly initialised*
ResNet, labelled "(random init, NOT ImageNet)" in every table, figure and note.
Every weights file is checked (architecture, expected keys) before its row is run
and labelled.
"""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from tsimcne_nb.data.core import synthetic_title
from tsimcne_nb.errors import ConfigError, DataError, DatasetNotFoundError
from tsimcne_nb.eval.methods import Method, _registry, augment_for, budget_for
from tsimcne_nb.train.budgets import DEFAULT_BUDGET, resolve_budget

if TYPE_CHECKING:  # annotations only: the modules stay light to import
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = ['METHODS', 'DEFAULT_METHODS', 'EXPERIMENTS', 'ComparisonResult', 'compare', 'combine_tables']


#: every method by name
METHODS: dict[str, Method] = _registry()

#: the rows of the paper's Table 2, in its order
DEFAULT_METHODS: tuple[str, ...] = (
    "tsimcne-default", "tsimcne-rot90", "tsimcne-randrot",
    "tsne-simclr", "tsne-simclr-rot90", "tsne-simclr-randrot",
    "tsne-byol", "tsne-pixels", "tsne-resnet18", "tsne-resnet152",
)

#: named experiments -> (default methods, description)
EXPERIMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "ablation": (
        ("tsimcne-randrot", "tsimcne-randrot-nocrop", "tsimcne-randrot-nojitter",
         "tsimcne-randrot-nogray"),
        "Table 4: t-SimCNE with all augmentations (+rand. rot.) and with crops, colour jitter or "
        "grayscaling removed.",
    ),
    "linear": (
        ("tsne-simclr", "tsne-simclr-rot90", "tsne-simclr-randrot"),
        "Table 5: linear evaluation (StandardScaler + unpenalised logistic regression) of SimCLR's "
        "512-d features per augmentation set; trained on train+val, tested on test.",
    ),
    "cifar-control": (
        ("tsimcne-default", "tsimcne-rot90", "tsimcne-randrot"),
        "CIFAR-10 control: rotation augmentations on natural images (the paper: 90° rotations "
        "and flips drop kNN accuracy from 89% to 76%).",
    ),
}

_METRIC_LABELS = {
    "knn_accuracy": "kNN accuracy (%)",
    "silhouette": "silhouette",
    "linear_accuracy": "linear accuracy (%)",
}


# ------------------------------------------------------------------ results
def _fmt(values: Sequence[float], percent: bool) -> str:
    vals = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if vals.size == 0:
        return "–"
    scale, digits = (100.0, 1) if percent else (1.0, 2)
    mean = vals.mean() * scale
    if vals.size == 1:
        return f"{mean:.{digits}f}"
    sd = vals.std(ddof=1) * scale
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


@dataclass
class ComparisonResult:
    """Embeddings and metrics of a comparison, per (method, seed).

    Attributes
    ----------
    dataset_name : str
        Column header of the tables (", synthetic" added for synthetic data).
    records : list of dict
        One per (method, seed): ``method``, ``label``, ``seed``, the metrics
        (``knn_accuracy``, ``silhouette`` or ``linear_accuracy``), ``seconds``,
        ``cached``.
    embeddings : dict
        ``(method, seed) -> (N, 2) float32`` map (empty for the linear experiment).
    labels : numpy.ndarray or None
        Labels of the compared dataset (for figures).
    class_names : list of str
        Its class names.
    synthetic : bool
        True when the compared data are synthetic (marked in headers and titles).
    notes : list of str
        What the reader must know (random-init ResNets, fallback splits, ...).
    experiment : str or None
        Named experiment, if any.
    """

    dataset_name: str
    records: list[dict[str, Any]]
    embeddings: dict[tuple[str, int], np.ndarray]
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    experiment: str | None = None
    synthetic: bool = False

    @property
    def methods(self) -> list[str]:
        seen: list[str] = []
        for r in self.records:
            if r["method"] not in seen:
                seen.append(r["method"])
        return seen

    @property
    def metric_names(self) -> list[str]:
        return [m for m in _METRIC_LABELS if any(m in r for r in self.records)]

    @property
    def column_name(self) -> str:
        return synthetic_title(self.dataset_name, self.synthetic)

    def metrics(self) -> pd.DataFrame:
        """All records as a DataFrame (one row per method and seed)."""
        import pandas as pd

        return pd.DataFrame(self.records)

    def _label(self, method: str) -> str:
        return next(r["label"] for r in self.records if r["method"] == method)

    def table(self, metric: str | None = None) -> pd.DataFrame:
        """The paper's table layout: rows = method, columns = dataset.

        Parameters
        ----------
        metric : str, optional
            ``"knn_accuracy"`` (Table 2, in %), ``"silhouette"`` (Table 3),
            ``"linear_accuracy"`` (Table 5, in %), or None for all present, as a
            two-level column index (metric, dataset).

        Returns
        -------
        pandas.DataFrame
            Cells are ``"mean ± sd"`` strings over the seeds (just the mean with one
            seed); "–" where a metric could not be computed.
        """
        import pandas as pd

        metrics = self.metric_names if metric is None else [metric]
        for m in metrics:
            if m not in _METRIC_LABELS:
                raise ConfigError(f"unknown metric {m!r}; use one of {sorted(_METRIC_LABELS)}.")
        rows = [self._label(m) for m in self.methods]
        data = {}
        for m in metrics:
            col = []
            for meth in self.methods:
                vals: list[Any] = [r.get(m) for r in self.records if r["method"] == meth]
                col.append(_fmt(vals, percent=m != "silhouette"))
            data[(_METRIC_LABELS[m], self.column_name)] = col
        df = pd.DataFrame(data, index=pd.Index(rows, name="method"))
        df.columns = pd.MultiIndex.from_tuples(df.columns, names=["metric", "dataset"])
        if metric is not None:
            df.columns = df.columns.droplevel(0)
        return df

    def to_markdown(self) -> str:
        """The tables (one per metric) and the notes as Markdown."""
        parts = []
        title = f"# Comparison on {self.column_name}"
        if self.experiment:
            title += f" — experiment '{self.experiment}'"
        parts.append(title)
        seeds = sorted({r["seed"] for r in self.records})
        parts.append(f"Seeds: {', '.join(map(str, seeds))}"
                     + (" (cells: mean ± sd over seeds)" if len(seeds) > 1 else ""))
        for m in self.metric_names:
            parts.append(f"## {_METRIC_LABELS[m]}")
            parts.append(_markdown_table(self.table(m)))
        if self.notes:
            parts.append("## Notes")
            parts.append("\n".join(f"- {n}" for n in self.notes))
        return "\n\n".join(parts) + "\n"

    def panels(self, seed: int | None = None) -> list[tuple[str, np.ndarray]]:
        """``(title, embedding)`` per method for ``seed`` (default: the first seed).

        Parameters
        ----------
        seed : int, optional
            Which seed's maps (default: the first).
        """
        if not self.embeddings:
            return []
        if seed is None:
            seed = min(s for _, s in self.embeddings)
        out = []
        for meth in self.methods:
            if (meth, seed) not in self.embeddings:
                continue
            rec = next(r for r in self.records if r["method"] == meth and r["seed"] == seed)
            title = rec["label"]
            knn, sil = rec.get("knn_accuracy"), rec.get("silhouette")
            if knn is not None and np.isfinite(knn):
                title += f"\nkNN {100 * knn:.1f}%, sil {sil:.2f}"
            out.append((title, self.embeddings[(meth, seed)]))
        return out

    def figure(
        self,
        seed: int | None = None,
        other_threshold: int | str | None = "auto",
        path: str | os.PathLike | None = None,
        overwrite: bool = False,
        ncols: int | None = None,
    ) -> Figure:
        """One panel per method, kNN accuracy and silhouette in each title (Figure 2).

        ``other_threshold="auto"`` draws classes with fewer than 1% of the points
        in black as "other", like the paper's Figure 2; None shows every class.

        Parameters
        ----------
        seed : int, optional
            Which seed's maps (default: the first).
        other_threshold : int, "auto" or None
            Classes with fewer points are drawn as "other" (see above).
        path : str or os.PathLike, optional
            Also save the figure here.
        overwrite : bool
            Replace an existing ``path``.
        ncols : int, optional
            Panels per row.
        """
        from tsimcne_nb.viz.figures import plot_panels

        panels = self.panels(seed)
        if not panels:
            raise DataError(
                "this comparison has no 2-D maps to draw (the 'linear' experiment only has "
                "accuracies); use .table() instead."
            )
        if other_threshold == "auto":
            n = len(panels[0][1])
            other_threshold = max(2, int(math.ceil(0.01 * n))) if self.labels is not None else None
        suptitle = self.column_name + (f" — {self.experiment}" if self.experiment else "")
        suptitle = synthetic_title(suptitle, self.synthetic)
        return plot_panels(panels, self.labels, self.class_names, ncols=ncols,
                           other_threshold=cast("int | None", other_threshold), suptitle=suptitle,
                           path=path,
                           overwrite=overwrite)


def _markdown_table(df: Any) -> str:
    """A DataFrame as a GitHub Markdown table (no dependency on ``tabulate``)."""
    header = [df.index.name or ""] + [str(c) for c in df.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx)] + [str(v) for v in row.tolist()]) + " |")
    return "\n".join(lines)


def combine_tables(results: Sequence[ComparisonResult], metric: str = "knn_accuracy") -> pd.DataFrame:
    """Several datasets' results side by side: rows = method, one column per dataset.

    Parameters
    ----------
    results : sequence of ComparisonResult
        Comparisons of several datasets.
    metric : str
        The metric to tabulate (``knn_accuracy``, ``silhouette``, ...).
    """
    import pandas as pd

    if not results:
        raise DataError("combine_tables needs at least one ComparisonResult.")
    return pd.concat([r.table(metric) for r in results], axis=1)


# ------------------------------------------------------------------ running
def _resolve_methods(methods: Sequence[str] | str | None, experiment: str | None) -> list[str]:
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    if methods is None:
        methods = EXPERIMENTS[experiment][0] if experiment else DEFAULT_METHODS
    methods = list(methods)
    if not methods:
        raise ConfigError("no methods given; pass names from tsimcne_nb.eval.compare.METHODS.")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; valid names: {sorted(METHODS)}.")
    if len(set(methods)) != len(methods):
        raise ConfigError(f"methods listed twice: {methods}.")
    return methods


def _resolve_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, (int, np.integer)):
        seeds = [int(seeds)]
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"seeds must be integers, e.g. (0, 1, 2); got {seeds!r}.") from exc
    if not out:
        raise ConfigError("seeds is empty; pass at least one seed, e.g. (0,).")
    if len(set(out)) != len(out):
        raise ConfigError(f"seeds listed twice: {out}.")
    return out


def _resolve_resnet_weights(resnet_weights: Any, methods: list[str], notes: list[str],
                            download: bool = False) -> dict[str, Any]:
    """Weights per ResNet arch; 'auto' falls back to random init with a stated reason.

    A weights file (the torch hub's or the user's) is checked (architecture and
    expected keys) here, before any row is run or labelled "ImageNet".
    """
    from tsimcne_nb.eval import weights as wfiles

    out: dict[str, Any] = {}
    for arch in ("resnet18", "resnet152"):
        if f"tsne-{arch}" not in methods:
            continue
        w = resnet_weights
        if isinstance(w, str) and w in ("auto", "imagenet"):
            path = wfiles.imagenet_weights_file(arch)
            if not path.exists() and (download or w == "imagenet"):
                if not download:
                    raise DatasetNotFoundError(wfiles._missing_weights_message(arch))
                path = wfiles.download_imagenet_weights(arch)
            if path.exists():
                wfiles.check_weights_file(path, arch)
                w = "imagenet"
            else:
                w = None
                msg = (f"{wfiles.resnet_label(arch, None)}: ImageNet weights were not found at "
                       f"{path} (not downloaded: pass download_weights=True / --download), so this "
                       f"row uses a randomly initialised {arch} and is NOT the paper's ImageNet "
                       f"baseline. Put {path.name} in {path.parent} or pass resnet_weights=PATH to "
                       "use real ImageNet weights.")
                notes.append(msg)
                warnings.warn(msg, stacklevel=3)
        elif w is not None:
            path = Path(w)
            if not path.is_file():
                raise DatasetNotFoundError(
                    f"resnet weights file {path} does not exist; pass the path of a {arch} state "
                    "dict, 'auto', 'imagenet' or None (random init).")
            wfiles.check_weights_file(path, arch)
            if not wfiles.is_published_imagenet_file(arch, path):
                notes.append(f"{wfiles.resnet_label(arch, path)}: the weights in {path} are not "
                             "torchvision's published ImageNet weights (their hash differs).")
        out[arch] = w
    return out


def _features_for(method: Method, dataset: Any, seed: int, budget: Any, device: str,
                  cache: Any, progress: bool, weights: dict[str, Any]) -> np.ndarray:
    from tsimcne_nb.eval import baselines

    if method.kind == "tsne-resnet":
        arch = cast(str, method.arch)  # every tsne-resnet method names its architecture
        return baselines.imagenet_features(dataset, arch=arch, weights=weights[arch],
                                           device=device, random_state=seed, cache=cache)
    fn = baselines.simclr_features if method.kind == "tsne-simclr" else baselines.byol_features
    return fn(dataset, augment=augment_for(method, dataset, budget), budget=budget, random_state=seed,
              device=device, cache=cache, progress=progress)


def _embed(method: Method, dataset: Any, seed: int, budget: Any, device: str, cache: Any,
           progress: bool, weights: dict[str, Any], n_jobs: Any) -> np.ndarray:
    from tsimcne_nb.eval import baselines, feature_cache

    if method.kind == "tsne-pixels":
        return baselines.tsne_pixels(dataset, random_state=seed, n_jobs=n_jobs, cache=cache)
    if method.kind == "tsimcne":
        return baselines.tsimcne_map(dataset, augment=augment_for(method, dataset, budget), budget=budget,
                                     random_state=seed, device=device, cache=cache,
                                     progress=progress)
    # t-SNE of features: the map itself is cached too, keyed by the feature config
    config = {**method.config(), "budget": feature_cache.describe_budget(budget),
              "weights": None if method.arch is None else str(weights.get(method.arch))}

    def compute() -> np.ndarray:
        feats = _features_for(method, dataset, seed, budget, device, cache, progress, weights)
        return baselines.tsne_of(feats, random_state=seed, n_jobs=n_jobs)

    if cache is None:
        return compute()
    return cache.get_or_compute(f"map:{method.name}", config, dataset, seed, compute)


def _label(method: Method, weights: dict[str, Any]) -> str:
    if method.kind == "tsne-resnet":
        from tsimcne_nb.eval.weights import resnet_label

        arch = cast(str, method.arch)
        return f"t-SNE {resnet_label(arch, weights.get(arch))}"
    return method.label


def _linear_split(dataset: Any, random_state: int, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    split = dataset.metadata["split"].astype(str).str.lower().to_numpy()
    test = split == "test"
    train = np.isin(split, ["train", "val", "valid", "validation"])
    if test.any() and train.any():
        notes.append(f"Linear evaluation: trained on the train+val split ({int(train.sum())} "
                     f"images), tested on the test split ({int(test.sum())} images).")
        return np.flatnonzero(train), np.flatnonzero(test)
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(dataset))
    tr, te = train_test_split(idx, test_size=0.2, stratify=dataset.labels,
                              random_state=random_state)
    notes.append("Linear evaluation: the dataset has no train/test splits in metadata['split'], "
                 f"so a seeded (random_state={random_state}) stratified 80/20 split was used "
                 "instead of the paper's official splits.")
    return np.sort(tr), np.sort(te)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(text, file=sys.stderr, flush=True)


def compare(
    dataset: Any,
    methods: Sequence[str] | str | None = None,
    seeds: Sequence[int] | int = (0,),
    budget: Any = DEFAULT_BUDGET,
    device: str = "auto",
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    resnet_weights: Any = "auto",
    experiment: str | None = None,
    random_state: int = 0,
    n_jobs: int | str = "auto",
    download_weights: bool = False,
) -> ComparisonResult:
    """Run baselines and t-SimCNE on one dataset with the paper's protocol.

    Parameters
    ----------
    dataset : ImageDataset or array-like
        A labelled :class:`~tsimcne_nb.data.core.ImageDataset`.
    methods : Sequence[str] or str, optional
        Names from :data:`METHODS` (list or comma-separated string).  Default: the
        experiment's methods, or :data:`DEFAULT_METHODS` (the paper's Table 2 rows).
    seeds : Sequence[int] or int
        One run per method and seed; tables show mean ± sd over seeds.
    budget : str or Budget
        Training budget of the self-supervised methods (``"quick"`` or ``"paper"``).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ...
    cache_dir : str or os.PathLike, optional
        Folder of the feature/embedding cache; None computes everything afresh.
    progress : bool
        Print one line per run (and let trainers show progress bars).
    resnet_weights : str, path or None
        ``"auto"`` (ImageNet weights if in the local torch hub cache, otherwise a
        random-init ResNet labelled "NOT ImageNet"), ``"imagenet"`` (error if
        missing), a state-dict path, or None (random init).  A file is checked
        (architecture, expected keys) before it is used; a path is labelled
        "ImageNet" only when it is torchvision's published file (same hash).
    experiment : str, optional
        None or a name in :data:`EXPERIMENTS`: ``"ablation"``, ``"linear"``,
        ``"cifar-control"``.
    random_state : int
        Seed of the evaluation splits (kNN 9:1 split; the fallback 80/20 split of
        the linear experiment), independent of the method seeds.
    n_jobs : int or str
        openTSNE threads.
    download_weights : bool
        Fetch missing ImageNet weights through torchvision's weights API into the
        torch hub cache (hash-checked) instead of falling back to random init.

    Returns
    -------
    ComparisonResult
    """
    from tsimcne_nb.eval.feature_cache import FeatureCache
    from tsimcne_nb.eval.metrics import evaluate, linear_probe

    if not (hasattr(dataset, "images") and hasattr(dataset, "fingerprint")):
        raise DataError("compare needs an ImageDataset; wrap arrays with "
                        "tsimcne_nb.data.core.as_dataset(images, labels).")
    if experiment is not None and experiment not in EXPERIMENTS:
        raise ConfigError(f"unknown experiment {experiment!r}; use one of {sorted(EXPERIMENTS)}.")
    names = _resolve_methods(methods, experiment)
    seed_list = _resolve_seeds(seeds)
    notes: list[str] = []
    if experiment:
        notes.append(EXPERIMENTS[experiment][1])
    trained_with = budget_for(experiment, budget)
    if trained_with is not budget:
        overrides = dict(resolve_budget(budget).augment_overrides)
        notes.append(f"The ablation starts from the paper's full augmentation set: the "
                     f"{resolve_budget(budget).name!r} budget's augmentation overrides {overrides} "
                     "are not applied.")
        budget = trained_with
    if experiment == "linear":
        bad = [m for m in names if METHODS[m].kind not in ("tsne-simclr", "tsne-byol", "tsne-resnet")]
        if bad:
            raise ConfigError(f"the linear experiment evaluates features; {bad} have none. Use "
                              "tsne-simclr*, tsne-byol* or tsne-resnet* methods.")
        if dataset.labels is None:
            raise DataError("the linear experiment needs labels; this dataset has none.")
    if experiment == "cifar-control" and "cifar" not in str(dataset.name).lower():
        notes.append(f"The CIFAR-10 control was run on '{dataset.name}', not on CIFAR-10.")
    if getattr(dataset, "synthetic", False):
        notes.append("The data are synthetic (generated), not a real dataset.")
    labelled = dataset.labels is not None and len(np.unique(dataset.labels)) >= 2
    if not labelled and experiment != "linear":
        notes.append("The dataset has fewer than two labelled classes: no kNN/silhouette scores.")
    weights = _resolve_resnet_weights(resnet_weights, names, notes, download_weights)
    cache = FeatureCache(cache_dir)
    records: list[dict[str, Any]] = []
    embeddings: dict[tuple[str, int], np.ndarray] = {}
    split = _linear_split(dataset, random_state, notes) if experiment == "linear" else None
    total = len(names) * len(seed_list)
    step = 0
    for name in names:
        method = METHODS[name]
        for seed in seed_list:
            step += 1
            misses_before = cache.misses
            t0 = time.perf_counter()
            _say(progress, f"[{step}/{total}] {name} (seed {seed}) ...")
            rec: dict[str, Any] = {"method": name, "label": _label(method, weights), "seed": seed}
            if experiment == "linear":
                feats = _features_for(method, dataset, seed, budget, device, cache, progress,
                                      weights)
                tr, te = cast("tuple[np.ndarray, np.ndarray]", split)  # made for 'linear'
                rec["linear_accuracy"] = linear_probe(feats[tr], dataset.labels[tr], feats[te],
                                                      dataset.labels[te])
            else:
                emb = _embed(method, dataset, seed, budget, device, cache, progress, weights,
                             n_jobs)
                emb = np.asarray(emb, dtype=np.float32)
                embeddings[(name, seed)] = emb
                if labelled:
                    rec.update(evaluate(emb, dataset.labels, random_state=random_state))
                else:
                    rec.update({"knn_accuracy": float("nan"), "silhouette": float("nan")})
            rec["seconds"] = round(time.perf_counter() - t0, 3)
            rec["cached"] = cache.cache_dir is not None and cache.misses == misses_before
            _say(progress, f"[{step}/{total}] {name} (seed {seed}) done in {rec['seconds']:.1f} s"
                 + (" (from cache)" if rec["cached"] else ""))
            records.append(rec)
    return ComparisonResult(
        dataset_name=str(dataset.name), records=records, embeddings=embeddings,
        labels=dataset.labels, class_names=list(dataset.class_names), notes=notes,
        experiment=experiment, synthetic=bool(getattr(dataset, "synthetic", False)),
    )
