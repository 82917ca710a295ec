"""Command-line edges: unknown devices, the demo's inputs, Ctrl-C inside a command (exit 130)."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib import train as train_module
from tutorial_lib.cli import main
from tutorial_lib.device import get_device


@pytest.mark.parametrize("device", ["tpu", "cuda:x", "meta", "xla"])
def test_an_unknown_device_is_bad_input(tmp_path, capsys, device):
    argv = ["train", "--preset", "toy-cardiac-ce", "--out", str(tmp_path / "run"), "--quiet"]
    assert main([*argv, "--threads", "1", "--device", device]) == 2
    assert capsys.readouterr().err == (
        f"error: device: expected cpu, cuda, cuda:N or mps, got {device!r}\n"
    )
    assert not (tmp_path / "run").exists()


def test_the_device_variable_is_checked_the_same_way(monkeypatch):
    monkeypatch.setenv("TUTORIAL_DEVICE", "tpu")
    with pytest.raises(ValueError, match="^device: expected cpu, cuda, cuda:N or mps, got 'tpu'$"):
        get_device()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_index_beyond_the_cards_is_bad_input():
    n = torch.cuda.device_count()
    with pytest.raises(ValueError, match=f"expected a CUDA index below {n}, got 'cuda:{n}'"):
        get_device(f"cuda:{n}")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--softness", "nan"], "softness: expected a positive edge width in px, got nan"),
        (["--softness", "-1"], "softness: expected a positive edge width in px, got -1.0"),
        (["--angle", "inf"], "angle: expected a finite number of degrees, got inf"),
        (["--height", "200000", "--width", "200000"], "expected at least 8 px and at most 1024"),
        (["--spacing", "1", "nan"], "spacing: expected two positive mm per pixel, got [1.0, nan]"),
        (["--spacing", "0", "1"], "spacing: expected two positive mm per pixel, got [0.0, 1.0]"),
    ],
)
def test_bad_demo_inputs_are_exit_2(capsys, argv, message):
    assert main(["demo", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_ctrl_c_inside_a_command_is_exit_130_with_one_line(monkeypatch, tmp_path, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train", interrupted)
    out = tmp_path / "run"
    argv = ["train", "--preset", "toy-cardiac-ce", "--out", str(out), "--quiet", "--threads", "1"]
    assert main(argv) == 130
    assert capsys.readouterr().err == (
        f"interrupted: {out} keeps the epochs finished so far (checkpoints/last.pt); run the same "
        "command with --resume to continue\n"
    )
    monkeypatch.setattr("tutorial_lib.commands.demo.toy_ellipse", interrupted)
    assert main(["demo"]) == 130
    assert capsys.readouterr().err == (
        "interrupted: nothing half-written was kept; run the command again\n"
    )
