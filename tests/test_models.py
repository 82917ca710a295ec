"""Tests for the segmentation networks in tutorial_lib.models."""

import pytest
import torch

from tutorial_lib.models import MODELS, build_model, count_parameters


def test_small_unet_output_shape_and_logits():
    model = build_model("small_unet", 1, 4)
    y = model(torch.randn(2, 1, 32, 48))
    assert y.shape == (2, 4, 32, 48)


def test_unknown_model_names_the_choices():
    with pytest.raises(ValueError, match="small_unet"):
        build_model("nope", 1, 2)


def test_registry_and_count():
    assert "small_unet" in MODELS
    assert count_parameters(build_model("small_unet", 1, 2)) > 0
