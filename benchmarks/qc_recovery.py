"""How well the QC report finds injected duplicates and artefacts: the issue-6 experiment.

For each map method (t-SimCNE quick budget, t-SNE of pixels) and each injection kind
(``duplicates:100``, ``artefacts:50``), the clean SYNTHETIC dataset gets its own injected copy
and its own map, as in the paper and in ``tsimcne-nb qc``.  The maps (embedding and features)
are cached in ``--cache`` so that detector settings can be compared without retraining; the
detection itself takes seconds.  Prints, per map and kind, precision and recall of the top
ranked group and the first few ranked groups with how many injected images each holds.

Examples
--------
    python benchmarks/qc_recovery.py --cache runs/qc-maps --threads 2
    python benchmarks/qc_recovery.py --cache runs/qc-maps --methods tsne-pixels --show 8

Training the two t-SimCNE maps takes ~9 min each on 2 idle cores; run on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def cached_map(cache: Path, method: str, kind: str, count: int, ds, seed: int, threads: int):
    """(embedding, features) of the injected dataset ``ds``, from ``cache`` or computed."""
    from tsimcne_nb._io import atomic_open
    from tsimcne_nb.pipelines.qc import _make_map

    path = cache / f"{method}-{kind}{count}-n{len(ds)}-seed{seed}.npz"
    if path.exists():
        with np.load(path) as z:
            if np.array_equal(z["injected"], ds.metadata["qc_injected"].to_numpy() != ""):
                return z["embedding"], z["features"], 0.0
        raise SystemExit(f"{path} was made from a different dataset; delete it or use another --cache.")
    t0 = time.perf_counter()
    emb, feats, _ = _make_map(ds, method, augment="randrot", budget="quick", device="auto",
                              random_state=seed, num_threads=threads, progress=False)
    seconds = time.perf_counter() - t0
    cache.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        np.savez(fh, embedding=emb, features=feats,
                 injected=ds.metadata["qc_injected"].to_numpy() != "")
    return emb, feats, seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=3000, help="synthetic images before injection (default 3000)")
    p.add_argument("--inject", default="duplicates:100,artefacts:50")
    p.add_argument("--methods", default="tsimcne,tsne-pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=Path("runs/qc-maps"))
    p.add_argument("--show", type=int, default=5, help="ranked groups printed per experiment")
    p.add_argument("--maps-only", action="store_true", help="compute and cache the maps, detect nothing")
    args = p.parse_args()

    from tsimcne_nb.data.synthetic.generator import make_synthetic_blood
    from tsimcne_nb.qc.detectors.duplicates import near_duplicate_groups
    from tsimcne_nb.qc.detectors.feature_clusters import find_feature_clusters
    from tsimcne_nb.qc.detectors.outliers import property_outliers
    from tsimcne_nb.qc.detectors.tight_clusters import find_tight_clusters
    from tsimcne_nb.qc.perturb import _inject, injected_mask, parse_inject
    from tsimcne_nb.qc.report import qc_report
    from tsimcne_nb.qc.scoring import recovery_scores

    clean = make_synthetic_blood(n=args.n, random_state=0)
    results = []
    for method in args.methods.split(","):
        for kind, count in parse_inject(args.inject).items():
            ds = _inject(clean, kind, count, args.seed)
            emb, feats, train_s = cached_map(args.cache, method, kind, count, ds, args.seed, args.threads)
            if args.maps_only:
                print(f"{method} {kind}: map cached ({train_s:.0f} s)", flush=True)
                continue
            t0 = time.perf_counter()
            rep = qc_report(ds, emb, feats, random_state=args.seed)
            detect_s = time.perf_counter() - t0
            truth = injected_mask(ds, "duplicate" if kind == "duplicates" else "artefact")
            top1 = recovery_scores(rep, truth, top=1)
            results.append({"method": method, "kind": kind, "count": count,
                            "precision": round(top1["precision"], 3), "recall": round(top1["recall"], 3),
                            "n_flagged": top1["n_flagged"], "detect_s": round(detect_s, 1)})
            print(f"\n{method} map, {count} {kind} (SYNTHETIC): top-ranked group precision "
                  f"{top1['precision']:.2f}, recall {top1['recall']:.2f}  [detection {detect_s:.1f} s]")
            # which detector does the work: each one run alone, its top group scored
            alone = {
                "tight-cluster (2-D map)": find_tight_clusters(emb, feats, random_state=args.seed),
                "tight-cluster (2-D map, no feature check)": find_tight_clusters(emb, random_state=args.seed),
                "feature-cluster": find_feature_clusters(feats, random_state=args.seed),
                "near-duplicate": near_duplicate_groups(feats, random_state=args.seed),
                "property-outlier": property_outliers(rep.properties),
            }
            per = {}
            for det, groups in alone.items():
                sc = recovery_scores(groups, truth, top=1) if len(groups) else {"precision": 0.0, "recall": 0.0}
                per[det] = f"P {sc['precision']:.2f} R {sc['recall']:.2f}"
            print("  each detector alone, top group: " + "; ".join(f"{k} {v}" for k, v in per.items()))
            for _, g in rep.groups.head(args.show).iterrows():
                hits = int(truth[np.asarray(g["members"])].sum())
                detail = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in g["detail"].items()
                          if k in ("property", "feature_confirmation", "compactness", "llr", "median_distance")}
                print(f"  #{g['rank']} {g['kind']:<16} size {g['size']:>4}  injected {hits:>3}  "
                      f"evidence {g['evidence']:6.1f}  score {g['score']:5.2f}  "
                      f"+{','.join(g['confirmed_by']) or '-'}  {detail}")
    if results:
        print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
