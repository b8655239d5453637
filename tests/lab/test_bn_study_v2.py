"""The redesigned BN study (issue 28): running-statistics and precise-BN scores, the
registered artefact events (colour cast, margin below bicubic), resumable runs, and the
findings rendered from a stored result with the exact McNemar test."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from esrgan_lab.data.paired import PairedImageSet
from esrgan_lab.data.sources import NamedImage
from esrgan_lab.evaluation.evaluate import run_model
from esrgan_lab.lab import bn_study as ab
from esrgan_lab.lab import bn_study_v2 as bv
from esrgan_lab.lab import findings as F
from esrgan_lab.lab.stats import mcnemar_exact, rate_outcome

STUDY = "bn_removal_v2"


def _smooth(seed: int, gray: bool = False) -> np.ndarray:
    """A 48 x 48 uint8 image of upsampled noise in [40, 200] (no clipping when shifted)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (6, 6, 1 if gray else 3)).astype(np.float64)
    img = cv2.resize(base, (48, 48), interpolation=cv2.INTER_LINEAR)
    return np.clip(np.round(img), 0, 255).astype(np.uint8).reshape(48, 48, *(() if gray else (3,)))


def _bicubic(lq: np.ndarray) -> np.ndarray:
    return run_model("bicubic", lq, 4)


def test_registered_thresholds_are_the_ones_implemented() -> None:
    text = " ".join(F.registration(STUDY)["artefact_event"].split())
    assert f"more than {bv.ARTEFACT_BELOW_BICUBIC_DB:.1f} dB below bicubic" in text
    assert f"exceeds {bv.COLOUR_CAST_LEVELS:.0f} grey levels" in text
    assert "largest over R, G, B of |mean(output channel) - mean(ground-truth channel)|" in text


def test_colour_cast_is_the_largest_channel_mean_offset() -> None:
    gt = _smooth(0)
    sr = gt.astype(np.int16)
    sr[..., 2] += 10  # red (BGR) up 10 levels
    sr[..., 0] -= 3
    assert bv.colour_cast(sr.astype(np.uint8), gt) == pytest.approx(10.0)
    gray = _smooth(1, gray=True)
    tinted = np.stack([gray, gray, np.clip(gray.astype(int) + 9, 0, 255).astype(np.uint8)], 2)
    assert bv.colour_cast(tinted, gray) == pytest.approx(9.0)  # gray truth, tinted output
    assert bv.colour_cast(gray, gray) == 0.0
    with pytest.raises(ValueError):
        bv.colour_cast(gt[:40], gt)


def _events(model, pairs: PairedImageSet) -> tuple[list[dict], list[float], list[float]]:
    """The artefact images of ``model`` with the test set ``pairs`` (and no validation)."""
    psnr, cast = bv.score_with_casts(model, pairs)
    results = {
        "images": {"S": pairs.names},
        "bicubic": {"S": ab.psnr_list(None, pairs)},
        "val_images": {"names": [], "bicubic": []},
    }
    rec = {
        "test_running_bn": {"S": psnr},
        "val_images": [],
        "colour_cast": {"test": {"S": cast}, "val": []},
    }
    return bv.artefact_images(results, rec), psnr, cast


def test_artefact_events_on_a_cast_and_on_an_output_below_bicubic() -> None:
    pairs = PairedImageSet([NamedImage("c", _smooth(2)), NamedImage("g", _smooth(3, gray=True))], 4)
    # Bicubic itself: margin 0 and (almost) no cast.
    events, _, cast = _events(_bicubic, pairs)
    assert events == [] and max(cast) < 1.0

    def cast_model(lq: np.ndarray) -> np.ndarray:
        out = _bicubic(lq).astype(np.int16)
        out[..., 1] += 12  # green up 12 levels: a colour cast (also on the gray image's RGB)
        return np.clip(out, 0, 255).astype(np.uint8)

    events, _, cast = _events(cast_model, pairs)
    assert [e["image"] for e in events] == ["c", "g"]
    assert cast == pytest.approx([12.0, 12.0], abs=1.0)

    def noisy(lq: np.ndarray) -> np.ndarray:
        # Zero-mean checkerboard of +-8 levels: no cast, far below bicubic.
        out = _bicubic(lq).astype(np.int16)
        board = np.indices(out.shape[:2]).sum(0) % 2 * 16 - 8
        return np.clip(out + board[..., None], 0, 255).astype(np.uint8)

    events, psnr, cast = _events(noisy, pairs)
    bic = ab.psnr_list(None, pairs)
    assert all(p - b < -1.0 for p, b in zip(psnr, bic, strict=True)) and max(cast) < 1.0
    assert [e["image"] for e in events] == ["c", "g"]
    assert all(e["margin"] < -1.0 and e["cast"] < 1.0 for e in events)


def test_artefact_thresholds_are_strict() -> None:
    results = {
        "images": {"S": ["a", "b"]},
        "bicubic": {"S": [30.0, 30.0]},
        "val_images": {"names": ["v"], "bicubic": [25.0]},
    }

    def rec(margin_a: float, cast_b: float, val_margin: float = 0.0) -> dict:
        return {
            "test_running_bn": {"S": [30.0 + margin_a, 31.0]},
            "val_images": [25.0 + val_margin],
            "colour_cast": {"test": {"S": [0.0, cast_b]}, "val": [0.0]},
        }

    assert not bv.artefact_event(results, rec(-1.0, 8.0))  # "more than", "exceeds"
    assert bv.artefact_images(results, rec(-1.01, 0.0))[0]["image"] == "a"
    assert bv.artefact_images(results, rec(0.0, 8.01))[0]["cast"] == 8.01
    assert bv.artefact_images(results, rec(0.0, 0.0, -1.5)) == [
        {"part": "validation", "image": "v", "margin": -1.5, "cast": 0.0}
    ]


def _params(tmp_path) -> dict:
    """Tiny study_v2-shaped parameters on synthetic folders (one gray test image)."""
    folders = {
        "train": [("t0", _smooth(10)), ("t1", _smooth(11))],
        "val": [("v0", _smooth(12))],
        "setA": [("a", _smooth(13)), ("g", _smooth(14, gray=True))],
        "setB": [("b", _smooth(15))],
    }
    for name, images in folders.items():
        (tmp_path / name).mkdir()
        for stem, img in images:
            cv2.imwrite(str(tmp_path / name / f"{stem}.png"), img)
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
        "precise_bn_batches": 3,
        "seeds": [0, 1],
        "train": [str(tmp_path / "train")],
        "val": [str(tmp_path / "val")],
        "test": [str(tmp_path / "setA"), str(tmp_path / "setB")],
        "other": str(tmp_path / "setB"),
        "gallery_image": "setA/a",
        "gallery_box": 16,
        "threads": 1,
    }


def test_tiny_study_scores_resumes_and_renders(tmp_path, monkeypatch) -> None:
    from esrgan_lab.lab import runs
    from esrgan_lab.lab.experiments import save

    params = _params(tmp_path)
    out = tmp_path / "study"
    results, images = bv.run_experiment_v2(params, out)
    names = [v.name for v in ab.BN_VARIANTS]
    assert results["variants"] == names and results["other"] == "setB"
    assert results["shift_base"] == ["setA"] and results["images"]["setA"] == ["a", "g"]
    for i, name in enumerate(names):
        recs = results["runs"][name]
        assert [r["seed"] for r in recs] == [0, 1]
        for r in recs:
            assert (out / "scores" / f"{i}_seed{r['seed']}.json").is_file()
            assert set(r["shift_gain_running_bn"]) == {
                "original",
                "dark (gain 0.5)",
                "bright (gamma 0.5)",
                "other dataset",
            }
            # 'other dataset' is the gain over bicubic on the other test set itself.
            gain = np.mean(np.subtract(r["test_running_bn"]["setB"], results["bicubic"]["setB"]))
            assert r["shift_gain_running_bn"]["other dataset"] == pytest.approx(gain)
            assert len(r["colour_cast"]["test"]["setA"]) == 2 and len(r["val_images"]) == 1
            if name == names[0]:
                assert not r["precise_bn"] and r["test"] == r["test_running_bn"]
            else:  # precise BN moves the scores of every BN run
                assert r["precise_bn"] and r["test"] != r["test_running_bn"]
    assert "gallery_model0" in images and "worst_bn" in images

    # A rerun reads every stored run back: the trainer is never called.
    def no_training(*args, **kwargs):
        raise AssertionError("a stored run was trained again")

    with monkeypatch.context() as m:
        m.setattr(runs, "train", no_training)
        again, _ = bv.run_experiment_v2(params, out)
    assert json.dumps(again, sort_keys=True) == json.dumps(results, sort_keys=True)

    # A run trained but not yet scored: rescored from the finished run, not retrained.
    stored = out / "scores" / "1_seed1.json"
    weights = out / "train" / "1_seed1" / "psnr" / "net_g.safetensors"
    before = weights.stat().st_mtime_ns
    stored.unlink()
    third, _ = bv.run_experiment_v2(params, out)
    assert weights.stat().st_mtime_ns == before
    assert third["runs"][names[1]][1] == results["runs"][names[1]][1]

    # The findings render from the stored result, the artefact claims by exact McNemar.
    monkeypatch.setattr("esrgan_lab.lab.experiments.EXPERIMENTS_DIR", tmp_path / "stored")
    prov = {
        "registration": {
            "sha256": F.registration_hash(F.registration(STUDY)),
            "registered": "before the run",
        }
    }
    save(tmp_path / "stored" / STUDY, params, results, prov, images)
    found = F.study_findings(STUDY)
    assert [f.claim.id for f in found] == [c.id for c in F.registered_claims(STUDY)]
    for f in found:
        text = F.render(f)
        assert "registered before the run" in text and f.effect.seeds == (0, 1)
        if f.claim.endpoint.metric == "artefact_event":
            a, b = (
                [bv.artefact_event(results, r) for r in results["runs"][arm]]
                for arm in f.claim.arms
            )
            assert f.rate_test == mcnemar_exact(a, b)
            assert f.outcome == rate_outcome(f.rate_test, "higher")
            assert "exact two-sided McNemar" in text and "artefact events" in text
        else:
            assert f.rate_test is None
    lr = {f.claim.id: f for f in found}["no_bn_higher_psnr_lr"]
    plain, bn = (results["runs"][arm] for arm in lr.claim.arms)
    expected = [
        np.mean(bv._pooled(p["test_running_bn"])) - np.mean(bv._pooled(q["test_running_bn"]))
        for p, q in zip(plain, bn, strict=True)
    ]
    assert lr.effect.differences == pytest.approx(expected)


def _events_results(a_events: list[int], b_events: list[int]) -> dict:
    """A stored-result shape where each run's one test image has a cast of 20 levels when
    its event flag is set."""
    names = [v.name for v in ab.BN_VARIANTS]
    flags = {names[1]: a_events, names[0]: b_events, names[2]: [0] * len(a_events)}

    def rec(seed: int, event: int) -> dict:
        return {
            "seed": seed,
            "test_running_bn": {"S": [30.0]},
            "val_images": [25.0],
            "colour_cast": {"test": {"S": [20.0 * event]}, "val": [0.0]},
        }

    return {
        "variants": names,
        "images": {"S": ["x"]},
        "bicubic": {"S": [29.0], "val": 24.0},
        "val_images": {"names": ["v"], "bicubic": [24.0]},
        "runs": {n: [rec(s, e) for s, e in enumerate(flags[n])] for n in names},
    }


def test_artefact_outcome_comes_from_mcnemar_not_the_t_interval() -> None:
    claim = next(c for c in F.registered_claims(STUDY) if c.id == "bn_artefacts_lr")
    # 5 of 8 seeds with an event in BN-in-LR only: the t interval of the indicators lies
    # above 0, but the exact McNemar p is 2/32 = 0.0625: inconclusive, as registered.
    results = _events_results([1, 1, 1, 1, 1, 0, 0, 0], [0] * 8)
    (f,) = F.evaluate(STUDY, results, [claim], "before the run")
    assert f.effect.low > 0
    assert f.rate_test.p_value == pytest.approx(0.0625) and f.outcome == "inconclusive"
    assert "Events: A 5 of 8 seeds, B 0 of 8" in F.render(f)
    # 6 of 8: p = 2/64, reproduced.
    (g,) = F.evaluate(STUDY, _events_results([1] * 6 + [0, 0], [0] * 8), [claim], "before the run")
    assert g.outcome == "reproduced"
    # More events without BN: contradicted.
    (h,) = F.evaluate(STUDY, _events_results([0] * 8, [1] * 7 + [0]), [claim], "before the run")
    assert h.outcome == "contradicted"


def test_study_v2_is_wired_to_this_runner_and_scores_bridge_as_gray(data_root) -> None:
    """``make experiments NAME=bn_removal_v2`` runs :func:`run_experiment_v2` at
    ``study_v2`` with the registered 'other dataset'; the test sets keep Set14's bridge
    gray, which gives the published bicubic x4 mean on Set14 (26.00 dB)."""
    from esrgan_lab.lab.experiments import study_config, test_sets
    from tests.lab.test_experiments import _tool

    tool = _tool()
    assert STUDY not in tool.NOT_READY
    assert tool.EXPERIMENTS[STUDY][1] == "esrgan_lab.lab.bn_study_v2:run_experiment_v2"
    params = tool.study_params("02_bn_removal_ablation", "full", tool.CONFIG_SECTION[STUDY])
    assert params["other"] == "Urban100:test" and params["seeds"] == list(range(8))
    assert study_config(params).data.val_crop == params["val_crop"] == 256
    sets = test_sets(params, gray=True, sources=["Set14"])
    bridge = next(p for p in sets["Set14"] if p.name == "bridge")
    assert bridge.gt.ndim == 2
    assert np.mean(ab.psnr_list(None, sets["Set14"])) == pytest.approx(26.00, abs=0.02)
