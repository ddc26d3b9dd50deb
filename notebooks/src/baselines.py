# %% [markdown]
# # Baselines: t-SimCNE against t-SNE of pixels, ImageNet features, SimCLR and BYOL (Figure 2)
#
# Is a t-SimCNE map better than what you could get without it? The paper compares it with
# t-SNE (openTSNE, default settings) of
#
# * the raw **pixels** (PCA to 100 dimensions first for large images);
# * **ImageNet ResNet18/ResNet152 features** (512-d/2048-d, images resized to 224 px);
# * **SimCLR** and **BYOL** features (512-d, self-supervised on the same data),
#
# all scored with the same kNN accuracy and silhouette. `tsimcne_nb.compare` runs any
# set of these with the paper's protocol, caches every feature set and map (so re-running is
# instant), and returns tables and the panel figure. The default reproduces the paper's
# **Figure 2** (Leukemia: pixels, ResNet18, t-SimCNE default and +90° rotations).
#
# ImageNet weights need a one-time download (`torchvision` caches them); without them the
# ResNet rows use a randomly initialised network and say so ("NOT ImageNet").

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
DATASET = "leukemia"  # any load_dataset name: bloodmnist, pathmnist, ..., synthetic-blood
METHODS = ("tsne-pixels", "tsne-resnet18", "tsimcne-default", "tsimcne-rot90")  # Figure 2
ALL_METHODS = False   # True: every row of the paper's Table 2 (SimCLR/BYOL train for long)
SEEDS = (0,)          # the paper: 3 seeds (0, 1, 2); tables then show mean ± sd
CACHE_DIR = "baselines-cache"   # features and maps are cached here; None: no cache

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
# As in the dataset notebooks: the real files if present (see `01_leukemia` ... `05_pcam` for
# how to get each), otherwise, with the quick budget, **SYNTHETIC stand-in files** in the
# real format (and the numbers then mean nothing about the real data).

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
# ## 2. Run the comparison
#
# One map per method and seed. t-SNE runs on the CPU; SimCLR, BYOL and t-SimCNE train a
# ResNet (on `DEVICE`) with the same budget. Each finished map is cached in `CACHE_DIR`.

# %%
from tsimcne_nb import DEFAULT_METHODS, compare

methods = list(DEFAULT_METHODS) if ALL_METHODS else list(METHODS)
result = compare(dataset, methods=methods, seeds=list(SEEDS), budget=budget, device=DEVICE,
                 cache_dir=CACHE_DIR, random_state=SEED)
for note in result.notes:
    print("note:", note)
result.table()

# %% [markdown]
# ## 3. Figure 2, from your run
#
# One panel per method; the title carries kNN accuracy and silhouette. Classes with fewer
# than 1% of the points are drawn in black as "other", like the paper. What to look for:
# in pixel space, classes are smeared into one cloud (images that are merely brighter or
# rotated are far apart); t-SimCNE draws islands, and rotations make them cleaner.

# %%
result.figure(seed=SEEDS[0])

# %% [markdown]
# ## 4. Next to the paper's numbers
#
# The paper's Tables 2 and 3 (kNN %, silhouette; means over 3 seeds). Your numbers are means
# over `SEEDS`. With the quick budget, a subset or stand-in data they are not a
# reproduction: use `BUDGET="paper"` on a GPU with all images for that.

# %%
# The paper's Tables 2 and 3: method -> {dataset: (kNN %, silhouette)} (NaN: not reported)
nan = float("nan")
PAPER = {
    "t-SimCNE default augm.": {"leukemia": (86.3, 0.13), "bloodmnist": (90.4, 0.40), "dermamnist": (77.3, 0.13), "pathmnist": (97.2, 0.45), "pcam": (92.6, 0.04)},
    "t-SimCNE +90° rot.": {"leukemia": (94.4, 0.33), "bloodmnist": (93.0, 0.44), "dermamnist": (77.5, 0.11), "pathmnist": (98.0, 0.48), "pcam": (93.1, 0.05)},
    "t-SimCNE +rand. rot.": {"leukemia": (95.1, 0.52), "bloodmnist": (92.9, 0.50), "dermamnist": (80.1, 0.13), "pathmnist": (97.3, 0.41), "pcam": (90.8, 0.05)},
    "t-SNE of SimCLR default": {"leukemia": (95.0, 0.21), "bloodmnist": (94.0, 0.37), "dermamnist": (81.9, 0.14), "pathmnist": (98.1, 0.23), "pcam": (96.3, 0.16)},
    "t-SNE of SimCLR +90°": {"leukemia": (95.9, nan), "bloodmnist": (95.8, nan), "dermamnist": (80.8, nan), "pathmnist": (98.4, nan), "pcam": (96.4, nan)},
    "t-SNE of SimCLR +rand.": {"leukemia": (95.6, nan), "bloodmnist": (95.4, nan), "dermamnist": (82.2, nan), "pathmnist": (97.9, nan), "pcam": (94.9, nan)},
    "t-SNE of BYOL default": {"leukemia": (93.1, nan), "bloodmnist": (90.6, nan), "dermamnist": (80.1, nan), "pathmnist": (93.0, nan), "pcam": (nan, nan)},
    "t-SNE pixel space": {"leukemia": (69.0, -0.09), "bloodmnist": (73.2, 0.07), "dermamnist": (78.0, 0.08), "pathmnist": (56.9, -0.05), "pcam": (76.9, 0.02)},
    "t-SNE ResNet18 (ImageNet)": {"leukemia": (82.0, -0.11), "bloodmnist": (78.1, 0.13), "dermamnist": (81.9, 0.14), "pathmnist": (87.2, 0.17), "pcam": (86.7, 0.04)},
    "t-SNE ResNet152 (ImageNet)": {"leukemia": (72.9, nan), "bloodmnist": (72.9, nan), "dermamnist": (81.0, nan), "pathmnist": (88.8, nan), "pcam": (86.4, nan)},
}
key = DATASET.lower()
column = "your synthetic run" if dataset.synthetic else "your run"
if dataset.synthetic:
    print("Your numbers come from SYNTHETIC data: they are NOT comparable with the paper's.")
ours = pd.DataFrame(result.records).groupby("label", sort=False)[["knn_accuracy", "silhouette"]].mean()
pd.DataFrame({
    "paper kNN %": [PAPER.get(m, {}).get(key, (nan, nan))[0] for m in ours.index],
    "paper silhouette": [PAPER.get(m, {}).get(key, (nan, nan))[1] for m in ours.index],
    f"{column} kNN %": 100 * ours["knn_accuracy"].to_numpy(),
    f"{column} silhouette": ours["silhouette"].to_numpy(),
}, index=ours.index).round(2)

# %% [markdown]
# ## 5. Compare the maps point by point
#
# `LinkedExplorer` shows the maps side by side with one shared selection: lasso a group in
# one map and see where the same images are in the others. A class that is one island in
# t-SimCNE but scattered in pixel space is a class the pixels cannot separate.

# %%
from tsimcne_nb.widgets import LinkedExplorer

titles, embeddings = zip(*[(t.split("\n")[0], e) for t, e in result.panels(seed=SEEDS[0])], strict=True)
linked = LinkedExplorer(list(embeddings), dataset, titles=list(titles))
linked

# %% [markdown]
# ## 6. The paper's full protocol
#
# All ten rows of Table 2 with three seeds, on a GPU:
#
# ```bash
# papermill baselines.ipynb baselines-paper.ipynb -p BUDGET paper -p DEVICE cuda \
#     -p ALL_METHODS True -y "SEEDS: [0, 1, 2]" -p DATASET bloodmnist -p DATA_ROOT /path/to/data
# ```
#
# or from the command line: `tsimcne-nb compare --dataset bloodmnist --seeds 0,1,2
# --budget paper --device cuda --out runs/compare-bloodmnist`. SimCLR and BYOL train for 1000
# epochs each: this is the most expensive notebook.
