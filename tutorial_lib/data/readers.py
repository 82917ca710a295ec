"""Find and read the raw volumes of ACDC (NIfTI), PROMISE12 (MetaImage) and MSD prostate (NIfTI).

Every reader returns a `RawVolume` with the slices first: image and label (S, H, W) and the
spacing (slice, row, col) in mm. ACDC and MSD are sliced along the last NIfTI axis, PROMISE12
along the first axis of the SimpleITK array, as in the authors' scripts. A file that is
missing or cannot be read raises an error that names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tutorial_lib.data.storage import CorruptFileError


@dataclass(frozen=True)
class VolumeSource:
    """Where one volume's image and label are, and which patient it belongs to."""

    id: str
    patient: str
    image: Path
    label: Path


@dataclass
class RawVolume:
    image: np.ndarray  # (S, H, W), original intensities
    label: np.ndarray  # (S, H, W) uint8
    spacing: tuple[float, float, float]  # (slice, row, col) mm


def _integer_labels(values: np.ndarray, allowed: set[int], path: Path) -> np.ndarray:
    if not np.array_equal(values, np.round(values)):
        raise CorruptFileError(f"{path}: expected integer labels, got non-integer values")
    found = set(np.unique(values).astype(int).tolist())
    if not found <= allowed:
        raise CorruptFileError(
            f"{path}: expected label values in {sorted(allowed)}, got {sorted(found)}"
        )
    return values.astype(np.uint8)


def _read_nifti(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    import nibabel as nib  # here: PROMISE12 (MetaImage) needs only SimpleITK

    if not path.is_file():
        raise FileNotFoundError(f"expected the file {path}; it is missing")
    try:
        img = nib.load(str(path))
        return np.asarray(img.dataobj), tuple(float(z) for z in img.header.get_zooms())
    except Exception as exc:  # nibabel raises many types for truncated/corrupt files
        raise CorruptFileError(
            f"{path}: expected a readable file, got {type(exc).__name__}: {exc}"
        ) from exc


def _read_metaimage(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    import SimpleITK as sitk  # here: ACDC and MSD (NIfTI) need only nibabel

    if not path.is_file():
        raise FileNotFoundError(f"expected the file {path}; it is missing")
    try:
        img = sitk.ReadImage(str(path))
        return sitk.GetArrayFromImage(img), tuple(float(s) for s in img.GetSpacing())
    except Exception as exc:  # SimpleITK raises RuntimeError for a missing/short .raw
        raise CorruptFileError(
            f"{path}: expected a readable file, got {type(exc).__name__}: {exc}"
        ) from exc


def _same_shape(image: np.ndarray, label: np.ndarray, source: VolumeSource) -> None:
    if image.shape != label.shape:
        raise CorruptFileError(
            f"{source.label}: expected the label's shape to match the image {source.image} "
            f"{image.shape}, got {label.shape}"
        )


def read_acdc(source: VolumeSource) -> RawVolume:
    """ACDC frame: NIfTI (X, Y, Z) int16 image, uint8 label {0: bg, 1: RV, 2: Myo, 3: LV}."""
    image, zooms = _read_nifti(source.image)
    label, _ = _read_nifti(source.label)
    image, label = np.squeeze(image), np.squeeze(label)
    if image.ndim != 3:
        raise CorruptFileError(f"{source.image}: expected a 3-D volume, got shape {image.shape}")
    _same_shape(image, label, source)
    label = _integer_labels(label, {0, 1, 2, 3}, source.label)
    return RawVolume(
        np.moveaxis(image, -1, 0), np.moveaxis(label, -1, 0), (zooms[2], zooms[0], zooms[1])
    )


def read_promise12(
    source: VolumeSource, *, label_values: set[int] = frozenset({0, 1})
) -> RawVolume:
    """PROMISE12 case: MetaImage, array (Z, Y, X) from SimpleITK, labels {0, 1}."""
    image, spacing = _read_metaimage(source.image)
    label, _ = _read_metaimage(source.label)
    if image.ndim != 3:
        raise CorruptFileError(f"{source.image}: expected a 3-D volume, got shape {image.shape}")
    _same_shape(image, label, source)
    label = _integer_labels(label, set(label_values), source.label)
    return RawVolume(image, label, (spacing[2], spacing[1], spacing[0]))


def read_msd_prostate(source: VolumeSource) -> RawVolume:
    """MSD Task05: 4-D NIfTI (X, Y, Z, 2); channel 0 is T2 (1 is ADC). Labels 1 (PZ) and 2
    (TZ) are merged into one class, prostate, to match PROMISE12."""
    image, zooms = _read_nifti(source.image)
    label, _ = _read_nifti(source.label)
    if image.ndim == 4:
        image = image[..., 0]
    if image.ndim != 3:
        raise CorruptFileError(
            f"{source.image}: expected (X, Y, Z, 2) or (X, Y, Z), got {image.shape}"
        )
    _same_shape(image, label, source)
    label = (_integer_labels(label, {0, 1, 2}, source.label) > 0).astype(np.uint8)
    return RawVolume(
        np.moveaxis(image, -1, 0), np.moveaxis(label, -1, 0), (zooms[2], zooms[0], zooms[1])
    )


ACDC_FRAME = re.compile(r"^(patient\d{3})_frame(\d{2})\.nii(\.gz)?$")
PROMISE_CASE = re.compile(r"^(Case\d+)\.mhd$")
MSD_CASE = re.compile(r"^(prostate_\d+)\.nii(\.gz)?$")


def _unique(sources: list[VolumeSource], src: Path) -> list[VolumeSource]:
    seen: dict[str, Path] = {}
    for s in sources:
        if s.id in seen:
            raise ValueError(
                f"{src}: expected one file per volume id, got volume {s.id} twice: {seen[s.id]} "
                f"and {s.image}"
            )
        seen[s.id] = s.image
    return sorted(sources, key=lambda s: s.id)


def find_acdc(src: Path, *, include_testing: bool = False) -> list[VolumeSource]:
    """Every `patientNNN/patientNNN_frameNN.nii[.gz]` with its `_gt` below `src`.

    Folders below a `testing` folder are skipped unless `include_testing` (the authors used
    the 100 training patients only).
    """
    sources = []
    for folder in sorted(p for p in src.rglob("patient[0-9][0-9][0-9]") if p.is_dir()):
        if "testing" in folder.relative_to(src).parts and not include_testing:
            continue
        for path in sorted(folder.iterdir()):
            match = ACDC_FRAME.match(path.name)
            if not match or match.group(1) != folder.name:
                continue
            suffix = match.group(3) or ""
            label = path.with_name(f"{match.group(1)}_frame{match.group(2)}_gt.nii{suffix}")
            if not label.is_file():
                raise FileNotFoundError(
                    f"expected the ground truth {label} for {path}; it is missing"
                )
            vid = f"{match.group(1)}_frame{match.group(2)}"
            sources.append(VolumeSource(vid, match.group(1), path, label))
    return _unique(sources, src)


def find_promise12(src: Path) -> list[VolumeSource]:
    """Every `CaseNN.mhd` with its `CaseNN_segmentation.mhd` below `src`."""
    sources = []
    for path in sorted(src.rglob("Case*.mhd")):
        match = PROMISE_CASE.match(path.name)
        if not match or path.name.startswith("._"):
            continue
        label = path.with_name(f"{match.group(1)}_segmentation.mhd")
        if not label.is_file():
            raise FileNotFoundError(f"expected the segmentation {label} for {path}; it is missing")
        sources.append(VolumeSource(match.group(1), match.group(1), path, label))
    return _unique(sources, src)


def find_msd_prostate(src: Path) -> list[VolumeSource]:
    """Every `imagesTr/prostate_NN.nii.gz` with its `labelsTr/` twin below `src` (macOS `._`
    files in the archive are ignored)."""
    sources = []
    for path in sorted(src.rglob("imagesTr/prostate_*.nii*")):
        match = MSD_CASE.match(path.name)
        if not match:
            continue
        label = path.parent.parent / "labelsTr" / path.name
        if not label.is_file():
            raise FileNotFoundError(f"expected the label {label} for {path}; it is missing")
        sources.append(VolumeSource(match.group(1), match.group(1), path, label))
    return _unique(sources, src)
