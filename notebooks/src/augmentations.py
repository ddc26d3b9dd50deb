# %% [markdown]
# # Augmentations: presets, the ablation (Table 4) and the CIFAR-10 control
#
# What t-SimCNE learns depends mostly on its augmentations: two augmented views of an image
# are pulled together, so the map becomes *invariant* to whatever the augmentations change.
# This notebook
#
# 1. shows the three presets and how strong each transformation is (interactive gallery);
# 2. runs the paper's **ablation** (Table 4): all augmentations versus no crops, no colour
#    jitter, no grayscale;
# 3. runs the **CIFAR-10 control**: rotations help microscopy, where orientation is
#    meaningless, but hurt natural images (the paper: kNN accuracy 89% -> 76%).

# %% tags=["parameters"]
DATA_ROOT = None      # folder with the data files; None: $TSIMCNE_DATA or ~/.tsimcne_nb/data
DOWNLOAD = False      # True: download missing files (needs internet)
BUDGET = "quick"      # "quick" (CPU, minutes; coarser maps) or "paper" (the published recipe, GPU)
DEVICE = "auto"       # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
SUBSET = None         # int: use a stratified subset of this many images; None: see QUICK_SUBSET
QUICK_SUBSET = 2000   # with BUDGET="quick" and SUBSET=None, this many images (None: all)
SEED = 0              # seed of everything random (training, subsets, splits)
EPOCHS = None         # None: the budget's epochs; or (stage 1, stage 2, stage 3), e.g. (100, 10, 50)
STANDIN_N = 2000      # images in the SYNTHETIC stand-in used when the real data is absent (quick only)
DATASET = "bloodmnist"  # dataset of the gallery and the ablation (the paper: Leukemia, BloodMNIST, PathMNIST)
RUN_ABLATION = True
ABLATION_METHODS = None  # None: all four rows of Table 4; or a list of compare.METHODS names
RUN_CIFAR = True
CIFAR_METHODS = ("tsimcne-default", "tsimcne-rot90", "tsimcne-randrot")

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
# The real files if present, otherwise (quick budget) **SYNTHETIC stand-in files** in the
# real format.

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
# ## 2. The presets, parameter by parameter
#
# `make_augmentation(preset, size)` builds the batched augmentation the trainer uses (on
# the training device). `describe()` lists every parameter; `randrot` fills rotated corners
# with the dataset's mean border colour.

# %%
from tsimcne_nb import make_augmentation

size = dataset.image_shape[0]
fill = dataset.border_color()
print("dataset border colour (fills rotated corners):", np.round(fill, 1))
pd.DataFrame({p: make_augmentation(p, size, fill=fill).describe()
              for p in ("default", "rot90", "randrot")})

# %% [markdown]
# ## 3. The gallery
#
# Each row: an image and views of it under one preset. In a live notebook, move the sliders
# and press *redraw*. What to look for: the views should differ in everything the map should
# ignore (orientation, exact position, stain intensity) but keep what defines a class
# (nucleus shape, granules, texture). Below, the same draw with colour jitter switched off
# and stronger crops, set from code.

# %%
from tsimcne_nb.widgets import AugmentationGallery

gallery = AugmentationGallery(dataset, presets=("default", "rot90", "randrot"), n_images=2,
                              n_views=8, random_state=SEED)
gallery.display()

# %%
from IPython.display import Image

gallery.set_strength(jitter_p=0.0, crop_scale_min=0.08)
display(Image(gallery.static_png()))
gallery.reset()

# %% [markdown]
# ## 4. The ablation (the paper's Table 4)
#
# t-SimCNE with all augmentations (+ random rotations) and with one of them removed. In the
# paper, removing **crops** hurt most (BloodMNIST kNN 92.9% -> 76.0%), removing colour jitter
# hurt on Leukemia and PathMNIST, and grayscale hardly mattered.

# %%
from tsimcne_nb import compare

ablation = None
if RUN_ABLATION:
    ablation = compare(dataset, experiment="ablation", methods=ABLATION_METHODS, seeds=[SEED],
                       budget=budget, device=DEVICE, progress=False)
    PAPER_T4 = {  # kNN %, silhouette
        "leukemia": {"all": (95.1, 0.52), "no crops": (79.7, 0.14), "no color jitter": (82.0, -0.01), "no grayscaling": (95.6, 0.52)},
        "bloodmnist": {"all": (92.9, 0.50), "no crops": (76.0, 0.20), "no color jitter": (90.0, 0.45), "no grayscaling": (92.1, 0.44)},
        "pathmnist": {"all": (97.3, 0.41), "no crops": (59.8, -0.02), "no color jitter": (94.3, 0.24), "no grayscaling": (98.5, 0.39)},
    }
    row = {"tsimcne-randrot": "all", "tsimcne-randrot-nocrop": "no crops",
           "tsimcne-randrot-nojitter": "no color jitter", "tsimcne-randrot-nogray": "no grayscaling"}
    paper = PAPER_T4.get(DATASET.lower(), {})
    column = "your synthetic run" if dataset.synthetic else "your run"
    if dataset.synthetic:
        print("Your numbers come from SYNTHETIC data: they are NOT comparable with the paper's.")
    table4 = pd.DataFrame([
        (row.get(r["method"], r["label"]), *paper.get(row.get(r["method"]), (np.nan, np.nan)),
         100 * r["knn_accuracy"], r["silhouette"]) for r in ablation.records
    ], columns=["augmentations", "paper kNN %", "paper silhouette", f"{column} kNN %",
                f"{column} silhouette"]).set_index("augmentations").round(2)
    display(table4)
    display(ablation.figure(seed=SEED))

# %% [markdown]
# ## 5. The CIFAR-10 control: rotations hurt natural images
#
# CIFAR-10 has 60,000 32x32 photos in 10 classes. A photo has an "up": an upside-down ship
# is unusual, and a network taught to ignore rotation throws that cue away. The paper: kNN
# accuracy 89% with default augmentations, 76% with 90° rotations.
#
# The data: torchvision's `cifar-10-batches-py` (set `DOWNLOAD=True`, 170 MB, or put the
# folder in `~/.tsimcne_nb/data/cifar10/`). Without it, the quick run uses **SYNTHETIC stand-in
# pickles**; these are rotation-invariant blood cells, so on them rotations do *not* hurt:
# the control only works on real photos.

# %%
cifar_result = None
if RUN_CIFAR:
    # the real CIFAR-10 if present, else (quick budget only) SYNTHETIC stand-in pickles
    cifar = load_tutorial_dataset("cifar10", root=DATA_ROOT, download=DOWNLOAD,
                                  standin=BUDGET == "quick", standin_n=STANDIN_N, random_state=SEED)
    if cifar.synthetic:
        print("These SYNTHETIC STAND-IN CIFAR-10 files hold blood cells: the numbers mean "
              "nothing about natural images.")
    n_cifar = SUBSET or (QUICK_SUBSET if BUDGET == "quick" else None)
    if n_cifar is not None and n_cifar < len(cifar):
        cifar = cifar.stratified_subset(int(n_cifar), random_state=SEED)
    cifar_result = compare(cifar, experiment="cifar-control", methods=list(CIFAR_METHODS),
                           seeds=[SEED], budget=budget, device=DEVICE, progress=False)
    display(cifar_result.table())
    display(cifar_result.figure(seed=SEED))

# %% [markdown]
# ## Paper budget
#
# ```bash
# papermill augmentations.ipynb augmentations-paper.ipynb -p BUDGET paper -p DEVICE cuda \
#     -p DATA_ROOT /path/to/data -p DATASET bloodmnist
# ```
#
# From the command line: `tsimcne-nb compare --experiment ablation --dataset bloodmnist
# --budget paper --device cuda --out runs/ablation` and `--experiment cifar-control
# --dataset cifar10`.
