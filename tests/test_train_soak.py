"""Soak (short): a tiny run killed 10 times at random moments (SIGKILL, half of them inside a
write of a checkpoint or another run file) and resumed each time ends with the `metrics.csv` (but
its timings) and the `test.json` of an uninterrupted run. `benchmarks/soak_resume.py` does 50."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from soak_resume import soak  # noqa: E402


@pytest.mark.skipif(os.name != "posix", reason="fork and SIGKILL: POSIX")
def test_killed_and_resumed_runs_end_as_the_uninterrupted_run(tmp_path):
    result = soak(tmp_path, kills=10, seed=1)
    assert result["killed"] >= 5, result  # every other process was killed inside a write...
    assert result["starts_with_temporaries"] >= 5, result  # ...left its temporary file...
    assert result["last_exit_code"] == 0 and result["temporaries_at_end"] == 0, result  # ...cleaned
    assert result["metrics_difference"] is None, result
    assert result["same_test_json"], result
