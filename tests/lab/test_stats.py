"""Paired statistics: the t interval against scipy and a hand computation, the outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from esrgan_lab.lab.stats import outcome, paired_effect


def test_interval_matches_scipy_and_hand_computation() -> None:
    a, b = [27.1, 27.3, 27.0], [26.9, 27.0, 27.0]
    eff = paired_effect(a, b, [0, 1, 2])
    d = np.array(a) - np.array(b)  # 0.2, 0.3, 0.0
    assert eff.differences == pytest.approx(tuple(d))
    assert eff.mean == pytest.approx(0.5 / 3)
    # By hand: t(0.975, 2) = 4.3027 times the standard error of (0.2, 0.3, 0.0)
    half = 4.302652729911275 * d.std(ddof=1) / math.sqrt(3)
    assert (eff.low, eff.high) == pytest.approx((d.mean() - half, d.mean() + half))
    lo, hi = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (eff.low, eff.high) == pytest.approx((lo, hi))
    assert eff.sd == pytest.approx(d.std(ddof=1))


def test_three_outcomes_follow_the_interval_and_the_direction() -> None:
    up = paired_effect([2.0, 2.1, 2.2], [1.0, 1.0, 1.1])
    assert outcome(up, "higher") == "reproduced"
    assert outcome(up, "lower") == "contradicted"
    mixed = paired_effect([1.0, 2.0, 0.5], [1.5, 1.0, 1.0])
    assert mixed.low < 0 < mixed.high
    assert outcome(mixed, "higher") == outcome(mixed, "lower") == "inconclusive"
    with pytest.raises(ValueError):
        outcome(up, "up")  # type: ignore[arg-type]


def test_one_seed_is_inconclusive_and_collapses_must_be_scored() -> None:
    one = paired_effect([2.0], [1.0])
    assert math.isnan(one.low) and outcome(one, "higher") == "inconclusive"
    with pytest.raises(ValueError):
        paired_effect([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError):
        paired_effect([1.0, 2.0], [1.0])


def test_image_pairs_are_counted_not_used_by_the_interval() -> None:
    eff = paired_effect(
        [1.0, 2.0], [0.0, 1.0], per_image=[([3.0, 1.0, None], [2.0, 2.0, 1.0]), ([5.0], [4.0])]
    )
    assert (eff.image_above, eff.image_below, eff.image_pairs) == (2, 1, 3)
    assert eff.low == eff.high == 1.0  # identical differences: zero-width interval
