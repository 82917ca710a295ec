"""ENet's training step on a GPU, eager against graph mode: time, the GPU's busy fraction, numbers.

    python benchmarks/graphed_step.py --device cuda --json step.json
    python benchmarks/graphed_step.py --device cpu --size 32 --steps 3 --profile-steps 2   # smoke

For each paper preset (`acdc-ce`, `acdc-descriptors`: ENet, B = 8, 256², float32) the step of
the training loop (`train._augment_and_step`: augmentation, forward, loss, backward, Adam) runs on
the same batches of toy cardiac slices:
- **eager**: the default loop's step (t and the LR as Python numbers);
- **graph**: graph mode (`tutorial_lib.graphs.GraphedStep`), captured once, then replayed.
Reported per mode: milliseconds per step (CUDA events over `--steps` steps after warm-up), and
the GPU's busy fraction (torch.profiler: the union of the kernels' intervals over the wall time
of `--profile-steps` steps). Checks: graph mode captured gives the numbers of graph mode run
eagerly (the same kernels; per-step losses and final weights compared), and the eager step of
graph mode makes no host synchronisation (`torch.cuda.set_sync_debug_mode("error")`).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from epoch_time import write_dataset  # noqa: E402


def _batches(run, n_steps: int):
    """The first `n_steps` full batches of the training slices, on the run's device (fixed)."""
    from tutorial_lib.train import load_batch

    data = run.data
    index = torch.arange(data.images.shape[0]).split(run.config.batch_size)
    full = [i for i in index if len(i) == run.config.batch_size]
    out = []
    for k in range(n_steps):
        i = full[k % len(full)]
        x, y = load_batch(data.images, data.labels, i, run.device)
        out.append((x, y))
    return out


def _step_function(config, root: Path, device: str, mode: str):
    """(run, step(x, y, t)) for mode "eager", "graph-eager" (graph mode, no capture) or "graph"."""
    from tutorial_lib import graphs
    from tutorial_lib.run_setup import build_run
    from tutorial_lib.train import _augment_and_step

    run = build_run(config, data_root=root, device=device, graph=mode != "eager")
    if mode == "eager":
        body = functools.partial(_augment_and_step, run)
        return run, lambda x, y, t: body(x, y, t, None)
    step = graphs.graph_step(run, _augment_and_step)
    if mode == "graph-eager":
        step.capture = None
    return run, lambda x, y, t: step(x, y, t, None)


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _time_steps(step, batches, device: str) -> float:
    """Milliseconds per step over `batches` (CUDA events on a GPU)."""
    if torch.device(device).type != "cuda":
        start = time.perf_counter()
        for x, y in batches:
            step(x, y, 1.0)
        return 1000 * (time.perf_counter() - start) / len(batches)
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for x, y in batches:
        step(x, y, 1.0)
    end.record()
    torch.cuda.synchronize()
    return begin.elapsed_time(end) / len(batches)


def _busy_fraction(step, batches, device: str) -> float | None:
    """The union of the GPU kernels' intervals over the wall time of the steps (profiler)."""
    if torch.device(device).type != "cuda":
        return None
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for x, y in batches:
            step(x, y, 1.0)
        torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
    spans = sorted((e.time_range.start, e.time_range.end) for e in events)
    if not spans:
        return None
    busy, (start, end) = 0.0, spans[0]
    first = start
    for s, e in spans[1:]:
        if s > end:
            busy, start = busy + end - start, s
        end = max(end, e)
    busy += end - start
    return busy / max(end - first, 1e-9)


def _no_host_sync(step, batch, device: str) -> str:
    """ "ok" when one eager step of graph mode runs under set_sync_debug_mode("error")."""
    if torch.device(device).type != "cuda":
        return "n/a (CPU)"
    torch.cuda.set_sync_debug_mode("error")
    try:
        step(*batch, 1.0)
        return "ok"
    except RuntimeError as error:
        return f"synchronises: {error}"
    finally:
        torch.cuda.set_sync_debug_mode("default")


def _same_numbers(config, root: Path, device: str, n_steps: int) -> dict:
    """Graph mode captured against graph mode eager, from the same state on the same batches."""
    losses, weights = {}, {}
    for mode in ("graph-eager", "graph"):
        torch.manual_seed(0)
        run, step = _step_function(config, root, device, mode)
        losses[mode] = [float(step(x, y, 1.0)[0]) for x, y in _batches(run, n_steps)]
        weights[mode] = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    a, b = weights["graph-eager"], weights["graph"]
    return {
        "steps": n_steps,
        "max_loss_difference": max(abs(p - q) for p, q in zip(*losses.values(), strict=True)),
        "max_weight_difference": max(float((a[k].double() - b[k].double()).abs().max()) for k in a),
        "losses": losses,
    }


def measure(method: str, args, root: Path) -> dict:
    from tutorial_lib.presets import get_preset

    preset = get_preset(f"acdc-{method}")
    data = dataclasses.replace(preset.data, size=args.size)
    config = dataclasses.replace(preset, data=data, model=args.model)
    result: dict = {}
    for mode in ("eager", "graph"):
        run, step = _step_function(config, root, args.device, mode)
        batches = _batches(run, args.warmup + args.steps + args.profile_steps)
        for x, y in batches[: args.warmup]:  # warm-up (and, in graph mode, the capture)
            step(x, y, 1.0)
        _sync(args.device)
        timed = batches[args.warmup : args.warmup + args.steps]
        result[mode] = {
            "ms_per_step": _time_steps(step, timed, args.device),
            "busy_fraction": _busy_fraction(step, batches[-args.profile_steps :], args.device),
        }
        print(
            f"  {method:<12} {mode:<6} {result[mode]['ms_per_step']:8.2f} ms/step, busy "
            f"{result[mode]['busy_fraction']}",
            flush=True,
        )
    result["speedup"] = result["eager"]["ms_per_step"] / result["graph"]["ms_per_step"]
    run, step = _step_function(config, root, args.device, "graph-eager")
    batch = _batches(run, 2)
    step(*batch[0], 1.0)  # warm-up: the loss's tables, Adam's state
    result["graph_eager_step_host_sync"] = _no_host_sync(step, batch[1], args.device)
    result["same_numbers"] = _same_numbers(config, root, args.device, args.check_steps)
    print(
        f"  {method:<12} speedup {result['speedup']:.2f}x; host sync: "
        f"{result['graph_eager_step_host_sync']}; captured vs eager graph mode: loss "
        f"{result['same_numbers']['max_loss_difference']:.3g}, weights "
        f"{result['same_numbers']['max_weight_difference']:.3g}",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model", default="enet")
    parser.add_argument("--slices", type=int, default=240, help="training slices written")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--check-steps", type=int, default=10)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from tutorial_lib.device import describe_device, get_device, set_cpu_threads

    set_cpu_threads(None)
    device = get_device(args.device)
    results: dict = {"device": describe_device(device), "torch": torch.__version__, **vars(args)}
    results["json"] = str(args.json)
    print(f"{results['device']}: ENet step, {args.size}x{args.size}, B = 8", flush=True)
    with tempfile.TemporaryDirectory(prefix="graphed_step_") as tmp:
        root = Path(tmp) / "data"
        write_dataset(root, slices=args.slices, size=args.size, seed=0)
        for method in ("ce", "descriptors"):
            results[method] = measure(method, args, root)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
