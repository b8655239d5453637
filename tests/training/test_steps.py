"""Training steps: gradient accumulation is the mean of the micro-batches' gradients.

Oracle: with plain SGD at learning rate 1 a step moves each parameter by minus its
gradient, so a step over a batch split into two micro-batches must move it by the mean
of the moves of two separate steps, one on each half, from the same start. That holds for
the PSNR step and for both networks of the GAN step (whose relativistic means are per
micro-batch, as they are per rank under DDP).
"""

from __future__ import annotations

import copy

import pytest
import torch

from esrgan_lab.losses.gan import GANLoss
from esrgan_lab.model.discriminators import build_discriminator
from esrgan_lab.training.steps import GanLosses, gan_step, micro_batches, psnr_step
from tests.helpers import make_tiny


def _batch(n: int = 4, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lq = torch.rand(n, 3, size, size, generator=gen)
    gt = torch.rand(n, 3, size * 4, size * 4, generator=gen)
    return lq, gt


def _moves(before: torch.nn.Module, after: torch.nn.Module) -> list[torch.Tensor]:
    return [a.detach() - b.detach() for a, b in zip(after.parameters(), before.parameters())]


def _sgd(net: torch.nn.Module) -> torch.optim.SGD:
    return torch.optim.SGD(net.parameters(), lr=1.0)


def test_psnr_step_accumulates_the_mean_gradient() -> None:
    start = make_tiny().train()
    lq, gt = _batch()
    whole = copy.deepcopy(start)
    result = psnr_step(whole, _sgd(whole), lq, gt, accumulate=2)
    halves, losses = [], []
    for lq_k, gt_k in micro_batches(lq, gt, 2):
        net = copy.deepcopy(start)
        losses.append(psnr_step(net, _sgd(net), lq_k, gt_k).losses["l_pix"])
        halves.append(_moves(start, net))
    for got, a, b in zip(_moves(start, whole), *halves):
        torch.testing.assert_close(got, (a + b) / 2, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(result.losses["l_pix"], sum(losses) / 2)
    # accumulate=1 is exactly the unsplit step
    one, ref = copy.deepcopy(start), copy.deepcopy(start)
    psnr_step(one, _sgd(one), lq, gt, accumulate=1)
    opt = _sgd(ref)
    opt.zero_grad()
    torch.nn.functional.l1_loss(ref(lq), gt).backward()
    opt.step()
    for p, q in zip(one.parameters(), ref.parameters()):
        assert torch.equal(p, q)


def test_gan_step_accumulates_both_networks() -> None:
    torch.manual_seed(0)
    g0 = make_tiny().train()
    # The VGG-style D: its BatchNorm uses per-micro-batch statistics, like the halves. (The
    # U-Net D's spectral norm advances its power iteration at every call, a state the
    # separate half-steps would not share.)
    d0 = build_discriminator("vgg", 3, 4, 128).train()
    losses = GanLosses(pixel_weight=1e-2, perceptual=None, gan=GANLoss("ragan", 5e-3))
    lq, gt = _batch(size=32)

    def run(lq_, gt_, accumulate):
        g, d = copy.deepcopy(g0), copy.deepcopy(d0)
        result = gan_step(g, d, _sgd(g), _sgd(d), lq_, gt_, losses, accumulate=accumulate)
        return _moves(g0, g) + _moves(d0, d), result

    whole, result = run(lq, gt, 2)
    parts = [run(lq_k, gt_k, 1) for lq_k, gt_k in micro_batches(lq, gt, 2)]
    for got, a, b in zip(whole, parts[0][0], parts[1][0]):
        torch.testing.assert_close(got, (a + b) / 2, rtol=1e-4, atol=1e-7)
    for key in ("l_pix", "l_gan", "l_g_total", "l_d"):
        mean = (parts[0][1].losses[key] + parts[1][1].losses[key]) / 2
        torch.testing.assert_close(result.losses[key], mean)
    real, fake = result.logits
    assert real.shape[0] == fake.shape[0] == 4  # every micro-batch's logits


def test_micro_batches_must_divide_the_batch() -> None:
    lq, gt = _batch(n=3)
    with pytest.raises(ValueError, match="does not split into 2"):
        micro_batches(lq, gt, 2)
    assert [m[0].shape[0] for m in micro_batches(lq, gt, 3)] == [1, 1, 1]
