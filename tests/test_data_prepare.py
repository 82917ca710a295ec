"""The prepare command on fake ACDC / PROMISE12 / MSD trees written by the tests."""

import json
import random

import numpy as np
import pytest
from data_fake_raw import make_fake_acdc, make_fake_msd, make_fake_promise12

from tutorial_lib.cli import main
from tutorial_lib.data.prepare import prepare_dataset, resize_slices
from tutorial_lib.data.splits import split_patients

SIZE = 32
QUIET = dict(size=SIZE, n_val=1, progress=False, log=lambda _: None)  # small, silent runs


@pytest.fixture(scope="module")
def acdc_raw(tmp_path_factory):
    return make_fake_acdc(tmp_path_factory.mktemp("acdc_raw"))


@pytest.fixture(scope="module")
def acdc(acdc_raw, tmp_path_factory):
    dest = tmp_path_factory.mktemp("acdc_out") / "prepared"
    args = ["prepare", "acdc", "--src", str(acdc_raw), "--dest", str(dest), "--size", str(SIZE)]
    assert main([*args, "--val", "1", "--test", "2", "--no-progress"]) == 0
    return dest


def load(dest, record):
    with np.load(dest / record["split"] / f"{record['id']}.npz") as data:
        return {k: data[k] for k in ("image", "label", "spacing")}


def centroid(mask):
    rows, cols = np.nonzero(mask)
    return rows.mean(), cols.mean()


def test_acdc_output_format_shapes_ranges_and_labels(acdc):
    manifest = json.loads((acdc / "manifest.json").read_text())
    assert manifest["dataset"] == "acdc" and manifest["size"] == SIZE
    assert manifest["classes"] == ["background", "rv", "myocardium", "lv"]
    ids = sorted(v["id"] for v in manifest["volumes"])
    assert ids == [f"patient{i:03d}_frame{f:02d}" for i in range(1, 7) for f in (1, 12)]
    for record in manifest["volumes"]:
        data = load(acdc, record)
        assert data["image"].dtype == np.float32 and data["label"].dtype == np.uint8
        assert data["image"].shape == (record["n_slices"], SIZE, SIZE) == data["label"].shape
        assert data["image"].min() >= 0 and data["image"].max() <= 1
        assert set(np.unique(data["label"]).tolist()) == {0, 1, 2, 3}
        assert not data["label"][-1].any()  # the empty apex slice stays empty
        x, y, z = record["original_shape"][1], record["original_shape"][2], record["n_slices"]
        assert record["original_shape"][0] == z
        np.testing.assert_allclose(data["spacing"], [10.0, 1.5625 * x / SIZE, 1.5625 * y / SIZE])
        np.testing.assert_allclose(record["spacing"], data["spacing"])


def test_acdc_image_and_label_stay_aligned_and_oriented(acdc):
    manifest = json.loads((acdc / "manifest.json").read_text())
    for record in manifest["volumes"]:
        data = load(acdc, record)
        image, label = data["image"][0], data["label"][0]
        means = [image[label == c].mean() for c in range(4)]
        assert means == sorted(means) and means[3] - means[0] > 0.5
        # the fake blob sits at 0.35 of NIfTI axis 0 and 0.6 of axis 1 -> rows, cols
        row, col = centroid(label > 0)
        assert abs(row / SIZE - 0.35) < 0.05 and abs(col / SIZE - 0.6) < 0.05


def test_acdc_split_is_by_patient_disjoint_and_skips_testing(acdc):
    manifest = json.loads((acdc / "manifest.json").read_text())
    by_split = {}
    for v in manifest["volumes"]:
        by_split.setdefault(v["split"], set()).add(v["patient"])
    assert {k: len(v) for k, v in by_split.items()} == {"train": 3, "val": 1, "test": 2}
    assert not set.intersection(*by_split.values())
    assert "patient007" not in set.union(*by_split.values())  # below database/testing
    assert split_patients([f"patient{i:03d}" for i in range(1, 7)], 1, 2, 0)["val"] == sorted(
        by_split["val"]
    )


def test_split_matches_the_authors_global_random_procedure():
    ids = [f"patient{i:03d}" for i in range(1, 101)]
    reference = sorted(ids)
    random.seed(0)
    random.shuffle(reference)
    split = split_patients(reversed(ids), 10, 20, seed=0)
    assert split["val"] == sorted(reference[:10]) and split["test"] == sorted(reference[10:30])
    assert len(split["train"]) == 70
    with pytest.raises(
        ValueError,
        match=(
            r"^n_val, n_test: expected n_val \+ n_test < number of patients \(6\).*, "
            "got n_val=3, n_test=3$"
        ),
    ):
        split_patients(ids[:6], 3, 3)


def test_preparation_is_deterministic(acdc_raw, acdc, tmp_path):
    again = prepare_dataset("acdc", acdc_raw, tmp_path / "again", n_test=2, **QUIET)
    assert (again / "manifest.json").read_text() == (acdc / "manifest.json").read_text()
    for record in json.loads((acdc / "manifest.json").read_text())["volumes"]:
        a, b = load(acdc, record), load(again, record)
        assert all(np.array_equal(a[k], b[k]) for k in a)


def test_promise12_from_metaimage(tmp_path):
    raw = make_fake_promise12(tmp_path / "raw")
    dest = prepare_dataset("promise12", raw, tmp_path / "out", n_test=1, **QUIET)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["classes"] == ["background", "prostate"]
    assert sorted(v["id"] for v in manifest["volumes"]) == [f"Case{i:02d}" for i in range(6)]
    for record in manifest["volumes"]:
        data = load(dest, record)
        assert data["image"].shape == (5, SIZE, SIZE)
        assert set(np.unique(data["label"]).tolist()) == {0, 1}
        np.testing.assert_allclose(data["spacing"][0], 3.6)
        row, col = centroid(data["label"][0] > 0)  # drawn at 0.35 of Y (rows), 0.6 of X (cols)
        assert abs(row / SIZE - 0.35) < 0.05 and abs(col / SIZE - 0.6) < 0.05
        assert data["image"][0][data["label"][0] == 1].mean() > 0.6


def test_promise12_labels_follow_the_authors_unless_nearest_is_asked(tmp_path):
    raw = make_fake_promise12(tmp_path / "raw", n_cases=3)
    authors = prepare_dataset("promise12", raw, tmp_path / "authors", n_test=1, **QUIET)
    nearest = prepare_dataset(
        "promise12", raw, tmp_path / "nearest", n_test=1, label_resize="nearest", **QUIET
    )
    options = json.loads((authors / "manifest.json").read_text())["options"]
    assert options["label_resize"] == "bilinear-truncate"  # the default: their slice_promise.py
    manifest = json.loads((nearest / "manifest.json").read_text())
    assert manifest["options"]["label_resize"] == "nearest"
    areas = [
        (load(nearest, r)["label"].sum(), load(authors, r)["label"].sum())
        for r in manifest["volumes"]
    ]
    assert all(a < n for n, a in areas)  # bilinear-then-truncate erodes the masks
    # the command line: --nearest-labels, and --label-quirk still accepted (the default here)
    for flag, expected in (("--nearest-labels", nearest), ("--label-quirk", authors)):
        dest = tmp_path / flag.strip("-")
        args = ["prepare", "promise12", "--src", str(raw), "--dest", str(dest), flag]
        assert main([*args, "--size", str(SIZE), "--val", "1", "--test", "1", "--no-progress"]) == 0
        for record in manifest["volumes"]:
            assert (load(dest, record)["label"] == load(expected, record)["label"]).all()


def test_acdc_labels_stay_nearest_by_default(acdc):
    assert json.loads((acdc / "manifest.json").read_text())["options"]["label_resize"] == "nearest"
    with pytest.raises(ValueError, match="label_resize: expected one of .* got 'cubic'"):
        prepare_dataset("acdc", acdc, acdc.parent / "x", label_resize="cubic", **QUIET)


def test_resize_nearest_keeps_the_label_set_and_bilinear_the_range():
    rng = np.random.default_rng(0)
    label = rng.integers(0, 4, (2, 37, 53)).astype(np.uint8)
    image = rng.random((2, 37, 53)).astype(np.float32)
    out_image, out_label = resize_slices(image, label, 64)
    assert out_label.shape == (2, 64, 64) and set(np.unique(out_label)) <= {0, 1, 2, 3}
    assert out_image.dtype == np.float32 and 0 <= out_image.min() and out_image.max() <= 1


def test_msd_prostate_uses_t2_and_merges_zones(tmp_path):
    raw = make_fake_msd(tmp_path / "raw")
    dest = prepare_dataset("msd-prostate", raw, tmp_path / "out", n_test=1, **QUIET)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert any("T2" in note for note in manifest["notes"])
    assert len(manifest["volumes"]) == 6
    for record in manifest["volumes"]:
        data = load(dest, record)
        assert set(np.unique(data["label"]).tolist()) == {0, 1}
        inside = data["image"][0][data["label"][0] == 1].mean()
        outside = data["image"][0][data["label"][0] == 0].mean()
        assert inside > outside + 0.3  # T2 (bright structure), not the reversed ADC


def test_corrupt_file_is_named_and_leaves_no_output(acdc_raw, tmp_path, capsys):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(acdc_raw, raw)
    bad = raw / "database" / "training" / "patient004" / "patient004_frame12.nii.gz"
    bad.write_bytes(bad.read_bytes()[:200])
    dest = tmp_path / "out" / "prepared"
    args = ["prepare", "acdc", "--src", str(raw), "--dest", str(dest), "--size", str(SIZE)]
    assert main([*args, "--val", "1", "--test", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "patient004_frame12.nii.gz" in err
    assert not dest.exists() and list((tmp_path / "out").iterdir()) == []


def test_missing_files_are_named(acdc_raw, tmp_path, capsys):
    import shutil

    raw = tmp_path / "raw"
    shutil.copytree(acdc_raw, raw)
    (raw / "database" / "training" / "patient002" / "patient002_frame01_gt.nii.gz").unlink()
    with pytest.raises(FileNotFoundError, match="patient002_frame01_gt.nii.gz"):
        prepare_dataset("acdc", raw, tmp_path / "out", size=SIZE, n_val=1, n_test=1, progress=False)
    promise = make_fake_promise12(tmp_path / "promise", n_cases=3)
    (promise / "training_data" / "Case01.raw").unlink()
    out = tmp_path / "p_out"
    assert (
        main(
            [
                "prepare",
                "promise12",
                "--src",
                str(promise),
                "--dest",
                str(out),
                "--val",
                "1",
                "--test",
                "1",
                "--size",
                str(SIZE),
                "--no-progress",
            ]
        )
        == 2
    )
    assert "Case01" in capsys.readouterr().err and not out.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="patientNNN folders below"):
        prepare_dataset("acdc", empty, tmp_path / "x", progress=False)


def test_existing_output_is_kept_unless_overwrite(acdc_raw, acdc, tmp_path):
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare_dataset("acdc", acdc_raw, acdc, size=SIZE, n_val=1, n_test=2, progress=False)
    assert (acdc / "manifest.json").is_file()


def _tree(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_overwrite_replaces_an_earlier_output(acdc_raw, tmp_path):
    dest = tmp_path / "prepared"
    prepare_dataset("acdc", acdc_raw, dest, n_test=2, **QUIET)
    (dest / "train").joinpath("patient001_frame01.npz").unlink(missing_ok=True)  # a partial one
    prepare_dataset("acdc", acdc_raw, dest, n_test=2, overwrite=True, **QUIET)
    manifest = json.loads((dest / "manifest.json").read_text())
    for record in manifest["volumes"]:
        assert (dest / record["split"] / f"{record['id']}.npz").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["prepared"]  # no temporary folder left


def test_overwrite_keeps_a_folder_holding_other_files(acdc_raw, tmp_path, capsys):
    dest = tmp_path / "prepared"
    prepare_dataset("acdc", acdc_raw, dest, n_test=2, **QUIET)
    (dest / "notes.txt").write_text("mine")
    (dest / "train" / "extra.npz").write_bytes(b"mine too")
    before = _tree(dest)
    args = ["prepare", "acdc", "--src", str(acdc_raw), "--dest", str(dest), "--size", str(SIZE)]
    assert main([*args, "--val", "1", "--test", "2", "--overwrite", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "notes.txt" in err and "extra.npz" in err and "Traceback" not in err
    assert _tree(dest) == before
    # a folder without a manifest is not an earlier output either
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    assert main([*args[:5], str(other), *args[6:], "--val", "1", "--test", "2", "--overwrite"]) == 2
    assert (other / "thesis.tex").read_text() == "keep me"


@pytest.mark.parametrize("layout", ["dest_contains_src", "src_contains_dest", "same"])
def test_dest_and_src_must_be_apart(acdc_raw, tmp_path, capsys, layout):
    import shutil

    outer = tmp_path / "outer"
    shutil.copytree(acdc_raw, outer / "raw")
    (outer / "unrelated.txt").write_text("keep me")
    src, dest = {
        "dest_contains_src": (outer / "raw", outer),
        "src_contains_dest": (outer, outer / "prepared"),
        "same": (outer, outer),
    }[layout]
    before = _tree(outer)
    args = ["prepare", "acdc", "--src", str(src), "--dest", str(dest), "--size", str(SIZE)]
    assert main([*args, "--val", "1", "--test", "2", "--overwrite", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --dest: expected a folder apart from --src") and "\n" == err[-1]
    assert _tree(outer) == before


def test_a_dest_that_is_a_file_is_a_bad_input(acdc_raw, tmp_path, capsys):
    dest = tmp_path / "file.txt"
    dest.write_text("mine")
    args = ["prepare", "acdc", "--src", str(acdc_raw), "--dest", str(dest), "--size", str(SIZE)]
    assert main([*args, "--val", "1", "--test", "2", "--overwrite", "--no-progress"]) == 2
    assert "it is a file" in capsys.readouterr().err and dest.read_text() == "mine"
