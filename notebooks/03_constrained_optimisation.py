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
# # 03 · Constrained optimisation
#
# *From bounds to a loss: penalty, Lagrangian, log barrier and its extension, then a segmentation from four numbers.*
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/shape-descriptors-course/shape-descriptors-course/blob/main/notebooks/03_constrained_optimisation.ipynb)
#
# **You will**
#
# * compare a penalty, a Lagrangian, a log barrier and the log-barrier extension on a problem solved by
#   hand;
# * check that the extension is smooth ($C^1$) and finite everywhere, and link its $t$ to the Lagrange
#   multiplier;
# * turn descriptor bounds into the paper's loss and check it against the formula;
# * recover a shape from four descriptors, with no network and no pixel label.
#
# **Prerequisites:** notebooks 01 and 02; derivatives, logarithms, the idea of a minimum under a constraint.
#
# **Time** (2-core CPU, measured with `benchmarks/notebook_times.py`): 10 to 15 s, in fast mode and
# in full mode (a free mask is optimised, no network).

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

from tutorial_lib import descriptors, plots, widgets
from tutorial_lib.checks import verdict
from tutorial_lib.device import get_device, set_cpu_threads
from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss
from tutorial_lib.penalties import log_barrier_extension, quadratic_penalty
from tutorial_lib.schedules import MultiplyT
from tutorial_lib.widgets import make_shape

# %%
FAST = os.environ.get("TUTORIAL_FAST", "0") == "1"
SEED = 0
STEPS = 500  # optimisation steps of the free mask (a few seconds on a CPU)

# %%
device = get_device()
if device.type == "cpu":
    set_cpu_threads(1)  # the tensors here are small: one thread is the fastest
torch.manual_seed(SEED)
print(f"device: {device}, fast mode: {FAST}")

# %% [markdown]
# ## The problem
#
# Training with descriptors is a **constrained** problem: find network weights $\theta$ such that for
# every image, class and descriptor value
#
# $$a \le f(s_\theta) \le b \quad\Longleftrightarrow\quad z_1 = f(s_\theta) - b \le 0, \;\; z_2 = a - f(s_\theta) \le 0 .$$
#
# There is no objective besides the constraints: any $\theta$ that satisfies them all will do. Four
# classic ways to hand this to gradient descent, on a problem small enough to solve by hand first:
#
# $$\min_x\; (x - 3)^2 \quad\text{subject to}\quad z = x - 1 \le 0, \qquad\text{solution } x^\star = 1.$$

# %%
x = torch.linspace(-1.0, 4.0, 50_001, dtype=torch.float64)
objective = (x - 3) ** 2
z = x - 1


def argmin(values: torch.Tensor) -> float:
    """The x on the grid where `values` is smallest (NaN counts as +inf)."""
    return float(x[torch.nan_to_num(values, nan=math.inf).argmin()])


# %% [markdown]
# **Penalty.** Add $\lambda\,\max(0, z)^2$. The minimiser $x = (3 + \lambda)/(1 + \lambda)$ is always a
# little infeasible: the penalty only acts once the constraint is already broken.

# %%
lam = 10.0
x_penalty = argmin(objective + lam * quadratic_penalty(z))
print(f"quadratic penalty, λ = {lam:g}: x = {x_penalty:.4f}")
assert abs(x_penalty - (3 + lam) / (1 + lam)) < 1e-3 and x_penalty > 1

# %% [markdown]
# **Lagrangian.** $\mathcal{L}(x, \lambda) = (x-3)^2 + \lambda z$, minimised in $x$ and maximised in
# $\lambda \ge 0$. Alternate the two: $x(\lambda) = 3 - \lambda/2$, then
# $\lambda \leftarrow \max(0, \lambda + \eta\, z)$. It finds the exact answer ($\lambda^\star = 4$,
# $x^\star = 1$), but with a network it needs one multiplier per image and per constraint, and
# alternating updates that are slow and unstable with stochastic gradients: the reason the paper's
# authors built the alternative below.

# %%
lam_k = 0.0
for _ in range(200):
    x_k = 3 - lam_k / 2  # argmin over x of the Lagrangian for this λ
    lam_k = max(0.0, lam_k + 0.5 * (x_k - 1))  # ascent on λ along the constraint value
print(f"dual ascent: λ = {lam_k:.4f}, x = {x_k:.4f}")
assert abs(lam_k - 4) < 1e-6 and abs(x_k - 1) < 1e-6
# the library's quadratic penalty reaches the same x* only as λ grows: (3 + λ) / (1 + λ) -> 1
x_large = argmin(objective + 1e4 * quadratic_penalty(z))
assert abs(x_large - x_k) < 1e-3 < abs(x_penalty - x_k)

# %% [markdown]
# **Log barrier.** Add $-\frac1t \log(-z)$: infinite on the boundary, so the minimiser stays strictly
# feasible and tends to $x^\star$ as $t$ grows. But it is **undefined** where $z > 0$: it cannot start
# from an infeasible point, and a freshly initialised network breaks almost every constraint.
#
# **Log-barrier extension** (Kervadec et al., 2019). Keep the barrier where it is steep enough, and
# continue it by its tangent line where its slope would exceed $t$:
#
# $$\tilde\psi_t(z) = \begin{cases} -\frac{1}{t}\log(-z) & z \le -\frac{1}{t^2} \\[2pt]
# t z - \frac{1}{t}\log\frac{1}{t^2} + \frac{1}{t} & \text{otherwise.} \end{cases}$$
#
# Defined everywhere, a barrier inside, a linear penalty of slope $t$ near and beyond the edge; no
# multiplier to track. Increasing $t$ brings it closer to the hard constraint.

# %%
with torch.no_grad():
    plain_barrier = -torch.log(-z) / 5.0  # NaN where z > 0
print(f"plain log barrier at x = 3 (z = 2): {float(-torch.log(torch.tensor(-2.0)) / 5):.0f}")
for t in (1.0, 5.0, 20.0, 100.0):
    x_t = argmin(objective + log_barrier_extension(z, t))
    print(f"log-barrier extension, t = {t:5g}: x = {x_t:.4f}")
x_20 = argmin(objective + log_barrier_extension(z, 20.0))
x_100 = argmin(objective + log_barrier_extension(z, 100.0))
assert torch.isnan(plain_barrier[x > 1]).all()  # the plain barrier has nothing to say out there
assert x_20 < 1 and x_100 < 1 and x_100 > x_20  # feasible, and closer to x* = 1 as t grows
extension = log_barrier_extension(z, 5.0)
assert torch.isfinite(extension).all()
# the library's extension is the plain barrier (written by hand above) where z <= -1/t², and the
# tangent line t z + (2 log t + 1) / t of the formula elsewhere
inside = z <= -1 / 5.0**2
assert torch.allclose(extension[inside], plain_barrier[inside])
assert torch.allclose(extension[~inside], 5.0 * z[~inside] + (2 * math.log(5.0) + 1) / 5.0)

# %% [markdown]
# **The barrier meets the Lagrangian.** For small $t$ the minimiser is *not* feasible. Beyond the
# switch point the extension is the straight line $t z + \text{const}$: an exact **L1 penalty** of
# weight $t$. An L1 penalty solves a constrained problem exactly once its weight is at least the
# Lagrange multiplier, here $\lambda^\star = 4$ from the dual ascent above. So for $t < 4$ the
# minimiser is the unconstrained one of $(x-3)^2 + t z$, $x = 3 - t/2$ (infeasible); at $t = 4$ it
# reaches $x^\star = 1$; above, the barrier branch takes over and holds $x$ strictly inside
# ($t = 5$: $2(x-3) = 1/(5(x-1))$, so $x = 2 - \sqrt{1.1} \approx 0.95$). This is why the
# constraint violations of a training run fall as $t$ grows (notebook 04): each constraint is
# enforced once $t$ passes its own multiplier.

# %%
for t in (1.0, 2.0, 4.0, 5.0):
    x_t = argmin(objective + log_barrier_extension(z, t))
    closed_form = 3 - t / 2 if t <= lam_k + 1e-6 else 2 - math.sqrt(1 + 1 / (2 * t))
    print(f"t = {t:g}: x = {x_t:.4f} (closed form {closed_form:.4f}), feasible: {x_t <= 1}")
    assert abs(x_t - closed_form) < 1e-3
    assert (x_t <= 1 + 1e-9) == (t >= lam_k - 1e-6)  # feasible exactly from t = λ* on

# %%
# NBVAL_IGNORE_OUTPUT
t = 5.0
plots.plot_penalty_curves(
    z,
    {
        "objective (x − 3)²": objective,
        "+ quadratic penalty (λ = 10)": objective + lam * quadratic_penalty(z),
        f"+ log-barrier extension (t = {t:g})": objective + log_barrier_extension(z, t),
    },
    ylim=(-1.0, 12.0),
    title="min (x − 3)²  subject to  x ≤ 1",
    xlabel="z = x − 1",
)

# %% [markdown]
# ## The extension, up close
#
# Two facts make $\tilde\psi_t$ a good loss: it is **$C^1$** at the switch point $z = -1/t^2$ (the
# value $2\log(t)/t$ and the slope $t$ agree on both sides, so gradient descent sees no kink), and it
# is finite with a finite gradient **everywhere**, including $z = 0$ where the authors' code produced
# NaN. The explorer shows how $t$ shapes it.

# %%
for t in (1.0, 5.0, 50.0):
    thr = -1.0 / t**2
    pts = thr * torch.tensor([1 + 1e-7, 1.0, 1 - 1e-7], dtype=torch.float64)  # left, at, right
    pts.requires_grad_(True)
    psi = log_barrier_extension(pts, t)
    (slope,) = torch.autograd.grad(psi.sum(), pts)
    # the same value 2 log(t) / t and the same slope t on both sides of the switch point
    assert torch.allclose(psi, torch.full_like(psi, 2 * math.log(t) / t), atol=1e-6)
    assert torch.allclose(slope, torch.full_like(slope, t), rtol=1e-5)
edge = torch.tensor([0.0, 0.5, 1e6], dtype=torch.float64, requires_grad=True)
(g,) = torch.autograd.grad(log_barrier_extension(edge, 5.0).sum(), edge)
assert torch.isfinite(g).all() and torch.allclose(g, torch.tensor(5.0, dtype=torch.float64))

# %%
# NBVAL_IGNORE_OUTPUT
widgets.barrier_figure()

# %%
# NBVAL_IGNORE_OUTPUT
widgets.barrier_explorer()

# %% [markdown]
# In training, $t$ starts at 1 and is multiplied by 1.1 after every epoch (`MultiplyT`): soft
# constraints first, while the network is still far off; near-hard ones at the end.

# %%
schedule = MultiplyT(t0=1.0, factor=1.1)
for _ in range(199):
    schedule.step()
print(f"t after 199 steps: {schedule.t:.3g}")
assert math.isclose(schedule.t, 1.1**199, rel_tol=1e-9)

# %% [markdown]
# ## Segmentation from four numbers
#
# Now the real thing, without a network: a **free** soft mask, one logit per pixel and class, softmax
# over background and foreground. All it is told about the target below are four descriptors of it,
# as intervals:
#
# * size within ±10 %,
# * centroid within ±2 pixels,
# * spread within ±1 pixel,
# * length within ±10 %.
#
# The loss is the paper's: $\sum \tilde\psi_t(f - b) + \tilde\psi_t(a - f)$ over the constrained values,
# $t$ growing every ten steps. Does a shape appear?

# %%
SIZE = 64
target = make_shape("ellipse", size=SIZE, radius=18, aspect=0.55, angle=30, centre=(28.0, 36.0))
labels = target.long()[None]  # (1, H, W) integer labels: 0 background, 1 foreground
terms = [
    DescriptorTerm("size", (1,), margin=0.10, mode="percentage", weight=1.0),
    DescriptorTerm("centroid", (1,), margin=2.0, mode="abs", weight=1.0),
    DescriptorTerm("dist_centroid", (1,), margin=1.0, mode="abs", weight=1.0),
    DescriptorTerm("length", (1,), margin=0.10, mode="percentage", weight=1.0),
]
loss_fn = ShapeDescriptorLoss(terms, penalty="log_barrier", empty_policy="corrected")
NAMES = ("size", "centroid", "dist_centroid", "length")
truth = {n: descriptors.DESCRIPTORS[n](target[None, None])[0, 0] for n in NAMES}
print({n: [round(v, 1) for v in truth[n].tolist()] for n in NAMES})

# %% [markdown]
# The library's loss is exactly the formula. Check it by hand on a random soft mask:

# %%
probs = torch.randn(1, 2, SIZE, SIZE).softmax(dim=1)
by_hand = torch.zeros(())
for term in terms:
    f = descriptors.DESCRIPTORS[term.descriptor](probs)[0, 1]
    v = truth[term.descriptor]
    m = term.margin * v.abs() if term.mode == "percentage" else torch.full_like(v, term.margin)
    lower, upper = (v - m).clamp_min(0), v + m
    by_hand = (
        by_hand
        + (log_barrier_extension(f - upper, 3.0) + log_barrier_extension(lower - f, 3.0)).sum()
    )
by_hand = by_hand / (SIZE * SIZE)  # the paper divides by the number of pixels
assert torch.allclose(loss_fn(probs, labels, 3.0), by_hand, rtol=1e-5)


# %%
def optimise_free_mask(loss_fn: ShapeDescriptorLoss, steps: int, snap_at: tuple[int, ...]) -> dict:
    """Adam on free logits (1, 2, H, W) against `loss_fn`; t × 1.1 every 10 steps."""
    logits = torch.zeros(1, 2, SIZE, SIZE, requires_grad=True)
    optimiser = torch.optim.Adam([logits], lr=0.05)
    schedule = MultiplyT(t0=1.0, factor=1.1)
    history = {f"{n}[{i}]": [] for n in NAMES for i in range(truth[n].numel())}
    snapshots = []
    for step in range(steps + 1):
        probs = logits.softmax(dim=1)
        if step in snap_at:
            snapshots.append((step, probs[0, 1].detach().clone()))
        for n in NAMES:
            values = descriptors.DESCRIPTORS[n](probs.detach())[0, 1]
            for i, v in enumerate(values.tolist()):
                history[f"{n}[{i}]"].append(v)
        if step == steps:
            break
        loss = loss_fn(probs, labels, schedule.t)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 10 == 9:
            schedule.step()
    return {"probs": logits.softmax(dim=1).detach(), "history": history, "snapshots": snapshots}


# %%
# NBVAL_IGNORE_OUTPUT
snap_at = (0, 50, 100, 200, 300, STEPS)
result = optimise_free_mask(loss_fn, STEPS, snap_at)
violated = {k: float(v) for k, v in loss_fn.last_stats.items() if k.endswith("frac_violated")}
print("fraction of constraints violated at the end:", violated)

# %%
# NBVAL_IGNORE_OUTPUT
final = result["probs"]
plots.plot_optimisation_snapshots(
    result["snapshots"],
    target=target,
    centroids=[descriptors.soft_centroid(p[None, None])[0, 0] for _, p in result["snapshots"]],
    spreads=[descriptors.soft_dist_centroid(p[None, None])[0, 0] for _, p in result["snapshots"]],
)

# %% [markdown]
# The target's outline is in yellow; the network-free mask never saw it. First the size constraint
# empties the map, then, as $t$ grows, the centroid and spread pull the probability together and the
# length constraint gives it a clean boundary. The curves show each value entering its band.

# %%
bounds = {}
for term in terms:
    v = truth[term.descriptor]
    m = term.margin * v.abs() if term.mode == "percentage" else torch.full_like(v, term.margin)
    for i in range(v.numel()):
        bounds[f"{term.descriptor}[{i}]"] = (float((v[i] - m[i]).clamp_min(0)), float(v[i] + m[i]))

# %%
# NBVAL_IGNORE_OUTPUT
plots.plot_descriptor_history(result["history"], bounds)

# %%
# The optimised mask's descriptors end inside their bounds (up to a pixel's worth of rounding)...
outside = []
for name, (lo, hi) in bounds.items():
    value = result["history"][name][-1]
    slack = 1e-3 * max(1.0, abs(hi))
    if not lo - slack <= value <= hi + slack:
        outside.append(f"{name} = {value:.3f} outside [{lo:.3f}, {hi:.3f}]")
verdict(not outside, "every descriptor ends inside its bounds", hint="; ".join(outside))
# ...and the shape is recovered from four numbers: Dice of the thresholded mask against the target.
hard = (final[0, 1] > 0.5).float()
dice = float(2 * (hard * target).sum() / (hard.sum() + target.sum()))
verdict(dice > 0.7, f"Dice against the unseen target {dice:.3f}, above 0.7")

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
# ### Exercise 1: the barrier's value and slope at a point
#
# Write `barrier_value_and_slope(z, t)` for floats `z` and `t > 0`: return the pair of floats
# $(\tilde\psi_t(z), \tilde\psi_t'(z))$ of the log-barrier extension, which is $-\log(-z)/t$ for
# $z \le -1/t^2$ and, beyond, the straight line that continues it with the same value and slope.
# Without calling `log_barrier_extension`.


# %%
def barrier_value_and_slope(z: float, t: float) -> tuple[float, float]:
    raise NotImplementedError  # your code here


# %%
check("03.1", barrier_value_and_slope)

# %% [markdown]
# ### Exercise 2: a penalty's minimiser
#
# A value pulled towards `a` by the data, with an upper bound enforced by a quadratic penalty: write
# `penalty_minimiser(a, upper, weight)` (floats, `weight > 0`) returning the float $x$ that minimises
# $(x - a)^2 + \text{weight} \cdot \max(0, x - \text{upper})^2$. Where does it land when
# $a > \text{upper}$, and what happens as the weight grows?


# %%
def penalty_minimiser(a: float, upper: float, weight: float) -> float:
    raise NotImplementedError  # your code here


# %%
check("03.2", penalty_minimiser)

# %% [markdown]
# ## Recap
#
# * A penalty acts only once a constraint is broken; a Lagrangian is exact but needs one multiplier
#   per constraint; a plain log barrier cannot start from an infeasible point.
# * The log-barrier extension is a barrier inside and a line of slope $t$ beyond $z = -1/t^2$: finite
#   and $C^1$ everywhere, and the constraint holds once $t$ passes its Lagrange multiplier.
# * The paper's loss sums the extension over both sides of every bound, divided by the number of
#   pixels; four descriptors within bounds bring a shape back from nothing.
#
# Not perfect: the per-axis spread cannot tell a tilted ellipse from an upright one (notebook 02),
# and nothing says what lies *inside* the bounds. A network adds what is missing: the image. A free
# mask can only meet the numbers; a network must meet them **with a function of the image**, so
# boundaries land on edges. That is notebook 04.
#
# **Try it.** Change `target` to `make_shape("crescent", size=SIZE, radius=18)`: the optimiser still
# satisfies every constraint, and finds a blob, not a crescent. Which descriptor would you add?
# (Notebook 08, exercise 4, asks it and checks your answer.)
#
# **Next:** [04 · Training with descriptors](04_training_with_descriptors.ipynb): a network trained
# with descriptors only, side by side with one trained on full masks.
