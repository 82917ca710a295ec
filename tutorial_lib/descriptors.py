"""Soft (differentiable) global shape descriptors of probability maps: the ``soft_*`` functions.

Every public function takes probabilities ``p`` of shape ``(B, K, H, W)`` or ``(B, K, D, H, W)``
and returns ``(B, K, n)`` with the dtype and device of ``p``. Internally the sums run in float32 at
least (float64 stays float64), so bf16/fp16 inputs give float32-accurate values.

Coordinates are array indices in array order ((row, col) or (slice, row, col)), multiplied by
``spacing`` (mm per axis) when one is given. ``spacing`` is a sequence of one value per spatial axis,
or a tensor of shape ``(n_axes,)`` or ``(B, n_axes)`` (one spacing per image of the batch).

This module is the descriptors' front door: it also gives the registry (``DESCRIPTORS``,
``Descriptor``, ``register_descriptor``, ... from ``descriptor_registry``) and the shared
``Geometry`` (from ``geometry``, which says how the moments stay fast), so that
``from tutorial_lib.descriptors import ...`` reaches every name of the family.
"""

from __future__ import annotations

from torch import Tensor

from tutorial_lib.descriptor_registry import (
    DESCRIPTORS,
    Descriptor,
    check_descriptor_name,
    register_descriptor,
    registered_descriptor,
    unregister_descriptor,
)
from tutorial_lib.geometry import Geometry, SpacingLike, check_probs, spacing_ok

__all__ = [
    "DESCRIPTORS",
    "Descriptor",
    "Geometry",
    "SpacingLike",
    "check_descriptor_name",
    "check_probs",
    "register_descriptor",
    "registered_descriptor",
    "soft_centroid",
    "soft_compactness",
    "soft_covariance",
    "soft_dist_centroid",
    "soft_eccentricity",
    "soft_length",
    "soft_orientation",
    "soft_size",
    "spacing_ok",
    "unregister_descriptor",
]


def soft_size(p: Tensor, *, spacing: SpacingLike = None) -> Tensor:
    """Size ``S = sum_x p(x)`` (times the voxel volume with a spacing): (B, K, 1).

    Taught in notebook 01.
    """
    return DESCRIPTORS["size"](p, spacing=spacing)


def soft_centroid(p: Tensor, *, spacing: SpacingLike = None) -> Tensor:
    """Centroid ``C_i = sum_x p(x) x_i / (S + eps)`` per axis, array order: (B, K, n_axes).

    Taught in notebook 01.
    """
    return DESCRIPTORS["centroid"](p, spacing=spacing)


def soft_dist_centroid(p: Tensor, *, spacing: SpacingLike = None) -> Tensor:
    """Per-axis RMS spread ``D_i = sqrt(sum_x p(x) (x_i - C_i)^2 / (S + eps))``: (B, K, n_axes).

    The authors' "distance to centroid". A binary s x s square gives sqrt((s^2 - 1) / 12).
    Taught in notebook 02.
    """
    return DESCRIPTORS["dist_centroid"](p, spacing=spacing)


def soft_length(
    p: Tensor, *, spacing: SpacingLike = None, connectivity: int | None = None
) -> Tensor:
    """Graph-Laplacian quadratic form ``L = sum_{p~q} (p(x) - p(y))^2``, each pair once: (B, K, 1).

    ``connectivity``: 8 (default, the authors') or 4 in 2-D; 26 (default), 18 or 6 in 3-D. No
    wrap-around. A binary interior s x s square gives 12 s - 4 with 8-connectivity (4 s with 4).
    With a spacing each pair weighs ``voxel volume * |offset| / |offset in mm|`` (mm in 2-D, mm^2 in 3-D).
    Taught in notebook 02.
    """
    return DESCRIPTORS["length"](p, spacing=spacing, connectivity=connectivity)


def soft_compactness(
    p: Tensor, *, spacing: SpacingLike = None, connectivity: int | None = None
) -> Tensor:
    """Compactness ``L^2 / (S + eps)`` (L: soft_length, S: soft_size): (B, K, 1).

    Taught in notebook 02.
    """
    return DESCRIPTORS["compactness"](p, spacing=spacing, connectivity=connectivity)


def soft_covariance(p: Tensor, *, spacing: SpacingLike = None) -> Tensor:
    """Normalised central second moments ``sum p (x_i - C_i)(x_j - C_j) / S``, upper triangle.

    2-D: (rr, rc, cc), n = 3. 3-D: (00, 01, 02, 11, 12, 22), n = 6. Equal to scikit-image's
    ``moments_central(mask)[...] / area`` on a binary mask. Taught in notebook 02.
    """
    return DESCRIPTORS["covariance"](p, spacing=spacing)


def soft_eccentricity(p: Tensor, *, spacing: SpacingLike = None) -> Tensor:
    """Eccentricity ``sqrt(1 - l_min / l_max)`` of the second-moment matrix: (B, K, 1).

    0 for a disk (ball), towards 1 for a line; the definition of scikit-image's ``regionprops``.
    Taught in notebook 02.
    """
    return DESCRIPTORS["eccentricity"](p, spacing=spacing)


def soft_orientation(p: Tensor, *, spacing: SpacingLike = None) -> Tensor:
    """Angle (radians, in [-pi/2, pi/2]) between the row axis and the major axis, 2-D only: (B, K, 1).

    ``0.5 * atan2(2 cov_rc, cov_rr - cov_cc)``; the convention of scikit-image's ``regionprops``.
    Undefined (returned as 0) for a disk. Taught in notebook 02.
    """
    return DESCRIPTORS["orientation"](p, spacing=spacing)
