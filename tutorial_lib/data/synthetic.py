"""Embedded toy datasets, written in the prepared on-disk format (deterministic, vectorised).

- `toy-cardiac`: 4 classes like ACDC (background, RV, myocardium, LV cavity): patients of
  several short-axis slices, shrinking from base to apex, RV and LV absent on some apex slices.
- `toy-prostate`: 2 classes like PROMISE12: a textured ellipsoidal gland in noisy tissue,
  absent from the volume's first and last slices.

`generate_toy(name, size=..., n_patients=..., seed=...)` returns the volumes in memory;
`make_toy_dataset(...)` writes them; `ensure_toy_dataset(...)` caches the folder by its
parameters. Shapes are set by `ToyCardiacOptions` / `ToyProstateOptions` (fractions of the
image side, so any size works).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from tutorial_lib.data.splits import split_patients
from tutorial_lib.data.storage import (
    MANIFEST,
    VolumeRecord,
    atomic_directory,
    data_dir,
    write_manifest,
    write_volume,
)
from tutorial_lib.data.synthetic_options import (
    CLASSES,
    ToyCardiacOptions,
    ToyProstateOptions,
    make_options,
)
from tutorial_lib.data.synthetic_render import (
    ellipse_frame,
    ellipse_radius,
    gaussian_blur,
    inside_ellipse,
    minmax_per_volume,
    pixel_grid,
    rician_noise,
    smooth_field,
    wobble_factor,
)

GENERATOR_VERSION = 3  # bump when the generated pixels change, so caches are refreshed
CHUNK_PIXELS = 4_000_000  # slices are rendered in chunks of about this many pixels
FIELD_GRID = 6  # low-resolution grid of the smooth background fields


@dataclass
class ToyVolume:
    """One generated volume: image float32 (S, H, W) in [0, 1], label uint8 (S, H, W)."""

    id: str
    patient: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]


def toy_spacing(name: str, size: int) -> tuple[float, float, float]:
    """A plausible (slice, row, col) spacing in mm: ACDC-like or PROMISE12-like fields of view."""
    if name == "toy-cardiac":
        return (10.0, 1.5625 * 256 / size, 1.5625 * 256 / size)
    return (3.6, 0.625 * 256 / size, 0.625 * 256 / size)


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


def _bias(rng: np.random.Generator, patient: np.ndarray, size: int, amplitude: float):
    n_patients = int(patient.max()) + 1
    low = rng.uniform(-1, 1, (n_patients, 3, 3))[patient].astype(np.float32)
    return 1 + amplitude * smooth_field(torch.from_numpy(low), size, mode="bilinear")


def _body_mask(rows, cols, size: int) -> torch.Tensor:
    """The body outline (1, H, W): an ellipse filling most of the image (outside: air)."""
    half = torch.full((1,), 0.47 * size)
    centre = torch.full((1,), (size - 1) / 2)
    u, v = ellipse_frame(rows, cols, centre, centre, torch.zeros(1))
    return inside_ellipse(u, v, half, half * 0.9)


def _render_cardiac(
    rng: np.random.Generator, n_patients: int, size: int, o: ToyCardiacOptions
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Images (N, H, W) before normalisation, labels (N, H, W), patient index, slice counts."""
    counts, patient, _, z = _slice_positions(rng, n_patients, o.slices)
    n = patient.size

    def per_patient(bounds):
        return _uniform(rng, bounds, n_patients)[patient]

    scale = 1 - (1 - per_patient(o.apex_scale)) * z**1.5
    radius = per_patient(o.lv_radius) * size * scale
    elong = np.sqrt(per_patient(o.lv_elongation))
    thick = per_patient(o.myo_thickness) * size * (1 + 0.15 * z)
    drift = rng.uniform(-0.02, 0.02, (2, n_patients))[:, patient] * size * z
    cy = (0.5 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size + drift[0]
    cx = (0.55 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size + drift[1]
    turn = np.deg2rad(rng.uniform(-1, 1, n_patients) * o.rotation_deg)[patient]
    ellipse_angle = rng.uniform(0, np.pi, n_patients)[patient] + 0.2 * z
    wobble, phase = per_patient(o.wobble), rng.uniform(0, 2 * np.pi, n_patients)[patient]
    has_rv = z <= per_patient(o.rv_extent)
    is_apex = z >= 1
    has_lv = ~(is_apex & (rng.random(n_patients)[patient] < o.apex_lv_absent_prob))

    epi = (radius * (elong + 1 / elong) / 2) + thick  # mean epicardial radius
    rv_dir = np.pi + turn + 0.1 * z
    rv_size = 1 - 0.35 * z
    rv_off = per_patient(o.rv_offset) * epi
    t = {  # per-slice parameters as float32 tensors
        k: torch.from_numpy(np.asarray(v, dtype=np.float32))
        for k, v in dict(
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
            rv_u=per_patient(o.rv_depth) * epi * rv_size,
            rv_v=per_patient(o.rv_width) * epi * rv_size,
            rv_dir=rv_dir,
        ).items()
    }
    rows, cols = pixel_grid(size)
    u, v = ellipse_frame(rows, cols, t["cy"], t["cx"], t["angle"])
    shape = wobble_factor(u, v, t["wobble"], t["phase"])
    lv = inside_ellipse(u, v, t["a"], t["b"], shape)
    epi_mask = inside_ellipse(u, v, t["a"] + t["thick"], t["b"] + t["thick"], shape)
    del u, v, shape
    u, v = ellipse_frame(rows, cols, t["rv_cy"], t["rv_cx"], t["rv_dir"])
    rv = inside_ellipse(u, v, t["rv_u"], t["rv_v"])
    del u, v
    rv &= ~epi_mask & torch.from_numpy(has_rv).view(-1, 1, 1)
    lv &= torch.from_numpy(has_lv).view(-1, 1, 1)
    myo = epi_mask & ~lv

    label = torch.zeros((n, size, size), dtype=torch.uint8)
    label[rv], label[myo], label[lv] = 1, 2, 3

    jitter = torch.from_numpy(rng.uniform(0.97, 1.03, (2, n)).astype(np.float32)).view(2, n, 1, 1)
    blood = torch.from_numpy(per_patient(o.blood_intensity).astype(np.float32)).view(n, 1, 1)
    muscle = torch.from_numpy(per_patient(o.myo_intensity).astype(np.float32)).view(n, 1, 1)
    image = _background(
        rng, patient, z, size, o.background_intensity, o.lung_intensity, o.lung_fraction
    )
    image = torch.where(_body_mask(rows, cols, size), image, torch.tensor(0.03))
    image = torch.where(rv, blood * 0.95 * jitter[0], image)
    image = torch.where(lv, blood * jitter[0], image)
    image = torch.where(myo, muscle * jitter[1], image)
    image = image * _bias(rng, patient, size, o.bias)
    return _finish(rng, image, patient, size, o.blur, o.noise), label, patient, counts


def _render_prostate(
    rng: np.random.Generator, n_patients: int, size: int, o: ToyProstateOptions
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    counts, patient, _, z = _slice_positions(rng, n_patients, o.slices)
    n = patient.size

    def per_patient(bounds):
        return _uniform(rng, bounds, n_patients)[patient]

    half = per_patient(o.gland_extent) / 2
    z_mid = 0.5 + rng.uniform(-0.1, 0.1, n_patients)[patient]
    section = np.sqrt(np.clip(1 - ((z - z_mid) / half) ** 2, 0, None))
    section = np.where(section > 0.3, section, 0.0)
    radius = per_patient(o.gland_radius) * size * np.maximum(section, 1e-3)
    aspect = per_patient(o.gland_aspect)
    cy = (0.52 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size
    cx = (0.5 + rng.uniform(-1, 1, n_patients) * o.position_jitter)[patient] * size
    angle = np.deg2rad(rng.uniform(-1, 1, n_patients) * o.rotation_deg)[patient]
    t = {
        k: torch.from_numpy(np.asarray(v, dtype=np.float32))
        for k, v in dict(
            cy=cy,
            cx=cx,
            a=radius,
            b=radius * aspect,
            angle=angle,
            wobble=per_patient(o.wobble),
            phase=rng.uniform(0, 2 * np.pi, n_patients)[patient],
            rect_cy=cy + per_patient(o.gland_radius) * size * 1.35,
            rect_r=0.05 * size + 0 * cy,
        ).items()
    }
    rows, cols = pixel_grid(size)
    rho = ellipse_radius(
        rows, cols, t["cy"], t["cx"], t["a"], t["b"], t["angle"], t["wobble"], t["phase"], 2
    )
    present = torch.from_numpy(section > 0).view(-1, 1, 1)
    gland = (rho < 1) & present
    u, v = ellipse_frame(rows, cols, t["rect_cy"], t["cx"], torch.zeros(n))
    rectum = inside_ellipse(u, v, t["rect_r"] * 1.3, t["rect_r"])
    del u, v
    label = gland.to(torch.uint8)

    texture_low = torch.from_numpy(rng.uniform(-0.5, 0.5, (n, 24, 24)).astype(np.float32))
    texture = smooth_field(texture_low, size)
    level = torch.from_numpy(per_patient(o.gland_intensity).astype(np.float32)).view(n, 1, 1)
    gland_image = level + o.texture * texture + o.rim_brightening * (rho > 0.75).float()
    image = _background(rng, patient, z, size, o.background_intensity)
    image = torch.where(_body_mask(rows, cols, size), image, torch.tensor(0.03))
    image = torch.where(rectum & ~gland, torch.tensor(o.rectum_intensity), image)
    capsule = (rho >= 1) & (rho < 1.12) & present
    image = torch.where(capsule, image * (1 - o.capsule_darkening), image)
    image = torch.where(gland, gland_image, image)
    image = image * _bias(rng, patient, size, o.bias)
    return _finish(rng, image, patient, size, o.blur, o.noise), label, patient, counts


def _finish(rng, image, patient, size, blur, noise) -> torch.Tensor:
    """Blur (partial volume), Rician noise, then min-max per volume like the real data."""
    n = image.shape[0]
    sigma = torch.from_numpy((_uniform(rng, blur, n) * size).astype(np.float32))
    image = gaussian_blur(image, sigma)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    image = rician_noise(image, torch.from_numpy(_uniform(rng, noise, n).astype(np.float32)), gen)
    return minmax_per_volume(image, torch.from_numpy(patient))


RENDERERS = {"toy-cardiac": _render_cardiac, "toy-prostate": _render_prostate}


def generate_toy(
    name: str, *, size: int = 256, n_patients: int = 20, seed: int = 0, **shape_options
) -> list[ToyVolume]:
    """Generate the volumes of toy dataset `name` in memory (deterministic for a given seed).

    Patients are rendered in chunks of ~CHUNK_PIXELS pixels; each chunk gets its own seeded
    stream, so the result does not depend on the machine.
    """
    options = make_options(name, **shape_options)
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"expected an integer image size >= 16; got {size!r}")
    if not isinstance(n_patients, int) or n_patients < 1:
        raise ValueError(f"expected n_patients >= 1; got {n_patients!r}")
    spacing = toy_spacing(name, size)
    per_chunk = max(1, CHUNK_PIXELS // (size * size * int(options.slices[1])))
    prefix = "patient" if name == "toy-cardiac" else "case"
    volumes: list[ToyVolume] = []
    with torch.random.fork_rng(devices=[]), torch.inference_mode():
        for start in range(0, n_patients, per_chunk):
            stop = min(n_patients, start + per_chunk)
            rng = np.random.default_rng([seed, start])
            image, label, patient, counts = RENDERERS[name](rng, stop - start, size, options)
            image_np, label_np = image.numpy(), label.numpy()
            offsets = np.concatenate([[0], np.cumsum(counts)])
            for i in range(stop - start):
                pid = f"{prefix}{start + i + 1:03d}"
                sl = slice(offsets[i], offsets[i + 1])
                volumes.append(
                    ToyVolume(pid, pid, image_np[sl].copy(), label_np[sl].copy(), spacing)
                )
    return volumes


def default_split_sizes(n_patients: int) -> tuple[int, int]:
    """Validation and test patients: ~10 % and ~20 % like ACDC's 10/20 of 100, at least 1."""
    if n_patients < 3:
        raise ValueError(f"expected n_patients >= 3 for a train/val/test split; got {n_patients}")
    return max(1, round(0.1 * n_patients)), max(1, round(0.2 * n_patients))


def make_toy_dataset(
    name: str,
    root: str | os.PathLike,
    *,
    size: int = 256,
    n_patients: int = 20,
    seed: int = 0,
    n_val: int | None = None,
    n_test: int | None = None,
    overwrite: bool = False,
    **shape_options,
) -> Path:
    """Generate toy dataset `name` and write it to `root` in the prepared format; return root.

    Patients are split like the authors split real patients (seeded shuffle); `n_val` and
    `n_test` default to ~10 % and ~20 % of `n_patients`. Written atomically.
    """
    options = make_options(name, **shape_options)
    default_val, default_test = default_split_sizes(n_patients)
    n_val = default_val if n_val is None else n_val
    n_test = default_test if n_test is None else n_test
    volumes = generate_toy(name, size=size, n_patients=n_patients, seed=seed, **shape_options)
    split_of = {
        pid: split
        for split, ids in split_patients([v.patient for v in volumes], n_val, n_test, seed).items()
        for pid in ids
    }
    records = []
    with atomic_directory(root, overwrite=overwrite) as tmp:
        for v in volumes:
            split = split_of[v.patient]
            write_volume(tmp / split, v.id, v.image, v.label, v.spacing)
            records.append(
                VolumeRecord(
                    v.id, v.patient, split, len(v.image), list(v.image.shape), list(v.spacing)
                )
            )
        write_manifest(
            tmp,
            name,
            CLASSES[name],
            size,
            records,
            generator={
                "version": GENERATOR_VERSION,
                "seed": seed,
                "n_patients": n_patients,
                "options": asdict(options),
            },
        )
    return Path(root)


def default_cache_dir() -> Path:
    """$TUTORIAL_DATA_DIR/toy, or ~/.cache/tutorial_lib/toy when the variable is unset."""
    return data_dir() / "toy"


def ensure_toy_dataset(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    *,
    size: int = 256,
    n_patients: int = 20,
    seed: int = 0,
    n_val: int | None = None,
    n_test: int | None = None,
    **shape_options,
) -> Path:
    """Return the folder of toy dataset `name` for these parameters, generating it once.

    The folder name carries a hash of every parameter (resolved options included, and the
    generator's version), so a change of any parameter gives a new folder. Safe when two
    processes race: each writes a temporary folder and the first rename wins.
    """
    options = make_options(name, **shape_options)
    key = json.dumps(
        dict(
            name=name,
            size=size,
            n_patients=n_patients,
            seed=seed,
            n_val=n_val,
            n_test=n_test,
            options=asdict(options),
            version=GENERATOR_VERSION,
        ),
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / f"{name}-{size}px-{n_patients}p-seed{seed}-{digest}"
    if (target / MANIFEST).is_file():
        return target
    staging = cache / f".{target.name}.{os.getpid()}.staging"
    shutil.rmtree(staging, ignore_errors=True)
    make_toy_dataset(
        name,
        staging,
        size=size,
        n_patients=n_patients,
        seed=seed,
        n_val=n_val,
        n_test=n_test,
        **shape_options,
    )
    try:
        os.replace(staging, target)
    except OSError:  # another process finished first
        shutil.rmtree(staging, ignore_errors=True)
        if not (target / MANIFEST).is_file():
            raise
    return target


def slices_per_second(name: str, size: int, n_patients: int = 50) -> float:
    """Measure the generator's speed in 2-D slices per second (one run, wall clock)."""
    import time

    start = time.perf_counter()
    volumes = generate_toy(name, size=size, n_patients=n_patients, seed=0)
    elapsed = time.perf_counter() - start
    return sum(len(v.image) for v in volumes) / max(elapsed, 1e-9)


__all__ = [
    "ToyCardiacOptions",
    "ToyProstateOptions",
    "ToyVolume",
    "generate_toy",
    "make_toy_dataset",
    "ensure_toy_dataset",
    "toy_spacing",
    "slices_per_second",
]
