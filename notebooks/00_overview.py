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
# # 00 · Overview: segmentation from a few numbers
#
# *In ten minutes: what the paper claims, what you will build, and a check that your setup is ready.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/00_overview.ipynb)
#
# **You will**
#
# * state the paper's claim: a segmentation network trained from a few numbers per image and class;
# * count how many numbers replace a mask (65,536 labels against 18 for three classes);
# * compute the four soft descriptors of a shape and read them on a figure;
# * check that your setup (PyTorch, widgets, device) is ready for the course.
#
# **Prerequisites:** none before this one; Python and a first contact with PyTorch tensors.
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
import os
import platform
import time

import torch

import tutorial_lib
from tutorial_lib import descriptors, plots, widgets
from tutorial_lib.data.datasets import load_split
from tutorial_lib.data.toy.dataset import ensure_toy_dataset
from tutorial_lib.device import get_device, set_cpu_threads

# %%
# Parameters. TUTORIAL_FAST=1 (set by the tests and on Binder) keeps every notebook to a few minutes.
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
SEED = 0

# %%
device = get_device()
n_threads = set_cpu_threads(1) if device.type == "cpu" else None  # small tensors: one is fastest
print(f"device: {device}  (CPU threads: {n_threads})  fast mode: {FAST}")

# %% [markdown]
# ## The claim
#
# Kervadec, Bahig, Létourneau-Guillon, Dolz and Ben Ayed (MIDL 2021) train a segmentation network
# **without a single pixel label**. For each training image and each class they only give the network
# a handful of numbers measured on the ground truth:
#
# | descriptor | what it says | values per class (2-D) |
# |---|---|---|
# | size $S$ | how many pixels | 1 |
# | centroid $C$ | where it is | 2 |
# | spread $D$ (their "distance to centroid") | how far it extends, per axis | 2 |
# | length $L$ | how long its boundary is | 1 |
#
# The network's softmax $s$ is pushed so that the **same descriptors computed on $s$** land inside
# bounds around those numbers. The paper's finding: *"as little as 4 descriptors values per class can
# approach the performance of a segmentation mask with 65k individual discrete labels"* (the
# abstract's words, its "descriptors values" included).

# %% [markdown]
# ## How few numbers?
#
# A 256×256 mask holds $256^2 = 65{,}536$ labels. Four descriptors are six numbers per class in 2-D;
# for the three cardiac structures of ACDC that is 18 numbers per image.

# %%
n_labels = 256 * 256
names = ("size", "centroid", "dist_centroid", "length")
values_per_class = {name: descriptors.DESCRIPTORS[name].n_values(2) for name in names}
n_numbers = sum(values_per_class.values()) * 3
# the library's count against a hand count: 1 size, 2 centroid and 2 spread coordinates, 1 length
assert values_per_class == {"size": 1, "centroid": 2, "dist_centroid": 2, "length": 1}
assert n_numbers == 18
print(f"{n_labels:,} labels against {n_numbers} numbers: {n_labels / n_numbers:,.0f}× fewer")

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_annotation_cost(256, values_per_class, n_classes=3)

# %% [markdown]
# ## The descriptors, in one picture
#
# All four are *soft*: sums over the probabilities $s(p)$ of the pixels $p$, so they are
# differentiable and a network can be trained through them. With pixel coordinates $p_i$ (row,
# column):
#
# $$S = \sum_p s(p), \qquad C_i = \frac{\sum_p p_i\, s(p)}{S}, \qquad
# D_i = \sqrt{\frac{\sum_p s(p)\,(p_i - C_i)^2}{S}}, \qquad
# L = \sum_{p \sim q} \big(s(p) - s(q)\big)^2 .$$
#
# Below, a soft crescent (a shape like the heart's right ventricle): the cross is the centroid, the
# ellipses are one and two spreads along each axis.

# %%
crescent = widgets.make_shape("crescent", size=64, radius=20, softness=1.0)
p = crescent[None, None]  # descriptors take (batch, classes, H, W)
values = {
    name: descriptors.DESCRIPTORS[name](p)[0, 0]
    for name in ("size", "centroid", "dist_centroid", "length")
}
for name, v in values.items():
    print(f"{name:14s} {[round(x, 2) for x in v.tolist()]}")

# %%
# The soft size is the sum of the probabilities: a probability map carries its own area.
assert torch.allclose(values["size"], crescent.sum().reshape(1))
# Six numbers per class in 2-D: 1 + 2 + 2 + 1.
assert sum(v.numel() for v in values.values()) == 6

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_descriptor_overlay(
    crescent,
    centroid=values["centroid"],
    spread=values["dist_centroid"],
    title="a soft crescent and its descriptors",
)

# %% [markdown]
# ## What the course segments
#
# Everything runs on an embedded toy dataset that mimics ACDC's cardiac MRI (RV, myocardium, LV
# cavity), generated in a second, so no download is needed until notebooks 05 and 06 use the real
# data.

# %%
toy_root = ensure_toy_dataset("toy-cardiac", size=64, n_patients=24, seed=SEED)
toy = load_split(toy_root, "train")
print(f"{len(toy)} training slices of {tuple(toy.images.shape[-2:])}, classes {toy.class_names}")
assert set(toy.labels.unique().tolist()) == {0, 1, 2, 3}

# %%
# NBVAL_IGNORE_OUTPUT
pick = torch.linspace(0, len(toy) - 1, 5).long()
plots.plot_label_overlays(
    [toy.images[i, 0] for i in pick], [toy.labels[i] for i in pick], class_names=toy.class_names
)

# %% [markdown]
# ## From numbers to a loss
#
# Each number $v$ becomes an interval $[a, b]$ (for example $v \pm 10\,\%$), and each side becomes a
# constraint $z \le 0$: $z = f(s) - b$ and $z = a - f(s)$. A penalty $\psi_t$ turns constraints into a
# loss. The paper uses the **log-barrier extension**:
#
# $$\psi_t(z) = \begin{cases} -\frac{1}{t}\log(-z) & z \le -\frac{1}{t^2} \\[2pt]
# t z - \frac{1}{t}\log\frac{1}{t^2} + \frac{1}{t} & \text{otherwise,} \end{cases}$$
#
# a barrier inside the interval and a straight line of slope $t$ outside it, with $t$ growing during
# training. Notebook 03 takes it apart.

# %% [markdown]
# ## The course
#
# | notebook | you will | needs |
# |---|---|---|
# | **00 overview** | see the idea and check your setup | nothing |
# | **01 size and centroid** | compute hard and soft descriptors, see their gradients | CPU |
# | **02 spread and length** | meet second moments, the Laplacian length (≈ 3.1 × the perimeter), compactness | CPU |
# | **03 constrained optimisation** | compare penalty, Lagrangian and log barrier; segment from four numbers without a network | CPU |
# | **04 training with descriptors** | train a network on toy cardiac images with cross-entropy and with descriptors only | CPU (minutes) |
# | **05 ACDC** | reproduce the paper's cardiac experiment, with each quirk of the authors' code explained | GPU for the full run |
# | **06 PROMISE12** | the same for the prostate | GPU for the full run |
# | **07 anatomical priors** | replace per-image numbers by bounds known from anatomy (in mm) | CPU |
# | **08 going further** | 3-D descriptors, other descriptors, exercises with automatic checks | CPU |
#
# Every notebook runs top to bottom on a laptop CPU in fast mode (`TUTORIAL_FAST=1`, a few minutes);
# without it, 04–06 train longer and a GPU helps.

# %% [markdown]
# ## Environment check

# %%
# NBVAL_IGNORE_OUTPUT
import ipywidgets
import matplotlib

report = {
    "python": platform.python_version(),
    "torch": torch.__version__,
    "tutorial_lib": tutorial_lib.__version__,
    "matplotlib": matplotlib.__version__,
    "ipywidgets": ipywidgets.__version__,
    "device": str(device),
    "CUDA": torch.cuda.is_available(),
}
for key, value in report.items():
    print(f"{key:13s} {value}")

# %%
# NBVAL_IGNORE_OUTPUT
# A quick timing: the four descriptors and their gradient on a batch of 8 images, 4 classes, 256².
x = torch.randn(8, 4, 256, 256, device=device).softmax(dim=1).requires_grad_(True)
start = time.perf_counter()
total = sum(
    descriptors.DESCRIPTORS[n](x).sum() for n in ("size", "centroid", "dist_centroid", "length")
)
total.backward()
elapsed = time.perf_counter() - start
print(f"forward + backward of the four descriptors: {elapsed * 1000:.0f} ms on {device}")

# %%
assert torch.isfinite(x.grad).all()

# %% [markdown]
# ## Recap
#
# * The paper trains a segmentation network from a few numbers per image and class: 18 for the three
#   cardiac structures of a slice, against 65,536 labels for its 256×256 mask.
# * The four descriptors (size, centroid, spread, length) are sums over the probabilities, so they
#   are differentiable; bounds around them become a loss through the log-barrier extension.
# * The toy cardiac data stands in for ACDC until notebook 05.
#
# To see the paper's experiment run end to end in a few minutes, the command line does it in one go
# on the toy cardiac data: `python -m tutorial_lib reproduce --dataset toy-cardiac --fast`
# (notebook 04 explains what it runs). The paper's own tables need the ACDC and PROMISE12 data and a
# GPU (notebooks 05 and 06).
#
# **Next:** [01 · Size and centroid](01_size_and_centroid.ipynb): the two simplest descriptors, hard
# and soft, and the gradients they send.
