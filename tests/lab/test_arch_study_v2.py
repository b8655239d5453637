"""Issue 28's architecture studies: the arms, the stopping rule, the resumable runners and
the findings they render (tiny sizes: a few iterations of a 4-channel trunk)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from esrgan_lab.errors import ConfigError
from esrgan_lab.lab import arch_study as arch
from esrgan_lab.lab import findings as F
from esrgan_lab.model.srresnet import SRResNetTrunk, matched_residual_blocks

ARMS = [
    "RRDB, beta 0.2 (ESRGAN)",
    "RRDB, beta 1",
    "residual blocks, beta 1 (SRResNet)",
    "residual blocks, beta 0.2",
]
DEEP = [v.name for v in arch.INIT_VARIANTS]


def _folders(tmp_path) -> tuple[str, str]:
    """Training and test folders of smooth synthetic 48x48 images; the test folder holds a
    gray image too (scored on its gray values by the standard protocol)."""
    import cv2

    rng = np.random.default_rng(0)
    train, test = tmp_path / "train", tmp_path / "test"
    for folder in (train, test):
        folder.mkdir(exist_ok=True)
    for i in range(3):
        base = rng.integers(0, 256, (6, 6, 3)).astype(np.float64)
        img = np.kron(base, np.ones((8, 8, 1))).astype(np.uint8)
        cv2.imwrite(str(train / f"t{i}.png"), img)
        if i < 2:
            cv2.imwrite(str(test / f"c{i}.png"), img[::-1].copy())
    cv2.imwrite(str(test / "gray.png"), img[:, :, 1].copy())
    return str(train), str(test)


def _params(tmp_path, **kw) -> dict:
    train, test = _folders(tmp_path)
    return {
        "num_feat": 4,
        "num_block": 1,
        "num_grow_ch": 4,
        "scale": 4,
        "gt_size": 16,
        "batch_size": 2,
        "iterations": 4,
        "learning_rate": 1e-3,
        "val_every": 2,
        "val_crop": 32,
        "seeds": [0, 1],
        "arms": ["residual blocks, beta 0.2", "RRDB, beta 1"],
        "optional_arms": ["residual blocks, beta 0.2"],
        "train": [train],
        "val": [f"{train}[:1]"],
        "test": [test],
        "gallery_image": "test/c0",
        "gallery_box": 16,
        "threads": 1,
    } | kw


# --------------------------------------------------------------------------- arms


def test_arms_build_the_registered_models(tmp_path) -> None:
    """Each registered arm name gives its block type and beta; residual-block arms get the
    block count matching the RRDB trunk's parameters."""
    from esrgan_lab.lab.runs import make_config
    from esrgan_lab.model.rrdbnet import RRDBNet, count_parameters
    from esrgan_lab.training.trainer import Trainer

    arms, optional, not_run = arch.arm_plan(
        {"num_feat": 16, "num_grow_ch": 8, "num_block": 2, "arms": ARMS}
        | {"optional_arms": ["residual blocks, beta 0.2"]}
    )
    assert list(arms) == ARMS and optional == ["residual blocks, beta 0.2"] and not not_run
    base = {"model": {"num_feat": 16, "num_block": 2, "num_grow_ch": 8}}
    built = {
        n: Trainer(make_config(base, **o), tmp_path).build_generator() for n, o in arms.items()
    }
    expect = {ARMS[0]: (RRDBNet, 0.2), ARMS[1]: (RRDBNet, 1.0), ARMS[2]: (SRResNetTrunk, 1.0)}
    expect[ARMS[3]] = (SRResNetTrunk, 0.2)
    for name, (cls, beta) in expect.items():
        model = built[name]
        assert type(model) is cls, name
        assert all(b.res_scale == beta for b in model.body), name
    blocks = matched_residual_blocks(16, 8, 2)
    assert built[ARMS[2]].num_block == built[ARMS[3]].num_block == blocks > 2
    rrdb, res = count_parameters(built[ARMS[0]]), count_parameters(built[ARMS[2]])
    assert abs(res - rrdb) / rrdb < 0.05  # matched parameters (as the stored study)


def test_optional_arms_go_last_or_not_at_all() -> None:
    params = {"num_feat": 8, "num_grow_ch": 4, "num_block": 1}
    params |= {"arms": [ARMS[3], ARMS[0]], "optional_arms": [ARMS[3]]}
    arms, optional, not_run = arch.arm_plan(params)
    assert list(arms) == [ARMS[0], ARMS[3]] and optional == [ARMS[3]] and not_run == []
    arms, optional, not_run = arch.arm_plan(params, optional=False)
    assert list(arms) == [ARMS[0]] and optional == [] and not_run == [ARMS[3]]
    with pytest.raises(ConfigError, match="unknown architecture arm"):
        arch.arm_plan(params | {"arms": ["RRDB, beta 0.5"]})


# --------------------------------------------------------------------------- stopping rule


def _records(gains: list[float], iterations: int) -> list[dict]:
    """Per seed, a validation curve that gains ``gain`` over the second half."""
    half = iterations // 2
    return [
        {"seed": s, "curves": {"val_psnr": [[0, 20.0], [half, 25.0], [iterations, 25.0 + g]]}}
        for s, g in enumerate(gains)
    ]


def _rule(gains_by_length: dict[int, dict[str, list[float]]]):
    calls: list[int] = []

    def train(iterations: int) -> dict[str, list[dict]]:
        calls.append(iterations)
        return {a: _records(g, iterations) for a, g in gains_by_length[iterations].items()}

    return arch.stopping_rule(train, 6000), calls


def test_stopping_rule_flat_curves_keep_the_registered_length() -> None:
    # Seed-mean gains 0.09 and 0.05 dB: both below 0.10 (one seed above it does not count).
    (used, checks, label), calls = _rule({6000: {"a": [0.16, 0.02], "b": [0.05, 0.05]}})
    assert (used, label, calls) == (6000, None, [6000])
    assert checks[0]["window"] == [3000, 6000]
    assert checks[0]["gains"]["a"] == pytest.approx(0.09)


def test_stopping_rule_repeats_at_twice_the_length_then_labels() -> None:
    not_flat = {"a": [0.05, 0.05], "b": [0.10, 0.10]}  # 0.10 is not below 0.10
    (used, checks, label), calls = _rule({6000: not_flat, 12000: {"a": [0.0], "b": [0.01]}})
    assert (used, label, calls) == (12000, None, [6000, 12000])
    assert checks[0]["not_flat"] == ["b"] and checks[1]["window"] == [6000, 12000]
    (used, checks, label), calls = _rule({6000: not_flat, 12000: {"a": [0.3], "b": [0.0]}})
    assert (used, calls) == (12000, [6000, 12000])
    assert label == "validation curve not flat at 12,000 iterations"
    # A run without the validation points (diverged early) leaves the gain undefined: not flat.
    short = [{"seed": 0, "curves": {"val_psnr": [[0, 20.0], [500, 9.0]]}}]
    assert not arch.flatness({"a": short}, 6000)["flat"]


# --------------------------------------------------------------------------- runners


def _order(text: str) -> list[tuple[str, int]]:
    out = []
    for line in text.splitlines():
        if " seed " in line and " s  val PSNR" in line:
            name, rest = line.split(" seed ", 1)
            out.append((name.strip(), int(rest.split(":")[0])))
    return out


@pytest.mark.parametrize("flat", [True, False])
def test_architecture_v2_trains_optional_arm_last_and_resumes(
    tmp_path, capsys, monkeypatch, flat: bool
) -> None:
    """``flat``: every curve counts as flat (threshold +inf), or none (-inf: the repeat at
    twice the length, then the label)."""
    monkeypatch.setattr(arch, "FLAT_DB", float("inf") if flat else float("-inf"))
    params = _params(tmp_path)
    out = tmp_path / "runs"
    results, images = arch.run_experiment_v2(params, out, progress=True)
    order = _order(capsys.readouterr().out)
    assert sorted(images) == ["gallery_bicubic", "gallery_gt", "gallery_model0", "gallery_model1"]
    assert results["gallery"]["names"]["model1"] == ARMS[3]
    used = results["stopping"]["iterations"]
    # Every seed of the other arm before the optional one, at each length trained.
    first = [(ARMS[1], 0), (ARMS[1], 1), (ARMS[3], 0), (ARMS[3], 1)]
    assert order == (first if flat else first + first)
    assert used == (4 if flat else 8)
    label = results["stopping"]["label"]
    assert label == (None if flat else "validation curve not flat at 8 iterations")
    if not flat:
        assert (out / "repeat_8" / "1_seed1" / "psnr" / "net_g.safetensors").is_file()
    # Folders keep the params' arm index; a repeat keeps the first runs beside it.
    assert (out / "0_seed1" / "psnr" / "net_g.safetensors").is_file()
    assert (out / "1_seed0" / "psnr" / "net_g.safetensors").is_file()
    assert set(results["runs_by_length"]) == ({"4"} if used == 4 else {"4", "8"})
    assert results["runs_by_length"]["4"][ARMS[1]][0]["iterations"] == 4
    run = results["runs"][ARMS[1]][0]
    assert run["iterations"] == used and list(run["test"]) == ["test"]
    assert len(run["test"]["test"]) == 3 and results["images"]["test"] == ["c0", "c1", "gray"]
    # The validation curve is on the central 32 px crops; bicubic is scored on the same.
    assert len(results["bicubic"]["val_images"]) == 1 and np.isfinite(results["bicubic"]["val"])
    assert results["variants"] == [ARMS[1], ARMS[3]] and results["not_run"] == []

    # The layout is the endpoint's: a claim on the two trained arms evaluates.
    claim = F.RegisteredClaim.of(
        F.registration("architecture_v2")["claims"][0] | {"arms": [ARMS[1], ARMS[3]]}
    )
    (found,) = F.evaluate("architecture_v2", results, [claim], "before the run")
    assert found.effect.seeds == (0, 1) and found.effect.image_pairs == 6
    assert "test Y-PSNR per seed" in " ".join(found.notes)

    # A rerun trains nothing and scores nothing again: every stage's weights, checkpoints and
    # metrics untouched, the stored test scores too.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("**/psnr/**/*") if p.is_file()}
    stamps |= {p: p.stat().st_mtime_ns for p in out.rglob("test_scores.json")}
    assert len(stamps) > 4 * 3
    again, _ = arch.run_experiment_v2(params, out, progress=True)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert again["runs"] == results["runs"] and again["stopping"] == results["stopping"]


def test_deep_trunk_v2_trains_the_four_variants_and_scores_them(tmp_path) -> None:
    params = _params(tmp_path, seeds=[0], val_every=1)
    for key in ("arms", "optional_arms", "gallery_image"):
        params.pop(key)
    results, images = arch.run_deep_experiment(params, tmp_path / "deep")
    assert images == {} and results["variants"] == DEEP
    assert all(len(results["runs"][a][0]["test"]["test"]) == 3 for a in DEEP)
    # Test images scored as `esrgan-lab evaluate` scores them (the gray one on its gray values,
    # not as Y of three equal channels, which the training loader would give).
    from esrgan_lab.evaluation.evaluate import evaluate_model
    from esrgan_lab.lab.bn_study import psnr_list
    from esrgan_lab.lab.experiments import test_sets

    ref = [s.psnr for s in evaluate_model("bicubic", params["test"], niqe=False).scores]
    assert results["bicubic"]["test"] == pytest.approx(ref, abs=1e-9)
    as_rgb = psnr_list(None, test_sets(params)["test"])
    assert as_rgb[:2] == pytest.approx(ref[:2]) and abs(as_rgb[2] - ref[2]) > 0.1
    rising = results["rising"]
    assert rising["window"] == [2, 4]
    assert rising["still_rising"] == [a for a in DEEP if rising["gains"][a] > 0.10]
    claims = F.registered_claims("deep_trunk_v2")
    assert {c.endpoint.metric for c in claims} == {"deep_test_psnr"}
    found = F.evaluate("deep_trunk_v2", results, claims, "before the run")
    assert [f.effect.n for f in found] == [1] * 4  # one seed: no interval, but an effect


# --------------------------------------------------------------------------- findings


def _stored(tmp_path, monkeypatch, study: str, results: dict) -> None:
    from esrgan_lab.lab import experiments

    monkeypatch.setattr(experiments, "EXPERIMENTS_DIR", tmp_path)
    prov = {"registration": {"sha256": F.registration_hash(F.registration(study))}}
    prov["registration"]["registered"] = "before the run"
    experiments.save(tmp_path / study, {}, results, prov)


def _v2_results(arms: list[str], a_gain: float, rng) -> dict:
    bicubic = {"val": 22.0, "val_images": [22.0], "Set5": [28.0, 29.0], "Urban100": [23.0]}
    runs = {}
    for k, arm in enumerate(arms):
        runs[arm] = [
            {
                "seed": s,
                "curves": {"val_psnr": [[0, 20.0], [4, 23.0]]},
                "val_final": 23.0 + 0.01 * s,
                "diverged_at": None,
                "test": {
                    "Set5": list(29.0 + (a_gain if k == 0 else 0.0) + rng.normal(0, 0.01, 2)),
                    "Urban100": [24.0 + (a_gain if k == 0 else 0.0) + 0.01 * s],
                },
            }
            for s in range(5)
        ]
    return {"runs": runs, "bicubic": bicubic, "images": {"Set5": ["a", "b"], "Urban100": ["c"]}}


def test_architecture_v2_findings_render_from_a_stored_result(tmp_path, monkeypatch) -> None:
    results = _v2_results(ARMS[:3], 0.3, np.random.default_rng(0))
    results |= {"not_run": [ARMS[3]], "stopping": {"iterations": 12000, "checks": []}}
    results["stopping"]["label"] = "validation curve not flat at 12,000 iterations"
    _stored(tmp_path, monkeypatch, "architecture_v2", results)
    found = {f.claim.id: f for f in F.study_findings("architecture_v2")}
    main = found["rrdb_vs_residual_equal_budget"]
    assert main.outcome == "reproduced" and main.effect.mean == pytest.approx(0.3, abs=0.02)
    assert main.effect.image_pairs == 15 and not main.exploratory
    text = F.render(main, notes=False)
    assert "registered before the run" in text
    assert "**validation curve not flat at 12,000 iterations**" in text
    full = F.render(main)  # per-seed test scores and margins over bicubic, every arm
    assert "(minus bicubic's 26.67 dB): seed 0 27.6" in full and "(+0.9" in full
    assert found["block_at_beta_02"].outcome == "not run"
    assert "**Not run**" in F.render(found["block_at_beta_02"], notes=False)
    assert found["beta_in_rrdb"].outcome == "reproduced"
    assert found["block_at_equal_beta"].outcome == "inconclusive"  # equal arms, seed noise


def test_deep_trunk_v2_findings_carry_still_rising(tmp_path, monkeypatch) -> None:
    # 'init x0.1, beta 1' 0.5 dB above the other three arms on every test image.
    results = _v2_results([DEEP[1], DEEP[0], DEEP[2], DEEP[3]], 0.5, np.random.default_rng(1))
    results["rising"] = {
        "window": [1000, 2000],
        "gains": {a: 0.2 if a == DEEP[1] else 0.0 for a in DEEP},
        "still_rising": [DEEP[1]],
    }
    _stored(tmp_path, monkeypatch, "deep_trunk_v2", results)
    found = {f.claim.id: f for f in F.study_findings("deep_trunk_v2")}
    assert found["deep_both_remedies"].outcome == "inconclusive"
    assert found["deep_both_vs_init_only"].outcome == "contradicted"
    assert found["deep_init_only"].outcome == "reproduced"
    assert found["deep_init_only"].effect.mean == pytest.approx(0.5, abs=0.02)
    init_only = F.render(found["deep_init_only"], notes=False)
    assert "'init x0.1, beta 1' still rising" in init_only and "1,000-2,000" in init_only
    assert "still rising" not in F.render(found["deep_scaling_only"], notes=False)
    stored = json.loads((tmp_path / "deep_trunk_v2" / "results.json").read_text())
    assert stored["rising"]["still_rising"] == [DEEP[1]]


# --------------------------------------------------------------------------- across sessions


def test_deep_study_resumes_from_its_archive_without_training(tmp_path, monkeypatch) -> None:
    """A study run part way in one session and archived (the files that are committed) is
    finished in another whose run folder is gone: the archived runs are read, not trained
    again, and the results equal an uninterrupted run's. The archive keeps no weights of a
    scored run, and refuses to restore under other sizes."""
    from esrgan_lab.lab import runs

    params = _params(tmp_path, seeds=[0], val_every=1)
    for key in ("arms", "optional_arms", "gallery_image"):
        params.pop(key)
    meta = {"registration_sha256": "x", "params": params}
    first, archive = tmp_path / "first", tmp_path / "archive"
    whole, _ = arch.run_deep_experiment(params, first)
    assert arch.score_finished(params, first) == len(DEEP)
    stored = runs.archive_runs(first, archive, meta)
    assert stored == [f"{i}_seed0/psnr" for i in range(len(DEEP))]
    files = sorted(p.name for p in (archive / "0_seed0" / "psnr").iterdir())
    assert files == ["log.csv", "metrics.json", "test_scores.json"]

    second = tmp_path / "second"  # a new session: no run folder, only the archive
    assert runs.restore_runs(archive, second, meta) == stored
    monkeypatch.setattr(runs, "run_config", lambda *a, **k: pytest.fail("trained again"))
    again, _ = arch.run_deep_experiment(params, second)
    assert again == whole
    assert runs.restore_runs(archive, second, meta) == []  # nothing left to restore
    with pytest.raises(ConfigError, match="another registration or size"):
        runs.restore_runs(archive, tmp_path / "third", meta | {"params": {}})
    with pytest.raises(ValueError, match="another registration or size"):
        runs.archive_runs(first, archive, meta | {"registration_sha256": "y"})


def test_an_unscored_run_is_archived_with_its_weights(tmp_path) -> None:
    """architecture_v2 scores only after its stopping rule, so its archived runs keep the
    generator's weights until then (and drop them once scored)."""
    from esrgan_lab.lab import runs

    params = _params(tmp_path, seeds=[0], arms=["RRDB, beta 1"], optional_arms=[])
    runs.train_grid({"a": {}}, arch.study_config(params), tmp_path / "out")
    runs.archive_runs(tmp_path / "out", tmp_path / "archive", {"m": 1})
    stage = tmp_path / "archive" / "0_seed0" / "psnr"
    assert (stage / "net_g.safetensors").read_bytes() == (
        tmp_path / "out" / "0_seed0" / "psnr" / "net_g.safetensors"
    ).read_bytes()
    arch.score_finished(params, tmp_path / "out")
    runs.archive_runs(tmp_path / "out", tmp_path / "archive", {"m": 1})
    assert not (stage / "net_g.safetensors").exists() and (stage / "test_scores.json").is_file()


def test_a_study_trains_every_run_in_the_precision_of_its_first(tmp_path) -> None:
    """A study's arms are compared per seed, so its runs share one precision: `study_amp`
    reads it from the finished runs (None before any), the study config trains in the
    precision it is given, and runs of two precisions are refused, not averaged."""
    from esrgan_lab.lab import runs

    params = _params(tmp_path, seeds=[0], arms=["RRDB, beta 1"], optional_arms=[])
    out = tmp_path / "out"
    assert runs.study_amp(out) is None
    assert arch.study_config(params).runtime.amp == "auto"
    cfg = arch.study_config(params | {"amp": "none"})
    assert cfg.runtime.amp == "none"
    runs.train_grid({"a": {}}, cfg, out)
    assert runs.study_amp(out) == "none"
    # a run recorded in bf16 beside it, as a host with AVX512-BF16 would have trained it
    record = json.loads((out / "0_seed0" / "psnr" / "metrics.json").read_text())
    other = out / "1_seed0" / "psnr"
    other.mkdir(parents=True)
    (other / "metrics.json").write_text(json.dumps(record | {"amp": "bf16"}))
    with pytest.raises(ConfigError, match="different precisions"):
        runs.study_amp(out)
