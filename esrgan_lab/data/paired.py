"""Paired data: GT/LQ training patches, and whole GT/LQ pairs for validation and tests.

The LQ image of every HR image is made once, up front, with MATLAB-style bicubic
downsampling (:func:`esrgan_lab.data.degrade.standard_pair`, the degradation of the paper's
x4 setting, paper Sec. 4.1) and kept in memory as uint8; a training sample is then only
an aligned random crop plus flips/rotations - cheap enough for DataLoader workers.
Validation and test images are whole :class:`ImagePair` s made the same way. Large sets
(the paper's DF2K + OST sub-images) are read from disk per sample instead
(:class:`FolderPatchDataset`), with the same stream.

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
from pathlib import Path
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


class _PatchStream(Dataset):
    """The stateless sample stream (module docstring) over ``count`` images; subclasses
    say where image ``index``'s ``(gt, lq)`` arrays come from (:meth:`pair`)."""

    def __init__(
        self,
        names: Sequence[str],
        scale: int,
        gt_size: int,
        use_flip: bool,
        use_rot: bool,
        seed: int,
    ) -> None:
        if not names:
            raise DataError("training set is empty")
        if gt_size % scale:
            raise DataError(f"gt_size {gt_size} is not a multiple of scale {scale}")
        self.names = list(names)
        self.scale = scale
        self.gt_size = gt_size
        self.lq_size = gt_size // scale
        self.use_flip = use_flip
        self.use_rot = use_rot
        self.seed = seed
        self._perms: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.names)

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """``(gt, lq)`` uint8 BGR of image ``index`` (``gt`` is ``scale`` x ``lq``)."""
        raise NotImplementedError

    def locate(self, position: int) -> tuple[int, int, int]:
        """Stream position -> ``(epoch, slot, image index)``."""
        n = len(self)
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
        gt, lq = self.pair(index)
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


class PairedPatchDataset(_PatchStream):
    """Aligned random GT/LQ patches with flips and 90-degree rotations, from images held
    in memory (small sets: the lab's BSD68 + SunHays80).

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
        super().__init__([im.name for im in images], scale, gt_size, use_flip, use_rot, seed)
        small = [im.name for im in images if min(im.image.shape[:2]) < gt_size]
        if small:
            raise DataError(f"image {small[0]!r} is smaller than gt_size {gt_size}")
        self.pairs = [(p.gt, p.lq) for p in degrade_all(images, scale)]

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.pairs[index]


class FolderPatchDataset(_PatchStream):
    """The same patch stream as :class:`PairedPatchDataset`, read from image files per
    sample: memory is bounded by the batch and the DataLoader's prefetch, not by the
    dataset (the paper's DF2K + OST, cut into 480x480 sub-images by ``esrgan-lab
    prepare-data``, is ~30 GB decoded). Only the file list is held; DataLoader workers
    share it.

    Args:
        gt_files: GT image files (sub-images); ``ImageRecord`` s or paths.
        scale, gt_size, use_flip, use_rot, seed: As :class:`PairedPatchDataset`.
        lq_files: The matching LQ files (``prepare-data --lq-src``: same names), or
            ``None`` to degrade each GT image with MATLAB bicubic as it is read (the
            paper's x4 degradation, :func:`~esrgan_lab.data.degrade.standard_pair`).

    Raises:
        DataError: No files; an LQ list of another length; at read time, an image
            smaller than ``gt_size`` or an LQ image whose size does not match.
    """

    def __init__(
        self,
        gt_files: Sequence[os.PathLike[str] | str],
        scale: int,
        gt_size: int,
        use_flip: bool = True,
        use_rot: bool = True,
        seed: int = 0,
        lq_files: Sequence[os.PathLike[str] | str] | None = None,
    ) -> None:
        self.gt_files = [Path(f) for f in gt_files]
        super().__init__([f.stem for f in self.gt_files], scale, gt_size, use_flip, use_rot, seed)
        self.lq_files = None if lq_files is None else [Path(f) for f in lq_files]
        if self.lq_files is not None and len(self.lq_files) != len(self.gt_files):
            raise DataError(
                f"{len(self.lq_files)} LQ files for {len(self.gt_files)} GT files: "
                "pair them by name (esrgan-lab prepare-data --lq-src)"
            )

    def pair(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        from .images import read_image
        from .sources import as_training_image

        path = self.gt_files[index]
        gt = as_training_image(read_image(path))
        if min(gt.shape[:2]) < self.gt_size:
            raise DataError(f"{path}: {gt.shape[1]}x{gt.shape[0]} is smaller than gt_size")
        if self.lq_files is None:
            gt, lq = standard_pair(gt, self.scale)
            return np.ascontiguousarray(gt), lq
        lq = as_training_image(read_image(self.lq_files[index]))
        s = self.scale
        h, w = lq.shape[0] * s, lq.shape[1] * s
        if (gt.shape[0] // s, gt.shape[1] // s) != lq.shape[:2]:
            raise DataError(
                f"{self.lq_files[index]}: {lq.shape[1]}x{lq.shape[0]} is not the x{self.scale} "
                f"LQ of {path.name} ({gt.shape[1]}x{gt.shape[0]})"
            )
        return gt[:h, :w], lq


def paired_files(
    train: Sequence[str], train_lq: Sequence[str], scale: int
) -> tuple[list[Path], list[Path] | None]:
    """The GT files of the ``train`` sources and, with ``train_lq``, their LQ files paired
    by name (``<stem>`` or ``<stem>x<scale>``, as ``prepare-data`` and DIV2K name them).

    Raises:
        DataError: A source without files (e.g. ``sample:``), or a GT file without LQ.
    """
    from .sources import resolve_dataset

    gt_files: list[Path] = []
    lq_files: list[Path] = []
    for i, src in enumerate(train):
        records = resolve_dataset(src)
        missing = [r.name for r in records if r.path is None]
        if missing:
            raise DataError(f"data.lazy reads files: {src!r} has none (use a folder)")
        gt_files += [r.path for r in records]
        if train_lq:
            lq = {r.name: r.path for r in resolve_dataset(train_lq[i])}
            for r in records:
                match = lq.get(r.name) or lq.get(f"{r.name}x{scale}")
                if match is None:
                    raise DataError(f"{train_lq[i]}: no LQ image for {r.name} of {src}")
                lq_files.append(match)
    return gt_files, (lq_files if train_lq else None)


class StreamSampler(Sampler[int]):
    """Stream positions for one rank, from iteration ``start_iter`` on, without end.

    Iteration ``i`` uses the global positions ``[i * G, (i + 1) * G)``, ``G = B * A * W``
    (``B`` micro-batch, ``A`` accumulation steps, ``W`` world size), cut into ``A * W``
    blocks of ``B``; rank ``r`` takes blocks ``a * W + r`` for ``a = 0 .. A-1``, in that
    order, so one DataLoader batch of ``B * A`` is its ``A`` micro-batches. Any ``(A, W)``
    with the same ``B * A * W`` therefore sees the same global batches (one process with
    ``A = 2`` is two ranks with ``A = 1``), and resuming at iteration ``i`` continues the
    exact stream, whatever the world size.
    """

    def __init__(
        self,
        batch_size: int,
        start_iter: int = 0,
        rank: int = 0,
        world_size: int = 1,
        accumulate: int = 1,
    ):
        self.batch_size = batch_size
        self.start_iter = start_iter
        self.rank = rank
        self.world_size = world_size
        self.accumulate = accumulate

    def __iter__(self) -> Iterator[int]:
        it = self.start_iter
        b, w, a = self.batch_size, self.world_size, self.accumulate
        while True:
            for step in range(a):
                base = it * b * a * w + (step * w + self.rank) * b
                yield from range(base, base + b)
            it += 1
