# %% [markdown]
# # BloodMNIST: 17,092 blood cells in 8 classes
#
# Single normal blood cells from healthy donors (Acevedo et al., 2020), 28x28 px in MedMNIST
# v2. The paper embeds train, validation and test together. This notebook trains t-SimCNE,
# puts its kNN accuracy and silhouette next to the paper's, and makes the paper's Figure 3b
# from your run.
#
# Runtime with the quick budget: roughly 25 minutes on 2 CPU cores (three maps of a 3,000-image
# subset; about 9 with `COMPARE_PRESETS = False`). Without the
# data (and `DOWNLOAD=False`) the quick run uses **SYNTHETIC stand-in files** and says so.

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
AUGMENT = "randrot"    # the preset of the main map: "default", "rot90" or "randrot"
COMPARE_PRESETS = True  # also train the other two presets and t-SNE of pixels (for the table)

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
# ## 1. Get the data
#
# BloodMNIST is one 35 MB file, `bloodmnist.npz`, from zenodo
# (<https://zenodo.org/records/10519652>). Set `DOWNLOAD = True` in the parameters cell to
# fetch it (MD5-checked) into `DATA_ROOT` (default `~/.tsimcne_nb/data/medmnist/`), or
# download it yourself and put it there. Larger versions (`bloodmnist_64.npz`, ...) load with
# `load_dataset("bloodmnist", size=64)`. Licence: CC BY 4.0.

# %%
from tsimcne_nb import load_tutorial_dataset

# The real files if present. Otherwise, with the quick budget only, small files in the EXACT
# format of the real dataset, filled with SYNTHETIC images, are written to a temporary folder and
# read with the same loader: every cell below runs, but on synthetic data, and says so. The paper
# budget is meant for the real data: without it this is an error that says where to get it.
dataset = load_tutorial_dataset("bloodmnist", root=DATA_ROOT, download=DOWNLOAD,
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
# ### Look before you embed
#
# One row per class. How different do the classes look, and how much do images vary within a
# class (staining, focus, size)? The map will reflect both.

# %%
from tsimcne_nb import callouts, contact_sheet, plot_map

contact_sheet(dataset, n_per_class=10, title=f"{dataset.name}: examples per class{TAG}")

# %% [markdown]
# ## 2. The three augmentation presets
#
# Whatever an augmentation changes, the map learns to ignore. The paper compares:
#
# * `default`: crops, horizontal flips, colour jitter, grayscale (SimCLR's set, as in t-SimCNE);
# * `rot90`: plus vertical flips and 90° rotations, so all 8 symmetries of the square are
#   equally likely (a cell or a tissue patch has no "up");
# * `randrot`: plus a rotation by an angle in [-45°, 45°]; the corners are filled with the
#   mean border colour of the whole dataset.

# %%
from tsimcne_nb.widgets import AugmentationGallery

gallery = AugmentationGallery(dataset, presets=("default", "rot90", "randrot"), n_images=2,
                              n_views=6, random_state=SEED)
gallery.display()

# %% [markdown]
# ## 3. Train t-SimCNE
#
# Three stages: 128-d contrastive pre-training, a new 2-D output layer trained alone, then
# everything fine-tuned in 2-D. `AUGMENT="randrot"` is the preset the paper found best for
# this kind of data. With the quick budget this takes minutes on a CPU.

# %%
import time

from tsimcne_nb import TSimCNE

model = TSimCNE(augment=AUGMENT, budget=budget, device=DEVICE, random_state=SEED)
t0 = time.perf_counter()
embedding = model.fit_transform(dataset)
print(f"trained on {len(dataset)} images in {time.perf_counter() - t0:.0f} s; "
      f"epochs {model.total_epochs_}, batch {model.batch_size_}, backbone {model.backbone_}")
# the loss at the start and end of each stage: it should go down within every stage
model.history_.groupby("stage")["loss"].agg(["first", "last"])

# %%
plot_map(embedding, dataset.labels, dataset.class_names,
         title=f"{dataset.name}: t-SimCNE ({AUGMENT}){TAG}")

# %% [markdown]
# ## 4. Metrics next to the paper's
#
# Two numbers summarise a labelled map (the paper, Section 4):
#
# * **kNN accuracy**: a 15-nearest-neighbour classifier trained on 90% of the *2-D points* predicts
#   the class of the other 10%. High means that neighbours on the map share a class.
# * **Silhouette score**: how much closer points are to their own class than to the nearest other
#   class, from -1 to 1. High means classes form separate islands.
#
# Below, the map you just trained and (with `COMPARE_PRESETS=True`) the other two augmentation
# presets plus t-SNE of the raw pixels, next to the paper's numbers. With the quick budget, a subset
# or stand-in data, expect lower numbers than the paper: the comparison shows the *ranking* and the
# size of the gap, not a reproduction. `BUDGET="paper"` on a GPU with all images is the
# reproduction.

# %%
from tsimcne_nb import METHODS, compare, evaluate

metrics = evaluate(embedding, dataset.labels, random_state=SEED)
print("metrics of your map:", {k: round(float(v), 4) for k, v in metrics.items()})

# The paper's Tables 2 and 3 for BloodMNIST (kNN accuracy in %, silhouette).
PAPER = {
    "t-SimCNE default augm.": (90.4, 0.4),
    "t-SimCNE +90° rot.": (93.0, 0.44),
    "t-SimCNE +rand. rot.": (92.9, 0.5),
    "t-SNE pixel space": (73.2, 0.07),
    "t-SNE ResNet18 (ImageNet)": (78.1, 0.13),
    "t-SNE of SimCLR default": (94.0, 0.37),
}

ours = {METHODS[f"tsimcne-{AUGMENT}"].label: (100 * metrics["knn_accuracy"], metrics["silhouette"])}
result = None
if COMPARE_PRESETS:
    others = [f"tsimcne-{p}" for p in ("default", "rot90", "randrot") if p != AUGMENT]
    result = compare(dataset, methods=others + ["tsne-pixels"], seeds=[SEED], budget=budget,
                     device=DEVICE, progress=False)
    for r in result.records:
        ours[r["label"]] = (100 * r["knn_accuracy"], r["silhouette"])

column = "your synthetic run" if dataset.synthetic else "your run"
if dataset.synthetic:
    print("Your numbers come from SYNTHETIC stand-in data: they are NOT comparable with the paper's.")
table = pd.DataFrame(
    [(m, *PAPER.get(m, (np.nan, np.nan)), *v) for m, v in ours.items()],
    columns=["method", "paper kNN %", "paper silhouette", f"{column} kNN %", f"{column} silhouette"],
).set_index("method").round(2)
table

# %% [markdown]
# ## 5. Structure worth looking at: the paper's Figure 3b
#
# In the paper, rotations gave BloodMNIST the best-separated map of all methods (silhouette
# 0.50). Look at where the classes touch: does a class that is a maturation stage of another
# (immature granulocytes, for example) sit next to it? The call-outs show three images near
# the centre of each of a few classes, so you can check whether an island is what its
# colour says.

# %%
centres = [tuple(np.median(embedding[dataset.labels == c], axis=0))
           for c in range(dataset.n_classes) if np.any(dataset.labels == c)][:4]
callouts(embedding, dataset, centres, n_images=3,
         title=f"BloodMNIST: t-SimCNE ({AUGMENT}), as in the paper's Figure 3b{TAG}")

# %% [markdown]
# ## 6. Explore the map yourself
#
# The explorer is a zoomable WebGL scatter plot (jupyter-scatter) linked to a panel of thumbnails.
# **Lasso-select** a region (hold Shift and drag) and its images appear on the right; **hover** a point
# to see its image; click a thumbnail to find its point. Things to look for: what separates two
# islands of the same class, which images sit between classes (ambiguous or mislabelled?), and
# whether small islands are a biological subtype or an artefact (staining, focus, debris). In a
# static copy of this notebook (GitHub, nbviewer) you see a PNG of the map instead.

# %%
from tsimcne_nb.widgets import Explorer

explorer = Explorer(embedding, dataset, model=model,
                    title=f"{dataset.name} ({AUGMENT})")
explorer

# %% [markdown]
# ## 7. Reproducing the paper on a GPU
#
# Run this notebook with the paper's recipe (1000 + 50 + 450 epochs, batch 1024, ResNet18) on
# a GPU, for example with [papermill](https://papermill.readthedocs.io):
#
# ```bash
# pip install papermill
# papermill 02_bloodmnist.ipynb 02_bloodmnist-paper.ipynb -p BUDGET paper -p DEVICE cuda -p DATA_ROOT /path/to/data
# ```
#
# or edit the parameters cell at the top. The map is then comparable with the paper's figure and
# the table with its numbers (the paper reports mean ± sd over 3 seeds: change `SEED` and rerun).
# The same run from the command line:
# `tsimcne-nb fit --dataset bloodmnist --budget paper --device cuda --out runs/bloodmnist`.
