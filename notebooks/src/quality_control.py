# %% [markdown]
# # Quality control: duplicates and artefacts form their own islands (Figure 6)
#
# A map of a whole dataset is a quality-control tool. The paper modified BloodMNIST twice:
# it added **100 near-duplicates** of one image (random crop, Gaussian noise, colour jitter)
# and, separately, **black artefacts** to 50 images. Although they were only 0.6% and 0.3%
# of the data, in both cases the perturbed images formed one cluster of their own
# (Figure 6).
#
# This notebook repeats that experiment with `tsimcne_nb.qc`: inject, train, let the
# detectors rank suspicious groups (tight clusters on the map, groups that keep to
# themselves in the network's feature space, near-duplicates, images with extreme
# properties), measure whether the injected images are found,
# tag them in the explorer and export an exclusion list. On your own data you skip the
# injection and look at what the report finds.

# %% tags=["parameters"]
DATA_ROOT = None      # folder with the data files; None: $TSIMCNE_DATA or ~/.tsimcne_nb/data
DOWNLOAD = False      # True: download missing files (needs internet)
BUDGET = "quick"      # "quick" (CPU, minutes; coarser maps) or "paper" (the published recipe, GPU)
DEVICE = "auto"       # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
SUBSET = None         # int: use a stratified subset of this many images; None: see QUICK_SUBSET
QUICK_SUBSET = 3000   # with BUDGET="quick" and SUBSET=None, this many images (None: all)
SEED = 0              # seed of everything random (training, subsets, splits)
EPOCHS = None         # None: the budget's epochs; or (stage 1, stage 2, stage 3), e.g. (100, 10, 50)
STANDIN_N = 2000      # images in the SYNTHETIC stand-in used when the real data is absent (quick only)
DATASET = "bloodmnist"  # the paper's choice; any load_dataset name works
AUGMENT = "randrot"
N_DUPLICATES = 100    # near-duplicates of one image (the paper: 100)
N_ARTEFACTS = 50      # images given black artefacts (the paper: 50)
OUT_DIR = "qc-output" # exclusion lists are written here

# %%
# %matplotlib inline
from dataclasses import replace

import numpy as np
import pandas as pd

import tsimcne_nb
from tsimcne_nb import resolve_budget, resolve_device

# The budget fixes the schedule; EPOCHS (if given) overrides only the epochs of the three stages.
budget = resolve_budget(BUDGET)
if EPOCHS is not None:
    budget = replace(budget, name=f"{budget.name}-epochs-{'-'.join(map(str, EPOCHS))}",
                     total_epochs=tuple(int(e) for e in EPOCHS))
print(f"tsimcne_nb {tsimcne_nb.__version__}")
print(f"budget '{budget.name}': epochs {budget.total_epochs}, batch size {budget.batch_size}, "
      f"backbone {budget.backbone_small} (<= 32 px) / {budget.backbone_large} (larger)")
print("device:", resolve_device(DEVICE))

# %% [markdown]
# ## 1. The data
#
# The real BloodMNIST if present (`DOWNLOAD=True` fetches it, 35 MB), otherwise with the
# quick budget **SYNTHETIC stand-in files** in its format.

# %%
from tsimcne_nb import load_tutorial_dataset

# The real files if present. Otherwise, with the quick budget only, small files in the EXACT
# format of the real dataset, filled with SYNTHETIC images, are written to a temporary folder and
# read with the same loader: every cell below runs, but on synthetic data, and says so. The paper
# budget is meant for the real data: without it this is an error that says where to get it.
dataset = load_tutorial_dataset(DATASET, root=DATA_ROOT, download=DOWNLOAD,
                                standin=BUDGET == "quick", standin_n=STANDIN_N, random_state=SEED)

if SUBSET is not None and SUBSET < len(dataset):
    dataset = dataset.stratified_subset(int(SUBSET), random_state=SEED)

# With the quick budget a stratified subset keeps a CPU run to minutes; the paper budget uses all
# images unless SUBSET says otherwise.
if SUBSET is None and BUDGET == "quick" and QUICK_SUBSET is not None and len(dataset) > QUICK_SUBSET:
    dataset = dataset.stratified_subset(int(QUICK_SUBSET), random_state=SEED)
    print(f"quick budget: using a stratified subset of {len(dataset)} images")

# every title says so when the data is synthetic
TAG = " [SYNTHETIC stand-in data]" if dataset.synthetic else ""
print(dataset)
pd.Series(np.bincount(dataset.labels, minlength=dataset.n_classes), index=dataset.class_names,
          name="images per class")

# %% [markdown]
# ## 2. Inject near-duplicates and artefacts
#
# `inject_duplicates` appends `N_DUPLICATES` perturbed copies of one image;
# `inject_artefacts` paints black blobs into `N_ARTEFACTS` images. Both record what they did
# in the metadata (`qc_injected`), so we can score the detectors afterwards.

# %%
from tsimcne_nb import (
    callouts,
    inject_artefacts,
    inject_duplicates,
    injected_mask,
    qc_report,
    recovery_scores,
)

with_duplicates = inject_duplicates(dataset, k=N_DUPLICATES, random_state=SEED)
with_artefacts = inject_artefacts(dataset, m=N_ARTEFACTS, random_state=SEED)
truth = {"duplicates": injected_mask(with_duplicates, "duplicate"),
         "artefacts": injected_mask(with_artefacts, "artefact")}
for kind, mask in truth.items():
    print(f"{kind}: {mask.sum()} of {len(mask)} images ({mask.mean():.1%}) perturbed")

# %%
from matplotlib.figure import Figure

fig = Figure(figsize=(10, 2.4), layout="constrained")
axes = fig.subplots(2, 10)
for row, (kind, data) in enumerate([("duplicates", with_duplicates), ("artefacts", with_artefacts)]):
    for ax, i in zip(axes[row], np.flatnonzero(truth[kind])[:10], strict=False):
        ax.imshow(data.images[i])
    for ax in axes[row]:
        ax.set_axis_off()
    axes[row][0].set_title(kind, loc="left", fontsize=9)
fig.suptitle(f"perturbed images{TAG}")
fig

# %% [markdown]
# ## 3. One map per modified dataset, and the QC report
#
# For each modified dataset: train t-SimCNE, then `qc_report` ranks suspicious groups using
# the map and the backbone's features (512-d for ResNet18, 128-d for the quick budget's
# narrow ResNet18). `recovery_scores` asks the strict question of the paper: is the
# **single most suspicious group** the injected images (precision) and does it contain all
# of them (recall)? The report's `kind` and `confirmed_by` columns say which detectors
# found each group: with a short training run the perturbed duplicates may not yet be drawn
# as one tight island, while the features already keep them apart (`feature-cluster`).

# %%
import time

from tsimcne_nb import TSimCNE

runs = {}
for kind, data in [("duplicates", with_duplicates), ("artefacts", with_artefacts)]:
    t0 = time.perf_counter()
    model = TSimCNE(augment=AUGMENT, budget=budget, device=DEVICE, random_state=SEED,
                    progress=False).fit(data)
    emb, feats = model.embedding_, model.features(data)
    report = qc_report(data, emb, feats, random_state=SEED)
    scores = recovery_scores(report, truth[kind], top=1)
    runs[kind] = {"data": data, "embedding": emb, "report": report, "scores": scores}
    print(f"{kind}: trained and checked in {time.perf_counter() - t0:.0f} s")
pd.DataFrame({k: v["scores"] for k, v in runs.items()}).T

# %% [markdown]
# ## 4. Figure 6, from your run
#
# Each map with the perturbed images called out. What to look for: the perturbed images as
# one compact island (or at the tip of one), away from the class they came from.

# %%
for kind, run in runs.items():
    display(callouts(run["embedding"], run["data"], truth[kind],
                     n_images=min(10, int(truth[kind].sum())),
                     title=f"{dataset.name} with {kind} (Figure 6){TAG}"))

# %% [markdown]
# ## 5. Read the report, tag, export
#
# The report lists groups best first with their kind, size and evidence; `figure()` shows
# examples of the top groups. `QCReview` steps through the groups in the explorer: each
# group's images as thumbnail cards, its place on the map, and buttons to tag it
# `duplicate`, `artefact` or `keep`. The tags (suggested, then reviewed) are exported as an
# exclusion list to drop those images before training a classifier.

# %%
report = runs["duplicates"]["report"]
print(report)
report.groups[["rank", "kind", "size", "evidence", "confirmed_by"]].head(8)

# %%
report.figure(top=4, per_group=8)

# %%
from pathlib import Path

from tsimcne_nb.widgets import QCReview

# pick a group: the map selects its members and the panel shows them as thumbnail
# cards with their suggested tags; the buttons tag the whole group in the report and in
# the explorer (review.tag_group("keep", rank=2) does the same from code)
review = QCReview(report, title=f"{dataset.name}: duplicates experiment{TAG}")
review

# %%
path = report.export_exclusion_list(Path(OUT_DIR) / "exclusions-duplicates.csv", overwrite=True)
print(f"exclusion list ({len(report.exclusion_list())} images) written to {path}")

# %% [markdown]
# ## On your own data
#
# Skip the injection: train on your data and run `qc_report(dataset, embedding, features)`,
# or from the command line `tsimcne-nb qc --dataset folder:/path/to/images --out runs/qc`.
# With `BUDGET="paper"` on a GPU the islands are sharper and smaller groups become visible.
