"""The training loop: one readable loop for CPU, CUDA and Apple MPS.

    summary = train(get_preset("toy-cardiac-descriptors"), out_dir="runs/desc")
    results = evaluate("runs/desc")            # tutorial_lib.evaluation

The parts of a run (network, loss, optimiser, LR rule, t schedule, precision, data placement) are
built by `tutorial_lib.run_setup.build_run`; this module holds only the loop: the step, the epoch,
validation, the epoch's bookkeeping, checkpoint and resume, and the summary.

One training step (`_step`, for a descriptors run; a CE run goes from the logits to the
cross-entropy on the labels):

    batch (B,1,H,W) --augment--> x, labels --network--> logits (B,K,H,W) --softmax--> p
    p --descriptors--> (B,K,n) values;  labels --bounds--> [lower, upper] (B,K,n,2)
    values - upper, lower - values --log-barrier psi_t--> penalty, summed with weights --> loss
    loss --backward--> gradients --Adam--> new weights

What one epoch does: shuffle the training slices (a seeded generator), augment each batch on the
data's device (bounds are computed inside the loss from the *augmented* labels), one Adam step per
batch, then validate (2-D DSC per class, 3-D DSC per volume), keep the best checkpoint by the mean
validation 2-D DSC over the preset's `selection_classes` (foreground; a class absent from both
masks left out or scoring 1, `config.dice_absent`), multiply t once, apply the LR rule, append a
CSV row and write `checkpoints/last.pt`. After the last epoch the best checkpoint is
evaluated on the test split (3-D DSC and HD95 per class).

A non-finite loss stops the run (`NonFiniteLossError`) before anything is written for that epoch,
so `last.pt` stays the last good state. `compile=True` runs the forward passes through
`torch.compile(model)` (see `run_setup.compile_network`); checkpoints hold the plain module.
`graph=True` replays the step (`_augment_and_step`) and the validation forward as CUDA graphs
(tutorial_lib.graphs). Under `torchrun` the run trains data-parallel, and only rank 0 writes
(tutorial_lib.distributed).

Run directory layout:

    OUT/.run.lock              the folder's lock (tutorial_lib.run_folder): one process writes a
                               run folder at a time, and only a folder this library made
    OUT/config.json            the TrainConfig (tutorial_lib.config.config_to_dict)
    OUT/metrics.csv            one row per epoch: epoch, t, lr, train_loss, train_dsc_<class>...,
                               train_dsc_mean, c_<term>_<stat>... (descriptor runs: mean
                               constraint violation, fraction violated), val_dsc2d_<class>...,
                               val_dsc2d_mean, val_dsc3d_<class>..., val_dsc3d_mean,
                               val_dsc3d_<class>@<volume>... (each validation volume), seconds,
                               best (1 on the epochs that improved the best score)
    OUT/summary.json           status, epochs done, best epoch/score, seconds, device, precision
                               ("float32" or "bfloat16 autocast"), graph mode, ranks
                               (data-parallel processes), test results
    OUT/test.json              test evaluation of the best checkpoint (`evaluate`), per volume too
    OUT/checkpoints/last.pt    everything to resume exactly (tutorial_lib.checkpoint)
    OUT/checkpoints/best.pt    the weights with the best validation score

`train(..., resume=True)` continues from `last.pt` and gives the same result as an uninterrupted run
(bitwise on the CPU; on CUDA, cuDNN kernels need not be deterministic), also after a kill at any
moment (temporary files of a killed write are removed on the next start). With another number of
epochs, see tutorial_lib.resume.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from tutorial_lib import distributed, graphs
from tutorial_lib.checkpoint import save_checkpoint
from tutorial_lib.config import TrainConfig, config_to_dict
from tutorial_lib.data.augment import augment_batch
from tutorial_lib.errors import NonFiniteLossError
from tutorial_lib.evaluation import (
    autocast_context,
    dice_empty,
    evaluate,
    predict_labels,
    validation_scores,
)
from tutorial_lib.losses import cross_entropy_loss
from tutorial_lib.metrics import dice_counts, dice_from_counts
from tutorial_lib.resume import check_new_or_resumed, check_resumable, restore_run, run_state
from tutorial_lib.run_setup import Run, build_run, precision_name
from tutorial_lib.runlog import read_json, write_csv, write_json

__all__ = ["train", "load_batch", "EpochTotals", "CHECK_EVERY"]


CHECK_EVERY = 20  # steps between two non-finite checks on an accelerator


# --------------------------------------------------------------------------- one step


def load_batch(
    images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The slices `index` of the training set on `device`, labels as int64."""
    x = images[index].to(device, non_blocking=True)
    return x, labels[index].to(device, non_blocking=True).long()


def _step(
    run: Run,
    x: torch.Tensor,
    y: torch.Tensor,
    t: float | torch.Tensor,
    spacing: torch.Tensor | None = None,
    value_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on an (augmented) batch; returns the detached loss and logits.

    `spacing` (B, 2) mm per pixel (row, col) is used by descriptor terms in physical units;
    `value_noise` (B, columns) are the batch's relative errors on the bounds' values (bound_noise).
    """
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast_context(run.device, run.amp_dtype):
        logits = run.net(x)
    logits = logits.float()
    if run.loss_fn is None:
        loss = cross_entropy_loss(logits, y)
    else:
        probs = torch.softmax(logits, dim=1)
        loss = run.loss_fn(probs, y, t, spacing=spacing, value_noise=value_noise)
    # data-parallel: this rank's part of the batch's loss
    loss = distributed.scale_loss(run.ranks, loss)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return loss.detach(), logits.detach()


def _augment_and_step(
    run: Run,
    x: torch.Tensor,
    y: torch.Tensor,
    t: float | torch.Tensor,
    spacing: torch.Tensor | None,
    value_noise: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The batch augmented, this rank's share of it (data-parallel), one step; returns the loss,
    the logits and the augmented labels. Graph mode captures this function (tutorial_lib.graphs)."""
    x, y = augment_batch(x, y, run.generators["augment"], run.config.augment)
    n = x.shape[0]
    x, y, spacing = distributed.share(run.ranks, x, y, spacing)
    value_noise = distributed.share_rows(run.ranks, value_noise, n)
    loss, logits = _step(run, x, y, t, spacing, value_noise)
    return loss, logits, y


def _raise_non_finite(run: Run, loss: torch.Tensor, n_steps: int) -> None:
    raise NonFiniteLossError(
        f"non-finite loss ({float(loss)}) at epoch {run.epoch}, by step {n_steps} (t = {run.t:.4g}, "
        f"lr = {run.lr_schedule.lr:.4g}); the run stopped, checkpoints/last.pt holds "
        + (f"the end of epoch {run.epoch - 1}" if run.epoch else "nothing yet (first epoch)")
    )


# --------------------------------------------------------------------------- one epoch


class EpochTotals:
    """Running sums of one epoch's training pass, kept on the device: no read-back per step.

    Per step (`add`): the loss, the training 2-D DSC per class (summed over the slices where the
    class is defined; `empty="one"` scores 1 where it is absent from both masks) and, for descriptor runs, the loss's `last_stats` stacked into one tensor
    (2 kernels, not 2 per statistic). `row()` turns them into the CSV entries of the epoch.
    """

    def __init__(
        self,
        class_names: list[str],
        selection_classes: list[int],
        device: torch.device,
        empty: str = "nan",
    ):
        self.class_names, self.selection_classes, self.empty = class_names, selection_classes, empty
        zeros = {"dtype": torch.float64, "device": device}
        self.loss = torch.zeros((), **zeros)
        self.dsc = torch.zeros(len(class_names), **zeros)
        self.dsc_n = torch.zeros(len(class_names), **zeros)
        self.bad = torch.zeros((), dtype=torch.bool, device=device)
        self.stat_columns: dict[str, str] = {}
        self.stats: torch.Tensor | None = None
        self.steps = 0

    @torch.no_grad()
    def add(
        self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor, stats: dict | None
    ) -> None:
        self.steps += 1
        self.bad |= ~torch.isfinite(loss)
        self.loss += loss
        # max(1).indices is argmax(1) (the first maximum on ties) and on the CPU about 9x faster.
        # Its labels and the dataset's are in range by construction: no check, no read-back.
        counts = dice_counts(logits.max(1).indices, y, len(self.class_names), check=False)
        dsc = dice_from_counts(counts, empty=self.empty)
        self.dsc += dsc.nan_to_num(0.0).sum(0)
        self.dsc_n += (~dsc.isnan()).sum(0)
        if stats:
            # column "c_size_violation" for "size/violation"; "total" is train_loss already
            if self.stats is None:
                self.stat_columns = {"c_" + k.replace("/", "_"): k for k in stats if k != "total"}
            keys = self.stat_columns.values()
            values = torch.stack([stats[key].detach().float().reshape(()) for key in keys])
            self.stats = values if self.stats is None else self.stats + values

    def row(self) -> dict[str, float]:
        n = max(self.steps, 1)
        dsc = (self.dsc / self.dsc_n).cpu()  # mean over the slices where the class is defined
        row: dict[str, float] = {"train_loss": float(self.loss) / n}
        for k, name in enumerate(self.class_names):
            row[f"train_dsc_{name}"] = float(dsc[k])
        row["train_dsc_mean"] = float(dsc[self.selection_classes].nanmean())
        if self.stats is not None:
            values = (self.stats.double().cpu() / n).tolist()
            row.update(zip(self.stat_columns, values, strict=True))
        return row


def _train_epoch(run: Run, progress: bool) -> dict[str, float]:
    """One pass over the training slices; returns the row entries of the epoch's training part.

    The loss is checked for NaN/inf after every step on the CPU; on CUDA every `CHECK_EVERY` steps
    and at the end (a check waits for the GPU), before anything of the epoch is saved.
    """
    cfg, device, data = run.config, run.device, run.data
    images, labels, spacing = data.images, data.labels, data.spacing
    check_every = 1 if device.type == "cpu" else CHECK_EVERY
    run.model.train()
    order = torch.randperm(images.shape[0], generator=run.generators["shuffle"]).to(images.device)
    totals = EpochTotals(run.class_names, run.selection_classes, device, dice_empty(cfg))
    t = run.t
    batches = order.split(cfg.batch_size)
    # at most one refresh a second: in a notebook each refresh is a widget message, and a kernel
    # drops messages past its queue's limit (a long cell can then lose its "done" message)
    steps = tqdm(
        batches, desc=f"epoch {run.epoch}", leave=False, disable=not progress, mininterval=1.0
    )
    step = run.graphed_step or functools.partial(_augment_and_step, run)  # graph mode: replayed
    for index in steps:
        x, y = load_batch(images, labels, index, device)
        batch_spacing = None if spacing is None else spacing[index.to(spacing.device)].to(device)
        noise = (
            None if run.value_noise is None else run.value_noise[index.to(run.value_noise.device)]
        )
        extra = {} if noise is None else {"value_noise": noise}  # graph mode refuses bound_noise
        loss, logits, y = step(x, y, t, batch_spacing, **extra)
        totals.add(loss, logits, y, run.loss_fn.last_stats if run.loss_fn is not None else None)
        if run.ranks is None and totals.steps % check_every == 0 and bool(totals.bad):
            _raise_non_finite(run, loss, totals.steps)
    distributed.reduce(run.ranks, totals)  # data-parallel: the sums of every rank
    if bool(totals.bad):
        _raise_non_finite(run, totals.loss, totals.steps)
    return totals.row()


def _validate(run: Run) -> dict[str, float]:
    val = run.data.val
    distributed.sync_buffers(run)
    # data-parallel: each rank predicts its share
    part = distributed.val_share(run.ranks, len(val.images))
    pred = predict_labels(
        run.net,
        val.images[part],
        batch_size=max(run.config.batch_size, 16),
        device=run.device,
        amp_dtype=run.amp_dtype,
        channels_last=run.channels_last,
    )
    counts = dice_counts(pred, val.labels[part].to(pred.device), len(run.class_names))
    counts = distributed.gather_counts(run.ranks, counts, len(val.images), run.device)
    return validation_scores(
        counts,
        val.volume_ids,
        run.class_names,
        run.selection_classes,
        empty=dice_empty(run.config),
    )


def _run_epoch(run: Run, out: Path, progress: bool) -> dict[str, float]:
    """Train, validate, keep the best weights, step t and the LR rule, write CSV and last.pt."""
    epoch, start = run.epoch, time.perf_counter()
    row: dict[str, float] = {"epoch": epoch, "t": run.t, "lr": run.lr_schedule.lr}
    row.update(_train_epoch(run, progress))
    row.update(_validate(run))
    row["seconds"] = time.perf_counter() - start
    row["best"] = int(row["val_dsc2d_mean"] > run.best_score)
    if row["best"]:
        run.best_score, run.best_epoch = row["val_dsc2d_mean"], epoch
        best = {
            "epoch": epoch,
            "model": run.model.state_dict(),
            "score": run.best_score,
            "class_names": run.class_names,
            "config": config_to_dict(run.config),
        }
        if distributed.writes(run):
            save_checkpoint(out / "checkpoints" / "best.pt", best)
    run.t_schedule.step()
    run.lr_schedule.step(epoch, run.best_epoch, run.optimizer)
    run.epoch = epoch + 1
    run.history.append(row)
    if distributed.writes(run):
        write_csv(out / "metrics.csv", run.history)
        save_checkpoint(out / "checkpoints" / "last.pt", run_state(run))
    return row


# --------------------------------------------------------------------------- the run


def _done(run: Run, summary: dict[str, Any], started: float) -> dict[str, Any]:
    """The summary of a finished run (the test results are added by `evaluate`)."""
    seconds = [r["seconds"] for r in run.history]
    return {
        **summary,
        "status": "done",
        "epochs_done": run.epoch,
        "best_epoch": run.best_epoch,
        "best_val_dsc2d_mean": run.best_score,
        "train_seconds": sum(seconds),
        "wall_seconds_this_call": time.perf_counter() - started,
        "seconds_per_epoch": seconds,
    }


def train(
    config: TrainConfig,
    *,
    data_root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike,
    device: str | torch.device | None = None,
    resume: bool = False,
    progress: bool = True,
    compile: bool | str = False,
    graph: bool = False,
) -> dict[str, Any]:
    """Train `config` into `out_dir` (layout in the module docstring); return the run summary.

    Toy datasets are generated (and cached) when `data_root` is None. `resume=True` continues
    from `out_dir/checkpoints/last.pt` when it exists. `compile=True` (or a mode such as
    "reduce-overhead") trains and validates through `torch.compile(model)`; an execution option
    like `device`, so a run may resume either way. `graph=True` replays the whole training step
    and the validation forward as CUDA graphs (tutorial_lib.graphs; on the CPU the same step runs
    eagerly), an execution option too. Every value is checked before a file is written.
    `out_dir` must be missing, empty or a run folder of this library, and is held by this call
    alone (tutorial_lib.run_folder); ValueError otherwise, naming the process that holds it.
    """
    out = Path(out_dir)
    # the folder is checked before the data is read (a misused folder fails fast), and every value
    # before the folder is created; the checks are made again once the folder is ours alone
    check_new_or_resumed(out, resume)
    # under torchrun: this process is one rank of several (tutorial_lib.distributed)
    ranks = distributed.ranks_from_environment()
    device = distributed.rank_device(ranks, device)
    distributed.join_process_group(ranks, device)
    run = build_run(config, data_root=data_root, device=device, compile=compile, graph=graph)
    distributed.data_parallel(run, ranks)
    if graph:
        run.graphed_step = graphs.graph_step(run, _augment_and_step)
    with distributed.hold_folder(run, out):  # rank 0 alone holds the folder and writes in it
        run.config, state = check_resumable(out, config, resume)
        if state is not None:
            restore_run(run, state, out / "checkpoints" / "last.pt")
        if distributed.writes(run):
            write_json(out / "config.json", config_to_dict(run.config))
        return _train_epochs(run, out, progress)


def _train_epochs(run: Run, out: Path, progress: bool) -> dict[str, Any]:
    """The epochs still to train, the summary, the test evaluation; returns `summary.json`."""
    config = run.config
    started = time.perf_counter()
    summary = {
        "name": config.name,
        "status": "running",
        "device": str(run.device),
        "compiled": run.compiled or False,
        "precision": precision_name(run.amp_dtype),
        "graph": run.graph and ("captured" if graphs.capture_for(run.device) else "eager"),
        "data_root": str(run.data.root),
        "ranks": run.ranks.world_size if run.ranks else 1,  # data-parallel processes
    }
    progress = progress and distributed.writes(run)
    epochs = tqdm(
        range(run.epoch, config.epochs),
        desc=config.name,
        disable=not progress,
        initial=run.epoch,
        total=config.epochs,
    )
    try:
        for _ in epochs:
            row = _run_epoch(run, out, progress)
            epochs.set_postfix(
                loss=f"{row['train_loss']:.3g}",
                val=f"{row['val_dsc2d_mean']:.3f}",
                best=f"{run.best_score:.3f}",
            )
    except NonFiniteLossError as error:
        summary.update(status="non-finite loss", message=str(error), epochs_done=run.epoch)
        if distributed.writes(run):
            write_json(out / "summary.json", summary)
        raise
    if distributed.writes(run):
        write_json(out / "summary.json", _done(run, summary, started))
        evaluate(out, device=run.device, data_root=run.data.root)
    distributed.wait_for_rank_0(run)
    return read_json(out / "summary.json")
