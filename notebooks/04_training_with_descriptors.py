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
# # 04 · Training with descriptors
#
# *A network learns to segment toy cardiac images from a few numbers per image, side by side with one trained on full masks.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/04_training_with_descriptors.ipynb)
#
# **You will**
#
# * train the same small U-Net with cross-entropy (full masks) and with descriptors only, on toy
#   cardiac images;
# * read 2-D and 3-D Dice and HD95, and compare both networks with an image-blind baseline;
# * follow the constraint violations over the epochs as $t$ grows;
# * look at both networks' predictions side by side.
#
# **Prerequisites:** notebooks 01 to 03; training a network in PyTorch (a loss, an optimiser, epochs).
#
# **Time** (2-core CPU, measured with `benchmarks/notebook_times.py`): about 1 min in fast mode
# (`TUTORIAL_FAST=1`; 58 s from empty caches); about 3 min in full mode, estimated from the seconds
# per epoch of a short run (2½ to 3 min of training, the two runs at the same time). On a Colab
# GPU: not measured yet.

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
import os

import torch

from tutorial_lib import plots
from tutorial_lib.bounds import labels_to_onehot
from tutorial_lib.checks import verdict
from tutorial_lib.concurrent_runs import notebook_jobs, train_runs
from tutorial_lib.config import config_to_dict
from tutorial_lib.data.datasets import load_split
from tutorial_lib.device import get_device, set_cpu_threads
from tutorial_lib.evaluation import predict_run
from tutorial_lib.loss_tables import LossTables
from tutorial_lib.losses import ShapeDescriptorLoss, cross_entropy_loss
from tutorial_lib.metrics import dice_2d, dice_3d_per_volume, hd95, mean_dice
from tutorial_lib.models import build_model
from tutorial_lib.presets import get_preset
from tutorial_lib.run_setup import build_loss, resolve_data_root
from tutorial_lib.runlog import config_run_dir, read_json, read_metrics, runs_root

# %%
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
SEED = 0
EPOCHS = None  # None: the preset's numbers of epochs (in fast mode, half of the fast preset's)
# A finished run with the same settings is reused.
RUNS = runs_root()  # $TUTORIAL_RUNS, else the repository's runs/ folder


# %%
device = get_device()
if device.type == "cpu":
    set_cpu_threads()  # OMP_NUM_THREADS when set (the tests and Binder set 1), else all cores
print(f"device: {device}, fast mode: {FAST}, runs in {RUNS}")

# %% [markdown]
# ## The experiment
#
# Two runs that differ only in what the network is told:
#
# * **cross-entropy (CE)**: the full mask of every training slice, $H \times W$ labels;
# * **descriptors**: for each slice and class only the bounds around its size, centroid, spread and
#   length, turned into a loss by the log-barrier extension (notebook 03).
#
# Same data, same network, same optimiser, same augmentation; only the loss differs (and the number
# of epochs, when the presets give the slower-converging descriptor run more). Both are presets of the
# library, so the command line runs exactly the same thing:
# `python -m tutorial_lib reproduce --dataset toy-cardiac`.

# %%
configs = {
    "ce": get_preset("toy-cardiac-ce", fast=FAST),
    "descriptors": get_preset("toy-cardiac-descriptors", fast=FAST),
}
if EPOCHS is not None:
    configs = {m: dataclasses.replace(c, epochs=EPOCHS) for m, c in configs.items()}
elif FAST:  # a couple of minutes on a laptop CPU, as in notebooks 05 and 06
    configs = {m: dataclasses.replace(c, epochs=max(2, c.epochs // 2)) for m, c in configs.items()}
ce, desc = configs["ce"], configs["descriptors"]
different = {k for k, v in config_to_dict(ce).items() if config_to_dict(desc)[k] != v}
print("the two runs differ in:", sorted(different))
print({m: f"{c.epochs} epochs" for m, c in configs.items()})
# a fair comparison: the data, network, optimiser and augmentation are the same
assert different <= {"name", "method", "terms", "epochs"}

# %% [markdown]
# ## The data
#
# The toy cardiac dataset mimics ACDC's short-axis MRI: a bright LV cavity inside a darker myocardial
# ring, a crescent-shaped RV beside it, smooth intensity variations, noise, and apex slices where some
# classes are absent. It is generated on the fly (seeded) and split by patient like the real data.

# %%
root = resolve_data_root(ce, None)
train_set, test_set = load_split(root, "train"), load_split(root, "test")
CLASSES = train_set.class_names
H, W = train_set.images.shape[-2:]
print(
    f"{len(train_set)} training slices of {H}×{W}, {len(test_set)} test slices; classes {CLASSES}"
)

# %%
# NBVAL_IGNORE_OUTPUT
pick = torch.linspace(0, len(train_set) - 1, 5).long()
plots.plot_label_overlays(
    [train_set.images[i, 0] for i in pick],
    [train_set.labels[i] for i in pick],
    class_names=CLASSES,
    titles=[f"{train_set.volume_ids[i]}" for i in pick],
)

# %% [markdown]
# ## What each network is told
#
# The descriptor run's terms (from the preset) and how many numbers they amount to per slice:

# %%
n_axes = 2
values_per_term = {"size": 1, "centroid": n_axes, "dist_centroid": n_axes, "length": 1}
numbers = 0
for term in desc.terms:
    n = values_per_term[term.descriptor] * len(term.classes)
    numbers += n
    print(
        f"{term.descriptor:14s} classes {term.classes!s:13s} margin {term.margin:<5g} ({term.mode}), "
        f"weight {term.weight:g}: {n} numbers"
    )
print(f"{numbers} numbers per slice against {H * W:,} labels for CE")
# the hand count above against the loss's own layout: one column per (term, class, value)
assert sum(LossTables.build(desc.terms, n_axes).widths) == numbers

# %% [markdown]
# On an untrained network both losses are large; the descriptor loss also reports which constraints
# are broken (`last_stats`). Each value has a lower and an upper bound and can break at most one of
# them, so 50 % means that every value is outside its interval. Its bounds are computed inside the loss from the labels of the batch, so
# they follow the augmentation; the network never sees the labels themselves.

# %%
torch.manual_seed(SEED)
model = build_model(ce.model, 1, len(CLASSES), **dict(ce.model_options)).to(device)
x, y = train_set.images[:8].to(device), train_set.labels[:8].long().to(device)
with torch.no_grad():
    logits = model(x)
loss_fn: ShapeDescriptorLoss = build_loss(desc)
desc_value = loss_fn(logits.softmax(dim=1), y, desc.t0)
print(
    f"CE loss {cross_entropy_loss(logits, y):.3f}; descriptor loss {desc_value:.4f} at t = {desc.t0:g}"
)
broken = {
    k.split("/")[0]: f"{float(v):.0%}"
    for k, v in loss_fn.last_stats.items()
    if k.endswith("frac_violated")
}
print("constraints violated before training:", broken)
assert torch.isfinite(desc_value)

# %% [markdown]
# ## Train both
#
# `train` runs the library's loop (the command line's `train`): Adam, online augmentation, $t \times
# 1.1$ after every epoch, validation every epoch, the best checkpoint kept by validation DSC, then a
# test evaluation (3-D DSC per volume, HD95 in mm); its summary goes to the run's `summary.json`.
# `train_runs` calls it for both runs, at the same time in two processes when the machine has a GPU,
# or two CPUs and 3 GiB of memory for them (`notebook_jobs`); else one after the other. A finished
# run in `RUNS` is reused, so running the notebook again is quick.

# %%
# NBVAL_IGNORE_OUTPUT
jobs = notebook_jobs(device)  # 2 with 2 CPUs and 3 GiB (or a GPU), else 1
seconds = train_runs(
    {m: (c, config_run_dir(c, RUNS)) for m, c in configs.items()}, device=device, jobs=jobs
)
summaries = {m: read_json(config_run_dir(c, RUNS) / "summary.json") for m, c in configs.items()}
for method, summary in summaries.items():
    print(f"{method}: {seconds[method]:.0f} s, best epoch {summary['best_epoch']}")

# %%
test = {m: s["test"]["test_dsc3d"] for m, s in summaries.items()}
print(f"{'test 3-D DSC':14s}" + "".join(f"{c:>12s}" for c in [*CLASSES[1:], "mean"]))
for method, scores in test.items():
    print(f"{method:14s}" + "".join(f"{scores[c]:12.3f}" for c in [*CLASSES[1:], "mean"]))
print(f"descriptors / CE (mean): {test['descriptors']['mean'] / test['ce']['mean']:.2f}")

# %% [markdown]
# ## Reading the scores: 2-D and 3-D Dice, HD95
#
# **Dice** (DSC) of a class: $2|P \cap G| / (|P| + |G|)$, from 0 (no overlap) to 1 (identical).
# **2-D** Dice scores each slice on its own, then averages over slices; **3-D** Dice pools the counts
# of all the slices of a volume first, then scores the volume (the paper's test metric). A slice where
# a class is absent from both prediction and truth has no Dice (NaN here; the authors count 1). A
# small false blob on a slice without the class scores that slice 0 in 2-D, but costs the volume
# only a few pixels in 3-D. A hand count on a two-slice volume:

# %%
truth = torch.zeros(2, 8, 8, dtype=torch.long)
truth[0, 2:6, 2:6] = 1  # slice 0: a 4 x 4 square (16 pixels); slice 1: no class 1
guess = torch.zeros_like(truth)
guess[0, 2:6, 3:7] = 1  # slice 0: the square shifted by one column: 12 of 16 pixels shared
guess[1, 0:2, 0:2] = 1  # slice 1: a 2 x 2 false blob
d2 = dice_2d(guess, truth, 2)[:, 1]
_, d3 = dice_3d_per_volume(guess, truth, ["v", "v"], 2)
print(
    f"2-D Dice per slice {d2.tolist()}, mean {float(d2.mean()):.3f}; 3-D Dice {float(d3[0, 1]):.3f}"
)
assert torch.allclose(d2, torch.tensor([2 * 12 / (16 + 16), 0.0], dtype=d2.dtype))
assert abs(float(d3[0, 1]) - 2 * 12 / (16 + 4 + 16)) < 1e-6  # pooled: 12 shared, 20 + 16 pixels

# %% [markdown]
# **HD95** (in mm): the 95th percentile of the distances from each boundary pixel of one mask to
# the nearest boundary pixel of the other, both ways. Dice counts pixels; HD95 measures **how far**
# the worst 5 % of the boundary is. Two one-pixel masks 3 rows and 4 columns apart, with pixels of
# 2 mm (rows) by 1 mm (cols), are $\sqrt{6^2 + 4^2} = 7.2$ mm apart. And a stray blob far from the
# object barely moves the Dice but sets the HD95: it is the metric that sees stray blobs.

# %%
one_a, one_b = torch.zeros(16, 16, dtype=torch.bool), torch.zeros(16, 16, dtype=torch.bool)
one_a[2, 2], one_b[5, 6] = True, True
assert abs(float(hd95(one_b, one_a, (2.0, 1.0))) - (6**2 + 4**2) ** 0.5) < 1e-6
square = torch.zeros(32, 32, dtype=torch.bool)
square[4:10, 4:10] = True  # 36 pixels
with_blob = square.clone()
with_blob[24:27, 24:27] = True  # a 3 x 3 blob, about 21 pixels diagonally away
blob_dice = 2 * 36 / (45 + 36)
print(
    f"Dice {blob_dice:.3f}; HD95 without the blob {float(hd95(square, square)):.1f} px, with it "
    f"{float(hd95(with_blob, square)):.1f} px"
)
assert float(hd95(square, square)) == 0.0
assert float(hd95(with_blob, square)) > 15  # the blob is more than 5 % of the boundary pixels

# %%
hd = {m: s["test"]["test_hd95"] for m, s in summaries.items()}
print(f"{'test HD95 mm':14s}" + "".join(f"{c:>12s}" for c in [*CLASSES[1:], "mean"]))
for method, scores in hd.items():
    print(f"{method:14s}" + "".join(f"{scores[c]:12.2f}" for c in [*CLASSES[1:], "mean"]))
verdict(
    hd["descriptors"]["mean"] > hd["ce"]["mean"],
    "the descriptor-only network has the higher mean HD95",
)

# %% [markdown]
# The descriptor-only network usually shows the higher HD95 (the line above says whether this run
# did). The likely reason: its bounds constrain each class's total size, centroid, spread and
# length, not where every pixel goes: a few stray pixels far from the heart change the size by
# little, and their pull on
# the centroid can be balanced inside the ±1 px margin by the rest of the mask. Cross-entropy
# labels every pixel, so a stray blob costs it directly.

# %% [markdown]
# ## Against a trivial predictor
#
# Is that any good? A network that learnt nothing about the image could still predict **the average
# heart**: the most frequent training label at each pixel. Both networks must beat it.

# %%
counts = labels_to_onehot(train_set.labels.long(), len(CLASSES)).sum(dim=0)  # (K, H, W)
average_heart = counts.argmax(dim=0)  # the most frequent label at each pixel
trivial = average_heart.expand(len(test_set), H, W)
_, dsc_trivial = dice_3d_per_volume(
    trivial, test_set.labels.long(), test_set.volume_ids, len(CLASSES)
)
trivial_mean = float(mean_dice(mean_dice(dsc_trivial, dim=0)[1:]))
print(f"average heart: mean test 3-D DSC {trivial_mean:.3f}")
for method in configs:
    score = test[method]["mean"]
    verdict(
        score > trivial_mean + 0.1,
        f"{method}: mean test 3-D DSC {score:.3f}, more than 0.1 above the average heart",
    )

# %% [markdown]
# ## Curves
#
# The paper's figures: DSC on the training batches and 3-D DSC on the validation patients over the
# epochs, per class and their mean.

# %%
histories = {m: read_metrics(config_run_dir(c, RUNS)) for m, c in configs.items()}

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_training_dsc(histories, CLASSES)

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_validation_dsc3d(histories, CLASSES)

# %% [markdown]
# ## Which constraints are violated, and when
#
# The descriptor run logs, per term and epoch, the fraction of its constraints that the network's
# outputs break. Watch them fall as the network learns, while $t$ grows and the barrier stiffens.

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_constraint_violations({"descriptors": histories["descriptors"]}, stat="frac_violated")

# %%
frac = {
    k: v
    for k, v in histories["descriptors"].items()
    if k.startswith("c_") and k.endswith("frac_violated")
}
first = sum(float(v[0]) for v in frac.values())
last = sum(float(v[-1]) for v in frac.values())
print(f"violated constraints (sum over terms): first epoch {first:.2f}, last epoch {last:.2f}")
verdict(last < first, "fewer constraints are violated at the last epoch than at the first")

# %% [markdown]
# ## Predictions
#
# Test slices, the ground truth and both networks' predictions. The descriptor network never saw a
# mask, yet its boundaries follow the image: the descriptors say *how much, where, how spread and how
# long*; the image says *which pixels*.

# %%
show = torch.linspace(0, len(test_set) - 1, 4).long()
predictions = {
    m: predict_run(config_run_dir(c, RUNS), test_set.images[show], device=device)
    for m, c in configs.items()
}

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_predictions(
    test_set.images[show, 0],
    test_set.labels[show],
    predictions,
    CLASSES,
    titles=[test_set.volume_ids[i] for i in show],
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
# ### Exercise 1: Dice in 2-D and in 3-D by hand
#
# Write `dice_2d_and_3d(pred, truth)` for two boolean masks of one class over one volume, tensors of
# shape `(S, H, W)`. Return two floats: the 2-D Dice (each slice scored, then the mean over the slices
# where `pred` or `truth` has pixels) and the 3-D Dice (the counts of all slices pooled first).
# Without the `metrics` module.


# %%
def dice_2d_and_3d(pred: torch.Tensor, truth: torch.Tensor) -> tuple[float, float]:
    raise NotImplementedError  # your code here


# %%
check("04.1", dice_2d_and_3d)

# %% [markdown]
# ### Exercise 2: HD95 of two point sets
#
# `hd95` takes boundary pixels of two masks as points in mm. Write `hd95_of_points(a, b)` for two
# float64 tensors of point coordinates in mm, `a` of shape `(N, 2)` and `b` of shape `(M, 2)`: return,
# as a float, the 95th percentile (linear interpolation, as `torch.quantile`) of the N + M distances
# from each point of `a` to its nearest point of `b` and from each point of `b` to its nearest of `a`.


# %%
def hd95_of_points(a: torch.Tensor, b: torch.Tensor) -> float:
    raise NotImplementedError  # your code here


# %%
check("04.2", hd95_of_points)

# %% [markdown]
# ## Recap
#
# * With a few numbers per slice and class, a network learns a segmentation that beats a strong
#   image-blind baseline and approaches the one trained on full masks.
# * The constraints are satisfied progressively: a soft penalty at first, close to hard at the end.
# * Fast mode trains for a few epochs only; without `TUTORIAL_FAST=1` (or with
#   `python -m tutorial_lib reproduce --dataset toy-cardiac`) both runs train longer.
#
# **Next:** [04b · What makes it work](04b_what_makes_it_work.ipynb): the toy presets' three
# departures from the paper taken away, on a free mask and on networks.
