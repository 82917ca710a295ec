"""examples/train_your_own.py: it runs, and a network trained from a table alone beats the best
image-blind mask on held-out images."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tutorial_lib.losses import ShapeDescriptorLoss
from tutorial_lib.weak_labels import WeakLabels

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "train_your_own.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("train_your_own", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_runs_with_tiny_settings(tmp_path):
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--epochs", "1", "--images", "16", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": path},  # this tree's library
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"table: 96 rows for 16 images in {tmp_path / 'ellipses.csv'}")
    for name in ("from masks", "from the table", "image-blind"):
        assert any(line.startswith(f"test Dice of the ellipse, {name}: ") for line in lines)
    assert [p.name for p in tmp_path.iterdir()] == ["ellipses.csv"]


def test_a_network_trained_from_a_table_alone_beats_the_image_blind_mask(
    example, tmp_path, monkeypatch
):
    """The table comes from the annotator's ellipses (no mask is made); the loss gets only the
    table's rows for each batch (checked on every call); scored on 64 held-out images."""
    generator = torch.Generator().manual_seed(0)
    images, masks, ellipses = example.toy_ellipses(96, 32, generator)
    test_images, test_masks, _ = example.toy_ellipses(64, 32, generator)
    ids = [f"image{i}" for i in range(96)]
    csv_path = example.write_weak_labels(
        tmp_path / "t.csv", example.ellipse_table(ellipses, 32, ids)
    )
    targets = []
    forward = ShapeDescriptorLoss.forward

    def recording_forward(self, probs, target, t, spacing=None):
        targets.append(type(target))
        return forward(self, probs, target, t, spacing)

    monkeypatch.setattr(ShapeDescriptorLoss, "forward", recording_forward)
    args = argparse.Namespace(seed=0, batch_size=16, epochs=15, lr=1e-2)
    net = example.train_from_table(images, csv_path, ids, args)  # images and the table: no mask
    assert targets and set(targets) == {WeakLabels}
    with torch.no_grad():
        dice = example.ellipse_dice(net(test_images).argmax(1), test_masks)
    blind = example.image_blind_dice(masks, test_masks)
    assert dice > blind + 0.3, (dice, blind)
