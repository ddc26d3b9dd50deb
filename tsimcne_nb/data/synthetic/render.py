"""The vectorised renderer of the synthetic generator: a batch of cell parameters
to anti-aliased, defocus-blurred RGB images.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tsimcne_nb.data.synthetic.cells import _FAR, _MAX_BLUR, _N_HOLES, _N_LOBES, _N_RBC, _N_SEGS


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
