"""The precision appendix's study: autocast rules, variants side by side, the table."""

from __future__ import annotations

import pytest
import torch

from esrgan_lab.errors import ConfigError
from esrgan_lab.inference import int8 as Q
from esrgan_lab.lab import precision_study as P
from tests.helpers import make_tiny


@pytest.fixture(scope="module")
def reader():
    calibration = [
        Q.CalibrationImage("skimage", n, None, Q.skimage_sample(n))
        for n in Q.SKIMAGE_CALIBRATION[:2]
    ]
    return Q.make_reader(calibration, "vendor")


# --------------------------------------------------------------------------- torch precisions


def test_autocast_rules_and_bf16_accuracy():
    model = make_tiny(spread=True)
    with pytest.raises(ConfigError, match="fp16 autocast needs a CUDA"):
        P.autocast_model(model, "fp16", "cpu")
    bf16 = P.autocast_model(model, "bf16", "cpu")
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        ref, out = model(x), bf16(x)
    assert out.dtype == torch.float32
    d = (out - ref).abs()
    # bf16 keeps 8 mantissa bits: unit roundoff 2**-9 ~ 2e-3 relative on O(1) values
    assert 0 < d.max() < 5e-2 and d.mean() < 1e-2


def test_variants_table_on_one_image(tmp_path, reader, monkeypatch):
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    variants = P.build_variants(
        make_tiny(spread=True),
        tmp_path,
        reader,
        methods=("minmax",),
        include=("fp32", "onnx-fp32", "int8", "int8-openvino"),
    )
    names = [v.name for v in variants]
    assert names == ["fp32 (torch)", "fp32 (ORT)", "int8 minmax (ORT)", "int8 NNCF (OpenVINO)"]
    rows = P.precision_table(
        variants, ["skimage"], protocols=("vendor",), niqe=False, max_images=1, latency_repeats=1
    )
    fp32, ort32, int8, ov8 = rows
    assert fp32.max_abs_diff == 0 and ort32.max_abs_diff < 1e-5
    assert ort32.scores["vendor"]["psnr"] == pytest.approx(fp32.scores["vendor"]["psnr"], abs=0.01)
    assert int8.max_abs_diff > ort32.max_abs_diff and ov8.max_abs_diff > ort32.max_abs_diff
    assert ov8.runtime == "openvino" and variants[-1].path.is_dir()
    # (no file-size check: with 8 channels the QDQ scales and zero points outweigh the
    # 4x smaller weights; the notebook shows the saving at real sizes)
    assert "int8 minmax (ORT)" in P.format_table(rows)
