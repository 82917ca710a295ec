"""ShapeDescriptorLoss and the cross-entropy baseline: the authors' loss, policies, priors, errors."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from authors_reference import ref_log_barrier, ref_loss
from skimage.draw import ellipse

from tutorial_lib.descriptors import DESCRIPTORS, soft_size
from tutorial_lib.loss_tables import LossTables
from tutorial_lib.losses import (
    DescriptorTerm,
    ShapeDescriptorLoss,
    cross_entropy_loss,
    paper_terms,
    shape_descriptor_loss,
)
from tutorial_lib.penalties import log_barrier_extension

F64 = torch.float64
ALL_TERMS = [
    ("size", (0, 1, 2, 3), 0.1, "percentage", 1e-2),
    ("centroid", (1, 2, 3), 20, "abs", 1e-2),
    ("dist_centroid", (1, 3), 20, "abs", 1e-2),
    ("length", (1, 2, 3), 10, "percentage", 1e-2),
]


def make_batch(shape=(3, 4, 12, 10), seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    b, k, *spatial = shape
    probs = torch.randn(*shape, generator=g, dtype=dtype).mul(2).softmax(1)
    target = torch.randint(0, k, (b, *spatial), generator=g)
    target[1][target[1] == 3] = 0  # class 3 absent from image 1
    return probs, target


def ours(terms=ALL_TERMS, **kwargs):
    return ShapeDescriptorLoss(
        [DescriptorTerm(n, c, margin=m, mode=mo, weight=w) for n, c, m, mo, w in terms], **kwargs
    )


@pytest.mark.parametrize("t", [0.5, 1.0, 5.0, 100.0])
@pytest.mark.parametrize("shape", [(3, 4, 12, 10), (2, 4, 4, 6, 5)], ids=["2d", "3d"])
def test_equals_authors_loss_and_gradient_float64(t, shape):
    probs, target = make_batch(shape)
    probs.requires_grad_()
    onehot = F.one_hot(target, 4).movedim(-1, 1).to(F64)
    ref = ref_loss(probs, onehot, ALL_TERMS, t, dtype=F64)
    out = ours()(probs, target, t)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-6)
    (g_ref,) = torch.autograd.grad(ref, probs)
    (g_out,) = torch.autograd.grad(out, probs)
    torch.testing.assert_close(g_out, g_ref, atol=1e-6, rtol=1e-6)


def test_gradcheck_full_loss():
    probs, target = make_batch((2, 3, 5, 6))
    logits = probs.log().requires_grad_()
    loss = ours(
        [
            ("size", (0, 1, 2), 0.1, "percentage", 1.0),
            ("centroid", (1, 2), 1, "abs", 1.0),
            ("dist_centroid", (1,), 1, "abs", 1.0),
            ("length", (1, 2), 0.2, "percentage", 1.0),
        ]
    )
    assert torch.autograd.gradcheck(lambda x: loss(x.softmax(1), target, 3.0), (logits,))


def test_paper_terms():
    acdc = paper_terms("acdc")
    assert [(t.descriptor, t.classes, t.margin, t.mode, t.weight) for t in acdc] == [
        ("size", (1, 2, 3), 0.1, "percentage", 1e-2),
        ("centroid", (1, 2, 3), 20, "abs", 1e-2),
        ("dist_centroid", (1, 2, 3), 20, "abs", 1e-2),
        ("length", (1, 2, 3), 10, "percentage", 1e-2),
    ]
    prom = paper_terms("promise12")
    assert [t.classes for t in prom] == [(0, 1), (1,), (1,), (1,)]
    assert ShapeDescriptorLoss(paper_terms("acdc")).empty_policy == "paper"
    for name in ("msd-prostate", "msd_prostate"):  # the name prepare and fetch use, and its alias
        assert paper_terms(name) == prom
    with pytest.raises(
        ValueError, match="^dataset: expected 'acdc', 'promise12' or 'msd-prostate'"
    ):
        paper_terms("brats")


def test_empty_policies():
    probs, target = make_batch((3, 4, 60, 50))  # stray class-3 mass centred near (30, 25) px
    cen = [("centroid", (3,), 20, "abs", 1.0)]
    paper = ours(cen, empty_policy="paper")
    fixed = ours(cen, empty_policy="corrected")
    paper(probs, target, 1.0)
    fixed(probs, target, 1.0)
    # "corrected": the absent class of image 1 is unconstrained, so image 1 contributes nothing
    only_present = ours(cen, empty_policy="corrected")(probs[[0, 2]], target[[0, 2]], 1.0)
    torch.testing.assert_close(fixed(probs, target, 1.0), only_present)
    # "paper": image 1's stray class-3 probability is pulled to [0, 20] px: positive violation
    assert paper.last_stats["centroid/frac_violated"] > fixed.last_stats["centroid/frac_violated"]


def test_size_of_absent_class_is_pushed_to_zero_in_both_policies():
    probs, target = make_batch()
    for policy in ("paper", "corrected"):
        loss = ours([("size", (3,), 0.1, "percentage", 1.0)], empty_policy=policy)
        p = probs.clone().requires_grad_()
        loss(p, target, 1.0).backward()
        assert p.grad[1, 3].min() > 0  # gradient descent lowers class 3 everywhere in image 1


def test_constant_bounds_in_mm_hand_computed():
    probs = torch.full(
        (2, 2, 4, 5), 0.5, dtype=F64
    )  # size of each class: 10 px = 22.5 mm^2 at 1.5 x 1.5 mm
    target = torch.zeros(2, 4, 5, dtype=torch.long)
    target[:, 0, 0] = 1
    term = DescriptorTerm("size", (1,), lower=30.0, upper=100.0, weight=0.5, physical=True)
    loss = ShapeDescriptorLoss([term])
    out = loss(probs, target, 2.0, spacing=(1.5, 1.5))
    z_lo = torch.tensor(30.0 - 22.5, dtype=F64)
    z_hi = torch.tensor(22.5 - 100.0, dtype=F64)
    expected = 2 * 0.5 * (log_barrier_extension(z_lo, 2.0) + log_barrier_extension(z_hi, 2.0)) / 20
    torch.testing.assert_close(out, expected)
    assert loss.last_stats["size/frac_violated"].item() == pytest.approx(0.5)  # lower side violated
    assert loss.last_stats["size/violation"].item() == pytest.approx(7.5 / 2)
    per_image = torch.tensor([[1.0, 1.0], [2.0, 2.0]])  # (B, n_axes) spacing, one per image
    out2 = loss(probs, target, 2.0, spacing=per_image)
    sizes = soft_size(probs, spacing=per_image)[:, 1, 0]
    z = torch.stack([30.0 - sizes, sizes - 100.0])
    torch.testing.assert_close(out2, 0.5 * log_barrier_extension(z, 2.0).sum() / 20)


def test_constant_bounds_per_class_and_one_sided_without_target():
    probs, _ = make_batch()
    term = DescriptorTerm("size", (1, 2), lower=[5.0, 10.0], upper=None)  # at least 5 and 10 px
    loss = ShapeDescriptorLoss([term], penalty="quadratic")
    assert loss(probs, None, 1.0).item() == 0.0  # every class is larger: feasible
    assert loss.last_stats["size/frac_violated"].item() == 0.0
    tight = ShapeDescriptorLoss(
        [DescriptorTerm("size", (1, 2), lower=[500.0, 10.0])], penalty="quadratic"
    )
    sizes = soft_size(probs)[:, 1, 0]
    torch.testing.assert_close(tight(probs, None, 1.0), 1e-2 * (500.0 - sizes).square().sum() / 120)


def test_constant_bounds_follow_the_corrected_policy():
    probs, target = make_batch()
    term = DescriptorTerm("centroid", (3,), lower=[[2.0, 2.0]], upper=[[8.0, 8.0]], weight=1.0)
    fixed = ShapeDescriptorLoss([term], empty_policy="corrected")
    only_present = fixed(probs[[0, 2]], target[[0, 2]], 1.0)
    torch.testing.assert_close(fixed(probs, target, 1.0), only_present)


def test_normalisation_and_stats():
    probs, target = make_batch()
    paper = ours()
    mean = ours(normalisation="batch_mean")
    torch.testing.assert_close(mean(probs, target, 2.0), paper(probs, target, 2.0) / 3)
    # one image: the per-image mean is the sum itself
    torch.testing.assert_close(mean(probs[:1], target[:1], 2.0), paper(probs[:1], target[:1], 2.0))
    stats = paper.last_stats
    assert set(stats) == {
        f"{n}/{s}" for n, *_ in ALL_TERMS for s in ("loss", "violation", "frac_violated")
    } | {"total"}
    assert all(not v.requires_grad and v.ndim == 0 for v in stats.values())
    assert all(0 <= stats[f"{n}/frac_violated"] <= 1 for n, *_ in ALL_TERMS)
    torch.testing.assert_close(sum(stats[f"{n}/loss"] for n, *_ in ALL_TERMS), stats["total"])


@pytest.mark.parametrize("policy", ["paper", "corrected"])
def test_functional_form_equals_the_module(policy):
    probs, target = make_batch()
    terms = [*paper_terms("acdc"), DescriptorTerm("size", (2,), lower=5.0, upper=math.inf)]
    module = ShapeDescriptorLoss(terms, "quadratic", "batch_mean", policy)
    p1, p2 = probs.clone().requires_grad_(), probs.clone().requires_grad_()
    out = module(p1, target, 2.0)
    loss, stats = shape_descriptor_loss(
        p2, target, 2.0, terms, penalty="quadratic", normalisation="batch_mean", empty_policy=policy
    )
    assert torch.equal(out, loss)
    assert stats.keys() == module.last_stats.keys()
    assert all(torch.equal(stats[k], module.last_stats[k]) for k in stats)
    (g1,) = torch.autograd.grad(out, p1)
    (g2,) = torch.autograd.grad(loss, p2)
    assert torch.equal(g1, g2)
    _, no_stats = shape_descriptor_loss(probs, target, 2.0, terms, collect_stats=False)
    assert no_stats == {}


def test_tables_are_built_once(monkeypatch):
    probs, target = make_batch()
    loss = ShapeDescriptorLoss(paper_terms("acdc"))
    built = []
    original = LossTables.build

    def counting_build(*args, **kwargs):
        built.append(args[1:])
        return original(*args, **kwargs)

    monkeypatch.setattr(LossTables, "build", counting_build)
    for t in (1.0, 2.0, 3.0):
        loss(probs, target, t)
    assert len(built) == 1 and list(loss.tables) == [(2, F64, probs.device)]
    tables = loss.tables[2, F64, probs.device]
    loss(probs.float(), target, 1.0)  # another dtype: its own tables, made once
    assert len(built) == 2 and loss.tables[2, F64, probs.device] is tables
    assert tables.labels == ("size", "centroid", "dist_centroid", "length")
    assert tables.widths == (3, 6, 6, 3)  # classes x values (centroid, spread: 2 values in 2-D)
    assert tables.weight.shape == (18,) and tables.rules.table.shape == (18, 2)
    assert tables.cls.tolist() == [1, 2, 3] + [1, 1, 2, 2, 3, 3] * 2 + [1, 2, 3]


def test_duplicate_labels_are_made_unique():
    loss = ShapeDescriptorLoss([DescriptorTerm("size", (0,)), DescriptorTerm("size", (1,))])
    assert loss.labels == ["size", "size[1]"]


def test_tensor_t_low_precision_and_autocast():
    probs, target = make_batch(dtype=torch.float32)
    loss = ShapeDescriptorLoss(paper_terms("acdc"))
    ref = loss(probs, target, 3.0)
    torch.testing.assert_close(loss(probs, target, torch.tensor(3.0)), ref)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = loss(probs.bfloat16(), target, 3.0)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, ref, rtol=0.05, atol=1e-4)


def test_other_descriptors_and_options_as_terms():
    probs, target = make_batch()
    terms = [
        DescriptorTerm("length", (1,), margin=0.1, options={"connectivity": 4}),
        DescriptorTerm("compactness", (2,), margin=0.5),
        DescriptorTerm("eccentricity", (1, 2), margin=0.1, mode="abs"),
        DescriptorTerm("orientation", (1,), margin=0.3, mode="abs"),
        DescriptorTerm("covariance", (3, 1), margin=0.2),  # non-contiguous classes
    ]
    out = ShapeDescriptorLoss(terms)(probs.requires_grad_(), target, 2.0)
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(probs.grad).all()


def test_penalty_is_finite_when_prediction_equals_ground_truth():
    _, target = make_batch()
    onehot = F.one_hot(target, 4).movedim(-1, 1).to(F64).requires_grad_()
    loss = ours([(n, c, 0.0, mo, w) for n, c, _, mo, w in ALL_TERMS])
    t = 10.0
    out = loss(onehot, target, t)  # z = 0 exactly on every constraint
    out.backward()
    assert torch.isfinite(onehot.grad).all()
    # every side of every column is psi_t(0) = 2 log(t) / t + 1 / t: 3 images x 17 columns x 2 sides
    columns = 4 + 3 * 2 + 2 * 2 + 3  # size, centroid, spread (2 values each in 2-D), length
    expected = 3 * columns * 2 * 1e-2 * (2 * math.log(t) / t + 1 / t) / (12 * 10)
    assert out.item() == pytest.approx(expected, rel=1e-12)
    assert loss.last_stats["size/violation"].item() == 0.0


def ellipse_batch():
    """Two images, background + two ellipses each, tilted both ways: signed values of both signs."""
    target = torch.zeros(2, 32, 36, dtype=torch.long)
    for b, (rot1, rot2) in enumerate([(0.7, -0.4), (-1.0, 0.5)]):
        for k, (r, c, a, bb, rot) in ((1, (10, 12, 4, 9, rot1)), (2, (22, 24, 3, 8, rot2))):
            rr, cc = ellipse(r, c, a, bb, rotation=rot, shape=target.shape[1:])
            target[b, rr, cc] = k
    g = torch.Generator().manual_seed(5)
    onehot = F.one_hot(target, 3).movedim(-1, 1).to(F64)
    probs = (3 * onehot + torch.randn(2, 3, 32, 36, generator=g, dtype=F64)).softmax(1)
    return probs, target, onehot


def reference_terms_loss(probs, onehot, terms, t):
    """sum weight * psi_t([lower - f, f - upper]) / (H W), with [v - m, v + m] clamped at 0 only for
    unsigned descriptors (every class present): the loss written out term by term."""
    total = 0.0
    for term in terms:
        d = DESCRIPTORS[term.descriptor]
        f = d(probs, **term.options)[:, list(term.classes)]
        v = d(onehot, **term.options)[:, list(term.classes)]
        m = term.margin * v.abs() if term.mode == "percentage" else torch.full_like(v, term.margin)
        lower, upper = v - m, v + m
        if not d.signed:
            lower, upper = lower.clamp_min(0), upper.clamp_min(0)
        psi = ref_log_barrier(lower - f, t) + ref_log_barrier(f - upper, t)
        total = total + term.weight * psi.sum() / math.prod(probs.shape[2:])
    return total


@pytest.mark.parametrize("t", [1.0, 5.0])
def test_signed_and_extra_descriptors_equal_the_reference(t):
    probs, target, onehot = ellipse_batch()
    terms = [
        DescriptorTerm("orientation", (1, 2), margin=0.2, mode="abs", weight=0.5),
        DescriptorTerm("covariance", (2, 1), margin=0.3, weight=0.1),
        DescriptorTerm("eccentricity", (1, 2), margin=0.1, weight=0.2),
        DescriptorTerm("compactness", (1,), margin=0.2, options={"connectivity": 4}),
        DescriptorTerm("length", (2,), margin=0.1, weight=0.3),
    ]
    signed = torch.cat([DESCRIPTORS[n](onehot)[:, 1:] for n in ("orientation", "covariance")], 2)
    assert (signed < -0.3).sum() >= 4  # negative targets: clamped bounds would differ
    p = probs.clone().requires_grad_()
    out = ShapeDescriptorLoss(terms)(p, target, t)
    ref = reference_terms_loss(p, onehot, terms, t)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-12)
    (g_out,) = torch.autograd.grad(out, p)
    (g_ref,) = torch.autograd.grad(ref, p)
    torch.testing.assert_close(g_out, g_ref, rtol=1e-8, atol=1e-12)


def test_cross_entropy():
    logits = torch.randn(2, 3, 5, 6)
    target = torch.randint(0, 3, (2, 5, 6))
    torch.testing.assert_close(cross_entropy_loss(logits, target), F.cross_entropy(logits, target))
    with pytest.raises(
        ValueError, match=r"^logits: expected a floating tensor .*, got \(2, 3, 5\)$"
    ):
        cross_entropy_loss(torch.randn(2, 3, 5), target)
    with pytest.raises(
        ValueError, match=r"target: expected integer labels of shape \(2, 5, 6\), got \(2, 6\)"
    ):
        cross_entropy_loss(logits, target[:, 0])


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: DescriptorTerm("area", (1,)), "descriptor: expected one of"),
        (lambda: DescriptorTerm("size", ()), "classes: expected a non-empty"),
        (lambda: DescriptorTerm("size", (1, 1)), "distinct"),
        (lambda: DescriptorTerm("size", (-1,)), "class indices >= 0"),
        (lambda: DescriptorTerm("size", (1,), mode="relative"), "mode: expected one of"),
        (lambda: DescriptorTerm("size", (1,), margin=-1), "margin"),
        (lambda: DescriptorTerm("size", (1,), weight=math.nan), "weight"),
        (lambda: DescriptorTerm("size", (1,), lower=10.0, upper=5.0), "lower <= upper"),
        (
            lambda: DescriptorTerm("size", (1, 2), lower=[1.0, 2.0, 3.0]),
            r"one value per class \(2\)",
        ),
        (lambda: ShapeDescriptorLoss([]), "terms: expected a non-empty"),
        (
            lambda: ShapeDescriptorLoss(paper_terms("acdc"), penalty="hinge"),
            "penalty: expected one of",
        ),
        (
            lambda: ShapeDescriptorLoss(paper_terms("acdc"), normalisation="mean"),
            "normalisation: expected one of",
        ),
        (
            lambda: ShapeDescriptorLoss(paper_terms("acdc"), empty_policy="skip"),
            "empty_policy: expected one of",
        ),
    ],
)
def test_bad_configuration_raises(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "args, match",
    [
        (lambda p, y: (p[0], y), "ndim 4 or 5"),
        (
            lambda p, y: (p[:, :3], y),
            r"^probs: expected K > 3 channels \(the terms constrain class 3\), got K = 3$",
        ),
        (lambda p, y: (p, y.float()), "integer label tensor"),
        (lambda p, y: (p, y[:, :5]), r"expected shape \(3, 12, 10\).*got \(3, 5, 10\)"),
        (lambda p, y: (p, None), r"^target: expected integer labels .*, got None$"),
        (lambda p, y: (p.clone().index_fill_(0, torch.tensor([0]), math.nan), y), "NaN"),
        (lambda p, y: (p, y + 4), r"labels in \[0, 3\]"),
    ],
)
def test_bad_inputs_raise(args, match):
    probs, target = make_batch()
    with pytest.raises(ValueError, match=match):
        ShapeDescriptorLoss(paper_terms("acdc"))(*args(probs, target), 1.0)


def test_bad_t_and_missing_spacing_raise():
    probs, target = make_batch()
    with pytest.raises(ValueError, match="t: expected a positive"):
        ShapeDescriptorLoss(paper_terms("acdc"))(probs, target, 0.0)
    prior = ShapeDescriptorLoss([DescriptorTerm("size", (1,), lower=1.0, upper=2.0, physical=True)])
    with pytest.raises(ValueError, match="spacing: expected mm per axis"):
        prior(probs, target, 1.0)
    wide = ShapeDescriptorLoss([DescriptorTerm("centroid", (1,), lower=[[1.0, 2.0, 3.0]])])
    with pytest.raises(ValueError, match=r"expected bounds with 2 values per class for 2-D images"):
        wide(probs, target, 1.0)


# ---------------------------------------------------------------------- terms, tables, stats


def test_term_classes_weights_and_labels():
    assert DescriptorTerm("size", 1).classes == (1,)
    assert DescriptorTerm("size", [2, 3]).classes == (2, 3)
    assert DescriptorTerm("size", (1,), weight=0.0).weight == 0.0  # a term switched off
    for bad in [(True,), (1.5,)]:
        with pytest.raises(ValueError, match=r"^classes: expected a non-empty sequence"):
            DescriptorTerm("size", bad)
    with pytest.raises(ValueError, match=r"^weight: expected a non-negative finite number"):
        DescriptorTerm("size", (1,), weight=-1.0)
    terms = [DescriptorTerm("size", (1, 2)), DescriptorTerm("size", (1, 2))]
    terms.append(DescriptorTerm("size", (1, 2)))
    assert ShapeDescriptorLoss(terms).labels == ["size", "size[1,2]", "size[1,2]'"]
    assert ShapeDescriptorLoss(terms).last_stats == {}  # before any call


def test_paper_terms_aliases_and_weight():
    promise = [dataclasses.astuple(t) for t in paper_terms("promise12")]
    for alias in ("prostate", "msd_prostate", "MSD_Prostate"):
        assert [dataclasses.astuple(t) for t in paper_terms(alias)] == promise
    assert {t.weight for t in paper_terms("acdc", weight=0.5)} == {0.5}


def test_constant_tables_per_value_and_class():
    """A (classes, n) constant table: each (class, value) gets its own row; a scalar broadcasts."""
    probs, target = make_batch()
    lower = [[1.0, 2.0], [3.0, 4.0]]
    upper = [[5.0, 6.0], [7.0, 8.0]]
    term = DescriptorTerm("centroid", (1, 2), lower=lower, upper=upper, weight=1.0)
    tables = LossTables.build([term], 2)  # the default dtype and device: float32 on the CPU
    assert tables.rules.table.tolist() == [[1.0, 5.0], [2.0, 6.0], [3.0, 7.0], [4.0, 8.0]]
    loss = ShapeDescriptorLoss([term], penalty="quadratic")
    f = DESCRIPTORS["centroid"](probs)[:, 1:3]  # (B, 2 classes, 2 values)
    lo, hi = torch.tensor(lower, dtype=F64), torch.tensor(upper, dtype=F64)
    expected = ((lo - f).relu().square() + (f - hi).relu().square()).sum() / 120
    torch.testing.assert_close(loss(probs, target, 1.0), expected)
    scalar = DescriptorTerm("centroid", (1,), lower=2.0, upper=9.0)  # one number for both values
    assert LossTables.build([scalar], 2).rules.table.tolist() == [[2.0, 9.0], [2.0, 9.0]]
    wide = DescriptorTerm("centroid", (1,), lower=[[1.0, 2.0, 3.0]], name="where")
    with pytest.raises(
        ValueError,
        match=r"^term 'where': expected bounds with 2 values per class for 2-D images, got 3$",
    ):
        LossTables.build([wide], 2)


def test_a_constant_term_before_precise_terms():
    probs, target = make_batch()
    prior = DescriptorTerm("size", (1,), lower=50.0, upper=60.0)
    precise = [DescriptorTerm("centroid", (2,), margin=1, mode="abs"), DescriptorTerm("size", (3,))]
    both = ShapeDescriptorLoss([prior, *precise])(probs, target, 2.0)
    apart = ShapeDescriptorLoss([prior])(probs, target, 2.0) + ShapeDescriptorLoss(precise)(
        probs, target, 2.0
    )
    torch.testing.assert_close(both, apart)


def test_spacing_reaches_only_the_physical_terms_and_their_bounds():
    probs, target = make_batch()
    onehot = F.one_hot(target, 4).movedim(-1, 1).to(F64)
    plain = [DescriptorTerm("centroid", (1, 2), margin=1, mode="abs")]
    spacing = (2.0, 1.5)  # a pixel of 3 mm²
    torch.testing.assert_close(
        ShapeDescriptorLoss(plain)(probs, target, 3.0, spacing=spacing),
        ShapeDescriptorLoss(plain)(probs, target, 3.0),
    )
    # a physical precise term on the ground truth itself: f in mm within bounds made in mm
    physical = ShapeDescriptorLoss([DescriptorTerm("size", (1, 2), physical=True)])
    physical(onehot, target, 3.0, spacing=spacing)
    assert physical.last_stats["size/violation"].item() == 0.0


def test_stats_count_only_the_active_sides():
    """A one-sided prior has one active side per value: the violation is its mean over that side."""
    probs, target = make_batch()
    loss = ShapeDescriptorLoss([DescriptorTerm("size", (1,), lower=1e4)])  # every image too small
    loss(probs, target, 1.0)
    sizes = soft_size(probs)[:, 1, 0]
    assert loss.last_stats["size/frac_violated"].item() == 1.0
    assert loss.last_stats["size/violation"].item() == pytest.approx((1e4 - sizes).mean().item())
    one = ShapeDescriptorLoss([DescriptorTerm("size", (1,), lower=1e4)])
    one(probs[:1], target[:1], 1.0)  # a single active constraint
    assert one.last_stats["size/violation"].item() == pytest.approx(1e4 - sizes[0].item())


def test_one_pixel_class_is_present():
    probs, target = make_batch()
    probs, target = probs[:1], target[:1].clone()
    target[0] = 0
    target[0, 3, 4] = 3  # class 3: one pixel
    loss = ShapeDescriptorLoss(
        [DescriptorTerm("centroid", (3,), margin=0, mode="abs")],
        "quadratic",
        empty_policy="corrected",
    )
    loss(probs, target, 1.0)
    onehot = F.one_hot(target, 4).movedim(-1, 1).to(F64)
    loss(onehot, target, 1.0)
    assert loss.last_stats["centroid/violation"].item() == 0.0  # bounded at (3, 4), and it is there
    moved = onehot.roll(1, dims=-1)
    assert loss(moved, target, 1.0).item() > 0  # image 0: its one pixel moved by one column


def test_check_inputs_off_skips_the_value_checks_only():
    probs, target = make_batch()
    nan = probs.clone()
    nan[0, 1, 0, 0] = math.nan  # class 1: constrained by the terms
    terms = paper_terms("acdc")
    with pytest.raises(
        ValueError, match=r"^probs: expected finite probabilities, got NaN or inf values$"
    ):
        shape_descriptor_loss(nan, target, 1.0, terms)
    out, _ = shape_descriptor_loss(nan, target, 1.0, terms, check_inputs=False)
    assert out.isnan()
    assert ShapeDescriptorLoss(terms, check_inputs=False)(nan, target, 1.0).isnan()
    with pytest.raises(ValueError, match=r"^probs: expected shape \(B, K, H, W\)"):
        shape_descriptor_loss(probs[0], target, 1.0, terms, check_inputs=False)


def test_more_input_errors_in_full():
    probs, target = make_batch()
    terms = paper_terms("acdc")
    with pytest.raises(
        ValueError,
        match=r"^target: expected integer labels \(B, \*spatial\), needed by precise bounds or the "
        r"empty policy, got None$",
    ):
        ShapeDescriptorLoss(terms)(probs, None, 1.0)
    with pytest.raises(
        ValueError, match=r"^target: expected an integer label tensor, got torch.float32$"
    ):
        ShapeDescriptorLoss(terms)(probs, target.float(), 1.0)
    with pytest.raises(ValueError, match=r"^target: expected an integer label tensor, got list$"):
        ShapeDescriptorLoss(terms)(probs, target.tolist(), 1.0)
    with pytest.raises(
        ValueError, match=r"^target: expected labels in \[0, 3\], got values outside"
    ):
        ShapeDescriptorLoss(terms)(
            probs, target.clamp_max(3).index_fill(1, torch.tensor([0]), 4), 1.0
        )
    prior = ShapeDescriptorLoss([DescriptorTerm("size", (1,), lower=1.0, physical=True)])
    with pytest.raises(
        ValueError, match=r"^spacing: expected mm per axis for the physical terms, got None$"
    ):
        prior(probs, target, 1.0)


def test_cross_entropy_in_3d_and_non_tensor_inputs():
    logits = torch.randn(2, 3, 4, 5, 6)
    target = torch.randint(0, 3, (2, 4, 5, 6))
    torch.testing.assert_close(cross_entropy_loss(logits, target), F.cross_entropy(logits, target))
    with pytest.raises(ValueError, match=r"^logits: expected a floating tensor .*, got list$"):
        cross_entropy_loss([[0.5]], target)
    with pytest.raises(
        ValueError, match=r"^target: expected integer labels of shape .*, got list$"
    ):
        cross_entropy_loss(logits, target.tolist())


def test_the_loss_runs_in_float32_with_or_without_an_outer_autocast():
    """float32 probabilities: the same values as the reference in float32, even under autocast
    (which would run the matrix products of the moments and the stats in bfloat16)."""
    probs, target, onehot = ellipse_batch()
    probs, onehot = probs.float(), onehot.float()
    terms = [
        DescriptorTerm("covariance", (1, 2), margin=0.2),
        DescriptorTerm("size", (1, 2), margin=0.1),
    ]
    ref = reference_terms_loss(probs, onehot, terms, 2.0)
    loss = ShapeDescriptorLoss(terms)
    outside = loss(probs, target, 2.0)
    stats = loss.last_stats
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = loss(probs, target, 2.0)
    for out in (outside, inside):
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    for key, value in loss.last_stats.items():  # the stats' matrix product too
        torch.testing.assert_close(value, stats[key], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        stats["covariance/loss"] + stats["size/loss"], ref, rtol=1e-5, atol=1e-6
    )


def test_the_module_says_its_settings():
    text = repr(
        ShapeDescriptorLoss(paper_terms("promise12"), "quadratic", "batch_mean", "corrected")
    )
    assert text == (
        "ShapeDescriptorLoss(terms=[size[0, 1], centroid[1], dist_centroid[1], length[1]], "
        "penalty='quadratic', normalisation='batch_mean', empty_policy='corrected')"
    )


# --- an annotator's error on the values the bounds come from (value_noise) ---------------------
NOISE_TERMS = [
    DescriptorTerm("size", (1,), margin=0.1, mode="percentage", weight=1.0),
    DescriptorTerm("centroid", (1,), margin=2.0, mode="abs", weight=1.0),
]


def _noise_batch():
    g = torch.Generator().manual_seed(0)
    probs = torch.randn(2, 2, 12, 14, generator=g, dtype=torch.float64).softmax(1)
    target = torch.zeros(2, 12, 14, dtype=torch.long)
    target[0, 3:8, 4:10] = 1
    target[1, 5:11, 2:6] = 1
    return probs, target


def test_noisy_values_equal_constant_bounds_around_the_scaled_values():
    probs, target = _noise_batch()
    noise = torch.tensor([[0.2, -0.1, 0.05], [-0.3, 0.0, 0.1]], dtype=torch.float64)
    got, _ = shape_descriptor_loss(probs, target, 3.0, NOISE_TERMS, value_noise=noise)
    onehot = torch.nn.functional.one_hot(target, 2).permute(0, 3, 1, 2).double()
    expected = 0.0
    for b in range(2):  # one image at a time, its bounds as constants around v (1 + e)
        size = float(onehot[b, 1].sum()) * (1 + noise[b, 0])
        rows, cols = torch.nonzero(onehot[b, 1], as_tuple=True)
        centre = torch.stack([rows.double().mean(), cols.double().mean()]) * (1 + noise[b, 1:])
        terms = [
            DescriptorTerm("size", (1,), weight=1.0, lower=0.9 * size, upper=1.1 * size),
            DescriptorTerm(
                "centroid",
                (1,),
                weight=1.0,
                lower=[(centre - 2).tolist()],
                upper=[(centre + 2).tolist()],
            ),
        ]
        loss, _ = shape_descriptor_loss(probs[b : b + 1], None, 3.0, terms)
        expected = expected + loss
    assert torch.allclose(got, expected, rtol=1e-9)
    exact, _ = shape_descriptor_loss(probs, target, 3.0, NOISE_TERMS)
    assert not torch.allclose(got, exact)  # the noise moved the bounds


def test_zero_noise_is_the_exact_loss_and_a_bad_shape_is_refused():
    probs, target = _noise_batch()
    exact, _ = shape_descriptor_loss(probs, target, 3.0, NOISE_TERMS)
    zero, _ = shape_descriptor_loss(probs, target, 3.0, NOISE_TERMS, value_noise=torch.zeros(2, 3))
    assert torch.allclose(zero, exact)
    one, _ = shape_descriptor_loss(  # one image, two classes: the rows follow the batch
        probs[:1], target[:1], 3.0, NOISE_TERMS, value_noise=torch.zeros(1, 3)
    )
    assert torch.allclose(one, shape_descriptor_loss(probs[:1], target[:1], 3.0, NOISE_TERMS)[0])
    with pytest.raises(
        ValueError, match=r"^value_noise: expected a tensor \(B, columns\) = \(2, 3\), got \(2, 4\)"
    ):
        shape_descriptor_loss(probs, target, 3.0, NOISE_TERMS, value_noise=torch.zeros(2, 4))


def test_the_module_passes_value_noise_on():
    probs, target = _noise_batch()
    noise = torch.tensor([[0.2, -0.1, 0.05], [-0.3, 0.0, 0.1]], dtype=torch.float64)
    module = ShapeDescriptorLoss(NOISE_TERMS)
    expected, _ = shape_descriptor_loss(probs, target, 3.0, NOISE_TERMS, value_noise=noise)
    assert torch.equal(module(probs, target, 3.0, value_noise=noise), expected)
    with pytest.raises(
        ValueError, match=r"^value_noise: expected a tensor \(B, columns\) = \(2, 3\), got 0.1"
    ):
        module(probs, target, 3.0, value_noise=0.1)
