"""Batched, seeded augmentation: identity cases, probabilities, geometry, alignment, errors; the
earlier recipe kept bit for bit; the authors' recipe against a per-sample re-implementation."""

import dataclasses
import math
import random
from pathlib import Path

import authors_augment as authors
import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from tutorial_lib.config import AugmentConfig
from tutorial_lib.data.augment import augment_batch, blur_images
from tutorial_lib.presets import AUTHORS_AUGMENT, CORRECTED_AUGMENT, get_preset

FIXTURE = Path(__file__).parent / "fixtures" / "augment_before_options.pt"


def disk_batch(b=8, size=48, radius=10):
    rows = torch.arange(size).view(-1, 1).float() - (size - 1) / 2
    cols = torch.arange(size).view(1, -1).float() - (size - 1) / 2 + 6
    disk = (rows**2 + cols**2 < radius**2).to(torch.uint8)
    bar = ((rows.abs() < 3) & (cols.abs() < 16)).to(torch.uint8) * 2
    labels = torch.maximum(disk, bar).expand(b, size, size).clone()
    images = labels.float().unsqueeze(1) / 2
    return images, labels


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def cfg(**fields):
    """The earlier recipe (the AugmentConfig defaults) with `fields` changed."""
    return AugmentConfig(**fields)


def test_p_zero_returns_the_inputs_unchanged():
    images, labels = disk_batch()
    out, lab = augment_batch(images, labels, gen(), cfg(p=0.0))
    assert torch.equal(out, images) and torch.equal(lab, labels)


def test_seeded_generator_repeats_and_another_seed_differs():
    images, labels = disk_batch(16)
    a = augment_batch(images, labels, gen(1), cfg())
    b = augment_batch(images, labels, gen(1), cfg())
    c = augment_batch(images, labels, gen(2), cfg())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_outputs_keep_dtype_device_range_and_label_set():
    images, labels = disk_batch(32)
    out, lab = augment_batch(images.double(), labels.long(), gen(), cfg(p=1.0))
    assert out.dtype == torch.float64 and lab.dtype == torch.long
    assert out.min() >= 0 and out.max() <= 1 + 1e-9
    assert set(lab.unique().tolist()) <= {0, 1, 2}


def test_no_rotation_no_scaling_and_zero_blur_is_the_identity():
    images, labels = disk_batch()
    still = cfg(p=1.0, rotation_deg=0.0, scale=(1.0, 1.0), transforms=("rotate", "scale"))
    out, lab = augment_batch(images, labels, gen(), still)
    assert torch.equal(lab, labels)
    torch.testing.assert_close(out, images, atol=1e-5, rtol=0)


def test_scaling_by_1_2_grows_areas_by_1_44():
    images, labels = disk_batch()
    _, lab = augment_batch(
        images, labels, gen(), cfg(p=1.0, scale=(1.2, 1.2), transforms=("scale",))
    )
    ratio = (lab > 0).sum((1, 2)).float() / (labels > 0).sum((1, 2)).float()
    torch.testing.assert_close(ratio, torch.full_like(ratio, 1.44), atol=0.05, rtol=0)


def test_rotation_keeps_areas_and_turns_the_bar_by_at_most_30_degrees():
    images, labels = disk_batch(64)
    _, lab = augment_batch(images, labels, gen(3), cfg(p=1.0, transforms=("rotate",)))
    ratio = (lab == 2).sum((1, 2)).float() / (labels == 2).sum((1, 2)).float()
    assert ((ratio - 1).abs() < 0.1).all()
    angles = []
    for b in range(len(lab)):
        r, c = torch.nonzero(lab[b] == 2, as_tuple=True)
        r, c = r.float() - r.float().mean(), c.float() - c.float().mean()
        angles.append(0.5 * math.degrees(math.atan2(2 * (r * c).mean(), (c**2 - r**2).mean())))
    angles = torch.tensor(angles)
    assert angles.abs().max() <= 31 and angles.abs().max() > 15 and angles.std() > 5


def test_each_transform_hits_about_half_of_the_samples():
    images, labels = disk_batch(400, size=24, radius=5)
    out, lab = augment_batch(images, labels, gen(5), cfg(transforms=("blur",)))
    blurred = (out != images).flatten(1).any(1)
    assert 160 < int(blurred.sum()) < 240
    assert torch.equal(lab, labels)  # blur touches the image only
    _, lab = augment_batch(images, labels, gen(6), cfg(transforms=("rotate", "scale")))
    warped = (lab != labels).flatten(1).any(1)
    # P(rotated or scaled) = 0.75; a few tiny rotations/scales leave the label unchanged
    assert 250 < int(warped.sum()) < 330


def test_images_and_labels_move_together():
    images, labels = disk_batch(16)
    out, lab = augment_batch(images, labels, gen(7), cfg(p=1.0, transforms=("rotate", "scale")))
    agree = ((out.squeeze(1) * 2).round().to(torch.uint8) == lab).float().mean()
    assert agree > 0.97


def test_blur_preserves_the_mean_and_smooths():
    images, _ = disk_batch(2)
    sigma = torch.tensor([0.5, 2.0])
    out = blur_images(images, sigma)
    torch.testing.assert_close(out.mean((1, 2, 3)), images.mean((1, 2, 3)), atol=1e-3, rtol=0)
    grad = lambda x: (x[..., 1:] - x[..., :-1]).abs().sum((1, 2, 3))
    g_in, g_out = grad(images), grad(out)
    assert g_out[1] < g_out[0] < g_in[0]


@pytest.mark.parametrize(
    "images, labels, match",
    [
        (
            torch.zeros(2, 8, 8),
            torch.zeros(2, 8, 8, dtype=torch.long),
            r"^images: expected float images of shape \(B, C, H, W\), got shape \(2, 8, 8\), ",
        ),
        (
            torch.zeros(2, 1, 8, 8),
            torch.zeros(2, 8, 9, dtype=torch.long),
            r"^labels: expected integer labels of shape \(2, 8, 8\), got shape \(2, 8, 9\), ",
        ),
        (
            torch.zeros(2, 1, 8, 8),
            torch.zeros(2, 8, 8),
            r"^labels: expected integer labels .*, got shape \(2, 8, 8\), dtype torch.float32$",
        ),
    ],
)
def test_bad_inputs_name_what_was_expected(images, labels, match):
    with pytest.raises(ValueError, match=match):
        augment_batch(images, labels, gen(), cfg())


def test_a_config_other_than_augment_config_is_refused():
    images, labels = disk_batch(2)
    with pytest.raises(ValueError, match=r"^config: expected an AugmentConfig, got dict$"):
        augment_batch(images, labels, gen(), {"p": 0.5})


def test_disabled_augmentation_returns_the_inputs_themselves():
    images, labels = disk_batch(2)
    out, lab = augment_batch(images, labels, gen(), cfg(enabled=False))
    assert out is images and lab is labels


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("recipe", [AugmentConfig(), AUTHORS_AUGMENT], ids=["earlier", "authors"])
def test_on_gpu_with_a_gpu_generator_matches_the_cpu_geometry(recipe):
    images, labels = disk_batch(8)
    g = torch.Generator(device="cuda").manual_seed(0)
    out, lab = augment_batch(images.cuda(), labels.cuda(), g, dataclasses.replace(recipe, p=1.0))
    assert out.device.type == "cuda" and lab.device.type == "cuda"
    assert set(lab.unique().tolist()) <= {0, 1, 2}
    warp_only = dataclasses.replace(recipe, p=1.0, transforms=("rotate", "scale"))
    a = augment_batch(images.cuda(), labels.cuda(), gen(), warp_only)
    b = augment_batch(images, labels, gen(), warp_only)
    assert (a[1].cpu() != b[1]).float().mean() < 0.01


def reference_augment(image, label, u, config):
    """One sample, by scipy.ndimage, from the six uniforms u the batch drew for it: Gaussian blur
    (edge replicated, radius ceil(3 max sigma)), then rotation and scaling about the image centre
    with the convention of grid_sample (align_corners=False, zero outside the image)."""
    p, (lo, hi), scale_range = config.p, config.blur_sigma, config.scale
    if u[0] < p:
        sigma = lo + (hi - lo) * u[3]
        radius = max(1, math.ceil(3 * hi))
        image = ndimage.gaussian_filter(image, sigma, mode="nearest", radius=radius)
    angle = math.radians((2 * u[4] - 1) * config.rotation_deg) if u[1] < p else 0.0
    scale = scale_range[0] + (scale_range[1] - scale_range[0]) * u[5] if u[2] < p else 1.0
    if angle == 0 and scale == 1:
        return image, label
    cos, sin = math.cos(angle) / scale, math.sin(angle) / scale
    matrix = np.array([[cos, sin], [-sin, cos]])  # output (row, col) -> input (row, col)
    centre = (np.array(image.shape) - 1) / 2
    offset = centre - matrix @ centre
    warp = dict(matrix=matrix, offset=offset, mode="grid-constant", cval=0.0)
    return (
        ndimage.affine_transform(image, order=1, **warp),
        ndimage.affine_transform(label, order=0, **warp),
    )


@pytest.mark.parametrize(
    "b, settings",
    [
        (6, {}),  # the earlier recipe's settings
        (1, {"p": 1.0, "rotation_deg": 50.0, "scale": (0.7, 1.4), "blur_sigma": (0.3, 0.9)}),
        (5, {"p": 0.7, "rotation_deg": 10.0, "scale": (1.0, 1.3), "blur_sigma": (1.0, 1.5)}),
    ],
)
def test_each_sample_equals_scipy_with_the_drawn_parameters(b, settings):
    """The draws (row i of torch.rand(6, B): blur?, rotate?, scale?, sigma, angle, factor) and the
    transforms they make, sample by sample against scipy.ndimage on a random image."""
    g = torch.Generator().manual_seed(11)
    images = torch.rand(b, 1, 20, 20, dtype=torch.float64, generator=g)
    labels = torch.randint(0, 4, (b, 20, 20), generator=g).repeat_interleave(2, 1)[:, ::2]
    config = cfg(**settings)
    out, lab = augment_batch(images, labels, gen(9), config)
    u = torch.rand(6, b, generator=gen(9)).double()
    for i in range(b):
        ui = u[:, i].tolist()
        image, label = reference_augment(images[i, 0].numpy(), labels[i].numpy(), ui, config)
        np.testing.assert_allclose(out[i, 0].numpy(), image, atol=1e-6, rtol=0)
        mismatch = (lab[i].numpy() != label).mean()
        assert mismatch < 0.01, (i, mismatch)  # nearest: ties at half-pixels may round apart
    if b > 1:  # several of each transform ran
        assert (u[:3] < config.p).sum(1).min() >= 2


@pytest.mark.parametrize(
    ("config", "rows"),
    [(AugmentConfig(), 6), (cfg(transforms=()), 6), (AUTHORS_AUGMENT, 8), (CORRECTED_AUGMENT, 8)],
    ids=["earlier", "no-transform", "authors", "corrected"],
)
def test_a_call_draws_a_fixed_count_of_numbers_per_sample(config, rows):
    """The generator moves by 6 B uniforms, 8 B with random scale offsets: a run's later draws do
    not depend on what the transforms did."""
    images, labels = disk_batch(3)
    g = gen(4)
    augment_batch(images, labels, g, config)
    ref = gen(4)
    torch.rand(6, 3, generator=ref)
    if rows == 8:
        torch.rand(2, 3, generator=ref)
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=ref))


def test_blur_equals_scipy_gaussian_filter_in_float64():
    g = torch.Generator().manual_seed(2)
    images = torch.rand(3, 2, 15, 17, dtype=torch.float64, generator=g)
    sigmas = torch.tensor([0.5, 1.3, 0.8])
    out = blur_images(images, sigmas, max_sigma=1.5)
    for i, s in enumerate(sigmas.tolist()):
        for c in range(2):
            expected = ndimage.gaussian_filter(
                images[i, c].numpy(), s, mode="nearest", radius=math.ceil(3 * 1.5)
            )
            np.testing.assert_allclose(out[i, c].numpy(), expected, rtol=0, atol=1e-12)
    # a small sigma: the radius is ceil(3 sigma) = 1, not more
    thin = blur_images(images[:1], torch.tensor([0.3], dtype=torch.float64), max_sigma=0.3)
    expected = ndimage.gaussian_filter(images[0, 0].numpy(), 0.3, mode="nearest", radius=1)
    np.testing.assert_allclose(thin[0, 0].numpy(), expected, rtol=0, atol=1e-13)
    # without max_sigma the radius comes from the largest sigma: ceil(3 * 1.3) = 4
    wide = blur_images(images, sigmas)
    narrow = ndimage.gaussian_filter(images[0, 0].numpy(), 0.5, mode="nearest", radius=4)
    np.testing.assert_allclose(wide[0, 0].numpy(), narrow, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_images_keep_their_dtype(dtype):
    images, labels = disk_batch(4)
    out, lab = augment_batch(images.to(dtype), labels, gen(), cfg(p=1.0))
    ref, ref_lab = augment_batch(images, labels, gen(), cfg(p=1.0))
    assert out.dtype == dtype and lab.dtype == labels.dtype
    assert (lab != ref_lab).float().mean() < 0.02  # the sampling grid is in the images' dtype
    assert (out.float() - ref).abs().mean() < 0.01
