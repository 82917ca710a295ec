"""The prepared on-disk format shared by real and synthetic data, and atomic writes.

Layout (see docs/design.md, "Data on disk")::

    ROOT/{train,val,test}/<volume_id>.npz   image float32 (S, H, W) in [0, 1],
                                            label uint8 (S, H, W), spacing float64 (3,) mm
    ROOT/manifest.json                      {"dataset", "classes", "size", "volumes": [...]}

Every write goes to a temporary path in the same folder first and is then moved with
`os.replace`, so a reader never sees a half-written file or folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"


def data_dir() -> Path:
    """Where downloads, raw and toy data go: $TUTORIAL_DATA_DIR, else ~/.cache/tutorial_lib."""
    env = os.environ.get("TUTORIAL_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "tutorial_lib"


@dataclass
class VolumeRecord:
    """One volume's entry in the manifest."""

    id: str
    patient: str
    split: str
    n_slices: int
    original_shape: list[int]
    spacing: list[float]
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        record = asdict(self)
        extra = record.pop("extra")
        record.update(extra)
        return record


def check_volume(image: np.ndarray, label: np.ndarray, spacing: Sequence[float]) -> None:
    """Raise ValueError unless image/label/spacing follow the prepared format."""
    if image.ndim != 3 or label.shape != image.shape:
        raise ValueError(
            f"image, label: expected the same shape (S, H, W), got {image.shape} and {label.shape}"
        )
    if image.dtype != np.float32 or label.dtype != np.uint8:
        raise ValueError(
            f"image, label: expected a float32 image and a uint8 label, got {image.dtype} and "
            f"{label.dtype}"
        )
    if len(spacing) != 3:
        raise ValueError(f"spacing: expected 3 values (slice, row, col) in mm, got {spacing!r}")


def write_volume(
    split_dir: Path, volume_id: str, image: np.ndarray, label: np.ndarray, spacing: Sequence[float]
) -> Path:
    """Write `<split_dir>/<volume_id>.npz` atomically (uncompressed, so loading is fast)."""
    check_volume(image, label, spacing)
    check_volume_id(volume_id, "volume_id")
    split_dir.mkdir(parents=True, exist_ok=True)
    target = split_dir / f"{volume_id}.npz"
    fd, tmp = tempfile.mkstemp(prefix=f".{volume_id}.", suffix=".npz.tmp", dir=split_dir)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(
                handle, image=image, label=label, spacing=np.asarray(spacing, dtype=np.float64)
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def write_manifest(
    root: Path,
    dataset: str,
    classes: Sequence[str],
    size: int,
    volumes: Sequence[VolumeRecord],
    **extra: object,
) -> Path:
    """Write ROOT/manifest.json atomically; `extra` keys (e.g. options, notes) are added as is."""
    manifest = {
        "dataset": dataset,
        "classes": list(classes),
        "size": int(size),
        **extra,
        "volumes": [v.to_json() for v in volumes],
    }
    target = Path(root) / MANIFEST
    tmp = target.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, target)
    return target


class CorruptFileError(ValueError):
    """A file exists but cannot be read, or holds something unexpected (a bad input: exit 2)."""


REDO = "run `prepare` again to rewrite the folder (toy data: delete the folder, it is made again)"


def check_volume_id(volume_id: object, where: object) -> str:
    """A volume id is a plain file name: no folder separator, not hidden, not '.' or '..'."""
    if (
        not isinstance(volume_id, str)
        or not volume_id
        or volume_id.startswith(".")
        or any(c in volume_id for c in "/\\\0:")
    ):
        raise CorruptFileError(
            f"{where}: expected volume ids that are plain file names (no '/', '\\', ':', "
            f"no leading '.'), got {volume_id!r}"
        )
    return volume_id


def read_manifest(root: str | os.PathLike) -> dict:
    """Read ROOT/manifest.json, with a clear error when ROOT is not a prepared dataset.

    Checks its keys, its classes, and every volume's id (a plain file name) and split.
    """
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"expected a prepared dataset folder with {MANIFEST} (see docs/design.md); "
            f"{path} does not exist"
        )
    try:
        manifest = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptFileError(
            f"{path}: expected a JSON manifest, got an unreadable file ({exc}); {REDO}"
        ) from exc
    if not isinstance(manifest, dict):
        raise CorruptFileError(f"{path}: expected a JSON object, got {type(manifest).__name__}")
    for key in ("dataset", "classes", "volumes"):
        if key not in manifest:
            raise ValueError(f"{path}: expected a key {key!r}, got only {sorted(manifest)}")
    classes, volumes = manifest["classes"], manifest["volumes"]
    if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
        raise CorruptFileError(f"{path}: expected 'classes' to be a list of names, got {classes!r}")
    if not isinstance(volumes, list) or not all(isinstance(v, dict) for v in volumes):
        raise CorruptFileError(
            f"{path}: expected 'volumes' to be a list of records, got {volumes!r}"
        )
    for record in volumes:
        check_volume_id(record.get("id"), path)
        if record.get("split") not in SPLITS:
            raise CorruptFileError(
                f"{path}: expected every volume's split in {SPLITS}, got {record.get('split')!r} "
                f"for {record['id']!r}"
            )
    return manifest


def read_volume(
    root: str | os.PathLike, split: str, volume_id: str, *, n_classes: int | None = None
) -> dict[str, np.ndarray]:
    """Load one volume's arrays, {"image", "label", "spacing"}, checked against the format.

    image float32 (S, H, W) and finite; label of an integer type, the same shape, values in
    [0, n_classes) when `n_classes` is given (returned as uint8); spacing 3 positive finite mm.
    A damaged or wrong file raises CorruptFileError naming it.
    """
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {SPLITS}, got {split!r}")
    path = Path(root) / split / f"{check_volume_id(volume_id, 'volume_id')}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"the manifest lists volume {volume_id!r} but {path} is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in ("image", "label", "spacing")}
    except Exception as exc:  # numpy and zipfile raise many types for a damaged file
        raise CorruptFileError(
            f"{path}: expected a prepared volume (.npz with image, label, spacing), got a file "
            f"that cannot be read ({type(exc).__name__}); {REDO}"
        ) from exc
    return _checked_volume(path, arrays, n_classes)


def _checked_volume(path: Path, arrays: dict, n_classes: int | None) -> dict[str, np.ndarray]:
    image, label, spacing = arrays["image"], arrays["label"], arrays["spacing"]
    expected, got = "", ""
    if image.dtype != np.float32 or image.ndim != 3 or 0 in image.shape:
        expected, got = "image float32 (S, H, W)", f"{image.dtype} {image.shape}"
    elif label.dtype.kind not in "iu" or label.shape != image.shape:
        expected, got = (
            f"label of an integer type, shape {image.shape}",
            f"{label.dtype} {label.shape}",
        )
    elif spacing.shape != (3,) or not np.issubdtype(spacing.dtype, np.number):
        expected, got = "spacing of 3 numbers", f"{spacing.dtype} {spacing.shape}"
    elif not (np.isfinite(spacing).all() and (spacing > 0).all()):
        expected, got = "spacing of 3 positive finite mm", f"{spacing.tolist()}"
    elif not np.isfinite(image).all():
        expected, got = (
            "a finite image",
            f"{np.count_nonzero(~np.isfinite(image))} NaN or inf pixels",
        )
    else:
        lo, hi = int(label.min()), int(label.max())
        top = 255 if n_classes is None else n_classes - 1
        if lo < 0 or hi > top:
            expected, got = (
                f"labels in [0, {top}] (the manifest's classes)",
                f"values in [{lo}, {hi}]",
            )
    if expected:
        raise CorruptFileError(f"{path}: expected {expected}, got {got}; {REDO}")
    return {"image": image, "label": label.astype(np.uint8, copy=False), "spacing": spacing}


def prepared_files(root: Path) -> set[Path]:
    """The files an earlier `prepare` (or toy generation) wrote in `root`: what its manifest lists."""
    manifest = read_manifest(root)
    files = {root / MANIFEST}
    files.update(root / v["split"] / f"{v['id']}.npz" for v in manifest["volumes"])
    return files


def _check_replaceable(target: Path) -> None:
    """Raise unless `target` holds only what its manifest lists (and the split folders)."""
    if not (target / MANIFEST).is_file():
        raise FileExistsError(
            f"expected {target} to be a prepared folder (with {MANIFEST}) to replace it; it "
            "holds other files (move them away or choose another folder)"
        )
    listed = prepared_files(target)
    others = sorted(
        str(p.relative_to(target))
        for p in target.rglob("*")
        if p not in listed
        and not (p.is_dir() and not p.is_symlink() and p.parent == target and p.name in SPLITS)
    )
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        raise FileExistsError(
            f"expected {target} to hold only what its {MANIFEST} lists before replacing it; it "
            f"also holds {shown} (move them away or choose another folder)"
        )


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; on success it becomes `target`.

    On any exception the temporary folder is removed and `target` is left untouched. An
    existing non-empty `target` is an error unless `overwrite`, and then it is replaced only if
    it holds nothing but what its manifest lists (an earlier output): nothing else is deleted.
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"expected {target} to be a folder or absent; it is a file")
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"expected {target} to be absent or empty; it holds files (pass overwrite to "
                "replace it)"
            )
        _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
        os.replace(target, old / "d")
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
