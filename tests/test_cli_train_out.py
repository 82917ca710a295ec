"""`train`'s default run folder: one per variant, so a --fast run and the full run never collide."""

from __future__ import annotations

import pytest

from tutorial_lib import cli
from tutorial_lib import train as training


@pytest.mark.parametrize(
    ("options", "folder"),
    [
        ([], "runs/toy-cardiac-ce"),
        (["--fast"], "runs/toy-cardiac-ce-fast"),
        (["--seed", "2"], "runs/toy-cardiac-ce-s2"),
        (["--fast", "--seed", "2"], "runs/toy-cardiac-ce-fast-s2"),
        (["--bf16"], "runs/toy-cardiac-ce-bf16"),
        (["--out", "mine"], "mine"),
    ],
)
def test_default_out_names_the_variant(monkeypatch, capsys, options, folder):
    seen = {}

    def fake_train(config, *, out_dir, **kwargs):
        seen["out"], seen["amp"] = str(out_dir), config.amp
        return {"best_epoch": 0, "best_val_dsc2d_mean": 0.0, "test": {}}

    monkeypatch.setattr(training, "train", fake_train)
    assert cli.main(["train", "--preset", "toy-cardiac-ce", "--threads", "1", *options]) == 0
    assert seen["out"] == folder
    assert seen["amp"] == ("bf16" if "--bf16" in options else "auto")  # the toy preset's own
