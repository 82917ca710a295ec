"""Bounds: precise (percentage / abs, clamped), constant, empty-class policies, per-column rules."""

from __future__ import annotations

import math

import pytest
import torch
from authors_reference import REF_DESCRIPTORS, ref_precise_bounds

from tutorial_lib.bounds import (
    bound_rules,
    check_policy,
    column_bounds,
    constant_table,
    labels_to_onehot,
    margin_bounds,
    precise_bounds,
)
from tutorial_lib.descriptors import DESCRIPTORS

INF = math.inf


def bounds_from_target(target, n_classes, name, classes, *, margin, mode="percentage", policy):
    """Precise bounds (B, len(classes), n, 2) of one descriptor, made as the loss makes them:
    ground-truth values laid out as columns, ``bound_rules`` + ``column_bounds``."""
    onehot = labels_to_onehot(target, n_classes, torch.float64)
    values = DESCRIPTORS[name](onehot)[:, list(classes)]  # (B, C, n)
    b, c, n = values.shape
    present = (onehot.sum(tuple(range(2, onehot.ndim))) > 0)[:, list(classes)]
    present = present[..., None].expand(b, c, n).reshape(b, c * n)
    rules = bound_rules([(name, margin, mode, None)] * (c * n), torch.float64, "cpu")
    return column_bounds(rules, values.reshape(b, c * n), present, policy).view(b, c, n, 2)


def test_precise_percentage_and_abs_clamped_at_zero():
    v = torch.tensor([[[100.0, 5.0]]])
    pct = precise_bounds(v, 0.1, "percentage")
    assert pct.tolist() == [[[[90.0, 110.0], [4.5, 5.5]]]]
    ab = precise_bounds(v, 20, "abs")
    assert ab.tolist() == [[[[80.0, 120.0], [0.0, 25.0]]]]  # 5 - 20 clamped at 0
    assert precise_bounds(v, 10, "percentage")[..., 1].tolist() == [
        [[1100.0, 55.0]]
    ]  # the paper's length margin
    signed = precise_bounds(torch.tensor([[[-1.0]]]), 0.5, "percentage", signed=True)
    assert signed.tolist() == [[[[-1.5, -0.5]]]]  # |v| keeps lower <= upper for negative values


def test_margin_bounds_per_column_margins_and_clamp():
    values = torch.tensor([[100.0, -5.0, 5.0]])  # (B=1, 3 columns)
    pct = torch.tensor([0.1, 0.0, 0.0])
    ab = torch.tensor([0.0, 2.0, 20.0])
    clamp = torch.tensor([True, False, True])
    out = margin_bounds(values, pct, ab, clamp)
    assert out.tolist() == [[[90.0, 110.0], [-7.0, -3.0], [0.0, 25.0]]]
    assert margin_bounds(values, pct, ab, False)[0, 2].tolist() == [-15.0, 25.0]
    assert margin_bounds(values, pct, ab)[0, 1].tolist() == [0.0, 0.0]  # clamp=True: all columns


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
    torch.testing.assert_close(
        size[:, 0, 0], torch.tensor([[10.8, 13.2], [0.0, 0.0]], dtype=torch.float64)
    )
    length = bounds_from_target(target, 2, "length", [1], margin=10, policy="corrected")
    assert length[1].tolist() == [[[0.0, 0.0]]]
    cen = bounds_from_target(target, 2, "centroid", [1], margin=20, mode="abs", policy="corrected")
    assert cen[1].tolist() == [[[-INF, INF], [-INF, INF]]]
    assert torch.isfinite(cen[0]).all()


def test_constant_table_shapes():
    assert constant_table([10.0, 20.0], [100.0, 200.0], 2).tolist() == [
        [[10.0, 100.0]],
        [[20.0, 200.0]],
    ]
    table = constant_table([[1, 2], [3, 4]], INF, 2)
    assert table.shape == (2, 2, 2) and table[1].tolist() == [[3.0, INF], [4.0, INF]]
    assert constant_table(None, 5.0, 1).tolist() == [[[-INF, 5.0]]]


def test_constant_columns_and_policy():
    """Constant columns take their table; the corrected policy still applies to absent classes."""
    columns = [("size", 0.0, "abs", (10.0, 100.0)), ("centroid", 0.0, "abs", (2.0, 8.0))]
    rules = bound_rules(columns, torch.float32, "cpu")
    assert rules.all_constant and not rules.any_infinite
    values = torch.zeros(2, 2)  # not read for constant columns
    present = torch.tensor([[True, True], [False, False]])
    paper = column_bounds(rules, values, present, "paper")
    assert paper.tolist() == [[[10.0, 100.0], [2.0, 8.0]]] * 2
    fixed = column_bounds(rules, values, present, "corrected")
    assert fixed[0].tolist() == [[10.0, 100.0], [2.0, 8.0]]
    assert fixed[1].tolist() == [[0.0, 0.0], [-INF, INF]]  # size extensive, centroid free
    one_sided = bound_rules([("size", 0.0, "abs", (-INF, 5.0))], torch.float32, "cpu")
    assert one_sided.any_infinite and one_sided.may_be_free("paper")


def test_signed_descriptors_not_clamped():
    rules = bound_rules([("orientation", 0.2, "abs", None)], torch.float32, "cpu")
    out = column_bounds(rules, torch.tensor([[-0.5]]), torch.tensor([[True]]), "paper")
    torch.testing.assert_close(out, torch.tensor([[[-0.7, -0.3]]]))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: constant_table(5.0, 1.0, 1), "lower <= upper"),
        (lambda: constant_table([1.0, 2.0, 3.0], 9.0, 2), r"one value per class \(2\)"),
        (lambda: constant_table(float("nan"), 9.0, 1), "NaN"),
        (
            lambda: constant_table([[0.0, 1.0]], [[5.0, 6.0, 7.0]], 1),
            r"^lower, upper: expected tables that broadcast to one shape, got shapes \(1, 2\) and "
            r"\(1, 3\)$",
        ),
        (
            lambda: precise_bounds(torch.ones(1, 1, 1), 0.1, "relative"),
            r"mode: expected one of \('percentage', 'abs'\)",
        ),
        (lambda: precise_bounds(torch.ones(1, 1, 1), -0.1), "margin: expected a non-negative"),
        (lambda: check_policy("ignore"), "empty_policy: expected one of"),
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


def test_paper_policy_reads_an_absent_class_as_zero_whatever_its_value():
    """The value of an absent class may be non-zero (the eccentricity of an empty map is 1): the
    paper policy bounds it around 0, the corrected policy leaves it free; present classes keep v."""
    rules = bound_rules([("eccentricity", 0.2, "abs", None)] * 2, torch.float64, "cpu")
    values = torch.tensor([[1.0, 0.5]], dtype=torch.float64)
    present = torch.tensor([[False, True]])
    paper = column_bounds(rules, values, present, "paper")
    assert paper.tolist() == [[[0.0, 0.2], [0.3, 0.7]]]
    fixed = column_bounds(rules, values, present, "corrected")
    assert fixed.tolist() == [[[-INF, INF], [0.3, 0.7]]]


def test_mixed_signed_and_unsigned_columns_clamp_only_the_unsigned():
    columns = [("covariance", 0.5, "percentage", None), ("size", 2.0, "abs", None)]
    rules = bound_rules(columns, torch.float64, "cpu")
    assert not rules.all_clamp and rules.clamp.tolist() == [False, True]
    values = torch.tensor([[-4.0, 1.0]], dtype=torch.float64)
    out = column_bounds(rules, values, torch.tensor([[True, True]]), "paper")
    assert out.tolist() == [[[-6.0, -2.0], [0.0, 3.0]]]


def test_float64_margins_are_exact_and_low_precision_keeps_its_dtype():
    rules = bound_rules([("size", 0.1, "percentage", None)], torch.float64, "cpu")
    assert rules.pct_margin.dtype == torch.float64
    v = torch.tensor([[123.456]], dtype=torch.float64)
    out = column_bounds(rules, v, torch.tensor([[True]]), "paper")
    assert out.tolist() == [[[123.456 - 0.1 * 123.456, 123.456 + 0.1 * 123.456]]]
    for dtype in (torch.float16, torch.bfloat16):
        assert precise_bounds(torch.ones(1, 1, 1, dtype=dtype), 0.1).dtype == dtype
        low = bound_rules([("centroid", 1.0, "abs", None)], dtype, "cpu")
        free = column_bounds(
            low, torch.ones(1, 1, dtype=dtype), torch.tensor([[False]]), "corrected"
        )
        assert free.dtype == dtype and free.tolist() == [[[-INF, INF]]]


def test_zero_margin_and_equal_constant_bounds_are_allowed():
    v = torch.tensor([[[3.0, -2.0]]])
    assert precise_bounds(v, 0.0, signed=True).tolist() == [[[[3.0, 3.0], [-2.0, -2.0]]]]
    assert constant_table(2.0, 2.0, 1).tolist() == [[[2.0, 2.0]]]  # an exact constraint
    assert constant_table(1.0, None, 1).tolist() == [[[1.0, INF]]]
    assert constant_table(0.1, None, 1)[0, 0, 0].item() == 0.1  # a float64 table: 0.1 exactly


def test_may_be_free_only_under_the_corrected_policy_or_with_an_infinite_side():
    finite = bound_rules([("size", 0.1, "percentage", None)], torch.float32, "cpu")
    assert finite.may_be_free("corrected") and not finite.may_be_free("paper")


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: constant_table(torch.zeros(2, 1, 1), 9.0, 2),
            r"^lower: expected a number, one value per class \(2\) or a \(2, n\) table, got shape "
            r"\(2, 1, 1\)$",
        ),
        (
            lambda: constant_table(0.0, torch.ones(3, 1), 2),
            r"^upper: expected a number, .* got shape \(3, 1\)$",
        ),
        (lambda: constant_table(0.0, [1.0, 2.0, 3.0], 2), r"^upper: expected .*got 3 values$"),
        (lambda: constant_table([1.0, 2.0, 3.0], 9.0, 2), r"^lower: expected .*got 3 values$"),
    ],
)
def test_bad_tables_name_their_side(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_population_bounds_dtypes_and_errors():
    from tutorial_lib.bounds import population_bounds

    values = torch.tensor([[[1.0, 2.0]], [[3.0, 6.0]]], dtype=torch.float64)  # (N=2, K=1, n=2)
    present = torch.tensor([[True], [True]])
    table = population_bounds(values, present, (0,), quantiles=(0.25, 0.75))
    assert table.dtype == torch.float64 and table.shape == (1, 2, 2)
    assert table[0].tolist() == [[1.5, 2.5], [3.0, 5.0]]
    half = population_bounds(values.half(), present, (0,))
    assert half.dtype == torch.float32 and half[0].tolist() == [[1.0, 3.0], [2.0, 6.0]]
    with pytest.raises(ValueError, match=r"^values, present: expected shapes .*got \(2, 1, 2\)"):
        population_bounds(values, present[:1], (0,))
    with pytest.raises(ValueError, match=r"^quantiles: expected 0 <= low <= high <= 1, got"):
        population_bounds(values, present, (0,), quantiles=(0.0, 1.5))
    with pytest.raises(ValueError, match=r"^margin: expected a number >= 0, got -0.1$"):
        population_bounds(values, present, (0,), margin=-0.1)
    with pytest.raises(ValueError, match=r"^classes: expected indices below 1, got 1$"):
        population_bounds(values, present, (1,))
