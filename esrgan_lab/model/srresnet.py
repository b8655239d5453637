"""The SRResNet residual block as a drop-in trunk for RRDBNet, for the architecture study.

ESRGAN's first architectural change (paper Sec. 3.1, Fig. 4) replaces SRResNet's basic
residual block (conv - ReLU - conv, plus the identity; BN already removed here, as in
EDSR and BasicSR's ``MSRResNet``) with the Residual-in-Residual Dense Block. To compare
the *block* alone, :class:`SRResNetTrunk` keeps everything of :class:`RRDBNet` - the
first conv, the global residual, the upsampler, the HR convs - and only swaps the trunk:
``num_block`` residual blocks, each ``x + res_scale * conv2(relu(conv1(x)))``.
:func:`matched_residual_blocks` picks the count that matches an RRDB trunk's parameters
(and so its FLOPs: every trunk conv runs at the input resolution).
"""

from __future__ import annotations

import torch
from torch import nn

from .rrdbnet import INIT_SCALE, RRDB, RRDBNet, count_parameters, default_init_weights


class ResidualBlockNoBN(nn.Module):
    """SRResNet's residual block without BatchNorm: ``x + res_scale * conv2(relu(conv1(x)))``.

    Shapes:
        ``(N, num_feat, H, W) -> (N, num_feat, H, W)``
    """

    def __init__(
        self, num_feat: int = 64, res_scale: float = 1.0, init_scale: float = INIT_SCALE
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.relu = nn.ReLU(inplace=True)
        default_init_weights([self.conv1, self.conv2], init_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.relu(self.conv1(x))) * self.res_scale


class SRResNetTrunk(RRDBNet):
    """:class:`RRDBNet` with a trunk of :class:`ResidualBlockNoBN` instead of RRDBs.

    Args:
        num_block: Residual blocks in the trunk.
        res_scale: Residual scaling of each block (1.0 as in SRResNet/EDSR-baseline).
        Other arguments as :class:`RRDBNet` (``num_grow_ch`` is unused).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 16,
        res_scale: float = 1.0,
        init_scale: float = INIT_SCALE,
        **_: object,
    ) -> None:
        super().__init__(num_in_ch, num_out_ch, scale, num_feat, 0, 32)
        self.num_block = num_block
        self.num_grow_ch = 0
        self.res_scale, self.init_scale = res_scale, init_scale
        self.body = nn.Sequential(
            *[ResidualBlockNoBN(num_feat, res_scale, init_scale) for _ in range(num_block)]
        )


def matched_residual_blocks(num_feat: int, num_grow_ch: int, num_rrdb: int) -> int:
    """How many residual blocks of width ``num_feat`` have the parameter count (and trunk
    FLOPs) closest to ``num_rrdb`` RRDBs."""
    with torch.device("meta"):
        rrdb = count_parameters(RRDB(num_feat, num_grow_ch))
        block = count_parameters(ResidualBlockNoBN(num_feat))
    target = num_rrdb * rrdb
    return max(
        1, min((target // block, target // block + 1), key=lambda n: abs(n * block - target))
    )
