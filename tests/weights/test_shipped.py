"""The project's own weights load by name and meet their targets (standard protocol, Set5)."""

from __future__ import annotations

import json

import pytest
import torch

from esrgan_lab.evaluation.evaluate import evaluate_model
from esrgan_lab.settings import REPO_ROOT, niqe_params_path
from esrgan_lab.weights.loading import load_model

WEIGHTS = REPO_ROOT / "data" / "weights"


# a trained model maps a flat grey patch to nearly the same grey; the GAN model paints
# some texture on flat areas (measured: mean |out - in| 0.04-0.07), the PSNR model not
@pytest.mark.parametrize("name,tolerance", [("lab-psnr-x4", 0.01), ("lab-gan-x4", 0.1)])
def test_shipped_weights_load_by_name_with_their_card(name: str, tolerance: float) -> None:
    model = load_model(name)
    assert (model.scale, model.num_feat, model.num_block, model.num_grow_ch) == (4, 32, 3, 16)
    assert not model.training
    assert (WEIGHTS / f"{name}.md").is_file(), "every shipped model has a model card"
    with torch.no_grad():
        out = model(torch.full((1, 3, 8, 8), 0.5))
    assert out.shape == (1, 3, 32, 32)
    assert (out - 0.5).abs().mean().item() < tolerance


@pytest.mark.slow
def test_lab_psnr_beats_bicubic_by_1_5_db_and_gan_has_lower_niqe(data_root) -> None:
    niqe = niqe_params_path() is not None
    kw = dict(datasets=["Set5"], scale=4, protocol="standard", niqe=niqe, progress=False)
    bicubic = evaluate_model("bicubic", **{**kw, "niqe": False}).means()["Set5"]
    psnr = evaluate_model("lab-psnr-x4", **kw).means()["Set5"]
    assert psnr["psnr"] >= bicubic["psnr"] + 1.5, (psnr, bicubic)
    card = json.loads((WEIGHTS / "runs" / "eval_lab-psnr-x4.json").read_text())
    # the numbers in the model card are the ones this code measures
    assert psnr["psnr"] == pytest.approx(card["mean"]["Set5"]["psnr"], abs=0.01)
    if not niqe:
        pytest.skip("NIQE pristine model not available: GAN/NIQE half not checked")
    gan = evaluate_model("lab-gan-x4", **kw).means()["Set5"]
    assert gan["niqe"] < psnr["niqe"], (gan, psnr)


@pytest.mark.parametrize("name", ["lab-psnr-x4", "lab-gan-x4"])
def test_shipped_weights_reproduce_their_stored_outputs(name: str) -> None:
    """The weights on disk give the outputs stored with them (tools/make_weights.py), within
    one 8-bit level, by the scoring forward and by ``upscale`` (channels_last, ONNX)."""
    import cv2
    import numpy as np

    from esrgan_lab.evaluation.evaluate import run_model
    from esrgan_lab.inference.upscale import upscale

    folder = WEIGHTS / "reference"
    lq = cv2.imread(str(folder / "astronaut_lq.png"), cv2.IMREAD_UNCHANGED)
    ref = cv2.imread(str(folder / f"{name}_astronaut.png"), cv2.IMREAD_UNCHANGED).astype(int)
    assert lq.shape == (32, 40, 3) and ref.shape == (128, 160, 3)
    model = load_model(name)
    assert np.abs(run_model(model, lq, 4).astype(int) - ref).max() <= 1
    assert np.abs(upscale(lq, model).astype(int) - ref).max() <= 1


# --- the full-size pair (make full-weights) --------------------------------------------


@pytest.mark.parametrize("name", ["full-psnr-x4", "full-gan-x4"])
def test_full_pair_is_the_papers_network_in_fp16_files(name: str) -> None:
    from safetensors import safe_open

    model = load_model(name)
    assert (model.scale, model.num_feat, model.num_block, model.num_grow_ch) == (4, 64, 23, 32)
    assert sum(p.numel() for p in model.parameters()) == 16_697_987
    assert next(model.parameters()).dtype == torch.float32  # fp16 file, fp32 model
    with safe_open(str(WEIGHTS / f"{name}.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    card = (WEIGHTS / f"{name}.md").read_text()
    assert "Real-ESRGAN" in card, "the card says where the weights start from"


@pytest.mark.parametrize("name", ["full-psnr-x4", "full-gan-x4"])
def test_full_pair_reproduces_its_stored_scores(name: str, data_root) -> None:
    """The first Set5 image scored now equals the stored evaluation the card renders."""
    stored = json.loads((WEIGHTS / "runs" / f"eval_{name}.json").read_text())
    first = next(s for s in stored["images"] if s["dataset"] == "Set5")
    report = evaluate_model(name, ["Set5"], niqe=False, progress=False, max_images=1)
    (score,) = report.scores
    assert score.image == first["image"]
    assert score.psnr == pytest.approx(first["psnr"], abs=0.01)
