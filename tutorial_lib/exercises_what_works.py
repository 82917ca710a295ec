"""Checkers of the exercises of the chapter "what makes it work or fail" (ids "04b.k").

Registered in ``tutorial_lib.exercises.EXERCISES``, so the notebooks call them through the same
``check(exercise_id, answer)``. Each runs the answer on inputs of its own and compares it with a
reference computed another way: the library's Dice on a padded copy, a Monte Carlo estimate.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from tutorial_lib import solutions
from tutorial_lib.exercise_tools import Hint, fmt, run_answer, same
from tutorial_lib.metrics import dice_2d
from tutorial_lib.widgets import make_shape

__all__ = ["WHAT_WORKS_EXERCISES"]


def _moved(mask: torch.Tensor, shift: int) -> torch.Tensor:
    """`mask` moved `shift` columns through a zero-padded canvas (nothing comes back in)."""
    width = mask.shape[1]
    padded = F.pad(mask.float(), (width, width))  # (H, 3 W): room on both sides
    return padded[:, width - shift : 2 * width - shift]


def _shift_cases() -> list[tuple[torch.Tensor, int]]:
    square = torch.zeros(12, 16)
    square[3:9, 10:16] = 1  # touches the right border: a wrap-around would bring it back
    small = make_shape("disk", size=64, radius=8, centre=(30.0, 32.0))  # a toy LV at 64²
    large = make_shape("disk", size=256, radius=30)  # an LV at 256²
    return [(square, 3), (square, -4), (small, 20), (large, 20), (large, -7), (small, 0)]


def _dice_after_shift(answer: object) -> Hint:
    for mask, shift in _shift_cases():
        got = run_answer(answer, mask.clone(), shift)
        moved = _moved(mask, shift)
        labels = torch.stack([mask, moved]).long()
        expected = dice_2d(labels[:1], labels[1:], 2)[0, 1]
        if same(got, expected):
            continue
        h, w = mask.shape
        if same(got, dice_2d(mask[None].long(), mask.roll(shift, 1)[None].long(), 2)[0, 1]):
            return (
                "pixels moved out of the image must be lost: torch.roll brings them back in on the "
                "other side"
            )
        rows = _moved(mask.T, shift).T
        if same(got, dice_2d(mask[None].long(), rows[None].long(), 2)[0, 1]):
            return "move the mask along the columns (dim 1), not the rows"
        return f"a {h}x{w} mask moved {shift} columns: you returned {fmt(got)}, expected {fmt(expected)}"
    return None


def _monte_carlo(noise: float, margin: float, n: int = 2_000_000) -> float:
    """P(1 outside [(1 + e)(1 - m), (1 + e)(1 + m)]) from n draws of e ~ N(0, noise²)."""
    e = noise * torch.randn(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    lower, upper = (1 + e) * (1 - margin), (1 + e) * (1 + margin)
    return float(((1 < lower) | (1 > upper)).double().mean())


def _truth_outside(answer: object) -> Hint:
    for noise, margin in ((0.3, 0.5), (0.2, 0.3), (0.1, 0.05), (0.02, 0.2)):
        got = run_answer(answer, noise, margin)
        expected = _monte_carlo(noise, margin)
        if same(got, expected, tol=3e-3):
            continue
        symmetric = 2 * (1 - 0.5 * (1 + torch.erf(torch.tensor(margin / noise / 2**0.5))))
        if same(got, symmetric, tol=1e-6):
            return (
                "the bounds are made around the noisy value: the truth is outside when "
                "(1 + e)(1 - m) > 1 or (1 + e)(1 + m) < 1, not when |e| > m"
            )
        return f"noise {noise}, margin {margin}: you returned {fmt(got)}, a simulation gives {expected:.4f}"
    return None


WHAT_WORKS_EXERCISES: dict[str, tuple[Callable[[object], Hint], object]] = {
    "04b.1": (_dice_after_shift, solutions.dice_after_shift),
    "04b.2": (_truth_outside, solutions.truth_outside_probability),
}
"""Exercise id -> (checker, reference solution), merged into ``tutorial_lib.exercises.EXERCISES``."""
