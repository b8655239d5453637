"""Paired statistics: the t interval against scipy and a hand computation, the outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from esrgan_lab.lab.stats import mcnemar_exact, outcome, paired_effect, rate_outcome


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


def _two_sided_by_hand(k: int, n: int) -> float:
    """Exact two-sided binomial p-value at 1/2: twice the smaller tail, at most 1."""
    tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
    return min(1.0, 2 * tail)


def test_exact_mcnemar_counts_discordant_seeds_and_matches_the_binomial() -> None:
    # 8 seeds: A only on 6, B only on none, both on 1, neither on 1.
    a = [1, 1, 1, 1, 1, 1, 1, 0]
    b = [0, 0, 0, 0, 0, 0, 1, 0]
    t = mcnemar_exact(a, b)
    assert (t.a_only, t.b_only, t.both, t.neither) == (6, 0, 1, 1)
    assert (t.a_events, t.b_events, t.discordant, t.n) == (7, 1, 6, 8)
    assert t.p_value == pytest.approx(2 / 2**6)  # 0.03125: significant at 0.05
    assert rate_outcome(t, "higher") == "reproduced"
    assert rate_outcome(t, "lower") == "contradicted"
    # Five discordant seeds all one way are not enough (p = 2/32), as registered.
    five = mcnemar_exact([1] * 5 + [0] * 3, [0] * 8)
    assert five.p_value == pytest.approx(0.0625)
    assert rate_outcome(five, "higher") == "inconclusive"
    none = mcnemar_exact([0, 1], [0, 1])  # no discordant seed
    assert none.p_value == 1.0 and rate_outcome(none, "higher") == "inconclusive"
    for k, n in [(3, 7), (1, 8), (7, 8), (4, 8), (0, 12)]:
        got = mcnemar_exact([1] * k + [0] * (n - k), [0] * k + [1] * (n - k))
        assert (got.a_only, got.b_only) == (k, n - k)
        assert got.p_value == pytest.approx(_two_sided_by_hand(k, n))
        assert got.p_value == pytest.approx(stats.binomtest(k, n, 0.5).pvalue)
    with pytest.raises(ValueError):
        mcnemar_exact([1, 0], [1])
    with pytest.raises(ValueError):
        mcnemar_exact([2, 0], [1, 0])
