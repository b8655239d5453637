"""The pixel and perceptual losses (paper Sec. 3.3-3.4)."""

from __future__ import annotations

import pytest
import torch

from esrgan_lab.losses.backbones import VGGFeatureExtractor
from esrgan_lab.losses.perceptual import PerceptualLoss
from esrgan_lab.losses.pixel import PixelLoss


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_pixel_loss_is_weighted_mean_absolute_error() -> None:
    a, b = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    assert torch.allclose(PixelLoss(0.5)(a, b), 0.5 * (a - b).abs().mean())
    assert torch.allclose(PixelLoss(1.0, "l2")(a, b), ((a - b) ** 2).mean())


def test_perceptual_loss_is_l1_of_features_with_gradient_to_sr_only() -> None:
    vgg = VGGFeatureExtractor(["conv2_2", "conv3_1"], "random")
    loss_fn = PerceptualLoss({"conv2_2": 0.3, "conv3_1": 1.0}, weight=2.0, extractor=vgg)
    torch.manual_seed(4)
    sr = torch.rand(2, 3, 24, 24, requires_grad=True)
    gt = torch.rand(2, 3, 24, 24)
    loss = loss_fn(sr, gt)
    fs, fg = vgg(sr.detach()), vgg(gt)
    expect = 2.0 * (
        0.3 * (fs["conv2_2"] - fg["conv2_2"]).abs().mean()
        + (fs["conv3_1"] - fg["conv3_1"]).abs().mean()
    )
    assert loss.item() == pytest.approx(expect.item(), rel=1e-5)
    loss.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())
    assert loss_fn(gt, gt).item() == 0.0
    assert loss_fn.weights_source == "random (seed 0)"


def test_perceptual_loss_builds_the_named_backbone() -> None:
    loss = PerceptualLoss({"conv5_4": 1.0}, backbone="vgg16-hed")
    assert loss.vgg.backbone == "vgg16-hed" and loss.vgg.layer_map == {"conv5_4": "conv5_3"}
