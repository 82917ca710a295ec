"""Use tutorial_lib in your own project: your data, your network, your loop, the library's loss.

Everything but the loss is yours here: a toy dataset (a bright ellipse at a random place on a
noisy background), a small convolutional network and a plain PyTorch loop with a ``DataLoader``.
The library gives ``ShapeDescriptorLoss``, the barrier schedule ``MultiplyT`` and weak labels.
The network is trained twice:

1. **from masks**: the loss reads its bounds from each batch's label maps;
2. **from a table**: the annotator drew one ellipse per image (centre, semi-axes, angle);
   ``ellipse_descriptors`` turns each into a size, a centroid and a spread, written to a CSV and
   read back; the network trains from that table alone (its data loader holds no mask).

Both are scored by the ellipse's Dice on held-out images, against the best image-blind answer
(one mask for every image, the training masks' frequency thresholded where it scores best)::

    python examples/train_your_own.py --epochs 20
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from tutorial_lib.losses import DescriptorTerm, ShapeDescriptorLoss, shape_descriptor_loss
from tutorial_lib.metrics import dice_2d, mean_dice
from tutorial_lib.schedules import MultiplyT
from tutorial_lib.shape_annotations import ellipse_descriptors
from tutorial_lib.weak_label_files import read_weak_labels, write_weak_labels
from tutorial_lib.weak_labels import WeakLabels, weak_labels_from_masks, weak_labels_from_values

N_CLASSES = 2  # background, ellipse
# The sizes within 10 %, the ellipse's centroid and spread within 1 px, weighted 30x more: their
# gradient per pixel, ~(x - C) / S, is far smaller than a size's 1; with the same weight the
# network can settle on a faint, spread-out map of the right soft size (no pixel above 0.5).
TERMS = [
    DescriptorTerm("size", (0, 1), margin=0.1),
    DescriptorTerm("centroid", (1,), margin=1.0, mode="abs", weight=0.3),
    DescriptorTerm("dist_centroid", (1,), margin=1.0, mode="abs", weight=0.3),
]


def toy_ellipses(n: int, size: int, generator: torch.Generator):
    """Images (n, 1, size, size), masks (n, size, size) and each ellipse (centre, semi-axes, angle)."""
    centre = size * (0.25 + 0.5 * torch.rand(n, 2, generator=generator, dtype=torch.float64))
    semi_axes = size * (0.08 + 0.12 * torch.rand(n, 2, generator=generator, dtype=torch.float64))
    angle = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
    axis = torch.arange(size, dtype=torch.float64)
    dr = axis[None, :, None] - centre[:, 0, None, None]
    dc = axis[None, None, :] - centre[:, 1, None, None]
    cos, sin = angle.cos()[:, None, None], angle.sin()[:, None, None]
    u, v = dr * cos + dc * sin, dc * cos - dr * sin  # along the first and the second semi-axis
    masks = (u / semi_axes[:, 0, None, None]) ** 2 + (v / semi_axes[:, 1, None, None]) ** 2 <= 1
    noise = torch.randn(n, size, size, generator=generator)
    images = 0.3 + 0.4 * masks.float() + 0.15 * noise
    return images[:, None], masks.long(), (centre, semi_axes, angle)


class SmallNet(nn.Module):
    """Your own network: three convolutions (the middle one dilated), logits (B, K, H, W)."""

    def __init__(self, n_classes: int = N_CLASSES, width: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=2, dilation=2),
            nn.ReLU(),
        )
        self.head = nn.Conv2d(width, n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ImagesOnly(Dataset):
    """Images and their positions in the table: no mask, so none can reach the loss."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], i


def train(net: nn.Module, loader: DataLoader, target, epochs: int, lr: float) -> nn.Module:
    """The plain loop: softmax, the loss against ``target(batch)``, Adam; t x 1.2 per epoch."""
    loss_fn = ShapeDescriptorLoss(TERMS, normalisation="batch_mean")
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = MultiplyT(t0=1.0, factor=1.2)
    for _ in range(epochs):
        for batch in loader:
            probs = net(batch[0]).softmax(1)
            loss = loss_fn(probs, target(batch), schedule.t)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    return net


def new_net(mean_fraction: torch.Tensor, seed: int) -> SmallNet:
    """A network whose first prediction has the mean class sizes (its output bias, log of them)."""
    torch.manual_seed(seed)
    net = SmallNet()
    with torch.no_grad():
        net.head.bias.copy_(mean_fraction.clamp_min(1e-3).log())
    return net


def ellipse_table(
    ellipses: tuple[torch.Tensor, ...], image_size: int, ids: list[str]
) -> WeakLabels:
    """What the annotator's ellipses say: the ellipse's size, centroid and spread, and the
    background's size (the image's pixels less the ellipse's)."""
    ellipse = ellipse_descriptors(*ellipses)
    given = {name: ellipse[name] for name in ("size", "centroid", "dist_centroid")}
    background = {"size": image_size**2 - given["size"]}
    return weak_labels_from_values({0: background, 1: given}, N_CLASSES, ids=ids)


def train_from_table(images: torch.Tensor, csv_path: Path, ids: list[str], args) -> nn.Module:
    """Train from the CSV alone: the images and the table, no mask."""
    table = read_weak_labels(csv_path, ids, N_CLASSES).to(dtype=torch.float32)
    generator = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(ImagesOnly(images), args.batch_size, shuffle=True, generator=generator)
    mean_fraction = table.values["size"][:, :, 0].nanmean(0) / images[0].numel()
    net = new_net(mean_fraction, args.seed)
    return train(net, loader, lambda batch: table.select(batch[1]), args.epochs, args.lr)


def ellipse_dice(pred: torch.Tensor, masks: torch.Tensor) -> float:
    return float(mean_dice(dice_2d(pred, masks, N_CLASSES)[:, 1]))


def image_blind_dice(train_masks: torch.Tensor, test_masks: torch.Tensor) -> float:
    """The best single mask: the training frequency thresholded where it scores best on training."""
    frequency = train_masks.float().mean(0)

    def score(masks: torch.Tensor, threshold: float) -> float:
        return ellipse_dice((frequency > threshold).long().expand(len(masks), -1, -1), masks)

    best = max((score(train_masks, q / 20), q / 20) for q in range(20))[1]
    return score(test_masks, best)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Both trainings and their test Dice (and the image-blind one), printed and returned."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument(
        "--images", type=int, default=160, help="training images (and 1/4 more to test)"
    )
    parser.add_argument("--size", type=int, default=32, help="image side, px")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the CSV in this folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        return run(args, args.out or Path(tmp))


def run(args: argparse.Namespace, out: Path) -> dict[str, float]:
    """The data, the two trainings, the scores (``main`` without the argument parsing)."""
    data = torch.Generator().manual_seed(args.seed)
    images, masks, ellipses = toy_ellipses(args.images, args.size, data)
    test_images, test_masks, _ = toy_ellipses(max(args.images // 4, 1), args.size, data)
    ids = [f"image{i:04d}" for i in range(args.images)]
    start = time.perf_counter()

    # 1. from masks: batches of (image, mask); the loss reads the masks
    loader = DataLoader(
        TensorDataset(images, masks),
        args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
    )
    fraction = torch.stack([(masks == c).float().mean() for c in range(N_CLASSES)])
    from_masks = train(new_net(fraction, args.seed), loader, lambda b: b[1], args.epochs, args.lr)

    # 2. from a table: the annotator's ellipses -> descriptor values -> CSV -> training
    weak = ellipse_table(ellipses, args.size, ids)
    csv_path = write_weak_labels(out / "ellipses.csv", weak)
    from_table = train_from_table(images, csv_path, ids, args)
    seconds = time.perf_counter() - start
    # the ellipses' sizes against the masks' own, and the share of the table's constraints met
    own = weak_labels_from_masks(masks, N_CLASSES, TERMS).values["size"][:, 1, 0]
    size_gap = float(((weak.values["size"][:, 1, 0] - own) / own).abs().max())
    table = read_weak_labels(csv_path, ids, N_CLASSES).to(dtype=torch.float32)
    with torch.no_grad():
        _, stats = shape_descriptor_loss(from_table(images).softmax(1), table, 1.0, TERMS)
    met = {term.label: 1 - float(stats[f"{term.label}/frac_violated"]) for term in TERMS}

    with torch.no_grad():
        scores = {
            "from masks": ellipse_dice(from_masks(test_images).argmax(1), test_masks),
            "from the table": ellipse_dice(from_table(test_images).argmax(1), test_masks),
            "image-blind": image_blind_dice(masks, test_masks),
        }
    where = f" in {csv_path}" if args.out else ""
    rows = len(csv_path.read_text().splitlines()) - 1
    print(f"table: {rows} rows for {args.images} images{where}; both trainings: {seconds:.1f} s")
    print(f"ellipse sizes within {size_gap:.1%} of the masks' own sizes")
    print(
        "table constraints met after training: " + ", ".join(f"{k} {v:.0%}" for k, v in met.items())
    )
    for name, dsc in scores.items():
        print(f"test Dice of the ellipse, {name}: {dsc:.3f}")
    return scores


if __name__ == "__main__":
    main()
