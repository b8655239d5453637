"""The vendor benchmark's pre- and post-processing, reproduced exactly.

The vendor benchmark this project started from fed ESRGAN_x4 with a fixed
``1 x 3 x 128 x 128`` input and scored the ``512 x 512`` output. Its two steps are kept
here with the same cv2/BGR contract, so its numbers can be reproduced bit for bit:

* :func:`get_image_data`: ``cv2.imread(IMREAD_UNCHANGED)`` -> ``cv2.resize`` to 128x128
  with ``INTER_AREA`` (aspect ratio *not* kept) -> ``/ 255.`` as float32 -> BGR->RGB ->
  HWC->CHW -> batch axis.
* :func:`postprocess`: squeeze -> RGB->BGR -> CHW->HWC -> clip to [0, 1] -> ``* 255`` ->
  round -> uint8.

What the vendor benchmark did not define, decided here: it only handles 8-bit, 3-channel images.
A grayscale (2-D), 2-channel, 4-channel (BGRA) or 16-bit file raises
:class:`~esrgan_lab.errors.ImageReadError` with a one-line reason instead of crashing
deep inside numpy (or, for 16-bit, silently producing values far above 1). Use
:func:`esrgan_lab.inference.upscale.upscale` for those files: it handles gray, alpha and 16-bit.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..errors import ImageReadError


def get_image_data(
    image_file: str | Path, input_shape: tuple[int, int, int, int] = (1, 3, 128, 128)
) -> tuple[np.ndarray, np.ndarray]:
    """Read and pre-process one image exactly as the vendor benchmark did.

    Args:
        image_file: Path of an 8-bit, 3-channel image file.
        input_shape: ``(N, C, H, W)`` of the network input; only ``N == 1`` and
            ``C == 3`` are meaningful. The image is resized to ``H x W``.

    Returns:
        ``(resized, data)``: ``resized`` is the ``H x W x 3`` uint8 BGR image after
        ``cv2.resize``; ``data`` is the ``1 x 3 x H x W`` float32 RGB array in [0, 1].

    Raises:
        ImageReadError: The file is missing, unreadable, or not 8-bit 3-channel.
    """
    batch, channels, height, width = input_shape
    if batch != 1 or channels != 3:
        raise ImageReadError(f"input_shape must be (1, 3, H, W), got {tuple(input_shape)}")
    path = str(image_file)
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ImageReadError(f"cannot read image {path!r} (missing, unreadable or not an image)")
    if img.dtype != np.uint8:
        raise ImageReadError(
            f"{path}: the vendor pipeline takes 8-bit images, got {img.dtype}; "
            "use `esrgan-lab upscale` for 16-bit files"
        )
    if img.ndim != 3 or img.shape[2] != 3:
        found = 1 if img.ndim == 2 else img.shape[2]
        raise ImageReadError(
            f"{path}: the vendor pipeline takes 3-channel BGR images, got {found} channel(s); "
            "use `esrgan-lab upscale` for grayscale or alpha images"
        )
    # cv2.resize takes (width, height); INTER_AREA is what the vendor benchmark used.
    resized = cv2.resize(img, (width, height), interpolation=cv2.INTER_AREA)
    data = resized.astype(np.float32) / 255.0
    data = data[:, :, ::-1]  # BGR -> RGB
    data = np.transpose(data, (2, 0, 1))  # HWC -> CHW
    data = np.ascontiguousarray(data[np.newaxis, ...], dtype=np.float32)  # batch axis
    return resized, data


def postprocess(output: np.ndarray | torch.Tensor) -> np.ndarray:
    """Turn the network output into an 8-bit BGR image exactly as the vendor benchmark did.

    Args:
        output: ``1 x 3 x H x W`` (or ``3 x H x W``) RGB output, float, nominally [0, 1].

    Returns:
        ``H x W x 3`` uint8 BGR image, ready for ``cv2.imwrite``.
    """
    if isinstance(output, torch.Tensor):
        output = output.detach().to("cpu", torch.float32).numpy()
    out = np.squeeze(np.asarray(output))
    if out.ndim != 3 or out.shape[0] != 3:
        raise ValueError(f"expected a 3 x H x W output after squeeze, got {out.shape}")
    out = out[[2, 1, 0], :, :]  # RGB -> BGR
    out = np.transpose(out, (1, 2, 0))  # CHW -> HWC
    out = np.clip(out, 0.0, 1.0)
    return np.round(out * 255.0).astype(np.uint8)


#: Input side of the vendor's fixed ``1 x 3 x 128 x 128`` network input.
VENDOR_INPUT_SIZE = 128


def vendor_pair(
    gt: np.ndarray, scale: int, size: int = VENDOR_INPUT_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """``(reference, lq)`` of the vendor protocol, both uint8 (any channel order).

    ``lq`` is what the vendor's :func:`get_image_data` feeds the network (the whole image
    squashed to ``size x size`` with ``INTER_AREA``); ``reference`` is the GT squashed
    the same way to the ``size*scale`` square output (the most plausible reading of what
    the vendor benchmark compared against; see :mod:`esrgan_lab.metrics.scoring`).
    """
    lq = cv2.resize(gt, (size, size), interpolation=cv2.INTER_AREA)
    ref = cv2.resize(gt, (size * scale, size * scale), interpolation=cv2.INTER_AREA)
    return ref, lq
