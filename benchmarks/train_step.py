"""Cost of a descriptor-loss training step against a cross-entropy step: same network, same batch.

    python benchmarks/train_step.py [--model enet] [--size 256] [--batch 8] [--threads 2] [--repeats 7]

One step = forward, loss, backward, Adam update, exactly as in `tutorial_lib.train`: softmax of
the float32 logits, then `ShapeDescriptorLoss` with the preset's terms (bounds computed inside the
call from the labels) for "descriptors", `cross_entropy_loss` for "ce". The two kinds of steps are
interleaved (ABAB...) so that a change of machine load hits both; each ratio is the minimum time
over the repeats of the descriptor step divided by that of the CE step. Target: <= 1.15.

Defaults: the ACDC paper setting (ENet, B = 8, 256x256, 4 classes, the acdc-descriptors terms).
`--model small_unet --size 64 --preset toy-cardiac-descriptors` times the toy setting.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="enet")
    parser.add_argument(
        "--preset", default="acdc-descriptors", help="whose descriptor terms to use"
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    from tutorial_lib.data.toy.dataset import generate_toy
    from tutorial_lib.losses import cross_entropy_loss
    from tutorial_lib.models import build_model
    from tutorial_lib.presets import get_preset
    from tutorial_lib.run_setup import build_loss

    # a realistic batch: toy cardiac slices (4 classes) at the asked size
    volumes = generate_toy("toy-cardiac", size=args.size, n_patients=3, seed=args.seed)
    images = (
        torch.cat([torch.as_tensor(v.image) for v in volumes])[: args.batch].unsqueeze(1).float()
    )
    labels = torch.cat([torch.as_tensor(v.label) for v in volumes])[: args.batch].long()
    if args.classes != 4:
        labels = labels.clamp_max(args.classes - 1)
    model = build_model(args.model, 1, args.classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99))
    descriptor_loss = build_loss(get_preset(args.preset))

    def step(kind: str) -> float:
        start = time.perf_counter()
        logits = model(images).float()
        if kind == "ce":
            loss = cross_entropy_loss(logits, labels)
        else:
            loss = descriptor_loss(torch.softmax(logits, dim=1), labels, 5.0)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    for kind in ("ce", "descriptors"):  # warm-up
        step(kind)
    times: dict[str, list[float]] = {"ce": [], "descriptors": []}
    for _ in range(args.repeats):
        for kind in ("ce", "descriptors"):
            times[kind].append(step(kind))
    best = {k: min(v) for k, v in times.items()}
    print(
        f"{args.model}, B={args.batch}, {args.size}x{args.size}, K={args.classes}, {args.threads} thread(s), "
        f"terms of {args.preset}, best of {args.repeats}"
    )
    for kind, value in best.items():
        print(
            f"  {kind:<12} step {1000 * value:8.1f} ms   (median {1000 * sorted(times[kind])[len(times[kind]) // 2]:.1f} ms)"
        )
    ratio = best["descriptors"] / best["ce"]
    print(
        f"  descriptors / CE: {ratio:.3f}  (target <= 1.15: {'met' if ratio <= 1.15 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
