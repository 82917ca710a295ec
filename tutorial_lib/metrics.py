"""Segmentation metrics on label maps: Dice per slice / per volume, and HD95 in mm.

Dice of class k between a predicted and a ground-truth label map:
    DSC_k = 2 |P_k ∩ G_k| / (|P_k| + |G_k|),   P_k = {p : pred(p) = k}, G_k = {p : target(p) = k}.

Convention when class k is absent from both (|P_k| + |G_k| = 0): the value is undefined, and
`empty="nan"` (the default) returns NaN so that `mean_dice` (a NaN-skipping mean) leaves it out.
`empty="one"` returns 1, which is what the authors' code computes ((2·0 + 1e-8) / (0 + 1e-8));
it inflates means over slices where a small structure is absent, so use it only to compare with
their numbers.

HD95 between two binary masks: the 95th percentile (linear interpolation, as `numpy.percentile`) of
the symmetric surface distances, i.e. of the union of {d(a, S_G) : a ∈ S_P} and {d(b, S_P) : b ∈ S_G},
where S_X is the surface of X (the voxels of X with a face neighbour outside X or outside the
image) and distances are Euclidean in mm (`spacing` per axis). This is the MedPy definition.
Empty masks: both empty -> `both_empty` (NaN by default: nothing to compare); exactly one empty
-> `one_empty` (inf by default: the error is unbounded). Average with `nanmean` and count the infs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from functools import lru_cache

import torch

__all__ = [
    "dice_counts",
    "dice_from_counts",
    "dice_2d",
    "dice_3d_per_volume",
    "volume_counts",
    "mean_dice",
    "class_means",
    "surface",
    "surface_distances",
    "hd95",
    "hd95_per_volume",
]

EMPTY_DICE = ("nan", "one")
# hd95 method="auto": pairwise distances up to this many surface-point pairs, else a distance
# transform (measured: 4M pairs ~ 60 ms with float64 cdist on one CPU thread).
AUTO_CDIST_PAIRS = {"cpu": 2**22, "cuda": 2**30}


def _real_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _check_label_maps(pred: torch.Tensor, target: torch.Tensor, n_classes: int, name: str) -> None:
    if not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"{name}: expected n_classes an int >= 1, got {n_classes!r}")
    for what, t in (("pred", pred), ("target", target)):
        if t.is_floating_point() or t.is_complex():
            raise ValueError(
                f"{name}: expected {what} an integer label map (B, *spatial), got dtype {t.dtype}"
                " (pass argmax(1) of the logits, not probabilities)"
            )
    if pred.shape != target.shape:
        raise ValueError(
            f"{name}: expected pred and target of one shape, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    if pred.ndim < 2:
        raise ValueError(
            f"{name}: expected label maps (B, *spatial), got shape {tuple(pred.shape)}"
        )
    if pred.device != target.device:
        raise ValueError(
            f"{name}: expected pred and target on one device, got {pred.device} and {target.device}"
        )
    if pred.numel():
        (lo_p, hi_p), (lo_t, hi_t) = torch.aminmax(pred), torch.aminmax(target)
        lo, hi = torch.minimum(lo_p, lo_t), torch.maximum(hi_p, hi_t)
        if (lo < 0) | (hi >= n_classes):  # one host sync per call, at the boundary
            raise ValueError(
                f"{name}: expected labels in [0, {n_classes - 1}], got values in [{int(lo)}, {int(hi)}]"
            )


@lru_cache(maxsize=8)
def _classes(n_classes: int, device: torch.device) -> torch.Tensor:
    with torch.inference_mode(False):
        return torch.arange(n_classes, device=device)


def dice_counts(
    pred: torch.Tensor, target: torch.Tensor, n_classes: int, *, check: bool = True
) -> torch.Tensor:
    """Counts (B, K, 3) = (|P_k ∩ G_k|, |P_k|, |G_k|) per item, summed over all spatial axes.

    `pred`, `target`: integer label maps (B, *spatial) with values in [0, n_classes).
    `check=False` skips the shape and value-range check, which reads the labels' range back from
    the device (a training loop whose labels are in range by construction). Taught in notebook 05.
    """
    if check:
        _check_label_maps(pred, target, n_classes, "dice_counts")
    classes = _classes(n_classes, pred.device).view(1, n_classes, *[1] * (pred.ndim - 1))
    p = pred.unsqueeze(1) == classes  # (B, K, *spatial) bool
    g = target.unsqueeze(1) == classes
    dims = tuple(range(2, p.ndim))
    return torch.stack([(p & g).sum(dims), p.sum(dims), g.sum(dims)], dim=-1)


def dice_from_counts(counts: torch.Tensor, *, empty: str = "nan") -> torch.Tensor:
    """DSC (..., K) = 2·counts[..., 0] / (counts[..., 1] + counts[..., 2]); see module doc for `empty`."""
    if empty not in EMPTY_DICE:
        raise ValueError(f"empty: expected one of {EMPTY_DICE}, got {empty!r}")
    if counts.shape[-1:] != (3,):
        raise ValueError(f"counts: expected shape (..., K, 3), got shape {tuple(counts.shape)}")
    counts = counts.to(_real_dtype(counts.device))
    denominator = counts[..., 1] + counts[..., 2]
    dice = 2 * counts[..., 0] / denominator  # 0 / 0 = NaN where the class is absent from both
    return dice if empty == "nan" else torch.where(denominator > 0, dice, 1.0)


def dice_2d(
    pred: torch.Tensor, target: torch.Tensor, n_classes: int, *, empty: str = "nan"
) -> torch.Tensor:
    """DSC per slice and class (B, K) of label maps (B, H, W) (any (B, *spatial) works per item).

    Absent-in-both -> NaN (`empty="nan"`) or 1 (`empty="one"`, the authors' value).
    Taught in notebook 04.
    """
    return dice_from_counts(dice_counts(pred, target, n_classes), empty=empty)


def _group_index(
    volume_ids: Sequence[Hashable] | torch.Tensor, n: int, device: torch.device, name: str
) -> tuple[list[Hashable], torch.Tensor]:
    """(ids in first-seen order, the index of each slice's volume in that list)."""
    if isinstance(volume_ids, torch.Tensor):
        if volume_ids.ndim != 1:
            raise ValueError(
                f"{name}: expected volume_ids of shape ({n},), got {tuple(volume_ids.shape)}"
            )
        volume_ids = volume_ids.tolist()
    if len(volume_ids) != n:
        raise ValueError(f"{name}: expected {n} volume ids (one per slice), got {len(volume_ids)}")
    order: dict[Hashable, int] = {}
    index = [order.setdefault(v, len(order)) for v in volume_ids]
    return list(order), torch.tensor(index, device=device, dtype=torch.long)


def volume_counts(
    counts: torch.Tensor, volume_ids: Sequence[Hashable] | torch.Tensor
) -> tuple[list[Hashable], torch.Tensor]:
    """Per-slice counts (B, K, 3) of `dice_counts` summed by volume: (ids in first-seen order, (V, K, 3)).

    `volume_ids`: one id per slice, any order.
    """
    ids, index = _group_index(volume_ids, counts.shape[0], counts.device, "volume_counts")
    pooled = counts.new_zeros(len(ids), *counts.shape[1:]).index_add_(0, index, counts)
    return ids, pooled


def dice_3d_per_volume(
    pred: torch.Tensor,
    target: torch.Tensor,
    volume_ids: Sequence[Hashable] | torch.Tensor,
    n_classes: int,
    *,
    empty: str = "nan",
) -> tuple[list[Hashable], torch.Tensor]:
    """3-D DSC per volume and class: (ids in first-seen order, DSC (V, K)).

    Slices (B, H, W) are grouped by `volume_ids` (one id per slice, any order); the counts of a
    volume's slices are summed before the ratio, so DSC_vk = 2 Σ|P∩G| / (Σ|P| + Σ|G|).
    Taught in notebook 04.
    """
    ids, pooled = volume_counts(dice_counts(pred, target, n_classes), volume_ids)
    return ids, dice_from_counts(pooled, empty=empty)


def mean_dice(dsc: torch.Tensor, dim: int | tuple[int, ...] | None = None) -> torch.Tensor:
    """Mean that skips NaN (classes absent in both masks); all-NaN -> NaN.

    E.g. `mean_dice(dice_2d(p, g, K), dim=0)` gives the per-class mean over slices,
    `mean_dice(dsc[:, 1:])` the mean over foreground classes. Taught in notebook 04.
    """
    return torch.nanmean(dsc, dim=dim) if dim is not None else torch.nanmean(dsc)


def class_means(
    values: torch.Tensor, class_names: Sequence[str], selection: Sequence[int]
) -> dict[str, float]:
    """Per-class means over the rows of `values` (V, K) and their "mean" over the `selection` classes.

    NaN and infinite values are left out (a Dice absent in both masks, an HD95 with one empty
    mask): `{name_k: mean_v values[v, k], "mean": mean_{k in selection} (mean_v values[v, k])}`.
    """
    if values.ndim != 2 or values.shape[1] != len(class_names):
        raise ValueError(
            f"class_means: expected values (V, {len(class_names)}), got shape {tuple(values.shape)}"
        )
    if any(not 0 <= k < len(class_names) for k in selection):
        raise ValueError(
            f"class_means: expected selection indices below {len(class_names)}, got {list(selection)}"
        )
    finite = torch.where(torch.isinf(values), math.nan, values)
    means = {name: float(mean_dice(finite[:, k])) for k, name in enumerate(class_names)}
    means["mean"] = float(mean_dice(mean_dice(finite[:, list(selection)], dim=0)))
    return means


# ---------------------------------------------------------------- Hausdorff distance (HD95)


def _check_mask(mask: torch.Tensor, name: str) -> torch.Tensor:
    if mask.is_floating_point() or mask.is_complex():
        raise ValueError(
            f"hd95: expected {name} a boolean or integer mask, got dtype {mask.dtype} "
            "(threshold probabilities first)"
        )
    if mask.ndim not in (2, 3):
        raise ValueError(
            f"hd95: expected {name} a 2-D (H, W) or 3-D (D, H, W) mask, got shape {tuple(mask.shape)}"
        )
    return mask != 0


def _check_masks(
    pred_mask: torch.Tensor,
    target_mask: torch.Tensor,
    spacing: Sequence[float] | torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """Validated boolean masks of one shape and a spacing list (1 mm per axis by default)."""
    p, g = _check_mask(pred_mask, "pred_mask"), _check_mask(target_mask, "target_mask")
    if p.shape != g.shape:
        raise ValueError(
            f"hd95: expected masks of one shape, got {tuple(p.shape)} and {tuple(g.shape)}"
        )
    if p.device != g.device:
        raise ValueError(
            f"hd95: expected pred_mask and target_mask on one device, got {p.device} and {g.device}"
        )
    if spacing is None:
        spacing = [1.0] * p.ndim
    elif isinstance(spacing, torch.Tensor):
        spacing = spacing.tolist()
    spacing = [float(s) for s in spacing]
    if len(spacing) != p.ndim or not all(s > 0 and math.isfinite(s) for s in spacing):
        raise ValueError(
            f"hd95: expected {p.ndim} positive spacings (mm per axis of a {p.ndim}-D mask), got {spacing}"
        )
    return p, g, spacing


def surface(mask: torch.Tensor) -> torch.Tensor:
    """Surface voxels of a boolean mask: in the mask, with a face neighbour outside it.

    Outside the image counts as outside the mask (so mask voxels on the image border are surface).
    """
    padded = torch.nn.functional.pad(mask.to(torch.uint8), [1, 1] * mask.ndim).bool()
    centre = [slice(1, n + 1) for n in mask.shape]
    interior = mask.clone()
    for axis, n in enumerate(mask.shape):
        for offset in (0, 2):  # the neighbour before and after along `axis`
            index = list(centre)
            index[axis] = slice(offset, offset + n)
            interior &= padded[tuple(index)]
    return mask & ~interior


def _coordinates(mask: torch.Tensor, spacing: torch.Tensor) -> torch.Tensor:
    return mask.nonzero().to(spacing.dtype) * spacing


def _directed_cdist(a: torch.Tensor, b: torch.Tensor, chunk: int) -> torch.Tensor:
    """min_j |a_i - b_j| for every point a_i, by chunks of rows of torch.cdist."""
    rows = max(1, chunk // max(1, b.shape[0]))
    # float64: the fast matrix-product form of cdist is accurate; float32 (MPS): use differences
    mode = (
        "use_mm_for_euclid_dist_if_necessary"
        if a.dtype == torch.float64
        else "donot_use_mm_for_euclid_dist"
    )
    parts = [
        torch.cdist(a[i : i + rows], b, compute_mode=mode).amin(1)
        for i in range(0, a.shape[0], rows)
    ]
    return torch.cat(parts)


def _directed_edt(src: torch.Tensor, dst: torch.Tensor, spacing: Sequence[float]) -> torch.Tensor:
    """Distances from each voxel of `src` to the nearest voxel of `dst`, by a Euclidean distance
    transform of the complement of `dst` (scipy, on the CPU), within the bounding box of both."""
    # scipy.ndimage loads in a fraction of a second: only when a mask is large enough for this path
    from scipy.ndimage import distance_transform_edt

    both = (src | dst).nonzero()
    box = tuple(
        slice(int(lo), int(hi) + 1) for lo, hi in zip(both.amin(0), both.amax(0), strict=True)
    )
    src, dst = src[box].cpu().numpy(), dst[box].cpu().numpy()
    return torch.from_numpy(distance_transform_edt(~dst, sampling=spacing)[src])


def _percentile(x: torch.Tensor, q: float) -> torch.Tensor:
    """q-th percentile with linear interpolation (numpy's default); no size limit."""
    values = x.sort().values
    position = (q / 100) * (values.numel() - 1)
    lo = math.floor(position)
    hi = min(lo + 1, values.numel() - 1)
    return values[lo] + (position - lo) * (values[hi] - values[lo])


def surface_distances(
    pred_mask: torch.Tensor,
    target_mask: torch.Tensor,
    spacing: Sequence[float] | torch.Tensor | None = None,
    *,
    method: str = "auto",
    chunk: int = 2**22,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Directed surface distances in mm: (pred surface -> target surface, target -> pred).

    Both masks must be non-empty. `method`: "cdist" (exact pairwise minimum on the masks' device,
    `chunk` pairs at a time), "edt" (scipy distance transform on the CPU within the masks' bounding
    box, linear in its number of voxels), or "auto" (cdist while the number of surface-point pairs
    is at most `AUTO_CDIST_PAIRS[device type]`, else edt). Both are exact.
    """
    if method not in ("auto", "cdist", "edt"):
        raise ValueError(f"method: expected 'auto', 'cdist' or 'edt', got {method!r}")
    p, g, spacing = _check_masks(pred_mask, target_mask, spacing)
    if not (p.any() and g.any()):
        empty = " and ".join(n for n, m in (("pred_mask", p), ("target_mask", g)) if not m.any())
        raise ValueError(f"surface_distances: expected both masks non-empty, got an empty {empty}")
    sp, sg = surface(p), surface(g)
    n_pairs = int(sp.sum()) * int(sg.sum())
    limit = AUTO_CDIST_PAIRS.get(p.device.type, AUTO_CDIST_PAIRS["cpu"])
    if method == "edt" or (method == "auto" and n_pairs > limit):
        return _directed_edt(sp, sg, spacing), _directed_edt(sg, sp, spacing)
    s = torch.tensor(spacing, dtype=_real_dtype(p.device), device=p.device)
    a, b = _coordinates(sp, s), _coordinates(sg, s)
    return _directed_cdist(a, b, chunk), _directed_cdist(b, a, chunk)


def hd95(
    pred_mask: torch.Tensor,
    target_mask: torch.Tensor,
    spacing: Sequence[float] | torch.Tensor | None = None,
    *,
    both_empty: float = math.nan,
    one_empty: float = math.inf,
    method: str = "auto",
) -> torch.Tensor:
    """95th percentile of the symmetric surface distances (mm) of two 2-D or 3-D masks (0-d tensor).

    `spacing`: mm per axis ((row, col) or (slice, row, col)); default 1. Empty masks: see the
    module docstring. `method`: see `surface_distances`. Taught in notebook 04.
    """
    p, g, spacing = _check_masks(pred_mask, target_mask, spacing)
    has_p, has_g = bool(p.any()), bool(g.any())
    if not (has_p and has_g):
        value = both_empty if not (has_p or has_g) else one_empty
        return torch.tensor(value, dtype=_real_dtype(p.device), device=p.device)
    d_pg, d_gp = surface_distances(p, g, spacing, method=method)
    return _percentile(torch.cat([d_pg, d_gp.to(d_pg)]), 95.0).to(p.device)


def hd95_per_volume(
    pred: torch.Tensor,
    target: torch.Tensor,
    volume_ids: Sequence[Hashable] | torch.Tensor,
    n_classes: int,
    spacing: Sequence[float] | torch.Tensor | None = None,
    **options,
) -> tuple[list[Hashable], torch.Tensor]:
    """HD95 (mm) per volume and class of slice label maps (B, H, W): (ids, (V, K)).

    `spacing`: one (slice, row, col) triple for all, or per slice (B, 3) (a volume uses its first
    slice's). Each volume is the stack of its slices in the given order. `options` go to `hd95`.
    Loops over volumes and classes (scipy / cdist per pair of masks).
    """
    _check_label_maps(pred, target, n_classes, "hd95_per_volume")
    if pred.ndim != 3:
        raise ValueError(
            f"hd95_per_volume: expected slices (B, H, W), got shape {tuple(pred.shape)}"
        )
    ids, index = _group_index(volume_ids, pred.shape[0], pred.device, "hd95_per_volume")
    spacing_t = torch.ones(3) if spacing is None else torch.as_tensor(spacing, dtype=torch.float64)
    if spacing_t.shape not in ((3,), (pred.shape[0], 3)):
        raise ValueError(
            f"hd95_per_volume: expected spacing (3,) or ({pred.shape[0]}, 3), got {tuple(spacing_t.shape)}"
        )
    out = torch.empty(len(ids), n_classes, dtype=_real_dtype(pred.device), device=pred.device)
    for v in range(len(ids)):
        rows = (index == v).nonzero()[:, 0]
        sp = spacing_t if spacing_t.ndim == 1 else spacing_t[int(rows[0])]
        for k in range(n_classes):
            out[v, k] = hd95(pred[rows] == k, target[rows] == k, sp, **options)
    return ids, out
