"""Weak labels in a file: the small table (CSV or JSON) an annotator writes, read and written.

One row per (image, class, descriptor, index):

=============  ===============================================================================
``image``      the image's name, one of the dataset's image ids
``class``      the class index, 0 to K - 1
``descriptor`` a key of ``DESCRIPTORS`` (``size``, ``centroid``, ...) or ``present``
``index``      which value of the descriptor: 0 for one-value descriptors, 0 (row) or 1 (col)
               for the centroid and the spread; optional, 0 when left out
``value``      the value: the loss bounds it with the term's margin; or
``lower``,     bounds used as they are; an empty side is open (``-inf`` / ``inf``)
``upper``
=============  ===============================================================================

A class with a row is present in the image. A ``present`` row says it outright: value 0 for a
class that is not in the image (then no other row for it), 1 for one that is when nothing else is
known. Every image has at least one row; a class without a row is absent.

CSV: a header line naming the columns, an empty cell for "not given". JSON: a list of objects with
these keys (or ``{"rows": [...]}``), ``null`` or a missing key for "not given". Every error names
the file, the line (CSV) or row (JSON, from 0), the column, what was expected and what came.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch

from tutorial_lib.descriptor_registry import DESCRIPTORS
from tutorial_lib.weak_labels import WeakLabels

__all__ = ["COLUMNS", "PRESENT", "read_weak_labels", "write_weak_labels"]

COLUMNS = ("image", "class", "descriptor", "index", "value", "lower", "upper")
PRESENT = "present"  # the row that says whether a class is in the image (a reserved name)
_REQUIRED = ("image", "class", "descriptor")


class _Row(NamedTuple):
    where: str
    image: int
    cls: int
    name: str
    index: int
    value: float  # NaN: not given
    lower: float
    upper: float


def _raw_rows(path: Path) -> list[tuple[str, dict]]:
    """(where, {column: cell}) per row of a CSV or JSON table."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".json"):
        raise ValueError(f"path: expected a .csv or .json file, got {str(path)!r}")
    text = path.read_text(encoding="utf-8")
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        header = list(reader.fieldnames or [])
        missing = [c for c in _REQUIRED if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        if missing or unknown or not {"value", "lower", "upper"} & set(header):
            raise ValueError(
                f"{path}: expected a header with columns {list(COLUMNS)} (image, class, "
                f"descriptor and value or lower/upper required), got {header}"
            )
        return [(f"{path} line {reader.line_num}", row) for row in reader]
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: expected JSON, got {err}") from err
    rows = data.get("rows") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(
            f"{path}: expected a list of row objects (or {{'rows': [...]}}), got {type(data).__name__}"
        )
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:
            raise ValueError(f"{path} row {i}: expected keys among {list(COLUMNS)}, got {unknown}")
    return [(f"{path} row {i}", row) for i, row in enumerate(rows)]


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _number(cell: object, where: str, column: str, *, infinite: bool = False) -> float:
    """The cell as a float; NaN when blank (not given)."""
    if _blank(cell):
        return math.nan
    x = math.nan
    if isinstance(cell, (int, float, str)) and not isinstance(cell, bool):
        try:
            x = float(cell)
        except ValueError:
            pass
    if math.isnan(x) or not (infinite or math.isfinite(x)):
        kind = "a number (inf allowed)" if infinite else "a finite number"
        raise ValueError(f"{where}, {column}: expected {kind} or an empty cell, got {cell!r}")
    return x


def _integer(cell: object, where: str, column: str, high: int, default: int | None = None) -> int:
    """The cell as an integer in [0, high); ``default`` when blank (None: required)."""
    if _blank(cell) and default is not None:
        return default
    text = cell.strip() if isinstance(cell, str) else cell
    ok = (isinstance(text, int) and not isinstance(text, bool)) or (
        isinstance(text, str) and text.isdigit()
    )
    if not ok or not 0 <= int(text) < high:
        raise ValueError(f"{where}, {column}: expected an integer in [0, {high - 1}], got {cell!r}")
    return int(text)


def _parse(where: str, raw: dict, position: dict[str, int], n_classes: int, n_axes: int) -> _Row:
    """One checked row: known image, class in range, known descriptor and index, its numbers."""
    image = raw.get("image")
    image = image.strip() if isinstance(image, str) else image
    if image not in position:
        some = ", ".join(repr(k) for k in list(position)[:3])
        raise ValueError(
            f"{where}, image: expected one of the dataset's images ({some}, ...), got {image!r}"
        )
    cls = _integer(raw.get("class"), where, "class", n_classes)
    name = raw.get("descriptor")
    name = name.strip() if isinstance(name, str) else name
    if name != PRESENT and name not in DESCRIPTORS:
        raise ValueError(
            f"{where}, descriptor: expected one of {sorted(DESCRIPTORS)} or {PRESENT!r}, got {name!r}"
        )
    n = 1 if name == PRESENT else DESCRIPTORS[name].n_values(n_axes)
    index = _integer(raw.get("index"), where, "index", n, default=0)
    value = _number(raw.get("value"), where, "value")
    lower = _number(raw.get("lower"), where, "lower", infinite=True)
    upper = _number(raw.get("upper"), where, "upper", infinite=True)
    has_bounds = not (math.isnan(lower) and math.isnan(upper))
    if has_bounds == (not math.isnan(value)):
        got = "both" if has_bounds else "neither"
        raise ValueError(f"{where}, value: expected a value or lower/upper, got {got}")
    if name == PRESENT and value not in (0.0, 1.0):
        raise ValueError(
            f"{where}, value: expected 0 or 1 for {PRESENT!r}, got {raw.get('value')!r}"
        )
    if has_bounds:
        lower = -math.inf if math.isnan(lower) else lower
        upper = math.inf if math.isnan(upper) else upper
        if lower > upper:
            raise ValueError(f"{where}, lower: expected lower <= upper, got {lower} > {upper}")
    return _Row(where, position[image], cls, name, index, value, lower, upper)


def read_weak_labels(
    path: str | os.PathLike,
    image_ids: Sequence[str],
    n_classes: int,
    *,
    n_axes: int = 2,
    dtype: torch.dtype = torch.float64,
) -> WeakLabels:
    """``WeakLabels`` of the images ``image_ids`` (in that order) from a CSV or JSON table.

    The table's layout is in the module docstring; ``n_axes`` sets how many values the centroid
    and the spread have. Shown in examples/train_your_own.py.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"path: expected a CSV or JSON file, got {str(path)!r} (no such file)")
    position = {str(name): i for i, name in enumerate(image_ids)}
    if len(position) != len(image_ids):
        raise ValueError(
            f"image_ids: expected distinct names, got {len(image_ids) - len(position)} repeated"
        )
    rows = [_parse(w, raw, position, n_classes, n_axes) for w, raw in _raw_rows(path)]
    present = _presence(path, rows, list(position), n_classes)
    values: dict[str, torch.Tensor] = {}
    bounds: dict[str, torch.Tensor] = {}
    for row in rows:
        if row.name == PRESENT:
            continue
        n = DESCRIPTORS[row.name].n_values(n_axes)
        if row.name not in values:
            values[row.name] = torch.full((len(position), n_classes, n), math.nan, dtype=dtype)
            bounds[row.name] = torch.full((len(position), n_classes, n, 2), math.nan, dtype=dtype)
        at = (row.image, row.cls, row.index)
        if math.isnan(row.value):
            bounds[row.name][at] = torch.tensor([row.lower, row.upper], dtype=dtype)
        else:
            values[row.name][at] = row.value
    return WeakLabels(values, bounds, present, tuple(position))


def _presence(path: Path, rows: list[_Row], ids: list[str], n_classes: int) -> torch.Tensor:
    """(N, K) bool from the rows; ValueError on a repeated row, a contradiction or a missing image."""
    first: dict[tuple, str] = {}
    said: dict[tuple[int, int], tuple[bool, str]] = {}
    described: dict[tuple[int, int], str] = {}
    for row in rows:
        key = (row.image, row.cls, row.name, row.index)
        if key in first:
            raise ValueError(
                f"{row.where}: expected one row per (image, class, descriptor, index), got a "
                f"second for {(ids[row.image], row.cls, row.name, row.index)} (first: {first[key]})"
            )
        first[key] = row.where
        if row.name == PRESENT:
            said[(row.image, row.cls)] = (row.value == 1.0, row.where)
        else:
            described.setdefault((row.image, row.cls), row.where)
    for key, (flag, where) in said.items():
        if not flag and key in described:
            raise ValueError(
                f"{described[key]}: expected no descriptor for a class said absent ({where}), "
                f"got one for image {ids[key[0]]!r}, class {key[1]}"
            )
    missing = sorted(set(range(len(ids))) - {row.image for row in rows})
    if missing:
        names = ", ".join(repr(ids[i]) for i in missing[:3])
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise ValueError(f"{path}: expected at least one row per image, got none for {names}{more}")
    present = torch.zeros(len(ids), n_classes, dtype=torch.bool)
    for i, c in described:
        present[i, c] = True
    for (i, c), (flag, _) in said.items():
        present[i, c] = flag
    return present


def _table_rows(weak: WeakLabels) -> Iterator[dict]:
    """The rows of ``weak``: its values and bounds, and ``present`` rows where nothing else says it."""
    present = weak.present.cpu().tolist()
    values = {n: v.double().cpu().tolist() for n, v in sorted(weak.values.items())}
    bounds = {n: b.double().cpu().tolist() for n, b in weak.bounds.items()}
    for i, image in enumerate(weak.ids):
        for c in range(weak.n_classes):
            if not present[i][c]:
                yield {"image": image, "class": c, "descriptor": PRESENT, "value": 0}
                continue
            rows = []
            for name, v in values.items():
                for j, x in enumerate(v[i][c]):
                    lo, hi = bounds[name][i][c][j]
                    cell = {"image": image, "class": c, "descriptor": name, "index": j}
                    if not math.isnan(x):
                        rows.append({**cell, "value": x})
                    elif not math.isnan(lo) and not (math.isinf(lo) and math.isinf(hi)):
                        open_side = {
                            k: None for k, b in (("lower", lo), ("upper", hi)) if math.isinf(b)
                        }
                        rows.append({**cell, "lower": lo, "upper": hi, **open_side})
            yield from rows or [{"image": image, "class": c, "descriptor": PRESENT, "value": 1}]


def write_weak_labels(path: str | os.PathLike, weak: WeakLabels) -> Path:
    """Write ``weak`` as a CSV or JSON table (by the suffix), atomically; the table reads back equal.

    Needs ``weak.ids``. Entries free on both sides are left out (not given reads back the same).
    Shown in examples/train_your_own.py.
    """
    path = Path(path)
    if path.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"path: expected a .csv or .json file, got {str(path)!r}")
    if not weak.ids:
        raise ValueError("weak: expected image names (ids) to write, got none")
    rows = list(_table_rows(weak))
    if path.suffix.lower() == ".json":
        text = json.dumps({"rows": rows}, indent=1, allow_nan=False) + "\n"
    else:
        out = io.StringIO()
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(
            {k: repr(x) if isinstance(x, float) else x for k, x in r.items()} for r in rows
        )
        text = out.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
