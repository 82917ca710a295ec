"""Time the descriptor loss against the authors' formulation, in the same process.

    python benchmarks/descriptors.py [--device cpu|cuda] [--threads 1] [--quick] [--step-cost]

What is timed (forward + backward, best of several runs):
- ours: ``ShapeDescriptorLoss`` with size (±10 %), centroid (±20 px), spread (±20 px) and length
  (margin 10, percentage) on every class, log-barrier extension, t = 5. Its bounds are computed
  *inside* the call from the integer labels (one-hot, four descriptors of the ground truth): more work
  than the reference does in the timed region.
- reference: the authors' formulation as the tests' oracle ``tests/authors_reference.py``
  re-implements it from docs/method.md: coordinate grids and einsum-style sums in float32, the
  length as ``x^T L x`` with a sparse float64 Laplacian in a Python loop over batch and class, the
  log barrier evaluated everywhere with NaNs zeroed, bounds (the authors' PreciseBounds)
  precomputed outside the timed region as in their data loader. The penalty is vectorised there
  (their loop over elements would be slower still), so the ratio is conservative.

Agreement: both losses are float32 sums of ~B*K*6*2 barrier terms over descriptors that sum 65k
pixels. float32 summation of N terms carries a relative error of order sqrt(N)*6e-8 (pairwise
sums: log2(N)*6e-8), ~1e-5 at 256x256, and the two formulations sum in different orders (marginals
vs grids; Laplacian form vs sparse matmul in float64). The check therefore asks for a relative loss
difference below 1e-4 and a relative max gradient difference below 1e-3; a formula error would
show at the 1e-2 level or above. (tests/test_losses.py checks the same equality in float64 to 1e-6.)

3-D: the authors' code is 2-D only; the reference here is their recipe extended to 3-D (grids in
three axes, the 26-neighbour sparse Laplacian, the same loops), which computes the same quantity as
ours, so the 3-D ratio is like for like.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from authors_reference import ref_loss_from_bounds, ref_term_bounds  # noqa: E402

from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss  # noqa: E402

TERMS = [  # (descriptor, margin, mode): the paper's settings, weight 1e-2 each
    ("size", 0.1, "percentage"),
    ("centroid", 20.0, "abs"),
    ("dist_centroid", 20.0, "abs"),
    ("length", 10.0, "percentage"),
]
WEIGHT = 1e-2
T = 5.0


# ----------------------------------------------------------------------------------------------
# Inputs, timing
# ----------------------------------------------------------------------------------------------
def make_inputs(shape, device, seed=0):
    """Smooth random softmax maps and labels from another smooth field; the last class is absent
    from the first image (exercises the paper's empty-class rule)."""
    g = torch.Generator().manual_seed(seed)
    b, k, *spatial = shape
    coarse = [max(2, s // 8) for s in spatial]
    mode = "bilinear" if len(spatial) == 2 else "trilinear"
    logits = F.interpolate(4 * torch.randn(b, k, *coarse, generator=g), size=spatial, mode=mode)
    labels = F.interpolate(
        4 * torch.randn(b, k, *coarse, generator=g), size=spatial, mode=mode
    ).argmax(1)
    labels[0][labels[0] == k - 1] = 0
    probs = logits.softmax(1).to(device).requires_grad_()
    return probs, labels.to(device)


def timeit(fn, device, repeats, warmup=True):
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    if warmup:  # caches, allocator
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return min(times)


def compare(shape, device, repeats_ours, repeats_ref):
    probs, labels = make_inputs(shape, device)
    k = shape[1]
    onehot = F.one_hot(labels, k).movedim(-1, 1).float()
    terms = [(n, tuple(range(k)), m, mo, WEIGHT) for n, m, mo in TERMS]
    bounds = ref_term_bounds(onehot, terms)  # outside the timed region, as the authors' loader
    ours = ShapeDescriptorLoss([DescriptorTerm(*term) for term in terms])

    def run_ours():
        probs.grad = None
        loss = ours(probs, labels, T)
        loss.backward()
        return loss

    def run_ref():
        probs.grad = None
        loss = ref_loss_from_bounds(probs, bounds, terms, T)
        loss.backward()
        return loss

    l_ours = run_ours().detach()
    g_ours = probs.grad.clone()
    l_ref = run_ref().detach()
    g_ref = probs.grad.clone()
    rel_loss = (abs(l_ours - l_ref) / l_ref.abs().clamp_min(1e-12)).item()
    rel_grad = ((g_ours - g_ref).abs().max() / g_ref.abs().max().clamp_min(1e-30)).item()
    ok = rel_loss < 1e-4 and rel_grad < 1e-3
    t_ours = timeit(run_ours, device, repeats_ours)
    t_ref = timeit(run_ref, device, repeats_ref, warmup=False)  # the check above warmed it up
    return {
        "loss_ours": l_ours.item(),
        "loss_ref": l_ref.item(),
        "rel_loss": rel_loss,
        "rel_grad": rel_grad,
        "ok": ok,
        "t_ours": t_ours,
        "t_ref": t_ref,
    }


def _step_time(
    model, opt, x, y, loss_fn, descriptors: bool, device, amp: bool, steps: int
) -> float:
    """Seconds per training step (forward, loss, backward, Adam), best of 3 runs of ``steps``."""
    from tutorial_lib.losses import cross_entropy_loss

    def run() -> None:
        for _ in range(steps):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x)
            logits = logits.float()
            if descriptors:
                loss = loss_fn(logits.softmax(1), y, T)
            else:
                loss = cross_entropy_loss(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return min(timeit(run, device, 1) for _ in range(3)) / steps


def step_costs(device, amp: bool, steps: int = 20) -> None:
    """Training-loop step with cross-entropy vs with the paper's loss, same network (target <= 1.15x)."""
    from tutorial_lib.losses import ShapeDescriptorLoss, paper_terms
    from tutorial_lib.models import build_model

    for model_name, k, b, dataset in [("enet", 4, 8, "acdc"), ("residual_unet", 2, 4, "promise12")]:
        torch.manual_seed(0)
        fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        model = build_model(model_name, 1, k).to(device).to(memory_format=fmt)
        opt = torch.optim.Adam(model.parameters(), 5e-4, betas=(0.9, 0.99))
        x = torch.randn(b, 1, 256, 256, device=device).contiguous(memory_format=fmt)
        y = torch.randint(0, k, (b, 256, 256), device=device)
        loss_fn = ShapeDescriptorLoss(paper_terms(dataset))
        loss_fn.check_inputs = False  # as the training loop does
        times = {}
        for descriptors in (False, True, False, True):  # interleaved against drift
            t = _step_time(model, opt, x, y, loss_fn, descriptors, device, amp, steps)
            times[descriptors] = min(t, times.get(descriptors, math.inf))
        ce, de = times[False], times[True]
        print(
            f"step cost {model_name} B={b} K={k} 256x256 (bf16 autocast={amp}): cross-entropy "
            f"{ce * 1e3:.2f} ms, descriptors {de * 1e3:.2f} ms, ratio {de / ce:.3f} (target <= 1.15)"
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument(
        "--device", default=default_device, help=f"torch device (default: {default_device})"
    )
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument(
        "--step-cost",
        action="store_true",
        help="also time a training step (ENet, residual U-Net) with CE vs the paper's loss",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from tutorial_lib.device import describe_device, get_device

    try:
        device = get_device(args.device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = describe_device(device)
    print(f"device: {name}; torch {torch.__version__}")
    reps = (2, 1) if args.quick else (10, 2)
    failed = False
    for label, shape in [("2-D", (8, 4, 256, 256)), ("3-D", (2, 4, 16, 128, 128))]:
        r = compare(shape, device, *reps)
        failed |= not r["ok"]
        ratio = r["t_ref"] / r["t_ours"]
        print(
            f"{label} B,K,*spatial={shape}: ours {r['t_ours'] * 1e3:8.1f} ms | authors' formulation "
            f"{r['t_ref'] * 1e3:8.1f} ms | ratio {ratio:6.1f}x | loss {r['loss_ours']:.6g} vs "
            f"{r['loss_ref']:.6g} (rel. diff {r['rel_loss']:.1e}, grad rel. diff {r['rel_grad']:.1e}) "
            f"{'OK' if r['ok'] else 'MISMATCH'}"
        )
    if args.step_cost:
        step_costs(device, amp=device.type == "cuda", steps=3 if device.type == "cpu" else 20)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
