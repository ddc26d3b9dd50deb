"""Quality of one t-SimCNE setting on the embedded synthetic data: the runs behind docs/quick-budget.md.

Trains ``TSimCNE(budget="quick", ...)`` with the given overrides on ``synthetic-blood`` and prints
one JSON line: 2-D kNN accuracy and silhouette (the paper's protocol), kNN of the backbone
features, wall time.  ``--tsne-pixels`` prints the same metrics for t-SNE of the pixels instead.

Examples
--------
    python benchmarks/quick_budget_tuning.py --n 3000 --augment randrot --epochs 30,3,20 \
        --set stage3_lr_factor=0.3 --threads 2
    python benchmarks/quick_budget_tuning.py --n 3000 --tsne-pixels

Run on an idle machine: on 2 cores, anything else busy slows torch down by an order of magnitude.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def _value(text: str):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="synthetic images (default 3000)")
    p.add_argument("--augment", default="randrot")
    p.add_argument("--epochs", default=None, help="A,B,C (default: the quick budget's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=int(os.environ.get("TSIMCNE_NUM_THREADS", "2")))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other TSimCNE parameter, e.g. stage3_lr_factor=0.3 (repeatable)")
    p.add_argument("--tsne-pixels", action="store_true", help="evaluate t-SNE of pixels instead")
    p.add_argument("--log", type=Path, default=None, help="append the JSON line to this file")
    args = p.parse_args()

    from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
    from tsimcne_nb.eval.metrics import evaluate, knn_accuracy

    ds = make_synthetic_blood(n=args.n, random_state=0)
    t0 = time.perf_counter()
    if args.tsne_pixels:
        from tsimcne_nb.eval.baselines import tsne_pixels

        Y = tsne_pixels(ds, random_state=args.seed)
        out = {"run": "tsne-pixels", "n": args.n}
    else:
        from tsimcne_nb.estimators import TSimCNE

        params = dict(kv.split("=", 1) for kv in args.set)
        params = {k: _value(v) for k, v in params.items()}
        epochs = None if args.epochs is None else tuple(int(e) for e in args.epochs.split(","))
        model = TSimCNE(augment=args.augment, budget="quick", total_epochs=epochs,
                        num_threads=args.threads, random_state=args.seed, progress=False, **params)
        Y = model.fit_transform(ds)
        out = {"run": "tsimcne", "n": args.n, "augment": args.augment,
               "epochs": list(model.total_epochs_), "params": params, "threads": args.threads,
               "feat_knn": round(knn_accuracy(model.features(ds), ds.labels), 4)}
    out["time_s"] = round(time.perf_counter() - t0, 1)
    out.update({k: round(v, 4) for k, v in evaluate(Y, ds.labels).items()})
    line = json.dumps(out)
    print(line)
    if args.log:
        with open(args.log, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
