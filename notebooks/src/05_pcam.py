# %% [markdown]
# # PatchCamelyon (PCam16): lymph-node patches, metastasis yes or no
#
# 327,680 patches of 96x96 px from sentinel lymph-node sections (Veeling et al., 2018), label
# 1 when the central 32x32 region contains tumour. Two classes only, so the silhouette score
# is close to zero for every method; the map shows much more: tissue types within each
# class and a **staining gradient** (shades of violet from one side of the map to the other,
# likely from different staining durations). This notebook makes the paper's Figure 5, a
# 10x10 grid of thumbnails over the map, from your run.
#
# The images are read lazily from the HDF5 files (the training split is 7 GB), so even the
# full dataset never has to fit in memory. Runtime with the quick budget: roughly 25 minutes on
# 2 CPU cores (three maps of a 2,000-image subset at 32 px). Without the data the quick run uses **SYNTHETIC stand-in
# files** and says so.

# %% tags=["parameters"]
DATA_ROOT = None      # folder with the data files; None: $TSIMCNE_DATA or ~/.tsimcne_nb/data
DOWNLOAD = False      # True: download missing files (needs internet) (about 8 GB)
BUDGET = "quick"      # "quick" (CPU, minutes; coarser maps) or "paper" (the published recipe, GPU)
DEVICE = "auto"       # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
SUBSET = None         # int: use a stratified subset of this many images; None: see QUICK_SUBSET
QUICK_SUBSET = 2000   # with BUDGET="quick" and SUBSET=None, this many images (None: all)
SEED = 0              # seed of everything random (training, subsets, splits)
EPOCHS = None         # None: the budget's epochs; or (stage 1, stage 2, stage 3), e.g. (100, 10, 50)
STANDIN_N = 2000      # images in the SYNTHETIC stand-in used when the real data is absent (quick only)
AUGMENT = "rot90"    # the preset of the main map: "default", "rot90" or "randrot"
COMPARE_PRESETS = True  # also train the other two presets and t-SNE of pixels (for the table)
SIZE = None           # resize patches to this side on access; None: 96 px (the paper) with BUDGET="paper", 32 px with "quick"

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
# Six files from zenodo (<https://zenodo.org/records/2546921>),
# `camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5.gz`, about 8 GB together. Set
# `DOWNLOAD = True` to fetch them into `DATA_ROOT` (default `~/.tsimcne_nb/data/pcam/`); they
# are decompressed once, next to themselves. Or download them yourself (plain `.h5` or
# `.h5.gz` both work). The published MD5 sums of the valid and test files are swapped; the
# loader warns instead of failing. Licence: CC0.
#
# `SIZE` resizes the patches on access. By default the paper budget keeps the paper's 96 px
# and the quick budget uses 32 px (a 96 px CPU run is about ten times slower). Set `SIZE = 96`
# to see full-resolution thumbnails on a CPU anyway.

# %%
from tsimcne_nb import load_tutorial_dataset

# 96 px patches train ~10x slower than 32 px ones: the quick budget resizes unless SIZE says otherwise
size = SIZE if SIZE is not None else (None if BUDGET == "paper" else 32)

# The real files if present. Otherwise, with the quick budget only, small files in the EXACT
# format of the real dataset, filled with SYNTHETIC images, are written to a temporary folder and
# read with the same loader: every cell below runs, but on synthetic data, and says so. The paper
# budget is meant for the real data: without it this is an error that says where to get it.
dataset = load_tutorial_dataset("pcam", root=DATA_ROOT, download=DOWNLOAD,
                                standin=BUDGET == "quick", standin_n=STANDIN_N, random_state=SEED,
                                size=size)

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
from tsimcne_nb import contact_sheet, plot_map, thumbnail_grid_over_map

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
# everything fine-tuned in 2-D. `AUGMENT="rot90"` is the preset the paper found best for
# this kind of data. With the quick budget this takes minutes on a CPU.

# %%
import time

from tsimcne_nb import TSimCNE

model = TSimCNE(augment=AUGMENT, budget=(replace(budget, batch_size=512) if budget.name.startswith("paper") else budget), device=DEVICE, random_state=SEED)
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

# The paper's Tables 2 and 3 for PCam16 (kNN accuracy in %, silhouette).
PAPER = {
    "t-SimCNE default augm.": (92.6, 0.04),
    "t-SimCNE +90° rot.": (93.1, 0.05),
    "t-SimCNE +rand. rot.": (90.8, 0.05),
    "t-SNE pixel space": (76.9, 0.02),
    "t-SNE ResNet18 (ImageNet)": (86.7, 0.04),
    "t-SNE of SimCLR default": (96.3, 0.16),
}

ours = {METHODS[f"tsimcne-{AUGMENT}"].label: (100 * metrics["knn_accuracy"], metrics["silhouette"])}
result = None
if COMPARE_PRESETS:
    others = [f"tsimcne-{p}" for p in ("default", "rot90", "randrot") if p != AUGMENT]
    result = compare(dataset, methods=others + ["tsne-pixels"], seeds=[SEED], budget=(replace(budget, batch_size=512) if budget.name.startswith("paper") else budget),
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
# ## 5. Structure worth looking at: the paper's Figure 5 and the staining gradient
#
# (a) The map by class. (b) A 10x10 grid over the map with the image nearest each cell's
# centre, framed in its class colour (cells with few points stay empty): you can read the
# map's layout, tissue type by tissue type. (c) Each point coloured by the violet tint of its
# image (mean blue minus mean green). In the paper, shades of violet change from one side of
# the map to the other: a **staining gradient**, a technical artefact that a classifier
# trained on this data could pick up. The linear fit below measures how strongly the tint
# follows the map position.

# %%
from sklearn.linear_model import LinearRegression

from tsimcne_nb import iter_chunks

display(plot_map(embedding, dataset.labels, dataset.class_names,
                 title=f"PCam: t-SimCNE ({AUGMENT}), Figure 5a{TAG}"))
display(thumbnail_grid_over_map(embedding, dataset, grid=10,
                                title=f"PCam: one image per grid cell, Figure 5b{TAG}"))

# mean colour per image, read chunk by chunk (works on the full lazy dataset too)
mean_rgb = np.concatenate([b.reshape(len(b), -1, 3).mean(axis=1)
                           for _, b in iter_chunks(dataset.images)])
violet = mean_rgb[:, 2] - mean_rgb[:, 1]
fit = LinearRegression().fit(embedding, violet)
print(f"violet tint explained by the map position (R^2 of a linear fit): "
      f"{fit.score(embedding, violet):.2f}; gradient direction {np.round(fit.coef_, 3)}")

from matplotlib.figure import Figure

fig = Figure(figsize=(6, 5), layout="constrained")
ax = fig.add_subplot()
sc = ax.scatter(*embedding.T, c=violet, s=3, cmap="viridis")
fig.colorbar(sc, ax=ax, label="mean blue - mean green (violet tint)")
ax.set_title(f"PCam: staining gradient{TAG}")
ax.set_aspect("equal")
ax.set_axis_off()
fig

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

explorer = Explorer(embedding, dataset, model=model, color_by=violet,
                    title=f"{dataset.name} ({AUGMENT})")
explorer

# %% [markdown]
# ## 7. Reproducing the paper on a GPU
#
# Run this notebook with the paper's recipe (1000 + 50 + 450 epochs, batch 512, ResNet18) on
# a GPU, for example with [papermill](https://papermill.readthedocs.io):
#
# ```bash
# pip install papermill
# papermill 05_pcam.ipynb 05_pcam-paper.ipynb -p BUDGET paper -p DEVICE cuda -p DATA_ROOT /path/to/data
# ```
#
# or edit the parameters cell at the top. The map is then comparable with the paper's figure and
# the table with its numbers (the paper reports mean ± sd over 3 seeds: change `SEED` and rerun).
# The same run from the command line:
# `tsimcne-nb fit --dataset pcam --budget paper --device cuda --out runs/pcam`.
#
# PCam is large: with the paper budget, training takes many GPU hours (the paper used batch 512).
# `SUBSET=50000` gives a faithful map in a fraction of the time.
