"""build_run: every part of a run from its config, with the types its fields declare, and every
bad value refused before a file of the run is written."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path

import pytest
import torch
from tiny_runs import tiny_config as tiny
from torch import nn

from tutorial_lib.data.datasets import SliceSet
from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss
from tutorial_lib.models import build_model
from tutorial_lib.run_setup import Run, TrainData, build_run, init_bias_from_sizes
from tutorial_lib.schedules import LRSchedule, MultiplyT
from tutorial_lib.train import train

PRIORS = (
    DescriptorTerm("size", (1, 2, 3), lower=(50.0,) * 3, upper=(5e4,) * 3, physical=True),
    DescriptorTerm("size", (0,), margin=0.05, mode="percentage"),
)


def _matches(value, hint) -> bool:
    """isinstance against a resolved annotation: classes, `X | None`, list[...] and dict[...]."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    return isinstance(value, origin or hint)


@pytest.mark.parametrize("method", ["ce", "descriptors"])
def test_every_field_has_its_declared_type(method):
    run = build_run(tiny(method), device="cpu")
    hints = typing.get_type_hints(Run)
    assert typing.Any not in hints.values()
    for field in dataclasses.fields(Run):
        assert _matches(getattr(run, field.name), hints[field.name]), field.name
    data_hints = typing.get_type_hints(TrainData)
    assert typing.Any not in data_hints.values()
    for field in dataclasses.fields(TrainData):
        assert _matches(getattr(run.data, field.name), data_hints[field.name]), field.name
    assert isinstance(run.lr_schedule, LRSchedule) and isinstance(run.t_schedule, MultiplyT)
    assert isinstance(run.model, nn.Module) and run.net is run.model and run.compiled is None
    if method == "ce":
        assert run.loss_fn is None
    else:
        assert isinstance(run.loss_fn, ShapeDescriptorLoss)
    assert run.selection_classes == [1, 2, 3] and run.class_names[0] == "background"
    assert set(run.generators) == {"shuffle", "augment"}
    assert run.data.spacing is None and isinstance(run.data.val, SliceSet)
    assert run.data.images.shape[0] == run.data.labels.shape[0]
    assert run.amp_dtype is None and run.channels_last is False  # CPU defaults
    assert (run.epoch, run.best_epoch, run.history) == (0, 0, [])


def test_physical_terms_get_the_in_plane_spacing_of_each_slice():
    run = build_run(tiny("descriptors", terms=PRIORS), device="cpu")
    n = run.data.images.shape[0]
    assert run.data.spacing is not None and run.data.spacing.shape == (n, 2)


def test_the_seed_fixes_the_initial_weights():
    a = build_run(tiny("ce"), device="cpu").model.state_dict()
    b = build_run(tiny("ce"), device="cpu").model.state_dict()
    c = build_run(tiny("ce", seed=1), device="cpu").model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_data_made_in_memory_is_used_as_given():
    images, labels = torch.rand(4, 1, 32, 32), torch.randint(0, 4, (4, 32, 32), dtype=torch.uint8)
    names = ["background", "rv", "myocardium", "lv"]
    val = SliceSet(images, labels, ["v"] * 4, torch.arange(4), torch.ones(4, 3), names)
    data = TrainData(Path("."), names, images, labels, None, val)
    run = build_run(tiny("descriptors"), device="cpu", data=data)
    assert run.data is data and run.class_names == names


@pytest.mark.parametrize(
    ("changes", "options", "match"),
    [
        (
            {"selection_classes": (1, 7)},
            {},
            r"selection_classes: expected indices below 4, got \[1, 7\]",
        ),
        ({}, {"compile": "fast"}, r"compile: expected True, False or one of"),
        ({}, {"data_root": "no/such/folder"}, r"data_root \(--data\): expected a prepared dataset"),
        (
            {"data": dataclasses.replace(tiny().data, dataset="acdc")},
            {},
            r"^data_root \(--data\): expected a prepared folder for dataset 'acdc' .*, got none$",
        ),
    ],
)
def test_a_bad_value_fails_before_a_file_is_written(tmp_path, changes, options, match):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=match):
        train(tiny("ce", **changes), out_dir=out, device="cpu", progress=False, **options)
    assert not out.exists()
    with pytest.raises(ValueError, match=match):
        build_run(tiny("ce", **changes), device="cpu", **options)


def test_a_config_of_another_type_is_refused(tmp_path):
    with pytest.raises(ValueError, match="config: expected a TrainConfig.*got dict"):
        train({"epochs": 1}, out_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_init_bias_from_sizes_sets_centred_log_proportions():
    model = build_model("small_unet", 1, 3, base=4, depth=2)
    labels = torch.tensor([[[0, 0, 0, 0], [0, 0, 1, 2]]])  # proportions 6/8, 1/8, 1/8
    init_bias_from_sizes(model, labels, 3)
    bias = model.head.bias.detach().double()
    expected = torch.log(torch.tensor([6 / 8, 1 / 8, 1 / 8], dtype=torch.float64))
    assert torch.allclose(bias, expected - expected.mean(), atol=1e-6)
    assert torch.allclose(
        torch.softmax(bias, 0), torch.tensor([0.75, 0.125, 0.125], dtype=torch.float64), atol=1e-6
    )
    with pytest.raises(
        ValueError, match="^init_bias: expected an output convolution with 5 channels .*, got none$"
    ):
        init_bias_from_sizes(model, labels, 5)
