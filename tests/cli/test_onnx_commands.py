"""``esrgan-lab export --fp16`` and ``esrgan-lab quantize`` through the command line."""

from __future__ import annotations

import cv2
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
    assert main([*args, "--engine", "onnxruntime", "--protocol", "seed"]) == 0
    printed = capsys.readouterr().out
    assert "calibrated on 2 images" in printed and "skimage/" in printed
    meta = read_metadata(int8)
    assert meta["precision"] == "int8-minmax"
    x = np.random.default_rng(1).random((1, 3, 16, 16), dtype=np.float32)
    ref, q = OnnxModel(fp32).run(x), OnnxModel(int8).run(x)
    assert q.shape == ref.shape and 0 < np.abs(q - ref).mean() < 0.05
    # never over its input, and a one-line error for a missing model
    assert main(["quantize", str(fp32), "-o", str(fp32), "--engine", "onnxruntime"]) == 1
    assert main(["quantize", str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "x.onnx")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("esrgan-lab quantize: error:") for line in err)


def test_quantize_openvino_default_feeds_upscale_and_evaluate(tmp_path, checkpoint, capsys):
    pytest.importorskip("nncf")
    from esrgan_lab.inference.openvino import OpenVinoModel

    fp32, ir = tmp_path / "m.onnx", tmp_path / "m_int8"
    assert main(["export", "--weights", str(checkpoint), "-o", str(fp32)]) == 0
    args = ["quantize", str(fp32), "-o", str(ir), "--images", "2", "--patch", "16"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "OpenVINO IR" in printed and (ir / "model.xml").is_file()
    meta = OpenVinoModel(ir).metadata
    assert meta["precision"] == "int8-nncf" and '"patch": 16' in meta["calibration"]
    # An existing output is kept unless --force; a one-line error says so.
    before = (ir / "model.bin").read_bytes()
    assert main(args) == 1
    assert "--force" in capsys.readouterr().err and (ir / "model.bin").read_bytes() == before
    # The IR folder is a model for upscale and evaluate.
    img = np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8)
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), img)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "--weights", str(ir)]) == 0
    assert cv2.imread(str(tmp_path / "out" / "a_x4.png")).shape == (48, 64, 3)
    code = main(["evaluate", "--model", str(ir), "--dataset", "skimage", "--no-niqe"])
    assert code == 0 and "m_int8" in capsys.readouterr().out
