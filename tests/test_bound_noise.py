"""An annotator's error on the bounds' values: the loss's `value_noise`, the config's
`bound_noise`, the per-slice table of a run, and a training run that uses it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from tiny_runs import tiny_config as tiny

from tutorial_lib.losses import DescriptorTerm, shape_descriptor_loss
from tutorial_lib.run_setup import build_run, value_noise_table
from tutorial_lib.runlog import read_metrics
from tutorial_lib.train import train

TERMS = [
    DescriptorTerm("size", (1,), margin=0.1, mode="percentage", weight=1.0),
    DescriptorTerm("centroid", (1,), margin=2.0, mode="abs", weight=1.0),
]


def _batch():
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(2, 2, 12, 14, generator=g, dtype=torch.float64).softmax(1)
    target = torch.zeros(2, 12, 14, dtype=torch.long)
    target[0, 3:8, 4:10] = 1
    target[1, 5:11, 2:6] = 1
    return probs, target


def test_noisy_values_equal_constant_bounds_around_the_scaled_values():
    probs, target = _batch()
    noise = torch.tensor([[0.2, -0.1, 0.05], [-0.3, 0.0, 0.1]], dtype=torch.float64)
    got, _ = shape_descriptor_loss(probs, target, 3.0, TERMS, value_noise=noise)
    onehot = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).double()
    expected = 0.0
    for b in range(2):  # one image at a time, its bounds as constants around v (1 + e)
        size = float(onehot[b, 1].sum()) * (1 + noise[b, 0])
        rows, cols = torch.nonzero(onehot[b, 1], as_tuple=True)
        centre = torch.stack([rows.double().mean(), cols.double().mean()]) * (1 + noise[b, 1:])
        terms = [
            DescriptorTerm("size", (1,), weight=1.0, lower=0.9 * size, upper=1.1 * size),
            DescriptorTerm(
                "centroid",
                (1,),
                weight=1.0,
                lower=[(centre - 2).tolist()],
                upper=[(centre + 2).tolist()],
            ),
        ]
        loss, _ = shape_descriptor_loss(probs[b : b + 1], None, 3.0, terms)
        expected = expected + loss
    assert torch.allclose(got, expected, rtol=1e-9)
    exact, _ = shape_descriptor_loss(probs, target, 3.0, TERMS)
    assert not torch.allclose(got, exact)  # the noise moved the bounds


def test_zero_noise_is_the_exact_loss_and_a_bad_shape_is_refused():
    probs, target = _batch()
    exact, _ = shape_descriptor_loss(probs, target, 3.0, TERMS)
    zero, _ = shape_descriptor_loss(probs, target, 3.0, TERMS, value_noise=torch.zeros(2, 3))
    assert torch.allclose(zero, exact)
    with pytest.raises(
        ValueError, match=r"^value_noise: expected a tensor \(B, columns\) = \(2, 3\), got \(2, 4\)"
    ):
        shape_descriptor_loss(probs, target, 3.0, TERMS, value_noise=torch.zeros(2, 4))


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "0.1", True])
def test_config_refuses_a_bad_bound_noise(bad):
    with pytest.raises(
        ValueError, match=r"^bound_noise: expected a relative error in \[0, 1\], got "
    ):
        dataclasses.replace(tiny("descriptors"), bound_noise=bad)


def test_the_noise_table_is_drawn_once_per_slice_from_the_seed():
    cfg = dataclasses.replace(tiny("descriptors"), bound_noise=0.1)
    table = value_noise_table(cfg, 50, torch.device("cpu"))
    columns = 4 + 2 * 3 + 2 * 3 + 3  # size (background + 3 classes), centroid, spread, length
    assert table.shape == (50, columns) and table.dtype == torch.float32
    assert torch.equal(table, value_noise_table(cfg, 50, torch.device("cpu")))
    assert 0.08 < float(table.std()) < 0.12  # N(0, 0.1²) over 900 draws
    other_seed = value_noise_table(dataclasses.replace(cfg, seed=1), 50, torch.device("cpu"))
    assert not torch.equal(table, other_seed)
    assert value_noise_table(dataclasses.replace(cfg, bound_noise=0.0), 50, "cpu") is None
    assert value_noise_table(tiny("ce"), 50, torch.device("cpu")) is None
    large = value_noise_table(dataclasses.replace(cfg, bound_noise=1.0), 50, "cpu")
    assert float(large.min()) == -1.0  # a factor 1 + e never below 0


def test_a_noisy_run_trains_and_differs_from_the_exact_one(tmp_path):
    exact_cfg = tiny("descriptors", epochs=1)
    noisy_cfg = dataclasses.replace(exact_cfg, bound_noise=0.2)
    run = build_run(noisy_cfg, device="cpu")
    assert run.value_noise is not None and run.value_noise.shape[0] == run.data.labels.shape[0]
    exact = train(exact_cfg, out_dir=tmp_path / "exact", device="cpu", progress=False)
    noisy = train(noisy_cfg, out_dir=tmp_path / "noisy", device="cpu", progress=False)
    assert noisy["status"] == "done" and exact["status"] == "done"
    # the same weights, data and batches: only the bounds differ, and so does the loss
    loss = {k: read_metrics(tmp_path / k)["train_loss"] for k in ("exact", "noisy")}
    assert loss["exact"] != loss["noisy"]
