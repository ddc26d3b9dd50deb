"""Cell parameters of the synthetic blood-smear generator: class names, stain
colours and the random shape parameters of one cell of each class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ['CLASS_NAMES']

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
