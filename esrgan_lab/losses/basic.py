"""Training losses of ESRGAN (Wang et al. 2018, Sec. 3.2-3.3).

* :class:`PixelLoss` - L1 content loss ``L_1 = E ||G(x_i) - y||_1``.
* :class:`PerceptualLoss` - distance between VGG19 features of SR and GT, by default
  ``conv5_4`` *before* activation with an L1 distance (BasicSR's ESRGAN config,
  ``criterion: l1``).
* :class:`GANLoss` - the relativistic average GAN (RaGAN) of the paper, or the standard
  (vanilla) GAN for comparison.

The generator objective of the GAN stage (paper Eq. 3) is
``L_G = L_percep + lambda * L_G^Ra + eta * L_1`` with ``lambda = 5e-3``,
``eta = 1e-2``; the trainer combines the weights.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .backbones import VGGFeatureExtractor

Criterion = Literal["l1", "l2"]
GanType = Literal["ragan", "vanilla"]


class PixelLoss(nn.Module):
    """Weighted L1 (or L2) pixel loss, mean over all elements.

    Shapes:
        ``sr, gt: (N, C, H, W) -> ()``
    """

    def __init__(self, weight: float = 1.0, criterion: Criterion = "l1") -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be 'l1' or 'l2', got {criterion!r}")
        self.weight = weight
        self.criterion = criterion

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        fn = F.l1_loss if self.criterion == "l1" else F.mse_loss
        return self.weight * fn(sr, gt)


class PerceptualLoss(nn.Module):
    """VGG19 feature loss: ``sum_l w_l * d(phi_l(sr), phi_l(gt))`` (paper Sec. 3.3).

    Args:
        layer_weights: ``{layer name: weight}``; ``"conv5_4"`` is before activation (the
            paper's choice), ``"relu5_4"`` after it (SRGAN's).
        weight: Overall multiplier of the loss.
        criterion: ``"l1"`` (BasicSR's ESRGAN config) or ``"l2"`` (mean squared error).
        weights: VGG19 weights: ``"imagenet"``, a file, or ``None`` (random network; see
            :class:`~esrgan_lab.losses.backbones.VGGFeatureExtractor`).
        use_input_norm: ImageNet mean/std normalisation of RGB [0, 1] inputs.
        range_norm: Inputs are on [-1, 1].
        allow_random_init: Fall back to a random VGG19 (with a warning) when the
            ImageNet weights cannot be obtained.
        vgg: An existing extractor to use instead of building one.

    Shapes:
        ``sr, gt: (N, 3, H, W) -> ()``; the GT features are computed without gradient.
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        weight: float = 1.0,
        criterion: Criterion = "l1",
        weights: str | os.PathLike[str] | None = "imagenet",
        use_input_norm: bool = True,
        range_norm: bool = False,
        allow_random_init: bool = True,
        vgg: VGGFeatureExtractor | None = None,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be 'l1' or 'l2', got {criterion!r}")
        self.layer_weights = dict(layer_weights or {"conv5_4": 1.0})
        self.weight = weight
        self.criterion = criterion
        self.vgg = vgg or VGGFeatureExtractor(
            list(self.layer_weights),
            weights=weights,
            use_input_norm=use_input_norm,
            range_norm=range_norm,
            allow_random_init=allow_random_init,
        )

    @property
    def weights_source(self) -> str:
        """Where the VGG19 weights came from (a path or the random-init notice)."""
        return self.vgg.weights_source

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        fn = F.l1_loss if self.criterion == "l1" else F.mse_loss
        sr_feat = self.vgg(sr)
        with torch.no_grad():
            gt_feat = self.vgg(gt.detach())
        total = sr.new_zeros(())
        for name, w in self.layer_weights.items():
            total = total + w * fn(sr_feat[name].float(), gt_feat[name].float())
        return self.weight * total


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
