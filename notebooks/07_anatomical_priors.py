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
# # 07 · Anatomical priors
#
# *Bounds known from anatomy instead of measured on each image: constant per-class bounds in mm, what they keep and what they lose.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/07_anatomical_priors.ipynb)
#
# **You will**
#
# * measure descriptors in mm and check them against scikit-image;
# * build constant bounds from a population and measure how well they hold on unseen patients;
# * tell what per-image bounds catch and anatomical priors miss, with the library's loss;
# * train a network with priors and compare it with precise bounds and cross-entropy.
#
# **Prerequisites:** notebook 04 (05 for the empty-class policy); quantiles of a sample.
#
# **Time** (2-core CPU, measured with `benchmarks/notebook_times.py`): about 70 s in fast mode on
# its own (its three runs share the two CPUs), 40 s after notebook 04 (its two runs are reused);
# about 4 min in full mode, estimated from the seconds per epoch of a short run. On a Colab GPU: not measured yet.

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
import dataclasses
import math
import os

import torch
from skimage.measure import regionprops

from tutorial_lib import plots, widgets
from tutorial_lib.bounds import labels_to_onehot, population_bounds
from tutorial_lib.checks import verdict
from tutorial_lib.concurrent_runs import notebook_jobs, train_runs
from tutorial_lib.data.datasets import load_split
from tutorial_lib.data.toy.dataset import ensure_toy_dataset
from tutorial_lib.descriptors import DESCRIPTORS, soft_centroid, soft_size
from tutorial_lib.device import get_device, set_cpu_threads
from tutorial_lib.evaluation import predict_run
from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss
from tutorial_lib.metrics import dice_3d_per_volume, mean_dice
from tutorial_lib.presets import get_preset
from tutorial_lib.run_setup import resolve_data_root
from tutorial_lib.runlog import config_run_dir, read_json, runs_root
from tutorial_lib.widgets import make_shape

# %%
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
IMAGE_SIZE = 64 if FAST else 128  # pixels per side of the toy images
N_PATIENTS = 30 if FAST else 60
SEED = 0
# Training runs: $TUTORIAL_RUNS, else the repository's runs/ folder; one folder per configuration,
# named as in notebook 04, so that a finished run (04's included) is reused.
RUNS = runs_root()


# %%
device = get_device()
if device.type == "cpu":
    set_cpu_threads(1)  # the tensors here are small: one thread is the fastest
print(f"device: {device}, fast mode: {FAST}")

# %% [markdown]
# ## From "this image's numbers" to "what anatomy allows"
#
# So far every bound came from the ground truth of the same image, $[v - m, v + m]$: someone still
# had to measure each training image. The paper's second claim is that descriptors can also carry
# **anatomical priors**: a left-ventricular cavity is never smaller than this nor larger than that,
# and it is round. Such knowledge gives **constant** per-class bounds, the same for every image:
#
# $$a_k \le f_k(s) \le b_k \quad \text{for every image,}$$
#
# with $[a_k, b_k]$ taken from textbooks or from the statistics of a population. (The authors' code has
# such a `ConstantBounds` class, unused in their experiments.)
#
# Anatomy is measured in **millimetres**, not pixels. With the pixel spacing the descriptors come out
# in mm² and mm, so one prior holds across scanners and resolutions:

# %%
# The same 20 mm disk imaged at 1 mm and at 0.5 mm per pixel: different pixel counts, the same mm².
coarse = make_shape("disk", size=64, radius=20.0, softness=0.5)
fine = make_shape("disk", size=128, radius=40.0, softness=1.0)
area_coarse = soft_size(coarse[None, None], spacing=(1.0, 1.0))[0, 0, 0]
area_fine = soft_size(fine[None, None], spacing=(0.5, 0.5))[0, 0, 0]
print(f"{coarse.sum():.0f} px = {area_coarse:.0f} mm²;  {fine.sum():.0f} px = {area_fine:.0f} mm²")
# scikit-image's area in mm² of the same disk, thresholded, at 0.5 mm per pixel
region = regionprops((fine > 0.5).numpy().astype(int), spacing=(0.5, 0.5))[0]
assert abs(area_fine - region.area) / region.area < 0.01
assert abs(area_fine - area_coarse) / area_coarse < 0.02
assert abs(area_fine - math.pi * 20**2) / (math.pi * 20**2) < 0.05

# %% [markdown]
# ## A population
#
# The toy cardiac dataset (notebook 04) stands in for a cohort: short-axis slices of several
# patients, from base to apex, with the RV, the myocardium and the LV cavity. We measure every
# training slice's descriptors in mm.

# %%
root = ensure_toy_dataset("toy-cardiac", size=IMAGE_SIZE, n_patients=N_PATIENTS, seed=SEED)
train = load_split(root, "train")
test = load_split(root, "test")
CLASSES = train.class_names
print(f"{len(train)} training slices, {len(test)} test slices, classes {CLASSES}")
print(f"pixel spacing: {train.spacing[0, 1:].tolist()} mm")

# %%
# NBVAL_IGNORE_OUTPUT
pick = torch.linspace(0, len(train) - 1, 6).long()
plots.plot_label_overlays(
    [train.images[i, 0] for i in pick],
    [train.labels[i] for i in pick],
    class_names=CLASSES,
    titles=[f"{train.volume_ids[i]} #{int(train.slice_indices[i])}" for i in pick],
)

# %%
NAMES = ("size", "dist_centroid", "length", "compactness", "centroid")


def measure(split) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Descriptors in mm of every slice's ground truth, (N, K, n) each, and presence (N, K)."""
    onehot = labels_to_onehot(split.labels.long(), len(split.class_names))
    spacing = split.spacing[:, 1:]  # (row, col) mm per pixel, one row per slice
    values = {name: DESCRIPTORS[name](onehot, spacing=spacing) for name in NAMES}
    return values, onehot.sum(dim=(2, 3)) > 0


values_train, present_train = measure(train)
values_test, present_test = measure(test)
for k in (1, 2, 3):
    print(f"{CLASSES[k]:11s} present on {present_train[:, k].float().mean():.0%} of the slices")

# %% [markdown]
# ## Constant bounds from the population
#
# For each class and descriptor take the range seen in the training population (where the class is
# present), widened by a margin:
# $[a_k, b_k] = [\min_i v_{ik}\,(1 - m),\; \max_i v_{ik}\,(1 + m)]$.

# %%
MARGIN = 0.10
FG = (1, 2, 3)


prior = {
    name: population_bounds(values_train[name], present_train, FG, margin=MARGIN)
    for name in ("size", "dist_centroid", "length", "compactness")
}
for name, table in prior.items():
    print(
        name,
        {
            CLASSES[k]: [[round(x) for x in row] for row in table[i].tolist()]
            for i, k in enumerate(FG)
        },
    )

# %%
# NBVAL_IGNORE_OUTPUT
size_by_class = {CLASSES[k]: values_train["size"][present_train[:, k], k, 0] for k in FG}
plots.plot_population_bounds(
    size_by_class,
    {CLASSES[k]: tuple(prior["size"][i, 0].tolist()) for i, k in enumerate(FG)},
    xlabel="size (mm²)",
    title="size of each structure over the training slices",
)

# %% [markdown]
# Compactness $L^2/S$ has no unit: it describes the **shape**, not the scale. The LV cavity, round
# like a disk, has a tight range; the myocardial ring, whose boundary has two sides, a wide one.

# %%
# NBVAL_IGNORE_OUTPUT
compact_by_class = {CLASSES[k]: values_train["compactness"][present_train[:, k], k, 0] for k in FG}
plots.plot_population_bounds(
    compact_by_class,
    {CLASSES[k]: tuple(prior["compactness"][i, 0].tolist()) for i, k in enumerate(FG)},
    xlabel="compactness L²/S",
    title="compactness: a shape prior",
)

# %% [markdown]
# Choose the margin, and trim the extreme slices with a quantile: the bounds are cut from the
# training slices, and the histograms show the **test** slices, so the coverage is measured on
# patients the bounds never saw (the size of each structure). On the training slices themselves a
# margin of 0 and no trimming would cover 100 % by construction.

# %%
size_test = {CLASSES[k]: values_test["size"][present_test[:, k], k, 0] for k in FG}
fit = widgets.quantile_bounds(size_by_class, margin=0.0)
for name, (lo, hi) in fit.items():  # no margin: the training range itself
    assert float(size_by_class[name].min()) == lo and float(size_by_class[name].max()) == hi

# %%
# NBVAL_IGNORE_OUTPUT
widgets.bounds_figure(size_by_class, margin=MARGIN, held_out=size_test, xlabel="size (mm²)")

# %%
# NBVAL_IGNORE_OUTPUT
widgets.bounds_explorer(size_by_class, held_out=size_test, xlabel="size (mm²)")

# %% [markdown]
# ## Do the priors hold on unseen patients?
#
# The test patients were not used to choose the bounds. Their ground truth should still satisfy them.

# %%
coverage = {}
for name, table in prior.items():
    inside = []
    for i, k in enumerate(FG):
        v = values_test[name][present_test[:, k], k]
        inside.append(((v >= table[i, :, 0]) & (v <= table[i, :, 1])).all(-1).float())
    coverage[name] = torch.cat(inside).mean().item()
print({name: f"{c:.1%}" for name, c in coverage.items()})
verdict(
    all(c >= 0.9 for c in coverage.values()),
    f"with a margin of {MARGIN:.0%}, every prior covers at least 90 % of the test slices",
)

# %% [markdown]
# ## What is kept, what is lost
#
# The prior is **much looser** than per-image bounds: the LV size interval covers the whole range from
# base to apex, where the paper's ±10 % around each image's size is a narrow window.

# %%
lv = FG.index(3)
width_prior = (prior["size"][lv, 0, 1] - prior["size"][lv, 0, 0]).item()
width_precise = (0.2 * values_train["size"][present_train[:, 3], 3, 0]).median().item()
print(
    f"LV size: constant bounds {width_prior:.0f} mm² wide; ±10 % per image: {width_precise:.0f} mm² (median)"
)
assert width_prior > 4 * width_precise

# %% [markdown]
# The loss makes this concrete. Two losses on the same test slices, both the library's
# `ShapeDescriptorLoss` with the log-barrier extension:
#
# * **precise**: per-image bounds in the paper's form: size ±10 % as in the paper; centroid and
#   spread ±3 px and length ±25 %, much tighter than the paper's (±20 px, and a length margin of
#   10, i.e. ±1000 %), to suit these small slices;
# * **prior**: constant bounds in mm (`lower`/`upper`, `physical=True`) on size, spread, length and
#   compactness; no centroid, since anatomy does not say where the heart sits in the image.
#
# The empty-class policy `"corrected"` uses one bit per class and image (is it there?), an
# image-level tag, so that absent classes are pushed to zero instead of into the prior's range.
#
# We score three "predictions" of the RV, myocardium and LV: the ground truth itself, the ground truth
# **shifted** by a fifth of the image, and the ground truth with the LV cavity swallowing the
# myocardium.

# %%
precise_loss = ShapeDescriptorLoss(
    [
        DescriptorTerm("size", FG, margin=0.10),
        DescriptorTerm("centroid", FG, margin=3.0, mode="abs"),
        DescriptorTerm("dist_centroid", FG, margin=3.0, mode="abs"),
        DescriptorTerm("length", FG, margin=0.25),
    ],
    empty_policy="corrected",
)
prior_loss = ShapeDescriptorLoss(
    [
        DescriptorTerm(
            name, FG, lower=prior[name][..., 0], upper=prior[name][..., 1], physical=True
        )
        for name in ("size", "dist_centroid", "length", "compactness")
    ],
    empty_policy="corrected",
)

labels = test.labels.long()
spacing = test.spacing[0, 1:]
shift = IMAGE_SIZE // 5
swollen = torch.where(labels == 2, 3, labels)  # the LV cavity swallows its wall
predictions = {
    "ground truth": labels,
    "shifted": torch.roll(labels, shifts=(shift, shift), dims=(1, 2)),
    "LV over the wall": swollen,
}


def violated(loss_fn: ShapeDescriptorLoss, prediction: torch.Tensor) -> float:
    """Fraction of active constraints that a one-hot `prediction` breaks (t does not matter here)."""
    onehot = labels_to_onehot(prediction, len(CLASSES))
    loss_fn(onehot, labels, 5.0, spacing)
    stats = loss_fn.last_stats
    fracs = [v for k, v in stats.items() if k.endswith("frac_violated")]
    return float(torch.stack(fracs).mean())


table = {
    name: (violated(precise_loss, p), violated(prior_loss, p)) for name, p in predictions.items()
}
print(f"{'prediction':14s}{'precise':>10s}{'prior':>10s}   (fraction of constraints violated)")
for name, (a, b) in table.items():
    print(f"{name:14s}{a:10.1%}{b:10.1%}")

# %%
# The truth satisfies the prior almost everywhere, and the per-image bounds everywhere.
assert table["ground truth"][0] == 0.0 and table["ground truth"][1] < 0.05
# A shifted heart breaks the per-image bounds (centroid) but not the prior: position is lost.
assert table["shifted"][0] > 0.1 and table["shifted"][1] < 0.05
# An LV that swallows its wall is caught by both: size and shape are kept.
assert table["LV over the wall"][1] > table["ground truth"][1] + 0.2

# %%
# NBVAL_IGNORE_OUTPUT
i = int(torch.nonzero(present_test[:, 3] & present_test[:, 1])[len(test) // 4])
plots.plot_label_overlays(
    [test.images[i, 0]] * 3,
    [p[i] for p in predictions.values()],
    class_names=CLASSES,
    titles=[f"{n}\nprecise {a:.0%} · prior {b:.0%} violated" for n, (a, b) in table.items()],
    panel=3.2,
)

# %% [markdown]
# **Kept:** how big each structure is, how far it spreads, how long and how round its boundary is,
# in physical units that transfer across scanners. **Lost:** *where* it is and its exact size on this
# slice; the network has to find those in the image. A prior alone supervises less than per-image
# descriptors, but it costs nothing per image: it is a statement about anatomy, written once.

# %% [markdown]
# ## Training with priors
#
# Scoring is one thing; can a network **learn** from population bounds? We train on the toy cardiac
# data of notebook 04 three networks that differ only in the loss:
#
# * **CE**: full masks;
# * **precise**: the `toy-cardiac-descriptors` preset, per-image bounds around each slice's size,
#   centroid, spread and length;
# * **priors**: size (background included) and spread bounded by **constants in mm** taken from the
#   training population, the same for every slice; no length. Anatomy does not say where the heart
#   sits in the image, so one per-image descriptor is left: the **centroid** of each structure,
#   within ±1 px, as in the precise run. Without it nothing tells the network which blob is the RV
#   and which the LV.
#
# So the priors run still gets, per slice and structure, the centroid to ±1 px and a presence bit
# (the corrected empty policy): more than "a click per structure". The myocardium is a ring, so its
# centroid lies inside the LV cavity, where nobody would click (checked below).
#
# The bounds are percentiles of the training slices' values (where the class is present), 2 % to 98 %
# widened by 10 %, measured with the same `measure` as above on the training split of the preset's
# data. As before, the empty-class policy uses one bit per class and slice (is it there?).

# %%
configs = {
    "ce": get_preset("toy-cardiac-ce", fast=FAST),
    "precise": get_preset("toy-cardiac-descriptors", fast=FAST),
}
if FAST:  # the epochs of notebook 04's fast mode, so that its runs are reused
    configs = {m: dataclasses.replace(c, epochs=max(2, c.epochs // 2)) for m, c in configs.items()}
toy_train = load_split(resolve_data_root(configs["precise"], None), "train")
toy_test = load_split(resolve_data_root(configs["precise"], None), "test")
values_toy, present_toy = measure(toy_train)
mm = float(toy_train.spacing[0, 1])  # mm per pixel (one spacing for the whole toy dataset)
print(
    f"{len(toy_train)} training slices of {tuple(toy_train.images.shape[-2:])}, {mm} mm per pixel"
)


def percentile_bounds(name: str, classes) -> dict:
    """`lower` and `upper` for a DescriptorTerm: the 2nd and 98th percentiles, widened by 10 %."""
    table = population_bounds(
        values_toy[name], present_toy, classes, quantiles=(0.02, 0.98), margin=0.10
    )
    # plain tuples: a training config is saved as JSON
    return {
        side: tuple(map(tuple, table[..., i].tolist())) for i, side in enumerate(("lower", "upper"))
    }


# The preset's weights are for pixel units; a size in mm² is (mm per pixel)² times larger, a spread
# in mm (mm per pixel) times: scale the weights back so that each term pulls as in the precise run.
weights = {t.descriptor: t.weight for t in configs["precise"].terms}
prior_terms = (
    DescriptorTerm(
        "size",
        (0, *FG),
        **percentile_bounds("size", (0, *FG)),
        weight=weights["size"] / mm**2,
        physical=True,
    ),
    DescriptorTerm(
        "dist_centroid",
        FG,
        **percentile_bounds("dist_centroid", FG),
        weight=weights["dist_centroid"] / mm,
        physical=True,
    ),
    next(t for t in configs["precise"].terms if t.descriptor == "centroid"),  # per image, ±1 px
)
configs["priors"] = dataclasses.replace(
    configs["precise"], name="toy-cardiac-priors", terms=prior_terms
)
for term in prior_terms:
    kind = "per image" if not term.is_constant else f"constant {'in mm' if term.physical else ''}"
    print(f"{term.descriptor:14s} classes {term.classes!s:13s} {kind}")

# Where the per-image centroids are: the myocardium's falls on an LV pixel in most training slices.
onehot_toy = labels_to_onehot(toy_train.labels.long(), len(CLASSES), torch.float64)
myo = CLASSES.index("myocardium")
has_myo = onehot_toy[:, myo].sum((-2, -1)) > 0
rows, cols = soft_centroid(onehot_toy)[has_myo, myo].round().long().unbind(-1)
under_centroid = toy_train.labels[has_myo][torch.arange(len(rows)), rows, cols]
in_cavity = float((under_centroid == CLASSES.index("lv")).double().mean())
print(f"myocardium centroid on an LV pixel in {in_cavity:.0%} of the training slices")
assert in_cavity > 0.8


# %% [markdown]
# Train the three at once when the machine allows it (two CPUs and 3.5 GiB: they share the CPUs and
# end together), else two or one at a time. A finished run in `RUNS` is reused: notebook 04 already
# trained CE and the precise run with the same settings.

# %%
# NBVAL_IGNORE_OUTPUT
jobs = notebook_jobs(device, len(configs))  # all 3 with 2 CPUs and 3.5 GiB (2 at once on a GPU)
seconds = train_runs(
    {m: (c, config_run_dir(c, RUNS)) for m, c in configs.items()}, device=device, jobs=jobs
)
summaries = {m: read_json(config_run_dir(c, RUNS) / "summary.json") for m, c in configs.items()}
for method, config in configs.items():
    print(f"{method}: {config.epochs} epochs, {seconds[method]:.0f} s")

# %% [markdown]
# Test 3-D DSC per class, with an image-blind baseline: **the average heart**, the most frequent
# training label at each pixel (notebook 04).

# %%
K = len(toy_train.class_names)
counts = labels_to_onehot(toy_train.labels.long(), K).sum(dim=0)  # (K, H, W)
average_heart = counts.argmax(dim=0).expand(len(toy_test), *counts.shape[1:])
_, dsc_average = dice_3d_per_volume(average_heart, toy_test.labels.long(), toy_test.volume_ids, K)
dsc = {m: s["test"]["test_dsc3d"] for m, s in summaries.items()}
per_class = mean_dice(dsc_average, dim=0)  # mean over the test volumes, absent classes skipped
dsc["average heart"] = {c: float(per_class[k]) for k, c in enumerate(CLASSES)}
dsc["average heart"]["mean"] = float(mean_dice(per_class[1:]))
print(f"{'test 3-D DSC':14s}" + "".join(f"{c:>12s}" for c in [*CLASSES[1:], "mean"]))
for method, scores in dsc.items():
    print(f"{method:14s}" + "".join(f"{scores[c]:12.3f}" for c in [*CLASSES[1:], "mean"]))

# %%
# The priors run learnt the image: it beats the image-blind average heart on the LV, and overall.
for key in ("lv", "mean"):
    verdict(
        dsc["priors"][key] > dsc["average heart"][key] + 0.1,
        f"priors, {key}: {dsc['priors'][key]:.3f}, more than 0.1 above the average heart",
    )
# Population bounds stand in for per-image sizes and spreads at little cost (seeds 0-2: within 0.04).
verdict(
    dsc["priors"]["mean"] > dsc["precise"]["mean"] - 0.1,
    f"priors, mean: {dsc['priors']['mean']:.3f}, within 0.1 of the precise run",
)

# %% [markdown]
# The same test slices, the ground truth and the three networks' predictions:

# %%
show = torch.linspace(0, len(toy_test) - 1, 4).long()
predicted = {
    m: predict_run(config_run_dir(c, RUNS), toy_test.images[show], device=device)
    for m, c in configs.items()
}

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_predictions(
    toy_test.images[show, 0],
    toy_test.labels[show],
    predicted,
    CLASSES,
    titles=[toy_test.volume_ids[i] for i in show],
)

# %% [markdown]
# **What is kept.** With each structure's centroid (±1 px) and presence per slice, and anatomy for
# the rest, the network segments all three structures, far above the image-blind average heart.
# The population bounds in mm only rule
# out blobs that are too small, too large or too spread; inside them, the image decides which pixels.
# In fast mode (15 epochs) we measured a mean test 3-D DSC of 0.869, 0.873, 0.893 for the priors and
# 0.872, 0.894, 0.855 for the precise run (seeds 0, 1, 2): no difference beyond the seed-to-seed
# spread. Once each structure is placed, its exact size on this slice adds little: the image's edges
# give it.
#
# **What is lost.** The *where*: the centroid still comes from each image, and it matters. Without it
# (size and spread priors only), nothing tells the network which blob is which: in our run (seed 0,
# fast mode) it still found the bright LV cavity (DSC ~0.7) but not the RV or the myocardium
# (~0.1-0.3). And a prior cannot catch an error that stays inside the population's range, such as a
# basal LV shrunk to an apical size; per-image bounds would. CE, with every pixel labelled, stays
# ahead of both.

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
# ### Exercise 1: population bounds with quantiles
#
# Write `quantile_bounds(values, present, q)`: `values` is a float tensor `(N,)`, one descriptor of
# one class over N training images (0 where the class is absent), `present` a boolean tensor `(N,)`,
# `q` a float in [0, 0.5]. Return a tensor `(2,)`: [the q-quantile, the (1 - q)-quantile] of the
# values over the images where the class is present (linear interpolation, as `torch.quantile`).


# %%
def quantile_bounds(values: torch.Tensor, present: torch.Tensor, q: float) -> torch.Tensor:
    raise NotImplementedError  # your code here


# %%
check("07.1", quantile_bounds)

# %% [markdown]
# ### Exercise 2: does a prior hold?
#
# Write `coverage(values, present, bounds)`: `values` is a float tensor `(N, n)`, n values of one
# descriptor over N images, `present` a boolean tensor `(N,)`, `bounds` a tensor `(n, 2)` of
# [lower, upper] per value. Return, as a float, the share of the images where the class is present
# whose n values all lie within their bounds (bounds included).


# %%
def coverage(values: torch.Tensor, present: torch.Tensor, bounds: torch.Tensor) -> float:
    raise NotImplementedError  # your code here


# %%
check("07.2", coverage)

# %% [markdown]
# ## Recap
#
# * With the pixel spacing, descriptors come out in mm² and mm, and hold across resolutions.
# * Constant bounds cut from a population of training slices also hold on unseen patients (the
#   coverage above); they keep size, spread, length and roundness, and lose the position and the
#   exact size of a structure on a given slice.
# * A network trained with population bounds and the per-image centroid learns the image (the ✓/✗
#   lines above say how this run compares with the average heart and the precise run).
#
# **Exercise.** Build the prior with `population_bounds(values_train[name], present_train, FG)` (no margin) and
# recompute the coverage on the test patients. Which descriptor loses coverage first, and why?
#
# **Next:** [08 · Going further](08_going_further.ipynb): descriptors in 3-D, descriptors of your
# own, and the invariance hypothesis.
