"""The stored-experiment descriptions and the README's verdict section."""

from __future__ import annotations

import pytest

from esrgan_lab.lab import arch_study as arch
from esrgan_lab.lab.experiments import compare
from tests.helpers import load_tool


def test_compare_gives_the_paired_interval_and_no_verdict() -> None:
    text = compare([3.0, 3.2], [1.5, 1.6], "x")
    assert text.startswith("x: +1.55 dB (95 % interval") and "paired over 2 seeds" in text
    assert "finding" not in text and "Reproduced" not in text


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


def test_deep_description_keeps_every_run_and_draws_no_verdict() -> None:
    below = arch.description(_deep_results([25.5, 26.4, 26.5]))
    assert "above it with 2 of 3 seeds" in below["deep esrgan"]
    assert "above it with 0 of 3 seeds" in below["deep plain"]
    assert "95 % interval" in below["deep compare"] and "no finding" not in below["deep compare"]
    assert not any("claim" in k for k in below)


def _tool():
    return load_tool("experiments")


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
    assert "Paper (arXiv 1809.00219v2" in section and "95 % interval" in section
    assert "registered after the run: exploratory" in section
    assert tool.render_readme(check=True) == 0, "run: python tools/experiments.py readme"


def test_redesigned_studies_are_wired_and_refused_until_their_runners_are_ready() -> None:
    from esrgan_lab.lab import findings

    tool = _tool()
    for name, (notebook, section, _reg) in findings.REDESIGNED.items():
        assert tool.EXPERIMENTS[name][0] == notebook
        assert tool.CONFIG_SECTION[name] == section
        params = tool.study_params(notebook, "full", section)
        assert params["val"] == ["Urban100:val"] and "Urban100:test" in params["test"]
        if name in tool.NOT_READY:
            with pytest.raises(SystemExit, match="runner is not ready"):
                tool.run(name)


def test_architecture_v2_and_deep_trunk_v2_are_dispatched_to_their_runners() -> None:
    import importlib

    tool = _tool()
    targets = {}
    for name in ("architecture_v2", "deep_trunk_v2"):
        assert name not in tool.NOT_READY
        module, func = tool.EXPERIMENTS[name][1].split(":")
        targets[name] = getattr(importlib.import_module(module), func)
    assert targets["architecture_v2"] is arch.run_experiment_v2
    assert targets["deep_trunk_v2"] is arch.run_deep_experiment
    params = tool.study_params("01_architecture", "full", tool.CONFIG_SECTION["architecture_v2"])
    arms, optional, _ = arch.arm_plan(params)
    assert list(arms)[-1] == "residual blocks, beta 0.2" == optional[0]
    assert tool.study_params("01_architecture", "full", "study_v2")["val_crop"] == 256


def test_the_runner_resumes_a_study_in_the_precision_of_its_finished_runs(
    tmp_path, monkeypatch
) -> None:
    """On a host where `amp: auto` would pick another precision, `run` trains the rest of a
    study in the precision its finished runs recorded, and says so in the provenance."""
    import json
    from types import SimpleNamespace

    import torch

    from esrgan_lab.training.runtime import native_bf16

    # the precision this host would not pick
    recorded = "none" if native_bf16(torch.device("cpu")) else "bf16"
    tool = _tool()
    folder = tmp_path / "run"
    stage = folder / "0_seed0" / "psnr"
    stage.mkdir(parents=True)
    (stage / "metrics.json").write_text(json.dumps({"amp": recorded, "train_seconds_total": 5}))
    seen: dict = {}

    def study(params, out, **_kw):
        seen["params"] = params
        return {}, {}

    monkeypatch.setattr(tool, "run_folder", lambda name, size: folder)
    monkeypatch.setattr(tool, "ARCHIVE_DIR", tmp_path / "archive")
    monkeypatch.setattr(tool, "_function", lambda target: study)
    monkeypatch.setattr(
        tool, "save", lambda dest, params, results, prov, images: SimpleNamespace(folder=dest)
    )
    monkeypatch.setattr(tool, "provenance", lambda: seen.setdefault("prov", {}))
    tool.run("deep_trunk_v2")
    assert seen["params"]["amp"] == recorded
    assert seen["prov"]["precision"] == (
        "bf16 autocast (channels_last)" if recorded == "bf16" else "fp32 (channels_last)"
    )
    assert seen["prov"]["train_seconds"] == 5


def test_status_counts_finished_runs_once_and_projects_what_is_left(tmp_path, monkeypatch) -> None:
    """A run both archived and still in the run folder counts once; a run with a log and no
    metrics is in progress at its last logged iteration; the projection is the registered
    runs left times the median finished run's training wall time."""
    import json

    tool = _tool()
    folder = tmp_path / "runs" / "architecture_v2"
    archive = tmp_path / "archive" / "architecture_v2"
    for root, rel, seconds in [
        (archive, "0_seed0", 100.0),
        (folder, "0_seed0", 100.0),
        (folder, "0_seed1", 300.0),
        (archive, "0_seed2", 200.0),
    ]:
        stage = root / rel / "psnr"
        stage.mkdir(parents=True)
        record = {"amp": "none", "train_seconds_total": seconds, "val_psnr_y": 23.0}
        (stage / "metrics.json").write_text(json.dumps(record))
    running = folder / "0_seed3" / "psnr"
    running.mkdir(parents=True)
    (running / "log.csv").write_text("iter,l_pix\n0,\n60,0.1\n120,0.09\n")
    monkeypatch.setattr(tool, "run_folder", lambda name, size: folder)
    monkeypatch.setattr(tool, "ARCHIVE_DIR", tmp_path / "archive")
    lines = tool.status("architecture_v2").splitlines()
    assert lines[0] == "architecture_v2: 3 of 20 runs finished"
    assert sum(line.endswith("s  fp32  val 23.00 dB") for line in lines) == 3
    assert lines[4].split() == [
        "0_seed3/psnr",
        "in",
        "progress:",
        "iteration",
        "120",
        "of",
        "6,000",
    ]
    assert lines[-1].startswith("projection: 17 runs left x 200 s") and "= 0.9 h" in lines[-1]


def test_a_study_trains_in_one_precision_chosen_once() -> None:
    """`--amp none` starts a study in fp32 on a bf16 host so that any host can finish it;
    afterwards the finished runs decide, and a contradicting request is refused."""
    pick = _tool().study_precision
    assert pick("s", None, None, "bf16") == "bf16"  # amp: auto on a native-bf16 host
    assert pick("s", None, None, "none") == "none"
    assert pick("s", None, "none", "bf16") == "none"  # pinned to fp32 at the start
    assert pick("s", "none", None, "bf16") == "none"  # the finished runs decide
    assert pick("s", "bf16", "bf16", "bf16") == "bf16"
    with pytest.raises(SystemExit, match="finished runs trained with amp 'none', not 'bf16'"):
        pick("s", "none", "bf16", "bf16")
    with pytest.raises(SystemExit, match="lacks natively"):
        pick("s", None, "bf16", "none")
    with pytest.raises(SystemExit, match="lacks natively"):
        pick("s", "bf16", None, "none")
