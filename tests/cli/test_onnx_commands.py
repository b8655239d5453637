"""``esrgan-lab export --fp16`` and ``esrgan-lab quantize`` through the command line."""

from __future__ import annotations

import numpy as np
import pytest

from esrgan_lab.cli import main
from esrgan_lab.inference.onnx import OnnxModel, read_metadata
from esrgan_lab.weights.checkpoints import save_checkpoint
from tests.helpers import make_tiny


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("w")
    return save_checkpoint(make_tiny(spread=True), folder / "tiny.safetensors")


def test_export_fp16_and_fp32(tmp_path, checkpoint, capsys):
    fp16, fp32 = tmp_path / "m16.onnx", tmp_path / "m32.onnx"
    assert main(["export", "--weights", str(checkpoint), "-o", str(fp16), "--fp16"]) == 0
    assert main(["export", "--weights", str(checkpoint), "-o", str(fp32)]) == 0
    assert read_metadata(fp16)["precision"] == "fp16" and read_metadata(fp32)["precision"] == "fp32"
    x = np.random.default_rng(0).random((1, 3, 12, 12), dtype=np.float32)
    a, b = OnnxModel(fp16).run(x), OnnxModel(fp32).run(x)
    assert a.shape == b.shape == (1, 3, 48, 48)
    assert 0 < np.abs(a - b).max() < 1e-2  # fp16 rounding: visible, small
    assert fp16.stat().st_size < 0.7 * fp32.stat().st_size


def test_export_random_only_by_name(tmp_path, capsys):
    out = tmp_path / "r.onnx"
    assert main(["export", "--weights", "auto", "-o", str(out)]) == 1
    assert "auto" in capsys.readouterr().err and not out.exists()


def test_quantize_command(tmp_path, checkpoint, capsys, monkeypatch):
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)  # scikit-image calibration images
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "q.onnx"
    assert main(["export", "--weights", str(checkpoint), "-o", str(fp32)]) == 0
    capsys.readouterr()
    args = ["quantize", str(fp32), "-o", str(int8), "--images", "2", "--method", "minmax"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "calibrated on 2 images" in printed and "skimage/" in printed
    meta = read_metadata(int8)
    assert meta["precision"] == "int8-minmax"
    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    ref, q = OnnxModel(fp32).run(x), OnnxModel(int8).run(x)
    assert q.shape == ref.shape and 0 < np.abs(q - ref).mean() < 0.05
    # never over its input, and a one-line error for a missing model
    assert main(["quantize", str(fp32), "-o", str(fp32)]) == 1
    assert main(["quantize", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("esrgan-lab quantize: error:") for line in err)
