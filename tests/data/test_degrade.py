"""MATLAB-compatible bicubic resize, modcrop and the standard bicubic LQ."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from esrgan_lab.data.degrade import (
    bicubic_degrade,
    bicubic_upscale,
    center_crop,
    imresize,
    modcrop,
    resize_matrix,
    standard_pair,
)
from esrgan_lab.data.images import round_to_uint


def _matlab_reference_1d(vec: np.ndarray, out_len: int, scale: float, aa: bool) -> np.ndarray:
    """Loop-by-loop port of MATLAB's ``contributions`` + ``imresizemex`` for one axis."""

    def cubic(x: float) -> float:
        ax = abs(x)
        if ax <= 1:
            return 1.5 * ax**3 - 2.5 * ax**2 + 1
        if ax <= 2:
            return -0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2
        return 0.0

    n = len(vec)
    if scale < 1 and aa:
        width = 4.0 / scale

        def h(x: float) -> float:
            return scale * cubic(scale * x)
    else:
        width = 4.0
        h = cubic
    aux = list(range(1, n + 1)) + list(range(n, 0, -1))  # MATLAB's symmetric index map
    out = np.zeros(out_len)
    for i in range(1, out_len + 1):
        u = i / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = [left + j for j in range(math.ceil(width) + 2)]
        w = np.array([h(u - t) for t in taps])
        w /= w.sum()
        for t, wt in zip(taps, w):
            out[i - 1] += wt * vec[aux[(t - 1) % (2 * n)] - 1]
    return out


def _matlab_reference(img: np.ndarray, out_hw: tuple[int, int], scales, aa=True) -> np.ndarray:
    rows = np.stack(
        [_matlab_reference_1d(img[:, c], out_hw[0], scales[0], aa) for c in range(img.shape[1])],
        axis=1,
    )
    return np.stack(
        [_matlab_reference_1d(rows[r], out_hw[1], scales[1], aa) for r in range(out_hw[0])]
    )


@pytest.mark.parametrize(
    "shape,scale",
    [
        ((12, 16), 0.25),
        ((13, 10), 0.5),
        ((9, 9), 1 / 3),
        ((7, 5), 2.0),
        ((6, 8), 4.0),
        ((8, 7), 0.6),
    ],
)
def test_imresize_matches_loop_reference(shape, scale):
    rng = np.random.default_rng(1)
    img = rng.uniform(0, 255, size=shape)
    out = imresize(img, scale)
    expected_hw = tuple(math.ceil(s * scale - 1e-9) for s in shape)
    assert out.shape == expected_hw
    ref = _matlab_reference(img, expected_hw, (scale, scale))
    np.testing.assert_allclose(out, ref, rtol=0, atol=1e-9)


def test_imresize_size_argument_uses_per_axis_scales():
    rng = np.random.default_rng(2)
    img = rng.uniform(0, 1, size=(10, 12))
    out = imresize(img, size=(5, 18))
    ref = _matlab_reference(img, (5, 18), (5 / 10, 18 / 12))
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_imresize_without_antialiasing_differs_when_downscaling():
    rng = np.random.default_rng(3)
    img = rng.uniform(0, 255, size=(16, 16))
    plain = imresize(img, 0.5, antialiasing=False)
    ref = _matlab_reference(img, (8, 8), (0.5, 0.5), aa=False)
    np.testing.assert_allclose(plain, ref, atol=1e-9)
    assert np.abs(plain - imresize(img, 0.5)).max() > 1.0


def test_identity_constant_and_normalisation():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
    np.testing.assert_allclose(imresize(img, 1.0), img, atol=1e-12)
    const = np.full((17, 23, 3), 77, dtype=np.uint8)
    for s in (0.25, 0.5, 3.0):
        np.testing.assert_allclose(imresize(const, s), 77.0, atol=1e-10)
    m = resize_matrix(37, 10, 0.27)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-12)


def test_dtype_rule_numpy_float64_unrounded():
    img = np.array([[0, 255, 0, 255], [255, 0, 255, 0]] * 2, dtype=np.uint8)
    out = imresize(img, 2.0)
    assert out.dtype == np.float64
    # bicubic overshoots outside [0, 255] and is left unclipped and unrounded
    assert out.max() > 255 and out.min() < 0
    assert not np.allclose(out, np.round(out))


def test_hwc_channels_are_independent():
    rng = np.random.default_rng(5)
    img = rng.uniform(0, 255, size=(15, 11, 3))
    out = imresize(img, 0.25)
    for c in range(3):
        np.testing.assert_allclose(out[..., c], imresize(img[..., c], 0.25), atol=1e-10)


@pytest.mark.parametrize("scale", [0.25, 0.5, 2.0, 4.0])
def test_torch_matches_numpy(scale):
    rng = np.random.default_rng(6)
    hwc = rng.uniform(0, 1, size=(2, 18, 14, 3))  # two images
    expected = np.stack([imresize(im, scale) for im in hwc])  # (N, H', W', C)
    nchw64 = torch.from_numpy(hwc.transpose(0, 3, 1, 2).copy())
    out64 = imresize(nchw64, scale)
    assert out64.dtype == torch.float64
    np.testing.assert_allclose(out64.numpy().transpose(0, 2, 3, 1), expected, atol=1e-12)
    out32 = imresize(nchw64.float()[0], scale)  # CHW float32
    assert out32.dtype == torch.float32 and out32.ndim == 3
    np.testing.assert_allclose(out32.numpy().transpose(1, 2, 0), expected[0], atol=1e-6)


def test_invalid_arguments():
    img = np.zeros((8, 8))
    with pytest.raises(ValueError):
        imresize(img)
    with pytest.raises(ValueError):
        imresize(img, 0.5, size=(4, 4))
    with pytest.raises(TypeError):
        imresize(torch.zeros(8, 8, dtype=torch.uint8), 0.5)
    with pytest.raises(TypeError):
        bicubic_degrade(img, 4)


def test_modcrop_numpy_and_torch():
    img = np.arange(10 * 13 * 3).reshape(10, 13, 3)
    out = modcrop(img, 4)
    assert out.shape == (8, 12, 3)
    np.testing.assert_array_equal(out, img[:8, :12])
    assert modcrop(img[..., 0], 3).shape == (9, 12)
    t = torch.zeros(2, 3, 10, 13)
    assert modcrop(t, 4).shape == (2, 3, 8, 12)


def test_bicubic_degrade_and_upscale_shapes():
    rng = np.random.default_rng(7)
    gt = rng.integers(0, 256, size=(37, 42, 3), dtype=np.uint8)
    lq = bicubic_degrade(gt, 4)
    assert lq.shape == (9, 10, 3) and lq.dtype == np.uint8
    np.testing.assert_array_equal(lq, round_to_uint(imresize(gt[:36, :40], 0.25)))
    sr = bicubic_upscale(lq, 4)
    assert sr.shape == (36, 40, 3) and sr.dtype == np.uint8
    cropped, lq2 = standard_pair(gt, 4)
    np.testing.assert_array_equal(cropped, gt[:36, :40])
    np.testing.assert_array_equal(lq2, lq)


def test_matlab_bicubic_differs_from_opencv():
    # OpenCV's INTER_CUBIC (a = -0.75, no antialiasing) is not MATLAB's bicubic.
    rng = np.random.default_rng(8)
    gt = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    cv = cv2.resize(gt, (16, 16), interpolation=cv2.INTER_CUBIC)
    assert np.abs(cv.astype(int) - bicubic_degrade(gt, 4)).max() > 10


@pytest.mark.parametrize("name", ["baboon", "comic"])
def test_golden_official_esrgan_lr_inputs(data_root, name):
    """ESRGAN's sample LR inputs were made with MATLAB imresize: we reproduce them exactly."""
    gt = cv2.imread(str(data_root / "Set14" / f"{name}.png"))
    official = cv2.imread(str(data_root / "esrgan_samples" / f"LR_{name}.png"))
    assert gt is not None and official is not None
    lq = bicubic_degrade(gt, 4)
    assert lq.shape == official.shape
    np.testing.assert_array_equal(lq, official)


def test_center_crop_takes_the_middle_and_keeps_short_sides() -> None:
    img = np.arange(10 * 7 * 3).reshape(10, 7, 3)
    assert np.array_equal(center_crop(img, 4), img[3:7, 1:5])
    assert np.array_equal(center_crop(img, 8), img[1:9, :])  # width 7 < 8: kept whole
    with pytest.raises(ValueError, match="size must be >= 1"):
        center_crop(img, 0)
