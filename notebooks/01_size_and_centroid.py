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
# # 01 · Size and centroid
#
# *How much and where: the two simplest descriptors, hard and soft, and the gradients they send.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/01_size_and_centroid.ipynb)
#
# **You will**
#
# * compute the size and the centroid of a mask, hard (pixels) and soft (probabilities);
# * predict how blurring a shape moves its soft size and centroid, and why ±10 % bounds ask a network
#   for confident outputs;
# * derive the gradients $\partial S / \partial s(p)$ and $\partial C / \partial s(p)$ and check them
#   against autograd;
# * measure several classes at once, in pixels and in mm.
#
# **Prerequisites:** notebook 00; sums, weighted means and partial derivatives.
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
from skimage.measure import regionprops

from tutorial_lib import plots, widgets
from tutorial_lib.descriptors import soft_centroid, soft_size
from tutorial_lib.device import get_device, set_cpu_threads
from tutorial_lib.widgets import make_shape

# %%
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
SIZE = 64  # image side in pixels
RADIUS = 12.0

# %%
device = get_device()
if device.type == "cpu":
    set_cpu_threads(1)  # the tensors here are small: one thread is the fastest
print(f"device: {device}, fast mode: {FAST}")

# %% [markdown]
# ## Shapes of `(batch, classes, H, W)`
#
# Every descriptor takes probabilities of shape $(B, K, H, W)$ (or $(B, K, D, H, W)$ in 3-D) and
# returns $(B, K, n)$: one row of $n$ values per image and per class. A single map becomes a batch of
# one image with one class by `m[None, None]`.
#
# `make_shape` draws the test shapes of this course: binary when `softness=0`, otherwise
# $\sigma(d/\tau)$ where $d$ is the signed distance to the boundary and $\tau$ the softness.

# %%
disk = make_shape("disk", size=SIZE, radius=RADIUS)
print(disk.shape, disk.dtype, disk.unique().tolist())
print(soft_size(disk[None, None]).shape)  # (B, K, 1)

# %% [markdown]
# ## Size
#
# $$S = \sum_{p \in \Omega} s(p)$$
#
# On a binary mask this counts the pixels: it **is** the area. On a probability map it is the
# expected number of foreground pixels.

# %%
S = soft_size(disk[None, None])[0, 0, 0]
print(f"size of the binary disk: {S:.0f} pixels;  π r² = {math.pi * RADIUS**2:.1f}")
assert S == disk.sum()  # the soft size of a binary mask equals its area
assert (
    abs(S - math.pi * RADIUS**2) / (math.pi * RADIUS**2) < 0.02
)  # a pixelated disk is close to π r²

# %% [markdown]
# ## Centroid
#
# $$C_i = \frac{\sum_p p_i\, s(p)}{S}, \qquad i \in \{\text{row}, \text{col}\}$$
#
# the probability-weighted mean position. Coordinates are array indices, so the centre of a 64×64
# image is (31.5, 31.5).

# %%
C = soft_centroid(disk[None, None])[0, 0]
print("centroid of the centred disk:", C.tolist())
assert torch.allclose(C, torch.full((2,), (SIZE - 1) / 2), atol=1e-4)  # the image centre

# Moving the shape moves the centroid by the same amount (translation equivariance).
moved = make_shape("disk", size=SIZE, radius=RADIUS, centre=(20.0, 41.0))
C_moved = soft_centroid(moved[None, None])[0, 0]
assert torch.allclose(C_moved, torch.tensor([20.0, 41.0]), atol=1e-4)

# %% [markdown]
# ## Softness
#
# A network never outputs a binary mask. What happens to the descriptors when the boundary is blurred
# over a few pixels?

# %%
softness = [0.0, 0.5, 1.0, 2.0, 4.0]
maps = [
    make_shape("crescent", size=SIZE, radius=18, softness=tau, dtype=torch.float64)
    for tau in softness
]
batch = torch.stack(maps)[:, None]  # five images, one class: (5, 1, H, W)
sizes = soft_size(batch)[:, 0, 0]
centroids = soft_centroid(batch)[:, 0]
for tau, s, c in zip(softness, sizes, centroids, strict=True):
    print(f"softness {tau:3.1f}: size {s:7.1f}  centroid ({c[0]:.2f}, {c[1]:.2f})")

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_descriptor_overlays(
    maps,
    centroids=centroids,
    titles=[f"softness {tau:g}" for tau in softness],
    texts=[f"S={s:.0f}  C_col={c[1]:.1f}" for s, c in zip(sizes, centroids, strict=True)],
)

# %% [markdown]
# Two lessons:
#
# * the soft size **grows** with the softness: outside a convex boundary there is more room than
#   inside, so the blurred halo adds more probability than it removes;
# * the centroid of a **symmetric** shape does not move, but the crescent's centroid drifts towards
#   its open side, where the halo is.
#
# The paper bounds the size within ±10 % of the true one. For this crescent a softness of 1 stays
# inside (+3 %), but softness 2 is already above the upper bound (+13 %) and softness 4 far above
# (+41 %). So a ±10 % upper bound does not leave room for blurry outputs: it pushes the network
# towards **confident** (nearly hard) probabilities. As the softness goes to 0, the soft values
# become the hard ones.

# %%
gaps = (sizes[1:] - sizes[0]).abs()
assert (gaps[1:] > gaps[:-1]).all()  # farther from the hard value as the softness grows
excess = sizes / sizes[0] - 1  # relative to the hard size, a pixel count of the binary mask
print("size excess:", [f"{e:+.0%}" for e in excess.tolist()])
assert sizes[0] == make_shape("crescent", size=SIZE, radius=18).sum()  # softness 0: the pixel count
within_ten_percent = [tau for tau, e in zip(softness, excess.tolist(), strict=True) if e <= 0.10]
assert within_ten_percent == [0.0, 0.5, 1.0]  # softness 2 and 4 break a +10 % upper bound
assert (
    centroids[:, 0] - (SIZE - 1) / 2
).abs().max() < 1e-6  # the crescent is symmetric about its row axis
batch_disks = torch.stack(
    [make_shape("disk", size=SIZE, radius=RADIUS, softness=tau) for tau in softness]
)
assert torch.allclose(
    soft_centroid(batch_disks[:, None])[:, 0], torch.tensor((SIZE - 1) / 2), atol=1e-3
)

# %% [markdown]
# ## Gradients: what a network is told
#
# Training pushes each pixel's probability along $\partial f / \partial s(p)$. For the size and the
# centroid these gradients are simple:
#
# $$\frac{\partial S}{\partial s(p)} = 1, \qquad
# \frac{\partial C_i}{\partial s(p)} = \frac{p_i - C_i}{S}.$$
#
# The size asks every pixel alike; the centroid asks pixels on one side to grow and on the other to
# shrink, more strongly the farther they are, a linear ramp through the centroid.

# %%
soft_disk = make_shape(
    "disk", size=SIZE, radius=RADIUS, centre=(28.0, 36.0), softness=1.0, dtype=torch.float64
)
grads = {
    name: widgets.descriptor_gradient(soft_disk, name)
    for name in ("size", "centroid row", "centroid col")
}

S = soft_size(soft_disk[None, None])[0, 0, 0]
C = soft_centroid(soft_disk[None, None])[0, 0]
rows = torch.arange(SIZE, dtype=torch.float64)[:, None].expand(SIZE, SIZE)
cols = torch.arange(SIZE, dtype=torch.float64)[None, :].expand(SIZE, SIZE)
assert torch.allclose(grads["size"], torch.ones_like(soft_disk))
assert torch.allclose(grads["centroid row"], (rows - C[0]) / S, atol=1e-6)
assert torch.allclose(grads["centroid col"], (cols - C[1]) / S, atol=1e-6)

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_gradient_maps(grads, prob=soft_disk, suptitle="∂ descriptor / ∂ s(p) for a soft disk")

# %% [markdown]
# Neither gradient knows where the *object* is: the size's asks every pixel alike, wherever it is
# (it has no side), and the centroid's rewards probability anywhere on the side it should move to.
# That is why the centroid alone cannot segment, and why the size, the spread (notebook 02) and the
# image itself must help.

# %% [markdown]
# ## Several classes, and physical units
#
# With a softmax over $K$ classes, each class has its own descriptors; the background is a class like
# the others. With a pixel `spacing` (mm per axis) the same functions give mm² and mm, the units in
# which anatomy is described (notebook 07).

# %%
fg = make_shape("disk", size=SIZE, radius=RADIUS, softness=1.0)
probs = torch.stack([1 - fg, fg])[None]  # (1, 2, H, W): background, foreground
sizes_k = soft_size(probs)[0, :, 0]
spacing = (1.5, 1.5)  # mm per pixel, (row, col)
size_mm2 = soft_size(probs, spacing=spacing)[0, 1, 0]
centroid_mm = soft_centroid(probs, spacing=spacing)[0, 1]

# %%
# Checked against scikit-image on a binary disk, with a pixel that is not square (1.5 x 0.5 mm)
hard = make_shape("disk", size=SIZE, radius=RADIUS)
region = regionprops(hard.numpy().astype(int), spacing=(1.5, 0.5))[0]
hard_probs = torch.stack([1 - hard, hard])[None].double()
assert soft_size(hard_probs, spacing=(1.5, 0.5))[0, 1, 0].item() == region.area
assert torch.allclose(
    soft_centroid(hard_probs, spacing=(1.5, 0.5))[0, 1], torch.tensor(region.centroid).double()
)
print(
    f"foreground: {sizes_k[1]:.0f} px = {size_mm2:.0f} mm², centroid ({centroid_mm[0]:.2f}, {centroid_mm[1]:.2f}) mm"
)

# %% [markdown]
# ## Explore
#
# Move, resize and rotate a shape, change its softness, and pick the descriptor whose gradient you
# want to see. The table compares the soft values with those of the hard shape. Try the crescent with
# a large softness, and the gradient of the length (notebook 02).

# %%
# NBVAL_IGNORE_OUTPUT
widgets.shape_figure()  # the explorer's figure for its default settings

# %%
# NBVAL_IGNORE_OUTPUT
widgets.shape_explorer()

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
# ### Exercise 1: the soft size by hand
#
# Write `soft_size_by_hand(p)` for one probability map `p`: a float tensor of shape `(H, W)`, values
# in [0, 1]. Return its soft size in pixels (a 0-d tensor or a float), without calling `soft_size`.


# %%
def soft_size_by_hand(p: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError  # your code here


# %%
check("01.1", soft_size_by_hand)

# %% [markdown]
# ### Exercise 2: the centroid by hand
#
# Write `centroid_by_hand(p)` for the same `p` (H, W): return a tensor of shape `(2,)`, the centroid
# (row, col) in pixels, where pixel `(i, j)` sits at row `i`, column `j` (array indices from 0).
# Without calling `soft_centroid`.


# %%
def centroid_by_hand(p: torch.Tensor) -> torch.Tensor:
    raise NotImplementedError  # your code here


# %%
check("01.2", centroid_by_hand)

# %% [markdown]
# ## Recap
#
# * On a binary mask the soft size $\sum_p s(p)$ is the area and the centroid $\sum_p p\,s(p) / S$
#   the mean position; on probabilities they are expectations.
# * Blurring a convex shape grows its soft size, so a ±10 % upper bound asks for confident outputs.
# * $\partial S / \partial s(p) = 1$ and $\partial C_i / \partial s(p) = (p_i - C_i) / S$: neither
#   gradient knows where the object is; the image has to tell.
# * With a pixel `spacing` the same functions give mm² and mm.
#
# **Next:** [02 · Spread and length](02_spread_and_length.ipynb): the spread around the centroid and
# the length of the boundary.
