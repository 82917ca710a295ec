"""Count the aten operations of one training step, part by part: a CPU proxy for GPU launch cost.

    OMP_NUM_THREADS=1 python benchmarks/step_ops.py [--size 256] [--path cuda|cpu] [--json FILE]

What is counted: every aten operation dispatched (seen by a ``TorchDispatchMode``) during one
training step of the ``acdc-ce`` and ``acdc-descriptors`` presets (ENet, B = 8, 4 classes), done
as ``tutorial_lib.train`` does it, split into parts:

- ``batch``: index the training tensors and move them to the device (``_train_epoch``);
- ``augment``: ``tutorial_lib.data.augment.augment_batch`` with the preset's ``augment`` config;
- ``forward``: the network under the run's autocast, then ``logits.float()`` (``_step``);
- ``loss``: softmax + ``ShapeDescriptorLoss``, or ``cross_entropy_loss`` (``_step``);
- ``backward``: ``zero_grad(set_to_none=True)`` + ``loss.backward()`` (``_step``);
- ``adam``: ``optimizer.step()`` (``_step``);
- ``metrics``: the per-step bookkeeping of ``_train_epoch`` (non-finite flag, running loss,
  training DSC from ``dice_counts`` / ``dice_from_counts``, the loss's ``last_stats``).

One step runs first, uncounted (Adam creates its state there). Then ``train._step`` is also
counted as a whole, to check that the parts above still add up to what ``train`` does.

Per part three numbers: ``all`` ops; ``kernel`` ops, those that would launch a GPU kernel (all
ops minus ``KERNEL_FREE_OPS`` and minus ops on host-side tensors, see below); ``syncs``, the ops
that read a device value back to the host (``_local_scalar_dense`` / ``.tolist()`` of a device
tensor), each of which stalls the CPU until the GPU is done.

Why a proxy: on a GPU the ENet step at 256x256 is launch-bound, the CPU issues ~1,000 small
kernels per step and each costs ~30 us of wall time however little work it does. The count of
kernel ops does not depend on the image size (use ``--size 64`` for speed) and needs no GPU. It is
a lower bound on launches: a ``_foreach_*`` op launches one kernel per chunk of tensors, cuDNN
may launch several kernels for one convolution, and the copies hidden inside ``torch.tensor(...,
device=...)`` are not dispatched as aten ops.

``--path cuda`` (default) counts the code path that ``train`` takes on CUDA, emulated on the CPU:
channels_last, bfloat16 autocast (the CPU autocast as a stand-in; its lists of cast ops are close
to CUDA's), Adam's ``foreach`` implementation (the default on CUDA), step counters of Adam on the
host (as on CUDA without ``capturable``) and the non-finite check every ``CHECK_EVERY`` steps
(none in the counted step). ``--path cpu`` counts the CPU path (per-tensor Adam, a check per step).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

KERNEL_FREE_OPS: frozenset[str] = frozenset(
    {
        # views and other metadata-only results (a new tensor header over the same storage)
        "aten.view",
        "aten._unsafe_view",
        "aten.reshape",
        "aten._reshape_alias",
        "aten.view_as",
        "aten.detach",
        "aten.alias",
        "aten.slice",
        "aten.select",
        "aten.narrow",
        "aten.unsqueeze",
        "aten.squeeze",
        "aten.expand",
        "aten.expand_as",
        "aten.permute",
        "aten.t",
        "aten.transpose",
        "aten.as_strided",
        "aten.diagonal",
        "aten.split",
        "aten.split_with_sizes",
        "aten.unbind",
        "aten.chunk",
        "aten.unfold",
        "aten.real",
        "aten.view_as_real",
        "aten.resolve_conj",
        "aten.resolve_neg",
        # allocation without initialisation (the caching allocator, no kernel)
        "aten.empty",
        "aten.empty_like",
        "aten.empty_strided",
        "aten.new_empty",
        "aten.new_empty_strided",
        # wrapping a host value that is already a tensor (torch.tensor of Python numbers)
        "aten.lift_fresh",
        # a Python number wrapped as a host scalar (torch.where(c, x, 0.0), autograd's where):
        # kernels take it as an argument
        "aten.scalar_tensor",
        # queries answered from metadata
        "aten.promote_types",
        "aten.is_same_size",
        "aten._has_compatible_shallow_copy_type",
        "aten.sym_size",
        "aten.sym_stride",
        "aten.sym_numel",
        # profiler annotations (record_function around optimizer.step)
        "profiler._record_function_enter",
        "profiler._record_function_enter_new",
        "profiler._record_function_exit",
    }
)
"""aten ops that launch no GPU kernel: views, uninitialised allocations, metadata, profiler marks.

``aten._local_scalar_dense`` (``.item()``, ``bool(t)``) is not listed: on a device tensor it is a
copy to the host and a synchronisation (counted as a kernel op and as a sync); on a host tensor
(``OpCounter``'s ``host_tensors``) it is free, like every op whose tensors are all on the host.
"""

SYNC_OPS = frozenset({"aten._local_scalar_dense"})
PARTS = ("batch", "augment", "forward", "loss", "backward", "adam", "metrics")
PRESETS = ("acdc-ce", "acdc-descriptors")


def op_name(func: Any) -> str:
    """``"aten.add"`` for ``aten.add.Tensor``: the namespace and the name, without the overload."""
    packet = func.overloadpacket
    return f"{func.namespace}.{packet.__name__}"


class OpCounter(TorchDispatchMode):
    """Counts the ops dispatched while active, per ``part`` (set with ``with counter.part(name)``).

    ``host_tensors``: tensors that live in host memory on the emulated device (e.g. Adam's step
    counters on CUDA); an op on them (other tensor arguments, if any, 0-dim scalars) launches no
    kernel.
    ``counts[part]`` holds ``Counter``s ``all``, ``kernel`` and ``sync`` keyed by op name.
    """

    def __init__(self, host_tensors: Iterable[torch.Tensor] = ()) -> None:
        super().__init__()
        self._host = {id(t): t for t in host_tensors}  # the values keep the ids alive
        self._part = "all"
        self.counts: dict[str, dict[str, Counter]] = {}

    @contextmanager
    def part(self, name: str):
        previous, self._part = self._part, name
        try:
            yield
        finally:
            self._part = previous

    def _on_host(self, args: tuple, kwargs: dict) -> bool:
        """True when the op touches a host tensor and otherwise only 0-dim tensors (scalars)."""
        tensors = [x for x in tree_leaves((args, kwargs)) if isinstance(x, torch.Tensor)]
        on_host = [id(t) in self._host for t in tensors]
        return any(on_host) and all(h or t.ndim == 0 for h, t in zip(on_host, tensors, strict=True))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = op_name(func)
        counts = self.counts.setdefault(
            self._part, {"all": Counter(), "kernel": Counter(), "sync": Counter()}
        )
        counts["all"][name] += 1
        if name not in KERNEL_FREE_OPS and not self._on_host(args, kwargs):
            counts["kernel"][name] += 1
            if name in SYNC_OPS:
                counts["sync"][name] += 1
        return func(*args, **kwargs)

    def totals(self, part: str) -> dict[str, int]:
        counts = self.counts.get(part)
        if counts is None:
            return {"all": 0, "kernel": 0, "sync": 0}
        return {key: sum(c.values()) for key, c in counts.items()}


def count_ops(fn: Callable[[], Any], host_tensors: Iterable[torch.Tensor] = ()) -> dict[str, int]:
    """Run ``fn()`` once under an ``OpCounter``; return its totals (``all``, ``kernel``, ``sync``)."""
    counter = OpCounter(host_tensors)
    with counter:
        fn()
    return counter.totals("all")


# ----------------------------------------------------------------------------------------------
# One training step, part by part, as tutorial_lib.train does it
# ----------------------------------------------------------------------------------------------
def _toy_batch(size: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Toy cardiac slices (4 classes) at the asked size: float32 images, uint8 labels, as loaded."""
    from tutorial_lib.data.toy.dataset import generate_toy

    volumes = generate_toy("toy-cardiac", size=size, n_patients=3, seed=seed)
    images = torch.cat([torch.as_tensor(v.image) for v in volumes]).unsqueeze(1).float()
    labels = torch.cat([torch.as_tensor(v.label) for v in volumes]).to(torch.uint8)
    n = 2 * batch  # two batches: a warm-up step and the counted step
    if images.shape[0] < n:
        raise ValueError(f"expected at least {n} toy slices, got {images.shape[0]}")
    return images[:n].contiguous(), labels[:n].contiguous(), ["bg", "rv", "myo", "lv"]


def count_step(preset: str, *, size: int, path: str, seed: int = 0) -> dict[str, Any]:
    """Op counts of one training step of ``preset`` (see the module docstring)."""
    from tutorial_lib import train as train_module
    from tutorial_lib.data.augment import augment_batch
    from tutorial_lib.data.datasets import SliceSet
    from tutorial_lib.evaluation import autocast_context
    from tutorial_lib.losses import cross_entropy_loss
    from tutorial_lib.presets import get_preset
    from tutorial_lib.run_setup import TrainData, build_run

    cfg = get_preset(preset)
    if path == "cuda":  # what the preset resolves to on CUDA: "auto" = bf16, None = channels_last
        cfg = dataclasses.replace(
            cfg,
            channels_last=True if cfg.channels_last is None else cfg.channels_last,
            amp="off" if cfg.amp == "off" else "bf16",
        )
    else:
        cfg = dataclasses.replace(cfg, channels_last=False, amp="off")
    images, labels, class_names = _toy_batch(size, cfg.batch_size, seed)
    device = torch.device("cpu")
    n = images.shape[0]
    val = SliceSet(images, labels, ["v"] * n, torch.arange(n), torch.ones(n, 3), class_names)
    data = TrainData(Path("."), class_names, images, labels, None, val)
    run = build_run(cfg, device=device, data=data)
    if path == "cuda":  # what train picks on CUDA: the fused Adam
        run.optimizer = torch.optim.Adam(
            run.model.parameters(), lr=cfg.lr, betas=tuple(cfg.betas), fused=True
        )
    check_every = 1 if path == "cpu" else train_module.CHECK_EVERY
    t = run.t
    run.model.train()
    totals = train_module.EpochTotals(run.class_names, run.selection_classes, device)
    order = torch.arange(images.shape[0])
    batches = order.split(cfg.batch_size)

    def step(index: torch.Tensor, counter: OpCounter | None) -> None:
        def part(name: str):
            return counter.part(name) if counter is not None else _nothing()

        with part("batch"):
            x, y = train_module.load_batch(images, labels, index, device)
        with part("augment"):
            x, y = augment_batch(x, y, run.generators["augment"], cfg.augment)
        with part("forward"):  # train._step
            if run.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast_context(run.device, run.amp_dtype):
                logits = run.model(x)
            logits = logits.float()
        with part("loss"):
            if run.loss_fn is None:
                loss = cross_entropy_loss(logits, y)
            else:
                loss = run.loss_fn(torch.softmax(logits, dim=1), y, t, spacing=None)
        with part("backward"):
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with part("adam"):
            run.optimizer.step()
            loss, logits = loss.detach(), logits.detach()  # the end of _step
        with part("metrics"):  # train._train_epoch, after _step
            stats = run.loss_fn.last_stats if run.loss_fn is not None else None
            totals.add(loss, logits, y, stats)
            if totals.steps % check_every == 0 and bool(totals.bad):
                raise RuntimeError("non-finite loss")

    step(batches[0], None)  # warm-up: Adam's state, caches of the loss
    host = [s["step"] for s in run.optimizer.state.values()]  # Adam keeps them on the host
    counter = OpCounter(host)
    with counter:
        step(batches[1], counter)
    parts = {name: counter.totals(name) for name in PARTS}

    # consistency: train._step as a whole against the sum of its four parts
    x = images[batches[0]]
    y = labels[batches[0]].long()
    whole = OpCounter(host)
    with whole:
        train_module._step(run, x, y, t, None)
    expected = sum(parts[name]["all"] for name in ("forward", "loss", "backward", "adam"))
    return {
        "preset": preset,
        "path": path,
        "size": size,
        "batch": cfg.batch_size,
        "parts": parts,
        "ops": {name: dict(counter.counts.get(name, {}).get("kernel", {})) for name in PARTS},
        "train_step_all": whole.totals("all")["all"],
        "train_step_matches": whole.totals("all")["all"] == expected,
    }


@contextmanager
def _nothing():
    yield


def _table(results: list[dict[str, Any]]) -> str:
    head = f"{'part':<10}" + "".join(f"{r['preset']:>30}" for r in results)
    sub = f"{'':<10}" + "".join(f"{'all':>10}{'kernel':>10}{'syncs':>10}" for _ in results)
    lines = [head, sub]
    for name in (*PARTS, "total"):
        row = f"{name:<10}"
        for r in results:
            p = r["parts"]
            values = (
                {k: sum(p[n][k] for n in PARTS) for k in ("all", "kernel", "sync")}
                if name == "total"
                else p[name]
            )
            row += f"{values['all']:>10}{values['kernel']:>10}{values['sync']:>10}"
        lines.append(row)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, default=256, help="image side (counts do not depend on it)"
    )
    parser.add_argument("--path", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--presets", nargs="+", default=list(PRESETS))
    parser.add_argument("--ops", action="store_true", help="also list the kernel ops of each part")
    parser.add_argument("--json", type=Path, help="write the counts to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)

    results = [count_step(p, size=args.size, path=args.path) for p in args.presets]
    print(
        f"aten ops of one training step, {args.path} path, {args.size}x{args.size}, B = {results[0]['batch']}"
    )
    print(_table(results))
    for r in results:
        if not r["train_step_matches"]:
            print(
                f"warning: {r['preset']}: train._step dispatches {r['train_step_all']} ops, not the "
                "sum of forward + loss + backward + adam: this script no longer mirrors train.py"
            )
    if args.ops:
        for r in results:
            for name in PARTS:
                ops = sorted(r["ops"][name].items(), key=lambda kv: (-kv[1], kv[0]))
                print(f"\n{r['preset']} / {name}: " + ", ".join(f"{k} {v}" for k, v in ops))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
