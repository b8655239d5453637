"""``esrgan-lab export --fp16`` and ``esrgan-lab quantize`` through the command line."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from esrgan_lab.cli import main
from esrgan_lab.inference.onnx import OnnxModel, read_metadata
from esrgan_lab.weights.checkpoints import save_checkpoint
from tests.helpers import make_tiny, missing


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
    assert main([*args, "--engine", "onnxruntime", "--protocol", "vendor"]) == 0
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


@pytest.fixture(scope="module")
def exported(tmp_path_factory, checkpoint):
    fp32 = tmp_path_factory.mktemp("e") / "lab.onnx"
    assert main(["export", "--weights", str(checkpoint), "-o", str(fp32)]) == 0
    return fp32


def _hr_folder(folder):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return folder


def test_quantize_to_onnx_name_writes_int8_onnx_that_upscale_and_evaluate_read(
    tmp_path, exported, capsys, monkeypatch
):
    # Issue 31, row 1: `quantize lab.onnx -o lab_int8.onnx` wrote an IR folder named
    # lab_int8.onnx that upscale then refused. An .onnx name now means an int8 ONNX file.
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    int8 = tmp_path / "lab_int8.onnx"
    args = ["quantize", str(exported), "-o", str(int8), "--images", "2", "--patch", "16"]
    assert main([*args, "--method", "minmax"]) == 0
    assert int8.is_file() and "ONNX QDQ" in capsys.readouterr().out
    assert read_metadata(int8)["precision"] == "int8-minmax"
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), np.random.default_rng(0).integers(0, 256, (12, 16, 3), dtype=np.uint8))
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "--weights", str(int8)]) == 0
    assert cv2.imread(str(tmp_path / "out" / "a_x4.png")).shape == (48, 64, 3)
    hr = _hr_folder(tmp_path / "hr")
    assert main(["evaluate", "--model", str(int8), "--dataset", str(hr), "--no-niqe"]) == 0
    assert "lab_int8" in capsys.readouterr().out


def test_quantize_openvino_engine_with_onnx_name_is_refused_up_front(tmp_path, exported, capsys):
    out = tmp_path / "q.onnx"
    assert main(["quantize", str(exported), "-o", str(out), "--engine", "openvino"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "IR folder" in err[0] and not out.exists()
    # and the ONNX Runtime engine wants an .onnx name
    out = tmp_path / "q_folder"
    assert main(["quantize", str(exported), "-o", str(out), "--engine", "onnxruntime"]) == 1
    assert ".onnx" in capsys.readouterr().err and not out.exists()


def test_models_are_recognised_by_content_not_name(tmp_path, exported, capsys):
    from esrgan_lab.inference.engines import is_onnx, load_engine
    from esrgan_lab.weights.checkpoints import save_checkpoint as save

    # An ONNX file under another name is still ONNX; a safetensors file is not.
    renamed = tmp_path / "model.weights"
    renamed.write_bytes(exported.read_bytes())
    assert is_onnx(renamed) and isinstance(load_engine(renamed), OnnxModel)
    st = save(make_tiny(), tmp_path / "t.safetensors")
    assert not is_onnx(st) and not isinstance(load_engine(st), OnnxModel)
    # A folder that is not an IR is one line, whatever its name.
    (tmp_path / "empty.onnx").mkdir()
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.zeros((8, 8, 3), np.uint8))
    folder = tmp_path / "empty.onnx"
    code = main(["upscale", str(img), "-o", str(tmp_path / "o"), "--weights", str(folder)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "not an OpenVINO model" in err[0]
    assert not (tmp_path / "o").exists()


def test_ir_folder_named_like_onnx_loads_as_openvino(tmp_path, exported, capsys, monkeypatch):
    pytest.importorskip("nncf")
    from esrgan_lab.inference.openvino import OpenVinoModel

    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    ir = tmp_path / "ir"
    assert main(["quantize", str(exported), "-o", str(ir), "--images", "2", "--patch", "16"]) == 0
    odd = ir.rename(tmp_path / "lab_int8.onnx")  # a folder whatever it is called
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    assert main(["upscale", str(img), "-o", str(tmp_path / "out"), "--weights", str(odd)]) == 0
    assert cv2.imread(str(tmp_path / "out" / "a_x4.png")).shape == (32, 32, 3)
    from esrgan_lab.inference.engines import load_engine

    assert isinstance(load_engine(odd), OpenVinoModel)
    # the lab API and evaluate take it too
    import esrgan_lab as lab

    hr = _hr_folder(tmp_path / "hr")
    report = lab.evaluate_model(str(odd), [hr], niqe=False, progress=False)
    assert len(report.scores) == 2
    assert main(["evaluate", "--model", str(odd), "--dataset", str(hr), "--no-niqe"]) == 0


def _set5_psnr(model, tmp_path, capsys) -> float:
    import json

    report = tmp_path / f"{model.name}.json"
    args = ["evaluate", "--model", str(model), "--dataset", "Set5", "--no-niqe"]
    assert main([*args, "--no-progress", "--json", str(report)]) == 0
    capsys.readouterr()
    return json.loads(report.read_text())["mean"]["Set5"]["psnr"]


@pytest.mark.parametrize("name", ["lab_int8.onnx", "lab_int8"], ids=["onnxruntime", "openvino"])
def test_int8_round_trip_keeps_set5_psnr_close_to_fp32(tmp_path, data_root, capsys, name):
    """export -> quantize -> evaluate with the shipped lab-psnr-x4: int8 must change the
    Set5 Y-PSNR (it is really int8) by less than 0.4 dB (here -0.11 dB with ONNX Runtime's
    min-max QDQ, -0.15 dB with NNCF, on 2 calibration images of 16 px)."""
    if not (data_root / "Set5").is_dir():
        missing(f"{data_root / 'Set5'} is missing")
    if name == "lab_int8":
        pytest.importorskip("nncf")
    fp32, int8 = tmp_path / "lab.onnx", tmp_path / name
    assert main(["export", "--weights", "lab-psnr-x4", "-o", str(fp32)]) == 0
    args = ["quantize", str(fp32), "-o", str(int8), "--images", "2", "--patch", "16"]
    assert main([*args, "--method", "minmax"]) == 0
    change = _set5_psnr(int8, tmp_path, capsys) - _set5_psnr(fp32, tmp_path, capsys)
    assert 1e-3 < abs(change) < 0.4, f"Set5 PSNR change int8 - fp32 = {change:.3f} dB"
