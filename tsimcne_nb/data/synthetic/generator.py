"""``synthetic-blood``: a procedural, **synthetic** blood-smear image generator.

:func:`make_synthetic_blood` draws small RGB images of single white blood cells
(and platelet clumps) on a background of red blood cells, in the spirit of
BloodMNIST, so that every part of the package can be tried without downloading
anything.  The images are *synthetic*: they are drawn from hand-written shape
and colour models, not from microscope data, and results on them say nothing
about real blood.

What is modelled
----------------
* Ten classes told apart by the features a haematologist uses: nucleus shape
  (round, kidney/folded, C-shaped band, 2 lobes, 3-5 lobes joined by thin
  strands), nucleus/cytoplasm ratio, cell size, chromatin texture (clumped,
  lacy, fine with nucleoli, pyknotic), cytoplasm colour (pale pink, sky blue,
  grey-blue, deep blue, reddish-grey) and granules (fine lilac, coarse
  orange-red, dark purple covering the nucleus, purple-red azurophilic),
  vacuoles.  Within each class size, shape, lobe count, N/C ratio,
  granularity and colour vary substantially.
* A Romanowsky-like stain model: optical densities of the stain components
  add up (Beer-Lambert), with per-image azure/eosin strength, a random
  colour-mixing (hue) perturbation, background plasma tint, brightness and an
  illumination gradient.
* Red blood cells (pale pink discs with central pallor) around the cell,
  overlapping each other and the frame border, partly under the white cell.
* Uniformly random orientation (0-360 degrees, plus a random mirror flip) and
  position jitter: the class cannot be read from the orientation, so rotation
  augmentations are expected to help.
* Optical blur (defocus) and sensor noise.

What is not modelled
--------------------
Real cell biology and its rarer appearances (toxic granulation, Döhle bodies,
Auer rods, smudge cells, clumped/fragmented cells), lens aberrations, JPEG
artefacts, staining precipitate, several white cells in one field, and the
class frequencies of real blood (classes are balanced by default).

Images are rendered on a canvas ``render_size`` pixels wide (by default 2x
``size``) and area-averaged down to ``size`` (antialiasing).  Image ``i``
depends only on ``(random_state, i)`` (its own :class:`numpy.random.Generator`
from ``SeedSequence([random_state, i])``), so a smaller dataset is a prefix of
a larger one.

How hard is it?  On 2000 images at 28 px, 5-fold kNN (k = 15) on raw pixels
reaches about 0.7 (the paper reports 0.73 on BloodMNIST) and about 0.8 on
rotation-invariant radial colour profiles: classes are distinguishable but not
trivially so in pixel space.  Generating 10,000 images at 28 px takes about
10-15 s of CPU time in one process.

Run ``python -m tsimcne_nb.synthetic --sheet docs/synthetic-blood-sheet.png``
to write the labelled contact sheet shown in the README, and ``--time 10000``
for a timing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from tsimcne_nb.datasets.core import ImageDataset
from tsimcne_nb.errors import ConfigError

__all__ = ["CLASS_NAMES", "make_synthetic_blood"]

#: the classes, in label order
CLASS_NAMES: tuple[str, ...] = (
    "neutrophil",
    "band",
    "eosinophil",
    "basophil",
    "lymphocyte",
    "monocyte",
    "blast",
    "immature granulocyte",
    "erythroblast",
    "platelets",
)

# slot counts of the vectorised renderer (unused slots are placed far away and draw nothing)
_N_LOBES = 8
_N_SEGS = 4
_N_HOLES = 4
_N_RBC = 9
_FAR = 50.0  # an "inactive" shape sits here, far outside the frame [-1, 1]^2
_MAX_BLUR = 0.75  # largest defocus blur sigma, in pixels of a 28-pixel image
_BATCH = 64  # images rendered together (pure vectorisation: results do not depend on it)


def _od(rgb: Sequence[float]) -> np.ndarray:
    """Optical density (Beer-Lambert) of a colour seen through one unit of stain on white."""
    return -np.log(np.clip(np.asarray(rgb, dtype=np.float64) / 255.0, 1e-3, 1.0))


# optical density of one unit of each stain component (RGB); colours read off stained smears
_V_NUC = _od((78, 48, 128))  # azure-eosin nuclear purple
_V_RBC = _od((236, 158, 182))  # eosinophilic red cell pink
_V_CYT = {
    "neutrophil": _od((232, 208, 222)),  # pale pink-lilac
    "band": _od((232, 206, 220)),
    "eosinophil": _od((236, 214, 214)),
    "basophil": _od((216, 198, 226)),  # lilac
    "lymphocyte": _od((168, 206, 236)),  # sky blue
    "monocyte": _od((196, 196, 222)),  # grey-blue
    "blast": _od((150, 178, 228)),  # basophilic blue
    "immature granulocyte": _od((196, 202, 232)),  # light blue
    "erythroblast": _od((204, 170, 196)),  # reddish-grey (polychromatic)
    "platelets": _od((210, 200, 236)),
}
_V_GRAN = {
    "neutrophil": _od((196, 150, 196)),  # fine lilac specks
    "band": _od((196, 150, 196)),
    "eosinophil": _od((238, 118, 70)),  # orange-red
    "basophil": _od((52, 30, 96)),  # very dark purple
    "lymphocyte": _od((150, 80, 150)),  # a few azurophilic granules (large granular lymphocytes)
    "monocyte": _od((190, 160, 205)),  # "ground glass" dust
    "blast": _od((150, 80, 150)),
    "immature granulocyte": _od((150, 50, 120)),  # purple-red azurophilic
    "erythroblast": _od((150, 80, 150)),
    "platelets": _od((110, 60, 150)),
}
# which stain dominates the cytoplasm (scaled by the per-image azure or eosin strength)
_CYT_AZURE = {"lymphocyte", "monocyte", "blast", "immature granulocyte", "basophil", "platelets"}
_GRAN_EOSIN = {"eosinophil"}

_BG_TINTS = np.array(
    [
        [0.985, 0.935, 0.955],  # pinkish plasma
        [0.945, 0.950, 0.985],  # bluish
        [0.950, 0.965, 0.935],  # greenish grey
        [0.970, 0.960, 0.960],  # neutral
        [0.975, 0.945, 0.985],  # lilac
    ]
)


# ----------------------------------------------------------------------------- parameters
def _params_template() -> dict[str, Any]:
    """Default (inactive) values of every per-image parameter of the renderer."""
    far_lobe = [_FAR, _FAR, 1e-2, 1e-2, 0.0]
    return {
        "angle": 0.0, "flip": 1.0, "dx": 0.0, "dy": 0.0,
        "cell_r": 0.0, "aspect": 0.0, "harm": np.zeros(6), "clip_nuc": 1.0,
        "cyt_density": 0.0, "cyt_tex": 0.1,
        "nuc_strength": 1.0, "chrom_amp": 0.3, "chrom_mix": np.array([0.5, 0.5, 0.0]),
        "gran_amount": 0.0, "gran_thr": 1.0, "gran_gain": 3.0, "gran_base": 0.0,
        "gran_mix": np.array([1.0, 0.0, 0.0]), "gran_over_nuc": 0.3,
        "lobes": np.array([far_lobe] * _N_LOBES, dtype=np.float64),
        "segs": np.array([[_FAR, _FAR, _FAR, _FAR, -1.0]] * _N_SEGS, dtype=np.float64),
        "arc": np.array([_FAR, _FAR, 0.1, 1.0, 0.0, -1.0, 1.0, 0.0]),
        "indent": np.array([_FAR, _FAR, 1e-2]),
        "holes": np.array([[_FAR, _FAR, 1e-2, 0.0, 0.0]] * _N_HOLES, dtype=np.float64),
        "rbc": np.array([[_FAR, _FAR, 0.3]] * _N_RBC, dtype=np.float64),
        "rbc_pallor": 0.4, "rbc_occlude": 0.9,
        "v_nuc": _V_NUC, "v_cyt": _V_NUC, "v_gran": _V_NUC, "v_rbc": _V_RBC,
        "bg": np.ones(3), "grad": np.zeros(2), "blur": 0.5, "noise": 2.0,
        "n_lobes": 0, "azure": 1.0, "eosin": 1.0, "hue": 0.0,
    }


def _unit(a: float) -> np.ndarray:
    return np.array([math.cos(a), math.sin(a)])


def _sample_nucleus(rng: np.random.Generator, cls: str, p: dict[str, Any]) -> None:
    """Fill nucleus shape, chromatin and granule parameters for class ``cls`` (cell units)."""
    r = p["cell_r"]
    lobes, segs = p["lobes"], p["segs"]
    u = rng.uniform

    def lobe(i: int, c: np.ndarray, a: float, b: float, th: float) -> None:
        lobes[i] = [c[0], c[1], a, b, th]

    if cls == "neutrophil":
        k = int(rng.choice([2, 3, 3, 4, 4, 5]))
        p["n_lobes"] = k
        # lobes strung along a wiggly path around the centre, joined by thin strands
        rp = u(0.32, 0.5) * r
        a0 = u(0, 2 * np.pi)
        step = u(0.75, 1.25) * (2 * np.pi * u(0.55, 0.8) / max(k - 1, 1))
        pts = []
        for j in range(k):
            ang = a0 + j * step + u(-0.25, 0.25)
            rad = rp * u(0.75, 1.2)
            pts.append(rad * _unit(ang))
        pts_arr = np.array(pts) - np.mean(pts, axis=0) * u(0.5, 1.0)
        for j, c in enumerate(pts_arr):
            s = u(0.17, 0.24) * r
            lobe(j, c, s * u(0.95, 1.35), s * u(0.7, 1.0), u(0, np.pi))
        for j in range(k - 1):
            segs[j] = [*pts_arr[j], *pts_arr[j + 1], u(0.03, 0.06) * r]
        p["chrom_amp"], p["chrom_mix"] = u(0.2, 0.45), np.array([0.3, 0.7, 0.0])
        p["gran_amount"], p["gran_thr"], p["gran_mix"] = u(0.2, 0.6), u(0.6, 1.1), np.array(
            [1.0, 0.0, 0.0]
        )
        p["nuc_strength"] = u(0.95, 1.25)
    elif cls == "band":
        p["n_lobes"] = 1
        ra = u(0.38, 0.52) * r
        mid = u(0, 2 * np.pi)
        half = np.deg2rad(u(70, 140))
        off = -ra * math.cos(half) * 0.5 * _unit(mid)  # centre the C in the cell
        p["arc"] = np.array(
            [off[0], off[1], ra, math.cos(mid), math.sin(mid), u(0.12, 0.19) * r,
             math.cos(half), u(-0.35, 0.35)]
        )
        p["chrom_amp"], p["chrom_mix"] = u(0.2, 0.45), np.array([0.3, 0.7, 0.0])
        p["gran_amount"], p["gran_thr"] = u(0.2, 0.6), u(0.6, 1.1)
        p["nuc_strength"] = u(0.95, 1.25)
    elif cls == "eosinophil":
        k = 2 if u() < 0.8 else 3
        p["n_lobes"] = k
        sep = u(0.45, 0.62) * r
        d = _unit(u(0, 2 * np.pi))
        n = np.array([-d[1], d[0]])
        if k == 2:
            cs = [-0.5 * sep * d, 0.5 * sep * d]
        else:
            cs = [-0.55 * sep * d, 0.45 * sep * n * u(0.6, 1.0), 0.55 * sep * d]
        cs = [c + u(-0.06, 0.06, 2) * r for c in cs]
        for j, c in enumerate(cs):
            s = u(0.2, 0.27) * r
            lobe(j, c, s * u(1.0, 1.3), s * u(0.75, 1.0), u(0, np.pi))
        for j in range(k - 1):
            segs[j] = [*cs[j], *cs[j + 1], u(0.04, 0.07) * r]
        p["chrom_amp"], p["chrom_mix"] = u(0.15, 0.35), np.array([0.4, 0.6, 0.0])
        p["gran_amount"], p["gran_thr"], p["gran_gain"] = u(0.9, 1.3), u(-0.2, 0.4), u(1.8, 3.0)
        p["gran_mix"], p["gran_base"] = np.array([0.2, 0.98, 0.0]), u(0.25, 0.5)
        p["gran_over_nuc"] = u(0.3, 0.6)
        p["nuc_strength"] = u(0.8, 1.1)
    elif cls == "basophil":
        k = int(rng.choice([1, 2, 2, 3]))
        p["n_lobes"] = k
        for j in range(k):
            c = u(-0.25, 0.25, 2) * r
            s = u(0.25, 0.38) * r
            lobe(j, c, s * u(1.0, 1.3), s * u(0.7, 1.0), u(0, np.pi))
        p["chrom_amp"] = 0.2
        p["gran_amount"], p["gran_thr"], p["gran_gain"] = u(0.7, 1.1), u(-0.2, 0.5), u(1.8, 3.0)
        p["gran_mix"], p["gran_base"] = np.array([0.5, 0.8, 0.33]), u(0.1, 0.3)
        p["gran_over_nuc"] = u(0.85, 1.0)
        p["nuc_strength"] = u(0.6, 0.9)
    elif cls == "lymphocyte":
        p["n_lobes"] = 1
        nr = u(0.72, 0.9) * r
        ecc = (r - nr) * u(0.2, 0.9)
        c = ecc * _unit(u(0, 2 * np.pi))
        lobe(0, c, nr * u(0.95, 1.05), nr * u(0.88, 1.0), u(0, np.pi))
        if u() < 0.3:  # a small notch
            p["indent"] = np.array([*(c + nr * 1.05 * _unit(u(0, 2 * np.pi))), u(0.15, 0.25) * nr])
        p["chrom_amp"], p["chrom_mix"] = u(0.45, 0.8), np.array([0.2, 0.5, 0.84])
        p["gran_amount"] = u(0.0, 0.8) if u() < 0.2 else 0.0
        p["gran_thr"], p["gran_mix"] = u(1.2, 1.6), np.array([0.0, 1.0, 0.0])
        p["nuc_strength"] = u(1.05, 1.4)
    elif cls == "monocyte":
        k = int(rng.choice([1, 2, 3]))
        p["n_lobes"] = k
        base = u(0, 2 * np.pi)
        c0 = (u(0.05, 0.25) * r) * _unit(base)
        s0 = u(0.46, 0.6) * r / (1 + 0.12 * (k - 1))
        for j in range(k):
            c = c0 + (u(0.0, 0.2) * r) * _unit(base + u(-2.0, 2.0))
            lobe(j, c, s0 * u(1.0, 1.3), s0 * u(0.75, 1.0), u(0, np.pi))
        if u() < 0.85:  # kidney-shaped indentation on the side facing the cell centre
            p["indent"] = np.array(
                [*(c0 + u(0.8, 1.05) * s0 * _unit(base + np.pi + u(-0.4, 0.4))),
                 u(0.3, 0.5) * s0]
            )
        p["chrom_amp"], p["chrom_mix"] = u(0.3, 0.55), np.array([0.5, 0.87, 0.0])
        p["gran_amount"], p["gran_thr"], p["gran_mix"] = u(0.2, 0.6), u(0.4, 1.0), np.array(
            [1.0, 0.0, 0.0]
        )
        p["nuc_strength"] = u(0.7, 1.0)
        nh = int(rng.integers(0, _N_HOLES + 1))
        for j in range(nh):  # vacuoles in the cytoplasm
            p["holes"][j] = [*(u(0.55, 0.85) * r * _unit(u(0, 2 * np.pi))), u(0.04, 0.09) * r,
                             0.0, 0.9]
    elif cls == "blast":
        p["n_lobes"] = 1
        nr = u(0.76, 0.9) * r
        c = (r - nr) * u(0.0, 0.8) * _unit(u(0, 2 * np.pi))
        lobe(0, c, nr * u(0.95, 1.05), nr * u(0.85, 1.0), u(0, np.pi))
        p["chrom_amp"], p["chrom_mix"] = u(0.15, 0.35), np.array([0.95, 0.3, 0.0])
        p["nuc_strength"] = u(0.6, 0.85)
        nh = int(rng.integers(1, 4))
        for j in range(nh):  # pale nucleoli
            p["holes"][j] = [*(c + u(0.0, 0.5) * nr * _unit(u(0, 2 * np.pi))), u(0.08, 0.14) * nr,
                             u(0.35, 0.6), 0.0]
    elif cls == "immature granulocyte":
        p["n_lobes"] = 1
        nr = u(0.5, 0.66) * r
        c = (r - nr) * u(0.45, 0.95) * _unit(u(0, 2 * np.pi))
        lobe(0, c, nr * u(0.95, 1.15), nr * u(0.8, 1.0), u(0, np.pi))
        if u() < 0.4:
            p["indent"] = np.array([*(c * (1 - 1.6 * nr / max(np.linalg.norm(c), 1e-6))),
                                    u(0.2, 0.35) * nr])
        p["chrom_amp"], p["chrom_mix"] = u(0.2, 0.4), np.array([0.8, 0.6, 0.0])
        p["nuc_strength"] = u(0.7, 0.95)
        p["gran_amount"], p["gran_thr"], p["gran_gain"] = u(0.8, 1.2), u(0.2, 0.8), u(1.5, 3.0)
        p["gran_mix"], p["gran_base"] = np.array([0.35, 0.94, 0.0]), u(0.1, 0.25)
        p["gran_over_nuc"] = u(0.3, 0.7)
    elif cls == "erythroblast":
        p["n_lobes"] = 1
        nr = u(0.42, 0.62) * r
        c = (r - nr) * u(0.0, 0.7) * _unit(u(0, 2 * np.pi))
        lobe(0, c, nr * u(0.95, 1.05), nr * u(0.9, 1.0), u(0, np.pi))
        p["chrom_amp"], p["chrom_mix"] = u(0.1, 0.3), np.array([0.3, 0.3, 0.9])
        p["nuc_strength"] = u(1.4, 1.9)
    elif cls == "platelets":
        k = int(rng.integers(2, _N_LOBES + 1))
        p["n_lobes"] = k
        spread = u(0.12, 0.4)
        for j in range(k):
            c = spread * math.sqrt(u()) * _unit(u(0, 2 * np.pi))
            s = u(0.035, 0.075)
            lobe(j, c, s * u(1.0, 1.6), s * u(0.6, 1.0), u(0, np.pi))
        p["chrom_amp"], p["chrom_mix"] = u(0.2, 0.5), np.array([0.6, 0.8, 0.0])
        p["nuc_strength"] = u(0.6, 1.1)
        p["clip_nuc"] = 0.0
    else:  # pragma: no cover - guarded by the class-name validation
        raise AssertionError(cls)


# (min, max) cell radius as a fraction of the half-width of the frame
_CELL_R = {
    "neutrophil": (0.44, 0.58),
    "band": (0.42, 0.56),
    "eosinophil": (0.47, 0.6),
    "basophil": (0.4, 0.54),
    "lymphocyte": (0.3, 0.44),
    "monocyte": (0.56, 0.72),
    "blast": (0.5, 0.66),
    "immature granulocyte": (0.56, 0.72),
    "erythroblast": (0.26, 0.36),
    "platelets": (0.0, 0.0),
}
_CYT_DENSITY = {
    "neutrophil": (0.7, 1.3),
    "band": (0.7, 1.3),
    "eosinophil": (0.6, 1.1),
    "basophil": (0.6, 1.1),
    "lymphocyte": (0.7, 1.3),
    "monocyte": (0.8, 1.3),
    "blast": (0.8, 1.4),
    "immature granulocyte": (0.7, 1.2),
    "erythroblast": (0.8, 1.4),
    "platelets": (0.0, 0.0),
}


def _sample_params(rng: np.random.Generator, cls: str) -> dict[str, Any]:
    """All random parameters of one image, drawn in a fixed order from its own ``rng``."""
    u = rng.uniform
    p = _params_template()
    p["angle"] = u(0.0, 360.0)
    p["flip"] = 1.0 if u() < 0.5 else -1.0
    rho, phi = 0.13 * math.sqrt(u()), u(0, 2 * np.pi)
    p["dx"], p["dy"] = rho * math.cos(phi), rho * math.sin(phi)
    lo, hi = _CELL_R[cls]
    r = u(lo, hi)
    p["cell_r"] = r
    p["aspect"] = u(-0.08, 0.08)
    amp = 0.07 if cls == "monocyte" else 0.04
    p["harm"] = np.concatenate([u(0, amp, 2), u(0, amp / 3, 1), u(0, 2 * np.pi, 3)])
    p["cyt_density"] = u(*_CYT_DENSITY[cls])
    p["cyt_tex"] = u(0.05, 0.25)
    _sample_nucleus(rng, cls, p)

    # --- stain: azure/eosin strength, colour-mixing (hue) perturbation, background
    az, eo = u(0.75, 1.3), u(0.7, 1.3)
    hue = u(-1.0, 1.0)
    mix = np.eye(3) + rng.normal(0.0, 0.06, (3, 3))
    # one shared axis: blue-ish (more red absorbed) versus magenta-ish (more green absorbed)
    mix += hue * 0.12 * np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.0]])

    def tint(v: np.ndarray) -> np.ndarray:
        return np.clip(mix @ v, 0.0, None)

    p["azure"], p["eosin"], p["hue"] = az, eo, hue
    p["v_nuc"] = tint(_V_NUC) * az
    p["v_cyt"] = tint(_V_CYT[cls]) * (az if cls in _CYT_AZURE else eo)
    p["v_gran"] = tint(_V_GRAN[cls]) * (eo if cls in _GRAN_EOSIN else az)
    p["v_rbc"] = tint(_V_RBC) * eo * u(0.8, 1.2)
    w = rng.dirichlet(np.full(len(_BG_TINTS), 0.4))
    p["bg"] = np.clip((w @ _BG_TINTS) * u(0.9, 1.04), 0.0, 1.0)
    p["grad"] = rng.normal(0.0, 0.03, 2)
    p["blur"] = u(0.25, _MAX_BLUR)  # in pixels of a 28-pixel image; scaled with the output size
    p["noise"] = u(1.0, 4.5)

    # --- red blood cells: rejection-sample centres around (and partly under) the white cell
    n_rbc = int(np.clip(rng.poisson(5.0), 1, _N_RBC))
    rr = u(0.27, 0.36)  # one smear region: similar red cell sizes
    centre = np.array([p["dx"], p["dy"]])
    placed: list[tuple[float, float, float]] = []
    # 40 candidates drawn at once (fast); columns: x, y, radius factor, two overlap factors
    cand = np.column_stack(
        [u(-1.3, 1.3, (40, 2)), u(0.9, 1.1, 40), u(0.2, 0.9, 40), u(0.8, 1.9, 40)]
    ).tolist()
    for cx, cy, fr, f_wbc, f_rbc in cand:
        if len(placed) == n_rbc:
            break
        rad = rr * fr
        # may overlap the white cell's rim a little, and other red cells a little more
        if math.hypot(cx - centre[0], cy - centre[1]) < r + rad * f_wbc:
            continue
        if any(math.hypot(cx - qx, cy - qy) < rad * f_rbc for qx, qy, _ in placed):
            continue
        placed.append((cx, cy, rad))
    for j, q in enumerate(placed):
        p["rbc"][j] = q
    p["n_rbc"] = len(placed)
    p["rbc_pallor"] = u(0.15, 0.5)
    return p


# ----------------------------------------------------------------------------- rendering
def _stack(params: list[dict[str, Any]], key: str) -> np.ndarray:
    return np.asarray([p[key] for p in params], dtype=np.float32)


def _trig(params: list[dict[str, Any]], fn: Any) -> np.ndarray:
    """``fn(p)`` of every image's parameters, as float32 (computed with scalar math)."""
    return np.array([fn(p) for p in params], dtype=np.float32)


def _ramp(signed: np.ndarray, ew: float) -> np.ndarray:
    """Soft inside-mask from a signed distance (positive inside), ``ew`` wide."""
    out = signed * np.float32(1.0 / ew)
    out += np.float32(0.5)
    np.maximum(out, np.float32(0.0), out=out)
    return np.minimum(out, np.float32(1.0), out=out)


def _upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of (B, g, g) noise to (B, size, size), periodic (no edge effect)."""
    g = grid.shape[-1]
    pos = (np.arange(size) + 0.5) * (g / size)
    i0 = np.floor(pos).astype(np.int64) % g
    i1 = (i0 + 1) % g
    w = (pos - np.floor(pos)).astype(np.float32)
    rows = grid[:, i0, :] * (1 - w)[None, :, None] + grid[:, i1, :] * w[None, :, None]
    return rows[:, :, i0] * (1 - w)[None, None, :] + rows[:, :, i1] * w[None, None, :]


def _textures(rngs: list[np.random.Generator], render: int) -> list[np.ndarray]:
    """Three noise textures per image (fine, medium, coarse), roughly unit variance.

    Their scales are fixed fractions of the frame (not of the canvas), so that a
    scene looks the same at every ``size`` and ``render_size``.
    """
    out = []
    for cells, gain in ((28, 1.6), (16, 1.6), (8, 1.6)):
        grid = np.stack(
            [rng.standard_normal((cells, cells), dtype=np.float32) for rng in rngs]
        )
        out.append(_upsample(grid, render) * np.float32(gain))
    return out


def _render_batch(params: list[dict[str, Any]], rngs: list[np.random.Generator], size: int,
                  render: int) -> np.ndarray:
    """Render a batch of images (uint8, (B, size, size, 3)) from their parameters."""
    f32 = np.float32
    b = len(params)
    ew = f32(2.0 / render)  # one render pixel, in frame units (the frame is [-1, 1])
    grid = ((np.arange(render, dtype=f32) + f32(0.5)) * f32(2.0 / render) - f32(1.0))
    gy, gx = grid[None, :, None], grid[None, None, :]

    def col(key: str) -> np.ndarray:
        return _stack(params, key).reshape(b, 1, 1)

    tex_f, tex_m, tex_c = _textures(rngs, render)

    # --- local (cell) coordinates: rotate by the angle, optional mirror flip
    # trigonometry of per-image scalars in Python: numpy's vectorised sin/cos may round
    # differently with the batch length, and image i must not depend on its batch
    ca = _trig(params, lambda p: math.cos(math.radians(p["angle"]))).reshape(b, 1, 1)
    sa = _trig(params, lambda p: math.sin(math.radians(p["angle"]))).reshape(b, 1, 1)
    x0, y0 = gx - col("dx"), gy - col("dy")
    xl = ca * x0 + sa * y0
    yl = (-sa * x0 + ca * y0) * col("flip")

    # --- cell body: an ellipse with low-order harmonic wobble of the radius
    asp = col("aspect")
    xb, yb = xl * (1 + asp), yl * (1 - asp)
    rho = np.sqrt(xb * xb + yb * yb) + f32(1e-6)
    c1, s1 = xb / rho, yb / rho
    c2, s2 = c1 * c1 - s1 * s1, 2 * c1 * s1
    c3, s3 = c2 * c1 - s2 * s1, s2 * c1 + c2 * s1
    wob = 1.0
    for k, (ck, sk) in enumerate(((c2, s2), (c3, s3), (c2 * c2 - s2 * s2, 2 * c2 * s2))):
        hc = _trig(params, lambda p, k=k: p["harm"][k] * math.cos(p["harm"][3 + k]))
        hs = _trig(params, lambda p, k=k: p["harm"][k] * math.sin(p["harm"][3 + k]))
        wob = wob + ck * hc.reshape(b, 1, 1) + sk * hs.reshape(b, 1, 1)
    cell_r = col("cell_r")
    body = _ramp(cell_r * wob - rho, ew) * (cell_r > 0)

    # --- nucleus: union of ellipse lobes, thin strands and an optional C-shaped arc.
    # Every shape slot is evaluated only for the images that use it (``act``); the
    # arithmetic per image is the same whichever images share the batch.
    nuc = np.zeros((b, render, render), f32)

    def active(mask: np.ndarray) -> np.ndarray | None:
        act = np.flatnonzero(mask)
        return None if act.size == 0 else act

    def pick(arr: np.ndarray, act: np.ndarray) -> np.ndarray:
        return arr if act.size == b else arr[act]

    def merge_max(dst: np.ndarray, m: np.ndarray, act: np.ndarray) -> None:
        if act.size == b:
            np.maximum(dst, m, out=dst)
        else:
            dst[act] = np.maximum(dst[act], m)

    def p3(v: np.ndarray) -> np.ndarray:
        return v.reshape(-1, 1, 1)

    lobes = _stack(params, "lobes")
    for j in range(_N_LOBES):
        act = active(lobes[:, j, 0] < _FAR)
        if act is None:
            continue
        lo = lobes[act, j]
        ex, ey = pick(xl, act) - p3(lo[:, 0]), pick(yl, act) - p3(lo[:, 1])
        sel = [params[i] for i in act]
        ct = p3(_trig(sel, lambda p, j=j: math.cos(p["lobes"][j, 4])))
        st = p3(_trig(sel, lambda p, j=j: math.sin(p["lobes"][j, 4])))
        ea, eb = p3(lo[:, 2]), p3(lo[:, 3])
        uu, vv = (ct * ex + st * ey) / ea, (-st * ex + ct * ey) / eb
        q = np.sqrt(uu * uu + vv * vv)
        merge_max(nuc, _ramp((1 - q) * np.minimum(ea, eb), ew), act)
    segs = _stack(params, "segs")
    for j in range(_N_SEGS):
        act = active(segs[:, j, 4] >= 0)
        if act is None:
            continue
        sg = segs[act, j]
        ax, ay = p3(sg[:, 0]), p3(sg[:, 1])
        dxs, dys = p3(sg[:, 2] - sg[:, 0]), p3(sg[:, 3] - sg[:, 1])
        px, py = pick(xl, act) - ax, pick(yl, act) - ay
        t = np.clip((px * dxs + py * dys) / (dxs * dxs + dys * dys + f32(1e-9)), 0.0, 1.0)
        ddx, ddy = px - t * dxs, py - t * dys
        d = np.sqrt(ddx * ddx + ddy * ddy)
        merge_max(nuc, _ramp(p3(sg[:, 4]) - d, ew), act)
    arc = _stack(params, "arc")
    act = active(arc[:, 5] > 0)
    if act is not None:
        ac = arc[act]
        ax, ay, ra = (p3(ac[:, i]) for i in range(3))
        mx, my, th, cos_half, taper = (p3(ac[:, i]) for i in range(3, 8))
        px, py = pick(xl, act) - ax, pick(yl, act) - ay
        r_ = np.sqrt(px * px + py * py) + f32(1e-6)
        cosang = (px * mx + py * my) / r_
        inside = cosang >= cos_half
        # end points of the arc, at +-half around the mid direction
        sin_half = np.sqrt(np.maximum(1 - cos_half * cos_half, 0))
        e1x, e1y = ra * (mx * cos_half - my * sin_half), ra * (my * cos_half + mx * sin_half)
        e2x, e2y = ra * (mx * cos_half + my * sin_half), ra * (my * cos_half - mx * sin_half)
        d_end = np.minimum(np.hypot(px - e1x, py - e1y), np.hypot(px - e2x, py - e2y))
        d = np.where(inside, np.abs(r_ - ra), d_end)
        thick = th * (1 + taper * (cosang - 0.5))  # thicker or thinner in the middle
        merge_max(nuc, _ramp(thick - d, ew), act)
    ind = _stack(params, "indent")
    act = active(ind[:, 0] < _FAR)
    if act is not None:
        ix, iy, ir = (p3(ind[act, i]) for i in range(3))
        cut = 1 - _ramp(ir - np.sqrt((pick(xl, act) - ix) ** 2 + (pick(yl, act) - iy) ** 2), ew)
        if act.size == b:
            nuc *= cut
        else:
            nuc[act] *= cut
    clip_nuc = col("clip_nuc")
    nuc *= body * clip_nuc + (1 - clip_nuc)

    # --- holes: nucleoli (pale spots in the nucleus) and vacuoles (in the cytoplasm)
    hole_n = np.zeros_like(nuc)
    hole_c = np.zeros_like(nuc)
    holes = _stack(params, "holes")
    for j in range(_N_HOLES):
        act = active(holes[:, j, 0] < _FAR)
        if act is None:
            continue
        h = holes[act, j]
        hx, hy, hr = (p3(h[:, i]) for i in range(3))
        m = _ramp(hr - np.sqrt((pick(xl, act) - hx) ** 2 + (pick(yl, act) - hy) ** 2), ew)
        merge_max(hole_n, m * p3(h[:, 3]), act)
        merge_max(hole_c, m * p3(h[:, 4]), act)

    # --- chromatin texture, cytoplasm, granules
    mix = _stack(params, "chrom_mix")
    tch = sum(mix[:, i].reshape(b, 1, 1) * t for i, t in enumerate((tex_f, tex_m, tex_c)))
    nuc_d = nuc * col("nuc_strength") * np.maximum(1 + col("chrom_amp") * tch, 0.2)
    nuc_d *= 1 - hole_n
    cyt = body * col("cyt_density") * (1 + col("cyt_tex") * tex_f) * (1 - hole_c)
    cyt *= 1 - 0.6 * nuc
    gmix = _stack(params, "gran_mix")
    # granules are a different noise draw from the chromatin: swap roles of the textures
    tg = sum(gmix[:, i].reshape(b, 1, 1) * t for i, t in enumerate((tex_m, tex_f, tex_c)))
    spots = np.clip((tg - col("gran_thr")) * col("gran_gain"), 0.0, 1.0)
    # densely packed granules: a uniform fill plus the speckle of individual granules
    base = col("gran_base")
    spots = base + (1 - base) * spots
    gran = spots * body * col("gran_amount") * (1 - (1 - col("gran_over_nuc")) * nuc)

    # --- red blood cells: pink discs with central pallor, overlaps add up, under the white cell
    rbc = np.zeros_like(nuc)
    rb = _stack(params, "rbc")
    pallor = col("rbc_pallor")
    for j in range(_N_RBC):
        act = active(rb[:, j, 0] < _FAR)
        if act is None:
            continue
        rx, ry, rr = (p3(rb[act, j, i]) for i in range(3))
        d = np.sqrt((gx - rx) ** 2 + (gy - ry) ** 2)
        z = np.clip(1 - (d / (0.62 * rr)) ** 2, 0.0, 1.0)
        disc = _ramp(rr - d, ew) * (1 - pick(pallor, act) * z * z)
        if act.size == b:
            rbc += disc
        else:
            rbc[act] += disc
    rbc *= 1 - col("rbc_occlude") * body

    # --- Beer-Lambert colour: transmitted light = background * exp(-sum of optical densities)
    comps = ((rbc, "v_rbc"), (cyt, "v_cyt"), (nuc_d, "v_nuc"), (gran, "v_gran"))
    vecs = {key: _stack(params, key) for _, key in comps}
    bg = _stack(params, "bg")
    od = np.empty((b, render, render, 3), f32)
    for ch in range(3):
        od[..., ch] = sum(dens * vecs[key][:, ch].reshape(b, 1, 1) for dens, key in comps)
    img = np.empty_like(od)
    for i in range(b):  # one exp call per image: identical code path whatever the batch
        np.exp(-od[i], out=img[i])
    img *= bg[:, None, None, :]

    # --- area downsampling (antialiasing) to the output size
    if render % size == 0:
        # a fixed-order sum of strided slices, so rounding does not depend on the batch
        fct = render // size
        small = np.zeros((b, size, size, 3), f32)
        for di in range(fct):
            for dj in range(fct):
                small += img[:, di::fct, dj::fct]
        small *= f32(1.0 / (fct * fct))
    else:
        a = _area_matrix(size, render)
        small = np.stack([np.einsum("ij,jkc,lk->ilc", a, im, a) for im in img]).astype(f32)

    # --- illumination gradient, optical blur, sensor noise (at the output resolution)
    sg = ((np.arange(size, dtype=f32) + 0.5) * (2.0 / size) - 1.0)
    grad = _stack(params, "grad")
    illum = 1 + grad[:, 0].reshape(b, 1, 1) * sg[None, None, :] + grad[:, 1].reshape(
        b, 1, 1
    ) * sg[None, :, None]
    small = small * illum[..., None]
    small = _blur(small, _stack(params, "blur") * f32(size / 28.0), _MAX_BLUR * size / 28.0)
    noise = np.stack([rng.standard_normal((size, size, 3), dtype=f32) for rng in rngs])
    out = small * f32(255.0) + noise * col("noise")[..., None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _area_matrix(size: int, render: int) -> np.ndarray:
    """(size, render) matrix averaging the render pixels that overlap each output pixel."""
    a = np.zeros((size, render), np.float64)
    scale = render / size
    for i in range(size):
        lo, hi = i * scale, (i + 1) * scale
        for j in range(int(math.floor(lo)), min(int(math.ceil(hi)), render)):
            a[i, j] = min(hi, j + 1) - max(lo, j)
    return (a / a.sum(axis=1, keepdims=True)).astype(np.float32)


def _blur(img: np.ndarray, sigma: np.ndarray, max_sigma: float) -> np.ndarray:
    """Separable Gaussian blur with a per-image ``sigma`` (pixels), edges replicated.

    The kernel width comes from ``max_sigma``, not from the batch, so that an
    image does not depend on which other images share its batch.
    """
    b = img.shape[0]
    rad = max(1, int(math.ceil(3 * max_sigma)))
    k = np.array(
        [[math.exp(-0.5 * (t / max(float(sg), 1e-3)) ** 2) for t in range(-rad, rad + 1)]
         for sg in sigma]
    )
    k = (k / k.sum(axis=1, keepdims=True)).astype(np.float32)
    for axis in (1, 2):
        pad = [(0, 0)] * 4
        pad[axis] = (rad, rad)
        padded = np.pad(img, pad, mode="edge")
        n = img.shape[axis]
        acc = np.zeros_like(img)
        for t in range(2 * rad + 1):
            sl = [slice(None)] * 4
            sl[axis] = slice(t, t + n)
            acc += padded[tuple(sl)] * k[:, t].reshape(b, 1, 1, 1)
        img = acc
    return img


# ----------------------------------------------------------------------------- public API
def _validate(n: Any, size: Any, classes: Any, class_weights: Any,
              render_size: Any) -> tuple[list[str], np.ndarray | None, int]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"n must be a positive integer (number of images); got {n!r}.")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8:
        raise ConfigError(f"size must be an integer >= 8 (image side in pixels); got {size!r}.")
    if classes is None:
        names = list(CLASS_NAMES)
    else:
        if isinstance(classes, str):
            classes = [classes]
        names = [str(c) for c in classes]
        unknown = [c for c in names if c not in CLASS_NAMES]
        if unknown:
            raise ConfigError(
                f"unknown synthetic-blood class(es) {unknown}; valid classes are: "
                f"{', '.join(CLASS_NAMES)}."
            )
        if not names:
            raise ConfigError("classes is empty; pass at least one of: " + ", ".join(CLASS_NAMES))
        if len(set(names)) != len(names):
            raise ConfigError(f"classes contains duplicates: {names}; name each class once.")
    weights = None
    if class_weights is not None:
        if isinstance(class_weights, dict):
            bad = [k for k in class_weights if k not in names]
            if bad:
                raise ConfigError(
                    f"class_weights names {bad} that are not among the classes {names}."
                )
            class_weights = [class_weights.get(c, 0.0) for c in names]
        w = np.asarray(class_weights, dtype=np.float64)
        if w.shape != (len(names),):
            raise ConfigError(
                f"class_weights needs one weight per class ({len(names)}: {names}); "
                f"got shape {w.shape}."
            )
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ConfigError(
                f"class_weights must be finite, >= 0 and not all zero; got {w.tolist()}."
            )
        weights = w / w.sum()
    if render_size is None:
        render = int(size) * max(2, math.ceil(56 / int(size)))
    else:
        if (isinstance(render_size, bool) or not isinstance(render_size, (int, np.integer))
                or render_size < size):
            raise ConfigError(
                f"render_size must be an integer >= size ({size}); got {render_size!r}. "
                "A multiple of size (e.g. 3 * size) renders fastest."
            )
        render = int(render_size)
    return names, weights, render


def _labels(idx: np.ndarray, k: int, random_state: int, weights: np.ndarray | None,
            rngs: list[np.random.Generator]) -> np.ndarray:
    """Class of each image; depends only on (random_state, index) so prefixes agree."""
    if weights is not None:
        return np.array([int(rng.choice(k, p=weights)) for rng in rngs], dtype=np.int64)
    # balanced: a random permutation of the k classes in every block of k consecutive images
    out = np.empty(len(idx), np.int64)
    blocks = idx // k
    for blk in np.unique(blocks):
        perm = np.random.default_rng([random_state, int(blk), 1]).permutation(k)
        sel = blocks == blk
        out[sel] = perm[idx[sel] % k]
    return out


def make_synthetic_blood(
    n: int = 10000,
    size: int = 28,
    random_state: int = 0,
    classes: Sequence[str] | None = None,
    class_weights: Sequence[float] | dict[str, float] | None = None,
    render_size: int | None = None,
) -> ImageDataset:
    """Generate the **synthetic** blood-smear dataset ``synthetic-blood``.

    Each image shows one white blood cell (or a platelet clump) at a uniformly
    random orientation with position jitter, on a plasma background with red
    blood cells, stained with a randomly varied Romanowsky-like colour model,
    blurred and with sensor noise.  See the module docstring for what is and
    is not modelled.  These are not real microscope images.

    Parameters
    ----------
    n
        Number of images (>= 1).
    size
        Side of the square RGB images in pixels (>= 8), e.g. 28, 64 or 96.
    random_state
        Seed.  Image ``i`` depends only on ``(random_state, i)``: the first
        ``m`` images of a dataset of ``n > m`` equal a dataset of ``m``.
    classes
        Subset of :data:`CLASS_NAMES` to generate (in the given label order);
        all ten by default.
    class_weights
        Relative class frequencies (one per class, or a ``{name: weight}``
        dict); each image's class is then drawn at random.  ``None`` gives
        balanced classes: images ``m*k`` to ``m*k + k - 1`` hold each of the
        ``k`` classes once, in a random order.
    render_size
        Side of the internal canvas before area downsampling (>= ``size``);
        by default 2 times ``size`` (at least 56 pixels).

    Returns
    -------
    ImageDataset
        ``name='synthetic-blood'``, ``synthetic=True``, uint8 images of shape
        ``(n, size, size, 3)``, int64 labels, and metadata columns ``index``,
        ``split`` ('all'), ``class_name`` and the generator parameters of each
        image (``angle`` in degrees, ``flip``, ``dx``/``dy`` position jitter
        in fractions of the half-frame, ``cell_radius``, ``n_lobes``,
        ``azure``/``eosin`` stain strengths, ``hue`` shift, ``brightness``,
        ``blur`` in pixels at 28 px, ``noise`` std in grey levels,
        ``n_rbc``) for quality control.

    Raises
    ------
    ConfigError
        For ``n < 1``, ``size < 8``, a negative or non-integer ``random_state``,
        unknown or duplicate class names, bad
        ``class_weights`` or ``render_size < size``.

    Examples
    --------
    >>> ds = make_synthetic_blood(n=100, size=28)
    >>> ds.images.shape, ds.synthetic
    ((100, 28, 28, 3), True)
    """
    names, weights, render = _validate(n, size, classes, class_weights, render_size)
    if (isinstance(random_state, bool) or not isinstance(random_state, (int, np.integer))
            or random_state < 0):
        raise ConfigError(
            f"random_state must be a non-negative integer seed; got {random_state!r}."
        )
    n, size, k = int(n), int(size), len(names)
    random_state = int(random_state)
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    rows: list[dict[str, Any]] = []
    # fewer images per batch on big canvases bounds the memory of the temporaries
    batch = int(np.clip(_BATCH * (84.0 / render) ** 2, 4, _BATCH))
    for start in range(0, n, batch):
        idx = np.arange(start, min(start + batch, n))
        rngs = [np.random.default_rng(np.random.SeedSequence([random_state, int(i)])) for i in idx]
        lab = _labels(idx, k, random_state, weights, rngs)
        params = [_sample_params(rng, names[c]) for rng, c in zip(rngs, lab, strict=True)]
        images[idx] = _render_batch(params, rngs, size, render)
        labels[idx] = lab
        for i, c, p in zip(idx, lab, params, strict=True):
            rows.append({
                "index": int(i), "split": "all", "class_name": names[c],
                "angle": p["angle"], "flip": int(p["flip"]), "dx": p["dx"], "dy": p["dy"],
                "cell_radius": p["cell_r"], "n_lobes": p["n_lobes"],
                "azure": p["azure"], "eosin": p["eosin"], "hue": p["hue"],
                "brightness": float(np.mean(p["bg"])), "blur": p["blur"],
                "noise": p["noise"], "n_rbc": p["n_rbc"],
            })
    meta = pd.DataFrame(rows)
    return ImageDataset(images=images, labels=labels, class_names=names, metadata=meta,
                        name="synthetic-blood", synthetic=True)


# ----------------------------------------------------------------------------- sheet / timing
def _write_sheet(path: str, size: int, per_class: int, random_state: int, overwrite: bool,
                 scale: float = 1.0) -> None:
    """A labelled contact sheet: one row per class, ``per_class`` examples each (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tsimcne_nb._io import atomic_open, check_can_write

    check_can_write(path, overwrite)
    # balanced blocks: every K consecutive images hold each class once
    ds = make_synthetic_blood(n=per_class * len(CLASS_NAMES), size=size,
                              random_state=random_state)
    k = ds.n_classes
    fig, axes = plt.subplots(k, per_class, figsize=(per_class * 1.0 * scale + 1.6,
                                                    k * 1.0 * scale + 0.6))
    for c in range(k):
        idx = np.flatnonzero(ds.labels == c)[:per_class]
        for j in range(per_class):
            ax = axes[c, j]
            ax.imshow(ds.images[idx[j]], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
        axes[c, 0].set_ylabel(ds.class_names[c], rotation=0, ha="right", va="center",
                              fontsize=9)
    fig.suptitle(f"synthetic-blood: synthetic blood-smear images ({size}x{size} px, "
                 f"random_state={random_state}) - not real microscopy", fontsize=10)
    fig.subplots_adjust(left=0.14, right=0.99, top=0.95, bottom=0.01, wspace=0.04, hspace=0.04)
    with atomic_open(path, "wb", overwrite=overwrite) as fh:
        fig.savefig(fh, format="png", dpi=100)
    plt.close(fig)


def _main(argv: Sequence[str] | None = None) -> None:
    import argparse
    import time

    ap = argparse.ArgumentParser(
        prog="python -m tsimcne_nb.synthetic",
        description="Write the synthetic-blood contact sheet and time the generator.",
    )
    ap.add_argument("--sheet", help="write a labelled 10x10 contact sheet PNG here")
    ap.add_argument("--size", type=int, default=28, help="image side for the sheet (default 28)")
    ap.add_argument("--per-class", type=int, default=10, help="examples per class on the sheet")
    ap.add_argument("--random-state", type=int, default=0)
    ap.add_argument("--overwrite", action="store_true", help="replace an existing sheet")
    ap.add_argument("--time", type=int, default=0, metavar="N",
                    help="time generating N images at --size (single process)")
    args = ap.parse_args(argv)
    if not args.sheet and not args.time:
        ap.print_help()
    if args.sheet:
        _write_sheet(args.sheet, args.size, args.per_class, args.random_state, args.overwrite)
        print(f"wrote {args.sheet}")
    if args.time:
        t0, c0 = time.perf_counter(), time.process_time()
        make_synthetic_blood(n=args.time, size=args.size, random_state=args.random_state)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        # CPU time as well: on a busy machine wall-clock time overstates the cost
        print(f"{args.time} synthetic images at {args.size} px, one process: {dt:.2f} s wall, "
              f"{dc:.2f} s CPU ({1e3 * dc / args.time:.2f} ms/image)")


if __name__ == "__main__":
    _main()
