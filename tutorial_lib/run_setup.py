"""A training run built in one call from its TrainConfig: `build_run(config, ...) -> Run`.

    run = build_run(get_preset("toy-cardiac-descriptors"), device="cpu")
    run.net(run.data.images[:8])   # the network as the loop runs it

What `build_run` builds, in this order (the order fixes the random numbers of a run):

- the data: the data root (`resolve_data_root`: the given folder, or the cached toy dataset),
  the train and val splits (`load_data`), the training set placed on the device when it fits
  (else on the CPU, pinned when the device is CUDA), and the in-plane spacing per slice when a
  term is in physical units (mm);
- the precision: bfloat16 autocast or none (`amp_dtype`), channels_last (on CUDA by default),
  cuDNN autotuning on CUDA (fixed input sizes);
- the network (`build_network`, seeded by `config.seed`), its output bias from the mean class
  sizes when asked (`init_bias_from_sizes`), and its `torch.compile` form (`compile_network`);
- the optimiser (Adam, fused on CUDA), the LR rule (`LRSchedule`), the barrier schedule
  (`MultiplyT`), the loss (`build_loss`: None for cross-entropy runs);
- the generators of the shuffling (CPU) and of the augmentation (on the data's device).

Every value is checked here, before the caller writes anything.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tutorial_lib import graphs
from tutorial_lib.config import TrainConfig
from tutorial_lib.data.datasets import SliceSet, check_split, load_split
from tutorial_lib.data.toy.dataset import ensure_toy_dataset
from tutorial_lib.device import get_device
from tutorial_lib.distributed import Ranks
from tutorial_lib.graphs import GraphedForward, GraphedStep, graph_optimizer
from tutorial_lib.loss_tables import LossTables
from tutorial_lib.losses import ShapeDescriptorLoss
from tutorial_lib.models import build_model
from tutorial_lib.schedules import LRSchedule, MultiplyT

__all__ = [
    "Run",
    "TrainData",
    "build_run",
    "selection_classes",
    "resolve_data_root",
    "load_data",
    "amp_dtype",
    "precision_name",
    "resolve_channels_last",
    "build_network",
    "compile_network",
    "compile_mode",
    "COMPILE_MODES",
    "build_loss",
    "check_graph",
    "build_optimizer",
    "init_bias_from_sizes",
    "value_noise_table",
]

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


@dataclasses.dataclass(frozen=True)
class TrainData:
    """The data of a run: the training tensors where the loop reads them, and the val split.

    `images` (N, 1, H, W) float32 and `labels` (N, H, W) uint8 on the device (or pinned CPU memory);
    `spacing` (N, 2) mm per pixel (row, col) on the CPU where a term is physical, else None.
    """

    root: Path
    class_names: list[str]
    images: torch.Tensor
    labels: torch.Tensor
    spacing: torch.Tensor | None
    val: SliceSet


@dataclasses.dataclass
class Run:
    """What the loop carries from epoch to epoch (the last four fields are what it advances)."""

    config: TrainConfig
    device: torch.device
    data: TrainData
    model: nn.Module  # the plain module: what checkpoints save and load
    net: nn.Module  # what runs the forward passes: `model` or `torch.compile(model)`
    compiled: str | None  # the torch.compile mode of `net`, None when eager
    optimizer: torch.optim.Optimizer
    lr_schedule: LRSchedule
    t_schedule: MultiplyT
    loss_fn: ShapeDescriptorLoss | None  # None: cross-entropy
    generators: dict[str, torch.Generator]  # "shuffle" (CPU), "augment" (the data's device)
    amp_dtype: torch.dtype | None
    channels_last: bool
    selection_classes: list[int]  # class indices averaged for model selection
    value_noise: torch.Tensor | None = None  # (slices, columns) relative errors (bound_noise)
    epoch: int = 0
    best_score: float = -math.inf
    best_epoch: int = 0
    history: list[dict[str, float]] = dataclasses.field(default_factory=list)  # metrics.csv rows
    ranks: Ranks | None = None  # data-parallel under torchrun (tutorial_lib.distributed)
    graph: bool = False  # graph mode: the step as a CUDA graph will run it (tutorial_lib.graphs)
    graphed_step: GraphedStep | None = None  # the step of graph mode (made by `train`)

    @property
    def class_names(self) -> list[str]:
        return self.data.class_names

    @property
    def t(self) -> float:
        return float(self.t_schedule.t)


def build_run(
    config: TrainConfig,
    *,
    data_root: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    compile: bool | str = False,
    data: TrainData | None = None,
    graph: bool = False,
) -> Run:
    """Every part of a run of `config` (see the module docstring), on `device` (None: the best).

    `compile`: False (eager), True ("default") or a torch.compile mode (`COMPILE_MODES`).
    `data`: the data already placed (tensors made in memory, e.g. by a benchmark); None reads it
    from `data_root`. `graph`: the Adam, generators and validation forward of graph mode
    (tutorial_lib.graphs). Raises ValueError for a bad value (the config type, the device,
    `compile` and `graph` before any data is read; `selection_classes` once the classes are known).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(
            f"config: expected a TrainConfig (see tutorial_lib.config), got {type(config).__name__}"
        )
    device = get_device(str(device)) if device is not None else get_device()
    mode = compile_mode(compile)
    check_graph(graph, mode)
    if graph and config.bound_noise:
        raise ValueError(
            f"graph: expected bound_noise=0 in graph mode (the captured step takes no noise "
            f"table), got bound_noise={config.bound_noise}"
        )
    if data is None:
        data = _place_data(config, resolve_data_root(config, data_root), device)
    selection = selection_classes(config, len(data.class_names))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its kernels
    torch.manual_seed(config.seed)
    channels_last = resolve_channels_last(config, device)
    model = build_network(config, len(data.class_names), device, channels_last)
    if config.init_bias == "class_sizes":
        init_bias_from_sizes(model, data.labels, len(data.class_names))
    optimizer = build_optimizer(config, model, device, graph)
    # graph mode: the augmentation draws on the device, inside the captured step
    draws_on = device if graph else data.labels.device
    generators = {
        "shuffle": torch.Generator().manual_seed(config.seed + 1),
        "augment": torch.Generator(device=draws_on).manual_seed(config.seed + 2),
    }
    capture = graphs.capture_for(device) if graph else None
    return Run(
        config=config,
        device=device,
        data=data,
        model=model,
        net=compile_network(model, mode)
        if mode
        else GraphedForward(model, capture)
        if capture
        else model,
        compiled=mode,
        optimizer=optimizer,
        lr_schedule=LRSchedule(config.lr_schedule, config.lr),
        t_schedule=MultiplyT(t0=config.t0, factor=config.t_factor, max_t=config.t_max),
        loss_fn=build_loss(config),
        generators=generators,
        amp_dtype=amp_dtype(config, device),
        channels_last=channels_last,
        selection_classes=selection,
        graph=graph,
        value_noise=value_noise_table(config, data.labels.shape[0], device),
    )


def build_optimizer(
    config: TrainConfig, model: nn.Module, device: torch.device, graph: bool
) -> torch.optim.Optimizer:
    """Adam with the config's LR and betas; on CUDA fused (one kernel for all parameters instead
    of a few per chunk of them). Graph mode: the LR a device tensor, capturable on CUDA."""
    if graph:
        return graph_optimizer(model.parameters(), lr=config.lr, betas=config.betas, device=device)
    return torch.optim.Adam(
        model.parameters(),
        lr=config.lr,
        betas=tuple(config.betas),
        fused=True if device.type == "cuda" else None,
    )


def check_graph(graph: bool, compile_mode: str | None) -> None:
    """Graph mode is a bool, and excludes torch.compile (each captures the work its own way)."""
    if not isinstance(graph, bool):
        raise ValueError(f"graph: expected True or False, got {graph!r}")
    if graph and compile_mode is not None:
        raise ValueError(
            "graph: expected compile=False (graph mode captures the whole step, torch.compile "
            f"the network), got compile={compile_mode!r}"
        )


# --------------------------------------------------------------------------- data


def resolve_data_root(config: TrainConfig, data_root: str | os.PathLike | None) -> Path:
    """`data_root` if given; for toy datasets without one, the cached generated dataset."""
    if data_root is not None:
        root = Path(data_root)
        if not (root / "manifest.json").is_file():
            raise ValueError(
                f"data_root (--data): expected a prepared dataset with manifest.json at {root}, got none"
            )
        return root
    data = config.data
    if not data.dataset.startswith("toy-"):
        raise ValueError(
            f"data_root (--data): expected a prepared folder for dataset {data.dataset!r} (python -m "
            "tutorial_lib prepare), got none"
        )
    kwargs: dict[str, Any] = {"size": data.size, "seed": data.generator_seed}
    if data.n_patients is not None:
        kwargs["n_patients"] = data.n_patients
    return Path(ensure_toy_dataset(data.dataset, None, **kwargs, **dict(data.shape_options)))


def load_data(config: TrainConfig, root: Path, split: str) -> SliceSet:
    """The slices of `split` under `root`; "train" keeps the first `data.max_train_slices`."""
    data = load_split(root, split)
    if split == "train" and config.data.max_train_slices is not None:
        data = data.subset(range(min(config.data.max_train_slices, len(data.images))))
    return data


def _fits_on_device(nbytes: int, device: torch.device) -> bool:
    if device.type != "cuda":
        return device.type == "mps" or device.type == "cpu"
    free, _ = torch.cuda.mem_get_info(device)
    return nbytes < 0.25 * free


def _place_data(config: TrainConfig, root: Path, device: torch.device) -> TrainData:
    """The training set on the device when it fits (`data_on_device`), else on the CPU."""
    train_set, val_set = load_data(config, root, "train"), load_data(config, root, "val")
    check_split(root, "test")  # a bad test volume stops the run here, not after its training
    keep_on_device = config.data_on_device
    if keep_on_device is None:
        nbytes = train_set.images.element_size() * train_set.images.nelement() * 2
        keep_on_device = _fits_on_device(nbytes, device)
    data_device = device if keep_on_device else torch.device("cpu")
    images, labels = train_set.images.to(data_device), train_set.labels.to(data_device)
    if data_device.type == "cpu" and device.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()
    # in-plane mm per pixel, only when a term is in physical units (anatomical priors in mm)
    spacing = train_set.spacing[:, 1:] if any(t.physical for t in config.terms) else None
    return TrainData(root, list(train_set.class_names), images, labels, spacing, val_set)


# --------------------------------------------------------------------------- network, precision


def selection_classes(config: TrainConfig, n_classes: int) -> list[int]:
    """The class indices averaged for model selection: `config.selection_classes`, else 1..K-1."""
    chosen = list(config.selection_classes or range(1, n_classes))
    if any(not 0 <= k < n_classes for k in chosen):
        raise ValueError(f"selection_classes: expected indices below {n_classes}, got {chosen}")
    return chosen


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bfloat16 for "bf16", and for "auto" on a GPU with native bfloat16.

    "auto" asks `device` itself for compute capability 8.0 or more (Ampere and later; ROCm GPUs
    have bfloat16): `torch.cuda.is_bf16_supported()` also says yes where bfloat16 is only
    emulated (a T4, a V100), where autocast would cost time instead of saving it.
    """
    if config.amp == "off":
        return None
    if config.amp == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and (
        torch.version.hip is not None or torch.cuda.get_device_capability(device)[0] >= 8
    ):
        return torch.bfloat16
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """How a run computes, in words for its summary: "float32" or "bfloat16 autocast"."""
    return "float32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"


def resolve_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """`config.channels_last`, or None -> on CUDA only."""
    return config.channels_last if config.channels_last is not None else device.type == "cuda"


def build_network(
    config: TrainConfig, n_classes: int, device: torch.device, channels_last: bool
) -> nn.Module:
    """The preset's network (1 input channel, `n_classes` outputs) on `device`."""
    model = build_model(config.model, 1, n_classes, **dict(config.model_options)).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def compile_mode(compile: bool | str | None) -> str | None:
    """The torch.compile mode asked for: False -> None (eager), True -> "default", or a mode name."""
    if compile is False or compile is None:
        return None
    if compile is True:
        return "default"
    if compile not in COMPILE_MODES:
        raise ValueError(
            f"compile: expected True, False or one of {COMPILE_MODES}, got {compile!r}"
        )
    return compile


def compile_network(model: nn.Module, mode: str = "default") -> nn.Module:
    """`torch.compile(model, mode=mode)`: shares the parameters of `model`, whose state_dict stays
    unprefixed. "reduce-overhead" also replays CUDA graphs on a GPU. Shapes are static: the short
    last batch of an epoch and validation get their own graphs, compiled once in the first epoch,
    and the full batches keep kernels specialised to their size.

    Raises ValueError where this torch has no working `torch.compile` (older than 2.0, or a
    platform / Python version it does not support).
    """
    compile_fn = getattr(torch, "compile", None)
    if compile_fn is None:
        raise ValueError(
            f"compile: expected torch.compile (torch 2.0 or newer), got torch {torch.__version__}"
        )
    try:
        return compile_fn(model, mode=mode, dynamic=False)
    except RuntimeError as error:
        raise ValueError(
            f"compile: expected torch.compile to be supported here, got {type(error).__name__}: {error}"
        ) from error


def build_loss(config: TrainConfig) -> ShapeDescriptorLoss | None:
    """The descriptor loss for "descriptors" runs (None for "ce")."""
    if config.method == "ce":
        return None
    return ShapeDescriptorLoss(
        list(config.terms),
        penalty=config.penalty,
        normalisation=config.normalisation,
        empty_policy=config.empty_policy,
        check_inputs=False,
    )


def value_noise_table(
    config: TrainConfig, n_slices: int, device: torch.device
) -> torch.Tensor | None:
    """Each training slice's relative errors e (slices, columns), drawn once from the config's seed:
    e ~ N(0, bound_noise²), kept >= -1 (the factor 1 + e is never negative); None without noise.

    One column per constrained value of the loss (`tutorial_lib.loss_tables.LossTables`): the
    loss makes that slice's bounds around v (1 + e), an annotator's fixed error on each value.
    """
    if config.method == "ce" or config.bound_noise == 0:
        return None
    columns = sum(LossTables.build(config.terms, 2).widths)
    generator = torch.Generator().manual_seed(config.seed + 3)
    noise = torch.randn(n_slices, columns, generator=generator, dtype=torch.float64)
    return (config.bound_noise * noise).clamp_min(-1.0).to(device, torch.float32)


@torch.no_grad()
def init_bias_from_sizes(model: nn.Module, labels: torch.Tensor, n_classes: int) -> None:
    """Set the output layer's bias to log(mean class size / image size), centred.

    At initialisation every pixel then predicts the average class proportions, so the summed
    probabilities start near the true sizes instead of H·W/K each. Only the mean of the size
    descriptor over the training set is used (no pixel label). The output layer is the last
    Conv2d / ConvTranspose2d with `n_classes` output channels and a bias.
    """
    last = None
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.bias is not None:
            if module.out_channels == n_classes:
                last = module
    if last is None:
        raise ValueError(
            f"init_bias: expected an output convolution with {n_classes} channels and a bias, "
            "got none"
        )
    counts = torch.bincount(labels.reshape(-1).long(), minlength=n_classes)[:n_classes]
    log_prior = torch.log(counts.double().clamp_min(1) / counts.sum())
    last.bias.copy_((log_prior - log_prior.mean()).to(last.bias))
