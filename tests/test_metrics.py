"""Metric values on hand-made masks, checked against brute-force loops written here."""

import itertools
import math
import time

import numpy as np
import pytest
import torch

from tutorial_lib.metrics import (
    class_means,
    dice_2d,
    dice_3d_per_volume,
    dice_counts,
    dice_from_counts,
    hd95,
    hd95_per_volume,
    mean_dice,
    surface,
    surface_distances,
    volume_counts,
)

# ------------------------------------------------------------------ brute-force references


def brute_dice(pred, target, k):
    """Counting, pixel by pixel; None when class k is absent from both."""
    p = g = both = 0
    for a, b in zip(pred.flatten().tolist(), target.flatten().tolist(), strict=True):
        p += a == k
        g += b == k
        both += a == k and b == k
    return None if p + g == 0 else 2 * both / (p + g)


def brute_surface(mask):
    """Voxels of the mask with a face neighbour outside the mask or the image."""
    m = mask.tolist()
    shape = mask.shape
    out = []
    for idx in itertools.product(*(range(n) for n in shape)):
        value = m
        for i in idx:
            value = value[i]
        if not value:
            continue
        for axis in range(len(shape)):
            for step in (-1, 1):
                nb = list(idx)
                nb[axis] += step
                if not 0 <= nb[axis] < shape[axis]:
                    out.append(idx)
                    break
                v = m
                for i in nb:
                    v = v[i]
                if not v:
                    out.append(idx)
                    break
            else:
                continue
            break
    return out


def brute_hd95(a, b, spacing):
    """Pure-Python HD95: every pair of surface points, then a linearly interpolated percentile."""
    sa, sb = brute_surface(a), brute_surface(b)

    def dist(p, q):
        return math.sqrt(sum(((i - j) * s) ** 2 for i, j, s in zip(p, q, spacing, strict=True)))

    d = [min(dist(p, q) for q in sb) for p in sa] + [min(dist(q, p) for p in sa) for q in sb]
    d.sort()
    pos = 0.95 * (len(d) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(d) - 1)
    return d[lo] + (pos - lo) * (d[hi] - d[lo])


def random_mask(shape, seed, n_boxes=3):
    """A union of random boxes: shapes with corners, holes-free, touching the border sometimes."""
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(shape, dtype=torch.bool)
    for _ in range(n_boxes):
        lo = [int(torch.randint(0, n - 1, (1,), generator=g)) for n in shape]
        hi = [
            int(torch.randint(a + 1, n + 1, (1,), generator=g))
            for a, n in zip(lo, shape, strict=True)
        ]
        mask[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))] = True
    return mask


# ------------------------------------------------------------------ Dice


def test_dice_2d_on_a_hand_made_pair():
    pred = torch.tensor([[[0, 1, 1], [2, 2, 0]]])
    target = torch.tensor([[[0, 1, 0], [2, 1, 0]]])
    # class 0: |P|=2, |G|=3, |P∩G|=2; class 1: 2, 2, 1; class 2: 2, 1, 1; class 3 absent.
    expected = torch.tensor([[4 / 5, 2 / 4, 2 / 3, math.nan]], dtype=torch.float64)
    torch.testing.assert_close(dice_2d(pred, target, 4), expected, equal_nan=True)
    assert dice_counts(pred, target, 4)[0].tolist() == [[2, 2, 3], [1, 2, 2], [1, 2, 1], [0, 0, 0]]
    one = dice_2d(pred, target, 4, empty="one")
    assert one[0, 3] == 1.0 and torch.equal(one[0, :3], expected[0, :3])


def test_dice_2d_matches_counting_and_is_symmetric():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 4, (3, 5, 6), generator=g)
    target = torch.randint(0, 3, (3, 5, 6), generator=g)  # class 3 never in the target
    pred[1][pred[1] == 3] = 0  # ... nor in the prediction of slice 1
    dsc = dice_2d(pred, target, 4)
    for b, k in itertools.product(range(3), range(4)):
        ref = brute_dice(pred[b], target[b], k)
        assert (math.isnan(dsc[b, k]) and ref is None) or dsc[b, k].item() == pytest.approx(ref)
    torch.testing.assert_close(dice_2d(target, pred, 4), dsc, equal_nan=True)


def test_dice_empty_cases():
    zeros = torch.zeros(2, 4, 4, dtype=torch.long)
    ones = torch.ones(2, 4, 4, dtype=torch.long)
    dsc = dice_2d(zeros, ones, 3)
    assert dsc[:, :2].eq(0).all() and dsc[:, 2].isnan().all()  # one empty -> 0; both -> NaN
    assert dice_2d(zeros, zeros, 2, empty="one").eq(1).all()
    assert dice_2d(zeros, zeros, 2)[:, 0].eq(1).all()


@pytest.mark.parametrize("empty", ["nan", "one"])
def test_dice_class_present_in_one_mask_only_is_zero_in_each_convention(empty):
    """Only absent-in-both is a convention; a class in one mask only is a plain miss: 0."""
    pred = torch.tensor([[[1, 1, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]])
    target = torch.tensor([[[0, 0, 0], [0, 0, 0]], [[2, 0, 0], [0, 0, 0]]])
    # image 0: class 1 predicted only, class 2 absent from both; image 1: class 2 in the truth only
    both_absent = math.nan if empty == "nan" else 1.0
    expected = torch.tensor(
        [[0.8, 0.0, both_absent], [10 / 11, both_absent, 0.0]], dtype=torch.float64
    )
    torch.testing.assert_close(dice_2d(pred, target, 3, empty=empty), expected, equal_nan=True)
    counts = torch.tensor([[[0, 4, 0], [0, 0, 7], [0, 0, 0], [3, 3, 3]]])  # (1, K=4, 3) by hand
    dice = dice_from_counts(counts, empty=empty)
    assert dice[0, :2].tolist() == [0.0, 0.0] and dice[0, 3].item() == 1.0
    assert dice[0, 2].item() == 1.0 if empty == "one" else math.isnan(dice[0, 2].item())


def test_mean_dice_skips_absent_classes():
    dsc = torch.tensor([[1.0, math.nan], [0.5, 0.25]])
    torch.testing.assert_close(mean_dice(dsc, dim=0), torch.tensor([0.75, 0.25]))
    assert mean_dice(dsc).item() == pytest.approx(1.75 / 3)
    assert mean_dice(torch.full((2,), math.nan)).isnan()


def test_dice_3d_pools_the_counts_of_each_volume():
    g = torch.Generator().manual_seed(1)
    pred = torch.randint(0, 3, (5, 4, 4), generator=g)
    target = torch.randint(0, 3, (5, 4, 4), generator=g)
    ids = ["b", "a", "b", "a", "c"]  # interleaved slices, first-seen order b, a, c
    order, dsc = dice_3d_per_volume(pred, target, ids, 3)
    assert order == ["b", "a", "c"] and dsc.shape == (3, 3)
    for v, vid in enumerate(order):
        rows = [i for i, x in enumerate(ids) if x == vid]
        for k in range(3):
            assert dsc[v, k].item() == pytest.approx(brute_dice(pred[rows], target[rows], k))
    order_t, dsc_t = dice_3d_per_volume(pred, target, torch.tensor([7, 3, 7, 3, 9]), 3)
    assert order_t == [7, 3, 9] and torch.equal(dsc_t, dsc)


def test_volume_counts_sums_the_slices_of_each_volume():
    g = torch.Generator().manual_seed(2)
    pred = torch.randint(0, 3, (6, 4, 4), generator=g)
    target = torch.randint(0, 3, (6, 4, 4), generator=g)
    counts = dice_counts(pred, target, 3)
    ids = ["b", "a", "b", "c", "a", "b"]
    order, pooled = volume_counts(counts, ids)
    assert order == ["b", "a", "c"] and pooled.shape == (3, 3, 3) and pooled.dtype == counts.dtype
    for v, vid in enumerate(order):
        rows = [i for i, x in enumerate(ids) if x == vid]
        assert torch.equal(pooled[v], counts[rows].sum(0))
    _, dsc = dice_3d_per_volume(pred, target, ids, 3)
    assert torch.equal(dice_from_counts(pooled), dsc)
    with pytest.raises(ValueError, match=r"volume_counts: expected 6 volume ids .*got 2"):
        volume_counts(counts, ["a", "b"])


def test_class_means_skip_nan_and_inf_and_average_the_selected_classes():
    values = torch.tensor(
        [[1.0, 2.0, math.inf, 4.0], [3.0, math.nan, 6.0, 8.0], [5.0, 4.0, 9.0, math.inf]],
        dtype=torch.float64,
    )
    means = class_means(values, ["bg", "a", "b", "c"], [1, 3])
    assert means == {"bg": 3.0, "a": 3.0, "b": 7.5, "c": 6.0, "mean": 4.5}
    everything_nan = torch.full((2, 2), math.nan, dtype=torch.float64)
    assert all(math.isnan(v) for v in class_means(everything_nan, ["bg", "a"], [1]).values())
    with pytest.raises(
        ValueError, match=r"class_means: expected values \(V, 4\), got shape \(3,\)"
    ):
        class_means(values[:, 0], ["bg", "a", "b", "c"], [1])
    with pytest.raises(
        ValueError, match=r"class_means: expected selection indices below 4, got \[4\]"
    ):
        class_means(values, ["bg", "a", "b", "c"], [4])


def test_dice_3d_of_a_volume_is_not_the_mean_of_its_slices():
    pred = torch.tensor([[[1, 1], [1, 1]], [[0, 0], [0, 1]]])
    target = torch.tensor([[[1, 1], [1, 0]], [[0, 0], [0, 0]]])
    _, dsc = dice_3d_per_volume(pred, target, ["v", "v"], 2)
    assert dsc[0, 1].item() == pytest.approx(2 * 3 / (5 + 3))  # slices alone: 6/7 and 0
    assert dice_2d(pred, target, 2)[:, 1].tolist() == pytest.approx([6 / 7, 0.0])


def test_dice_errors_name_expected_and_received():
    a = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"one shape, got \(2, 4, 4\) and \(2, 4, 5\)"):
        dice_2d(a, torch.zeros(2, 4, 5, dtype=torch.long), 2)
    with pytest.raises(ValueError, match="integer label map.*float32"):
        dice_2d(a.float(), a, 2)
    with pytest.raises(ValueError, match=r"labels in \[0, 1\], got values in \[0, 3\]"):
        dice_2d(a, a + 3 * (torch.arange(4) == 0), 2)
    with pytest.raises(ValueError, match="n_classes an int >= 1, got 0"):
        dice_2d(a, a, 0)
    with pytest.raises(ValueError, match="empty: expected one of.*'zero'"):
        dice_2d(a, a, 2, empty="zero")
    with pytest.raises(ValueError, match="expected 2 volume ids.*got 3"):
        dice_3d_per_volume(a, a, ["x", "y", "z"], 2)


# ------------------------------------------------------------------ HD95


@pytest.mark.parametrize("shape", [(7, 9), (3, 5, 6)])
def test_surface_matches_brute_force(shape):
    for seed in range(3):
        mask = random_mask(shape, seed)
        got = sorted(map(tuple, surface(mask).nonzero().tolist()))
        assert got == sorted(brute_surface(mask))


def test_hd95_single_points_and_spacing():
    a = torch.zeros(8, 8, dtype=torch.bool)
    b = torch.zeros(8, 8, dtype=torch.bool)
    a[0, 0] = b[3, 4] = True
    assert hd95(a, b).item() == pytest.approx(5.0)
    assert hd95(a, b, (2.0, 0.5)).item() == pytest.approx(math.sqrt(36 + 4))
    v = torch.zeros(2, 3, 3, dtype=torch.bool)
    w = torch.zeros(2, 3, 3, dtype=torch.bool)
    v[0, 1, 1] = w[1, 1, 1] = True
    assert hd95(v, w, (10.0, 1.0, 1.0)).item() == pytest.approx(10.0)
    assert hd95(v, w, torch.tensor([2.5, 1.0, 1.0])).item() == pytest.approx(2.5)


def test_hd95_of_identical_masks_is_zero():
    m = random_mask((12, 10), 4)
    for method in ("cdist", "edt"):
        assert hd95(m, m, (1.5, 0.7), method=method).item() == 0.0


@pytest.mark.parametrize("method", ["cdist", "edt", "auto"])
@pytest.mark.parametrize(
    ("shape", "spacing"),
    [((11, 13), (1.0, 1.0)), ((9, 12), (3.0, 0.5)), ((4, 7, 8), (5.0, 1.0, 0.8))],
)
def test_hd95_matches_brute_force_and_is_symmetric(method, shape, spacing):
    for seed in range(3):
        a, b = random_mask(shape, 10 + seed), random_mask(shape, 20 + seed)
        ref = brute_hd95(a, b, spacing)
        got = hd95(a, b, spacing, method=method)
        assert got.dtype == torch.float64 and got.ndim == 0
        assert got.item() == pytest.approx(ref, rel=1e-9, abs=1e-9)
        assert hd95(b, a, spacing, method=method).item() == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_hd95_percentile_is_numpys_linear_percentile():
    a, b = random_mask((30, 30), 1, n_boxes=4), random_mask((30, 30), 2, n_boxes=4)
    d_ab, d_ba = surface_distances(a, b, (1.0, 2.0))
    expected = np.percentile(np.concatenate([d_ab.numpy(), d_ba.numpy()]), 95)
    assert hd95(a, b, (1.0, 2.0)).item() == pytest.approx(expected, rel=1e-12)


def test_hd95_empty_masks():
    empty = torch.zeros(5, 5, dtype=torch.bool)
    full = torch.ones(5, 5, dtype=torch.bool)
    assert hd95(empty, empty).isnan()
    assert hd95(empty, full).isinf() and hd95(full, empty).isinf()
    assert hd95(empty, empty, both_empty=0.0).item() == 0.0
    assert hd95(empty, full, one_empty=-1.0).item() == -1.0
    with pytest.raises(
        ValueError,
        match="^surface_distances: expected both masks non-empty, got an empty pred_mask$",
    ):
        surface_distances(empty, full)


def test_hd95_errors_name_expected_and_received():
    m = torch.ones(4, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"one shape, got \(4, 5\) and \(5, 4\)"):
        hd95(m, m.T)
    with pytest.raises(ValueError, match="boolean or integer mask, got dtype torch.float32"):
        hd95(m.float(), m)
    with pytest.raises(
        ValueError, match=r"2-D \(H, W\) or 3-D \(D, H, W\) mask, got shape \(20,\)"
    ):
        hd95(m.flatten(), m.flatten())
    with pytest.raises(ValueError, match=r"2 positive spacings.*got \[1.0, 1.0, 1.0\]"):
        hd95(m, m, (1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="positive spacings.*got \\[0.0, 1.0\\]"):
        hd95(m, m, (0.0, 1.0))
    with pytest.raises(ValueError, match="method: expected.*'fast'"):
        surface_distances(m, m, method="fast")


def test_hd95_per_volume_matches_hd95_on_each_stack():
    g = torch.Generator().manual_seed(3)
    pred = torch.randint(0, 3, (4, 6, 7), generator=g)
    target = torch.randint(0, 3, (4, 6, 7), generator=g)
    target[target == 2] = 0  # class 2 absent from the target: inf where predicted
    spacing = torch.tensor([[2.0, 1.0, 1.0], [2.0, 1.0, 1.0], [5.0, 0.5, 0.5], [5.0, 0.5, 0.5]])
    ids, hd = hd95_per_volume(pred, target, ["p", "p", "q", "q"], 3, spacing)
    assert ids == ["p", "q"] and hd.shape == (2, 3)
    for v, rows in enumerate(([0, 1], [2, 3])):
        for k in range(2):
            ref = brute_hd95(pred[rows] == k, target[rows] == k, spacing[rows[0]].tolist())
            assert hd[v, k].item() == pytest.approx(ref)
    assert hd[:, 2].isinf().all()
    with pytest.raises(ValueError, match=r"spacing \(3,\) or \(4, 3\), got \(2,\)"):
        hd95_per_volume(pred, target, [0, 0, 1, 1], 3, (1.0, 1.0))


def _discs(side: int, slices: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """Two offset cylinders; the second one misses the first slice."""
    z, y, x = torch.meshgrid(
        torch.arange(slices), torch.arange(side), torch.arange(side), indexing="ij"
    )
    c, r = side // 2, side * 5 // 32
    a = (y - c) ** 2 + (x - c + 8) ** 2 < r**2
    b = ((y - c + 3) ** 2 + (x - c + 4) ** 2 < (r - 3) ** 2) & (z > 0)
    return a, b


def test_hd95_methods_agree_on_a_larger_volume():
    a, b = _discs(96)
    spacing = (10.0, 1.5, 1.5)
    ref = hd95(a, b, spacing, method="cdist").item()
    assert hd95(a, b, spacing, method="edt").item() == pytest.approx(ref, rel=1e-12)


def test_hd95_is_fast_on_a_cardiac_sized_volume():
    a, b = _discs(256)
    start = time.perf_counter()
    value = hd95(a, b, (10.0, 1.5, 1.5))
    elapsed = time.perf_counter() - start
    # a's first slice is all surface and at least 10 mm from b; it holds over 5 % of the points.
    n_first, n_all = int(a[0].sum()), int(surface(a).sum() + surface(b).sum())
    assert n_first > 0.05 * n_all
    assert value.item() >= 10.0
    assert elapsed < 5.0, elapsed


# ------------------------------------------------------------------ each error's full message


def test_label_map_errors_name_the_function_and_the_side():
    a = torch.zeros(2, 4, 4, dtype=torch.long)
    with pytest.raises(
        ValueError,
        match=r"^dice_counts: expected pred an integer label map \(B, \*spatial\), got dtype "
        r"torch.float32 \(pass argmax\(1\) of the logits, not probabilities\)$",
    ):
        dice_counts(a.float(), a, 2)
    with pytest.raises(ValueError, match=r"^dice_counts: expected target an integer label map"):
        dice_counts(a, a.float(), 2)
    with pytest.raises(
        ValueError, match=r"^dice_counts: expected label maps \(B, \*spatial\), got shape \(4,\)$"
    ):
        dice_counts(a[0, 0], a[0, 0], 2)
    with pytest.raises(ValueError, match=r"^dice_counts: expected labels in \[0, 1\], got values"):
        dice_counts(a, a + 2, 2)  # a label equal to n_classes is out of range
    with pytest.raises(ValueError, match=r"^hd95_per_volume: expected pred an integer label map"):
        hd95_per_volume(a.float(), a, [0, 0], 2)
    with pytest.raises(
        ValueError,
        match=r"^hd95_per_volume: expected slices \(B, H, W\), got shape \(2, 1, 4, 4\)$",
    ):
        hd95_per_volume(a[:, None], a[:, None], [0, 0], 2)
    with pytest.raises(
        ValueError,
        match=r"^hd95_per_volume: expected volume_ids of shape \(2,\), got \(1, 2\)$",
    ):
        hd95_per_volume(a, a, torch.zeros(1, 2), 2)
    with pytest.raises(
        ValueError, match=r"^counts: expected shape \(\.\.\., K, 3\), got shape \(2, 4\)$"
    ):
        dice_from_counts(torch.zeros(2, 4))


def test_mask_errors_name_the_mask():
    m = torch.ones(4, 5, dtype=torch.bool)
    with pytest.raises(
        ValueError,
        match=r"^hd95: expected pred_mask a boolean or integer mask, got dtype torch.float32 "
        r"\(threshold probabilities first\)$",
    ):
        hd95(m.float(), m)
    with pytest.raises(ValueError, match=r"^hd95: expected target_mask a boolean or integer mask"):
        hd95(m, m.float())
    empty = torch.zeros(4, 5, dtype=torch.bool)
    with pytest.raises(
        ValueError,
        match=r"^surface_distances: expected both masks non-empty, got an empty pred_mask and "
        r"target_mask$",
    ):
        surface_distances(empty, empty)
    with pytest.raises(ValueError, match=r"got an empty target_mask$"):
        surface_distances(m, empty)


def test_smallest_label_maps_and_class_counts_are_accepted():
    """(B, N) label maps (one spatial axis) and a single class are valid inputs."""
    pred = torch.tensor([[0, 1, 1], [1, 1, 0]])
    assert dice_2d(pred, pred, 2).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    zeros = torch.zeros(2, 3, dtype=torch.long)
    assert dice_2d(zeros, zeros, 1).tolist() == [[1.0], [1.0]]
    # a denominator of 1: one pixel in one mask only is a miss, whatever the convention
    assert dice_from_counts(torch.tensor([[0, 1, 0]]), empty="one").tolist() == [0.0]


def test_dice_3d_passes_the_empty_convention_on():
    pred = torch.zeros(2, 3, 3, dtype=torch.long)
    _, one = dice_3d_per_volume(pred, pred, ["v", "v"], 2, empty="one")
    assert one.tolist() == [[1.0, 1.0]]
    _, nan = dice_3d_per_volume(pred, pred, ["v", "v"], 2)
    assert nan[0, 0].item() == 1.0 and math.isnan(nan[0, 1].item())


def test_class_means_average_the_class_means_not_the_values():
    values = torch.tensor([[1.0, 0.0], [1.0, math.nan], [1.0, math.nan], [0.0, 1.0]])
    means = class_means(values, ["bg", "a"], [0, 1])  # selection may include class 0
    assert means["bg"] == 0.75 and means["a"] == 0.5
    assert means["mean"] == pytest.approx(0.625)  # not 4 / 6, the mean of the six finite values


@pytest.mark.parametrize("n", [2, 3, 5, 8, 13, 20, 21, 22, 40])
def test_percentile_equals_numpy_for_small_sets(n):
    from tutorial_lib.metrics import _percentile

    x = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(n))
    assert _percentile(x, 95.0).item() == pytest.approx(np.percentile(x.numpy(), 95), rel=1e-12)


def test_cdist_in_small_chunks_equals_one_chunk():
    a, b = random_mask((15, 17), 5), random_mask((15, 17), 6)
    whole = surface_distances(a, b, (1.5, 0.5), method="cdist")
    chunked = surface_distances(a, b, (1.5, 0.5), method="cdist", chunk=7)
    assert all(torch.equal(x, y) for x, y in zip(whole, chunked, strict=True))


def test_hd95_per_volume_spacing_forms_and_dtypes():
    g = torch.Generator().manual_seed(8)
    pred = torch.randint(0, 2, (3, 6, 7), generator=g)
    target = torch.randint(0, 2, (3, 6, 7), generator=g)
    ids, unit = hd95_per_volume(pred, target, ["a", "a", "b"], 2)  # no spacing: 1 mm
    _, ones = hd95_per_volume(pred, target, ["a", "a", "b"], 2, (1.0, 1.0, 1.0))
    assert ids == ["a", "b"] and unit.dtype == torch.float64 and torch.equal(unit, ones)
    spacing = (1.1, 0.7, 0.3)  # one triple for every slice; volume "b" has a single slice
    _, hd = hd95_per_volume(pred, target, ["a", "a", "b"], 2, spacing)
    for v, rows in enumerate(([0, 1], [2])):
        for k in range(2):
            ref = hd95(pred[rows] == k, target[rows] == k, spacing)
            assert hd[v, k].item() == ref.item()
    per_slice = torch.tensor([[1.1, 0.7, 0.3], [9.0, 9.0, 9.0], [2.0, 0.5, 0.5]])
    _, hd = hd95_per_volume(pred, target, ["a", "a", "b"], 2, per_slice)
    assert hd[1, 1].item() == hd95(pred[[2]] == 1, target[[2]] == 1, (2.0, 0.5, 0.5)).item()
    _, fixed = hd95_per_volume(pred, 0 * target, ["a", "a", "b"], 2, one_empty=-1.0)
    assert fixed[:, 1].tolist() == [-1.0, -1.0]  # the options reach hd95
    empty = torch.zeros(3, 3, dtype=torch.bool)
    assert hd95(empty, empty).dtype == torch.float64 == hd95(empty, ~empty).dtype
