"""Run-directory files written atomically: JSON, the per-epoch CSV, and readers for both.

Every write goes to a temporary file in the same folder, then `os.replace`, so a killed run never
leaves a half-written file behind.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tutorial_lib import __version__
from tutorial_lib.data.storage import data_dir
from tutorial_lib.errors import DamagedRunFileError

if TYPE_CHECKING:
    from tutorial_lib.config import TrainConfig

__all__ = [
    "damaged_file",
    "atomic_write_bytes",
    "write_json",
    "read_json",
    "write_csv",
    "read_csv",
    "read_metrics",
    "runs_root",
    "config_run_dir",
]


def damaged_file(path: str | os.PathLike, expected: str, got: object) -> DamagedRunFileError:
    """The error for a run file that cannot be read back: it names the file and what to do.

    `got` is a description or the exception met while reading (its first line is shown).
    """
    path = Path(path)
    if isinstance(got, BaseException):
        first = (str(got).strip().splitlines() or [""])[0][:120]
        got = f"a damaged file ({type(got).__name__}{': ' + first if first else ''})"
    folder = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return DamagedRunFileError(
        f"{path}: expected {expected}, got {got}; delete the run folder {folder} and run again"
    )


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Atomic JSON write; NaN and infinities become null (strict JSON)."""
    text = json.dumps(_json_safe(data), indent=2, allow_nan=False)
    atomic_write_bytes(path, (text + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    """The JSON of a run file; DamagedRunFileError (a ValueError) when it is not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise damaged_file(path, "JSON written by the library", error) from None


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
    """Atomic CSV write of `rows` (dicts); the header is the union of keys, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_bytes(path, buffer.getvalue().encode())


def read_csv(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Rows of a CSV written by `write_csv`; numbers are parsed back to int / float."""

    def parse(text: str) -> Any:
        if text == "":
            return float("nan")
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    try:
        with open(path, newline="") as handle:
            return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    except (csv.Error, UnicodeDecodeError) as error:
        raise damaged_file(path, "a CSV table written by the library", error) from None


def read_metrics(run_dir: str | os.PathLike) -> dict[str, list[Any]]:
    """`metrics.csv` of a run as columns: {column: [value per epoch]}."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise ValueError(f"run directory: expected {path} (a run's metrics.csv), got none")
    rows = read_csv(path)
    columns: dict[str, list[Any]] = {}
    for row in rows:
        for key, value in row.items():
            columns.setdefault(key, []).append(value)
    return columns


def _writable(folder: Path) -> bool:
    """Can `folder` be created or written (its nearest existing ancestor is writable)?"""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def runs_root() -> Path:
    """Where runs go: $TUTORIAL_RUNS; else the repository's runs/ (seen from notebooks/) or ./runs
    when writable; else `runs/` in the data folder ($TUTORIAL_DATA_DIR, ~/.cache/tutorial_lib), for a
    read-only shared clone on a JupyterHub."""
    if os.environ.get("TUTORIAL_RUNS"):
        return Path(os.environ["TUTORIAL_RUNS"])
    local = Path("../runs") if Path("../pyproject.toml").is_file() else Path("runs")
    if _writable(local):
        return local
    return data_dir() / "runs"


def config_run_dir(config: TrainConfig, root: str | os.PathLike | None = None) -> Path:
    """One folder per dataset and configuration (epochs aside): `root/<dataset>/<name>-<hash8>`.

    A changed preset starts a new run instead of resuming an old one; the same configuration, with
    more or fewer epochs, resumes the same folder (and is shared between notebooks). The library's
    version is part of the key: after an update the notebooks train afresh, not reuse old runs.
    """
    # config loads the loss and torch: imported here, so that runlog itself stays torch-free
    from tutorial_lib.config import config_to_dict

    plain = config_to_dict(dataclasses.replace(config, epochs=1))
    key = json.dumps({"config": plain, "version": __version__}, sort_keys=True)
    digest = hashlib.sha1(key.encode()).hexdigest()[:8]
    base = Path(root) if root is not None else runs_root()
    return base / config.data.dataset / f"{config.name}-{digest}"
