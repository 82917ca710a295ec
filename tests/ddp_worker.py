"""One rank of a data-parallel tiny run, for tests/test_ddp.py (started by torchrun):

    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT EPOCHS [resume]

Trains the tiny CE and descriptors runs of `tiny_runs` into OUT/ce and OUT/descriptors on the CPU
(gloo), or on the device named by DDP_DEVICE (`cuda`: nccl, rank i on cuda:i). Each rank but 0 records every file it finishes writing under OUT (an atomic write ends
in `os.replace`) in OUT/writes-rank<r>.json, so the test can check that only rank 0 writes.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from tiny_runs import DDP_DATA, tiny_config  # noqa: E402

from tutorial_lib.train import train  # noqa: E402


def main() -> None:
    out, epochs = Path(sys.argv[1]), int(sys.argv[2])
    resume = sys.argv[3:] == ["resume"]
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    written: list[str] = []
    if rank != 0:
        replace = os.replace

        def recording_replace(src, dst, *args, **kwargs):
            if Path(dst).resolve().is_relative_to(out.resolve()):
                written.append(str(dst))
            return replace(src, dst, *args, **kwargs)

        os.replace = recording_replace
    for method in ("ce", "descriptors"):
        config = tiny_config(method, data=DDP_DATA, epochs=epochs)
        device = os.environ.get("DDP_DEVICE", "cpu")
        train(config, out_dir=out / method, device=device, resume=resume, progress=False)
    if rank != 0:
        os.replace = replace
        (out / f"writes-rank{rank}.json").write_text(json.dumps(written))


if __name__ == "__main__":
    main()
