"""The L1 content loss ``L_1 = E ||G(x_i) - y||_1`` (paper Sec. 3.4, Eq. 3)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

Criterion = Literal["l1", "l2"]


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
