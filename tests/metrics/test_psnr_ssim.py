"""PSNR / SSIM (against scikit-image), NIQE and FID."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from esrgan_lab import settings
from esrgan_lab.errors import EsrganLabError
from esrgan_lab.metrics import fid, niqe
from esrgan_lab.metrics.psnr_ssim import (
    MetricUnavailable,
    bgr2ycbcr,
    calculate_psnr,
    calculate_ssim,
    psnr_torch,
    rgb2ycbcr,
    ssim_map,
    ssim_torch,
)


def _pair(shape=(48, 40, 3), seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    noise = rng.normal(0, 12, size=shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    return a, b


def _skimage_y(bgr: np.ndarray) -> np.ndarray:
    return color.rgb2ycbcr(bgr[..., ::-1] / 255.0)[..., 0]


def test_y_channel_matches_skimage_rgb2ycbcr():
    a, _ = _pair()
    np.testing.assert_allclose(bgr2ycbcr(a), _skimage_y(a), atol=1e-10)
    np.testing.assert_allclose(rgb2ycbcr(a[..., ::-1]), _skimage_y(a), atol=1e-10)
    # white and black land on the studio-swing limits 235 and 16
    assert rgb2ycbcr(np.array([255.0, 255.0, 255.0])) == pytest.approx(235.0)
    assert rgb2ycbcr(np.zeros(3)) == pytest.approx(16.0)


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_matches_skimage(crop):
    a, b = _pair()
    c = slice(crop, -crop) if crop else slice(None)
    ref = peak_signal_noise_ratio(a[c, c], b[c, c], data_range=255)
    assert calculate_psnr(a, b, crop) == pytest.approx(ref, rel=1e-12)
    ref_y = peak_signal_noise_ratio(_skimage_y(a)[c, c], _skimage_y(b)[c, c], data_range=255)
    assert calculate_psnr(a, b, crop, test_y_channel=True) == pytest.approx(ref_y, rel=1e-10)
    # CHW order gives the same number
    chw = calculate_psnr(a.transpose(2, 0, 1), b.transpose(2, 0, 1), crop, input_order="CHW")
    assert chw == pytest.approx(calculate_psnr(a, b, crop), rel=1e-12)


def _sk_ssim(a, b, channel_axis=None):
    return structural_similarity(
        a.astype(np.float64),
        b.astype(np.float64),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=255,
        channel_axis=channel_axis,
    )


@pytest.mark.parametrize("crop", [0, 4])
def test_ssim_matches_skimage(crop):
    a, b = _pair(seed=1)
    c = slice(crop, -crop) if crop else slice(None)
    # skimage averages the map over the region where the 11x11 window fits: the same
    # 'valid' region as ours, so the numbers agree to rounding.
    ref = _sk_ssim(a[c, c], b[c, c], channel_axis=-1)
    assert calculate_ssim(a, b, crop) == pytest.approx(ref, rel=1e-10)
    ref_y = _sk_ssim(_skimage_y(a)[c, c], _skimage_y(b)[c, c])
    assert calculate_ssim(a, b, crop, test_y_channel=True) == pytest.approx(ref_y, rel=1e-10)


def test_grayscale_and_identity():
    a, b = _pair(shape=(40, 36))
    assert calculate_ssim(a, b, 0) == pytest.approx(_sk_ssim(a, b), rel=1e-10)
    ref = peak_signal_noise_ratio(a, b, data_range=255)
    # a 2-D image is scored as is, even when test_y_channel is asked for
    assert calculate_psnr(a, b, 0, test_y_channel=True) == pytest.approx(ref, rel=1e-12)
    assert calculate_psnr(a, a, 0) == float("inf")
    assert calculate_ssim(a, a, 0) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        calculate_psnr(a, b[:-1], 0)


def test_ssim_map_shape_and_mean():
    a, b = _pair(shape=(40, 50, 3), seed=2)
    m = ssim_map(a, b, crop_border=2, test_y_channel=True)
    assert m.shape == (40 - 4 - 10, 50 - 4 - 10, 1)
    assert m.mean() == pytest.approx(calculate_ssim(a, b, 2, test_y_channel=True))


@pytest.mark.parametrize("y", [False, True])
def test_torch_metrics_match_numpy(y):
    pairs = [_pair(seed=s) for s in range(3)]

    def to_t(imgs):  # BGR uint8 -> RGB [0,1] NCHW
        return torch.stack([torch.from_numpy(i[..., ::-1].copy()).permute(2, 0, 1) for i in imgs])

    sr = to_t([p[1] for p in pairs]).float() / 255
    gt = to_t([p[0] for p in pairs]).float() / 255
    p = psnr_torch(sr, gt, crop_border=4, test_y_channel=y)
    s = ssim_torch(sr, gt, crop_border=4, test_y_channel=y)
    assert p.shape == (3,) and s.shape == (3,)
    for i, (a, b) in enumerate(pairs):
        assert p[i].item() == pytest.approx(calculate_psnr(b, a, 4, test_y_channel=y), rel=1e-6)
        assert s[i].item() == pytest.approx(calculate_ssim(b, a, 4, test_y_channel=y), rel=1e-6)


# --------------------------------------------------------------------------- NIQE


# ``niqe_params`` is the fixture of tests/conftest.py: a missing pristine model goes
# through helpers.missing (a skip, or a failure under ESRGAN_LAB_REQUIRE_DATA=1).


def test_niqe_sharp_lower_than_blurred(niqe_params):
    img = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    sharp = niqe.calculate_niqe(img)
    blurred = niqe.calculate_niqe(cv2.GaussianBlur(img, (0, 0), 2.0))
    assert 0 < sharp < blurred - 1.0


def test_niqe_golden_baboon(niqe_params, data_root):
    """BasicSR's niqe.py docstring: MATLAB R2021a gives 5.72957338 for its baboon.png.

    That file is Set14's baboon (500x480); we match the MATLAB value within 0.01
    (measured difference ~4e-4).
    """
    img = cv2.imread(str(data_root / "Set14" / "baboon.png"))
    assert niqe.calculate_niqe(img, crop_border=0) == pytest.approx(5.72957338, abs=0.01)


def test_niqe_unavailable(monkeypatch):
    monkeypatch.setattr(settings, "niqe_params_path", lambda: None)
    with pytest.raises(MetricUnavailable, match="NIQE not available") as exc:
        niqe.calculate_niqe(np.zeros((200, 200), np.uint8))
    assert isinstance(exc.value, EsrganLabError)


# --------------------------------------------------------------------------- FID


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = fid.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(expected, rel=1e-9)
    assert fid.frechet_distance(mu1, np.diag(s1), mu1, np.diag(s1)) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_commuting_full_covariances():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    a, b = rng.uniform(0.2, 2, size=5), rng.uniform(0.2, 2, size=5)
    s1, s2 = q @ np.diag(a) @ q.T, q @ np.diag(b) @ q.T
    mu = rng.normal(size=5)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert fid.frechet_distance(mu, s1, mu, s2) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_rank_deficient_is_finite():
    rng = np.random.default_rng(2)
    f1, f2 = rng.normal(size=(4, 16)), rng.normal(size=(4, 16)) + 1  # N < D
    d = fid.frechet_distance(*fid.feature_statistics(f1), *fid.feature_statistics(f2))
    assert np.isfinite(d) and d > 0


@pytest.fixture(scope="module")
def random_inception():
    return fid.load_fid_inception(random_weights=True)


def test_inception_layout_and_shape(random_inception):
    net = random_inception
    # torchvision inception_v3 has 27,161,264 parameters; minus AuxLogits (3,326,696)
    # plus 8 more classes in fc (1008 vs 1000: 8 * 2049) gives pytorch-fid's network.
    assert sum(p.numel() for p in net.parameters()) == 23_850_960
    sd = net.state_dict()
    assert sd["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert sd["fc.weight"].shape == (1008, 2048)
    assert "Mixed_7c.branch3x3dbl_3b.bn.running_var" in sd
    feats = fid.inception_features(net, [torch.rand(3, 40, 52), torch.rand(1, 3, 64, 64)])
    assert np.isfinite(feats).all()
    assert feats.shape == (2, fid.FEATURE_DIM)


def test_inception_weights_file_roundtrip(tmp_path, random_inception):
    net = random_inception
    path = tmp_path / "inception.pth"
    torch.save(net.state_dict(), path)
    loaded = fid.load_fid_inception(path)
    for key, value in net.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)


def test_fid_unavailable_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(tmp_path))
    with pytest.raises(MetricUnavailable, match="FID not available: Inception weights not found"):
        fid.load_fid_inception(download=False)
    with pytest.raises(MetricUnavailable, match="not found"):
        fid.load_fid_inception(tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(MetricUnavailable, match="cannot load"):
        fid.load_fid_inception(bad)


def test_calculate_fid_end_to_end(random_inception, monkeypatch):
    """calculate_fid = frechet_distance of the two sets' Inception feature statistics,
    whatever the batch size.

    The distance itself is checked on small covariances above: at 2048 features, each
    ``sqrtm`` of a singular product (4 images) took seconds to tens of seconds here, and this
    test was the slowest unit test of the suite (95 s).
    """
    gen = torch.Generator().manual_seed(0)
    a = [torch.rand(3, 32, 32, generator=gen) for _ in range(4)]
    b = [torch.rand(3, 32, 32, generator=gen) * 0.5 for _ in range(4)]
    net = random_inception
    calls = []

    def spy(mu1, s1, mu2, s2):
        calls.append((mu1, s1, mu2, s2))
        return float(len(calls))

    monkeypatch.setattr(fid, "frechet_distance", spy)
    assert fid.calculate_fid(a, b, net=net, batch_size=3) == 1.0
    expected = (
        *fid.feature_statistics(fid.inception_features(net, a)),
        *fid.feature_statistics(fid.inception_features(net, b)),
    )
    for got, want in zip(calls[0], expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(expected[0], expected[2])  # the two sets differ
