"""Augmentation gallery: see what the training augmentations do to your images.

For a few chosen (or random) images, shows N augmented views per preset made by
the *training code's own* augmentation objects
(:func:`tsimcne_nb.nn.augmentations.make_augmentation`), with a button to redraw
and sliders for each augmentation's strength.  The sliders edit one preset at a
time (picked above them) and show that preset's own values; each preset keeps its
own overrides.  :meth:`AugmentationGallery.from_model` binds the gallery to the
augmentation object a fitted ``TSimCNE`` was trained with.
"""

from __future__ import annotations

import io
import pathlib
from collections.abc import Callable, Mapping, Sequence
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


def _preset_specs(presets: Any) -> dict[str, Any]:
    """Display name -> what the factory builds from (a preset name or an augmentation object)."""
    if isinstance(presets, Mapping):
        items = [(str(k), v) for k, v in presets.items()]
    elif isinstance(presets, str) or not isinstance(presets, Sequence):
        raise ConfigError(
            "presets must be a non-empty list of preset names or Augmentation objects, e.g. "
            f"('default', 'rot90'), or a dict {{name: preset}}; got {presets!r}."
        )
    else:
        items, n_custom = [], 0
        for p in presets:
            if isinstance(p, str):
                items.append((p, p))
            else:
                n_custom += 1
                items.append(("custom" if n_custom == 1 else f"custom {n_custom}", p))
    names = [k for k, _ in items]
    if not items or len(set(names)) != len(names):
        raise ConfigError(
            f"presets must be non-empty and their names unique; got names {names}."
        )
    return dict(items)


def _read_strengths(aug: Any) -> dict[str, float]:
    """The slider values of one augmentation object (the fallback where it has no such field)."""
    out = {}
    for k, (_, _, _, _, fallback) in STRENGTHS.items():
        if k == "crop_scale_min":
            scale = getattr(aug, "crop_scale", None)
            out[k] = float(scale[0]) if scale is not None else fallback
        else:
            out[k] = float(getattr(aug, k, fallback))
    return out


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
    dataset : ImageDataset or numpy.ndarray
        :class:`~tsimcne_nb.data.core.ImageDataset` or uint8 ``(N, H, W, 3)`` array.
    presets : sequence of object or mapping of str to object
        Augmentation presets: names in :data:`tsimcne_nb.nn.augmentations.PRESETS`,
        :class:`~tsimcne_nb.nn.augmentations.Augmentation` objects (shown as ``custom``,
        ``custom 2``...), or a mapping ``{display name: name or Augmentation}``.
    n_views : int
        Augmented views per image and preset.
    indices : sequence of int or numpy.ndarray or None
        Images to show; default ``n_images`` random ones.
    n_images : int
        How many random images when ``indices`` is None.
    size : int or None
        Output size of the augmentation; default the image size.
    thumbnail_size : int
        Display size of each view in pixels.
    random_state : int or None
        Seed for choosing images and for the views (a redraw advances it).
    augmentation_factory : callable or None
        ``f(preset, size, fill=..., **overrides) -> module``; default
        :func:`tsimcne_nb.nn.augmentations.make_augmentation` (the training code's).
        The module is called as ``aug(uint8_nhwc_tensor, generator=g)`` and returns
        float ``(B, 3, S, S)`` in [0, 1].

    Attributes
    ----------
    overrides : dict
        Preset name -> ``{strength: value}`` set by :meth:`set_strength` or the
        sliders; a preset without overrides uses its own values.
    preset : str
        The preset whose strengths the sliders show and edit.
    """

    def __init__(
        self,
        dataset: ImageDataset | np.ndarray,
        presets: Sequence[Any] | Mapping[str, Any] = ("default", "rot90", "randrot"),
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

        self._specs = _preset_specs(presets)
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
            idx = self._check_indices(indices)
        self._indices = idx.astype(np.int64)
        self._images = np.stack([np.asarray(self._dataset.images[int(i)]) for i in self._indices])
        self._size = int(size or self._dataset.image_shape[0])
        self._fill = self._dataset.border_color()
        # the user's factory may take any fill it likes (the default one takes a sequence)
        self._factory: Callable[..., Any]
        if augmentation_factory is None:
            from tsimcne_nb.nn.augmentations import make_augmentation

            self._factory = make_augmentation
        else:
            self._factory = augmentation_factory
        # build once now: an unknown preset fails here, not on the first redraw; the
        # objects also give each preset's own strengths for its sliders
        self._defaults_by_preset = {
            name: _read_strengths(self._make(name, {})) for name in self._specs
        }
        self.overrides: dict[str, dict[str, float]] = {name: {} for name in self._specs}
        self.preset: str = next(iter(self._specs))
        self.generation = 0
        self._views: dict[str, np.ndarray] = {}
        self._view = GalleryView(thumbnail_size=int(thumbnail_size))
        self._sliders: dict[str, Any] = {}
        self._picker: Any = None
        self._syncing = False
        self._widget: Any = None
        self._render()

    @classmethod
    def from_model(
        cls, model: Any, dataset: ImageDataset | np.ndarray, **kwargs: Any
    ) -> AugmentationGallery:
        """A gallery of the augmentation a fitted ``TSimCNE`` was trained with.

        Parameters
        ----------
        model
            A fitted :class:`~tsimcne_nb.TSimCNE` (its ``augmentation_``, the exact
            object used in training: size, fill colour and strengths), or an
            unfitted one (its ``augment`` parameter: a preset name or an augmentation).
        dataset
            The images (normally the ones the model was trained on).
        **kwargs
            Other :class:`AugmentationGallery` parameters (``indices``, ``n_views``...).

        Returns
        -------
        AugmentationGallery
            With one preset named ``"model"``.
        """
        aug = getattr(model, "augmentation_", None)
        if aug is None:
            aug = getattr(model, "augment", None)
        if aug is None:
            raise ConfigError(
                f"{type(model).__name__} has no augmentation_ (fitted) or augment parameter: "
                "pass a TSimCNE, or use AugmentationGallery(dataset, presets=[augmentation])."
            )
        return cls(dataset, presets={"model": aug}, **kwargs)

    # ----------------------------------------------------------- augmentation
    def _check_indices(self, indices: Any) -> np.ndarray:
        n = len(self._dataset)
        idx = np.asarray(indices).reshape(-1)
        if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise DataError(
                f"indices must be a non-empty list of integer image positions; got {indices!r}."
            )
        if idx.min() < 0 or idx.max() >= n:
            raise DataError(
                f"indices must lie in [0, {n - 1}]; got values in [{idx.min()}, {idx.max()}]."
            )
        return idx.astype(np.int64)

    @property
    def preset_names(self) -> list[str]:
        """Display names of the presets, in row order."""
        return list(self._specs)

    def _make(self, name: str, overrides: dict[str, Any]):
        return self._factory(self._specs[name], self._size, fill=self._fill, **overrides)

    def _aug_overrides(self, name: str) -> dict[str, Any]:
        mine = self.overrides[name]
        out: dict[str, Any] = {k: v for k, v in mine.items() if k != "crop_scale_min"}
        if "crop_scale_min" in mine:
            out["crop_scale"] = (float(mine["crop_scale_min"]), 1.0)
        return out

    def strengths(self, preset: str | None = None) -> dict[str, float]:
        """The strengths a preset draws with now: its own values with its overrides applied.

        Parameters
        ----------
        preset : str or None
            Preset name; default :attr:`preset` (the one the sliders show).

        Returns
        -------
        dict
            Strength name (see :data:`STRENGTHS`) -> value.
        """
        name = self._check_preset(preset)
        return {**self._defaults_by_preset[name], **self.overrides[name]}

    def _check_preset(self, preset: str | None) -> str:
        name = self.preset if preset is None else preset
        if name not in self._specs:
            raise ConfigError(f"unknown preset {name!r}; this gallery shows {list(self._specs)}.")
        return name

    def _augment(self) -> dict[str, np.ndarray]:
        import torch

        batch = torch.from_numpy(np.repeat(self._images, int(self.n_views), axis=0))
        views: dict[str, np.ndarray] = {}
        for p_i, preset in enumerate(self._specs):
            aug = self._make(preset, self._aug_overrides(preset))
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
        for preset in self._specs:
            for j, i in enumerate(self._indices):
                rows.append(
                    {
                        "preset": preset,
                        "active": preset == self.preset,
                        "index": int(i),
                        "label": str(names[i]),
                        "original": originals[j],
                        "views": [png_data_uri(v, None) for v in self._views[preset][j]],
                    }
                )
        note = f"{int(self.n_views)} views per image and preset; seed {self.random_state}, draw {self.generation}"
        for preset, mine in self.overrides.items():
            if mine:
                changed = ", ".join(f"{k}={v:g}" for k, v in sorted(mine.items()))
                note += f" \u00b7 {preset}: {changed}"
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

    def show_images(self, indices: Sequence[int] | np.ndarray) -> AugmentationGallery:
        """Show other images (positions in the dataset), with the same presets and overrides.

        Parameters
        ----------
        indices : sequence of int or numpy.ndarray
            Non-empty integer positions.

        Returns
        -------
        AugmentationGallery
            ``self``.
        """
        self._indices = self._check_indices(indices)
        self._images = np.stack([np.asarray(self._dataset.images[int(i)]) for i in self._indices])
        self._render()
        return self

    def redraw(self) -> AugmentationGallery:
        """Draw new random views (the button does this)."""
        self.generation += 1
        self._render()
        return self

    def set_strength(self, preset: str | None = None, **strengths: float | None) -> AugmentationGallery:
        """Override one preset's augmentation strengths (names of :data:`STRENGTHS`) and redraw.

        Only that preset changes; the same random draw is kept, so only the strength
        changes.  ``None`` restores a parameter's preset value.

        Parameters
        ----------
        preset : str or None
            Preset name; default :attr:`preset` (the one the sliders show and edit).
        **strengths : float or None
            New values, e.g. ``rotation_degrees=30``.

        Returns
        -------
        AugmentationGallery
            ``self``.
        """
        name = self._check_preset(preset)
        unknown = sorted(set(strengths) - set(STRENGTHS))
        if unknown:
            raise ConfigError(f"unknown strength(s) {unknown}; valid ones are {sorted(STRENGTHS)}.")
        for k, v in strengths.items():
            if v is None:
                continue
            _, lo, hi, _, _ = STRENGTHS[k]
            if not lo <= float(v) <= hi:
                raise ConfigError(f"{k} must lie in [{lo}, {hi}]; got {v}.")
        mine = self.overrides[name]
        for k, v in strengths.items():
            if v is None:
                mine.pop(k, None)
            elif float(v) == self._defaults_by_preset[name][k]:
                mine.pop(k, None)  # the preset's own value is no override
            else:
                mine[k] = float(v)
        self._render()
        self._sync_sliders()
        return self

    def reset(self, preset: str | None = None) -> AugmentationGallery:
        """Back to the presets' own strengths: all presets, or only ``preset``.

        Parameters
        ----------
        preset : str or None
            One preset to reset; ``None`` resets all of them.

        Returns
        -------
        AugmentationGallery
            ``self``.
        """
        names = list(self._specs) if preset is None else [self._check_preset(preset)]
        for name in names:
            self.overrides[name].clear()
        self._render()
        self._sync_sliders()
        return self

    def show_preset(self, preset: str) -> AugmentationGallery:
        """Let the sliders show and edit ``preset`` (the picker above them does this).

        Parameters
        ----------
        preset : str
            A preset name of the gallery.

        Returns
        -------
        AugmentationGallery
            ``self``.
        """
        self.preset = self._check_preset(preset)
        if self._picker is not None and self._picker.value != self.preset:
            self._syncing = True
            try:
                self._picker.value = self.preset
            finally:
                self._syncing = False
        self._sync_sliders()
        # only the highlight of the rows changes: no new augmentation
        self._view.rows = [{**r, "active": r["preset"] == self.preset} for r in self._view.rows]
        return self

    # ---------------------------------------------------------------- widgets
    def _sync_sliders(self) -> None:
        if not self._sliders:
            return
        values = self.strengths(self.preset)
        self._syncing = True
        try:
            for k, s in self._sliders.items():
                s.value = values[k]
        finally:
            self._syncing = False

    @property
    def widget(self):
        """VBox: preset picker, sliders (of the picked preset), redraw/reset buttons, the grid."""
        if self._widget is None:
            import ipywidgets as w

            values = self.strengths(self.preset)
            for k, (label, lo, hi, step, _) in STRENGTHS.items():
                slider = w.FloatSlider(
                    value=values[k],
                    min=lo,
                    max=hi,
                    step=step,
                    description=label,
                    continuous_update=False,
                    # wide enough for the longest label ("crop scale min") and readout
                    style={"description_width": "110px"},
                    layout=w.Layout(width="340px"),
                )
                slider.add_class(f"tsimcne-strength-{k}")

                def on_change(change, name=k):
                    if not self._syncing:
                        self.set_strength(**{name: change["new"]})

                slider.observe(on_change, names=["value"])
                self._sliders[k] = slider
            self._picker = w.ToggleButtons(
                options=list(self._specs),
                value=self.preset,
                description="strengths of",
                tooltips=[f"show and edit the strengths of {p}" for p in self._specs],
                style={"description_width": "110px", "button_width": "auto"},
            )
            self._picker.add_class("tsimcne-preset-picker")

            def on_pick(change):
                if not self._syncing:
                    self.show_preset(change["new"])

            self._picker.observe(on_pick, names=["value"])
            auto = w.Layout(width="auto")
            redraw = w.Button(
                description="redraw", icon="refresh", tooltip="draw new random views", layout=auto
            )
            redraw.on_click(lambda _b: self.redraw())
            reset = w.Button(
                description="preset strengths",
                tooltip="undo the slider changes of every preset",
                layout=auto,
            )
            reset.on_click(lambda _b: self.reset())
            grid = w.GridBox(
                list(self._sliders.values()),
                layout=w.Layout(grid_template_columns="repeat(auto-fill, 350px)"),
            )
            self._widget = w.VBox([self._picker, grid, w.HBox([redraw, reset]), self._view])
            self._widget.add_class("tsimcne-gallery-widget")
        return self._widget

    def static_png(self) -> bytes:
        """One PNG of the current draw (original + views per row): the static fallback."""
        from PIL import Image, ImageDraw

        size, pad, head = int(self.thumbnail_size), 3, 120
        n_rows = len(self._specs) * len(self._indices)
        n_cols = int(self.n_views) + 1
        out = Image.new("RGB", (head + n_cols * (size + pad), n_rows * (size + pad) + pad), "white")
        draw = ImageDraw.Draw(out)
        names = self._dataset.label_names
        r = 0
        for preset in self._specs:
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
            f"AugmentationGallery(presets={list(self._specs)}, n_views={self.n_views}, "
            f"images={self._indices.tolist()})"
        )
