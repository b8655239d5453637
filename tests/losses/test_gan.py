"""The relativistic average GAN loss and the standard GAN loss (paper Eq. 1-2)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from esrgan_lab.losses.gan import GANLoss


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
