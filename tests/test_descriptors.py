"""Descriptors: oracle values (scikit-image, closed forms), the authors' formulation, gradients, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from authors_reference import REF_DESCRIPTORS
from skimage.draw import disk, ellipse
from skimage.measure import moments_central, regionprops

from tutorial_lib import descriptors as D
from tutorial_lib.descriptors import (
    DESCRIPTORS,
    soft_centroid,
    soft_compactness,
    soft_covariance,
    soft_dist_centroid,
    soft_eccentricity,
    soft_length,
    soft_orientation,
    soft_size,
)

F64 = torch.float64


def as_probs(mask: np.ndarray, dtype=F64) -> torch.Tensor:
    return torch.tensor(mask.astype(np.float64), dtype=dtype)[None, None]


def shapes_2d() -> list[np.ndarray]:
    out = []
    m = np.zeros((37, 53), np.uint8)
    rr, cc = disk((17.3, 25.6), 9.2, shape=m.shape)
    m[rr, cc] = 1
    out.append(m)
    m = np.zeros((41, 29), np.uint8)
    m[5:30, 7:19] = 1
    out.append(m)
    for rot in (0.3, -1.1, 1.4):
        m = np.zeros((45, 60), np.uint8)
        rr, cc = ellipse(21, 33, 7, 16, rotation=rot, shape=m.shape)
        m[rr, cc] = 1
        out.append(m)
    return out


@pytest.mark.parametrize(
    "mask", shapes_2d(), ids=["disk", "rectangle", "ellipse+0.3", "ellipse-1.1", "ellipse+1.4"]
)
def test_2d_oracle_scikit_image(mask):
    rp = regionprops(mask)[0]
    p = as_probs(mask)
    mu = moments_central(mask.astype(np.float64), order=2)
    torch.testing.assert_close(soft_size(p).flatten(), torch.tensor([rp.area], dtype=F64))
    torch.testing.assert_close(soft_centroid(p).flatten(), torch.tensor(rp.centroid, dtype=F64))
    cov = torch.tensor([mu[2, 0], mu[1, 1], mu[0, 2]], dtype=F64) / rp.area
    torch.testing.assert_close(soft_covariance(p).flatten(), cov)
    spread = torch.tensor([mu[2, 0], mu[0, 2]], dtype=F64).div(rp.area).sqrt()
    torch.testing.assert_close(soft_dist_centroid(p).flatten(), spread, atol=1e-8, rtol=1e-8)
    torch.testing.assert_close(
        soft_eccentricity(p).flatten(),
        torch.tensor([rp.eccentricity], dtype=F64),
        atol=1e-6,
        rtol=1e-6,
    )
    if rp.eccentricity > 0.3:  # orientation is undefined for a disk
        torch.testing.assert_close(
            soft_orientation(p).flatten(), torch.tensor([rp.orientation], dtype=F64)
        )


@pytest.mark.parametrize(
    "mask",
    [
        np.pad(np.ones((3, 15), np.uint8), ((3, 4), (2, 3))),  # wide: major axis along the columns
        np.eye(7, dtype=np.uint8),  # a diagonal line: cov_rr == cov_cc
        np.pad(np.ones((1, 9), np.uint8), ((2, 2), (1, 2))),  # a one-pixel-wide line
        np.pad(np.ones((1, 9), np.uint8), ((0, 3), (1, 2))),  # in row 0: cov_rc is exactly 0
    ],
    ids=["wide-rectangle", "diagonal-line", "thin-line", "line-in-row-0"],
)
def test_axis_aligned_diagonal_and_thin_shapes_against_regionprops(mask):
    rp = regionprops(mask)[0]
    p = as_probs(mask)
    assert soft_orientation(p).item() == pytest.approx(rp.orientation, abs=1e-12)
    assert soft_eccentricity(p).item() == pytest.approx(rp.eccentricity, abs=1e-6)


@pytest.mark.parametrize("spatial", [(7, 4), (6, 3, 6)], ids=["2d", "3d"])
def test_as_many_classes_as_the_longest_axis(spatial):
    """K equal to the longest axis, the other axes shorter: the marginals are padded by axis."""
    k = max(spatial)
    p = torch.randn(2, k, *spatial, dtype=F64, generator=torch.Generator().manual_seed(2)).softmax(
        1
    )
    for name in ("size", "centroid", "dist_centroid", "length"):
        torch.testing.assert_close(DESCRIPTORS[name](p), REF_DESCRIPTORS[name](p, dtype=F64))


def test_spacing_errors_in_full_and_float32_spacing_tensors():
    p = torch.rand(3, 2, 5, 6, dtype=F64)
    with pytest.raises(
        ValueError, match=r"^spacing: expected a sequence of 2 floats or a tensor, got 5$"
    ):
        soft_size(p, spacing=5)
    with pytest.raises(
        ValueError,
        match=r"^spacing: expected 2 values \(one per spatial axis\), shape \(2,\) or \(3, 2\), "
        r"for probabilities of shape \(3, 2, 5, 6\); got shape \(2, 2\)$",
    ):
        soft_size(p, spacing=torch.ones(2, 2))
    with pytest.raises(
        ValueError, match=r"^spacing: expected positive finite mm per axis, got \[1.0, 0.0\]$"
    ):
        soft_size(p, spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match=r"^p: expected a torch.Tensor, got list$"):
        D.check_probs([[0.5]])
    # a float32 spacing tensor is read as the float64 numbers it holds: no float32 arithmetic
    sp32 = torch.tensor([1.1, 0.7], dtype=torch.float32)
    as_list = [float(v) for v in sp32]
    for name in ("size", "centroid", "covariance", "length"):
        torch.testing.assert_close(
            DESCRIPTORS[name](p, spacing=sp32),
            DESCRIPTORS[name](p, spacing=as_list),
            rtol=1e-14,
            atol=0,
        )
    ones = torch.ones(1, 1, 5, 6, dtype=F64)  # a sequence is read in float64 too
    assert soft_size(ones, spacing=(1.1, 0.7)).item() == pytest.approx(30 * 1.1 * 0.7, rel=1e-14)


def test_the_authors_epsilon_in_the_normalised_moments():
    """A class of mass eps = 1e-10: its centroid is sum p x / (S + eps), half its position."""
    p = torch.zeros(1, 1, 5, 6, dtype=F64)
    p[0, 0, 2, 4] = 1e-10
    assert soft_centroid(p).flatten().tolist() == pytest.approx([1.0, 2.0], rel=1e-6)


def test_one_pixel_and_almost_empty_classes():
    p = torch.zeros(1, 3, 6, 7, dtype=F64)
    p[0, 0, 2, 3] = 1.0  # one pixel: no spread
    p[0, 1, 4, 5] = 1e-12  # almost empty; class 2 empty
    spread = soft_dist_centroid(p)[0]
    assert spread[0].max() < 1e-9 and spread[2].tolist() == [0.0, 0.0]
    assert (soft_compactness(p) >= 0).all() and (soft_eccentricity(p) <= 1).all()


@pytest.mark.parametrize("s", [1, 2, 5, 10])
def test_square_closed_forms(s):
    p = torch.zeros(1, 1, s + 6, s + 9, dtype=F64)
    p[..., 3 : 3 + s, 4 : 4 + s] = 1
    assert soft_length(p).item() == pytest.approx(12 * s - 4)
    assert soft_length(p, connectivity=4).item() == pytest.approx(4 * s)
    expected = math.sqrt((s * s - 1) / 12)
    torch.testing.assert_close(
        soft_dist_centroid(p).flatten(), torch.tensor([expected] * 2, dtype=F64), atol=1e-5, rtol=0
    )
    assert soft_compactness(p).item() == pytest.approx((12 * s - 4) ** 2 / s**2)
    assert soft_compactness(p, connectivity=4).item() == pytest.approx((4 * s) ** 2 / s**2)


def test_3d_balls_and_cube():
    grid = np.indices((19, 23, 21)).astype(np.float64)
    centre = np.array([9.3, 11.0, 10.4])[:, None, None, None]
    ball = (((grid - centre) ** 2).sum(0) <= 6.5**2).astype(np.uint8)
    rp = regionprops(ball)[0]
    p = as_probs(ball)
    mu = moments_central(ball.astype(np.float64), order=2)
    assert soft_size(p).item() == rp.area
    torch.testing.assert_close(soft_centroid(p).flatten(), torch.tensor(rp.centroid, dtype=F64))
    cov = [mu[2, 0, 0], mu[1, 1, 0], mu[1, 0, 1], mu[0, 2, 0], mu[0, 1, 1], mu[0, 0, 2]]
    torch.testing.assert_close(soft_covariance(p).flatten(), torch.tensor(cov, dtype=F64) / rp.area)
    assert soft_eccentricity(p).item() < 0.2  # a ball is nearly round
    r = 6.5  # RMS spread of a ball per axis: r / sqrt(5)
    assert soft_dist_centroid(p).flatten().tolist() == pytest.approx(
        [r / math.sqrt(5)] * 3, rel=0.05
    )
    cube = torch.zeros(1, 1, 9, 10, 11, dtype=F64)
    s = 4
    cube[..., 2 : 2 + s, 3 : 3 + s, 3 : 3 + s] = 1
    assert soft_length(cube, connectivity=6).item() == 6 * s * s  # one pair per boundary face
    torch.testing.assert_close(soft_length(cube), REF_DESCRIPTORS["length"](cube, dtype=F64))


@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (2, 3, 5, 6, 7)], ids=["2d", "3d"])
@pytest.mark.parametrize("name", ["size", "centroid", "dist_centroid", "length"])
def test_equals_authors_formulation_float64(shape, name):
    g = torch.Generator().manual_seed(3)
    p = torch.randn(*shape, dtype=F64, generator=g).mul(3).softmax(1)
    ours = DESCRIPTORS[name](p)
    ref = REF_DESCRIPTORS[name](p, dtype=F64)
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


@pytest.mark.parametrize("connectivity", [4, 8])
def test_length_connectivity_matches_sparse_laplacian(connectivity):
    p = torch.rand(2, 2, 8, 13, dtype=F64)
    ref = REF_DESCRIPTORS["length"](p, connectivity=connectivity, dtype=F64)
    torch.testing.assert_close(soft_length(p, connectivity=connectivity), ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("connectivity", [6, 18, 26])
def test_length_3d_connectivity_matches_sparse_laplacian(connectivity):
    p = torch.rand(1, 2, 5, 6, 7, dtype=F64)
    ref = REF_DESCRIPTORS["length"](p, connectivity=connectivity, dtype=F64)
    torch.testing.assert_close(soft_length(p, connectivity=connectivity), ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
@pytest.mark.parametrize("spatial", [(12, 9), (5, 8, 7)], ids=["2d", "3d"])
def test_batch_equals_stack_of_items(name, spatial):
    if name == "orientation" and len(spatial) == 3:
        pytest.skip("orientation is 2-D only")
    p = torch.randn(3, 4, *spatial, dtype=F64).softmax(1)
    fn = DESCRIPTORS[name]
    whole = fn(p)
    items = torch.cat([fn(p[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(whole, items)
    assert whole.shape[:2] == (3, 4)
    assert whole.shape[2] == DESCRIPTORS[name].n_values(len(spatial))


@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
@pytest.mark.parametrize("spatial", [(5, 6), (3, 4, 5)], ids=["2d", "3d"])
@pytest.mark.parametrize("with_spacing", [False, True])
def test_gradcheck(name, spatial, with_spacing):
    if name == "orientation" and len(spatial) == 3:
        pytest.skip("orientation is 2-D only")
    g = torch.Generator().manual_seed(1)
    p = torch.randn(2, 2, *spatial, dtype=F64, generator=g).softmax(1).requires_grad_()
    spacing = (
        torch.tensor([[1.5, 0.7, 2.0][: len(spatial)], [0.5, 1.0, 1.2][: len(spatial)]], dtype=F64)
        if with_spacing
        else None
    )
    assert torch.autograd.gradcheck(lambda x: DESCRIPTORS[name](x, spacing=spacing), (p,))


@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
def test_empty_and_one_pixel_classes_are_finite(name):
    p = torch.zeros(2, 2, 6, 7, dtype=torch.float32)
    p[1, 1, 3, 4] = 1.0  # one pixel; everything else empty
    p.requires_grad_()
    out = DESCRIPTORS[name](p)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert torch.isfinite(p.grad).all()
    if name in ("size", "length", "centroid"):
        assert out[0].abs().max() == 0  # an empty class has size, length and centroid 0


def test_dtype_device_preserved_and_low_precision_accumulates_in_float32():
    p32 = torch.randn(2, 3, 64, 64).softmax(1)
    for dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16):
        p = p32.to(dtype)
        for name in ("size", "centroid", "dist_centroid", "length"):
            out = DESCRIPTORS[name](p)
            assert out.dtype == dtype and out.device == p.device
            ref = DESCRIPTORS[name](p.to(torch.float32))
            # inputs rounded to bf16/fp16, but no accumulation error on top: within a few ulps of the value
            torch.testing.assert_close(out.float(), ref, rtol=1e-2, atol=1e-2)


def test_spacing_units():
    mask = np.zeros((20, 30), np.uint8)
    mask[4:12, 5:25] = 1  # 8 rows x 20 cols
    p = as_probs(mask)
    sp = (2.0, 0.5)
    assert soft_size(p, spacing=sp).item() == pytest.approx(160 * 1.0)
    torch.testing.assert_close(
        soft_centroid(p, spacing=sp), soft_centroid(p) * torch.tensor(sp, dtype=F64)
    )
    torch.testing.assert_close(
        soft_dist_centroid(p, spacing=sp),
        soft_dist_centroid(p) * torch.tensor(sp, dtype=F64),
        atol=1e-5,
        rtol=0,
    )
    # face pairs weigh the length of the face they cross: the perimeter in mm (8 rows x 2 mm, 20 cols x 0.5 mm)
    assert soft_length(p, spacing=sp, connectivity=4).item() == pytest.approx(2 * 16 + 2 * 10)
    # isotropic spacing s scales the length by s in 2-D and s^2 in 3-D
    assert soft_length(p, spacing=(3.0, 3.0)).item() == pytest.approx(3 * soft_length(p).item())
    q = torch.rand(1, 2, 4, 5, 6, dtype=F64)
    torch.testing.assert_close(soft_length(q, spacing=(2.0, 2.0, 2.0)), 4 * soft_length(q))


def spacing_shapes():
    """A tilted ellipse (2-D) and a tilted ellipsoid (3-D), with a pixel / voxel volume other than 1."""
    m2 = np.zeros((40, 50), np.uint8)
    rr, cc = ellipse(19, 24, 8, 17, rotation=0.5, shape=m2.shape)
    m2[rr, cc] = 1
    g = np.indices((12, 15, 14)).astype(np.float64)
    u, v = (g[1] - 7) * 0.8 + (g[2] - 6.2) * 0.6, (g[2] - 6.2) * 0.8 - (g[1] - 7) * 0.6
    m3 = (((g[0] - 5.5) / 4) ** 2 + (u / 6) ** 2 + (v / 4) ** 2 <= 1).astype(np.uint8)
    return [(m2, (1.5, 0.6)), (m3, (2.5, 0.8, 1.1))]


@pytest.mark.parametrize("mask, sp", spacing_shapes(), ids=["2d", "3d"])
def test_spacing_against_regionprops(mask, sp):
    """size, centroid, moments, spread, eccentricity (and orientation) in mm: scikit-image's values."""
    rp = regionprops(mask, spacing=sp)[0]
    p = as_probs(mask)
    assert soft_size(p, spacing=sp).item() == pytest.approx(rp.area, rel=1e-12)
    torch.testing.assert_close(
        soft_centroid(p, spacing=sp).flatten(), torch.tensor(rp.centroid, dtype=F64)
    )
    mu = rp.moments_central / rp.num_pixels  # scikit-image: central moments in mm, per pixel
    if mask.ndim == 2:
        cov = [mu[2, 0], mu[1, 1], mu[0, 2]]
    else:
        cov = [mu[2, 0, 0], mu[1, 1, 0], mu[1, 0, 1], mu[0, 2, 0], mu[0, 1, 1], mu[0, 0, 2]]
    torch.testing.assert_close(
        soft_covariance(p, spacing=sp).flatten(), torch.tensor(cov, dtype=F64)
    )
    diagonal = [0, 2] if mask.ndim == 2 else [0, 3, 5]
    spread = torch.tensor([cov[i] for i in diagonal], dtype=F64)
    torch.testing.assert_close(soft_dist_centroid(p, spacing=sp).flatten(), spread.sqrt())
    if mask.ndim == 2:
        assert soft_eccentricity(p, spacing=sp).item() == pytest.approx(rp.eccentricity, rel=1e-9)
        assert soft_orientation(p, spacing=sp).item() == pytest.approx(rp.orientation, rel=1e-9)
    else:  # scikit-image has no 3-D eccentricity: from the inertia tensor's eigenvalues
        lam = np.linalg.eigvalsh(np.array(cov)[[[0, 1, 2], [1, 3, 4], [2, 4, 5]]])
        expected = math.sqrt(1 - lam[0] / lam[-1])
        assert soft_eccentricity(p, spacing=sp).item() == pytest.approx(expected, rel=1e-9)


def brute_length(p: np.ndarray, connectivity: int, spacing) -> float:
    """sum over neighbour pairs, each once, of w (p(x) - p(y))^2, w = voxel volume |d| / |d in mm|."""
    total = 0.0
    nd = p.ndim
    max_l1 = {4: 1, 8: 2, 6: 1, 18: 2, 26: 3}[connectivity]
    for d in itertools.product((-1, 0, 1), repeat=nd):
        nz = [v for v in d if v]
        if not nz or nz[0] < 0 or sum(map(abs, d)) > max_l1:
            continue
        w = math.prod(spacing) * math.dist(d, [0] * nd) / math.hypot(*np.multiply(d, spacing))
        a = p[tuple(slice(max(v, 0), p.shape[i] + min(v, 0)) for i, v in enumerate(d))]
        b = p[tuple(slice(max(-v, 0), p.shape[i] + min(-v, 0)) for i, v in enumerate(d))]
        total += w * ((a - b) ** 2).sum()
    return total


@pytest.mark.parametrize(
    "shape, connectivity, sp",
    [
        ((7, 9), 4, (1.5, 0.6)),
        ((7, 9), 8, (1.5, 0.6)),
        ((4, 5, 6), 6, (2.5, 0.8, 1.1)),
        ((4, 5, 6), 18, (2.5, 0.8, 1.1)),
        ((4, 5, 6), 26, (2.5, 0.8, 1.1)),
    ],
)
def test_length_with_spacing_equals_weighted_pairs(shape, connectivity, sp):
    q = torch.rand(1, 1, *shape, dtype=F64, generator=torch.Generator().manual_seed(4))
    expected = brute_length(q[0, 0].numpy(), connectivity, sp)
    got = soft_length(q, spacing=sp, connectivity=connectivity).item()
    assert got == pytest.approx(expected, rel=1e-12)
    unit = brute_length(q[0, 0].numpy(), connectivity, (1.0,) * len(shape))
    assert soft_length(q, connectivity=connectivity).item() == pytest.approx(unit, rel=1e-12)


def test_per_image_spacing_equals_one_call_per_image():
    p = torch.randn(3, 2, 10, 12, dtype=F64).softmax(1)
    sp = torch.tensor([[1.0, 2.0], [0.5, 0.5], [3.0, 1.5]], dtype=F64)
    for name in sorted(DESCRIPTORS):
        whole = DESCRIPTORS[name](p, spacing=sp)
        items = torch.cat(
            [DESCRIPTORS[name](p[i : i + 1], spacing=sp[i].tolist()) for i in range(3)]
        )
        torch.testing.assert_close(whole, items)


def test_length_under_autograd_twice_and_noncontiguous_input():
    base = torch.randn(2, 10, 12, 3, dtype=F64).softmax(-1).requires_grad_()
    p = base.permute(0, 3, 1, 2)  # non-contiguous (channels-last-like) view
    out = soft_length(p)
    torch.testing.assert_close(out, soft_length(p.contiguous()))
    weights = torch.rand(2, 3, 1, dtype=F64)
    (first,) = torch.autograd.grad(out, base, weights, retain_graph=True)
    (second,) = torch.autograd.grad(out, base, weights)  # the saved L p is left intact
    assert torch.equal(first, second)
    ref = REF_DESCRIPTORS["length"](p, dtype=F64)
    (expected,) = torch.autograd.grad(ref, base, weights)
    torch.testing.assert_close(first, expected)


@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.rand(4, 5, 6), "ndim 4 or 5"),
        (torch.rand(1, 1, 2, 3, 4, 5), "ndim 4 or 5"),
        (torch.ones(1, 2, 4, 4, dtype=torch.int64), "floating-point"),
        (torch.full((1, 2, 4, 4), float("nan")), "NaN"),
        ([[0.5]], "torch.Tensor"),
    ],
)
def test_bad_inputs_raise(bad, match):
    for fn in DESCRIPTORS.values():
        with pytest.raises(ValueError, match=match):
            fn(bad)


def test_bad_options_raise():
    p = torch.rand(1, 2, 5, 5)
    with pytest.raises(ValueError, match=r"connectivity: expected one of \(4, 8\).*got 6"):
        soft_length(p, connectivity=6)
    with pytest.raises(ValueError, match=r"connectivity: expected one of \(6, 18, 26\)"):
        soft_length(torch.rand(1, 1, 3, 3, 3), connectivity=8)
    with pytest.raises(ValueError, match=r"spacing: expected 2 values"):
        soft_size(p, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match=r"spacing: expected positive"):
        soft_size(p, spacing=(1.0, -1.0))
    with pytest.raises(
        ValueError, match=r"^spacing: expected a constant tensor, got one that requires grad$"
    ):
        soft_length(p, spacing=torch.ones(2, requires_grad=True))
    with pytest.raises(ValueError, match="orientation: expected 2-D"):
        soft_orientation(torch.rand(1, 1, 3, 3, 3))
    with pytest.raises(ValueError, match=r"descriptor: expected one of .*got 'perimeter'"):
        D.check_descriptor_name("perimeter")
    with pytest.raises(ValueError, match=r"options: expected keywords among \[\] for 'size'"):
        DESCRIPTORS["size"](p, connectivity=4)
    with pytest.raises(ValueError, match=r"options: expected keywords among \['connectivity'\]"):
        DESCRIPTORS["length"](p, conectivity=4)


def test_registry_facts():
    """One entry per descriptor: its name, how many values, extensive, signed, options."""
    assert all(name == d.name for name, d in DESCRIPTORS.items())
    facts = {
        name: (d.n_values(2), d.n_values(3), d.extensive, d.signed, d.options)
        for name, d in DESCRIPTORS.items()
    }
    assert facts == {
        "size": (1, 1, True, False, ()),
        "centroid": (2, 3, False, False, ()),
        "dist_centroid": (2, 3, False, False, ()),
        "length": (1, 1, True, False, ("connectivity",)),
        "compactness": (1, 1, False, False, ("connectivity",)),
        "covariance": (3, 6, False, True, ()),
        "eccentricity": (1, 1, False, False, ()),
        "orientation": (1, 1, False, True, ()),
    }


@pytest.mark.parametrize("name", sorted(DESCRIPTORS))
def test_public_function_is_the_registry_entry(name):
    """``soft_<name>`` and ``DESCRIPTORS[name]`` give the same values, bit for bit."""
    p = torch.randn(2, 3, 9, 11).softmax(1)
    fn = getattr(D, f"soft_{name}")
    assert torch.equal(fn(p, spacing=(1.5, 0.5)), DESCRIPTORS[name](p, spacing=(1.5, 0.5)))
    g = D.Geometry(p)
    assert torch.equal(DESCRIPTORS[name].compute(g), fn(p))


def test_demo_command_runs(capsys):
    from tutorial_lib.cli import main

    assert main(["demo", "--spacing", "1.5", "1.5"]) == 0
    out = capsys.readouterr().out
    assert "dist_centroid" in out and "Log-barrier" in out
    assert main(["demo", "--height", "3"]) == 2
    assert "expected at least 8 px" in capsys.readouterr().err
