"""benchmarks/same_runs.py tells identical run folders from ones whose numbers differ."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from same_runs import main  # noqa: E402


def _run(folder: Path, loss: str, seconds: str, dsc: float) -> None:
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(f"epoch,train_loss,seconds\n0,{loss},{seconds}\n")
    (folder / "test.json").write_text(
        json.dumps({"volumes": ["v1"], "dsc3d": {"lv": [dsc]}, "test_dsc3d": {"lv": dsc}})
    )


def test_same_numbers_with_other_timings_are_the_same_runs(tmp_path, capsys):
    _run(tmp_path / "a" / "ce", "0.5", "1.0", 0.9)
    _run(tmp_path / "b" / "ce", "0.5", "7.0", 0.9)
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "ce: same" in capsys.readouterr().out


def test_a_changed_loss_a_changed_score_or_a_missing_run_is_reported(tmp_path, capsys):
    _run(tmp_path / "a" / "ce", "0.5", "1.0", 0.9)
    _run(tmp_path / "a" / "descriptors", "0.5", "1.0", 0.9)
    _run(tmp_path / "b" / "ce", "0.50001", "1.0", 0.9)
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    out = capsys.readouterr().out
    assert "ce: DIFFERENT" in out and "train_loss 0.5 != 0.50001" in out
    assert "descriptors: only in" in out
    _run(tmp_path / "c" / "ce", "0.5", "1.0", 0.8)
    assert main([str(tmp_path / "a" / "ce"), str(tmp_path / "c" / "ce")]) == 1
    assert "test.json differs" in capsys.readouterr().out
