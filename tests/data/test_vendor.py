"""The vendor's pre/post-processing, checked step by step on hand-built arrays."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from esrgan_lab.data.vendor import get_image_data, postprocess
from esrgan_lab.errors import ImageReadError


def _write(path: Path, array: np.ndarray) -> str:
    assert cv2.imwrite(str(path), array)
    return str(path)


def test_identity_size_keeps_values_and_reorders_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    bgr = rng.integers(0, 256, size=(4, 6, 3), dtype=np.uint8)
    resized, data = get_image_data(_write(tmp_path / "a.png", bgr), (1, 3, 4, 6))
    assert resized.dtype == np.uint8 and resized.shape == (4, 6, 3)
    np.testing.assert_array_equal(resized, bgr)  # INTER_AREA to the same size is a copy
    assert data.dtype == np.float32 and data.shape == (1, 3, 4, 6)
    for c in range(3):  # channel 0 of the tensor is R = channel 2 of the BGR file
        np.testing.assert_array_equal(data[0, c], bgr[:, :, 2 - c].astype(np.float32) / 255.0)


def test_resize_is_inter_area_to_width_height(tmp_path: Path) -> None:
    # 2x2 blocks of constant colour: INTER_AREA by 1/2 averages each block exactly
    block = np.array([[10, 20, 30], [50, 60, 70]], dtype=np.uint8)  # two BGR colours
    img = np.zeros((4, 8, 3), np.uint8)
    img[:, :4] = block[0]
    img[:, 4:] = block[1]
    img[0, 0] = (14, 24, 34)  # one pixel off: the block mean rounds to (11, 21, 31)
    resized, data = get_image_data(_write(tmp_path / "b.png", img), (1, 3, 2, 4))
    assert resized.shape == (2, 4, 3)  # (H, W) = input_shape[2:], not swapped
    np.testing.assert_array_equal(resized[0, 0], (11, 21, 31))
    np.testing.assert_array_equal(resized[1, 3], block[1])
    np.testing.assert_array_equal(resized, cv2.resize(img, (4, 2), interpolation=cv2.INTER_AREA))
    assert data[0, 0, 1, 3] == np.float32(70 / 255.0)  # R of the second colour


def test_default_shape_is_128(tmp_path: Path) -> None:
    img = np.full((300, 200, 3), 128, np.uint8)
    resized, data = get_image_data(_write(tmp_path / "c.png", img))
    assert resized.shape == (128, 128, 3)
    assert data.shape == (1, 3, 128, 128)
    assert data.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize(
    "array,match",
    [
        (np.zeros((8, 8), np.uint8), "got 1 channel"),
        (np.zeros((8, 8, 4), np.uint8), "got 4 channel"),
        (np.zeros((8, 8, 3), np.uint16), "8-bit"),
    ],
)
def test_unsupported_files_are_clear_errors(tmp_path: Path, array: np.ndarray, match: str) -> None:
    path = _write(tmp_path / "x.png", array)
    assert cv2.imread(path, cv2.IMREAD_UNCHANGED).shape == array.shape  # really stored so
    with pytest.raises(ImageReadError, match=match):
        get_image_data(path)


def test_missing_and_corrupt_files(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="cannot read"):
        get_image_data(tmp_path / "missing.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png at all")
    with pytest.raises(ImageReadError, match="bad.png"):
        get_image_data(bad)


def test_postprocess_every_step() -> None:
    out = np.zeros((1, 3, 2, 4), np.float32)  # H=2: np.squeeze would drop H=1
    out[0, 0] = [0.5, -0.2, 1.7, 0.2]  # R: rounding, clipping low and high
    out[0, 1] = [0.0, 0.25, 1.0, 0.1]  # G
    out[0, 2] = [1.0, 0.75, 0.0, 0.3]  # B
    img = postprocess(out)
    assert img.dtype == np.uint8 and img.shape == (2, 4, 3)
    np.testing.assert_array_equal(img[0], img[1])
    # BGR order, clip to [0,1], *255, round half to even as numpy does (127.5 -> 128)
    np.testing.assert_array_equal(img[0, :, 2], [128, 0, 255, 51])
    np.testing.assert_array_equal(img[0, :, 1], [0, 64, 255, 26])
    np.testing.assert_array_equal(img[0, :, 0], [255, 191, 0, 76])
    np.testing.assert_array_equal(postprocess(torch.from_numpy(out)), img)


def test_round_trip_is_lossless_at_identity_size(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    bgr = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    resized, data = get_image_data(_write(tmp_path / "r.png", bgr), (1, 3, 5, 7))
    np.testing.assert_array_equal(postprocess(data), resized)


def test_postprocess_rejects_wrong_shape() -> None:
    with pytest.raises(ValueError, match="3 x H x W"):
        postprocess(np.zeros((1, 4, 2, 2), np.float32))


def test_sample_image_falls_back_to_skimage(tmp_path: Path, monkeypatch) -> None:
    from skimage import data as skdata

    from esrgan_lab.data.samples import sample_image_file

    monkeypatch.delenv("ESRGAN_LAB_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = sample_image_file(fallback="chelsea")
    assert path.is_relative_to(tmp_path)
    bgr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(bgr[..., ::-1], skdata.chelsea())
