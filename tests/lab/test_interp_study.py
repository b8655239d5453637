"""Network against pixel interpolation (esrgan_lab.lab.interp_study)."""

from __future__ import annotations

import numpy as np
import pytest

from esrgan_lab.lab import interp_study as interp
from esrgan_lab.weights.checkpoints import save_checkpoint
from tests.helpers import make_tiny


def test_pixel_blend_rounds_the_weighted_mean() -> None:
    a = np.array([[0, 10, 255]], dtype=np.uint8)
    b = np.array([[255, 20, 0]], dtype=np.uint8)
    assert interp.pixel_blend(a, b, 0.0).tolist() == a.tolist()
    assert interp.pixel_blend(a, b, 1.0).tolist() == b.tolist()
    # The project's rounding rule: halves up, as MATLAB's uint8() (178.5 -> 179, 76.5 -> 77).
    expect = np.floor((1 - 0.7) * a.astype(np.float64) + 0.7 * b + 0.5).astype(np.uint8)
    assert expect.tolist() == [[179, 17, 77]]
    assert interp.pixel_blend(a, b, 0.7).tolist() == expect.tolist()


def test_gan_ends() -> None:
    assert interp.gan_ends({"gan": "lab-gan-x4-raw"}) == [{"seed": 0, "weights": "lab-gan-x4-raw"}]
    two = [{"seed": 0, "weights": "a"}, {"seed": 3, "weights": "b.safetensors"}]
    assert interp.gan_ends({"gan": two}) == two
    with pytest.raises(ValueError, match="distinct seed"):
        interp.gan_ends({"gan": [{"seed": 1, "weights": "a"}, {"seed": 1, "weights": "b"}]})


def _sweep(psnr: list[float], niqe: list[float]) -> list[dict]:
    """One test set of one image per alpha."""
    return [{"S": {"psnr": [p], "niqe": [n]}} for p, n in zip(psnr, niqe, strict=True)]


def _results(network_niqe: list[list[float]], gan_val: tuple[float, float] = (24.0, 5.0)) -> dict:
    """Three alphas; the pixel blend goes linearly from (30 dB, 8) to (26 dB, 4); each
    network sweep has the same PSNRs and its own NIQE. On the validation image bicubic
    scores (25 dB, NIQE 7), the PSNR model (26 dB, 8) and every GAN model ``gan_val``."""
    alphas = [0.0, 0.5, 1.0]
    psnr = [30.0, 28.0, 26.0]
    pairs = [
        {
            "seed": s,
            "weights": f"gan{s}",
            "network": _sweep(psnr, niqe),
            "pixel": _sweep(psnr, [8.0, 6.0, 4.0]),
            "val": {"V": {"psnr": [gan_val[0]], "niqe": [gan_val[1]]}},
        }
        for s, niqe in enumerate(network_niqe)
    ]
    return {
        "alphas": alphas,
        "images": {"S": ["x"]},
        "bicubic": {"S": {"psnr": [27.0], "niqe": [7.0]}},
        "weights": {"psnr": "psnr", "gan": "gan0"},
        "pairs": pairs,
        "val": {
            "images": {"V": ["v"]},
            "bicubic": {"V": {"psnr": [25.0], "niqe": [7.0]}},
            "psnr": {"V": {"psnr": [26.0], "niqe": [8.0]}},
        },
    }


def test_validation_margins_are_reported_not_used_to_withhold() -> None:
    sweeps = [[8.0, 5.5, 4.0], [8.0, 5.9, 4.0]]
    ok = interp.description(_results(sweeps))
    assert "`psnr`: +1.00 dB, NIQE -1.00; GAN seed 0: -1.00 dB, NIQE +2.00" in ok["bicubic"]
    bad = interp.description(_results(sweeps, gan_val=(24.5, 7.5)))
    assert "GAN seed 1: -0.50 dB, NIQE -0.50" in bad["bicubic"]  # worse on both, still kept
    assert "versus pixel" in bad and "claim" not in bad


def test_niqe_gap_is_measured_at_equal_psnr() -> None:
    results = _results([[8.0, 5.5, 4.0]])
    # At 28 dB the pixel curve has NIQE 6.0, the network 5.5.
    assert interp.niqe_gaps(results) == {0.5: pytest.approx(-0.5)}


def test_description_counts_alphas_with_every_seed() -> None:
    split = interp.description(_results([[8.0, 5.5, 4.0], [8.0, 6.2, 4.0], [8.0, 5.0, 4.0]]))
    assert (
        "lower NIQE at 0 of 1 intermediate alphas with every seed and the higher at 0 with"
        in split["versus pixel"]
    )
    single = interp.description(_results([[8.0, 6.5, 4.0]]))
    assert "+0.500 at alpha 0.5" in single["versus pixel"]


def test_run_experiment_sweeps_every_gan_seed(tmp_path, data_root, niqe_params) -> None:
    psnr, gan0, gan1 = (tmp_path / f"{n}.safetensors" for n in ("psnr", "gan0", "gan1"))
    save_checkpoint(make_tiny(seed=0, spread=True), psnr)
    save_checkpoint(make_tiny(seed=1, spread=True), gan0)
    save_checkpoint(make_tiny(seed=2, spread=True), gan1)
    params = {
        "psnr": str(psnr),
        "gan": [{"seed": 0, "weights": str(gan0)}, {"seed": 5, "weights": str(gan1)}],
        "alphas": [0.0, 0.5, 1.0],
        "scale": 4,
        "test": ["Set5[:1]"],
        "val": ["Set5[1:2]"],
        "gallery_image": "Set5/baby",
        "gallery_box": 32,
    }
    results, images = interp.run_experiment(params)
    # Every end is also scored on the validation image, for the bicubic gate.
    assert results["val"]["images"] == {"Set5": ["bird"]}
    val_psnr = [results["val"][k]["Set5"]["psnr"][0] for k in ("bicubic", "psnr")]
    val_psnr += [p["val"]["Set5"]["psnr"][0] for p in results["pairs"]]
    assert len(set(val_psnr)) == 4
    assert [p["seed"] for p in results["pairs"]] == [0, 5]
    assert results["weights"] == {"psnr": str(psnr), "gan": str(gan0)}
    for k in range(2):
        net_p, net_n = interp.curve(results, "network", pair=k)
        pix_p, pix_n = interp.curve(results, "pixel", pair=k)
        # Both methods are the PSNR model at alpha 0 and the GAN model at alpha 1.
        assert net_p[[0, -1]] == pytest.approx(pix_p[[0, -1]], abs=1e-9)
        assert net_n[[0, -1]] == pytest.approx(pix_n[[0, -1]], abs=1e-9)
    # The two GAN models differ, so their alpha-1 ends differ; the PSNR end is shared.
    ends = [interp.curve(results, "network", pair=k)[0] for k in range(2)]
    assert ends[0][0] == ends[1][0] and ends[0][-1] != ends[1][-1]
    assert set(images) == {"gallery_gt"} | {
        f"{m}_{t}" for m in ("network", "pixel") for t in ("00", "05", "10")
    }


def test_stored_gan_seeds_reproduce_their_stored_scores(data_root) -> None:
    """The stored sweep names the GAN models its params file pins, and scoring each pinned
    file again gives the Set5 PSNRs stored for alpha 1 (a stored reference output)."""
    import json

    import yaml

    from esrgan_lab.evaluation.evaluate import evaluate_model
    from esrgan_lab.lab.experiments import EXPERIMENTS_DIR, PARAMS_DIR, study_weights

    params = yaml.safe_load((PARAMS_DIR / "04_inference.yaml").read_text())["study"]
    results = json.loads((EXPERIMENTS_DIR / "interpolation" / "results.json").read_text())
    ends = interp.gan_ends(params)
    assert len(ends) >= 3 and len(results["pairs"]) == len(ends)
    for end, pair in zip(ends, results["pairs"], strict=True):
        assert (pair["seed"], pair["weights"]) == (end["seed"], end["weights"])
        report = evaluate_model(
            str(study_weights(end["weights"])), ["Set5"], niqe=False, progress=False
        )
        assert [s.psnr for s in report.scores] == pytest.approx(
            pair["network"][-1]["Set5"]["psnr"], abs=1e-3
        )
