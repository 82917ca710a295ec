"""Data-parallel training of one run: `torchrun --nproc_per_node N -m tutorial_lib train ...`.

`train` finds torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK) and runs as one of N ranks; a
plain `python -m tutorial_lib train` is one process, as before. What each rank does:

- **Process group and device.** nccl on CUDA (rank i on `cuda:LOCAL_RANK`; choose the GPUs with
  CUDA_VISIBLE_DEVICES), gloo on the CPU. Every rank builds the same run (same seed: same weights,
  shuffle and augmentation streams); DistributedDataParallel averages the gradients.
- **The global batch.** Every rank takes the same shuffled global batch of `batch_size` slices
  and augments the whole of it with the run's generator, so each slice gets exactly the
  augmentation one process would give it; rank r then keeps its contiguous share (`share`,
  `torch.tensor_split`: the shares of a short last batch differ by at most one slice). Its loss
  is scaled so that the averaged gradient is the gradient of one process's loss on the global
  batch: x N for a loss summed over the batch (descriptors, "paper" normalisation), x N n_r / B
  for a mean over it (cross-entropy, "batch_mean").
- **BatchNorm.** On CUDA every BatchNorm becomes a SyncBatchNorm: statistics over the global
  batch, as in one process. On the CPU torch has no SyncBatchNorm (it refuses CPU tensors), so
  a network with BatchNorm (ENet, ResidualUNet) normalises each share by its own statistics
  there, and its results differ from one process's beyond rounding; the small U-Net of the toy
  presets has no BatchNorm. ENet's dropout draws its masks per rank: equal in distribution only.
- **The epoch's numbers.** The running sums of the epoch (loss, training Dice, the constraint
  statistics, the non-finite flag) are summed over the ranks at the end of the epoch (`reduce`).
  The non-finite check waits for that point, so that every rank stops at the same epoch.
- **Validation is sharded**: rank r predicts its contiguous share of the validation slices, the
  Dice counts are gathered (`gather_counts`), and every rank scores the whole set: each knows
  the best epoch, which the LR rule needs. Before it, rank 0's BatchNorm statistics are copied
  to every rank (`sync_buffers`).
- **Only rank 0 writes** (`writes`): it holds the run folder's lock and writes `config.json`,
  `metrics.csv`, the checkpoints, `summary.json` and the test evaluation; the other ranks only
  read (the checkpoint to resume) and wait for it at the end. `--resume` resumes every rank from
  `last.pt`.

    ranks = ranks_from_environment()           # None in a single process
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from tutorial_lib.global_batchnorm import global_batchnorm
from tutorial_lib.run_folder import claim_folder, remove_stale_temporaries

if TYPE_CHECKING:
    from tutorial_lib.run_setup import Run
    from tutorial_lib.train import EpochTotals

__all__ = [
    "Ranks",
    "ranks_from_environment",
    "share_rows",
    "rank_device",
    "join_process_group",
    "data_parallel",
    "writes",
    "hold_folder",
    "share",
    "scale_loss",
    "reduce",
    "val_share",
    "gather_counts",
    "sync_buffers",
    "wait_for_rank_0",
]


@dataclass
class Ranks:
    """This process's place among the ranks, and its loss factor for the step in progress."""

    rank: int
    world_size: int
    local_rank: int
    summed_loss: bool = True  # the loss sums over the batch (else: a mean)
    loss_scale: float = 1.0


def _int_variable(variables: Mapping[str, str], name: str, below: int | None) -> int:
    text = variables.get(name, "")
    ok = text.strip().isdigit() and (below is None or int(text) < below)
    if not ok:
        limit = f" below {below}" if below is not None else ""
        raise ValueError(f"{name}: expected an integer >= 0{limit} (set by torchrun), got {text!r}")
    return int(text)


def ranks_from_environment(variables: Mapping[str, str] | None = None) -> Ranks | None:
    """The ranks torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK); None without torchrun.

    `variables`: those three, read from the process's environment by default.
    One rank (`--nproc_per_node 1`) takes the data-parallel path too: a check of it on one GPU.
    """
    if variables is None:
        if "WORLD_SIZE" not in os.environ:
            return None
        variables = {
            "WORLD_SIZE": os.environ.get("WORLD_SIZE", ""),
            "RANK": os.environ.get("RANK", ""),
            "LOCAL_RANK": os.environ.get("LOCAL_RANK", ""),
        }
    if "WORLD_SIZE" not in variables:
        return None
    world = max(1, _int_variable(variables, "WORLD_SIZE", None))
    rank = _int_variable(variables, "RANK", world)
    return Ranks(rank, world, _int_variable(variables, "LOCAL_RANK", world))


def rank_device(
    ranks: Ranks | None, device: str | torch.device | None
) -> str | torch.device | None:
    """This rank's device: `cuda:LOCAL_RANK` for None (with CUDA) or "cuda", else the CPU;
    `device` itself in a single process."""
    if ranks is None:
        return device
    wanted = None if device is None else torch.device(device)
    if wanted is None:
        wanted = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted.type == "cpu":
        return wanted
    if wanted.type != "cuda" or wanted.index is not None:
        raise ValueError(
            "device: expected cpu or cuda under torchrun (rank i trains on cuda:LOCAL_RANK; "
            f"choose the GPUs with CUDA_VISIBLE_DEVICES), got {str(device)!r}"
        )
    if ranks.local_rank >= torch.cuda.device_count():
        raise ValueError(
            f"LOCAL_RANK: expected a GPU index below {torch.cuda.device_count()}, "
            f"got {ranks.local_rank}"
        )
    return torch.device("cuda", ranks.local_rank)


def join_process_group(ranks: Ranks | None, device: torch.device) -> None:
    """Join the process group of the ranks (nccl on CUDA, gloo on the CPU), once per process.

    The group then lasts as long as the process (destroyed at its exit): torchrun's rendezvous
    serves one group per process, so the runs a process trains one after the other share it.
    """
    if ranks is None or torch.distributed.is_initialized():
        return
    if not torch.distributed.is_available():
        raise ValueError("torchrun: expected a torch with torch.distributed, got one without")
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.distributed.init_process_group("nccl", device_id=device)
    else:
        torch.distributed.init_process_group("gloo")
    atexit.register(_leave_process_group)


def _leave_process_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def data_parallel(run: Run, ranks: Ranks | None) -> None:
    """Wrap `run.net` in DistributedDataParallel (SyncBatchNorm on CUDA); `run.model` stays the
    module that checkpoints save (same parameters). Nothing in a single process."""
    from torch.nn.parallel import DistributedDataParallel

    from tutorial_lib.run_setup import compile_network

    if ranks is None:
        return
    if run.graph:
        raise ValueError(
            "graph: expected a single process (no CUDA graphs with DistributedDataParallel "
            f"here), got torchrun with {ranks.world_size} ranks"
        )
    config = run.config
    ranks.summed_loss = config.method != "ce" and config.normalisation != "batch_mean"
    if run.device.type == "cuda":
        run.model = nn.SyncBatchNorm.convert_sync_batchnorm(run.model)
    else:  # torch's SyncBatchNorm refuses CPU tensors
        run.model = global_batchnorm(run.model)
    ids = [run.device.index] if run.device.type == "cuda" else None
    # no buffer broadcast in each forward (a collective a sharded validation cannot match):
    # SyncBatchNorm keeps the statistics equal, `sync_buffers` copies rank 0's before validation
    no_sync = {"forward_sync_buffers": False} if _has_option("forward_sync_buffers") else {}
    no_sync = no_sync or {"broadcast_buffers": False}
    wrapped = DistributedDataParallel(run.model, device_ids=ids, **no_sync)
    run.net = compile_network(wrapped, run.compiled) if run.compiled else wrapped
    run.ranks = ranks


def _has_option(name: str) -> bool:
    from torch.nn.parallel import DistributedDataParallel

    return name in inspect.signature(DistributedDataParallel.__init__).parameters


def writes(run: Run) -> bool:
    """Does this process write the run's files? (a single process, or rank 0)"""
    return run.ranks is None or run.ranks.rank == 0


@contextlib.contextmanager
def hold_folder(run: Run, out: Path) -> Iterator[None]:
    """The writer holds the run folder (`claim_folder`, stale temporaries removed); the other
    ranks only read it."""
    if not writes(run):
        yield
        return
    with claim_folder(out, "run"):
        remove_stale_temporaries(out)
        yield


def share(
    ranks: Ranks | None, x: torch.Tensor, y: torch.Tensor, spacing: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """This rank's contiguous share of an augmented global batch; sets its loss factor."""
    if ranks is None:
        return x, y, spacing
    n = x.shape[0]
    pick = torch.tensor_split(torch.arange(n), ranks.world_size)[ranks.rank]
    start, stop = (int(pick[0]), int(pick[-1]) + 1) if len(pick) else (0, 0)
    share_of_batch = (stop - start) / n if n else 0.0
    ranks.loss_scale = ranks.world_size * (1.0 if ranks.summed_loss else share_of_batch)
    part = None if spacing is None else spacing[start:stop]
    return x[start:stop], y[start:stop], part


def share_rows(ranks: Ranks | None, rows: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """This rank's share of per-sample `rows` (n, ...) of a global batch of n, as `share` cuts it."""
    if ranks is None or rows is None:
        return rows
    pick = torch.tensor_split(torch.arange(n), ranks.world_size)[ranks.rank]
    return rows[int(pick[0]) : int(pick[-1]) + 1] if len(pick) else rows[:0]


def scale_loss(ranks: Ranks | None, loss: torch.Tensor) -> torch.Tensor:
    """The loss this rank back-propagates (see `share`); unchanged in a single process."""
    return loss if ranks is None else loss * ranks.loss_scale


def _all_reduce(tensor: torch.Tensor, op=None) -> torch.Tensor:
    torch.distributed.all_reduce(tensor, op=op or torch.distributed.ReduceOp.SUM)
    return tensor


def reduce(ranks: Ranks | None, totals: EpochTotals) -> None:
    """The epoch's running sums over every rank (in place): loss and Dice sums added, the scaled
    losses divided by N, the mean constraint statistics averaged over the ranks."""
    if ranks is None:
        return
    world = ranks.world_size
    totals.loss = _all_reduce(totals.loss) / world
    totals.dsc, totals.dsc_n = _all_reduce(totals.dsc), _all_reduce(totals.dsc_n)
    bad = _all_reduce(totals.bad.to(torch.int32), torch.distributed.ReduceOp.MAX)
    totals.bad = bad.bool()
    if totals.stats is not None:
        summed = _all_reduce(totals.stats.clone())
        # a term's loss adds up over the shares like the loss; violations are means per share
        adds = [column.endswith("_loss") and ranks.summed_loss for column in totals.stat_columns]
        factor = torch.tensor([1.0 if a else 1.0 / world for a in adds], device=summed.device)
        totals.stats = summed * factor.to(summed.dtype)


def val_share(ranks: Ranks | None, n: int) -> slice:
    """The validation slices this rank predicts: all of them in a single process."""
    if ranks is None:
        return slice(None)
    pick = torch.tensor_split(torch.arange(n), ranks.world_size)[ranks.rank]
    return slice(int(pick[0]), int(pick[-1]) + 1) if len(pick) else slice(0, 0)


def gather_counts(
    ranks: Ranks | None, counts: torch.Tensor, n: int, device: torch.device
) -> torch.Tensor:
    """The Dice counts (n, K, 3) of every validation slice, from each rank's share, in order
    (gathered through `device`: nccl moves CUDA tensors only)."""
    if ranks is None:
        return counts
    sizes = [len(part) for part in torch.tensor_split(torch.arange(n), ranks.world_size)]
    padded = torch.zeros((max(sizes), *counts.shape[1:]), dtype=counts.dtype, device=device)
    padded[: len(counts)] = counts.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    torch.distributed.all_gather(parts, padded)
    whole = torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
    return whole.to(counts.device)


def sync_buffers(run: Run) -> None:
    """Rank 0's BatchNorm statistics on every rank (before validation; no-op in one process)."""
    if run.ranks is None:
        return
    for buffer in run.model.buffers():
        torch.distributed.broadcast(buffer, src=0)


def wait_for_rank_0(run: Run) -> None:
    """The other ranks wait here until rank 0 has written the run's last files."""
    if run.ranks is not None:
        torch.distributed.barrier()
