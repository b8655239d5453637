"""Small measurements on a model for the notebooks: stage shapes, activation magnitudes."""

from __future__ import annotations

import torch
from torch import nn

from ..model.rrdbnet import RRDBNet


def stage_shapes(model: RRDBNet, input_shape: tuple[int, int, int, int]) -> list[tuple[str, tuple]]:
    """Output shape of every top-level stage of ``model`` for one input shape.

    Runs on the meta device, so no memory is used however large the input.

    Returns:
        ``[(stage, (N, C, H, W)), ...]`` in forward order, starting with ``"input"``.
    """
    with torch.device("meta"):
        meta = RRDBNet(
            model.num_in_ch,
            model.num_out_ch,
            model.scale,
            model.num_feat,
            model.num_block,
            model.num_grow_ch,
            model.norm,
        )
    shapes: list[tuple[str, tuple]] = [("input", tuple(input_shape))]
    handles = []
    for name, module in meta.named_children():
        if isinstance(module, (nn.LeakyReLU, nn.Identity)):
            continue

        def hook(mod: nn.Module, inputs: tuple, output: torch.Tensor, name: str = name) -> None:
            shapes.append((name, tuple(output.shape)))

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            meta(torch.zeros(input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return shapes


@torch.no_grad()
def trunk_activation_std(model: RRDBNet, lq: torch.Tensor) -> list[float]:
    """Standard deviation of the trunk features after ``conv_first`` and after each RRDB.

    This is the quantity behind the paper's residual scaling and 0.1 init (Sec. 3.1 and
    the supplement): without them the trunk's activations grow block after block.

    Args:
        model: An :class:`RRDBNet`.
        lq: ``(N, C, H, W)`` input batch.

    Returns:
        ``num_block + 1`` floats.
    """
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    feat = F.pixel_unshuffle(lq, model.unshuffle) if model.unshuffle > 1 else lq
    feat = model.conv_first(feat)
    stds = [feat.std().item()]
    for block in model.body:
        feat = block(feat)
        stds.append(feat.std().item())
    model.train(was_training)
    return stds
