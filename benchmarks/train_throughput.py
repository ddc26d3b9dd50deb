#!/usr/bin/env python
"""Training throughput of this toolkit's ``TSimCNE`` against the original t-SimCNE 0.3.12.

One run measures, side by side and on the same synthetic images:

* **original** -- the pip release ``tsimcne==0.3.12`` (Lightning, per-image PIL
  augmentation in DataLoader workers, fp32), run unmodified in its own virtual
  environment (``benchmarks/setup_reference_env.sh``) through a small driver
  that times Lightning training steps with a callback;
* **ours fp32** -- ``tsimcne_nb.estimators.TSimCNE`` at the original's precision
  (channels-last, batched augmentation on the device), so that the speed-up
  of the data path and the loop can be told apart from that of bf16;
* **ours bf16** -- the same in its best CPU/GPU configuration (bf16 autocast +
  channels-last + device-resident batched augmentation), the default;
* **ours narrow bf16** -- the CPU-sized ``resnet18_narrow`` network, for
  information only (a different, ~16x cheaper network: not comparable).

Every implementation runs in its own subprocess with the same thread settings
(``--threads``), the same backbone (ResNet18 with the small stem, 512-d),
image size, batch size and augmentation set (``default``: the only one the
original package has), for a fixed number of training steps after a warm-up.
Throughput counts *images* per second (each image is augmented into two views,
so the network sees twice as many) and optimizer steps per second.

If the original cannot be run (no reference environment), the faithful rebuild
of its data path (``benchmarks/reference_pipeline.py``: per-image torchvision
transforms in a DataLoader) drives the same network and loss in fp32 instead,
and the output says so.

Also printed: the network's FLOPs per image (forward + backward, counted with
``torch.utils.flop_counter.FlopCounterMode``), the FLOP/s each run achieved,
the device's measured matmul peak (bf16 and fp32), and the projected time of the
paper's full budget on BloodMNIST (17,092 images x 1,500 epochs).

Run ``python benchmarks/train_throughput.py --help``.  The machine should be idle:
the script refuses to start when the 1-minute load average is high (``--force``
runs anyway and marks the results as taken on a busy machine).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_REF_PYTHON = "/tmp/tsimcne-ref/bin/python"
REF_VERSION = "0.3.12"

#: the paper's budget on BloodMNIST, for the projection (RECIPE.md)
BLOODMNIST_IMAGES = 17_092
PAPER_EPOCHS = 1_500

#: label, implementation kind, backbone, precision
IMPLEMENTATIONS: dict[str, tuple[str, str, str]] = {
    "original": ("original", "resnet18_small", "fp32"),
    "ours-fp32": ("ours", "resnet18_small", "fp32"),
    "ours-bf16": ("ours", "resnet18_small", "bf16"),
    "ours-narrow-bf16": ("ours", "resnet18_narrow", "bf16"),
    "ours-bf16-compile": ("ours", "resnet18_small", "bf16"),
}


# =========================================================================== helpers
def _load() -> tuple[float, float, float] | None:
    try:
        return tuple(round(v, 2) for v in os.getloadavg())  # type: ignore[return-value]
    except (OSError, AttributeError):
        return None


def _cpu_busy_fraction(seconds: float = 1.0) -> float | None:
    """Share of all CPU time that was not idle during the next ``seconds`` (Linux).

    The load average reacts slowly (a 1-minute mean); this says what the other
    processes are doing right now.
    """

    def read() -> tuple[int, int] | None:
        try:
            with open("/proc/stat") as fh:
                vals = [int(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
        return sum(vals), idle

    a = read()
    if a is None:
        return None
    time.sleep(seconds)
    b = read()
    if b is None or b[0] == a[0]:
        return None
    return round(1.0 - (b[1] - a[1]) / (b[0] - a[0]), 3)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _n_cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TSIMCNE_NUM_THREADS"):
        env[k] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONWARNINGS"] = "ignore"
    return env


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def _write_result(path: str, obj: dict[str, Any]) -> None:
    with open(path, "w") as fh:
        json.dump(obj, fh)


# =========================================================================== workers
# Each worker runs in its own process (``--worker NAME``) and writes one JSON file.


def _worker_ours(a: argparse.Namespace) -> dict[str, Any]:
    """This toolkit's TSimCNE estimator, timed through its per-epoch ``history_``."""
    import torch

    torch.set_num_threads(a.threads)
    from tsimcne_nb.estimators import TSimCNE

    images = np.load(a.images)
    b = a.batch_size
    kw = dict(
        augment="default", budget="paper", total_epochs=(1, 1, 0), batch_size=b,
        backbone=a.backbone, device=a.device, precision=a.precision, channels_last=True,
        compile=a.compile, num_threads=a.threads, random_state=0, progress=False,
    )
    timed_epoch = 0
    warmup_s = 0.0
    if a.compile:
        # A new model may recompile, so a separate warm-up fit would not help: time the
        # second stage-1 epoch of one fit instead (the first one holds the compilation).
        kw["total_epochs"] = (2, 1, 0)
        timed_epoch = 1
    else:
        # Warm-up fit on one batch: same shapes, so the oneDNN/cuDNN kernels and the
        # allocator caches are ready before the timed fit.
        t0 = time.perf_counter()
        TSimCNE(**kw).fit(images[:b])
        warmup_s = time.perf_counter() - t0
    # The timed fit: a stage-1 epoch is exactly `steps` full training steps (stage 2,
    # one epoch of output-layer-only steps, is required by the estimator and not
    # timed).  history_ times each epoch's steps, with one device sync at the epoch's
    # end, excluding set-up and the final embedding.
    est = TSimCNE(**kw).fit(images[: b * a.steps])
    h = est.history_
    row = h[h["stage"] == 1].iloc[timed_epoch]
    secs = float(row["time"])
    tim = est.timings_
    steps_total = max(tim.get("train_steps_total", 0.0), 1e-12)
    shares = {
        k: round(tim.get(k, 0.0) / steps_total, 3)
        for k in ("data", "augment", "forward", "backward", "step")
    }
    model = est.model_
    return {
        "seconds": secs,
        "steps": a.steps,
        "images": b * a.steps,
        "warmup_s": round(warmup_s, 2),
        "torch_threads": torch.get_num_threads(),
        "phase_shares": shares,
        "n_params_backbone": sum(p.numel() for p in model.backbone.parameters()),
        "precision_resolved": est.manifest_.get("resolved", {}).get("precision"),
        "final_loss": float(row["loss"]),
    }


def _worker_original(a: argparse.Namespace) -> dict[str, Any]:
    """The unmodified t-SimCNE 0.3.12 package (run with the reference venv's python).

    Stage 1 of its ``fit`` is rebuilt from its own pieces (``TSimCNE.make_dataloader``,
    ``PLtSimCNE``, its ``trainer_kwargs``) so that a callback can time the steps;
    nothing in the training path is changed.
    """
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(a.threads)
    from importlib.metadata import version

    import tsimcne.tsimcne as ref
    from lightning import pytorch as pl
    from PIL import Image

    b, warm, steps = a.batch_size, a.ref_warmup_steps, a.steps
    images = np.load(a.images)
    if a.ref_epoch_images:
        # epochs of a realistic size: the original restarts its DataLoader workers and
        # keeps a last partial batch every epoch
        images = images[np.arange(a.ref_epoch_images) % len(images)]
        max_epochs = -(-(warm + steps) * b // a.ref_epoch_images) + 1
    else:
        images = images[: b * (warm + steps)]  # one epoch holds every step
        max_epochs = 1
    labels = np.zeros(len(images), np.int64)

    class ArrayDataset(torch.utils.data.Dataset):
        """(PIL.Image, label) items, like torchvision / MedMNIST datasets."""

        def __len__(self) -> int:
            return len(images)

        def __getitem__(self, i: int):
            return Image.fromarray(images[i]), int(labels[i])

    class StepTimer(pl.Callback):
        def __init__(self) -> None:
            self.ends: list[float] = []
            self.sizes: list[int] = []
            self.threads = 0

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            _sync(a.device)
            self.ends.append(time.perf_counter())
            self.sizes.append(len(batch[1]))  # ((view1, view2), labels)
            self.threads = torch.get_num_threads()

    torch.manual_seed(0)
    est = ref.TSimCNE(batch_size=b, num_workers=a.ref_workers, total_epochs=[1])
    est.use_ffcv = False  # what its fit() resolves "auto" to for a Dataset (not a .beton path)
    ds = ArrayDataset()
    loader = est.make_dataloader(ds, True, None)  # the original's loader and transforms
    plmodel = ref.PLtSimCNE(
        model=est.model, loss=est.loss, metric=est.metric, backbone=est.backbone,
        projection_head=est.projection_head, n_epochs=1, batch_size=b,
        optimizer_name=est.optimizer, lr_scheduler_name=est.lr_scheduler,
        lr=est.learning_rates[0], warmup=est.warmup_schedules[0],
        pretrain_out_dim=est.pretrain_out_dim, out_dim=est.out_dim, use_ffcv=False,
    )
    timer = StepTimer()
    trainer = pl.Trainer(
        accelerator="gpu" if a.device.startswith("cuda") else "cpu",
        devices=1,
        max_epochs=max_epochs,
        max_steps=warm + steps,
        callbacks=[timer],
        logger=False,  # no log files; the module's self.log calls still run
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        **est.trainer_kwargs,  # gradient clipping by value 4, as the original
    )
    trainer.fit(model=plmodel, train_dataloaders=loader)
    ends = timer.ends
    if len(ends) < warm + steps:
        raise RuntimeError(f"only {len(ends)} steps ran; expected {warm + steps}")
    # from the end of the last warm-up step to the end of the last step: includes
    # fetching (augmenting) the measured batches from the DataLoader
    secs = ends[warm + steps - 1] - ends[warm - 1]
    return {
        "seconds": secs,
        "steps": steps,
        "images": int(sum(timer.sizes[warm : warm + steps])),
        "warmup_s": round(ends[warm - 1] - ends[0], 2) if warm > 1 else None,
        "epoch_images": len(images),
        "torch_threads": timer.threads,
        "n_params_backbone": sum(p.numel() for p in plmodel.model.backbone.parameters()),
        "reference_version": version("tsimcne"),
        "lightning_version": version("lightning"),
        "num_workers": a.ref_workers,
        "trainer_kwargs": est.trainer_kwargs,
    }


def _worker_rebuild(a: argparse.Namespace) -> dict[str, Any]:
    """Fallback: the original's data path rebuilt (reference_pipeline.py) + same net/loss, fp32."""
    import torch

    torch.set_num_threads(a.threads)
    sys.path.insert(0, str(HERE))
    from reference_pipeline import make_reference_loader, stack_views

    from tsimcne_nb.nn.losses import cauchy_infonce
    from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

    b, warm, steps = a.batch_size, a.ref_warmup_steps, a.steps
    images = np.load(a.images)[: b * (warm + steps)]
    torch.manual_seed(0)
    bb = make_backbone("resnet18_small")
    net = ContrastiveNet(bb, ProjectionHead(bb.out_features, 1024, 128)).to(a.device).train()
    lr = 0.03 * b / 256
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    loader = make_reference_loader(images, b, "default", num_workers=a.ref_workers, seed=0)
    ends: list[float] = []
    for batch in loader:
        x = stack_views(batch).to(a.device)
        z1, z2 = net(x).chunk(2)
        loss = cauchy_infonce(z1, z2)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(net.parameters(), 4.0)  # the original's trainer_kwargs
        opt.step()
        float(loss)  # Lightning reads the loss every step (self.log)
        _sync(a.device)
        ends.append(time.perf_counter())
    secs = ends[warm + steps - 1] - ends[warm - 1]
    return {
        "seconds": secs,
        "steps": steps,
        "images": b * steps,
        "torch_threads": torch.get_num_threads(),
        "n_params_backbone": sum(p.numel() for p in bb.parameters()),
        "num_workers": a.ref_workers,
    }


def _matmul_peak(n: int, dtype: Any, device: str, reps: int) -> float:
    """FLOP/s of the fastest of ``reps`` timed ``n x n`` matmuls (a peak is a best case)."""
    import torch

    x = torch.randn(n, n, device=device).to(dtype)
    y = torch.randn(n, n, device=device).to(dtype)
    x @ y  # warm-up
    _sync(device)
    best = float("inf")
    # on CUDA one matmul is ~1 ms: time groups of 5 to keep launch/sync overhead out
    group = 5 if device.startswith("cuda") else 1
    for _ in range(reps):
        t = time.perf_counter()
        for _ in range(group):
            x @ y
        _sync(device)
        best = min(best, (time.perf_counter() - t) / group)
    return 2.0 * n**3 / best


def _worker_device(a: argparse.Namespace) -> dict[str, Any]:
    """Matmul peaks of the device and FLOPs per training image of each backbone."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(a.threads)
    from tsimcne_nb.nn.losses import cauchy_infonce
    from tsimcne_nb.nn.models import ContrastiveNet, ProjectionHead, make_backbone

    cuda = a.device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True  # as both implementations allow
    n = a.peak_n or (8192 if cuda else 2048)
    reps = 10 if cuda else 5
    # On a CPU the fastest size is not always the largest (cache blocking, bf16
    # kernels): take the best of a few sizes, since a peak is a best case.
    sizes = [n] if cuda else sorted({max(64, n // 4), max(64, n // 2), n})
    out: dict[str, Any] = {
        "peak_matmul_n": n if cuda else sizes,
        "peak_bf16_flops": max(_matmul_peak(m, torch.bfloat16, a.device, reps) for m in sizes),
        "peak_fp32_flops": max(_matmul_peak(m, torch.float32, a.device, reps) for m in sizes),
    }
    if cuda:
        out["device_name"] = torch.cuda.get_device_name()
    # FLOPs of one training step (forward + loss + backward) counted on a small batch
    # and divided per image (two views each): conv/linear FLOPs are linear in the batch;
    # the O(B^2) loss is negligible here.  Batch-norm and elementwise ops are not counted
    # (the usual convention).
    k = 8
    flops: dict[str, float] = {}
    for name in ("resnet18_small", "resnet18_narrow"):
        torch.manual_seed(0)
        bb = make_backbone(name)
        net = ContrastiveNet(bb, ProjectionHead(bb.out_features, 1024, 128)).train()
        x = torch.rand(2 * k, 3, a.image_size, a.image_size)
        counter = FlopCounterMode(display=False)
        with counter:
            z1, z2 = net(x).chunk(2)
            cauchy_infonce(z1, z2).backward()
        flops[name] = counter.get_total_flops() / k
    out["train_flops_per_image"] = flops
    return out


WORKERS = {
    "ours": _worker_ours,
    "original": _worker_original,
    "rebuild": _worker_rebuild,
    "device": _worker_device,
}


def _worker_main(a: argparse.Namespace) -> None:
    res = WORKERS[a.worker](a)
    _write_result(a.result, res)


# =========================================================================== driver
def _run_worker(
    python: str, worker: str, a: argparse.Namespace, tmp: Path, extra: list[str], timeout: float
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Run one worker subprocess; return (result or None, conditions it ran under)."""
    result = tmp / f"{worker}-{len(list(tmp.iterdir()))}.json"
    cmd = [
        python, str(Path(__file__).resolve()), "--worker", worker, "--result", str(result),
        "--images", str(tmp / "images.npy"), "--device", a.device, "--threads", str(a.threads),
        "--batch-size", str(a.batch_size), "--steps", str(a.steps),
        "--ref-warmup-steps", str(a.ref_warmup_steps), "--ref-workers", str(a.ref_workers),
        "--image-size", str(a.image_size), *extra,
    ]
    if a.ref_epoch_images:
        cmd += ["--ref-epoch-images", str(a.ref_epoch_images)]
    if a.peak_n:
        cmd += ["--peak-n", str(a.peak_n)]
    cond: dict[str, Any] = {"cpu_busy_before": _cpu_busy_fraction(), "load_before": _load()}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, env=_thread_env(a.threads), capture_output=True, text=True, timeout=timeout,
            cwd=str(REPO),
        )
        ok = proc.returncode == 0 and result.exists()
        log = (proc.stdout or "") + (proc.stderr or "")
    except subprocess.TimeoutExpired as exc:
        ok, log = False, f"timed out after {timeout:.0f} s\n{exc.stdout or ''}{exc.stderr or ''}"
    cond["wall_s"] = round(time.perf_counter() - t0, 1)
    cond["load_after"] = _load()
    if not ok:
        tail = "\n".join(str(log).strip().splitlines()[-25:])
        print(f"  !! worker {worker} {' '.join(extra)} failed:\n{tail}", file=sys.stderr)
        return None, cond
    if a.verbose:
        print(log)
    return json.loads(result.read_text()), cond


def _check_reference(python: str) -> tuple[bool, str]:
    if not Path(python).exists():
        return False, f"{python} does not exist (create it with benchmarks/setup_reference_env.sh)"
    code = (
        "import importlib.metadata as m, tsimcne.tsimcne, lightning; "
        "print(m.version('tsimcne'))"
    )
    try:
        p = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{python} could not run: {exc}"
    if p.returncode != 0:
        return False, f"{python} cannot import tsimcne + lightning: {p.stderr.strip().splitlines()[-1:]}"
    ver = p.stdout.strip().splitlines()[-1]
    if ver != REF_VERSION:
        return False, f"{python} has tsimcne {ver}, not {REF_VERSION}"
    return True, ver


#: distinct synthetic images generated; more are tiled copies (throughput does not care)
_MAX_UNIQUE = 4096


def _make_images(n: int, size: int) -> tuple[np.ndarray, str]:
    m = min(n, _MAX_UNIQUE)
    try:
        from tsimcne_nb.data.synthetic.generator import make_synthetic_blood

        imgs = np.ascontiguousarray(make_synthetic_blood(n=m, size=size, random_state=0).images)
        desc = f"synthetic-blood (tsimcne_nb.data.synthetic), {m} distinct images x {size} px"
    except Exception as exc:  # noqa: BLE001 - any failure: fall back to random pixels
        print(f"  make_synthetic_blood failed ({exc!r}); using synthetic random pixels", file=sys.stderr)
        rng = np.random.default_rng(0)
        imgs = rng.integers(0, 256, (m, size, size, 3), dtype=np.uint8)
        desc = f"synthetic random uint8 pixels, {m} distinct images x {size} px"
    return imgs[np.arange(n) % m], desc


def _fmt_flops(v: float | None) -> str:
    if v is None or not np.isfinite(v):
        return "-"
    for unit, s in (("T", 1e12), ("G", 1e9), ("M", 1e6)):
        if v >= s:
            return f"{v / s:.1f} {unit}"
    return f"{v:.0f} "


def _fmt_hours(h: float | None) -> str:
    if h is None or not np.isfinite(h):
        return "-"
    return f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} d"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Training throughput (images/s) of tsimcne_nb's TSimCNE vs the original "
        "t-SimCNE 0.3.12, side by side on the same synthetic images.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--device", default="auto", help="'auto' (cuda if available), 'cpu', 'cuda'")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per step (default 256 on CPU, 512 on CUDA: the original's default)")
    p.add_argument("--steps", type=int, default=None,
                   help="timed training steps per implementation (default 3 on CPU, 50 on CUDA)")
    p.add_argument("--ref-warmup-steps", type=int, default=None,
                   help="untimed first steps of the original (default 1 on CPU, 10 on CUDA); "
                   "ours warms up with a separate one-batch fit")
    p.add_argument("--repeats", type=int, default=1,
                   help="run every implementation this many times, interleaved; the fastest "
                   "run of each is reported (all are saved)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads in every run")
    p.add_argument("--ref-python", default=DEFAULT_REF_PYTHON,
                   help="python of the reference venv holding tsimcne==0.3.12 + lightning")
    p.add_argument("--ref-workers", type=int, default=None,
                   help="DataLoader workers of the original (default 8 = its own default on CUDA; "
                   "0 on CPU, where workers would compete with the compute threads)")
    p.add_argument("--ref-epoch-images", type=int, default=None,
                   help="images per epoch of the original (default: one epoch holds all its steps "
                   "on CPU; 17092 = BloodMNIST on CUDA, so its per-epoch worker restarts and "
                   "partial last batches are included as in real training)")
    p.add_argument("--wait-idle", type=float, default=0,
                   help="wait up to this many seconds for the load average to drop below "
                   "--max-load before refusing")
    p.add_argument("--implementations", default="original,ours-fp32,ours-bf16,ours-narrow-bf16",
                   help=f"comma-separated subset of {','.join(IMPLEMENTATIONS)}")
    p.add_argument("--compile", action="store_true",
                   help="also run ours bf16 with torch.compile (CUDA; compile time not timed)")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--peak-n", type=int, default=None,
                   help="matrix side of the matmul peak (default 8192 on CUDA, 2048 on CPU)")
    p.add_argument("--max-load", type=float, default=None,
                   help="refuse to start above this 1-minute load average "
                   "(default max(0.75, cores / 4))")
    p.add_argument("--force", action="store_true",
                   help="run even on a busy machine (results are marked BUSY)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: batch 32, 2 steps, small matmul peak (< 2 min on a CPU)")
    p.add_argument("--out", default=None,
                   help="JSON result path (default benchmarks/results/train_throughput-<device>-<time>.json; "
                   "a .csv table is written next to it)")
    p.add_argument("--no-save", action="store_true", help="print only; write no files")
    p.add_argument("--timeout", type=float, default=900, help="seconds per implementation")
    p.add_argument("--verbose", action="store_true", help="print the workers' output")
    # internal: one measurement in a subprocess
    p.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--images", help=argparse.SUPPRESS)
    p.add_argument("--backbone", default="resnet18_small", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="bf16", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def _resolve_defaults(a: argparse.Namespace) -> None:
    if a.device == "auto":
        import torch

        a.device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = a.device.startswith("cuda")
    if a.quick:
        a.batch_size = a.batch_size or 32
        a.steps = a.steps or 2
        a.ref_warmup_steps = a.ref_warmup_steps or 1
        a.peak_n = a.peak_n or (4096 if cuda else 512)
    a.batch_size = a.batch_size or (512 if cuda else 256)
    a.steps = a.steps or (50 if cuda else 3)
    a.ref_warmup_steps = a.ref_warmup_steps or (10 if cuda else 1)
    if a.ref_workers is None:
        a.ref_workers = 8 if cuda else 0
    if a.ref_epoch_images is None and cuda and not a.quick:
        a.ref_epoch_images = BLOODMNIST_IMAGES
    for name in ("batch_size", "steps", "ref_warmup_steps", "threads", "repeats"):
        if getattr(a, name) < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1; got {getattr(a, name)}.")
    if a.batch_size < 2:
        raise SystemExit("--batch-size must be >= 2 (negatives come from the batch).")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; return the result dictionary that is also saved."""
    a = _parse(argv)
    if a.worker:
        _worker_main(a)
        return {}
    _resolve_defaults(a)
    impls = [s.strip() for s in a.implementations.split(",") if s.strip()]
    if a.compile and "ours-bf16-compile" not in impls:
        impls.append("ours-bf16-compile")
    unknown = [s for s in impls if s not in IMPLEMENTATIONS]
    if unknown:
        raise SystemExit(f"unknown implementation(s) {unknown}; choose from {list(IMPLEMENTATIONS)}.")

    cores = _n_cores()
    max_load = a.max_load if a.max_load is not None else max(0.75, cores / 4)
    load0 = _load()
    deadline = time.monotonic() + a.wait_idle
    while load0 is not None and load0[0] > max_load and time.monotonic() < deadline:
        print(f"waiting for an idle machine: 1-min load {load0[0]} > {max_load} ...", flush=True)
        time.sleep(min(15.0, max(0.0, deadline - time.monotonic())))
        load0 = _load()
    busy0 = _cpu_busy_fraction()
    print(f"machine: {_cpu_name()}, {cores} cores; device {a.device}; torch threads {a.threads}")
    print(f"load average before: {load0}  (CPU busy now: {busy0})")
    busy_machine = load0 is not None and load0[0] > max_load
    if busy_machine:
        msg = (
            f"the 1-minute load average {load0[0]} is above {max_load}: other processes are using "
            "the CPU, and multi-threaded throughput collapses on a busy machine (measured ~20x on "
            "2 cores)."
        )
        if not a.force:
            raise SystemExit(f"refusing to run: {msg} Wait for an idle machine or pass --force.")
        print(f"WARNING: {msg} Running anyway (--force); results are marked BUSY.")

    started = _dt.datetime.now().astimezone()
    n_images = a.batch_size * (a.ref_warmup_steps + a.steps)
    images, data_desc = _make_images(max(n_images, a.batch_size * a.steps), a.image_size)
    tmp = Path(tempfile.mkdtemp(prefix="tsimcne-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        np.save(tmp / "images.npy", images)
        print(f"data: {data_desc}; batch {a.batch_size}; {a.steps} timed steps")

        dev_res, _ = _run_worker(sys.executable, "device", a, tmp, [], a.timeout)
        flops = (dev_res or {}).get("train_flops_per_image", {})

        ref_ok, ref_msg = _check_reference(a.ref_python)
        runs: dict[str, list[dict[str, Any]]] = {impl: [] for impl in impls}
        # interleaved repeats, best kept: interference from other processes only ever
        # slows a run down, so the fastest run is the least disturbed one
        for r_i in range(a.repeats):
            rep_tag = f" (repeat {r_i + 1}/{a.repeats})" if a.repeats > 1 else ""
            for impl in impls:
                kind, backbone, precision = IMPLEMENTATIONS[impl]
                label = impl
                if kind == "original":
                    if ref_ok:
                        python, worker = a.ref_python, "original"
                        label = f"original t-SimCNE {ref_msg}"
                    else:
                        print(f"  original t-SimCNE not available: {ref_msg}.\n"
                              "  FALLBACK: the faithful rebuild of its data path "
                              "(benchmarks/reference_pipeline.py) + the same network and loss, fp32.")
                        python, worker = sys.executable, "rebuild"
                        label = "REBUILD of original (reference_pipeline.py)"
                    extra: list[str] = []
                else:
                    python, worker = sys.executable, "ours"
                    extra = ["--backbone", backbone, "--precision", precision]
                    if impl.endswith("compile"):
                        extra.append("--compile")
                print(f"running {label}{rep_tag} ...", flush=True)
                res, cond = _run_worker(python, worker, a, tmp, extra, a.timeout)
                row: dict[str, Any] = {
                    "implementation": label, "key": impl, "backbone": backbone,
                    "precision": precision, "ok": res is not None, **cond,
                }
                if res is not None:
                    row.update(res)
                    row["images_per_s"] = res["images"] / res["seconds"]
                    row["steps_per_s"] = res["steps"] / res["seconds"]
                    fpi = flops.get(backbone)
                    row["train_flops_per_image"] = fpi
                    row["achieved_flops"] = fpi * row["images_per_s"] if fpi else None
                    row["paper_budget_hours"] = BLOODMNIST_IMAGES * PAPER_EPOCHS / row["images_per_s"] / 3600
                    print(f"  {row['images_per_s']:.1f} images/s ({row['steps_per_s']:.3f} steps/s), "
                          f"{cond['wall_s']} s wall, load {cond['load_before']} -> {cond['load_after']}")
                runs[impl].append(row)
        for impl in impls:
            ok_runs = [r for r in runs[impl] if r["ok"]]
            best = dict(max(ok_runs, key=lambda r: r["images_per_s"]) if ok_runs else runs[impl][-1])
            best["repeats"] = len(runs[impl])
            best["all_images_per_s"] = [round(r["images_per_s"], 2) for r in ok_runs]
            rows.append(best)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    load1 = _load()
    ref_row = next((r for r in rows if r["key"] == "original" and r["ok"]), None)
    for r in rows:
        r["ratio_vs_original"] = (
            r["images_per_s"] / ref_row["images_per_s"] if r["ok"] and ref_row else None
        )
    peak_bf16 = (dev_res or {}).get("peak_bf16_flops")
    for r in rows:
        ach = r.get("achieved_flops")
        r["fraction_of_bf16_peak"] = ach / peak_bf16 if ach and peak_bf16 else None

    import torch

    device_name = (dev_res or {}).get("device_name") or f"{_cpu_name()} ({cores} cores)"
    result = {
        "benchmark": "train_throughput",
        "date": started.isoformat(timespec="seconds"),
        "machine": {
            "device": a.device, "device_name": device_name, "cpu": _cpu_name(), "cores": cores,
            "python": platform.python_version(), "torch": torch.__version__,
        },
        "settings": {
            "batch_size": a.batch_size, "steps": a.steps, "ref_warmup_steps": a.ref_warmup_steps,
            "ref_workers": a.ref_workers, "ref_epoch_images": a.ref_epoch_images,
            "threads": a.threads, "image_size": a.image_size,
            "augment": "default", "data": data_desc, "quick": a.quick, "repeats": a.repeats,
        },
        "load_before": load0, "cpu_busy_before": busy0, "load_after": load1,
        "busy_machine": busy_machine, "max_load": max_load,
        "reference": {"available": ref_ok, "detail": ref_msg, "python": a.ref_python},
        "device_peaks": dev_res,
        "rows": rows,
    }
    summary = _summary(result)
    print(summary)
    result["summary"] = summary
    if not a.no_save:
        _save(result, a)
    return result


def _summary(res: dict[str, Any]) -> str:
    m, s = res["machine"], res["settings"]
    dev = res.get("device_peaks") or {}
    out = io.StringIO()
    w = out.write
    w("\n===== train_throughput summary (paste into benchmarks/README.md) =====\n")
    if res["busy_machine"]:
        w(f"**BUSY MACHINE** (1-min load {res['load_before'][0]} > {res['max_load']}): "
          "numbers are not representative.\n\n")
    w(f"- date: {res['date']}; machine: {m['device_name']}; device `{m['device']}`; "
      f"torch {m['torch']}; {s['threads']} torch threads\n")
    w(f"- load average (1, 5, 15 min) before: {res['load_before']}, after: {res['load_after']} "
      f"(the 'after' value includes this benchmark's own threads)\n")
    w(f"- data: {s['data']}; batch {s['batch_size']} images (= {2 * s['batch_size']} views); "
      f"{s['steps']} timed steps; augment `default`; image size {s['image_size']} px; "
      f"original: {s['ref_warmup_steps']} warm-up step(s), {s['ref_workers']} DataLoader workers, "
      + ("one epoch holding all its steps" if not s.get("ref_epoch_images")
         else f"epochs of {s['ref_epoch_images']} images (worker restarts included)")
      + "\n")
    params = {r["key"]: r.get("n_params_backbone") for r in res["rows"] if r["ok"]}
    if params.get("original") and params.get("ours-fp32"):
        same = "identical" if params["original"] == params["ours-fp32"] else "DIFFERENT"
        w(f"- backbone parameters: original {params['original']:,}, ours {params['ours-fp32']:,} "
          f"({same})\n")
    if not res["reference"]["available"]:
        w(f"- **original t-SimCNE not run** ({res['reference']['detail']}): its row is the "
          "faithful REBUILD of its data path + the same network/loss in fp32\n")
    if dev:
        w(f"- measured matmul peak (n x n x n, best of n = {dev.get('peak_matmul_n')}): bf16 "
          f"{_fmt_flops(dev.get('peak_bf16_flops'))}FLOP/s, fp32 "
          f"{_fmt_flops(dev.get('peak_fp32_flops'))}FLOP/s; training FLOPs per image "
          "(fwd+bwd, 2 views): " + ", ".join(
              f"{k} {_fmt_flops(v)}FLOP" for k, v in dev.get("train_flops_per_image", {}).items())
          + "\n")
    w("\n| implementation | backbone | precision | images/s | steps/s | ratio vs original | "
      "achieved FLOP/s | % of bf16 peak | paper budget on BloodMNIST* | load before | "
      "CPU busy before |\n")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|\n")
    for r in res["rows"]:
        if not r["ok"]:
            w(f"| {r['implementation']} | {r['backbone']} | {r['precision']} | failed | | | | | | "
              f"{r['load_before']} | {r['cpu_busy_before']} |\n")
            continue
        ratio = f"{r['ratio_vs_original']:.2f}x" if r.get("ratio_vs_original") else "-"
        if r["key"] == "ours-narrow-bf16" and r.get("ratio_vs_original"):
            ratio += " (smaller net)"
        frac = r.get("fraction_of_bf16_peak")
        w(f"| {r['implementation']} | {r['backbone']} | {r['precision']} | "
          f"{r['images_per_s']:.1f} | {r['steps_per_s']:.3f} | {ratio} | "
          f"{_fmt_flops(r.get('achieved_flops'))}FLOP/s | "
          f"{'-' if frac is None else f'{100 * frac:.1f}%'} | "
          f"{_fmt_hours(r.get('paper_budget_hours'))} | {r['load_before']} | "
          f"{r['cpu_busy_before']} |\n")
    if s.get("repeats", 1) > 1:
        w(f"\nimages/s is the fastest of {s['repeats']} interleaved runs; all runs: "
          + "; ".join(f"{r['key']} {r.get('all_images_per_s')}" for r in res["rows"]) + "\n")
    w(f"\n*{BLOODMNIST_IMAGES:,} images x {PAPER_EPOCHS:,} epochs at the measured images/s "
      "(an upper bound: the 50 stage-2 epochs train only the output layer).  "
      "'CPU busy before' = share of all cores not idle in the second before the run.\n")
    w("=====================================================================\n")
    return out.getvalue()


def _save(result: dict[str, Any], a: argparse.Namespace) -> None:
    from tsimcne_nb._io import atomic_write_json, atomic_write_text

    if a.out:
        out = Path(a.out)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        tag = "quick-" if a.quick else ""
        out = HERE / "results" / f"train_throughput-{tag}{a.device.replace(':', '')}-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, result, overwrite=False)
    cols = [
        "implementation", "backbone", "precision", "ok", "images_per_s", "steps_per_s",
        "ratio_vs_original", "achieved_flops", "fraction_of_bf16_peak", "paper_budget_hours",
        "seconds", "steps", "images", "torch_threads", "load_before", "load_after",
        "cpu_busy_before", "wall_s",
    ]
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
    wr.writeheader()
    for r in result["rows"]:
        wr.writerow(r)
    atomic_write_text(out.with_suffix(".csv"), buf.getvalue(), overwrite=False)
    print(f"wrote {out} and {out.with_suffix('.csv')}")


if __name__ == "__main__":
    main()
