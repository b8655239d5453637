"""Registered claims: the hash check that refuses stale results, and the renderer on the
stored studies."""

from __future__ import annotations

import copy

import pytest

from esrgan_lab.lab import findings as F
from esrgan_lab.lab.experiments import EXPERIMENTS_DIR, load_artifact


@pytest.mark.parametrize("study", list(F.STUDIES))
def test_stored_studies_match_their_registration(study: str) -> None:
    """Each stored study's provenance holds its registration's hash; the stored runs
    predate registration and say so (rendered as exploratory)."""
    prov = load_artifact(EXPERIMENTS_DIR / study).provenance
    assert F.check_registration(study, prov) == "after the run", (
        f"rerun `make experiments NAME={study}`"
    )
    found = F.study_findings(study)
    assert found and all(f.exploratory for f in found)
    for f in found:
        text = F.render(f)
        assert "95 % interval" in text and "registered after the run: exploratory" in text
        assert f.outcome in ("reproduced", "contradicted", "inconclusive")


def test_changed_registration_is_refused(monkeypatch) -> None:
    prov = load_artifact(EXPERIMENTS_DIR / "interpolation").provenance
    reg = copy.deepcopy(F.registration("interpolation"))
    reg["claims"][0]["direction"] = "higher"
    monkeypatch.setattr(F, "registration", lambda study: reg)
    with pytest.raises(F.RegistrationChanged, match="rerun `make experiments NAME=interpolation`"):
        F.check_registration("interpolation", prov)
    with pytest.raises(F.RegistrationChanged, match="record no registration"):
        F.check_registration("interpolation", {})


def test_hash_ignores_key_order_not_content() -> None:
    a = {"claims": [{"id": "x", "direction": "higher"}], "paper": "p"}
    b = {"paper": "p", "claims": [{"direction": "higher", "id": "x"}]}
    assert F.registration_hash(a) == F.registration_hash(b)
    b["claims"][0]["direction"] = "lower"
    assert F.registration_hash(a) != F.registration_hash(b)


def test_stored_verdicts() -> None:
    """The verdicts the stored results give under the registration (paired t, 3 seeds)."""
    out = {f.claim.id: f for s in F.STUDIES for f in F.study_findings(s)}
    interp = out["network_vs_pixel_interpolation"]
    assert interp.outcome == "contradicted"  # network interpolation has the higher NIQE
    assert interp.effect.mean == pytest.approx(0.537, abs=1e-3)
    assert interp.effect.low > 0
    assert out["rrdb_vs_residual_equal_budget"].outcome == "contradicted"
    assert out["adversarial_term"].outcome == "reproduced"
    # The BN-in-LR run with the colour cast stays in: its seed is one of the three pairs.
    assert out["no_bn_higher_psnr_lr"].effect.seeds == (0, 1, 2)
    assert out["no_bn_higher_psnr_lr"].outcome == "inconclusive"
    assert any("colour cast" in n.lower() for n in out["no_bn_higher_psnr_lr"].notes)
    assert out["deep_both_remedies"].outcome == "inconclusive"
    assert "Contradicted** on niqe at equal psnr" in F.render(interp)


def test_every_claim_names_its_reference_and_sentence() -> None:
    for study in F.STUDIES:
        for c in F.registered_claims(study):
            assert c.where.startswith("Sec.") and c.paper_text
            assert c.direction in ("higher", "lower") and c.endpoint.metric in F.ENDPOINTS
            assert "Fig." not in c.where  # figure numbers not checked against the paper
        assert "Rests on:" in F.paper_references(study)


@pytest.mark.parametrize("study", sorted(F.REDESIGNED))
def test_a_registered_study_without_results_renders_its_design(study, tmp_path, monkeypatch):
    """Before its results are stored, a redesigned study shows each registered claim with
    its arms, endpoint, direction and decision rule, and the outcome "not run"; once stored,
    the same call gives the verdicts (here: refused, as a stored artifact must be)."""
    from esrgan_lab.lab import experiments

    monkeypatch.setattr(experiments, "EXPERIMENTS_DIR", tmp_path)
    found = F.study_findings(study)
    claims = F.registered_claims(study)
    assert [f.claim for f in found] == claims
    assert {f.outcome for f in found} == {"not run"} and not any(f.exploratory for f in found)
    for f in found:
        text = F.render(f)
        assert f.claim.rule in text and f.claim.endpoint.aggregate in text
        assert f"predicted: A {f.claim.direction} than B" in text
        assert text.count("**Not run**") == 1 and f"NAME={study}" in text
    (tmp_path / study).mkdir()
    (tmp_path / study / "results.json").write_text("{}")
    with pytest.raises(FileNotFoundError):  # a stored result is read, not the design
        F.study_findings(study)
