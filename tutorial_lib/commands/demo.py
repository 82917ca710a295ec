"""`python -m tutorial_lib demo`: the shape descriptors of a toy shape, hard and soft, and the barrier.

Draws a rotated ellipse (a hard 0/1 mask and a soft version with blurred edges, as a network's
softmax would be), prints it, prints every descriptor of both, then a table of the log-barrier
extension for a few t. Runs in a few seconds on any CPU.
"""

from __future__ import annotations

import argparse
import math

import torch

from tutorial_lib.descriptor_registry import DESCRIPTORS
from tutorial_lib.penalties import log_barrier_extension

MAX_SIDE = 1024  # px: a larger toy image only costs memory (the ellipse is printed row by row)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--height", type=int, default=24, help="image rows (default: 24)")
    parser.add_argument("--width", type=int, default=40, help="image columns (default: 40)")
    parser.add_argument(
        "--angle", type=float, default=30.0, help="ellipse angle in degrees (default: 30)"
    )
    parser.add_argument(
        "--softness", type=float, default=1.0, help="edge width of the soft mask in px (default: 1)"
    )
    parser.add_argument(
        "--spacing",
        type=float,
        nargs=2,
        default=None,
        metavar=("ROW_MM", "COL_MM"),
        help="also print values in mm",
    )


def toy_ellipse(
    height: int, width: int, angle_deg: float, softness: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """A rotated ellipse as (hard, soft) probabilities of shape (1, 2, H, W) (background, object)."""
    if not (8 <= height <= MAX_SIDE and 8 <= width <= MAX_SIDE):
        raise ValueError(
            f"height, width: expected at least 8 px and at most {MAX_SIDE} px each, got {height} x {width}"
        )
    if not (math.isfinite(softness) and softness > 0):
        raise ValueError(f"softness: expected a positive edge width in px, got {softness}")
    if not math.isfinite(angle_deg):
        raise ValueError(f"angle: expected a finite number of degrees, got {angle_deg}")
    r = torch.arange(height, dtype=torch.float64)[:, None] - (height - 1) / 2
    c = torch.arange(width, dtype=torch.float64)[None, :] - (width - 1) / 2
    a = math.radians(angle_deg)
    u = r * math.cos(a) + c * math.sin(a)  # along the major axis (angle from the row axis)
    v = -r * math.sin(a) + c * math.cos(a)
    ra, rb = 0.4 * min(height, width), 0.22 * min(height, width)
    signed = (1 - torch.sqrt((u / ra) ** 2 + (v / rb) ** 2)) * rb  # ~ distance inside the edge, px
    hard = (signed >= 0).to(torch.float64)
    soft = torch.sigmoid(signed / softness)
    return torch.stack([1 - hard, hard])[None], torch.stack([1 - soft, soft])[None]


def _fmt(values: torch.Tensor) -> str:
    return ", ".join(f"{v:9.3f}" for v in values.tolist())


def run(args: argparse.Namespace) -> int:
    hard, soft = toy_ellipse(args.height, args.width, args.angle, args.softness)
    if args.spacing is not None and not all(math.isfinite(s) and s > 0 for s in args.spacing):
        raise ValueError(f"spacing: expected two positive mm per pixel, got {args.spacing}")
    print(
        f"Toy shape: a {args.height} x {args.width} image, an ellipse at {args.angle:g} degrees from the row axis"
    )
    shades = " .:-=+*#%@"
    for row in soft[0, 1]:
        print(
            "  " + "".join(shades[min(int(p * len(shades)), len(shades) - 1)] for p in row.tolist())
        )
    print("\nDescriptors of the object class (hard mask | soft probabilities):")
    for name, fn in DESCRIPTORS.items():
        h, s = fn(hard)[0, 1], fn(soft)[0, 1]
        print(f"  {name:<14} {_fmt(h)}  |  {_fmt(s)}")
    if args.spacing is not None:
        print(f"\nWith a spacing of {args.spacing[0]:g} x {args.spacing[1]:g} mm (soft):")
        for name in ("size", "centroid", "dist_centroid", "length"):
            print(f"  {name:<14} {_fmt(DESCRIPTORS[name](soft, spacing=args.spacing)[0, 1])}")
    print("\nLog-barrier extension psi_t(z) for a constraint z <= 0 (z = value - bound):")
    zs = [-2.0, -0.5, -0.1, -0.01, 0.0, 0.1, 1.0]
    print("  t \\ z  " + "".join(f"{z:>9g}" for z in zs))
    for t in (1.0, 5.0, 25.0):
        vals = log_barrier_extension(torch.tensor(zs, dtype=torch.float64), t)
        print(f"  {t:<6g} " + "".join(f"{v:9.3f}" for v in vals.tolist()))
    print(
        "  (a barrier inside the feasible set, linear with slope t beyond z = -1/t^2; finite everywhere)"
    )
    return 0
