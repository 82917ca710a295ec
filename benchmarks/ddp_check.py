"""Data-parallel training against one process, on any device: the tiny runs of the tests.

    python benchmarks/ddp_check.py --device cuda --nproc 1 --json ddp.json   # one GPU: nccl, 1 rank
    python benchmarks/ddp_check.py --device cpu --nproc 2                    # as tests/test_ddp.py

Trains the tiny CE and descriptors runs (`tests/tiny_runs.py`, 21 slices of 32², 2 epochs) once
with `torchrun --nproc_per_node N` (`tests/ddp_worker.py`: the data-parallel path of
`tutorial_lib.train`, SyncBatchNorm on CUDA) and once in this process, then prints the largest
difference of the final weights and of the per-epoch training loss. With one rank on a GPU the
path runs (nccl, SyncBatchNorm, the sharded validation's gather) and the two runs differ only
where cuDNN's kernels are not deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--nproc", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import torch
    from tiny_runs import DDP_DATA, tiny_config

    from tutorial_lib.checkpoint import load_checkpoint
    from tutorial_lib.runlog import read_csv
    from tutorial_lib.train import train

    torch.set_num_threads(1)
    results: dict = {"torch": torch.__version__, **{k: str(v) for k, v in vars(args).items()}}
    with tempfile.TemporaryDirectory(prefix="ddp_check_") as tmp:
        tmp = Path(tmp)
        for method in ("ce", "descriptors"):  # first: the toy data is generated here, once
            config = tiny_config(method, data=DDP_DATA, epochs=args.epochs)
            train(config, out_dir=tmp / "single" / method, device=args.device, progress=False)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DDP_DEVICE": args.device}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += [f"--nproc_per_node={args.nproc}", str(ROOT / "tests" / "ddp_worker.py")]
        start = time.perf_counter()
        done = subprocess.run([*command, str(tmp / "ddp"), str(args.epochs)], env=env)
        results["torchrun_seconds"] = time.perf_counter() - start
        results["torchrun_exit"] = done.returncode
        if done.returncode != 0:
            print(f"torchrun failed with exit code {done.returncode}")
        for method in ("ce", "descriptors") if done.returncode == 0 else ():
            single, ddp = tmp / "single" / method, tmp / "ddp" / method
            a = load_checkpoint(ddp / "checkpoints" / "last.pt")["model"]
            b = load_checkpoint(single / "checkpoints" / "last.pt")["model"]
            dw = max(float((a[k].double() - b[k].double()).abs().max()) for k in b)
            rows, want = read_csv(ddp / "metrics.csv"), read_csv(single / "metrics.csv")
            dl = max(
                abs(r["train_loss"] - w["train_loss"]) for r, w in zip(rows, want, strict=True)
            )
            summary = json.loads((ddp / "summary.json").read_text())
            results[method] = {
                "max_weight_difference": dw,
                "max_train_loss_difference": dl,
                "ranks": summary["ranks"],
                "device": summary["device"],
            }
            print(
                f"{method:<12} {args.nproc} rank(s) on {summary['device']}: weights within "
                f"{dw:.3g}, train loss within {dl:.3g} of one process"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if results["torchrun_exit"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
