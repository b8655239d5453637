"""The inference engine (esrgan_lab.inference.upscale): channels, depth, tiling, precision."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from esrgan_lab.errors import ConfigError
from esrgan_lab.inference import upscale as infer
from esrgan_lab.inference.upscale import (
    auto_tile,
    pick_device,
    prepare_model,
    tile_grid,
    upscale,
)
from esrgan_lab.model.memory import activation_bytes_per_pixel, estimate_memory
from esrgan_lab.model.rrdbnet import RRDBNet
from tests.helpers import make_tiny


def smooth_image(h: int, w: int, channels: int | None = 3, dtype=np.uint8) -> np.ndarray:
    """A smooth random picture (bilinear upsampled noise) of the given layout."""
    rng = np.random.default_rng(3)
    c = 1 if channels is None else channels
    small = rng.random((max(h // 4, 2), max(w // 4, 2), c)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, c)
    out = np.rint(big * np.iinfo(dtype).max).astype(dtype)
    return out[:, :, 0] if channels is None else out


def reference(model: nn.Module, rgb: np.ndarray) -> np.ndarray:
    """Model on an (H, W, 3) RGB float image in [0, 1] -> (H*s, W*s, 3) float, clipped.

    Written like the official ESRGAN test.py: whole image, eager fp32, contiguous.
    """
    x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float()[None]
    with torch.no_grad():
        y = model(x).data.squeeze(0).float().cpu().clamp_(0, 1).numpy()
    return y.transpose(1, 2, 0)


def test_bgr_uint8_matches_reference_loop():
    model = make_tiny()
    image = smooth_image(24, 20)
    out = upscale(image, model)
    assert out.shape == (96, 80, 3) and out.dtype == np.uint8
    ref = np.rint(reference(model, image[:, :, ::-1] / 255.0) * 255)[:, :, ::-1]
    assert np.abs(out.astype(int) - ref).max() <= 1  # channels_last may flip a rounding


def test_gray_in_gray_out_is_the_channel_mean():
    model = make_tiny()
    gray = smooth_image(16, 12, channels=None)
    out = upscale(gray, model)
    assert out.shape == (64, 48) and out.dtype == np.uint8
    rgb = np.repeat(gray[:, :, None] / 255.0, 3, axis=2)
    ref = np.rint(reference(model, rgb).mean(axis=2) * 255)
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_uint16_in_uint16_out_scaled_by_dtype():
    model = make_tiny()
    # A dark 16-bit picture: its maximum is far below 65535 and must stay so.
    image = (smooth_image(16, 16, dtype=np.uint16) // 8).astype(np.uint16)
    out = upscale(image, model)
    assert out.dtype == np.uint16 and out.shape == (64, 64, 3)
    ref = np.rint(reference(model, image[:, :, ::-1] / 65535.0) * 65535)[:, :, ::-1]
    assert np.abs(out.astype(np.int64) - ref).max() <= 2
    assert out.max() < 65535 // 4


@pytest.mark.parametrize("mode", ["model", "bicubic"])
def test_rgba_keeps_alpha(mode):
    model = make_tiny()
    image = smooth_image(12, 16, channels=4)
    out = upscale(image, model, alpha=mode)
    assert out.shape == (48, 64, 4) and out.dtype == np.uint8
    color = np.rint(reference(model, image[:, :, 2::-1] / 255.0) * 255)[:, :, ::-1]
    assert np.abs(out[:, :, :3].astype(int) - color).max() <= 1
    if mode == "bicubic":
        expected = cv2.resize(image[:, :, 3], (64, 48), interpolation=cv2.INTER_CUBIC)
        np.testing.assert_array_equal(out[:, :, 3], expected)
    else:
        plane = np.repeat(image[:, :, 3:] / 255.0, 3, axis=2)
        expected = np.rint(reference(model, plane).mean(axis=2) * 255)
        assert np.abs(out[:, :, 3].astype(int) - expected).max() <= 1


def test_constant_alpha_is_filled_not_computed():
    image = smooth_image(8, 8, channels=4, dtype=np.uint16)
    image[:, :, 3] = 65535
    out = upscale(image, make_tiny())
    assert out.dtype == np.uint16 and (out[:, :, 3] == 65535).all()


def test_tiled_equals_untiled_within_one_level():
    """The issue's check: a ~64x48 image with tile 16 (12 tiles) vs the whole image."""
    model = make_tiny()
    image = smooth_image(48, 64)
    whole = upscale(image, model)
    tiled = upscale(image, model, tile=16, tile_pad=10)
    assert tiled.shape == whole.shape == (192, 256, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1


def test_tiled_equals_untiled_for_tensor_and_16_bit():
    model = make_tiny()
    x = torch.from_numpy(smooth_image(48, 64, dtype=np.uint16).transpose(2, 0, 1) / 65535.0)
    x = x.float()[None]
    whole = upscale(x, model)
    tiled = upscale(x, model, tile=16)
    assert isinstance(tiled, torch.Tensor) and tiled.shape == (1, 3, 192, 256)
    assert (tiled - whole).abs().max().item() <= 1 / 255


def test_tiles_exactly_cover_the_image_with_one_input_shape():
    for h, w, tile, mult in [(48, 64, 16, 1), (50, 37, 16, 1), (52, 36, 10, 4), (7, 5, 2, 1)]:
        pad = 4 if mult == 4 else 3  # tile_pad 3 rounded up to the multiple
        hits = np.zeros((h, w), int)
        grid = tile_grid(h, w, tile, tile_pad=3, multiple=mult)
        for t in grid:
            hits[t.y0 : t.y1, t.x0 : t.x1] += 1
            assert 0 <= t.py0 <= t.y0 < t.y1 <= t.py1 <= h
            assert 0 <= t.px0 <= t.x0 < t.x1 <= t.px1 <= w
            assert t.y0 % mult == 0 and t.x0 % mult == 0
            assert t.py0 % mult == 0 and t.px0 % mult == 0
            # at least tile_pad of context wherever the image goes on
            assert t.y0 - t.py0 >= min(pad, t.y0) and t.py1 - t.y1 >= min(pad, h - t.y1)
            assert t.x0 - t.px0 >= min(pad, t.x0) and t.px1 - t.x1 >= min(pad, w - t.x1)
        assert (hits == 1).all()
        # every model input has the same size (compiled engines keep memory per shape)
        assert len({(t.py1 - t.py0, t.px1 - t.px0) for t in grid}) == 1


class Recorder(nn.Module):
    """Nearest-neighbour x2 "model" that records the input sizes it sees."""

    scale = 2

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)  # a parameter so the engine has a device/dtype
        nn.init.dirac_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.seen: list[tuple[int, int]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape[-2:]))
        return F.interpolate(self.conv(x), scale_factor=2, mode="nearest")


def test_any_module_with_scale_works_and_sees_only_tiles():
    model = Recorder().eval()
    image = smooth_image(40, 30)
    out = upscale(image, model, tile=12, tile_pad=4)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(image, 2, 0), 2, 1))
    prepared = prepare_model(model)  # already eval/fp32/CPU/NHWC-compatible: not copied
    assert prepared is model
    # 40x30 with tile 12 -> 4 x 3 tiles, each at most 12 + 2 * 4 pixels on a side.
    assert len(model.seen) == 12 and max(max(s) for s in model.seen) <= 12 + 2 * 4


def test_model_without_scale_is_a_config_error():
    with pytest.raises(ConfigError, match="scale"):
        upscale(smooth_image(8, 8), nn.Conv2d(3, 3, 3, padding=1))


@pytest.mark.parametrize("scale", [1, 2])
def test_odd_sizes_padded_for_unshuffle_models(scale):
    model = make_tiny(scale)
    image = smooth_image(13, 7)
    out = upscale(image, model)
    assert out.shape == (13 * scale, 7 * scale, 3)
    # Oracle: reflection-pad bottom/right to the size the model needs, run, crop.
    rgb = image[:, :, ::-1] / 255.0
    ph, pw = {1: (16, 8), 2: (14, 8)}[scale]  # multiples of 4 / 2, at least MIN_SIZE = 8
    padded = np.pad(rgb, ((0, ph - 13), (0, pw - 7), (0, 0)), mode="reflect")
    ref = np.rint(reference(model, padded) * 255)[: 13 * scale, : 7 * scale, ::-1]
    assert np.abs(out.astype(int) - ref).max() <= 1
    tiled = upscale(image, model, tile=4, tile_pad=16)  # context covers the receptive field
    assert np.abs(tiled.astype(int) - out).max() <= 1


@pytest.mark.parametrize("shape", [(1, 1), (1, 5, 3), (2, 3, 4)])
def test_tiny_inputs(shape):
    image = smooth_image(*shape[:2], channels=shape[2] if len(shape) == 3 else None)
    out = upscale(image, make_tiny())
    assert out.shape == (shape[0] * 4, shape[1] * 4, *shape[2:])


def test_tensor_batch_and_gray():
    model = make_tiny()
    x = torch.rand(2, 1, 10, 12)
    out = upscale(x, model)
    assert out.shape == (2, 1, 40, 48) and out.dtype == torch.float32
    for i in range(2):
        rgb = x[i, 0, :, :, None].expand(10, 12, 3).numpy()
        ref = reference(model, rgb).mean(axis=2)
        np.testing.assert_allclose(out[i, 0].numpy(), ref, atol=1e-5)


def test_caller_model_is_not_modified():
    model = make_tiny()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    upscale(smooth_image(8, 8), model, dtype="bf16")
    assert model.training
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and v.is_contiguous()
        assert torch.equal(v, before[k])


def test_fp16_on_cpu_is_a_clear_config_error():
    with pytest.raises(ConfigError, match="fp16 is not supported on the CPU"):
        upscale(smooth_image(8, 8), make_tiny(), dtype=torch.float16, device="cpu")
    with pytest.raises(ConfigError, match="unknown dtype"):
        upscale(smooth_image(8, 8), make_tiny(), dtype="fp8")


def test_bf16_on_cpu_is_close_to_fp32():
    """bf16 must be used (the output differs from fp32) and stay close: bf16 keeps 8
    mantissa bits (unit roundoff 2**-9 ~ 2e-3), so on outputs spanning ~[0, 1] the mean
    difference is a few 1e-3 and far below what a wrong cast would give."""
    model = make_tiny(spread=True)  # outputs that span a range, so rounding shows
    x = torch.from_numpy(smooth_image(16, 16)).permute(2, 0, 1)[None].float() / 255
    a = upscale(x, model)
    b = upscale(x, model, dtype="bf16")
    assert a.dtype == b.dtype == torch.float32 and a.shape == b.shape
    diff = (a - b).abs()
    assert diff.max() > 1e-4, "bf16 was not applied: the output equals fp32"  # 2.5e-3 here
    assert diff.mean() < 1e-2 and diff.max() < 0.1
    # the uint8 image path stays within a pixel level or so (here 2.5e-3 * 255 < 1)
    image = smooth_image(16, 16)
    ai = upscale(image, model).astype(int)
    bi = upscale(image, model, dtype="bf16").astype(int)
    assert np.abs(ai - bi).mean() < 2 and np.abs(ai - bi).max() < 12


def test_pick_device():
    expected = "cuda" if torch.cuda.is_available() else None
    dev = pick_device()
    if expected:
        assert dev.type == expected
    assert pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            pick_device("cuda")


def test_memory_estimate_and_auto_tile(monkeypatch):
    model = RRDBNet()  # the full-size x4 model; only its attributes are read
    per_px = activation_bytes_per_pixel(model)
    # Measured peak on this project's CPU: 9.2-14.7 KB per input pixel (see model.memory.HR_FACTOR).
    assert 9_000 < per_px < 20_000
    assert estimate_memory(model, 100, 200) == pytest.approx(per_px * 100 * 200, rel=1e-6)
    assert auto_tile(model, 64, 64, budget=10**12) is None  # fits: no tiling
    tile = auto_tile(model, 2000, 2000, tile_pad=10, budget=2 << 30)
    assert tile is not None and (tile + 20) ** 2 * per_px <= 2 << 30
    assert (tile + 40) ** 2 * per_px > 2 << 30  # the largest that fits, give or take


def test_auto_tile_runs_tiled_and_matches(monkeypatch):
    model = make_tiny()
    image = smooth_image(48, 64)
    per_px = activation_bytes_per_pixel(model)
    monkeypatch.setattr(infer, "memory_budget", lambda device: int(per_px * 40 * 40))
    seen = []
    real = infer._run_tiles

    def spy(model, x, tiles, *args, **kwargs):
        seen.append(len(tiles))
        return real(model, x, tiles, *args, **kwargs)

    monkeypatch.setattr(infer, "_run_tiles", spy)
    out = upscale(image, model, tile="auto", tile_pad=4)
    assert seen and seen[0] > 1
    assert np.abs(out.astype(int) - upscale(image, model)).max() <= 1


def test_bad_options():
    with pytest.raises(ConfigError, match="alpha"):
        upscale(smooth_image(8, 8), make_tiny(), alpha="nearest")
    with pytest.raises(ConfigError, match="tile"):
        upscale(smooth_image(8, 8), make_tiny(), tile="big")
    with pytest.raises(ConfigError, match="uint8 or uint16"):
        upscale(np.zeros((8, 8, 3), np.float32), make_tiny())


# --------------------------------------------------------------------------- onnxruntime


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    """An empty weights cache (so the ONNX cache is tmp_path/weights/onnx) and an export
    counter."""
    from esrgan_lab.inference import onnx as export

    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setattr(infer, "_SESSIONS", {})
    calls = []
    real = export.export_onnx

    def counting(model, path, **kwargs):
        calls.append(path)
        return real(model, path, **kwargs)

    monkeypatch.setattr(export, "export_onnx", counting)
    return tmp_path / "weights" / "onnx", calls


def test_onnxruntime_matches_torch_untiled_and_tiled(onnx_cache):
    model = make_tiny()
    image = smooth_image(40, 36)
    ref = upscale(image, model, device="cpu").astype(int)
    ort = upscale(image, model, device="cpu", backend="onnxruntime")
    assert ort.shape == ref.shape and ort.dtype == np.uint8
    assert np.abs(ort.astype(int) - ref).max() <= 1
    tiled = upscale(image, model, device="cpu", backend="onnxruntime", tile=16, tile_pad=4)
    assert np.abs(tiled.astype(int) - ref).max() <= 1
    torch_tiled = upscale(image, model, device="cpu", tile=16, tile_pad=4).astype(int)
    assert np.abs(tiled.astype(int) - torch_tiled).max() <= 1


@pytest.mark.parametrize(
    "kind", ["gray", "rgba", "uint16", "odd_scale2", "tensor"], ids=lambda k: k
)
def test_onnxruntime_layouts_match_torch(onnx_cache, kind):
    model = make_tiny(scale=2 if kind == "odd_scale2" else 4)
    if kind == "gray":
        image = smooth_image(13, 9, channels=None)
    elif kind == "rgba":
        image = smooth_image(12, 10, channels=4)
    elif kind == "uint16":
        image = smooth_image(10, 12, dtype=np.uint16)
    elif kind == "odd_scale2":
        image = smooth_image(11, 7)
    else:
        image = torch.rand(2, 3, 10, 12)
    a = upscale(image, model, device="cpu", backend="onnxruntime", tile=8, tile_pad=2)
    b = upscale(image, model, device="cpu", tile=8, tile_pad=2)
    if kind == "tensor":
        assert a.shape == b.shape and (a - b).abs().max() < 1e-5
    else:
        assert a.shape == b.shape and a.dtype == b.dtype
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_onnx_export_is_cached_per_weights(onnx_cache):
    folder, calls = onnx_cache
    model = make_tiny()
    image = smooth_image(16, 16)
    upscale(image, model, device="cpu", backend="onnxruntime")
    files = list(folder.glob("*.onnx"))
    assert len(calls) == 1 and len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    infer._SESSIONS.clear()  # as a new process would: only the file cache is left
    again = prepare_model(model, "cpu", channels_last=True)  # same weights, other layout
    upscale(image, again, device="cpu", backend="onnxruntime")
    assert len(calls) == 1 and files[0].stat().st_mtime_ns == mtime
    assert not list(folder.glob(".*"))  # no temp files left behind
    other = make_tiny()
    with torch.no_grad():
        other.conv_last.bias.add_(0.01)
    out = upscale(image, other, device="cpu", backend="onnxruntime")
    assert len(calls) == 2 and len(list(folder.glob("*.onnx"))) == 2
    assert np.abs(out.astype(int) - upscale(image, other, device="cpu")).max() <= 1


def test_onnxruntime_backend_options(onnx_cache, monkeypatch):
    cpu = torch.device("cpu")
    with pytest.raises(ConfigError, match="fp32 only, not bfloat16"):
        upscale(smooth_image(8, 8), make_tiny(), device="cpu", dtype="bf16", backend="onnxruntime")
    with pytest.raises(ConfigError, match="unknown backend"):
        upscale(smooth_image(8, 8), make_tiny(), backend="tensorrt")
    assert infer.resolve_backend("auto", cpu, torch.float32) == "onnxruntime"
    assert infer.resolve_backend("auto", cpu, torch.bfloat16) == "torch"
    assert infer.resolve_backend("auto", torch.device("cuda"), torch.float32) == "torch"
    with pytest.raises(ConfigError, match="CPU only"):
        infer.resolve_backend("onnxruntime", torch.device("cuda"), torch.float32)
    monkeypatch.setattr(infer, "_onnxruntime_available", lambda: False)
    assert infer.resolve_backend("auto", cpu, torch.float32) == "torch"
    with pytest.raises(ConfigError, match="needs the onnxruntime package"):
        infer.resolve_backend("onnxruntime", cpu, torch.float32)
    assert not onnx_cache[1]  # nothing was exported


def test_cpu_budget_is_a_fraction_of_free_ram_with_a_cap(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(infer, "_available_ram", lambda: 1 << 30)
    assert infer.memory_budget(cpu) == int((1 << 30) * infer.MEMORY_FRACTION)
    monkeypatch.setattr(infer, "_available_ram", lambda: 200 << 30)
    assert infer.memory_budget(cpu) == infer.CPU_MEMORY_CAP
    # The full model on a 2000x2000 input: tiled by default, tiles within the cap.
    model = RRDBNet()
    tile = auto_tile(model, 2000, 2000, device=cpu)
    assert tile is not None
    assert estimate_memory(model, tile + 20, tile + 20) <= infer.CPU_MEMORY_CAP


def test_progress_line_says_how_many_tiles(capsys):
    model = make_tiny()
    image = smooth_image(40, 36)
    upscale(image, model, tile=16, tile_pad=4, progress=True)
    err = capsys.readouterr().err
    grid = tile_grid(40, 36, 16, 4, 1)
    assert f"{len(grid)} tiles of 16 px" in err
    upscale(image, model, progress=True)
    assert "1 tile (whole image)" in capsys.readouterr().err
