"""Corrupt, truncated and empty model files given to ``quantize``, ``upscale`` and
``evaluate``: one line, exit 1, nothing written (issue 31, rows 2 and 3)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from esrgan_lab.cli import main
from esrgan_lab.inference.onnx import export_onnx
from tests.helpers import make_tiny


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    onnx_path = folder / "m.onnx"
    export_onnx(make_tiny(), onnx_path)
    img = folder / "a.png"
    cv2.imwrite(str(img), np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8))
    hr = folder / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "h.png"), np.full((16, 16, 3), 99, np.uint8))
    return {"onnx": onnx_path, "img": img, "hr": hr}


def _bad_onnx(good, tmp_path, kind: str):
    data = good["onnx"].read_bytes()
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(
        {
            "garbage": bytes(range(256)) * 8,
            "truncated": data[: len(data) // 2],
            "empty": b"",
        }[kind]
    )
    return bad


def _bad_ir(good, tmp_path, kind: str):
    ov = pytest.importorskip("openvino")
    ir = tmp_path / "ir"
    ir.mkdir()
    ov.save_model(ov.convert_model(str(good["onnx"])), str(ir / "model.xml"))
    xml, weights = ir / "model.xml", ir / "model.bin"
    if kind == "empty xml":
        xml.write_bytes(b"")
    elif kind == "truncated xml":
        xml.write_bytes(xml.read_bytes()[: xml.stat().st_size // 2])
    elif kind == "missing bin":
        weights.unlink()
    elif kind == "truncated bin":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    return ir


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"esrgan-lab {command}: error:"), err[0]
    return err[0]


@pytest.mark.parametrize("kind", ["garbage", "truncated", "empty"])
def test_corrupt_onnx_is_one_line_everywhere(tmp_path, good, capsys, kind):
    bad = _bad_onnx(good, tmp_path, kind)
    out = tmp_path / "q"
    assert main(["quantize", str(bad), "-o", str(out)]) == 1
    assert "bad.onnx" in _one_line(capsys, "quantize") and not out.exists()
    out_onnx = tmp_path / "q.onnx"
    assert main(["quantize", str(bad), "-o", str(out_onnx)]) == 1
    _one_line(capsys, "quantize")
    assert not out_onnx.exists()
    out = tmp_path / "up"
    assert main(["upscale", str(good["img"]), "-o", str(out), "--weights", str(bad)]) == 1
    assert "bad.onnx" in _one_line(capsys, "upscale") and not out.exists()
    json_out = tmp_path / "s.json"
    args = ["evaluate", "--model", str(bad), "--dataset", str(good["hr"]), "--no-niqe"]
    assert main([*args, "--json", str(json_out)]) == 1
    _one_line(capsys, "evaluate")
    assert not json_out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


@pytest.mark.parametrize("kind", ["empty xml", "truncated xml", "missing bin", "truncated bin"])
def test_corrupt_openvino_ir_is_one_line_everywhere(tmp_path, good, capsys, kind):
    ir = _bad_ir(good, tmp_path, kind)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    out = tmp_path / "up"
    assert main(["upscale", str(good["img"]), "-o", str(out), "--weights", str(ir)]) == 1
    assert "ir" in _one_line(capsys, "upscale")
    args = ["evaluate", "--model", str(ir), "--dataset", str(good["hr"]), "--no-niqe"]
    assert main([*args, "--json", str(tmp_path / "s.json")]) == 1
    _one_line(capsys, "evaluate")
    # quantize takes the fp32 ONNX, never an IR (corrupt or not)
    assert main(["quantize", str(ir), "-o", str(tmp_path / "q")]) == 1
    assert "OpenVINO" in _one_line(capsys, "quantize")
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
