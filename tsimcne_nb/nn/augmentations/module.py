"""Batched, on-device data augmentation for contrastive training.

The original t-SimCNE augmented every image separately with PIL in DataLoader
workers; for 28x28 images that (and worker start-up) dominates the GPU time.
Here one :class:`Augmentation` call augments a whole batch where the images
already are (CPU or GPU), with no Python loop over images:

* every geometric step (random resized crop, the random rotation, horizontal and
  vertical flips, multiples of 90 degrees) is composed into **one** affine
  matrix per sample, and a single affine grid (:func:`affine_grid`, equal to
  ``F.affine_grid`` but ~5x faster on the CPU) + ``grid_sample`` (bilinear)
  produces the output size directly;
* colour jitter (brightness, contrast, saturation, hue) uses per-sample factors
  applied in a per-sample random order, like torchvision's ``ColorJitter``;
* random grayscale uses the ITU-R 601-2 luma transform and keeps 3 channels.

The random parameters are drawn per sample from one ``torch.Generator`` (see
:meth:`Augmentation.sample_params`), so a seed reproduces the views, on any
device.  Presets follow the paper (Section 4) and ``RECIPE.md``:

``"default"``
    the SimCLR / t-SimCNE natural-image set: RandomResizedCrop(scale 0.2-1),
    horizontal flip, colour jitter (0.4, 0.4, 0.4, 0.1) with p = 0.8,
    grayscale with p = 0.2.
``"rot90"``
    default + vertical flip (p = 0.5) + a random multiple of 90 degrees: all 8
    symmetries of the square are equally likely.
``"randrot"``
    rot90 + a rotation by an angle uniform in [-45, 45] degrees, always applied,
    before the crop (as in the medical t-SimCNE code); corners get one
    dataset-wide fill colour (``ImageDataset.border_color()``).

Differences from the per-image torchvision pipeline, on purpose: resizing is
bilinear without antialiasing (crops are almost always *up*-sampled, where
antialiasing does nothing); at a crop's edge the neighbouring image pixels are
interpolated in instead of replicating the crop's edge (only the outermost
output pixels differ); contrast uses the mean of the float grey image
rather than PIL's rounded histogram mean.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.nn.augmentations.ops import (
    _CROP_ATTEMPTS,
    _ROT90,
    _gray,
    _pair,
    _prob,
    _shift_hue,
    affine_grid,
)

__all__ = ['Augmentation']

_PARAM_NAMES = (
    "size",
    "crop",
    "crop_scale",
    "crop_ratio",
    "hflip_p",
    "vflip_p",
    "rot90",
    "rotation_degrees",
    "fill",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "jitter_p",
    "grayscale_p",
    "rotate_before_crop",
)


class Augmentation(torch.nn.Module):
    """Random augmentation of a batch of images, fully batched on the images' device.

    Parameters
    ----------
    size : int
        Output height and width in pixels.
    crop : bool
        Random resized crop (torchvision ``RandomResizedCrop`` semantics).  With
        ``False`` the whole image is resized to ``size`` (the "no crops" ablation).
    crop_scale : (float, float)
        Range of the crop's area as a fraction of the image area.
    crop_ratio : (float, float)
        Range of the crop's aspect ratio (width / height), sampled log-uniformly.
    hflip_p, vflip_p : float
        Probabilities of a horizontal / vertical flip.
    rot90 : bool
        Rotate by a random multiple of 90 degrees (uniform over 0, 90, 180, 270).
        Together with ``vflip_p=0.5`` all 8 symmetries of the square are equally likely.
    rotation_degrees : float
        Rotate by an angle uniform in ``[-rotation_degrees, rotation_degrees]``,
        always applied when > 0 (counter-clockwise for positive angles, like
        ``torchvision.transforms.functional.rotate``).
    fill : sequence of 3 floats in [0, 255] or None
        Colour of the corners that a rotation uncovers; the paper uses the
        dataset's mean border colour, ``ImageDataset.border_color()``.  ``None``
        uses the mean border colour of the images of each batch (an
        approximation of the dataset-wide colour).
    brightness, contrast, saturation : float
        Jitter strength: factors uniform in ``[max(0, 1 - x), 1 + x]``.
    hue : float
        Hue shift uniform in ``[-hue, hue]`` (in turns, at most 0.5).
    jitter_p : float
        Probability of applying the colour jitter (all four in a random order).
    grayscale_p : float
        Probability of converting to grayscale (3 equal channels).
    rotate_before_crop : bool
        Rotate the full image, then crop (the medical t-SimCNE code; part of the
        filled corners is cropped away).  ``False`` rotates the crop instead.

    Notes
    -----
    Input: uint8 ``(B, H, W, 3)`` (NHWC, as stored) or float ``(B, 3, H, W)`` in
    [0, 1], as a tensor (any device) or numpy array.  Output: float32
    ``(B, 3, size, size)`` in [0, 1] on the same device, channels_last memory format.

    The random parameters (a few numbers per image) are drawn on the generator's
    device (the CPU when no generator is given) and then moved to the images'
    device, so a CPU generator with a given seed produces the same views on the
    CPU and on a GPU (up to floating-point rounding).
    """

    def __init__(
        self,
        size: int,
        crop: bool = True,
        crop_scale: Sequence[float] = (0.2, 1.0),
        crop_ratio: Sequence[float] = (3 / 4, 4 / 3),
        hflip_p: float = 0.5,
        vflip_p: float = 0.0,
        rot90: bool = False,
        rotation_degrees: float = 0.0,
        fill: Sequence[float] | None = None,
        brightness: float = 0.4,
        contrast: float = 0.4,
        saturation: float = 0.4,
        hue: float = 0.1,
        jitter_p: float = 0.8,
        grayscale_p: float = 0.2,
        rotate_before_crop: bool = True,
    ) -> None:
        super().__init__()
        self.size = size
        self.crop = crop
        self.crop_scale = crop_scale
        self.crop_ratio = crop_ratio
        self.hflip_p = hflip_p
        self.vflip_p = vflip_p
        self.rot90 = rot90
        self.rotation_degrees = rotation_degrees
        self.fill = fill
        self.brightness = brightness
        self.contrast = contrast
        self.saturation = saturation
        self.hue = hue
        self.jitter_p = jitter_p
        self.grayscale_p = grayscale_p
        self.rotate_before_crop = rotate_before_crop
        self._validate()

    # ------------------------------------------------------------------ config
    def _validate(self) -> None:
        if (
            isinstance(self.size, bool)
            or not isinstance(self.size, (int, np.integer))
            or self.size < 1
        ):
            raise ConfigError(
                f"size must be a positive integer (output pixels); got {self.size!r}."
            )
        lo, hi = _pair("crop_scale", self.crop_scale)
        if not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(
                f"crop_scale must satisfy 0 < low <= high <= 1; got {self.crop_scale!r}."
            )
        lo, hi = _pair("crop_ratio", self.crop_ratio)
        if not 0.0 < lo <= hi:
            raise ConfigError(f"crop_ratio must satisfy 0 < low <= high; got {self.crop_ratio!r}.")
        for name in ("hflip_p", "vflip_p", "jitter_p", "grayscale_p"):
            _prob(name, getattr(self, name))
        for name in ("brightness", "contrast", "saturation", "rotation_degrees"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ConfigError(f"{name} must be a number >= 0; got {v!r}.")
        if (
            isinstance(self.hue, bool)
            or not isinstance(self.hue, (int, float))
            or not 0 <= self.hue <= 0.5
        ):
            raise ConfigError(f"hue must be a number in [0, 0.5]; got {self.hue!r}.")
        for name in ("crop", "rot90", "rotate_before_crop"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False; got {getattr(self, name)!r}.")
        if self.fill is not None:
            try:
                f = [float(v) for v in self.fill]
            except (TypeError, ValueError) as exc:
                raise ConfigError(
                    f"fill must be 3 numbers in [0, 255] (an RGB colour) or None; got {self.fill!r}."
                ) from exc
            if len(f) != 3 or not all(0.0 <= v <= 255.0 for v in f):
                raise ConfigError(
                    f"fill must be 3 numbers in [0, 255] (an RGB colour, e.g. "
                    f"ImageDataset.border_color()) or None; got {self.fill!r}."
                )

    def describe(self) -> dict[str, Any]:
        """The parameters as a JSON-able dict (tuples become lists), for manifests."""
        out: dict[str, Any] = {}
        for name in _PARAM_NAMES:
            v = getattr(self, name)
            if name in ("crop_scale", "crop_ratio"):
                v = [float(x) for x in v]
            elif name == "fill":
                v = None if v is None else [float(x) for x in v]
            elif name in ("crop", "rot90", "rotate_before_crop"):
                v = bool(v)
            elif name == "size":
                v = int(v)
            else:
                v = float(v)
            out[name] = v
        return out

    def to_config(self) -> dict[str, Any]:
        """Parameters for :meth:`from_config` (the same JSON-able dict as :meth:`describe`)."""
        return self.describe()

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Augmentation:
        """Rebuild an augmentation from :meth:`to_config` output."""
        if not isinstance(config, dict):
            raise ConfigError(
                f"an augmentation config must be a dict; got {type(config).__name__}."
            )
        unknown = sorted(set(config) - set(_PARAM_NAMES))
        if unknown:
            raise ConfigError(
                f"unknown augmentation parameter(s) {unknown}; valid ones are {list(_PARAM_NAMES)}."
            )
        if "size" not in config:
            raise ConfigError("an augmentation config needs 'size' (output pixels).")
        kwargs = dict(config)
        for name in ("crop_scale", "crop_ratio"):
            if name in kwargs:
                kwargs[name] = tuple(kwargs[name])
        if kwargs.get("fill") is not None:
            kwargs["fill"] = tuple(kwargs["fill"])
        return cls(**kwargs)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.describe().items())

    # ------------------------------------------------------------ parameters
    def sample_params(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        height: int | None = None,
        width: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Draw the random parameters of ``batch_size`` views of ``height x width`` images.

        Every random number is drawn whether or not its step is enabled, so that
        switching one step off (an ablation) leaves the others' draws unchanged.

        Parameters
        ----------
        batch_size : int
            Number of views.
        generator : torch.Generator, optional
            Source of randomness; the parameters live on its device (the CPU
            when it is None, which then uses torch's global generator).
        height, width : int, optional
            Input image size (default ``size``).

        Returns
        -------
        dict of str to Tensor
            ``crop_box`` (B, 4) int64 ``(top, left, height, width)`` in input
            pixels; ``hflip``, ``vflip`` (B,) bool; ``rot90`` (B,) int64 number of
            quarter turns (``torch.rot90`` direction); ``angle`` (B,) float64
            degrees; ``jitter`` (B,) bool
            (jitter applied); ``brightness``, ``contrast``, ``saturation``, ``hue``
            (B,) float64 factors as drawn (used only where ``jitter``);
            ``jitter_order`` (B, 4) int64, a permutation of 0 = brightness,
            1 = contrast, 2 = saturation, 3 = hue; ``grayscale`` (B,) bool.
        """
        n = int(batch_size)
        H = self.size if height is None else int(height)
        W = self.size if width is None else int(width)
        dev = generator.device if generator is not None else torch.device("cpu")
        f64 = dict(dtype=torch.float64, device=dev)

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=generator, **f64)

        # ---- crop: torchvision RandomResizedCrop.get_params, vectorised over the batch
        u_area, u_ratio = rand(n, _CROP_ATTEMPTS), rand(n, _CROP_ATTEMPTS)
        u_top, u_left = rand(n), rand(n)
        s_lo, s_hi = (float(v) for v in self.crop_scale)
        r_lo, r_hi = (float(v) for v in self.crop_ratio)
        if self.crop:
            target = H * W * (s_lo + (s_hi - s_lo) * u_area)
            log_lo, log_hi = math.log(r_lo), math.log(r_hi)
            aspect = torch.exp(log_lo + (log_hi - log_lo) * u_ratio)
            cw = torch.round(torch.sqrt(target * aspect))
            ch = torch.round(torch.sqrt(target / aspect))
            ok = (cw > 0) & (cw <= W) & (ch > 0) & (ch <= H)
            first = ok.to(torch.int32).argmax(dim=1, keepdim=True)  # first valid attempt
            found = ok.any(dim=1)
            cw = cw.gather(1, first).squeeze(1)
            ch = ch.gather(1, first).squeeze(1)
            top = torch.floor(u_top * (H - ch + 1))
            left = torch.floor(u_left * (W - cw + 1))
            # fallback after 10 failed attempts: the largest central crop within the ratio range
            in_ratio = W / H
            if in_ratio < r_lo:
                fw, fh = W, int(round(W / r_lo))
            elif in_ratio > r_hi:
                fh, fw = H, int(round(H * r_hi))
            else:
                fw, fh = W, H
            cw = torch.where(found, cw, torch.full_like(cw, fw))
            ch = torch.where(found, ch, torch.full_like(ch, fh))
            top = torch.where(found, top, torch.full_like(top, (H - fh) // 2))
            left = torch.where(found, left, torch.full_like(left, (W - fw) // 2))
        else:
            top, left = torch.zeros(n, **f64), torch.zeros(n, **f64)
            ch, cw = torch.full((n,), float(H), **f64), torch.full((n,), float(W), **f64)

        # ---- symmetries and rotation
        u_h, u_v, u_k, u_a = rand(n), rand(n), rand(n), rand(n)
        hflip = u_h < self.hflip_p
        vflip = u_v < self.vflip_p
        k = (
            torch.floor(u_k * 4).long().clamp_(max=3)
            if self.rot90
            else torch.zeros(n, dtype=torch.long, device=dev)
        )
        d = float(self.rotation_degrees)
        angle = (2 * u_a - 1) * d

        # ---- colour
        u_jit, u_gray = rand(n), rand(n)
        u_fac = rand(n, 4)
        order = rand(n, 4).argsort(dim=1)
        facs = []
        for j, strength in enumerate((self.brightness, self.contrast, self.saturation)):
            lo, hi = max(0.0, 1.0 - float(strength)), 1.0 + float(strength)
            facs.append(lo + (hi - lo) * u_fac[:, j])
        hue = (2 * u_fac[:, 3] - 1) * float(self.hue)

        return {
            "crop_box": torch.stack([top, left, ch, cw], dim=1).long(),
            "hflip": hflip,
            "vflip": vflip,
            "rot90": k,
            "angle": angle,
            "jitter": u_jit < self.jitter_p,
            "brightness": facs[0],
            "contrast": facs[1],
            "saturation": facs[2],
            "hue": hue,
            "jitter_order": order,
            "grayscale": u_gray < self.grayscale_p,
        }

    def affine_matrices(
        self, params: dict[str, torch.Tensor], height: int, width: int
    ) -> torch.Tensor:
        """One (B, 2, 3) float64 sampling matrix per view for ``F.affine_grid(align_corners=False)``.

        Maps output coordinates in [-1, 1] to input coordinates in [-1, 1].

        Image operations applied in the order rotate -> crop -> flips -> rot90
        compose as sampling maps in the same left-to-right order.  The crop and
        the rotation (before the crop) are expressed in centred input pixels so
        that a rotation stays a rotation on non-square images.
        """
        H, W = int(height), int(width)
        box = params["crop_box"].to(torch.float64)
        top, left, ch, cw = box.unbind(1)
        hflip, vflip, k, angle = (
            params["hflip"],
            params["vflip"],
            params["rot90"].long(),
            params["angle"],
        )
        n = top.shape[0]
        dev = top.device
        # flips then quarter turns, acting on the (square) output grid
        sx = torch.where(hflip, -1.0, 1.0).to(torch.float64)
        sy = torch.where(vflip, -1.0, 1.0).to(torch.float64)
        dih = torch.diag_embed(torch.stack([sx, sy], 1)) @ _ROT90.to(dev)[k]
        # inverse rotation as torchvision.transforms.functional.rotate samples it
        a = torch.deg2rad(angle)
        c, s = torch.cos(a), torch.sin(a)
        rot = torch.stack([torch.stack([c, -s], 1), torch.stack([s, c], 1)], 1)
        half = torch.diag_embed(torch.stack([cw / 2, ch / 2], 1))  # output [-1,1] -> crop half-size
        centre = torch.stack([left + cw / 2 - W / 2, top + ch / 2 - H / 2], 1).unsqueeze(2)
        if self.rotate_before_crop:
            lin = rot @ half @ dih
            trans = rot @ centre
        else:  # rotate the resized crop about its centre
            lin = half @ rot @ dih
            trans = centre
        norm = torch.tensor([[2.0 / W, 0.0], [0.0, 2.0 / H]], dtype=torch.float64, device=dev)
        theta = torch.cat([norm @ lin, norm @ trans], dim=2)
        return theta.reshape(n, 2, 3)

    # ---------------------------------------------------------------- forward
    @staticmethod
    def _to_float_nchw(images: Any) -> torch.Tensor:
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        if not isinstance(images, torch.Tensor):
            raise DataError(
                f"images must be a torch.Tensor or numpy array; got {type(images).__name__}. "
                "Pass uint8 (B, H, W, 3) or float (B, 3, H, W) in [0, 1]."
            )
        if images.ndim != 4:
            raise DataError(
                f"images must be 4-D, uint8 (B, H, W, 3) or float (B, 3, H, W); got shape {tuple(images.shape)}."
            )
        if images.dtype == torch.uint8:
            if images.shape[-1] != 3:
                raise DataError(
                    f"uint8 images must be NHWC (B, H, W, 3) as stored; got shape {tuple(images.shape)}. "
                    "Convert grayscale/RGBA with tsimcne_nb.validation.validate_images first."
                )
            # permute of NHWC is already channels_last; the division keeps that layout
            return images.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        if images.is_floating_point():
            if images.shape[1] != 3:
                raise DataError(
                    f"float images must be NCHW (B, 3, H, W) in [0, 1]; got shape {tuple(images.shape)}."
                )
            return images.to(torch.float32)
        raise DataError(
            f"images must be uint8 (B, H, W, 3) or float (B, 3, H, W) in [0, 1]; got dtype {images.dtype}."
        )

    def forward(self, images: Any, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch: one independently random view per image.

        Parameters
        ----------
        images : Tensor or ndarray
            uint8 ``(B, H, W, 3)`` or float ``(B, 3, H, W)`` in [0, 1], any device.
        generator : torch.Generator, optional
            Source of randomness (see :meth:`sample_params`).

        Returns
        -------
        Tensor
            float32 ``(B, 3, size, size)`` in [0, 1], same device, channels_last.
        """
        x = self._to_float_nchw(images)
        params = self.sample_params(x.shape[0], generator, x.shape[2], x.shape[3])
        return self._apply(x, params)

    def apply(self, images: Any, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Augment with given parameters (from :meth:`sample_params`, possibly edited)."""
        return self._apply(self._to_float_nchw(images), params)

    def _apply(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        B = x.shape[0]
        if params["crop_box"].shape[0] != B:
            raise DataError(
                f"params are for {params['crop_box'].shape[0]} views but {B} images were given."
            )
        dev = x.device
        # composed where the parameters live (tiny, float64), then one transfer
        theta = self.affine_matrices(params, x.shape[2], x.shape[3]).to(
            dev, torch.float32, non_blocking=True
        )
        p = {k: v.to(dev, non_blocking=True) for k, v in params.items()}
        grid = affine_grid(theta, self.size, self.size)
        if self.rotation_degrees > 0:
            # Only a rotation samples outside the image: pad with zeros, warp a ones-mask
            # alongside and add (1 - mask) * fill, i.e. exactly "pad with the fill colour".
            fill = self._fill_colour(x)
            ones = torch.ones_like(x[:, :1])
            out4 = F.grid_sample(
                torch.cat([x, ones], 1), grid, "bilinear", "zeros", align_corners=False
            )
            out = out4[:, :3] + (1.0 - out4[:, 3:]) * fill.view(1, 3, 1, 1)
        else:
            # "border" reproduces resize semantics at the crop edge (F.interpolate clamps)
            out = F.grid_sample(x, grid, "bilinear", "border", align_corners=False)
        out = out.clamp_(0.0, 1.0)
        if self.jitter_p > 0:
            out = self._jitter(out, p)
        if self.grayscale_p > 0:
            out = torch.where(p["grayscale"].view(B, 1, 1, 1), _gray(out).expand_as(out), out)
        return out.contiguous(memory_format=torch.channels_last)

    def _fill_colour(self, x: torch.Tensor) -> torch.Tensor:
        if self.fill is not None:
            return torch.tensor(
                [float(v) / 255.0 for v in self.fill], dtype=x.dtype, device=x.device
            )
        # mean colour of the batch's border pixels (corners counted once)
        edges = torch.cat(
            [
                x[:, :, 0, :].flatten(2),
                x[:, :, -1, :].flatten(2),
                x[:, :, 1:-1, 0].flatten(2),
                x[:, :, 1:-1, -1].flatten(2),
            ],
            dim=2,
        )
        return edges.mean(dim=(0, 2))

    def _jitter(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        """ColorJitter with per-sample factors and per-sample random order, without a loop over images."""
        B = x.shape[0]
        on = p["jitter"]
        one = torch.ones(B, dtype=x.dtype, device=x.device)
        # identity factors where the jitter is not applied: 1 * x + 0 * ref == x exactly
        fb = torch.where(on, p["brightness"].to(x.dtype), one)
        fc = torch.where(on, p["contrast"].to(x.dtype), one)
        fs = torch.where(on, p["saturation"].to(x.dtype), one)
        hue = p["hue"].to(x.dtype)
        do_blend = any(float(v) > 0 for v in (self.brightness, self.contrast, self.saturation))
        do_hue = float(self.hue) > 0
        for step in range(4):
            op = p["jitter_order"][:, step]
            if do_blend:
                f = torch.where(
                    op == 0, fb, torch.where(op == 1, fc, torch.where(op == 2, fs, one))
                )
                gray = _gray(x)
                is_c = (op == 1).to(x.dtype).view(B, 1, 1, 1)
                is_s = (op == 2).to(x.dtype).view(B, 1, 1, 1)
                # reference image: 0 (brightness), grey mean (contrast), grey image (saturation)
                ref = is_c * gray.mean(dim=(1, 2, 3), keepdim=True) + is_s * gray
                f = f.view(B, 1, 1, 1)
                x = (f * x + (1.0 - f) * ref).clamp_(0.0, 1.0)
            if do_hue:
                sel = (op == 3) & on
                if x.device.type == "cpu":
                    # on the CPU indexing is cheap and saves 3/4 of the hue work
                    idx = sel.nonzero().squeeze(1)
                    if idx.numel():
                        x = x.clone()
                        x[idx] = _shift_hue(x[idx], hue[idx])
                else:  # no host synchronisation on accelerators
                    x = torch.where(sel.view(B, 1, 1, 1), _shift_hue(x, hue), x)
        return x
