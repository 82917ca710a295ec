"""Shape, intensity and noise settings of the toy datasets.

Lengths are fractions of the image side (so one setting works at 64 or 256 pixels), angles in
degrees, intensities on a [0, 1] scale before the per-volume min-max normalisation. A range is
a (low, high) pair from which a value is drawn uniformly per patient.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

Range = tuple[float, float]


def _check(options: object) -> None:
    """Raise ValueError for any range with low > high, negative length or bad probability."""
    name = type(options).__name__
    for f in fields(options):
        value = getattr(options, f.name)
        if isinstance(value, tuple):
            if len(value) != 2 or value[0] > value[1] or value[0] < 0:
                raise ValueError(
                    f"{name}.{f.name}: expected a (low, high) pair with 0 <= low <= high, "
                    f"got {value!r}"
                )
        elif isinstance(value, int | float) and value < 0:
            raise ValueError(f"{name}.{f.name}: expected a value >= 0, got {value!r}")
        if f.name.endswith(("_prob", "_fraction")) and not 0 <= value <= 1:
            raise ValueError(f"{name}.{f.name}: expected a probability in [0, 1], got {value!r}")
    slices = getattr(options, "slices", (1, 1))
    if slices[0] < 1 or int(slices[0]) != slices[0] or int(slices[1]) != slices[1]:
        raise ValueError(f"{name}.slices: expected whole numbers >= 1, got {slices!r}")


@dataclass(frozen=True)
class ToyCardiacOptions:
    """A short-axis cine-MRI look-alike: RV (1), myocardium (2), LV cavity (3).

    Defaults keep the myocardial ring >= ~5 px thick at 64x64 (real ACDC rings are ~3 % of the
    side, 2 px at 64x64, which small networks cannot resolve from descriptors alone).
    """

    slices: Range = (6, 10)  # slices per patient, base to apex
    lv_radius: Range = (0.09, 0.14)  # LV cavity radius at the base
    lv_elongation: Range = (1.0, 1.25)  # ratio of the cavity's semi-axes
    myo_thickness: Range = (0.078, 0.095)  # myocardial wall thickness
    apex_scale: Range = (0.4, 0.6)  # cavity radius at the apex / at the base
    rv_depth: Range = (0.8, 1.1)  # RV ellipse semi-axis towards the LV, x epicardial radius
    rv_width: Range = (1.3, 1.8)  # RV ellipse semi-axis across, x epicardial radius
    rv_offset: Range = (0.75, 0.95)  # RV ellipse centre distance from the LV centre, x epi radius
    rv_extent: Range = (0.75, 1.05)  # slices beyond this fraction of base->apex have no RV
    apex_lv_absent_prob: float = 0.5  # the apex slice shows only myocardium
    position_jitter: float = 0.05  # LV centre within (0.5, 0.55) +- this (fraction of the side)
    rotation_deg: float = 35.0  # the RV sits at the image's left +- this
    wobble: Range = (0.0, 0.08)  # outline irregularity (relative radius change)
    blood_intensity: Range = (0.7, 0.95)
    myo_intensity: Range = (0.2, 0.35)
    # Surroundings: a smooth field of tissue (brighter than the myocardium, darker than blood)
    # with dark lung patches, as in cine bSSFP. The myocardium's mid-dark grey is then its own,
    # which descriptor-only training needs (with tissue in (0.05, 0.6), overlapping the
    # myocardium, the myocardium's test DSC fell from ~0.8 to ~0.6 in a 100-epoch probe).
    background_intensity: Range = (0.45, 0.65)
    lung_intensity: Range = (0.0, 0.08)
    lung_fraction: float = 0.3  # share of the coarse background grid that is lung
    bias: float = 0.2  # amplitude of a smooth multiplicative bias field
    noise: Range = (0.02, 0.05)  # Rician noise std
    blur: Range = (0.004, 0.01)  # Gaussian blur sigma, fraction of the side

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes: object) -> ToyCardiacOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class ToyProstateOptions:
    """An axial T2 prostate look-alike: a textured ellipsoidal gland (1) in noisy tissue."""

    slices: Range = (16, 26)  # slices per volume
    gland_radius: Range = (0.11, 0.18)  # largest in-plane semi-axis
    gland_aspect: Range = (0.7, 0.95)  # other semi-axis / largest
    gland_extent: Range = (0.4, 0.65)  # fraction of the slices the gland spans
    position_jitter: float = 0.06
    rotation_deg: float = 15.0
    wobble: Range = (0.0, 0.1)
    gland_intensity: Range = (0.35, 0.55)
    texture: float = 0.25  # amplitude of the gland's blotchy texture
    rim_brightening: float = 0.12  # brighter peripheral zone
    capsule_darkening: float = 0.5  # a thin dark band (capsule, fat) just outside the gland
    background_intensity: Range = (0.15, 0.55)
    rectum_intensity: float = 0.06  # dark rectum behind the gland
    bias: float = 0.25
    noise: Range = (0.04, 0.08)
    blur: Range = (0.004, 0.01)

    def __post_init__(self) -> None:
        _check(self)

    def replace(self, **changes: object) -> ToyProstateOptions:
        return dataclasses.replace(self, **changes)


OPTIONS = {"toy-cardiac": ToyCardiacOptions, "toy-prostate": ToyProstateOptions}
CLASSES = {
    "toy-cardiac": ["background", "rv", "myocardium", "lv"],
    "toy-prostate": ["background", "prostate"],
}


def make_options(name: str, **shape_options: object) -> ToyCardiacOptions | ToyProstateOptions:
    """Build the options dataclass of toy dataset `name`, overriding the given fields."""
    if name not in OPTIONS:
        raise ValueError(f"dataset: expected a toy dataset name in {sorted(OPTIONS)}, got {name!r}")
    cls = OPTIONS[name]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(shape_options) - known)
    if unknown:
        raise ValueError(
            f"{cls.__name__}: expected options among {sorted(known)}, "
            f"got unknown option(s) {unknown}"
        )
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in shape_options.items()}
    return cls(**converted)
