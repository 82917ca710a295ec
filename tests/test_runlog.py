"""Run folders: atomic files and one folder per configuration."""

from __future__ import annotations

import dataclasses

from tutorial_lib.presets import get_preset
from tutorial_lib.runlog import config_run_dir, read_json, runs_root, write_json


def test_run_folder_depends_on_the_configuration_not_on_epochs(tmp_path):
    cfg = get_preset("toy-cardiac-descriptors")
    here = config_run_dir(cfg, tmp_path)
    assert here.parent == tmp_path / "toy-cardiac"
    assert here.name.startswith("toy-cardiac-descriptors-")
    assert config_run_dir(dataclasses.replace(cfg, epochs=3), tmp_path) == here
    assert config_run_dir(dataclasses.replace(cfg, lr=1e-4), tmp_path) != here
    assert config_run_dir(get_preset("toy-cardiac-ce"), tmp_path) != here


def test_runs_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TUTORIAL_RUNS", str(tmp_path / "elsewhere"))
    assert runs_root() == tmp_path / "elsewhere"
    cfg = get_preset("toy-prostate-ce")
    assert config_run_dir(cfg).parent == tmp_path / "elsewhere" / "toy-prostate"


def test_json_is_written_whole(tmp_path):
    path = tmp_path / "sub" / "summary.json"
    write_json(path, {"a": 1, "b": [1.5, 2]})
    assert read_json(path) == {"a": 1, "b": [1.5, 2]}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]  # no temporary left behind
