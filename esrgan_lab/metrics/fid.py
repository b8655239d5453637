"""FID: Frechet distance between Inception-v3 pool3 feature distributions.

Heusel et al. 2017. Two image sets are summarised by the mean and covariance of their
2048-d Inception pool3 features; FID is the Frechet (2-Wasserstein) distance between
the two Gaussians::

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

Numbers are only comparable with published ones when computed with the *same* network:
the TF-slim 2015-12-05 Inception graph, which pytorch-fid ships converted as
``pt_inception-2015-12-05-6726825d.pth``. :class:`FIDInceptionV3` rebuilds that
network (torchvision's Inception-v3 layout and key names, with pytorch-fid's
``FIDInceptionA/C/E_1/E_2`` pooling tweaks) so the file loads with ``strict=True``.

The weights are never faked: when the file is neither given, nor cached, nor
downloadable, :func:`load_fid_inception` raises
:class:`~esrgan_lab.metrics.psnr_ssim.MetricUnavailable` and callers report "n/a".
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from .. import settings
from ..download import download as fetch
from ..download import file_digest
from ..errors import DownloadError
from .psnr_ssim import MetricUnavailable

#: pytorch-fid's converted TF Inception weights; the file name carries the sha256 prefix.
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"
#: Dimension of the pool3 features.
FEATURE_DIM = 2048


# --------------------------------------------------------------------------- distance


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Args:
        mu1: ``(D,)`` mean of the first set of features.
        sigma1: ``(D, D)`` covariance of the first set.
        mu2: ``(D,)`` mean of the second set.
        sigma2: ``(D, D)`` covariance of the second set.
        eps: Ridge added to both covariances when their product's square root is not
            finite (near-singular covariances from few samples), as pytorch-fid does.

    Returns:
        ``||mu1 - mu2||^2 + Tr(sigma1) + Tr(sigma2) - 2 Tr(sqrtm(sigma1 sigma2))``.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1 = np.atleast_2d(sigma1).astype(np.float64)
    sigma2 = np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError("mean vectors / covariances have different shapes")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        # Numerical error can give a tiny imaginary component; a large one means the
        # covariances are not valid (not PSD).
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))} in sqrtm")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mu (D,), sigma (D, D))`` of ``(N, D)`` features (unbiased covariance, N >= 2)."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


# --------------------------------------------------------------------------- network


class BasicConv2d(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3) + ReLU, torchvision's Inception unit."""

    def __init__(self, in_ch: int, out_ch: int, **kwargs) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_ch, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x: torch.Tensor) -> torch.Tensor:
    # The TF graph excludes padding from the average (count_include_pad=False).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    """Inception-A block (35x35), TF pooling."""

    def __init__(self, in_ch: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_ch, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_ch, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(in_ch, pool_features, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(in_ch, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class FIDInceptionC(nn.Module):
    """Inception-C block (17x17, factorised 7x7), TF pooling."""

    def __init__(self, in_ch: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_ch, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_ch, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_ch, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_ch, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for k in range(2, 6):
            bd = getattr(self, f"branch7x7dbl_{k}")(bd)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8."""

    def __init__(self, in_ch: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_ch, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_ch, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for k in range(2, 5):
            b7 = getattr(self, f"branch7x7x3_{k}")(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class FIDInceptionE(nn.Module):
    """Inception-E block (8x8). ``pool="avg"`` is FIDInceptionE_1, ``"max"`` E_2.

    The TF graph's last block max-pools in its pool branch (a quirk of the 2015 graph
    that pytorch-fid reproduces); the first averages without padding.
    """

    def __init__(self, in_ch: int, pool: str) -> None:
        super().__init__()
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_ch, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_ch, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_ch, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_ch, 192, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_no_pad(x)
        else:
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(pooled)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionV3(nn.Module):
    """Inception-v3 up to pool3 in pytorch-fid's FID configuration.

    Input RGB ``[0, 1]`` ``(N, 3, H, W)`` is resized bilinearly to 299x299 and mapped to
    ``[-1, 1]``; output is ``(N, 2048)`` pool3 features. ``fc`` (1008 classes, as the
    TF graph) is kept only so the checkpoint's keys match; it is not used.
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2.0 * x - 1.0
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


# --------------------------------------------------------------------------- weights


def _find_weights(weights: str | Path | None, download: bool) -> Path:
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise MetricUnavailable(f"FID not available: Inception weights not found ({path})")
        return path
    cached = settings.weights_dir() / FID_WEIGHTS_NAME
    if cached.is_file():
        return cached
    if not download:
        raise MetricUnavailable(
            f"FID not available: Inception weights not found ({cached}; downloads disabled)"
        )
    try:
        return fetch(
            FID_WEIGHTS_URL,
            cached,
            digest=f"sha256:{FID_WEIGHTS_SHA256_PREFIX}",
            progress=False,
        )
    except DownloadError as exc:  # offline, HTTP error, wrong hash -> not available
        raise MetricUnavailable(
            f"FID not available: Inception weights not found ({cached}; download failed: "
            f"{type(exc).__name__})"
        ) from exc


def load_fid_inception(
    weights: str | Path | None = None,
    *,
    download: bool = True,
    random_weights: bool = False,
    device: str | torch.device = "cpu",
) -> FIDInceptionV3:
    """The FID Inception network in eval mode, with pytorch-fid's weights.

    Args:
        weights: A local ``pt_inception-2015-12-05-6726825d.pth``. Default: the weights
            cache (:func:`settings.weights_dir`), downloading into it if allowed.
        download: Allow fetching :data:`FID_WEIGHTS_URL` when the file is not cached.
        random_weights: Skip loading (random init). Only for shape tests: features of a
            random network give meaningless FIDs.
        device: Where to put the network.

    Raises:
        MetricUnavailable: the weights are missing, undownloadable, fail the sha256
            prefix check or do not fit the architecture.
    """
    net = FIDInceptionV3()
    if not random_weights:
        path = _find_weights(weights, download)
        if path.name == FID_WEIGHTS_NAME and not file_digest(path).startswith(
            FID_WEIGHTS_SHA256_PREFIX
        ):
            raise MetricUnavailable(f"FID not available: sha256 of {path} does not match")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except Exception as exc:
            raise MetricUnavailable(f"FID not available: cannot load {path} ({exc})") from exc
    return net.eval().to(device)


@torch.no_grad()
def inception_features(
    net: FIDInceptionV3, images: Iterable[torch.Tensor], batch_size: int = 16
) -> np.ndarray:
    """Pool3 features of RGB ``[0, 1]`` images (each ``(3, H, W)`` or ``(N, 3, H, W)``).

    Returns:
        ``(num_images, 2048)`` float64.
    """
    device = next(net.parameters()).device
    out: list[np.ndarray] = []
    batch: list[torch.Tensor] = []

    def flush() -> None:
        if batch:
            x = torch.cat(batch).to(device=device, dtype=torch.float32)
            out.append(net(x).double().cpu().numpy())
            batch.clear()

    for img in images:
        t = img if img.ndim == 4 else img.unsqueeze(0)
        # Images of different sizes are resized to 299x299 one by one.
        batch.append(F.interpolate(t.float(), size=(299, 299), mode="bilinear"))
        if sum(b.shape[0] for b in batch) >= batch_size:
            flush()
    flush()
    if not out:
        return np.zeros((0, FEATURE_DIM))
    return np.concatenate(out)


def calculate_fid(
    images1: Iterable[torch.Tensor],
    images2: Iterable[torch.Tensor],
    net: FIDInceptionV3 | None = None,
    batch_size: int = 16,
) -> float:
    """FID between two image sets (RGB ``[0, 1]`` tensors).

    Note that FID needs many images (thousands) to be a stable estimate; on Set5-sized
    sets it is dominated by covariance estimation noise.

    Raises:
        MetricUnavailable: no ``net`` given and the Inception weights are unavailable.
    """
    net = net if net is not None else load_fid_inception()
    mu1, s1 = feature_statistics(inception_features(net, images1, batch_size))
    mu2, s2 = feature_statistics(inception_features(net, images2, batch_size))
    return frechet_distance(mu1, s1, mu2, s2)
