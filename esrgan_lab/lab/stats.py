"""Paired statistics for the stored studies: one effect, one interval, one outcome per claim.

Every study trains its arms with the same seeds, and a seed fixes both the initial weights
and the sequence of training batches, so arm A with seed ``s`` and arm B with seed ``s``
differ only in what the arms change. The comparison is therefore *paired*:

* **The unit is the seed.** For each seed, the difference ``A - B`` of the registered
  endpoint (say the mean test Y-PSNR over Set5 + Set14, or a NIQE gap at equal PSNR) is one
  observation. Per-image differences within a seed are *not* independent replicates of
  the training process (the 19 images of one seed share one trained model), so they enter
  the interval only through their seed's mean; treating the 57 image-seed pairs of three
  seeds as 57 observations would understate the seed-to-seed variance, which is what a
  rerun with another seed would see. The per-image pairs are still counted
  (:attr:`PairedEffect.image_above`) and printed beside the verdict as description.
* **The interval is Student's t** over the per-seed differences: mean ``d``, standard
  error ``s / sqrt(n)``, ``d ± t(1 - a/2, n - 1) * s / sqrt(n)`` with ``a = 0.05``
  (:func:`scipy.stats.t`). With three seeds ``t = 4.30``, so only a difference large
  against its seed spread excludes 0: that is the honest width of three seeds.
* **Three outcomes** (:func:`outcome`): *reproduced* when the whole interval lies on the
  side the paper predicts, *contradicted* when it lies wholly on the other side,
  *inconclusive* when it contains 0.

No run is ever dropped here: a run that collapsed or has a colour cast is a paired
observation like any other (for BN it is the finding), and the renderer reports such runs
beside the verdict (:mod:`esrgan_lab.lab.findings`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: The paper's predicted sign of ``A - B``: ``"higher"`` (A above B) or ``"lower"``.
Direction = Literal["higher", "lower"]
#: The three outcomes of a registered claim.
Outcome = Literal["reproduced", "contradicted", "inconclusive"]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedEffect:
    """The paired difference ``A - B`` of one endpoint over the seeds both arms share.

    Attributes:
        seeds: The seeds, in order.
        differences: Per seed, the endpoint of A minus that of B.
        mean: Mean of :attr:`differences` (the effect).
        low: Lower end of the t interval (``nan`` with fewer than two seeds).
        high: Upper end of the t interval (``nan`` with fewer than two seeds).
        confidence: The interval's confidence level (0.95).
        image_above: How many (image, seed) pairs have A above B, when per-image values were
            given (descriptive only: not used by the interval).
        image_below: How many have A below B.
        image_pairs: How many (image, seed) pairs there are (0 when none were given).
    """

    seeds: tuple[int, ...]
    differences: tuple[float, ...]
    mean: float
    low: float
    high: float
    confidence: float = CONFIDENCE
    image_above: int = 0
    image_below: int = 0
    image_pairs: int = 0

    @property
    def n(self) -> int:
        return len(self.differences)

    @property
    def sd(self) -> float:
        """Sample standard deviation of the per-seed differences (0 for one seed)."""
        return float(np.std(self.differences, ddof=1)) if self.n > 1 else 0.0


def paired_effect(
    a: Sequence[float],
    b: Sequence[float],
    seeds: Sequence[int] | None = None,
    *,
    per_image: Sequence[tuple[Sequence[float], Sequence[float]]] | None = None,
    confidence: float = CONFIDENCE,
) -> PairedEffect:
    """The paired effect of arm A over arm B from their per-seed endpoint values.

    Args:
        a: Arm A's endpoint per seed (in the order of ``seeds``).
        b: Arm B's endpoint for the same seeds.
        seeds: The seeds (``0 .. n-1`` when not given).
        per_image: Optional, per seed, ``(A's per-image values, B's per-image values)``
            on the same images: counted as :attr:`PairedEffect.image_above` / ``image_below``.
        confidence: The interval's level.

    Raises:
        ValueError: When the arms do not have one value per seed each, or a value is not
            finite (a collapsed run must be scored, not given as ``nan``).
    """
    from scipy import stats

    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.shape != b_arr.shape or a_arr.ndim != 1 or not len(a_arr):
        raise ValueError(f"paired arms need one value per seed each: {len(a)} vs {len(b)}")
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise ValueError("paired values must be finite: score every run, collapsed or not")
    diff = a_arr - b_arr
    n = len(diff)
    mean = float(diff.mean())
    if n > 1:
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * diff.std(ddof=1) / math.sqrt(n))
        low, high = mean - half, mean + half
    else:
        low = high = float("nan")
    above = below = pairs = 0
    for img_a, img_b in per_image or ():
        if len(img_a) != len(img_b):
            raise ValueError("per-image values must pair up image by image")
        for x, y in zip(img_a, img_b, strict=True):
            if x is None or y is None:
                continue
            pairs += 1
            above += x > y
            below += x < y
    return PairedEffect(
        seeds=tuple(int(s) for s in (seeds if seeds is not None else range(n))),
        differences=tuple(float(d) for d in diff),
        mean=mean,
        low=low,
        high=high,
        confidence=confidence,
        image_above=above,
        image_below=below,
        image_pairs=pairs,
    )


def outcome(effect: PairedEffect, direction: Direction) -> Outcome:
    """The registered decision rule: *reproduced* when the interval lies entirely on the
    paper's side of 0 (``direction`` of ``A - B``), *contradicted* when entirely on the
    other side, *inconclusive* when it contains 0 (or cannot be formed from one seed)."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', not {direction!r}")
    if not (math.isfinite(effect.low) and math.isfinite(effect.high)):
        return "inconclusive"
    sign = 1.0 if direction == "higher" else -1.0
    lo, hi = sorted((sign * effect.low, sign * effect.high))
    if lo > 0:
        return "reproduced"
    if hi < 0:
        return "contradicted"
    return "inconclusive"


# --------------------------------------------------------------------------- rates


@dataclass(frozen=True)
class McNemar:
    """The exact McNemar test of a paired binary endpoint (an event per seed and arm).

    Only the *discordant* seeds (an event in exactly one arm) carry information on which
    arm has more events; under the null hypothesis each is equally likely to fall either
    way, so the count of seeds with an event in A only is Binomial(discordant, 1/2). The
    p-value is the two-sided exact binomial one (:func:`scipy.stats.binomtest`), 1 when no
    seed is discordant.

    Attributes:
        a_only: Seeds with an event in A and none in B.
        b_only: Seeds with an event in B and none in A.
        both: Seeds with an event in both arms.
        neither: Seeds with an event in neither.
        p_value: Two-sided exact p-value.
        alpha: The registered level (0.05).
    """

    a_only: int
    b_only: int
    both: int
    neither: int
    p_value: float
    alpha: float = 1.0 - CONFIDENCE

    @property
    def discordant(self) -> int:
        return self.a_only + self.b_only

    @property
    def n(self) -> int:
        return self.a_only + self.b_only + self.both + self.neither

    @property
    def a_events(self) -> int:
        return self.a_only + self.both

    @property
    def b_events(self) -> int:
        return self.b_only + self.both


def mcnemar_exact(
    a: Sequence[bool | int], b: Sequence[bool | int], *, alpha: float = 1.0 - CONFIDENCE
) -> McNemar:
    """The exact two-sided McNemar test of paired events ``a`` and ``b`` (one per seed).

    Raises:
        ValueError: When the arms do not have one value per seed each, or a value is not
            0/1.
    """
    from scipy import stats

    if len(a) != len(b) or not len(a):
        raise ValueError(f"paired events need one value per seed each: {len(a)} vs {len(b)}")
    if any(int(x) not in (0, 1) or int(x) != x for x in (*a, *b)):
        raise ValueError("events must be 0/1 (or booleans)")
    pairs = [(bool(x), bool(y)) for x, y in zip(a, b, strict=True)]
    a_only = sum(x and not y for x, y in pairs)
    b_only = sum(y and not x for x, y in pairs)
    both = sum(x and y for x, y in pairs)
    k = a_only + b_only
    p = float(stats.binomtest(a_only, k, 0.5, alternative="two-sided").pvalue) if k else 1.0
    return McNemar(a_only, b_only, both, len(pairs) - k - both, p, alpha)


def rate_outcome(test: McNemar, direction: Direction) -> Outcome:
    """The registered rule of an event-rate claim: *reproduced* when the exact McNemar test
    is significant (``p < alpha``) with more events in the arm the paper predicts
    (``direction`` of A against B), *contradicted* when significant the other way,
    *inconclusive* otherwise."""
    if direction not in ("higher", "lower"):
        raise ValueError(f"direction must be 'higher' or 'lower', not {direction!r}")
    if not test.p_value < test.alpha or test.a_only == test.b_only:
        return "inconclusive"
    a_more = test.a_only > test.b_only
    return "reproduced" if a_more == (direction == "higher") else "contradicted"
