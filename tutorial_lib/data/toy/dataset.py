"""The toy datasets: generated in memory, written in the prepared on-disk format, cached.

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
from tutorial_lib.data.toy.anatomy import RENDERERS
from tutorial_lib.data.toy.options import CLASSES, make_options

GENERATOR_VERSION = 3  # bump when the generated pixels change, so caches are refreshed
CHUNK_PIXELS = 4_000_000  # slices are rendered in chunks of about this many pixels


@dataclass
class ToyVolume:
    """One generated volume: image float32 (S, H, W) in [0, 1], label uint8 (S, H, W)."""

    id: str
    patient: str
    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]


def toy_spacing(name: str, size: int) -> tuple[float, float, float]:
    """A plausible (slice, row, col) spacing in mm: ACDC-like or PROMISE12-like fields of view.

    Taught in notebook 04b."""
    if name == "toy-cardiac":
        return (10.0, 1.5625 * 256 / size, 1.5625 * 256 / size)
    return (3.6, 0.625 * 256 / size, 0.625 * 256 / size)


def generate_toy(
    name: str, *, size: int = 256, n_patients: int = 20, seed: int = 0, **shape_options
) -> list[ToyVolume]:
    """Generate the volumes of toy dataset `name` in memory (deterministic for a given seed).

    Patients are rendered in chunks of ~CHUNK_PIXELS pixels; each chunk gets its own seeded
    stream, so the result does not depend on the machine.
    """
    options = make_options(name, **shape_options)
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"size: expected an integer image size >= 16, got {size!r}")
    if not isinstance(n_patients, int) or n_patients < 1:
        raise ValueError(f"n_patients: expected an integer >= 1, got {n_patients!r}")
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
        raise ValueError(f"n_patients: expected >= 3 for a train/val/test split, got {n_patients}")
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
    Taught in notebook 00.
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
