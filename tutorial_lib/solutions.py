"""Reference solutions of the course's exercises: open this file on purpose, after trying.

Each function answers one exercise of the notebooks (the exercise id is in its docstring) and is
what `tutorial_lib.exercises.check` runs when a notebook's stub is left untouched. They are written
the plain way, one step at a time, so that they read as worked answers rather than as the library's
fast formulations (which the checkers compare them with).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.transform import resize
from torch import Tensor


# --- 01: size and centroid -----------------------------------------------------------------------
def soft_size_by_hand(p: Tensor) -> Tensor:
    """01.1: the soft size of a (H, W) probability map is the sum of its probabilities."""
    return p.sum()


def centroid_by_hand(p: Tensor) -> Tensor:
    """01.2: (row, col) centroid in pixels: the probability-weighted mean position, shape (2,)."""
    rows = torch.arange(p.shape[0], dtype=p.dtype)
    cols = torch.arange(p.shape[1], dtype=p.dtype)
    size = p.sum()
    return torch.stack([(p.sum(1) * rows).sum() / size, (p.sum(0) * cols).sum() / size])


# --- 02: spread and length -----------------------------------------------------------------------
def spread_by_hand(p: Tensor) -> Tensor:
    """02.1: per-axis RMS distance to the centroid, sqrt(sum p (x_i - C_i)^2 / S), shape (2,)."""
    centre = centroid_by_hand(p)
    rows = torch.arange(p.shape[0], dtype=p.dtype) - centre[0]
    cols = torch.arange(p.shape[1], dtype=p.dtype) - centre[1]
    size = p.sum()
    variance = torch.stack([(p.sum(1) * rows**2).sum() / size, (p.sum(0) * cols**2).sum() / size])
    return variance.sqrt()


def length_4_by_hand(mask: Tensor) -> int:
    """02.2: 4-neighbour pairs (one pixel in, one out) of a binary (H, W) mask, each pair once."""
    m = mask.to(torch.int64)
    vertical = (m[1:, :] != m[:-1, :]).sum()  # pairs (i, j) ~ (i + 1, j)
    horizontal = (m[:, 1:] != m[:, :-1]).sum()  # pairs (i, j) ~ (i, j + 1)
    return int(vertical + horizontal)


# --- 03: constrained optimisation ----------------------------------------------------------------
def barrier_value_and_slope(z: float, t: float) -> tuple[float, float]:
    """03.1: psi_t(z) and psi_t'(z) of the log-barrier extension (linear beyond z = -1/t^2)."""
    if z <= -1 / t**2:
        return -math.log(-z) / t, -1 / (t * z)
    return t * z - math.log(1 / t**2) / t + 1 / t, t


def penalty_minimiser(a: float, upper: float, weight: float) -> float:
    """03.2: argmin over x of (x - a)^2 + weight * max(0, x - upper)^2.

    Inside the constraint (a <= upper) the penalty is 0 at x = a; otherwise setting the derivative
    2 (x - a) + 2 weight (x - upper) to 0 gives the weighted mean of a and upper.
    """
    if a <= upper:
        return a
    return (a + weight * upper) / (1 + weight)


# --- 04: training with descriptors (scores) ------------------------------------------------------
def dice_2d_and_3d(pred: Tensor, truth: Tensor) -> tuple[float, float]:
    """04.1: (mean of the per-slice Dice over slices where either mask has pixels, volume Dice)."""
    pred, truth = pred.bool(), truth.bool()
    inter = (pred & truth).flatten(1).sum(1).double()
    total = (pred.flatten(1).sum(1) + truth.flatten(1).sum(1)).double()
    scored = total > 0  # a slice empty in both has no Dice: it is skipped
    dice_2d = (2 * inter[scored] / total[scored]).mean()
    dice_3d = 2 * inter.sum() / total.sum()
    return float(dice_2d), float(dice_3d)


def hd95_of_points(a: Tensor, b: Tensor) -> float:
    """04.2: 95th percentile (linear interpolation) of the nearest distances a -> b and b -> a."""
    distances = torch.cdist(a.double(), b.double())
    both_ways = torch.cat([distances.amin(1), distances.amin(0)])
    return float(torch.quantile(both_ways, 0.95))


# --- 04b: what makes it work or fail -------------------------------------------------------------
def dice_after_shift(mask: Tensor, shift: int) -> float:
    """04b.1: Dice of a (H, W) mask with its copy moved `shift` columns (right if > 0); pixels
    moved out of the image are lost, the columns moved in are empty."""
    m = mask.bool()
    width = m.shape[1]
    moved = torch.zeros_like(m)
    if 0 <= shift < width:
        moved[:, shift:] = m[:, : width - shift]
    elif -width < shift < 0:
        moved[:, :shift] = m[:, -shift:]
    overlap = (m & moved).sum()
    return float(2 * overlap / (m.sum() + moved.sum()))


def truth_outside_probability(noise: float, margin: float) -> float:
    """04b.2: P(the true value v lies outside [v' (1 - m), v' (1 + m)]), v' = v (1 + e),
    e ~ N(0, noise²). Outside above: v' (1 - m) > v, i.e. e > m / (1 - m); outside below:
    v' (1 + m) < v, i.e. e < -m / (1 + m)."""

    def normal_cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    above = 1 - normal_cdf(margin / (1 - margin) / noise)
    below = normal_cdf(-margin / (1 + margin) / noise)
    return above + below


# --- 05: ACDC (the authors' quirks) --------------------------------------------------------------
def halving_epochs(best_epochs: list[int]) -> list[int]:
    """05.1: epochs i after which the LR is halved: i % (best_epochs[i] + 20) == 0 (epoch 0 too)."""
    return [i for i, best in enumerate(best_epochs) if i % (best + 20) == 0]


def paper_centroid_bounds(centroid: Tensor, present: Tensor, margin: float) -> Tensor:
    """05.2: the paper's centroid bounds, (B, 2, 2): an absent class reads as the value 0."""
    values = torch.where(present[:, None], centroid, torch.zeros_like(centroid))
    lower = (values - margin).clamp_min(0)
    upper = (values + margin).clamp_min(0)
    return torch.stack([lower, upper], dim=-1)


# --- 06: PROMISE12 -------------------------------------------------------------------------------
def surviving_pixels(label: np.ndarray, size: int) -> int:
    """06.1: foreground pixels left after the authors' bilinear resize then truncation."""
    shape = (label.shape[0], size, size)
    smooth = resize(
        label.astype(np.float64),
        shape,
        order=1,
        mode="constant",
        preserve_range=True,
        anti_aliasing=False,
    )
    return int((smooth.astype(np.uint8) == 1).sum())  # the cast truncates: 0.99 becomes 0


def empty_slice_fraction(labels: Tensor, k: int) -> float:
    """06.2: the share of (N, H, W) label slices in which class k has no pixel."""
    has_k = (labels == k).flatten(1).any(1)
    return float((~has_k).double().mean())


# --- 07: anatomical priors -----------------------------------------------------------------------
def quantile_bounds(values: Tensor, present: Tensor, q: float) -> Tensor:
    """07.1: [quantile q, quantile 1 - q] of the values of the images where the class is present."""
    kept = values[present].double()
    return torch.quantile(kept, torch.tensor([q, 1 - q], dtype=torch.float64))


def coverage(values: Tensor, present: Tensor, bounds: Tensor) -> float:
    """07.2: share of the present images whose n values all lie in [lower, upper] (inclusive)."""
    kept = values[present]
    inside = (kept >= bounds[:, 0]) & (kept <= bounds[:, 1])  # (N_present, n)
    return float(inside.all(1).double().mean())


# --- 08: going further ---------------------------------------------------------------------------
def percentage_bounds(values: Tensor, margin: float) -> Tensor:
    """08.1: [v - m|v|, v + m|v|] clamped below at 0, on a new last axis of size 2."""
    m = margin * values.abs()
    return torch.stack([values - m, values + m], dim=-1).clamp_min(0)


def volume_ml(label: Tensor, k: int, spacing: tuple[float, float, float]) -> float:
    """08.2: volume of class k in mL from 2-D areas: sum of slice areas (mm²) x thickness / 1000."""
    areas = (label == k).flatten(1).sum(1).double() * spacing[1] * spacing[2]  # mm² per slice
    return float(areas.sum() * spacing[0] / 1000)  # mm³ -> mL


def cube_length_26(s: int) -> int:
    """08.3: 26-neighbour length of an s x s x s cube: 54 s² - 36 s + 8.

    An offset o with n non-zero components: the cube and its shifted copy overlap in
    s^(3-n) (s-1)^n voxels, so 2 (s³ - overlap) pairs cross; 3, 6 and 4 offsets have n = 1, 2, 3.
    """

    def crossings(n_nonzero: int) -> int:
        return 2 * (s**3 - s ** (3 - n_nonzero) * (s - 1) ** n_nonzero)

    return 3 * crossings(1) + 6 * crossings(2) + 4 * crossings(3)


CRESCENT_DESCRIPTOR = "compactness"
"""08.4: L²/S. Size, centroid and spread say where the mass is and how far it reaches, which a blob
can match; a crescent has far more boundary for its area."""
