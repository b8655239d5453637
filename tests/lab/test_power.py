"""lab.power: the paired t test's power against a simulation and known values."""

from __future__ import annotations

import numpy as np
import pytest

from esrgan_lab.lab import power as P
from esrgan_lab.lab.stats import outcome, paired_effect


def test_power_matches_a_simulation_of_the_registered_rule() -> None:
    rng = np.random.default_rng(0)
    delta, sd, n = 0.3, 0.3, 5
    hits = 0
    for _ in range(2000):
        d = rng.normal(delta, sd, n)
        hits += outcome(paired_effect(d, np.zeros(n)), "higher") == "reproduced"
    assert P.power(delta, sd, n) == pytest.approx(hits / 2000, abs=0.03)


def test_detectable_and_seeds_needed_agree() -> None:
    d = P.detectable(1.0, 5)
    assert P.power(d, 1.0, 5) == pytest.approx(0.8, abs=1e-6)
    assert 1.5 < d < 2.0  # about 1.6 sd at 5 seeds (two-sided 5 %)
    assert P.seeds_needed(d, 1.0) == 5
    assert P.seeds_needed(1e-6, 1.0, most=10) is None
    assert P.sd_upper(1.0, 3) == pytest.approx(2.12, abs=0.01)


def test_redesigned_studies_are_registered_with_power_and_status() -> None:
    from esrgan_lab.lab import findings as F

    for study in F.REDESIGNED:
        reg = F.registration(study)
        assert "before any run" in reg["status"] and reg["estimate"], study
        assert len(reg["seeds"]) >= (8 if study.startswith("bn") else 5), study
        claims = F.registered_claims(study)  # the format findings reads
        assert claims and all(c.direction in ("higher", "lower") for c in claims)
