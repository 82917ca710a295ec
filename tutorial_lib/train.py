"""The training loop: one readable loop for CPU, CUDA and Apple MPS.

    summary = train(get_preset("toy-cardiac-descriptors"), out_dir="runs/desc")
    results = evaluate("runs/desc")

What one epoch does: shuffle the training slices (a seeded generator), augment each batch on the
data's device (bounds are computed inside the loss from the *augmented* labels), one Adam step per
batch, then validate (2-D DSC per class, 3-D DSC per volume), keep the best checkpoint by the mean
validation 2-D DSC over the preset's `selection_classes` (foreground), multiply t once, apply the LR
rule, append a CSV row and write `checkpoints/last.pt`. After the last epoch the best checkpoint is
evaluated on the test split (3-D DSC and HD95 per class).

On CUDA: bfloat16 autocast where supported, channels_last, cuDNN autotuning, and the whole
training set kept on the GPU when it fits (exact resume is guaranteed on the CPU; cuDNN kernels
need not be deterministic). A non-finite loss stops the run (`NonFiniteLossError`) before anything is written
for that epoch, so `last.pt` stays the last good state.

`train(..., compile=True)` runs the forward passes through `torch.compile(model)` (fewer, fused
kernels: ENet's eager step is launch-bound on a GPU); the first epoch pays the compile time, on the
CPU it needs a C++ compiler, and checkpoints still hold the plain module's weights.

Run directory layout:

    OUT/config.json            the TrainConfig (tutorial_lib.presets.config_to_dict)
    OUT/metrics.csv            one row per epoch: epoch, t, lr, train_loss, train_dsc_<class>...,
                               train_dsc_mean, val_dsc2d_<class>..., val_dsc2d_mean,
                               val_dsc3d_<class>..., val_dsc3d_mean, c_<term>_<stat>...
                               (descriptor runs: mean constraint violation, fraction violated),
                               seconds, best (1 on the epochs that improved the best score)
    OUT/summary.json           status, epochs done, best epoch/score, seconds, device, test results
    OUT/test.json              test evaluation of the best checkpoint (`evaluate`), per volume too
    OUT/checkpoints/last.pt    everything to resume exactly (tutorial_lib.checkpoint)
    OUT/checkpoints/best.pt    the weights with the best validation score

`train(..., resume=True)` continues from `last.pt` and gives the same result as an uninterrupted run
(bitwise on CPU).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tutorial_lib.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from tutorial_lib.config import TrainConfig, config_from_dict, config_to_dict
from tutorial_lib.device import get_device
from tutorial_lib.errors import NonFiniteLossError
from tutorial_lib.evaluation import (
    autocast_context,
    evaluate,
    load_run_config,
    predict_labels,
    validation_scores,
)
from tutorial_lib.losses import cross_entropy_loss
from tutorial_lib.metrics import dice_counts, dice_from_counts
from tutorial_lib.run_parts import (
    LRSchedule,
    amp_dtype,
    augment,
    build_loss,
    build_network,
    compile_mode,
    compile_network,
    fits_on_device,
    init_bias_from_sizes,
    load_data,
    resolve_data_root,
    stat_columns,
)
from tutorial_lib.runlog import read_json, write_csv, write_json

__all__ = [
    "train",
    "evaluate",
    "NonFiniteLossError",
    "LRSchedule",
    "resolve_data_root",
    "load_run_config",
]


CHECK_EVERY = 20  # steps between two non-finite checks on an accelerator


# --------------------------------------------------------------------------- one epoch


@dataclasses.dataclass
class _Run:
    """What the loop carries from epoch to epoch (and what a checkpoint restores)."""

    config: TrainConfig
    device: torch.device
    model: nn.Module  # the plain module: what checkpoints save and load
    net: nn.Module  # what runs the forward passes: `model` or `torch.compile(model)`
    optimizer: torch.optim.Optimizer
    lr_schedule: LRSchedule
    t_schedule: Any
    loss_fn: Any
    generators: dict[str, torch.Generator]
    amp_dtype: torch.dtype | None
    channels_last: bool
    class_names: list[str]
    mean_classes: list[int]
    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    @property
    def t(self) -> float:
        return float(self.t_schedule.t)

    def state(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lr_schedule": self.lr_schedule.state_dict(),
            "t_schedule": self.t_schedule.state_dict(),
            "rng": capture_rng(self.generators),
            "best": {"score": self.best_score, "epoch": self.best_epoch},
            "history": self.history,
            "config": config_to_dict(self.config),
        }

    def load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.lr_schedule.load_state_dict(state["lr_schedule"])
        self.t_schedule.load_state_dict(state["t_schedule"])
        restore_rng(state["rng"], self.generators)
        self.epoch = int(state["epoch"])
        self.best_score = float(state["best"]["score"])
        self.best_epoch = int(state["best"]["epoch"])
        self.history = list(state["history"])


def _step(
    run: _Run, x: torch.Tensor, y: torch.Tensor, t: float, spacing: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on an (augmented) batch; returns the detached loss and logits.

    `spacing` (B, 2) mm per pixel (row, col) is used by descriptor terms in physical units.
    """
    if run.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with autocast_context(run.device, run.amp_dtype):
        logits = run.net(x)
    logits = logits.float()
    if run.loss_fn is None:
        loss = cross_entropy_loss(logits, y)
    else:
        loss = run.loss_fn(torch.softmax(logits, dim=1), y, t, spacing=spacing)
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    return loss.detach(), logits.detach()


def _raise_non_finite(run: _Run, loss: torch.Tensor, n_steps: int) -> None:
    raise NonFiniteLossError(
        f"non-finite loss ({float(loss)}) at epoch {run.epoch}, by step {n_steps} (t = {run.t:.4g}, "
        f"lr = {run.lr_schedule.lr:.4g}); the run stopped, checkpoints/last.pt holds "
        + (f"the end of epoch {run.epoch - 1}" if run.epoch else "nothing yet (first epoch)")
    )


class EpochTotals:
    """Running sums of one epoch's training pass, kept on the device: no read-back per step.

    Per step (`add`): the loss, the training 2-D DSC per class (summed over the slices where the
    class is defined) and, for descriptor runs, the loss's `last_stats` stacked into one tensor
    (2 kernels, not 2 per statistic). `row()` turns them into the CSV entries of the epoch.
    """

    def __init__(self, class_names: list[str], mean_classes: list[int], device: torch.device):
        self.class_names, self.mean_classes = class_names, mean_classes
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
        # argmax labels and dataset labels are in range by construction: no check, no read-back
        counts = dice_counts(logits.argmax(1), y, len(self.class_names), check=False)
        dsc = dice_from_counts(counts)
        self.dsc += dsc.nan_to_num(0.0).sum(0)
        self.dsc_n += (~dsc.isnan()).sum(0)
        if stats:
            if self.stats is None:
                self.stat_columns = stat_columns(stats)
            keys = self.stat_columns.values()
            values = torch.stack([stats[key].detach().float().reshape(()) for key in keys])
            self.stats = values if self.stats is None else self.stats + values

    def row(self) -> dict[str, float]:
        n = max(self.steps, 1)
        dsc = (self.dsc / self.dsc_n).cpu()  # mean over the slices where the class is defined
        row: dict[str, float] = {"train_loss": float(self.loss) / n}
        for k, name in enumerate(self.class_names):
            row[f"train_dsc_{name}"] = float(dsc[k])
        row["train_dsc_mean"] = float(dsc[self.mean_classes].nanmean())
        if self.stats is not None:
            values = (self.stats.double().cpu() / n).tolist()
            row.update(zip(self.stat_columns, values, strict=True))
        return row


def load_batch(
    images: torch.Tensor, labels: torch.Tensor, index: torch.Tensor, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """The slices `index` of the training set on `device`, labels as int64."""
    x = images[index].to(device, non_blocking=True)
    return x, labels[index].to(device, non_blocking=True).long()


def _train_epoch(
    run: _Run,
    images: torch.Tensor,
    labels: torch.Tensor,
    progress: bool,
    spacing: torch.Tensor | None = None,
) -> dict[str, float]:
    """One pass over the training slices; returns the row entries of the epoch's training part.

    The loss is checked for NaN/inf after every step on the CPU; on CUDA every `CHECK_EVERY` steps
    and at the end (a check waits for the GPU), before anything of the epoch is saved.
    """
    from tqdm.auto import tqdm

    cfg, device = run.config, run.device
    check_every = 1 if device.type == "cpu" else CHECK_EVERY
    run.model.train()
    order = torch.randperm(images.shape[0], generator=run.generators["shuffle"]).to(images.device)
    totals = EpochTotals(run.class_names, run.mean_classes, device)
    t = run.t
    batches = order.split(cfg.batch_size)
    # at most one refresh a second: in a notebook each refresh is a widget message, and a kernel
    # drops messages past its queue's limit (a long cell can then lose its "done" message)
    steps = tqdm(
        batches, desc=f"epoch {run.epoch}", leave=False, disable=not progress, mininterval=1.0
    )
    for index in steps:
        x, y = load_batch(images, labels, index, device)
        x, y = augment(cfg, x, y, run.generators["augment"])
        batch_spacing = None if spacing is None else spacing[index.to(spacing.device)].to(device)
        loss, logits = _step(run, x, y, t, batch_spacing)
        totals.add(loss, logits, y, run.loss_fn.last_stats if run.loss_fn is not None else None)
        if totals.steps % check_every == 0 and bool(totals.bad):
            _raise_non_finite(run, loss, totals.steps)
    if bool(totals.bad):
        _raise_non_finite(run, totals.loss, totals.steps)
    return totals.row()


def _validate(run: _Run, val) -> dict[str, float]:
    pred = predict_labels(
        run.net,
        val.images,
        batch_size=max(run.config.batch_size, 16),
        device=run.device,
        amp_dtype=run.amp_dtype,
        channels_last=run.channels_last,
    )
    counts = dice_counts(pred, val.labels.to(pred.device), len(run.class_names))
    return validation_scores(counts, val.volume_ids, run.class_names, run.mean_classes)


# --------------------------------------------------------------------------- the loop


def _setup(
    config: TrainConfig,
    device: torch.device,
    class_names: list[str],
    labels: torch.Tensor,
    compile_as: str | None = None,
) -> _Run:
    """The run's parts; `compile_as` is a torch.compile mode (see `compile_mode`), None = eager."""
    from tutorial_lib.penalties import MultiplyT

    torch.manual_seed(config.seed)
    channels_last = (
        config.channels_last if config.channels_last is not None else device.type == "cuda"
    )
    model = build_network(config, len(class_names), device, channels_last)
    if config.init_bias == "class_sizes":
        init_bias_from_sizes(model, labels, len(class_names))
    data_device = labels.device
    # on CUDA the fused Adam: one kernel for all parameters instead of a few per chunk of them
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=config.lr,
        betas=tuple(config.betas),
        fused=True if device.type == "cuda" else None,
    )
    generators = {
        "shuffle": torch.Generator().manual_seed(config.seed + 1),
        "augment": torch.Generator(device=data_device).manual_seed(config.seed + 2),
    }
    mean_classes = list(config.selection_classes or range(1, len(class_names)))
    if any(not 0 <= k < len(class_names) for k in mean_classes):
        raise ValueError(
            f"selection_classes: expected indices below {len(class_names)}, got {mean_classes}"
        )
    return _Run(
        config=config,
        device=device,
        model=model,
        net=compile_network(model, compile_as) if compile_as else model,
        optimizer=optimizer,
        lr_schedule=LRSchedule(config.lr_schedule, config.lr),
        t_schedule=MultiplyT(t0=config.t0, factor=config.t_factor, max_t=config.t_max),
        loss_fn=build_loss(config),
        generators=generators,
        amp_dtype=amp_dtype(config, device),
        channels_last=channels_last,
        class_names=class_names,
        mean_classes=mean_classes,
    )


def _run_epoch(
    run: _Run,
    images: torch.Tensor,
    labels: torch.Tensor,
    val_set,
    out: Path,
    progress: bool,
    spacing: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Train, validate, keep the best weights, step t and the LR rule, write CSV and last.pt."""
    epoch, start = run.epoch, time.perf_counter()
    row: dict[str, Any] = {"epoch": epoch, "t": run.t, "lr": run.lr_schedule.lr}
    row.update(_train_epoch(run, images, labels, progress, spacing))
    row.update(_validate(run, val_set))
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
        save_checkpoint(out / "checkpoints" / "best.pt", best)
    run.t_schedule.step()
    run.lr_schedule.step(epoch, run.best_epoch, run.optimizer)
    run.epoch = epoch + 1
    run.history.append(row)
    write_csv(out / "metrics.csv", run.history)
    save_checkpoint(out / "checkpoints" / "last.pt", run.state())
    return row


def _check_resumable(out: Path, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    last = out / "checkpoints" / "last.pt"
    if not resume:
        if last.exists():
            raise ValueError(
                f"out_dir: expected an empty run directory or resume=True, got an existing run at {out}"
            )
        return None
    if not last.exists():
        return None
    state = load_checkpoint(last)
    saved = config_from_dict(state["config"])
    if dataclasses.replace(saved, epochs=config.epochs) != config:
        raise ValueError(
            f"resume: expected the config saved in {out}/config.json (epochs may differ), got a different one"
        )
    return state


def train(
    config: TrainConfig,
    *,
    data_root: str | os.PathLike | None = None,
    out_dir: str | os.PathLike,
    device: str | torch.device | None = None,
    resume: bool = False,
    progress: bool = True,
    compile: bool | str = False,
) -> dict[str, Any]:
    """Train `config` into `out_dir` (layout in the module docstring); return the run summary.

    Toy datasets are generated (and cached) when `data_root` is None. `resume=True` continues
    from `out_dir/checkpoints/last.pt` when it exists. `compile=True` (or a mode such as
    "reduce-overhead") trains and validates through `torch.compile(model)`; an execution option
    like `device`, so a run may resume either way.
    """
    from tqdm.auto import tqdm

    if not isinstance(config, TrainConfig):
        raise ValueError(
            f"config: expected a TrainConfig (see tutorial_lib.presets), got {type(config).__name__}"
        )
    out = Path(out_dir)
    device = get_device(str(device)) if device is not None else get_device()
    mode = compile_mode(compile)  # a bad value fails here, before anything is written
    state = _check_resumable(out, config, resume)
    root = resolve_data_root(config, data_root)
    train_set, val_set = load_data(config, root, "train"), load_data(config, root, "val")
    keep_on_device = config.data_on_device
    if keep_on_device is None:
        keep_on_device = fits_on_device(
            train_set.images.element_size() * train_set.images.nelement() * 2, device
        )
    data_device = device if keep_on_device else torch.device("cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its kernels
    images, labels = train_set.images.to(data_device), train_set.labels.to(data_device)
    if data_device.type == "cpu" and device.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()
    # in-plane mm per pixel, only when a term is in physical units (anatomical priors in mm)
    spacing = train_set.spacing[:, 1:] if any(t.physical for t in config.terms) else None
    run = _setup(config, device, list(train_set.class_names), labels, mode)
    if state is not None:
        run.load(state)
    write_json(out / "config.json", config_to_dict(config))
    started = time.perf_counter()
    summary = {
        "name": config.name,
        "status": "running",
        "device": str(device),
        "compiled": mode or False,
        "data_root": str(root),
    }
    epochs = tqdm(
        range(run.epoch, config.epochs),
        desc=config.name,
        disable=not progress,
        initial=run.epoch,
        total=config.epochs,
    )
    try:
        for _ in epochs:
            row = _run_epoch(run, images, labels, val_set, out, progress, spacing)
            epochs.set_postfix(
                loss=f"{row['train_loss']:.3g}",
                val=f"{row['val_dsc2d_mean']:.3f}",
                best=f"{run.best_score:.3f}",
            )
    except NonFiniteLossError as error:
        summary.update(status="non-finite loss", message=str(error), epochs_done=run.epoch)
        write_json(out / "summary.json", summary)
        raise
    summary.update(
        status="done",
        epochs_done=run.epoch,
        best_epoch=run.best_epoch,
        best_val_dsc2d_mean=run.best_score,
        train_seconds=sum(r["seconds"] for r in run.history),
        wall_seconds_this_call=time.perf_counter() - started,
        seconds_per_epoch=[r["seconds"] for r in run.history],
    )
    write_json(out / "summary.json", summary)
    summary["test"] = evaluate(out, device=device, data_root=root)
    summary = read_json(out / "summary.json")
    return summary
