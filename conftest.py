"""Test-session settings: fast notebooks, one thread per process, no plot windows."""

import os

os.environ.setdefault("TUTORIAL_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import torch  # noqa: E402

torch.set_num_threads(1)
