"""The config schema: every field checked when a config is made, and the exact JSON round trip."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest

from tutorial_lib.config import (
    AugmentConfig,
    DataConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
)
from tutorial_lib.losses import DescriptorTerm
from tutorial_lib.presets import PRESETS, get_preset

NAN, INF = math.nan, math.inf

# (field, bad value): top-level fields of TrainConfig, tried on toy-cardiac-descriptors.
BAD_TOP = [
    ("name", ""),
    ("name", "runs/x"),
    ("name", 3),
    ("method", "dice"),
    ("method", None),
    ("data", "toy-cardiac"),
    ("model", "unet"),
    ("model", ["enet"]),
    ("model_options", [("base", 4)]),
    ("model_options", None),
    ("batch_size", 0),
    ("batch_size", True),
    ("batch_size", 8.0),
    ("epochs", 0),
    ("epochs", True),
    ("epochs", "10"),
    ("lr", 0),
    ("lr", -1e-3),
    ("lr", NAN),
    ("lr", INF),
    ("lr", True),
    ("betas", (0.9,)),
    ("betas", (0.9, 1.0)),
    ("betas", (-0.1, 0.9)),
    ("betas", (0.9, NAN)),
    ("betas", "ab"),
    ("lr_schedule", "cosine"),
    ("augment", None),
    ("augment", {}),
    ("terms", ()),
    ("terms", ("size",)),
    ("terms", "size"),
    ("penalty", "l2"),
    ("normalisation", "mean"),
    ("empty_policy", "ignore"),
    ("t0", 0),
    ("t0", -1.0),
    ("t0", NAN),
    ("t0", INF),
    ("t_factor", 0.9),
    ("t_factor", NAN),
    ("t_factor", INF),
    ("t_max", 0.5),
    ("t_max", NAN),
    ("t_max", INF),
    ("selection_classes", ()),
    ("selection_classes", (1, 1)),
    ("selection_classes", (-1,)),
    ("selection_classes", (1.0,)),
    ("selection_classes", (True,)),
    ("selection_classes", 1),
    ("init_bias", "zeros"),
    ("seed", -1),
    ("seed", 1.5),
    ("seed", True),
    ("amp", "fp16"),
    ("dice_absent", "nan"),
    ("dice_absent", 1),
    ("dice_absent", None),
    ("channels_last", "yes"),
    ("channels_last", 1),
    ("data_on_device", 0),
]

BAD_AUGMENT = [
    ("enabled", 1),
    ("enabled", "yes"),
    ("p", -0.1),
    ("p", 1.5),
    ("p", NAN),
    ("p", True),
    ("blur_sigma", (0, 1.0)),
    ("blur_sigma", (2.0, 1.0)),
    ("blur_sigma", (0.5, INF)),
    ("blur_sigma", (0.5,)),
    ("blur_sigma", 1.0),
    ("rotation_deg", -1.0),
    ("rotation_deg", INF),
    ("rotation_deg", NAN),
    ("scale", (0, 1.0)),
    ("scale", (1.2, 0.8)),
    ("scale", (NAN, 1.0)),
    ("transforms", ("rotate", "blur")),
    ("transforms", ("blur", "blur")),
    ("transforms", ("flip",)),
    ("transforms", "blur"),
    ("transforms", None),
    ("blur_kernel_size", 4),
    ("blur_kernel_size", 1),
    ("blur_kernel_size", 5.0),
    ("blur_kernel_size", True),
    ("blur_kernel_size", "5"),
    ("blur_padding", "zeros"),
    ("blur_padding", None),
    ("image_interpolation", "bicubic"),
    ("image_interpolation", "NEAREST"),
    ("scale_offset", "center"),
    ("scale_offset", True),
]

BAD_DATA = [
    ("dataset", "toy-liver"),
    ("dataset", None),
    ("size", 8),
    ("size", 15),
    ("size", 64.0),
    ("size", True),
    ("n_patients", 2),
    ("n_patients", 0),
    ("n_patients", 5.0),
    ("n_patients", True),
    ("generator_seed", -1),
    ("generator_seed", 0.5),
    ("max_train_slices", 0),
    ("max_train_slices", 2.5),
    ("shape_options", {"lv_radiuss": (0.1, 0.2)}),
    ("shape_options", {"lv_radius": (0.2, 0.1)}),
    ("shape_options", {"gland_radius": (0.1, 0.2)}),
    ("shape_options", [("lv_radius", (0.1, 0.2))]),
    ("shape_options", None),
]


def _refused(field: str, make) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(field)}: expected .*, got "):
        make()


@pytest.mark.parametrize(("field", "value"), BAD_TOP, ids=[f"{f}={v!r}" for f, v in BAD_TOP])
def test_a_bad_top_level_value_is_refused_naming_the_field(field, value):
    cfg = get_preset("toy-cardiac-descriptors")
    _refused(field, lambda: dataclasses.replace(cfg, **{field: value}))


@pytest.mark.parametrize(
    ("field", "value"), BAD_AUGMENT, ids=[f"{f}={v!r}" for f, v in BAD_AUGMENT]
)
def test_a_bad_augmentation_value_is_refused_naming_the_field(field, value):
    cfg = get_preset("toy-cardiac-ce")
    _refused(f"augment.{field}", lambda: dataclasses.replace(cfg.augment, **{field: value}))
    _refused(f"augment.{field}", lambda: AugmentConfig(**{field: value}))


@pytest.mark.parametrize(("field", "value"), BAD_DATA, ids=[f"{f}={v!r}" for f, v in BAD_DATA])
def test_a_bad_data_value_is_refused_naming_the_field(field, value):
    cfg = get_preset("toy-cardiac-ce")
    _refused(f"data.{field}", lambda: dataclasses.replace(cfg.data, **{field: value}))


def test_real_datasets_take_no_shape_options():
    data = get_preset("acdc-ce").data
    _refused("data.shape_options", lambda: dataclasses.replace(data, shape_options={"noise": 0}))


def test_a_bad_descriptor_term_is_refused_by_the_term():
    cfg = get_preset("toy-cardiac-ce")
    with pytest.raises(ValueError, match="^mode: expected"):
        dataclasses.replace(cfg, terms=(DescriptorTerm("size", (1,), 0.1, "relative"),))


def test_t_max_is_compared_with_t0():
    cfg = get_preset("toy-cardiac-descriptors")
    assert dataclasses.replace(cfg, t0=2.0, t_max=2.0).t_max == 2.0
    _refused("t_max", lambda: dataclasses.replace(cfg, t0=2.0, t_max=1.5))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_builds_again_from_its_fields(name):
    cfg = PRESETS[name]
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(TrainConfig)}
    assert TrainConfig(**fields) == cfg
    assert get_preset(name, fast=True).name == name


def test_good_values_at_the_edges_are_accepted():
    cfg = get_preset("toy-cardiac-descriptors")
    edges = dict(
        betas=(0.0, 0.999),
        t_factor=1,
        t_max=None,
        selection_classes=None,
        channels_last=True,
        data_on_device=False,
        epochs=1,
        batch_size=1,
        seed=0,
        augment=AugmentConfig(enabled=False, p=0.0, blur_sigma=(1.0, 1.0), rotation_deg=0.0),
        data=DataConfig("toy-prostate", size=16, n_patients=3, max_train_slices=1),
        model_options={"base": 4},
    )
    assert dataclasses.replace(cfg, **edges).betas == (0.0, 0.999)
    shaped = DataConfig("toy-cardiac", shape_options={"lv_radius": [0.1, 0.12]})
    assert shaped.shape_options == {"lv_radius": [0.1, 0.12]}


def test_lists_given_for_tuple_fields_are_stored_as_tuples():
    cfg = dataclasses.replace(
        get_preset("toy-cardiac-descriptors"),
        betas=[0.9, 0.99],
        selection_classes=[1, 2],
        terms=list(get_preset("toy-cardiac-descriptors").terms),
    )
    assert cfg.betas == (0.9, 0.99) and cfg.selection_classes == (1, 2)
    assert isinstance(cfg.terms, tuple)
    assert AugmentConfig(blur_sigma=[0.5, 1.0], scale=[0.9, 1.1]).scale == (0.9, 1.1)
    assert AugmentConfig(transforms=["blur", "scale"]).transforms == ("blur", "scale")


def test_augmentation_choices_at_their_edges_are_accepted():
    edges = AugmentConfig(
        transforms=(), blur_kernel_size=3, blur_padding="reflect", image_interpolation="nearest"
    )
    assert edges.transforms == () and edges.blur_kernel_size == 3
    assert AugmentConfig(blur_kernel_size=None, scale_offset="random").scale_offset == "random"


# --------------------------------------------------------------------------- to and from a dict


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_json_exactly(name):
    for fast in (False, True):
        cfg = get_preset(name, fast=fast)
        text = json.dumps(config_to_dict(cfg))
        again = config_from_dict(json.loads(text))
        assert again == cfg
        assert json.dumps(config_to_dict(again)) == text


def test_an_augmentation_saved_before_the_recipe_options_reads_as_the_earlier_recipe():
    """A config.json written before `transforms`, `blur_kernel_size`, `blur_padding`,
    `image_interpolation` and `scale_offset` existed resumes with the augmentation it trained
    with: the defaults are that recipe (5 keys, all left out here)."""
    data = config_to_dict(get_preset("acdc-descriptors"))
    new = ("transforms", "blur_kernel_size", "blur_padding", "image_interpolation", "scale_offset")
    for key in new:
        del data["augment"][key]
    old = config_from_dict(data).augment
    assert (old.transforms, old.blur_kernel_size, old.blur_padding) == (
        ("blur", "rotate", "scale"),
        None,
        "replicate",
    )
    assert (old.image_interpolation, old.scale_offset) == ("bilinear", "centre")
    assert old == AugmentConfig(p=0.5, blur_sigma=(0.5, 2.0), rotation_deg=30.0, scale=(0.8, 1.2))


def test_dice_absent_round_trips_and_an_older_config_without_it_reads_as_skip():
    paper = get_preset("acdc-ce")
    assert config_from_dict(json.loads(json.dumps(config_to_dict(paper)))).dice_absent == "one"
    older = config_to_dict(paper)
    del older["dice_absent"]  # a run written before the field existed kept its Dice by "skip"
    assert config_from_dict(older) == dataclasses.replace(paper, dice_absent="skip")


def test_round_trip_keeps_constant_bound_tables_options_and_shape_options():
    terms = (
        DescriptorTerm("size", (1, 2), lower=((10.0,), (20.0,)), upper=((30.0,), (40.0,))),
        DescriptorTerm("length", (1,), 0.1, options={"connectivity": 4}, physical=True, name="L"),
    )
    cfg = dataclasses.replace(
        get_preset("toy-cardiac-descriptors"),
        terms=terms,
        model_options={"base": 8, "depth": 3},
        data=DataConfig("toy-cardiac", size=32, n_patients=5, shape_options={"noise": 0.01}),
        t_max=50.0,
    )
    assert config_from_dict(json.loads(json.dumps(config_to_dict(cfg)))) == cfg


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("config", lambda d: d.update(learning_rate=1)),
        ("data", lambda d: d["data"].update(sizes=64)),
        ("augment", lambda d: d["augment"].update(prob=0.5)),
        ("terms[1]", lambda d: d["terms"][1].update(margins=1.0)),
    ],
)
def test_unknown_keys_are_refused_at_every_level(where, change):
    data = config_to_dict(get_preset("toy-cardiac-descriptors"))
    change(data)
    with pytest.raises(ValueError, match=rf"^{re.escape(where)}: expected keys among .*unknown"):
        config_from_dict(data)


def test_missing_keys_and_wrong_shapes_are_refused():
    data = config_to_dict(get_preset("toy-cardiac-descriptors"))
    del data["model"]
    with pytest.raises(ValueError, match=r"^config: expected the keys .*'model'"):
        config_from_dict(data)
    data = config_to_dict(get_preset("toy-cardiac-descriptors"))
    with pytest.raises(ValueError, match="^config: expected a mapping"):
        config_from_dict([data])
    with pytest.raises(ValueError, match="^data: expected a mapping"):
        config_from_dict({**data, "data": "toy-cardiac"})
    with pytest.raises(ValueError, match="^terms: expected a list"):
        config_from_dict({**data, "terms": "size"})
    with pytest.raises(ValueError, match="^lr: expected"):
        config_from_dict({**data, "lr": "fast"})
