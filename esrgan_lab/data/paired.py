"""Paired data: GT/LQ training patches, and whole GT/LQ pairs for validation and tests.

The LQ image of every HR image is made once, up front, with MATLAB-style bicubic
downsampling (:func:`esrgan_lab.data.degrade.standard_pair`, the degradation of the paper's
x4 setting, paper Sec. 4.1) and kept in memory as uint8; a training sample is then only
an aligned random crop plus flips/rotations - cheap enough for DataLoader workers.
Validation and test images are whole :class:`ImagePair` s made the same way.

Randomness is *stateless*: a sample is addressed by its position ``p`` in the infinite
stream of training samples. Position ``p`` lies in epoch ``e = p // N`` at slot
``k = p % N`` (``N`` images); the image is ``perm_e[k]`` of a permutation seeded by
``(seed, e)`` and its crop/flip/rotation come from a generator seeded by
``(seed, e, k)``. So a sample does not depend on which worker or DDP rank draws it, or
on whether training was resumed - :class:`StreamSampler` hands each rank its share of
positions, starting at any iteration.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import DataError
from .degrade import standard_pair
from .images import array_to_tensor
from .sources import NamedImage


class ImagePair(NamedTuple):
    """A ground truth and its low-quality input, both uint8 OpenCV arrays (BGR or gray).

    ``gt`` is cropped to a multiple of the scale so that ``lq`` upscaled by it has
    ``gt``'s size.
    """

    dataset: str
    name: str
    gt: np.ndarray
    lq: np.ndarray


def degrade_all(images: Sequence[NamedImage], scale: int, dataset: str = "") -> list[ImagePair]:
    """:func:`~esrgan_lab.data.degrade.standard_pair` of every image (in threads)."""

    def one(item: NamedImage) -> ImagePair:
        gt, lq = standard_pair(item.image, scale)
        return ImagePair(dataset, item.name, np.ascontiguousarray(gt), lq)

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # numpy matmuls release the GIL
        return list(pool.map(one, images))


class PairedImageSet:
    """Whole-image validation pairs of in-memory images (:func:`degrade_all`).

    Iterating yields :class:`ImagePair` s; ``scale`` is the degradation factor.
    """

    def __init__(self, images: Sequence[NamedImage], scale: int, dataset: str = "") -> None:
        self.images = list(images)
        self.pairs = degrade_all(images, scale, dataset)
        self.names = [p.name for p in self.pairs]
        self.scale = scale

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[ImagePair]:
        return iter(self.pairs)


def augment(imgs: Sequence[np.ndarray], hflip: bool, vflip: bool, rot90: bool) -> list[np.ndarray]:
    """Apply the same flips and transpose to ``(H, W, C)`` arrays (BasicSR ``augment``)."""
    out = []
    for img in imgs:
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1]
        if rot90:  # a transpose; with the flips it gives all 8 dihedral transforms
            img = img.transpose(1, 0, 2)
        out.append(np.ascontiguousarray(img))
    return out


class PairedPatchDataset(Dataset):
    """Aligned random GT/LQ patches with flips and 90-degree rotations.

    Args:
        images: HR images (uint8 BGR, :func:`~esrgan_lab.data.sources.load_source`);
            each is cropped to a multiple of ``scale``.
        scale: Downscaling factor (4 in the paper).
        gt_size: GT patch side (128 in the paper); the LQ patch is ``gt_size // scale``.
        use_flip: Random horizontal (and, with ``use_rot``, vertical) flips.
        use_rot: Random 90-degree rotations.
        seed: Base seed of the sample stream.

    ``dataset[p]`` is the sample at stream position ``p`` (any integer >= 0; see the
    module docstring), a dict ``{"lq": (3, gt_size/scale, gt_size/scale), "gt": (3,
    gt_size, gt_size), "index": image index}`` of RGB float32 on [0, 1]. ``len(dataset)`` is
    the number of images (one epoch).

    Raises:
        DataError: No images, or one smaller than ``gt_size``.
    """

    def __init__(
        self,
        images: Sequence[NamedImage],
        scale: int,
        gt_size: int,
        use_flip: bool = True,
        use_rot: bool = True,
        seed: int = 0,
    ) -> None:
        if not images:
            raise DataError("training set is empty")
        if gt_size % scale:
            raise DataError(f"gt_size {gt_size} is not a multiple of scale {scale}")
        small = [im.name for im in images if min(im.image.shape[:2]) < gt_size]
        if small:
            raise DataError(f"image {small[0]!r} is smaller than gt_size {gt_size}")
        self.names = [im.name for im in images]
        self.scale = scale
        self.gt_size = gt_size
        self.lq_size = gt_size // scale
        self.use_flip = use_flip
        self.use_rot = use_rot
        self.seed = seed
        self.pairs = [(p.gt, p.lq) for p in degrade_all(images, scale)]
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def locate(self, position: int) -> tuple[int, int, int]:
        """Stream position -> ``(epoch, slot, image index)``."""
        n = len(self.pairs)
        epoch, slot = divmod(int(position), n)
        perm = self._perms.get(epoch)
        if perm is None:
            if len(self._perms) > 4:
                self._perms.clear()
            perm = np.random.default_rng([self.seed, epoch]).permutation(n)
            self._perms[epoch] = perm
        return epoch, slot, int(perm[slot])

    def __getitem__(self, position: int) -> dict[str, torch.Tensor | int]:
        epoch, slot, index = self.locate(position)
        rng = np.random.default_rng([self.seed, epoch, slot])
        gt, lq = self.pairs[index]
        h, w = lq.shape[:2]
        top = int(rng.integers(0, h - self.lq_size + 1))
        left = int(rng.integers(0, w - self.lq_size + 1))
        lq_patch = lq[top : top + self.lq_size, left : left + self.lq_size]
        s = self.scale
        gt_patch = gt[top * s : top * s + self.gt_size, left * s : left * s + self.gt_size]
        flips = rng.random(3) < 0.5
        gt_patch, lq_patch = augment(
            [gt_patch, lq_patch],
            hflip=self.use_flip and bool(flips[0]),
            vflip=self.use_rot and bool(flips[1]),
            rot90=self.use_rot and bool(flips[2]),
        )
        return {
            "lq": array_to_tensor(lq_patch, batch=False),
            "gt": array_to_tensor(gt_patch, batch=False),
            "index": index,
        }


class StreamSampler(Sampler[int]):
    """Stream positions for one rank, from iteration ``start_iter`` on, without end.

    Iteration ``i`` uses the global positions ``[i * B * W, (i + 1) * B * W)`` (``B``
    per-rank batch, ``W`` world size); rank ``r`` takes the ``r``-th block of ``B``. A
    run on W ranks therefore sees the same global batches as one process with batch
    ``B * W``, and resuming at iteration ``i`` continues the exact stream.
    """

    def __init__(self, batch_size: int, start_iter: int = 0, rank: int = 0, world_size: int = 1):
        self.batch_size = batch_size
        self.start_iter = start_iter
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        it = self.start_iter
        b, w = self.batch_size, self.world_size
        while True:
            base = (it * w + self.rank) * b
            yield from range(base, base + b)
            it += 1
