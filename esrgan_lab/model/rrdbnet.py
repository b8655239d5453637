"""The ESRGAN generator: Residual-in-Residual Dense Block network (RRDBNet).

Names follow BasicSR / Real-ESRGAN so their checkpoints load with ``strict=True``.
Paper symbols (Wang et al. 2018, Sec. 3.1 and the official ``RRDBNet_arch.py``):

======================  =================  ===========================================
paper / official code   here               meaning
======================  =================  ===========================================
``nf``                  ``num_feat``       channels of the trunk feature maps (64)
``gc``                  ``num_grow_ch``    growth channels of each dense conv (32)
``nb``                  ``num_block``      number of RRDB blocks in the trunk (23)
``beta``                ``RES_SCALE``      residual scaling factor (0.2)
``in_nc`` / ``out_nc``  ``num_in_ch``,     image channels in and out (3)
                        ``num_out_ch``
======================  =================  ===========================================
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError

Norm = Literal["batch", "batch_hr"] | None

#: Residual scaling beta (paper Sec. 3.1): each residual branch is multiplied by 0.2
#: before it is added back, which keeps deep BN-free trunks stable.
RES_SCALE = 0.2
#: MSRA (Kaiming) initialisation scaled by 0.1 for the dense-block convs (paper Sec. 3.1,
#: "smaller initialization"): makes every block start close to the identity.
INIT_SCALE = 0.1
#: Negative slope of every LeakyReLU in the generator.
LRELU_SLOPE = 0.2


def default_init_weights(modules: list[nn.Module], scale: float = 1.0) -> None:
    """Kaiming-normal init of conv weights multiplied by ``scale``, zero bias (as BasicSR)."""
    for module in modules:
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)
                m.weight.data *= scale
                if m.bias is not None:
                    m.bias.data.fill_(0)


def _norm_layer(norm: Norm, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if norm is not None else nn.Identity()


class ResidualDenseBlock(nn.Module):
    """Residual dense block: five densely connected 3x3 convs (paper Fig. 4, "RDB").

    Conv ``k`` sees the block input concatenated with the outputs of convs ``1..k-1``,
    so its input has ``num_feat + (k-1) * num_grow_ch`` channels.

    Args:
        num_feat: Channels in and out (``nf``).
        num_grow_ch: Channels added by each of conv1..conv4 (``gc``).
        norm: ``None`` (ESRGAN) or a BatchNorm variant for the BN-removal ablation; a
            BatchNorm follows every conv (SRGAN style).
        res_scale: Residual scaling ``beta``.
        init_scale: Multiplier on the Kaiming init of the convs.

    Shapes:
        ``(N, num_feat, H, W) -> (N, num_feat, H, W)``
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_grow_ch: int = 32,
        norm: Norm = None,
        res_scale: float = RES_SCALE,
        init_scale: float = INIT_SCALE,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_grow_ch, 3, 1, 1)
        self.conv2 = nn.Conv2d(num_feat + num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv3 = nn.Conv2d(num_feat + 2 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv4 = nn.Conv2d(num_feat + 3 * num_grow_ch, num_grow_ch, 3, 1, 1)
        self.conv5 = nn.Conv2d(num_feat + 4 * num_grow_ch, num_feat, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)
        if norm is not None:
            for i, ch in enumerate([num_grow_ch] * 4 + [num_feat], start=1):
                setattr(self, f"bn{i}", _norm_layer(norm, ch))
        else:
            for i in range(1, 6):
                setattr(self, f"bn{i}", nn.Identity())
        default_init_weights(
            [self.conv1, self.conv2, self.conv3, self.conv4, self.conv5], init_scale
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.lrelu(self.bn1(self.conv1(x)))
        x2 = self.lrelu(self.bn2(self.conv2(torch.cat((x, x1), 1))))
        x3 = self.lrelu(self.bn3(self.conv3(torch.cat((x, x1, x2), 1))))
        x4 = self.lrelu(self.bn4(self.conv4(torch.cat((x, x1, x2, x3), 1))))
        x5 = self.bn5(self.conv5(torch.cat((x, x1, x2, x3, x4), 1)))
        # Residual scaling (paper Sec. 3.1): scale the branch by beta before adding it,
        # so that a stack of many blocks stays close to identity and trains stably.
        return x5 * self.res_scale + x


class RRDB(nn.Module):
    """Residual-in-Residual Dense Block: three RDBs inside an outer residual (paper Fig. 4).

    Shapes:
        ``(N, num_feat, H, W) -> (N, num_feat, H, W)``
    """

    def __init__(
        self,
        num_feat: int = 64,
        num_grow_ch: int = 32,
        norm: Norm = None,
        res_scale: float = RES_SCALE,
        init_scale: float = INIT_SCALE,
    ) -> None:
        super().__init__()
        self.res_scale = res_scale
        kw = dict(norm=norm, res_scale=res_scale, init_scale=init_scale)
        self.rdb1 = ResidualDenseBlock(num_feat, num_grow_ch, **kw)
        self.rdb2 = ResidualDenseBlock(num_feat, num_grow_ch, **kw)
        self.rdb3 = ResidualDenseBlock(num_feat, num_grow_ch, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.rdb3(self.rdb2(self.rdb1(x)))
        # The outer residual is scaled by beta too ("residual in residual").
        return out * self.res_scale + x


class RRDBNet(nn.Module):
    """ESRGAN generator, identical to the official x4 model at the defaults.

    With the defaults it has 16,697,987 parameters. Data flow::

        LQ -> conv_first -> body (num_block x RRDB) -> conv_body -> (+ conv_first)
           -> [nearest x2 -> conv_upK -> LReLU] x log2(upsampling) -> conv_hr -> LReLU
           -> conv_last -> SR

    For ``scale`` 1 and 2 the input is first folded by pixel-unshuffle (factor 4 or 2),
    as BasicSR and Real-ESRGAN do, so the trunk always runs at 1/4 of the output size
    and the upsampler always upsamples x4. ``scale=8`` adds a third upsampling stage
    (``conv_up3``), as in the community x8 models.

    Args:
        num_in_ch: Image channels in (``in_nc``).
        num_out_ch: Image channels out (``out_nc``).
        scale: Upscaling factor: 1, 2, 4 or 8.
        num_feat: Trunk channels (``nf``).
        num_block: Number of RRDBs (``nb``).
        num_grow_ch: Dense growth channels (``gc``).
        norm: ``None`` for ESRGAN (no BatchNorm). ``"batch"`` puts BatchNorm after every
            conv of the LR trunk (SRGAN-style); ``"batch_hr"`` also after the upsampling
            and HR convs (the supplement's Exp_BNinHR). Only for the BN-removal ablation.
        res_scale: Residual scaling ``beta`` (0.2 in the paper; 1.0 disables it).
        init_scale: Multiplier on the Kaiming init of the dense convs (0.1 in the paper).

    Shapes:
        ``(N, num_in_ch, H, W) -> (N, num_out_ch, H * scale, W * scale)``; for scale 2
        (1) H and W must be multiples of 2 (4).
    """

    def __init__(
        self,
        num_in_ch: int = 3,
        num_out_ch: int = 3,
        scale: int = 4,
        num_feat: int = 64,
        num_block: int = 23,
        num_grow_ch: int = 32,
        norm: Norm = None,
        res_scale: float = RES_SCALE,
        init_scale: float = INIT_SCALE,
    ) -> None:
        super().__init__()
        if scale not in (1, 2, 4, 8):
            raise ValueError(f"scale must be 1, 2, 4 or 8, got {scale}")
        if norm not in (None, "batch", "batch_hr"):
            raise ValueError(f"norm must be None, 'batch' or 'batch_hr', got {norm!r}")
        self.scale = scale
        self.num_in_ch = num_in_ch
        self.num_out_ch = num_out_ch
        self.num_feat = num_feat
        self.num_block = num_block
        self.num_grow_ch = num_grow_ch
        self.norm = norm
        self.res_scale = res_scale
        self.init_scale = init_scale
        self.unshuffle = {1: 4, 2: 2}.get(scale, 1)
        self.conv_first = nn.Conv2d(num_in_ch * self.unshuffle**2, num_feat, 3, 1, 1)
        self.body = nn.Sequential(
            *[RRDB(num_feat, num_grow_ch, norm, res_scale, init_scale) for _ in range(num_block)]
        )
        self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn_body = _norm_layer(norm, num_feat)
        self.num_up = 3 if scale == 8 else 2
        hr_norm = norm if norm == "batch_hr" else None
        for k in range(1, self.num_up + 1):
            setattr(self, f"conv_up{k}", nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            setattr(self, f"bn_up{k}", _norm_layer(hr_norm, num_feat))
        self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.bn_hr = _norm_layer(hr_norm, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x
        feat = self.conv_first(feat)
        body_feat = self.bn_body(self.conv_body(self.body(feat)))
        # Global residual: the trunk learns a correction to the shallow features.
        feat = feat + body_feat
        for k in range(1, self.num_up + 1):
            feat = F.interpolate(feat, scale_factor=2, mode="nearest")
            feat = self.lrelu(getattr(self, f"bn_up{k}")(getattr(self, f"conv_up{k}")(feat)))
        return self.conv_last(self.lrelu(self.bn_hr(self.conv_hr(feat))))

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, num_feat={self.num_feat}, num_block={self.num_block}, "
            f"num_grow_ch={self.num_grow_ch}, norm={self.norm}"
        )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable and frozen parameters (BatchNorm running stats excluded)."""
    return sum(p.numel() for p in model.parameters())


def model_scale(model: nn.Module) -> int:
    """The model's upscaling factor, from its ``scale`` attribute.

    Raises:
        ConfigError: The model has no positive integer ``scale``.
    """
    scale = getattr(model, "scale", None)
    if not isinstance(scale, int) or scale < 1:
        raise ConfigError(
            f"{type(model).__name__} has no integer `scale` attribute; set model.scale"
        )
    return scale


def size_multiple(model: nn.Module) -> int:
    """Input height and width must be multiples of this (pixel-unshuffle factor)."""
    factor = getattr(model, "unshuffle", None)
    if isinstance(factor, int) and factor >= 1:
        return factor
    return {1: 4, 2: 2}.get(model_scale(model), 1)
