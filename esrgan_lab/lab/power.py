"""Seed counts for registered studies: the power of the paired t test of :mod:`.stats`.

The registered test (:func:`esrgan_lab.lab.stats.outcome`) calls a claim *reproduced* when
the two-sided 95 % Student-t interval of the per-seed differences excludes 0 on the
predicted side. With ``n`` seeds, a true mean difference ``delta`` and a seed-to-seed
standard deviation ``sd`` of the differences, the statistic follows a noncentral t with
``n - 1`` degrees of freedom and noncentrality ``delta / (sd / sqrt(n))``;
:func:`power` is the probability that the interval lies wholly on ``delta``'s side.

``sd`` comes from the stored studies (``tools/power_28.py`` writes
``notebooks/params/power_28.json``). Three seeds estimate it poorly, so the planning value
is also given at its one-sided 80 % upper confidence limit (:func:`sd_upper`).
"""

from __future__ import annotations

import math


def power(delta: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """P(the paired t interval at level ``1 - alpha`` excludes 0 on ``delta``'s side)."""
    from scipy import stats

    if n < 2:
        return 0.0
    if sd <= 0:
        return 1.0 if delta else 0.0
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(delta) / (sd / math.sqrt(n))
    return float(stats.nct.sf(crit, df, nc))


def detectable(sd: float, n: int, alpha: float = 0.05, target: float = 0.8) -> float:
    """Smallest true ``|delta|`` found with probability ``target`` at ``n`` seeds."""
    from scipy import optimize

    if n < 2:
        return math.inf
    if sd <= 0:
        return 0.0
    return float(optimize.brentq(lambda d: power(d, sd, n, alpha) - target, 1e-12, 100 * sd))


def seeds_needed(
    delta: float, sd: float, alpha: float = 0.05, target: float = 0.8, most: int = 100
) -> int | None:
    """Fewest seeds whose power for ``delta`` reaches ``target`` (``None``: over ``most``)."""
    for n in range(2, most + 1):
        if power(delta, sd, n, alpha) >= target:
            return n
    return None


def sd_upper(sd: float, n: int, level: float = 0.8) -> float:
    """One-sided ``level`` upper confidence limit of a standard deviation from ``n`` values
    (chi-square with ``n - 1`` degrees of freedom)."""
    from scipy import stats

    return float(sd * math.sqrt((n - 1) / stats.chi2.ppf(1 - level, n - 1)))
