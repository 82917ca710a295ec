"""Where runs train: the `devices` list (checked) and the least-busy assignment of runs to it."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib.placement import DeviceSlots, resolve_devices


def test_a_list_of_devices_is_checked_entry_by_entry():
    assert resolve_devices("cpu,cpu") == [torch.device("cpu")] * 2
    assert resolve_devices(" cpu , cpu ") == [torch.device("cpu")] * 2
    assert resolve_devices(["cpu", torch.device("cpu")]) == [torch.device("cpu")] * 2
    with pytest.raises(ValueError, match=r"devices: expected available devices .*got 'tpu'"):
        resolve_devices("cpu,tpu")
    with pytest.raises(ValueError, match="devices: expected one or more devices"):
        resolve_devices("cpu,,cpu")
    with pytest.raises(ValueError, match="devices: expected one or more devices"):
        resolve_devices("")
    with pytest.raises(ValueError, match="devices: expected a comma-separated string"):
        resolve_devices([0, 1])
    with pytest.raises(ValueError, match="devices: expected either device or devices"):
        resolve_devices("cpu", device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_a_gpu_this_machine_lacks_is_refused_and_the_default_is_the_one_device():
    with pytest.raises(ValueError, match=r"'cuda:1' in 'cpu,cuda:1' \(device: expected CUDA"):
        resolve_devices("cpu,cuda:1")
    assert resolve_devices() == [torch.device("cpu")]
    assert resolve_devices(device="cpu") == [torch.device("cpu")]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_on_cuda_the_default_is_every_visible_gpu():
    every = [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
    assert resolve_devices() == every and resolve_devices(device="cuda") == every
    assert resolve_devices(device="cuda:0") == [torch.device("cuda:0")]
    assert resolve_devices("cuda") == [torch.device("cuda", 0)]  # one name per GPU


def test_runs_go_to_the_least_busy_entry_round_robin_then_as_devices_free_up():
    slots = DeviceSlots(["cuda:0", "cuda:1", "cuda:2"])
    assert [slots.take() for _ in range(5)] == [0, 1, 2, 0, 1]
    assert slots.busy == [2, 2, 1]
    slots.give_back(1)
    slots.give_back(1)
    assert slots.take() == 1  # cuda:1 is free now: the next run goes there
    assert slots.take() == 1 and slots.take() == 2
    with pytest.raises(ValueError, match="index: expected a busy entry"):
        DeviceSlots(["cpu"]).give_back(0)
    with pytest.raises(ValueError, match="devices: expected at least one device"):
        DeviceSlots([])
