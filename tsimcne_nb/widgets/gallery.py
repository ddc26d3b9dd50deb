"""Augmentation gallery: see what the training augmentations do to your images.

For a few chosen (or random) images, shows N augmented views per preset made by
the *training code's own* augmentation objects
(:func:`tsimcne_nb.augmentations.make_augmentation`), with a button to redraw
and sliders for each augmentation's strength.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import numpy as np
import traitlets

from tsimcne_nb.data.core import ImageDataset, as_dataset
from tsimcne_nb.errors import ConfigError, DataError
from tsimcne_nb.widgets._display import StaticFallbackDisplay
from tsimcne_nb.widgets.thumbnails import png_data_uri

#: slider name -> (label, min, max, step, Augmentation default when it cannot be read)
STRENGTHS: dict[str, tuple[str, float, float, float, float]] = {
    "crop_scale_min": ("crop scale min", 0.05, 1.0, 0.05, 0.2),
    "brightness": ("brightness", 0.0, 1.0, 0.05, 0.4),
    "contrast": ("contrast", 0.0, 1.0, 0.05, 0.4),
    "saturation": ("saturation", 0.0, 1.0, 0.05, 0.4),
    "hue": ("hue", 0.0, 0.5, 0.01, 0.1),
    "jitter_p": ("jitter p", 0.0, 1.0, 0.05, 0.8),
    "grayscale_p": ("grayscale p", 0.0, 1.0, 0.05, 0.2),
    "rotation_degrees": ("rotation \u00b0", 0.0, 180.0, 5.0, 0.0),
}


class GalleryView(anywidget.AnyWidget):
    """Rows of ``{preset, index, label, original, views}`` (PNG data URIs); see gallery.js."""

    _esm = pathlib.Path(__file__).parent / "gallery.js"

    rows = traitlets.List(traitlets.Dict()).tag(sync=True)
    thumbnail_size = traitlets.Int(64).tag(sync=True)
    note = traitlets.Unicode("").tag(sync=True)
    generation = traitlets.Int(0).tag(sync=True)


def _to_uint8_nhwc(views: Any) -> np.ndarray:
    """float (B, 3, S, S) in [0, 1] (torch or numpy) -> uint8 (B, S, S, 3)."""
    if hasattr(views, "detach"):
        views = views.detach().float().cpu().numpy()
    arr = np.asarray(views, dtype=np.float32)
    if arr.ndim != 4 or arr.shape[1] != 3:
        raise DataError(
            f"the augmentation must return float (B, 3, S, S) views; got shape {arr.shape}."
        )
    return np.ascontiguousarray(
        np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    )


class AugmentationGallery(StaticFallbackDisplay):
    """A grid of augmented views per preset, redrawn by a button, with strength sliders.

    Parameters
    ----------
    dataset
        :class:`~tsimcne_nb.datasets.core.ImageDataset` or uint8 ``(N, H, W, 3)`` array.
    presets
        Augmentation presets (names in :data:`tsimcne_nb.augmentations.PRESETS`).
    n_views
        Augmented views per image and preset.
    indices
        Images to show; default ``n_images`` random ones.
    n_images
        How many random images when ``indices`` is None.
    size
        Output size of the augmentation; default the image size.
    thumbnail_size
        Display size of each view in pixels.
    random_state
        Seed for choosing images and for the views (a redraw advances it).
    augmentation_factory
        ``f(preset, size, fill=..., **overrides) -> module``; default
        :func:`tsimcne_nb.augmentations.make_augmentation` (the training code's).
        The module is called as ``aug(uint8_nhwc_tensor, generator=g)`` and returns
        float ``(B, 3, S, S)`` in [0, 1].
    """

    def __init__(
        self,
        dataset: ImageDataset | np.ndarray,
        presets: Sequence[str] = ("default", "rot90", "randrot"),
        n_views: int = 8,
        indices: Sequence[int] | np.ndarray | None = None,
        n_images: int = 3,
        size: int | None = None,
        thumbnail_size: int = 64,
        random_state: int | None = 0,
        augmentation_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.dataset = dataset
        self.presets = presets
        self.n_views = n_views
        self.indices = indices
        self.n_images = n_images
        self.size = size
        self.thumbnail_size = thumbnail_size
        self.random_state = random_state
        self.augmentation_factory = augmentation_factory

        if isinstance(presets, str) or len(presets) == 0:
            raise ConfigError(
                f"presets must be a non-empty list of preset names, e.g. ('default', 'rot90'); got {presets!r}."
            )
        if int(n_views) < 1:
            raise ConfigError(f"n_views must be >= 1; got {n_views}.")
        self._dataset = as_dataset(dataset)
        n = len(self._dataset)
        if indices is None:
            if int(n_images) < 1:
                raise ConfigError(f"n_images must be >= 1; got {n_images}.")
            rng = np.random.default_rng(random_state)
            idx = np.sort(rng.choice(n, size=min(int(n_images), n), replace=False))
        else:
            idx = np.asarray(indices).reshape(-1)
            if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
                raise DataError(
                    f"indices must be a non-empty list of integer image positions; got {indices!r}."
                )
            if idx.min() < 0 or idx.max() >= n:
                raise DataError(
                    f"indices must lie in [0, {n - 1}]; got values in [{idx.min()}, {idx.max()}]."
                )
        self._indices = idx.astype(np.int64)
        self._images = np.stack([np.asarray(self._dataset.images[int(i)]) for i in self._indices])
        self._size = int(size or self._dataset.image_shape[0])
        self._fill = self._dataset.border_color()
        if augmentation_factory is None:
            from tsimcne_nb.nn.augmentations import make_augmentation

            self._factory = make_augmentation
        else:
            self._factory = augmentation_factory
        # build once now: an unknown preset fails here, not on the first redraw
        self._make(presets[0], {})
        for p in presets[1:]:
            self._make(p, {})
        self.overrides: dict[str, Any] = {}
        self.generation = 0
        self._views: dict[str, np.ndarray] = {}
        self._view = GalleryView(thumbnail_size=int(thumbnail_size))
        self._sliders: dict[str, Any] = {}
        self._default_strengths: dict[str, float] | None = None
        self._syncing = False
        self._widget: Any = None
        self._render()

    # ----------------------------------------------------------- augmentation
    def _make(self, preset: str, overrides: dict[str, Any]):
        return self._factory(preset, self._size, fill=self._fill, **overrides)

    def _aug_overrides(self) -> dict[str, Any]:
        out = {k: v for k, v in self.overrides.items() if k != "crop_scale_min"}
        if "crop_scale_min" in self.overrides:
            out["crop_scale"] = (float(self.overrides["crop_scale_min"]), 1.0)
        return out

    def _augment(self) -> dict[str, np.ndarray]:
        import torch

        batch = torch.from_numpy(np.repeat(self._images, int(self.n_views), axis=0))
        views: dict[str, np.ndarray] = {}
        overrides = self._aug_overrides()
        for p_i, preset in enumerate(self.presets):
            aug = self._make(preset, overrides)
            g = torch.Generator().manual_seed(
                int(
                    np.random.SeedSequence(
                        [self.random_state or 0, self.generation, p_i]
                    ).generate_state(1)[0]
                )
            )
            with torch.no_grad():
                out = _to_uint8_nhwc(aug(batch, generator=g))
            views[preset] = out.reshape(len(self._images), int(self.n_views), *out.shape[1:])
        return views

    def _render(self) -> None:
        self._views = self._augment()
        names = self._dataset.label_names
        size = int(self.thumbnail_size)
        rows = []
        originals = [png_data_uri(img, None) for img in self._images]
        for preset in self.presets:
            for j, i in enumerate(self._indices):
                rows.append(
                    {
                        "preset": preset,
                        "index": int(i),
                        "label": str(names[i]),
                        "original": originals[j],
                        "views": [png_data_uri(v, None) for v in self._views[preset][j]],
                    }
                )
        note = f"{int(self.n_views)} views per image and preset; seed {self.random_state}, draw {self.generation}"
        if self.overrides:
            note += " \u00b7 " + ", ".join(f"{k}={v:g}" for k, v in sorted(self.overrides.items()))
        if self._dataset.synthetic:
            note += " \u00b7 synthetic data"
        with self._view.hold_sync():
            self._view.thumbnail_size = size
            self._view.note = note
            self._view.rows = rows
            self._view.generation = self.generation

    # ------------------------------------------------------------- public API
    @property
    def views(self) -> dict[str, np.ndarray]:
        """Preset -> uint8 ``(n_images, n_views, S, S, 3)`` of the current draw (copies)."""
        return {k: v.copy() for k, v in self._views.items()}

    @property
    def image_indices(self) -> np.ndarray:
        return self._indices.copy()

    def redraw(self) -> AugmentationGallery:
        """Draw new random views (the button does this)."""
        self.generation += 1
        self._render()
        return self

    def set_strength(self, **strengths: float) -> AugmentationGallery:
        """Override augmentation strengths (names of :data:`STRENGTHS`) and redraw.

        The same random draw is kept, so only the strength changes.  ``None``
        restores a parameter's preset value.
        """
        unknown = sorted(set(strengths) - set(STRENGTHS))
        if unknown:
            raise ConfigError(f"unknown strength(s) {unknown}; valid ones are {sorted(STRENGTHS)}.")
        for k, v in strengths.items():
            if v is None:
                self.overrides.pop(k, None)
                continue
            _, lo, hi, _, _ = STRENGTHS[k]
            if not lo <= float(v) <= hi:
                raise ConfigError(f"{k} must lie in [{lo}, {hi}]; got {v}.")
            self.overrides[k] = float(v)
        self._render()
        self._sync_sliders()
        return self

    def reset(self) -> AugmentationGallery:
        """Back to the presets' own strengths."""
        self.overrides.clear()
        self._render()
        self._sync_sliders()
        return self

    # ---------------------------------------------------------------- widgets
    def _defaults(self) -> dict[str, float]:
        # the first preset's strengths, read off the augmentation object once
        if self._default_strengths is not None:
            return self._default_strengths
        aug = self._make(self.presets[0], {})
        out = {}
        for k, (_, _, _, _, fallback) in STRENGTHS.items():
            if k == "crop_scale_min":
                scale = getattr(aug, "crop_scale", None)
                out[k] = float(scale[0]) if scale is not None else fallback
            else:
                out[k] = float(getattr(aug, k, fallback))
        self._default_strengths = out
        return out

    def _sync_sliders(self) -> None:
        if not self._sliders:
            return
        defaults = self._defaults()
        self._syncing = True
        try:
            for k, s in self._sliders.items():
                s.value = self.overrides.get(k, defaults[k])
        finally:
            self._syncing = False

    @property
    def widget(self):
        """VBox: sliders, redraw/reset buttons, and the grid of views."""
        if self._widget is None:
            import ipywidgets as w

            defaults = self._defaults()
            for k, (label, lo, hi, step, _) in STRENGTHS.items():
                slider = w.FloatSlider(
                    value=self.overrides.get(k, defaults[k]),
                    min=lo,
                    max=hi,
                    step=step,
                    description=label,
                    continuous_update=False,
                    style={"description_width": "90px"},
                    layout=w.Layout(width="300px"),
                )

                def on_change(change, name=k):
                    if not self._syncing:
                        self.set_strength(**{name: change["new"]})

                slider.observe(on_change, names=["value"])
                self._sliders[k] = slider
            redraw = w.Button(description="redraw", icon="refresh", tooltip="draw new random views")
            redraw.on_click(lambda _b: self.redraw())
            reset = w.Button(description="preset strengths", tooltip="undo the slider changes")
            reset.on_click(lambda _b: self.reset())
            grid = w.GridBox(
                list(self._sliders.values()),
                layout=w.Layout(grid_template_columns="repeat(auto-fill, 310px)"),
            )
            self._widget = w.VBox([grid, w.HBox([redraw, reset]), self._view])
        return self._widget

    def static_png(self) -> bytes:
        """One PNG of the current draw (original + views per row): the static fallback."""
        from PIL import Image, ImageDraw

        size, pad, head = int(self.thumbnail_size), 3, 120
        n_rows = len(self.presets) * len(self._indices)
        n_cols = int(self.n_views) + 1
        out = Image.new("RGB", (head + n_cols * (size + pad), n_rows * (size + pad) + pad), "white")
        draw = ImageDraw.Draw(out)
        names = self._dataset.label_names
        r = 0
        for preset in self.presets:
            for j, i in enumerate(self._indices):
                y = pad + r * (size + pad)
                draw.text((2, y + size // 2 - 6), f"{preset} #{i} {names[i]}"[:20], fill=(0, 0, 0))
                tiles = [self._images[j], *self._views[preset][j]]
                for c, tile in enumerate(tiles):
                    im = Image.fromarray(tile).resize((size, size), Image.Resampling.NEAREST)
                    out.paste(im, (head + c * (size + pad), y))
                r += 1
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        return buf.getvalue()

    def __repr__(self) -> str:
        return (
            f"AugmentationGallery(presets={list(self.presets)}, n_views={self.n_views}, "
            f"images={self._indices.tolist()})"
        )
