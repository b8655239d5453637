"""Memory of an RRDBNet configuration, estimated from shapes alone (no forward pass).

Three numbers, each with a stated meaning, for the architecture explorer
(:func:`esrgan_lab.lab.widgets.architecture_explorer`):

=======================  ===============================================================
field                    what it estimates
=======================  ===============================================================
``weights``              the parameters (``count_parameters * bytes per element``).
``inference``            peak activation memory of one forward pass without autograd:
                         :func:`esrgan_lab.inference.upscale.estimate_memory`, the same estimate the
                         tiler uses, calibrated on the process's peak RSS on the CPU.
``training``             activations that autograd keeps for the backward pass of one
                         forward: every ``Conv2d`` input and every ``LeakyReLU`` output
                         (the only ops of RRDBNet that save tensors; ``cat``, ``mul`` by
                         beta, ``add`` and nearest upsampling save none), in closed
                         form (:func:`saved_activation_elements`; the tests check it
                         against :func:`saved_activation_bytes`, which counts on the
                         meta device). An upper bound: the HR convs' inputs that are
                         also an in-place LeakyReLU's output are counted twice.
                         Gradients, optimizer state and workspaces come on top.
=======================  ===============================================================

Why the trunk is cheap and the upsampler is not (Wang et al. 2018, Fig. 4): the trunk's
tensors live at the input resolution, the upsampler's ``num_feat``-channel tensors at
``scale**2`` times as many pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..inference.upscale import estimate_memory
from .rrdbnet import RRDB, RRDBNet, count_parameters


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes for one ``(1, C, height, width)`` input; see the module docstring.

    Attributes:
        weights: Parameter bytes.
        inference: Peak activation bytes of an inference forward pass.
        training: Activation bytes saved for the backward pass (batch of one).
    """

    weights: int
    inference: int
    training: int


def saved_activation_bytes(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Bytes of the tensors autograd saves in one forward pass of ``model``.

    Counts the input of every :class:`~torch.nn.Conv2d` and the output of every
    :class:`~torch.nn.LeakyReLU` (see the module docstring), on the model's device; pass a
    model built under ``torch.device("meta")`` to count without memory or compute.

    Args:
        model: An RRDBNet-like module.
        input_shape: ``(N, C, H, W)``.
    """
    total = 0
    handles = []

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        tensor = inputs[0] if isinstance(module, nn.Conv2d) else output
        total += tensor.numel() * tensor.element_size()

    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.LeakyReLU)):
            handles.append(module.register_forward_hook(hook))
    try:
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(input_shape, device=param.device, dtype=param.dtype))
    finally:
        for handle in handles:
            handle.remove()
    return total


def saved_activation_elements(
    num_block: int = 23,
    num_feat: int = 64,
    num_grow_ch: int = 32,
    scale: int = 4,
    height: int = 128,
    width: int = 128,
    num_in_ch: int = 3,
) -> int:
    """Closed form of :func:`saved_activation_bytes` for RRDBNet, in elements.

    With ``P`` trunk pixels (``height * width / unshuffle**2``) and ``U = 4**num_up``
    (16 for x1/x2/x4, 64 for x8):

    * ``conv_first`` input: ``num_in_ch * height * width``;
    * each of the ``3 * num_block`` dense blocks: conv inputs ``nf, nf + gc, ..., nf + 4 gc``
      plus four LeakyReLU outputs of ``gc``: ``(5 nf + 14 gc) P``;
    * ``conv_body`` input: ``nf P``;
    * upsampling stage ``k``: conv input and LeakyReLU output, ``2 nf 4**k P``;
    * ``conv_hr`` input, its LeakyReLU output and ``conv_last`` input: ``3 nf U P``.
    """
    unshuffle = {1: 4, 2: 2}.get(scale, 1)
    num_up = 3 if scale == 8 else 2
    trunk = (height // unshuffle) * (width // unshuffle)
    nf, gc = num_feat, num_grow_ch
    per_trunk_pixel = (
        3 * num_block * (5 * nf + 14 * gc)
        + nf
        + sum(2 * nf * 4**k for k in range(1, num_up + 1))
        + 3 * nf * 4**num_up
    )
    return num_in_ch * height * width + per_trunk_pixel * trunk


def memory_estimate(
    num_block: int = 23,
    num_feat: int = 64,
    num_grow_ch: int = 32,
    scale: int = 4,
    size: int | tuple[int, int] = 128,
    num_in_ch: int = 3,
    num_out_ch: int = 3,
) -> MemoryEstimate:
    """Weights, inference and training activation memory of an fp32 RRDBNet configuration.

    Args:
        num_block, num_feat, num_grow_ch, scale, num_in_ch, num_out_ch: As
            :class:`~esrgan_lab.model.rrdbnet.RRDBNet`.
        size: Input side, or ``(height, width)``.

    Returns:
        A :class:`MemoryEstimate` in bytes (float32: 4 bytes per element).
    """
    height, width = (size, size) if isinstance(size, int) else size
    # The inference estimate reads only num_feat, num_grow_ch, scale and the unshuffle
    # factor, and the trunk's parameters are num_block copies of one RRDB, so a trunk-less
    # model plus one RRDB on the meta device stand in for the whole network (building 23
    # blocks would cost ~0.5 s per slider move for nothing).
    with torch.device("meta"):
        stand_in = RRDBNet(num_in_ch, num_out_ch, scale, num_feat, 0, num_grow_ch)
        block = RRDB(num_feat, num_grow_ch)
    parameters = count_parameters(stand_in) + num_block * count_parameters(block)
    saved = saved_activation_elements(
        num_block, num_feat, num_grow_ch, scale, height, width, num_in_ch
    )
    return MemoryEstimate(
        weights=int(4 * parameters),
        inference=int(estimate_memory(stand_in, height, width)),
        training=int(4 * saved),
    )


def format_bytes(n: float) -> str:
    """``1536 -> '1.5 KiB'``: binary units, three significant digits (``1000 B`` is shown
    as ``0.977 KiB``, never as four digits)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:,.3g} TiB" if abs(value) < 1000 else f"{value:,.0f} TiB"
