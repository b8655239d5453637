"""Small measurements for the notebooks: stage shapes, activation magnitudes, timings."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn

from ..metrics.psnr_ssim import bgr2y
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


@torch.no_grad()
def trunk_update_ratio(model: RRDBNet, lq: torch.Tensor) -> list[float]:
    """How much each RRDB changes the trunk: ``std(block(x) - x) / std(x)`` per block.

    An RRDB returns ``x + beta * D(x)`` where ``D`` is its three residual dense blocks in a
    row (paper Sec. 3.1, Fig. 4). ``D`` itself starts from ``x`` (each dense block adds
    ``beta`` times its own branch to its input), so a block whose dense branches add
    nothing still scales the trunk by ``1 + beta``: the ratio is then exactly ``beta``.
    Above ``beta``, the block's convolutions are changing the features; in a trained
    network the profile over depth shows how the depth is used.

    Args:
        model: An :class:`RRDBNet`.
        lq: ``(N, C, H, W)`` input batch.

    Returns:
        ``num_block`` floats.
    """
    import torch.nn.functional as F

    was_training = model.training
    model.eval()
    feat = F.pixel_unshuffle(lq, model.unshuffle) if model.unshuffle > 1 else lq
    feat = model.conv_first(feat)
    ratios = []
    for block in model.body:
        out = block(feat)
        ratios.append(((out - feat).std() / feat.std()).item())
        feat = out
    model.train(was_training)
    return ratios


def texture_statistics(image: np.ndarray, box: tuple[int, int, int, int]) -> dict[str, float]:
    """Two numbers that describe the texture inside ``box`` of an 8-bit BGR image.

    * ``detail``: the standard deviation of the Laplacian of the luma (MATLAB Y): how
      much high-frequency content there is, whatever its shape.
    * ``coherence``: the structure tensor's energy-weighted coherence (0 to 1): near 1 where
      the gradients in a neighbourhood share one direction (long strands, hair, whiskers),
      near 0 for isotropic grain or noise. Window: a Gaussian of sigma 2 px.

    Args:
        image: ``(H, W, 3)`` uint8 BGR (as :func:`esrgan_lab.read_image` returns).
        box: ``(y, x, h, w)`` in ``image``'s pixels.

    Returns:
        ``{"detail": float, "coherence": float}``.
    """
    y, x, h, w = box
    patch = image[y : y + h, x : x + w]
    luma = bgr2y(patch)  # the metrics' (MATLAB) Y, float64
    detail = float(cv2.Laplacian(luma, cv2.CV_64F, ksize=3).std())
    gx = cv2.Sobel(luma, cv2.CV_64F, 1, 0, ksize=3)
    gy = cv2.Sobel(luma, cv2.CV_64F, 0, 1, ksize=3)
    jxx, jyy, jxy = (cv2.GaussianBlur(g, (0, 0), 2.0) for g in (gx * gx, gy * gy, gx * gy))
    energy = jxx + jyy
    anisotropy = np.sqrt((jxx - jyy) ** 2 + 4 * jxy**2)
    coherence = float(anisotropy.sum() / max(energy.sum(), 1e-12))
    return {"detail": detail, "coherence": coherence}
