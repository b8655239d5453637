"""Degradation: MATLAB-compatible bicubic ``imresize``, ``modcrop`` and the x4 bicubic LQ.

The standard SR protocol (and ESRGAN's training data, paper Sec. 4.1: "LR images are
obtained by down-sampling HR images with the MATLAB bicubic kernel function") makes
the low-quality input with MATLAB's ``imresize``. OpenCV's and PIL's bicubic differ
from it in three ways, each worth ~0.1-1 dB of PSNR:

1. the cubic kernel uses ``a = -0.5`` (OpenCV uses ``a = -0.75``);
2. when *down*scaling, MATLAB antialiases by widening the kernel by ``1 / scale``
   (``h(x) = scale * cubic(scale * x)``, support ``4 / scale`` pixels);
3. borders are extended by symmetric (half-sample) mirroring, not replication.

:func:`imresize` reproduces MATLAB's ``contributions``/``imresizemex`` computation
exactly. It is separable: for each axis it builds a dense ``(out, in)`` weight matrix
(mirrored indices folded in) and applies it with a matrix product, so there are no
Python loops over pixels.

Dtype rule:
    * numpy in -> ``float64`` out, on the *same value scale* as the input (a uint8
      image gives floats in about ``[0, 255]``, unrounded and unclipped; bicubic
      overshoots). Use :func:`esrgan_lab.data.images.round_to_uint` to get what a saved PNG
      would hold.
    * torch in -> same floating dtype and device out; computed in float64 internally so
      that numpy and torch give the same numbers (to float32 rounding for float32).
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

from .images import round_to_uint

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

#: Support of the bicubic kernel in input pixels at scale >= 1.
KERNEL_WIDTH = 4.0


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with ``a = -0.5`` (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return inner + outer


def resize_matrix(
    in_length: int, out_length: int, scale: float, antialiasing: bool = True
) -> np.ndarray:
    """Dense ``(out_length, in_length)`` float64 matrix of one axis of MATLAB ``imresize``.

    Row ``i`` holds the weights of output pixel ``i``; symmetric border extension is
    folded in by adding the weight of a mirrored tap onto the pixel it mirrors. Every row
    sums to 1.

    Args:
        in_length: Input size along the axis.
        out_length: Output size along the axis.
        scale: ``out / in`` scale factor along the axis (as MATLAB uses it, i.e. the
            requested factor, not the rounded size ratio).
        antialiasing: Widen the kernel by ``1 / scale`` when downscaling (MATLAB default).
    """
    if scale < 1 and antialiasing:
        # Antialiasing (MATLAB): a stretched kernel, h(x) = scale * cubic(scale * x),
        # acts as a low-pass filter matched to the new Nyquist frequency.
        kernel_width = KERNEL_WIDTH / scale

        def kernel(x: np.ndarray) -> np.ndarray:
            return scale * cubic(scale * x)
    else:
        kernel_width = KERNEL_WIDTH
        kernel = cubic

    # Output pixel x (1-based) maps to input coordinate u (1-based, pixel centres).
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    taps = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # (out, taps)
    weights = kernel(u[:, None] - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)

    # Symmetric extension: index sequence 1..n, n..1 repeated (MATLAB's aux vector).
    period = 2 * in_length
    idx0 = np.mod(indices.astype(np.int64) - 1, period)
    idx0 = np.where(idx0 < in_length, idx0, period - 1 - idx0)

    matrix = np.zeros((out_length, in_length), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_length)[:, None], idx0.shape)
    np.add.at(matrix, (rows, idx0), weights)
    return matrix


def _output_size(in_size: int, scale: float) -> int:
    # MATLAB: ceil(scale * size). The tolerance stops 1/3 * 9 = 3.0000000000000004
    # from becoming 4.
    return int(math.ceil(in_size * scale - 1e-9))


def _plan(
    in_hw: tuple[int, int],
    scale: float | None,
    size: tuple[int, int] | None,
) -> tuple[tuple[int, int], tuple[float, float]]:
    """Output size and per-axis scale factors, as MATLAB's ``parsePreMethodArgs``."""
    if (scale is None) == (size is None):
        raise ValueError("imresize: give exactly one of scale or size")
    if scale is not None:
        if scale <= 0:
            raise ValueError(f"imresize: scale must be positive, got {scale}")
        scales = (float(scale), float(scale))
        out = (_output_size(in_hw[0], scale), _output_size(in_hw[1], scale))
    else:
        assert size is not None
        out = (int(size[0]), int(size[1]))
        if min(out) <= 0:
            raise ValueError(f"imresize: size must be positive, got {size}")
        scales = (out[0] / in_hw[0], out[1] / in_hw[1])
    return out, scales


def imresize(
    img: ArrayT,
    scale: float | None = None,
    *,
    size: tuple[int, int] | None = None,
    antialiasing: bool = True,
) -> ArrayT:
    """MATLAB ``imresize(img, scale, 'bicubic')`` for numpy images and torch tensors.

    Args:
        img: numpy ``(H, W)`` or ``(H, W, C)`` of any real dtype, or a torch float
            tensor ``(H, W)``, ``(C, H, W)`` or ``(N, C, H, W)`` (resized over the last
            two axes).
        scale: Scale factor (``0.25`` for x4 downsampling). Output size is
            ``ceil(scale * in)``, as MATLAB.
        size: Output ``(height, width)`` instead of ``scale``; the per-axis factors are
            then ``out / in``.
        antialiasing: Antialias when downscaling (MATLAB's default ``true``).

    Returns:
        numpy: float64 ``(H', W'[, C])`` on the input's value scale, unrounded.
        torch: a tensor of the input's dtype and device, ``(..., H', W')``.
    """
    if isinstance(img, torch.Tensor):
        if not torch.is_floating_point(img):
            raise TypeError("imresize: torch input must be a floating tensor")
        if img.ndim < 2:
            raise ValueError(f"imresize: need at least 2 dims, got shape {tuple(img.shape)}")
        in_hw = (int(img.shape[-2]), int(img.shape[-1]))
        out_hw, scales = _plan(in_hw, scale, size)
        mat_h = torch.from_numpy(resize_matrix(in_hw[0], out_hw[0], scales[0], antialiasing))
        mat_w = torch.from_numpy(resize_matrix(in_hw[1], out_hw[1], scales[1], antialiasing))
        mat_h = mat_h.to(img.device)
        mat_w = mat_w.to(img.device)
        x = img.to(torch.float64)
        # (..., H, W) -> (..., H', W): out = Mh @ x @ Mw^T
        out = torch.matmul(torch.matmul(mat_h, x), mat_w.T)
        return out.to(img.dtype)

    arr = np.asarray(img)
    if arr.ndim not in (2, 3):
        raise ValueError(f"imresize: numpy input must be HW or HWC, got shape {arr.shape}")
    in_hw = (arr.shape[0], arr.shape[1])
    out_hw, scales = _plan(in_hw, scale, size)
    mat_h = resize_matrix(in_hw[0], out_hw[0], scales[0], antialiasing)
    mat_w = resize_matrix(in_hw[1], out_hw[1], scales[1], antialiasing)
    x = arr.astype(np.float64, copy=False)
    tmp = np.tensordot(mat_h, x, axes=([1], [0]))  # (H', W[, C])
    out = np.tensordot(mat_w, tmp, axes=([1], [1]))  # (W', H'[, C])
    return np.ascontiguousarray(np.swapaxes(out, 0, 1))


def modcrop(img: ArrayT, scale: int) -> ArrayT:
    """Crop height and width down to multiples of ``scale`` (keeps the top-left corner).

    numpy images are ``(H, W[, C])``; tensors ``(..., H, W)``.
    """
    if scale < 1:
        raise ValueError(f"modcrop: scale must be >= 1, got {scale}")
    if isinstance(img, torch.Tensor):
        h, w = img.shape[-2], img.shape[-1]
        return img[..., : h - h % scale, : w - w % scale]
    h, w = img.shape[0], img.shape[1]
    return img[: h - h % scale, : w - w % scale, ...]


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central ``size`` x ``size`` window of an ``(H, W[, C])`` image (a side shorter
    than ``size`` is kept whole), e.g. a fixed validation crop of a large HR image.

    ``size`` should be a multiple of the scale, so that the crop degrades without modcrop.
    """
    if size < 1:
        raise ValueError(f"center_crop: size must be >= 1, got {size}")
    h, w = img.shape[0], img.shape[1]
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return img[top : top + size, left : left + size, ...]


def bicubic_degrade(gt: np.ndarray, scale: int) -> np.ndarray:
    """The standard LQ image: ``modcrop``, MATLAB bicubic ``1/scale``, saved as uint8.

    Args:
        gt: uint8 ``(H, W[, C])`` ground truth (any channel order; channels are
            independent).
        scale: Integer downscaling factor (4 for ESRGAN).

    Returns:
        uint8 ``(H // scale, W // scale[, C])``, as MATLAB's
        ``imresize(modcrop(gt, scale), 1/scale, 'bicubic')`` on a uint8 image returns.
    """
    if np.asarray(gt).dtype != np.uint8:
        raise TypeError(f"bicubic_degrade expects a uint8 image, got {np.asarray(gt).dtype}")
    cropped = modcrop(np.asarray(gt), scale)
    return round_to_uint(imresize(cropped, 1.0 / scale))


def bicubic_upscale(lq: np.ndarray, scale: int) -> np.ndarray:
    """The bicubic baseline: MATLAB ``imresize(lq, scale)`` of a uint8 image, as uint8."""
    return round_to_uint(imresize(np.asarray(lq), float(scale)))


def standard_pair(gt: np.ndarray, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """``(modcrop(gt), lq)`` of the standard protocol: the LQ is :func:`bicubic_degrade`.

    The degradation of the paper's x4 setting and of every published SR table; any
    channel order (channels are independent).
    """
    gt = modcrop(np.asarray(gt), scale)
    return gt, bicubic_degrade(gt, scale)
