"""Parameter counts and CPU step times of the networks.

Run: `python -m tutorial_lib.models.bench [--batch 16] [--sizes 64 96] [--threads 1 2]`.
A step is forward + cross-entropy + backward in training mode; the minimum over `--repeat`
timed steps (after one warm-up step) is reported, since shared machines make timings noisy.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from . import build_model, count_parameters


def step_time(model: torch.nn.Module, batch: int, size: int, n_classes: int, repeat: int) -> float:
    """Minimum wall time (s) of a forward + cross-entropy + backward step."""
    x = torch.randn(batch, model.in_channels, size, size)
    y = torch.randint(0, n_classes, (batch, size, size))
    model.train()
    times = []
    for i in range(repeat + 1):
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if i:
            times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["small_unet"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 96])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--classes", type=int, default=4)
    args = parser.parse_args(argv)
    for name in ("enet", "residual_unet", "small_unet"):
        k = 2 if name == "residual_unet" else 4
        print(
            f"{name:14s} 1 input, {k} classes: {count_parameters(build_model(name, 1, k)):>10,d} parameters"
        )
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, 1, args.classes)
        for threads in args.threads:
            torch.set_num_threads(threads)
            for size in args.sizes:
                t = step_time(model, args.batch, size, args.classes, args.repeat)
                print(
                    f"{name} B={args.batch} {size}x{size} threads={threads}: {1000 * t:7.1f} ms/step"
                )


if __name__ == "__main__":
    main()
