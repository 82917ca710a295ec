"""Slice, normalise, resize and split a raw dataset into the prepared format, like the authors.

Faithful by default (docs/method.md §5, the authors' `slice_acdc.py` / `slice_promise.py`):
- min-max of each 3-D volume to [0, 1];
- every slice resized to size x size with scikit-image `resize(mode="constant",
  anti_aliasing=False)`: image bilinear; labels as the authors resized each dataset
  (`DatasetSpec.label_resize`): ACDC nearest, PROMISE12 bilinear then truncated to integers
  (their `slice_promise.py`; it slightly erodes the masks). `label_resize="nearest"` or
  `"bilinear-truncate"` chooses; the manifest's options record which (`label_resize`). MSD
  prostate, which the authors did not use, is resized nearest;
- patients split with `random.seed(seed)` shuffle of the sorted ids: first `n_val` validation,
  next `n_test` test, the rest training.
Difference: the authors stored 8-bit PNG slices; we store float32 (no 8-bit quantisation).
Everything is written into a temporary folder that becomes `dest` only when all volumes are
done, so a corrupt or missing file leaves no partial output. `overwrite` replaces an earlier
output only (a folder holding nothing but what its manifest lists), and `dest` may neither
contain `src` nor lie inside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.transform import resize
from tqdm.auto import tqdm

from tutorial_lib.data.readers import (
    RawVolume,
    VolumeSource,
    find_acdc,
    find_msd_prostate,
    find_promise12,
    read_acdc,
    read_msd_prostate,
    read_promise12,
)
from tutorial_lib.data.splits import split_patients
from tutorial_lib.data.storage import (
    CorruptFileError,
    VolumeRecord,
    atomic_directory,
    write_manifest,
    write_volume,
)

LABEL_RESIZE = ("nearest", "bilinear-truncate")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    classes: tuple[str, ...]
    default_val: int
    default_test: int
    find: Callable[..., list[VolumeSource]]
    read: Callable[[VolumeSource], RawVolume]
    notes: tuple[str, ...] = ()
    looks_for: str = "raw volumes"  # what `find` looks for, named when it finds none
    label_resize: str = "nearest"  # how the authors resized the labels (LABEL_RESIZE)


SPECS: dict[str, DatasetSpec] = {
    "acdc": DatasetSpec(
        "acdc",
        ("background", "rv", "myocardium", "lv"),
        10,
        20,
        find_acdc,
        read_acdc,
        ("ED and ES frames of the training patients; slices along the last NIfTI axis",),
        "patientNNN folders",
    ),
    "promise12": DatasetSpec(
        "promise12",
        ("background", "prostate"),
        5,
        10,
        find_promise12,
        read_promise12,
        ("slices along the first axis of the SimpleITK array",),
        "CaseNN.mhd files",
        "bilinear-truncate",
    ),
    "msd-prostate": DatasetSpec(
        "msd-prostate",
        ("background", "prostate"),
        3,
        6,
        find_msd_prostate,
        read_msd_prostate,
        (
            "image channel 0 (T2) of the 4-D NIfTI; channel 1 (ADC) is dropped",
            "labels 1 (peripheral zone) and 2 (transition zone) merged into prostate",
            "slices along the last NIfTI axis",
        ),
        "imagesTr/prostate_NN.nii.gz files",
    ),
}


def get_spec(name: str) -> DatasetSpec:
    if name not in SPECS:
        raise ValueError(f"dataset: expected a dataset name in {sorted(SPECS)}, got {name!r}")
    return SPECS[name]


def normalise_volume(image: np.ndarray, path: Path | str = "volume") -> np.ndarray:
    """Min-max of the whole 3-D volume to [0, 1], float32 (the authors' `norm_arr`, no 8 bits)."""
    v = image.astype(np.float64)
    lo, hi = v.min(), v.max()
    if not np.isfinite([lo, hi]).all() or hi <= lo:
        raise CorruptFileError(
            f"{path}: expected a non-constant finite image, got min {lo}, max {hi}"
        )
    return ((v - lo) / (hi - lo)).astype(np.float32)


def resize_slices(
    image: np.ndarray, label: np.ndarray, size: int, *, label_quirk: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Resize (S, H, W) image and label to (S, size, size): bilinear / nearest.

    `label_quirk`: labels bilinear then truncated towards zero (authors' PROMISE12 script).
    """
    shape = (image.shape[0], size, size)
    common = dict(mode="constant", preserve_range=True, anti_aliasing=False)
    out_image = resize(image, shape, order=1, **common).astype(np.float32)
    out_label = resize(label.astype(np.float64), shape, order=1 if label_quirk else 0, **common)
    return np.clip(out_image, 0, 1), out_label.astype(np.uint8)


def prepare_volume(raw: RawVolume, size: int, source: VolumeSource, *, label_quirk: bool):
    """Normalised, resized arrays and the spacing after resizing for one raw volume."""
    image = normalise_volume(raw.image, source.image)
    h, w = raw.image.shape[1:]
    image, label = resize_slices(image, raw.label, size, label_quirk=label_quirk)
    spacing = (raw.spacing[0], raw.spacing[1] * h / size, raw.spacing[2] * w / size)
    return image, label, spacing


def prepare_dataset(
    name: str,
    src: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    size: int = 256,
    n_val: int | None = None,
    n_test: int | None = None,
    seed: int = 0,
    label_resize: str | None = None,
    include_testing: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> Path:
    """Prepare raw dataset `name` found anywhere below `src` into `dest`; return `dest`.

    `label_resize`: "nearest" or "bilinear-truncate"; None = the authors' way for `name`
    (`DatasetSpec.label_resize`: bilinear-truncate for PROMISE12, nearest otherwise).
    """
    spec = get_spec(name)
    label_resize = spec.label_resize if label_resize is None else label_resize
    if label_resize not in LABEL_RESIZE:
        raise ValueError(f"label_resize: expected one of {LABEL_RESIZE}, got {label_resize!r}")
    label_quirk = label_resize == "bilinear-truncate"
    src, dest = Path(src), Path(dest)
    check_apart(src, dest)
    sources = find_sources(spec, src, size, include_testing=include_testing)
    n_val = spec.default_val if n_val is None else n_val
    n_test = spec.default_test if n_test is None else n_test
    splits = split_patients([s.patient for s in sources], n_val, n_test, seed)
    split_of = {p: split for split, ids in splits.items() for p in ids}
    log(
        f"{name}: {len(sources)} volumes of {len(split_of)} patients -> "
        + ", ".join(f"{k} {len(v)}" for k, v in splits.items())
    )
    records = []
    with atomic_directory(dest, overwrite=overwrite) as tmp:
        for source in _progress(sources, name, progress):
            split = split_of[source.patient]
            records.append(
                write_prepared_volume(tmp / split, spec, source, split, src, size, label_quirk)
            )
        options = {"size": size, "n_val": n_val, "n_test": n_test, "seed": seed}
        options.update(label_resize=label_resize, include_testing=include_testing)
        write_manifest(
            tmp, name, spec.classes, size, records, options=options, notes=list(spec.notes)
        )
    log(f"Wrote {len(records)} volumes to {dest}")
    return dest


def check_apart(src: Path, dest: Path) -> None:
    """ValueError when one of `src` and `dest` is, or lies inside, the other (links resolved):
    replacing `dest` must never touch the raw data."""
    a, b = src.resolve(), dest.resolve()
    if a == b or a.is_relative_to(b) or b.is_relative_to(a):
        raise ValueError(
            f"--dest: expected a folder apart from --src {src} (neither inside the other), "
            f"got {dest}"
        )


def find_sources(
    spec: DatasetSpec, src: Path, size: int, *, include_testing: bool = False
) -> list[VolumeSource]:
    """The raw volumes of `spec` below `src` (checks `src` and `size` first)."""
    if not src.is_dir():
        raise FileNotFoundError(
            f"--src: expected a folder holding the raw {spec.name} data; {src} is not one"
        )
    if size < 8:
        raise ValueError(f"--size: expected >= 8, got {size}")
    kwargs = {"include_testing": include_testing} if spec.name == "acdc" else {}
    sources = spec.find(src, **kwargs)
    if not sources:
        raise FileNotFoundError(f"expected {spec.looks_for} below {src}; found none")
    return sources


def write_prepared_volume(
    folder: Path,
    spec: DatasetSpec,
    source: VolumeSource,
    split: str,
    src: Path,
    size: int,
    label_quirk: bool,
) -> VolumeRecord:
    """Read, normalise and resize one raw volume, write it to `folder`; return its record."""
    raw = spec.read(source)
    image, label, spacing = prepare_volume(raw, size, source, label_quirk=label_quirk)
    write_volume(folder, source.id, image, label, spacing)
    return VolumeRecord(
        source.id,
        source.patient,
        split,
        len(image),
        list(raw.image.shape),
        [float(s) for s in spacing],
        extra={
            "original_spacing": [float(s) for s in raw.spacing],
            "source": str(source.image.relative_to(src)),
        },
    )


def _progress(items, name: str, enabled: bool):
    if not enabled:
        return items
    return tqdm(items, desc=f"prepare {name}", unit="volume")


def prepared_bytes(n_slices: int, size: int = 256) -> int:
    """Disk size of prepared slices: float32 image + uint8 label per pixel (npz adds ~1 KB
    per volume)."""
    return n_slices * size * size * (4 + 1)
