"""Map quality of training recipes, over seeds, with the baselines beside them in the same run.

Trains each configuration for each seed on the embedded **synthetic** data (``synthetic-blood``)
and prints one table: 2-D kNN accuracy and silhouette (the paper's protocol), kNN of the
network's 128-d features, wall time, images/s and torch threads, as mean ± sd over seeds, then
one line per run.  Reference rows computed in the same run: t-SNE of pixels (``tsne-pixels``)
and t-SNE of SimCLR features trained with the same budget (``simclr-tsne``).

Every run is a subprocess with its own torch thread count (``--threads``); ``--jobs 2`` runs two
at a time (on a 2-core machine: one thread each; two-thread torch collapses when the other core
is busy).  Results are appended to a JSON-lines file and reused on the next call (same
configuration, seed and ``n``), so a long benchmark can be run in pieces; ``--rerun`` ignores
them.

Configurations (``--configs``):

- ``quick``            ``TSimCNE(budget="quick")`` (randrot augmentations): what users get;
- ``quick-default``    the same with the SimCLR ``default`` augmentations (the paper's claim:
  rotations help on microscopy);
- ``quick-x2``, ``quick-x4``, ... the quick recipe with every epoch count multiplied (the
  quality-versus-minutes curve; ``--curve`` adds ``quick-x0.5,quick-x2,quick-x4,quick-x8``);
- ``paper``            ``TSimCNE(budget="paper")`` (1,500 epochs: a GPU configuration);
- modifiers after a colon change one setting of a ``quick``/``paper`` configuration, e.g.
  ``quick:hue=0.02:grayscale_p=0`` or ``quick:batch=512:x=2``: any augmentation parameter
  (``crop_scale=0.35`` means ``(0.35, 1.0)``; ``size=20`` trains on 20-px views of the 28-px
  images, which are still embedded at full size), ``x`` (epoch factor), ``e1``/``e2``/``e3`` (one
  stage's epochs: ``quick:e1=20:e2=1:e3=0`` screens stage 1 by its feature kNN), ``batch``, ``lr``, ``s3``
  (stage-3 learning-rate factor), ``warmup``, ``backbone``, ``pdim`` (stage-1 output
  dimension), ``hidden`` (projection width), ``wd``, ``momentum``, ``opt`` (``sgd``/``adamw``),
  ``augment`` (preset);
- ``tsne-pixels``      openTSNE of the pixels (no training);
- ``simclr-tsne``      SimCLR (randrot, the quick budget's stage-1 schedule), then openTSNE of
  its backbone features; ``simclr-tsne:e1=100`` trains it for 100 epochs (the reference row
  for a ``quick:e1=100`` candidate).

Examples
--------
    python benchmarks/map_quality.py --seeds 0,1,2 --jobs 2 \\
        --configs quick,quick-default,tsne-pixels,simclr-tsne
    python benchmarks/map_quality.py --seeds 0 --configs quick --curve --jobs 1 --threads 2
    python benchmarks/map_quality.py --table-only          # print what is stored
    python benchmarks/map_quality.py --device cuda --jobs 6 --seeds 0,1,2 \
        --configs quick,quick:hue=0.02 --deadline 300   # a GPU screen of recipe variants

Rows remember the device they ran on; the table shows one device at a time (``--device``).
On a GPU, times are not CPU minutes: the epoch counts carry over, the times do not.

Run it on an otherwise idle machine: times are the point of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_RESULTS = HERE / "results" / "map_quality.jsonl"

_EST_KEYS = {  # modifier -> TSimCNE parameter (and its type)
    "batch": ("batch_size", int), "lr": ("learning_rate", float), "s3": ("stage3_lr_factor", float),
    "warmup": ("warmup_epochs", int), "backbone": ("backbone", str), "pdim": ("pretrain_dim", int),
    "hidden": ("projection_hidden", int), "wd": ("weight_decay", float),
    "momentum": ("momentum", float), "augment": ("augment", str), "opt": ("optimizer", str),
}


def _parse_value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _config_params(name: str) -> dict:
    """TSimCNE keyword arguments of a configuration (besides seed and threads).

    Augmentation modifiers are returned under ``"augment_overrides"`` (the caller builds the
    :class:`Augmentation`, which needs the image size).
    """
    from tsimcne_nb.nn.augmentations.module import _PARAM_NAMES
    from tsimcne_nb.train.budgets import PAPER, QUICK

    base, *mods = name.split(":")
    factor = 1.0
    if base.startswith("quick-x"):
        factor = float(base[len("quick-x"):])
        base = "quick"
    if base not in ("quick", "quick-default", "paper"):
        raise SystemExit(f"unknown configuration {name!r}")
    budget = PAPER if base == "paper" else QUICK
    params: dict = {"budget": budget.name,
                    "augment": "default" if base == "quick-default" else "randrot"}
    aug: dict = {}
    stage_epochs: dict[int, int] = {}
    for mod in mods:
        key, sep, text = mod.partition("=")
        if not sep:
            raise SystemExit(f"modifier {mod!r} of {name!r} must read key=value")
        value = _parse_value(text)
        if key == "x":
            factor *= float(value)
        elif key in ("e1", "e2", "e3"):  # one stage's epochs, after x
            stage_epochs[int(key[1]) - 1] = int(value)
        elif key in _EST_KEYS:
            target, cast = _EST_KEYS[key]
            params[target] = cast(value)
        elif key in _PARAM_NAMES and key != "fill":  # size=20: train on 20-px views
            aug[key] = (float(value), 1.0) if key == "crop_scale" else value
        else:
            raise SystemExit(f"unknown modifier {key!r} in {name!r}; use x, e1, e2, e3, "
                             f"{', '.join(_EST_KEYS)} or an augmentation parameter")
    if factor != 1.0 or stage_epochs:
        epochs = [max(1, round(e * factor)) for e in budget.total_epochs]
        for i, e in stage_epochs.items():
            epochs[i] = e
        params["total_epochs"] = epochs
    if aug:
        params["augment_overrides"] = aug
    return params


def _simclr_epochs(name: str) -> int | None:
    """Epochs of a ``simclr-tsne[:e1=N]`` configuration (None: the quick budget's stage 1)."""
    base, *mods = name.split(":")
    if base != "simclr-tsne":
        raise SystemExit(f"unknown configuration {name!r}")
    if not mods:
        return None
    if (len(mods) != 1 or not mods[0].startswith("e1=") or not mods[0][3:].isdigit()
            or int(mods[0][3:]) < 1):
        raise SystemExit(f"simclr-tsne takes one modifier, e1=<epochs >= 1>; got {name!r}")
    return int(mods[0][3:])


# ------------------------------------------------------------------ one run (in a subprocess)
def run_one(name: str, seed: int, n: int, threads: int, device: str = "cpu") -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(threads)
    from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
    from tsimcne_nb.eval.metrics import evaluate, knn_accuracy

    ds = make_synthetic_blood(n=n, random_state=0)  # the data are fixed; seeds vary training
    out: dict = {"config": name, "seed": seed, "n": n, "threads": threads, "device": device}
    t0 = time.perf_counter()
    if name == "tsne-pixels":
        from tsimcne_nb.eval.baselines import tsne_pixels

        Y = tsne_pixels(ds, random_state=seed, n_jobs=threads)
        H = None
        out["images_per_s"] = None
        out["feat_knn"] = None
    elif name.split(":")[0] == "simclr-tsne":
        from openTSNE import TSNE

        from tsimcne_nb.estimators import SimCLR

        est = SimCLR(augment="randrot", budget="quick", epochs=_simclr_epochs(name),
                     random_state=seed, num_threads=threads, progress=False, device=device)
        H = est.fit(ds).transform(ds)
        Y = np.asarray(TSNE(n_jobs=threads, random_state=seed).fit(H))
        out["feat_knn"] = round(knn_accuracy(H, ds.labels), 4)
        out["images_per_s"] = round(float(est.history_["images_per_s"].median()), 1)
        out["params"] = {"epochs": list(est.total_epochs_)}
    else:
        from tsimcne_nb.estimators import TSimCNE

        params = _config_params(name)
        kwargs = dict(params)
        overrides = dict(kwargs.pop("augment_overrides", None) or {})
        if overrides:
            from tsimcne_nb.nn.augmentations import make_augmentation
            from tsimcne_nb.train.budgets import resolve_budget

            size = overrides.pop("size", ds.images.shape[1])
            # an Augmentation is used as given: the budget's own overrides go under the modifiers
            settings = resolve_budget(kwargs["budget"]).augment_settings(overrides)
            kwargs["augment"] = make_augmentation(kwargs["augment"], size,
                                                  fill=ds.border_color(), **settings)
        est = TSimCNE(**kwargs, random_state=seed, num_threads=threads, progress=False,
                      device=device)
        Y = est.fit_transform(ds)
        H = est.features(ds)
        out["feat_knn"] = round(knn_accuracy(H, ds.labels), 4)
        out["images_per_s"] = round(float(est.history_["images_per_s"].median()), 1)
        out["params"] = {"epochs": list(est.total_epochs_),
                         **{k: v for k, v in params.items() if k != "budget"}}
        resolved = est.manifest_["resolved"]
        out["resolved"] = {"optimizer": resolved["optimizer"],
                           "learning_rate": resolved["learning_rate"],
                           "augmentation": resolved["augmentation"]}
    out["time_s"] = round(time.perf_counter() - t0, 1)
    out.update({k: round(float(v), 4) for k, v in evaluate(Y, ds.labels).items()})
    # lower-variance figures for comparing recipes: 5-fold kNN over all points (the paper's
    # protocol above scores one 10 % test split: ~300 points, a standard error of ~0.025)
    out["knn_cv"] = _cv_knn(Y, ds.labels)
    if H is not None:
        out["feat_knn_cv"] = _cv_knn(H, ds.labels)
    return out


def _cv_knn(X, labels) -> float:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    return round(float(cross_val_score(KNeighborsClassifier(15), X, labels, cv=folds).mean()), 4)


# ------------------------------------------------------------------ table
def _load(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _fmt(values: list[float], digits: int = 3) -> str:
    import numpy as np

    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return "–"
    if v.size == 1:
        return f"{v[0]:.{digits}f}"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"


def table(rows: list[dict], configs: list[str], seeds: list[int], n: int,
          device: str = "cpu") -> str:
    rows = [r for r in rows if r.get("device", "cpu") == device]
    lines = [
        f"map quality on SYNTHETIC data (synthetic-blood, n={n}); mean ± sd over seeds "
        f"{','.join(map(str, seeds))}; trained on {device}",
        "",
        "| configuration | seeds | 2-D kNN | 2-D kNN, 5-fold | silhouette | feature kNN | wall time (s) "
        "| images/s | threads |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    per_seed = []
    for name in configs:
        got = [r for r in rows if r["config"] == name and r["n"] == n and r["seed"] in seeds]
        if not got:
            continue
        got.sort(key=lambda r: r["seed"])
        threads = sorted({r["threads"] for r in got})
        lines.append(
            f"| {name} | {len(got)} | {_fmt([r['knn_accuracy'] for r in got])} | "
            f"{_fmt([r.get('knn_cv') for r in got])} | {_fmt([r['silhouette'] for r in got])} | {_fmt([r['feat_knn'] for r in got])} | "
            f"{_fmt([r['time_s'] for r in got], 0)} | {_fmt([r['images_per_s'] for r in got], 0)} | "
            f"{','.join(map(str, threads))} |"
        )
        for r in got:
            per_seed.append(
                f"  {name:>14} seed {r['seed']}: kNN {r['knn_accuracy']:.3f}  silhouette "
                f"{r['silhouette']:.3f}  feature kNN {r['feat_knn'] if r['feat_knn'] is not None else '–'}"
                f"  {r['time_s']:.0f} s ({r['threads']} thread{'s' if r['threads'] > 1 else ''})"
            )
    base = {r["seed"]: r for r in rows if r["config"] == "tsne-pixels" and r["n"] == n}
    checks = []
    for name in configs:
        if name == "tsne-pixels" or name.split(":")[0] == "simclr-tsne":
            continue
        got = [r for r in rows if r["config"] == name and r["n"] == n and r["seed"] in seeds]
        pairs = [(r, base[r["seed"]]) for r in got if r["seed"] in base]
        if pairs:
            both = sum(r["knn_accuracy"] > b["knn_accuracy"] and r["silhouette"] > b["silhouette"]
                       for r, b in pairs)
            checks.append(f"  {name}: above t-SNE of pixels on both metrics in {both} of {len(pairs)} seeds")
    return "\n".join(lines + ["", "per run:"] + per_seed + ["", "against t-SNE of pixels (same seed):"] + checks)


# ------------------------------------------------------------------ driver
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--configs", default="quick,quick-default,tsne-pixels,simclr-tsne")
    p.add_argument("--curve", action="store_true",
                   help="add quick-x0.5, quick-x2, quick-x4, quick-x8 (quality versus minutes)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--n", type=int, default=3000, help="synthetic images (default 3000)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (default 1)")
    p.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    p.add_argument("--rerun", action="store_true", help="ignore stored results")
    p.add_argument("--table-only", action="store_true", help="print the stored results only")
    p.add_argument("--device", default="cpu",
                   help="cpu (default), cuda or mps: where the networks train (t-SNE runs on the CPU)")
    p.add_argument("--deadline", type=float, default=None,
                   help="start no run later than this many seconds after the start (a run "
                        "started before it finishes); the skipped ones are listed")
    p.add_argument("--one", nargs=2, metavar=("CONFIG", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.one:  # a single run in this process (what the driver's subprocesses do)
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.n, args.threads,
                                 args.device)))
        return

    configs = [c for c in args.configs.split(",") if c]
    if args.curve:
        configs += [c for c in ("quick-x0.5", "quick-x2", "quick-x4", "quick-x8") if c not in configs]
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        p.error(f"--seeds must be integers separated by commas, e.g. 0,1,2; got {args.seeds!r}")
    for c in configs:
        if c.split(":")[0] == "simclr-tsne":
            _simclr_epochs(c)
        elif c != "tsne-pixels":
            _config_params(c)  # unknown names fail before any training
    stored = [] if args.rerun else _load(args.results)
    if not args.table_only:
        done = {(r["config"], r["seed"], r["n"], r.get("device", "cpu")) for r in stored}
        todo = [(c, s) for s in seeds for c in configs if (c, s, args.n, args.device) not in done]
        started = time.monotonic()
        skipped: list[str] = []
        args.results.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TSIMCNE_NUM_THREADS": str(args.threads),
               "OMP_NUM_THREADS": str(args.threads)}

        def launch(job: tuple[str, int]) -> dict | None:
            c, s = job
            if args.deadline is not None and time.monotonic() - started > args.deadline:
                skipped.append(f"{c} seed {s}")
                return None
            cmd = [sys.executable, str(Path(__file__).resolve()), "--one", c, str(s),
                   "--n", str(args.n), "--threads", str(args.threads), "--device", args.device]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode != 0:  # one failed run must not lose the others' results
                print(f"FAILED: {c} seed {s}:\n{res.stderr[-3000:]}", flush=True)
                return None
            row = json.loads(res.stdout.strip().splitlines()[-1])
            with open(args.results, "a") as fh:  # one short line per write: appends do not interleave
                fh.write(json.dumps(row) + "\n")
            print(f"done: {c} seed {s}: kNN {row['knn_accuracy']:.3f} silhouette "
                  f"{row['silhouette']:.3f} ({row['time_s']:.0f} s)", flush=True)
            return row

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            stored += [row for row in pool.map(launch, todo) if row is not None]
        if skipped:
            print(f"not started (past --deadline): {', '.join(skipped)}")
    print(table(stored, configs, seeds, args.n, args.device))


if __name__ == "__main__":
    main()
