"""Tests for the segmentation networks in tutorial_lib.models."""

import math

import pytest
import torch
import torch.nn.functional as F

from tutorial_lib.models import MODELS, build_model, count_parameters

# (name, n_classes, smallest valid side) -- small inputs keep the file fast on a CPU.
CASES = [("enet", 4, 16), ("residual_unet", 2, 32), ("small_unet", 3, 16)]


def _model(name, k, **kw):
    torch.manual_seed(0)
    return build_model(name, 1, k, **kw)


@pytest.mark.parametrize(
    ("name", "k", "expected"), [("enet", 4, 0.46e6), ("residual_unet", 2, 19.6e6)]
)
def test_parameter_counts_match_the_authors_networks(name, k, expected):
    n = count_parameters(build_model(name, 1, k))
    assert abs(n - expected) / expected < 0.03, n


@pytest.mark.parametrize(("name", "k", "side"), CASES)
def test_output_is_logits_of_input_size(name, k, side):
    model = _model(name, k).eval()
    x = torch.randn(2, 1, side, 2 * side)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, k, side, 2 * side)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize(("name", "k", "side"), CASES)
def test_indivisible_size_is_a_clear_error(name, k, side):
    model = _model(name, k)
    cls = type(model).__name__
    with pytest.raises(
        ValueError,
        match=rf"^x: expected H and W divisible by {cls}'s total stride {model.stride}, "
        rf"got H={side + 2}, W={side}$",
    ):
        model(torch.randn(1, 1, side + 2, side))


@pytest.mark.parametrize(("name", "k", "side"), CASES)
def test_wrong_channels_or_rank_is_a_clear_error(name, k, side):
    model = _model(name, k)
    cls = type(model).__name__
    with pytest.raises(
        ValueError, match=rf"^x: expected 1 input channel\(s\) for {cls}, got 3 \(shape \(1, 3, "
    ):
        model(torch.randn(1, 3, side, side))
    with pytest.raises(
        ValueError,
        match=rf"^x: expected a 4-D input \(B, C, H, W\) for {cls}, got 3 dimensions, shape \(1, ",
    ):
        model(torch.randn(1, side, side))


@pytest.mark.parametrize(("name", "k", "side"), CASES)
def test_init_is_deterministic_given_the_seed(name, k, side):
    a, b = _model(name, k).state_dict(), _model(name, k).state_dict()
    assert all(torch.equal(a[key], b[key]) for key in a)
    torch.manual_seed(1)
    c = build_model(name, 1, k).state_dict()
    assert not all(torch.equal(a[key], c[key]) for key in a)


@pytest.mark.parametrize(("name", "k", "side"), CASES)
def test_channels_last_gives_the_same_output(name, k, side):
    model = _model(name, k).eval()
    x = torch.randn(2, 1, side, side)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("name", "k", "side"), CASES)
def test_autocast_bfloat16_forward_and_backward(name, k, side):
    model = _model(name, k)
    x = torch.randn(2, 1, side, side)
    target = torch.randint(0, k, (2, side, side))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = model(x)
        loss = F.cross_entropy(y.float(), target)
    assert y.dtype == torch.bfloat16 and y.shape == (2, k, side, side)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_enet_batch_equals_stack_of_single_items():
    """Max-unpooling indices are per item: a batch must not mix its items."""
    model = _model("enet", 4).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        batch = model(x)
        single = torch.cat([model(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, single, atol=1e-5, rtol=1e-5)


def test_unknown_model_and_bad_options_name_the_choices():
    with pytest.raises(
        ValueError, match=r"^model: expected one of \[.*'small_unet'.*\], got 'nope'$"
    ):
        build_model("nope", 1, 2)
    with pytest.raises(
        ValueError,
        match=r"^in_channels, n_classes: expected both >= 1, got in_channels=1, n_classes=0$",
    ):
        build_model("small_unet", 1, 0)
    with pytest.raises(ValueError, match="^norm: expected one of .*, got 'layer'"):
        build_model("small_unet", 1, 2, norm="layer")
    with pytest.raises(
        ValueError, match="^in_channels: expected 1 <= in_channels < 16 for ENet, got 16"
    ):
        build_model("enet", 16, 2)
    with pytest.raises(ValueError, match="^depth: expected an integer >= 1, got 0$"):
        build_model("small_unet", 1, 2, depth=0)
    with pytest.raises(ValueError, match="^base: expected an integer >= 1, got 0$"):
        build_model("small_unet", 1, 2, base=0)
    with pytest.raises(ValueError, match="^base, depth: expected both >= 1, got base=32, depth=0$"):
        build_model("residual_unet", 1, 2, depth=0)
    assert set(MODELS) == {"enet", "residual_unet", "small_unet"}


@pytest.mark.parametrize(
    ("depth", "base", "norm"), [(2, 8, "group"), (4, 8, "batch"), (3, 4, "none")]
)
def test_small_unet_options(depth, base, norm):
    model = build_model("small_unet", 2, 3, depth=depth, base=base, norm=norm).eval()
    assert model.stride == 2 ** (depth - 1)
    assert model(torch.randn(1, 2, 16, 24)).shape == (1, 3, 16, 24)


def _disks(n: int, side: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Noisy images of one bright disk each, and their labels (1 inside the disk)."""
    rows = torch.arange(side).view(1, side, 1)
    cols = torch.arange(side).view(1, 1, side)
    centre = torch.rand(n, 2, generator=generator) * (side / 2) + side / 4
    radius = torch.rand(n, generator=generator) * (side / 8) + side / 8
    dist2 = (rows - centre[:, 0, None, None]) ** 2 + (cols - centre[:, 1, None, None]) ** 2
    labels = (dist2 <= radius[:, None, None] ** 2).long()
    images = labels.float() + 0.3 * torch.randn(n, side, side, generator=generator)
    return images[:, None], labels


def test_small_unet_learns_a_toy_segmentation_quickly():
    g = torch.Generator().manual_seed(0)
    x, y = _disks(16, 32, g)
    model = _model("small_unet", 2, base=8)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    x_test, y_test = _disks(8, 32, g)
    model.eval()
    with torch.no_grad():
        pred = model(x_test).argmax(1)
    inter = ((pred == 1) & (y_test == 1)).sum()
    dice = 2 * inter / ((pred == 1).sum() + (y_test == 1).sum())
    assert math.isfinite(loss.item()) and dice > 0.9, dice
