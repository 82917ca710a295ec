"""Edges of the core: inf probabilities, bad spacings (sequences and tensors), empty batches, and
the log-barrier extension for t far beyond a real run's (float32), with t capped by MultiplyT."""

from __future__ import annotations

import math

import pytest
import torch

from tutorial_lib.descriptors import DESCRIPTORS, soft_centroid
from tutorial_lib.losses import (
    DescriptorTerm,
    ShapeDescriptorLoss,
    cross_entropy_loss,
    paper_terms,
    shape_descriptor_loss,
)
from tutorial_lib.penalties import log_barrier_extension
from tutorial_lib.schedules import MultiplyT

MAX_T = 1e18


def batch(b=3, k=4, h=12, w=10, dtype=torch.float64):
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(b, k, h, w, generator=g, dtype=dtype).softmax(1)
    return probs, torch.randint(0, k, (b, h, w), generator=g)


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_non_finite_probabilities_are_refused_by_the_loss_and_the_descriptors(value):
    probs, target = batch()
    probs[1, 2, 3, 4] = value
    with pytest.raises(ValueError, match=r"^probs: expected finite probabilities, got NaN or inf"):
        ShapeDescriptorLoss(paper_terms("acdc"))(probs, target, 1.0)
    with pytest.raises(ValueError, match=r"^p: expected finite probabilities, got NaN or inf"):
        soft_centroid(probs)


BAD_SPACINGS = [(1.0, 0.0), (1.0, -2.0), (math.nan, 1.0), (1.0, math.inf)]


@pytest.mark.parametrize("spacing", BAD_SPACINGS)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["sequence", "tensor"])
def test_spacings_with_zeros_negatives_nan_or_inf_are_refused(spacing, as_tensor):
    probs, target = batch()
    given = torch.tensor(spacing) if as_tensor else spacing
    match = r"^spacing: expected positive finite mm per axis, got "
    with pytest.raises(ValueError, match=match):
        DESCRIPTORS["size"](probs, spacing=given)
    term = DescriptorTerm("size", (1,), lower=1.0, upper=2.0, physical=True)
    with pytest.raises(ValueError, match=match):
        shape_descriptor_loss(probs, target, 1.0, [term], spacing=given)
    if as_tensor:  # one spacing per image: a bad row anywhere is refused
        rows = torch.ones(3, 2)
        rows[2] = torch.tensor(spacing)
        with pytest.raises(ValueError, match=match):
            shape_descriptor_loss(probs, target, 1.0, [term], spacing=rows)


def test_good_spacings_as_tensors_and_sequences_agree():
    probs, target = batch()
    term = DescriptorTerm("size", (1,), lower=1.0, upper=2.0, physical=True)
    a, _ = shape_descriptor_loss(probs, target, 1.0, [term], spacing=(1.5, 0.5))
    b, _ = shape_descriptor_loss(probs, target, 1.0, [term], spacing=torch.tensor([1.5, 0.5]))
    assert torch.isfinite(a) and torch.equal(a, b)
    with pytest.raises(ValueError, match="^spacing: expected a sequence of 2 floats"):
        DESCRIPTORS["size"](probs, spacing=("a", "b"))


@pytest.mark.parametrize("normalisation", ["paper", "batch_mean"])
def test_an_empty_batch_gives_a_zero_loss_with_a_gradient(normalisation):
    probs, target = batch(b=0)
    probs.requires_grad_(True)
    loss = ShapeDescriptorLoss(paper_terms("acdc"), normalisation=normalisation)(probs, target, 5.0)
    loss.backward()
    assert loss.item() == 0.0 and probs.grad.shape == probs.shape
    logits = torch.zeros(0, 4, 12, 10, requires_grad=True)
    ce = cross_entropy_loss(logits, torch.zeros(0, 12, 10, dtype=torch.long))
    ce.backward()
    assert ce.item() == 0.0 and logits.grad.shape == logits.shape


def test_empty_spatial_dimensions_are_refused():
    probs, target = batch(h=0)
    with pytest.raises(ValueError, match=r"^probs: expected non-empty spatial dimensions, got"):
        ShapeDescriptorLoss(paper_terms("acdc"))(probs, target, 1.0)
    with pytest.raises(ValueError, match=r"^logits: expected non-empty spatial dimensions, got"):
        cross_entropy_loss(torch.zeros(2, 4, 0, 5), torch.zeros(2, 0, 5, dtype=torch.long))


@pytest.mark.parametrize("t", [MAX_T, 1e23, 1e30, 3e38])
@pytest.mark.parametrize("t_as_tensor", [False, True], ids=["float", "tensor"])
def test_the_barrier_stays_finite_in_float32_far_beyond_real_runs(t, t_as_tensor):
    # constraint values of a 256 x 256 size term: feasible deep inside, at the edge, violated
    z = torch.tensor([-65536.0, -1.0, -1e-30, 0.0, 1e-30, 1.0], requires_grad=True)
    tt = torch.tensor(t, dtype=torch.float32) if t_as_tensor else t
    psi = log_barrier_extension(z, tt)
    psi.sum().backward()
    assert torch.isfinite(psi).all() and torch.isfinite(z.grad).all(), (psi, z.grad)
    assert (psi[:3] < 1).all() and (psi[3:].diff() > 0).all()  # small inside, rising outside


def test_the_barrier_is_unchanged_bit_for_bit_for_the_t_of_real_runs():
    z = torch.linspace(-50, 50, 20001)
    schedule = MultiplyT()
    for _ in range(400):  # t from 1 to 3.6e16
        t = schedule.t
        expected = torch.where(
            z <= -1.0 / (t * t),
            torch.where(z <= -1.0 / (t * t), z, -1.0 / (t * t)).neg().log() * (-1.0 / t),
            z * t + (2.0 * math.log(t) / t + 1.0 / t),
        )
        assert torch.equal(log_barrier_extension(z, t), expected), t
        schedule.step()


def test_multiply_t_is_capped_at_max_t_and_unchanged_below():
    schedule, t = MultiplyT(1.0, 1.1), 1.0
    for _ in range(434):
        t *= 1.1
        assert schedule.step() == t  # the same float operations as before: bit for bit
    for _ in range(2000):
        schedule.step()
    assert schedule.t == MAX_T and math.isfinite(schedule.t)
    assert MultiplyT(1.0, 1.1, max_t=1e30).step() == 1.1
    with pytest.raises(ValueError, match=r"^t0: expected a positive number <= MAX_T = 1e\+18"):
        MultiplyT(t0=1e19)
