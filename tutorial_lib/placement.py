"""Where the runs of `train_runs` (and `reproduce`) train: a list of devices, one run per process.

    devices = resolve_devices("cuda:0,cuda:1")     # [cuda:0, cuda:1], each checked to exist
    slots = DeviceSlots(devices)
    i = slots.take()                              # the device of the next run: the least busy
    slots.give_back(i)                            # its run ended: the device is free again

- **The list.** `--devices cuda:0,cuda:1` (or a Python list) names every place a run may train;
  a device may be listed twice (`cpu,cpu`, `cuda:0,cuda:0`). Without a list: every visible CUDA
  device when the run device is CUDA, else the one device (the behaviour of a single device).
  An entry that is not a device, or one this machine lacks, is a ValueError naming it.
- **The assignment.** Each new run goes to the listed entry with the fewest runs in progress, the
  first such entry on a tie: round-robin while every entry is busy alike, and a device that frees
  up takes the next run. Entries are positions in the list, so a device listed twice counts as
  two places.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tutorial_lib.device import get_device

__all__ = ["resolve_devices", "DeviceSlots"]


def _entries(devices: str | Sequence[str | torch.device]) -> list[str]:
    if isinstance(devices, str):
        return [entry.strip() for entry in devices.split(",")]
    if isinstance(devices, Sequence) and all(isinstance(d, (str, torch.device)) for d in devices):
        return [str(d).strip() for d in devices]
    raise ValueError(
        f"devices: expected a comma-separated string or a list of devices, got {devices!r}"
    )


def resolve_devices(
    devices: str | Sequence[str | torch.device] | None = None,
    device: str | torch.device | None = None,
) -> list[torch.device]:
    """The checked list of devices (see the module docstring); `device` is used without a list.

    A bare "cuda" in a list means "cuda:0", so that two entries never name one GPU differently.
    """
    if devices is None:
        one = get_device(str(device)) if device is not None else get_device()
        if one.type == "cuda" and one.index is None:
            return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return [one]
    if device is not None:
        raise ValueError(f"devices: expected either device or devices, got both ({device!r})")
    entries = _entries(devices)
    if not entries or any(not entry for entry in entries):
        raise ValueError(
            f"devices: expected one or more devices such as cuda:0,cuda:1, got {devices!r}"
        )
    resolved = []
    for entry in entries:
        try:
            found = get_device(entry)
        except ValueError as error:
            raise ValueError(
                f"devices: expected available devices (cpu, cuda:N, mps), got {entry!r} in "
                f"{devices!r} ({error})"
            ) from None
        if found.type == "cuda" and found.index is None:
            found = torch.device("cuda", 0)
        resolved.append(found)
    return resolved


class DeviceSlots:
    """Runs in progress per listed device; `take` picks the least busy entry (first on a tie)."""

    def __init__(self, devices: Sequence[torch.device | str]) -> None:
        if not devices:
            raise ValueError("devices: expected at least one device, got none")
        self.devices = list(devices)
        self.busy = [0] * len(self.devices)

    def take(self) -> int:
        """The index of the entry the next run goes to (its count goes up by one)."""
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        return index

    def give_back(self, index: int) -> None:
        """The run on entry `index` ended."""
        if not 0 <= index < len(self.busy) or self.busy[index] == 0:
            raise ValueError(f"index: expected a busy entry of {self.busy}, got {index!r}")
        self.busy[index] -= 1
