"""``esrgan-lab upscale`` end to end with a tiny model saved as BasicSR-layout safetensors."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from esrgan_lab.cli import main
from esrgan_lab.cli.upscale import register
from esrgan_lab.inference import upscale as infer
from tests.helpers import make_tiny


@pytest.fixture(scope="module", autouse=True)
def onnx_cache(tmp_path_factory) -> Path:
    """The CLI's default backend (auto) exports to <ESRGAN_LAB_WEIGHTS>/onnx: keep that in
    a temp folder shared by this module's tests (one export of the tiny model)."""
    root = tmp_path_factory.mktemp("weights_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ESRGAN_LAB_WEIGHTS", str(root))
        yield root / "onnx"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = make_tiny()
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_file(model.state_dict(), str(path))
    return path


def _image(shape: tuple[int, ...], dtype=np.uint8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


def _write(path: Path, image: np.ndarray) -> Path:
    ok, buf = cv2.imencode(path.suffix, image)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def _read(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(str(path), np.uint8), cv2.IMREAD_UNCHANGED)


def _run(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["upscale", *args, "--quiet"])
    err = capsys.readouterr().err
    return code, [line for line in err.splitlines() if line.strip()]


def test_gray_rgba_and_16_bit_round_trip(tmp_path, weights, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "gray.png", _image((10, 12)))
    _write(src / "rgba.png", _image((9, 11, 4)))
    _write(src / "deep.png", _image((8, 6, 3), np.uint16))
    _write(src / "deep_gray.tif", _image((5, 7), np.uint16))
    (src / "notes.txt").write_text("not an image, and not an image extension: skipped")
    out = tmp_path / "out"
    code, err = _run(capsys, str(src), "-o", str(out), "--weights", str(weights))
    assert code == 0 and err == []
    expected = {
        "gray_x4.png": ((40, 48), np.uint8),
        "rgba_x4.png": ((36, 44, 4), np.uint8),
        "deep_x4.png": ((32, 24, 3), np.uint16),
        "deep_gray_x4.tif": ((20, 28), np.uint16),
    }
    assert sorted(p.name for p in out.iterdir()) == sorted(expected)
    for name, (shape, dtype) in expected.items():
        image = _read(out / name)
        assert image.shape == shape and image.dtype == dtype, name


def test_corrupt_file_one_line_nonzero_exit_others_written(tmp_path, weights, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _write(src / "a.png", _image((8, 8, 3)))
    (src / "x.png").write_bytes(b"\x00garbage bytes, definitely not a PNG" * 3)
    _write(src / "z.jpg", _image((8, 8, 3)))
    out = tmp_path / "out"
    code, err = _run(capsys, str(src), "-o", str(out), "--weights", str(weights))
    assert code == 1
    assert len(err) == 1 and "x.png" in err[0] and "error" in err[0]
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.png", "z_x4.jpg"]


def test_inputs_are_never_overwritten(tmp_path, weights, capsys):
    a = _write(tmp_path / "a.png", _image((8, 8, 3), seed=1))
    sub = tmp_path / "sub"
    sub.mkdir()
    b = _write(sub / "a.png", _image((6, 6, 3), seed=2))  # same stem as a.png
    before = {p: p.read_bytes() for p in (a, b)}
    # Output folder = input folder, no suffix: "a.png" would overwrite the input.
    code, err = _run(
        capsys, str(a), str(b), "-o", str(tmp_path), "--suffix", "", "--weights", str(weights)
    )
    assert code == 0 and err == []
    assert {p: p.read_bytes() for p in (a, b)} == before
    written = sorted(p.name for p in tmp_path.glob("*.png"))
    assert written == ["a-2.png", "a-3.png", "a.png"]
    assert _read(tmp_path / "a-2.png").shape == (32, 32, 3)
    assert _read(tmp_path / "a-3.png").shape == (24, 24, 3)
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


def test_fp16_on_cpu_is_a_clear_error(tmp_path, weights, capsys):
    _write(tmp_path / "a.png", _image((8, 8, 3)))
    code, err = _run(
        capsys,
        str(tmp_path / "a.png"),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
        "--dtype",
        "fp16",
        "--device",
        "cpu",
    )
    assert code == 1 and len(err) == 1
    assert "fp16 is not supported on the CPU" in err[0] and "bf16" in err[0]
    assert not (tmp_path / "o" / "a_x4.png").exists()


def test_max_pixels_guard_says_use_tile(tmp_path, weights, capsys):
    big = _write(tmp_path / "big.png", _image((20, 30, 3)))
    code, err = _run(
        capsys,
        str(big),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
        "--max-pixels",
        "100",
        "--tile",
        "0",
    )
    assert code == 1 and len(err) == 1 and "--tile" in err[0] and "big.png" in err[0]
    code, err = _run(
        capsys,
        str(big),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
        "--max-pixels",
        "100",
        "--tile",
        "8",
    )
    assert code == 0 and _read(tmp_path / "o" / "big_x4.png").shape == (80, 120, 3)


def test_tiled_cli_matches_untiled(tmp_path, weights, capsys):
    rng = np.random.default_rng(5)
    small = rng.random((12, 16, 3)).astype(np.float32)
    image = np.rint(cv2.resize(small, (64, 48)) * 255).astype(np.uint8)
    src = _write(tmp_path / "img.png", image)
    assert _run(capsys, str(src), "-o", str(tmp_path / "whole"), "--weights", str(weights))[0] == 0
    assert (
        _run(
            capsys,
            str(src),
            "-o",
            str(tmp_path / "tiled"),
            "--weights",
            str(weights),
            "--tile",
            "16",
        )[0]
        == 0
    )
    whole = _read(tmp_path / "whole" / "img_x4.png").astype(int)
    tiled = _read(tmp_path / "tiled" / "img_x4.png").astype(int)
    assert np.abs(whole - tiled).max() <= 1


def test_scale_out_and_ext(tmp_path, weights, capsys):
    src = _write(tmp_path / "a.png", _image((10, 8, 4), np.uint16))
    code, _ = _run(
        capsys,
        str(src),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
        "--scale-out",
        "2",
        "--ext",
        "jpg",
        "--alpha",
        "bicubic",
    )
    assert code == 0
    out = _read(tmp_path / "o" / "a_x4.jpg")
    assert out.shape == (20, 16, 3) and out.dtype == np.uint8  # jpg: 8-bit, no alpha


def test_auto_ext_switches_to_png_when_needed(tmp_path, weights, capsys):
    # A .tif keeps 16-bit; a .jpg input is 8-bit RGB so stays .jpg; .bmp with alpha -> png.
    src = _write(tmp_path / "a.bmp", _image((6, 6, 4)))
    code, _ = _run(capsys, str(src), "-o", str(tmp_path / "o"), "--weights", str(weights))
    assert code == 0
    assert _read(tmp_path / "o" / "a_x4.png").shape == (24, 24, 4)


def test_missing_weights_is_one_line(tmp_path, capsys):
    src = _write(tmp_path / "a.png", _image((6, 6, 3)))
    code, err = _run(
        capsys, str(src), "-o", str(tmp_path / "o"), "--weights", str(tmp_path / "nope.safetensors")
    )
    assert code == 1 and len(err) == 1 and "nope.safetensors" in err[0]


def test_missing_input_is_reported_and_others_processed(tmp_path, weights, capsys):
    src = _write(tmp_path / "a.png", _image((6, 6, 3)))
    code, err = _run(
        capsys,
        str(tmp_path / "missing.png"),
        str(src),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
    )
    assert code == 1 and len(err) == 1 and "missing.png" in err[0]
    assert (tmp_path / "o" / "a_x4.png").is_file()


def test_default_backend_is_auto_onnxruntime_and_matches_torch(tmp_path, weights, capsys):
    sub = argparse.ArgumentParser().add_subparsers()
    parser = register(sub)
    assert parser.parse_args(["x", "-o", "y"]).backend == "auto"
    help_text = " ".join(parser.format_help().split())
    assert "first onnxruntime run of a model exports it to ONNX" in help_text

    src = _write(tmp_path / "a.png", _image((10, 14, 3)))
    infer._SESSIONS.clear()
    code, err = _run(
        capsys, str(src), "-o", str(tmp_path / "auto"), "--weights", str(weights), "--device", "cpu"
    )
    assert code == 0 and err == []
    assert any(path[0].endswith(".onnx") for path in infer._SESSIONS)  # ran on ONNX Runtime
    cli_ort = _read(tmp_path / "auto" / "a_x4.png")
    assert cli_ort.shape == (40, 56, 3)
    code, err = _run(
        capsys,
        str(src),
        "-o",
        str(tmp_path / "torch"),
        "--weights",
        str(weights),
        "--backend",
        "torch",
    )
    assert code == 0 and err == []
    cli_torch = _read(tmp_path / "torch" / "a_x4.png")
    assert np.abs(cli_ort.astype(int) - cli_torch.astype(int)).max() <= 1


def test_onnxruntime_with_bf16_is_one_error(tmp_path, weights, capsys):
    src = _write(tmp_path / "a.png", _image((8, 8, 3)))
    code, err = _run(
        capsys,
        str(src),
        "-o",
        str(tmp_path / "o"),
        "--weights",
        str(weights),
        "--dtype",
        "bf16",
        "--device",
        "cpu",
        "--backend",
        "onnxruntime",
    )
    assert code == 1 and len(err) == 1 and "fp32 only" in err[0]
    assert not (tmp_path / "o" / "a_x4.png").exists()


def test_large_images_are_tiled_without_a_flag(tmp_path, weights, capsys, monkeypatch):
    """--tile auto is the default: an image over the memory budget is tiled, not refused."""
    from esrgan_lab.model.memory import activation_bytes_per_pixel

    per_px = activation_bytes_per_pixel(make_tiny())
    monkeypatch.setattr(infer, "memory_budget", lambda device: int(per_px * 24 * 24))
    seen = []
    real = infer._run_tiles

    def spy(model, x, tiles, *args, **kwargs):
        seen.append(len(tiles))
        return real(model, x, tiles, *args, **kwargs)

    monkeypatch.setattr(infer, "_run_tiles", spy)
    src = _write(tmp_path / "big.png", _image((40, 56, 3)))
    code, err = _run(capsys, str(src), "-o", str(tmp_path / "o"), "--weights", str(weights))
    assert code == 0 and err == [] and seen and seen[0] > 1
    assert _read(tmp_path / "o" / "big_x4.png").shape == (160, 224, 3)


def test_two_runs_into_one_output_folder_stay_correct(tmp_path, capsys):
    """Issue 31: a second run into the same folder replaces its own outputs whole, leaves
    the other run's alone, and leaves no temporary file; each output equals a fresh run."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    _write(first / "a.png", _image((10, 12, 3), seed=1))
    _write(first / "b.png", _image((8, 8, 3), seed=2))
    _write(second / "a.png", _image((10, 12, 3), seed=3))  # same name, other picture
    out = tmp_path / "out"
    weights = tmp_path / "spread.safetensors"  # outputs that depend on the input
    save_file(make_tiny(spread=True).state_dict(), str(weights))
    w = ["--weights", str(weights)]
    assert _run(capsys, str(first / "a.png"), str(first / "b.png"), "-o", str(out), *w)[0] == 0
    b_before = (out / "b_x4.png").read_bytes()
    assert _run(capsys, str(second / "a.png"), "-o", str(out), "--weights", str(weights))[0] == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_x4.png", "b_x4.png"]
    assert (out / "b_x4.png").read_bytes() == b_before
    fresh = tmp_path / "fresh"
    assert _run(capsys, str(second / "a.png"), "-o", str(fresh), "--weights", str(weights))[0] == 0
    assert np.array_equal(_read(out / "a_x4.png"), _read(fresh / "a_x4.png"))
    one = tmp_path / "one"
    assert _run(capsys, str(first / "a.png"), "-o", str(one), "--weights", str(weights))[0] == 0
    assert not np.array_equal(_read(out / "a_x4.png"), _read(one / "a_x4.png"))
