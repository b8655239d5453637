"""The perceptual loss: distances between trained features of SR and GT (paper Sec. 3.3).

ESRGAN compares features *before* activation (``conv5_4`` of VGG19, L1 distance in
BasicSR's configs): after the ReLU deep features are sparse and their supervision weak
(paper Fig. 6). The feature network is chosen by name (:mod:`esrgan_lab.losses.backbones`).
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


class PerceptualLoss(nn.Module):
    """``weight * sum_l w_l * d(phi_l(sr), phi_l(gt))`` on a frozen feature network.

    Args:
        layer_weights: ``{layer name: weight}`` in VGG19 names; ``"conv5_4"`` is before
            activation (the paper's choice), ``"relu5_4"`` after it (SRGAN's).
        weight: Overall multiplier of the loss.
        criterion: ``"l1"`` (BasicSR's ESRGAN config) or ``"l2"`` (mean squared error).
        backbone: ``"vgg19-imagenet"``, ``"vgg16-hed"``, ``"random"`` or a VGG19 file
            (see :class:`~esrgan_lab.losses.backbones.VGGFeatureExtractor`).
        use_input_norm: Normalise inputs as the backbone was trained.
        range_norm: Inputs are on [-1, 1].
        extractor: An existing extractor to use instead of building one.

    Shapes:
        ``sr, gt: (N, 3, H, W) -> ()``; the GT features are computed without gradient.
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float] | None = None,
        weight: float = 1.0,
        criterion: Criterion = "l1",
        backbone: str | os.PathLike[str] = "vgg19-imagenet",
        *,
        use_input_norm: bool = True,
        range_norm: bool = False,
        extractor: VGGFeatureExtractor | None = None,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "l2"):
            raise ValueError(f"criterion must be 'l1' or 'l2', got {criterion!r}")
        self.layer_weights = dict(layer_weights or {"conv5_4": 1.0})
        self.weight = weight
        self.criterion = criterion
        self.vgg = extractor or VGGFeatureExtractor(
            list(self.layer_weights),
            backbone,
            use_input_norm=use_input_norm,
            range_norm=range_norm,
        )

    @property
    def weights_source(self) -> str:
        """Where the feature network's weights came from."""
        return self.vgg.weights_source

    def forward(self, sr: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        distance = F.l1_loss if self.criterion == "l1" else F.mse_loss
        sr_feat = self.vgg(sr)
        with torch.no_grad():
            gt_feat = self.vgg(gt.detach())
        total = sr.new_zeros((), dtype=torch.float32)
        for name, w in self.layer_weights.items():
            total = total + w * distance(sr_feat[name].float(), gt_feat[name].float())
        return self.weight * total
