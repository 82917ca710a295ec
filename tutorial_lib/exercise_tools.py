"""What every exercise checker shares: running an answer, comparing numbers, showing them.

``run_answer`` calls a learner's answer (or takes a value) and raises ``StubUntouched`` for an
untouched stub; ``same`` compares results as float64 tensors; ``wrong_shape`` and ``fmt`` make the
hints. The checkers are in ``tutorial_lib.exercises`` and the modules it registers.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["Hint", "StubUntouched", "run_answer", "as_tensor", "same", "wrong_shape", "fmt"]

Hint = str | None  # None: the answer is right; else what to look at


class StubUntouched(Exception):
    """The learner's cell still holds the stub."""


def run_answer(answer: object, *args: object) -> object:
    """``answer(*args)``, or ``answer`` itself when it is a value; a stub raises StubUntouched."""
    if answer is Ellipsis:
        raise StubUntouched
    if not callable(answer):
        return answer
    try:
        result = answer(*args)
    except NotImplementedError:
        raise StubUntouched from None
    if result is Ellipsis:
        raise StubUntouched
    return result


def as_tensor(x: object) -> Tensor:
    """A float64 tensor of a number, a tuple, an array or a tensor (detached, on the CPU)."""
    if isinstance(x, Tensor):
        return x.detach().cpu().to(torch.float64)
    if isinstance(x, (tuple, list)) and x:
        return torch.stack([as_tensor(v) for v in x])
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def same(got: object, expected: object, tol: float = 1e-6) -> bool:
    g, e = as_tensor(got), as_tensor(expected)
    return g.shape == e.shape and torch.allclose(g, e, rtol=tol, atol=tol, equal_nan=True)


def wrong_shape(got: object, expected: object) -> Hint:
    """A hint when ``got`` does not have the shape of ``expected``, else None."""
    g, e = as_tensor(got), as_tensor(expected)
    return None if g.shape == e.shape else f"expected shape {tuple(e.shape)}, got {tuple(g.shape)}"


def fmt(x: object) -> str:
    v = as_tensor(x)
    return f"{v.item():.4g}" if v.numel() == 1 else str(v.numpy().round(3).tolist())
