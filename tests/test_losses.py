"""Losses and the VGG19 feature extractor: formulas, gradients, weights loading."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

import esrgan_lab.weights.registry
from esrgan_lab.errors import CheckpointError, DownloadError
from esrgan_lab.losses.backbones import RANDOM_INIT, VGG19_LAYERS, VGGFeatureExtractor
from esrgan_lab.losses.basic import GANLoss, PerceptualLoss, PixelLoss


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _quiet_vgg(**kw) -> VGGFeatureExtractor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return VGGFeatureExtractor(weights=None, **kw)


# --------------------------------------------------------------------------- pixel loss


def test_pixel_loss_is_weighted_mean_absolute_error() -> None:
    a, b = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    assert torch.allclose(PixelLoss(0.5)(a, b), 0.5 * (a - b).abs().mean())
    assert torch.allclose(PixelLoss(1.0, "l2")(a, b), ((a - b) ** 2).mean())


# --------------------------------------------------------------------------- GAN losses


def _log_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.sigmoid(x.double()))


def test_ragan_losses_match_the_paper_formulas() -> None:
    """Paper Eq. 1-2 written with log(sigmoid(.)): BasicSR halves each loss."""
    torch.manual_seed(0)
    real, fake = torch.randn(8, 1) * 2, torch.randn(8, 1) * 2
    d_ra_rf = real - fake.mean()  # logit of D_Ra(x_r, x_f)
    d_ra_fr = fake - real.mean()
    l_d_paper = -_log_sigmoid(d_ra_rf).mean() - torch.log1p(-torch.sigmoid(d_ra_fr.double())).mean()
    l_g_paper = -torch.log1p(-torch.sigmoid(d_ra_rf.double())).mean() - _log_sigmoid(d_ra_fr).mean()
    loss = GANLoss("ragan", weight=5e-3)
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(
        l_d_paper.item() / 2, rel=1e-5
    )
    assert loss.generator_loss(real, fake).item() == pytest.approx(
        5e-3 * l_g_paper.item() / 2, rel=1e-5
    )


def test_ragan_at_zero_logits_is_log_two() -> None:
    z = torch.zeros(4, 1, 6, 6)
    loss = GANLoss("ragan", weight=1.0)
    assert loss.discriminator_loss(z, z).item() == pytest.approx(math.log(2))
    assert loss.generator_loss(z, z).item() == pytest.approx(math.log(2))


def test_ragan_discriminator_detaches_the_other_side_mean() -> None:
    """d L_D / d C(x_r)_i = 0.5 * (sigmoid(r_i - mean f) - 1) / n, as BasicSR's detach gives."""
    torch.manual_seed(1)
    real = torch.randn(6, 1, requires_grad=True)
    fake = torch.randn(6, 1, requires_grad=True)
    GANLoss("ragan").discriminator_loss(real, fake).backward()
    n = real.numel()
    expect_real = 0.5 * (torch.sigmoid(real - fake.mean()) - 1) / n
    expect_fake = 0.5 * torch.sigmoid(fake - real.mean()) / n
    assert torch.allclose(real.grad, expect_real.detach(), atol=1e-7)
    assert torch.allclose(fake.grad, expect_fake.detach(), atol=1e-7)


def test_ragan_generator_gets_gradient_from_both_terms_and_not_through_real() -> None:
    torch.manual_seed(2)
    real = torch.randn(5, 1, requires_grad=True)
    fake = torch.randn(5, 1, requires_grad=True)
    GANLoss("ragan", weight=1.0).generator_loss(real, fake).backward()
    assert real.grad is None  # real logits are constants for G
    n = fake.numel()
    r, f = real.detach(), fake.detach()
    # term 1: BCE(r - mean f, 0) = softplus(r - mean f): d/df_k = -mean(sigmoid(r - mean f)) / n
    # term 2: BCE(f - mean r, 1) = softplus(-(f - mean r)): d/df_k = -sigmoid(-(f_k - mean r)) / n
    g1 = -torch.sigmoid(r - f.mean()).mean() / n
    g2 = -torch.sigmoid(-(f - r.mean())) / n
    assert torch.allclose(fake.grad, 0.5 * (g1 + g2), atol=1e-7)


def test_vanilla_gan_losses() -> None:
    torch.manual_seed(3)
    real, fake = torch.randn(7, 1), torch.randn(7, 1)
    loss = GANLoss("vanilla", weight=0.1)
    d_expect = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(d_expect.item(), rel=1e-6)
    assert loss.generator_loss(real, fake).item() == pytest.approx(
        0.1 * F.softplus(-fake).mean().item(), rel=1e-6
    )
    with pytest.raises(ValueError):
        GANLoss("wgan")


# --------------------------------------------------------------------------- VGG19


def test_vgg19_layer_names_follow_torchvision_indices() -> None:
    assert len(VGG19_LAYERS) == 37
    assert VGG19_LAYERS[0] == "conv1_1" and VGG19_LAYERS[1] == "relu1_1"
    assert VGG19_LAYERS[4] == "pool1"
    assert VGG19_LAYERS.index("conv5_4") == 34
    assert VGG19_LAYERS.index("relu5_4") == 35 and VGG19_LAYERS[-1] == "pool5"
    vgg = _quiet_vgg(layer_names=["conv5_4"])
    keys = list(vgg.features.state_dict())
    conv_idx = [i for i, n in enumerate(VGG19_LAYERS[:35]) if n.startswith("conv")]
    assert keys == [f"{i}.{p}" for i in conv_idx for p in ("weight", "bias")]
    assert vgg.features[34].weight.shape == (512, 512, 3, 3)


def test_random_init_is_announced_and_deterministic() -> None:
    with pytest.warns(UserWarning, match="RANDOM"):
        a = VGGFeatureExtractor(["conv2_2"], weights=None)
    assert a.weights_source == RANDOM_INIT and not a.pretrained
    b = _quiet_vgg(layer_names=["conv2_2"])
    assert torch.equal(a.features[0].weight, b.features[0].weight)
    assert all(not p.requires_grad for p in a.parameters())


def test_features_before_and_after_activation() -> None:
    vgg = _quiet_vgg(layer_names=["conv3_1", "relu3_1"])
    out = vgg(torch.rand(1, 3, 32, 32))
    assert out["conv3_1"].shape == (1, 256, 8, 8)
    assert (out["conv3_1"] < 0).any()  # before activation: negative values survive
    assert torch.equal(out["relu3_1"], out["conv3_1"].clamp(min=0))


def test_input_normalisation_uses_imagenet_statistics() -> None:
    x = torch.rand(2, 3, 16, 16)
    norm = _quiet_vgg(layer_names=["conv1_2"])
    raw = _quiet_vgg(layer_names=["conv1_2"], use_input_norm=False)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert torch.allclose(norm(x)["conv1_2"], raw((x - mean) / std)["conv1_2"], atol=1e-5)
    ranged = _quiet_vgg(layer_names=["conv1_2"], range_norm=True)
    assert torch.allclose(ranged(x * 2 - 1)["conv1_2"], norm(x)["conv1_2"], atol=1e-5)


def _torchvision_style_file(tmp_path, vgg: VGGFeatureExtractor):
    state = {f"features.{k}": v.clone() + 0.5 for k, v in vgg.features.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(2, 2)  # extra keys of a full vgg19 file
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, path)
    return path, state


def test_loads_a_torchvision_state_dict_file(tmp_path) -> None:
    ref = _quiet_vgg(layer_names=["relu2_1"])
    path, state = _torchvision_style_file(tmp_path, ref)
    vgg = VGGFeatureExtractor(["relu2_1"], weights=path)
    assert vgg.weights_source == str(path) and vgg.pretrained
    assert torch.equal(vgg.features[5].weight, state["features.5.weight"])
    bad = {k: (v[:1] if k == "features.0.weight" else v) for k, v in state.items()}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="features.0.weight"):
        VGGFeatureExtractor(["relu2_1"], weights=tmp_path / "bad.pth")


def test_imagenet_uses_cache_and_is_honest_when_offline(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ESRGAN_LAB_WEIGHTS", str(tmp_path))

    def offline(url, *args, **kwargs):
        raise DownloadError(f"cannot reach {url} (network unreachable)")

    monkeypatch.setattr(esrgan_lab.weights.registry, "download_file", offline)
    with pytest.warns(UserWarning, match="unavailable"):
        vgg = VGGFeatureExtractor(["conv1_1"], weights="imagenet", allow_random_init=True)
    assert vgg.weights_source == RANDOM_INIT
    with pytest.raises(DownloadError, match="vgg19-dcbb9e9d.pth"):
        VGGFeatureExtractor(["conv1_1"], weights="imagenet", allow_random_init=False)
    with pytest.raises(DownloadError, match="other-0123abcd.pth"):
        VGGFeatureExtractor(
            ["conv1_1"], weights="https://example.org/other-0123abcd.pth", allow_random_init=False
        )
    path, _ = _torchvision_style_file(tmp_path, _quiet_vgg(layer_names=["conv1_1"]))
    cached = VGGFeatureExtractor(["conv1_1"], weights="imagenet", allow_random_init=False)
    assert cached.weights_source == str(path)


def test_unknown_layer_is_rejected() -> None:
    with pytest.raises(ValueError, match="conv6_1"):
        VGGFeatureExtractor(["conv6_1"], weights=None)


# --------------------------------------------------------------------------- perceptual


def test_perceptual_loss_is_l1_of_features_with_gradient_to_sr_only() -> None:
    vgg = _quiet_vgg(layer_names=["conv2_2", "conv3_1"])
    loss_fn = PerceptualLoss({"conv2_2": 0.3, "conv3_1": 1.0}, weight=2.0, vgg=vgg)
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
    assert loss_fn.weights_source == RANDOM_INIT
