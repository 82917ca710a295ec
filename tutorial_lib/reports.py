"""What the authors' report gives for a run: the spread over volumes, and the validation epoch.

Their `report.py` prints, per run, the mean and the standard deviation of the test 3-D DSC per
class and over the classes (numpy's `std`, over volumes: ddof = 0), and a validation table at the
epoch of best mean validation 3-D DSC (`np.argmax`: the first epoch on ties). Here:

- `class_stds(per_volume, selection)`: `{class: std over volumes, "mean": std over every (volume,
  selected class) value}` — their "(std)" after the mean — of the finite values (a NaN DSC, an
  infinite HD95 are left out, as in the means);
- `validation_epoch(history)`: the row of best `val_dsc3d_mean` in a run's `metrics.csv`;
- `validation_at(history, row, class_names)`: `{class: val_dsc3d, "mean": val_dsc3d_mean}` there;
- `validation_volumes(history, row, class_names)`: `{class: [each validation volume's 3-D DSC]}`
  there (the `val_dsc3d_<class>@<volume>` columns);
- `validation_volumes_at_class_best(history, class_names)`: the same, each class at its own epoch
  of best mean over the volumes, as their `moustache.py` draws the validation box plot.

A *history* is a run's `metrics.csv` as columns (`tutorial_lib.runlog.read_metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "class_stds",
    "validation_epoch",
    "validation_at",
    "validation_volumes",
    "validation_volumes_at_class_best",
]

History = Mapping[str, Sequence[Any]]


def _finite(values: Sequence[float | None]) -> np.ndarray:
    """The finite entries of per-volume values (None: a NaN or an infinity written to JSON)."""
    array = np.asarray([math.nan if v is None else v for v in values], dtype=float)
    return array[np.isfinite(array)]


def _std(values: np.ndarray) -> float | None:
    return float(np.std(values)) if values.size else None


def class_stds(
    per_volume: Mapping[str, Sequence[float | None]], selection: Sequence[str]
) -> dict[str, float | None]:
    """Standard deviation over volumes (ddof = 0) per class, and over the pooled selected classes.

    `per_volume`: {class: [value per volume]} (a run's `test.json` "dsc3d" or "hd95");
    `selection`: the classes of the "mean" entry. None where a class has no finite value.
    """
    missing = [name for name in selection if name not in per_volume]
    if missing:
        raise ValueError(
            f"selection: expected classes of per_volume {sorted(per_volume)}, got {missing}"
        )
    stds = {name: _std(_finite(values)) for name, values in per_volume.items()}
    pooled = [_finite(per_volume[name]) for name in selection]
    stds["mean"] = _std(np.concatenate(pooled)) if pooled else None
    return stds


def _column(history: History, name: str) -> list[Any]:
    if name not in history:
        raise ValueError(f"history: expected a column {name!r}, got {sorted(history)}")
    return list(history[name])


def validation_epoch(history: History) -> tuple[int, int] | None:
    """(epoch, row) of the best mean validation 3-D DSC, the first on ties; None if all are NaN."""
    scores = np.asarray(_column(history, "val_dsc3d_mean"), dtype=float)
    if np.isnan(scores).all():
        return None
    row = int(np.nanargmax(scores))  # NaN (no class defined at that epoch) never wins
    epochs = history.get("epoch", range(len(scores)))
    return int(list(epochs)[row]), row


def validation_at(history: History, row: int, class_names: Sequence[str]) -> dict[str, float]:
    """`{class: val_dsc3d_<class>, "mean": val_dsc3d_mean}` of metrics.csv row `row`."""
    names = [*class_names, "mean"]
    return {name: float(_column(history, f"val_dsc3d_{name}")[row]) for name in names}


def _volume_columns(history: History, name: str) -> list[str]:
    """The `val_dsc3d_<name>@<volume>` columns of `history`, one per validation volume."""
    prefix = f"val_dsc3d_{name}@"
    return [key for key in history if key.startswith(prefix)]


def validation_volumes(
    history: History, row: int, class_names: Sequence[str]
) -> dict[str, list[float]]:
    """`{class: [3-D DSC of each validation volume]}` of row `row` (columns
    `val_dsc3d_<class>@<volume>`; a run logged before these columns existed gives empty lists)."""
    return {
        name: [float(history[key][row]) for key in _volume_columns(history, name)]
        for name in class_names
    }


def validation_volumes_at_class_best(
    history: History, class_names: Sequence[str]
) -> dict[str, tuple[int, list[float]]]:
    """`{class: (epoch, [3-D DSC of each validation volume])}`: each class at the first epoch of
    its best mean over the volumes (NaN left out of a mean; a row without a finite value never
    wins), as their `moustache.py`; `(-1, [])` for a class without a finite value."""
    out: dict[str, tuple[int, list[float]]] = {}
    for name in class_names:
        columns = _volume_columns(history, name)
        table = (
            np.stack([np.asarray(history[key], dtype=float) for key in columns], 1)
            if columns
            else np.empty((0, 0))
        )
        finite = np.isfinite(table)
        counts = finite.sum(1)
        if not counts.any():  # no rows, no columns, or no finite value
            out[name] = (-1, [])
            continue
        means = np.where(
            counts > 0, np.where(finite, table, 0.0).sum(1) / np.maximum(counts, 1), -np.inf
        )
        row = int(np.argmax(means))  # the first on ties
        epochs = list(history.get("epoch", range(len(means))))
        out[name] = (int(epochs[row]), table[row].tolist())
    return out
