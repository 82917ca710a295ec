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


def read_manifest(root: str | os.PathLike) -> dict:
    """Read ROOT/manifest.json, with a clear error when ROOT is not a prepared dataset."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"expected a prepared dataset folder with {MANIFEST} (see docs/design.md); "
            f"{path} does not exist"
        )
    manifest = json.loads(path.read_text())
    for key in ("dataset", "classes", "volumes"):
        if key not in manifest:
            raise ValueError(f"{path}: expected a key {key!r}, got only {sorted(manifest)}")
    return manifest


def read_volume(root: str | os.PathLike, split: str, volume_id: str) -> dict[str, np.ndarray]:
    """Load one volume's arrays: {"image", "label", "spacing"}."""
    path = Path(root) / split / f"{volume_id}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"the manifest lists volume {volume_id!r} but {path} is missing")
    with np.load(path) as data:
        return {key: data[key] for key in ("image", "label", "spacing")}


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to `target`; on success it becomes `target`.

    On any exception the temporary folder is removed and `target` is left untouched. An
    existing non-empty `target` is an error unless `overwrite` (then it is replaced whole).
    """
    target = Path(target)
    if target.exists() and any(target.iterdir()) and not overwrite:
        raise FileExistsError(
            f"expected {target} to be absent or empty; it holds files (pass overwrite to replace it)"
        )
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
