"""Preset fidelity: the paper presets carry exactly the values of docs/method.md §4-5."""

from __future__ import annotations

import dataclasses

import pytest

from tutorial_lib.config import AugmentConfig, TrainConfig
from tutorial_lib.losses import DescriptorTerm, paper_terms
from tutorial_lib.presets import (
    AUTHORS_AUGMENT,
    CORRECTED_AUGMENT,
    FAST_OVERRIDES,
    PRESETS,
    TOY_ACDC_SIZED,
    corrected,
    get_preset,
    toy_terms,
)
from tutorial_lib.run_setup import build_loss

SHARED = dict(lr=5e-4, betas=(0.9, 0.99), t0=1.0, t_factor=1.1, t_max=None, penalty="log_barrier")


@pytest.mark.parametrize(
    ("name", "model", "batch", "epochs", "size_classes", "other_classes"),
    [
        ("acdc-descriptors", "enet", 8, 200, (1, 2, 3), (1, 2, 3)),
        ("promise12-descriptors", "residual_unet", 4, 300, (0, 1), (1,)),
    ],
)
def test_paper_descriptor_presets(name, model, batch, epochs, size_classes, other_classes):
    cfg = get_preset(name)
    assert cfg.method == "descriptors"
    assert (cfg.model, cfg.batch_size, cfg.epochs) == (model, batch, epochs)
    for key, value in SHARED.items():
        assert getattr(cfg, key) == value, key
    assert cfg.data.size == 256
    # the authors' pre_augment: blur (image only, 5x5, reflected edges), rotation, scale with a
    # random crop / pad offset, each p = 0.5, image resampled nearest like the labels
    assert (
        cfg.augment
        == AUTHORS_AUGMENT
        == AugmentConfig(
            enabled=True,
            p=0.5,
            blur_sigma=(0.5, 2.0),
            rotation_deg=30.0,
            scale=(0.8, 1.2),
            transforms=("blur", "rotate", "scale"),
            blur_kernel_size=5,
            blur_padding="reflect",
            image_interpolation="nearest",
            scale_offset="random",
        )
    )
    # the quirks, faithfully; float32 as the authors trained
    assert cfg.lr_schedule == "paper" and cfg.empty_policy == "paper"
    assert cfg.normalisation == "paper" and cfg.dice_absent == "one" and cfg.amp == "off"
    assert cfg.terms == (
        DescriptorTerm("size", size_classes, 0.10, "percentage", 1e-2),
        DescriptorTerm("centroid", other_classes, 20.0, "abs", 1e-2),
        DescriptorTerm("dist_centroid", other_classes, 20.0, "abs", 1e-2),
        DescriptorTerm("length", other_classes, 10.0, "percentage", 1e-2),
    )
    assert cfg.selection_classes == other_classes


# the authors' settings, written out from their recipe (docs/method.md), not from paper_terms()
PAPER_TABLE = {
    "acdc": [
        ("size", (1, 2, 3), 0.1, "percentage", 1e-2),
        ("centroid", (1, 2, 3), 20, "abs", 1e-2),
        ("dist_centroid", (1, 2, 3), 20, "abs", 1e-2),
        ("length", (1, 2, 3), 10, "percentage", 1e-2),
    ],
    "promise12": [
        ("size", (0, 1), 0.1, "percentage", 1e-2),
        ("centroid", (1,), 20, "abs", 1e-2),
        ("dist_centroid", (1,), 20, "abs", 1e-2),
        ("length", (1,), 10, "percentage", 1e-2),
    ],
}


@pytest.mark.parametrize("dataset", ["acdc", "promise12"])
def test_paper_presets_and_paper_terms_are_the_authors_settings(dataset):
    loss = build_loss(get_preset(f"{dataset}-descriptors"))
    got = [(t.descriptor, t.classes, t.margin, t.mode, t.weight) for t in loss.terms]
    assert got == PAPER_TABLE[dataset]
    core = [(t.descriptor, t.classes, t.margin, t.mode, t.weight) for t in paper_terms(dataset)]
    assert core == PAPER_TABLE[dataset]
    assert (loss.penalty, loss.empty_policy, loss.normalisation) == (
        "log_barrier",
        "paper",
        "paper",
    )


@pytest.mark.parametrize("dataset", ["acdc", "promise12"])
def test_ce_presets_share_everything_but_the_loss(dataset):
    ce, desc = get_preset(f"{dataset}-ce"), get_preset(f"{dataset}-descriptors")
    assert ce.method == "ce" and ce.terms == ()
    assert dataclasses.replace(ce, name=desc.name, method=desc.method, terms=desc.terms) == desc


@pytest.mark.parametrize("dataset", ["acdc", "promise12"])
def test_corrected_presets_switch_exactly_the_quirks(dataset):
    paper = get_preset(f"{dataset}-descriptors")
    fixed = get_preset(f"{dataset}-descriptors-corrected")
    # the PROMISE12 corrected preset keeps bfloat16 autocast where the GPU has it ("auto")
    amp = {"acdc": "off", "promise12": "auto"}[dataset]
    assert fixed == dataclasses.replace(corrected(paper), amp=amp)
    assert fixed.lr_schedule == "paper-skip-epoch0" and fixed.empty_policy == "corrected"
    assert fixed.dice_absent == "skip"
    length = [t for t in fixed.terms if t.descriptor == "length"]
    assert [t.margin for t in length] == [0.10]
    # the augmentation: a blur kernel of radius ceil(3 sigma) and a bilinear image, the rest kept
    assert (
        fixed.augment
        == CORRECTED_AUGMENT
        == dataclasses.replace(
            AUTHORS_AUGMENT, blur_kernel_size=None, image_interpolation="bilinear"
        )
    )
    same = dataclasses.replace(
        fixed,
        name=paper.name,
        lr_schedule="paper",
        empty_policy="paper",
        dice_absent="one",
        terms=paper.terms,
        augment=AUTHORS_AUGMENT,
        amp="off",
    )
    assert same == paper


def test_corrected_changes_only_the_augmentation_quirks():
    toy = get_preset("toy-cardiac-descriptors")
    assert corrected(toy).augment == toy.augment  # no quirk to correct there
    assert corrected(corrected(get_preset("acdc-descriptors"))).augment == CORRECTED_AUGMENT
    mine = dataclasses.replace(AUTHORS_AUGMENT, p=0.3, blur_kernel_size=7)
    fixed = corrected(dataclasses.replace(toy, augment=mine)).augment
    assert fixed == dataclasses.replace(mine, image_interpolation="bilinear")


def test_toy_presets_pair_up_on_the_same_data():
    for dataset in ("toy-cardiac", "toy-prostate"):
        for fast in (False, True):
            ce = get_preset(f"{dataset}-ce", fast=fast)
            desc = get_preset(f"{dataset}-descriptors", fast=fast)
            assert ce.data == desc.data and ce.data.dataset == dataset
            assert ce.method == "ce" and desc.method == "descriptors" and desc.terms
            assert ce.epochs <= desc.epochs


def test_fast_overrides_name_existing_presets_and_fields():
    fields = {f.name for f in dataclasses.fields(PRESETS["acdc-ce"])}
    for name, changes in FAST_OVERRIDES.items():
        assert name in PRESETS
        assert set(changes) <= fields
        assert get_preset(name, fast=True) == dataclasses.replace(PRESETS[name], **changes)


def test_unknown_preset_names_the_choices():
    with pytest.raises(ValueError, match="preset: expected one of .* got 'acdc'"):
        get_preset("acdc")


@pytest.mark.parametrize(
    ("dataset", "foreground"), [("toy-cardiac", (1, 2, 3)), ("toy-prostate", (1,))]
)
def test_toy_presets_share_the_toy_settings(dataset, foreground):
    ce, desc = get_preset(f"{dataset}-ce"), get_preset(f"{dataset}-descriptors")
    for cfg in (ce, desc):
        assert isinstance(cfg, TrainConfig)
        assert (cfg.model, cfg.lr, cfg.lr_schedule, cfg.init_bias) == (
            "small_unet",
            2e-3,
            "constant",
            "class_sizes",
        )
        assert cfg.empty_policy == "corrected" and cfg.selection_classes == foreground
        assert cfg.dice_absent == "skip"  # the toy numbers keep the corrected convention
        assert cfg.data.size == 64 and cfg.data.generator_seed == 0
        assert cfg.augment == AugmentConfig(
            p=0.5, blur_sigma=(0.5, 1.0), rotation_deg=20.0, scale=(0.9, 1.1)
        )
    assert desc.terms == toy_terms(foreground) and ce.terms == ()
    assert (ce.epochs, desc.epochs) == (40, 80)
    assert (
        dataclasses.replace(
            ce, name=desc.name, method=desc.method, terms=desc.terms, epochs=desc.epochs
        )
        == desc
    )


def test_the_paper_at_scale_presets_are_the_acdc_presets_on_acdc_sized_toy_data():
    for method in ("ce", "descriptors"):
        toy, paper = get_preset(f"toy-cardiac-paper-{method}"), get_preset(f"acdc-{method}")
        assert dataclasses.replace(toy, name=paper.name, data=paper.data) == paper
        assert toy.data.dataset == "toy-cardiac" and toy.data.size == 256
        assert get_preset(f"toy-cardiac-paper-{method}", fast=True).epochs == 20
    # ACDC: 100 patients x 2 frames, split 70 / 10 / 20 patients: 140 / 20 / 40 volumes
    from tutorial_lib.data.toy.dataset import default_split_sizes

    n = TOY_ACDC_SIZED.n_patients
    assert n == 200 and default_split_sizes(n) == (20, 40)
    low, high = TOY_ACDC_SIZED.shape_options["slices"]
    assert 1850 <= n * (low + high) / 2 <= 1950  # about ACDC's 1,900 slices
