"""Test-only re-implementation of the authors' online augmentation (their `pre_augment`), written
from its description (docs/method.md, "Augmentation"), one sample at a time in numpy. Slow on
purpose; never imported by the library.

Per sample, each step with probability 1/2, in this order:
1. blur the image only: a 5x5 Gaussian, weights exp(-k² / 2 sigma²) / sum for k = -2..2, the
   edges mirrored about the edge pixel; sigma uniform in [0.5, 2];
2. rotate image and labels by an angle uniform in [-30, 30] degrees about the image centre,
   nearest neighbour (the pixel whose square holds the source point), zero outside;
3. scale by s uniform in [0.8, 1.2]: nearest resize to n = int(s H) x int(s W) pixels (output
   pixel k reads input pixel floor((k + 1/2) H / n)), then for s > 1 crop H x W starting at a
   uniform integer (row, col) in {0..n-H}, for s < 1 zero-pad back to H x W with the resized
   image's top-left corner at a uniform integer (row, col) in {0..H-n}.
The rotation's direction matches `tutorial_lib.data.augment` (output (x, y) about the centre reads
the input at R(angle) (x, y)) so that one sample can be compared with the library; the authors'
angles are symmetric about 0, so the distribution does not depend on it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

KERNEL_SIZE = 5


@dataclass(frozen=True)
class Params:
    """One sample's draws: None where a step is skipped. Offsets are (row, col): the crop's
    top-left corner in the resized image (s > 1) or the resized image's in the output (s < 1)."""

    sigma: float | None = None
    angle_deg: float | None = None
    scale: float | None = None
    offset: tuple[int, int] = (0, 0)


def draw_params(
    rng: random.Random,
    shape: tuple[int, int],
    p: float = 0.5,
    steps: tuple[str, ...] = ("blur", "rotate", "scale"),
) -> Params:
    """The authors' draws, in their order (a step's parameters only when it runs); `steps` are
    the steps switched on (their --augment_blur, --augment_rotate, --augment_scale)."""
    h, w = shape
    sigma = rng.uniform(0.5, 2.0) if "blur" in steps and rng.random() < p else None
    angle = rng.uniform(-30.0, 30.0) if "rotate" in steps and rng.random() < p else None
    scale, offset = None, (0, 0)
    if "scale" in steps and rng.random() < p:
        scale = rng.uniform(0.8, 1.2)
        dh, dw = abs(int(h * scale) - h), abs(int(w * scale) - w)
        offset = (rng.randint(0, dh), rng.randint(0, dw))
    return Params(sigma, angle, scale, offset)


def blur(image: np.ndarray, sigma: float, kernel_size: int = KERNEL_SIZE) -> np.ndarray:
    """Separable Gaussian with `kernel_size` taps, edges mirrored about the edge pixel."""
    r = kernel_size // 2
    k = np.arange(-r, r + 1, dtype=np.float64)
    weights = np.exp(-0.5 * (k / sigma) ** 2)
    weights /= weights.sum()
    padded = np.pad(image.astype(np.float64), r, mode="reflect")
    h, w = image.shape
    rows = sum(weights[i] * padded[i : i + h, :] for i in range(kernel_size))
    return sum(weights[j] * rows[:, j : j + w] for j in range(kernel_size))


def rotate(array: np.ndarray, angle_deg: float) -> np.ndarray:
    """Nearest-neighbour rotation about the image centre, zero outside."""
    h, w = array.shape
    rows, cols = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
    # normalised coordinates of grid_sample (align_corners=False): x in [-1, 1] across the width
    x, y = 2 * cols / w - 1, 2 * rows / h - 1
    a = math.radians(angle_deg)
    src_x = math.cos(a) * x - math.sin(a) * y
    src_y = math.sin(a) * x + math.cos(a) * y
    return _read(array, (src_y + 1) * h / 2, (src_x + 1) * w / 2)


def _read(array: np.ndarray, pos_rows: np.ndarray, pos_cols: np.ndarray) -> np.ndarray:
    """array at continuous positions (pixel i covers [i, i + 1)), zero outside."""
    h, w = array.shape
    i, j = np.floor(pos_rows).astype(int), np.floor(pos_cols).astype(int)
    inside = (i >= 0) & (i < h) & (j >= 0) & (j < w)
    out = np.zeros_like(array)
    out[inside] = array[i[inside], j[inside]]
    return out


def scale(array: np.ndarray, s: float, offset: tuple[int, int]) -> np.ndarray:
    """Nearest resize to int(s H) x int(s W), then crop (s > 1) or zero-pad (s < 1) at `offset`."""
    h, w = array.shape
    n, m = int(h * s), int(w * s)
    src_rows = np.floor((np.arange(n) + 0.5) * h / n).astype(int)
    src_cols = np.floor((np.arange(m) + 0.5) * w / m).astype(int)
    resized = array[np.ix_(src_rows, src_cols)]
    top, left = offset
    if n >= h and m >= w:
        return resized[top : top + h, left : left + w].copy()
    out = np.zeros_like(array)
    out[top : top + n, left : left + m] = resized
    return out


def augment(image: np.ndarray, labels: np.ndarray, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """One sample: image (H, W) float, labels (H, W) integer."""
    if params.sigma is not None:
        image = blur(image, params.sigma)
    if params.angle_deg is not None:
        image, labels = rotate(image, params.angle_deg), rotate(labels, params.angle_deg)
    if params.scale is not None:
        image = scale(image, params.scale, params.offset)
        labels = scale(labels, params.scale, params.offset)
    return image, labels


def augment_labels(labels: np.ndarray, params: Params) -> np.ndarray:
    """The labels' part of `augment` (the blur leaves them as they are)."""
    if params.angle_deg is not None:
        labels = rotate(labels, params.angle_deg)
    if params.scale is not None:
        labels = scale(labels, params.scale, params.offset)
    return labels
