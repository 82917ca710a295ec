"""The whole training step, and the validation forward, replayed as CUDA graphs (`--graph`).

    summary = train(config, out_dir="runs/x", device="cuda", graph=True)

ENet's step is about a thousand small kernels: on a GPU the CPU's launches, not the kernels, set
its time. `GraphedStep` captures one step (augmentation, forward, loss with the descriptors,
backward, Adam) in a CUDA graph the first time it sees a full batch, then replays it: one launch
per step. `GraphedForward` does the same for the validation forward (eval mode, one graph per
batch shape). What capture needs, true on every device in graph mode:

- static buffers: each batch is copied into the tensors the graph reads, and its outputs are the
  tensors the graph writes (the caller reads them before the next step);
- no host synchronisation inside the step (no `.item()`, no shape that depends on values): the
  barrier's t is a device tensor (`static_t`, filled once per epoch), the learning rate too
  (Adam's `lr` a tensor, `capturable=True` on CUDA, `LRSchedule` fills it in place), and the
  augmentation draws from a generator on the device (registered with the graph);
- the same state before capture as without it: the warm-up steps (cuDNN autotuning, Adam's state)
  run on a copy-and-restore of the weights, buffers, optimiser state and random generators, so
  the captured run starts exactly where an eager run would;
- the short last batch of an epoch (another shape) runs eagerly, through the same function.

On the CPU (and Apple MPS) there are no CUDA graphs: graph mode runs the same step eagerly, with
the same tensors for t and the LR, so the tests check there what capture needs
(tests/test_graphs.py). `capture_for(device)` chooses the capture; the tests pass an emulation.
Checkpoints are those of an eager run (the optimiser's execution options, the LR's type among
them, are the run's own: `keep_execution_options`), so a run resumes in either mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from tutorial_lib.run_setup import Run

__all__ = [
    "WARMUP_STEPS",
    "GraphedStep",
    "GraphedForward",
    "graph_step",
    "capture_for",
    "cuda_capture",
    "graph_optimizer",
    "keep_execution_options",
]

WARMUP_STEPS = 3  # eager steps before capture (on a copy of the state), as torch's recipe does
# capture(fn, generators, checkpoint) -> (replay, outputs); `checkpoint()` returns a function that
# puts the run's state back where it is now (for a capture emulated by running `fn`)
Capture = Callable[
    [Callable[[], Any], Sequence[torch.Generator], Callable[[], Callable[[], None]]], tuple
]


def _leaves(value: Any) -> list[torch.Tensor]:
    """The tensors of nested tuples / lists / dicts, in a fixed order."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return [t for key in sorted(value) for t in _leaves(value[key])]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _leaves(item)]
    return []


def cuda_capture(
    fn: Callable[[], Any],
    generators: Sequence[torch.Generator],
    checkpoint: Callable[[], Callable[[], None]],
) -> tuple[Callable[[], None], Any]:
    """Capture `fn` in a CUDA graph; (replay, outputs). Nothing runs during a capture, so the
    state needs no `checkpoint`."""
    graph = torch.cuda.CUDAGraph()
    for generator in generators:
        if generator.device.type == "cuda":
            graph.register_generator_state(generator)
    with torch.cuda.graph(graph):
        outputs = fn()
    return graph.replay, outputs


def capture_for(device: torch.device) -> Capture | None:
    """The capture on `device`: CUDA graphs on CUDA, none elsewhere (the step runs eagerly)."""
    return cuda_capture if device.type == "cuda" else None


def _warm_up(fn: Callable[[], Any], steps: int, device: torch.device) -> None:
    """Run `fn` `steps` times, on a side stream on CUDA (as the capture will)."""
    if device.type != "cuda":
        for _ in range(steps):
            fn()
        return
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(steps):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)


# --------------------------------------------------------------------------- the run's state


def _snapshot(model: nn.Module, optimizer: torch.optim.Optimizer, generators) -> dict[str, Any]:
    """Copies of what a step changes: weights and buffers, Adam's state, every generator."""
    return {
        "model": [t.detach().clone() for t in model.state_dict(keep_vars=True).values()],
        "optimizer": {  # keyed by id: a dict lookup by tensor may compare values
            id(p): {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
            for p, s in optimizer.state.items()
        },
        "generators": [g.get_state() for g in generators],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }


@torch.no_grad()
def _restore(model: nn.Module, optimizer: torch.optim.Optimizer, generators, saved) -> None:
    """Back to `saved`, in place (the graph will read these very tensors). Adam's state made by
    the warm-up for a parameter that had none is zeroed: step 0, the moments 0, as a first step."""
    for tensor, copy in zip(model.state_dict(keep_vars=True).values(), saved["model"], strict=True):
        tensor.copy_(copy)
    for param, state in optimizer.state.items():
        before = saved["optimizer"].get(id(param))
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                value.copy_(before[key]) if before is not None else value.zero_()
    for generator, state in zip(generators, saved["generators"], strict=True):
        generator.set_state(state)
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda"])


# --------------------------------------------------------------------------- the step


class GraphedStep:
    """`step(x, y, t, spacing) -> (loss, logits, augmented labels)`, replayed from a graph.

    `body(x, y, t, spacing)` is the eager step (augmentation included); `loss_fn` the run's
    descriptor loss (its `last_stats` are kept pointing at the graph's outputs) or None.
    """

    def __init__(
        self,
        body: Callable,
        *,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        generators: Sequence[torch.Generator],
        loss_fn: Any,
        device: torch.device,
        capture: Capture | None,
    ) -> None:
        self.body, self.model, self.optimizer = body, model, optimizer
        self.generators, self.loss_fn, self.device = list(generators), loss_fn, device
        self.capture = capture
        self.static_t = torch.ones((), device=device)
        self._t: float | None = None
        self.batch_size: int | None = None
        self.inputs: list[torch.Tensor | None] = []
        self.outputs: Any = None
        self.replay: Callable[[], None] | None = None

    def _set_t(self, t: float) -> None:
        if t != self._t:  # once per epoch: no kernel per step
            self.static_t.fill_(t)
            self._t = t

    def __call__(self, x: torch.Tensor, y: torch.Tensor, t: float, spacing: torch.Tensor | None):
        self._set_t(t)
        if self.capture is None or (self.batch_size is not None and x.shape[0] != self.batch_size):
            return self.body(x, y, self.static_t, spacing)  # no graphs here, or the short batch
        if self.replay is None:
            self._capture(x, y, spacing)
        for static, value in zip(self.inputs, (x, y, spacing), strict=True):
            if static is not None:
                static.copy_(value)
        self.replay()
        loss, logits, labels, stats = self.outputs
        if self.loss_fn is not None:
            self.loss_fn.last_stats = stats
        return loss, logits, labels

    def _capture(self, x: torch.Tensor, y: torch.Tensor, spacing: torch.Tensor | None) -> None:
        self.batch_size = x.shape[0]
        self.inputs = [x.clone(), y.clone(), None if spacing is None else spacing.clone()]
        sx, sy, ss = self.inputs

        def step() -> tuple:
            loss, logits, labels = self.body(sx, sy, self.static_t, ss)
            stats = dict(self.loss_fn.last_stats) if self.loss_fn is not None else {}
            return loss, logits, labels, stats

        state = (self.model, self.optimizer, self.generators)
        saved = _snapshot(*state)
        _warm_up(step, WARMUP_STEPS, self.device)
        _restore(*state, saved)
        self.optimizer.zero_grad(set_to_none=True)
        self.replay, self.outputs = self.capture(
            step, self.generators, lambda: functools.partial(_restore, *state, _snapshot(*state))
        )


def graph_step(run: Run, body: Callable) -> GraphedStep:
    """The `GraphedStep` of `run` around `body(run, x, y, t, spacing)` (the loop's eager step)."""
    return GraphedStep(
        functools.partial(body, run),
        model=run.model,
        optimizer=run.optimizer,
        generators=list(run.generators.values()),
        loss_fn=run.loss_fn,
        device=run.device,
        capture=capture_for(run.device),
    )


class GraphedForward(nn.Module):
    """`model` whose eval-mode, no-grad forward replays a graph per input shape (validation);
    training mode calls `model` itself (the training step's graph captures that call)."""

    def __init__(self, model: nn.Module, capture: Capture) -> None:
        super().__init__()
        self.model, self.capture = model, capture
        self.graphs: dict[tuple, tuple[torch.Tensor, Callable[[], None], torch.Tensor]] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            return self.model(x)
        key = (tuple(x.shape), x.dtype, x.stride(), torch.is_autocast_enabled(x.device.type))
        if key not in self.graphs:
            static = x.clone()
            _warm_up(lambda: self.model(static), 1, x.device)
            replay, out = self.capture(lambda: self.model(static), [], lambda: lambda: None)
            self.graphs[key] = (static, replay, out)
        static, replay, out = self.graphs[key]
        static.copy_(x)
        replay()
        return out


# --------------------------------------------------------------------------- the optimiser


def graph_optimizer(
    params, *, lr: float, betas: tuple[float, float], device: torch.device
) -> torch.optim.Optimizer:
    """Adam as graph mode needs it: the LR a tensor on the device; on CUDA fused and capturable
    (its step counter on the device, no read-back)."""
    cuda = device.type == "cuda"
    return torch.optim.Adam(
        params,
        lr=torch.tensor(float(lr), device=device),
        betas=betas,
        fused=True if cuda else None,
        capturable=cuda,
    )


_EXECUTION_OPTIONS = ("capturable", "fused", "foreach", "differentiable")


def keep_execution_options(optimizer: torch.optim.Optimizer, load: Callable[[], None]) -> None:
    """Run `load()` (the optimiser's `load_state_dict`) keeping the run's own execution options:
    capturable / fused / foreach, and the LR's type (a float, or the very tensor graph mode
    reads); the saved LR value is kept. The step counters go where the options want them."""
    kept = [
        ({k: g[k] for k in _EXECUTION_OPTIONS if k in g}, g["lr"]) for g in optimizer.param_groups
    ]
    load()
    for group, (options, lr) in zip(optimizer.param_groups, kept, strict=True):
        group.update(options)
        value = float(group["lr"])
        if isinstance(lr, torch.Tensor):
            lr.fill_(value)
            group["lr"] = lr
        else:
            group["lr"] = value
        on_device = options.get("capturable") or options.get("fused")
        for param in group["params"]:
            step = optimizer.state.get(param, {}).get("step")
            if isinstance(step, torch.Tensor):
                where = param.device if on_device else torch.device("cpu")
                optimizer.state[param]["step"] = step.to(device=where, dtype=torch.float32)
