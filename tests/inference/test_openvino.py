"""OpenVINO: the fp32 engine against torch, NNCF int8 that really runs in int8, the IR
folder as a model file for every command, and the engine dispatch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esrgan_lab.errors import ConfigError
from esrgan_lab.inference import engines
from esrgan_lab.inference import openvino as ov_engine
from esrgan_lab.inference.onnx import OnnxModel, export_onnx
from esrgan_lab.inference.upscale import upscale
from esrgan_lab.weights.checkpoints import save_checkpoint
from tests.helpers import make_tiny

pytest.importorskip("openvino")
pytest.importorskip("nncf")


def _inputs(n: int, size: int, seed: int = 0) -> list[np.ndarray]:
    """Smooth random pictures (area-upsampled noise), like real LQ content in range."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.rand((n, 3, size // 4, size // 4), generator=gen)
    x = torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear")
    return [x[i : i + 1].numpy() for i in range(n)]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The tiny model as a checkpoint, its ONNX export, an fp32 IR and an int8 IR."""
    root = tmp_path_factory.mktemp("ov")
    model = make_tiny(spread=True)
    ckpt = save_checkpoint(model, root / "tiny.safetensors")
    onnx_path = root / "tiny.onnx"
    export_onnx(model, onnx_path)
    fp32 = ov_engine.save_ir(
        ov_engine.convert_onnx(onnx_path), root / "fp32", {"precision": "fp32", "config": "{}"}
    )
    int8 = ov_engine.quantize_openvino_int8(onnx_path, root / "int8", _inputs(4, 32), quiet=True)
    return {"model": model, "ckpt": ckpt, "onnx": onnx_path, "fp32": fp32, "int8": int8}


def test_fp32_engine_matches_torch(files):
    x = _inputs(1, 24, seed=3)[0]
    with torch.no_grad():
        ref = files["model"](torch.from_numpy(x)).numpy()
    out = ov_engine.OpenVinoModel(files["fp32"]).run(x)
    assert out.shape == (1, 3, 96, 96)
    assert np.abs(out - ref).max() <= 1e-4


def test_int8_ir_carries_its_config_and_runs_int8_kernels(files):
    model = ov_engine.OpenVinoModel(files["int8"], threads=1)
    assert model.metadata["precision"] == "int8-nncf"
    assert model.metadata["calibration_images"] == "4"
    assert (model.scale, model.num_feat, model.num_grow_ch) == (4, 8, 4)
    # The compiled graph runs its convolutions on 8-bit inputs, not fp32 with extra steps,
    # except the layers kept in fp32 on purpose.
    runtime = model.compiled.get_runtime_model()
    precisions = {
        op.get_friendly_name(): op.get_rt_info()["runtimePrecision"].astype(str)
        for op in runtime.get_ops()
        if op.get_rt_info()["layerType"].astype(str) == "Convolution"
    }
    assert len(precisions) == 3 * 5 + 6  # one RRDB of three 5-conv dense blocks, six others
    kept = {k: v for k, v in precisions.items() if "/conv_up1/" in k}
    assert list(kept.values()) == ["f32"] and ov_engine.KEEP_FP32 == ("conv_up1",)
    assert {v for k, v in precisions.items() if k not in kept} <= {"u8", "i8"}


def test_int8_leaves_the_residual_additions_unquantized(files):
    # Read the IR as saved (before the CPU plugin fuses anything): every convolution but
    # conv_up1 (KEEP_FP32) reads FakeQuantize'd data (directly, or through a dense-block
    # Concat of FakeQuantize'd tensors); no residual Add reads any (KEEP_FP32_TYPES).
    from openvino import Core

    graph = Core().read_model(str(files["int8"] / ov_engine.IR_NAME))

    def quantized(node) -> bool:
        kind = node.get_type_name()
        if kind == "Concat":
            return all(quantized(i.get_source_output().get_node()) for i in node.inputs())
        return kind == "FakeQuantize"

    def data_input(op):
        return op.input(0).get_source_output().get_node()

    adds = [op for op in graph.get_ops() if op.get_type_name() == "Add"]
    convs = [op for op in graph.get_ops() if op.get_type_name() == "Convolution"]
    assert ov_engine.KEEP_FP32_TYPES == ("Add",)
    # one RRDB: 3 dense-block skips + the RRDB skip + the trunk skip, at least
    assert len(adds) >= 5
    assert not any(quantized(i.get_source_output().get_node()) for a in adds for i in a.inputs())
    plain = [c.get_friendly_name() for c in convs if not quantized(data_input(c))]
    assert len(convs) == 3 * 5 + 6 and len(plain) == 1 and "conv_up1" in plain[0]


def test_int8_is_close_to_fp32_but_not_equal(files):
    x = _inputs(1, 32, seed=5)[0]
    ref = OnnxModel(files["onnx"]).run(x)
    q = ov_engine.OpenVinoModel(files["int8"]).run(x)
    err = np.abs(q - ref)
    assert 0 < err.mean() < 0.02  # rounding is visible, small against the [0, 1] range


def test_engine_dispatch(files):
    assert isinstance(engines.load_engine(files["onnx"]), OnnxModel)
    for path in (files["int8"], files["int8"] / ov_engine.IR_NAME):
        loaded = engines.load_engine(path)
        assert isinstance(loaded, ov_engine.OpenVinoModel) and engines.is_compiled(loaded)
    torch_model = engines.load_engine(files["ckpt"])
    assert isinstance(torch_model, torch.nn.Module) and not engines.is_compiled(torch_model)


def test_upscale_runs_compiled_models_tiled_and_untiled(files):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)
    ref = upscale(image, files["model"]).astype(int)
    fp32 = engines.load_engine(files["fp32"])
    assert np.abs(upscale(image, fp32).astype(int) - ref).max() <= 1
    tiled = upscale(image, fp32, tile=12, tile_pad=4).astype(int)
    assert np.abs(tiled - upscale(image, files["model"], tile=12, tile_pad=4)).max() <= 1
    with pytest.raises(ConfigError, match="own precision"):
        upscale(image, fp32, dtype="bf16")


def test_ir_paths_and_outputs_are_checked(files, tmp_path):
    assert ov_engine.is_ir(files["int8"]) and not ov_engine.is_ir(files["onnx"])
    with pytest.raises(ConfigError, match="not an OpenVINO model"):
        ov_engine.ir_path(tmp_path)
    with pytest.raises(ConfigError, match="exists; pass --force"):
        ov_engine.check_ir_output(files["int8"])
    assert ov_engine.check_ir_output(files["int8"], force=True) == files["int8"]
    with pytest.raises(ConfigError, match="not a folder"):
        ov_engine.check_ir_output(files["onnx"], force=True)
    with pytest.raises(ConfigError, match="replace the input"):
        ov_engine.check_ir_output(files["onnx"].parent, [files["onnx"]], force=True)


def test_save_ir_replaces_atomically(files, tmp_path):
    folder = ov_engine.save_ir(ov_engine.convert_onnx(files["onnx"]), tmp_path / "m", {"a": 1})
    first = (folder / ov_engine.IR_NAME).read_bytes()
    ov_engine.save_ir(ov_engine.convert_onnx(files["onnx"]), folder, {"a": 2})
    assert (folder / ov_engine.IR_NAME).read_bytes() != first
    assert ov_engine.OpenVinoModel(folder).metadata["a"] == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary left behind


def test_quantize_needs_calibration_data(files, tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        ov_engine.quantize_openvino_int8(files["onnx"], tmp_path / "q", [])
    assert not (tmp_path / "q").exists()


def _signal_stack() -> tuple[int, int]:
    import ctypes

    class Stack(ctypes.Structure):
        _fields_ = [("sp", ctypes.c_void_p), ("flags", ctypes.c_int), ("size", ctypes.c_size_t)]

    cur = Stack()
    assert ctypes.CDLL(None).sigaltstack(None, ctypes.byref(cur)) == 0
    return cur.sp or 0, cur.size


def test_models_freed_in_creation_order_leave_the_signal_stack_alone(files) -> None:
    """OpenVINO swaps in a signal stack per compiled model; freeing two models in creation
    order used to leave the thread on a freed stack, and the next SIGCHLD (a subprocess
    after a DataLoader with workers) killed the test run with SIGSEGV."""
    import gc
    import signal
    import subprocess

    before = _signal_stack()
    first = ov_engine.OpenVinoModel(files["fp32"], threads=1)
    second = ov_engine.OpenVinoModel(files["fp32"], threads=1)
    assert _signal_stack() == before
    del first
    gc.collect()
    del second
    gc.collect()
    assert _signal_stack() == before
    old = signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        assert subprocess.run(["true"]).returncode == 0
    finally:
        signal.signal(signal.SIGCHLD, old)
