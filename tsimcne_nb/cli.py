"""The ``tsimcne-nb`` command (also ``python -m tsimcne_nb``).

Sub-commands
------------
datasets   list every dataset, the files it expects and where
preview    write a labelled contact sheet of a dataset
fit        train t-SimCNE and write model, embedding, metrics, manifest and map
compare    run the paper's baselines and t-SimCNE in one protocol, write table + figure
qc         find duplicates and artefacts, optionally injected, and write a QC report
convert    convert a model or checkpoint of an older tsimcne-nb (a pickle) to the safe format

This module only parses arguments; the work is done by library functions so that
notebooks and the command line share one code path.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from tsimcne_nb.errors import ConfigError, TSimCNEError
from tsimcne_nb.train.budgets import DEFAULT_BUDGET

DEFAULT_DATASET = "synthetic-blood"

#: every sub-command: its one-line description and an example (shown by ``tsimcne-nb --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "datasets": ("list every dataset, the files it expects and where", "tsimcne-nb datasets"),
    "preview": ("write a labelled contact sheet of a dataset",
                "tsimcne-nb preview synthetic-blood --out sheet.png"),
    "fit": ("train t-SimCNE and write model, embedding, metrics, manifest and map",
            "tsimcne-nb fit --dataset synthetic-blood --budget quick --out runs/quickstart"),
    "compare": ("the paper's baselines and t-SimCNE in one table and figure",
                "tsimcne-nb compare --dataset bloodmnist --download --seeds 0,1,2 --out runs/compare"),
    "qc": ("quality control: duplicates and artefacts, ranked for review",
           "tsimcne-nb qc --dataset folder:my_images --model runs/quickstart/model.pt --out runs/qc"),
    "convert": ("convert a model or checkpoint of tsimcne-nb 0.1.0 (a pickle) to the safe format",
                "tsimcne-nb convert old/model.pt model.pt --trust"),
}


def _epilog() -> str:
    width = max(map(len, COMMANDS))
    lines = ["commands:"]
    for name, (text, example) in COMMANDS.items():
        lines += [f"  {name:<{width}}  {text}", f"  {'':<{width}}    e.g. {example}"]
    lines += ["", "`tsimcne-nb COMMAND --help` lists a command's options; `python -m tsimcne_nb` is the "
              "same command.", "Output files and their JSON fields: docs/cli-outputs.md."]
    return "\n".join(lines)


def _add_dataset_args(p: argparse.ArgumentParser, positional: bool = False) -> None:
    if positional:
        p.add_argument("dataset", help="dataset name (see `tsimcne-nb datasets`), npz:PATH or folder:PATH")
    else:
        p.add_argument(
            "--dataset", default=DEFAULT_DATASET,
            help=f"dataset name (see `tsimcne-nb datasets`), npz:PATH or folder:PATH (default {DEFAULT_DATASET})",
        )
    p.add_argument("--data-root", default=None, help="folder holding the dataset's files")
    p.add_argument("--download", action="store_true", help="download missing files where the source allows")
    p.add_argument("--subset", type=int, default=None, help="use a stratified subset of N images")
    p.add_argument(
        "--option", action="append", default=[], metavar="KEY=VALUE",
        help="dataset-specific loader option, e.g. size=64, labels=7, split=test (repeatable)",
    )


def _threads_arg(text: str) -> str | int:
    """argparse type of --num-threads: 'auto' or an integer >= 1."""
    from tsimcne_nb._threads import parse_thread_count

    if text.strip().lower() == "auto":
        return "auto"
    try:
        return parse_thread_count(text, "--num-threads")
    except ConfigError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or an integer >= 1; got {text!r}") from None


def _seeds_arg(text: str) -> list[int]:
    """argparse type of --seeds: comma-separated integers >= 0."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers such as 0,1,2; got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers >= 0 such as 0,1,2; got {text!r}")
    return seeds


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--budget", default=DEFAULT_BUDGET, choices=["quick", "paper"],
                   help=f"training budget (default {DEFAULT_BUDGET}, as TSimCNE())")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--num-threads", default="auto", type=_threads_arg,
                   help="CPU threads for torch: an integer >= 1 or auto (default: from the load)")
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace files already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tsimcne-nb`` and its sub-commands (:data:`COMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="tsimcne-nb", usage="tsimcne-nb [-h] [--version] COMMAND [options]",
        description="t-SimCNE maps of image datasets: train, compare with baselines, quality control.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    # the commands are listed, with an example each, in the epilog
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS,
                                prog="tsimcne-nb")

    sub.add_parser("datasets", help="list datasets, the files they expect and where")

    p = sub.add_parser("preview", help="write a labelled contact sheet of a dataset")
    _add_dataset_args(p, positional=True)
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    p.add_argument("--per-class", type=int, default=10, help="images per class (default 10)")
    p.add_argument("--overwrite", action="store_true")

    p = sub.add_parser("fit", help="train t-SimCNE and write the map")
    _add_dataset_args(p)
    _add_run_args(p)
    p.add_argument("--augment", default="randrot", choices=["default", "rot90", "randrot"])
    p.add_argument("--epochs", default=None, help="stage epochs A,B,C (overrides --budget's)")
    p.add_argument("--backbone", default=None, help="backbone name (default: the budget's)")
    p.add_argument("--batch-size", type=int, default=None, help="batch size (default: the budget's)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--checkpoint-every", type=int, default=None, help="checkpoint every N epochs")
    p.add_argument("--resume", action="store_true", help="resume from the last checkpoint in --out")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: 0.03 * batch / 256 for SGD, 2e-3 * sqrt(batch / 256) "
                   "for AdamW)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default=None,
                   help="optimiser (default: the budget's)")
    p.add_argument("--stage3-lr-factor", type=float, default=None,
                   help="stage-3 learning rate relative to stage 1 (default: the budget's)")
    p.add_argument("--warmup-epochs", type=int, default=None, help="warm-up epochs (default: the budget's)")

    p = sub.add_parser("compare", help="baselines and t-SimCNE side by side (the paper's Tables 2-3)")
    _add_dataset_args(p)
    _add_run_args(p)
    p.add_argument(
        "--methods", default=None,
        help="comma-separated methods (default: the standard set; see tsimcne_nb.eval.compare.METHODS)",
    )
    p.add_argument("--seeds", default=[0], type=_seeds_arg, help="comma-separated seeds (default 0)")
    p.add_argument("--experiment", default=None, help="named experiment: ablation, linear, cifar-control")
    p.add_argument("--cache-dir", type=Path, default=None, help="feature/embedding cache (default OUT/cache)")
    p.add_argument(
        "--resnet-weights", default="auto",
        help="ImageNet ResNet weights: auto (use the torch hub file if present; with --download "
        "fetch it through torchvision, hash-checked; else random init, labelled NOT ImageNet), "
        "imagenet (error if missing), none (random init) or PATH to a state-dict file",
    )

    p = sub.add_parser("qc", help="quality control: duplicates and artefacts")
    _add_dataset_args(p)
    _add_run_args(p)
    p.add_argument("--inject", default=None, help="e.g. duplicates:100,artefacts:50")
    p.add_argument("--augment", default="randrot", choices=["default", "rot90", "randrot"])
    p.add_argument("--map", dest="map_method", default="tsimcne", metavar="MAPS",
                   help="map(s) to look for clusters in: tsimcne, tsne-pixels, or both comma-separated "
                   "(each in OUT/<map>/, recovery printed side by side); default tsimcne")
    p.add_argument("--model", type=Path, default=None,
                   help="a fitted model (e.g. the model.pt of `tsimcne-nb fit`): QC its map instead of "
                   "training one (not with --inject)")

    p = sub.add_parser(
        "convert", help="convert an old (pickle) model or checkpoint to the safe data-only format",
        description="Model and checkpoint files of tsimcne-nb hold only data and cannot run code. "
        "Files written by older versions are pickles, which run code when opened, so they are "
        "refused. This command unpickles OLD once, because you say you trust it (--trust), and "
        "writes NEW in the safe format.",
    )
    p.add_argument("old", type=Path, help="the old model.pt or checkpoint (a torch.save pickle)")
    p.add_argument("new", type=Path, help="the file to write")
    p.add_argument("--trust", action="store_true",
                   help="required: you trust OLD's source (unpickling runs any code it holds)")
    p.add_argument("--overwrite", action="store_true", help="replace NEW if it exists")
    return parser


def parse_options(items: Sequence[str]) -> dict[str, object]:
    """``["size=64", "labels=7"]`` -> ``{"size": 64, "labels": 7}`` (ints and floats parsed).

    Parameters
    ----------
    items : sequence of str
        ``"key=value"`` strings.
    """
    out: dict[str, object] = {}
    for item in items:
        if "=" not in item:
            raise TSimCNEError(f"--option expects KEY=VALUE; got {item!r}")
        key, value = item.split("=", 1)
        parsed: object = value
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                continue
        out[key.strip().replace("-", "_")] = parsed
    return out


def _load(args: argparse.Namespace):
    from tsimcne_nb.data.registry import load_dataset

    ds = load_dataset(args.dataset, root=args.data_root, download=args.download, **parse_options(args.option))
    if args.subset:
        ds = ds.stratified_subset(args.subset, random_state=getattr(args, "seed", 0))
    return ds


def _parse_epochs(text: str | None) -> tuple[int, int, int] | None:
    if text is None:
        return None
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) != 3:
        raise TSimCNEError(f"--epochs expects three comma-separated integers A,B,C; got {text!r}")
    try:
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    except ValueError as exc:
        raise TSimCNEError(f"--epochs expects integers, got {text!r}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tsimcne-nb`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    Errors the user can fix are printed as one line (no traceback) with exit status 1.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments (default: ``sys.argv[1:]``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from tsimcne_nb import __version__

        print(__version__)
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    env_threads = os.environ.get("TSIMCNE_NUM_THREADS")
    if env_threads and args.command in ("fit", "compare", "qc"):
        try:
            _threads_arg(env_threads)
        except argparse.ArgumentTypeError as exc:
            parser.error(f"environment variable TSIMCNE_NUM_THREADS: {exc}")
    try:
        return _dispatch(args)
    except BrokenPipeError:  # e.g. `tsimcne-nb datasets | head`
        return 0
    except (TSimCNEError, FileExistsError, FileNotFoundError) as exc:
        print(f"tsimcne-nb {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"tsimcne-nb {args.command}: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "datasets":
        from tsimcne_nb.data.registry import describe_datasets

        print(describe_datasets())
        return 0
    if args.command == "convert":
        if not args.trust:
            raise TSimCNEError(
                f"convert unpickles {args.old}, which runs any code the file holds. Pass --trust only "
                "if you trust its source (you wrote it, or got it from someone you trust)."
            )
        from tsimcne_nb.pipelines.convert import convert_legacy_file

        print(convert_legacy_file(args.old, args.new, overwrite=args.overwrite))
        return 0
    if args.command == "preview":
        from tsimcne_nb.viz.figures import contact_sheet

        ds = _load(args)
        contact_sheet(ds, n_per_class=args.per_class, path=args.out, overwrite=args.overwrite)
        print(f"wrote {args.out}")
        return 0
    common = dict(
        out_dir=args.out, budget=args.budget, device=args.device, random_state=args.seed,
        num_threads=args.num_threads, overwrite=args.overwrite, progress=not args.no_progress,
    )
    if args.command == "fit":
        from tsimcne_nb.pipelines.fit import fit_to_directory

        epochs = _parse_epochs(args.epochs)  # before loading: a typo fails at once
        result = fit_to_directory(
            _load(args), augment=args.augment, total_epochs=epochs,
            backbone=args.backbone, batch_size=args.batch_size, precision=args.precision,
            checkpoint_every=args.checkpoint_every, resume=args.resume,
            **{k: v for k, v in (("learning_rate", args.lr), ("stage3_lr_factor", args.stage3_lr_factor),
                                 ("warmup_epochs", args.warmup_epochs), ("optimizer", args.optimizer))
               if v is not None},
            **common,
        )
    elif args.command == "compare":
        from tsimcne_nb.pipelines.compare import compare_to_directory

        result = compare_to_directory(
            _load(args),
            methods=None if args.methods is None else [m.strip() for m in args.methods.split(",")],
            seeds=args.seeds, experiment=args.experiment,
            cache_dir=args.cache_dir,
            resnet_weights=None if args.resnet_weights.lower() == "none" else args.resnet_weights,
            download_weights=args.download,
            **common,
        )
    elif args.command == "qc":
        from tsimcne_nb.pipelines.qc import qc_to_directory

        result = qc_to_directory(
            _load(args), inject=args.inject, augment=args.augment, map_method=args.map_method,
            model=args.model, **common,
        )
    else:  # pragma: no cover - argparse rejects unknown commands
        raise TSimCNEError(f"unknown command {args.command!r}")
    if result is not None:
        print(result)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
