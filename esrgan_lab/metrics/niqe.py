"""NIQE, the no-reference "naturalness" score used in the PIRM-SR perceptual index.

Mittal, Soundararajan and Bovik, "Making a 'Completely Blind' Image Quality Analyzer"
(IEEE SPL 2013). The image's local statistics are compared with a multivariate
Gaussian fitted on pristine natural images; **lower is more natural**. ESRGAN's paper
reports the perceptual index ``PI = ((10 - Ma) + NIQE) / 2`` (Sec. 4.4, PIRM-SR), so
NIQE is half of the perceptual axis of its perception-distortion plots.

This follows the official MATLAB release (and BasicSR's port of it):

1. luma ``Y`` of MATLAB ``rgb2ycbcr`` for colour images, rounded to integers as
   MATLAB's uint8 conversion does; ``crop_border`` pixels removed;
2. crop to whole 96x96 blocks (no overlap);
3. at two scales (full, then MATLAB bicubic ``imresize(., 0.5)``): MSCN coefficients
   ``(I - mu) / (sigma + 1)`` with the 7x7 Gaussian window of the pristine model and
   replicated borders; per block, 18 features: a GGD fit of the MSCN values and AGGD
   fits of the products of horizontal, vertical and two diagonal neighbours;
4. fit a Gaussian to the 36-d block features, and score
   ``sqrt((mu_p - mu_d)^T ((S_p + S_d) / 2)^+ (mu_p - mu_d))``.

The pristine model (``niqe_pris_params.npz``) is data, not code: it comes from
:func:`esrgan_lab.settings.niqe_params_path`. Without it :func:`calculate_niqe` raises
:class:`~esrgan_lab.metrics.psnr_ssim.MetricUnavailable`.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from scipy.ndimage import convolve
from scipy.special import gamma

from .. import settings
from ..data.degrade import imresize
from .psnr_ssim import MetricUnavailable, bgr2y

#: Block size of the official release (the pristine model was fitted on 96x96 blocks).
BLOCK_SIZE = 96

# Grid of shape parameters searched by the moment-matching GGD/AGGD fit (MATLAB: 0.2:0.001:10).
_GAM = np.arange(0.2, 10.001, 0.001)
_R_GAM = gamma(2.0 / _GAM) ** 2 / (gamma(1.0 / _GAM) * gamma(3.0 / _GAM))
# The four neighbour directions: horizontal, vertical, main and anti diagonal.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


@functools.lru_cache(maxsize=4)
def _load_params(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        with np.load(path) as data:
            return (
                np.asarray(data["mu_pris_param"], dtype=np.float64),
                np.asarray(data["cov_pris_param"], dtype=np.float64),
                np.asarray(data["gaussian_window"], dtype=np.float64),
            )
    except (OSError, KeyError, ValueError) as exc:
        raise MetricUnavailable(
            f"NIQE not available: cannot read pristine model {path} ({exc})"
        ) from exc


def load_pristine_params(
    path: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mu (1, 36), cov (36, 36), gaussian_window (7, 7))`` of the NIQE pristine model.

    Raises:
        MetricUnavailable: no path given and :func:`settings.niqe_params_path` finds none,
            or the file is unreadable.
    """
    if path is None:
        path = settings.niqe_params_path()
    if path is None:
        raise MetricUnavailable(
            "NIQE not available: pristine model niqe_pris_params.npz not found "
            "(set ESRGAN_LAB_NIQE_PARAMS or ESRGAN_LAB_DATA)"
        )
    return _load_params(str(Path(path)))


def _aggd_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit per row of ``x`` ``(B, n)`` -> ``(alpha, beta_l, beta_r)``."""
    sq = x * x
    neg, pos = x < 0, x > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((sq * neg).sum(1) / neg.sum(1))
        right_std = np.sqrt((sq * pos).sum(1) / pos.sum(1))
        gammahat = left_std / right_std
        rhat = np.abs(x).mean(1) ** 2 / sq.mean(1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    pos_min = np.argmin((_R_GAM[None, :] - rhatnorm[:, None]) ** 2, axis=1)
    alpha = _GAM[pos_min]
    # Where rhatnorm is NaN (a block with no negative values) the fit is undefined;
    # keep NaN so the block is dropped from the covariance, as MATLAB's nancov does.
    alpha = np.where(np.isnan(rhatnorm), np.nan, alpha)
    ratio = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, left_std * ratio, right_std * ratio


def _block_features(mscn: np.ndarray, block: int) -> np.ndarray:
    """18 features per ``block x block`` tile of ``mscn`` -> ``(num_blocks, 18)``."""
    h, w = mscn.shape
    nbh, nbw = h // block, w // block
    tiles = mscn[: nbh * block, : nbw * block].reshape(nbh, block, nbw, block)
    tiles = tiles.transpose(0, 2, 1, 3).reshape(nbh * nbw, block, block)
    flat = tiles.reshape(len(tiles), -1)
    feats = []
    alpha, beta_l, beta_r = _aggd_fit(flat)
    feats += [alpha, (beta_l + beta_r) / 2]
    for shift in _SHIFTS:
        # Neighbour products inside each tile (wrapping at the tile edge, as the
        # reference implementation's circular shift does).
        prod = tiles * np.roll(tiles, shift, axis=(1, 2))
        alpha, beta_l, beta_r = _aggd_fit(prod.reshape(len(tiles), -1))
        mean = (beta_r - beta_l) * gamma(2.0 / alpha) / gamma(1.0 / alpha)
        feats += [alpha, mean, beta_l, beta_r]
    return np.stack(feats, axis=1)


def niqe(
    img: np.ndarray,
    mu_pris: np.ndarray,
    cov_pris: np.ndarray,
    window: np.ndarray,
    block_size: int = BLOCK_SIZE,
) -> float:
    """NIQE of a 2-D gray/Y image on ``[0, 255]`` given the pristine model.

    Args:
        img: ``(H, W)`` float image; needs at least one ``block_size`` block (and, for a
            usable covariance, several).
        mu_pris: ``(1, 36)`` pristine feature mean.
        cov_pris: ``(36, 36)`` pristine feature covariance.
        window: ``(7, 7)`` Gaussian window for the MSCN local mean / deviation.
        block_size: Block side in pixels at the first scale.

    Returns:
        The NIQE score (lower = more natural).
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim != 2:
        raise ValueError(f"niqe expects a 2-D image, got shape {img.shape}")
    nbh, nbw = img.shape[0] // block_size, img.shape[1] // block_size
    if nbh * nbw == 0:
        raise ValueError(f"image {img.shape} smaller than one {block_size}x{block_size} block")
    img = img[: nbh * block_size, : nbw * block_size]
    features = []
    for scale in (1, 2):
        mu = convolve(img, window, mode="nearest")
        sigma = np.sqrt(np.abs(convolve(img * img, window, mode="nearest") - mu * mu))
        mscn = (img - mu) / (sigma + 1.0)  # Eq. 1 of the NIQE paper
        features.append(_block_features(mscn, block_size // scale))
        if scale == 1:
            # The second scale uses MATLAB's antialiased bicubic, as the official code.
            img = imresize(img, 0.5)
    feat = np.concatenate(features, axis=1)  # (num_blocks, 36)
    mu_dist = np.nanmean(feat, axis=0)
    finite = feat[~np.isnan(feat).any(axis=1)]
    cov_dist = np.cov(finite, rowvar=False)
    diff = (mu_pris.reshape(-1) - mu_dist)[None, :]
    inv = np.linalg.pinv((cov_pris + cov_dist) / 2.0)
    return float(np.sqrt(np.squeeze(diff @ inv @ diff.T)))


def calculate_niqe(
    img: np.ndarray,
    crop_border: int = 0,
    input_order: str = "HWC",
    params_path: str | Path | None = None,
) -> float:
    """NIQE of an image as ``cv2.imread`` returns it (BGR or gray, on ``[0, 255]``).

    Args:
        img: ``(H, W, 3)`` BGR, ``(H, W)`` gray or ``(H, W, 1)``; ``(C, H, W)`` with
            ``input_order="CHW"``.
        crop_border: Pixels removed from each border first.
        input_order: ``"HWC"`` or ``"CHW"``.
        params_path: Pristine model file; default :func:`settings.niqe_params_path`.

    Returns:
        NIQE (lower = more natural).

    Raises:
        MetricUnavailable: the pristine model is not available.
    """
    mu, cov, window = load_pristine_params(params_path)
    arr = np.asarray(img)
    if arr.ndim == 3 and input_order == "CHW":
        arr = np.transpose(arr, (1, 2, 0))
    arr = arr.astype(np.float64)
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = bgr2y(arr)
    elif arr.ndim == 3:
        arr = arr[..., 0]
    if crop_border:
        arr = arr[crop_border:-crop_border, crop_border:-crop_border]
    # MATLAB's rgb2ycbcr on uint8 returns uint8: the reference values need the rounding.
    arr = np.floor(arr + 0.5)
    return niqe(arr, mu, cov, window)
