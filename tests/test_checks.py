"""verdict: one ✓ or ✗ line for a claim about a training result, never an exception for False."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tutorial_lib.checks import verdict


def test_a_met_claim_prints_a_tick(capsys) -> None:
    assert verdict(True, "the Dice is above 0.5") is None
    assert capsys.readouterr().out == "✓ the Dice is above 0.5\n"


def test_an_unmet_claim_prints_a_cross_and_the_hint(capsys) -> None:
    verdict(False, "the Dice is above 0.5", hint="train longer")
    assert capsys.readouterr().out == "✗ not in this run: the Dice is above 0.5 (train longer)\n"
    verdict(False, "x")
    assert capsys.readouterr().out == "✗ not in this run: x\n"


@pytest.mark.parametrize(
    ("ok", "met"),
    [
        (torch.tensor(0.9) > 0.5, True),
        (torch.tensor([0.1]) > 0.5, False),
        (np.float64(0.9) > 0.5, True),
        (np.array([0.1]) > 0.5, False),
    ],
)
def test_one_element_tensors_and_numpy_bools_are_read(ok, met, capsys) -> None:
    verdict(ok, "claim")
    assert capsys.readouterr().out.startswith("✓" if met else "✗")


@pytest.mark.parametrize(
    "ok", [torch.tensor([True, False]), np.array([True, True]), torch.tensor(0.9), 1, "yes", None]
)
def test_an_ambiguous_ok_is_a_value_error(ok) -> None:
    with pytest.raises(
        ValueError, match=r"^ok: expected a bool or a one-element boolean tensor, got "
    ):
        verdict(ok, "claim")


@pytest.mark.parametrize("claim", ["", "  ", None, 3])
def test_a_claim_must_be_text(claim) -> None:
    with pytest.raises(ValueError, match=r"^claim: expected a non-empty str, got "):
        verdict(True, claim)


def test_a_hint_must_be_text() -> None:
    with pytest.raises(ValueError, match=r"^hint: expected a str, got 3"):
        verdict(True, "claim", hint=3)
