"""Penalties: the exact log-barrier extension, its C^1 junction, finiteness, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.penalties import (
    PENALTIES,
    check_penalty_name,
    log_barrier_extension,
    quadratic_penalty,
)

F64 = torch.float64


def formula(z: float, t: float) -> float:
    if z <= -1 / t**2:
        return -math.log(-z) / t
    return t * z - math.log(1 / t**2) / t + 1 / t


@pytest.mark.parametrize("t", [0.5, 1.0, 5.0, 1e3])
def test_values_match_the_formula(t):
    zs = [-10.0, -1.0, -0.3, -1 / t**2 - 1e-9, -1 / t**2, -1 / t**2 + 1e-9, 0.0, 0.2, 7.0]
    out = log_barrier_extension(torch.tensor(zs, dtype=F64), t)
    assert out.tolist() == pytest.approx([formula(z, t) for z in zs], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("t", [1.0, 3.0, 50.0, 1.7e8])
def test_continuous_value_and_slope_at_the_junction(t):
    thr = -1 / t**2
    h = abs(thr) * 1e-6
    z = torch.tensor([thr - h, thr, thr + h], dtype=F64, requires_grad=True)
    v = log_barrier_extension(z, t)
    (g,) = torch.autograd.grad(v.sum(), z)
    # no jump: each side moves by (slope t) x h, as a C^1 function does
    assert abs(v[0].item() - v[1].item()) <= 1.001 * t * h
    assert abs(v[2].item() - v[1].item()) <= 1.001 * t * h
    assert v[1].item() == pytest.approx(2 * math.log(t) / t, rel=1e-12)
    assert g.tolist() == pytest.approx([t, t, t], rel=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, F64, torch.bfloat16])
@pytest.mark.parametrize("t", [1.0, 1.7e8])
def test_finite_everywhere_including_zero_and_positive(dtype, t):
    z = torch.tensor(
        [-1e30, -1e4, -1.0, -1e-20, 0.0, 1e-20, 1.0, 1e4], dtype=dtype, requires_grad=True
    )
    v = log_barrier_extension(z, t)
    v.sum().backward()
    assert torch.isfinite(v).all() and torch.isfinite(z.grad).all()
    assert z.grad[-4:].float() == pytest.approx(t, rel=1e-2)  # slope t for z > -1/t^2


def test_slope_is_t_beyond_the_edge_and_barrier_inside():
    z = torch.tensor([-2.0, -0.5, 0.0, 3.0], dtype=F64, requires_grad=True)
    log_barrier_extension(z, 1.0).sum().backward()
    assert z.grad.tolist() == pytest.approx([0.5, 1.0, 1.0, 1.0])  # -1/(t z) inside, t outside


def test_tensor_t_equals_float_t():
    z = torch.linspace(-3, 3, 31, dtype=F64)
    torch.testing.assert_close(
        log_barrier_extension(z, torch.tensor(2.5)), log_barrier_extension(z, 2.5)
    )


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_gradcheck(name):
    z = torch.tensor([-3.0, -0.7, -0.05, 0.3, 2.0], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: PENALTIES[name](x, 2.0), (z,))


def test_quadratic_penalty():
    z = torch.tensor([-2.0, 0.0, 0.5, 3.0])
    assert quadratic_penalty(z).tolist() == [0.0, 0.0, 0.25, 9.0]
    assert quadratic_penalty(z, 123.0).tolist() == [0.0, 0.0, 0.25, 9.0]  # t ignored


@pytest.mark.parametrize(
    "t, match",
    [(0.0, "positive"), (-1.0, "positive"), (float("nan"), "positive"), ("1", "positive")],
)
def test_bad_t_raises(t, match):
    with pytest.raises(ValueError, match=match):
        log_barrier_extension(torch.zeros(3), t)


def test_bad_tensor_t_and_names_raise():
    with pytest.raises(
        ValueError, match=r"t: expected a positive scalar, got a tensor of shape \(2,\)"
    ):
        log_barrier_extension(torch.zeros(3), torch.ones(2))
    with pytest.raises(
        ValueError, match=r"penalty: expected one of \['log_barrier', 'quadratic'\], got 'l2'"
    ):
        check_penalty_name("l2")


def slope(z: float, t: float) -> float:
    """d psi_t / dz: -1 / (t z) on the log branch, t on the linear one."""
    return -1 / (t * z) if z <= -1 / t**2 else t


@pytest.mark.parametrize("t", [0.3, 0.5, 2.0, 5.0, 40.0])
def test_dense_grid_through_both_candidate_branch_points(t):
    """Values and slopes on a dense grid spanning -1/t and -1/t^2 (a branch point at -1/t shows)."""
    lo, hi = sorted([-1 / t, -1 / t**2])
    zs = torch.linspace(lo - 0.5 * abs(lo), hi + 0.5 * abs(hi), 401, dtype=F64)
    z = zs.clone().requires_grad_()
    v = log_barrier_extension(z, t)
    (g,) = torch.autograd.grad(v.sum(), z)
    assert v.tolist() == pytest.approx([formula(x, t) for x in zs.tolist()], rel=1e-12, abs=1e-12)
    assert g.tolist() == pytest.approx([slope(x, t) for x in zs.tolist()], rel=1e-12)


def test_float32_tensor_t_on_float64_z_is_float64_accurate():
    """t is cast to z's dtype first: log(t) and 1/t^2 in float64, as with the same float t."""
    t32 = torch.tensor(1.1, dtype=torch.float32)
    z = torch.linspace(-3, 3, 61, dtype=F64)
    out = log_barrier_extension(z, t32)
    assert out.dtype == F64
    torch.testing.assert_close(out, log_barrier_extension(z, float(t32)), rtol=1e-14, atol=1e-14)
