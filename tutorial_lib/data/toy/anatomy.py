"""Vectorised rendering of the toy anatomies: per-slice shape parameters drawn with numpy,
pixels drawn with torch for a whole chunk of slices at once (see `render`).

`RENDERERS[name](rng, n_patients, size, options)` returns images (N, H, W) min-max normalised
per volume, labels (N, H, W) uint8, the patient index of each slice and the slices per patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from tutorial_lib.data.toy.options import ToyCardiacOptions, ToyProstateOptions
from tutorial_lib.data.toy.render import (
    ellipse_frame,
    ellipse_radius,
    gaussian_blur,
    inside_ellipse,
    inside_ellipse_sq,
    minmax_per_volume,
    pixel_grid,
    rician_noise,
    smooth_field,
    wobble_factor,
)

FIELD_GRID = 6  # low-resolution grid of the smooth background fields


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return rng.uniform(bounds[0], bounds[1], n)


def _slice_positions(rng: np.random.Generator, n_patients: int, slices: tuple) -> tuple:
    """Per-slice patient index and position z in [0, 1] along the volume."""
    counts = rng.integers(int(slices[0]), int(slices[1]) + 1, n_patients)
    patient = np.repeat(np.arange(n_patients), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    index = np.arange(patient.size) - starts
    z = index / np.maximum(counts[patient] - 1, 1)
    return counts, patient, index, z


def _background(
    rng: np.random.Generator,
    patient: np.ndarray,
    z: np.ndarray,
    size: int,
    tissue: tuple,
    dark: tuple = (0.0, 0.0),
    dark_fraction: float = 0.0,
) -> torch.Tensor:
    """Smooth field (N, H, W) that changes gently along each patient's slices.

    Each point of a coarse grid is tissue (intensity drawn in `tissue`) or, with probability
    `dark_fraction`, dark like lung or air (intensity in `dark`); bicubic upsampling blends them.
    """
    n_patients = int(patient.max()) + 1
    shape = (2, n_patients, FIELD_GRID, FIELD_GRID)
    ends = rng.uniform(tissue[0], tissue[1], shape)
    ends = np.where(rng.random(shape) < dark_fraction, rng.uniform(dark[0], dark[1], shape), ends)
    zz = z[:, None, None]
    low = ends[0][patient] * (1 - zz) + ends[1][patient] * zz
    return smooth_field(torch.from_numpy(low.astype(np.float32)), size)


def _bias(
    rng: np.random.Generator, patient: np.ndarray, size: int, amplitude: float
) -> torch.Tensor:
    """Per-patient bias fields (P, H, W): one smooth field per patient, shared by its slices."""
    n_patients = int(patient.max()) + 1
    low = rng.uniform(-1, 1, (n_patients, 3, 3)).astype(np.float32)
    return smooth_field(torch.from_numpy(low), size, mode="bilinear").mul_(amplitude).add_(1)


def _apply_bias(image: torch.Tensor, bias: torch.Tensor, patient: np.ndarray) -> torch.Tensor:
    """image * bias[patient], in place, one patient's run of consecutive slices at a time."""
    bounds = np.flatnonzero(np.diff(patient)) + 1
    starts = np.concatenate([[0], bounds])
    stops = np.concatenate([bounds, [patient.size]])
    for start, stop in zip(starts.tolist(), stops.tolist(), strict=True):
        image[start:stop].mul_(bias[int(patient[start])])
    return image


def _row_band(centre: torch.Tensor, reach: torch.Tensor, size: int) -> tuple[int, int]:
    """Rows [r0, r1) holding every pixel within `reach` (N,) of its slice's row `centre` (N,).

    A shape whose normalised radius is >= 1 beyond `reach` from its centre is then computed on
    these rows only, with 1 % and 3 pixels to spare. Whole images when the side is not a multiple
    of 16, so that every pixel keeps the vectorised kernels' arithmetic.
    """
    if size % 16 or centre.numel() == 0:
        return 0, size
    reach = reach.double() * 1.01 + 3
    r0 = int(np.floor(float((centre.double() - reach).min())))
    r1 = int(np.ceil(float((centre.double() + reach).max()))) + 1
    r0, r1 = min(max(r0, 0), size), min(max(r1, 0), size)
    return r0, max(r0, r1)


def _body_mask(rows: torch.Tensor, cols: torch.Tensor, size: int) -> torch.Tensor:
    """The body outline (1, H, W): an ellipse filling most of the image (outside: air)."""
    half = torch.full((1,), 0.47 * size)
    centre = torch.full((1,), (size - 1) / 2)
    u, v = ellipse_frame(rows, cols, centre, centre, torch.zeros(1))
    return inside_ellipse(u, v, half, half * 0.9)


@dataclass(frozen=True)
class _Slices:
    """The slices of a chunk of patients and the stream their random parameters come from."""

    rng: np.random.Generator
    n_patients: int
    counts: np.ndarray  # slices per patient
    patient: np.ndarray  # (N,) patient index of each slice
    z: np.ndarray  # (N,) position in [0, 1] along the patient's volume

    @classmethod
    def draw(cls, rng: np.random.Generator, n_patients: int, slices: tuple) -> _Slices:
        counts, patient, _, z = _slice_positions(rng, n_patients, slices)
        return cls(rng, n_patients, counts, patient, z)

    @property
    def n(self) -> int:
        return self.patient.size

    def per_patient(self, bounds: tuple[float, float]) -> np.ndarray:
        """One uniform draw in `bounds` per patient, repeated on each of its slices (N,)."""
        return _uniform(self.rng, bounds, self.n_patients)[self.patient]


def _float32_tensors(**arrays: np.ndarray) -> dict[str, torch.Tensor]:
    """Per-slice parameters as float32 tensors, by name."""
    return {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in arrays.items()}


def _render_cardiac(
    rng: np.random.Generator, n_patients: int, size: int, o: ToyCardiacOptions
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Images (N, H, W) normalised per volume, labels (N, H, W), patient index, slice counts."""
    s = _Slices.draw(rng, n_patients, o.slices)
    t, has_rv, has_lv = _cardiac_parameters(s, size, o)
    rv, myo, lv = _cardiac_masks(t, has_rv, has_lv, size)
    label = torch.zeros((s.n, size, size), dtype=torch.uint8)
    label.masked_fill_(rv, 1).masked_fill_(myo, 2).masked_fill_(lv, 3)
    return _cardiac_image(s, size, o, rv, myo, lv), label, s.patient, s.counts


def _cardiac_parameters(
    s: _Slices, size: int, o: ToyCardiacOptions
) -> tuple[dict[str, torch.Tensor], np.ndarray, np.ndarray]:
    """Per-slice LV ellipse, wall and RV ellipse (pixels, radians); which slices have RV and LV."""
    rng, n_patients, patient, z = s.rng, s.n_patients, s.patient, s.z
    scale = 1 - (1 - s.per_patient(o.apex_scale)) * z**1.5
    radius = s.per_patient(o.lv_radius) * size * scale
    elong = np.sqrt(s.per_patient(o.lv_elongation))
    thick = s.per_patient(o.myo_thickness) * size * (1 + 0.15 * z)
    drift = rng.uniform(-0.02, 0.02, (2, n_patients))[:, patient] * size * z
    cy = (0.5 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size + drift[0]
    cx = (0.55 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size + drift[1]
    turn = np.deg2rad(rng.uniform(-1, 1, n_patients) * o.rotation_deg)[patient]
    ellipse_angle = rng.uniform(0, np.pi, n_patients)[patient] + 0.2 * z
    wobble, phase = s.per_patient(o.wobble), rng.uniform(0, 2 * np.pi, n_patients)[patient]
    has_rv = z <= s.per_patient(o.rv_extent)
    is_apex = z >= 1
    has_lv = ~(is_apex & (rng.random(n_patients)[patient] < o.apex_lv_absent_prob))

    epi = (radius * (elong + 1 / elong) / 2) + thick  # mean epicardial radius
    rv_dir = np.pi + turn + 0.1 * z
    rv_size = 1 - 0.35 * z
    rv_off = s.per_patient(o.rv_offset) * epi
    t = _float32_tensors(
        cy=cy,
        cx=cx,
        a=radius * elong,
        b=radius / elong,
        thick=thick,
        angle=ellipse_angle,
        wobble=wobble,
        phase=phase,
        rv_cy=cy + rv_off * np.sin(rv_dir),
        rv_cx=cx + rv_off * np.cos(rv_dir),
        rv_u=s.per_patient(o.rv_depth) * epi * rv_size,
        rv_v=s.per_patient(o.rv_width) * epi * rv_size,
        rv_dir=rv_dir,
    )
    return t, has_rv, has_lv


def _cardiac_masks(
    t: dict[str, torch.Tensor], has_rv: np.ndarray, has_lv: np.ndarray, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Boolean masks (N, H, W) of the RV, the myocardium and the LV cavity (disjoint)."""
    n = t["cy"].numel()
    rows, cols = pixel_grid(size)
    # each shape is computed on the band of rows that can hold it (see _row_band): outside,
    # q >= (distance / largest semi-axis)^2 > (1 + wobble)^2 >= the wobble factor squared
    reach = torch.maximum(t["a"], t["b"]) + t["thick"]
    e0, e1 = _row_band(t["cy"], reach * (1 + float(t["wobble"].max())), size)
    u, v = ellipse_frame(rows[:, e0:e1], cols, t["cy"], t["cx"], t["angle"])
    shape_sq = wobble_factor(u, v, t["wobble"], t["phase"]).square_()
    lv = torch.zeros((n, size, size), dtype=torch.bool)
    epi_mask = torch.zeros((n, size, size), dtype=torch.bool)
    lv[:, e0:e1] = inside_ellipse_sq(u, v, t["a"], t["b"], shape_sq)
    epi_mask[:, e0:e1] = inside_ellipse_sq(u, v, t["a"] + t["thick"], t["b"] + t["thick"], shape_sq)
    del u, v, shape_sq
    r0, r1 = _row_band(t["rv_cy"], torch.maximum(t["rv_u"], t["rv_v"]), size)
    u, v = ellipse_frame(rows[:, r0:r1], cols, t["rv_cy"], t["rv_cx"], t["rv_dir"])
    rv = torch.zeros((n, size, size), dtype=torch.bool)
    rv[:, r0:r1] = inside_ellipse(u, v, t["rv_u"], t["rv_v"])
    del u, v
    rv &= ~epi_mask & torch.from_numpy(has_rv).view(-1, 1, 1)
    lv &= torch.from_numpy(has_lv).view(-1, 1, 1)
    return rv, epi_mask & ~lv, lv


def _cardiac_image(
    s: _Slices,
    size: int,
    o: ToyCardiacOptions,
    rv: torch.Tensor,
    myo: torch.Tensor,
    lv: torch.Tensor,
) -> torch.Tensor:
    """Blood, muscle, tissue with lung patches, air outside the body; bias, blur, noise."""
    rng, n = s.rng, s.n
    jitter = torch.from_numpy(rng.uniform(0.97, 1.03, (2, n)).astype(np.float32)).view(2, n, 1, 1)
    blood = torch.from_numpy(s.per_patient(o.blood_intensity).astype(np.float32)).view(n, 1, 1)
    muscle = torch.from_numpy(s.per_patient(o.myo_intensity).astype(np.float32)).view(n, 1, 1)
    image = _background(
        rng, s.patient, s.z, size, o.background_intensity, o.lung_intensity, o.lung_fraction
    )
    image.masked_fill_(~_body_mask(*pixel_grid(size), size), 0.03)
    torch.where(rv, blood * 0.95 * jitter[0], image, out=image)
    torch.where(lv, blood * jitter[0], image, out=image)
    torch.where(myo, muscle * jitter[1], image, out=image)
    _apply_bias(image, _bias(rng, s.patient, size, o.bias), s.patient)
    return _finish(rng, image, s.patient, size, o.blur, o.noise)


def _render_prostate(
    rng: np.random.Generator, n_patients: int, size: int, o: ToyProstateOptions
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Images (N, H, W) normalised per volume, labels (N, H, W), patient index, slice counts."""
    s = _Slices.draw(rng, n_patients, o.slices)
    t, present = _prostate_parameters(s, size, o)
    m = _prostate_masks(t, present, size)
    label = m.gland.to(torch.uint8)
    return _prostate_image(s, size, o, m), label, s.patient, s.counts


def _prostate_parameters(
    s: _Slices, size: int, o: ToyProstateOptions
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Per-slice gland ellipse and rectum (pixels, radians); (N, 1, 1) slices showing the gland."""
    rng, n_patients, patient, z = s.rng, s.n_patients, s.patient, s.z
    half = s.per_patient(o.gland_extent) / 2
    z_mid = 0.5 + rng.uniform(-0.1, 0.1, n_patients)[patient]
    section = np.sqrt(np.clip(1 - ((z - z_mid) / half) ** 2, 0, None))
    section = np.where(section > 0.3, section, 0.0)
    radius = s.per_patient(o.gland_radius) * size * np.maximum(section, 1e-3)
    aspect = s.per_patient(o.gland_aspect)
    cy = (0.52 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size
    cx = (0.5 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size
    angle = np.deg2rad(rng.uniform(-1, 1, n_patients) * o.rotation_deg)[patient]
    t = _float32_tensors(
        cy=cy,
        cx=cx,
        a=radius,
        b=radius * aspect,
        angle=angle,
        wobble=s.per_patient(o.wobble),
        phase=rng.uniform(0, 2 * np.pi, n_patients)[patient],
        rect_cy=cy + s.per_patient(o.gland_radius) * size * 1.35,
        rect_r=0.05 * size + 0 * cy,
    )
    return t, torch.from_numpy(section > 0).view(-1, 1, 1)


@dataclass(frozen=True)
class _ProstateMasks:
    """Masks (N, H, W) and the gland's normalised radius `rho` on rows [g0, g1)."""

    gland: torch.Tensor
    rectum: torch.Tensor  # outside the gland
    capsule: torch.Tensor  # the band 1 <= rho < 1.12 just outside the gland
    rho: torch.Tensor
    g0: int
    g1: int


def _prostate_masks(t: dict[str, torch.Tensor], present: torch.Tensor, size: int) -> _ProstateMasks:
    """Gland, rectum and capsule masks of each slice; the gland is drawn where `present`."""
    n = t["cy"].numel()
    rows, cols = pixel_grid(size)
    # rho and the rectum only matter near their centres: computed on bands of rows (the same
    # arithmetic per pixel); outside, rho >= 1.12 and the rectum is absent (see _row_band)
    wobble_max = float(t["wobble"].max())
    g0, g1 = _row_band(t["cy"], torch.maximum(t["a"], t["b"]) * 1.12 * (1 + wobble_max), size)
    if wobble_max >= 0.5:
        g0, g1 = 0, size
    rho = ellipse_radius(
        rows[:, g0:g1],
        cols,
        t["cy"],
        t["cx"],
        t["a"],
        t["b"],
        t["angle"],
        t["wobble"],
        t["phase"],
        2,
    )
    gland = torch.zeros((n, size, size), dtype=torch.bool)
    gland[:, g0:g1] = (rho < 1) & present
    r0, r1 = _row_band(t["rect_cy"], torch.maximum(t["rect_r"] * 1.3, t["rect_r"]), size)
    u, v = ellipse_frame(rows[:, r0:r1], cols, t["rect_cy"], t["cx"], torch.zeros(n))
    rectum = torch.zeros((n, size, size), dtype=torch.bool)
    rectum[:, r0:r1] = inside_ellipse(u, v, t["rect_r"] * 1.3, t["rect_r"])
    del u, v
    rectum &= ~gland
    capsule = torch.zeros((n, size, size), dtype=torch.bool)
    capsule[:, g0:g1] = (rho >= 1).logical_and_(rho < 1.12).logical_and_(present)
    return _ProstateMasks(gland, rectum, capsule, rho, g0, g1)


def _prostate_image(
    s: _Slices, size: int, o: ToyProstateOptions, m: _ProstateMasks
) -> torch.Tensor:
    """Textured gland with a bright rim, dark capsule and rectum, tissue; bias, blur, noise."""
    rng, n = s.rng, s.n
    texture_low = torch.from_numpy(rng.uniform(-0.5, 0.5, (n, 24, 24)).astype(np.float32))
    texture = smooth_field(texture_low, size)
    level = torch.from_numpy(s.per_patient(o.gland_intensity).astype(np.float32)).view(n, 1, 1)
    gland_image = texture.mul_(o.texture).add_(level)
    gland_image[:, m.g0 : m.g1].add_((m.rho > 0.75).float().mul_(o.rim_brightening))  # in gland
    image = _background(rng, s.patient, s.z, size, o.background_intensity)
    image.masked_fill_(~_body_mask(*pixel_grid(size), size), 0.03)
    image.masked_fill_(m.rectum, o.rectum_intensity)
    torch.where(m.capsule, image * (1 - o.capsule_darkening), image, out=image)
    torch.where(m.gland, gland_image, image, out=image)
    _apply_bias(image, _bias(rng, s.patient, size, o.bias), s.patient)
    return _finish(rng, image, s.patient, size, o.blur, o.noise)


def _finish(
    rng: np.random.Generator,
    image: torch.Tensor,
    patient: np.ndarray,
    size: int,
    blur: tuple[float, float],
    noise: tuple[float, float],
) -> torch.Tensor:
    """Blur (partial volume), Rician noise, then min-max per volume like the real data."""
    n = image.shape[0]
    sigma = torch.from_numpy((_uniform(rng, blur, n) * size).astype(np.float32))
    blurred = gaussian_blur(image, sigma)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    noise_sigma = torch.from_numpy(_uniform(rng, noise, n).astype(np.float32))
    scratch = image if image.is_contiguous() and blurred.data_ptr() != image.data_ptr() else None
    image = rician_noise(blurred, noise_sigma, gen, scratch=scratch, inplace=True)
    return minmax_per_volume(image, torch.from_numpy(patient), inplace=True)


RENDERERS = {"toy-cardiac": _render_cardiac, "toy-prostate": _render_prostate}
