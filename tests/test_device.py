"""Choosing the device and the CPU threads, and naming the device in reports."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib.device import describe_device, get_device, set_cpu_threads


def test_get_device_honours_the_choice_and_refuses_a_missing_accelerator(monkeypatch):
    assert get_device("cpu") == torch.device("cpu")
    monkeypatch.setenv("TUTORIAL_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(
            ValueError,
            match=r"^device: expected CUDA to be available, got 'cuda' on a machine without CUDA",
        ):
            get_device("cuda")


def test_set_cpu_threads_and_describe_device(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert set_cpu_threads() == 1 == torch.get_num_threads()
        assert describe_device(torch.device("cpu")) == "cpu (1 threads)"
        with pytest.raises(
            ValueError, match="^threads: expected a positive number of CPU threads, got 0"
        ):
            set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)
