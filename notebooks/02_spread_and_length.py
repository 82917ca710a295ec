# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Spread and length
#
# *How far and how ragged: second moments as per-axis spread, the Laplacian length, and compactness.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/02_spread_and_length.ipynb)
#
# **You will**
#
# * compute the per-axis spread and check it by hand on a square, a disk and a tilted ellipse;
# * explain why the per-axis spread is not rotation invariant, and what the second-moment matrix adds;
# * count the Laplacian length on a mask and derive its factor of about 3.07 to the perimeter;
# * compare shapes by their compactness $L^2/S$.
#
# **Prerequisites:** notebook 01; variance, a little trigonometry, an average over angles.
#
# **Time** (2-core CPU, measured with `benchmarks/notebook_times.py`): about 10 s, in fast mode and
# in full mode (nothing is trained).

# %%
# Install the course's library only where it is missing (Colab, a bare kernel). torch is never
# reinstalled: pip keeps the torch that is already there.
try:
    import tutorial_lib  # noqa: F401
except ImportError:
    import subprocess
    import sys

    subprocess.check_call(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "git+https://github.com/shape-descriptors-course/shape-descriptors-course",
        ]
    )

# %%
# %matplotlib inline
import math
import os

import torch
import torch.nn.functional as F

from tutorial_lib import plots, widgets
from tutorial_lib.descriptors import (
    soft_centroid,
    soft_compactness,
    soft_covariance,
    soft_dist_centroid,
    soft_eccentricity,
    soft_length,
    soft_orientation,
    soft_size,
)
from tutorial_lib.device import get_device, set_cpu_threads
from tutorial_lib.widgets import make_shape

# %%
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
DTYPE = torch.float64  # exact comparisons below

# %%
device = get_device()
if device.type == "cpu":
    set_cpu_threads(1)  # the tensors here are small: one thread is the fastest
print(f"device: {device}, fast mode: {FAST}")

# %% [markdown]
# ## Spread: the "distance to centroid"
#
# The paper calls its third descriptor the *distance to the centroid*. In the authors' code it is the
# **per-axis root-mean-square distance** to the centroid, the square root of the normalised second
# central moment along each axis:
#
# $$D_i = \sqrt{\frac{\sum_p s(p)\,(p_i - C_i)^2}{S}}, \qquad i \in \{\text{row}, \text{col}\}.$$
#
# It is the standard deviation of the shape's pixel positions along each axis: one number says how far
# the object extends up–down, one how far left–right.
#
# Two shapes where it can be computed by hand:
#
# * an $s \times s$ square: the positions along an axis are $s$ consecutive integers, whose variance
#   is $(s^2 - 1)/12$;
# * a disk of radius $r$: for a uniform disk $\mathbb{E}[x^2] = r^2/4$, so $D = (r/2, r/2)$. The ellipse
#   at **two** spreads is the disk itself.

# %%
s = 10
square = torch.zeros(32, 32, dtype=DTYPE)
square[5 : 5 + s, 8 : 8 + s] = 1
D_square = soft_dist_centroid(square[None, None])[0, 0]
print("square:", D_square.tolist(), " expected", math.sqrt((s * s - 1) / 12))
assert torch.allclose(D_square, torch.full((2,), math.sqrt((s * s - 1) / 12), dtype=DTYPE))

r = 30
disk = make_shape("disk", size=2 * r + 8, radius=r, dtype=DTYPE)
D_disk = soft_dist_centroid(disk[None, None])[0, 0]
print("disk:  ", D_disk.tolist(), " expected about", r / 2)
assert torch.allclose(D_disk, torch.full((2,), r / 2, dtype=DTYPE), rtol=0.01)

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_descriptor_overlays(
    [square, disk],
    centroids=[soft_centroid(square[None, None])[0, 0], soft_centroid(disk[None, None])[0, 0]],
    spreads=[D_square, D_disk],
    titles=[f"{s}×{s} square", f"disk, r = {r}"],
)

# %% [markdown]
# ## Per axis means: not rotation invariant
#
# An ellipse with semi-axes $a$ (rows) and $b$ (columns) has spread $(a/2, b/2)$. Rotate it by $\theta$
# and the per-axis spreads mix:
#
# $$D_{\text{row}} = \tfrac12\sqrt{a^2\cos^2\theta + b^2\sin^2\theta}, \qquad
# D_{\text{col}} = \tfrac12\sqrt{a^2\sin^2\theta + b^2\cos^2\theta}.$$
#
# A 45° ellipse has the same per-axis spread as a disk. The full second-moment matrix (with its
# off-diagonal term) keeps what the per-axis spread loses: the **orientation** and the
# **eccentricity**, which the library also provides (`soft_orientation`, `soft_eccentricity`).

# %%
a, b = 40.0, 20.0
angles = [0.0, 30.0, 45.0, 90.0]
ellipses = torch.stack(
    [make_shape("ellipse", size=96, radius=a, aspect=b / a, angle=th, dtype=DTYPE) for th in angles]
)[:, None]
spreads = soft_dist_centroid(ellipses)[:, 0]
for th, d in zip(angles, spreads, strict=True):
    rad = math.radians(th)
    expect = (
        math.sqrt(a**2 * math.cos(rad) ** 2 + b**2 * math.sin(rad) ** 2) / 2,
        math.sqrt(a**2 * math.sin(rad) ** 2 + b**2 * math.cos(rad) ** 2) / 2,
    )
    print(
        f"θ = {th:4.0f}°: spread ({d[0]:.2f}, {d[1]:.2f}), continuous ellipse ({expect[0]:.2f}, {expect[1]:.2f})"
    )
    assert torch.allclose(d, torch.tensor(expect, dtype=DTYPE), rtol=0.02)

orientation = soft_orientation(ellipses)[:, 0, 0]
eccentricity = soft_eccentricity(ellipses)[:, 0, 0]
assert torch.allclose(orientation[1], torch.tensor(math.radians(30), dtype=DTYPE), atol=0.02)
assert torch.allclose(
    eccentricity, torch.tensor(math.sqrt(1 - (b / a) ** 2), dtype=DTYPE), atol=0.01
)

# The second-moment matrix (rr, rc, cc): its diagonal is the squared per-axis spread, and its
# off-diagonal (a² - b²)/4 · sin θ cos θ is what tells the 45° ellipse from the disk.
covariance = soft_covariance(ellipses)[:, 0]
assert torch.allclose(covariance[:, [0, 2]], spreads**2)
for th, (rr, rc, cc) in zip(angles, covariance.tolist(), strict=True):
    rad = math.radians(th)
    off_diagonal = (a**2 - b**2) / 4 * math.sin(rad) * math.cos(rad)
    print(
        f"θ = {th:4.0f}°: rr {rr:6.1f}, rc {rc:6.1f} (continuous {off_diagonal:6.1f}), cc {cc:6.1f}"
    )
    assert abs(rc - off_diagonal) <= 0.01 * (a**2 - b**2) / 8

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_descriptor_overlays(
    list(ellipses[:, 0]),
    centroids=soft_centroid(ellipses)[:, 0],
    spreads=spreads,
    titles=[f"θ = {th:g}°" for th in angles],
    texts=[f"D=({d[0]:.1f}, {d[1]:.1f})" for d in spreads],
)

# %% [markdown]
# The dotted and solid ellipses are drawn along the image axes because that is all the per-axis
# spread knows. Explore it: change the semi-axes, the angle and the softness.

# %%
# NBVAL_IGNORE_OUTPUT
widgets.spread_figure()

# %%
# NBVAL_IGNORE_OUTPUT
widgets.spread_explorer()

# %% [markdown]
# ## Length: a Laplacian quadratic form
#
# The authors measure the boundary with the quadratic form of the graph Laplacian of the pixel grid,
# each pair of 8-neighbours $p \sim q$ counted once:
#
# $$L = \sum_{p \sim q} \big(s(p) - s(q)\big)^2 = s^\top \mathcal{L}\, s .$$
#
# On a binary mask a pair contributes 1 exactly when it crosses the boundary, so $L$ **counts
# boundary-crossing neighbour pairs**. No $N \times N$ matrix is needed: it is the sum of four squared
# differences between the map and its shifted copies (vertical, horizontal, two diagonals).

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_shift_differences(square)

# %% [markdown]
# For the $s \times s$ square: $s$ vertical crossings at the top and $s$ at the bottom, $s$ horizontal
# ones on each side: $4s$. A diagonal pair $(p, p + (1, 1))$ crosses when $p$ is in the square's last
# row or column ($2s - 1$ pixels) or $p + (1, 1)$ is in its first row or column ($2s - 1$ again):
# $4s - 2$ per diagonal, $8s - 4$ for both. In all, $L = 12s - 4$. With 4-neighbours only, $4s$: the perimeter.

# %%
L8 = soft_length(square[None, None])[0, 0, 0]
L4 = soft_length(square[None, None], connectivity=4)[0, 0, 0]
print(f"{s}×{s} square: L (8-neighbours) = {L8:.0f} = 12s − 4;  L (4-neighbours) = {L4:.0f} = 4s")
assert L8 == 12 * s - 4 and L4 == 4 * s

# %% [markdown]
# ### Why about 3.1 × the perimeter
#
# Take a straight boundary with unit normal $n = (\cos\theta, \sin\theta)$. A neighbour offset $o$
# crosses it $|o \cdot n|$ times per unit of length. Summing over the four offsets counted once,
# $(1,0), (0,1), (1,1), (1,-1)$:
#
# $$|\cos\theta| + |\sin\theta| + |\cos\theta + \sin\theta| + |\cos\theta - \sin\theta|
# = |\cos\theta| + |\sin\theta| + 2\max(|\cos\theta|, |\sin\theta|).$$
#
# Averaged over all directions (a disk has them all) this is $\frac{4}{\pi} + \frac{4\sqrt2}{\pi} =
# \frac{4(1+\sqrt2)}{\pi} \approx 3.07$; with 4-neighbours only $\frac{4}{\pi} \approx 1.27$. So the
# Laplacian length is a perimeter in disguise, off by a known factor.

# %%
ratio_8 = 4 * (1 + math.sqrt(2)) / math.pi
ratio_4 = 4 / math.pi
radii = [10, 20, 45]
for radius in radii:
    d = make_shape("disk", size=2 * radius + 10, radius=radius, dtype=DTYPE)[None, None]
    perimeter = 2 * math.pi * radius
    r8 = float(soft_length(d)[0, 0, 0]) / perimeter
    r4 = float(soft_length(d, connectivity=4)[0, 0, 0]) / perimeter
    print(f"r = {radius:2d}: L / (2πr) = {r8:.3f} (8-neighbours), {r4:.3f} (4-neighbours)")
    assert abs(r8 - ratio_8) / ratio_8 < 0.02 and abs(r4 - ratio_4) / ratio_4 < 0.01
print(f"theory: {ratio_8:.3f} and {ratio_4:.3f}")

# %% [markdown]
# ### Soft maps have short boundaries
#
# A boundary blurred over $w$ pixels is crossed in $w$ steps of height about $1/w$: it contributes
# $w \cdot (1/w)^2 = 1/w$ instead of 1. The soft length falls like one over the softness, so a
# network can lower its length just by being unsure. That is one reason the length bounds are wide,
# and why the length is constrained from **above** in practice.

# %%
softness = [1.0, 2.0, 4.0]
soft_disks = torch.stack(
    [make_shape("disk", size=64, radius=12, softness=tau, dtype=DTYPE) for tau in softness]
)
L_soft = soft_length(soft_disks[:, None])[:, 0, 0]
print({tau: round(float(v), 1) for tau, v in zip(softness, L_soft, strict=True)})
products = L_soft * torch.tensor(softness, dtype=DTYPE)
assert (L_soft[1:] < L_soft[:-1]).all()
assert (products.max() - products.min()) / products.mean() < 0.05  # L ∝ 1 / softness

# %% [markdown]
# The spread's own gradient, for comparison: with $D_i^2 = \sum s\,(p_i - C_i)^2 / S$ (the centroid
# term drops out, since $\sum s\,(p_i - C_i) = 0$),
#
# $$\frac{\partial D_i}{\partial s(p)} = \frac{(p_i - C_i)^2 - D_i^2}{2\,S\,D_i},$$
#
# a function of $p_i$ alone: a **parabolic trough** along axis $i$, constant along the other axis,
# negative within $D_i$ of the centroid and positive beyond. It asks for mass farther out or closer
# in along that axis, anywhere across it.

# %%
soft_blob = make_shape("disk", size=48, radius=12, centre=(20.0, 27.0), softness=1.0, dtype=DTYPE)
g_spread = widgets.descriptor_gradient(soft_blob, "spread row")
S_b = soft_size(soft_blob[None, None])[0, 0, 0]
row_C = soft_centroid(soft_blob[None, None])[0, 0, 0]
row_D = soft_dist_centroid(soft_blob[None, None])[0, 0, 0]
row_index = torch.arange(48, dtype=DTYPE)[:, None].expand(48, 48)
trough = ((row_index - row_C) ** 2 - row_D**2) / (2 * S_b * row_D)
assert torch.allclose(g_spread, trough, atol=1e-10)  # the closed form above
assert torch.allclose(g_spread, g_spread[:, :1].expand(48, 48))  # constant along the columns

# %% [markdown]
# ### Its gradient lives on the boundary
#
# $\partial L / \partial s(p) = 2 \sum_{q \sim p} (s(p) - s(q))$: twice the graph Laplacian of $s$.
# It is zero wherever the map is flat and pushes the boundary to be smooth and short.

# %%
blob = make_shape("crescent", size=48, radius=16, softness=1.0, dtype=DTYPE)
g_length = widgets.descriptor_gradient(blob, "length")
kernel = -torch.ones(1, 1, 3, 3, dtype=DTYPE)
kernel[0, 0, 1, 1] = 8.0
laplacian = F.conv2d(blob[None, None], kernel)[0, 0]  # interior pixels, 8 neighbours each
assert torch.allclose(g_length[1:-1, 1:-1], 2 * laplacian, atol=1e-8)

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_gradient_maps({"∂L / ∂s(p) = 2 (Laplacian s)(p)": g_length}, prob=blob, panel=3.6)

# %%
# NBVAL_IGNORE_OUTPUT
widgets.length_figure()

# %%
# NBVAL_IGNORE_OUTPUT
widgets.length_explorer()

# %% [markdown]
# ## Compactness
#
# $$\text{compactness} = \frac{L^2}{S}$$
#
# A length squared over an area has no unit: it does not change when the shape is scaled. For disks it
# is $(3.07 \cdot 2\pi r)^2 / (\pi r^2) = 4\pi \cdot 3.07^2 \approx 119$ whatever the radius.
#
# With the true perimeter the disk would be the most compact shape of all. The Laplacian length is
# not the true perimeter: it weighs a boundary by its **direction**. Along an axis it counts about
# 2.99 per pixel of true length, along a diagonal about 2.82, and more in between (3.07 on average
# around a circle). Shapes whose sides follow the grid's 8 directions pay less, so a regular
# **octagon** is more compact than the disk for this length: an anisotropic perimeter has its own
# most compact shape. The authors' code computes the compactness but does not constrain it.

# %%
disks = [
    make_shape("disk", size=2 * radius + 10, radius=radius, dtype=DTYPE)[None, None]
    for radius in radii
]
compact_disks = torch.stack([soft_compactness(d)[0, 0, 0] for d in disks])
expected = 4 * math.pi * ratio_8**2
print("disks:", [round(float(c), 1) for c in compact_disks], f"(theory {expected:.1f})")
assert ((compact_disks - expected).abs() / expected < 0.04).all()

shapes = {
    kind: make_shape(kind, size=64, radius=20, dtype=DTYPE)
    for kind in ("disk", "octagon", "square", "ellipse", "crescent")
}
compact = {kind: float(soft_compactness(m[None, None])[0, 0, 0]) for kind, m in shapes.items()}
print({kind: round(c, 1) for kind, c in compact.items()})
# the direction weights, measured on long straight boundaries (80-pixel sides)
square, diamond = (
    make_shape("square", size=128, radius=40, dtype=DTYPE),
    make_shape("square", size=128, radius=40, angle=45, dtype=DTYPE),
)
per_pixel_axis = float(soft_length(square[None, None])) / (4 * float(square.amax(1).sum()))
per_pixel_diagonal = float(soft_length(diamond[None, None])) / (4 * math.sqrt(float(diamond.sum())))
print(f"length per pixel of boundary: axis {per_pixel_axis:.2f}, diagonal {per_pixel_diagonal:.2f}")
assert per_pixel_diagonal < per_pixel_axis < ratio_8  # both grid directions cost less than average
# with the true perimeter P²/S: disk 4π ≈ 12.6 < octagon 32 tan(22.5°) ≈ 13.3 < square 16
assert compact["octagon"] < compact["disk"] < compact["square"]
assert compact["crescent"] > 2 * compact["disk"]

# %%
# A binary s x s square by hand: 12 s - 4 neighbour pairs cross its boundary (8-connectivity), its
# area is s², so its compactness is (12 s - 4)² / s² (about 144 for a large square, more than a disk).
for s in (3, 10, 25):
    square = torch.zeros(1, 1, s + 4, s + 4, dtype=DTYPE)
    square[..., 2 : 2 + s, 2 : 2 + s] = 1
    assert math.isclose(soft_compactness(square).item(), (12 * s - 4) ** 2 / s**2, rel_tol=1e-9)

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_maps(
    list(shapes.values()),
    titles=[f"{kind}: L²/S = {c:.0f}" for kind, c in compact.items()],
    cmap="gray",
)

# %% [markdown]
# ## Exercises
#
# Each exercise states a task; replace the stub in the cell below it by your answer, then run the
# check cell after it: it tries your answer on inputs of its own and prints ✓, or ✗ with a hint.
# While the stub is untouched, the check runs the reference solution instead and says so. The
# reference solutions are in `tutorial_lib/solutions.py`: open it once you have tried.

# %%
from tutorial_lib.exercises import check

# %% [markdown]
# ### Exercise 1: the spread by hand
#
# Write `spread_by_hand(p)` for one probability map `p` of shape `(H, W)`: return a tensor of shape
# `(2,)`, the RMS distance to the centroid along the rows and along the columns, in pixels:
# $D_i = \sqrt{\sum_x p(x)\,(x_i - C_i)^2 / S}$. Without calling `soft_dist_centroid`.


# %%
def spread_by_hand(p: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError  # your code here


# %%
check("02.1", spread_by_hand)

# %% [markdown]
# ### Exercise 2: a 4-neighbour length by hand
#
# Write `length_4_by_hand(mask)` for a binary mask (a float tensor of shape `(H, W)` holding 0 and 1):
# return, as an `int`, the number of pairs of 4-neighbours (up-down or left-right, both pixels in the
# image) with one pixel inside the mask and one outside, each pair counted once. On a binary mask this
# is `soft_length(..., connectivity=4)`; count it without calling `soft_length`.


# %%
def length_4_by_hand(mask: torch.Tensor) -> int:
    raise NotImplementedError  # your code here


# %%
check("02.2", length_4_by_hand)

# %% [markdown]
# ## Recap
#
# | descriptor | formula | on a binary mask | gradient |
# |---|---|---|---|
# | size | $\sum s$ | area | 1 everywhere |
# | centroid | $\sum p\,s / S$ | mean position | linear ramp |
# | spread | $\sqrt{\sum s\,(p-C)^2 / S}$ per axis | std of positions, $r/2$ for a disk | parabolic trough along its axis |
# | length | $\sum_{p\sim q}(s(p)-s(q))^2$ | crossing pairs, ≈ 3.07 × perimeter | Laplacian, on the boundary |
#
# The per-axis spread cannot tell a 45° ellipse from a disk (the second-moment matrix can), the
# Laplacian length is about 3.07 × the perimeter, and a soft boundary is a short one.
#
# **Next:** [03 · Constrained optimisation](03_constrained_optimisation.ipynb): how bounds on these
# numbers become a loss, and a segmentation from four of them.
