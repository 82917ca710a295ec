"""Bounds: precise (percentage / abs, clamped), constant, empty-class policies, validation."""

from __future__ import annotations

import math

import pytest
import torch
from authors_reference import REF_DESCRIPTORS, ref_precise_bounds

from tutorial_lib.bounds import (
    apply_empty_policy,
    bounds_from_target,
    bounds_from_values,
    check_bounds,
    constant_bounds,
    labels_to_onehot,
    precise_bounds,
)

INF = math.inf


def test_precise_percentage_and_abs_clamped_at_zero():
    v = torch.tensor([[[100.0, 5.0]]])
    pct = precise_bounds(v, 0.1, "percentage")
    assert pct.tolist() == [[[[90.0, 110.0], [4.5, 5.5]]]]
    ab = precise_bounds(v, 20, "abs")
    assert ab.tolist() == [[[[80.0, 120.0], [0.0, 25.0]]]]  # 5 - 20 clamped at 0
    assert precise_bounds(v, 10, "percentage")[..., 1].tolist() == [
        [[1100.0, 55.0]]
    ]  # the paper's length margin
    signed = precise_bounds(torch.tensor([[[-1.0]]]), 0.5, "percentage", clamp_min=None)
    assert signed.tolist() == [[[[-1.5, -0.5]]]]  # |v| keeps lower <= upper for negative values


@pytest.mark.parametrize(
    "name, margin, mode",
    [
        ("size", 0.1, "percentage"),
        ("centroid", 20, "abs"),
        ("dist_centroid", 20, "abs"),
        ("length", 10, "percentage"),
    ],
)
def test_paper_policy_equals_authors_bounds(name, margin, mode):
    g = torch.Generator().manual_seed(0)
    target = torch.randint(0, 3, (3, 12, 14), generator=g)
    target[1][target[1] == 2] = 0  # class 2 absent from image 1
    ours = bounds_from_target(
        target, 4, name, [0, 1, 2, 3], margin=margin, mode=mode, policy="paper"
    )
    onehot = labels_to_onehot(target, 4, torch.float64)
    ref = ref_precise_bounds(REF_DESCRIPTORS[name](onehot, dtype=torch.float64), margin, mode)
    torch.testing.assert_close(ours.double(), ref, atol=1e-4, rtol=1e-6)
    if name in ("centroid", "dist_centroid"):  # the quirk: an absent class is pulled to [0, margin]
        assert ours[1, 2].tolist() == [[0.0, 20.0], [0.0, 20.0]]


def test_corrected_policy():
    target = torch.zeros(2, 8, 8, dtype=torch.long)
    target[0, 2:5, 2:6] = 1
    size = bounds_from_target(target, 2, "size", [1], margin=0.1, policy="corrected")
    torch.testing.assert_close(size[:, 0, 0], torch.tensor([[10.8, 13.2], [0.0, 0.0]]))
    length = bounds_from_target(target, 2, "length", [1], margin=10, policy="corrected")
    assert length[1].tolist() == [[[0.0, 0.0]]]
    cen = bounds_from_target(target, 2, "centroid", [1], margin=20, mode="abs", policy="corrected")
    assert cen[1].tolist() == [[[-INF, INF], [-INF, INF]]]
    assert torch.isfinite(cen[0]).all()


def test_constant_bounds_shapes_and_policy():
    b = constant_bounds([10.0, 20.0], [100.0, 200.0], batch_size=3, n_classes=2, n_values=1)
    assert b.shape == (3, 2, 1, 2) and b[2, 1, 0].tolist() == [20.0, 200.0]
    table = constant_bounds([[1, 2], [3, 4]], INF, batch_size=1, n_classes=2, n_values=2)
    assert table[0, 1].tolist() == [[3.0, INF], [4.0, INF]]
    one_sided = constant_bounds(None, 5.0, batch_size=1, n_classes=1, n_values=1)
    assert one_sided.tolist() == [[[[-INF, 5.0]]]]
    present = torch.tensor([[True, False]])
    assert apply_empty_policy(b[:1], present, "size", "paper").equal(b[:1])
    fixed = apply_empty_policy(b[:1], present, "size", "corrected")
    assert fixed[0, 1].tolist() == [[0.0, 0.0]] and fixed[0, 0].tolist() == [[10.0, 100.0]]
    free = apply_empty_policy(b[:1], present, "centroid", "corrected")
    assert free[0, 1].tolist() == [[-INF, INF]]


def test_bounds_from_values_signed_descriptors_not_clamped():
    v = torch.tensor([[[-0.5]]])
    out = bounds_from_values(
        v, torch.tensor([[True]]), descriptor="orientation", margin=0.2, mode="abs", policy="paper"
    )
    torch.testing.assert_close(out, torch.tensor([[[[-0.7, -0.3]]]]))


def test_check_bounds_accepts_valid():
    check_bounds(torch.tensor([[[[0.0, 1.0]]]]), torch.zeros(1, 1, 1))
    check_bounds(torch.tensor([[[[-INF, INF]]]]))


@pytest.mark.parametrize(
    "bounds, values, match",
    [
        (torch.zeros(1, 1, 1, 3), None, r"shape \(B, K, n, 2\)"),
        (
            torch.zeros(1, 1, 2, 2),
            torch.zeros(1, 1, 1),
            r"expected shape \(1, 1, 1, 2\).*got \(1, 1, 2, 2\)",
        ),
        (torch.tensor([[[[2.0, 1.0]]]]), None, r"lower <= upper, got lower=2.0 > upper=1.0"),
        (torch.tensor([[[[float("nan"), 1.0]]]]), None, "NaN"),
    ],
)
def test_check_bounds_errors(bounds, values, match):
    with pytest.raises(ValueError, match=match):
        check_bounds(bounds, values)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: constant_bounds(5.0, 1.0, batch_size=1, n_classes=1, n_values=1),
            "lower <= upper",
        ),
        (
            lambda: constant_bounds([1.0, 2.0, 3.0], 9.0, batch_size=1, n_classes=2, n_values=1),
            r"one value per class \(2\)",
        ),
        (
            lambda: constant_bounds([[1.0, 2.0, 3.0]], 9.0, batch_size=1, n_classes=1, n_values=2),
            "expected 2 values per class",
        ),
        (lambda: constant_bounds(float("nan"), 9.0, batch_size=1, n_classes=1, n_values=1), "NaN"),
        (
            lambda: precise_bounds(torch.ones(1, 1, 1), 0.1, "relative"),
            r"mode: expected one of \('percentage', 'abs'\)",
        ),
        (lambda: precise_bounds(torch.ones(1, 1, 1), -0.1), "margin: expected a non-negative"),
        (
            lambda: apply_empty_policy(
                torch.zeros(1, 1, 1, 2), torch.ones(1, 1, dtype=torch.bool), "size", "ignore"
            ),
            "empty_policy: expected one of",
        ),
        (
            lambda: bounds_from_target(torch.zeros(1, 4, 4), 2, "size", [1], margin=0.1),
            "integer labels",
        ),
        (
            lambda: bounds_from_target(
                torch.zeros(1, 4, 4, dtype=torch.long), 2, "area", [1], margin=0.1
            ),
            "descriptor: expected one of",
        ),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_population_bounds_are_the_quantiles_of_present_classes_widened():
    from tutorial_lib.bounds import population_bounds

    values = torch.tensor([[[1.0], [10.0]], [[3.0], [0.0]], [[5.0], [30.0]]])  # (N=3, K=2, n=1)
    present = torch.tensor([[True, True], [True, False], [True, True]])
    table = population_bounds(values, present, (0, 1), margin=0.1)
    assert table.shape == (2, 1, 2)
    assert torch.allclose(table[0, 0], torch.tensor([0.9, 5.5]))
    assert torch.allclose(table[1, 0], torch.tensor([9.0, 33.0]))  # the absent 0.0 is ignored
    median = population_bounds(values, present, (0,), quantiles=(0.5, 0.5))
    assert torch.allclose(median[0, 0], torch.tensor([3.0, 3.0]))
    with pytest.raises(ValueError, match=r"expected shapes \(N, K, n\) and \(N, K\)"):
        population_bounds(values[0], present, (0,))
    with pytest.raises(ValueError, match="quantiles"):
        population_bounds(values, present, (0,), quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="at least one image"):
        population_bounds(values, torch.zeros_like(present), (1,))
