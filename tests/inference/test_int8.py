"""int8 post-training quantization and its calibration data (disjoint from evaluation)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from esrgan_lab.errors import ConfigError, DataError
from esrgan_lab.inference import int8 as P
from esrgan_lab.inference.onnx import OnnxModel, export_onnx, read_metadata
from tests.helpers import make_tiny

REPO = Path(__file__).resolve().parents[2]


def skimage_calibration(n: int = 2) -> list[P.CalibrationImage]:
    from skimage import data

    return [
        P.CalibrationImage("skimage", name, None, np.ascontiguousarray(getattr(data, name)()))
        for name in P.SKIMAGE_CALIBRATION[:n]
    ]


@pytest.fixture(scope="module")
def onnx_fp32(tmp_path_factory):
    path = tmp_path_factory.mktemp("q") / "tiny.onnx"
    export_onnx(make_tiny(spread=True), path)
    return path


@pytest.fixture(scope="module")
def reader():
    return P.make_reader(skimage_calibration(2), "vendor")


@pytest.fixture(scope="module")
def probe():
    from skimage import data

    img = P.CalibrationImage("skimage", "astronaut", None, data.astronaut()[..., ::-1].copy())
    return P.preprocess(img, "vendor")


def qdq_scales(path) -> dict[str, np.ndarray]:
    g = onnx.load(str(path)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    return {
        n.input[1]: inits[n.input[1]]
        for n in g.node
        if n.op_type == "QuantizeLinear" and n.input[1] in inits
    }


def test_int8_runs_and_error_is_bounded(tmp_path, onnx_fp32, reader, probe):
    out = P.quantize_onnx_int8(onnx_fp32, tmp_path / "q.onnx", reader, "percentile")
    graph = onnx.load(str(out)).graph
    ops = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    # per-channel int8 conv weights: an int8 initialiser with one scale per output channel
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and t.dims]
    assert any(len(t.dims) == 4 for t in int8)
    meta = json.loads(read_metadata(out)["calibration"])
    assert meta["method"] == "percentile" and meta["images"] == 2
    with torch.no_grad():
        ref = make_tiny(spread=True)(torch.from_numpy(probe)).numpy()
    got = OnnxModel(out).run(probe)
    diff = np.abs(got - ref)
    # uint8 activations: each tensor keeps 256 levels over its calibrated range, so the
    # output carries O(range/255) ~ 1e-3 errors per stage; 1e-2 mean (2.5 grey levels)
    # and 0.1 max are bounds that a broken scale/zero point exceeds by far. It must
    # differ from fp32 at all (else nothing was quantized).
    assert 1e-5 < diff.mean() < 1e-2
    assert diff.max() < 0.1


def test_methods_give_different_ranges(tmp_path, onnx_fp32, reader):
    pct = qdq_scales(P.quantize_onnx_int8(onnx_fp32, tmp_path / "p.onnx", reader, "percentile"))
    mm = qdq_scales(P.quantize_onnx_int8(onnx_fp32, tmp_path / "m.onnx", reader, "minmax"))
    assert pct.keys() == mm.keys()
    differ = [k for k in pct if not np.allclose(pct[k], mm[k])]
    assert len(differ) > len(pct) // 2  # the method reaches ONNX Runtime's calibrator


def test_one_image_at_a_time_equals_all_at_once(tmp_path, onnx_fp32, reader):
    """MinMax ranges merged image by image (our memory bound) equal one big batch."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    ours = P.quantize_onnx_int8(onnx_fp32, tmp_path / "ours.onnx", reader, "minmax")
    reader.rewind()
    plain = iter([{"lq": x} for x in reader.inputs])

    class Plain:
        def get_next(self):
            return next(plain, None)

    ref = tmp_path / "ref.onnx"
    with P._quiet():
        quantize_static(
            str(onnx_fp32),
            str(ref),
            Plain(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
    a, b = qdq_scales(ours), qdq_scales(ref)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)


def test_quantize_refuses_bad_arguments(tmp_path, onnx_fp32, reader):
    with pytest.raises(ConfigError, match="calibration method"):
        P.quantize_onnx_int8(onnx_fp32, tmp_path / "x.onnx", reader, "kl")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="output is the input"):
        P.quantize_onnx_int8(onnx_fp32, onnx_fp32, reader, "minmax")
    with pytest.raises(DataError, match="empty"):
        P.ImageCalibrationReader([])


def test_reader_ranges():
    xs = [np.full((1, 3, 2, 2), i, np.float32) for i in range(4)]
    r = P.ImageCalibrationReader(xs)
    assert len(r) == 4 and [d["lq"][0, 0, 0, 0] for d in r] == [0, 1, 2, 3]
    r.set_range(1, 3)
    assert [d["lq"][0, 0, 0, 0] for d in r] == [1, 2]
    r.rewind()
    assert r.get_next()["lq"][0, 0, 0, 0] == 0


# --------------------------------------------------------------------------- calibration data


def test_skimage_fallback_is_disjoint_from_evaluation(monkeypatch):
    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    calib = P.calibration_images(len(P.SKIMAGE_CALIBRATION))
    assert all(c.dataset == "skimage" for c in calib)
    evaluation = P.evaluation_images()
    assert {e.name for e in evaluation} == {"astronaut", "chelsea", "coffee", "rocket"}
    P.assert_disjoint(calib, evaluation)


def test_overlap_is_caught_by_content_not_name():
    from skimage import data

    chelsea = P.CalibrationImage("skimage", "chelsea", None, data.chelsea()[..., ::-1].copy())
    # skimage's cat() is chelsea() under another name
    cat = P.CalibrationImage("skimage", "cat", None, data.cat()[..., ::-1].copy())
    with pytest.raises(DataError, match="cat is evaluation image skimage/chelsea"):
        P.assert_disjoint([cat], [chelsea])
    # a resized, re-encoded copy is a near duplicate
    small = cv2.resize(chelsea.image, (200, 150), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    copy = P.CalibrationImage("x", "copy", None, cv2.imdecode(buf, cv2.IMREAD_COLOR))
    with pytest.raises(DataError, match="copy"):
        P.assert_disjoint([copy], [chelsea])
    # a different picture passes
    coffee = P.CalibrationImage("skimage", "coffee", None, data.coffee()[..., ::-1].copy())
    P.assert_disjoint([coffee], [chelsea])


def test_evaluation_sets_cannot_calibrate():
    with pytest.raises(DataError, match="evaluation sets"):
        P.calibration_images(2, datasets=("BSD68", "Set5"))
    with pytest.raises(ConfigError):
        P.calibration_images(0)


def test_dataset_calibration_is_disjoint_from_set5_set14(data_root):
    if not (data_root / "BSD68").is_dir() or not (data_root / "Set5").is_dir():
        pytest.skip("BSD68 / Set5 not in ESRGAN_LAB_DATA")
    calib = P.calibration_images(6)
    assert {c.dataset for c in calib} <= set(P.CALIBRATION_DATASETS)
    evaluation = P.evaluation_images()
    assert {e.dataset for e in evaluation} == {"Set5", "Set14"}
    P.assert_disjoint(calib, evaluation)
    # and the check does bite on these files: an evaluation file used for calibration
    intruder = P.CalibrationImage("BSD68", "x", evaluation[0].path, evaluation[0].image)
    with pytest.raises(DataError):
        P.assert_disjoint([*calib, intruder], evaluation)


def test_vendor_preprocessing_is_get_image_data(tmp_path):
    from skimage import data

    from esrgan_lab.data.vendor import get_image_data

    bgr = data.coffee()[..., ::-1].copy()
    cv2.imwrite(str(tmp_path / "c.png"), bgr)
    from_file = P.CalibrationImage("t", "c", tmp_path / "c.png", bgr)
    in_memory = P.CalibrationImage("t", "c", None, bgr)
    expected = get_image_data(tmp_path / "c.png")[1]
    np.testing.assert_array_equal(P.preprocess(from_file, "vendor"), expected)
    np.testing.assert_array_equal(P.preprocess(in_memory, "vendor"), expected)
    gray = P.preprocess(P.CalibrationImage("t", "g", None, data.camera()), "vendor")
    assert gray.shape == (1, 3, 128, 128)
    np.testing.assert_array_equal(gray[:, 0], gray[:, 2])
    std = P.preprocess(in_memory, "standard")
    assert std.shape == (1, 3, 100, 128)  # 400x600 -> LQ 100x150 -> centre crop to 128 wide
