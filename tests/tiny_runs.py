"""Seconds-long training runs for the tests: 32x32 toy cardiac, 5 patients, a 2-level U-Net."""

from __future__ import annotations

import dataclasses

from tutorial_lib.config import DataConfig, TrainConfig
from tutorial_lib.presets import get_preset

TINY_DATA = DataConfig("toy-cardiac", size=32, n_patients=5, generator_seed=3)


def tiny_config(method: str = "ce", *, data: DataConfig = TINY_DATA, **changes) -> TrainConfig:
    """The toy-cardiac preset of `method` shrunk to a seconds-long run (2 epochs, 4 channels)."""
    cfg = get_preset(f"toy-cardiac-{method}")
    values = dict(data=data, model_options={"base": 4, "depth": 2}, epochs=2, batch_size=8)
    return dataclasses.replace(cfg, **{**values, **changes})


# 21 training slices in batches of 8: the last batch (5) splits 3 + 2 over two ranks
DDP_DATA = dataclasses.replace(TINY_DATA, max_train_slices=21)
