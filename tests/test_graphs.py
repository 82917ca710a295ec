"""Graph mode (`train(..., graph=True)`) on the CPU: what CUDA-graph capture needs, checked here.

There are no CUDA graphs on a CPU. What is checked instead:
- the step issues no host synchronisation once warmed up (no `.item()`, no value-dependent
  shape), watched op by op with a dispatch mode (Adam excepted: torch's CPU Adam reads its step
  counter; on CUDA graph mode's Adam is `capturable`);
- with a capture emulated on the CPU (the captured function runs once and the state is put back,
  as a capture runs nothing; each replay refills the same output tensors), the bookkeeping of
  `GraphedStep` / `GraphedForward` (warm-up on a copy of the state, static buffers, the short last
  batch run eagerly, the stats, the LR halved in place) gives the graph-mode run bit for bit;
- graph mode (t and the LR as tensors) against the default eager run: rounding only;
- resume across modes (the optimiser's LR type and options stay the run's own).
The real capture runs on a GPU in `benchmarks/graphed_step.py` (benchmarks/gpu_suite.sh).
"""

from __future__ import annotations

import dataclasses
import shutil

import pytest
import torch
from tiny_runs import DDP_DATA, tiny_config
from torch.utils._python_dispatch import TorchDispatchMode

from tutorial_lib import graphs
from tutorial_lib import train as train_module
from tutorial_lib.checkpoint import load_checkpoint
from tutorial_lib.distributed import Ranks, data_parallel
from tutorial_lib.losses import DescriptorTerm
from tutorial_lib.run_setup import build_run
from tutorial_lib.runlog import read_csv, read_json
from tutorial_lib.schedules import LRSchedule
from tutorial_lib.train import train


def tiny(method: str = "descriptors", **changes):
    """21 slices (a short last batch of 5), the authors' LR rule (halved after epoch 0)."""
    return tiny_config(method, data=DDP_DATA, lr_schedule="paper", **changes)


def emulated_capture(fn, generators, checkpoint):
    """A CUDA-graph capture acted out on the CPU: a capture records and runs nothing, so the
    state goes back to where the capture found it; a replay writes into the same outputs."""
    undo = checkpoint()
    outputs = fn()
    undo()

    def replay():
        for static, fresh in zip(graphs._leaves(outputs), graphs._leaves(fn()), strict=True):
            static.copy_(fresh)

    return replay, outputs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same 2-epoch descriptors run: eager, graph mode, graph mode with emulated capture."""
    base = tmp_path_factory.mktemp("graphs")
    out = {}
    for name in ("eager", "graph", "emulated"):
        patch = pytest.MonkeyPatch()
        if name == "emulated":
            patch.setattr(graphs, "capture_for", lambda device: emulated_capture)
        try:
            summary = train(
                tiny(), out_dir=base / name, device="cpu", progress=False, graph=name != "eager"
            )
        finally:
            patch.undo()
        out[name] = (base / name, summary)
    return out


def _weights(run_dir):
    return load_checkpoint(run_dir / "checkpoints" / "last.pt")["model"]


def _rows(run_dir):
    return [
        {k: v for k, v in row.items() if k != "seconds"}
        for row in read_csv(run_dir / "metrics.csv")
    ]


def test_the_emulated_capture_replays_the_graph_mode_run_bit_for_bit(runs):
    graph, emulated = runs["graph"][0], runs["emulated"][0]
    assert runs["graph"][1]["graph"] == "eager"  # no CUDA graphs on the CPU
    assert runs["emulated"][1]["graph"] == "captured"
    assert _rows(emulated) == _rows(graph)
    rows = _rows(graph)
    assert rows[1]["lr"] == rows[0]["lr"] / 2  # the LR halved after epoch 0, inside the graph too
    a, b = _weights(graph), _weights(emulated)
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert read_json(graph / "test.json")["dsc3d"] == read_json(emulated / "test.json")["dsc3d"]


def test_graph_mode_differs_from_the_eager_run_by_rounding_only(runs):
    """t and the LR are float32 tensors in graph mode, Python floats in the eager loop."""
    eager, graph = _weights(runs["eager"][0]), _weights(runs["graph"][0])
    worst = max(float((eager[k] - graph[k]).abs().max()) for k in eager)
    assert worst < 1e-5, worst
    for row, want in zip(_rows(runs["graph"][0]), _rows(runs["eager"][0]), strict=True):
        assert row == pytest.approx(want, rel=1e-4, abs=1e-5)


def test_graph_mode_resumes_exactly_and_in_either_mode(runs, tmp_path):
    resumed = tmp_path / "resumed"
    train(tiny(epochs=1), out_dir=resumed, device="cpu", progress=False, graph=True)
    train(tiny(), out_dir=resumed, device="cpu", progress=False, graph=True, resume=True)
    assert _rows(resumed) == _rows(runs["graph"][0])
    eager = tmp_path / "eager"  # a graph-mode checkpoint (its LR a tensor) resumed eagerly
    shutil.copytree(runs["graph"][0], eager)
    summary = train(tiny(epochs=3), out_dir=eager, device="cpu", progress=False, resume=True)
    assert summary["epochs_done"] == 3 and summary["graph"] is False


class HostReads(TorchDispatchMode):
    """The ops that read a value back to the host, or whose output shape depends on values."""

    SYNCING = ("_local_scalar_dense", "nonzero", "masked_select", "unique", "equal", "is_nonzero")

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.paused = False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if not self.paused:
            if any(part in name for part in self.SYNCING):
                self.found.append(name)
            if "repeat_interleave.Tensor" in name and (kwargs or {}).get("output_size") is None:
                self.found.append(name)
            indexing = name.startswith(("aten.index.Tensor", "aten.index_put", "aten._index_put"))
            if indexing and any(
                isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in args[1] or ()
            ):
                self.found.append(name + " (a boolean mask)")
        return func(*args, **(kwargs or {}))


PHYSICAL = DescriptorTerm("size", (1,), 0.1, "percentage", 1e-2, physical=True)


ENET = {"model": "enet", "model_options": {}}  # the ACDC network (BatchNorm, dropout, unpooling)


@pytest.mark.parametrize(
    "method, extra, network",
    [("ce", (), {}), ("descriptors", (), {}), ("descriptors", (PHYSICAL,), {}), ("ce", (), ENET)],
)
def test_the_step_reads_nothing_back_to_the_host(method, extra, network):
    config = tiny(method, **network)
    if extra:
        config = dataclasses.replace(config, terms=config.terms + extra)
    run = build_run(config, device="cpu", graph=True)
    assert run.generators["augment"].device == run.device  # the augmentation draws on the device
    step = graphs.graph_step(run, train_module._augment_and_step)
    index = torch.arange(8)
    x, y = train_module.load_batch(run.data.images, run.data.labels, index, run.device)
    spacing = None if run.data.spacing is None else run.data.spacing[index]
    step(x, y, 1.0, spacing)  # the warm-up: a capture follows warm-up steps
    spy, adam_step = HostReads(), run.optimizer.step

    def adam_unwatched(*args, **kwargs):  # torch's CPU Adam reads its step counter
        spy.paused = True
        try:
            return adam_step(*args, **kwargs)
        finally:
            spy.paused = False

    run.optimizer.step = adam_unwatched
    with spy:
        step(x, y, 1.1, spacing)
    assert spy.found == []
    assert isinstance(run.optimizer.param_groups[0]["lr"], torch.Tensor)


def test_the_host_read_watch_sees_a_read():
    with HostReads() as spy:
        x = torch.arange(4.0)
        float(x.sum())
        x[x > 1]
    assert any("_local_scalar_dense" in f for f in spy.found)
    assert any("boolean mask" in f or "nonzero" in f for f in spy.found)


def test_the_lr_rule_halves_a_tensor_lr_in_place():
    lr = torch.tensor(0.01)
    optimizer = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=lr)
    LRSchedule("paper", 0.01).step(0, 0, optimizer)
    assert optimizer.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.005)


def test_graph_mode_refuses_what_it_cannot_capture(tmp_path):
    with pytest.raises(ValueError, match="graph: expected compile=False.*'default'"):
        train(tiny(), out_dir=tmp_path / "a", device="cpu", compile=True, graph=True)
    with pytest.raises(ValueError, match="graph: expected True or False, got 'yes'"):
        train(tiny(), out_dir=tmp_path / "b", device="cpu", graph="yes")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    run = build_run(tiny(), device="cpu", graph=True)
    with pytest.raises(ValueError, match="graph: expected a single process.*2 ranks"):
        data_parallel(run, Ranks(0, 2, 0))
