"""The study tool: the grid expands as asked, bad grids are clear errors, a tiny grid runs end to
end, and an interrupted study resumes (finished cells skipped, a killed run continued) to the
same table."""

from __future__ import annotations

import dataclasses
import json

import pytest
from tiny_runs import tiny_config as tiny

from tutorial_lib import concurrent_runs, presets
from tutorial_lib.cli import main
from tutorial_lib.runlog import config_run_dir, read_csv, read_metrics
from tutorial_lib.study import format_study, read_study, run_study
from tutorial_lib.study_grid import MARGIN_SETS, make_axis, parse_vary, study_cells
from tutorial_lib.train import train

TOY = presets.get_preset("toy-cardiac-descriptors", fast=True)


def _margins(cfg):
    return {t.descriptor: t.margin for t in cfg.terms}


# --------------------------------------------------------------------------- the grid


def test_a_two_by_three_grid_expands_in_order_with_each_seed():
    axes = [parse_vary("penalty=log_barrier,quadratic"), parse_vary("margin_scale=1,5,20")]
    cells = study_cells(TOY, axes, seeds=(0, 1))
    assert len(cells) == 12
    assert [(c.values["penalty"], c.values["margin_scale"], c.seed) for c in cells[:4]] == [
        ("log_barrier", 1.0, 0),
        ("log_barrier", 1.0, 1),
        ("log_barrier", 5.0, 0),
        ("log_barrier", 5.0, 1),
    ]
    last = cells[-1]
    assert last.config.penalty == "quadratic" and last.config.seed == 1
    assert _margins(last.config) == {k: 20 * v for k, v in _margins(TOY).items()}
    assert len({str(config_run_dir(c.config, "r")) for c in cells}) == 12  # a folder per run
    assert last.config.name == TOY.name  # the settings, not the name, tell runs apart
    assert last.config.epochs == TOY.epochs and last.config.data == TOY.data


def test_each_key_changes_what_it_says():
    def one(text):
        (cell,) = study_cells(TOY, [parse_vary(text)])
        return cell.config

    assert _margins(one("margin.centroid+dist_centroid=20")) == {
        **_margins(TOY),
        "centroid": 20.0,
        "dist_centroid": 20.0,
    }
    paper = one("margins=paper")
    assert {t.descriptor: (t.margin, t.mode) for t in paper.terms} == MARGIN_SETS["paper"]
    assert [t.classes for t in paper.terms] == [t.classes for t in TOY.terms]
    assert [t.descriptor for t in one("descriptors=-length").terms] == [
        "size",
        "centroid",
        "dist_centroid",
    ]
    assert [t.descriptor for t in one("descriptors=size+length").terms] == ["size", "length"]
    assert one("descriptors=all").terms == TOY.terms
    assert {t.weight for t in one("weights=equal").terms} == {1e-2}
    assert one("without=init-bias").init_bias == "default" and TOY.init_bias == "class_sizes"
    assert one("without=weights").terms == one("weights=equal").terms
    assert _margins(one("without=tight-margins")) == {
        "size": 0.1,
        "centroid": 20.0,
        "dist_centroid": 20.0,
        "length": 0.1,
    }
    assert one("without=nothing") == dataclasses.replace(TOY, name=one("without=nothing").name)
    assert one("noise=0.1").bound_noise == 0.1
    assert one("size=32").data.size == 32
    assert one("t_factor=1").t_factor == 1.0 and one("epochs=3").epochs == 3
    assert one("init_bias=default").init_bias == "default" and one("lr=0.01").lr == 0.01


@pytest.mark.parametrize(
    ("varies", "match"),
    [
        (
            ["colour=1,2"],
            r"^vary: expected a key among \[.*'margin.NAME\[\+NAME\]'.*\], got 'colour'",
        ),
        (["margin_scale"], r"^vary: expected KEY=VALUE\[,VALUE...\], got 'margin_scale'"),
        (["margin_scale="], r"^vary: expected KEY=VALUE"),
        (["margin_scale=1,x"], r"^vary margin_scale: expected numbers > 0, got 'x'"),
        (["margin_scale=0"], r"^vary margin_scale: expected numbers > 0, got '0'"),
        (["margin_scale=1,1"], r"^vary margin_scale: expected distinct values, got \['1', '1'\]"),
        (["noise=1.5"], r"^vary noise: expected numbers in \[0, 1\], got '1.5'"),
        (
            ["penalty=l1"],
            r"^vary penalty: expected values among \('log_barrier', 'quadratic'\), got 'l1'",
        ),
        (["size=30"], r"^vary size: expected multiples of 4 \(the small_unet's stride\), got 30"),
        (["size=8"], r"^vary size: expected integers >= 16, got '8'"),
        (["epochs=2.5"], r"^vary epochs: expected integers >= 1, got '2.5'"),
        (
            ["margin.spread=1"],
            r"^vary margin.spread: expected descriptors of the base's terms \[.*\], got \['spread'\]",
        ),
        (["descriptors=-colour"], r"^vary descriptors: expected descriptors of the base's terms"),
        (
            ["descriptors=-size+centroid+dist_centroid+length"],
            r"^vary descriptors: expected at least one term left",
        ),
        (
            ["penalty=quadratic", "penalty=log_barrier"],
            r"^vary: expected each key once, got \['penalty', 'penalty'\]",
        ),
        (["t0=1", "lr=1", "epochs=1"], r"^vary: expected one or two axes"),
    ],
)
def test_bad_grids_are_clear_errors(varies, match):
    with pytest.raises(ValueError, match=match):
        study_cells(TOY, [parse_vary(v) for v in varies])


def test_keys_about_descriptors_need_a_descriptors_base_and_seeds_are_checked():
    ce = presets.get_preset("toy-cardiac-ce")
    with pytest.raises(
        ValueError,
        match=r"^vary margins: expected a descriptors base preset, got 'toy-cardiac-ce' \(method 'ce'\)",
    ):
        study_cells(ce, [parse_vary("margins=toy,paper")])
    assert len(study_cells(ce, [parse_vary("init_bias=default,class_sizes")])) == 2
    for seeds in ((), (0, 0), (-1,), 3):
        with pytest.raises(ValueError, match=r"^seeds: expected distinct integers >= 0"):
            study_cells(TOY, [parse_vary("t0=1")], seeds=seeds)
    with pytest.raises(ValueError, match=r"^vary t0: expected one value or more, got \[\]"):
        make_axis("t0", [])
    assert make_axis("t0", [1, 2.5]).values == (1.0, 2.5)  # numbers from Python too


# --------------------------------------------------------------------------- running


def _tiny_study(out, runs, **kwargs):
    base = tiny("descriptors", epochs=2)
    axes = [parse_vary("margin_scale=1,20")]
    return run_study(base, axes, out_dir=out, runs_dir=runs, jobs=1, progress=False, **kwargs)


def _comparable(table):
    """The rows without what differs between two folders or two timings."""
    return [
        {k: v for k, v in r.items() if k not in ("run", "train_seconds")} for r in table["rows"]
    ]


def test_a_tiny_grid_end_to_end(tmp_path):
    table = _tiny_study(tmp_path / "study", tmp_path / "runs")
    assert table["trained"] == 2 and [r["margin_scale"] for r in table["rows"]] == [1.0, 20.0]
    for row in table["rows"]:
        assert row["epochs"] == 2 and row["seed"] == 0 and row["train_seconds"] > 0
        assert 0 <= row["test_dsc3d_mean"] <= 1 and 0 <= row["violated"] <= 1
        assert {"test_dsc3d_rv", "test_hd95_lv", "violation"} <= set(row)
    saved = json.loads((tmp_path / "study" / "table.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(table["rows"]))
    assert read_study(tmp_path / "study")["keys"] == ["margin_scale"]
    csv_rows = read_csv(tmp_path / "study" / "table.csv")
    assert [r["margin_scale"] for r in csv_rows] == [1, 20]
    assert (tmp_path / "study" / "study.png").stat().st_size > 1000
    text = format_study(table)
    assert "margin_scale=1 " in text and "margin_scale=20 " in text
    # run again: every cell is finished, nothing trains, the same table
    again = _tiny_study(tmp_path / "study", tmp_path / "runs")
    assert again["trained"] == 0 and again["rows"] == table["rows"]


def test_an_interrupted_study_resumes_to_the_same_table(tmp_path, monkeypatch):
    reference = _tiny_study(tmp_path / "reference", tmp_path / "runs-reference")
    calls = []
    real_train = concurrent_runs.train

    def stop_at_the_second_run(config, **kwargs):
        calls.append(config)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C while the second cell starts
        return real_train(config, **kwargs)

    monkeypatch.setattr(concurrent_runs, "train", stop_at_the_second_run)
    with pytest.raises(KeyboardInterrupt):
        _tiny_study(tmp_path / "study", tmp_path / "runs", figure=False)
    assert not (tmp_path / "study" / "table.json").exists()
    calls.clear()
    resumed = _tiny_study(tmp_path / "study", tmp_path / "runs")
    assert resumed["trained"] == 1 and len(calls) == 1  # the finished cell was skipped
    assert {t.margin for t in calls[0].terms} == {20.0, 1.0 * 20, 0.05 * 20, 0.1 * 20}
    assert _comparable(resumed) == _comparable(reference)


def test_a_killed_cell_resumes_its_run(tmp_path):
    base, runs = tiny("descriptors", epochs=2), tmp_path / "runs"
    (cell, _) = study_cells(base, [parse_vary("margin_scale=1,20")])
    folder = config_run_dir(cell.config, runs)
    # the cell's run killed after its first epoch: one epoch in its folder
    train(dataclasses.replace(cell.config, epochs=1), out_dir=folder, device="cpu", progress=False)
    first = read_metrics(folder)
    table = _tiny_study(tmp_path / "study", runs)
    assert table["trained"] == 2 and table["rows"][0]["epochs"] == 2
    resumed = read_metrics(folder)
    assert resumed["epoch"] == [0, 1] and resumed["train_loss"][0] == first["train_loss"][0]


def test_cells_with_the_same_settings_share_one_run(tmp_path):
    # (paper-corrected, nothing), (paper-corrected, tight-margins) and (toy, tight-margins) are
    # the same run: 4 cells, 2 runs
    axes = [parse_vary("margins=toy,paper-corrected"), parse_vary("without=nothing,tight-margins")]
    base = tiny("descriptors", epochs=1)
    table = run_study(
        base, axes, out_dir=tmp_path / "s", runs_dir=tmp_path / "r", jobs=1, progress=False
    )
    assert table["trained"] == 2 and len(table["rows"]) == 4
    assert len({r["run"] for r in table["rows"]}) == 2
    assert table["rows"][1]["run"] == table["rows"][2]["run"] == table["rows"][3]["run"]


def test_a_folder_holds_one_study(tmp_path):
    _tiny_study(tmp_path / "study", tmp_path / "runs", figure=False)
    with pytest.raises(
        ValueError, match=r"^out_dir: expected the study in .*study.json .*got a different study"
    ):
        run_study(
            tiny("descriptors", epochs=2),
            [parse_vary("margin_scale=1,5")],
            out_dir=tmp_path / "study",
            runs_dir=tmp_path / "runs",
            jobs=1,
            progress=False,
        )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(
        ValueError, match=r"^out_dir: expected a missing or empty folder, or a study folder"
    ):
        _tiny_study(tmp_path / "mine", tmp_path / "runs")


# --------------------------------------------------------------------------- the command line


def test_the_command_runs_a_tiny_study(tmp_path, monkeypatch, capsys):
    name = "toy-cardiac-descriptors"
    monkeypatch.setitem(
        presets.PRESETS, name, dataclasses.replace(tiny("descriptors", epochs=1), name=name)
    )
    argv = ["study", "--base", name, "--vary", "init_bias=default,class_sizes", "--jobs", "1"]
    code = main([*argv, "--out", str(tmp_path / "study"), "--quiet", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "init_bias=default" in out and "2 of 2 runs trained now" in out
    assert (tmp_path / "study" / "runs").is_dir()  # the cells' runs inside the study by default
    table = read_study(tmp_path / "study")
    assert all(0 <= r["violated"] <= 1 for r in table["rows"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--vary", "colour=red"], "error: vary: expected a key among"),
        (
            ["--vary", "t0=1", "--seeds", "0,x"],
            "error: seeds: expected integers separated by commas, got '0,x'",
        ),
        (["--vary", "t0=1", "--vary", "t0=2"], "error: vary: expected each key once"),
    ],
)
def test_the_command_refuses_bad_grids_with_exit_2(tmp_path, capsys, extra, message):
    argv = ["study", "--base", "toy-cardiac-descriptors", "--out", str(tmp_path / "s"), *extra]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()  # nothing written


# --------------------------------------------------------------------------- the figure


def _table(keys, values, seeds=(0, 1)):
    """A study table without training: Dice = the product of the cell's numbers / 100, per seed."""
    import itertools

    rows = []
    for combo in itertools.product(*values):
        for seed in seeds:
            score = 1.0
            for v in combo:
                score *= v
            row = dict(zip(keys, combo, strict=True))
            row.update(
                seed=seed, test_dsc3d_lv=score / 100 + seed / 100, test_dsc3d_mean=score / 100
            )
            rows.append(row)
    return {
        "base": {"name": "toy"},
        "keys": list(keys),
        "axes": [{"key": k, "values": list(v)} for k, v in zip(keys, values, strict=True)],
        "seeds": list(seeds),
        "rows": rows,
    }


def test_two_keys_make_a_heat_map_of_the_mean_over_the_seeds():
    from tutorial_lib.plots import plot_study, study_means

    table = _table(["a", "b"], [(1.0, 2.0), (3.0, 4.0, 5.0)])
    assert study_means(table, "test_dsc3d_lv")[(2.0, 5.0)] == pytest.approx(0.1 + 0.005)
    fig = plot_study(table)
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    assert grid.shape == (2, 3) and grid[1, 2] == pytest.approx(0.1)  # rows: a, columns: b
    assert sorted(t.get_text() for t in ax.texts)[:2] == ["0.030", "0.040"]
    assert (ax.get_ylabel(), ax.get_xlabel()) == ("a", "b")


def test_one_key_makes_curves_per_class():
    from tutorial_lib.plots import plot_study

    fig = plot_study(_table(["a"], [(1.0, 5.0, 20.0)]))
    lines = {line.get_label(): list(line.get_ydata()) for line in fig.axes[0].lines}
    assert set(lines) == {"lv", "mean"}
    assert lines["mean"] == pytest.approx([0.01, 0.05, 0.2])
