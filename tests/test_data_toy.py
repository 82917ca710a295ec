"""Toy dataset generators: determinism, class presence, geometry, the on-disk format, caching."""

import json
import time

import numpy as np
import pytest

from tutorial_lib.data import storage
from tutorial_lib.data.datasets import load_split
from tutorial_lib.data.toy.dataset import (
    ensure_toy_dataset,
    generate_toy,
    make_toy_dataset,
    toy_spacing,
)
from tutorial_lib.data.toy.options import ToyCardiacOptions


@pytest.mark.parametrize("name", ["toy-cardiac", "toy-prostate"])
def test_same_seed_same_volumes_other_seed_differs(name):
    a = generate_toy(name, size=32, n_patients=4, seed=3)
    b = generate_toy(name, size=32, n_patients=4, seed=3)
    c = generate_toy(name, size=32, n_patients=4, seed=4)
    assert [v.id for v in a] == [v.id for v in b]
    for va, vb in zip(a, b, strict=True):
        np.testing.assert_array_equal(va.image, vb.image)
        np.testing.assert_array_equal(va.label, vb.label)
    assert not np.array_equal(a[0].label, c[0].label)


@pytest.mark.parametrize("name", ["toy-cardiac", "toy-prostate"])
def test_each_volume_is_min_max_normalised_float32_with_uint8_labels(name):
    for v in generate_toy(name, size=48, n_patients=3, seed=0):
        assert v.image.dtype == np.float32 and v.label.dtype == np.uint8
        assert v.image.shape == v.label.shape and v.image.shape[1:] == (48, 48)
        assert v.image.min() == 0.0 and v.image.max() == 1.0


def test_cardiac_classes_present_and_some_apex_slices_lack_rv_or_lv():
    volumes = generate_toy("toy-cardiac", size=64, n_patients=20, seed=0)
    per_slice = [set(np.unique(s).tolist()) for v in volumes for s in v.label]
    full = sum(s == {0, 1, 2, 3} for s in per_slice)
    assert full / len(per_slice) > 0.7
    assert all(2 in s for s in per_slice)  # the myocardium is in every slice
    apex = [set(np.unique(v.label[-1]).tolist()) for v in volumes]
    assert any(1 not in s for s in apex) and any(3 not in s for s in apex)
    base = [set(np.unique(v.label[0]).tolist()) for v in volumes]
    assert all(s == {0, 1, 2, 3} for s in base)


def test_cardiac_volumes_shrink_from_base_to_apex():
    for v in generate_toy("toy-cardiac", size=64, n_patients=5, seed=1):
        heart = (v.label > 0).reshape(len(v.label), -1).sum(1)
        assert heart[0] > heart[-1]


def test_cardiac_ring_is_thick_enough_to_resolve_at_64_pixels():
    thickness = []
    for v in generate_toy("toy-cardiac", size=64, n_patients=10, seed=2):
        for s in v.label:
            lv, myo = (s == 3).sum(), (s == 2).sum()
            if lv > 0:
                thickness.append(np.sqrt((lv + myo) / np.pi) - np.sqrt(lv / np.pi))
    assert np.median(thickness) >= 4.5


def test_cardiac_blood_is_brighter_than_myocardium():
    for v in generate_toy("toy-cardiac", size=64, n_patients=3, seed=0):
        assert v.image[v.label == 3].mean() > v.image[v.label == 2].mean() + 0.2
        assert v.image[v.label == 1].mean() > v.image[v.label == 2].mean() + 0.2


def test_prostate_gland_absent_at_both_ends_present_in_the_middle():
    for v in generate_toy("toy-prostate", size=48, n_patients=6, seed=0):
        present = v.label.reshape(len(v.label), -1).any(1)
        assert not present[0] and not present[-1]
        assert present[len(present) // 2 - 2 : len(present) // 2 + 2].any()
        assert set(np.unique(v.label).tolist()) == {0, 1}


def test_shape_options_change_the_shapes_and_bad_options_are_rejected():
    thin = generate_toy("toy-cardiac", size=64, n_patients=2, seed=0, myo_thickness=(0.03, 0.03))
    thick = generate_toy("toy-cardiac", size=64, n_patients=2, seed=0)
    assert (thin[0].label == 2).sum() < (thick[0].label == 2).sum()
    with pytest.raises(
        ValueError,
        match=(
            r"^ToyCardiacOptions: expected options among .*, "
            r"got unknown option\(s\) \['lv_radiuss'\]$"
        ),
    ):
        generate_toy("toy-cardiac", size=32, n_patients=2, lv_radiuss=(0.1, 0.2))
    with pytest.raises(
        ValueError, match=r"^ToyCardiacOptions.lv_radius: expected .*low <= high, got \(0.2, 0.1\)$"
    ):
        ToyCardiacOptions(lv_radius=(0.2, 0.1))
    with pytest.raises(ValueError, match="probability"):
        ToyCardiacOptions(apex_lv_absent_prob=1.5)
    with pytest.raises(ValueError, match="lung_fraction.*probability.*1.5"):
        ToyCardiacOptions(lung_fraction=1.5)
    with pytest.raises(
        ValueError, match="^dataset: expected a toy dataset name in .*, got 'toy-brain'$"
    ):
        generate_toy("toy-brain", size=32, n_patients=2)
    with pytest.raises(ValueError, match="^size: expected an integer image size >= 16, got 8$"):
        generate_toy("toy-cardiac", size=8, n_patients=2)


def test_generation_is_fast():
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        volumes = generate_toy("toy-cardiac", size=64, n_patients=40, seed=0)
        best = min(best, time.perf_counter() - start)
    n_slices = sum(len(v.image) for v in volumes)
    assert n_slices >= 240
    assert n_slices / best > 200  # slices per second; ~1000+ measured on one shared core


def test_make_toy_dataset_writes_the_prepared_format(tmp_path):
    root = make_toy_dataset("toy-cardiac", tmp_path / "toy", size=32, n_patients=10, seed=0)
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["dataset"] == "toy-cardiac" and manifest["size"] == 32
    assert manifest["classes"] == ["background", "rv", "myocardium", "lv"]
    splits = {
        s: {v["patient"] for v in manifest["volumes"] if v["split"] == s} for s in storage.SPLITS
    }
    assert [len(splits[s]) for s in ("train", "val", "test")] == [7, 1, 2]
    assert not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"])
    for record in manifest["volumes"]:
        with np.load(root / record["split"] / f"{record['id']}.npz") as data:
            assert data["image"].dtype == np.float32 and data["label"].dtype == np.uint8
            assert data["image"].shape == (record["n_slices"], 32, 32)
            np.testing.assert_allclose(data["spacing"], toy_spacing("toy-cardiac", 32))
    train = load_split(root, "train")
    assert train.images.shape[1:] == (1, 32, 32) and len(set(train.volume_ids)) == 7


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing_write(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError("disk full")
        return storage.write_volume(*args, **kwargs)

    monkeypatch.setattr("tutorial_lib.data.toy.dataset.write_volume", failing_write)
    with pytest.raises(OSError, match="disk full"):
        make_toy_dataset("toy-prostate", tmp_path / "toy", size=32, n_patients=5, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_ensure_toy_dataset_caches_by_every_parameter(tmp_path):
    first = ensure_toy_dataset("toy-cardiac", tmp_path, size=32, n_patients=4, seed=0)
    stamp = (first / "manifest.json").stat().st_mtime_ns
    again = ensure_toy_dataset("toy-cardiac", tmp_path, size=32, n_patients=4, seed=0)
    assert again == first and (again / "manifest.json").stat().st_mtime_ns == stamp
    other = ensure_toy_dataset(
        "toy-cardiac", tmp_path, size=32, n_patients=4, seed=0, myo_thickness=(0.1, 0.12)
    )
    assert other != first
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, other.name])


def test_existing_folder_is_not_overwritten_silently(tmp_path):
    (tmp_path / "toy").mkdir()
    (tmp_path / "toy" / "keep.txt").write_text("x")
    with pytest.raises(FileExistsError, match="overwrite"):
        make_toy_dataset("toy-cardiac", tmp_path / "toy", size=32, n_patients=4)
    assert (tmp_path / "toy" / "keep.txt").read_text() == "x"
