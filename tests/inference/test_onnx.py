"""ONNX export (dynamic axes, fp16), the ONNX Runtime model wrapper and its evaluation branch."""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from esrgan_lab.cli import main
from esrgan_lab.errors import ConfigError
from esrgan_lab.evaluation.evaluate import _torch_forward, evaluate_model, run_model
from esrgan_lab.inference.onnx import (
    FP16_TOLERANCE,
    FP32_TOLERANCE,
    OnnxModel,
    convert_fp16,
    export_onnx,
    onnx_file_scale,
    read_metadata,
)
from tests.helpers import make_tiny


def ort_run(path, x: np.ndarray) -> np.ndarray:
    """Plain ONNX Runtime, independent of OnnxModel (the oracle side of the round trip)."""
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def fp32_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    result = export_onnx(make_tiny(spread=True), path)
    return path, result


def test_round_trip_two_sizes_dynamic_axes(fp32_onnx):
    path, result = fp32_onnx
    model = make_tiny(spread=True)
    graph = onnx.load(str(path))
    onnx.checker.check_model(graph)
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    # batch, height and width are symbolic, channels fixed
    assert [d.dim_param != "" for d in dims] == [True, False, True, True]
    assert result.opset >= 17 and result.max_abs_diff <= FP32_TOLERANCE
    gen = torch.Generator().manual_seed(1)
    for shape in [(1, 3, 12, 20), (3, 3, 17, 9)]:  # neither is the export example (8x8)
        x = torch.rand(shape, generator=gen)
        with torch.no_grad():
            ref = model(x).numpy()
        out = ort_run(path, x.numpy())
        assert out.shape == (shape[0], 3, shape[2] * 4, shape[3] * 4)
        assert np.abs(out - ref).max() <= 1e-4


def test_metadata_and_scale(fp32_onnx):
    path, _ = fp32_onnx
    meta = read_metadata(path)
    assert meta["precision"] == "fp32"
    assert '"num_block": 1' in meta["config"]
    assert OnnxModel(path).scale == 4


def test_model_scale_from_metadata_or_a_probe(tmp_path, fp32_onnx, monkeypatch):
    path, _ = fp32_onnx
    import esrgan_lab.inference.onnx as onnx_mod

    def no_session(*args, **kwargs):
        raise AssertionError("metadata holds the scale: no session should be built")

    with monkeypatch.context() as m:
        m.setattr(onnx_mod.OnnxModel, "__init__", no_session)
        assert onnx_file_scale(path) == 4
    bare = onnx.load(str(path))
    del bare.metadata_props[:]
    onnx.save(bare, str(tmp_path / "bare.onnx"))
    assert read_metadata(tmp_path / "bare.onnx") == {}
    assert onnx_file_scale(tmp_path / "bare.onnx") == 4


def test_scale2_export_uses_pixel_unshuffle(tmp_path):
    model = make_tiny(scale=2, spread=True)
    res = export_onnx(model, tmp_path / "x2.onnx")
    x = torch.rand(2, 3, 10, 14)
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(ort_run(res.path, x.numpy()) - ref).max() <= 1e-4
    assert OnnxModel(res.path).scale == 2


def test_fp16_close_to_fp32(tmp_path, fp32_onnx):
    src, _ = fp32_onnx
    model = make_tiny(spread=True)
    dst = convert_fp16(src, tmp_path / "tiny_fp16.onnx")
    graph = onnx.load(str(dst))
    weights = [t for t in graph.graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    # keep_io_types: float32 in and out, so the same arrays feed every variant
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = model(x).numpy()
    diff = np.abs(ort_run(dst, x.numpy()) - ref)
    # fp16 unit roundoff is 2**-11 ~ 4.9e-4 relative; outputs here are O(1), a handful of
    # roundings per path => a few 1e-3 at most (FP16_TOLERANCE = 1e-2 is the hard bound),
    # but it must differ from fp32 (else nothing was converted).
    assert 1e-6 < diff.max() <= FP16_TOLERANCE
    assert diff.mean() < 2e-3


def test_export_fp16_flag_checks_against_torch(tmp_path):
    res = export_onnx(make_tiny(spread=True), tmp_path / "h.onnx", fp16=True)
    assert res.precision == "fp16" and 0 < res.max_abs_diff <= FP16_TOLERANCE
    assert read_metadata(res.path)["precision"] == "fp16"


def test_failed_check_leaves_nothing(tmp_path):
    with pytest.raises(ConfigError, match="differs from torch"):
        export_onnx(make_tiny(spread=True), tmp_path / "m.onnx", fp16=True, tolerance=1e-9)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a temp file


def test_bad_paths_and_opset(tmp_path, fp32_onnx):
    src, _ = fp32_onnx
    with pytest.raises(ConfigError, match="output is the input"):
        convert_fp16(src, src)
    with pytest.raises(ConfigError, match=r"\.onnx"):
        export_onnx(make_tiny(spread=True), tmp_path / "m.pth")
    with pytest.raises(ConfigError, match="opset 13"):
        export_onnx(make_tiny(spread=True), tmp_path / "m.onnx", opset=13)
    with pytest.raises(ConfigError, match="no such ONNX"):
        OnnxModel(tmp_path / "missing.onnx")


def test_onnx_model_call_matches_torch_forward(fp32_onnx):
    path, _ = fp32_onnx
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (10, 14, 3), dtype=np.uint8)
    a = OnnxModel(path)(img)
    b = _torch_forward(make_tiny(spread=True), img)
    assert a.shape == b.shape == (40, 56, 3) and a.dtype == np.uint8
    # same conversion; fp32 differences ~1e-7 can flip a rounding at a .5 boundary only
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


@pytest.fixture
def hr_dir(tmp_path):
    from skimage import data

    folder = tmp_path / "hr"
    folder.mkdir()
    img = data.astronaut()[100:164, 180:244, ::-1]  # 64x64 BGR
    cv2.imwrite(str(folder / "astro.png"), img)
    return folder


def test_evaluate_onnx_branch_same_scores_as_torch(hr_dir, fp32_onnx):
    path, _ = fp32_onnx
    for protocol in ("vendor", "standard"):
        kw = dict(scale=4, protocol=protocol, niqe=False, progress=False)
        via_path = evaluate_model(str(path), [hr_dir], **kw)
        via_torch = evaluate_model(make_tiny(spread=True), [hr_dir], **kw)
        assert via_path.scores[0].sr_shape == via_torch.scores[0].sr_shape
        assert via_path.scores[0].psnr == pytest.approx(via_torch.scores[0].psnr, abs=0.01)
        assert via_path.scores[0].ssim == pytest.approx(via_torch.scores[0].ssim, abs=1e-3)
    with pytest.raises(ConfigError, match="x4 but --scale is 2"):
        evaluate_model(str(path), [hr_dir], scale=2, niqe=False, progress=False)


def test_run_model_accepts_bare_session(fp32_onnx):
    path, _ = fp32_onnx
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gray = np.full((6, 5), 128, np.uint8)
    out = run_model(sess, gray, 4)
    assert out.shape == (24, 20)  # gray in -> 3 channels through the net -> gray out


def test_cli_export_and_evaluate(tmp_path, hr_dir, capsys):
    from esrgan_lab.weights.checkpoints import save_checkpoint

    ckpt = save_checkpoint(make_tiny(spread=True), tmp_path / "tiny.safetensors")
    out = tmp_path / "tiny.onnx"
    assert main(["export", "--weights", str(ckpt), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "max |onnx - torch|" in printed and out.is_file()
    assert read_metadata(out)["weights"] == str(ckpt)
    # existing output without --force, and the input itself, are refused
    assert main(["export", "--weights", str(ckpt), "-o", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main(["export", "--weights", str(ckpt), "-o", str(ckpt)]) == 1
    assert main(["evaluate", "--model", str(out), "--dataset", str(hr_dir), "--no-niqe"]) == 0
    assert "astro" in capsys.readouterr().out


def test_cli_defaults_mirror_the_package():
    from esrgan_lab.cli import export as export_cmd
    from esrgan_lab.cli import quantize as quantize_cmd
    from esrgan_lab.inference import int8 as precision
    from esrgan_lab.inference import onnx as export

    assert export_cmd.DEFAULT_OPSET == export.DEFAULT_OPSET
    assert export_cmd.DEFAULT_EXPORTER == export.DEFAULT_EXPORTER
    assert quantize_cmd.CALIBRATION_DATASETS == precision.CALIBRATION_DATASETS
    assert quantize_cmd.CALIBRATION_METHODS == precision.CALIBRATION_METHODS
    assert quantize_cmd.DEFAULT_PERCENTILE == precision.DEFAULT_PERCENTILE


@pytest.mark.slow
def test_dynamo_exporter_round_trip(tmp_path):
    """The torch.export-based exporter (slow: ~20 s even for a tiny model)."""
    model = make_tiny(spread=True)
    res = export_onnx(model, tmp_path / "dyn.onnx", exporter="dynamo", opset=18)
    assert res.opset == 18 and res.max_abs_diff <= FP32_TOLERANCE
    x = torch.rand(2, 3, 9, 13)
    with torch.no_grad():
        ref = model(x).numpy()
    assert np.abs(ort_run(res.path, x.numpy()) - ref).max() <= 1e-4
