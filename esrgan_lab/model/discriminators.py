"""Discriminators for the GAN stage.

* :class:`VGGStyleDiscriminator` - the ESRGAN/SRGAN discriminator for 128x128 patches
  (BasicSR ``VGGStyleDiscriminator``, same parameter names): ten convs with BatchNorm
  that halve the resolution five times, then two linear layers to one logit.
* :class:`UNetDiscriminatorSN` - Real-ESRGAN's U-Net discriminator with spectral
  normalisation (same parameter names as Real-ESRGAN's ``UNetDiscriminatorSN``); it
  outputs one logit *per pixel*, so it accepts any input size divisible by 8.

Both return raw logits ``C(x)``; :class:`esrgan_lab.losses.basic.GANLoss` applies the sigmoid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

LRELU_SLOPE = 0.2


class VGGStyleDiscriminator(nn.Module):
    """VGG-style discriminator (paper Fig. 4 of SRGAN, used unchanged by ESRGAN).

    Stage ``k`` is ``conv{k}_0`` (3x3, stride 1) and ``conv{k}_1`` (4x4, stride 2), each
    followed by BatchNorm (except ``conv0_0``) and LeakyReLU(0.2); channels go
    ``num_feat * (1, 2, 4, 8, 8)``. After five halvings a 128x128 input is 4x4.

    Args:
        num_in_ch: Image channels.
        num_feat: Channels of the first stage (64).
        input_size: 128 or 256 (256 adds a sixth stage ``conv5_*``).

    Shapes:
        ``(N, num_in_ch, input_size, input_size) -> (N, 1)``
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"input_size must be 128 or 256, got {input_size}")
        self.input_size = input_size
        self.conv0_0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(num_feat, num_feat, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(num_feat, affine=True)
        mults = [1, 2, 4, 8, 8] + ([8] if input_size == 256 else [])
        self.num_stages = len(mults)
        for k in range(1, self.num_stages):
            c_in, c_out = num_feat * mults[k - 1], num_feat * mults[k]
            setattr(self, f"conv{k}_0", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            setattr(self, f"bn{k}_0", nn.BatchNorm2d(c_out, affine=True))
            setattr(self, f"conv{k}_1", nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False))
            setattr(self, f"bn{k}_1", nn.BatchNorm2d(c_out, affine=True))
        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=LRELU_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(
                f"VGGStyleDiscriminator expects {self.input_size}x{self.input_size} inputs, "
                f"got {tuple(x.shape[-2:])}"
            )
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        for k in range(1, self.num_stages):
            feat = self.lrelu(getattr(self, f"bn{k}_0")(getattr(self, f"conv{k}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{k}_1")(getattr(self, f"conv{k}_1")(feat)))
        feat = feat.flatten(1)
        return self.linear2(self.lrelu(self.linear1(feat)))


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral normalisation (Real-ESRGAN, Wang et al. 2021).

    Three stride-2 convs down (``conv1..conv3``), three bilinear x2 upsamplings each
    followed by a conv (``conv4..conv6``) with skip connections added from the encoder,
    then ``conv7, conv8`` and a 1-channel ``conv9``. Spectral norm (``weight_orig``,
    ``weight_u``, ``weight_v`` keys, as Real-ESRGAN's checkpoints) on every conv except
    the first and the last.

    Args:
        num_in_ch: Image channels.
        num_feat: Base channels (64).
        skip_connection: Add the encoder features to the decoder ones.

    Shapes:
        ``(N, num_in_ch, H, W) -> (N, 1, H, W)``, H and W divisible by 8.
    """

    def __init__(
        self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True
    ) -> None:
        super().__init__()
        self.skip_connection = skip_connection
        sn = spectral_norm
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(num_feat, num_feat * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(num_feat * 2, num_feat * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(num_feat * 4, num_feat * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(num_feat * 8, num_feat * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(num_feat * 4, num_feat * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(num_feat * 2, num_feat, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"UNetDiscriminatorSN needs H, W divisible by 8, got {tuple(x.shape)}")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=LRELU_SLOPE)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = act(self.conv7(x6))
        out = act(self.conv8(out))
        return self.conv9(out)


def build_discriminator(
    kind: str, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128
) -> nn.Module:
    """``"vgg"`` -> :class:`VGGStyleDiscriminator`, ``"unet"`` -> :class:`UNetDiscriminatorSN`."""
    if kind == "vgg":
        return VGGStyleDiscriminator(num_in_ch, num_feat, input_size)
    if kind == "unet":
        return UNetDiscriminatorSN(num_in_ch, num_feat)
    raise ValueError(f"unknown discriminator {kind!r} (expected 'vgg' or 'unet')")
