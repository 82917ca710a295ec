"""Weak-label tables in CSV and JSON: round trip, layout, and one clear error per bad input."""

from __future__ import annotations

import json
import math

import pytest
import torch

from tutorial_lib.descriptor_registry import RESERVED
from tutorial_lib.losses import paper_terms
from tutorial_lib.weak_label_files import PRESENT, read_weak_labels, write_weak_labels
from tutorial_lib.weak_labels import WeakLabels, weak_labels_from_masks

IDS = ["p1_s0", "p1_s1", "p2_s0"]


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return torch.equal(a.nan_to_num(-123.0), b.nan_to_num(-123.0))


def example_weak() -> WeakLabels:
    labels = torch.zeros(3, 16, 16, dtype=torch.long)
    labels[0, 2:9, 3:12] = 1
    labels[0, 10:14, 4:8] = 3
    labels[1, 5:11, 5:11] = 2  # image 1: only class 2
    labels[2] = 0  # image 2: background only
    weak = weak_labels_from_masks(labels, 4, paper_terms("acdc"), ids=IDS)
    bounds = {n: b.clone() for n, b in weak.bounds.items()}
    values = {n: v.clone() for n, v in weak.values.items()}
    bounds["size"][0, 1, 0] = torch.tensor([40.0, math.inf])  # a bound instead of the value
    values["size"][0, 1, 0] = math.nan
    bounds["size"][0, 3, 0] = torch.tensor([-math.inf, 30.0])
    values["size"][0, 3, 0] = math.nan
    values["centroid"][1, 2, 1] = math.nan  # one value not given
    present = weak.present.clone()
    present[2, 1] = True  # present, nothing known
    return WeakLabels(values, bounds, present, IDS)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_round_trip(tmp_path, suffix):
    weak = example_weak()
    path = write_weak_labels(tmp_path / f"table{suffix}", weak)
    back = read_weak_labels(path, IDS, 4)
    assert back.ids == tuple(IDS)
    assert torch.equal(back.present, weak.present)
    for name in weak.values:
        assert same(back.values[name], weak.values[name]), name
        assert same(back.bounds[name], weak.bounds[name]), name
    assert [p.name for p in tmp_path.iterdir()] == [f"table{suffix}"]  # no temporary left


def test_the_presence_row_cannot_be_a_descriptor_name():
    assert PRESENT in RESERVED  # register_descriptor refuses it


def test_csv_layout_and_reading_in_another_order(tmp_path):
    write_weak_labels(tmp_path / "t.csv", example_weak())
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert lines[0] == "image,class,descriptor,index,value,lower,upper"
    assert "p1_s0,1,size,0,,40.0," in lines  # a bound, its upper side open
    assert "p1_s0,3,size,0,,,30.0" in lines
    assert "p1_s1,1,present,,0,," in lines  # absent
    assert "p2_s0,1,present,,1,," in lines  # present, nothing known
    back = read_weak_labels(tmp_path / "t.csv", IDS[::-1], 4)  # the rows follow image_ids
    assert torch.equal(back.present, example_weak().present.flip(0))


def test_an_annotator_table(tmp_path):
    """A hand-written table: defaults for index, open sides, JSON numbers and nulls."""
    (tmp_path / "a.csv").write_text(
        "image,class,descriptor,value,lower,upper\n"
        "a,1,size,120,,\n"
        "a,1,centroid,30.5,,\n"  # index left out: 0 (the row)
        "b,2,size,,10,\n"
        "b,0,present,1,,\n"
    )
    weak = read_weak_labels(tmp_path / "a.csv", ["a", "b"], 3)
    assert weak.present.tolist() == [[False, True, False], [True, False, True]]
    assert weak.values["size"][0, 1, 0] == 120 and weak.values["centroid"][
        0, 1
    ].isnan().tolist() == [False, True]
    assert weak.bounds["size"][1, 2, 0].tolist() == [10.0, math.inf]
    rows = [
        {"image": "a", "class": 1, "descriptor": "dist_centroid", "index": 1, "value": 4.25},
        {"image": "b", "class": 1, "descriptor": "size", "lower": None, "upper": 50},
    ]
    (tmp_path / "a.json").write_text(json.dumps(rows))
    weak = read_weak_labels(tmp_path / "a.json", ["a", "b"], 2, dtype=torch.float32)
    assert weak.values["dist_centroid"][0, 1].nan_to_num(0).tolist() == [0.0, 4.25]
    assert weak.bounds["size"][1, 1, 0].tolist() == [-math.inf, 50.0]
    assert weak.values["size"].dtype == torch.float32


HEADER = "image,class,descriptor,index,value,lower,upper\n"


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            "a,1,sise,,3,,\n",
            r"t.csv line 2, descriptor: expected one of \[.*'size'.*\] or 'present', got 'sise'",
        ),
        ("a,4,size,,3,,\n", r"t.csv line 2, class: expected an integer in \[0, 2\], got '4'"),
        ("a,-1,size,,3,,\n", r"t.csv line 2, class: expected an integer in \[0, 2\], got '-1'"),
        (
            "a,1,size,,3,,\nzz,1,size,,3,,\n",
            r"t.csv line 3, image: expected one of the dataset's images \('a', 'b', \.\.\.\), got 'zz'",
        ),
        (
            "a,1,size,,abc,,\n",
            r"t.csv line 2, value: expected a finite number or an empty cell, got 'abc'",
        ),
        ("a,1,size,,nan,,\n", r"t.csv line 2, value: expected a finite number"),
        ("a,1,size,,inf,,\n", r"t.csv line 2, value: expected a finite number"),
        (
            "a,1,size,,,x,\n",
            r"t.csv line 2, lower: expected a number \(inf allowed\) or an empty cell, got 'x'",
        ),
        ("a,1,size,,,5,3\n", r"t.csv line 2, lower: expected lower <= upper, got 5.0 > 3.0"),
        ("a,1,size,,2,1,3\n", r"t.csv line 2, value: expected a value or lower/upper, got both"),
        ("a,1,size,,,,\n", r"t.csv line 2, value: expected a value or lower/upper, got neither"),
        ("a,1,centroid,2,3,,\n", r"t.csv line 2, index: expected an integer in \[0, 1\], got '2'"),
        (
            "a,1,size,0,3,,\na,1,size,,4,,\n",
            r"t.csv line 3: expected one row per \(image, class, descriptor, index\), got a second for \('a', 1, 'size', 0\) \(first: .*t.csv line 2\)",
        ),
        ("a,1,present,,2,,\n", r"t.csv line 2, value: expected 0 or 1 for 'present', got '2'"),
        (
            "a,1,present,,0,,\na,1,size,,4,,\n",
            r"t.csv line 3: expected no descriptor for a class said absent \(.*t.csv line 2\), got one for image 'a', class 1",
        ),
        ("a,1,size,,3,,\n", r"t.csv: expected at least one row per image, got none for 'b'"),
    ],
)
def test_bad_csv_rows_name_the_file_the_line_and_what_was_expected(tmp_path, rows, match):
    if "'b'" not in match:
        rows += "b,0,present,,1,,\n"
    (tmp_path / "t.csv").write_text(HEADER + rows)
    with pytest.raises(ValueError, match=match):
        read_weak_labels(tmp_path / "t.csv", ["a", "b"], 3)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            '[{"image": "a", "class": 1.5, "descriptor": "size", "value": 3}]',
            r"t.json row 0, class: expected an integer in \[0, 2\], got 1.5",
        ),
        (
            '[{"image": "a", "class": true, "descriptor": "size", "value": 3}]',
            r"t.json row 0, class: expected an integer",
        ),
        (
            '[{"image": "a", "class": 1, "descriptor": "size", "value": true}]',
            r"t.json row 0, value: expected a finite number or an empty cell, got True",
        ),
        (
            '[{"image": "a", "class": 1, "descriptor": "size", "valeu": 3}]',
            r"t.json row 0: expected keys among \[.*\], got \['valeu'\]",
        ),
        ('{"rows": 3}', r"t.json: expected a list of row objects"),
        ("[1, 2]", r"t.json: expected a list of row objects"),
        ('[{"image": ', r"t.json: expected JSON, got"),
    ],
)
def test_bad_json_rows(tmp_path, text, match):
    (tmp_path / "t.json").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_weak_labels(tmp_path / "t.json", ["a"], 3)


def test_bad_files_and_arguments(tmp_path):
    with pytest.raises(
        ValueError, match=r"^path: expected a CSV or JSON file, got .*missing.csv' \(no such file\)"
    ):
        read_weak_labels(tmp_path / "missing.csv", ["a"], 2)
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(ValueError, match=r"^path: expected a .csv or .json file, got"):
        read_weak_labels(tmp_path / "t.txt", ["a"], 2)
    (tmp_path / "t.csv").write_text("img,class,descriptor,value\n")
    with pytest.raises(
        ValueError,
        match=r"t.csv: expected a header with columns \[.*\] \(.*\), got \['img', 'class', 'descriptor', 'value'\]",
    ):
        read_weak_labels(tmp_path / "t.csv", ["a"], 2)
    (tmp_path / "t.csv").write_text("image,class,descriptor\n")
    with pytest.raises(ValueError, match=r"value or lower/upper required"):
        read_weak_labels(tmp_path / "t.csv", ["a"], 2)
    (tmp_path / "t.csv").write_text(HEADER + "a,0,size,,3,,\n")
    with pytest.raises(ValueError, match=r"^image_ids: expected distinct names, got 1 repeated"):
        read_weak_labels(tmp_path / "t.csv", ["a", "a"], 2)
    weak = example_weak()
    with pytest.raises(ValueError, match=r"^path: expected a .csv or .json file"):
        write_weak_labels(tmp_path / "t.xlsx", weak)
    no_ids = WeakLabels(weak.values, weak.bounds, weak.present)
    with pytest.raises(ValueError, match=r"^weak: expected image names \(ids\) to write, got none"):
        write_weak_labels(tmp_path / "t.csv", no_ids)
