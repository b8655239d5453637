"""The relativistic average GAN loss of ESRGAN (paper Sec. 3.2, Eq. 1-2) and the standard GAN.

The generator objective of the GAN stage (paper Eq. 3) is
``L_G = L_percep + lambda * L_G^Ra + eta * L_1`` with ``lambda = 5e-3``, ``eta = 1e-2``;
:class:`GANLoss` carries ``lambda`` as its weight.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

GanType = Literal["ragan", "vanilla"]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross entropy of ``sigmoid(logits)`` against a constant label."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class GANLoss(nn.Module):
    """Adversarial losses on discriminator logits ``C(x)`` (before the sigmoid).

    ``"ragan"`` - relativistic average GAN (paper Eq. 1-2), with
    ``D_Ra(x_r, x_f) = sigmoid(C(x_r) - E[C(x_f)])``::

        L_D^Ra = -E[log D_Ra(x_r, x_f)] - E[log(1 - D_Ra(x_f, x_r))]
        L_G^Ra = -E[log(1 - D_Ra(x_r, x_f))] - E[log D_Ra(x_f, x_r)]

    computed with ``binary_cross_entropy_with_logits`` on ``C(x_r) - mean C(x_f)`` and
    ``C(x_f) - mean C(x_r)``. As BasicSR's ``ESRGANModel`` does, each of the two terms is
    halved (so both losses equal ``log 2`` at ``C = 0``), and the *other* side's mean is
    a constant: the discriminator loss detaches ``mean C(x_f)`` in the real term and
    ``mean C(x_r)`` in the fake term; the generator loss treats all real logits as
    constants, so the generator gets gradient from both terms (through ``C(x_f)`` and
    ``mean C(x_f)``) - the paper's point that G benefits from real *and* fake data.

    ``"vanilla"`` - the standard GAN (SRGAN): ``L_D = BCE(C(x_r), 1) + BCE(C(x_f), 0)``
    (halved likewise) and the non-saturating ``L_G = BCE(C(x_f), 1)``.

    Args:
        gan_type: ``"ragan"`` or ``"vanilla"``.
        weight: Multiplier of the *generator* loss only (``lambda = 5e-3`` in the paper);
            the discriminator loss is never weighted.

    Shapes:
        Logits of any shape ``(N, ...)`` (a VGG discriminator gives ``(N, 1)``, the U-Net
        one ``(N, 1, H, W)``); means run over all elements. Returns scalars.
    """

    def __init__(self, gan_type: GanType = "ragan", weight: float = 1.0) -> None:
        super().__init__()
        if gan_type not in ("ragan", "vanilla"):
            raise ValueError(f"gan_type must be 'ragan' or 'vanilla', got {gan_type!r}")
        self.gan_type = gan_type
        self.weight = weight

    def generator_loss(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """``weight * L_G`` from D's logits on GT (treated as constants) and on SR."""
        if self.gan_type == "vanilla":
            return self.weight * _bce(fake_logits, 1.0)
        real = real_logits.detach().float()
        fake = fake_logits.float()
        loss_real = _bce(real - fake.mean(), 0.0)
        loss_fake = _bce(fake - real.mean(), 1.0)
        return self.weight * (loss_real + loss_fake) / 2

    def discriminator_loss(
        self, real_logits: torch.Tensor, fake_logits: torch.Tensor
    ) -> torch.Tensor:
        """``L_D`` from D's logits on GT and on SR (SR must come from a detached image)."""
        real = real_logits.float()
        fake = fake_logits.float()
        if self.gan_type == "vanilla":
            return (_bce(real, 1.0) + _bce(fake, 0.0)) / 2
        loss_real = _bce(real - fake.detach().mean(), 1.0)
        loss_fake = _bce(fake - real.detach().mean(), 0.0)
        return (loss_real + loss_fake) / 2
