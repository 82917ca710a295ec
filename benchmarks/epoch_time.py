"""Time one ACDC-sized training epoch (CE and descriptors) with the real loop, extrapolate 200 epochs.

    python benchmarks/epoch_time.py --device cuda --slices 1900 --size 256 --model enet --batch 8

What runs: `tutorial_lib.train.train` itself, through `tutorial_lib.concurrent_runs.train_runs`
exactly as `reproduce` calls it, with the acdc-ce and acdc-descriptors presets (network, batch size,
augmentation and descriptor terms of the paper; float32 as the ENet presets ask, the data kept on
the GPU), for `--measure-epochs` (2) epochs each, on synthetic cardiac slices written
in the prepared format: `--slices` training slices (toy-cardiac volumes repeated, so generation
stays cheap), about 10 % as many validation slices (ACDC: 10 patients ~ 190 slices) and 2 test
volumes. The first epoch includes warm-up (cuDNN autotuning, allocator, compilation); the last is
the steady-state epoch time (training pass + validation), which is multiplied by 200.
`--jobs 2` (the default on CUDA, as in reproduce) trains the two runs at the same time, so the
pair takes as long as its slower run; `--jobs 1` one after the other (the sum).
`--compile [MODE]` trains with torch.compile (MODE reduce-overhead adds CUDA graphs); `--graph`
in graph mode (the whole step and the validation forward replayed as CUDA graphs,
tutorial_lib.graphs). Target: 200 epochs of both runs in at most 10 minutes on one H200-class GPU.

CPU smoke run: `--device cpu --slices 32 --size 64 --model small_unet --batch 8`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch


def write_dataset(root: Path, *, slices: int, size: int, seed: int) -> dict[str, int]:
    """A prepared-format folder with `slices` training slices; returns slice counts per split."""
    from tutorial_lib.data.storage import VolumeRecord, write_manifest, write_volume
    from tutorial_lib.data.toy.dataset import generate_toy

    n_val = max(8, round(0.1 * slices))
    base = generate_toy("toy-cardiac", size=size, n_patients=24, seed=seed)
    records, counts = [], {"train": 0, "val": 0, "test": 0}
    wanted = {"train": slices, "val": n_val, "test": 1}
    i = 0
    for split in ("train", "val", "test"):
        n_volumes = 0
        while counts[split] < wanted[split] or (split == "test" and n_volumes < 2):
            v = base[i % len(base)]
            vid = f"{split}{n_volumes:04d}"
            write_volume(root / split, vid, v.image, v.label, v.spacing)
            records.append(
                VolumeRecord(vid, vid, split, len(v.image), list(v.image.shape), list(v.spacing))
            )
            counts[split] += len(v.image)
            n_volumes += 1
            i += 1
    write_manifest(root, "acdc", ["background", "rv", "myocardium", "lv"], size, records)
    return counts


def main() -> int:
    from tutorial_lib.commands.options import add_compile_option

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--slices", type=int, default=1900)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--model", default="enet")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=200, help="epochs to extrapolate to")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--measure-epochs", type=int, default=2, help="epochs trained; the last one is timed"
    )
    parser.add_argument(
        "--jobs", type=int, choices=(1, 2), default=None, help="runs at once (as reproduce)"
    )
    add_compile_option(parser)
    parser.add_argument("--graph", action="store_true", help="graph mode (CUDA graphs)")
    parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = parser.parse_args()

    from tutorial_lib.concurrent_runs import default_jobs, train_runs
    from tutorial_lib.device import describe_device, get_device, set_cpu_threads
    from tutorial_lib.presets import get_preset
    from tutorial_lib.runlog import read_metrics

    set_cpu_threads(args.threads)
    try:
        device = get_device(args.device)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    name = describe_device(device)
    results: dict[str, object] = {"device": name, "torch": torch.__version__, **vars(args)}
    with tempfile.TemporaryDirectory(prefix="epoch_time_") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        counts = write_dataset(tmp / "data", slices=args.slices, size=args.size, seed=0)
        results["slices"] = counts
        results["data_seconds"] = time.perf_counter() - start
        print(f"{name}: data {counts} written in {results['data_seconds']:.1f} s", flush=True)
        configs = {}
        for method in ("ce", "descriptors"):
            preset = get_preset(f"acdc-{method}")
            configs[method] = dataclasses.replace(
                preset,
                name=f"epoch-time-{method}",
                model=args.model,
                batch_size=args.batch,
                epochs=args.measure_epochs,
                data=dataclasses.replace(preset.data, size=args.size, max_train_slices=args.slices),
            )
        jobs = default_jobs(device, 2) if args.jobs is None else args.jobs
        start = time.perf_counter()
        train_runs(
            {m: (cfg, tmp / m) for m, cfg in configs.items()},
            data_root=tmp / "data",
            device=device,
            jobs=jobs,
            progress=False,
            train_options={"compile": args.compile, "graph": args.graph},
        )
        results["jobs"], results["wall_seconds"] = jobs, time.perf_counter() - start
        for method in configs:
            seconds = read_metrics(tmp / method)["seconds"]
            steady = float(seconds[-1])
            results[method] = {
                "epoch_seconds": [float(s) for s in seconds],
                "steady_epoch_seconds": steady,
                "steps_per_second": math.ceil(counts["train"] / args.batch) / steady,
                "extrapolated_minutes": steady * args.epochs / 60,
            }
            print(
                f"  {method:<12} epochs {', '.join(f'{s:.1f}' for s in seconds)} s; steady {steady:.2f} s/epoch "
                f"-> {args.epochs} epochs {steady * args.epochs / 60:.1f} min",
                flush=True,
            )
    minutes = [results[m]["extrapolated_minutes"] for m in configs]
    # at once, the pair takes as long as its slower run; in turn, the sum
    total = max(minutes) if jobs > 1 else sum(minutes)
    results["both_minutes"] = total
    ratio = results["descriptors"]["steady_epoch_seconds"] / results["ce"]["steady_epoch_seconds"]
    results["descriptors_over_ce"] = ratio
    how = "at once, in two processes" if jobs > 1 else "one after the other"
    print(
        f"  both runs {how}, {args.epochs} epochs: {total:.1f} min (target <= 10 min: "
        f"{'met' if total <= 10 else 'NOT met'}); descriptors / CE epoch: {ratio:.2f}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
