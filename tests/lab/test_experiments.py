"""The stored-experiment statistics: when a difference counts, and the paper verdicts."""

from __future__ import annotations

from esrgan_lab.lab import arch_study as arch
from esrgan_lab.lab.experiments import compare, paper_claim, separated


def test_separated_needs_every_seed_beyond_the_other() -> None:
    assert separated([1.0, 1.1, 1.2], [0.5, 0.6, 0.9])
    assert not separated([1.0, 1.1, 0.8], [0.5, 0.6, 0.9])


def test_paper_claim_verdicts() -> None:
    claim = "A beats B"
    assert paper_claim(claim, [2.0, 2.1], [1.0, 1.1]).endswith(
        "Reproduced at this scale (every seed)."
    )
    assert "Contradicted at this scale" in paper_claim(claim, [1.0, 1.1], [2.0, 2.1])
    assert "Not reproduced at this scale" in paper_claim(claim, [1.0, 2.1], [1.5, 1.6])
    assert paper_claim(claim, [2.0], [1.0]).startswith("Paper: A beats B. ")
    unjudged = paper_claim(claim, [2.0, 2.1], [1.0, 1.1], unjudged="B is below bicubic")
    assert unjudged == "Paper: A beats B. Not judged at this scale: B is below bicubic."
    # The parts stay readable without parsing the sentence.
    assert (unjudged.claim, unjudged.verdict, unjudged.reason) == (
        claim,
        "not judged",
        "B is below bicubic",
    )
    tested = paper_claim(claim, [1.0, 2.1], [1.5, 1.6], comparison="on Set5")
    assert tested.startswith("Paper: A beats B: on Set5. Not reproduced")
    assert tested.verdict == "not reproduced" and tested.reason is None


def test_compare_calls_overlapping_seeds_no_finding() -> None:
    assert "not a finding" in compare([1.0, 2.0], [1.5, 1.6], "x")
    assert "every seed" in compare([3.0, 3.1], [1.5, 1.6], "x")


def _deep_results(esrgan_finals: list[float], bicubic: float = 26.0) -> dict:
    def recs(finals: list[float]) -> list[dict]:
        return [{"seed": i, "val_final": f, "diverged_at": None} for i, f in enumerate(finals)]

    names = ["RRDB (ESRGAN)", "residual blocks (SRResNet)"]
    tests = {"Set5": [27.0, 27.2]}
    return {
        "variants": names,
        "bicubic": {"val": bicubic},
        "cost": {n: {"num_block": 2, "params": 10, "gflops_32px": 1.0} for n in names},
        "runs": {n: [{"val_final": 26.5, "test": tests}] * 3 for n in names},
        "deep": {
            "params": {"num_block": 8},
            "variants": ["plain", "esrgan"],
            "runs": {"plain": recs([10.0, 12.0, 14.0]), "esrgan": recs(esrgan_finals)},
            "growth": {"plain": [1.0, 2.0], "esrgan": [1.0, 1.1]},
            "growth_paper_depth": {"plain": [1.0, 3.0], "esrgan": [1.0, 1.2]},
        },
    }


def test_deep_claim_only_when_the_remedied_trunk_beats_bicubic() -> None:
    lines = arch.findings(_deep_results([26.3, 26.4, 26.5]))
    assert lines["deep claim"].endswith("Reproduced at this scale (every seed).")
    assert "above it with every seed" in lines["deep esrgan"]
    assert "above it with 0 of 3 seeds" in lines["deep plain"]

    below = arch.findings(_deep_results([25.5, 26.4, 26.5]))
    assert "Not judged at this scale" in below["deep claim"]
    assert "no finding is drawn" in below["deep compare"]
    assert "above it with 2 of 3 seeds" in below["deep esrgan"]


def _tool():
    import importlib.util

    from esrgan_lab.settings import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "experiments_tool", REPO_ROOT / "tools" / "experiments.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def test_training_seconds_sums_stage_records_only(tmp_path) -> None:
    import json

    for run, seconds in (("a_seed0", 60.5), ("b_seed0", 30.0)):
        stage = tmp_path / run / "psnr"
        stage.mkdir(parents=True)
        (stage / "metrics.json").write_text(json.dumps({"train_seconds_total": seconds}))
        # The run-level record repeats the stage's under its name: not counted twice.
        (tmp_path / run / "metrics.json").write_text(
            json.dumps({"psnr": {"train_seconds_total": seconds}})
        )
    assert _tool().training_seconds(tmp_path) == 90.5


def test_readme_section_renders_every_stored_study() -> None:
    tool = _tool()
    section = tool.readme_section()
    for name in tool.EXPERIMENTS:
        if (tool.EXPERIMENTS_DIR / name / "results.json").is_file():
            assert f"| {name} |" in section
    assert "Paper: " in section
    assert tool.render_readme(check=True) == 0, "run: python tools/experiments.py readme"


def test_group_unjudged_merges_claims_not_judged_for_one_reason() -> None:
    from esrgan_lab.lab.experiments import paper_claim

    why = "a run is below bicubic"
    verdicts = [
        paper_claim("A helps (Sec. 3.1)", [2], [1], comparison="'x' above 'y'", unjudged=why),
        paper_claim("B is stable (supplement)", [2], [1], comparison="'y' falls", unjudged=why),
        paper_claim("A helps (Sec. 3.1)", [2], [1], comparison="'x' above 'z'", unjudged=why),
        paper_claim("C holds (Sec. 4)", [3, 4], [1, 2]),
        paper_claim("D holds", [2], [1], unjudged="another reason"),
        "A sentence that is no verdict.",
    ]
    assert verdicts[0] == (
        "Paper: A helps (Sec. 3.1): 'x' above 'y'. Not judged at this scale: " + why + "."
    )
    assert _tool().group_unjudged(verdicts) == [
        "Paper: C holds (Sec. 4). Reproduced at this scale (every seed).",
        "A sentence that is no verdict.",
        "Paper: A helps (Sec. 3.1) (2 comparisons); B is stable (supplement) (1 comparison)."
        " Not judged at this scale: a run is below bicubic.",
        "Paper: D holds (1 comparison). Not judged at this scale: another reason.",
    ]
