"""An exercise's untouched stub: how it is recognised, and where a learner who left it can start.

A stub is what a notebook ships in an exercise's answer cell: a function whose body raises
``NotImplementedError`` (or returns ``...``), or the value ``...`` itself. ``run_answer`` runs an
answer and raises ``StubUntouched`` on a stub. ``START_HINTS`` holds, per exercise, a first step
that points the way without giving the answer away: the student copy's checks print it instead of
running the reference solution.
"""

from __future__ import annotations

from tutorial_lib.exercise_tools import StubUntouched, run_answer

__all__ = ["START_HINTS", "StubUntouched", "not_yet_message", "run_answer"]

START_HINTS: dict[str, str] = {
    "01.1": "a hard mask's size counts its pixels; a soft map weighs each pixel by its probability",
    "01.2": "a weighted mean of the pixel positions: torch.arange gives the row and column indices",
    "02.1": "start from your centroid (exercise 01.2) and measure, along each axis, how far each "
    "pixel lies from it",
    "02.2": "compare each pixel with the one below it and with the one on its right: a pair counts "
    "when they differ",
    "03.1": "two cases, split at z = -1/t²: the barrier inside, a straight line beyond; the slope is "
    "the derivative of each piece",
    "03.2": "first the case a <= upper; otherwise set the derivative of the whole objective to 0 and "
    "solve for x",
    "04.1": "Dice is 2|P ∩ G| / (|P| + |G|): per slice for 2-D (which slices have no Dice?), the "
    "counts of all slices pooled for 3-D",
    "04.2": "torch.cdist gives every pairwise distance; keep each point's nearest one",
    "04b.1": "build the moved copy by hand: an empty mask, then the columns that stay inside the "
    "image copied across; then Dice of the two",
    "04b.2": "write when the truth v falls outside [v (1 + e)(1 - m), v (1 + e)(1 + m)] as two "
    "conditions on e, then use the normal distribution's CDF",
    "05.1": "walk the epochs i = 0, 1, ...: the rule compares i with best_epochs[i]",
    "05.2": "first decide which value the paper reads for an absent class, then add and subtract "
    "the margin",
    "06.1": "skimage.transform.resize with order=1 resizes bilinearly; then do what a cast to an "
    "integer type does",
    "06.2": "a slice lacks class k when none of its pixels equals k; then a share over the slices",
    "07.1": "keep only the images where the class is present, then torch.quantile",
    "07.2": "keep only the images where the class is present, then ask, per image, whether its "
    "values lie within their bounds",
    "08.1": "m|v| is the half-width of each interval; torch.stack(..., dim=-1) puts lower and upper "
    "side by side",
    "08.2": "one slice's area in mm² is its pixel count times the pixel's area; then the thickness, "
    "and mm³ to mL",
    "08.3": "follow the exercise's hint: for each kind of offset, the pairs that cross come from the "
    "overlap of the cube with its shifted copy",
    "08.4": "measure a few descriptors of DESCRIPTORS on the crescent and on the disk drawn above; "
    "which one tells them apart?",
}
"""Exercise id -> a first step for a learner whose stub is untouched (no answer in it)."""


def not_yet_message(exercise_id: str) -> str:
    """What the student copy's check prints for an untouched stub: "not yet" and a first step."""
    return (
        f"Exercise {exercise_id}: not yet: replace the stub above by your answer, run that cell, "
        f"then this check again. A first step: {START_HINTS[exercise_id]}."
    )
