"""The free-mask laboratory: a segmentation recovered from a few descriptors, without a network.

    result = optimise_free_mask(label, ("size", "centroid"), {"size": 0.1, "centroid": 2.0})
    result.final_dice, result.dice[-1], result.violated[-1]

A *free mask* is one logit per pixel and class, softmax over the classes, optimised by Adam against
the shape-descriptor loss (`tutorial_lib.losses.shape_descriptor_loss`, notebook 03): nothing but
the bounds around the descriptors of a target label map tells it where the object is. Each run
is scored against the target (Dice of the arg-max mask, per step), so the effect of a choice
(which descriptors, how wide the margins, which penalty, how noisy the values) is seconds away:

    loss(s) = sum_terms weight * sum psi_t(z) / (H W),   z = [lower - f(s), f(s) - upper]

with t = t0 * t_factor^(step // t_every) for the log barrier (the quadratic penalty ignores t).
Margins are relative for size and length (0.1: ±10 %) and in pixels for centroid and spread
(`MARGIN_MODES`). `noise` is an annotator's relative error: the bounds are made around
v (1 + e), e ~ N(0, noise²) drawn once per value; `bounds_from` takes the bounds from another
label map (a wrong annotation) while the Dice is still measured against `target`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tutorial_lib.descriptors import DESCRIPTORS
from tutorial_lib.loss_tables import LossTables
from tutorial_lib.losses import DescriptorTerm, shape_descriptor_loss
from tutorial_lib.penalties import check_penalty_name
from tutorial_lib.schedules import MAX_T

__all__ = [
    "DESCRIPTOR_CHOICES",
    "DEFAULT_MARGINS",
    "MARGIN_MODES",
    "FreeMaskResult",
    "free_mask_terms",
    "optimise_free_mask",
]

DESCRIPTOR_CHOICES = ("size", "centroid", "dist_centroid", "length")
# notebook 03's margins: size and length ±10 %, centroid ±2 px, spread ±1 px
DEFAULT_MARGINS = {"size": 0.10, "centroid": 2.0, "dist_centroid": 1.0, "length": 0.10}
MARGIN_MODES = {
    "size": "percentage",
    "centroid": "abs",
    "dist_centroid": "abs",
    "length": "percentage",
}


@dataclass(frozen=True)
class FreeMaskResult:
    """One optimisation of a free mask.

    `probs` (K, H, W) the final probabilities; `dice` and `violated` one entry per step (step 0 is
    the start): the mean foreground Dice of the arg-max mask against the target, and the fraction
    of constraints (sides) broken; `snapshots` (step, probs (K, H, W)); `values` the descriptor
    values the bounds were made around, (classes, n) per descriptor; `seconds` the wall time.
    """

    probs: Tensor
    dice: list[float]
    violated: list[float]
    snapshots: list[tuple[int, Tensor]]
    values: dict[str, Tensor]
    seconds: float

    @property
    def final_dice(self) -> float:
        return self.dice[-1]


def _labels(target: object, name: str) -> Tensor:
    if not (
        isinstance(target, Tensor)
        and target.ndim == 2
        and not target.is_floating_point()
        and target.numel() > 0
        and int(target.min()) >= 0
    ):
        got = tuple(target.shape) if isinstance(target, Tensor) else type(target).__name__
        raise ValueError(f"{name}: expected a (H, W) integer label map with labels >= 0, got {got}")
    return target.long()


def free_mask_terms(
    descriptors: Sequence[str],
    margins: Mapping[str, float] | None,
    classes: tuple[int, ...],
    weight: float = 1.0,
) -> list[DescriptorTerm]:
    """One term per descriptor on `classes`, its margin from `margins` (else `DEFAULT_MARGINS`)."""
    if isinstance(descriptors, str) or not descriptors or len(set(descriptors)) != len(descriptors):
        raise ValueError(
            f"descriptors: expected distinct names among {DESCRIPTOR_CHOICES}, got {descriptors!r}"
        )
    margins = dict(margins or {})
    unknown = sorted(set(descriptors) - set(DESCRIPTOR_CHOICES)) + sorted(
        set(margins) - set(DESCRIPTOR_CHOICES)
    )
    if unknown:
        raise ValueError(
            f"descriptors, margins: expected names among {DESCRIPTOR_CHOICES}, got {unknown}"
        )
    return [
        DescriptorTerm(
            name, classes, margins.get(name, DEFAULT_MARGINS[name]), MARGIN_MODES[name], weight
        )
        for name in descriptors
    ]


def _number(name: str, value: object, low: float, closed: bool) -> None:
    """ValueError unless `value` is a finite number >= low (`closed`) or > low."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and (value >= low if closed else value > low)):
        raise ValueError(
            f"{name}: expected a finite number {'>=' if closed else '>'} {low:g}, got {value!r}"
        )


def _check_numbers(steps, lr, t0, t_factor, t_every, noise) -> None:
    if not (isinstance(steps, int) and 1 <= steps <= 100_000):
        raise ValueError(f"steps: expected an integer in [1, 100000], got {steps!r}")
    if not (isinstance(t_every, int) and t_every >= 1):
        raise ValueError(f"t_every: expected an integer >= 1, got {t_every!r}")
    _number("lr", lr, 0.0, closed=False)
    _number("t0", t0, 0.0, closed=False)
    _number("t_factor", t_factor, 1.0, closed=True)
    _number("noise", noise, 0.0, closed=True)
    if noise > 1:
        raise ValueError(f"noise: expected a relative error in [0, 1], got {noise!r}")


def optimise_free_mask(
    target: Tensor,
    descriptors: Sequence[str] = DESCRIPTOR_CHOICES,
    margins: Mapping[str, float] | None = None,
    *,
    penalty: str = "log_barrier",
    t0: float = 1.0,
    t_factor: float = 1.1,
    t_every: int = 10,
    steps: int = 300,
    lr: float = 0.2,
    noise: float = 0.0,
    bounds_from: Tensor | None = None,
    seed: int = 0,
    snapshot_every: int | None = None,
    on_snapshot: Callable[[FreeMaskResult], None] | None = None,
) -> FreeMaskResult:
    """Optimise a free mask against the bounds of `target`'s descriptors; score it against `target`.

    `target` (H, W) integer labels (0 background); every foreground class of it is constrained by
    each of `descriptors` with its margin (see the module docstring). `snapshot_every` keeps the
    probabilities every so many steps (and at the end) and calls `on_snapshot(result so far)`
    (a widget's redraw; its lists end at the snapshot's step, its `values` are empty). Runs on
    the CPU in float32: 300 steps at 64² took 0.6-0.9 s on one thread of a 2-core machine (1.3-1.9 s
    while other work kept it busy).
    """
    labels = _labels(target, "target")
    source = labels if bounds_from is None else _labels(bounds_from, "bounds_from")
    if source.shape != labels.shape:
        raise ValueError(
            f"bounds_from: expected the target's shape {tuple(labels.shape)}, got {tuple(source.shape)}"
        )
    check_penalty_name(penalty)
    _check_numbers(steps, lr, t0, t_factor, t_every, noise)
    n_classes = max(2, int(max(labels.max(), source.max())) + 1)
    terms = free_mask_terms(descriptors, margins, tuple(range(1, n_classes)))
    schedule = (t0, t_factor, t_every)
    return _optimise(
        labels, source, terms, n_classes, penalty=penalty, schedule=schedule, steps=steps, lr=lr,
        noise=noise, seed=seed, every=snapshot_every, callback=on_snapshot,
    )  # fmt: skip


def _optimise(
    labels, source, terms, n_classes, *, penalty, schedule, steps, lr, noise, seed, every, callback
) -> FreeMaskResult:
    """Adam on free logits (1, K, H, W); t = t0 t_factor^(step // t_every), at most MAX_T."""
    t0, t_factor, t_every = schedule
    started = time.perf_counter()
    tables = LossTables.build(terms, 2)
    generator = torch.Generator().manual_seed(seed)
    value_noise = noise * torch.randn(1, sum(tables.widths), generator=generator)
    value_noise = value_noise.clamp_min(-1.0) if noise > 0 else None
    logits = torch.zeros(1, n_classes, *labels.shape, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=lr)
    truth, source = labels[None], source[None]
    cache = {(2, torch.float32, torch.device("cpu")): tables}  # the loss's tables, made once
    dice, violated, snapshots = [], [], []
    for step in range(steps + 1):
        probs = logits.softmax(dim=1)
        t = min(t0 * t_factor ** (step // t_every), MAX_T)
        loss, stats = shape_descriptor_loss(
            probs,
            source,
            t,
            terms,
            penalty=penalty,
            empty_policy="corrected",
            value_noise=value_noise,
            check_inputs=step == 0,
            tables=cache,
        )
        dice.append(_dice(probs.detach(), truth, n_classes))
        violated.append(_violated(stats, tables))
        if every and (step % every == 0 or step == steps):
            snapshots.append((step, probs.detach()[0].clone()))
            if callback is not None:  # the run so far
                elapsed = time.perf_counter() - started
                so_far = (list(dice), list(violated), list(snapshots))
                callback(FreeMaskResult(snapshots[-1][1], *so_far, {}, elapsed))
        if step == steps:
            break
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return FreeMaskResult(
        probs=logits.detach().softmax(dim=1)[0],
        dice=dice,
        violated=violated,
        snapshots=snapshots,
        values=_values(source, terms, n_classes, value_noise, tables),
        seconds=time.perf_counter() - started,
    )


def _dice(probs: Tensor, truth: Tensor, n_classes: int) -> float:
    """Mean Dice of the arg-max mask over the foreground classes present in either (0 if none).

    From one confusion matrix (a bincount): Dice_k = 2 n_kk / (n_k. + n_.k).
    """
    # max(1).indices, not argmax(1): the same first-maximum index, and on the CPU about ten times
    # faster for a (1, K, H, W) tensor (argmax over a non-contiguous dim was half of a step)
    pairs = probs.max(1).indices.flatten() * n_classes + truth.flatten()
    confusion = torch.bincount(pairs, minlength=n_classes * n_classes).view(n_classes, n_classes)
    both = (confusion.sum(0) + confusion.sum(1))[1:]
    scores = 2 * confusion.diagonal()[1:] / both
    scores = scores[both > 0]
    return float(scores.mean()) if scores.numel() else 0.0


def _violated(stats: Mapping[str, Tensor], tables: LossTables) -> float:
    """The fraction of constraint sides broken, over every term (weighted by its sides)."""
    fractions = torch.stack([stats[f"{label}/frac_violated"] for label in tables.labels])
    sides = tables.sides_per_term
    return float((fractions * sides).sum() / sides.sum())


def _values(source, terms, n_classes, value_noise, tables) -> dict[str, Tensor]:
    """The (noisy) values each term's bounds were made around, (classes, n) per descriptor."""
    onehot = torch.nn.functional.one_hot(source, n_classes).permute(0, 3, 1, 2).float()
    values, start = {}, 0
    for term, width in zip(terms, tables.widths, strict=True):
        exact = DESCRIPTORS[term.descriptor](onehot)[0, list(term.classes)]
        factor = 1.0
        if value_noise is not None:
            factor = 1 + value_noise[0, start : start + width].reshape(exact.shape)
        values[term.descriptor] = exact * factor
        start += width
    return values
