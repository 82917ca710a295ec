"""Weak labels: the loss without masks equals the mask path, given bounds, free entries, errors."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.losses import (
    DescriptorTerm,
    ShapeDescriptorLoss,
    paper_terms,
    shape_descriptor_loss,
)
from tutorial_lib.weak_labels import WeakLabels, weak_labels_from_masks, weak_labels_from_values

F64 = torch.float64


def random_labels(shape, n_classes, seed):
    """Blocky random label maps with some classes absent from some images."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(
        0, n_classes, (shape[0], *(max(s // 4, 1) for s in shape[1:])), generator=g
    )
    labels = coarse
    for axis in range(1, len(shape)):
        labels = labels.repeat_interleave(4, dim=axis)
    labels = labels[(slice(None), *(slice(0, s) for s in shape[1:]))].clone()
    labels[0][labels[0] == 2] = 0  # class 2 absent from image 0
    labels[-1][labels[-1] == 1] = n_classes - 1  # class 1 absent from the last image
    return labels


def loss_and_grad(terms, logits, target, policy, t=3.0, spacing=None):
    logits = logits.detach().requires_grad_(True)
    loss = ShapeDescriptorLoss(terms, empty_policy=policy)(logits.softmax(1), target, t, spacing)
    (grad,) = torch.autograd.grad(loss, logits)
    return loss.detach(), grad


EQUALITY_TERMS = [
    *paper_terms("acdc"),
    DescriptorTerm("covariance", (2, 1), margin=3.0, mode="abs"),  # signed, classes not in order
    DescriptorTerm("compactness", (1,), margin=0.2, options={"connectivity": 4}),
    DescriptorTerm("size", (1, 3), lower=[5.0, 10.0], upper=300.0, name="prior"),  # constant
]


@pytest.mark.parametrize("policy", ["paper", "corrected"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weak_labels_of_the_masks_give_the_mask_loss_and_gradient(policy, dtype):
    """The weak path with the masks' own descriptors is the mask path: value and gradient."""
    labels = random_labels((4, 24, 20), 4, seed=0)
    logits = torch.randn(4, 4, 24, 20, dtype=dtype, generator=torch.Generator().manual_seed(1))
    weak = weak_labels_from_masks(labels, 4, EQUALITY_TERMS)
    mask_loss, mask_grad = loss_and_grad(EQUALITY_TERMS, logits, labels, policy)
    weak_loss, weak_grad = loss_and_grad(EQUALITY_TERMS, logits, weak, policy)
    rtol = 1e-12 if dtype == F64 else 1e-5
    assert mask_loss != 0 and mask_grad.abs().max() > 0
    assert torch.allclose(weak_loss, mask_loss, rtol=rtol, atol=0)
    assert torch.allclose(weak_grad, mask_grad, rtol=rtol, atol=rtol * mask_grad.abs().max())


def test_weak_labels_equal_the_masks_in_3d_and_in_mm():
    terms = [
        DescriptorTerm("size", (1, 2), physical=True),
        DescriptorTerm("centroid", (1,), margin=2.0, mode="abs", physical=True),
        DescriptorTerm("dist_centroid", (2,), margin=2.0, mode="abs"),
    ]
    labels = random_labels((3, 8, 12, 12), 3, seed=2)
    logits = torch.randn(3, 3, 8, 12, 12, dtype=F64, generator=torch.Generator().manual_seed(3))
    spacing = (2.5, 0.8, 0.7)
    weak = weak_labels_from_masks(labels, 3, terms, spacing=spacing)
    for policy in ("paper", "corrected"):
        mask_loss, mask_grad = loss_and_grad(terms, logits, labels, policy, spacing=spacing)
        weak_loss, weak_grad = loss_and_grad(terms, logits, weak, policy, spacing=spacing)
        assert torch.allclose(weak_loss, mask_loss, rtol=1e-12, atol=0)
        assert torch.allclose(weak_grad, mask_grad, rtol=1e-12, atol=1e-15)


def test_functional_form_and_stats_take_weak_labels():
    labels = random_labels((2, 16, 16), 4, seed=4)
    probs = torch.randn(2, 4, 16, 16, dtype=F64).softmax(1)
    weak = weak_labels_from_masks(labels, 4, paper_terms("acdc"))
    a, stats_a = shape_descriptor_loss(probs, labels, 2.0, paper_terms("acdc"))
    b, stats_b = shape_descriptor_loss(probs, weak, 2.0, paper_terms("acdc"))
    assert torch.equal(a, b)
    assert stats_a.keys() == stats_b.keys()
    assert all(torch.allclose(stats_a[k], stats_b[k]) for k in stats_a)


def test_given_bounds_are_used_as_they_are():
    """Bounds given per image equal a constant-bound term with the same numbers."""
    labels = random_labels((2, 16, 16), 3, seed=5)
    probs = torch.randn(2, 3, 16, 16, dtype=F64).softmax(1)
    lower, upper = (
        torch.tensor([[20.0], [30.0]], dtype=F64),
        torch.tensor([[60.0], [math.inf]], dtype=F64),
    )
    prior = DescriptorTerm("size", (1, 2), lower=lower.tolist(), upper=upper.tolist())
    expected = ShapeDescriptorLoss([prior])(probs, None, 2.0)
    bounds = torch.stack([lower.expand(2, 1), upper.expand(2, 1)], -1)  # (classes, 1, 2)
    table = torch.full((2, 3, 1, 2), math.nan, dtype=F64)
    table[:, 1:] = bounds
    weak = WeakLabels({}, {"size": table}, torch.ones(2, 3, dtype=torch.bool))
    got = ShapeDescriptorLoss([DescriptorTerm("size", (1, 2))])(probs, weak, 2.0)
    assert torch.allclose(got, expected, rtol=1e-12)
    assert labels.shape[0] == 2  # the masks were never used: the loss got only `weak`


def test_an_entry_given_neither_way_is_free():
    """An image whose values are all NaN adds nothing: the loss is that of the other image."""
    labels = random_labels((2, 16, 16), 4, seed=6)
    probs = torch.randn(2, 4, 16, 16, dtype=F64).softmax(1)
    terms = paper_terms("acdc")
    full = weak_labels_from_masks(labels, 4, terms)
    values = {n: v.clone() for n, v in full.values.items()}
    for v in values.values():
        v[1] = math.nan
    present = full.present.clone()
    present[1] = True  # present, nothing known
    blank = WeakLabels(values, {}, present)
    loss = ShapeDescriptorLoss(terms, empty_policy="paper")
    assert torch.allclose(
        loss(probs, blank, 2.0), loss(probs[:1], full.select([0]), 2.0), rtol=1e-12
    )
    assert loss.last_stats["size/loss"] != 0


def test_select_and_to():
    labels = random_labels((4, 12, 12), 4, seed=7)
    weak = weak_labels_from_masks(labels, 4, paper_terms("acdc"), ids=["a", "b", "c", "d"])
    batch = weak.select(torch.tensor([2, 0]))
    assert batch.ids == ("c", "a") and len(batch) == 2 and batch.n_classes == 4
    assert torch.equal(batch.present, weak.present[[2, 0]])
    assert torch.equal(
        batch.values["size"].nan_to_num(-1), weak.values["size"][[2, 0]].nan_to_num(-1)
    )
    assert weak.select(slice(1, 3)).ids == ("b", "c")
    moved = weak.to(dtype=torch.float32)
    assert moved.values["centroid"].dtype == torch.float32 and moved.present.dtype == torch.bool
    assert set(moved.bounds) == set(weak.values)  # the bounds side was filled with NaN


def test_from_values_marks_presence_where_values_are_given():
    size = torch.tensor([[10.0], [math.nan]])
    weak = weak_labels_from_values({1: {"size": size}, 0: {"size": 100 - size}}, 3, ids=["x", "y"])
    assert weak.present.tolist() == [[True, True, False], [False, False, False]]
    assert weak.values["size"][0, :, 0].nan_to_num(-1).tolist() == [90.0, 10.0, -1.0]
    with pytest.raises(ValueError, match=r"^per_class: expected classes in \[0, 2\]"):
        weak_labels_from_values({3: {"size": size}}, 3)
    with pytest.raises(ValueError, match=r"^per_class: expected \{class"):
        weak_labels_from_values({1: {"size": torch.ones(2)}}, 3)
    with pytest.raises(ValueError, match=r"^per_class\[1\]\['size'\]: expected 1 values"):
        weak_labels_from_values({0: {"size": size}, 1: {"size": torch.ones(2, 2)}}, 3)


def _weak(**changes):
    fields = dict(
        values={"size": torch.tensor([[[math.nan], [4.0]]])},
        bounds={},
        present=torch.tensor([[False, True]]),
    )
    fields.update(changes)
    return WeakLabels(**fields)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (
            dict(present=torch.ones(1, 2)),
            r"^present: expected a bool tensor \(N, K\), got torch.float32",
        ),
        (
            dict(present=torch.ones(2, dtype=torch.bool)),
            r"^present: expected shape \(N, K\), got \(2,\)",
        ),
        (dict(ids=("a", "b")), r"^ids: expected 1 image names"),
        (dict(values={"sise": torch.ones(1, 2, 1)}), r"^descriptor: expected one of .*got 'sise'"),
        (
            dict(values={"size": torch.ones(1, 2, 1, dtype=torch.long)}),
            r"^size: expected a floating tensor",
        ),
        (
            dict(values={"size": torch.ones(1, 3, 1)}),
            r"^values\['size'\]: expected shape \(1, 2, n\)",
        ),
        (
            dict(bounds={"size": torch.ones(1, 2, 1)}),
            r"^bounds\['size'\]: expected shape \(1, 2, n, 2\)",
        ),
        (
            dict(bounds={"size": torch.ones(1, 2, 2, 2)}),
            r"^bounds\['size'\]: expected 1 values per class as in values, got 2",
        ),
        (dict(values={"size": torch.tensor([[[math.nan], [math.inf]]])}), r"not finite"),
        (
            dict(values={}, bounds={"size": torch.tensor([[[[math.nan] * 2], [[5.0, 1.0]]]])}),
            r"^size: expected a value, \[lower, upper\] or nothing per entry, got lower > upper",
        ),
        (
            dict(values={}, bounds={"size": torch.tensor([[[[math.nan] * 2], [[5.0, math.nan]]]])}),
            r"one side of \[lower, upper\] NaN",
        ),
        (
            dict(bounds={"size": torch.tensor([[[[math.nan] * 2], [[1.0, 5.0]]]])}),
            r"a value and bounds for the same entry",
        ),
        (
            dict(values={"size": torch.tensor([[[3.0], [4.0]]])}),
            r"a value or bounds for an absent class",
        ),
    ],
)
def test_bad_weak_labels_raise(changes, match):
    with pytest.raises(ValueError, match=match):
        _weak(**changes)


def test_checks_against_the_loss_inputs():
    probs = torch.rand(1, 2, 8, 8).softmax(1)
    weak = _weak()
    loss = ShapeDescriptorLoss([DescriptorTerm("size", (1,))])
    assert torch.isfinite(loss(probs, weak, 1.0))
    with pytest.raises(
        ValueError, match=r"^target: expected weak labels of 2 images and 2 classes"
    ):
        loss(torch.rand(2, 2, 8, 8), weak, 1.0)
    with pytest.raises(
        ValueError, match=r"^target: expected weak labels of 1 images and 3 classes"
    ):
        ShapeDescriptorLoss([DescriptorTerm("size", (1,))])(torch.rand(1, 3, 8, 8), weak, 1.0)
    with pytest.raises(
        ValueError, match=r"^target: expected weak labels for 'centroid' \(term 'centroid'\)"
    ):
        ShapeDescriptorLoss([DescriptorTerm("centroid", (1,))])(probs, weak, 1.0)
    three = WeakLabels(
        {"centroid": torch.full((1, 2, 3), 1.0)}, {}, torch.ones(1, 2, dtype=torch.bool)
    )
    with pytest.raises(
        ValueError, match=r"^target: expected 2 values of 'centroid' per class for 2-D"
    ):
        ShapeDescriptorLoss([DescriptorTerm("centroid", (1,))])(probs, three, 1.0)
    constant_only = ShapeDescriptorLoss([DescriptorTerm("centroid", (1,), lower=0.0, upper=9.0)])
    assert torch.isfinite(constant_only(probs, weak, 1.0))  # a constant term reads no value


def test_from_masks_refuses_two_units_for_one_descriptor_and_classes_out_of_range():
    labels = torch.zeros(1, 8, 8, dtype=torch.long)
    terms = [DescriptorTerm("size", (1,)), DescriptorTerm("size", (2,), physical=True)]
    with pytest.raises(
        ValueError, match=r"^terms: expected one set of options and units per descriptor"
    ):
        weak_labels_from_masks(labels, 3, terms, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"^terms: expected classes below n_classes = 2"):
        weak_labels_from_masks(labels, 2, [DescriptorTerm("size", (2,))])


def test_from_masks_gives_values_only_for_the_terms_classes():
    labels = random_labels((2, 12, 12), 4, seed=8)
    weak = weak_labels_from_masks(labels, 4, [DescriptorTerm("size", (1, 3))])
    given = ~weak.values["size"][..., 0].isnan()
    assert torch.equal(given, weak.present & torch.tensor([False, True, False, True]))
    assert torch.equal(
        weak.present, torch.stack([(labels == k).flatten(1).any(1) for k in range(4)], 1)
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_weak_labels_on_cuda_equal_the_masks():
    """Weak labels on the GPU (or left on the CPU: the loss moves them), a batch picked with a
    CPU index as a DataLoader gives it: the mask path's loss and gradient."""
    labels = random_labels((4, 24, 20), 4, seed=9)
    logits = torch.randn(4, 4, 24, 20, generator=torch.Generator().manual_seed(10)).cuda()
    weak = weak_labels_from_masks(labels, 4, EQUALITY_TERMS, ids=list("abcd"))
    index = torch.tensor([3, 1])
    mask_loss, mask_grad = loss_and_grad(
        EQUALITY_TERMS, logits[index], labels[index].cuda(), "corrected"
    )
    for table in (weak.to("cuda", torch.float32), weak):
        batch = table.select(index)
        assert batch.ids == ("d", "b")
        loss, grad = loss_and_grad(EQUALITY_TERMS, logits[index], batch, "corrected")
        assert loss.device.type == "cuda"
        assert torch.allclose(loss, mask_loss, rtol=1e-5) and torch.allclose(
            grad, mask_grad, rtol=1e-4, atol=1e-7
        )
