"""AugmentationGallery: each preset's own strengths on the sliders, overrides per preset."""

from __future__ import annotations

import numpy as np
import pytest

from tsimcne_nb.data.core import ImageDataset
from tsimcne_nb.errors import ConfigError

pytest.importorskip("anywidget")
pytest.importorskip("torch")

from tsimcne_nb.widgets.gallery import AugmentationGallery  # noqa: E402


@pytest.fixture
def ds():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 12, 12, 3), dtype=np.uint8)
    return ImageDataset(images, np.arange(20) % 2, ["a", "b"], name="random", synthetic=True)


def test_sliders_show_the_viewed_presets_own_values(ds):
    g = AugmentationGallery(ds, n_views=2, n_images=1)
    assert g.strengths("default")["rotation_degrees"] == 0.0
    assert g.strengths("randrot")["rotation_degrees"] == 45.0
    assert g.widget is not None
    assert g.preset == "default" and g._sliders["rotation_degrees"].value == 0.0
    g.show_preset("randrot")
    assert g._sliders["rotation_degrees"].value == 45.0
    assert g._picker.value == "randrot"
    assert [r["active"] for r in g._view.rows] == [False, False, True]
    g._picker.value = "rot90"  # the picker in the browser does this
    assert g.preset == "rot90" and g._sliders["rotation_degrees"].value == 0.0
    with pytest.raises(ConfigError, match="unknown preset"):
        g.show_preset("nope")


def test_an_override_changes_only_its_preset(ds):
    g = AugmentationGallery(ds, n_views=3, n_images=2)
    before = g.views
    assert g.widget is not None
    g.show_preset("randrot")
    g._sliders["rotation_degrees"].value = 10.0  # moving the slider of the viewed preset
    assert g.overrides == {"default": {}, "rot90": {}, "randrot": {"rotation_degrees": 10.0}}
    after = g.views
    np.testing.assert_array_equal(before["default"], after["default"])  # same draw, untouched
    np.testing.assert_array_equal(before["rot90"], after["rot90"])
    assert not np.array_equal(before["randrot"], after["randrot"])
    g.show_preset("default")
    assert g._sliders["rotation_degrees"].value == 0.0  # not the other preset's override
    g.set_strength(preset="rot90", hue=0.2)
    assert g.strengths("rot90")["hue"] == 0.2 and g.strengths("randrot")["hue"] == 0.1
    assert "randrot: rotation_degrees=10" in g._view.note
    g.reset("randrot")
    assert g.overrides["randrot"] == {} and g.overrides["rot90"] == {"hue": 0.2}
    g.reset()
    assert all(not v for v in g.overrides.values())


def test_from_model_binds_the_models_own_augmentation(ds):
    from tsimcne_nb.nn.augmentations import make_augmentation

    class FittedModel:  # what a fitted TSimCNE exposes
        augmentation_ = make_augmentation("randrot", 12, rotation_degrees=30.0, grayscale_p=0.0)

    g = AugmentationGallery.from_model(FittedModel(), ds, n_views=2, indices=[3])
    assert g.preset_names == ["model"]
    s = g.strengths()
    assert s["rotation_degrees"] == 30.0 and s["grayscale_p"] == 0.0
    assert g.views["model"].shape == (1, 2, 12, 12, 3)
    with pytest.raises(ConfigError, match="augmentation_"):
        AugmentationGallery.from_model(object(), ds)


def test_custom_augmentation_objects_and_names(ds):
    from tsimcne_nb.nn.augmentations import make_augmentation

    a = make_augmentation("default", 12, hue=0.3)
    g = AugmentationGallery(ds, presets=["default", a], n_views=2, n_images=1)
    assert g.preset_names == ["default", "custom"]
    assert g.strengths("custom")["hue"] == pytest.approx(0.3)
    with pytest.raises(ConfigError, match="unique"):
        AugmentationGallery(ds, presets={}, n_views=2)
