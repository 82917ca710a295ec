"""A one-line verdict on a result of training: ✓ or ✗, printed, never raised.

In the notebooks a fact about the library is an ``assert``: it holds whatever the settings. A claim
about a trained network (its Dice above a baseline, its violations falling) depends on the seed, the
number of epochs and any setting the learner changes. ``verdict`` prints whether this run meets it,
so that the notebook runs on to the end either way::

    verdict(ratio > 0.75, f"descriptors reach {ratio:.2f} x the CE Dice (above 0.75 x)")
    # ✓ descriptors reach 0.93 x the CE Dice (above 0.75 x)
"""

from __future__ import annotations

import numpy as np

__all__ = ["verdict"]


def _as_bool(ok: object) -> bool:
    """`ok` as a bool: a bool, a numpy bool, or a boolean tensor or array of one element."""
    if isinstance(ok, (bool, np.bool_)):
        return bool(ok)
    numel = getattr(ok, "numel", None)  # a torch tensor has numel(), a numpy array has size
    size = numel() if callable(numel) else getattr(ok, "size", None)
    if size == 1 and "bool" in str(getattr(ok, "dtype", "")):
        return bool(ok.item())
    raise ValueError(f"ok: expected a bool or a one-element boolean tensor, got {ok!r}")


def verdict(ok: object, claim: str, hint: str = "") -> None:
    """Print "✓ <claim>" when `ok`, else "✗ not in this run: <claim>" and `hint`.

    Returns None, so that a notebook cell ending with it shows the line alone.
    """
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"claim: expected a non-empty str, got {claim!r}")
    if not isinstance(hint, str):
        raise ValueError(f"hint: expected a str, got {hint!r}")
    if _as_bool(ok):
        print(f"✓ {claim}")
    else:
        print(f"✗ not in this run: {claim}" + (f" ({hint})" if hint else ""))
