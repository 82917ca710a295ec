"""Prepared volumes are checked when read: damaged files, wrong dtypes or shapes, NaN pixels,
labels outside the classes and volume ids leaving the folder are bad inputs named with their file."""

import json
import shutil

import numpy as np
import pytest

from tutorial_lib.cli import main
from tutorial_lib.data.datasets import load_split
from tutorial_lib.data.storage import CorruptFileError, read_volume
from tutorial_lib.data.toy.dataset import make_toy_dataset


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("storage") / "toy"
    return make_toy_dataset("toy-cardiac", path, size=32, n_patients=5, seed=0)


@pytest.fixture
def root(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "toy")


def first_train_volume(root):
    manifest = json.loads((root / "manifest.json").read_text())
    record = next(v for v in manifest["volumes"] if v["split"] == "train")
    return root / "train" / f"{record['id']}.npz"


def rewrite(path, **changes):
    with np.load(path) as data:
        arrays = {k: data[k] for k in ("image", "label", "spacing")}
    arrays.update(changes)
    with open(path, "wb") as handle:
        np.savez(handle, **{k: v for k, v in arrays.items() if v is not None})


def damage(path, how):
    with np.load(path) as data:
        image, label = data["image"], data["label"]
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(2000))
    elif how == "pickled object":
        rewrite(path, image=np.array([{"a": 1}], dtype=object))
    elif how == "missing label":
        rewrite(path, label=None)
    elif how == "float64 image":
        rewrite(path, image=image.astype(np.float64))
    elif how == "2-D image":
        rewrite(path, image=image[0], label=label[0])
    elif how == "label shape":
        rewrite(path, label=label[:, :-1])
    elif how == "float label":
        rewrite(path, label=label.astype(np.float32))
    elif how == "NaN pixel":
        image = image.copy()
        image[0, 3, 3] = np.nan
        rewrite(path, image=image)
    elif how == "label outside the classes":
        rewrite(path, label=np.where(label == 1, 7, label).astype(np.uint8))
    elif how == "negative label":
        rewrite(path, label=np.where(label == 1, -1, label.astype(np.int16)))
    elif how == "zero spacing":
        rewrite(path, spacing=np.array([10.0, 0.0, 1.0]))


DAMAGES = {
    "truncated": "cannot be read",
    "garbage": "cannot be read",
    "pickled object": "cannot be read",
    "missing label": "cannot be read",
    "float64 image": "expected image float32",
    "2-D image": "expected image float32",
    "label shape": "expected label of an integer type",
    "float label": "expected label of an integer type",
    "NaN pixel": "expected a finite image, got 1 NaN or inf pixels",
    "label outside the classes": r"expected labels in \[0, 3\]",
    "negative label": r"expected labels in \[0, 3\].*\[-1, ",
    "zero spacing": "expected spacing of 3 positive finite mm",
}


@pytest.mark.parametrize("how", DAMAGES)
def test_every_damaged_volume_is_a_bad_input_naming_its_file(root, how):
    path = first_train_volume(root)
    damage(path, how)
    with pytest.raises(CorruptFileError, match=DAMAGES[how]) as info:
        load_split(root, "train")
    message = str(info.value)
    assert message.startswith(f"{path}: expected ")
    assert "run `prepare` again" in message and "allow_pickle" not in message


def test_an_integer_label_type_within_the_classes_is_accepted_as_uint8(root):
    path = first_train_volume(root)
    with np.load(path) as data:
        label = data["label"]
    rewrite(path, label=label.astype(np.int64))
    volume = read_volume(root, "train", path.stem, n_classes=4)
    assert volume["label"].dtype == np.uint8 and np.array_equal(volume["label"], label)
    assert load_split(root, "train").labels.dtype.is_floating_point is False


@pytest.mark.parametrize("bad_id", ["../../outside", "sub/vol", "..", ".hidden", ""])
def test_manifest_ids_must_stay_inside_the_folder(root, bad_id):
    outside = root.parent / "outside.npz"
    shutil.copy(first_train_volume(root), outside)  # a readable volume, outside the folder
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["volumes"][0]["id"] = bad_id
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptFileError, match="expected volume ids that are plain file names"):
        load_split(root, manifest["volumes"][0]["split"])
    with pytest.raises(CorruptFileError, match="plain file names"):
        read_volume(root, "train", "../outside")


def test_a_damaged_manifest_is_a_bad_input(root):
    (root / "manifest.json").write_text('{"dataset": "toy-cardiac", "classes": [')
    with pytest.raises(CorruptFileError, match="manifest.json: expected a JSON manifest"):
        load_split(root, "train")


def test_train_on_a_damaged_volume_exits_2_before_writing_anything(root, tmp_path, capsys):
    damage(first_train_volume(root), "NaN pixel")
    out = tmp_path / "run"
    args = ["train", "--preset", "toy-cardiac-ce", "--data", str(root), "--out", str(out)]
    assert main([*args, "--epochs", "1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "NaN or inf pixels" in err and "non-finite loss" not in err
    assert not (out / "config.json").exists()


def test_a_damaged_test_volume_stops_train_before_it_writes_anything(root, tmp_path, capsys):
    manifest = json.loads((root / "manifest.json").read_text())
    record = next(v for v in manifest["volumes"] if v["split"] == "test")
    damage(root / "test" / f"{record['id']}.npz", "label outside the classes")
    out = tmp_path / "run"
    args = ["train", "--preset", "toy-cardiac-ce", "--data", str(root), "--out", str(out)]
    assert main([*args, "--epochs", "1", "--quiet"]) == 2
    assert f"{record['id']}.npz: expected labels in [0, 3]" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
