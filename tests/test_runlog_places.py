"""Where runs go on a read-only clone, and which library version a cached run belongs to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tutorial_lib import runlog
from tutorial_lib.presets import get_preset
from tutorial_lib.runlog import config_run_dir, runs_root


def test_a_writable_working_folder_keeps_its_runs(tmp_path, monkeypatch):
    monkeypatch.delenv("TUTORIAL_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runs_root() == Path("runs")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_clone_falls_back_to_the_data_folder(tmp_path, monkeypatch):
    clone = tmp_path / "clone"
    (clone / "notebooks").mkdir(parents=True)
    (clone / "pyproject.toml").write_text("")
    clone.chmod(0o555)  # a shared, read-only clone: ../runs cannot be created
    try:
        monkeypatch.delenv("TUTORIAL_RUNS", raising=False)
        monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.chdir(clone / "notebooks")
        assert runs_root() == tmp_path / "data" / "runs"
    finally:
        clone.chmod(0o755)


def test_when_the_working_folder_is_not_writable_runs_go_to_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("TUTORIAL_RUNS", raising=False)
    monkeypatch.setenv("TUTORIAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(runlog, "_writable", lambda folder: False)
    assert runs_root() == tmp_path / "data" / "runs"


def test_an_unwritable_folder_is_detected(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    assert not runlog._writable(tmp_path / "runs")
    monkeypatch.undo()
    assert runlog._writable(tmp_path / "not" / "yet" / "there")


def test_the_library_version_is_part_of_a_cached_run_key(tmp_path, monkeypatch):
    cfg = get_preset("toy-cardiac-ce")
    now = config_run_dir(cfg, tmp_path)
    monkeypatch.setattr(runlog, "__version__", "999.0")
    assert config_run_dir(cfg, tmp_path) != now  # a new version trains afresh
    assert config_run_dir(cfg, tmp_path).parent == now.parent
