# %% [markdown]
# # Quickstart: a t-SimCNE map of (synthetic) blood cells
#
# **t-SimCNE** (Böhm et al., ICLR 2023) trains a ResNet with a contrastive loss whose output
# is *two-dimensional*: the network itself draws the map. Two randomly augmented views of the
# same image are pulled together, all other images pushed apart, with the heavy-tailed
# Cauchy kernel of t-SNE. The paper this package follows ("Self-supervised visualisation of
# microscopy datasets") adds rotation augmentations for microscopy.
#
# This notebook runs on a CPU in a few minutes, without downloading anything:
#
# 1. look at the data, 2. preview the augmentations, 3. train, 4. evaluate against t-SNE of
# the pixels, 5. explore the map interactively, 6. save and load the model, 7. place new
# images on the map.
#
# The data is **synthetic**: procedurally drawn blood-smear images
# (`tsimcne_nb.data.synthetic`), so nothing here says anything about real blood. The dataset
# notebooks (`01_leukemia` ... `05_pcam`) run the same steps on the paper's datasets.

# %% tags=["parameters"]
N_IMAGES = 3000       # synthetic images to generate (the quick budget takes ~3 min per 1,000 on 2 cores)
BUDGET = "quick"      # "quick" (CPU, minutes) or "paper" (the published recipe; GPU)
DEVICE = "auto"       # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "mps"
SUBSET = None         # int: use only this many images (overrides N_IMAGES)
SEED = 0              # seed of everything random
EPOCHS = None         # None: the budget's epochs; or (stage 1, stage 2, stage 3)
DATA_ROOT = None      # unused here (the data is generated); kept for a uniform interface
OUT_DIR = "quickstart-output"   # where the model is saved (relative to this notebook)

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
# ## 1. The data: look before you embed
#
# `load_dataset` returns an `ImageDataset`: uint8 images `(N, H, W, 3)`, integer labels,
# class names and a metadata table. `synthetic-blood` is generated on the fly (image *i*
# depends only on the seed and *i*). A contact sheet (one row per class) is the first thing
# to look at with any dataset: how different are the classes, and how much do images within
# a class vary?

# %%
from tsimcne_nb import contact_sheet, load_dataset, plot_map, plot_panels

dataset = load_dataset("synthetic-blood", n=int(SUBSET or N_IMAGES), random_state=SEED)
TAG = " [SYNTHETIC data]"
print(dataset)
dataset.metadata.head()

# %%
contact_sheet(dataset, n_per_class=10, title="synthetic-blood: examples per class (SYNTHETIC)")

# %% [markdown]
# ## 2. Augmentations: what the network learns to ignore
#
# t-SimCNE learns that two augmented views of one image belong together, so whatever the
# augmentation changes is what the map will *ignore*. The three presets of the paper:
#
# * `default`: random crops, horizontal flips, colour jitter, grayscale (SimCLR's set);
# * `rot90`: plus vertical flips and 90° rotations (cells have no "up");
# * `randrot`: plus a random rotation by up to ±45°, corners filled with the dataset's mean
#   border colour.
#
# Each row shows one image and views of it. Move the sliders (in a live notebook) to see what
# a stronger or weaker augmentation does. What to look for: would *you* still recognise the
# cell type in every view? If not, the augmentation is too strong for this data.

# %%
from tsimcne_nb.widgets import AugmentationGallery

gallery = AugmentationGallery(dataset, presets=("default", "rot90", "randrot"), n_images=2,
                              n_views=6, random_state=SEED)
gallery.display()

# %% [markdown]
# ## 3. Train
#
# `TSimCNE` follows scikit-learn: parameters in the constructor, `fit`/`fit_transform`,
# `transform` for new images. Training has three stages: (1) a 128-d contrastive
# pre-training, (2) a new 2-D output layer trained alone, (3) everything fine-tuned in 2-D.
# The `quick` budget is a CPU-sized version of the paper's 1000 + 50 + 450 epochs; its maps
# are coarser. A progress bar shows each stage.

# %%
import time

from tsimcne_nb import TSimCNE

model = TSimCNE(augment="randrot", budget=budget, device=DEVICE, random_state=SEED)
t0 = time.perf_counter()
embedding = model.fit_transform(dataset)
print(f"trained on {len(dataset)} images in {time.perf_counter() - t0:.0f} s; "
      f"epochs {model.total_epochs_}, backbone {model.backbone_}")
model.history_.groupby("stage")["loss"].agg(["first", "last"])

# %%
plot_map(embedding, dataset.labels, dataset.class_names,
         title=f"t-SimCNE map of synthetic-blood{TAG}")

# %% [markdown]
# What to look for: one island per class is the ideal; classes that share an island are
# ones the network finds similar. Compare with the contact sheet above: would you confuse
# those classes too? Points are coloured by label, but the labels were never used in
# training. (A smoke-sized run with a handful of epochs gives an unstructured cloud; the
# default parameters give islands.)
#
# ## 4. Evaluate: is the map better than t-SNE of the pixels?
#
# kNN accuracy (k = 15, 9:1 split of the 2-D points) asks whether neighbours on the map share
# a class; the silhouette score whether classes form separate islands. The baseline is what
# you would do without t-SimCNE: t-SNE of the raw pixel values.

# %%
from tsimcne_nb import evaluate, per_class_report, tsne_pixels

metrics = evaluate(embedding, dataset.labels, random_state=SEED)
pixels = tsne_pixels(dataset, random_state=SEED)
metrics_pixels = evaluate(pixels, dataset.labels, random_state=SEED)
print("t-SimCNE metrics:", {k: round(float(v), 4) for k, v in metrics.items()})
pd.DataFrame({"t-SimCNE": metrics, "t-SNE of pixels": metrics_pixels}).T.round(3)

# %%
plot_panels(
    [(f"t-SNE of pixels\nkNN {100 * metrics_pixels['knn_accuracy']:.1f}%", pixels),
     (f"t-SimCNE\nkNN {100 * metrics['knn_accuracy']:.1f}%", embedding)],
    dataset.labels, dataset.class_names, suptitle=f"synthetic-blood{TAG}",
)

# %% [markdown]
# Which classes does the map mix up? The per-class kNN report answers that (recall per
# class, and the class each is most often confused with).

# %%
per_class_report(embedding, dataset.labels, dataset.class_names, random_state=SEED)

# %% [markdown]
# ## 5. Explore the map yourself
#
# The explorer is a zoomable WebGL scatter plot (jupyter-scatter) linked to a panel of thumbnails,
# under a toolbar. **Hold Shift and drag** on the map to draw a lasso (or use the lasso button of
# the map's own toolbar, or press and hold): the selected images appear on the right. **Click a
# legend entry** to select a class (Shift-click adds one), or type a **search** such as
# `label == band` or `brightness > 0.8`. **Hover** a point to see its image; click a thumbnail to
# mark its point. Tag the selection with a tag button or its number key (1-9, with the pointer
# over the map), or type a new tag; *export* writes the tags to CSV or parquet. Things to look
# for: what separates two islands of the same class, which images sit between classes
# (ambiguous or mislabelled?), and whether small islands are a biological subtype or an
# artefact (staining, focus, debris). In a static copy of this notebook (GitHub, nbviewer) you
# see a PNG of the map, in the same colours, instead.
#
# Two panels under the map follow the lasso and thumbnail clicks. **Explain the selection**
# (`SelectionExplainer`): its class make-up against the whole data, histograms of image
# properties against the rest, its kNN purity on the map, and the clicked image large.
# **What only a parametric map shows** (`ParametricPanel`): for the clicked image, the
# augmentations it was trained with, and its nearest neighbours in the network's feature space
# beside its neighbours on the map (where they differ, the 2-D map distorts); images you upload
# there are placed on the map with `transform`.

# %%
from tsimcne_nb.widgets import Explorer, ParametricPanel, SelectionExplainer

# (the explorer adds "(synthetic data)" to the title of synthetic data itself)
explorer = Explorer(embedding, dataset, model=model, title="synthetic-blood")
explainer = SelectionExplainer(explorer)
parametric = ParametricPanel(explorer)  # uses the explorer's model
explainer.attach()
parametric.attach()
explorer

# %% [markdown]
# ### Select, explain, tag, export, reload
#
# Everything the mouse does, code does too. **Select**: the 150 points nearest to the middle of
# the band cells' island, as a lasso around it would.

# %%
band = dataset.class_names.index("band")
centre = np.median(embedding[dataset.labels == band], axis=0)
nearest = np.argsort(np.linalg.norm(embedding - centre, axis=1))[:150]
explorer.select(nearest)
print(f"{len(explorer.selected)} points selected")

# %% [markdown]
# **Explain**: the explain panel under the map has followed the selection. Which classes make it
# up (a clean island is almost one class; a mix points at classes the map, or the labels, cannot
# tell apart), and how well does the map keep it together (kNN purity: the share of each
# selected point's 15 map neighbours that are selected too, against what a random set of this
# size would get)?

# %%
summary = explainer.summary
print(f"{summary.n_selected} selected; kNN purity {summary.purity_inside:.0%} "
      f"(random set: {summary.expected_inside:.0%}); same label {summary.purity_label:.0%}")
summary.classes[["name", "count", "share", "share_all", "enrichment"]].round(2)

# %% [markdown]
# Click a thumbnail (here: `explorer.focus`) and the parametric panel shows that image's
# augmentations and its neighbours in feature space and on the map. Few shared neighbours,
# compared with the map's typical overlap, mark a place where the 2-D map distorts.

# %%
explorer.focus(int(nearest[0]))
shown = parametric.result
typical = np.median(parametric.baseline_overlaps())
print(f"point {shown['index']}: {len(shown['shared'])} of its {shown['k']} feature-space "
      f"neighbours are also map neighbours (typical on this map: {typical * shown['k']:.0f})")

# %% [markdown]
# **Tag** the selection (a tag button or number key does the same), and say why: the reason,
# who tagged and when are kept with every tag.

# %%
explorer.tag_selection("looked-at", why="the band island, quickstart")
explorer.tag_frame().head(3)

# %% [markdown]
# **Export** the tags as a table for other tools, and **save the review** (tags with
# who/when/why, hand-set or suggested, and the selection) next to the data. Both refuse to
# overwrite a file unless asked (here the notebook replaces its own output).

# %%
from pathlib import Path

Path(OUT_DIR).mkdir(parents=True, exist_ok=True)
tags_csv = explorer.export(Path(OUT_DIR) / "quickstart-tags.csv", overwrite=True)
review = explorer.save_review(Path(OUT_DIR) / "quickstart.review.parquet", overwrite=True)
print(f"wrote {tags_csv} and {review}")

# %% [markdown]
# **Reload**: a new explorer (tomorrow, in another notebook) picks the review up where it was left.

# %%
again = Explorer(embedding, dataset, title="synthetic-blood, reloaded")
again.load_review(review)
print(f"tags {sorted(again.tags)}; {len(again.tags['looked-at'])} tagged; "
      f"selection of {len(again.selected)} points restored")

# %% [markdown]
# ## 6. Save the model, load it again
#
# `save` writes one file with the weights, parameters, augmentation, training history, the
# training map and a manifest (versions, seed, device, timings). It refuses to overwrite an
# existing file unless `overwrite=True` (here the notebook replaces its own output). A
# GPU-trained model loads on a CPU.

# %%
from pathlib import Path

path = model.save(Path(OUT_DIR) / "tsimcne-synthetic-blood.pt", overwrite=True)
loaded = TSimCNE.load(path, device=DEVICE)
same = np.allclose(loaded.transform(dataset.images[:64]), model.transform(dataset.images[:64]),
                   atol=1e-4)
print(f"saved to {path} ({path.stat().st_size / 1e6:.1f} MB); loaded model gives the same map: {same}")

# %% [markdown]
# ## 7. Place new images on the map
#
# `transform` embeds images the model has never seen, without retraining: a new batch of
# cells lands next to the cells it resembles. Here the new images are synthetic cells drawn
# with another seed; in practice, new patients or a new batch of slides. A kNN classifier on
# the map then suggests a class for each new image.

# %%
from sklearn.neighbors import KNeighborsClassifier

from tsimcne_nb import make_synthetic_blood

new = make_synthetic_blood(n=30, random_state=SEED + 1)
new_xy = loaded.transform(new.images)
knn = KNeighborsClassifier(n_neighbors=15).fit(embedding, dataset.labels)
suggested = np.asarray(dataset.class_names)[knn.predict(new_xy)]
print(f"kNN on the map agrees with the true class of {np.mean(suggested == new.label_names):.0%} "
      "of the new images")
new_idx = parametric.place(new.images)  # what the panel's upload button does
explorer

# %% [markdown]
# The new points are placed with the model's `transform`, shown in their own colour
# (category "new") and selected, so their thumbnails appear in the panel.
#
# ## Next
#
# * `01_leukemia` ... `05_pcam`: the paper's datasets, with its numbers and figures;
# * `baselines`: t-SimCNE against t-SNE of pixels, of ImageNet features, of SimCLR/BYOL;
# * `quality_control`: finding duplicates and artefacts with the map;
# * `augmentations`: the ablation and the CIFAR-10 control experiment.
#
# Your own images: `load_dataset("folder:/path/to/images")` (one sub-folder per class) or
# `load_dataset("npz:/path/to/file.npz")`.
