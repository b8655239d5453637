"""Training data: paired GT/LQ patches cut from folders of HR images.

The LQ image of every HR image is made once, up front, with MATLAB-style bicubic
downsampling (:func:`esrgan_lab.data.degrade.bicubic_degrade`, the degradation of the paper's
x4 setting) and kept in memory as uint8; a training sample is then only an aligned
random crop plus flips/rotations - cheap enough for DataLoader workers.

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
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..errors import DataError

#: Image file suffixes picked up from a folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
#: Colour images scikit-image ships (no download needed), used when no dataset is set.
SAMPLE_TRAIN = ("astronaut", "chelsea", "coffee", "rocket")
#: Held out from :data:`SAMPLE_TRAIN` for validation.
SAMPLE_VAL = ("immunohistochemistry",)
#: Named benchmark sets looked up under ``ESRGAN_LAB_DATA`` (any folder name works).
BENCHMARKS = ("Set5", "Set14", "BSD68", "SunHays80")


@dataclass(frozen=True)
class NamedImage:
    """An RGB uint8 ``(H, W, 3)`` image and its name."""

    name: str
    image: np.ndarray


def read_rgb(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as RGB uint8 ``(H, W, 3)`` (gray is replicated, alpha dropped).

    Files are decoded by :func:`esrgan_lab.data.images.read_image` (OpenCV, BGR); 16-bit files
    are rounded to 8 bits, as the training pipeline works on uint8.

    Raises:
        ImageReadError: Missing, unreadable or not an image.
    """
    from .images import read_image

    img = read_image(path)
    if img.dtype == np.uint16:
        img = np.round(img.astype(np.float64) / 257.0).astype(np.uint8)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., 2::-1])


def sample_hr_images(split: str = "train") -> list[NamedImage]:
    """Colour images shipped with scikit-image, for smoke runs without datasets.

    Args:
        split: ``"train"`` (:data:`SAMPLE_TRAIN`), ``"val"`` (:data:`SAMPLE_VAL`) or
            ``"all"``.
    """
    from .samples import skimage_sample  # lazy: imports scikit-image

    names = {"train": SAMPLE_TRAIN, "val": SAMPLE_VAL, "all": SAMPLE_TRAIN + SAMPLE_VAL}
    if split not in names:
        raise ValueError(f"split must be 'train', 'val' or 'all', got {split!r}")
    out = []
    for name in names[split]:
        rgb = skimage_sample(name)[..., ::-1]  # BGR -> RGB
        out.append(NamedImage(name, np.ascontiguousarray(rgb.astype(np.uint8))))
    return out


def folder_images(folder: str | os.PathLike[str]) -> list[NamedImage]:
    """Every image in ``folder`` (sorted by name), as RGB uint8.

    Raises:
        DataError: Missing folder or no images in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such image folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in folder")
    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # cv2 decoding releases the GIL
        images = list(pool.map(read_rgb, files))
    return [NamedImage(p.stem, img) for p, img in zip(files, images)]


def dataset_images(name: str) -> list[NamedImage]:
    """HR images of a benchmark set under ``ESRGAN_LAB_DATA`` (``"Set5"``, ``"BSD68"``...).

    Raises:
        DataError: ``ESRGAN_LAB_DATA`` unset or the set missing there.
    """
    from ..settings import data_dir, dataset_dir

    folder = dataset_dir(name)
    if folder is None:
        root = data_dir()
        where = f"{root}" if root else "ESRGAN_LAB_DATA (unset)"
        raise DataError(f"dataset {name!r} not found in {where}")
    return folder_images(folder)


def load_source(source: str) -> list[NamedImage]:
    """Images of one data source string, as configs name them.

    ``"sample"`` / ``"sample:train"``, ``"sample:val"``, ``"sample:all"`` -> scikit-image
    images; a path to an existing folder -> its images; anything else -> a dataset name
    under ``ESRGAN_LAB_DATA``. A Python slice suffix selects images by position in
    name order: ``"NAME[:K]"`` keeps the first ``K``, ``"NAME[-5:]"`` the last five,
    ``"NAME[:-5]"`` all but those.
    """
    base, part = source, None
    match = re.fullmatch(r"(.+)\[(-?\d*):(-?\d*)\]", source)
    if match:
        base = match.group(1)
        part = slice(*(int(v) if v else None for v in match.group(2, 3)))
    if base == "sample" or base.startswith("sample:"):
        _, _, split = base.partition(":")
        images = sample_hr_images(split or "train")
    elif os.sep in base or Path(base).is_dir():
        images = folder_images(base)
    else:
        images = dataset_images(base)
    return images[part] if part is not None else images


def _degrade_all(images: Sequence[NamedImage], scale: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(gt, lq)]`` with ``gt = modcrop(hr)`` and ``lq = bicubic_degrade(gt)``, uint8."""
    from .degrade import bicubic_degrade, modcrop

    def one(item: NamedImage) -> tuple[np.ndarray, np.ndarray]:
        gt = np.ascontiguousarray(modcrop(item.image, scale))
        return gt, bicubic_degrade(gt, scale)

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:  # numpy matmuls release the GIL
        return list(pool.map(one, images))


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` -> float32 ``(3, H, W)`` on [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div_(255.0)


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
        images: HR images (RGB uint8); each is cropped to a multiple of ``scale``.
        scale: Downscaling factor (4 in the paper).
        gt_size: GT patch side (128 in the paper); the LQ patch is ``gt_size // scale``.
        use_flip: Random horizontal (and, with ``use_rot``, vertical) flips.
        use_rot: Random 90-degree rotations.
        seed: Base seed of the sample stream.

    ``dataset[p]`` is the sample at stream position ``p`` (any integer >= 0; see the
    module docstring), a dict ``{"lq": (3, gt_size/scale, gt_size/scale), "gt": (3,
    gt_size, gt_size), "index": image index}`` of float32 on [0, 1]. ``len(dataset)`` is
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
        self.pairs = _degrade_all(images, scale)
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
        return {"lq": to_tensor(lq_patch), "gt": to_tensor(gt_patch), "index": index}


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


class PairedImageSet:
    """Whole-image validation pairs: ``gt = modcrop(hr)``, ``lq = bicubic_degrade(gt)``.

    Items are ``(name, gt, lq)`` RGB uint8 arrays.
    """

    def __init__(self, images: Sequence[NamedImage], scale: int) -> None:
        self.names = [im.name for im in images]
        self.pairs = _degrade_all(images, scale)
        self.scale = scale

    def __len__(self) -> int:
        return len(self.pairs)

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for name, (gt, lq) in zip(self.names, self.pairs):
            yield name, gt, lq
