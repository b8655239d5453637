"""Full-reference metrics: PSNR and SSIM, as BasicSR and MATLAB define them.

Two front ends, one definition:

* numpy functions (:func:`calculate_psnr`, :func:`calculate_ssim`) take images exactly
  as ``cv2.imread`` returns them: **BGR** (or gray), uint8 or float on ``[0, 255]`` -
  BasicSR's convention, so numbers are comparable with BasicSR/ESRGAN tables.
* torch functions (:func:`psnr_torch`, :func:`ssim_torch`) take the project's tensors:
  **RGB** float ``[0, 1]``, ``(N, C, H, W)``; they scale to ``[0, 255]`` internally and
  return one value per image.

Everything is computed in float64 on ``[0, 255]``. With ``test_y_channel=True`` the
images are first reduced to the luma Y of MATLAB's ``rgb2ycbcr`` (ITU-R BT.601,
studio swing ``[16, 235]``), unrounded. ``crop_border`` pixels are removed from each
side before scoring (the SR convention is ``crop_border = scale``).

SSIM follows Wang et al. 2004 / MATLAB ``ssim_index``: 11x11 Gaussian window with
``sigma = 1.5``, ``K1 = 0.01``, ``K2 = 0.03``, statistics only where the window fits
('valid' filtering, no padding), per-channel maps averaged.

NIQE lives in :mod:`esrgan_lab.metrics.niqe`, FID in :mod:`esrgan_lab.metrics.fid`.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import EsrganLabError

InputOrder = Literal["HWC", "CHW"]

#: MATLAB ``rgb2ycbcr`` luma row for R, G, B on ``[0, 1]`` (offset 16 on the 255 scale).
_Y_WEIGHTS_RGB = np.array([65.481, 128.553, 24.966])
_Y_OFFSET = 16.0

#: SSIM constants (Wang et al. 2004).
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


class MetricUnavailable(EsrganLabError):
    """A metric that cannot be computed here (missing model file, offline weights).

    Callers that report many metrics catch it and show "n/a" with the message.
    """


# --------------------------------------------------------------------------- colour


def rgb2y(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` for an RGB ``(..., 3)`` image on ``[0, 255]``.

    ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, float64, not rounded.
    """
    arr = np.asarray(img, dtype=np.float64)
    return arr @ (_Y_WEIGHTS_RGB / 255.0) + _Y_OFFSET


def bgr2y(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB ``rgb2ycbcr`` for a BGR (cv2) ``(..., 3)`` image on ``[0, 255]``."""
    arr = np.asarray(img, dtype=np.float64)
    return arr @ (_Y_WEIGHTS_RGB[::-1] / 255.0) + _Y_OFFSET


def rgb2ycbcr(img: np.ndarray, y_only: bool = True) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma of an RGB image on ``[0, 255]`` (only ``y_only=True``)."""
    if not y_only:
        raise NotImplementedError("only the Y channel is used by the SR metrics")
    return rgb2y(img)


def bgr2ycbcr(img: np.ndarray, y_only: bool = True) -> np.ndarray:
    """MATLAB ``rgb2ycbcr`` luma of a BGR image on ``[0, 255]`` (only ``y_only=True``)."""
    if not y_only:
        raise NotImplementedError("only the Y channel is used by the SR metrics")
    return bgr2y(img)


def _prepare(
    img: np.ndarray, crop_border: int, input_order: InputOrder, test_y_channel: bool
) -> np.ndarray:
    """-> float64 ``(H, W, C)`` on [0, 255], cropped, Y-only if asked."""
    arr = np.asarray(img)
    if input_order not in ("HWC", "CHW"):
        raise ValueError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    if arr.ndim == 2:
        arr = arr[..., None]
    elif input_order == "CHW":
        arr = np.transpose(arr, (1, 2, 0))
    arr = arr.astype(np.float64)
    if crop_border:
        arr = arr[crop_border:-crop_border, crop_border:-crop_border, :]
    if test_y_channel and arr.shape[2] == 3:
        arr = bgr2y(arr)[..., None]
    return arr


def _check_pair(img: np.ndarray, img2: np.ndarray) -> None:
    if np.shape(img) != np.shape(img2):
        raise ValueError(f"image shapes differ: {np.shape(img)} vs {np.shape(img2)}")


# --------------------------------------------------------------------------- PSNR


def _psnr_from_mse(mse: float) -> float:
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(255.0**2 / mse)


def calculate_psnr(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: InputOrder = "HWC",
    test_y_channel: bool = False,
) -> float:
    """PSNR in dB between two images on ``[0, 255]`` (BasicSR's ``calculate_psnr``).

    Args:
        img: ``(H, W, C)`` BGR / ``(H, W)`` gray, uint8 or float on [0, 255].
        img2: Same shape as ``img``.
        crop_border: Pixels removed from each border before scoring.
        input_order: ``"HWC"`` or ``"CHW"``.
        test_y_channel: Score the MATLAB BT.601 Y channel instead of all channels.

    Returns:
        ``10 log10(255^2 / MSE)``; ``inf`` for identical images.
    """
    _check_pair(img, img2)
    a = _prepare(img, crop_border, input_order, test_y_channel)
    b = _prepare(img2, crop_border, input_order, test_y_channel)
    return _psnr_from_mse(float(np.mean((a - b) ** 2)))


# --------------------------------------------------------------------------- SSIM


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """Normalised 2-D Gaussian window ``(size, size)``, float64 (as ``fspecial``)."""
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    g /= g.sum()
    return np.outer(g, g)


def _filter_valid(img: np.ndarray, g1d: np.ndarray) -> np.ndarray:
    """Separable 'valid' correlation of a 2-D image with the 1-D kernel on both axes."""
    k = g1d.size
    # sliding_window_view gives (H-k+1, W, k); contracting with g is the 1-D filter.
    rows = np.lib.stride_tricks.sliding_window_view(img, k, axis=0) @ g1d
    return np.lib.stride_tricks.sliding_window_view(rows, k, axis=1) @ g1d


def _ssim_map_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM map of two float64 2-D images on [0, 255], 'valid' region only."""
    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    r = np.arange(SSIM_WINDOW, dtype=np.float64) - (SSIM_WINDOW - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * SSIM_SIGMA**2))
    g /= g.sum()
    mu1 = _filter_valid(a, g)
    mu2 = _filter_valid(b, g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, g) - mu1_sq
    sigma2_sq = _filter_valid(b * b, g) - mu2_sq
    sigma12 = _filter_valid(a * b, g) - mu1_mu2
    num = (2 * mu1_mu2 + c1) * (2 * sigma12 + c2)
    den = (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    return num / den


def ssim_map(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int = 0,
    input_order: InputOrder = "HWC",
    test_y_channel: bool = False,
) -> np.ndarray:
    """Per-pixel SSIM map ``(H - 2c - 10, W - 2c - 10, C')`` (C' = 1 for Y or gray).

    Same arguments as :func:`calculate_ssim`; its mean over all axes is the SSIM.
    """
    _check_pair(img, img2)
    a = _prepare(img, crop_border, input_order, test_y_channel)
    b = _prepare(img2, crop_border, input_order, test_y_channel)
    if min(a.shape[:2]) < SSIM_WINDOW:
        raise ValueError(f"image too small for SSIM ({a.shape[:2]} < {SSIM_WINDOW})")
    return np.stack([_ssim_map_2d(a[..., c], b[..., c]) for c in range(a.shape[2])], axis=-1)


def calculate_ssim(
    img: np.ndarray,
    img2: np.ndarray,
    crop_border: int,
    input_order: InputOrder = "HWC",
    test_y_channel: bool = False,
) -> float:
    """SSIM between two images on ``[0, 255]`` (BasicSR's ``calculate_ssim``).

    Args:
        img: ``(H, W, C)`` BGR / ``(H, W)`` gray, uint8 or float on [0, 255].
        img2: Same shape as ``img``.
        crop_border: Pixels removed from each border before scoring.
        input_order: ``"HWC"`` or ``"CHW"``.
        test_y_channel: Score the MATLAB BT.601 Y channel instead of all channels.

    Returns:
        Mean of the per-channel SSIM maps (1.0 for identical images).
    """
    return float(ssim_map(img, img2, crop_border, input_order, test_y_channel).mean())


# --------------------------------------------------------------------------- torch


def _prepare_torch(x: torch.Tensor, crop_border: int, test_y_channel: bool) -> torch.Tensor:
    """RGB [0,1] ``(N, C, H, W)`` -> float64 [0, 255], cropped, Y-only if asked."""
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4:
        raise ValueError(f"expected (N, C, H, W) tensors, got shape {tuple(x.shape)}")
    x = x.to(torch.float64) * 255.0
    if crop_border:
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    if test_y_channel and x.shape[1] == 3:
        w = torch.as_tensor(_Y_WEIGHTS_RGB / 255.0, dtype=torch.float64, device=x.device)
        x = (x * w.view(1, 3, 1, 1)).sum(dim=1, keepdim=True) + _Y_OFFSET
    return x


def psnr_torch(
    sr: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False
) -> torch.Tensor:
    """Per-image PSNR (dB) of RGB ``[0, 1]`` tensors ``(N, C, H, W)`` -> float64 ``(N,)``.

    Same definition as :func:`calculate_psnr` (values scaled to [0, 255]).
    """
    if sr.shape != gt.shape:
        raise ValueError(f"tensor shapes differ: {tuple(sr.shape)} vs {tuple(gt.shape)}")
    a = _prepare_torch(sr, crop_border, test_y_channel)
    b = _prepare_torch(gt, crop_border, test_y_channel)
    mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def ssim_torch(
    sr: torch.Tensor, gt: torch.Tensor, crop_border: int = 0, test_y_channel: bool = False
) -> torch.Tensor:
    """Per-image SSIM of RGB ``[0, 1]`` tensors ``(N, C, H, W)`` -> float64 ``(N,)``.

    Same definition as :func:`calculate_ssim` (11x11 Gaussian, 'valid' region).
    """
    if sr.shape != gt.shape:
        raise ValueError(f"tensor shapes differ: {tuple(sr.shape)} vs {tuple(gt.shape)}")
    a = _prepare_torch(sr, crop_border, test_y_channel)
    b = _prepare_torch(gt, crop_border, test_y_channel)
    n, c, h, w = a.shape
    if min(h, w) < SSIM_WINDOW:
        raise ValueError(f"image too small for SSIM ({h}x{w} < {SSIM_WINDOW})")
    win = torch.from_numpy(gaussian_window()).to(a.device).expand(c, 1, -1, -1).contiguous()

    def filt(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, win, groups=c)  # no padding: 'valid'

    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    mu1, mu2 = filt(a), filt(b)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = filt(a * a) - mu1_sq
    sigma2_sq = filt(b * b) - mu2_sq
    sigma12 = filt(a * b) - mu1_mu2
    smap = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return smap.mean(dim=(1, 2, 3))
