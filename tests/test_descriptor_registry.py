"""Your own descriptor: registered after the built-in checks, usable in the loss, removed again."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib.descriptor_registry import (
    BUILT_IN,
    DESCRIPTORS,
    register_descriptor,
    unregister_descriptor,
)
from tutorial_lib.descriptors import registered_descriptor, soft_size
from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss
from tutorial_lib.weak_labels import weak_labels_from_masks

F64 = torch.float64


def mass_in_top_half(p: torch.Tensor) -> torch.Tensor:
    """The probability mass in the upper half of the rows: (B, K, 1)."""
    return p[..., : p.shape[-2] // 2, :].flatten(2).sum(-1, keepdim=True)


def test_a_registered_descriptor_works_in_the_loss_and_goes_away():
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 1:3, 2:6] = 1
    probs = torch.randn(2, 2, 8, 8, dtype=F64).softmax(1)
    with registered_descriptor("top_mass", mass_in_top_half, 1, extensive=True) as entry:
        assert DESCRIPTORS["top_mass"] is entry and entry.extensive and not entry.signed
        assert torch.equal(entry(probs), mass_in_top_half(probs))
        term = DescriptorTerm("top_mass", (1,), margin=0.1)
        loss = ShapeDescriptorLoss([term])
        value = loss(probs, labels, 2.0)
        # the same as a size term: every labelled pixel is in the top half
        assert torch.allclose(
            value,
            ShapeDescriptorLoss([DescriptorTerm("size", (1,))])(
                torch.cat([probs[..., :4, :], torch.zeros_like(probs[..., 4:, :])], -2), labels, 2.0
            ),
            rtol=1e-12,
        )
        weak = weak_labels_from_masks(labels, 2, [term])  # weak labels know it too
        assert torch.allclose(weak.values["top_mass"][:, 1, 0], torch.full((2,), 8.0, dtype=F64))
        assert torch.equal(loss(probs, weak, 2.0), value)
        with pytest.raises(
            ValueError,
            match=r"^name: expected a name not in DESCRIPTORS, got 'top_mass' \(registered already\)",
        ):
            register_descriptor("top_mass", mass_in_top_half)
    assert "top_mass" not in DESCRIPTORS
    with pytest.raises(ValueError, match=r"^descriptor: expected one of .*got 'top_mass'"):
        DescriptorTerm("top_mass", (1,))


def test_options_geometry_and_several_values():
    def weighted(g, power: int = 1):
        return torch.cat([g.size() ** power, g.centroid()], dim=-1)

    entry = register_descriptor(
        "size_and_centre",
        weighted,
        lambda n_axes: n_axes + 1,
        options=("power",),
        uses_geometry=True,
    )
    try:
        p = torch.rand(1, 2, 5, 6, 3, dtype=F64)
        assert entry.n_values(3) == 4 and entry(p, power=2).shape == (1, 2, 4)
        assert torch.allclose(entry(p, power=2)[..., 0], soft_size(p)[..., 0] ** 2)
        in_mm = entry(p, spacing=(2.0, 1.0, 1.0))  # the geometry carries the spacing
        assert torch.allclose(in_mm[..., 0], 2 * soft_size(p)[..., 0])
        with pytest.raises(ValueError, match=r"^options: expected keywords among \['power'\]"):
            entry(p, pwr=2)
        term = DescriptorTerm("size_and_centre", (0, 1), options={"power": 1})
        labels = torch.randint(0, 2, (1, 5, 6, 3))
        assert torch.isfinite(ShapeDescriptorLoss([term])(p.softmax(1), labels, 1.0))
    finally:
        unregister_descriptor("size_and_centre")


def _not_differentiable(p):
    return p.detach().flatten(2).sum(-1, keepdim=True)


def _wrong_shape(p):
    return p.flatten(2).sum(-1)


def _wrong_dtype(p):
    return p.flatten(2).sum(-1, keepdim=True).double()


def _not_finite(p):
    return (p.flatten(2).sum(-1, keepdim=True) * 0).log()


def _raises(p):
    raise RuntimeError("boom")


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        (
            ("size", soft_size),
            {},
            r"^name: expected a name not in DESCRIPTORS, got 'size' \(a built-in descriptor\)",
        ),
        (("my desc", soft_size), {}, r"^name: expected a Python identifier"),
        (("present", soft_size), {}, r"^name: expected a name other than 'present'"),
        (("mine", "soft_size"), {}, r"^fn: expected a function of the probabilities, got str"),
        (("mine", soft_size, 0), {}, r"^n_values: expected an integer >= 1 or a function"),
        (("mine", soft_size, True), {}, r"^n_values: expected an integer >= 1"),
        (
            ("mine", soft_size, lambda n: 0),
            {},
            r"^n_values: expected an integer >= 1 for 2-D images, got 0",
        ),
        (("mine", soft_size), {"signed": 1}, r"^signed: expected True or False, got 1"),
        (
            ("mine", soft_size),
            {"options": ("a b",)},
            r"^options: expected a sequence of keyword names",
        ),
        (("mine", _not_differentiable), {}, r"^fn: expected values differentiable in p"),
        (("mine", _wrong_shape), {}, r"^fn: expected values of shape \(2, 3, 1\) .*got \(2, 3\)"),
        (("mine", _wrong_shape, 2), {}, r"^fn: expected values of shape \(2, 3, 2\)"),
        (
            ("mine", _wrong_dtype),
            {},
            r"^fn: expected values in the dtype of p \(torch.float32\), got torch.float64",
        ),
        (
            ("mine", _not_finite),
            {},
            r"^fn: expected finite values and gradients on random probabilities",
        ),
        (
            ("mine", _raises),
            {},
            r"^fn: expected a function of probabilities \(2, 3, 8, 8\) .*got an error on a probe: RuntimeError: boom",
        ),
        (("mine", lambda p: 3.0), {}, r"^fn: expected values of shape \(2, 3, 1\) .*got float"),
        (
            ("mine", soft_size),
            {"probe_shape": (8,)},
            r"^probe_shape: expected 2 or 3 positive sizes \(H, W\), got \(8,\)",
        ),
        (
            ("mine", soft_size),
            {"probe_shape": (8, 0)},
            r"^probe_shape: expected 2 or 3 positive sizes",
        ),
    ],
)
def test_bad_registrations_raise_and_leave_the_registry_unchanged(args, kwargs, match):
    before = dict(DESCRIPTORS)
    with pytest.raises(ValueError, match=match):
        register_descriptor(*args, **kwargs)
    assert DESCRIPTORS == before


def test_unregister_refuses_built_in_and_unknown_names():
    assert BUILT_IN == {
        "size",
        "centroid",
        "dist_centroid",
        "length",
        "compactness",
        "covariance",
        "eccentricity",
        "orientation",
    }
    with pytest.raises(
        ValueError, match=r"^name: expected a registered descriptor, got 'size' \(a built-in one\)"
    ):
        unregister_descriptor("size")
    with pytest.raises(
        ValueError, match=r"^name: expected a registered descriptor among \[\], got 'nope'"
    ):
        unregister_descriptor("nope")


def test_a_descriptor_tied_to_an_image_size_is_probed_at_that_size():
    region = torch.zeros(12, 10)
    region[3:9, 2:8] = 1

    def fraction_in_region(p):
        return ((p * region.to(p)).flatten(2).sum(-1) / p.flatten(2).sum(-1))[..., None]

    with pytest.raises(
        ValueError, match=r"^fn: expected a function of probabilities \(2, 3, 8, 8\).*RuntimeError"
    ):
        register_descriptor("inside", fraction_in_region)
    with registered_descriptor("inside", fraction_in_region, probe_shape=region.shape) as entry:
        p = torch.rand(1, 2, 12, 10, 4, dtype=F64)[..., 0]
        assert torch.allclose(entry(p)[0, :, 0], (p * region).sum((-2, -1))[0] / p.sum((-2, -1))[0])
    three_d = register_descriptor("volume_3d", soft_size, probe_shape=(4, 5, 6))
    assert three_d.n_values(3) == 1
    unregister_descriptor("volume_3d")


def test_the_context_manager_unregisters_after_an_error():
    with pytest.raises(KeyError), registered_descriptor("temporary", soft_size):
        raise KeyError("inside")
    assert "temporary" not in DESCRIPTORS
