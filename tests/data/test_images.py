"""Image file I/O and the array <-> tensor conversion (esrgan_lab.data.images)."""

from __future__ import annotations

import os
import stat

import cv2
import numpy as np
import pytest
import torch

from esrgan_lab.data.images import (
    array_to_tensor,
    can_store,
    fit_to_format,
    read_image,
    round_to_uint,
    tensor_to_array,
    write_image,
)
from esrgan_lab.errors import ConfigError, ImageReadError

SHAPES = [(7, 9), (7, 9, 3), (7, 9, 4)]


def _random(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_lossless_round_trip_matches_cv2(tmp_path, shape, dtype, ext):
    image = _random(shape, dtype)
    path = write_image(tmp_path / f"a{ext}", image)
    back = read_image(path)
    assert back.dtype == dtype and back.shape == shape
    np.testing.assert_array_equal(back, image)
    # Oracle: what OpenCV itself reads from the file.
    np.testing.assert_array_equal(back, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))


def test_webp_lossless_keeps_alpha(tmp_path):
    image = _random((6, 8, 4), np.uint8)
    path = write_image(tmp_path / "a.webp", image, params=[cv2.IMWRITE_WEBP_QUALITY, 101])
    np.testing.assert_array_equal(read_image(path), image)


def test_jpeg_reads_as_cv2_does(tmp_path):
    ramp = np.linspace(0, 255, 16)
    image = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128.0), -1).astype(np.uint8)
    path = write_image(tmp_path / "a.jpg", image)
    back = read_image(path)
    np.testing.assert_array_equal(back, cv2.imread(str(path), cv2.IMREAD_UNCHANGED))
    assert np.abs(back.astype(int) - image).mean() < 3  # lossy, but the same picture


def test_non_ascii_path(tmp_path):
    folder = tmp_path / "Bilder ü 图像"
    folder.mkdir()
    image = _random((5, 6, 3), np.uint8)
    path = write_image(folder / "ça_été.png", image)
    assert path.is_file()
    np.testing.assert_array_equal(read_image(path), image)


@pytest.mark.parametrize(
    "content, reason",
    [
        (None, "no such file"),
        (b"", "empty"),
        (b"\x89PNG garbage" * 20, "corrupt"),
        (b"hello, not an image\n", "corrupt"),
    ],
)
def test_unreadable_files_raise_image_read_error(tmp_path, content, reason):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as info:
        read_image(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_truncated_png_is_an_error(tmp_path):
    good = write_image(tmp_path / "good.png", _random((32, 32, 3), np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(ImageReadError, match="bad.png"):
        read_image(bad)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_array_to_tensor_scales_by_dtype_not_by_data_max():
    dark = np.full((2, 3), 1000, np.uint16)  # a dark 16-bit image, max far below 65535
    color = array_to_tensor(dark)
    assert color.shape == (1, 1, 2, 3) and color.dtype == torch.float32
    assert torch.allclose(color, torch.full_like(color, 1000 / 65535))
    bright = np.full((2, 3), 200, np.uint8)
    assert torch.allclose(array_to_tensor(bright), torch.full((1, 1, 2, 3), 200 / 255))
    assert array_to_tensor(bright, batch=False).shape == (1, 2, 3)


def test_array_to_tensor_bgr_to_rgb_and_alpha():
    image = np.zeros((2, 2, 4), np.uint8)
    image[..., 0], image[..., 1], image[..., 2], image[..., 3] = 10, 20, 30, 40  # B G R A
    t = array_to_tensor(image)
    assert t.shape == (1, 4, 2, 2)
    np.testing.assert_allclose(t[0, :, 0, 0].numpy(), np.array([30, 20, 10, 40]) / 255, rtol=1e-6)
    bgr = image[..., :3]
    np.testing.assert_array_equal(array_to_tensor(bgr)[0].numpy(), t[0, :3].numpy())


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_tensor_round_trip_is_exact(shape, dtype):
    image = _random(shape, dtype)
    back = tensor_to_array(array_to_tensor(image), dtype=dtype)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, image)
    np.testing.assert_array_equal(
        tensor_to_array(array_to_tensor(image, batch=False), dtype), image
    )


def test_tensor_to_array_rounds_half_up_and_clips():
    values = np.array([-0.5, 0.0, 0.3 / 255, 0.7 / 255, 1.6 / 255, 0.5, 1.0, 3.0], np.float32)
    t = torch.from_numpy(values).reshape(1, 1, 1, -1)
    # 0.5 * 255 = 127.5 rounds up to 128 (MATLAB's uint8 rule), 1.6 -> 2, 0.7 -> 1.
    np.testing.assert_array_equal(tensor_to_array(t)[0], [0, 0, 0, 1, 2, 128, 255, 255])
    # Oracle for 16 bits: floor(x + 0.5) of the clipped, scaled values in float64.
    expected = np.floor(np.clip(values.astype(np.float64), 0, 1) * 65535 + 0.5).astype(np.uint16)
    np.testing.assert_array_equal(tensor_to_array(t, dtype=np.uint16)[0], expected)
    assert expected[4] == 411 and expected[-1] == 65535


def test_quantize_one_rule_for_arrays_and_tensors():
    vals = np.array([-3.0, 0.49, 0.5, 1.5, 2.5, 254.5, 300.0])
    expected = [0, 0, 1, 2, 3, 255, 255]  # halves round up (np.round would give 0, 2, 2)
    np.testing.assert_array_equal(round_to_uint(vals), expected)
    np.testing.assert_array_equal(round_to_uint(torch.tensor(vals, dtype=torch.float32)), expected)
    assert round_to_uint(np.array([0.5, 1.2]), data_range=1.0).tolist() == [128, 255]
    assert round_to_uint(np.array([0.5]), data_range=1.0, dtype=np.uint16).tolist() == [32768]


def test_conversion_rejects_batches_and_odd_channels():
    with pytest.raises(ConfigError, match="one image"):
        tensor_to_array(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ConfigError, match="tensor"):
        tensor_to_array(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ConfigError, match="shape"):
        array_to_tensor(np.zeros((4, 4, 2), np.uint8))


def test_write_refuses_to_overwrite_an_input(tmp_path):
    src = write_image(tmp_path / "in.png", _random((4, 4, 3), np.uint8))
    before = src.read_bytes()
    with pytest.raises(ConfigError, match="overwrite"):
        write_image(tmp_path / "." / "in.png", _random((4, 4, 3), np.uint8), protect=[src])
    assert src.read_bytes() == before


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path, monkeypatch):
    target = write_image(tmp_path / "out.png", _random((4, 4), np.uint8))
    before = target.read_bytes()

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        write_image(target, _random((8, 8), np.uint8))
    assert target.read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_written_file_has_normal_permissions(tmp_path):
    path = write_image(tmp_path / "p.png", _random((4, 4), np.uint8))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_formats_that_cannot_store_the_data(tmp_path):
    deep = _random((4, 4, 3), np.uint16)
    rgba = _random((4, 4, 4), np.uint8)
    assert not can_store(deep, ".jpg") and not can_store(rgba, "jpg") and can_store(deep, ".png")
    with pytest.raises(ConfigError, match="png"):
        write_image(tmp_path / "a.jpg", deep)
    fitted = fit_to_format(deep, ".jpg")
    assert fitted.dtype == np.uint8
    np.testing.assert_array_equal(fitted, np.rint(deep / 257.0).astype(np.uint8))
    assert fit_to_format(rgba, ".jpg").shape == (4, 4, 3)
    assert fit_to_format(rgba, ".png") is rgba
    with pytest.raises(ConfigError, match="extension"):
        write_image(tmp_path / "a.xyz", rgba)
