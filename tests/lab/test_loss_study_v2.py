"""The redesigned losses study (losses_v2, issue 28): arms, brightness errors, NIQE at
matched Y-PSNR, findings from a stored result, and a tiny resumable run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from esrgan_lab.lab import findings as F
from esrgan_lab.lab import loss_study as ls
from esrgan_lab.lab import loss_study_v2 as lv
from esrgan_lab.lab.experiments import notebook_params
from esrgan_lab.lab.runs import make_config

ARMS = (
    "L1 + perceptual",
    "L1 + perceptual + RaGAN (ESRGAN)",
    "L1 + perceptual + standard GAN",
    "L1 + perceptual (after ReLU) + RaGAN",
)


def test_registered_arms_map_to_their_loss_configs() -> None:
    """The four registered arms on the shipped recipe: GAN type and weight, and the
    perceptual layer before (conv5_3) or after (relu5_3) activation; every other field is
    the recipe's, the study's sizes override it."""
    params = notebook_params("03_losses")["study_v2"]
    assert tuple(params["arms"]) == ARMS
    base = lv.matched_config(params)
    assert (base.gan.total_iter, base.data.batch_size, base.data.gt_size) == (1400, 8, 128)
    assert base.gan.ema_decay == 0.99 and base.data.val_crop == 256
    assert base.data.val == ["Urban100:val"] and base.data.train == ["BSD68", "SunHays80"]
    # From configs/lab_gan.yaml: eta, lambda, perceptual weight and backbone, half-width D.
    assert (base.gan.pixel_weight, base.gan.gan_weight) == (1e-2, 5e-3)
    assert base.gan.perceptual.weight == 0.2 and base.gan.perceptual.backbone == "vgg16-hed"
    assert base.gan.discriminator.type == "vgg" and base.gan.discriminator.num_feat == 32
    assert (base.model.num_feat, base.model.num_block) == (32, 3)
    expected = {
        ARMS[0]: ("conv5_3", 0.0, None),
        ARMS[1]: ("conv5_3", 5e-3, "ragan"),
        ARMS[2]: ("conv5_3", 5e-3, "vanilla"),
        ARMS[3]: ("relu5_3", 5e-3, "ragan"),
    }
    variants = lv.matched_variants(params)
    assert [v.name for v in variants] == list(ARMS)
    for v in variants:
        layer, gan_weight, gan_type = expected[v.name]
        cfg = make_config(base, **v.overrides(base))
        assert cfg.gan.perceptual.layers == {layer: 1.0}
        assert cfg.gan.perceptual.weight == 0.2 and cfg.gan.gan_weight == gan_weight
        if gan_type:
            assert cfg.gan.gan_type == gan_type
    with pytest.raises(ValueError, match="unknown arm"):
        lv.matched_variants({**params, "arms": ["L1 only"]})
    with pytest.raises(ValueError, match="convB_K"):
        ls.relu_of("relu5_3")


def _gauss_lowpass(y: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian (truncated at 4 sigma, mirrored borders) in plain numpy."""
    r = int(4 * sigma + 0.5)
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-(x**2) / (2 * sigma**2))
    k /= k.sum()
    p = np.pad(y, r, mode="symmetric")
    rows = np.stack([np.convolve(row, k, mode="valid") for row in p])
    return np.stack([np.convolve(col, k, mode="valid") for col in rows.T]).T


def test_brightness_errors_against_a_numpy_oracle() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(20, 230, (44, 40, 3)).astype(np.uint8)
    sr = np.clip(gt.astype(int) + rng.integers(-15, 25, gt.shape), 0, 255).astype(np.uint8)
    b, g, r = (c.astype(np.float64) for c in np.moveaxis(sr, -1, 0))
    y_sr = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    b, g, r = (c.astype(np.float64) for c in np.moveaxis(gt, -1, 0))
    y_gt = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    mean_err, rmse = lv.brightness_errors(sr, gt, crop_border=4)
    assert mean_err == pytest.approx(y_sr[4:-4, 4:-4].mean() - y_gt[4:-4, 4:-4].mean(), abs=1e-9)
    low = _gauss_lowpass(y_sr, 4.0) - _gauss_lowpass(y_gt, 4.0)
    assert rmse == pytest.approx(np.sqrt(np.mean(low[4:-4, 4:-4] ** 2)), rel=1e-9)
    # A uniform shift of 10 grey levels in R, G and B: Y moves by 10 * 219 / 255, everywhere.
    dark = gt - 10
    shift = 10 * (65.481 + 128.553 + 24.966) / 255
    assert lv.brightness_errors(dark, gt, 4) == pytest.approx((-shift, shift), rel=1e-9)
    # Gray images are their own Y, as for PSNR.
    gray_sr, gray_gt = sr[..., 1], gt[..., 1]
    m, _ = lv.brightness_errors(gray_sr, gray_gt, 0)
    assert m == pytest.approx(gray_sr.mean() - gray_gt.mean())


def _rec(seed: int, psnr: list[float], niqe: list[float], *, y_err=(0.0,), low=(0.0,)) -> dict:
    """A run record with a one-image curve; the alpha-1 entry is its test scores."""
    curve = [
        {"T": {"psnr": [p], "niqe": [n], "mean_y_error": list(y_err), "lowpass_rmse": list(low)}}
        for p, n in zip(psnr, niqe)
    ]
    return {"seed": seed, "curve": curve, "test": curve[-1], "curves": {}}


ALPHAS = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_niqe_at_matched_psnr_on_a_synthetic_curve() -> None:
    # A falls fast in PSNR; B's curve (listed out of PSNR order at the end) spans
    # 27.5-30 dB, so only A's alphas 0.2 (29 dB) and 0.4 (28.25 dB) are read.
    a = _rec(0, [30, 29, 28.25, 27, 26, 25], [8, 7, 6, 5, 4, 3])
    b = _rec(0, [30, 29.5, 29, 28.5, 27.5, 28], [8, 7.8, 7.6, 7.4, 7.0, 7.2])
    reads = lv.matched_niqe(ALPHAS, a, b)
    # B at 29 dB: 7.6; at 28.25 dB: halfway between 7.4 (28.5) and 7.2 (28.0) = 7.3.
    assert reads == {0.2: (7.0, pytest.approx(7.6)), 0.4: (6.0, pytest.approx(7.3))}
    results = {"alphas": ALPHAS, "runs": {"A": [a], "B": [b]}}
    va, vb = F.ENDPOINTS["niqe_at_matched_psnr"](results, ("A", "B"), None)
    assert va[0][0] - vb[0][0] == pytest.approx(((7 - 7.6) + (6 - 7.3)) / 2)
    # Alpha 0 (the shared start) never counts: a curve that spans only it has no value.
    c = _rec(0, [30, 31, 32, 33, 34, 35], [8] * 6)
    results["runs"]["C"] = [c]
    with pytest.raises(ValueError, match="spans the Y-PSNR of none"):
        F.ENDPOINTS["niqe_at_matched_psnr"](results, ("C", "A"), None)


def _synthetic_results() -> tuple[dict, dict]:
    """Four arms, three seeds, six alphas on one two-image set; the hand-computed
    registered effects per claim."""
    rng = np.random.default_rng(3)
    runs, expected = {}, {}
    ends = {ARMS[0]: 26.0, ARMS[1]: 24.0, ARMS[2]: 24.5, ARMS[3]: 24.2}
    for arm_index, arm in enumerate(ARMS):
        runs[arm] = []
        for seed in range(3):
            end = ends[arm] - 0.1 * seed
            psnr = list(np.linspace(28.0, end, 6))
            niqe = [7.0 - (0.5 + 0.2 * arm_index + 0.05 * seed) * k for k in range(6)]
            y_err = list(rng.normal(arm_index, 1.0, 2))
            low = list(rng.uniform(1, 3, 2) + arm_index)
            curve = [
                {
                    "T": {
                        "psnr": [p, p],
                        "niqe": [n - 0.1, n + 0.1],
                        "mean_y_error": y_err,
                        "lowpass_rmse": low,
                    }
                }
                for p, n in zip(psnr, niqe)
            ]
            runs[arm].append({"seed": seed, "curve": curve, "test": curve[-1], "curves": {}})
    for a, b in ((ARMS[1], ARMS[2]), (ARMS[1], ARMS[0]), (ARMS[1], ARMS[3])):
        diffs = []
        for ra, rb in zip(runs[a], runs[b]):
            pa, na = lv.interpolation_curve(ra)
            pb, nb = lv.interpolation_curve(rb)
            gaps = []
            for k in range(1, 6):  # A's alphas 0.2-1.0
                if pb.min() <= pa[k] <= pb.max():
                    order = np.argsort(pb)
                    gaps.append(na[k] - np.interp(pa[k], pb[order], nb[order]))
            diffs.append(np.mean(gaps))
        expected[(a, b)] = float(np.mean(diffs))
    bright = [
        np.mean(np.abs(ra["test"]["T"]["mean_y_error"]))
        - np.mean(np.abs(rb["test"]["T"]["mean_y_error"]))
        for ra, rb in zip(runs[ARMS[1]], runs[ARMS[3]])
    ]
    expected["brightness"] = float(np.mean(bright))
    flat = {"T": {"psnr": [28.0, 28.0], "niqe": [6.9, 7.1], "mean_y_error": [0, 0]}}
    results = {
        "alphas": ALPHAS,
        "seeds": [0, 1, 2],
        "arms": list(ARMS),
        "variants": list(ARMS),
        "images": {"T": ["a", "b"]},
        "bicubic": {"T": {"psnr": [23.0, 23.5], "niqe": [7.5, 7.7]}},
        "start": flat | {"weights": "lab-psnr-x4"},
        "active_fraction": {
            "layer": "conv5_3",
            "backbone": "vgg16-hed",
            "patches": 16,
            "gt_size": 128,
            "ground_truth": {"conv5_3": 0.3},
            "start_output": {"conv5_3": 0.25},
        },
        "runs": runs,
    }
    return results, expected


def test_findings_render_from_a_tiny_stored_result(tmp_path, monkeypatch) -> None:
    """A stored results.json in the layout run_matched writes renders every registered
    claim of losses_v2, with the hand-computed effects."""
    from esrgan_lab.lab import experiments as ex

    results, expected = _synthetic_results()
    reg = F.registration("losses_v2")
    prov = {"registration": {"sha256": F.registration_hash(reg), "registered": "before the run"}}
    ex.save(tmp_path / "losses_v2", {"note": "synthetic"}, results, prov)
    monkeypatch.setattr(ex, "EXPERIMENTS_DIR", tmp_path)
    found = {f.claim.id: f for f in F.study_findings("losses_v2")}
    assert set(found) == {c["id"] for c in reg["claims"]}
    pairs = {
        "ragan_vs_standard_gan": (ARMS[1], ARMS[2]),
        "adversarial_term": (ARMS[1], ARMS[0]),
        "before_activation": (ARMS[1], ARMS[3]),
    }
    for cid, arms in pairs.items():
        assert found[cid].effect.mean == pytest.approx(expected[arms], abs=1e-9)
        assert found[cid].effect.seeds == (0, 1, 2)
    bright = found["before_activation_brightness"]
    assert bright.effect.mean == pytest.approx(expected["brightness"], abs=1e-9)
    assert bright.effect.image_pairs == 6  # per-image |mean Y error|, 2 images x 3 seeds
    for f in found.values():
        text = F.render(f)
        assert "registered before the run" in text and "95 % interval" in text
        assert "against bicubic on the test images" in text
    assert "Second endpoint, RMSE of Y after a Gaussian low-pass" in F.render(bright)
    assert "Active fraction of conv5_3" in F.render(found["before_activation"])
    assert "Secondary, per alpha of A" in F.render(found["adversarial_term"])


# --------------------------------------------------------------------------- tiny run


def _tiny_study(tmp_path) -> dict:
    import cv2
    import yaml

    from esrgan_lab.weights.checkpoints import save_checkpoint
    from tests.helpers import make_tiny

    rng = np.random.default_rng(0)
    folders = {}
    for name, count, size in (("train", 2, 48), ("val", 1, 40), ("test", 2, 200)):
        folder = tmp_path / name
        folder.mkdir()
        for k in range(count):
            # Smooth gradients and blocks: structure NIQE can fit, edges the model can learn.
            base = np.kron(rng.integers(30, 220, (size // 8, size // 8, 3)), np.ones((8, 8, 1)))
            ramp = np.linspace(0, 30, size)[None, :, None]
            cv2.imwrite(
                str(folder / f"{name}{k}.png"), np.clip(base + ramp, 0, 255).astype(np.uint8)
            )
        folders[name] = str(folder)
    tiny = {"num_feat": 4, "num_block": 1, "num_grow_ch": 4}
    recipe = {
        "scale": 4,
        "stages": ["gan"],
        "model": tiny,
        "data": {"train": ["x"], "val": [], "gt_size": 16, "batch_size": 2, "num_workers": 0},
        "gan": {
            "total_iter": 1000,
            "learning_rate": 1e-3,
            "pixel_weight": 1e-2,
            "gan_weight": 5e-3,
            "perceptual": {"layers": {"conv2_2": 1.0}, "weight": 0.2, "backbone": "vgg16-hed"},
            "discriminator": {"type": "unet", "num_feat": 4},
        },
        "logging": {"log_every": 1, "val_every": 100, "save_every": 1, "keep_checkpoints": 1},
        "runtime": {"device": "cpu", "num_threads": 1},
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    start = tmp_path / "start.safetensors"
    save_checkpoint(make_tiny(seed=5, **tiny), start)
    return {
        "recipe": str(tmp_path / "recipe.yaml"),
        "pretrained": str(start),
        "iterations": 2,
        "batch_size": 2,
        "gt_size": 16,
        "ema_decay": 0.5,
        "backbone": "random",
        "perceptual_layer": "conv2_2",
        "seeds": [3],
        "arms": list(ARMS),
        "alphas": [0.0, 0.5, 1.0],
        "train": [folders["train"]],
        "val": [folders["val"]],
        "val_crop": 32,
        "test": [folders["test"]],
        "gallery_image": "test/test0",
        "gallery_box": 32,
        "threads": 1,
    }


def test_tiny_study_trains_scores_and_resumes(tmp_path, monkeypatch, niqe_params) -> None:
    from esrgan_lab.lab import runs
    from esrgan_lab.lab.experiments import pooled_score, study_weights, test_sets
    from esrgan_lab.training import trainer
    from esrgan_lab.weights.checkpoints import interpolate, load_checkpoint
    from esrgan_lab.weights.loading import model_from_state_dict

    params = _tiny_study(tmp_path)
    out = tmp_path / "runs"
    results, images = lv.run_matched(params, out)
    assert results["arms"] == list(ARMS) and results["alphas"] == [0.0, 0.5, 1.0]
    assert results["layers"][ARMS[3]] == "relu2_2" and results["layers"][ARMS[0]] == "conv2_2"
    af = results["active_fraction"]
    assert af["layer"] == "conv2_2" and 0 < af["ground_truth"]["conv2_2"] < 1
    assert set(images) == {"gallery_gt", "gallery_bicubic"} | {
        f"gallery_model{i}" for i in range(4)
    }
    test = test_sets({**params, "scale": 4})
    start_sd = load_checkpoint(study_weights(params["pretrained"]))
    first_pix = set()
    for i, arm in enumerate(ARMS):
        (rec,) = results["runs"][arm]
        assert (
            rec["seed"] == 3 and rec["iterations"] == 2 and rec["layer"] == results["layers"][arm]
        )
        assert len(rec["curve"]) == 3
        assert rec["curve"][0] == {k: v for k, v in results["start"].items() if k != "weights"}
        assert rec["test"] == rec["curve"][2]
        assert len(rec["curves"]["val_psnr"]) >= 1  # validation on the 32 px central crop
        run = runs.read_run(arm, out / f"{i}_seed3" / "gan")
        assert (run.metrics["discriminator"] is None) == (i == 0)  # no GAN, no D
        if i:
            assert run.metrics["gan_type"] == ("vanilla" if "standard" in arm else "ragan")
        # alpha 1 is the exported EMA generator; alpha 0.5 its blend with the start model
        direct = lv.score_model_v2(run.model(), test)
        assert rec["test"]["test"]["psnr"] == pytest.approx(direct["test"]["psnr"])
        half = model_from_state_dict(
            interpolate(start_sd, load_checkpoint(run.weights_file()), 0.5)
        )
        assert rec["curve"][1]["test"]["niqe"] == pytest.approx(
            lv.score_model_v2(half, test)["test"]["niqe"]
        )
        assert all(np.isfinite(pooled_score(s, "niqe")) for s in rec["curve"])
        first_pix.add(round(float(run.log["l_pix"][0]), 9))
    # Same seed, same start and batches: every arm sees the same first pixel loss.
    assert len(first_pix) == 1

    # Rerun: nothing is trained or scored again.
    def refuse(*a, **k):
        raise AssertionError("repeated work on a rerun")

    monkeypatch.setattr(trainer.Trainer, "_train_loop", refuse)
    monkeypatch.setattr(lv, "score_model_v2", refuse)
    again, _ = lv.run_matched(params, out)
    assert json.dumps(again["runs"], sort_keys=True) == json.dumps(results["runs"], sort_keys=True)
    # Interrupted after training and scoring one run but before its record was written:
    # the rerun reads the stored alphas (no rescoring) and the finished run (no training).
    (out / "1_seed3" / "scores.json").unlink()
    again, _ = lv.run_matched(params, out)
    assert again["runs"][ARMS[1]] == results["runs"][ARMS[1]]
