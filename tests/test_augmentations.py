"""Tests of the batched augmentations against torchvision's per-image transforms (CPU)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = pytest.importorskip("torchvision.transforms.functional")
from torchvision import transforms as T  # noqa: E402

from tsimcne_nb.errors import ConfigError, DataError  # noqa: E402
from tsimcne_nb.nn.augmentations import (  # noqa: E402
    PRESETS,
    Augmentation,
    affine_grid,
    make_augmentation,
    two_views,
)

N = 20000  # parameter draws for the distribution tests (vectorised: milliseconds)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def plain(size: int = 28, **kw) -> Augmentation:
    """No randomness unless asked for: the identity augmentation."""
    base = dict(crop=False, hflip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    base.update(kw)
    return Augmentation(size, **base)


@pytest.fixture
def images() -> torch.Tensor:
    return torch.randint(0, 256, (6, 28, 28, 3), dtype=torch.uint8, generator=gen(1))


def _ks(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(a, b).statistic)


# ----------------------------------------------------------------- crop distribution
@pytest.mark.parametrize("hw", [(28, 28), (32, 20)])
def test_crop_distribution_matches_torchvision(hw):
    H, W = hw
    aug = Augmentation(28)
    box = aug.sample_params(N, gen(0), H, W)["crop_box"].numpy().astype(float)
    area = box[:, 2] * box[:, 3] / (H * W)
    ratio = box[:, 3] / box[:, 2]
    torch.manual_seed(0)
    img = torch.zeros(3, H, W)
    ref = np.array(
        [T.RandomResizedCrop.get_params(img, [0.2, 1.0], [3 / 4, 4 / 3]) for _ in range(4000)],
        float,
    )
    ref_area = ref[:, 2] * ref[:, 3] / (H * W)
    ref_ratio = ref[:, 3] / ref[:, 2]
    assert _ks(area, ref_area) < 0.04
    assert _ks(ratio, ref_ratio) < 0.04
    assert abs(area.mean() - ref_area.mean()) < 0.015
    # crop positions: every crop inside the image, top uniform over the free range
    assert (box[:, 0] >= 0).all() and (box[:, 0] + box[:, 2] <= H).all()
    assert (box[:, 1] >= 0).all() and (box[:, 1] + box[:, 3] <= W).all()
    rel_top = box[:, 0] / np.maximum(H - box[:, 2], 1)
    ref_top = ref[:, 0] / np.maximum(H - ref[:, 2], 1)
    assert _ks(rel_top, ref_top) < 0.05


def test_crop_fallback_is_central_and_within_ratio():
    # scale range impossible to satisfy on a 4x40 image -> torchvision's fallback crop
    aug = Augmentation(8, crop_scale=(0.9, 1.0))
    box = aug.sample_params(200, gen(0), 4, 40)["crop_box"].numpy()
    torch.manual_seed(0)
    ref = T.RandomResizedCrop.get_params(torch.zeros(3, 4, 40), [0.9, 1.0], [3 / 4, 4 / 3])
    assert tuple(box[0]) == tuple(ref)
    assert (box == box[0]).all()


def test_no_crop_uses_whole_image():
    box = plain(28).sample_params(50, gen(0), 30, 30)["crop_box"].numpy()
    assert (box == np.array([0, 0, 30, 30])).all()


# ------------------------------------------------------------------- symmetries
def test_flip_frequencies():
    p = Augmentation(28, vflip_p=0.5).sample_params(N, gen(2))
    assert abs(p["hflip"].float().mean().item() - 0.5) < 0.015
    assert abs(p["vflip"].float().mean().item() - 0.5) < 0.015
    p = Augmentation(28).sample_params(N, gen(2))
    assert not p["vflip"].any()


def test_rot90_uniform_over_four():
    k = make_augmentation("rot90", 28).sample_params(N, gen(3))["rot90"].numpy()
    counts = np.bincount(k, minlength=4) / N
    assert counts.shape == (4,)
    assert np.abs(counts - 0.25).max() < 0.015
    assert (make_augmentation("default", 28).sample_params(100, gen(3))["rot90"] == 0).all()


def test_dihedral_group_uniform_over_eight():
    aug = make_augmentation("rot90", 28)
    p = aug.sample_params(N, gen(4))
    theta = aug.affine_matrices(p, 28, 28)[:, :, :2]
    # geometry of the output grid only (crop scaling removed): a signed permutation matrix
    elem = torch.sign(theta).round().long().reshape(N, 4).numpy()
    keys, counts = np.unique(elem, axis=0, return_counts=True)
    assert len(keys) == 8
    assert np.abs(counts / N - 1 / 8).max() < 0.012


def test_rotation_angle_uniform():
    angle = make_augmentation("randrot", 28).sample_params(N, gen(5))["angle"].numpy()
    assert angle.min() >= -45 and angle.max() <= 45
    from scipy.stats import kstest

    assert kstest(angle, "uniform", args=(-45, 90)).statistic < 0.015


def test_pure_rot90_equals_torch_rot90(images):
    aug = plain(28, rot90=True)
    x = images.permute(0, 3, 1, 2).float() / 255
    for k in range(4):
        p = aug.sample_params(len(images), gen(0))
        p["rot90"][:] = k
        out = aug.apply(images, p)
        assert torch.allclose(out, torch.rot90(x, k, dims=(-2, -1)), atol=1e-5)


def test_flips_equal_torch_flip(images):
    x = images.permute(0, 3, 1, 2).float() / 255
    assert torch.allclose(plain(28, hflip_p=1.0)(images), x.flip(-1), atol=1e-5)
    assert torch.allclose(plain(28, vflip_p=1.0)(images), x.flip(-2), atol=1e-5)


def test_rotation_matches_torchvision_rotate(images):
    aug = plain(28, rotation_degrees=45.0, fill=(0, 0, 0))
    x = images.permute(0, 3, 1, 2).float() / 255
    p = aug.sample_params(len(images), gen(0))
    p["angle"][:] = 20.0
    ref = TF.rotate(x, 20.0, interpolation=TF.InterpolationMode.BILINEAR)
    assert torch.allclose(aug.apply(images, p), ref, atol=1e-4)


def test_rotate_after_crop_rotates_the_resized_crop(images):
    aug = Augmentation(
        28, hflip_p=0.0, jitter_p=0.0, grayscale_p=0.0, rotation_degrees=90.0, fill=(0, 0, 0)
    )
    aug_after = Augmentation.from_config({**aug.to_config(), "rotate_before_crop": False})
    p = aug.sample_params(len(images), gen(4))
    p["angle"][:] = 0.0
    plain_crop = aug.apply(images, p)
    p["angle"][:] = 90.0
    # positive angles turn counter-clockwise, like torch.rot90(k=1) and TF.rotate
    expected = torch.rot90(plain_crop, 1, dims=(-2, -1))
    assert torch.allclose(aug_after.apply(images, p), expected, atol=1e-4)
    # rotating before the crop turns the crop box too: a different view unless the crop is central
    assert not torch.allclose(aug.apply(images, p), expected, atol=1e-2)


def test_randrot_corners_get_fill_colour():
    fill = (200.0, 40.0, 90.0)
    aug = make_augmentation("randrot", 28, fill=fill, crop=False)
    img = torch.zeros(16, 28, 28, 3, dtype=torch.uint8)
    p = aug.sample_params(16, gen(0))
    p["angle"][:] = 45.0
    out = aug.apply(img, p)
    expected = torch.tensor(fill) / 255
    for corner in (out[:, :, 0, 0], out[:, :, 0, -1], out[:, :, -1, 0], out[:, :, -1, -1]):
        jittered = p["jitter"] | p["grayscale"]
        assert torch.allclose(corner[~jittered], expected.expand_as(corner[~jittered]), atol=1e-6)
    # centre untouched by the fill
    assert out[~(p["jitter"] | p["grayscale"]), :, 14, 14].abs().max() < 1e-6


def test_fill_none_uses_batch_border_colour():
    img = torch.zeros(4, 28, 28, 3, dtype=torch.uint8)
    img[:, 0, :, :] = 255  # top row white: border mean = 28 / (4 * 28 - 4)
    aug = plain(28, rotation_degrees=45.0)
    p = aug.sample_params(4, gen(0))
    p["angle"][:] = 45.0
    out = aug.apply(img, p)
    assert torch.allclose(out[:, :, -1, -1], torch.full((4, 3), 28 / 108), atol=1e-5)


# ---------------------------------------------------------------------------- colour
def test_jitter_factor_ranges_and_frequency():
    p = Augmentation(28).sample_params(N, gen(6))
    assert abs(p["jitter"].float().mean().item() - 0.8) < 0.015
    for name in ("brightness", "contrast", "saturation"):
        f = p[name].numpy()
        assert f.min() >= 0.6 and f.max() <= 1.4
        assert abs(f.mean() - 1.0) < 0.01 and f.std() > 0.2
    h = p["hue"].numpy()
    assert h.min() >= -0.1 and h.max() <= 0.1 and h.std() > 0.05
    order = p["jitter_order"].numpy()
    assert (np.sort(order, axis=1) == np.arange(4)).all()
    first = np.bincount(order[:, 0], minlength=4) / N
    assert np.abs(first - 0.25).max() < 0.015


def test_jitter_equals_torchvision_functional():
    x = torch.rand(5, 3, 16, 16, generator=gen(7))
    x[0] = 0.5  # grey image: hue undefined
    aug = plain(16, jitter_p=1.0)
    p = aug.sample_params(5, gen(8))
    fns = {
        0: lambda im, i: TF.adjust_brightness(im, p["brightness"][i].item()),
        1: lambda im, i: TF.adjust_contrast(im, p["contrast"][i].item()),
        2: lambda im, i: TF.adjust_saturation(im, p["saturation"][i].item()),
        3: lambda im, i: TF.adjust_hue(im, p["hue"][i].item()),
    }
    ref = []
    for i in range(5):
        im = x[i]
        for op in p["jitter_order"][i].tolist():
            im = fns[op](im, i)
        ref.append(im)
    out = aug.apply(x, p)
    # torchvision's contrast/saturation use luma 0.2989 instead of 0.299
    assert torch.allclose(out, torch.stack(ref), atol=2e-4)
    assert (out - x).abs().max() > 0.05


def test_hue_shift_equals_torchvision():
    x = torch.rand(3, 3, 8, 8, generator=gen(9))
    aug = plain(8, jitter_p=1.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.5)
    p = aug.sample_params(3, gen(0))
    ref = torch.stack([TF.adjust_hue(x[i], p["hue"][i].item()) for i in range(3)])
    assert torch.allclose(aug.apply(x, p), ref, atol=1e-5)


def test_no_jitter_when_not_applied(images):
    aug = plain(28, jitter_p=1.0)
    p = aug.sample_params(len(images), gen(0))
    p["jitter"][:] = False
    assert torch.allclose(aug.apply(images, p), images.permute(0, 3, 1, 2).float() / 255, atol=1e-5)


def test_grayscale_frequency_and_equal_channels(images):
    aug = plain(28, grayscale_p=0.2)
    assert abs(aug.sample_params(N, gen(10))["grayscale"].float().mean().item() - 0.2) < 0.015
    p = aug.sample_params(len(images), gen(11))
    p["grayscale"][:] = torch.tensor([True, False] * 3)
    out = aug.apply(images, p)
    g = out[0::2]
    assert torch.equal(g[:, 0], g[:, 1]) and torch.equal(g[:, 1], g[:, 2])
    ref = TF.rgb_to_grayscale(images[0::2].permute(0, 3, 1, 2).float() / 255)
    assert torch.allclose(g[:, :1], ref, atol=2e-4)
    assert not torch.equal(out[1, 0], out[1, 1])


# ------------------------------------------------------------------ forward contract
def test_identity_configuration_returns_input(images):
    out = plain(28)(images, gen(0))
    assert torch.allclose(out, images.permute(0, 3, 1, 2).float() / 255, atol=1e-5)
    x = torch.rand(3, 3, 28, 28, generator=gen(0))
    assert torch.allclose(plain(28)(x), x, atol=1e-5)


@pytest.mark.parametrize("hw", [(28, 28), (12, 20)])
def test_affine_grid_equals_torch(hw):
    theta = torch.randn(7, 2, 3, generator=gen(0))
    ref = torch.nn.functional.affine_grid(theta, [7, 3, *hw], align_corners=False)
    assert torch.allclose(affine_grid(theta, *hw), ref, atol=1e-6)


def test_no_crop_resize_matches_interpolate():
    x = torch.rand(2, 3, 14, 14, generator=gen(0))
    out = plain(28)(x)
    ref = torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    assert torch.allclose(out, ref, atol=1e-5)


def test_crop_matches_torchvision_resized_crop():
    x = torch.rand(1, 3, 28, 28, generator=gen(0))
    aug = Augmentation(28, hflip_p=0.0, jitter_p=0.0, grayscale_p=0.0)
    p = aug.sample_params(1, gen(3))
    top, left, h, w = p["crop_box"][0].tolist()
    ref = TF.resized_crop(x, top, left, h, w, [28, 28], antialias=False)
    out = aug.apply(x, p)
    # torchvision cuts the crop out first and replicates its edge; we sample the real
    # neighbouring pixels there, so only the outermost output pixels may differ
    assert torch.allclose(out[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2], atol=1e-4)
    assert (out - ref).abs().mean() < 0.02


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_output_contract(preset, images):
    aug = make_augmentation(preset, 32, fill=(10, 20, 30))
    out = aug(images, gen(0))
    assert out.shape == (6, 3, 32, 32) and out.dtype == torch.float32
    assert out.device == images.device
    assert out.min() >= 0 and out.max() <= 1
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert aug(images.numpy(), gen(0)).shape == (6, 3, 32, 32)


def test_same_seed_same_views_different_seed_different(images):
    aug = make_augmentation("randrot", 28, fill=(1, 2, 3))
    a, b, c = aug(images, gen(5)), aug(images, gen(5)), aug(images, gen(6))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_two_views_independent(images):
    aug = make_augmentation("default", 28)
    v = two_views(aug, images, gen(0))
    assert v.shape == (12, 3, 28, 28)
    assert not torch.allclose(v[:6], v[6:])


def test_ablation_switch_keeps_other_draws(images):
    a = make_augmentation("default", 28).sample_params(10, gen(0))
    b = make_augmentation("default", 28, jitter_p=0).sample_params(10, gen(0))
    assert torch.equal(a["crop_box"], b["crop_box"]) and torch.equal(a["hflip"], b["hflip"])
    assert not b["jitter"].any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(images):
    aug = make_augmentation("randrot", 28, fill=(5, 6, 7))
    cpu = aug(images, gen(0))
    gpu = aug(images.cuda(), gen(0))
    assert gpu.device.type == "cuda"
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-4)


# ------------------------------------------------------------------- configuration
def test_presets_follow_the_recipe():
    d = make_augmentation("default", 28)
    assert d.crop and d.crop_scale == (0.2, 1.0) and d.hflip_p == 0.5 and d.vflip_p == 0.0
    assert (d.brightness, d.contrast, d.saturation, d.hue, d.jitter_p, d.grayscale_p) == (
        0.4,
        0.4,
        0.4,
        0.1,
        0.8,
        0.2,
    )
    r = make_augmentation("rot90", 28)
    assert r.rot90 and r.vflip_p == 0.5 and r.rotation_degrees == 0
    rr = make_augmentation("randrot", 28, fill=np.array([1.0, 2.0, 3.0], np.float32))
    assert (
        rr.rot90
        and rr.rotation_degrees == 45.0
        and rr.rotate_before_crop
        and rr.fill == (1.0, 2.0, 3.0)
    )
    assert not make_augmentation("default", 28, crop=False).crop


def test_config_round_trip():
    aug = make_augmentation("randrot", 28, fill=(1, 2, 3), grayscale_p=0.0)
    cfg = json.loads(json.dumps(aug.to_config()))
    back = Augmentation.from_config(cfg)
    assert back.describe() == aug.describe()
    images = torch.randint(0, 256, (4, 28, 28, 3), dtype=torch.uint8, generator=gen(0))
    assert torch.equal(back(images, gen(1)), aug(images, gen(1)))
    copy = make_augmentation(aug, 64, fill=(9, 9, 9), hflip_p=0.0)
    assert copy.size == 28 and copy.fill == (1.0, 2.0, 3.0) and copy.hflip_p == 0.0


def test_unknown_preset_raises():
    with pytest.raises(ConfigError, match="default"):
        make_augmentation("imagenet", 28)


def test_unknown_override_raises():
    with pytest.raises(ConfigError, match="jitter_p"):
        make_augmentation("default", 28, colour_jitter=0)


def test_from_config_unknown_key_and_missing_size():
    with pytest.raises(ConfigError, match="unknown"):
        Augmentation.from_config({"size": 28, "blur": 1})
    with pytest.raises(ConfigError, match="size"):
        Augmentation.from_config({"crop": True})


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"size": 0}, "size"),
        ({"crop_scale": (0.5, 0.2)}, "crop_scale"),
        ({"crop_ratio": (0, 1)}, "crop_ratio"),
        ({"hflip_p": 1.5}, "hflip_p"),
        ({"brightness": -1}, "brightness"),
        ({"hue": 0.7}, "hue"),
        ({"fill": (1, 2)}, "fill"),
        ({"fill": (1, 2, 300)}, "fill"),
        ({"rot90": "yes"}, "rot90"),
    ],
)
def test_bad_parameters_raise(kwargs, word):
    kw = {"size": 28, **kwargs}
    with pytest.raises(ConfigError, match=word):
        Augmentation(**kw)


def test_bad_images_raise():
    aug = Augmentation(28)
    with pytest.raises(DataError, match="NHWC"):
        aug(torch.zeros(2, 3, 28, 28, dtype=torch.uint8))
    with pytest.raises(DataError, match="NCHW"):
        aug(torch.zeros(2, 28, 28, 3))
    with pytest.raises(DataError, match="4-D"):
        aug(torch.zeros(28, 28, 3, dtype=torch.uint8))
    with pytest.raises(DataError, match="dtype"):
        aug(torch.zeros(2, 3, 28, 28, dtype=torch.int32))
    with pytest.raises(DataError, match="torch.Tensor"):
        aug([[1, 2, 3]])
    p = aug.sample_params(3, gen(0))
    with pytest.raises(DataError, match="views"):
        aug.apply(torch.zeros(2, 28, 28, 3, dtype=torch.uint8), p)


def test_describe_is_json_and_complete():
    d = make_augmentation("rot90", 28).describe()
    json.dumps(d)
    assert d["size"] == 28 and d["rot90"] is True and d["vflip_p"] == 0.5
    assert math.isclose(d["crop_ratio"][0], 0.75)


# ------------------------------------------------- the original pipeline (benchmark reference)
def _reference_module():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_pipeline.py"
    spec = importlib.util.spec_from_file_location("reference_pipeline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("augment", ["default", "randrot"])
def test_reference_loader_yields_original_batches(augment):
    ref = _reference_module()
    imgs = np.random.default_rng(0).integers(0, 256, (40, 28, 28, 3), dtype=np.uint8)
    batches = [
        ref.stack_views(b)
        for b in ref.make_reference_loader(imgs, 16, augment, num_workers=0, seed=3)
    ]
    assert [b.shape[0] for b in batches] == [32, 32, 16]  # last batch kept, like the original
    assert batches[0].shape[1:] == (3, 28, 28) and batches[0].dtype == torch.float32
    again = ref.stack_views(
        next(iter(ref.make_reference_loader(imgs, 16, augment, num_workers=0, seed=3)))
    )
    assert torch.equal(batches[0], again)
    with pytest.raises(ValueError, match="augment"):
        ref.reference_transform(28, "imagenet")


def test_batched_views_statistically_like_reference():
    """Same images through both pipelines: grayscale share and mean intensity agree."""
    ref = _reference_module()
    rng = np.random.default_rng(1)
    # smooth synthetic colour images (random per-image colour + gradient), so crops keep content
    base = rng.integers(30, 220, (256, 1, 1, 3)).astype(float)
    ramp = np.linspace(-30, 30, 28)[None, :, None, None]
    imgs = np.clip(base + ramp, 0, 255).astype(np.uint8)
    imgs = np.repeat(imgs, 28, axis=2).transpose(0, 2, 1, 3).copy()
    r = torch.cat(
        [ref.stack_views(b) for b in ref.make_reference_loader(imgs, 256, num_workers=0, seed=0)]
    )
    ours = two_views(make_augmentation("default", 28), torch.from_numpy(imgs), gen(0))

    def gray_share(v):
        return ((v[:, 0] - v[:, 1]).abs().amax(dim=(1, 2)) < 1e-3).float().mean().item()

    assert abs(gray_share(r) - gray_share(ours)) < 0.07
    assert abs(r.mean().item() - ours.mean().item()) < 0.03
    assert abs(r.std().item() - ours.std().item()) < 0.03
