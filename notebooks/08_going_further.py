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
# # 08 · Going further
#
# *Descriptors in 3-D, descriptors of your own, the invariance hypothesis, and exercises that check themselves.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/08_going_further.ipynb)
#
# **You will**
#
# * compute the descriptors of volumes in 3-D, in mm;
# * write a descriptor of your own and check its gradient with `gradcheck`;
# * test the resolution part of the invariance hypothesis;
# * solve exercises that check themselves.
#
# **Prerequisites:** notebooks 01 to 03 (07 for descriptors in mm); 3-D coordinates.
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

from tutorial_lib import plots
from tutorial_lib.bounds import labels_to_onehot, precise_bounds
from tutorial_lib.data.datasets import load_split
from tutorial_lib.data.storage import read_manifest, read_volume
from tutorial_lib.data.toy.dataset import ensure_toy_dataset
from tutorial_lib.descriptors import (
    soft_centroid,
    soft_dist_centroid,
    soft_length,
    soft_size,
)
from tutorial_lib.device import get_device, set_cpu_threads
from tutorial_lib.penalties import log_barrier_extension
from tutorial_lib.widgets import make_shape

# %%
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
IMAGE_SIZE = 64 if FAST else 128
N_PATIENTS = 30
SEED = 0
DTYPE = torch.float64

# %%
device = get_device()
if device.type == "cpu":
    set_cpu_threads(1)  # the tensors here are small: one thread is the fastest
print(f"device: {device}, fast mode: {FAST}")

# %% [markdown]
# ## 1. Descriptors in 3-D
#
# The paper works slice by slice, as the authors' code does (2-D only). Nothing in the definitions is
# 2-D: with voxel coordinates $(z, y, x)$ the same sums give a volume, a 3-D centroid, three spreads,
# and a surface. The library's functions accept $(B, K, D, H, W)$.
#
# Facts to check:
#
# * a ball of radius $r$: volume $\frac43\pi r^3$, spread $r/\sqrt5$ per axis (for a uniform ball
#   $\mathbb{E}[x^2] = r^2/5$, against $r^2/4$ for a disk);
# * an $s \times s \times s$ cube with 6-neighbours: each face is crossed $s^2$ times, so $L = 6s^2$ (the
#   3-D version of the square's $4s$).

# %%
r = 16
n = 2 * r + 6
axis = torch.arange(n, dtype=DTYPE) - (n - 1) / 2
ball = (
    (axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2) <= r * r
).to(DTYPE)
ball = ball[None, None]  # (B=1, K=1, D, H, W)
volume = soft_size(ball)[0, 0, 0]
spread = soft_dist_centroid(ball)[0, 0]
print(
    f"ball: volume {volume:.0f} (4/3 π r³ = {4 / 3 * math.pi * r**3:.0f}), spread {spread.tolist()}"
)
assert abs(volume - 4 / 3 * math.pi * r**3) / (4 / 3 * math.pi * r**3) < 0.01
assert torch.allclose(spread, torch.full((3,), r / math.sqrt(5), dtype=DTYPE), rtol=0.01)

s = 6
cube = torch.zeros(1, 1, 12, 12, 12, dtype=DTYPE)
cube[..., 3 : 3 + s, 3 : 3 + s, 3 : 3 + s] = 1
assert soft_length(cube, connectivity=6)[0, 0, 0] == 6 * s**2

# %% [markdown]
# ### A toy patient in 3-D, in mm
#
# Stack the slices of one toy patient into a volume and use its spacing (slice thickness 10 mm, a
# few mm in plane): the centroid and spread of each structure become an ellipsoid in mm, like the
# authors' figure of the RV, myocardium and LV at systole and diastole.

# %%
root = ensure_toy_dataset("toy-cardiac", size=IMAGE_SIZE, n_patients=N_PATIENTS, seed=SEED)
manifest = read_manifest(root)
record = next(v for v in manifest["volumes"] if v["split"] == "train")
vol = read_volume(root, "train", record["id"])
label = torch.from_numpy(vol["label"]).long()  # (S, H, W)
spacing3d = tuple(float(x) for x in vol["spacing"])  # (slice, row, col) mm
onehot = labels_to_onehot(label[None], len(manifest["classes"]), DTYPE)  # (1, K, S, H, W)
centroids = soft_centroid(onehot, spacing=spacing3d)[0]
spreads = soft_dist_centroid(onehot, spacing=spacing3d)[0]
volumes_ml = soft_size(onehot, spacing=spacing3d)[0, :, 0] / 1000  # mm³ -> mL
names = manifest["classes"]
for k in (1, 2, 3):
    print(
        f"{names[k]:11s} {volumes_ml[k]:6.1f} mL, centroid {[round(x) for x in centroids[k].tolist()]} mm"
    )

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_volume_descriptors(
    {names[k]: centroids[k] for k in (1, 2, 3)},
    {names[k]: spreads[k] for k in (1, 2, 3)},
    title=f"{record['id']}: centroid and 2·spread ellipsoids (mm)",
)

# %% [markdown]
# ## 2. Descriptors of your own
#
# Any differentiable function of the probabilities is a candidate, as long as it is cheap, defined on
# soft maps, and known (or bounded) without pixel labels. An example that anatomy gives for free: the
# heart lies inside the body. The **fraction of a class inside a region** $R$
#
# $$\rho = \frac{\sum_p s(p)\,R(p)}{\sum_p s(p)}$$
#
# should be close to 1; a lower bound $\rho \ge 0.95$ is a constraint like the others, and the
# log-barrier extension turns it into a loss. It is scale-free and needs neither the size nor the
# position of the structure.


# %%
def fraction_inside(p: torch.Tensor, region: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """ρ = Σ p·R / Σ p per image and class: (B, K, 1), for p (B, K, H, W) and a region (H, W) in [0, 1]."""
    inside = (p * region).sum(dim=(-2, -1))
    return (inside / (p.sum(dim=(-2, -1)) + eps))[..., None]


train = load_split(root, "train")
body = (train.images[:, 0] > 0.15).to(DTYPE)  # a rough body mask: the bright disk of the image
body = (F.max_pool2d(body[:, None], 5, 1, 2)[:, 0] > 0).to(DTYPE)  # close small holes
truth = labels_to_onehot(train.labels[:8].long(), 4, DTYPE)
rho = torch.stack([fraction_inside(truth[i : i + 1], body[i]) for i in range(8)])[:, 0, 1:, 0]
rho_present = rho[truth[:, 1:].sum(dim=(-2, -1)) > 0]  # classes present on these slices
print(
    f"the body covers {body.mean():.0%} of the image; the fraction of RV, myocardium and LV "
    f"inside it is at least {rho_present.min():.3f}"
)
assert body.mean() < 0.8  # not the whole image: the bound below says something
assert (rho_present > 0.99).all()

# A soft map is pushed inside: the barrier's gradient is zero deep inside the feasible set and points
# towards the region elsewhere. gradcheck confirms the descriptor and the penalty are differentiable.
probe = torch.rand(1, 1, 12, 12, dtype=DTYPE, requires_grad=True)
region = torch.zeros(12, 12, dtype=DTYPE)
region[3:9, 3:9] = 1
assert torch.autograd.gradcheck(
    lambda q: log_barrier_extension(0.95 - fraction_inside(q, region), 5.0), (probe,)
)

# %% [markdown]
# ### Your descriptor in the loss
#
# `register_descriptor(name, fn, n_values)` adds it to the registry, next to the built-in ones, after
# checking it on random probabilities: right shape `(B, K, n)`, dtype kept, finite values and a
# finite gradient (a `.detach()` or a numpy step would be refused with a message saying so). Then
# `DescriptorTerm("fraction_inside", ...)` works like any term. One fixed region for every slice:
# where the body is in most training slices. `probe_shape` probes it at the images' size.
#
# Below, a free map (logits) is fitted to one slice's sizes, once with the size term alone and once
# with $\rho \ge 0.95$ added: the size term cannot tell inside from outside (a uniform map keeps
# $\rho$ at the region's share of the image), the new term pulls the mass inside. Its weight is 1,
# not 0.01: a ratio's gradient per pixel is about $1/S$, hundreds of times smaller than a size's.

# %%
from tutorial_lib.descriptors import DESCRIPTORS, register_descriptor, unregister_descriptor
from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss

body_region = (body.mean(0) > 0.5).to(DTYPE)  # the body in most training slices


def fraction_in_region(p: torch.Tensor) -> torch.Tensor:
    return fraction_inside(p, body_region.to(p))


if "fraction_inside" in DESCRIPTORS:  # the cell is run again
    unregister_descriptor("fraction_inside")
register_descriptor(
    "fraction_inside", fraction_in_region, n_values=1, probe_shape=body_region.shape
)

has_all = (train.labels[:, None] == torch.arange(1, 4)[None, :, None, None]).flatten(2).any(-1)
target = train.labels[int(torch.nonzero(has_all.all(1))[0])][None].long()  # RV, Myo and LV in it
size_term = DescriptorTerm("size", (1, 2, 3), margin=0.1)
inside_term = DescriptorTerm("fraction_inside", (1, 2, 3), lower=0.95, upper=1.0, weight=1.0)


def fit(terms: list[DescriptorTerm], steps: int = 150) -> torch.Tensor:
    """Fit free logits to the terms (t x 1.05 per step); the fraction inside of RV, Myo and LV."""
    logits = torch.zeros(1, 4, *target.shape[1:], dtype=DTYPE, requires_grad=True)
    loss, optimiser = ShapeDescriptorLoss(terms), torch.optim.Adam([logits], lr=0.1)
    for step in range(steps):
        value = loss(logits.softmax(1), target, 1.05**step)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
    return DESCRIPTORS["fraction_inside"](logits.detach().softmax(1))[0, 1:, 0]


rho_size_only, rho_with_term = fit([size_term]), fit([size_term, inside_term])
print(
    f"the region covers {body_region.mean():.0%} of the image; fraction inside (RV, Myo, LV), "
    f"size term only: {[round(r, 3) for r in rho_size_only.tolist()]}, with ρ >= 0.95: "
    f"{[round(r, 3) for r in rho_with_term.tolist()]}"
)
assert (rho_size_only < 0.9).all()  # sizes alone leave the mass where it started: everywhere
assert (rho_with_term >= 0.95).all()  # the registered descriptor's bound holds

# %% [markdown]
# ## 3. The invariance hypothesis
#
# A mask depends on the image; its descriptors, measured in mm, describe the **anatomy**. The same
# heart imaged by another scanner, another protocol, another modality (MRI, CT, ultrasound) has a
# different appearance and the same size, spread and boundary length. The hypothesis the paper
# raises: bounds on descriptors, and anatomical priors in particular, transfer across modalities where
# pixel labels and appearance do not, so one description of the anatomy could supervise networks for
# all of them.
#
# What can be checked here is the part that does not need a second modality: descriptors in mm do not
# depend on the **resolution** at which the anatomy is sampled. Below, the size, centroid, spread and
# length of 16 training label maps, in mm, against the same maps at half the resolution.

# %%
lab = labels_to_onehot(train.labels[:16].long(), 4, DTYPE)  # (16, K, H, W)
sp = train.spacing[0, 1:].to(DTYPE)
half = lab[..., ::2, ::2]  # the same anatomy sampled at half the resolution
size_full = soft_size(lab, spacing=sp)[:, 1:, 0]
size_half = soft_size(half, spacing=2 * sp)[:, 1:, 0]
present = size_full > 0
rel = ((size_half - size_full).abs() / size_full.clamp_min(1))[present]
shift = (soft_centroid(half, spacing=2 * sp) - soft_centroid(lab, spacing=sp))[:, 1:][present]
print(
    f"size in mm²: {rel.median():.1%} median change; centroid: {shift.abs().median():.2f} mm median "
    f"change, {shift.mean(0).abs().max():.2f} mm mean shift (a pixel is {sp[0]:.2f} mm)"
)
assert rel.median() < 0.05  # the area in mm² barely changes
assert shift.abs().median() < sp[0]  # the centroid moves by less than a pixel
# `[::2]` keeps rows and columns 0, 2, 4, ...: coarse index j at 2·sp is the fine index 2j at sp, the
# same position, so there is no systematic offset; the centroid moves only by what sampling drops
assert shift.mean(0).abs().max() < sp[0] / 4
for name, fn in (("spread", soft_dist_centroid), ("length", soft_length)):
    full_mm, half_mm = fn(lab, spacing=sp)[:, 1:], fn(half, spacing=2 * sp)[:, 1:]
    change = ((half_mm - full_mm).abs() / full_mm.abs().clamp_min(1e-9))[present]
    print(f"{name} in mm: {change.median():.1%} median change")
    assert change.median() < 0.05

# %% [markdown]
# The figure shows one slice three ways. The "another contrast" panel is an **illustration**, not a
# test: its labels are the same label map, so every descriptor is identical by construction; only
# what the network would see changes. A test of the hypothesis needs a second modality of the same
# anatomy, which the toy data does not have. The half-resolution panel is what was measured above.

# %%
# NBVAL_IGNORE_OUTPUT
i = int(torch.nonzero(present.all(dim=1))[0])
image = train.images[i, 0]
plots.plot_label_overlays(
    [image, 1 - image**0.7, image[::2, ::2]],
    [train.labels[i], train.labels[i], train.labels[i, ::2, ::2]],
    class_names=names,
    titles=["MRI-like", "another contrast", "half resolution"],
)

# %% [markdown]
# ## 4. Exercises
#
# Each exercise states a task; replace the stub in the cell below it by your answer, then run the
# check cell after it: it tries your answer on inputs of its own and prints ✓, or ✗ with a hint.
# While the stub is untouched, the check runs the reference solution instead and says so. The
# reference solutions are in `tutorial_lib/solutions.py`: open it once you have tried.

# %%
from tutorial_lib.exercises import check

# %% [markdown]
# ### Exercise 1: bounds by hand
#
# Write `percentage_bounds(values, margin)` for a float tensor `values` of any shape and a float
# `margin >= 0`: return $[v - m|v|,\, v + m|v|]$ for each value, clamped below at 0, stacked on a new
# last axis of size 2 (shape `(*values.shape, 2)`): the authors' `PreciseBounds` in percentage mode.
# Without calling `precise_bounds`, whose answer on two values is below for comparison.

# %%
print(precise_bounds(torch.tensor([40.0, -5.0]), 0.1).tolist())


# %%
def percentage_bounds(values: torch.Tensor, margin: float) -> torch.Tensor:
    raise NotImplementedError  # your code here


# %%
check("08.1", percentage_bounds)

# %% [markdown]
# ### Exercise 2: a volume in mL
#
# The volume of a structure is the sum of its slices' areas times the slice thickness. Write
# `volume_ml(label, k, spacing)` for an integer label volume `(S, H, W)`, a class `k` and a
# (slice, row, col) spacing in mm: return the volume of class `k` in mL (a float), **using only 2-D
# quantities** (one slice's area at a time, in mm²).


# %%
def volume_ml(label: torch.Tensor, k: int, spacing: tuple[float, float, float]) -> float:
    raise NotImplementedError  # your code here


# %%
check("08.2", volume_ml)

# %% [markdown]
# ### Exercise 3: the 26-neighbour cube
#
# With all 26 neighbours (each pair counted once: 3 face offsets like $(1,0,0)$, 6 edge offsets like
# $(1,1,0)$, 4 corner offsets like $(1,1,1)$), how long is an $s \times s \times s$ cube? Write
# `cube_length_26(s)` returning that length (an `int`) for an integer side `s >= 1`. Hint: a pair
# $(p, p + o)$ crosses when exactly one end is inside, and the cube overlaps its copy shifted by $o$
# in $\prod_i (s - |o_i|)$ voxels. (In 2-D the same count gives the square's $12s - 4$.)


# %%
def cube_length_26(s: int) -> int:
    raise NotImplementedError  # your code here


# %%
check("08.3", cube_length_26)

# %% [markdown]
# ### Exercise 4: which descriptor tells a crescent from a blob?
#
# Notebook 03 optimised a free mask from four descriptors of a tilted ellipse; with a crescent as the
# target it finds a blob. Below, a crescent and a disk of the same size. Set `CRESCENT_DESCRIPTOR` to
# the name (a key of `tutorial_lib.descriptors.DESCRIPTORS`, a string) of a descriptor that tells the
# crescent from every blob of its size and centroid: the check compares its value on the crescent
# with its values on a disk and on ellipses (aspect 0.3 to 1, upright or lying) and wants it more
# than 50 % away from each.

# %%
crescent = make_shape("crescent", size=64, radius=18, dtype=DTYPE)
blob = make_shape("disk", size=64, radius=math.sqrt(float(crescent.sum()) / math.pi), dtype=DTYPE)
sizes = soft_size(torch.stack([crescent, blob])[:, None])[:, 0, 0]
assert (sizes[0] - sizes[1]).abs() / sizes[0] < 0.05  # the same size, within 5 %

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_maps([crescent, blob], titles=[f"{s:.0f} px" for s in sizes.tolist()], cmap="gray")

# %%
CRESCENT_DESCRIPTOR = ...  # your answer: a descriptor's name, e.g. "size"

# %%
check("08.4", CRESCENT_DESCRIPTOR)

# %% [markdown]
# **Going further (open).** Add a term for your descriptor to notebook 03's terms, for instance
# `DescriptorTerm(CRESCENT_DESCRIPTOR, (1,), margin=0.1)`, set 03's target to the crescent and
# compare the Dice; with the tilted ellipse, try a `DescriptorTerm("covariance", (1,), margin=3.0,
# mode="abs")` or an `"eccentricity"` term.

# %% [markdown]
# ## Recap
#
# * The descriptors are N-D: in 3-D the same sums give a volume, a 3-D centroid, three spreads and a
#   surface, in mm with the voxel spacing.
# * Any cheap differentiable function of the probabilities whose bounds are known without pixel labels
#   can be a descriptor; the log-barrier extension makes it a loss.
# * Descriptors in mm barely change with the resolution; whether they transfer across modalities needs
#   a second modality to test.
#
# **Next:** your own data. [05 · ACDC](05_acdc.ipynb) shows the recipe end to end (`fetch`,
# `prepare`, `reproduce`), [07 · Anatomical priors](07_anatomical_priors.ipynb) the bounds to use
# where no per-image measurement exists, and `docs/method.md` the formulas and the authors' settings.
#
# ## Where to go from here
#
# * H. Kervadec, J. Dolz, J. Yuan, C. Desrosiers, E. Granger, I. Ben Ayed, *Constrained deep
#   networks: Lagrangian optimization via log-barrier extensions*, EUSIPCO 2022 (arXiv:1904.04205,
#   2019), for the barrier and its link to the Lagrangian (notebook 03);
# * H. Kervadec, J. Dolz, M. Tang, E. Granger, Y. Boykov, I. Ben Ayed, *Constrained-CNN losses for
#   weakly supervised segmentation*, Medical Image Analysis 54 (2019), the size constraints this
#   course starts from;
# * *Weakly supervised CNN segmentation: models and optimization*, the same group's tutorial at
#   MICCAI 2020, on constrained losses for weak supervision;
# * Kervadec et al., *Bounding boxes for weakly supervised segmentation: global constraints get close
#   to full supervision* (MIDL 2020), for constraints from boxes;
# * the authors' code, github.com/HKervadec/shape_descriptors, to compare with this library's
#   corrected options (notebooks 05 and 06).
