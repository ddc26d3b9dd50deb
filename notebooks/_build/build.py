"""Write the tutorial notebooks (outputs empty) into notebooks/: ``python notebooks/_build/build.py``."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SETUP, TAG_AND_SUMMARY, code, load_cell, md, paper_frame, params, save  # noqa: E402

OUT = str(Path(__file__).resolve().parents[1])

STD_PARAMS = '''
DATA_ROOT = None      # folder with the data files; None: $TSIMCNE_DATA or ~/.tsimcne_nb/data
DOWNLOAD = False      # True: download missing files (needs internet){download_note}
BUDGET = "quick"      # "quick" (CPU, minutes; coarser maps) or "paper" (the published recipe, GPU)
DEVICE = "auto"       # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:1", "mps"
SUBSET = None         # int: use a stratified subset of this many images; None: see QUICK_SUBSET
QUICK_SUBSET = {quick_subset}   # with BUDGET="quick" and SUBSET=None, this many images (None: all)
SEED = 0              # seed of everything random (training, subsets, splits)
EPOCHS = None         # None: the budget's epochs; or (stage 1, stage 2, stage 3), e.g. (100, 10, 50)
STANDIN_N = 2000      # images in the SYNTHETIC stand-in used when the real data is absent (quick only)
'''

SUBSET_RULE = '''
# With the quick budget a stratified subset keeps a CPU run to minutes; the paper budget uses all
# images unless SUBSET says otherwise.
if SUBSET is None and BUDGET == "quick" and QUICK_SUBSET is not None and len(dataset) > QUICK_SUBSET:
    dataset = dataset.stratified_subset(int(QUICK_SUBSET), random_state=SEED)
    print(f"quick budget: using a stratified subset of {len(dataset)} images")
'''

GALLERY = '''
from tsimcne_nb.widgets import AugmentationGallery

gallery = AugmentationGallery(dataset, presets=("default", "rot90", "randrot"), n_images=2,
                              n_views=6, random_state=SEED)
gallery.display()
'''

TRAIN = '''
import time

from tsimcne_nb import TSimCNE

model = TSimCNE(augment=AUGMENT, budget={budget_expr}, device=DEVICE, random_state=SEED)
t0 = time.perf_counter()
embedding = model.fit_transform(dataset)
print(f"trained on {{len(dataset)}} images in {{time.perf_counter() - t0:.0f}} s; "
      f"epochs {{model.total_epochs_}}, batch {{model.batch_size_}}, backbone {{model.backbone_}}")
# the loss at the start and end of each stage: it should go down within every stage
model.history_.groupby("stage")["loss"].agg(["first", "last"])
'''

PRESETS_MD = '''
## {n}. Metrics next to the paper's

Two numbers summarise a labelled map (the paper, Section 4):

* **kNN accuracy**: a 15-nearest-neighbour classifier trained on 90% of the *2-D points* predicts
  the class of the other 10%. High means that neighbours on the map share a class.
* **Silhouette score**: how much closer points are to their own class than to the nearest other
  class, from -1 to 1. High means classes form separate islands.

Below, the map you just trained and (with `COMPARE_PRESETS=True`) the other two augmentation
presets plus t-SNE of the raw pixels, next to the paper's numbers. With the quick budget, a subset
or stand-in data, expect lower numbers than the paper: the comparison shows the *ranking* and the
size of the gap, not a reproduction. `BUDGET="paper"` on a GPU with all images is the
reproduction.
'''

METRICS = '''
from tsimcne_nb.eval.compare import METHODS, compare
from tsimcne_nb.eval.metrics import evaluate

metrics = evaluate(embedding, dataset.labels, random_state=SEED)
print("metrics of your map:", {{k: round(float(v), 4) for k, v in metrics.items()}})

# The paper's Tables 2 and 3 for {title} (kNN accuracy in %, silhouette).
PAPER = {paper}

ours = {{METHODS[f"tsimcne-{{AUGMENT}}"].label: (100 * metrics["knn_accuracy"], metrics["silhouette"])}}
result = None
if COMPARE_PRESETS:
    others = [f"tsimcne-{{p}}" for p in ("default", "rot90", "randrot") if p != AUGMENT]
    result = compare(dataset, methods=others + ["tsne-pixels"], seeds=[SEED], budget={budget_expr},
                     device=DEVICE, progress=False)
    for r in result.records:
        ours[r["label"]] = (100 * r["knn_accuracy"], r["silhouette"])

column = "your synthetic run" if dataset.synthetic else "your run"
if dataset.synthetic:
    print("Your numbers come from SYNTHETIC stand-in data: they are NOT comparable with the paper's.")
table = pd.DataFrame(
    [(m, *PAPER.get(m, (np.nan, np.nan)), *v) for m, v in ours.items()],
    columns=["method", "paper kNN %", "paper silhouette", f"{{column}} kNN %", f"{{column}} silhouette"],
).set_index("method").round(2)
table
'''

EXPLORER_MD = '''
## {n}. Explore the map yourself

The explorer is a zoomable WebGL scatter plot (jupyter-scatter) linked to a panel of thumbnails.
**Lasso-select** a region (hold Shift and drag) and its images appear on the right; **hover** a point
to see its image; click a thumbnail to find its point. Things to look for: what separates two
islands of the same class, which images sit between classes (ambiguous or mislabelled?), and
whether small islands are a biological subtype or an artefact (staining, focus, debris). In a
static copy of this notebook (GitHub, nbviewer) you see a PNG of the map instead.
'''

GPU_MD = '''
## {n}. Reproducing the paper on a GPU

Run this notebook with the paper's recipe (1000 + 50 + 450 epochs, batch {batch}, ResNet18) on
a GPU, for example with [papermill](https://papermill.readthedocs.io):

```bash
pip install papermill
papermill {fname} {stem}-paper.ipynb -p BUDGET paper -p DEVICE cuda -p DATA_ROOT /path/to/data
```

or edit the parameters cell at the top. The map is then comparable with the paper's figure and
the table with its numbers (the paper reports mean ± sd over 3 seeds: change `SEED` and rerun).
The same run from the command line:
`tsimcne-nb fit --dataset {name} --budget paper --device cuda --out runs/{name}`.
'''


def std_params(quick_subset: str = "5000", download_note: str = "", extra: str = "") -> str:
    return STD_PARAMS.format(quick_subset=quick_subset, download_note=download_note) + extra


# ----------------------------------------------------------------------------- quickstart
def quickstart():
    cells = [
        md('''
        # Quickstart: a t-SimCNE map of (synthetic) blood cells

        **t-SimCNE** (Böhm et al., ICLR 2023) trains a ResNet with a contrastive loss whose output
        is *two-dimensional*: the network itself draws the map. Two randomly augmented views of the
        same image are pulled together, all other images pushed apart, with the heavy-tailed
        Cauchy kernel of t-SNE. The paper this package follows ("Self-supervised visualisation of
        microscopy datasets") adds rotation augmentations for microscopy.

        This notebook runs on a CPU in a few minutes, without downloading anything:

        1. look at the data, 2. preview the augmentations, 3. train, 4. evaluate against t-SNE of
        the pixels, 5. explore the map interactively, 6. save and load the model, 7. place new
        images on the map.

        The data is **synthetic**: procedurally drawn blood-smear images
        (`tsimcne_nb.data.synthetic`), so nothing here says anything about real blood. The dataset
        notebooks (`01_leukemia` ... `05_pcam`) run the same steps on the paper's datasets.
        '''),
        params('''
        N_IMAGES = 3000       # synthetic images to generate (the quick budget takes ~1 min per 1000 on 2 cores)
        BUDGET = "quick"      # "quick" (CPU, minutes) or "paper" (the published recipe; GPU)
        DEVICE = "auto"       # "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "mps"
        SUBSET = None         # int: use only this many images (overrides N_IMAGES)
        SEED = 0              # seed of everything random
        EPOCHS = None         # None: the budget's epochs; or (stage 1, stage 2, stage 3)
        DATA_ROOT = None      # unused here (the data is generated); kept for a uniform interface
        OUT_DIR = "quickstart-output"   # where the model is saved (relative to this notebook)
        '''),
        code(SETUP),
        md('''
        ## 1. The data: look before you embed

        `load_dataset` returns an `ImageDataset`: uint8 images `(N, H, W, 3)`, integer labels,
        class names and a metadata table. `synthetic-blood` is generated on the fly (image *i*
        depends only on the seed and *i*). A contact sheet (one row per class) is the first thing
        to look at with any dataset: how different are the classes, and how much do images within
        a class vary?
        '''),
        code('''
        from tsimcne_nb import load_dataset
        from tsimcne_nb import viz as figures

        dataset = load_dataset("synthetic-blood", n=int(SUBSET or N_IMAGES), random_state=SEED)
        TAG = " [SYNTHETIC data]"
        print(dataset)
        dataset.metadata.head()
        '''),
        code('''
        figures.contact_sheet(dataset, n_per_class=10, title="synthetic-blood: examples per class (SYNTHETIC)")
        '''),
        md('''
        ## 2. Augmentations: what the network learns to ignore

        t-SimCNE learns that two augmented views of one image belong together, so whatever the
        augmentation changes is what the map will *ignore*. The three presets of the paper:

        * `default`: random crops, horizontal flips, colour jitter, grayscale (SimCLR's set);
        * `rot90`: plus vertical flips and 90° rotations (cells have no "up");
        * `randrot`: plus a random rotation by up to ±45°, corners filled with the dataset's mean
          border colour.

        Each row shows one image and views of it. Move the sliders (in a live notebook) to see what
        a stronger or weaker augmentation does. What to look for: would *you* still recognise the
        cell type in every view? If not, the augmentation is too strong for this data.
        '''),
        code(GALLERY),
        md('''
        ## 3. Train

        `TSimCNE` follows scikit-learn: parameters in the constructor, `fit`/`fit_transform`,
        `transform` for new images. Training has three stages: (1) a 128-d contrastive
        pre-training, (2) a new 2-D output layer trained alone, (3) everything fine-tuned in 2-D.
        The `quick` budget is a CPU-sized version of the paper's 1000 + 50 + 450 epochs; its maps
        are coarser. A progress bar shows each stage.
        '''),
        code('''
        import time

        from tsimcne_nb import TSimCNE

        model = TSimCNE(augment="randrot", budget=budget, device=DEVICE, random_state=SEED)
        t0 = time.perf_counter()
        embedding = model.fit_transform(dataset)
        print(f"trained on {len(dataset)} images in {time.perf_counter() - t0:.0f} s; "
              f"epochs {model.total_epochs_}, backbone {model.backbone_}")
        model.history_.groupby("stage")["loss"].agg(["first", "last"])
        '''),
        code('''
        figures.plot_map(embedding, dataset.labels, dataset.class_names,
                         title=f"t-SimCNE map of synthetic-blood{TAG}")
        '''),
        md('''
        What to look for: one island per class is the ideal; classes that share an island are
        ones the network finds similar. Compare with the contact sheet above: would you confuse
        those classes too? Points are coloured by label, but the labels were never used in
        training. (A smoke-sized run with a handful of epochs gives an unstructured cloud; the
        default parameters give islands.)

        ## 4. Evaluate: is the map better than t-SNE of the pixels?

        kNN accuracy (k = 15, 9:1 split of the 2-D points) asks whether neighbours on the map share
        a class; the silhouette score whether classes form separate islands. The baseline is what
        you would do without t-SimCNE: t-SNE of the raw pixel values.
        '''),
        code('''
        from tsimcne_nb.eval.baselines import tsne_pixels
        from tsimcne_nb.eval.metrics import evaluate, per_class_report

        metrics = evaluate(embedding, dataset.labels, random_state=SEED)
        pixels = tsne_pixels(dataset, random_state=SEED)
        metrics_pixels = evaluate(pixels, dataset.labels, random_state=SEED)
        print("t-SimCNE metrics:", {k: round(float(v), 4) for k, v in metrics.items()})
        pd.DataFrame({"t-SimCNE": metrics, "t-SNE of pixels": metrics_pixels}).T.round(3)
        '''),
        code('''
        figures.plot_panels(
            [(f"t-SNE of pixels\\nkNN {100 * metrics_pixels['knn_accuracy']:.1f}%", pixels),
             (f"t-SimCNE\\nkNN {100 * metrics['knn_accuracy']:.1f}%", embedding)],
            dataset.labels, dataset.class_names, suptitle=f"synthetic-blood{TAG}",
        )
        '''),
        md('''
        Which classes does the map mix up? The per-class kNN report answers that (recall per
        class, and the class each is most often confused with).
        '''),
        code('''
        per_class_report(embedding, dataset.labels, dataset.class_names, random_state=SEED)
        '''),
        md(EXPLORER_MD.format(n=5)),
        code('''
        from tsimcne_nb.widgets import Explorer

        # (the explorer adds "(synthetic data)" to the title of synthetic data itself)
        explorer = Explorer(embedding, dataset, model=model, title="synthetic-blood")
        explorer
        '''),
        md('''
        Everything you can do with the mouse you can also do in code: select points, read the
        selection as a table, tag images (e.g. to exclude them later) and export the tags.
        '''),
        code('''
        bands = np.flatnonzero(dataset.labels == dataset.class_names.index("band"))
        explorer.select(bands[:20])
        explorer.tag("looked-at")
        explorer.selection_frame().head()
        '''),
        md('''
        ## 6. Save the model, load it again

        `save` writes one file with the weights, parameters, augmentation, training history, the
        training map and a manifest (versions, seed, device, timings). It refuses to overwrite an
        existing file unless `overwrite=True` (here the notebook replaces its own output). A
        GPU-trained model loads on a CPU.
        '''),
        code('''
        from pathlib import Path

        path = model.save(Path(OUT_DIR) / "tsimcne-synthetic-blood.pt", overwrite=True)
        loaded = TSimCNE.load(path, device=DEVICE)
        same = np.allclose(loaded.transform(dataset.images[:64]), model.transform(dataset.images[:64]),
                           atol=1e-4)
        print(f"saved to {path} ({path.stat().st_size / 1e6:.1f} MB); loaded model gives the same map: {same}")
        '''),
        md('''
        ## 7. Place new images on the map

        `transform` embeds images the model has never seen, without retraining: a new batch of
        cells lands next to the cells it resembles. Here the new images are synthetic cells drawn
        with another seed; in practice, new patients or a new batch of slides. A kNN classifier on
        the map then suggests a class for each new image.
        '''),
        code('''
        from sklearn.neighbors import KNeighborsClassifier

        from tsimcne_nb import make_synthetic_blood

        new = make_synthetic_blood(n=30, random_state=SEED + 1)
        new_xy = loaded.transform(new.images)
        knn = KNeighborsClassifier(n_neighbors=15).fit(embedding, dataset.labels)
        suggested = np.asarray(dataset.class_names)[knn.predict(new_xy)]
        print(f"kNN on the map agrees with the true class of {np.mean(suggested == new.label_names):.0%} "
              "of the new images")
        new_idx = explorer.add_points(new.images, model=loaded)
        explorer
        '''),
        md('''
        The new points are shown in their own colour and selected, so their thumbnails appear in
        the panel.

        ## Next

        * `01_leukemia` ... `05_pcam`: the paper's datasets, with its numbers and figures;
        * `baselines`: t-SimCNE against t-SNE of pixels, of ImageNet features, of SimCLR/BYOL;
        * `quality_control`: finding duplicates and artefacts with the map;
        * `augmentations`: the ablation and the CIFAR-10 control experiment.

        Your own images: `load_dataset("folder:/path/to/images")` (one sub-folder per class) or
        `load_dataset("npz:/path/to/file.npz")`.
        '''),
    ]
    save(cells, f"{OUT}/00_quickstart.ipynb")


# ----------------------------------------------------------------------------- datasets
def dataset_notebook(fname, name, title, intro, get_data, augment, paper, structure_md, structure_code,
                     quick_subset="3000", load_options="", standin_options="", extra_params="",
                     after_load="", explorer_extra="", download_note="", batch="1024",
                     budget_expr="budget", gpu_extra="", before_load=""):
    stem = fname.rsplit(".", 1)[0]
    cells = [
        md(intro),
        params(std_params(quick_subset, download_note, f'''AUGMENT = "{augment}"    # the preset of the main map: "default", "rot90" or "randrot"
COMPARE_PRESETS = True  # also train the other two presets and t-SNE of pixels (for the table)
''' + extra_params)),
        code(SETUP),
        md(get_data),
        code(before_load + load_cell(repr(name), load_options, standin_options) + SUBSET_RULE + after_load
             + TAG_AND_SUMMARY),
        md('''
        ### Look before you embed

        One row per class. How different do the classes look, and how much do images vary within a
        class (staining, focus, size)? The map will reflect both.
        '''),
        code('''
        from tsimcne_nb import viz as figures

        figures.contact_sheet(dataset, n_per_class=10, title=f"{dataset.name}: examples per class{TAG}")
        '''),
        md('''
        ## 2. The three augmentation presets

        Whatever an augmentation changes, the map learns to ignore. The paper compares:

        * `default`: crops, horizontal flips, colour jitter, grayscale (SimCLR's set, as in t-SimCNE);
        * `rot90`: plus vertical flips and 90° rotations, so all 8 symmetries of the square are
          equally likely (a cell or a tissue patch has no "up");
        * `randrot`: plus a rotation by an angle in [-45°, 45°]; the corners are filled with the
          mean border colour of the whole dataset.
        '''),
        code(GALLERY),
        md(f'''
        ## 3. Train t-SimCNE

        Three stages: 128-d contrastive pre-training, a new 2-D output layer trained alone, then
        everything fine-tuned in 2-D. `AUGMENT="{augment}"` is the preset the paper found best for
        this kind of data. With the quick budget this takes minutes on a CPU.
        '''),
        code(TRAIN.format(budget_expr=budget_expr)),
        code('''
        figures.plot_map(embedding, dataset.labels, dataset.class_names,
                         title=f"{dataset.name}: t-SimCNE ({AUGMENT}){TAG}")
        '''),
        md(PRESETS_MD.format(n=4)),
        code(METRICS.format(title=title, paper=paper_frame(paper), budget_expr=budget_expr)),
        md(structure_md),
        code(structure_code),
        md(EXPLORER_MD.format(n=6)),
        code(f'''
        from tsimcne_nb.widgets import Explorer

        explorer = Explorer(embedding, dataset, model=model{explorer_extra},
                            title=f"{{dataset.name}} ({{AUGMENT}})")
        explorer
        '''),
        md(GPU_MD.format(n=7, batch=batch, fname=fname, stem=stem, name=name) + gpu_extra),
    ]
    save(cells, f"{OUT}/{fname}")


def leukemia():
    dataset_notebook(
        "01_leukemia.ipynb", "leukemia", "Leukemia",
        intro='''
        # Leukemia (AML-Cytomorphology_LMU): white blood cells of AML patients

        18,365 single-cell images from peripheral blood smears of 100 patients with acute myeloid
        leukaemia and 100 controls (Matek et al., 2019), labelled by cytologists into 15 types. As
        in the paper, images are resized to 28x28 and the classes with fewer than 80 cells are
        merged into `OTH`, leaving 7 classes. This notebook trains t-SimCNE, compares its numbers
        with the paper's Tables 2 and 3, makes the paper's Figure 2 from your run and looks at the
        small erythroblast (EBO) class.

        Runtime with the quick budget: roughly 15 minutes on 2 CPU cores (three maps of a 3,000-image
        subset; about 5 with `COMPARE_PRESETS = False`). Without the
        data, the quick run uses **SYNTHETIC stand-in files** and says so.
        ''',
        get_data='''
        ## 1. Get the data

        The download is **manual** (about 11 GB, The Cancer Imaging Archive does not allow scripted
        downloads without its own tool):

        1. Open <https://www.cancerimagingarchive.net/collection/aml-cytomorphology_lmu/> and
           download `AML-Cytomorphology_LMU` (with the NBIA Data Retriever or as a zip).
        2. Unpack it so that you have `AML-Cytomorphology_LMU/<ABBR>/<ABBR>_NNNN.tiff` (one folder
           per cell type: NGS, LYT, MYO, MON, EOS, ...).
        3. Set `DATA_ROOT` to the folder that *contains* `AML-Cytomorphology_LMU` (or put it in
           `~/.tsimcne_nb/data/leukemia/`).

        The first load reads and resizes the 18k TIFFs (a few minutes) and caches the result next
        to the data. `load_dataset` explains what is missing if the folder is not found. Licence:
        CC BY 3.0 (TCIA).
        ''',
        augment="randrot",
        paper={"t-SimCNE default augm.": (86.3, 0.13), "t-SimCNE +90° rot.": (94.4, 0.33),
               "t-SimCNE +rand. rot.": (95.1, 0.52), "t-SNE pixel space": (69.0, -0.09),
               "t-SNE ResNet18 (ImageNet)": (82.0, -0.11), "t-SNE of SimCLR default": (95.0, 0.21)},
        download_note=" (not possible for this dataset: see below)",
        structure_md='''
        ## 5. Structure worth looking at: the paper's Figure 2 and the EBO cells

        Figure 2 of the paper puts t-SNE of pixels next to t-SimCNE with default and with rotation
        augmentations: classes that are one smear in pixel space become islands. It also points
        out the **erythroblasts (EBO)**: only 78 cells, yet a separate island with rotations.
        By the paper's "fewer than 80 cells" rule EBO is merged into `OTH`, so the class label
        hides it; the loader keeps each image's original type in `dataset.metadata["abbr"]`, and
        the call-out below shows where the EBO cells are and what they look like. A small,
        well-separated island of one original type inside `OTH` is exactly what a map is for.
        ''',
        structure_code='''
        panels = (result.panels(seed=SEED) if result is not None else []) + [
            (f"t-SimCNE ({AUGMENT})\\nkNN {100 * metrics['knn_accuracy']:.1f}%, "
             f"sil {metrics['silhouette']:.2f}", embedding)]
        display(figures.plot_panels(panels, dataset.labels, dataset.class_names,
                                    suptitle=f"Leukemia, as in the paper's Figure 2{TAG}"))

        ebo = dataset.metadata["abbr"].to_numpy() == "EBO"
        print(f"{ebo.sum()} EBO (erythroblast) cells in this run, all labelled OTH")
        if ebo.any():
            display(figures.callouts(embedding, dataset, ebo, n_images=min(6, int(ebo.sum())),
                                     title=f"Where the erythroblasts (EBO) are{TAG}"))
        ''',
        explorer_extra=', color_by="abbr"',
    )


def bloodmnist():
    dataset_notebook(
        "02_bloodmnist.ipynb", "bloodmnist", "BloodMNIST",
        intro='''
        # BloodMNIST: 17,092 blood cells in 8 classes

        Single normal blood cells from healthy donors (Acevedo et al., 2020), 28x28 px in MedMNIST
        v2. The paper embeds train, validation and test together. This notebook trains t-SimCNE,
        puts its kNN accuracy and silhouette next to the paper's, and makes the paper's Figure 3b
        from your run.

        Runtime with the quick budget: roughly 15 minutes on 2 CPU cores (three maps of a 3,000-image
        subset; about 5 with `COMPARE_PRESETS = False`). Without the
        data (and `DOWNLOAD=False`) the quick run uses **SYNTHETIC stand-in files** and says so.
        ''',
        get_data='''
        ## 1. Get the data

        BloodMNIST is one 35 MB file, `bloodmnist.npz`, from zenodo
        (<https://zenodo.org/records/10519652>). Set `DOWNLOAD = True` in the parameters cell to
        fetch it (MD5-checked) into `DATA_ROOT` (default `~/.tsimcne_nb/data/medmnist/`), or
        download it yourself and put it there. Larger versions (`bloodmnist_64.npz`, ...) load with
        `load_dataset("bloodmnist", size=64)`. Licence: CC BY 4.0.
        ''',
        augment="randrot",
        paper={"t-SimCNE default augm.": (90.4, 0.40), "t-SimCNE +90° rot.": (93.0, 0.44),
               "t-SimCNE +rand. rot.": (92.9, 0.50), "t-SNE pixel space": (73.2, 0.07),
               "t-SNE ResNet18 (ImageNet)": (78.1, 0.13), "t-SNE of SimCLR default": (94.0, 0.37)},
        structure_md='''
        ## 5. Structure worth looking at: the paper's Figure 3b

        In the paper, rotations gave BloodMNIST the best-separated map of all methods (silhouette
        0.50). Look at where the classes touch: does a class that is a maturation stage of another
        (immature granulocytes, for example) sit next to it? The call-outs show three images near
        the centre of each of a few classes, so you can check whether an island is what its
        colour says.
        ''',
        structure_code='''
        centres = [tuple(np.median(embedding[dataset.labels == c], axis=0))
                   for c in range(dataset.n_classes) if np.any(dataset.labels == c)][:4]
        figures.callouts(embedding, dataset, centres, n_images=3,
                         title=f"BloodMNIST: t-SimCNE ({AUGMENT}), as in the paper's Figure 3b{TAG}")
        ''',
    )


def dermamnist():
    dataset_notebook(
        "03_dermamnist.ipynb", "dermamnist", "DermaMNIST",
        intro='''
        # DermaMNIST: dermatoscopy images, nevus versus everything else

        10,015 dermatoscopic images of pigmented skin lesions (HAM10000) in 7 diagnostic classes,
        28x28 px. Like the paper, the metrics use **2 labels**: melanocytic nevi (67% of the
        images) versus all other lesions. This is the dataset where all methods were similarly
        poor in the paper: the map is coloured by the 7 classes too, so you can see why.

        Runtime with the quick budget: roughly 15 minutes on 2 CPU cores (three maps of a 3,000-image
        subset; about 5 with `COMPARE_PRESETS = False`). Without the
        data (and `DOWNLOAD=False`) the quick run uses **SYNTHETIC stand-in files** and says so.
        ''',
        get_data='''
        ## 1. Get the data

        `dermamnist.npz` (20 MB) from zenodo (<https://zenodo.org/records/10519652>): set
        `DOWNLOAD = True` to fetch it (MD5-checked) into `DATA_ROOT` (default
        `~/.tsimcne_nb/data/medmnist/`), or put it there yourself. Licence: CC BY-NC 4.0
        (non-commercial). The notebook loads the 7 classes and derives the paper's 2 labels.
        ''',
        augment="randrot",
        paper={"t-SimCNE default augm.": (77.3, 0.13), "t-SimCNE +90° rot.": (77.5, 0.11),
               "t-SimCNE +rand. rot.": (80.1, 0.13), "t-SNE pixel space": (78.0, 0.08),
               "t-SNE ResNet18 (ImageNet)": (81.9, 0.14), "t-SNE of SimCLR default": (81.9, 0.14)},
        load_options="labels=7",
        after_load='''
# The paper's 2 labels (melanocytic nevi = class 5 versus the rest) for training metrics; the
# 7-class version is kept for colouring.
dataset7 = dataset
dataset = replace(dataset7, labels=(dataset7.labels == 5).astype(np.int64),
                  class_names=["other", "melanocytic nevi"],
                  name=dataset7.name.replace("-7class", ""), _fingerprint=None)
''',
        structure_md='''
        ## 5. Structure worth looking at: the paper's Figure 3c, by 7 classes

        The paper found DermaMNIST hard for every method: t-SimCNE and SimCLR were not much
        better than t-SNE of pixels (kNN ~78-82%). Coloured by all 7 diagnoses, check what the map
        separates instead: overall colour, lesion size, hair or ruler marks? Use the explorer
        below to look. A 28x28 dermatoscopy image keeps little of the texture a dermatologist
        looks at, which limits every method alike.
        ''',
        structure_code='''
        display(figures.plot_map(embedding, dataset.labels, dataset.class_names,
                                 title=f"DermaMNIST, 2 labels (the paper's metric){TAG}"))
        figures.plot_map(embedding, dataset7.labels, dataset7.class_names,
                         title=f"DermaMNIST, 7 diagnoses, as in the paper's Figure 3c{TAG}")
        ''',
    )


def pathmnist():
    dataset_notebook(
        "04_pathmnist.ipynb", "pathmnist", "PathMNIST",
        intro='''
        # PathMNIST: colorectal cancer histology in 9 tissue classes

        107,180 patches of H&E-stained colorectal tissue (Kather et al., 2019), 28x28 px. The
        paper found 90° rotations best here (pathology has no orientation) and that t-SimCNE shows
        **sub-clusters**: the *debris* class splits into three groups, one with a clearly
        different staining colour. This notebook reproduces that analysis (the paper's Figure 4)
        from your run.

        Runtime with the quick budget: roughly 15 minutes on 2 CPU cores (three maps of a 3,000-image
        subset; about 5 with `COMPARE_PRESETS = False`). Without the
        data (and `DOWNLOAD=False`) the quick run uses **SYNTHETIC stand-in files** and says so.
        ''',
        get_data='''
        ## 1. Get the data

        `pathmnist.npz` (200 MB) from zenodo (<https://zenodo.org/records/10519652>): set
        `DOWNLOAD = True` to fetch it (MD5-checked) into `DATA_ROOT` (default
        `~/.tsimcne_nb/data/medmnist/`), or put it there yourself. Licence: CC BY 4.0.
        ''',
        augment="rot90",
        paper={"t-SimCNE default augm.": (97.2, 0.45), "t-SimCNE +90° rot.": (98.0, 0.48),
               "t-SimCNE +rand. rot.": (97.3, 0.41), "t-SNE pixel space": (56.9, -0.05),
               "t-SNE ResNet18 (ImageNet)": (87.2, 0.17), "t-SNE of SimCLR default": (98.1, 0.23)},
        extra_params='N_DEBRIS_GROUPS = 3   # sub-clusters of the debris class to call out (the paper: 3)\n',
        structure_md='''
        ## 5. Structure worth looking at: the debris sub-clusters (the paper's Figure 4)

        Within one class, a map can show groups the labels do not name. Below, the *debris*
        points are split into `N_DEBRIS_GROUPS` groups by k-means on their 2-D positions, three
        images of each group are called out, and the mean colour of each group is listed. In the
        paper, one debris group had a clearly different staining colour: a technical difference
        between slides, not biology, and exactly the kind of thing to find *before* training a
        classifier on the data.
        ''',
        structure_code='''
        from sklearn.cluster import KMeans

        debris = np.flatnonzero(dataset.labels == dataset.class_names.index("debris"))
        k = min(N_DEBRIS_GROUPS, len(debris))
        groups = KMeans(n_clusters=k, n_init=10, random_state=SEED).fit(embedding[debris])
        display(figures.callouts(embedding, dataset, [tuple(c) for c in groups.cluster_centers_],
                                 n_images=3, title=f"PathMNIST: debris sub-clusters (Figure 4){TAG}"))
        images = dataset.to_numpy()
        pd.DataFrame(
            [(g, int(np.sum(groups.labels_ == g)),
              *images[debris[groups.labels_ == g]].reshape(-1, 3).mean(axis=0).round(1))
             for g in range(k)],
            columns=["debris group", "images", "mean R", "mean G", "mean B"],
        ).set_index("debris group")
        ''',
    )


def pcam():
    dataset_notebook(
        "05_pcam.ipynb", "pcam", "PCam16",
        intro='''
        # PatchCamelyon (PCam16): lymph-node patches, metastasis yes or no

        327,680 patches of 96x96 px from sentinel lymph-node sections (Veeling et al., 2018), label
        1 when the central 32x32 region contains tumour. Two classes only, so the silhouette score
        is close to zero for every method; the map shows much more: tissue types within each
        class and a **staining gradient** (shades of violet from one side of the map to the other,
        likely from different staining durations). This notebook makes the paper's Figure 5, a
        10x10 grid of thumbnails over the map, from your run.

        The images are read lazily from the HDF5 files (the training split is 7 GB), so even the
        full dataset never has to fit in memory. Runtime with the quick budget: roughly 10 minutes on
        2 CPU cores (three maps of a 2,000-image subset at 32 px). Without the data the quick run uses **SYNTHETIC stand-in
        files** and says so.
        ''',
        get_data='''
        ## 1. Get the data

        Six files from zenodo (<https://zenodo.org/records/2546921>),
        `camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5.gz`, about 8 GB together. Set
        `DOWNLOAD = True` to fetch them into `DATA_ROOT` (default `~/.tsimcne_nb/data/pcam/`); they
        are decompressed once, next to themselves. Or download them yourself (plain `.h5` or
        `.h5.gz` both work). The published MD5 sums of the valid and test files are swapped; the
        loader warns instead of failing. Licence: CC0.

        `SIZE` resizes the patches on access. By default the paper budget keeps the paper's 96 px
        and the quick budget uses 32 px (a 96 px CPU run is about ten times slower). Set `SIZE = 96`
        to see full-resolution thumbnails on a CPU anyway.
        ''',
        augment="rot90",
        quick_subset="2000",
        paper={"t-SimCNE default augm.": (92.6, 0.04), "t-SimCNE +90° rot.": (93.1, 0.05),
               "t-SimCNE +rand. rot.": (90.8, 0.05), "t-SNE pixel space": (76.9, 0.02),
               "t-SNE ResNet18 (ImageNet)": (86.7, 0.04), "t-SNE of SimCLR default": (96.3, 0.16)},
        load_options="size=size",
        before_load='''
# 96 px patches train ~10x slower than 32 px ones: the quick budget resizes unless SIZE says otherwise
size = SIZE if SIZE is not None else (None if BUDGET == "paper" else 32)
''',
        standin_options="size=96",
        extra_params='SIZE = None           # resize patches to this side on access; None: 96 px (the paper) with BUDGET="paper", 32 px with "quick"\n',
        download_note=" (about 8 GB)",
        batch="512",
        budget_expr='(replace(budget, batch_size=512) if budget.name.startswith("paper") else budget)',
        structure_md='''
        ## 5. Structure worth looking at: the paper's Figure 5 and the staining gradient

        (a) The map by class. (b) A 10x10 grid over the map with the image nearest each cell's
        centre, framed in its class colour (cells with few points stay empty): you can read the
        map's layout, tissue type by tissue type. (c) Each point coloured by the violet tint of its
        image (mean blue minus mean green). In the paper, shades of violet change from one side of
        the map to the other: a **staining gradient**, a technical artefact that a classifier
        trained on this data could pick up. The linear fit below measures how strongly the tint
        follows the map position.
        ''',
        structure_code='''
        from sklearn.linear_model import LinearRegression

        from tsimcne_nb.data.core import iter_chunks

        display(figures.plot_map(embedding, dataset.labels, dataset.class_names,
                                 title=f"PCam: t-SimCNE ({AUGMENT}), Figure 5a{TAG}"))
        display(figures.thumbnail_grid_over_map(embedding, dataset, grid=10,
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
        ''',
        explorer_extra=', color_by=violet',
        gpu_extra='''
PCam is large: with the paper budget, training takes many GPU hours (the paper used batch 512).
`SUBSET=50000` gives a faithful map in a fraction of the time.
''',
    )


# ----------------------------------------------------------------------------- baselines
def baselines_nb():
    cells = [
        md('''
        # Baselines: t-SimCNE against t-SNE of pixels, ImageNet features, SimCLR and BYOL (Figure 2)

        Is a t-SimCNE map better than what you could get without it? The paper compares it with
        t-SNE (openTSNE, default settings) of

        * the raw **pixels** (PCA to 100 dimensions first for large images);
        * **ImageNet ResNet18/ResNet152 features** (512-d/2048-d, images resized to 224 px);
        * **SimCLR** and **BYOL** features (512-d, self-supervised on the same data),

        all scored with the same kNN accuracy and silhouette. `tsimcne_nb.eval.compare.compare` runs any
        set of these with the paper's protocol, caches every feature set and map (so re-running is
        instant), and returns tables and the panel figure. The default reproduces the paper's
        **Figure 2** (Leukemia: pixels, ResNet18, t-SimCNE default and +90° rotations).

        ImageNet weights need a one-time download (`torchvision` caches them); without them the
        ResNet rows use a randomly initialised network and say so ("NOT ImageNet").
        '''),
        params(std_params("3000", "", '''DATASET = "leukemia"  # any load_dataset name: bloodmnist, pathmnist, ..., synthetic-blood
METHODS = ("tsne-pixels", "tsne-resnet18", "tsimcne-default", "tsimcne-rot90")  # Figure 2
ALL_METHODS = False   # True: every row of the paper's Table 2 (SimCLR/BYOL train for long)
SEEDS = (0,)          # the paper: 3 seeds (0, 1, 2); tables then show mean ± sd
CACHE_DIR = "baselines-cache"   # features and maps are cached here; None: no cache
''')),
        code(SETUP),
        md('''
        ## 1. The data

        As in the dataset notebooks: the real files if present (see `01_leukemia` ... `05_pcam` for
        how to get each), otherwise, with the quick budget, **SYNTHETIC stand-in files** in the
        real format (and the numbers then mean nothing about the real data).
        '''),
        code(load_cell_generic() + SUBSET_RULE + TAG_AND_SUMMARY),
        md('''
        ## 2. Run the comparison

        One map per method and seed. t-SNE runs on the CPU; SimCLR, BYOL and t-SimCNE train a
        ResNet (on `DEVICE`) with the same budget. Each finished map is cached in `CACHE_DIR`.
        '''),
        code('''
        from tsimcne_nb.eval.compare import DEFAULT_METHODS, compare

        methods = list(DEFAULT_METHODS) if ALL_METHODS else list(METHODS)
        result = compare(dataset, methods=methods, seeds=list(SEEDS), budget=budget, device=DEVICE,
                         cache_dir=CACHE_DIR, random_state=SEED)
        for note in result.notes:
            print("note:", note)
        result.table()
        '''),
        md('''
        ## 3. Figure 2, from your run

        One panel per method; the title carries kNN accuracy and silhouette. Classes with fewer
        than 1% of the points are drawn in black as "other", like the paper. What to look for:
        in pixel space, classes are smeared into one cloud (images that are merely brighter or
        rotated are far apart); t-SimCNE draws islands, and rotations make them cleaner.
        '''),
        code('''
        result.figure(seed=SEEDS[0])
        '''),
        md('''
        ## 4. Next to the paper's numbers

        The paper's Tables 2 and 3 (kNN %, silhouette; means over 3 seeds). Your numbers are means
        over `SEEDS`. With the quick budget, a subset or stand-in data they are not a
        reproduction: use `BUDGET="paper"` on a GPU with all images for that.
        '''),
        code('''
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
        '''),
        md('''
        ## 5. Compare the maps point by point

        `LinkedExplorer` shows the maps side by side with one shared selection: lasso a group in
        one map and see where the same images are in the others. A class that is one island in
        t-SimCNE but scattered in pixel space is a class the pixels cannot separate.
        '''),
        code('''
        from tsimcne_nb.widgets import LinkedExplorer

        titles, embeddings = zip(*[(t.split("\\n")[0], e) for t, e in result.panels(seed=SEEDS[0])], strict=True)
        linked = LinkedExplorer(list(embeddings), dataset, titles=list(titles))
        linked
        '''),
        md('''
        ## 6. The paper's full protocol

        All ten rows of Table 2 with three seeds, on a GPU:

        ```bash
        papermill baselines.ipynb baselines-paper.ipynb -p BUDGET paper -p DEVICE cuda \\
            -p ALL_METHODS True -y "SEEDS: [0, 1, 2]" -p DATASET bloodmnist -p DATA_ROOT /path/to/data
        ```

        or from the command line: `tsimcne-nb compare --dataset bloodmnist --seeds 0,1,2
        --budget paper --device cuda --out runs/compare-bloodmnist`. SimCLR and BYOL train for 1000
        epochs each: this is the most expensive notebook.
        '''),
    ]
    save(cells, f"{OUT}/baselines.ipynb")


def load_cell_generic() -> str:
    """load_cell for the dataset named by the DATASET parameter (synthetic-blood needs no files)."""
    body = load_cell("DATASET")
    head, tail = body.split("\nif SUBSET is not None", 1)
    indented = "\n".join(("    " + line) if line.strip() else line for line in head.strip("\n").splitlines())
    return ('''
if DATASET == "synthetic-blood":
    from tsimcne_nb import load_dataset

    dataset = load_dataset("synthetic-blood", n=int(SUBSET or STANDIN_N), random_state=SEED)
    STANDIN = False
else:
''' + indented + "\n\nif SUBSET is not None" + tail)


# ----------------------------------------------------------------------------- quality control
def qc_nb():
    cells = [
        md('''
        # Quality control: duplicates and artefacts form their own islands (Figure 6)

        A map of a whole dataset is a quality-control tool. The paper modified BloodMNIST twice:
        it added **100 near-duplicates** of one image (random crop, Gaussian noise, colour jitter)
        and, separately, **black artefacts** to 50 images. Although they were only 0.6% and 0.3%
        of the data, in both cases the perturbed images formed one cluster of their own
        (Figure 6).

        This notebook repeats that experiment with `tsimcne_nb.qc`: inject, train, let the
        detectors rank suspicious groups (tight clusters on the map, groups that keep to
        themselves in the network's feature space, near-duplicates, images with extreme
        properties), measure whether the injected images are found,
        tag them in the explorer and export an exclusion list. On your own data you skip the
        injection and look at what the report finds.
        '''),
        params(std_params("3000", "", '''DATASET = "bloodmnist"  # the paper's choice; any load_dataset name works
AUGMENT = "randrot"
N_DUPLICATES = 100    # near-duplicates of one image (the paper: 100)
N_ARTEFACTS = 50      # images given black artefacts (the paper: 50)
OUT_DIR = "qc-output" # exclusion lists are written here
''')),
        code(SETUP),
        md('''
        ## 1. The data

        The real BloodMNIST if present (`DOWNLOAD=True` fetches it, 35 MB), otherwise with the
        quick budget **SYNTHETIC stand-in files** in its format.
        '''),
        code(load_cell_generic() + SUBSET_RULE + TAG_AND_SUMMARY),
        md('''
        ## 2. Inject near-duplicates and artefacts

        `inject_duplicates` appends `N_DUPLICATES` perturbed copies of one image;
        `inject_artefacts` paints black blobs into `N_ARTEFACTS` images. Both record what they did
        in the metadata (`qc_injected`), so we can score the detectors afterwards.
        '''),
        code('''
        from tsimcne_nb import qc
        from tsimcne_nb import viz as figures

        with_duplicates = qc.inject_duplicates(dataset, k=N_DUPLICATES, random_state=SEED)
        with_artefacts = qc.inject_artefacts(dataset, m=N_ARTEFACTS, random_state=SEED)
        truth = {"duplicates": qc.injected_mask(with_duplicates, "duplicate"),
                 "artefacts": qc.injected_mask(with_artefacts, "artefact")}
        for kind, mask in truth.items():
            print(f"{kind}: {mask.sum()} of {len(mask)} images ({mask.mean():.1%}) perturbed")
        '''),
        code('''
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
        '''),
        md('''
        ## 3. One map per modified dataset, and the QC report

        For each modified dataset: train t-SimCNE, then `qc_report` ranks suspicious groups using
        the map and the backbone's features (512-d for ResNet18, 128-d for the quick budget's
        narrow ResNet18). `recovery_scores` asks the strict question of the paper: is the
        **single most suspicious group** the injected images (precision) and does it contain all
        of them (recall)? The report's `kind` and `confirmed_by` columns say which detectors
        found each group: with a short training run the perturbed duplicates may not yet be drawn
        as one tight island, while the features already keep them apart (`feature-cluster`).
        '''),
        code('''
        import time

        from tsimcne_nb import TSimCNE

        runs = {}
        for kind, data in [("duplicates", with_duplicates), ("artefacts", with_artefacts)]:
            t0 = time.perf_counter()
            model = TSimCNE(augment=AUGMENT, budget=budget, device=DEVICE, random_state=SEED,
                            progress=False).fit(data)
            emb, feats = model.embedding_, model.features(data)
            report = qc.qc_report(data, emb, feats, random_state=SEED)
            scores = qc.recovery_scores(report, truth[kind], top=1)
            runs[kind] = {"data": data, "embedding": emb, "report": report, "scores": scores}
            print(f"{kind}: trained and checked in {time.perf_counter() - t0:.0f} s")
        pd.DataFrame({k: v["scores"] for k, v in runs.items()}).T
        '''),
        md('''
        ## 4. Figure 6, from your run

        Each map with the perturbed images called out. What to look for: the perturbed images as
        one compact island (or at the tip of one), away from the class they came from.
        '''),
        code('''
        for kind, run in runs.items():
            display(figures.callouts(run["embedding"], run["data"], truth[kind],
                                     n_images=min(10, int(truth[kind].sum())),
                                     title=f"{dataset.name} with {kind} (Figure 6){TAG}"))
        '''),
        md('''
        ## 5. Read the report, tag, export

        The report lists groups best first with their kind, size and evidence; `figure()` shows
        examples of the top groups. `QCReview` steps through the groups in the explorer: each
        group's images as thumbnail cards, its place on the map, and buttons to tag it
        `duplicate`, `artefact` or `keep`. The tags (suggested, then reviewed) are exported as an
        exclusion list to drop those images before training a classifier.
        '''),
        code('''
        report = runs["duplicates"]["report"]
        print(report)
        report.groups[["rank", "kind", "size", "evidence", "confirmed_by"]].head(8)
        '''),
        code('''
        report.figure(top=4, per_group=8)
        '''),
        code('''
        from pathlib import Path

        from tsimcne_nb.widgets import QCReview

        # pick a group: the map selects its members and the panel shows them as thumbnail
        # cards with their suggested tags; the buttons tag the whole group in the report and in
        # the explorer (review.tag_group("keep", rank=2) does the same from code)
        review = QCReview(report, title=f"{dataset.name}: duplicates experiment{TAG}")
        review
        '''),
        code('''
        path = report.export_exclusion_list(Path(OUT_DIR) / "exclusions-duplicates.csv", overwrite=True)
        print(f"exclusion list ({len(report.exclusion_list())} images) written to {path}")
        '''),
        md('''
        ## On your own data

        Skip the injection: train on your data and run `qc.qc_report(dataset, embedding, features)`,
        or from the command line `tsimcne-nb qc --dataset folder:/path/to/images --out runs/qc`.
        With `BUDGET="paper"` on a GPU the islands are sharper and smaller groups become visible.
        '''),
    ]
    save(cells, f"{OUT}/quality_control.ipynb")


# ----------------------------------------------------------------------------- augmentations
def augmentations_nb():
    cells = [
        md('''
        # Augmentations: presets, the ablation (Table 4) and the CIFAR-10 control

        What t-SimCNE learns depends mostly on its augmentations: two augmented views of an image
        are pulled together, so the map becomes *invariant* to whatever the augmentations change.
        This notebook

        1. shows the three presets and how strong each transformation is (interactive gallery);
        2. runs the paper's **ablation** (Table 4): all augmentations versus no crops, no colour
           jitter, no grayscale;
        3. runs the **CIFAR-10 control**: rotations help microscopy, where orientation is
           meaningless, but hurt natural images (the paper: kNN accuracy 89% -> 76%).
        '''),
        params(std_params("2000", "", '''DATASET = "bloodmnist"  # dataset of the gallery and the ablation (the paper: Leukemia, BloodMNIST, PathMNIST)
RUN_ABLATION = True
ABLATION_METHODS = None  # None: all four rows of Table 4; or a list of compare.METHODS names
RUN_CIFAR = True
CIFAR_METHODS = ("tsimcne-default", "tsimcne-rot90", "tsimcne-randrot")
''')),
        code(SETUP),
        md('''
        ## 1. The data

        The real files if present, otherwise (quick budget) **SYNTHETIC stand-in files** in the
        real format.
        '''),
        code(load_cell_generic() + SUBSET_RULE + TAG_AND_SUMMARY),
        md('''
        ## 2. The presets, parameter by parameter

        `make_augmentation(preset, size)` builds the batched augmentation the trainer uses (on
        the training device). `describe()` lists every parameter; `randrot` fills rotated corners
        with the dataset's mean border colour.
        '''),
        code('''
        from tsimcne_nb.nn.augmentations import make_augmentation

        size = dataset.image_shape[0]
        fill = dataset.border_color()
        print("dataset border colour (fills rotated corners):", np.round(fill, 1))
        pd.DataFrame({p: make_augmentation(p, size, fill=fill).describe()
                      for p in ("default", "rot90", "randrot")})
        '''),
        md('''
        ## 3. The gallery

        Each row: an image and views of it under one preset. In a live notebook, move the sliders
        and press *redraw*. What to look for: the views should differ in everything the map should
        ignore (orientation, exact position, stain intensity) but keep what defines a class
        (nucleus shape, granules, texture). Below, the same draw with colour jitter switched off
        and stronger crops, set from code.
        '''),
        code('''
        from tsimcne_nb.widgets import AugmentationGallery

        gallery = AugmentationGallery(dataset, presets=("default", "rot90", "randrot"), n_images=2,
                                      n_views=8, random_state=SEED)
        gallery.display()
        '''),
        code('''
        from IPython.display import Image

        gallery.set_strength(jitter_p=0.0, crop_scale_min=0.08)
        display(Image(gallery.static_png()))
        gallery.reset()
        '''),
        md('''
        ## 4. The ablation (the paper's Table 4)

        t-SimCNE with all augmentations (+ random rotations) and with one of them removed. In the
        paper, removing **crops** hurt most (BloodMNIST kNN 92.9% -> 76.0%), removing colour jitter
        hurt on Leukemia and PathMNIST, and grayscale hardly mattered.
        '''),
        code('''
        from tsimcne_nb.eval.compare import compare

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
        '''),
        md('''
        ## 5. The CIFAR-10 control: rotations hurt natural images

        CIFAR-10 has 60,000 32x32 photos in 10 classes. A photo has an "up": an upside-down ship
        is unusual, and a network taught to ignore rotation throws that cue away. The paper: kNN
        accuracy 89% with default augmentations, 76% with 90° rotations.

        The data: torchvision's `cifar-10-batches-py` (set `DOWNLOAD=True`, 170 MB, or put the
        folder in `~/.tsimcne_nb/data/cifar10/`). Without it, the quick run uses **SYNTHETIC stand-in
        pickles**; these are rotation-invariant blood cells, so on them rotations do *not* hurt:
        the control only works on real photos.
        '''),
        code('''
        from tsimcne_nb import load_dataset
        from tsimcne_nb.data.standins import is_standin, write_standin_files
        from tsimcne_nb.errors import DatasetNotFoundError, DownloadError

        cifar_result = None
        if RUN_CIFAR:
            cifar_root = DATA_ROOT
            try:
                cifar = load_dataset("cifar10", root=cifar_root, download=DOWNLOAD)
            except (DatasetNotFoundError, DownloadError) as err:
                if BUDGET != "quick":
                    raise
                import tempfile

                print(f"The real CIFAR-10 is not there:\\n{err}\\n")
                cifar_root = tempfile.mkdtemp(prefix="tsimcne-standin-")
                write_standin_files("cifar10", cifar_root, n=STANDIN_N, random_state=SEED)
                cifar = load_dataset("cifar10", root=cifar_root)
            if is_standin("cifar10", cifar_root):
                cifar.synthetic = True
                cifar.name = "synthetic-standin-cifar10"
                print("THIS RUN USES SYNTHETIC STAND-IN CIFAR-10 FILES: the numbers mean nothing "
                      "about natural images.")
            n_cifar = SUBSET or (QUICK_SUBSET if BUDGET == "quick" else None)
            if n_cifar is not None and n_cifar < len(cifar):
                cifar = cifar.stratified_subset(int(n_cifar), random_state=SEED)
            cifar_result = compare(cifar, experiment="cifar-control", methods=list(CIFAR_METHODS),
                                   seeds=[SEED], budget=budget, device=DEVICE, progress=False)
            display(cifar_result.table())
            display(cifar_result.figure(seed=SEED))
        '''),
        md('''
        ## Paper budget

        ```bash
        papermill augmentations.ipynb augmentations-paper.ipynb -p BUDGET paper -p DEVICE cuda \\
            -p DATA_ROOT /path/to/data -p DATASET bloodmnist
        ```

        From the command line: `tsimcne-nb compare --experiment ablation --dataset bloodmnist
        --budget paper --device cuda --out runs/ablation` and `--experiment cifar-control
        --dataset cifar10`.
        '''),
    ]
    save(cells, f"{OUT}/augmentations.ipynb")


if __name__ == "__main__":
    quickstart()
    leukemia()
    bloodmnist()
    dermamnist()
    pathmnist()
    pcam()
    baselines_nb()
    qc_nb()
    augmentations_nb()
    print("ok")
