"""Validation during training: the validation pairs of a run and their mean Y-PSNR.

The images are ``data.val`` (optionally their central ``data.val_crop`` px square, at most
``data.val_max_images`` of them), made into pairs by
:func:`~esrgan_lab.data.degrade.standard_pair` (mod-crop, MATLAB bicubic), and scored by
:func:`esrgan_lab.evaluation.evaluate.score_pairs` (Y channel, ``crop_border = scale``),
the same scoring as ``esrgan-lab evaluate``. Only rank 0 validates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from .config import DataConfig

if TYPE_CHECKING:
    from ..data.paired import ImagePair


class Validator:
    """The validation pairs of a run (loaded once, on first use) and their score.

    Args:
        data: The run's data configuration (``val``, ``val_crop``, ``val_max_images``).
        scale: Upscaling factor (also the border cropped before scoring).
        enabled: Whether this process validates (rank 0 only).
    """

    def __init__(self, *, data: DataConfig, scale: int, enabled: bool) -> None:
        self.data = data
        self.scale = scale
        self.enabled = enabled
        self._pairs: list[ImagePair] | None = None

    def pairs(self) -> list[ImagePair] | None:
        """The validation pairs; ``None`` without ``data.val`` or on ranks other than 0."""
        from ..data.degrade import center_crop
        from ..data.paired import degrade_all
        from ..data.sources import NamedImage, load_source

        if self._pairs is None and self.data.val and self.enabled:
            pairs: list[ImagePair] = []
            crop = self.data.val_crop
            for src in self.data.val:
                images = load_source(src)
                if crop is not None:
                    images = [NamedImage(im.name, center_crop(im.image, crop)) for im in images]
                pairs += degrade_all(images, self.scale, src)
            if self.data.val_max_images is not None:
                pairs = pairs[: self.data.val_max_images]
            self._pairs = pairs
        return self._pairs

    @property
    def count(self) -> int:
        """How many pairs were validated on (0 before the first validation)."""
        return len(self._pairs) if self._pairs else 0

    @torch.no_grad()
    def score(self, model: nn.Module) -> float | None:
        """Mean Y-PSNR (crop_border = scale) of ``model`` (set to eval mode) on the pairs;
        ``None`` without any."""
        from ..evaluation.evaluate import score_pairs

        val = self.pairs()
        if not val:
            return None
        model.eval()
        report = score_pairs(model, val, self.scale)
        return float(sum(s.psnr for s in report.scores) / len(report.scores))
