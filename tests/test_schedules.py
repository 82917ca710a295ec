"""The per-epoch schedules: the barrier parameter t (MultiplyT) and the LR rule (LRSchedule)."""

from __future__ import annotations

import pytest
import torch

from tutorial_lib.schedules import LRSchedule, MultiplyT


def test_multiply_t_schedule_and_state():
    sched = MultiplyT(1.0, 1.1)
    for _ in range(199):
        sched.step()
    assert sched.t == pytest.approx(1.1**199, rel=1e-9)
    assert 1.0e8 < sched.t < 2e8  # ~1.7e8 at epoch 199, as in docs/method.md
    other = MultiplyT(5.0, 2.0)
    other.load_state_dict(sched.state_dict())
    assert other.state_dict() == sched.state_dict()
    other.step()
    sched.step()
    assert other.t == sched.t
    capped = MultiplyT(1.0, 10.0, max_t=50.0)
    assert [capped.step() for _ in range(3)] == [10.0, 50.0, 50.0]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"t0": 0.0}, "t0"), ({"factor": -1.0}, "factor"), ({"t0": 2.0, "max_t": 1.0}, "max_t")],
)
def test_multiply_t_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MultiplyT(**kwargs)
    with pytest.raises(
        ValueError,
        match=r"^MultiplyT state: expected keys .*, got one missing \['factor', 'steps', 't0'\]$",
    ):
        MultiplyT().load_state_dict({"t": 1.0})


@pytest.mark.parametrize(
    ("rule", "fires"),
    [
        ("paper", [0, 20, 40]),  # best_epoch stays 0: 0 % 20 == 0 fires right after epoch 0
        ("paper-skip-epoch0", [20, 40]),
        ("constant", []),
    ],
)
def test_lr_rule(rule, fires):
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.Adam(model.parameters(), lr=1.0)
    schedule = LRSchedule(rule, 1.0)
    fired = [e for e in range(45) if schedule.step(e, 0, opt)]
    assert fired == fires
    assert opt.param_groups[0]["lr"] == schedule.lr == 0.5 ** len(fires)


def test_lr_rule_follows_the_best_epoch():
    opt = torch.optim.Adam(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    schedule = LRSchedule("paper", 1.0)
    fired = [e for e in range(1, 60) if schedule.step(e, 5, opt)]
    assert fired == [25, 50]  # epoch % (best_epoch + 20) == 0
